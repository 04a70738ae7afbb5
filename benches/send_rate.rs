//! End-to-end send rate: 20,000 due deliveries claimed, rendered, sent over SMTP and
//! recorded, against Postfix's `smtp-sink`, next to the raw rate of Postfix's `smtp-source`
//! into the same sink.
//!
//!     bench/send-rate.sh            # installs postfix if needed, then runs this
//!     cargo bench --bench send_rate # if smtp-sink/smtp-source are already installed
//!
//! Environment: REWARM_BENCH_N (deliveries, default 20000), REWARM_BENCH_POOL (SMTP
//! connections, default 16), REWARM_BENCH_BATCH (batch size, default 1000).
//!
//! Then the same pass again on a fresh database with `[transport.limits]` (a daily cap and a
//! domain budget, both above N: every batch reserves its sends in the database), next to the
//! first pass as its reference (REWARM_BENCH_LIMITS=0 skips it).

#[path = "../tests/it/support/smtp_server.rs"]
#[allow(dead_code)]
mod smtp_server;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Instant;

use chrono::Utc;
use rewarm::app::{Loaded, build_transport};
use rewarm::domain::email::EmailAddress;
use rewarm::domain::lead::NewLead;
use rewarm::store::prelude::*;
use rewarm::store::sqlite::SqliteStore;
use tokio_util::sync::CancellationToken;

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn find(tool: &str) -> Option<PathBuf> {
    ["/usr/sbin", "/usr/bin", "/usr/local/sbin", "/usr/local/bin"]
        .iter()
        .map(|d| Path::new(d).join(tool))
        .find(|p| p.exists())
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

struct Sink(Child);
impl Drop for Sink {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start_sink(bin: &Path, port: u16) -> Sink {
    let child = Command::new(bin)
        .args(["-u", "nobody", &format!("127.0.0.1:{port}"), "1024"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start smtp-sink");
    // Owned by the guard at once: a sink that never listens is killed and reaped on the panic.
    let sink = Sink(child);
    for _ in 0..100 {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return sink;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    panic!("smtp-sink did not start listening on {port}");
}

/// smtp-source's raw rate: `n` messages of `size` bytes over `sessions` connections.
fn smtp_source_rate(bin: &Path, port: u16, n: usize, sessions: usize, size: usize) -> f64 {
    let start = Instant::now();
    let status = Command::new(bin)
        .args([
            "-d",
            "-s",
            &sessions.to_string(),
            "-m",
            &n.to_string(),
            "-l",
            &size.to_string(),
        ])
        .args([
            "-f",
            "bench@acme.example",
            "-t",
            "lead@example.com",
            &format!("127.0.0.1:{port}"),
        ])
        .stdout(Stdio::null())
        .status()
        .expect("run smtp-source");
    assert!(status.success(), "smtp-source failed");
    n as f64 / start.elapsed().as_secs_f64()
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("mkdir");
    for entry in std::fs::read_dir(from).expect("read templates") {
        let entry = entry.expect("entry");
        let target = to.join(entry.file_name());
        if entry.file_type().expect("type").is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).expect("copy");
        }
    }
}

#[tokio::main]
async fn main() {
    let n = env_usize("REWARM_BENCH_N", 20_000);
    let pool = env_usize("REWARM_BENCH_POOL", 16);
    let batch = env_usize("REWARM_BENCH_BATCH", 1000);

    let port = free_port();
    let (sink_name, _sink, _fallback) = match (find("smtp-sink"), find("smtp-source")) {
        (Some(sink), Some(_)) => ("postfix smtp-sink", Some(start_sink(&sink, port)), None),
        _ => {
            eprintln!(
                "NOTE: postfix's smtp-sink/smtp-source are not installed (run bench/send-rate.sh); using the in-process test SMTP server and no raw comparison."
            );
            (
                "in-process test SMTP server",
                None,
                Some(smtp_server::TestSmtpServer::start().await),
            )
        }
    };
    let port = _fallback.as_ref().map(|s| s.port()).unwrap_or(port);

    let dir = tempfile::tempdir().expect("tempdir");
    copy_dir(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("templates"),
        &dir.path().join("templates"),
    );
    let (import, enrol, elapsed) = send_pass(dir.path(), "bench", port, pool, batch, n, "").await;
    let rate = n as f64 / elapsed.as_secs_f64();

    println!(
        "rewarm send rate, {n} due deliveries, SMTP pool of {pool}, batches of {batch}, into {sink_name}"
    );
    println!(
        "  import {n} leads: {:.2} s   enrol: {:.2} s",
        import.as_secs_f64(),
        enrol.as_secs_f64()
    );
    println!(
        "  rewarm end to end (claim → render → send → record): {:>8.0} msg/s  ({:.2} s)",
        rate,
        elapsed.as_secs_f64()
    );
    if std::env::var("REWARM_BENCH_LIMITS").as_deref() != Ok("0") {
        let limits = format!(
            "[transport.limits]\ndaily_cap = {}\n[[transport.limits.domain]]\ndomains = [\"example.com\"]\ndaily_cap = {}\nper_second = 1000000\nburst = 1000000\nconcurrency = 1000000\n",
            n * 10,
            n * 10
        );
        let (_, _, capped) = send_pass(dir.path(), "capped", port, pool, batch, n, &limits).await;
        let capped_rate = n as f64 / capped.as_secs_f64();
        println!(
            "  same pass with durable daily caps (one reservation per batch of {batch}): {:>8.0} msg/s  ({:.2} s, {:+.1} % vs the pass above)",
            capped_rate,
            capped.as_secs_f64(),
            (capped_rate / rate - 1.0) * 100.0
        );
    }
    if let Some(source) = find("smtp-source").filter(|_| _fallback.is_none()) {
        for (sessions, size) in [(1, 1500), (8, 1500), (8, 5120)] {
            let raw = smtp_source_rate(&source, port, n, sessions, size);
            println!(
                "  raw smtp-source, {sessions} connection(s), {size} B messages:      {:>8.0} msg/s",
                raw
            );
        }
    }
}

/// Imports `n` leads into a fresh SQLite database `NAME.db` in `dir`, enrols them and times
/// one send pass of everything due; `limits` is appended to the configuration.
async fn send_pass(
    dir: &Path,
    name: &str,
    port: u16,
    pool: usize,
    batch: usize,
    n: usize,
    limits: &str,
) -> (
    std::time::Duration,
    std::time::Duration,
    std::time::Duration,
) {
    let url = format!("sqlite://{}", dir.join(format!("{name}.db")).display());
    let config = format!(
        r#"
database_url = "{url}"
templates_dir = "{templates}"
[log]
level = "warn"
[compliance]
postal_address = "Acme Inc., 1 Example Street, 75001 Paris, France"

[sender]
from = "Claire at Acme <claire@acme.example>"
[transport]
kind = "smtp"
[transport.smtp]
host = "127.0.0.1"
port = {port}
tls = "none"
pool_size = {pool}
[scheduler]
batch_size = {batch}
[[segments]]
name = "all"
campaign = "checkin"
[campaigns.checkin]
first_after = "90d"
every = "30d"
send_window = {{ days = "Mon-Sun", hours = "00:00-24:00" }}
{limits}
"#,
        templates = dir.join("templates").display()
    );
    let settings =
        rewarm::config::Settings::from_toml(&config, "bench.toml").expect("bench config");
    let loaded = Arc::new(Loaded::with_settings(settings).expect("templates"));
    let transport = build_transport(&loaded.settings).expect("transport");
    let store = SqliteStore::connect(&url).await.expect("sqlite");
    store.migrate().await.expect("migrate");

    let now = Utc::now();
    let leads: Vec<NewLead> = (0..n)
        .map(|i| NewLead {
            email: Some(EmailAddress::parse(&format!("lead{i}@example.com")).expect("valid")),
            first_name: Some(format!("Lead{i}")),
            company: Some(format!("Company {i}")),
            lost_reason: Some("went_quiet".into()),
            lost_at: Some(now - chrono::Duration::days(200)),
            ..Default::default()
        })
        .collect();
    let t = Instant::now();
    for chunk in leads.chunks(1000) {
        store
            .upsert_leads(chunk, "bench", now)
            .await
            .expect("import");
    }
    let import = t.elapsed();
    let t = Instant::now();
    let enrolled = rewarm::outbound::scheduler::enrol(&store, &loaded, now)
        .await
        .expect("enrol");
    let enrol = t.elapsed();
    assert_eq!(enrolled, n);

    let t = Instant::now();
    let report = rewarm::outbound::dispatch::send_due(
        &store,
        &loaded,
        &transport,
        now,
        &CancellationToken::new(),
    )
    .await
    .expect("dispatch");
    let elapsed = t.elapsed();
    assert_eq!(report.sent, n, "every delivery sent: {report:?}");
    let status = store
        .status(now - chrono::Duration::days(1), now)
        .await
        .expect("status");
    assert_eq!(status.sent_since as usize, n, "every send recorded");
    (import, enrol, elapsed)
}
