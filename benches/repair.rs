//! Start-up and repair at 1,000,000 leads (issue 9 part 8): the lease-expiry and
//! stalled-enrolment queries a pass starts with, timed on SQLite and (with
//! `REWARM_TEST_POSTGRES_URL`) PostgreSQL, each next to references measured in the same run
//! on the same tables: a primary-key lookup, and an indexed count over every lead (what a
//! query that touches each lead costs). Each figure is the median of 5 runs; the plan each
//! repair query gets is printed too.
//!
//!     cargo bench --bench repair
//!     REWARM_TEST_POSTGRES_URL=postgres://postgres@127.0.0.1:5432/test cargo bench --bench repair
//!
//! `REWARM_BENCH_LEADS` changes the size (default 1000000). The data: every lead nurturing,
//! in one active enrolment, with step 0 sent (one in a thousand written off `unknown`) and
//! step 1 scheduled (one in 2,000 claimed under a live lease; one in 100,000 missing, so
//! those enrolments are really stalled).

use std::time::{Duration, Instant};

use chrono::Utc;
use rewarm::store::postgres::PgStore;
use rewarm::store::prelude::*;
use rewarm::store::sqlite::SqliteStore;
use sqlx::Connection as _;

const RUNS: usize = 5;
const LIMIT_MS: f64 = 100.0;

fn leads() -> i64 {
    std::env::var("REWARM_BENCH_LEADS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000)
}

/// The median of `RUNS` timings of `f`, in milliseconds.
async fn median_ms<F, Fut, T>(mut f: F) -> f64
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = T>,
{
    let mut times: Vec<Duration> = Vec::with_capacity(RUNS);
    for _ in 0..RUNS {
        let t = Instant::now();
        std::hint::black_box(f().await);
        times.push(t.elapsed());
    }
    times.sort();
    times[RUNS / 2].as_secs_f64() * 1000.0
}

fn row(backend: &str, what: &str, ms: f64, judged: bool) {
    let verdict = match (judged, ms < LIMIT_MS) {
        (false, _) => "reference",
        (true, true) => "ok (< 100 ms)",
        (true, false) => "SLOW (>= 100 ms)",
    };
    println!("{backend:<10} {what:<52} {ms:>10.2} ms   {verdict}");
}

/// Statements that fill the tables with `n` leads (SQLite: times in ms).
fn sqlite_fill(n: i64) -> Vec<String> {
    vec![
        format!(
            "WITH RECURSIVE s(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM s WHERE i < {n})
             INSERT INTO leads (id, email, state, created_at, updated_at)
             SELECT i, 'lead' || i || '@example.com', 'nurturing', 0, 0 FROM s"
        ),
        "INSERT INTO enrolments (id, lead_id, campaign, segment, state, enrolled_at)
         SELECT id, id, 'checkin', 'all', 'active', 0 FROM leads"
            .into(),
        "INSERT INTO deliveries (lead_id, enrolment_id, campaign, step, template, state, due_at, updated_at, sent_at, started_at)
         SELECT id, id, 'checkin', 0, 't0', CASE WHEN id % 1000 = 0 THEN 'unknown' ELSE 'sent' END, 0, 1, 1, 1 FROM leads"
            .into(),
        "INSERT INTO deliveries (lead_id, enrolment_id, campaign, step, template, state, due_at, updated_at, claimed_by, lease_until)
         SELECT id, id, 'checkin', 1, 't1', CASE WHEN id % 2000 = 1 THEN 'claimed' ELSE 'scheduled' END, 2592000000, 1,
                CASE WHEN id % 2000 = 1 THEN 'bench' END, CASE WHEN id % 2000 = 1 THEN 4102444800000 END
         FROM leads WHERE id % 100000 <> 0"
            .into(),
    ]
}

/// The same data on PostgreSQL.
fn pg_fill(n: i64) -> Vec<String> {
    vec![
        format!(
            "INSERT INTO leads (id, email, state, created_at, updated_at)
             SELECT i, 'lead' || i || '@example.com', 'nurturing', now(), now() FROM generate_series(1, {n}) i"
        ),
        "INSERT INTO enrolments (id, lead_id, campaign, segment, state, enrolled_at)
         SELECT id, id, 'checkin', 'all', 'active', now() FROM leads"
            .into(),
        "INSERT INTO deliveries (lead_id, enrolment_id, campaign, step, template, state, due_at, updated_at, sent_at, started_at)
         SELECT id, id, 'checkin', 0, 't0', CASE WHEN id % 1000 = 0 THEN 'unknown' ELSE 'sent' END, now(), now(), now(), now() FROM leads"
            .into(),
        "INSERT INTO deliveries (lead_id, enrolment_id, campaign, step, template, state, due_at, updated_at, claimed_by, lease_until)
         SELECT id, id, 'checkin', 1, 't1', CASE WHEN id % 2000 = 1 THEN 'claimed' ELSE 'scheduled' END, now() + interval '30 days', now(),
                CASE WHEN id % 2000 = 1 THEN 'bench' END, CASE WHEN id % 2000 = 1 THEN timestamptz '2100-01-01' END
         FROM leads WHERE id % 100000 <> 0"
            .into(),
        "ANALYZE".into(),
    ]
}

/// The median time of `RUNS` runs of a plain statement on a raw connection, in ms.
macro_rules! raw_ms {
    ($raw:expr, $sql:expr) => {{
        let mut times = Vec::with_capacity(RUNS);
        for _ in 0..RUNS {
            let t = Instant::now();
            sqlx::query($sql)
                .execute(&mut $raw)
                .await
                .expect("reference");
            times.push(t.elapsed());
        }
        times.sort();
        times[RUNS / 2].as_secs_f64() * 1000.0
    }};
}

const PK_LOOKUP: &str = "SELECT state FROM deliveries WHERE id = 123457";
const COUNT_ALL: &str = "SELECT count(*) FROM leads WHERE state = 'nurturing'";

async fn bench_sqlite(n: i64) {
    let dir = tempfile::tempdir().expect("temp dir");
    let url = format!("sqlite://{}", dir.path().join("bench.db").display());
    let store = SqliteStore::connect(&url).await.expect("open");
    store.migrate().await.expect("migrate");
    let mut raw = sqlx::SqliteConnection::connect(&url).await.expect("raw");
    let t = Instant::now();
    for sql in sqlite_fill(n) {
        sqlx::query(sqlx::AssertSqlSafe(sql))
            .execute(&mut raw)
            .await
            .expect("fill");
    }
    println!("sqlite: {n} leads written in {:.1?}", t.elapsed());
    let references = (raw_ms!(raw, PK_LOOKUP), raw_ms!(raw, COUNT_ALL));
    report("sqlite", &store, references).await;
    for (name, plan) in store.repair_plans().await.expect("plans") {
        println!("  plan of {name}: {}", plan.replace('\n', " | "));
    }
    store.close().await;
}

async fn bench_postgres(admin_url: &str, n: i64) {
    let name = format!("rewarm_bench_{:08x}", rand::random::<u32>());
    let mut admin = sqlx::PgConnection::connect(admin_url).await.expect("admin");
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .execute(&mut admin)
        .await
        .expect("create database");
    let (base, _) = admin_url.rsplit_once('/').expect("a database in the URL");
    let url = format!("{base}/{name}");
    let store = PgStore::connect(&url).await.expect("connect");
    store.migrate().await.expect("migrate");
    let mut raw = sqlx::PgConnection::connect(&url).await.expect("raw");
    let t = Instant::now();
    for sql in pg_fill(n) {
        sqlx::query(sqlx::AssertSqlSafe(sql))
            .execute(&mut raw)
            .await
            .expect("fill");
    }
    println!("postgres: {n} leads written in {:.1?}", t.elapsed());
    let references = (raw_ms!(raw, PK_LOOKUP), raw_ms!(raw, COUNT_ALL));
    report("postgres", &store, references).await;
    for (name, plan) in store.repair_plans(false).await.expect("plans") {
        println!("  plan of {name}: {}", plan.replace('\n', " | "));
    }
    store.close().await;
    let _ = raw.close().await;
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
    )))
    .execute(&mut admin)
    .await
    .expect("drop database");
}

