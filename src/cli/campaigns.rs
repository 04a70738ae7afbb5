//! `rewarm campaigns pause|resume NAME` and `campaigns paused`: hold a whole campaign's
//! waiting emails and let them go again (see `store::hold`).

use std::path::Path;
use std::process::ExitCode;

use anyhow::Context as _;
use chrono::{DateTime, Utc};

use super::with_store;
use crate::config::Settings;
use crate::store::Store;

#[derive(Debug, clap::Subcommand)]
pub enum CampaignsCommand {
    /// Holds every waiting email of the campaign (and those scheduled later) until resumed;
    /// nothing is dropped, each lead's timeline gets `paused`.
    Pause {
        name: String,
        /// Who pauses it (on each lead's timeline).
        #[arg(long, default_value = "cli")]
        by: String,
    },
    /// Lets the campaign's held emails go again: each is due when it was (an overdue one at
    /// the lead's next open slot); timelines get `resumed`.
    Resume {
        name: String,
        #[arg(long, default_value = "cli")]
        by: String,
    },
    /// Lists the paused campaigns.
    Paused,
}

pub async fn campaigns(
    config: &Path,
    cmd: CampaignsCommand,
    now: DateTime<Utc>,
) -> anyhow::Result<ExitCode> {
    let settings = Settings::load(config)?;
    with_store!(&settings.database_url, |store| {
        store.migrate().await?;
        run(&store, &settings, cmd, now).await
    })
}

async fn run<S: Store>(
    store: &S,
    settings: &Settings,
    cmd: CampaignsCommand,
    now: DateTime<Utc>,
) -> anyhow::Result<ExitCode> {
    let known = |name: &str| {
        if settings.campaigns.contains_key(name) {
            Ok(())
        } else {
            let names: Vec<&str> = settings.campaigns.keys().map(String::as_str).collect();
            Err(anyhow::anyhow!(
                "campaign `{name}` is not in {} (campaigns: {})",
                settings.file.display(),
                names.join(", ")
            ))
        }
    };
    match cmd {
        CampaignsCommand::Pause { name, by } => {
            known(&name)?;
            let change = store
                .pause_campaign(&name, &by, now)
                .await
                .with_context(|| format!("Failed to pause campaign `{name}`"))?;
            let was = if change.changed {
                "paused"
            } else {
                "already paused"
            };
            println!(
                "campaign `{name}`: {was}; {} waiting email(s) held",
                change.deliveries
            );
        }
        CampaignsCommand::Resume { name, by } => {
            let change = store
                .resume_campaign(&name, &by, now)
                .await
                .with_context(|| format!("Failed to resume campaign `{name}`"))?;
            if !change.changed {
                println!("campaign `{name}`: not paused (nothing changed)");
            } else {
                println!(
                    "campaign `{name}`: resumed; {} held email(s) released",
                    change.deliveries
                );
            }
        }
        CampaignsCommand::Paused => {
            for p in store.paused_campaigns().await? {
                println!(
                    "{}  paused {} by {}",
                    p.name,
                    p.paused_at.format("%Y-%m-%d %H:%M UTC"),
                    p.paused_by
                );
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
