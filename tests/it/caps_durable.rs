//! Limits are durable and shared (issue 9, part 7): the daily cap and a domain's budget are
//! counted in the database, so a cap of N is N in any rolling 24 hours across one-shot runs
//! (each a fresh process) and across two processes sending from one database at once. The
//! release binary runs with fixed `--now` moments into the test SMTP server; SQLite and
//! PostgreSQL.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::support::bin::{command, dir_with_templates, rewarm, stdout_of};
use crate::support::config::TestConfig;
use crate::support::db::{TestDatabase, with_postgres};
use crate::support::smtp_server::TestSmtpServer;
use rewarm::store::SendCount;
use rewarm::store::postgres::PgStore;
use rewarm::store::prelude::*;
use rewarm::store::sqlite::SqliteStore;
use rewarm::transport::limits::{DomainLimit, LimitSettings, durable};

const T0: &str = "2026-03-02T10:00:00Z";

/// The two-process tests share two CPU cores: one at a time.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

fn at(minutes: i64) -> String {
    let t0 = chrono::DateTime::parse_from_rfc3339(T0).expect("T0");
    (t0 + chrono::TimeDelta::minutes(minutes)).to_rfc3339()
}

/// SMTP to the test server, every lead due at once and any time; `limits` is set on
/// `[transport.limits]` (TOML values).
fn write_config(
    dir: &Path,
    url: &str,
    server: &TestSmtpServer,
    limits: &[(&str, &str)],
) -> PathBuf {
    let mut config = TestConfig::new(url)
        .templates_dir(&dir.join("templates"))
        .campaign("checkin", "1d", "30d")
        .any_time("checkin")
        .smtp(server.port(), 2)
        .set("scheduler", "batch_size", "5");
    for (key, value) in limits {
        config = config.set("transport.limits", key, *value);
    }
    config.write(&dir.join("rewarm.toml"))
}

/// A CSV of leads lost long before `T0` (all due at once), one per address.
fn write_leads(dir: &Path, name: &str, addresses: &[String]) -> String {
    let mut csv = String::from("email,first_name,lost_reason,lost_at\n");
    for (i, a) in addresses.iter().enumerate() {
        csv.push_str(&format!("{a},Lead{i},went_quiet,2025-06-01\n"));
    }
    let path = dir.join(name);
    std::fs::write(&path, csv).expect("write leads");
    path.display().to_string()
}

fn run_once(dir: &Path, config: &Path, now: &str, import: Option<&str>) -> serde_json::Value {
    let mut cmd = command();
    cmd.current_dir(dir)
        .arg("--config")
        .arg(config)
        .args(["run", "--once", "--now", now])
        .env_remove("RUST_LOG");
    if let Some(csv) = import {
        cmd.args(["--import", csv]);
    }
    report_of(cmd.output().expect("run rewarm"), now)
}

fn report_of(output: std::process::Output, now: &str) -> serde_json::Value {
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "run --once --now {now}:\n{stdout}\n{stderr}"
    );
    let line = stdout
        .lines()
        .last()
        .unwrap_or_else(|| panic!("no report:\n{stderr}"));
    serde_json::from_str(line).unwrap_or_else(|e| panic!("report {line:?}: {e}"))
}

fn sent_deferred(r: &serde_json::Value) -> (u64, u64) {
    assert_eq!(
        (
            r["failed"].as_u64(),
            r["retried"].as_u64(),
            r["unknown"].as_u64()
        ),
        (Some(0), Some(0), Some(0)),
        "a capped delivery is deferred, never failed, retried or written off: {r}"
    );
    (
        r["sent"].as_u64().unwrap_or(99),
        r["deferred"].as_u64().unwrap_or(99),
    )
}

fn status_json(dir: &Path, config: &Path, now: &str) -> serde_json::Value {
    let config = config.to_str().expect("UTF-8");
    let out = rewarm(dir, &["--config", config, "status", "--json", "--now", now]);
    serde_json::from_str(&stdout_of(&out)).expect("status --json")
}

