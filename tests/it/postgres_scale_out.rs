//! Several daemons, one PostgreSQL: real processes of the built binary share the due work
//! through `FOR UPDATE SKIP LOCKED` leases and a capturing SMTP server counts what arrives.
//!
//! - scale-out: three daemons, 20,000 due deliveries — each arrives exactly once, and all
//!   three daemons do a share of the work; SIGTERM stops them cleanly.
//! - failover: one daemon is killed (-9) mid-run; the others take over after its lease, and
//!   the tally is exact: sent + unknown = total, nothing sent twice.
//! - db copy: a SQLite deployment copied to PostgreSQL answers `status`, `forecast` and
//!   `leads show` exactly as before, and holds the same inbound mail (raw bytes included),
//!   notification outbox and kv values (the IMAP position): nothing is read or told twice.
//!
//! Needs `REWARM_TEST_POSTGRES_URL` (e.g. postgres://postgres@127.0.0.1:5432/test); without
//! it every test prints a loud SKIPPED line and passes (and fails under `CI=true`).

use crate::support::bin::{self, copy_dir, repo};
use crate::support::config::TestConfig;
use crate::support::daemon::Daemon;
use crate::support::db::with_postgres;

use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};
use std::process::{Child, Output, Stdio};
use std::time::{Duration, Instant};

use crate::support::smtp_server::{CapturedMessage, TestSmtpServer};
use chrono::{DateTime, Utc};
use rewarm::domain::email::EmailAddress;
use rewarm::domain::lead::NewLead;
use rewarm::secret::Secret;
use rewarm::store::postgres::PgStore;
use rewarm::store::prelude::*;
use rewarm::store::sqlite::SqliteStore;
use rewarm::store::{InboundEffect, InboundRecord, NewNotification, Rows, Store, Table};
use rewarm::tokens::{TokenKeys, TokenKind};

/// The daemon tests share two CPU cores: they run one at a time.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

// ── Fixtures ────────────────────────────────────────────────────────────────────────────

/// Runs `body` with a fresh database (one test at a time), dropping it even if `body` panics.
async fn with_database<F, Fut>(test: &str, body: F)
where
    F: FnOnce(String) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let _serial = SERIAL.lock().await;
    with_postgres(test, body).await;
}

/// A daemon config sending through the test SMTP server: every lead is due at once, any
/// time of day, and has a second step a month later.
fn write_config(dir: &Path, database_url: &str, smtp_port: u16) -> PathBuf {
    TestConfig::bare(database_url)
        .timezone("Europe/Paris")
        .templates_dir(&repo().join("templates"))
        .log(Some("text"), "info")
        .set_str("sender", "from", "Claire at Acme <claire@acme.example>")
        .smtp(smtp_port, 4)
        .set_str("transport.smtp", "timeout", "10s")
        .set_str("scheduler", "tick", "1s")
        .set("scheduler", "batch_size", "250")
        .set_str("scheduler", "lease", "5s")
        // Several daemons on one machine: each its own HTTP port.
        .set_str("http", "listen", "127.0.0.1:0")
        .segment("everyone", "checkin")
        .campaign("checkin", "90d", "30d")
        .campaign_key("checkin", "max_touches", "2")
        .any_time("checkin")
        .write(&dir.join("rewarm.toml"))
}

/// `n` leads lost long before `now`, imported in chunks and enrolled at `now` (all due then).
async fn import_and_enrol(store: &PgStore, config: &Path, n: usize, now: DateTime<Utc>) {
    let lost = now - chrono::Duration::days(200);
    let leads: Vec<NewLead> = (0..n)
        .map(|i| NewLead {
            email: Some(
                EmailAddress::parse(&format!("lead{i:05}@example.com")).expect("valid email"),
            ),
            first_name: Some(format!("Lead{i}")),
            company: Some("Example Corp".into()),
            lost_reason: Some("went_quiet".into()),
            lost_at: Some(lost),
            ..Default::default()
        })
        .collect();
    for chunk in leads.chunks(1000) {
        store
            .upsert_leads(chunk, "scale-out", now)
            .await
            .expect("import");
    }
    let loaded = rewarm::app::Loaded::load(config).expect("load the config");
    let enrolled = rewarm::outbound::scheduler::enrol(store, &loaded, now)
        .await
        .expect("enrol");
    assert_eq!(enrolled, n);
}

