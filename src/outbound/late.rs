//! The lateness policy `skip` (`domain::cadence::late`): before dispatch claims anything, a
//! campaign with `late = "skip"` marks its scheduled steps due more than `late_after` ago
//! `skipped` (event `skipped`) and plans the next step from the skipped one's due time, so
//! the campaign keeps its calendar. `send` and `shift` change only when the next step is due,
//! in dispatch.

use chrono::{DateTime, Utc};

use crate::app::Loaded;
use crate::domain::cadence::late::LatePolicy;
use crate::domain::calendar::Place;
use crate::store::{NextStep, StalledEnrolment, Store, StoreError};

const PAGE: usize = 500;

/// Skips the late steps of every `late = "skip"` campaign; returns how many.
pub async fn skip_late<S: Store>(
    store: &S,
    loaded: &Loaded,
    now: DateTime<Utc>,
) -> Result<usize, StoreError> {
    let settings = &loaded.settings;
    let mut total = 0;
    for campaign in settings.campaigns.values() {
        let late = campaign.lateness;
        let (LatePolicy::Skip, Some(after)) = (late.policy, late.after) else {
            continue;
        };
        // Bounded: each round skips what it read; a step that is late too is read again in
        // the next round, up to the campaign's length.
        for _ in 0..(campaign.cadence.max_touches as usize + 2) * 10 {
            let rows = store.late_steps(&campaign.name, now - after, PAGE).await?;
            if rows.is_empty() {
                break;
            }
            let skipped = store.skip_steps(&rows, now).await?;
            let resumed: Vec<(StalledEnrolment, Option<NextStep>)> = rows
                .iter()
                .filter(|r| skipped.contains(&r.id))
                .map(|r| {
                    let place = Place::stored(
                        r.timezone.as_deref(),
                        r.country.as_deref(),
                        settings.default_tz,
                    );
                    let step = r.step + 1;
                    let next = late
                        .after_skip(&campaign.cadence, step, r.due_at, place)
                        .map(|due_at| NextStep {
                            step,
                            due_at,
                            template: campaign.template_for(step).to_string(),
                        });
                    let stalled = StalledEnrolment {
                        enrolment_id: r.enrolment_id,
                        lead_id: r.lead_id,
                        campaign: r.campaign.clone(),
                        last_step: r.step,
                        last_at: r.due_at,
                    };
                    (stalled, next)
                })
                .collect();
            total += resumed.len();
            store.resume_enrolments(&resumed, now).await?;
            if skipped.is_empty() {
                break;
            }
        }
    }
    if total > 0 {
        tracing::info!(
            skipped = total,
            "Late steps skipped (lateness policy `skip`)"
        );
    }
    Ok(total)
}
