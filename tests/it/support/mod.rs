//! Helpers shared by the integration tests.

pub mod bin;
pub mod browser;
pub mod config;
pub mod console;
pub mod counts;
pub mod daemon;
pub mod db;
pub mod dovecot;
pub mod faults;
pub mod http_app;
pub mod providers;
pub mod recording_http;
pub mod smtp_server;

/// A test whose outside service (Dovecot, PostgreSQL, dkimpy, openssl) is missing: on a
/// developer's machine it prints a loud SKIPPED line and the test passes; under `CI=true` it
/// fails, because CI installs every service (`.ci/run`) and a skip there would hide a gap.
pub fn skip(why: &str) {
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("CI=true, and a service this test needs is missing: {why}");
    }
    use std::io::Write as _;
    // Straight to stderr: the test harness captures `eprintln!` of passing tests.
    let _ = writeln!(
        std::io::stderr(),
        "\n==========================================================================\n\
         SKIPPED: {why}\n\
         =========================================================================="
    );
}
