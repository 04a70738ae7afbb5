//! Forecast: what will be sent when, computed by the same cadence code the scheduler uses
//! (send windows included), from what is scheduled now and from leads waiting to be enrolled.
//! A call step is planned too, as a `call` (a task for the owner, no email).
//! It reads, never writes.

use std::collections::HashMap;

use chrono::{DateTime, Utc};

use crate::config::Settings;
use crate::domain::lead::{Lead, LeadState};
use crate::domain::segment::first_match;
use crate::store::{Store, StoreError};

/// One email the daemon will send, if nothing changes (no reply, no new config).
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Planned {
    pub at: DateTime<Utc>,
    /// `at` in the lead's own zone.
    pub local: String,
    pub email: String,
    pub campaign: String,
    /// 1 = the first email.
    pub step: u32,
    pub template: String,
    /// `email`, or `call`: a call step sends the lead nothing; its owner gets a call task.
    pub kind: &'static str,
}

/// Everything planned from `now` (inclusive) until `until` (exclusive), by time.
pub async fn plan<S: Store>(
    store: &S,
    settings: &Settings,
    now: DateTime<Utc>,
    until: DateTime<Utc>,
) -> Result<Vec<Planned>, StoreError> {
    let pending = store.pending_deliveries().await?;
    let ids: Vec<i64> = pending.iter().map(|p| p.lead_id).collect();
    let leads: HashMap<i64, Lead> = store
        .leads_by_ids(&ids)
        .await?
        .into_iter()
        .map(|l| (l.id, l))
        .collect();
    let mut planned = Vec::new();
    for p in &pending {
        let (Some(lead), Some(campaign)) =
            (leads.get(&p.lead_id), settings.campaigns.get(&p.campaign))
        else {
            continue;
        };
        let place = lead.place(settings.default_tz);
        // Overdue work goes out at the next pass, once the window is open (on an open day).
        let first = campaign.cadence.next_slot(p.due_at.max(now), place);
        follow(
            settings,
            lead,
            &campaign.name,
            p.step,
            first,
            until,
            &mut planned,
        );
    }
    // Leads not enrolled yet that a segment takes now are enrolled at the next pass.
    let mut after = 0;
    loop {
        let page = store.leads_in_state(LeadState::New, after, 1000).await?;
        let Some(last) = page.last() else { break };
        after = last.id;
        for lead in &page {
            let Some(segment) = first_match(&settings.segments, lead, now, settings.default_tz)
            else {
                continue;
            };
            let Some(campaign) = settings.campaigns.get(&segment.campaign) else {
                continue;
            };
            let place = lead.place(settings.default_tz);
            let first =
                campaign
                    .cadence
                    .first_due(lead.lost_at.unwrap_or(lead.created_at), now, place);
            follow(
                settings,
                lead,
                &campaign.name,
                0,
                first,
                until,
                &mut planned,
            );
        }
        if page.len() < 1000 {
            break;
        }
    }
    planned.sort_by(|a, b| (a.at, &a.email).cmp(&(b.at, &b.email)));
    Ok(planned)
}

/// Step `step` at `at`, then every following step of the cadence, while before `until`.
fn follow(
    settings: &Settings,
    lead: &Lead,
    campaign: &str,
    step: u32,
    at: DateTime<Utc>,
    until: DateTime<Utc>,
    out: &mut Vec<Planned>,
) {
    let Some(c) = settings.campaigns.get(campaign) else {
        return;
    };
    let tz = lead.zone_or(settings.default_tz);
    let (mut step, mut at) = (step, at);
    while at < until && step < c.cadence.max_touches {
        out.push(Planned {
            at,
            local: at
                .with_timezone(&tz)
                .format("%Y-%m-%d %H:%M %Z")
                .to_string(),
            email: lead.email.to_string(),
            campaign: campaign.to_string(),
            step: step + 1,
            template: c.template_for(step).to_string(),
            kind: if c.call_for(step).is_some() {
                "call"
            } else {
                "email"
            },
        });
        step += 1;
        match c
            .cadence
            .next_due(step, at, lead.place(settings.default_tz))
        {
            Some(next) => at = next,
            None => break,
        }
    }
}
