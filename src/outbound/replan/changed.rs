//! Leads whose data changed (a re-import, the API: an `updated` event on the timeline) are
//! looked at again by each pass: the first segment that matches one now may send it to
//! another campaign ([`super::rules::after_change`]): a lead not emailed yet in its
//! enrolment moves; one already emailed moves only if its segment says `on_change =
//! "move"` (default `stay`), continuing at the step its history says. The pass remembers the
//! last `updated` event it looked at (`kv_state`), so each change is looked at once.

use std::collections::HashMap;

use chrono::{DateTime, Utc};

use super::rules::{self, Destination};
use crate::app::Loaded;
use crate::domain::lead::Lead;
use crate::store::{EnrolmentMove, MoveTarget, NextStep, Store, StoreError};

/// The `kv_state` key of the last `updated` event looked at.
const KEY: &str = "lead_changes.last_event";

/// Why events say a lead moved.
pub const VIA: &str = "lead data changed";

const PAGE: usize = 1000;

/// Moves the leads whose changed data sends them to another campaign; returns how many.
pub async fn reevaluate<S: Store>(
    store: &S,
    loaded: &Loaded,
    now: DateTime<Utc>,
) -> Result<u64, StoreError> {
    let settings = &loaded.settings;
    // Never looked at yet: from the first change on (each is looked at once).
    let mut after: i64 = store
        .kv_get(KEY)
        .await?
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let mut total = 0;
    // Bounded: each round moves the watermark forward.
    for _ in 0..1_000 {
        let Some(upto) = store.updated_upto(after, PAGE).await? else {
            break;
        };
        let enrolments = store.enrolments_updated(after, upto).await?;
        let ids: Vec<i64> = enrolments.iter().map(|(_, e)| e.lead_id).collect();
        let leads: HashMap<i64, Lead> = store
            .leads_by_ids(&ids)
            .await?
            .into_iter()
            .map(|l| (l.id, l))
            .collect();
        let moves: Vec<EnrolmentMove> = enrolments
            .iter()
            .filter_map(|(campaign, e)| {
                let lead = leads.get(&e.lead_id)?;
                let dest = rules::after_change(
                    campaign,
                    &e.segment,
                    e.steps_done > 0,
                    &settings.segments,
                    &settings.campaigns,
                    (lead, now, settings.default_tz),
                )?;
                let Destination::Campaign {
                    campaign: to,
                    segment,
                } = dest
                else {
                    return None;
                };
                let target = settings.campaigns.get(&to)?;
                let tz = lead.zone_or(settings.default_tz);
                let anchor = lead.lost_at.unwrap_or(lead.created_at);
                let next = rules::continue_at(target, e.steps_done, e.last_at, anchor, now, tz)
                    .map(|(step, due_at)| NextStep {
                        step,
                        due_at,
                        template: target.template_for(step).to_string(),
                    });
                Some(EnrolmentMove {
                    enrolment_id: e.enrolment_id,
                    lead_id: e.lead_id,
                    from_campaign: campaign.clone(),
                    via: VIA.to_string(),
                    reason: format!("segment `{segment}` matches the lead's new data"),
                    to: Some(MoveTarget {
                        campaign: to,
                        segment,
                        next,
                    }),
                })
            })
            .collect();
        total += store.move_enrolments(&moves, now).await?;
        store.kv_set(KEY, &upto.to_string()).await?;
        after = upto;
    }
    if total > 0 {
        tracing::info!(
            moved = total,
            "Leads whose data changed moved to their new segment's campaign"
        );
    }
    Ok(total)
}
