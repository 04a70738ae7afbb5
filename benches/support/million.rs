//! What the benchmarks at a million leads share (`forecast`, `plan_scale`, `console`): the
//! generated leads (in SQL, with the shares of `../shared/tools/gen_leads.py`: 20 zones, 10
//! recipient domains, 2,000 first names, 10,000 last names, 50,000 companies, 50 owners (1 lead
//! in 20 has none), loss dates over the 730 days before the reference day, loss reasons no_budget 20 %,
//! timing 10 %, chose_competitor 20 %, no_decision 10 %, went_quiet 30 % (no segment takes
//! them: they wait in `new`), bad_fit 10 %; every other lead enrolled with one pending step
//! due between 10 days ago and 90 days ahead), a production-like config (a tick of 30 s, send
//! windows, a daily cap and per-domain rates), the databases, and timing the real binary.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

use chrono::{DateTime, TimeZone, Utc};
use rewarm::store::postgres::PgStore;
use rewarm::store::prelude::*;
use rewarm::store::sqlite::SqliteStore;
use sqlx::Connection as _;

pub const ZONES: [&str; 20] = [
    "Europe/Paris",
    "Europe/Madrid",
    "Europe/London",
    "Europe/Berlin",
    "Europe/Stockholm",
    "Europe/Warsaw",
    "America/New_York",
    "America/Chicago",
    "America/Denver",
    "America/Los_Angeles",
    "America/Sao_Paulo",
    "America/Mexico_City",
    "Asia/Tokyo",
    "Asia/Shanghai",
    "Asia/Kolkata",
    "Asia/Singapore",
    "Asia/Dubai",
    "Australia/Sydney",
    "Africa/Lagos",
    "Pacific/Auckland",
];

pub const DOMAINS: [&str; 10] = [
    "example.com",
    "example.org",
    "example.net",
    "example.fr",
    "example.de",
    "example.jp",
    "example.co.uk",
    "example.es",
    "example.cn",
    "example.io",
];

pub const DAY_MS: i64 = 86_400_000;

pub fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 12, 3, 8, 0, 0).unwrap()
}

pub fn config(database_url: &str) -> String {
    format!(
        r#"database_url = "{database_url}"
default_timezone = "Europe/Paris"
templates_dir = "templates"
[compliance]
postal_address = "Acme Inc., 1 Example Street, 75001 Paris, France"
[sender]
from = "Claire <claire@acme.example>"
[transport]
kind = "file"
outbox = "outbox"
[transport.limits]
per_second = 20
daily_cap = 50000
[transport.limits.default_domain]
per_second = 5
concurrency = 10
[scheduler]
tick = "30s"
batch_size = 500
[[segments]]
name = "competitor"
campaign = "competitor"
lost_reason = ["chose_competitor"]
[[segments]]
name = "budget"
campaign = "budget"
lost_reason = ["no_budget", "timing"]
[[segments]]
name = "rest"
campaign = "checkin"
lost_reason = ["no_decision", "bad_fit"]
[campaigns.checkin]
first_after = "90d"
every = "30d"
max_touches = 4
templates = ["checkin"]
then = "evergreen"
[campaigns.budget]
first_after = "60d"
every = "1mo"
max_touches = 3
templates = ["budget_followup", "budget_last_call"]
send_window = {{ days = "Mon-Fri", hours = "08:00-18:00" }}
then = "evergreen"
[campaigns.competitor]
first_after = "120d"
cron = "0 10 1 */2 *"
max_touches = 4
templates = ["competitor_checkin"]
send_window = {{ days = "Mon-Sun", hours = "08:00-20:00" }}
then = "evergreen"
[campaigns.evergreen]
first_after = "90d"
every = "90d"
max_touches = 4
templates = ["checkin"]
then = "evergreen"
"#
    )
}

