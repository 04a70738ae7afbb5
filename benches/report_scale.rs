//! `rewarm report` at scale: 1,000,000 leads (one enrolment, one delivery each, ~2.1 million
//! events: enrolled, sent, replies with intents, re-warms, won, out of scope, unsubscribes,
//! bounces) generated in SQL, then the report's aggregates (`ReportStore::report_counts`) by
//! campaign, owner and month, each printed next to a reference measured in the same run on
//! the same database: a plain `SELECT count(*) FROM events`, and one pass over every event
//! (`SELECT kind, count(*) FROM events GROUP BY kind`); and, by campaign, the same report
//! recomputed from the event log (`report --verify`, the report's SQL before migration 0019
//! kept the stages on the enrolments), which must give the same figures.
//!
//!     cargo bench --bench report_scale                         # SQLite (a temp file)
//!     REWARM_BENCH_POSTGRES_URL=postgres://postgres@127.0.0.1:5432/postgres cargo bench --bench report_scale
//!
//! Environment: REWARM_BENCH_LEADS (default 1000000); REWARM_BENCH_POSTGRES_URL (an admin
//! URL: a database `rewarm_bench_<random>` is created there and dropped after) runs the same
//! on PostgreSQL too.

use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use rewarm::domain::report::GroupBy;
use rewarm::store::postgres::PgStore;
use rewarm::store::prelude::*;
use rewarm::store::sqlite::SqliteStore;
use rewarm::store::{ReportCounts, ReportQuery};
use sqlx::Connection as _;

