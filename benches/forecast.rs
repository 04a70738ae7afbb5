//! `rewarm forecast --days 30` over a million leads, on SQLite and PostgreSQL: wall time and
//! peak RSS of the real binary (GNU `time`), each next to references measured in the same
//! run on the same database — a plain `SELECT count(*)` of the pending deliveries in the
//! window (time) and `forecast --days 0` (the same process with nothing to simulate: its
//! peak RSS is the baseline).
//!
//!     CARGO_TARGET_DIR=… cargo bench --profile dev --bench forecast
//!     REWARM_BENCH_N=100000 cargo bench --profile dev --bench forecast          # fewer leads
//!     REWARM_BENCH_POSTGRES_URL=postgres://postgres@127.0.0.1:5432/postgres cargo bench --profile dev --bench forecast
//!
//! `REWARM_BENCH_KEEP` keeps the seeded databases and reuses them (`support/million.rs`).
//!
//! The leads are generated in SQL (seconds, not the minutes an import and a first pass
//! take): see `support/million.rs` (the went_quiet 30 % wait in `new`, and the forecast must
//! look at each).

#[path = "support/million.rs"]
mod million;

use std::path::Path;
use std::time::Instant;

use million::{config, measure, mib, now, write};
use rewarm::store::ForecastStore;
use rewarm::store::prelude::*;

/// Measures one backend whose database at `url` holds the generated leads.
async fn report<S: Store + ForecastStore>(backend: &str, store: &S, config: &Path) {
    let until = now() + chrono::Duration::days(30);
    let started = Instant::now();
    let count = store.count_pending_before(until).await.expect("count");
    let count_s = started.elapsed().as_secs_f64();
    let at = now().to_rfc3339();
    let (base_s, base_kib) = measure(config, &["forecast", "--days", "0", "--now", &at]);
    let (s, kib) = measure(config, &["forecast", "--days", "30", "--now", &at]);
    let (ls, lkib) = measure(
        config,
        &[
            "forecast", "--days", "30", "--leads", "--json", "--now", &at,
        ],
    );
    println!(
        "| {backend} | {count} | {count_s:.2} s | {base_s:.2} s, {:.0} MiB | {s:.2} s, {:.0} MiB | {ls:.2} s, {:.0} MiB |",
        mib(base_kib),
        mib(kib),
        mib(lkib)
    );
}

fn header(n: usize) {
    println!(
        "\n{n} leads, forecast from {} ({}; peak RSS by GNU time; {} at the start)\n",
        now().format("%Y-%m-%d %H:%M UTC"),
        million::profile(),
        million::load()
    );
    println!(
        "| backend | pending in 30 days | reference: SELECT count(*) | reference: forecast --days 0 | forecast --days 30 | forecast --days 30 --leads --json |"
    );
    println!("|---|---|---|---|---|---|");
}

async fn sqlite(dir: &Path, n: usize) {
    let (url, store) = million::sqlite(dir, &million::LEADS, n).await;
    let config = write(dir, "sqlite.toml", &config(&url));
    report("SQLite", &store, &config).await;
}

async fn postgres(dir: &Path, n: usize) {
    let Some(admin_url) = million::postgres_admin_url() else {
        println!("| PostgreSQL | (set REWARM_BENCH_POSTGRES_URL to measure) | | | | |");
        return;
    };
    {
        let (url, store) = million::postgres(&admin_url, &million::LEADS, n).await;
        let config = write(dir, "postgres.toml", &config(&url));
        report("PostgreSQL", &store, &config).await;
    }
    million::drop_postgres(&admin_url, &million::LEADS, n).await;
}

#[tokio::main]
async fn main() {
    let n = million::leads();
    let dir = tempfile::tempdir().expect("a temporary folder");
    header(n);
    sqlite(dir.path(), n).await;
    postgres(dir.path(), n).await;
}
