//! What a lead's story is told from, read from the store once: `explain`, `leads show` and
//! the console's lead page gather it here and hand it to [`super::explain`] (which does no
//! I/O).

use chrono::{DateTime, Utc};

use crate::config::Settings;
use crate::domain::lead::Lead;
use crate::outbound::explain::{Facts, Versions};
use crate::store::{Event, LeadDelivery, LeadLifecycle, PausedCampaign, Store, StoreError};

/// The stored facts about one lead.
#[derive(Debug, Clone)]
pub struct Story {
    pub lifecycle: LeadLifecycle,
    /// Oldest first.
    pub deliveries: Vec<LeadDelivery>,
    /// Oldest first.
    pub timeline: Vec<Event>,
    pub paused: Vec<PausedCampaign>,
    /// Undecayed (see `InboundStore::score`).
    pub score: i64,
    /// The reason of the suppression entry covering the lead, if any.
    pub suppressed: Option<String>,
    /// The campaign versions the lead's enrolments follow, and each campaign's current one.
    pub versions: Versions,
}

impl Story {
    /// Reads the facts about `lead`.
    pub async fn read<S: Store>(store: &S, lead: &Lead) -> Result<Story, StoreError> {
        Ok(Story {
            lifecycle: store.lead_lifecycle(lead.id).await?.unwrap_or_default(),
            deliveries: store.lead_deliveries(lead.id).await?,
            timeline: store.timeline(lead.id).await?,
            paused: store.paused_campaigns().await?,
            score: store.score(lead.id).await?,
            suppressed: store
                .suppression_for(&lead.email)
                .await?
                .map(|s| s.reason.as_str().to_string()),
            versions: Versions {
                followed: store.enrolment_versions(lead.id).await?,
                current: store.current_versions().await?,
            },
        })
    }

    /// The facts `explain` tells the story from, as of `now`.
    pub fn facts<'a>(
        &'a self,
        settings: &'a Settings,
        lead: &'a Lead,
        now: DateTime<Utc>,
    ) -> Facts<'a> {
        Facts {
            settings,
            lead,
            lifecycle: self.lifecycle.clone(),
            deliveries: &self.deliveries,
            timeline: &self.timeline,
            paused: &self.paused,
            score: self.score,
            suppressed: self.suppressed.clone(),
            versions: self.versions.clone(),
            now,
        }
    }
}