fn leads() -> i64 {
    std::env::var("REWARM_BENCH_LEADS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000)
}

/// The history generated (the same on both backends): lead i is lost (i mod 365) days before
/// 2025-01-01, enrolled in campaign c(i mod 4) (i mod 300) days after it, 90 % emailed an
/// hour later; 10 % reply five days later (intents in turn), 5 % re-warm, 1 % are won, 2 %
/// go out of scope, 2.5 % unsubscribe, 1.7 % bounce. 1 in 20 has no owner, the rest one of 50.
const SQLITE_DATA: [&str; 5] = [
    "WITH RECURSIVE s(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM s WHERE i < $1)
     INSERT INTO leads (id, email, first_name, company, owner_email, lost_reason, lost_at, state, created_at, updated_at)
     SELECT i, 'lead' || i || '@bench' || (i % 1000) || '.example', 'Lead', 'Co ' || (i % 5000),
            CASE WHEN i % 20 = 0 THEN NULL ELSE 'owner' || (i % 50) || '@acme.example' END,
            'no_budget', $2 - (i % 365) * 86400000, 'nurturing', $2, $2 FROM s",
    "INSERT INTO enrolments (id, lead_id, campaign, segment, state, enrolled_at)
     SELECT id, id, 'c' || (id % 4), 's' || (id % 4), 'active', $2 + (id % 300) * 86400000 FROM leads WHERE id <= $1",
    "INSERT INTO deliveries (id, lead_id, enrolment_id, campaign, step, template, state, due_at, sent_at, updated_at)
     SELECT id, lead_id, id, campaign, 0, 't', CASE WHEN id % 10 < 9 THEN 'sent' ELSE 'scheduled' END,
            enrolled_at, CASE WHEN id % 10 < 9 THEN enrolled_at + 3600000 END, enrolled_at FROM enrolments",
    "INSERT INTO events (lead_id, at, kind, detail)
     SELECT lead_id, enrolled_at, 'enrolled', json_object('campaign', campaign) FROM enrolments
     UNION ALL SELECT lead_id, sent_at, 'sent', json_object('campaign', campaign, 'step', 1) FROM deliveries WHERE state = 'sent'",
    "INSERT INTO events (lead_id, at, kind, detail)
     SELECT e.lead_id, e.enrolled_at + 5 * 86400000, 'replied',
            json_object('intent', CASE e.id % 7 WHEN 0 THEN 'interested' WHEN 1 THEN 'question' WHEN 2 THEN 'later'
                                  WHEN 3 THEN 'not_interested' WHEN 4 THEN 'left_company' WHEN 5 THEN 'unclear' ELSE NULL END)
     FROM enrolments e WHERE e.id % 10 = 0
     UNION ALL SELECT lead_id, enrolled_at + 6 * 86400000, 'rewarmed', '{}' FROM enrolments WHERE id % 20 = 0
     UNION ALL SELECT lead_id, enrolled_at + 9 * 86400000, 'won', '{}' FROM enrolments WHERE id % 100 = 0
     UNION ALL SELECT lead_id, enrolled_at + 9 * 86400000, 'out_of_scope', '{}' FROM enrolments WHERE id % 50 = 1
     UNION ALL SELECT lead_id, enrolled_at + 7 * 86400000, 'suppressed', '{\"reason\":\"unsubscribed\"}' FROM enrolments WHERE id % 40 = 3
     UNION ALL SELECT lead_id, enrolled_at + 2 * 86400000, 'suppressed', '{\"reason\":\"hard_bounce\"}' FROM enrolments WHERE id % 60 = 7",
];

/// [`SQLITE_DATA`] in PostgreSQL's words (timestamptz, jsonb, generate_series).
const POSTGRES_DATA: [&str; 5] = [
    "INSERT INTO leads (id, email, first_name, company, owner_email, lost_reason, lost_at, state, created_at, updated_at)
     SELECT i, 'lead' || i || '@bench' || (i % 1000) || '.example', 'Lead', 'Co ' || (i % 5000),
            CASE WHEN i % 20 = 0 THEN NULL ELSE 'owner' || (i % 50) || '@acme.example' END,
            'no_budget', $2 - (i % 365) * interval '1 day', 'nurturing', $2, $2 FROM generate_series(1, $1) i",
    "INSERT INTO enrolments (id, lead_id, campaign, segment, state, enrolled_at)
     SELECT id, id, 'c' || (id % 4), 's' || (id % 4), 'active', $2 + (id % 300) * interval '1 day' FROM leads WHERE id <= $1",
    "INSERT INTO deliveries (id, lead_id, enrolment_id, campaign, step, template, state, due_at, sent_at, updated_at)
     SELECT id, lead_id, id, campaign, 0, 't', CASE WHEN id % 10 < 9 THEN 'sent' ELSE 'scheduled' END,
            enrolled_at, CASE WHEN id % 10 < 9 THEN enrolled_at + interval '1 hour' END, enrolled_at FROM enrolments",
    "INSERT INTO events (lead_id, at, kind, detail)
     SELECT lead_id, enrolled_at, 'enrolled', jsonb_build_object('campaign', campaign) FROM enrolments
     UNION ALL SELECT lead_id, sent_at, 'sent', jsonb_build_object('campaign', campaign, 'step', 1) FROM deliveries WHERE state = 'sent'",
    "INSERT INTO events (lead_id, at, kind, detail)
     SELECT e.lead_id, e.enrolled_at + interval '5 days', 'replied',
            jsonb_build_object('intent', CASE e.id % 7 WHEN 0 THEN 'interested' WHEN 1 THEN 'question' WHEN 2 THEN 'later'
                                  WHEN 3 THEN 'not_interested' WHEN 4 THEN 'left_company' WHEN 5 THEN 'unclear' ELSE NULL END)
     FROM enrolments e WHERE e.id % 10 = 0
     UNION ALL SELECT lead_id, enrolled_at + interval '6 days', 'rewarmed', '{}' FROM enrolments WHERE id % 20 = 0
     UNION ALL SELECT lead_id, enrolled_at + interval '9 days', 'won', '{}' FROM enrolments WHERE id % 100 = 0
     UNION ALL SELECT lead_id, enrolled_at + interval '9 days', 'out_of_scope', '{}' FROM enrolments WHERE id % 50 = 1
     UNION ALL SELECT lead_id, enrolled_at + interval '7 days', 'suppressed', '{\"reason\":\"unsubscribed\"}' FROM enrolments WHERE id % 40 = 3
     UNION ALL SELECT lead_id, enrolled_at + interval '2 days', 'suppressed', '{\"reason\":\"hard_bounce\"}' FROM enrolments WHERE id % 60 = 7",
];

fn base() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2025-01-01T00:00:00Z")
        .expect("a fixed time")
        .with_timezone(&Utc)
}

