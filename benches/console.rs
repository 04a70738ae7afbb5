//! The web console at scale: every page of [`PAGES`] fetched over real HTTP from the
//! daemon's router (`rewarm::http::serve`) with N leads in the database (default
//! 1,000,000: one enrolment, one delivery and two to three events each), signed in as an
//! admin. Each page is fetched [`RUNS`] times; the median and the slowest are printed next
//! to references measured in the same run on the same database: an indexed count
//! (`SELECT count(*) FROM leads WHERE state = 'nurturing'`, index `leads_state`) and a GET
//! of `/healthz` over the same connection (what HTTP alone costs).
//!
//!     cargo bench --bench console                                   # SQLite (a temp file)
//!     REWARM_BENCH_POSTGRES_URL=postgres://postgres@127.0.0.1:5432/postgres cargo bench --bench console
//!
//! Environment: REWARM_BENCH_LEADS (default 1000000); REWARM_BENCH_POSTGRES_URL (an admin
//! URL: a database `rewarm_bench_<random>` is created there and dropped after).
//!
//! Adding a page: put its path in [`PAGES`] (a lead's page may use `{lead}`, the id of a
//! lead with a history).

use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use rewarm::app::{Current, Loaded};
use rewarm::config::Settings;
use rewarm::domain::clock::Clock;
use rewarm::http::HttpState;
use rewarm::store::Store;
use rewarm::store::postgres::PgStore;
use rewarm::store::sqlite::SqliteStore;
use sqlx::Connection as _;
use tokio_util::sync::CancellationToken;

/// The pages timed, as an admin sees them.
const PAGES: &[&str] = &["/console/", "/console/campaigns", "/console/users"];
/// Fetches per page (after one warm-up).
const RUNS: usize = 7;
/// The goal per page.
const BUDGET: Duration = Duration::from_millis(200);
const ADMIN: &str = "admin@acme.example";

fn leads() -> i64 {
    std::env::var("REWARM_BENCH_LEADS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000)
}

/// "Now" for the server: the data runs up to about a year after [`base`].
fn now() -> DateTime<Utc> {
    base() + chrono::Duration::days(400)
}

fn base() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2025-01-01T00:00:00Z")
        .expect("a fixed time")
        .with_timezone(&Utc)
}

/// The history (the same on both backends): lead i lost (i mod 365) days before 2025-01-01,
/// owned by one of 50 owners (1 in 20 by none), enrolled in campaign c(i mod 4) of segment
/// s(i mod 4) (i mod 300) days after it, 90 % emailed an hour later, 10 % replied, 5 %
/// re-warmed, 1 % won.
const SQLITE_DATA: [&str; 4] = [
    "WITH RECURSIVE s(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM s WHERE i < $1)
     INSERT INTO leads (id, email, first_name, company, owner_email, lost_reason, lost_at, state, created_at, updated_at)
     SELECT i, 'lead' || i || '@bench' || (i % 1000) || '.example', 'Lead', 'Co ' || (i % 5000),
            CASE WHEN i % 20 = 0 THEN NULL ELSE 'owner' || (i % 50) || '@acme.example' END,
            'r' || (i % 4), $2 - (i % 365) * 86400000, 'nurturing', $2, $2 FROM s",
    "INSERT INTO enrolments (id, lead_id, campaign, segment, state, enrolled_at)
     SELECT id, id, 'c' || (id % 4), 's' || (id % 4), 'active', $2 + (id % 300) * 86400000 FROM leads WHERE id <= $1",
    "INSERT INTO deliveries (id, lead_id, enrolment_id, campaign, step, template, state, due_at, sent_at, updated_at)
     SELECT id, lead_id, id, campaign, 0, 'checkin', CASE WHEN id % 10 < 9 THEN 'sent' ELSE 'scheduled' END,
            enrolled_at, CASE WHEN id % 10 < 9 THEN enrolled_at + 3600000 END, enrolled_at FROM enrolments",
    "INSERT INTO events (lead_id, at, kind, detail)
     SELECT lead_id, enrolled_at, 'enrolled', json_object('campaign', campaign) FROM enrolments
     UNION ALL SELECT lead_id, sent_at, 'sent', json_object('campaign', campaign, 'step', 1) FROM deliveries WHERE state = 'sent'
     UNION ALL SELECT lead_id, enrolled_at + 5 * 86400000, 'replied', json_object('intent', 'interested') FROM enrolments WHERE id % 10 = 0
     UNION ALL SELECT lead_id, enrolled_at + 6 * 86400000, 'rewarmed', '{}' FROM enrolments WHERE id % 20 = 0
     UNION ALL SELECT lead_id, enrolled_at + 9 * 86400000, 'won', '{}' FROM enrolments WHERE id % 100 = 0",
];

