//! What the fault suite (`faults_*` modules) shares: a deployment of the built binary (one
//! SQLite file or PostgreSQL database, the test SMTP server, `n` leads all due at once, one
//! step each), daemons started and killed as an operator would, and the final tally read
//! from the database and the server: sent, duplicates, write-offs and lost.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use rewarm::domain::email::EmailAddress;
use rewarm::domain::lead::NewLead;
use rewarm::store::postgres::PgStore;
use rewarm::store::sqlite::SqliteStore;
use rewarm::store::{Rows, Store, Table};

use super::bin::{self, repo};
use super::config::TestConfig;
use super::daemon::Daemon;
use super::smtp_server::TestSmtpServer;

/// The fault tests start real daemons on a 2-core machine: one test at a time.
pub static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// The moment every fault test starts at (leads were lost long before).
pub const T0: &str = "2026-03-02T10:00:00Z";

pub fn t0() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(T0)
        .expect("T0")
        .with_timezone(&Utc)
}

/// `T0` plus `hours`, as `--now` takes it: each restart starts later than the leases of the
/// run before, so what they held can expire.
pub fn now_after(hours: i64) -> String {
    (t0() + chrono::Duration::hours(hours)).to_rfc3339()
}

pub fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind :0");
    listener.local_addr().expect("address").port()
}

/// The address of lead `i`.
pub fn address(i: usize) -> String {
    format!("lead{i:05}@example.com")
}

/// A configuration sending through `smtp_port` with `pool` connections: one step per lead,
/// due at once, any time; a fixed worker id (a restarted daemon releases its claims never
/// started at once); short leases and ticks.
pub fn config(database_url: &str, smtp_port: u16, pool: usize, http_port: u16) -> TestConfig {
    TestConfig::bare(database_url)
        .timezone("Europe/Paris")
        .templates_dir(&repo().join("templates"))
        .log(Some("text"), "info")
        .smtp(smtp_port, pool)
        .set_str("transport.smtp", "timeout", "30s")
        .set_str("scheduler", "tick", "1s")
        .set("scheduler", "batch_size", "100")
        .set_str("scheduler", "lease", "3s")
        .set_str("scheduler", "worker_id", "faulty")
        .set_str("http", "listen", &format!("127.0.0.1:{http_port}"))
        .segment("everyone", "checkin")
        .campaign("checkin", "90d", "30d")
        .campaign_key("checkin", "max_touches", "1")
        .any_time("checkin")
}

/// Imports `n` leads (lost 200 days before `T0`) and enrols them at `T0`: all due at once.
pub async fn seed(database_url: &str, config: &Path, n: usize) {
    if database_url.starts_with("sqlite:") {
        let store = SqliteStore::connect(database_url).await.expect("open");
        seed_into(&store, config, n).await;
        store.close().await;
    } else {
        let store = PgStore::connect(database_url).await.expect("connect");
        seed_into(&store, config, n).await;
        store.close().await;
    }
}

async fn seed_into<S: Store>(store: &S, config: &Path, n: usize) {
    store.migrate().await.expect("migrate");
    let lost = t0() - chrono::Duration::days(200);
    let leads: Vec<NewLead> = (0..n)
        .map(|i| NewLead {
            email: Some(EmailAddress::parse(&address(i)).expect("valid email")),
            first_name: Some(format!("Lead{i}")),
            company: Some("Example Corp".into()),
            lost_reason: Some("went_quiet".into()),
            lost_at: Some(lost),
            ..Default::default()
        })
        .collect();
    for chunk in leads.chunks(1000) {
        store
            .upsert_leads(chunk, "faults", t0())
            .await
            .expect("import");
    }
    let loaded = rewarm::app::Loaded::load(config).expect("load the config");
    let enrolled = rewarm::outbound::scheduler::enrol(store, &loaded, t0())
        .await
        .expect("enrol");
    assert_eq!(enrolled, n);
}

/// `rewarm run --now NOW` with `config`, its log `NAME.log` in `dir`.
pub fn start_daemon(config: &Path, name: &str, now: &str, dir: &Path) -> Daemon {
    let mut command = bin::command();
    command
        .args([
            "--config",
            &config.display().to_string(),
            "run",
            "--now",
            now,
        ])
        .env_remove("RUST_LOG");
    Daemon::spawn(command, dir.join(format!("{name}.log")))
}

