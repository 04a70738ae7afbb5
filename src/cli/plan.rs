//! `rewarm plan [--json]`: what the configuration given by `--config` would do to the leads
//! in flight, compared with the campaigns the daemon applied last (recorded in the
//! database). Nothing is written. The rules are `outbound::replan`'s.

use std::path::Path;
use std::process::ExitCode;

use anyhow::Context as _;
use chrono::{DateTime, Utc};

use super::with_store;
use crate::config::Settings;
use crate::outbound::replan::plan::plan;
use crate::store::Store;

#[derive(Debug, Default, clap::Args)]
pub struct PlanArgs {
    /// Print the plan as JSON.
    #[arg(long)]
    pub json: bool,
}

pub async fn run(config: &Path, args: PlanArgs, now: DateTime<Utc>) -> anyhow::Result<ExitCode> {
    let settings = Settings::load(config)?;
    let url = settings.database_url.clone();
    with_store!(&url, |store| {
        store
            .migrate()
            .await
            .context("Failed to migrate the database")?;
        let p = plan(&store, &settings, now)
            .await
            .context("Failed to read what the campaigns' leads are waiting for")?;
        if args.json {
            println!("{}", serde_json::to_string_pretty(&p)?);
        } else {
            print!("{}", p.text());
        }
        Ok(ExitCode::SUCCESS)
    })
}
