//! What a send's result means for its delivery: the outcome of a failure (deferred,
//! retried with backoff, failed, unknown), a transport pause, and the step that follows.

use chrono::{DateTime, Utc};

use crate::app::Loaded;
use crate::domain::lead::Lead;
use crate::store::{ClaimedDelivery, DeferReason, NextStep, Outcome};
use crate::transport::{ErrorKind, SendError};

/// What a failed send means for its delivery, read from the error's kind and fields (never
/// its text): deferred when the limits call it a throttle (`throttled`), retried with backoff
/// while attempts remain, failed — and suppressed when the recipient was refused for good —
/// or unknown.
pub(super) fn failure(
    loaded: &Loaded,
    delivery: &ClaimedDelivery,
    lead: Option<&Lead>,
    error: SendError,
    throttled: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
) -> Outcome {
    let max_attempts = loaded.settings.scheduler.max_attempts;
    match (error.kind(), throttled) {
        // Throttled by the provider or the recipient's domain: the step is kept, no
        // attempt counted.
        (ErrorKind::Transient, Some(due_at)) => Outcome::Deferred {
            due_at,
            reason: DeferReason::RateLimit,
        },
        (ErrorKind::Transient, None) if delivery.attempts < max_attempts => Outcome::Retry {
            due_at: now + backoff(loaded.settings.scheduler.retry_base, delivery.attempts),
            error: error.into_message(),
        },
        (ErrorKind::Transient, None) => Outcome::Failed {
            error: format!(
                "gave up after {} attempts: {}",
                delivery.attempts,
                error.message()
            ),
            next: next_step(loaded, delivery, lead, now),
            suppress: false,
        },
        // A hard bounce suppresses the address and ends the cadence; another permanent
        // refusal fails this step only.
        (ErrorKind::Permanent, _) => {
            let hard = error.is_hard_bounce();
            Outcome::Failed {
                error: error.into_message(),
                next: if hard {
                    None
                } else {
                    next_step(loaded, delivery, lead, now)
                },
                suppress: hard,
            }
        }
        (ErrorKind::Unknown, _) => Outcome::Unknown {
            error: error.into_message(),
            next: next_step(loaded, delivery, lead, now),
        },
    }
}

impl Outcome {
    /// A transient failure of the transport itself is a deferral for the transport's
    /// pause (`until`), whatever `failure` made of it: the delivery keeps its attempts.
    pub(super) fn paused_if(self, until: Option<DateTime<Utc>>) -> Outcome {
        match (self, until) {
            (Outcome::Deferred { due_at, .. }, Some(_)) => Outcome::Deferred {
                due_at,
                reason: DeferReason::TransportPaused,
            },
            (outcome, _) => outcome,
        }
    }
}

/// The step after `delivery`, per its campaign's cadence, or None when the campaign is done
/// (or no longer configured).
pub(super) fn next_step(
    loaded: &Loaded,
    delivery: &ClaimedDelivery,
    lead: Option<&Lead>,
    now: DateTime<Utc>,
) -> Option<NextStep> {
    let settings = &loaded.settings;
    let campaign = settings.campaigns.get(&delivery.campaign)?;
    let place = lead.map_or_else(
        || settings.default_tz.into(),
        |l| l.place(settings.default_tz),
    );
    let step = delivery.step + 1;
    // The lateness policy decides what a late step's successor counts from.
    let due_at =
        campaign
            .lateness
            .next_due(&campaign.cadence, step, delivery.due_at, now, place)?;
    Some(NextStep {
        step,
        due_at,
        template: campaign.template_for(step).to_string(),
    })
}

/// Exponential backoff with jitter: base · 2^(attempt-1), the second half randomised.
fn backoff(base: chrono::Duration, attempt: u32) -> chrono::Duration {
    let exp = base * 2_i32.saturating_pow(attempt.saturating_sub(1).min(16));
    let half = exp / 2;
    let jitter_ms = half.num_milliseconds().max(0) as u64;
    half + chrono::Duration::milliseconds(if jitter_ms == 0 {
        0
    } else {
        (rand::random::<u64>() % jitter_ms) as i64
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_and_stays_between_half_and_full() {
        let base = chrono::Duration::seconds(60);
        for attempt in 1..6 {
            let full = 60 * 2_i64.pow(attempt - 1);
            for _ in 0..50 {
                let d = backoff(base, attempt).num_seconds();
                assert!(d >= full / 2 && d <= full, "attempt {attempt}: {d}s");
            }
        }
    }
}
