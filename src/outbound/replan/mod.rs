//! Edits to campaigns, applied by a written rule (docs/campaigns.md, "Editing a campaign").
//!
//! Every campaign definition the daemon applies is recorded with its version (a hash of the
//! normalised definition, [`rules::CampaignDef`]) in `campaign_versions`; an enrolment
//! follows its campaign's current version (`enrolments.version`: NULL = the current one;
//! pinned when the campaign changes). At start-up and on SIGHUP, [`apply`] compares each
//! configured campaign with the version recorded last and re-plans what waits:
//!
//! - steps at or past a lowered `max_touches` are cancelled (event `cancelled`, reason
//!   "config change"), and an enrolment left with nothing to send completes;
//! - every waiting step takes the template the new config names for its step;
//! - a changed `first_after`, `every`/`cron` or send window re-times the next scheduled step
//!   from the new cadence (event `rescheduled`);
//! - a campaign no longer configured moves its leads to the campaign their segment now names
//!   (or the first segment that matches them), at the step their history says; with no such
//!   campaign they are parked `paused` with a reason — never completed, never failed.
//!
//! [`plan::plan`] runs the same rules without writing: `rewarm plan`, `check`'s warnings and
//! the summary SIGHUP logs.
//!
//! - [`rules`]: the pure rules (definitions, versions, a step's fate, a lead's destination).
//! - [`changed`]: leads whose data changed re-evaluated against the segments, by rule.
//! - [`plan`]: what a config would do, counted in SQL, with samples; text and JSON.

pub mod changed;
pub mod plan;
pub mod rules;

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use chrono_tz::Tz;

use crate::app::Loaded;
use crate::config::{Campaign, Settings};
use crate::domain::calendar::Place;
use crate::domain::lead::Lead;
use crate::outbound::scheduler;
use crate::store::{EnrolmentMove, MoveTarget, NextStep, Rescheduled, Store, StoreError};
use rules::{CampaignDef, Destination, Waiting};

/// The reason events of a re-plan give.
pub const REASON: &str = "config change";

const PAGE: usize = 1000;

/// What applying a configuration did.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct Applied {
    /// Campaigns whose version changed (or was recorded for the first time).
    pub changed: Vec<String>,
    pub cancelled: u64,
    pub retemplated: u64,
    pub rescheduled: u64,
    /// Leads of removed campaigns moved to another campaign, or parked.
    pub moved: u64,
}

impl Applied {
    pub fn is_empty(&self) -> bool {
        *self == Applied::default()
    }
}

/// Whether `settings` holds a campaign edit to apply: a campaign whose version is not the one
/// applied last, or leads in a campaign no longer configured.
pub async fn pending<S: Store>(store: &S, settings: &Settings) -> Result<bool, StoreError> {
    let current = store.current_versions().await?;
    let changed = settings.campaigns.iter().any(|(name, c)| {
        current
            .get(name)
            .is_none_or(|v| v.version != CampaignDef::of(c).version())
    });
    if changed {
        return Ok(true);
    }
    Ok(store
        .active_campaigns()
        .await?
        .iter()
        .any(|c| !settings.campaigns.contains_key(c)))
}

/// Applies `loaded`'s campaigns to the leads in flight (see the module docs), then gives
/// enrolments left with nothing to send their next step or completes them.
pub async fn apply<S: Store>(
    store: &S,
    loaded: &Loaded,
    now: DateTime<Utc>,
) -> Result<Applied, StoreError> {
    let settings = &loaded.settings;
    let current = store.current_versions().await?;
    let mut applied = Applied::default();
    for (name, campaign) in &settings.campaigns {
        let def = CampaignDef::of(campaign);
        let version = def.version();
        let cur = current.get(name);
        if cur.is_some_and(|c| c.version == version) {
            continue;
        }
        let old = cur.and_then(|c| CampaignDef::from_json(&c.definition));
        replan(store, settings, campaign, old.as_ref(), now, &mut applied).await?;
        store
            .record_version(name, &version, &def.to_json(), now)
            .await?;
        // A first recording pins nothing: every enrolment follows the current version.
        if let Some(cur) = cur {
            store
                .pin_versions(name, Some(cur.version.as_str()), &version)
                .await?;
        }
        applied.changed.push(name.clone());
    }
    let removed: std::collections::BTreeSet<String> = store
        .active_campaigns()
        .await?
        .into_iter()
        .filter(|c| !settings.campaigns.contains_key(c))
        .collect();
    for name in removed {
        applied.moved += move_removed(store, settings, &name, now).await?;
    }
    if applied.cancelled > 0 {
        for name in &applied.changed {
            scheduler::resume_stalled_in(store, loaded, now, name).await?;
        }
    }
    Ok(applied)
}

