//! `rewarm plan` over a million leads, on SQLite and PostgreSQL: wall time and peak RSS of
//! the real binary (GNU `time`), next to references measured in the same run on the same
//! database — a plain `SELECT count(*)` of the waiting deliveries, and `plan` of the config
//! the daemon applied (every campaign unchanged: only the version and lead counts are read).
//!
//!     CARGO_TARGET_DIR=… cargo bench --profile dev --bench plan_scale
//!     REWARM_BENCH_N=100000 cargo bench --profile dev --bench plan_scale          # fewer leads
//!     REWARM_BENCH_POSTGRES_URL=postgres://postgres@127.0.0.1:5432/postgres cargo bench --profile dev --bench plan_scale
//!     REWARM_BENCH_KEEP=/var/tmp/rewarm-bench cargo bench --profile dev --bench plan_scale   # keep and reuse the seeded databases
//!
//! Environment: `REWARM_BENCH_N` (default 1,000,000), `REWARM_BENCH_POSTGRES_URL` (or
//! `REWARM_TEST_POSTGRES_URL`: an admin URL, a database is created next to it),
//! `REWARM_BENCH_KEEP` (see `support/million.rs`: `keep`).
//!
//! The leads are those of `support/million.rs` (700,000 enrolled with a waiting step,
//! 300,000 in `new` that no segment takes). The daemon "applied" the config of the forecast
//! benchmark (its campaign versions are recorded); the plan compares it with an edit that
//! touches every rule: `competitor` cut from 4 touches to 2 (its steps 3 cancelled), `budget`
//! every month → every 3 weeks with a new first template (re-timed, re-templated, samples),
//! `checkin` removed with its segment now naming `evergreen` (moved), and a new segment
//! for `went_quiet` leads lost over a year ago (enrolling: every `new` lead is examined).

#[path = "support/million.rs"]
mod million;

use std::path::Path;
use std::time::Instant;

use million::{config, measure, mib, now, write};
use rewarm::config::Settings;
use rewarm::outbound::replan::rules::CampaignDef;
use rewarm::store::ForecastStore;
use rewarm::store::prelude::*;

/// The edited config: see the module docs.
fn edited(url: &str) -> String {
    let applied = config(url);
    let mut out = applied
        .replace(
            "[campaigns.checkin]\nfirst_after = \"90d\"\nevery = \"30d\"\nmax_touches = 4\ntemplates = [\"checkin\"]\nthen = \"evergreen\"\n",
            "",
        )
        .replace(
            "name = \"rest\"\ncampaign = \"checkin\"",
            "name = \"rest\"\ncampaign = \"evergreen\"",
        )
        .replace(
            "cron = \"0 10 1 */2 *\"\nmax_touches = 4",
            "cron = \"0 10 1 */2 *\"\nmax_touches = 2",
        )
        .replace(
            "every = \"1mo\"\nmax_touches = 3\ntemplates = [\"budget_followup\", \"budget_last_call\"]",
            "every = \"21d\"\nmax_touches = 3\ntemplates = [\"budget_last_call\", \"budget_followup\"]",
        );
    out = out.replace(
        "[[segments]]\nname = \"rest\"",
        "[[segments]]\nname = \"quiet\"\ncampaign = \"evergreen\"\nlost_reason = [\"went_quiet\"]\nmin_age = \"365d\"\n[[segments]]\nname = \"rest\"",
    );
    assert_ne!(out, applied);
    assert!(!out.contains("[campaigns.checkin]"), "checkin removed");
    out
}

/// Records the campaigns of `config` as applied (what the daemon does at start-up).
async fn apply_versions<S: Store>(store: &S, config: &Path) {
    let settings = Settings::load(config).expect("the applied config");
    for (name, campaign) in &settings.campaigns {
        let def = CampaignDef::of(campaign);
        store
            .record_version(name, &def.version(), &def.to_json(), now())
            .await
            .expect("record a version");
    }
}

async fn report<S: Store + ForecastStore>(backend: &str, store: &S, dir: &Path, url: &str) {
    let applied = write(dir, &format!("{backend}-applied.toml"), &config(url));
    let edit = write(dir, &format!("{backend}-edited.toml"), &edited(url));
    apply_versions(store, &applied).await;
    let started = Instant::now();
    let waiting = store
        .count_pending_before(now() + chrono::Duration::days(36_500))
        .await
        .expect("count");
    let count_ms = started.elapsed().as_secs_f64() * 1000.0;
    let at = now().to_rfc3339();
    let (base_s, base_kib) = measure(&applied, &["plan", "--now", &at]);
    let (s, kib) = measure(&edit, &["plan", "--now", &at]);
    let (js, jkib) = measure(&edit, &["plan", "--json", "--now", &at]);
    println!(
        "| {backend} | {waiting} | {count_ms:.1} ms | {base_s:.2} s, {:.0} MiB | {s:.2} s, {:.0} MiB | {js:.2} s, {:.0} MiB | {} |",
        mib(base_kib),
        mib(kib),
        mib(jkib),
        million::load()
    );
}

async fn sqlite(dir: &Path, n: usize) {
    let (url, store) = million::sqlite(dir, &million::LEADS, n).await;
    report("SQLite", &store, dir, &url).await;
}

async fn postgres(dir: &Path, n: usize) {
    let Some(admin_url) = million::postgres_admin_url() else {
        println!("| PostgreSQL | (set REWARM_BENCH_POSTGRES_URL to measure) | | | | | |");
        return;
    };
    {
        let (url, store) = million::postgres(&admin_url, &million::LEADS, n).await;
        report("PostgreSQL", &store, dir, &url).await;
    }
    million::drop_postgres(&admin_url, &million::LEADS, n).await;
}

#[tokio::main]
async fn main() {
    let n = million::leads();
    let dir = tempfile::tempdir().expect("a temporary folder");
    println!(
        "\n{n} leads, plan at {} ({}; peak RSS by GNU time; {} at the start)\n",
        now().format("%Y-%m-%d %H:%M UTC"),
        million::profile(),
        million::load()
    );
    println!(
        "| backend | waiting deliveries | reference: SELECT count(*) | reference: plan, nothing changed | plan of the edit | plan --json | after the row |"
    );
    println!("|---|---|---|---|---|---|---|");
    sqlite(dir.path(), n).await;
    postgres(dir.path(), n).await;
}