/// The statements that generate `n` leads, their enrolments and pending deliveries.
/// `rows` is the backend's `SELECT i FROM …` of 1..=n; `time(ms)` its time from epoch ms.
pub fn generate(n: usize, rows: &str, time: &dyn Fn(&str) -> String) -> Vec<String> {
    let r = now().timestamp_millis();
    let zones: Vec<String> = ZONES
        .iter()
        .enumerate()
        .map(|(k, z)| format!("WHEN {k} THEN '{z}'"))
        .collect();
    let domains: Vec<String> = DOMAINS
        .iter()
        .enumerate()
        .map(|(k, d)| format!("WHEN {k} THEN '{d}'"))
        .collect();
    // A cheap deterministic hash of i (seed 7), one per property.
    let h = |salt: i64| format!("((i * 2654435761 + {salt} * 40503 + 7) % 1000003)");
    let reason = format!(
        "CASE WHEN {p} < 20 THEN 'no_budget' WHEN {p} < 30 THEN 'timing' WHEN {p} < 50 THEN 'chose_competitor'
              WHEN {p} < 60 THEN 'no_decision' WHEN {p} < 90 THEN 'went_quiet' ELSE 'bad_fit' END",
        p = format!("({} % 100)", h(1))
    );
    let leads = format!(
        "INSERT INTO leads (id, email, first_name, last_name, company, owner_email, lost_reason, lost_at, timezone, state, created_at, updated_at)
         SELECT i, 'lead' || i || '@' || CASE ({h2} % 10) {domains} END, 'First' || ({h5} % 2000), 'Last' || ({h6} % 10000),
                'Company ' || ({h7} % 50000), CASE WHEN i % 20 = 0 THEN NULL ELSE 'owner' || (i % 50) || '@acme.example' END, {reason},
                {lost}, CASE ({h3} % 20) {zones} END,
                CASE WHEN ({h1} % 100) BETWEEN 60 AND 89 THEN 'new' ELSE 'nurturing' END, {t0}, {t0}
         FROM ({rows}) g",
        h1 = h(1),
        h2 = h(2),
        h3 = h(3),
        h5 = h(5),
        h6 = h(6),
        h7 = h(7),
        domains = domains.join(" "),
        zones = zones.join(" "),
        lost = time(&format!("{r} - ({h} % 730) * {DAY_MS}", h = h(4))),
        t0 = time(&(r - 800 * DAY_MS).to_string()),
    );
    let campaign =
        "CASE lost_reason WHEN 'chose_competitor' THEN 'competitor' WHEN 'no_budget' THEN 'budget'
                    WHEN 'timing' THEN 'budget' ELSE 'checkin' END";
    let segment =
        "CASE lost_reason WHEN 'chose_competitor' THEN 'competitor' WHEN 'no_budget' THEN 'budget'
                   WHEN 'timing' THEN 'budget' ELSE 'rest' END";
    let enrolments = format!(
        "INSERT INTO enrolments (id, lead_id, campaign, segment, state, enrolled_at)
         SELECT id, id, {campaign}, {segment}, 'active', {t} FROM leads WHERE state = 'nurturing'",
        t = time(&(r - 30 * DAY_MS).to_string())
    );
    let deliveries = format!(
        "INSERT INTO deliveries (lead_id, enrolment_id, campaign, step, template, state, due_at, updated_at)
         SELECT l.id, l.id, e.campaign, l.id % 3,
                CASE e.campaign WHEN 'budget' THEN 'budget_followup' WHEN 'competitor' THEN 'competitor_checkin' ELSE 'checkin' END,
                'scheduled', {due}, {t}
         FROM leads l JOIN enrolments e ON e.lead_id = l.id",
        due = time(&format!(
            "{start} + ((l.id * 2654435761 + 5) % {span})",
            start = r - 10 * DAY_MS,
            span = 100 * DAY_MS
        )),
        t = time(&(r - 30 * DAY_MS).to_string())
    );
    let _ = n;
    vec![leads, enrolments, deliveries]
}