/// This process's CPU time (user + system, from /proc/self/stat): SQLite runs in-process,
/// so its CPU time is the work done, whatever else the machine is busy with.
fn cpu() -> Duration {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest.split_whitespace().collect())
        .unwrap_or_default();
    // Fields 14 and 15 (utime, stime) are the 12th and 13th after the command name, in
    // clock ticks (100 per second on Linux).
    let ticks: u64 = [11, 12]
        .iter()
        .filter_map(|i| fields.get(*i).and_then(|f| f.parse::<u64>().ok()))
        .sum();
    Duration::from_millis(ticks * 10)
}

fn secs(d: Duration) -> String {
    format!("{:.2} s", d.as_secs_f64())
}

/// The references on connection `$conn`, measured just before the report: the time of
/// `SELECT count(*) FROM events` (and how many), and of one pass over every event.
macro_rules! references {
    ($conn:expr) => {{
        let started = Instant::now();
        let events: i64 = sqlx::query_scalar("SELECT count(*) FROM events")
            .fetch_one(&mut $conn)
            .await
            .expect("count");
        let count = started.elapsed();
        let started = Instant::now();
        let kinds: Vec<(String, i64)> =
            sqlx::query_as("SELECT kind, count(*) FROM events GROUP BY kind")
                .fetch_all(&mut $conn)
                .await
                .expect("by kind");
        assert_eq!(kinds.iter().map(|(_, n)| n).sum::<i64>(), events);
        (count, events, started.elapsed())
    }};
}

/// Times the report by campaign, owner and month on `store`, next to the references, and
/// checks what it counted.
async fn measure<S: Store>(
    backend: &str,
    store: &S,
    n: i64,
    (took, events, scan): (Duration, i64, Duration),
) {
    println!(
        "{backend}: reference  SELECT count(*) FROM events ({events} events): {}",
        secs(took)
    );
    println!(
        "{backend}: reference  SELECT kind, count(*) FROM events GROUP BY kind: {}",
        secs(scan)
    );
    let until = base() + chrono::Duration::days(400);
    for by in [GroupBy::Campaign, GroupBy::Owner, GroupBy::Month] {
        let (started, cpu_before) = (Instant::now(), cpu());
        let counts: ReportCounts = store
            .report_counts(&ReportQuery {
                since: None,
                until,
                by,
            })
            .await
            .expect("the report");
        let took_report = started.elapsed();
        // PostgreSQL works in its own processes: only SQLite's CPU time is this process's.
        let cpu_report = match backend {
            "sqlite" => secs(cpu().saturating_sub(cpu_before)),
            _ => "in the server".to_string(),
        };
        let total = counts
            .funnels
            .iter()
            .find(|(g, _)| g == "(all)")
            .map(|(_, c)| *c)
            .expect("a total");
        assert_eq!(total[0], n, "every lead enrolled");
        assert_eq!(total[1], n - (n + 1) / 10, "90 % emailed");
        assert_eq!(total[2], n / 10, "10 % replied");
        let replies: i64 = counts
            .intents
            .iter()
            .filter(|(g, _, _)| g == "(all)")
            .map(|(_, _, k)| k)
            .sum();
        assert_eq!(replies, n / 10, "every reply counted by intent");
        println!(
            "{backend}: report --by {:<8} {:>8} (this process's CPU: {})  ({:.1}× the pass over the events; {} groups; total funnel {:?})",
            by.as_str(),
            secs(took_report),
            cpu_report,
            took_report.as_secs_f64() / scan.as_secs_f64().max(1e-6),
            counts.funnels.len() - 1,
            total
        );
        if by == GroupBy::Campaign {
            from_events(backend, store, until, &counts, took_report).await;
        }
    }
}

