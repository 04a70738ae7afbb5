//! When a notification that failed is tried again, and the shape of its recorded outcome:
//! shared by the outbox (owner emails) and the webhook poster.

use chrono::{DateTime, Utc};

use super::MAX_ATTEMPTS;

/// One notification's outcome as recorded: its id, delivered or why not, and when to try it
/// again (None: never).
pub(super) type Outcome = (i64, Result<(), String>, Option<DateTime<Utc>>);

/// When to try again after the `attempts`-th failed attempt: 30 s doubling up to an hour,
/// half of it random (jitter); None once [`MAX_ATTEMPTS`] were made.
pub fn retry_at(attempts: u32, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
    if attempts >= MAX_ATTEMPTS {
        return None;
    }
    let exp = (30i64 << attempts.saturating_sub(1).min(10)).min(3600);
    let jitter = rand::random_range(0..=exp / 2);
    Some(now + chrono::Duration::seconds(exp / 2 + jitter))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retries_back_off_exponentially_with_jitter_and_stop() {
        let now = DateTime::parse_from_rfc3339("2026-03-02T10:00:00Z")
            .expect("a fixed time")
            .with_timezone(&Utc);
        for attempts in 1..MAX_ATTEMPTS {
            let exp = (30i64 << (attempts - 1).min(10)).min(3600);
            let at = retry_at(attempts, now).expect("a retry");
            let delay = (at - now).num_seconds();
            assert!(
                delay >= exp / 2 && delay <= exp,
                "attempt {attempts}: {delay}s"
            );
        }
        assert_eq!(retry_at(MAX_ATTEMPTS, now), None);
    }
}