/// What became of every lead's one step.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Tally {
    pub leads: usize,
    /// Recorded `sent`.
    pub sent: usize,
    /// Messages the server received more than once for one lead (must be 0).
    pub duplicates: usize,
    /// Recorded `unknown` (written off).
    pub written_off: usize,
    /// Of those, how many had really reached the server.
    pub written_off_arrived: usize,
    /// Neither sent nor listed unknown, or recorded sent but never arrived (must be 0).
    pub lost: usize,
    /// Still waiting (scheduled, claimed, retry_wait).
    pub pending: usize,
    /// Recorded failed.
    pub failed: usize,
}

impl Tally {
    pub fn line(&self) -> String {
        format!(
            "leads {}, sent {}, duplicates {}, write-offs {} ({} had reached the server), lost {}, pending {}, failed {}",
            self.leads,
            self.sent,
            self.duplicates,
            self.written_off,
            self.written_off_arrived,
            self.lost,
            self.pending,
            self.failed
        )
    }
}

/// Every lead's delivery state, by address (one step per lead).
pub async fn states(database_url: &str) -> HashMap<String, String> {
    if database_url.starts_with("sqlite:") {
        let store = SqliteStore::connect(database_url).await.expect("open");
        let out = states_in(&store).await;
        store.close().await;
        out
    } else {
        let store = PgStore::connect(database_url).await.expect("connect");
        let out = states_in(&store).await;
        store.close().await;
        out
    }
}

async fn states_in<S: Store>(store: &S) -> HashMap<String, String> {
    let Rows::Leads(leads) = store
        .export_rows(Table::Leads, 0, 10_000_000)
        .await
        .expect("leads")
    else {
        panic!("asked for leads");
    };
    let emails: HashMap<i64, String> = leads.into_iter().map(|l| (l.id, l.email)).collect();
    let Rows::Deliveries(rows) = store
        .export_rows(Table::Deliveries, 0, 10_000_000)
        .await
        .expect("deliveries")
    else {
        panic!("asked for deliveries");
    };
    rows.into_iter()
        .map(|d| (emails[&d.lead_id].clone(), d.state))
        .collect()
}

/// The tally of `n` leads from the database's states and the server's arrivals.
pub async fn tally(database_url: &str, server: &TestSmtpServer, n: usize) -> Tally {
    let states = states(database_url).await;
    let mut arrivals: HashMap<String, usize> = HashMap::new();
    for m in server.messages() {
        for to in m.rcpt_to {
            *arrivals.entry(to.to_ascii_lowercase()).or_default() += 1;
        }
    }
    let mut t = Tally {
        leads: n,
        duplicates: arrivals.values().map(|c| c.saturating_sub(1)).sum(),
        ..Tally::default()
    };
    for i in 0..n {
        let a = address(i);
        let arrived = arrivals.get(&a).copied().unwrap_or(0) > 0;
        match states.get(&a).map(String::as_str) {
            Some("sent") if arrived => t.sent += 1,
            Some("unknown") => {
                t.written_off += 1;
                t.written_off_arrived += usize::from(arrived);
            }
            Some("scheduled" | "claimed" | "retry_wait") => t.pending += 1,
            Some("failed") => t.failed += 1,
            _ => t.lost += 1,
        }
    }
    t
}

/// Waits until nothing of the `n` leads is pending any more (or `timeout`); the last tally.
pub async fn wait_until_done(
    database_url: &str,
    server: &TestSmtpServer,
    n: usize,
    timeout: Duration,
    daemon: &mut Daemon,
) -> Tally {
    let deadline = Instant::now() + timeout;
    loop {
        daemon.assert_alive();
        let t = tally(database_url, server, n).await;
        if t.pending == 0 || Instant::now() >= deadline {
            return t;
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

/// `GET /readyz` on `port` (plain HTTP/1.1 over a socket): (status, body), None if nothing
/// answers.
pub async fn readyz(port: u16) -> Option<(u16, String)> {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let mut s = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .ok()?;
    s.write_all(b"GET /readyz HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        .await
        .ok()?;
    let mut raw = Vec::new();
    tokio::time::timeout(Duration::from_secs(5), s.read_to_end(&mut raw))
        .await
        .ok()?
        .ok()?;
    let text = String::from_utf8_lossy(&raw);
    let status = text.split_whitespace().nth(1)?.parse().ok()?;
    let body = text.split_once("\r\n\r\n").map(|(_, b)| b.to_string())?;
    Some((status, body))
}

/// Writes `config` as `DIR/rewarm.toml`.
pub fn write(config: &TestConfig, dir: &Path) -> PathBuf {
    config.write(&dir.join("rewarm.toml"))
}