/// [`SQLITE_DATA`] in PostgreSQL's words.
const POSTGRES_DATA: [&str; 4] = [
    "INSERT INTO leads (id, email, first_name, company, owner_email, lost_reason, lost_at, state, created_at, updated_at)
     SELECT i, 'lead' || i || '@bench' || (i % 1000) || '.example', 'Lead', 'Co ' || (i % 5000),
            CASE WHEN i % 20 = 0 THEN NULL ELSE 'owner' || (i % 50) || '@acme.example' END,
            'r' || (i % 4), $2 - (i % 365) * interval '1 day', 'nurturing', $2, $2 FROM generate_series(1, $1) i",
    "INSERT INTO enrolments (id, lead_id, campaign, segment, state, enrolled_at)
     SELECT id, id, 'c' || (id % 4), 's' || (id % 4), 'active', $2 + (id % 300) * interval '1 day' FROM leads WHERE id <= $1",
    "INSERT INTO deliveries (id, lead_id, enrolment_id, campaign, step, template, state, due_at, sent_at, updated_at)
     SELECT id, lead_id, id, campaign, 0, 'checkin', CASE WHEN id % 10 < 9 THEN 'sent' ELSE 'scheduled' END,
            enrolled_at, CASE WHEN id % 10 < 9 THEN enrolled_at + interval '1 hour' END, enrolled_at FROM enrolments",
    "INSERT INTO events (lead_id, at, kind, detail)
     SELECT lead_id, enrolled_at, 'enrolled', jsonb_build_object('campaign', campaign) FROM enrolments
     UNION ALL SELECT lead_id, sent_at, 'sent', jsonb_build_object('campaign', campaign, 'step', 1) FROM deliveries WHERE state = 'sent'
     UNION ALL SELECT lead_id, enrolled_at + interval '5 days', 'replied', jsonb_build_object('intent', 'interested') FROM enrolments WHERE id % 10 = 0
     UNION ALL SELECT lead_id, enrolled_at + interval '6 days', 'rewarmed', '{}' FROM enrolments WHERE id % 20 = 0
     UNION ALL SELECT lead_id, enrolled_at + interval '9 days', 'won', '{}' FROM enrolments WHERE id % 100 = 0",
];

/// Four segments (by lost reason) and their campaigns, with the repository's templates.
fn config(database_url: &str) -> Settings {
    let templates = concat!(env!("CARGO_MANIFEST_DIR"), "/templates");
    let mut toml = format!(
        "database_url = \"{database_url}\"\ntemplates_dir = \"{templates}\"\n\
         [sender]\nfrom = \"Acme <hello@acme.example>\"\n\
         [compliance]\npostal_address = \"Acme, 1 Main St, Springfield\"\n\
         [console]\nenabled = true\n"
    );
    for i in 0..4 {
        toml.push_str(&format!(
            "[[segments]]\nname = \"s{i}\"\ncampaign = \"c{i}\"\nlost_reason = [\"r{i}\"]\n"
        ));
    }
    for i in 0..4 {
        toml.push_str(&format!(
            "[campaigns.c{i}]\nfirst_after = \"90d\"\nevery = \"30d\"\nmax_touches = 3\ntemplates = [\"checkin\"]\n"
        ));
    }
    Settings::from_toml(&toml, "console-bench.toml").unwrap_or_else(|e| panic!("{e}"))
}

/// The reference on connection `$conn`: an indexed count, its best of three.
macro_rules! indexed_count {
    ($conn:expr) => {{
        let mut best = Duration::MAX;
        for _ in 0..3 {
            let started = Instant::now();
            let _: i64 = sqlx::query_scalar("SELECT count(*) FROM leads WHERE state = 'nurturing'")
                .fetch_one(&mut $conn)
                .await
                .expect("count");
            best = best.min(started.elapsed());
        }
        best
    }};
}

fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1000.0)
}

