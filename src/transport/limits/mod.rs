//! Sending limits: how many messages may go *now*, and when the rest may.
//!
//! Clock-injected: every call takes `now`, nothing sleeps, nothing reads a clock.
//!
//! **The daily caps are durable and shared** ([`caps`], [`durable`]): the transport's
//! `daily_cap` and each domain's budget (`daily_cap` of a domain) are counted in the
//! database, reserved per batch in one atomic step before anything is sent, and given back
//! for sends that certainly did not leave — so a cap of N is N in any rolling 24 hours across
//! restarts and across daemons sharing one PostgreSQL.
//!
//! The pace lives in the process: the [`Limiter`] keeps
//!
//! - per transport: a messages-per-second rate (with a burst);
//! - per recipient domain: a rate and a concurrency (messages admitted and not yet recorded).
//!   When a domain pushes back (an SMTP 421 or 451 reply, or an enhanced status 4.7.x — read
//!   from the fields of the typed [`SendError`], never from its text) its rate and
//!   concurrency halve, it gets a breather, and they recover slowly: every
//!   `recovery_interval` without push-back adds `recovery_fraction` of the configured rate
//!   and one unit of concurrency, up to the configured values;
//! - a pause of the whole transport when the provider answers HTTP 429 (for its
//!   `Retry-After`, or `provider_pause`).
//!
//! What cannot go now is **deferred, never dropped**: [`Limiter::admit`] answers every
//! delivery either admitted or deferred with a `not_before` strictly after `now` (at least
//! `min_defer` later, so a deferred delivery is never due again within the same pass). The
//! caller turns deferred deliveries into `Outcome::Deferred { due_at, reason }`, which does not count
//! an attempt: a throttled delivery never consumes the lead's step. Likewise a send that the
//! provider or the domain throttled is reported by [`Limiter::record`] with the time it may
//! be tried again, to be deferred instead of retried.
//!
//! `not_before` is an estimate (a projection of the rates, the cap and the domains'
//! concurrency from what is known now, queued behind the slots already promised to earlier
//! deferrals, at most a burst per scheduler pass); admission re-checks everything, so an
//! estimate that is early only costs another deferral, never a limit.
//!
//! The rates use GCRA (the "virtual scheduling" form of a token bucket): with an interval
//! `T = 1/rate` and a burst `b`, at most `b + ⌊d/T⌋` messages are admitted in any span of
//! length `d`. The daily caps count reservations, minus those that certainly did not leave
//! (a `Transient` outcome is given back: it will be counted again when it is retried).
//!
//! The parts: `settings` (what may be configured, and its checks), `gcra` (the rate
//! arithmetic), `domain` (one recipient domain's pace, slow-down and recovery), `limiter`
//! (admission under the rates, recording, the projection of `not_before`), `caps` (the
//! daily window's pure arithmetic), `durable` (reserving and giving back in the database,
//! and what `status` and `/metrics` show); this file says which failures are throttles.

pub mod caps;
mod domain;
pub mod durable;
mod gcra;
mod limiter;
mod settings;
#[cfg(test)]
mod test_support;

use std::time::Duration;

use chrono::TimeDelta;

pub use limiter::{Admission, Limiter};
pub use settings::{DomainLimit, LimitSettings};

use super::SendError;

/// Why a failed send was a throttle rather than a failure.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Throttle {
    /// The provider said "too many requests" (HTTP 429), maybe with a `Retry-After`.
    Provider { retry_after: Option<Duration> },
    /// The recipient's domain pushed back (SMTP 421/451 or enhanced status 4.7.x).
    Domain,
}

/// Whether a failed send was throttled (only `Transient` errors can be), read from the
/// error's fields: an HTTP 429 from the provider (with its `Retry-After`), or an SMTP reply
/// 421 or 451, or an enhanced status 4.7.x, from the recipient's domain.
pub fn throttle_of(error: &SendError) -> Option<Throttle> {
    if !error.is_transient() {
        return None;
    }
    if error.http_status() == Some(429) {
        return Some(Throttle::Provider {
            retry_after: error.retry_after(),
        });
    }
    let reply = error.smtp_reply()?;
    let policy = reply
        .enhanced
        .is_some_and(|e| e.class == 4 && e.subject == 7);
    (matches!(reply.code, 421 | 451) || policy).then_some(Throttle::Domain)
}

/// When a send the *provider* throttled (HTTP 429, Postmark's ErrorCode 429) may be tried
/// again: after its `Retry-After` / `X-RateLimit-Reset`, else [`DEFAULT_PROVIDER_PAUSE`]. For
/// a transport without `[transport.limits]`, so that a 429 defers rather than burns an attempt.
pub fn provider_throttle_until(
    error: &SendError,
    now: chrono::DateTime<chrono::Utc>,
) -> Option<chrono::DateTime<chrono::Utc>> {
    match throttle_of(error)? {
        Throttle::Provider { retry_after } => {
            let wait = retry_after
                .unwrap_or(DEFAULT_PROVIDER_PAUSE)
                .max(Duration::from_secs(1));
            Some(now + TimeDelta::from_std(wait).unwrap_or(TimeDelta::hours(1)))
        }
        Throttle::Domain => None,
    }
}

/// How long a provider's 429 without `Retry-After` pauses sending (as `provider_pause`).
pub const DEFAULT_PROVIDER_PAUSE: Duration = Duration::from_secs(30);