/// One `rewarm run` daemon named `name` (its worker id and log file `name.log` in `dir`).
fn start_daemon(
    config: &Path,
    database_url: &str,
    name: &str,
    now: Option<&str>,
    dir: &Path,
) -> Daemon {
    let mut command = bin::command();
    command
        .args(["--config", &config.display().to_string(), "run"])
        .env("REWARM__DATABASE_URL", database_url)
        .env("REWARM__SCHEDULER__WORKER_ID", name);
    if let Some(now) = now {
        command.args(["--now", now]);
    }
    Daemon::spawn(command, dir.join(format!("{name}.log")))
}

/// A daemon logs ERROR only when data is lost or an operator must act: none may appear here.
fn assert_no_errors(daemons: &[Daemon]) {
    for d in daemons {
        let text = d.log();
        let errors: Vec<&str> = text.lines().filter(|l| l.contains(" ERROR ")).collect();
        assert!(
            errors.is_empty(),
            "{} logged errors:\n{}",
            d.name,
            errors.join("\n")
        );
    }
}

fn logs(daemons: &[Daemon]) -> String {
    daemons
        .iter()
        .map(|d| format!("--- {} (pid {}) ---\n{}", d.name, d.pid(), d.log_tail()))
        .collect::<Vec<_>>()
        .join("\n")
}

/// The Message-ID header's value, without angle brackets.
fn message_id(m: &CapturedMessage) -> String {
    let text = String::from_utf8_lossy(&m.data);
    let header_end = text.find("\r\n\r\n").unwrap_or(text.len());
    text[..header_end]
        .split("\r\n")
        .find_map(|line| {
            let (name, value) = line.split_once(':')?;
            name.eq_ignore_ascii_case("message-id")
                .then(|| value.trim().trim_matches(['<', '>']).to_string())
        })
        .unwrap_or_else(|| panic!("a message without a Message-ID:\n{}", &text[..header_end]))
}

/// The keys the daemons signed with: without `[tokens]` in the config, the first daemon
/// generated one and stored it in the database (`token_key_db1`).
async fn signing_keys(store: &PgStore) -> TokenKeys {
    let secret = store
        .secret("token_key_db1", || {
            panic!("the daemons stored no token key")
        })
        .await
        .expect("the token key");
    TokenKeys::new(vec![("db1".into(), Secret::new(secret))]).expect("keys")
}

/// The delivery a Message-ID was made for: the Message-ID is a signed reply token
/// `TOKEN@domain`, opaque without the key.
fn delivery_of(keys: &TokenKeys, message_id: &str) -> i64 {
    let token = message_id.split('@').next().unwrap_or_default();
    keys.verify_kind(token, TokenKind::Reply)
        .map(|claims| claims.delivery_id)
        .unwrap_or_else(|| panic!("unexpected Message-ID {message_id}"))
}

/// Step-0 deliveries per (state, worker).
async fn tally(store: &PgStore) -> BTreeMap<(String, String), i64> {
    let rows: Vec<(String, Option<String>, i64)> =
        sqlx::query_as("SELECT state, claimed_by, count(*) FROM deliveries WHERE step = 0 GROUP BY state, claimed_by")
            .fetch_all(store.pool())
            .await
            .expect("tally");
    rows.into_iter()
        .map(|(state, worker, n)| ((state, worker.unwrap_or_default()), n))
        .collect()
}

async fn unfinished(store: &PgStore) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM deliveries WHERE step = 0 AND state IN ('scheduled', 'claimed', 'retry_wait')")
        .fetch_one(store.pool())
        .await
        .expect("count unfinished")
}

