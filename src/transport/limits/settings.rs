//! What may be configured for a transport's limits ([`LimitSettings`], one [`DomainLimit`]
//! per recipient domain), the checks that name each bad key, and how a limiter keys a
//! domain (aliases share one state).

use std::collections::HashMap;
use std::time::Duration;

use super::normalize_domain;

/// A rate limit for one recipient domain.
#[derive(Debug, Clone, PartialEq)]
pub struct DomainLimit {
    /// Messages per second to this domain (before any slow-down).
    pub per_second: f64,
    /// Messages that may go at once after a quiet period (at least 1).
    pub burst: u32,
    /// Messages to this domain admitted and not yet recorded, at most (at least 1).
    pub concurrency: u32,
    /// Messages to this domain in any rolling 24 hours (its budget); `None`: no budget.
    /// Kept in the database with the transport's `daily_cap` (see `caps`).
    pub daily_cap: Option<u64>,
}

impl Default for DomainLimit {
    fn default() -> Self {
        DomainLimit {
            per_second: 10.0,
            burst: 20,
            concurrency: 20,
            daily_cap: None,
        }
    }
}

/// The limits of one transport.
#[derive(Debug, Clone, PartialEq)]
pub struct LimitSettings {
    /// Messages per second through the transport; `None`: no rate limit.
    pub per_second: Option<f64>,
    /// Messages that may go at once after a quiet period; `None`: one second's worth.
    pub burst: Option<u32>,
    /// Messages in any rolling 24 hours, counted in the database across restarts and
    /// daemons (see `caps`); `None`: no cap.
    pub daily_cap: Option<u64>,
    /// The limit of any domain not listed in `domains`.
    pub default_domain: DomainLimit,
    /// Limits per recipient domain (lowercase, e.g. `gmail.com`).
    pub domains: HashMap<String, DomainLimit>,
    /// Domains that share another domain's limit *and* state (one rate, one concurrency, one
    /// slow-down), e.g. `hotmail.com` → `outlook.com`: same mail servers, same patience.
    pub aliases: HashMap<String, String>,
    /// A slowed-down domain never goes below this rate (messages per second).
    pub min_domain_rate: f64,
    /// How often a slowed-down domain recovers one step.
    pub recovery_interval: Duration,
    /// The share of the configured rate a domain gets back per step (0 < f ≤ 1).
    pub recovery_fraction: f64,
    /// How long the whole transport waits after an HTTP 429 that gave no `Retry-After`.
    pub provider_pause: Duration,
    /// An admitted delivery not recorded after this long is forgotten (its concurrency
    /// slot freed; it stays counted against the daily cap).
    pub in_flight_timeout: Duration,
    /// The shortest deferral.
    pub min_defer: Duration,
    /// How often deferred deliveries are claimed again: the scheduler's tick (not a key of
    /// `[transport.limits]`; the config sets it from `scheduler.tick`). A pass sends at most
    /// a burst per limit, so the deferrals of a backlog are spread at that pace, not faster
    /// (see `Limiter::project`). Zero: at the configured rates.
    pub pass_interval: Duration,
}

impl Default for LimitSettings {
    fn default() -> Self {
        LimitSettings {
            per_second: None,
            burst: None,
            daily_cap: None,
            default_domain: DomainLimit::default(),
            domains: HashMap::new(),
            aliases: HashMap::new(),
            min_domain_rate: 0.05,
            recovery_interval: Duration::from_secs(300),
            recovery_fraction: 0.1,
            provider_pause: Duration::from_secs(30),
            in_flight_timeout: Duration::from_secs(900),
            min_defer: Duration::from_secs(1),
            pass_interval: Duration::ZERO,
        }
    }
}

impl LimitSettings {
    /// Every problem as (key, message), keys relative to the limits section
    /// (e.g. `per_second`, `domains.gmail.com.concurrency`).
    pub fn problems(&self) -> Vec<(String, String)> {
        let mut out = Vec::new();
        let rate_ok = |r: f64| r.is_finite() && r > 0.0;
        if let Some(r) = self.per_second
            && !rate_ok(r)
        {
            out.push((
                "per_second".into(),
                format!("must be a positive number, not {r}"),
            ));
        }
        if self.burst == Some(0) {
            out.push(("burst".into(), "must be at least 1".into()));
        }
        if self.daily_cap == Some(0) {
            out.push((
                "daily_cap".into(),
                "must be at least 1 (leave it out for no cap)".into(),
            ));
        }
        let mut domain = |key: &str, d: &DomainLimit| {
            if !rate_ok(d.per_second) {
                out.push((
                    format!("{key}.per_second"),
                    format!("must be a positive number, not {}", d.per_second),
                ));
            }
            if d.burst == 0 {
                out.push((format!("{key}.burst"), "must be at least 1".into()));
            }
            if d.concurrency == 0 {
                out.push((format!("{key}.concurrency"), "must be at least 1".into()));
            }
            if d.daily_cap == Some(0) {
                out.push((
                    format!("{key}.daily_cap"),
                    "must be at least 1 (leave it out for no budget)".into(),
                ));
            }
        };
        domain("default_domain", &self.default_domain);
        let mut names: Vec<&String> = self.domains.keys().collect();
        names.sort();
        for name in names {
            domain(&format!("domains.{name}"), &self.domains[name]);
        }
        if !rate_ok(self.min_domain_rate) {
            out.push((
                "min_domain_rate".into(),
                format!("must be a positive number, not {}", self.min_domain_rate),
            ));
        }
        if !(self.recovery_fraction.is_finite()
            && self.recovery_fraction > 0.0
            && self.recovery_fraction <= 1.0)
        {
            out.push((
                "recovery_fraction".into(),
                format!("must be in (0, 1], not {}", self.recovery_fraction),
            ));
        }
        if self.recovery_interval.is_zero() {
            out.push(("recovery_interval".into(), "must be longer than 0".into()));
        }
        out
    }