/// A domain as the limiter keys it: lowercase, no surrounding dots or spaces.
pub fn normalize_domain(domain: &str) -> String {
    domain.trim().trim_matches('.').to_ascii_lowercase()
}

/// The domain of an address, lowercased, without a trailing dot ("" when there is none).
pub fn domain_of(address: &str) -> String {
    address
        .trim()
        .trim_start_matches('<')
        .trim_end_matches('>')
        .rsplit_once('@')
        .map(|(_, d)| d.trim().trim_end_matches('.').to_ascii_lowercase())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::test_support::*;
    use super::*;
    use crate::transport::SmtpReply;

    #[test]
    fn a_provider_429_pauses_the_whole_transport_and_defers_instead_of_retrying() {
        let mut limiter = Limiter::new(transport_only(Some(100.0), None));
        let b = batch(0..3, "a.test");
        assert_eq!(limiter.admit(t0(), &b).admitted.len(), 3);
        let e = http_error(
            "postmark: HTTP 429 rate limited by the provider (retry after 20s): slow down",
            429,
            Some(20),
        );
        assert_eq!(
            limiter.record(t0(), &(0, Err(e))),
            Some(t0() + TimeDelta::seconds(20))
        );
        let e = http_error(
            "sendgrid: HTTP 429 rate limited by the provider: x",
            429,
            None,
        );
        assert_eq!(
            limiter.record(t0(), &(1, Err(e))),
            Some(t0() + TimeDelta::seconds(30)),
            "no Retry-After: the configured pause"
        );
        assert_eq!(limiter.paused_until(), Some(t0() + TimeDelta::seconds(30)));
        let now = t0() + secs(10.0);
        let a = limiter.admit(now, &batch(10..12, "b.test"));
        assert!(a.admitted.is_empty());
        assert!(
            a.deferred
                .iter()
                .all(|(_, at)| *at >= t0() + TimeDelta::seconds(30))
        );
        let a = limiter.admit(t0() + secs(30.0), &batch(10..12, "b.test"));
        assert_eq!(a.admitted, vec![10, 11]);
    }

    #[test]
    fn ordinary_failures_are_not_throttles() {
        let mut limiter = Limiter::new(LimitSettings::default());
        let b = batch(0..4, "a.test");
        limiter.admit(t0(), &b);
        for (id, e) in [
            (0, smtp_refusal("RCPT TO", 450, "4.2.0 mailbox busy")),
            (1, smtp_refusal("RCPT TO", 550, "5.1.1 no such user")),
            (2, SendError::unknown("end of data: connection reset")),
            (
                3,
                http_error("postmark: HTTP 503 provider unavailable: x", 503, None),
            ),
        ] {
            assert_eq!(limiter.record(t0(), &(id, Err(e.clone()))), None, "{e}");
        }
        assert_eq!(limiter.domain_pace(t0(), "a.test").0, 10.0);
    }

    #[test]
    fn throttles_are_recognised_from_the_replies_fields() {
        let rcpt = |code, text| throttle_of(&smtp_refusal("RCPT TO", code, text));
        assert_eq!(rcpt(421, "4.3.2 closing"), Some(Throttle::Domain));
        assert_eq!(rcpt(451, "temporary local problem"), Some(Throttle::Domain));
        assert_eq!(rcpt(450, "4.7.1 greylisted"), Some(Throttle::Domain));
        // A session that could not be opened keeps its greeting's reply.
        let greeting = SendError::transient(
            "not sent: cannot open an SMTP session with mx:25: greeting/EHLO: transient error (421): too many connections",
        )
        .with_smtp_reply(SmtpReply::new(421, "too many connections"));
        assert_eq!(throttle_of(&greeting), Some(Throttle::Domain));
        assert_eq!(rcpt(450, "4.2.0 busy"), None);
        // Numbers in the text are not replies: a port, an HTTP status, a quoted upstream
        // reply, a ticket number — nor is a reply code written in the text alone.
        let text = |s: &str| throttle_of(&SendError::transient(s));
        assert_eq!(
            text("cannot open an SMTP session with 10.0.0.1:451: refused"),
            None
        );
        assert_eq!(
            throttle_of(&http_error(
                "postmark: HTTP 451 provider unavailable",
                451,
                None
            )),
            None
        );
        assert_eq!(
            throttle_of(&http_error(
                "mailgun: HTTP 503 provider unavailable: upstream said 421 4.7.0",
                503,
                None
            )),
            None
        );
        assert_eq!(text("ticket 44210 ref 4.7"), None);
        assert_eq!(text("RCPT TO refused: 421 4.7.0 try later"), None);
        assert_eq!(
            throttle_of(&http_error(
                "mailgun: HTTP 429 rate limited by the provider (retry after 12s): x",
                429,
                Some(12)
            )),
            Some(Throttle::Provider {
                retry_after: Some(Duration::from_secs(12))
            })
        );
        assert_eq!(
            throttle_of(&smtp_refusal("RCPT TO", 554, "4.7.1 x")),
            None,
            "a permanent refusal is no throttle"
        );
    }

    #[test]
    fn domains_are_lowercased_without_trailing_dot() {
        assert_eq!(domain_of("Lead@GMail.COM."), "gmail.com");
        assert_eq!(domain_of("<a@b.test>"), "b.test");
        assert_eq!(domain_of("nodomain"), "");
    }
}