/// Messages received per recipient: every one must be 1.
fn per_recipient(server: &TestSmtpServer) -> HashMap<String, usize> {
    let mut counts = HashMap::new();
    for m in server.messages() {
        for r in m.rcpt_to {
            *counts.entry(r).or_default() += 1;
        }
    }
    counts
}

fn addresses(prefix: &str, domain: &str, n: usize) -> Vec<String> {
    (0..n).map(|i| format!("{prefix}{i}@{domain}")).collect()
}

/// daily_cap = 5: the first run sends 5 of 8; a second run 30 minutes later (a new process,
/// 2 more leads) sends none; 24 hours later the 5 waiting go, each once.
async fn daily_cap_holds_across_runs(url: &str) {
    let server = TestSmtpServer::start().await;
    let dir = dir_with_templates();
    let config = write_config(dir.path(), url, &server, &[("daily_cap", "5")]);
    let first = write_leads(dir.path(), "a.csv", &addresses("a", "example.org", 8));
    let second = write_leads(dir.path(), "b.csv", &addresses("b", "example.org", 2));
    let d = dir.path().to_path_buf();
    let (r1, r2, status, r3, r4) = tokio::task::spawn_blocking(move || {
        let r1 = run_once(&d, &config, &at(0), Some(&first));
        let r2 = run_once(&d, &config, &at(30), Some(&second));
        let status = status_json(&d, &config, &at(30));
        let r3 = run_once(&d, &config, &at(24 * 60 + 30), None);
        let r4 = run_once(&d, &config, &at(48 * 60), None);
        (r1, r2, status, r3, r4)
    })
    .await
    .expect("the runs");
    assert_eq!(sent_deferred(&r1), (5, 3), "{r1}");
    assert_eq!(
        sent_deferred(&r2),
        (0, 2),
        "the cap held across processes: {r2}"
    );
    assert_eq!(status["limits"]["transport"]["used"], 5, "{status}");
    assert_eq!(status["limits"]["transport"]["cap"], 5, "{status}");
    assert_eq!(sent_deferred(&r3), (5, 0), "a day later the rest: {r3}");
    assert_eq!(sent_deferred(&r4), (0, 0), "{r4}");
    let got = per_recipient(&server);
    assert_eq!(got.len(), 10, "every lead got its email: {got:?}");
    assert!(got.values().all(|n| *n == 1), "none twice: {got:?}");
}

/// A budget of 3 for gmail.test (and its alias googlemail.test): other domains go on; the
/// budget holds across runs and frees up 24 hours later.
async fn domain_budget_holds_across_runs(url: &str) {
    let server = TestSmtpServer::start().await;
    let dir = dir_with_templates();
    let budget = r#"[{ domains = ["gmail.test", "googlemail.test"], daily_cap = 3 }]"#;
    let config = write_config(dir.path(), url, &server, &[("domain", budget)]);
    let mut leads = addresses("g", "gmail.test", 3);
    leads.push("alias@googlemail.test".into());
    leads.extend(addresses("o", "other.test", 3));
    let first = write_leads(dir.path(), "a.csv", &leads);
    let second = write_leads(dir.path(), "b.csv", &addresses("late", "gmail.test", 1));
    let d = dir.path().to_path_buf();
    let (r1, r2, status, text, r3) = tokio::task::spawn_blocking(move || {
        let r1 = run_once(&d, &config, &at(0), Some(&first));
        let r2 = run_once(&d, &config, &at(30), Some(&second));
        let status = status_json(&d, &config, &at(30));
        let c = config.to_str().expect("UTF-8");
        let text = stdout_of(&rewarm(&d, &["--config", c, "status", "--now", &at(30)]));
        let r3 = run_once(&d, &config, &at(24 * 60 + 30), None);
        (r1, r2, status, text, r3)
    })
    .await
    .expect("the runs");
    assert_eq!(sent_deferred(&r1), (6, 1), "3 to gmail, 3 to other: {r1}");
    assert_eq!(
        sent_deferred(&r2),
        (0, 1),
        "the budget held across processes: {r2}"
    );
    let domains = status["limits"]["domains"].as_array().expect("domains");
    let gmail = domains
        .iter()
        .find(|d| d["key"] == "gmail.test")
        .expect("gmail");
    assert_eq!(
        (gmail["used"].as_i64(), gmail["cap"].as_u64()),
        (Some(3), Some(3)),
        "{status}"
    );
    let other = domains
        .iter()
        .find(|d| d["key"] == "other.test")
        .expect("other");
    assert_eq!(
        (other["used"].as_i64(), other["cap"].as_u64()),
        (Some(3), None),
        "{status}"
    );
    assert_eq!(status["limits"]["transport"]["used"], 6, "{status}");
    assert!(text.contains("transport: 6 sent"), "{text}");
    assert!(text.contains("gmail.test 3 of 3 (full)"), "{text}");
    assert_eq!(sent_deferred(&r3), (2, 0), "a day later the rest: {r3}");
    let got = per_recipient(&server);
    assert_eq!(got.len(), 8, "{got:?}");
    assert!(got.values().all(|n| *n == 1), "none twice: {got:?}");
}

