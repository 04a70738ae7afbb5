//! `rewarm run`: the daemon, or one pass with `--once`. Arguments, start-up (migrations,
//! `--import`) and printing only; the loop itself is [`crate::daemon`].

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context as _;
use chrono::{DateTime, Utc};

use super::{init_logging, with_store};
use crate::app::{Current, Loaded, build_transport};
use crate::config::Settings;
use crate::daemon;
use crate::domain::clock::Clock;
use crate::store::Store;

#[derive(Debug, clap::Args)]
pub struct RunArgs {
    /// One pass (enrol, send everything due now) and exit.
    #[arg(long)]
    pub once: bool,
    /// Import these lead files (CSV or JSON Lines) before starting.
    #[arg(long)]
    pub import: Vec<PathBuf>,
    /// Do not apply database migrations at start.
    #[arg(long)]
    pub no_migrate: bool,
}

/// `now` is the global `--now`: with `--once` the pass runs at that moment; the daemon's clock
/// starts there and runs on (so a test's daemon sees time pass without reading the wall clock).
pub async fn run(
    config: &Path,
    args: RunArgs,
    now: Option<DateTime<Utc>>,
) -> anyhow::Result<ExitCode> {
    let settings = Settings::load(config)?;
    init_logging(&settings);
    let url = settings.database_url.clone();
    let clock = match now {
        None => Clock::Real,
        Some(t) if args.once => Clock::Fixed(t),
        Some(t) => Clock::starting_at(t),
    };
    with_store!(&url, |store| run_with(store, config, settings, args, clock)
        .await)
}

async fn run_with<S: Store>(
    store: S,
    config: &Path,
    settings: Settings,
    args: RunArgs,
    clock: Clock,
) -> anyhow::Result<ExitCode> {
    if !args.no_migrate {
        store
            .migrate()
            .await
            .context("Failed to migrate the database")?;
    }
    let loaded = Loaded::with_store(settings, &store).await?;
    // Campaign edits apply by rule before anything is sent (docs/campaigns.md).
    crate::daemon::apply_campaign_edits(&store, &loaded, clock.now()).await?;
    for file in &args.import {
        let outcome =
            super::leads::import_file(&store, &loaded.settings, file, false, clock.now(), true)
                .await?;
        tracing::info!(file = %file.display(), inserted = outcome.summary.inserted, updated = outcome.summary.updated, merged = outcome.merged, rejected = outcome.rejected, "Imported leads");
    }
    let transport = build_transport(&loaded.settings)?;
    if args.once {
        let report = daemon::once(&store, &Arc::new(loaded), &transport, clock.now()).await?;
        println!("{}", serde_json::to_string(&report)?);
    } else {
        daemon::run(&store, config, Current::new(loaded), &transport, clock).await?;
    }
    Ok(ExitCode::SUCCESS)
}