/// Re-plans the waiting steps of `campaign` from `old` (None: unknown) to its new definition.
async fn replan<S: Store>(
    store: &S,
    settings: &Settings,
    campaign: &Campaign,
    old: Option<&CampaignDef>,
    now: DateTime<Utc>,
    applied: &mut Applied,
) -> Result<(), StoreError> {
    let name = &campaign.name;
    let max = campaign.cadence.max_touches;
    // Read first (one aggregate), write only what the rules change.
    let counts = store.waiting_counts(name).await?;
    if counts.iter().any(|w| w.step >= max) {
        applied.cancelled += store.cancel_from_step(name, max, REASON, now).await?;
    }
    if counts
        .iter()
        .any(|w| w.step < max && w.template != campaign.template_for(w.step))
    {
        let last = campaign.templates.len().saturating_sub(1);
        for (i, template) in campaign.templates.iter().enumerate() {
            let to = if i == last { u32::MAX } else { i as u32 };
            applied.retemplated += store.retemplate(name, i as u32, to, template, now).await?;
        }
    }
    if !old.is_some_and(|o| o.timing_differs(&CampaignDef::of(campaign))) {
        return Ok(());
    }
    let mut after = 0;
    loop {
        let page = store.waiting_steps(name, false, after, PAGE).await?;
        let Some(last) = page.last() else { break };
        after = last.id;
        let moves: Vec<Rescheduled> = page
            .iter()
            .filter_map(|w| {
                let place = place(w, settings.default_tz);
                let due = rules::fate(old, campaign, &waiting(w), now, place).due_at?;
                Some(Rescheduled {
                    delivery_id: w.id,
                    lead_id: w.lead_id,
                    step: w.step,
                    from: w.due_at,
                    to: due,
                })
            })
            .collect();
        applied.rescheduled += store.reschedule(name, &moves, REASON, now).await?;
        if page.len() < PAGE {
            break;
        }
    }
    Ok(())
}

/// Moves the leads of the removed campaign `removed` (or parks them); returns how many.
async fn move_removed<S: Store>(
    store: &S,
    settings: &Settings,
    removed: &str,
    now: DateTime<Utc>,
) -> Result<u64, StoreError> {
    let mut total = 0;
    // Bounded: each page ends its enrolments, so the loop cannot see them again.
    for _ in 0..10_000 {
        let page = store.active_enrolments(removed, 0, PAGE).await?;
        if page.is_empty() {
            break;
        }
        let ids: Vec<i64> = page.iter().map(|e| e.lead_id).collect();
        let leads: HashMap<i64, Lead> = store
            .leads_by_ids(&ids)
            .await?
            .into_iter()
            .map(|l| (l.id, l))
            .collect();
        let moves: Vec<EnrolmentMove> = page
            .iter()
            .map(|e| {
                let lead = leads.get(&e.lead_id);
                let tz = lead.map_or(settings.default_tz, |l| l.zone_or(settings.default_tz));
                let dest = rules::destination(
                    removed,
                    &e.segment,
                    &settings.segments,
                    &settings.campaigns,
                    lead.map(|l| (l, now, settings.default_tz)),
                );
                let anchor = lead.map_or(now, |l| l.lost_at.unwrap_or(l.created_at));
                let (to, reason) = match dest {
                    Destination::Campaign { campaign, segment } => {
                        let target = &settings.campaigns[&campaign];
                        let next =
                            rules::continue_at(target, e.steps_done, e.last_at, anchor, now, tz)
                                .map(|(step, due_at)| NextStep {
                                    step,
                                    due_at,
                                    template: target.template_for(step).to_string(),
                                });
                        let reason = format!("campaign `{removed}` was removed");
                        (
                            Some(MoveTarget {
                                campaign,
                                segment,
                                next,
                            }),
                            reason,
                        )
                    }
                    Destination::Park(reason) => (None, reason),
                };
                EnrolmentMove {
                    enrolment_id: e.enrolment_id,
                    lead_id: e.lead_id,
                    from_campaign: removed.to_string(),
                    via: REASON.to_string(),
                    to,
                    reason,
                }
            })
            .collect();
        let moved = store.move_enrolments(&moves, now).await?;
        total += moved;
        if moved == 0 {
            break;
        }
    }
    Ok(total)
}

/// Where the lead of a stored waiting step is: its zone and `country` field.
pub(crate) fn place(w: &crate::store::WaitingStep, default: Tz) -> Place {
    Place::stored(w.timezone.as_deref(), w.country.as_deref(), default)
}

/// A stored waiting step as the rules see it.
pub(crate) fn waiting(w: &crate::store::WaitingStep) -> Waiting {
    Waiting {
        step: w.step,
        template: w.template.clone(),
        due_at: w.due_at,
        retrying: w.state == "retry_wait",
        anchor: w.anchor,
        prev_at: w.prev_at,
    }
}