/// Two processes claim and send from one database at the same moment (batches of 5): with
/// daily_cap = 40 they send exactly 40 together, and defer every other lead.
async fn two_processes_share_one_cap(url: &str) {
    let _serial = SERIAL.lock().await;
    let server = TestSmtpServer::start().await;
    let dir = dir_with_templates();
    let config = write_config(dir.path(), url, &server, &[("daily_cap", "40")]);
    // Only the shared cap may hold leads back here: the per-process pace (by default a burst
    // of 20 per domain) would defer a busy process's batches before they ask for a place.
    let toml = std::fs::read_to_string(&config).expect("config");
    std::fs::write(
        &config,
        format!("{toml}\n[transport.limits.default_domain]\nper_second = 1000\nburst = 1000\nconcurrency = 100\n"),
    )
    .expect("config");
    let leads = write_leads(dir.path(), "a.csv", &addresses("l", "example.org", 150));
    let d = dir.path().to_path_buf();
    let reports = tokio::task::spawn_blocking(move || {
        let c = config.to_str().expect("UTF-8");
        stdout_of(&rewarm(
            &d,
            &["--config", c, "leads", "import", &leads, "--now", &at(0)],
        ));
        let spawn = || -> std::process::Child {
            let mut cmd: Command = command();
            cmd.current_dir(&d)
                .args(["--config", c, "run", "--once", "--now", &at(0)])
                .env_remove("RUST_LOG")
                .stdout(Stdio::piped())
                .stderr(Stdio::piped());
            cmd.spawn().expect("start rewarm")
        };
        let (a, b) = (spawn(), spawn());
        [a, b].map(|child| {
            let output = child.wait_with_output().expect("wait");
            let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
            (report_of(output, &at(0)), stderr)
        })
    })
    .await
    .expect("the two processes");
    // What each process logged, for a failure's message.
    let logs = format!("\nfirst:\n{}\nsecond:\n{}", reports[0].1, reports[1].1);
    let reports = [&reports[0].0, &reports[1].0];
    let (s1, d1) = sent_deferred(reports[0]);
    let (s2, d2) = sent_deferred(reports[1]);
    assert_eq!(s1 + s2, 40, "exactly the cap, together: {reports:?}{logs}");
    assert_eq!(d1 + d2, 110, "{reports:?}{logs}");
    assert_eq!(server.count(), 40);
    assert!(per_recipient(&server).values().all(|n| *n == 1));
}

#[tokio::test]
async fn a_daily_cap_holds_across_one_shot_runs_on_sqlite() {
    let db = TestDatabase::sqlite();
    daily_cap_holds_across_runs(db.url()).await;
}