/// Wall time (s) and peak RSS (KiB) of `rewarm ARGS` (stdout discarded), by GNU time.
pub fn measure(config: &Path, args: &[&str]) -> (f64, u64) {
    let out = std::env::temp_dir().join(format!("rewarm-bench-{}.time", std::process::id()));
    let status = Command::new("/usr/bin/time")
        .arg("-f")
        .arg("%e %M")
        .arg("-o")
        .arg(&out)
        .arg(env!("CARGO_BIN_EXE_rewarm"))
        .arg("--config")
        .arg(config)
        .args(args)
        .stdout(Stdio::null())
        .status()
        .expect("run /usr/bin/time rewarm");
    assert!(status.success(), "rewarm {args:?} failed");
    let text = std::fs::read_to_string(&out).expect("GNU time's output");
    let last = text.lines().last().unwrap_or_default().to_string();
    let mut parts = last.split_whitespace();
    let secs = parts
        .next()
        .and_then(|s| s.parse().ok())
        .unwrap_or(f64::NAN);
    let kib = parts.next().and_then(|s| s.parse().ok()).unwrap_or(0);
    (secs, kib)
}

pub fn mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}

/// Writes `text` to `dir/name`.
pub fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).expect("write the config");
    path
}

/// How a backend writes what [`Seed::extra`]'s statements need beyond plain SQL.
pub struct Dialect {
    /// A time from an expression in epoch milliseconds.
    pub time: fn(&str) -> String,
    /// A JSON value from a text expression holding JSON.
    pub json: fn(&str) -> String,
    /// A binary value from a text expression.
    pub blob: fn(&str) -> String,
}

pub const SQLITE: Dialect = Dialect {
    time: |ms| ms.to_string(),
    json: |text| format!("json({text})"),
    blob: |text| format!("CAST({text} AS BLOB)"),
};

pub const POSTGRES: Dialect = Dialect {
    time: |ms| format!("to_timestamp(({ms}) / 1000.0)"),
    json: |text| format!("({text})::jsonb"),
    blob: |text| format!("convert_to({text}, 'UTF8')"),
};

/// What a benchmark's database holds: the leads of [`generate`], then `extra`'s statements
/// (run in order, after the leads, before `ANALYZE`). `kind` names the database when it is
/// kept ([`keep`]): the same kind and number of leads reuse it.
pub struct Seed {
    pub kind: &'static str,
    pub extra: fn(&Dialect) -> Vec<String>,
}

/// The leads of [`generate`] alone (`forecast`, `plan_scale`).
pub const LEADS: Seed = Seed {
    kind: "million",
    extra: |_| Vec::new(),
};

/// The folder where seeded databases are kept between runs: `REWARM_BENCH_KEEP`. Set, the
/// SQLite database is `KEEP/{kind}-{n}.db` and the PostgreSQL one `rewarm_bench_{kind}_{n}`,
/// neither is removed after the run, and the next run with the same kind and number of
/// leads reuses it instead of generating it again (minutes at a million). Unset, each run
/// generates its own in a temporary folder (SQLite) or database (PostgreSQL, dropped after).
pub fn keep() -> Option<PathBuf> {
    std::env::var_os("REWARM_BENCH_KEEP")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
}

/// The kv_state key that says a database was seeded completely (its value: kind and n).
const SEEDED: &str = "bench.seeded";

/// Changes whenever [`generate`] does, so that a kept database of older data is not reused.
const GENERATION: u32 = 2;

fn seeded_mark(seed: &Seed, n: usize) -> String {
    format!("{}-{n}-v{GENERATION}", seed.kind)
}

