//! `rewarm explain EMAIL [--now T]`: the lead's story in plain words (see
//! `outbound::explain`); this file only reads the store and prints.

use std::path::Path;
use std::process::ExitCode;

use anyhow::Context as _;
use chrono::{DateTime, Utc};

use super::with_store;
use crate::config::Settings;
use crate::domain::email::EmailAddress;
use crate::outbound::explain::{Facts, Versions, explain};
use crate::store::Store;

#[derive(Debug, clap::Args)]
pub struct ExplainArgs {
    /// The lead's email address.
    pub email: String,
}

pub async fn run(config: &Path, args: ExplainArgs, now: DateTime<Utc>) -> anyhow::Result<ExitCode> {
    let settings = Settings::load(config)?;
    let email = EmailAddress::parse(&args.email)?;
    with_store!(&settings.database_url, |store| {
        store.migrate().await?;
        match story(&store, &settings, &email, now).await? {
            Some(lines) => {
                for line in lines {
                    println!("{line}");
                }
                Ok(ExitCode::SUCCESS)
            }
            None => {
                eprintln!("no lead with email {email}");
                Ok(ExitCode::FAILURE)
            }
        }
    })
}

/// The story of the lead with `email` (None: no such lead), as `explain` prints it.
pub async fn story<S: Store>(
    store: &S,
    settings: &Settings,
    email: &EmailAddress,
    now: DateTime<Utc>,
) -> anyhow::Result<Option<Vec<String>>> {
    let Some(lead) = store.lead_by_email(email).await? else {
        return Ok(None);
    };
    let timeline = store.timeline(lead.id).await?;
    let deliveries = store.lead_deliveries(lead.id).await?;
    let paused = store.paused_campaigns().await?;
    let suppressed = store
        .suppression_for(&lead.email)
        .await?
        .map(|s| s.reason.as_str().to_string());
    let facts = Facts {
        settings,
        lead: &lead,
        lifecycle: store.lead_lifecycle(lead.id).await?.unwrap_or_default(),
        deliveries: &deliveries,
        timeline: &timeline,
        paused: &paused,
        score: store.score(lead.id).await?,
        suppressed,
        versions: Versions {
            followed: store.enrolment_versions(lead.id).await?,
            current: store.current_versions().await?,
        },
        now,
    };
    Ok(Some(explain(&facts)))
}