async fn wait_until_finished(store: &PgStore, timeout: Duration, daemons: &[Daemon]) {
    let deadline = Instant::now() + timeout;
    loop {
        let left = unfinished(store).await;
        if left == 0 {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{left} deliveries still unfinished after {timeout:?}\n{}",
            logs(daemons)
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn stop_all(daemons: &mut [Daemon]) {
    for d in daemons.iter() {
        d.sigterm();
    }
    for d in daemons.iter_mut() {
        let status = d.wait_exit(Duration::from_secs(30)).await;
        let log = d.log_tail();
        let status = status
            .unwrap_or_else(|| panic!("{} did not stop within 30 s of SIGTERM\n{log}", d.name));
        assert!(
            status.success(),
            "{} exited with {status} after SIGTERM\n{log}",
            d.name
        );
    }
}

// ── Scale-out ───────────────────────────────────────────────────────────────────────────

const SCALE_OUT: usize = 20_000;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_daemons_send_every_due_delivery_exactly_once() {
    with_database("three_daemons_send_every_due_delivery_exactly_once", |url| async move {
        let server = TestSmtpServer::start().await;
        let dir = tempfile::tempdir().expect("temp dir");
        let config = write_config(dir.path(), &url, server.port());

        // Three daemons starting at once each migrate first: the migrator's lock makes that safe.
        let migrations: Vec<Child> = (0..3)
            .map(|_| {
                bin::command()
                    .args(["--config", &config.display().to_string(), "migrate"])
                    .stdout(Stdio::null())
                    .stderr(Stdio::piped())
                    .spawn()
                    .expect("start rewarm migrate")
            })
            .collect();
        for child in migrations {
            let out = child.wait_with_output().expect("rewarm migrate");
            assert!(out.status.success(), "concurrent migrate: {}", String::from_utf8_lossy(&out.stderr));
        }

        let now = "2026-03-03T09:00:00Z";
        let store = PgStore::connect(&url).await.expect("connect");
        let started = Instant::now();
        import_and_enrol(&store, &config, SCALE_OUT, rewarm::cli::parse_now(now).expect("time")).await;
        let imported = started.elapsed();

        let started = Instant::now();
        let mut daemons: Vec<Daemon> = (0..3).map(|i| start_daemon(&config, &url, &format!("daemon-{i}"), Some(now), dir.path())).collect();
        let arrived = server.wait_for_count(SCALE_OUT, Duration::from_secs(180)).await;
        assert!(arrived, "only {} of {SCALE_OUT} messages arrived\n{}", server.count(), logs(&daemons));
        wait_until_finished(&store, Duration::from_secs(30), &daemons).await;
        let sent_in = started.elapsed();
        // Two more ticks: nothing else may arrive.
        tokio::time::sleep(Duration::from_millis(2500)).await;
        stop_all(&mut daemons).await;
        assert_no_errors(&daemons);

        let messages = server.messages();
        assert_eq!(messages.len(), SCALE_OUT, "messages received");
        let ids: Vec<String> = messages.iter().map(message_id).collect();
        let unique_ids: HashSet<&String> = ids.iter().collect();
        assert_eq!(unique_ids.len(), SCALE_OUT, "unique Message-IDs");
        let keys = signing_keys(&store).await;
        let deliveries: HashSet<i64> = ids.iter().map(|id| delivery_of(&keys, id)).collect();
        assert_eq!(deliveries.len(), SCALE_OUT, "no delivery sent twice");
        let recipients: HashSet<&String> = messages.iter().flat_map(|m| &m.rcpt_to).collect();
        assert_eq!(recipients.len(), SCALE_OUT, "every lead got its email, once");

        // The database agrees: every step-0 row sent, with the Message-ID that arrived.
        let recorded: Vec<String> =
            sqlx::query_scalar("SELECT message_id FROM deliveries WHERE step = 0 AND state = 'sent'").fetch_all(store.pool()).await.expect("sent rows");
        assert_eq!(recorded.len(), SCALE_OUT);
        assert_eq!(recorded.iter().collect::<HashSet<_>>(), unique_ids, "recorded Message-IDs are the ones that arrived");

        let per_worker: BTreeMap<String, i64> = tally(&store).await.into_iter().map(|((_, worker), n)| (worker, n)).collect();
        eprintln!(
            "scale-out: imported and enrolled {SCALE_OUT} in {imported:.1?}; sent by three daemons in {sent_in:.1?} ({:.0}/s); per daemon: {per_worker:?}",
            SCALE_OUT as f64 / sent_in.as_secs_f64()
        );
        assert_eq!(per_worker.len(), 3, "{per_worker:?}");
        for (worker, n) in &per_worker {
            assert!(*n >= (SCALE_OUT / 20) as i64, "{worker} did only {n} of {SCALE_OUT}: {per_worker:?}");
        }
        store.close().await;
    })
    .await;
}

// ── Failover ────────────────────────────────────────────────────────────────────────────

const FAILOVER: usize = 6_000;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_daemons_leased_work_becomes_unknown_and_the_others_finish() {
    with_database("a_killed_daemons_leased_work_becomes_unknown_and_the_others_finish", |url| async move {
        let server = TestSmtpServer::start().await;
        let dir = tempfile::tempdir().expect("temp dir");
        let config = write_config(dir.path(), &url, server.port());
        let store = PgStore::connect(&url).await.expect("connect");
        store.migrate().await.expect("migrate");
        // A running clock this time (leases must be able to expire), from a fixed start: each
        // daemon's `--now` clock starts there and runs on; none reads the wall clock.
        const START: &str = "2026-03-02T10:00:00Z";
        let start = DateTime::parse_from_rfc3339(START).expect("a fixed time").with_timezone(&Utc);
        import_and_enrol(&store, &config, FAILOVER, start).await;

        let mut daemons: Vec<Daemon> = (0..3).map(|i| start_daemon(&config, &url, &format!("daemon-{i}"), Some(START), dir.path())).collect();
        // Kill daemon-0 mid-run, while it holds leases.
        let deadline = Instant::now() + Duration::from_secs(120);
        let held_at_kill = loop {
            let held: i64 = sqlx::query_scalar("SELECT count(*) FROM deliveries WHERE state = 'claimed' AND claimed_by = 'daemon-0'")
                .fetch_one(store.pool())
                .await
                .expect("count leases");
            if server.count() >= FAILOVER / 4 && held > 0 {
                daemons[0].child.kill().expect("kill -9 daemon-0");
                break held;
            }
            assert!(Instant::now() < deadline, "daemon-0 never held a lease after {} messages\n{}", server.count(), logs(&daemons));
            tokio::time::sleep(Duration::from_millis(5)).await;
        };
        let killed_at = Instant::now();
        let status = daemons[0].wait_exit(Duration::from_secs(10)).await.expect("daemon-0 is gone");
        assert!(!status.success(), "daemon-0 was killed");
        let arrived_at_kill = server.count();

        wait_until_finished(&store, Duration::from_secs(90), &daemons).await;
        let recovered_in = killed_at.elapsed();
        tokio::time::sleep(Duration::from_millis(2500)).await;
        stop_all(&mut daemons[1..]).await;
        assert_no_errors(&daemons[1..]);

        let tally = tally(&store).await;
        let count = |state: &str| tally.iter().filter(|((s, _), _)| s == state).map(|(_, n)| n).sum::<i64>();
        let (sent, unknown) = (count("sent"), count("unknown"));
        assert_eq!(sent + unknown, FAILOVER as i64, "nothing lost: {tally:?}");
        for ((state, worker), n) in &tally {
            assert!(state != "unknown" || worker == "daemon-0", "{n} unknown deliveries of the surviving {worker}: {tally:?}");
        }

        let messages = server.messages();
        let ids: Vec<String> = messages.iter().map(message_id).collect();
        assert_eq!(ids.iter().collect::<HashSet<_>>().len(), ids.len(), "no Message-ID twice");
        let keys = signing_keys(&store).await;
        let delivered: HashSet<i64> = ids.iter().map(|id| delivery_of(&keys, id)).collect();
        assert_eq!(delivered.len(), ids.len(), "no delivery sent twice");
        let recorded: HashSet<String> = sqlx::query_scalar("SELECT message_id FROM deliveries WHERE step = 0 AND state = 'sent'")
            .fetch_all(store.pool())
            .await
            .expect("sent rows")
            .into_iter()
            .collect();
        assert!(recorded.iter().all(|id| ids.contains(id)), "every delivery recorded as sent arrived");
        // The unknown ones: some left daemon-0 before it died (sent, never recorded), the rest
        // were leased but never sent. Neither kind is sent again.
        let unknown_ids: HashSet<i64> = sqlx::query_scalar("SELECT id FROM deliveries WHERE step = 0 AND state = 'unknown'")
            .fetch_all(store.pool())
            .await
            .expect("unknown rows")
            .into_iter()
            .collect();
        let unknown_arrived = unknown_ids.iter().filter(|id| delivered.contains(id)).count();
        assert_eq!(messages.len(), sent as usize + unknown_arrived, "arrived = sent + unknown that had left");
        let unknown_events: i64 = sqlx::query_scalar("SELECT count(*) FROM events WHERE kind IN ('delivery_unknown', 'written_off')")
            .fetch_one(store.pool())
            .await
            .expect("events");
        assert_eq!(unknown_events, unknown, "each unknown delivery is on its lead's timeline");
        eprintln!(
            "failover: {FAILOVER} due; daemon-0 killed (-9) holding {held_at_kill} leases after {arrived_at_kill} messages had arrived; \
             finished {recovered_in:.1?} later; sent {sent}, unknown {unknown} ({unknown_arrived} of them had reached the server, \
             {} never left); per (state, worker): {tally:?}",
            unknown as usize - unknown_arrived
        );
        store.close().await;
    })
    .await;
}

// ── db copy ─────────────────────────────────────────────────────────────────────────────

fn rewarm(dir: &Path, database_url: &str, args: &[&str]) -> Output {
    bin::command()
        .current_dir(dir)
        .args(["--config", "rewarm.toml"])
        .args(args)
        .env("REWARM__DATABASE_URL", database_url)
        .output()
        .expect("run rewarm")
}

fn stdout_of(dir: &Path, database_url: &str, args: &[&str]) -> String {
    let out = rewarm(dir, database_url, args);
    assert!(
        out.status.success(),
        "rewarm {args:?} on {database_url}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn db_copy_from_sqlite_gives_the_same_status_forecast_and_timelines() {
    with_database(
        "db_copy_from_sqlite_gives_the_same_status_forecast_and_timelines",
        |pg_url| async move {
            // The bundled example's campaigns, sending into files.
            let dir = tempfile::tempdir().expect("temp dir");
            let example = std::fs::read_to_string(repo().join("config/example.toml"))
                .expect("example config");
            std::fs::write(dir.path().join("rewarm.toml"), example).expect("write config");
            std::fs::create_dir_all(dir.path().join("templates")).expect("templates dir");
            copy_dir(&repo().join("templates"), &dir.path().join("templates"));
            let sqlite_url = format!("sqlite://{}", dir.path().join("rewarm.db").display());

            // A deployment with some history: two imports, passes over several months.
            let leads_csv = repo().join("examples/leads.csv").display().to_string();
            let crm_csv = repo()
                .join("tests/fixtures/leads/crm_export.csv")
                .display()
                .to_string();
            stdout_of(
                dir.path(),
                &sqlite_url,
                &[
                    "run",
                    "--once",
                    "--import",
                    &leads_csv,
                    "--import",
                    &crm_csv,
                    "--now",
                    "2026-09-01T09:00:00Z",
                ],
            );
            for now in [
                "2026-10-01T09:00:00Z",
                "2026-11-03T15:30:00Z",
                "2026-12-01T07:00:00Z",
                "2027-01-04T10:00:00Z",
            ] {
                stdout_of(dir.path(), &sqlite_url, &["run", "--once", "--now", now]);
            }
            let inbound = add_inbound_side(&sqlite_url).await;

            let out = rewarm(
                dir.path(),
                &sqlite_url,
                &["db", "copy", "--from", &sqlite_url, "--to", &pg_url],
            );
            let printed = String::from_utf8_lossy(&out.stdout);
            assert!(
                out.status.success(),
                "db copy: {}{}",
                printed,
                String::from_utf8_lossy(&out.stderr)
            );
            assert!(
                printed.contains("every table's row count matches"),
                "{printed}"
            );
            // A second copy into the now non-empty database is refused.
            let again = rewarm(
                dir.path(),
                &sqlite_url,
                &["db", "copy", "--from", &sqlite_url, "--to", &pg_url],
            );
            assert!(!again.status.success());
            let refused = String::from_utf8_lossy(&again.stderr);
            assert!(refused.contains("not empty"), "{refused}");
            // kv_state: the three written below, the stale hand-off chase's last run, the
            // webhook relay's cursor (notify::relay) and the rules unmatched leads were judged
            // by (`enrol.rules_fingerprint`).
            for held in ["2 inbound", "3 notifications", "6 kv_state"] {
                assert!(refused.contains(held), "{held}: {refused}");
            }

            // The copy left the planner its statistics (ANALYZE): a daemon started at once
            // plans its claims on them, not on an empty table's guess.
            // (pg_stats is written by ANALYZE in its own transaction: empty before.)
            let raw = sqlx::PgPool::connect(&pg_url).await.expect("open PostgreSQL");
            let analyzed: Vec<String> = sqlx::query_scalar(
                "SELECT DISTINCT tablename::text FROM pg_stats
                 WHERE schemaname = 'public' AND tablename IN ('leads', 'deliveries', 'enrolments', 'events')
                 ORDER BY 1",
            )
            .fetch_all(&raw)
            .await
            .expect("pg_stats");
            raw.close().await;
            assert_eq!(
                analyzed,
                ["deliveries", "enrolments", "events", "leads"],
                "tables without planner statistics after db copy"
            );

            // The inbound side arrived identical: every row, column and id.
            let pg = PgStore::connect(&pg_url).await.expect("open PostgreSQL");
            let sqlite = SqliteStore::connect(&sqlite_url)
                .await
                .expect("open SQLite");
            assert_eq!(inbound_tables(&sqlite).await, inbound_tables(&pg).await);
            let messages = pg.inbound_messages(0, 100).await.expect("inbound");
            assert_eq!(
                messages,
                sqlite.inbound_messages(0, 100).await.expect("inbound")
            );
            assert_eq!(
                messages
                    .iter()
                    .map(|m| (m.record.lead_id, m.record.raw.as_slice()))
                    .collect::<Vec<_>>(),
                [(Some(inbound.lead_id), REPLY_RAW), (None, UNMATCHED_RAW)]
            );
            assert_eq!(messages[0].effects["effect"], "rewarm");
            let outbox = pg.notifications(0, 100).await.expect("outbox");
            assert_eq!(outbox, sqlite.notifications(0, 100).await.expect("outbox"));
            assert_eq!(
                outbox
                    .iter()
                    .map(|n| (n.state.as_str(), n.last_error.as_deref()))
                    .collect::<Vec<_>>(),
                [
                    ("sent", None),
                    ("pending", Some("email not sent: 421")),
                    ("pending", None)
                ]
            );
            for (key, value) in KV {
                assert_eq!(
                    pg.kv_get(key).await.expect("kv").as_deref(),
                    Some(value),
                    "{key}"
                );
            }

            let now = "2027-01-10T09:00:00Z";
            for args in [
                vec!["status", "--json", "--now", now],
                vec![
                    "forecast", "--json", "--leads", "--days", "400", "--now", now,
                ],
                vec!["forecast", "--json", "--days", "400", "--now", now],
            ] {
                let (on_sqlite, on_pg) = (
                    stdout_of(dir.path(), &sqlite_url, &args),
                    stdout_of(dir.path(), &pg_url, &args),
                );
                assert!(on_sqlite.len() > 20, "{args:?}: {on_sqlite}");
                assert_eq!(on_sqlite, on_pg, "rewarm {args:?}");
            }
            let Rows::Leads(leads) = sqlite
                .export_rows(Table::Leads, 0, 10_000)
                .await
                .expect("leads")
            else {
                panic!("not leads")
            };
            assert!(leads.len() >= 15, "{} leads", leads.len());
            let mut events = 0;
            for lead in &leads {
                let args = ["leads", "show", lead.email.as_str(), "--json"];
                let (on_sqlite, on_pg) = (
                    stdout_of(dir.path(), &sqlite_url, &args),
                    stdout_of(dir.path(), &pg_url, &args),
                );
                assert_eq!(on_sqlite, on_pg, "timeline of {}", lead.email);
                let shown: serde_json::Value = serde_json::from_str(&on_pg).expect("JSON");
                events += shown["timeline"].as_array().map(Vec::len).unwrap_or(0);
            }
            let counts = sqlite.table_counts().await.expect("counts");
            assert_eq!(events as i64, counts[&Table::Events]);
            assert!(
                counts[&Table::Deliveries] > leads.len() as i64,
                "some leads got more than one email: {counts:?}"
            );
            eprintln!(
                "db copy: {counts:?} copied; status, forecast and {} timelines identical",
                leads.len()
            );

            // The copy is a working deployment: the daemon carries on from it on PostgreSQL.
            let pass = stdout_of(
                dir.path(),
                &pg_url,
                &["run", "--once", "--now", "2027-02-01T10:00:00Z"],
            );
            assert!(pass.contains("\"sent\""), "{pass}");
            // …telling sales what the copy still owed them: the pending notifications go out,
            // and the lead re-warmed on 2027-01-05 that nobody answered for is escalated.
            let told = pg.notifications(0, 100).await.expect("outbox");
            assert_eq!(
                told.iter().map(|n| n.state.as_str()).collect::<Vec<_>>(),
                ["sent", "sent", "sent", "sent"],
                "{told:?}"
            );
            assert_eq!(told[3].payload["event"], "lead.escalated", "{told:?}");
            assert_eq!(told[0], outbox[0], "what was sent before is not sent again");
            pg.close().await;
            sqlite.close().await;
        },
    )
    .await;
}

/// A reply as it came back (not valid UTF-8: a Latin-1 body).
const REPLY_RAW: &[u8] = b"From: lead\r\nSubject: Re: a quick question\r\nContent-Type: text/plain; charset=iso-8859-1\r\n\r\nOui, appelez-moi apr\xe8s le 10.\r\n";
/// Mail that matches nothing, with bytes no text column could hold.
const UNMATCHED_RAW: &[u8] = b"Subject: \x00\xff\xfe\r\n\r\n\x80\x81 binary junk\r\n";
/// The daemon's kv values: the IMAP mailbox position and the digest's last run.
const KV: [(&str, &str); 3] = [
    ("imap:imap.acme.example:INBOX:uidvalidity", "1767225600"),
    ("imap:imap.acme.example:INBOX:last_uid", "317"),
    ("notify:digest:last_run", "2027-01-04T07:00:00+00:00"),
];

/// What [`add_inbound_side`] wrote.
struct InboundSide {
    /// The lead whose reply was matched.
    lead_id: i64,
}

/// Gives a deployment an inbound side: a reply matched to the email it answers (it re-warms
/// its lead and leaves a notification to sales pending), unmatched mail, a notification
/// already sent and one waiting for a retry, and the daemon's kv values.
async fn add_inbound_side(sqlite_url: &str) -> InboundSide {
    let store = SqliteStore::connect(sqlite_url).await.expect("open SQLite");
    let at: DateTime<Utc> = "2027-01-05T09:00:00Z".parse().expect("time");
    let Rows::Deliveries(deliveries) = store
        .export_rows(Table::Deliveries, 0, 100_000)
        .await
        .expect("deliveries")
    else {
        panic!("not deliveries")
    };
    let answered = deliveries
        .iter()
        .rev()
        .find(|d| d.state == "sent" && d.message_id.is_some())
        .expect("a sent email");
    let lead = store
        .leads_by_ids(&[answered.lead_id])
        .await
        .expect("lead")
        .pop()
        .expect("the answered lead");
    let owner_email = |key: &str, reply: &str| NewNotification {
        kind: "owner_email".into(),
        lead_id: Some(lead.id),
        idempotency_key: format!("{key}:owner_email"),
        payload: serde_json::json!({"event": "lead.rewarmed", "to": "sales@acme.example",
                                    "lead_email": lead.email.to_string(), "reply": reply,
                                    "subject": "Re: a quick question"}),
    };

    // Earlier notifications: one sent, one waiting for a retry after a transient error.
    let earlier = at - chrono::Duration::hours(1);
    let batch = [
        owner_email("rewarm:earlier-1", "Sounds good."),
        owner_email("rewarm:earlier-2", "Later, maybe."),
    ];
    assert_eq!(
        store
            .enqueue_notifications(&batch, earlier)
            .await
            .expect("enqueue"),
        2
    );
    let claimed = store
        .claim_notifications(earlier, "w1", at, 10)
        .await
        .expect("claim");
    store
        .record_notifications(
            &[
                (claimed[0].id, Ok(()), None),
                (
                    claimed[1].id,
                    Err("email not sent: 421".into()),
                    Some(at + chrono::Duration::days(1)),
                ),
            ],
            "w1",
            earlier,
        )
        .await
        .expect("record");

    // A reply to the email, matched by its In-Reply-To: it re-warms the lead.
    let reply = InboundRecord {
        dedupe_key: "imap:1767225600:317".into(),
        source: "imap".into(),
        received_at: at,
        message_id: Some("<reply-317@lead.example>".into()),
        from_address: Some(lead.email.to_string()),
        subject: Some("Re: a quick question".into()),
        classification: "human_reply".into(),
        lead_id: Some(lead.id),
        delivery_id: Some(answered.id),
        matched_by: Some("in_reply_to".into()),
        text: Some("Oui, appelez-moi après le 10.".into()),
        raw: REPLY_RAW.to_vec(),
    };
    let effect = InboundEffect::Rewarm {
        text: "Oui, appelez-moi après le 10.".into(),
        subject: reply.subject.clone(),
        notifications: vec![owner_email(
            "rewarm:imap:1767225600:317",
            "Oui, appelez-moi après le 10.",
        )],
    };
    let applied = store
        .record_inbound(&reply, &effect, at)
        .await
        .expect("reply");
    assert!(!applied.duplicate);
    // Mail that matches nothing is kept for review.
    let unmatched = InboundRecord {
        dedupe_key: "imap:1767225600:316".into(),
        source: "imap".into(),
        received_at: at,
        message_id: None,
        from_address: Some("someone@else.example".into()),
        subject: None,
        classification: "other".into(),
        lead_id: None,
        delivery_id: None,
        matched_by: None,
        text: None,
        raw: UNMATCHED_RAW.to_vec(),
    };
    store
        .record_inbound(&unmatched, &InboundEffect::None, at)
        .await
        .expect("unmatched");
    for (key, value) in KV {
        store.kv_set(key, value).await.expect("kv");
    }
    store.close().await;
    InboundSide { lead_id: lead.id }
}

/// Every row of the tables of migrations/*/0003: inbound mail, the outbox, kv values.
async fn inbound_tables<S: Store>(store: &S) -> Vec<Rows> {
    let mut out = Vec::new();
    for table in [Table::Inbound, Table::Notifications, Table::KvState] {
        out.push(store.export_rows(table, 0, 10_000).await.expect("export"));
    }
    out
}
