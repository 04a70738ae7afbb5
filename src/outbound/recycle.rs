//! Bringing a lead back to nurture (`leads recycle`, sales' "not now — N months"): the one
//! rule both use.
//!
//! - Without a campaign named: the cadence re-warming (or won, out of scope, a pause, a
//!   suppression) stopped resumes where it stopped, not before `resume_at`
//!   (`LeadStore::recycle`). With nothing to resume, a lead that was never enrolled is
//!   enrolled by its segment with its first email not before `resume_at`; one that was
//!   (e.g. `completed`) starts a new round of its segment's campaign, its first email at
//!   `resume_at` (the first open moment of the send window).
//! - With `campaign`: the lead enters that campaign (a new round if it was in it before),
//!   its first email at `resume_at`.
//!
//! A suppressed lead comes back only when no suppression entry covers its address any more;
//! `new` and `nurturing` leads are in nurture already.

use chrono::{DateTime, Utc};

use crate::config::Settings;
use crate::domain::lead::{Lead, LeadState};
use crate::domain::lifecycle::recyclable;
use crate::outbound::scheduler::enrolment_for;
use crate::store::{NewEnrolment, Store, StoreError};

/// What [`bring_back`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Recycled {
    /// Back in nurture (or `new`/`completed` when no segment takes it): `to`, with its next
    /// email not before `next`.
    Back {
        from: LeadState,
        to: LeadState,
        campaign: Option<String>,
        next: DateTime<Utc>,
    },
    /// Not done; the text says why.
    Refused(String),
}

/// Brings `lead` back (see the module docs); events `recycled` (and `enrolled` when it
/// enters a campaign) are written by the store.
pub async fn bring_back<S: Store>(
    store: &S,
    settings: &Settings,
    lead: &Lead,
    reason: &str,
    resume_at: DateTime<Utc>,
    campaign: Option<&str>,
    now: DateTime<Utc>,
) -> Result<Recycled, StoreError> {
    // The CRM hears of it (`lead.recycled`, then `lead.enrolled`) from the event log
    // (`notify::relay`), like the daemon's own recycles.
    recycle(store, settings, lead, reason, resume_at, campaign, now).await
}

async fn recycle<S: Store>(
    store: &S,
    settings: &Settings,
    lead: &Lead,
    reason: &str,
    resume_at: DateTime<Utc>,
    campaign: Option<&str>,
    now: DateTime<Utc>,
) -> Result<Recycled, StoreError> {
    let from = lead.state;
    if !recyclable(from) {
        return Ok(Recycled::Refused(format!(
            "{} is {}: it is in nurture already",
            lead.email,
            from.as_str()
        )));
    }
    if from == LeadState::Suppressed
        && let Some(entry) = store.suppression_for(&lead.email).await?
    {
        return Ok(Recycled::Refused(format!(
            "{} is still on the suppression list (entry `{}`, {}); remove the entry first",
            lead.email,
            entry.address,
            entry.reason.as_str()
        )));
    }
    if let Some(name) = campaign {
        let Some(entry) = entry_into(settings, lead, name, resume_at, now) else {
            let known: Vec<_> = settings.campaigns.keys().cloned().collect();
            return Ok(Recycled::Refused(format!(
                "campaign `{name}` is not defined (defined: {})",
                known.join(", ")
            )));
        };
        return enter(store, lead, entry, Some(reason), now).await;
    }
    match store.recycle(lead.id, reason, resume_at, now).await? {
        None => Ok(Recycled::Refused(format!(
            "{} changed meanwhile; nothing was recycled",
            lead.email
        ))),
        Some(LeadState::Nurturing) => Ok(Recycled::Back {
            from,
            to: LeadState::Nurturing,
            campaign: None,
            next: resume_at,
        }),
        Some(LeadState::New) => {
            // Never in a cadence: enrol it now so `resume_at` holds (the daemon would send at once).
            let Some(e) = enrolment_for(settings, lead, now, resume_at) else {
                return Ok(back(from, LeadState::New, resume_at));
            };
            let (campaign, next) = (e.campaign.clone(), e.first_due);
            let to = if store.enrol(std::slice::from_ref(&e), now).await? > 0 {
                LeadState::Nurturing
            } else {
                LeadState::New
            };
            Ok(Recycled::Back {
                from,
                to,
                campaign: Some(campaign),
                next,
            })
        }
        Some(state) => {
            // Nothing to resume: a new round of its segment's campaign.
            let segment = crate::domain::segment::first_match(
                &settings.segments,
                lead,
                now,
                settings.default_tz,
            );
            let entry =
                segment.and_then(|s| entry_into(settings, lead, &s.campaign, resume_at, now));
            match entry {
                Some(entry) => {
                    let mut moved = lead.clone();
                    moved.state = state;
                    enter(store, &moved, entry, None, now)
                        .await
                        .map(|r| match r {
                            Recycled::Back {
                                to, campaign, next, ..
                            } => Recycled::Back {
                                from,
                                to,
                                campaign,
                                next,
                            },
                            refused => refused,
                        })
                }
                None => Ok(back(from, state, resume_at)),
            }
        }
    }
}

fn back(from: LeadState, to: LeadState, next: DateTime<Utc>) -> Recycled {
    Recycled::Back {
        from,
        to,
        campaign: None,
        next,
    }
}

/// `lead`'s entry into campaign `name`, its first email at the first open moment of the
/// campaign's send window at or after `resume_at`; None if there is no such campaign.
fn entry_into(
    settings: &Settings,
    lead: &Lead,
    name: &str,
    resume_at: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Option<NewEnrolment> {
    let campaign = settings.campaigns.get(name)?;
    let place = lead.place(settings.default_tz);
    let segment =
        crate::domain::segment::first_match(&settings.segments, lead, now, settings.default_tz)
            .map_or_else(|| "recycled".to_string(), |s| s.name.clone());
    Some(NewEnrolment {
        lead_id: lead.id,
        campaign: campaign.name.clone(),
        segment,
        first_due: campaign.cadence.next_slot(resume_at.max(now), place),
        template: campaign.template_for(0).to_string(),
    })
}

async fn enter<S: Store>(
    store: &S,
    lead: &Lead,
    entry: NewEnrolment,
    recycled: Option<&str>,
    now: DateTime<Utc>,
) -> Result<Recycled, StoreError> {
    let (campaign, next) = (entry.campaign.clone(), entry.first_due);
    let entered = store
        .enter_campaign(&[entry], &[lead.state], "recycle", recycled, now)
        .await?;
    if entered.is_empty() {
        return Ok(Recycled::Refused(format!(
            "{} changed meanwhile; nothing was recycled",
            lead.email
        )));
    }
    let to = store
        .leads_by_ids(&[lead.id])
        .await?
        .first()
        .map_or(LeadState::Nurturing, |l| l.state);
    Ok(Recycled::Back {
        from: lead.state,
        to,
        campaign: Some(campaign),
        next,
    })
}
