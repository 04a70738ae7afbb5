//! One recipient domain's pace: its rate and concurrency (at most the configured ones), the
//! GCRA state of its rate, what is in flight to it, and how it slows down when the domain
//! pushes back and recovers afterwards (every `recovery_interval` without push-back adds
//! `recovery_fraction` of the configured rate and one unit of concurrency).

use chrono::{DateTime, TimeDelta, Utc};

use super::gcra::{Gcra, delta, interval};
use super::settings::{DomainLimit, LimitSettings};

#[derive(Debug, Clone)]
pub(super) struct DomainState {
    pub(super) limit: DomainLimit,
    /// The current rate (≤ the configured one after a slow-down).
    pub(super) rate: f64,
    pub(super) concurrency: u32,
    pub(super) gcra: Gcra,
    pub(super) in_flight: u32,
    /// The last slow-down or recovery step.
    pub(super) last_change: Option<DateTime<Utc>>,
    /// The last slow-down: failures of messages admitted before it do not slow down again.
    pub(super) last_slowdown: Option<DateTime<Utc>>,
}

impl DomainState {
    pub(super) fn new(limit: DomainLimit) -> DomainState {
        DomainState {
            rate: limit.per_second,
            concurrency: limit.concurrency,
            limit,
            gcra: Gcra { tat: None },
            in_flight: 0,
            last_change: None,
            last_slowdown: None,
        }
    }

    /// The domain pushed back on a message admitted at `admitted_at`: halve its rate (not
    /// below `min_rate`) and concurrency and give it a breather — unless that message was
    /// admitted before the last slow-down, whose push-back is already accounted for (a round
    /// of refusals halves once). Returns when the domain may take the next message.
    pub(super) fn slow_down(
        &mut self,
        name: &str,
        now: DateTime<Utc>,
        admitted_at: DateTime<Utc>,
        min_rate: f64,
    ) -> DateTime<Utc> {
        let already = self.last_slowdown.is_some_and(|s| admitted_at < s);
        if !already {
            self.rate = (self.rate / 2.0).max(min_rate.min(self.limit.per_second));
            self.concurrency = (self.concurrency / 2).max(1);
            self.last_slowdown = Some(now);
            self.last_change = Some(now);
            // A breather: no burst, the next message one (new) interval from now.
            let t = interval(self.rate);
            let burst = self.limit.burst.min(self.concurrency).max(1);
            let base = self.gcra.tat.filter(|tat| *tat > now).unwrap_or(now);
            self.gcra.tat = Some(base + t * burst as i32);
            tracing::info!(
                domain = %name,
                rate = self.rate,
                concurrency = self.concurrency,
                "the domain pushed back; slowing down"
            );
        }
        self.earliest(now)
    }

    fn slowed(&self) -> bool {
        self.rate < self.limit.per_second || self.concurrency < self.limit.concurrency
    }

    /// Applies the recovery steps due by `now`.
    pub(super) fn recover(&mut self, now: DateTime<Utc>, settings: &LimitSettings) {
        if !self.slowed() {
            return;
        }
        let Some(last) = self.last_change else {
            return;
        };
        let step = delta(settings.recovery_interval);
        if now < last + step || step <= TimeDelta::zero() {
            return;
        }
        let steps = ((now - last).num_milliseconds() / step.num_milliseconds().max(1)).max(0);
        let steps = steps.min(1_000) as u32;
        if steps == 0 {
            return;
        }
        self.rate = (self.rate + self.limit.per_second * settings.recovery_fraction * steps as f64)
            .min(self.limit.per_second);
        self.concurrency = self
            .concurrency
            .saturating_add(steps)
            .min(self.limit.concurrency);
        self.last_change = Some(last + step * steps as i32);
    }

    pub(super) fn earliest(&self, now: DateTime<Utc>) -> DateTime<Utc> {
        self.gcra.earliest(
            now,
            interval(self.rate),
            self.limit.burst.min(self.concurrency).max(1),
        )
    }