#[tokio::test]
async fn a_daily_cap_holds_across_one_shot_runs_on_postgres() {
    with_postgres("daily cap across runs", |url| async move {
        daily_cap_holds_across_runs(&url).await;
    })
    .await;
}

#[tokio::test]
async fn a_domain_budget_holds_across_one_shot_runs_on_sqlite() {
    let db = TestDatabase::sqlite();
    domain_budget_holds_across_runs(db.url()).await;
}

#[tokio::test]
async fn a_domain_budget_holds_across_one_shot_runs_on_postgres() {
    with_postgres("domain budget across runs", |url| async move {
        domain_budget_holds_across_runs(&url).await;
    })
    .await;
}

#[tokio::test]
async fn two_processes_on_one_sqlite_file_send_exactly_the_cap_together() {
    let db = TestDatabase::sqlite();
    two_processes_share_one_cap(db.url()).await;
}

#[tokio::test]
async fn two_processes_on_one_postgresql_send_exactly_the_cap_together() {
    with_postgres("two processes, one cap", |url| async move {
        two_processes_share_one_cap(&url).await;
    })
    .await;
}

// ── The counters themselves, on both databases ─────────────────────────────────────────

fn count(key: &str, minute: i64, width: i64, sent: i64) -> SendCount {
    SendCount {
        key: key.into(),
        minute,
        width,
        sent,
    }
}

/// Reserve, read the window, give back (never below 0), forget what left long ago.
async fn counters_reserve_give_back_and_read_the_window<S: Store>(store: S) {
    store.migrate().await.expect("migrate");
    let keys = |k: &[&str]| k.iter().map(|s| s.to_string()).collect::<Vec<String>>();
    let read = store
        .reserve_sends(1000, &keys(&["*"]), |used| {
            assert!(used.is_empty(), "{used:?}");
            vec![
                count("*", 1000, 1, 3),
                count("a.test", 960, 60, 2),
                count("*", 1000, 1, 1),
            ]
        })
        .await
        .expect("reserve");
    assert!(read.is_empty());
    let read = store
        .reserve_sends(1000, &keys(&["*", "a.test", "b.test"]), |_| {
            vec![count("*", 1001, 1, 1)]
        })
        .await
        .expect("reserve");
    assert_eq!(
        read,
        HashMap::from([("*".to_string(), 4), ("a.test".to_string(), 2)])
    );
    // At minute 1001 the bucket of minute 1000 has left; the hour bucket 960..1020 has not.
    let buckets: Vec<(String, i64, i64, i64)> = store
        .send_buckets(1001, &keys(&["*", "a.test"]))
        .await
        .expect("buckets")
        .into_iter()
        .map(|b| (b.key, b.minute, b.width, b.sent))
        .collect();
    assert_eq!(
        buckets,
        vec![("*".into(), 1001, 1, 1), ("a.test".into(), 960, 60, 2)]
    );
    store
        .release_sends(&[count("*", 1000, 1, 2), count("a.test", 960, 60, 5)])
        .await
        .expect("give back");
    let (totals, busiest) = store
        .send_totals(1000, &keys(&["*", "a.test"]), 10)
        .await
        .expect("totals");
    assert_eq!(
        totals,
        HashMap::from([("*".to_string(), 3), ("a.test".to_string(), 0)])
    );
    assert!(busiest.is_empty(), "{busiest:?}");
    // A reservation far later forgets the old buckets.
    store
        .reserve_sends(5000, &[], |_| vec![count("c.test", 5040, 60, 1)])
        .await
        .expect("reserve");
    let (totals, busiest) = store
        .send_totals(0, &keys(&["*"]), 10)
        .await
        .expect("totals");
    assert!(totals.is_empty(), "{totals:?}");
    assert_eq!(busiest, vec![("c.test".to_string(), 1)]);
}