/// The seed's statements: the leads, `after_leads`, `extra`, then the mark that the
/// database is complete and `ANALYZE`.
fn statements(
    seed: &Seed,
    n: usize,
    rows: &str,
    dialect: &Dialect,
    after_leads: &[String],
) -> Vec<String> {
    let mut statements = generate(n, rows, &|ms| (dialect.time)(ms));
    statements.extend(after_leads.iter().cloned());
    statements.extend((seed.extra)(dialect));
    statements.push(format!(
        "INSERT INTO kv_state (key, value, updated_at) VALUES ('{SEEDED}', '{}', {})",
        seeded_mark(seed, n),
        (dialect.time)(&now().timestamp_millis().to_string())
    ));
    statements.push("ANALYZE".into());
    statements
}

/// Reads the seed's mark.
const MARK: &str = "SELECT value FROM kv_state WHERE key = 'bench.seeded'";

/// A SQLite database holding `n` generated leads and the seed's extra rows: its URL and
/// store (in `dir`, or kept and reused: [`keep`]).
pub async fn sqlite(dir: &Path, seed: &Seed, n: usize) -> (String, SqliteStore) {
    let path = match keep() {
        Some(folder) => {
            std::fs::create_dir_all(&folder).expect("create REWARM_BENCH_KEEP");
            folder.join(format!("{}-{n}.db", seed.kind))
        }
        None => dir.join("bench.db"),
    };
    let url = format!("sqlite://{}", path.display());
    if path.exists() {
        let mut conn = sqlx::SqliteConnection::connect(&url)
            .await
            .expect("connect");
        let found: Option<String> = sqlx::query_scalar(MARK)
            .fetch_optional(&mut conn)
            .await
            .ok()
            .flatten();
        let _ = conn.close().await;
        if found.as_deref() == Some(seeded_mark(seed, n).as_str()) {
            eprintln!("SQLite: reusing {} ({n} leads)", path.display());
            let store = SqliteStore::connect(&url).await.expect("SQLite");
            store.migrate().await.expect("migrate");
            return (url, store);
        }
    }
    // What is left of an incomplete seed goes, with the store's marker `.rewarm-id` (else it
    // refuses to start a new database where one was).
    for suffix in ["", "-wal", "-shm", ".rewarm-id"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
    }
    let store = SqliteStore::connect(&url).await.expect("SQLite");
    store.migrate().await.expect("migrate");
    let mut conn = sqlx::SqliteConnection::connect(&url)
        .await
        .expect("connect");
    let rows = format!(
        "WITH RECURSIVE s(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM s WHERE i < {n}) SELECT i FROM s"
    );
    let started = Instant::now();
    for sql in statements(seed, n, &rows, &SQLITE, &[]) {
        sqlx::query(sqlx::AssertSqlSafe(sql.clone()))
            .execute(&mut conn)
            .await
            .unwrap_or_else(|e| panic!("seed the database: {e}\n{sql}"));
    }
    let _ = conn.close().await;
    eprintln!(
        "SQLite: {n} leads ({}) generated in {:.1} s",
        seed.kind,
        started.elapsed().as_secs_f64()
    );
    (url, store)
}

/// The admin URL of the PostgreSQL server to measure: `REWARM_BENCH_POSTGRES_URL`, else
/// `REWARM_TEST_POSTGRES_URL` (a database is created next to it); None: SQLite only.
pub fn postgres_admin_url() -> Option<String> {
    ["REWARM_BENCH_POSTGRES_URL", "REWARM_TEST_POSTGRES_URL"]
        .iter()
        .find_map(|k| std::env::var(k).ok().filter(|v| !v.is_empty()))
}

/// The name of the PostgreSQL database of `seed` with `n` leads.
fn postgres_name(seed: &Seed, n: usize) -> String {
    match keep() {
        Some(_) => format!("rewarm_bench_{}_{n}", seed.kind),
        None => format!("rewarm_bench_{}_{n}_{}", seed.kind, std::process::id()),
    }
}