    pub(super) fn idle(&self, now: DateTime<Utc>) -> bool {
        self.in_flight == 0 && !self.slowed() && self.gcra.tat.is_none_or(|tat| tat <= now)
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::super::test_support::*;
    use super::super::{DomainLimit, LimitSettings, Limiter};

    #[test]
    fn domain_concurrency_holds_until_outcomes_are_recorded() {
        let mut limiter = Limiter::new(LimitSettings {
            default_domain: DomainLimit {
                per_second: 1000.0,
                burst: 1000,
                concurrency: 3,
                daily_cap: None,
            },
            ..LimitSettings::default()
        });
        let b: Vec<(i64, String)> = (0..6)
            .map(|i| {
                (
                    i,
                    if i % 2 == 0 {
                        "gmail.com"
                    } else {
                        "other.test"
                    }
                    .to_string(),
                )
            })
            .chain((6..10).map(|i| (i, "GMail.com.".to_string())))
            .collect();
        let a = limiter.admit(t0(), &b);
        check_complete(&b, &a, t0());
        assert_eq!(a.admitted, vec![0, 1, 2, 3, 4, 5], "3 per domain");
        assert_eq!(limiter.in_flight("gmail.com"), 3);
        // Nothing recorded yet: gmail still full.
        let a2 = limiter.admit(t0() + secs(2.0), &[(6, "gmail.com")]);
        assert!(a2.admitted.is_empty());
        limiter.record(t0() + secs(2.0), &(0, Ok(())));
        let a3 = limiter.admit(t0() + secs(2.0), &[(6, "gmail.com"), (7, "gmail.com")]);
        assert_eq!(a3.admitted, vec![6]);
    }

    #[test]
    fn aliased_domains_share_one_limit_and_one_slow_down() {
        let mut limiter = Limiter::new(LimitSettings {
            domains: HashMap::from([(
                "outlook.com".to_string(),
                DomainLimit {
                    per_second: 1000.0,
                    burst: 1000,
                    concurrency: 2,
                    daily_cap: None,
                },
            )]),
            aliases: HashMap::from([
                ("Hotmail.com".to_string(), "outlook.com".to_string()),
                ("live.com".to_string(), "outlook.com".to_string()),
            ]),
            ..LimitSettings::default()
        });
        let a = limiter.admit(
            t0(),
            &[
                (1, "hotmail.com"),
                (2, "live.com"),
                (3, "outlook.com"),
                (4, "gmail.com"),
            ],
        );
        assert_eq!(a.admitted, vec![1, 2, 4]);
        assert_eq!(limiter.in_flight("outlook.com"), 2);
        assert_eq!(limiter.in_flight("hotmail.com"), 2);
        let e = smtp_refusal("RCPT TO", 421, "4.7.0 try later");
        limiter.record(t0(), &(1, Err(e)));
        assert_eq!(limiter.domain_pace(t0(), "live.com"), (500.0, 1));
        assert_eq!(limiter.domain_pace(t0(), "gmail.com"), (10.0, 20));
    }

    #[test]
    fn a_domain_that_pushes_back_is_halved_once_per_round_and_recovers_slowly() {
        let mut limiter = Limiter::new(gmail_settings());
        let b = batch(0..8, "gmail.com");
        assert_eq!(limiter.admit(t0(), &b).admitted.len(), 8);
        // All eight come back "421 try later": one halving, not eight.
        let now = t0() + secs(1.0);
        for id in 0..8 {
            let e = smtp_refusal("RCPT TO", 421, "4.7.0 Try again later");
            let not_before = limiter.record(now, &(id, Err(e))).expect("throttled");
            assert!(not_before > now);
        }
        assert_eq!(limiter.domain_pace(now, "gmail.com"), (4.0, 4));
        // Other domains are not affected.
        assert_eq!(limiter.domain_pace(now, "yahoo.com").0, 10.0);
        // A breather: nothing to gmail right away, then at the slower pace.
        let a = limiter.admit(now, &batch(10..20, "gmail.com"));
        assert!(a.admitted.is_empty(), "{a:?}");
        let first = a.deferred[0].1;
        assert!(first >= now + secs(0.25), "{first}");
        // A push-back for a message admitted after the slow-down halves again.
        let later = now + secs(5.0);
        let a = limiter.admit(later, &[(30, "gmail.com")]);
        assert_eq!(a.admitted, vec![30]);
        let e = smtp_refusal("end of data", 451, "4.3.0 mailbox busy");
        assert!(limiter.record(later, &(30, Err(e))).is_some());
        assert_eq!(limiter.domain_pace(later, "gmail.com"), (2.0, 2));
        // Recovery: +25 % of 8/s and +1 concurrency per quiet minute, up to the configured pace.
        assert_eq!(
            limiter.domain_pace(later + secs(59.0), "gmail.com"),
            (2.0, 2)
        );
        assert_eq!(
            limiter.domain_pace(later + secs(60.0), "gmail.com"),
            (4.0, 3)
        );
        assert_eq!(
            limiter.domain_pace(later + secs(120.0), "gmail.com"),
            (6.0, 4)
        );
        assert_eq!(
            limiter.domain_pace(later + secs(600.0), "gmail.com"),
            (8.0, 8)
        );
    }

    #[test]
    fn a_slowed_domain_never_goes_below_the_minimum_rate() {
        let mut limiter = Limiter::new(LimitSettings {
            min_domain_rate: 0.5,
            ..gmail_settings()
        });
        let mut now = t0();
        for id in 0..20 {
            // Wait until the domain takes one more.
            let mut tries = 0;
            while limiter.admit(now, &[(id, "gmail.com")]).admitted.is_empty() {
                now += secs(0.5);
                tries += 1;
                assert!(tries < 100);
            }
            let e = smtp_refusal("MAIL FROM", 450, "4.7.1 rate limited");
            limiter.record(now, &(id, Err(e)));
        }
        let (rate, concurrency) = limiter.domain_pace(now, "gmail.com");
        assert_eq!(rate, 0.5);
        assert_eq!(concurrency, 1);
    }
}