/// Times the repairs through the store and prints them with the references (pk lookup, count
/// of every lead) measured on the same tables.
async fn report<S: Store>(backend: &str, store: &S, references: (f64, f64)) {
    let now = Utc::now();
    // Every lease is live: expiry writes nothing, but runs each of its statements.
    let expire = median_ms(|| store.expire_leases(now)).await;
    let stalled = median_ms(|| store.stalled_enrolments(1000)).await;
    let release = median_ms(|| store.release_unstarted("nobody", now)).await;
    let found = store.stalled_enrolments(1000).await.expect("stalled").len();
    row(
        backend,
        "expire_leases (written off + released)",
        expire,
        true,
    );
    row(
        backend,
        &format!("stalled_enrolments (found {found})"),
        stalled,
        true,
    );
    row(backend, "release_unstarted", release, true);
    row(
        backend,
        "reference: one delivery by primary key",
        references.0,
        false,
    );
    row(
        backend,
        "reference: indexed count of every lead",
        references.1,
        false,
    );
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let n = leads();
    println!(
        "repair at {n} leads ({} deliveries); median of {RUNS} runs",
        2 * n - n / 100_000
    );
    bench_sqlite(n).await;
    match std::env::var("REWARM_TEST_POSTGRES_URL") {
        Ok(url) => bench_postgres(&url, n).await,
        Err(_) => println!("postgres: skipped (set REWARM_TEST_POSTGRES_URL)"),
    }
}
