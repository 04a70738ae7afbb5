//! SIGTERM ends the daemon promptly even while it waits on a reply mailbox that never answers.
//!
//! Found under libfaketime: a Dovecot whose clock jumped stopped starting login processes, and
//! the daemon, waiting out its 60 s IMAP timeout, did not stop within 15 s of SIGTERM. Here the
//! "mailbox" is a TCP listener that accepts and says nothing (no greeting), on any clock.

use std::time::{Duration, Instant};

use crate::support::bin::{command, dir_with_templates};
use crate::support::config::TestConfig;
use crate::support::daemon::Daemon;

const PASSWORD_ENV: &str = "REWARM_SHUTDOWN_IMAP_PASSWORD";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_stops_the_daemon_within_seconds_while_its_mailbox_never_answers() {
    // Accepts every connection and keeps it open without a word.
    let silent = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind a silent IMAP port");
    let port = silent.local_addr().expect("its address").port();
    let accepted = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let held = accepted.clone();
    tokio::spawn(async move {
        let mut open = Vec::new();
        while let Ok((socket, _)) = silent.accept().await {
            held.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            open.push(socket);
        }
    });

    let dir = dir_with_templates();
    let database_url = format!("sqlite://{}", dir.path().join("rewarm.db").display());
    let config = TestConfig::new(&database_url)
        .templates_dir(&dir.path().join("templates"))
        .file_transport("outbox")
        .set_str("scheduler", "tick", "1s")
        .set_str("http", "listen", "127.0.0.1:0")
        .set_str("inbound", "reply_domain", "reply.acme.test")
        .set_str("inbound.imap", "host", "127.0.0.1")
        .set("inbound.imap", "port", port.to_string())
        .set("inbound.imap", "tls", "false")
        .set_str("inbound.imap", "username", "rewarm")
        .set_str("inbound.imap", "password_env", PASSWORD_ENV)
        .set_str("inbound.imap", "poll", "1s")
        .write(&dir.path().join("rewarm.toml"));
    let mut command = command();
    command
        .current_dir(dir.path())
        .args(["--config", config.to_str().expect("UTF-8 path")])
        .args(["run", "--now", "2026-03-02T10:00:00Z"])
        .env_remove("RUST_LOG")
        .env(PASSWORD_ENV, "secret");
    let mut daemon = Daemon::spawn(command, dir.path().join("daemon.log"));

    // The daemon is inside a poll: connected, waiting for a greeting that never comes.
    let deadline = Instant::now() + Duration::from_secs(20);
    while accepted.load(std::sync::atomic::Ordering::SeqCst) == 0 {
        daemon.assert_alive();
        assert!(
            Instant::now() < deadline,
            "the daemon never connected to the mailbox:\n{}",
            daemon.log()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;

    let exit = daemon.terminate(Duration::from_secs(5)).await;
    assert!(exit.success(), "exit {exit}:\n{}", daemon.log());
    let log = daemon.log();
    assert!(
        log.contains("the reply mailbox poll was abandoned"),
        "{log}"
    );
    assert!(log.contains("rewarm stopped"), "{log}");
}