/// The same report recomputed from the event log (`report --verify`: the SQL the report ran
/// before its stages were kept on the enrolments), timed as a reference and compared.
async fn from_events<S: Store>(
    backend: &str,
    store: &S,
    until: DateTime<Utc>,
    kept: &ReportCounts,
    took_kept: Duration,
) {
    let started = Instant::now();
    let log = store
        .report_counts_from_events(&ReportQuery {
            since: None,
            until,
            by: GroupBy::Campaign,
        })
        .await
        .expect("the report from the event log");
    let took = started.elapsed();
    assert_eq!(&log, kept, "the kept stages give the event log's figures");
    println!(
        "{backend}: reference  the same report from the event log (report --verify): {}  (kept stages: {:.1}× faster)",
        secs(took),
        took.as_secs_f64() / took_kept.as_secs_f64().max(1e-6)
    );
}

async fn sqlite(n: i64) {
    let dir = tempfile::tempdir().expect("temp dir");
    let url = format!("sqlite://{}", dir.path().join("report.db").display());
    let store = SqliteStore::connect(&url).await.expect("open SQLite");
    store.migrate().await.expect("migrate");
    let started = Instant::now();
    let mut conn = sqlx::SqliteConnection::connect(&url)
        .await
        .expect("connect");
    for statement in SQLITE_DATA {
        sqlx::query(statement)
            .bind(n)
            .bind(base().timestamp_millis())
            .execute(&mut conn)
            .await
            .expect("generate");
    }
    sqlx::query("ANALYZE")
        .execute(&mut conn)
        .await
        .expect("analyze");
    println!("sqlite: {n} leads generated in {}", secs(started.elapsed()));
    let reference = references!(conn);
    measure("sqlite", &store, n, reference).await;
}

async fn postgres(admin_url: &str, n: i64) {
    let name = format!("rewarm_bench_{:016x}", rand::random::<u64>());
    let mut admin = sqlx::PgConnection::connect(admin_url)
        .await
        .expect("connect");
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .execute(&mut admin)
        .await
        .expect("CREATE DATABASE");
    let url = match admin_url.rsplit_once('/') {
        Some((head, _)) => format!("{head}/{name}"),
        None => panic!("REWARM_BENCH_POSTGRES_URL needs a database name"),
    };
    {
        let store = PgStore::connect(&url).await.expect("open PostgreSQL");
        store.migrate().await.expect("migrate");
        let started = Instant::now();
        let mut conn = sqlx::PgConnection::connect(&url).await.expect("connect");
        for statement in POSTGRES_DATA {
            sqlx::query(statement)
                .bind(n)
                .bind(base())
                .execute(&mut conn)
                .await
                .expect("generate");
        }
        sqlx::query("ANALYZE")
            .execute(&mut conn)
            .await
            .expect("analyze");
        println!(
            "postgres: {n} leads generated in {}",
            secs(started.elapsed())
        );
        let reference = references!(conn);
        let _ = conn.close().await;
        measure("postgres", &store, n, reference).await;
    }
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "DROP DATABASE {name} WITH (FORCE)"
    )))
    .execute(&mut admin)
    .await
    .expect("DROP DATABASE");
}

#[tokio::main]
async fn main() {
    let n = leads();
    sqlite(n).await;
    match std::env::var("REWARM_BENCH_POSTGRES_URL") {
        Ok(url) => postgres(&url, n).await,
        Err(_) => println!("postgres: skipped (set REWARM_BENCH_POSTGRES_URL)"),
    }
}