/// 24 reservations at once on one store (as many connections as the pool gives), each
/// taking one place while fewer than 10 are taken: exactly 10 are.
async fn concurrent_reservations_never_pass_the_cap<S: Store>(store: S) {
    store.migrate().await.expect("migrate");
    let tasks: Vec<_> = (0..24)
        .map(|_| {
            let store = store.clone();
            tokio::spawn(async move {
                let used = store
                    .reserve_sends(100, &["*".to_string()], |used| {
                        if used.get("*").copied().unwrap_or(0) < 10 {
                            vec![count("*", 100, 1, 1)]
                        } else {
                            Vec::new()
                        }
                    })
                    .await
                    .expect("reserve");
                used.get("*").copied().unwrap_or(0) < 10
            })
        })
        .collect();
    let mut took = 0;
    for t in tasks {
        took += usize::from(t.await.expect("task"));
    }
    assert_eq!(took, 10);
    let (totals, _) = store
        .send_totals(100, &["*".to_string()], 0)
        .await
        .expect("totals");
    assert_eq!(totals.get("*"), Some(&10));
}

#[tokio::test]
async fn the_send_counters_reserve_give_back_and_forget_on_sqlite() {
    let db = TestDatabase::sqlite();
    let store = SqliteStore::connect(db.url()).await.expect("sqlite");
    counters_reserve_give_back_and_read_the_window(store.clone()).await;
    let db = TestDatabase::sqlite();
    let store = SqliteStore::connect(db.url()).await.expect("sqlite");
    concurrent_reservations_never_pass_the_cap(store).await;
}

#[tokio::test]
async fn the_send_counters_reserve_give_back_and_forget_on_postgres() {
    with_postgres("send counters", |url| async move {
        let store = PgStore::connect(&url).await.expect("postgres");
        counters_reserve_give_back_and_read_the_window(store.clone()).await;
        store.close().await;
    })
    .await;
    with_postgres("concurrent reservations", |url| async move {
        let store = PgStore::connect(&url).await.expect("postgres");
        concurrent_reservations_never_pass_the_cap(store.clone()).await;
        store.close().await;
    })
    .await;
}

/// `/metrics` lines read from the counters: the transport and each budgeted domain, with caps.
#[tokio::test]
async fn metrics_show_each_caps_use_from_the_database() {
    let db = TestDatabase::sqlite();
    let store = SqliteStore::connect(db.url()).await.expect("sqlite");
    store.migrate().await.expect("migrate");
    let now = chrono::DateTime::parse_from_rfc3339(T0)
        .expect("T0")
        .to_utc();
    let minute = now.timestamp() / 60;
    store
        .reserve_sends(0, &[], |_| {
            vec![
                count("*", minute - 5, 1, 7),
                count("gmail.com", minute - 5, 1, 4),
            ]
        })
        .await
        .expect("reserve");
    let mut settings = LimitSettings {
        daily_cap: Some(100),
        ..LimitSettings::default()
    };
    settings.domains.insert(
        "gmail.com".into(),
        DomainLimit {
            daily_cap: Some(5),
            ..DomainLimit::default()
        },
    );
    let text = durable::render_metrics(&store, Some(&settings), now)
        .await
        .expect("metrics");
    for line in [
        "rewarm_daily_cap_used{limit=\"transport\"} 7",
        "rewarm_daily_cap_used{limit=\"domain\",domain=\"gmail.com\"} 4",
        "rewarm_daily_cap{limit=\"transport\"} 100",
        "rewarm_daily_cap{limit=\"domain\",domain=\"gmail.com\"} 5",
    ] {
        assert!(text.lines().any(|l| l == line), "{line} in:\n{text}");
    }
    // A day and a minute later they have left the window.
    let later = now + chrono::TimeDelta::hours(24) + chrono::TimeDelta::minutes(1);
    let text = durable::render_metrics(&store, Some(&settings), later)
        .await
        .expect("metrics");
    assert!(
        text.contains("rewarm_daily_cap_used{limit=\"transport\"} 0"),
        "{text}"
    );
    assert!(
        durable::render_metrics(&store, None, now)
            .await
            .expect("none")
            .is_empty()
    );
}