/// Serves the console over `store` and times every page next to the references.
async fn measure<S: Store>(backend: &str, store: S, url: &str, indexed_count: Duration) {
    let settings = config(url);
    let loaded = Loaded::with_store(settings, &store).await.expect("load");
    let session = {
        store
            .put_console_user(ADMIN, "admin", "bench", now())
            .await
            .expect("an admin");
        rewarm::console::open_session(&store, ADMIN, Duration::from_secs(3600), now())
            .await
            .expect("a session")
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let base = format!("http://{}", listener.local_addr().expect("address"));
    let state = HttpState {
        store: store.clone(),
        keys: loaded.keys.clone(),
        current: Current::new(loaded),
        api_token: None,
        clock: Clock::Fixed(now()),
    };
    let stop = CancellationToken::new();
    let server = tokio::spawn(rewarm::http::serve(listener, state, stop.clone()));
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("a client");
    let cookie = format!("rewarm_console={session}");
    let fetch = |path: &str| {
        let request = client
            .get(format!("{base}{path}"))
            .header(reqwest::header::COOKIE, cookie.clone());
        let path = path.to_string();
        async move {
            let started = Instant::now();
            let response = request.send().await.expect("GET");
            let status = response.status();
            let body = response.text().await.expect("a body");
            assert_eq!(status, 200, "{path}: {body}");
            (started.elapsed(), body)
        }
    };
    // The overview's figures and forecast are computed in the background: time the pages
    // once they are there (what every visitor but the very first sees), and say how long
    // computing them took.
    let started = Instant::now();
    loop {
        let (_, body) = fetch("/console/").await;
        if body.contains("id=\"funnel-campaign\"") && body.contains("id=\"forecast-30\"") {
            let took = body
                .split("computed in ")
                .nth(1)
                .and_then(|rest| rest.split(" ms").next())
                .unwrap_or("?");
            println!(
                "{backend}: overview figures ready after {:.1} s (the report's figures computed in {took} ms, in the background)",
                started.elapsed().as_secs_f64()
            );
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(600),
            "the overview's figures never came"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let health = median(&mut timed(&fetch, "/healthz").await);
    println!(
        "{backend}: reference  SELECT count(*) FROM leads WHERE state = 'nurturing': {}",
        ms(indexed_count)
    );
    println!("{backend}: reference  GET /healthz: {}", ms(health));
    for page in PAGES {
        let mut times = timed(&fetch, page).await;
        let (median, slowest) = (median(&mut times), times[times.len() - 1]);
        let verdict = if slowest <= BUDGET {
            "ok"
        } else {
            "OVER 200 ms"
        };
        println!(
            "{backend}: GET {page:<22} median {:>9}  slowest {:>9}  ({verdict}; {:.1}× the indexed count)",
            ms(median),
            ms(slowest),
            median.as_secs_f64() / indexed_count.as_secs_f64().max(1e-6)
        );
    }
    stop.cancel();
    let _ = server.await;
}

/// One warm-up, then [`RUNS`] timed fetches.
async fn timed<F, Fut>(fetch: &F, path: &str) -> Vec<Duration>
where
    F: Fn(&str) -> Fut,
    Fut: std::future::Future<Output = (Duration, String)>,
{
    fetch(path).await;
    let mut times = Vec::with_capacity(RUNS);
    for _ in 0..RUNS {
        times.push(fetch(path).await.0);
    }
    times
}

fn median(times: &mut [Duration]) -> Duration {
    times.sort();
    times[times.len() / 2]
}

async fn sqlite(n: i64) {
    let dir = tempfile::tempdir().expect("temp dir");
    let url = format!("sqlite://{}", dir.path().join("console.db").display());
    let store = SqliteStore::connect(&url).await.expect("open SQLite");
    store.migrate().await.expect("migrate");
    let mut conn = sqlx::SqliteConnection::connect(&url)
        .await
        .expect("connect");
    let started = Instant::now();
    for sql in SQLITE_DATA {
        sqlx::query(sql)
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
    println!(
        "sqlite: {n} leads generated in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    let indexed = indexed_count!(conn);
    measure("sqlite", store, &url, indexed).await;
}

async fn postgres(admin_url: &str, n: i64) {
    let name = format!("rewarm_bench_{}", rand::random::<u32>());
    let mut admin = sqlx::PgConnection::connect(admin_url)
        .await
        .expect("connect");
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .execute(&mut admin)
        .await
        .expect("create the database");
    let url = match admin_url.rsplit_once('/') {
        Some((server, _)) => format!("{server}/{name}"),
        None => panic!("REWARM_BENCH_POSTGRES_URL needs a database path"),
    };
    {
        let store = PgStore::connect(&url).await.expect("open PostgreSQL");
        store.migrate().await.expect("migrate");
        let mut conn = sqlx::PgConnection::connect(&url).await.expect("connect");
        let started = Instant::now();
        for sql in POSTGRES_DATA {
            sqlx::query(sql)
                .bind(n)
                .bind(base())
                .execute(&mut conn)
                .await
                .expect("generate");
        }
        for table in ["leads", "enrolments", "deliveries", "events"] {
            sqlx::query(sqlx::AssertSqlSafe(format!(
                "SELECT setval(pg_get_serial_sequence('{table}', 'id'), (SELECT coalesce(max(id), 0) + 1 FROM {table}), false)"
            )))
            .execute(&mut conn)
            .await
            .expect("sequences");
        }
        sqlx::query("ANALYZE")
            .execute(&mut conn)
            .await
            .expect("analyze");
        println!(
            "postgres: {n} leads generated in {:.1} s",
            started.elapsed().as_secs_f64()
        );
        let indexed = indexed_count!(conn);
        measure("postgres", store, &url, indexed).await;
    }
    let _ = sqlx::query(sqlx::AssertSqlSafe(format!(
        "DROP DATABASE {name} WITH (FORCE)"
    )))
    .execute(&mut admin)
    .await;
}

fn main() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    let n = leads();
    runtime.block_on(sqlite(n));
    if let Ok(url) = std::env::var("REWARM_BENCH_POSTGRES_URL") {
        runtime.block_on(postgres(&url, n));
    }
}