    /// The same settings with anything invalid replaced by a safe value (the limiter never
    /// panics on bad input; `problems` reports it).
    pub(super) fn sanitized(mut self) -> LimitSettings {
        let fix_rate = |r: f64| if r.is_finite() && r > 0.0 { r } else { 1.0 };
        self.per_second = self.per_second.map(fix_rate);
        self.burst = self.burst.map(|b| b.max(1));
        self.daily_cap = self.daily_cap.map(|c| c.max(1));
        let fix_domain = |d: &mut DomainLimit| {
            d.per_second = fix_rate(d.per_second);
            d.burst = d.burst.max(1);
            d.concurrency = d.concurrency.max(1);
            d.daily_cap = d.daily_cap.map(|c| c.max(1));
        };
        fix_domain(&mut self.default_domain);
        self.domains = self
            .domains
            .into_iter()
            .map(|(name, mut d)| {
                fix_domain(&mut d);
                (normalize_domain(&name), d)
            })
            .collect();
        self.aliases = self
            .aliases
            .into_iter()
            .map(|(from, to)| (normalize_domain(&from), normalize_domain(&to)))
            .filter(|(from, to)| from != to && !to.is_empty())
            .collect();
        self.min_domain_rate = if self.min_domain_rate.is_finite() && self.min_domain_rate > 0.0 {
            self.min_domain_rate
        } else {
            0.05
        };
        if !(self.recovery_fraction.is_finite()
            && self.recovery_fraction > 0.0
            && self.recovery_fraction <= 1.0)
        {
            self.recovery_fraction = 0.1;
        }
        if self.recovery_interval.is_zero() {
            self.recovery_interval = Duration::from_secs(300);
        }
        if self.min_defer.is_zero() {
            self.min_defer = Duration::from_millis(1);
        }
        self
    }

    /// The key a recipient domain's state is kept under (its alias target, if any).
    pub fn domain_key(&self, domain: &str) -> String {
        let domain = normalize_domain(domain);
        match self.aliases.get(&domain) {
            Some(target) => target.clone(),
            None => domain,
        }
    }

    /// The limit of a domain key (see [`domain_key`](LimitSettings::domain_key)).
    pub fn domain_limit(&self, domain: &str) -> &DomainLimit {
        self.domains.get(domain).unwrap_or(&self.default_domain)
    }

    pub(super) fn transport_burst(&self) -> u32 {
        self.burst
            .or_else(|| {
                self.per_second
                    .map(|r| r.ceil().clamp(1.0, u32::MAX as f64) as u32)
            })
            .unwrap_or(1)
            .max(1)
    }
}

#[cfg(test)]
mod tests {
    use super::super::Limiter;
    use super::super::test_support::*;
    use super::*;

    #[test]
    fn settings_problems_name_their_keys() {
        let mut s = LimitSettings {
            per_second: Some(0.0),
            daily_cap: Some(0),
            ..LimitSettings::default()
        };
        s.domains.insert(
            "gmail.com".into(),
            DomainLimit {
                per_second: f64::NAN,
                burst: 0,
                concurrency: 0,
                daily_cap: Some(0),
            },
        );
        let keys: Vec<String> = s.problems().into_iter().map(|(k, _)| k).collect();
        assert_eq!(
            keys,
            vec![
                "per_second",
                "daily_cap",
                "domains.gmail.com.per_second",
                "domains.gmail.com.burst",
                "domains.gmail.com.concurrency",
                "domains.gmail.com.daily_cap"
            ]
        );
        assert!(LimitSettings::default().problems().is_empty());
        // And the limiter still works with them (sanitised, never panics).
        let mut limiter = Limiter::new(s);
        let a = limiter.admit(t0(), &batch(0..3, "gmail.com"));
        check_complete(&batch(0..3, "gmail.com"), &a, t0());
    }
}