/// A PostgreSQL database created next to `admin_url`'s, holding `n` generated leads and the
/// seed's extra rows: its URL and store ([`keep`]: reused if already seeded).
/// [`drop_postgres`] removes it unless kept.
pub async fn postgres(admin_url: &str, seed: &Seed, n: usize) -> (String, PgStore) {
    let name = postgres_name(seed, n);
    let base = admin_url.split('?').next().unwrap_or(admin_url);
    let url = format!("{}/{name}", &base[..base.rfind('/').unwrap_or(base.len())]);
    if keep().is_some()
        && let Ok(mut conn) = sqlx::PgConnection::connect(&url).await
    {
        let found: Option<String> = sqlx::query_scalar(MARK)
            .fetch_optional(&mut conn)
            .await
            .ok()
            .flatten();
        let _ = conn.close().await;
        if found.as_deref() == Some(seeded_mark(seed, n).as_str()) {
            eprintln!("PostgreSQL: reusing {name} ({n} leads)");
            let store = PgStore::connect(&url).await.expect("PostgreSQL");
            store.migrate().await.expect("migrate");
            return (url, store);
        }
    }
    let mut admin = sqlx::PgConnection::connect(admin_url).await.expect("admin");
    for sql in [
        format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"),
        format!("CREATE DATABASE {name}"),
    ] {
        sqlx::query(sqlx::AssertSqlSafe(sql))
            .execute(&mut admin)
            .await
            .expect("CREATE DATABASE");
    }
    let store = PgStore::connect(&url).await.expect("PostgreSQL");
    store.migrate().await.expect("migrate");
    let mut conn = sqlx::PgConnection::connect(&url).await.expect("connect");
    let rows = format!("SELECT i FROM generate_series(1::bigint, {n}::bigint) AS s(i)");
    // The leads and enrolments are given their ids: move the sequences past them before
    // the extra rows take ids of their own.
    let sequences: Vec<String> = ["leads", "enrolments", "deliveries"]
        .iter()
        .map(|t| format!("SELECT setval('{t}_id_seq', (SELECT max(id) FROM {t}))"))
        .collect();
    let started = Instant::now();
    for sql in statements(seed, n, &rows, &POSTGRES, &sequences) {
        sqlx::query(sqlx::AssertSqlSafe(sql.clone()))
            .execute(&mut conn)
            .await
            .unwrap_or_else(|e| panic!("seed the database: {e}\n{sql}"));
    }
    eprintln!(
        "PostgreSQL: {n} leads ({}) generated in {:.1} s",
        seed.kind,
        started.elapsed().as_secs_f64()
    );
    let _ = conn.close().await;
    (url, store)
}

/// Drops the database of [`postgres`], unless it is kept ([`keep`]).
pub async fn drop_postgres(admin_url: &str, seed: &Seed, n: usize) {
    if keep().is_some() {
        return;
    }
    let name = postgres_name(seed, n);
    let mut admin = sqlx::PgConnection::connect(admin_url).await.expect("admin");
    let _ = sqlx::query(sqlx::AssertSqlSafe(format!(
        "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
    )))
    .execute(&mut admin)
    .await;
}

/// The machine's load average (1, 5 and 15 minutes, from /proc/loadavg), to print next to
/// the figures: on a shared machine they mean little without it.
pub fn load() -> String {
    let text = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    let parts: Vec<&str> = text.split_whitespace().take(3).collect();
    format!("load average {}", parts.join(", "))
}

/// The build the benchmark runs: figures of the dev profile (deps at opt-level 1, the crate
/// at 0) are not those of a release build.
pub fn profile() -> &'static str {
    if cfg!(debug_assertions) {
        "dev profile: debug build, dependencies at opt-level 1"
    } else {
        "release build"
    }
}

/// The number of leads: `REWARM_BENCH_N` (or `REWARM_BENCH_LEADS`), else a million.
pub fn leads() -> usize {
    ["REWARM_BENCH_N", "REWARM_BENCH_LEADS"]
        .iter()
        .find_map(|k| std::env::var(k).ok().and_then(|v| v.parse().ok()))
        .unwrap_or(1_000_000usize)
}
