//! Sending limits: how many messages may go *now*, and when the rest may.
//!
//! Pure and clock-injected: every call takes `now`, nothing sleeps, nothing reads a clock.
//! The [`Limiter`] keeps
//!
//! - per transport: a messages-per-second rate (with a burst) and a cap over any rolling
//!   24 hours;
//! - per recipient domain: a rate and a concurrency (messages admitted and not yet recorded).
//!   When a domain pushes back (an SMTP 421 or 451 reply, or an enhanced status 4.7.x) its
//!   rate and concurrency halve, it gets a breather, and they recover slowly: every
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
//! concurrency from what is known now); admission re-checks everything, so an estimate that
//! is early only costs another deferral, never a limit.
//!
//! The rates use GCRA (the "virtual scheduling" form of a token bucket): with an interval
//! `T = 1/rate` and a burst `b`, at most `b + ⌊d/T⌋` messages are admitted in any span of
//! length `d`. The 24-hour cap counts admissions, minus those that certainly did not leave
//! (a `Transient` outcome is refunded: it will be counted again when it is retried).

use std::collections::{HashMap, VecDeque};
use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};

use super::http_common::domain_of;
use super::{OutgoingEmail, SendError, SendOutcome};

/// The rolling window of the daily cap.
pub const WINDOW: TimeDelta = TimeDelta::hours(24);

/// Beyond this many known domains, idle ones (at their configured rate, nothing in flight,
/// no debt) are forgotten.
const PRUNE_DOMAINS_ABOVE: usize = 10_000;

/// A rate limit for one recipient domain.
#[derive(Debug, Clone, PartialEq)]
pub struct DomainLimit {
    /// Messages per second to this domain (before any slow-down).
    pub per_second: f64,
    /// Messages that may go at once after a quiet period (at least 1).
    pub burst: u32,
    /// Messages to this domain admitted and not yet recorded, at most (at least 1).
    pub concurrency: u32,
}

impl Default for DomainLimit {
    fn default() -> Self {
        DomainLimit {
            per_second: 10.0,
            burst: 20,
            concurrency: 20,
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
    /// Messages in any rolling 24 hours; `None`: no cap.
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
    fn sanitized(mut self) -> LimitSettings {
        let fix_rate = |r: f64| if r.is_finite() && r > 0.0 { r } else { 1.0 };
        self.per_second = self.per_second.map(fix_rate);
        self.burst = self.burst.map(|b| b.max(1));
        self.daily_cap = self.daily_cap.map(|c| c.max(1));
        let fix_domain = |d: &mut DomainLimit| {
            d.per_second = fix_rate(d.per_second);
            d.burst = d.burst.max(1);
            d.concurrency = d.concurrency.max(1);
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
    fn domain_key(&self, domain: &str) -> String {
        let domain = normalize_domain(domain);
        match self.aliases.get(&domain) {
            Some(target) => target.clone(),
            None => domain,
        }
    }

    fn domain_limit(&self, domain: &str) -> &DomainLimit {
        self.domains.get(domain).unwrap_or(&self.default_domain)
    }

    fn transport_burst(&self) -> u32 {
        self.burst
            .or_else(|| {
                self.per_second
                    .map(|r| r.ceil().clamp(1.0, u32::MAX as f64) as u32)
            })
            .unwrap_or(1)
            .max(1)
    }
}

/// What [`Limiter::admit`] decided: every delivery of the batch is in exactly one list.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Admission {
    /// May be sent now, in the order given.
    pub admitted: Vec<i64>,
    /// Not now: not before the time given (always later than `now`).
    pub deferred: Vec<(i64, DateTime<Utc>)>,
}

/// Why a failed send was a throttle rather than a failure.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Throttle {
    /// The provider said "too many requests" (HTTP 429), maybe with a `Retry-After`.
    Provider { retry_after: Option<Duration> },
    /// The recipient's domain pushed back (SMTP 421/451 or enhanced status 4.7.x).
    Domain,
}

/// Whether a failed send was throttled (only `Transient` errors can be): the HTTP transports
/// write `HTTP 429` (and `retry after Ns`); SMTP errors carry the server's reply code.
pub fn throttle_of(error: &SendError) -> Option<Throttle> {
    let SendError::Transient(text) = error else {
        return None;
    };
    if text.contains("HTTP 429") {
        let retry_after = text.find("retry after ").and_then(|i| {
            let digits: String = text[i + "retry after ".len()..]
                .chars()
                .take_while(|c| c.is_ascii_digit())
                .collect();
            digits.parse::<u64>().ok().map(Duration::from_secs)
        });
        return Some(Throttle::Provider { retry_after });
    }
    // An HTTP transport's error: its codes (and the body it quotes) are not SMTP replies.
    if http_status_in(text) {
        return None;
    }
    // Tokens of digits and dots; a port ("host:451") is not an SMTP reply.
    let bytes = text.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i].is_ascii_digit() {
            let start = i;
            while i < bytes.len() && (bytes[i].is_ascii_digit() || bytes[i] == b'.') {
                i += 1;
            }
            let token = text[start..i].trim_end_matches('.');
            let before = &text[..start];
            let after_port = before.ends_with(':');
            let glued = start > 0 && bytes[start - 1].is_ascii_alphanumeric();
            if !after_port && !glued {
                if token == "421" || token == "451" {
                    return Some(Throttle::Domain);
                }
                if let Some(rest) = token.strip_prefix("4.7.")
                    && !rest.is_empty()
                    && rest.chars().all(|c| c.is_ascii_digit())
                {
                    return Some(Throttle::Domain);
                }
            }
        } else {
            i += 1;
        }
    }
    None
}

/// Whether `text` quotes an HTTP status ("HTTP 503").
fn http_status_in(text: &str) -> bool {
    text.match_indices("HTTP ").any(|(i, m)| {
        let rest = &text.as_bytes()[i + m.len()..];
        rest.len() >= 3
            && rest[..3].iter().all(u8::is_ascii_digit)
            && rest.get(3).is_none_or(|b| !b.is_ascii_digit())
    })
}

/// A domain as the limiter keys it: lowercase, no surrounding dots or spaces.
pub fn normalize_domain(domain: &str) -> String {
    domain.trim().trim_matches('.').to_ascii_lowercase()
}

/// The interval between two messages at `rate` per second.
fn interval(rate: f64) -> TimeDelta {
    let nanos = (1e9 / rate).round();
    let nanos = nanos.clamp(1.0, 86_400e9);
    TimeDelta::nanoseconds(nanos as i64)
}

fn delta(d: Duration) -> TimeDelta {
    TimeDelta::from_std(d).unwrap_or(TimeDelta::days(365))
}

/// GCRA state: the theoretical arrival time of the next message.
#[derive(Debug, Clone, Copy)]
struct Gcra {
    tat: Option<DateTime<Utc>>,
}

impl Gcra {
    /// The earliest time at or after `now` a message conforms.
    fn earliest(&self, now: DateTime<Utc>, t: TimeDelta, burst: u32) -> DateTime<Utc> {
        let tau = t * (burst.saturating_sub(1) as i32);
        match self.tat {
            Some(tat) if tat - tau > now => tat - tau,
            _ => now,
        }
    }

    fn take(&mut self, at: DateTime<Utc>, t: TimeDelta) {
        let base = match self.tat {
            Some(tat) if tat > at => tat,
            _ => at,
        };
        self.tat = Some(base + t);
    }
}

#[derive(Debug, Clone)]
struct DomainState {
    limit: DomainLimit,
    /// The current rate (≤ the configured one after a slow-down).
    rate: f64,
    concurrency: u32,
    gcra: Gcra,
    in_flight: u32,
    /// The last slow-down or recovery step.
    last_change: Option<DateTime<Utc>>,
    /// The last slow-down: failures of messages admitted before it do not slow down again.
    last_slowdown: Option<DateTime<Utc>>,
}

impl DomainState {
    fn new(limit: DomainLimit) -> DomainState {
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

    fn slowed(&self) -> bool {
        self.rate < self.limit.per_second || self.concurrency < self.limit.concurrency
    }

    /// Applies the recovery steps due by `now`.
    fn recover(&mut self, now: DateTime<Utc>, settings: &LimitSettings) {
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

    fn earliest(&self, now: DateTime<Utc>) -> DateTime<Utc> {
        self.gcra.earliest(
            now,
            interval(self.rate),
            self.limit.burst.min(self.concurrency).max(1),
        )
    }

    fn idle(&self, now: DateTime<Utc>) -> bool {
        self.in_flight == 0 && !self.slowed() && self.gcra.tat.is_none_or(|tat| tat <= now)
    }
}

#[derive(Debug, Clone)]
struct InFlight {
    domain: String,
    admitted_at: DateTime<Utc>,
}

/// The limits of one transport, with their state. See the module docs.
#[derive(Debug, Clone)]
pub struct Limiter {
    settings: LimitSettings,
    transport: Gcra,
    paused_until: Option<DateTime<Utc>>,
    /// Admission times still inside the 24-hour window (oldest first) with their counts.
    window: VecDeque<(DateTime<Utc>, u64)>,
    window_total: u64,
    domains: HashMap<String, DomainState>,
    in_flight: HashMap<i64, InFlight>,
}

impl Limiter {
    pub fn new(settings: LimitSettings) -> Limiter {
        Limiter {
            settings: settings.sanitized(),
            transport: Gcra { tat: None },
            paused_until: None,
            window: VecDeque::new(),
            window_total: 0,
            domains: HashMap::new(),
            in_flight: HashMap::new(),
        }
    }

    pub fn settings(&self) -> &LimitSettings {
        &self.settings
    }

    /// New settings (a reload) keeping what was sent, what is in flight and the slow-downs
    /// (a domain's current rate is kept below its new configured rate).
    pub fn update_settings(&mut self, settings: LimitSettings) {
        self.settings = settings.sanitized();
        for (name, state) in self.domains.iter_mut() {
            let limit = self.settings.domain_limit(name).clone();
            state.rate = state.rate.min(limit.per_second);
            state.concurrency = state.concurrency.min(limit.concurrency);
            state.limit = limit;
        }
    }

    /// Decides, for each `(delivery id, recipient domain)` in order, whether it may be sent
    /// now. Admitted deliveries count against every limit at once; they are "in flight" for
    /// their domain until [`record`](Limiter::record) or [`release`](Limiter::release).
    pub fn admit<D: AsRef<str>>(&mut self, now: DateTime<Utc>, batch: &[(i64, D)]) -> Admission {
        self.expire(now);
        let mut admission = Admission::default();
        let mut blocked: Vec<(i64, String)> = Vec::new();
        let transport_t = self.settings.per_second.map(interval);
        let transport_burst = self.settings.transport_burst();
        for (id, domain) in batch {
            let id = *id;
            let domain = self.settings.domain_key(domain.as_ref());
            // The same delivery admitted again (e.g. re-claimed): its old admission ends.
            if self.in_flight.contains_key(&id) {
                self.release(id);
            }
            let transport_ok = self.paused_until.is_none_or(|p| p <= now)
                && transport_t
                    .is_none_or(|t| self.transport.earliest(now, t, transport_burst) <= now)
                && self
                    .settings
                    .daily_cap
                    .is_none_or(|cap| self.window_total < cap);
            let state = self.domain_state(&domain, now);
            let domain_ok = state.in_flight < state.concurrency && state.earliest(now) <= now;
            if !(transport_ok && domain_ok) {
                blocked.push((id, domain));
                continue;
            }
            let t = interval(state.rate);
            state.gcra.take(now, t);
            state.in_flight += 1;
            if let Some(t) = transport_t {
                self.transport.take(now, t);
            }
            match self.window.back_mut() {
                Some((at, count)) if *at == now => *count += 1,
                _ => self.window.push_back((now, 1)),
            }
            self.window_total += 1;
            self.in_flight.insert(
                id,
                InFlight {
                    domain,
                    admitted_at: now,
                },
            );
            admission.admitted.push(id);
        }
        admission.deferred = self.project(now, &blocked);
        admission
    }

    /// [`admit`](Limiter::admit) for composed messages (keyed by the envelope recipient's
    /// domain): the messages that may go now, in order, and the deferred deliveries with
    /// their `not_before`.
    pub fn admit_emails(
        &mut self,
        now: DateTime<Utc>,
        emails: Vec<OutgoingEmail>,
    ) -> (Vec<OutgoingEmail>, Vec<(i64, DateTime<Utc>)>) {
        let keys: Vec<(i64, String)> = emails
            .iter()
            .map(|m| (m.delivery_id, domain_of(&m.envelope_to)))
            .collect();
        let admission = self.admit(now, &keys);
        let admitted: std::collections::HashSet<i64> = admission.admitted.into_iter().collect();
        let go = emails
            .into_iter()
            .filter(|m| admitted.contains(&m.delivery_id))
            .collect();
        (go, admission.deferred)
    }

    /// Records what happened to an admitted delivery. Returns `Some(not_before)` when the
    /// send was throttled (HTTP 429, or the domain's 421/451/4.7.x): the delivery should be
    /// deferred to that time, not retried — the attempt was not its fault.
    pub fn record(&mut self, now: DateTime<Utc>, outcome: &SendOutcome) -> Option<DateTime<Utc>> {
        let (id, result) = outcome;
        let entry = self.in_flight.remove(id);
        if let Some(entry) = &entry
            && let Some(state) = self.domains.get_mut(&entry.domain)
        {
            state.in_flight = state.in_flight.saturating_sub(1);
        }
        let Err(error) = result else {
            return None;
        };
        if error.is_transient()
            && let Some(entry) = &entry
        {
            // It did not leave: it will be counted again when it is sent.
            self.refund(entry.admitted_at);
        }
        let min = now + delta(self.settings.min_defer);
        match throttle_of(error)? {
            Throttle::Provider { retry_after } => {
                let until = now + delta(retry_after.unwrap_or(self.settings.provider_pause));
                let until = until.max(min);
                self.paused_until = Some(self.paused_until.map_or(until, |p| p.max(until)));
                tracing::info!(until = %until, "the provider throttled us (HTTP 429); sending paused");
                Some(until)
            }
            Throttle::Domain => {
                let Some(entry) = entry else {
                    // Not admitted here: no domain to slow down, but still not its fault.
                    return Some((now + delta(self.settings.provider_pause)).max(min));
                };
                let min_rate = self.settings.min_domain_rate;
                let state = self.domain_state(&entry.domain, now);
                // Messages admitted before the last slow-down were sent at the old pace: their
                // push-back is already accounted for.
                let already = state.last_slowdown.is_some_and(|s| entry.admitted_at < s);
                if !already {
                    state.rate = (state.rate / 2.0).max(min_rate.min(state.limit.per_second));
                    state.concurrency = (state.concurrency / 2).max(1);
                    state.last_slowdown = Some(now);
                    state.last_change = Some(now);
                    // A breather: no burst, the next message one (new) interval from now.
                    let t = interval(state.rate);
                    let burst = state.limit.burst.min(state.concurrency).max(1);
                    let base = state.gcra.tat.filter(|tat| *tat > now).unwrap_or(now);
                    state.gcra.tat = Some(base + t * burst as i32);
                    tracing::info!(
                        domain = %entry.domain,
                        rate = state.rate,
                        concurrency = state.concurrency,
                        "the domain pushed back; slowing down"
                    );
                }
                Some(state.earliest(now).max(min))
            }
        }
    }

    /// Forgets an admitted delivery that was not sent after all (its concurrency slot and its
    /// place under the daily cap are given back).
    pub fn release(&mut self, id: i64) {
        if let Some(entry) = self.in_flight.remove(&id) {
            if let Some(state) = self.domains.get_mut(&entry.domain) {
                state.in_flight = state.in_flight.saturating_sub(1);
            }
            self.refund(entry.admitted_at);
        }
    }

    /// Messages counted in the 24 hours before `now`.
    pub fn sent_in_window(&mut self, now: DateTime<Utc>) -> u64 {
        self.expire(now);
        self.window_total
    }

    /// A domain's current rate (messages per second) and concurrency, as of `now`.
    pub fn domain_pace(&mut self, now: DateTime<Utc>, domain: &str) -> (f64, u32) {
        let key = self.settings.domain_key(domain);
        let state = self.domain_state(&key, now);
        (state.rate, state.concurrency)
    }

    /// Deliveries admitted and not yet recorded for `domain`.
    pub fn in_flight(&self, domain: &str) -> u32 {
        self.domains
            .get(&self.settings.domain_key(domain))
            .map_or(0, |s| s.in_flight)
    }

    /// Until when the whole transport is paused (after an HTTP 429).
    pub fn paused_until(&self) -> Option<DateTime<Utc>> {
        self.paused_until
    }

    fn domain_state(&mut self, domain: &str, now: DateTime<Utc>) -> &mut DomainState {
        let settings = &self.settings;
        let state = self
            .domains
            .entry(domain.to_string())
            .or_insert_with(|| DomainState::new(settings.domain_limit(domain).clone()));
        state.recover(now, settings);
        state
    }

    /// Drops what has left the window, forgets stale in-flight deliveries and idle domains.
    fn expire(&mut self, now: DateTime<Utc>) {
        while let Some((at, count)) = self.window.front() {
            if *at + WINDOW <= now {
                self.window_total = self.window_total.saturating_sub(*count);
                self.window.pop_front();
            } else {
                break;
            }
        }
        if self.paused_until.is_some_and(|p| p <= now) {
            self.paused_until = None;
        }
        let timeout = delta(self.settings.in_flight_timeout);
        let stale: Vec<i64> = self
            .in_flight
            .iter()
            .filter(|(_, f)| f.admitted_at + timeout <= now)
            .map(|(id, _)| *id)
            .collect();
        for id in stale {
            if let Some(entry) = self.in_flight.remove(&id)
                && let Some(state) = self.domains.get_mut(&entry.domain)
            {
                state.in_flight = state.in_flight.saturating_sub(1);
            }
        }
        if self.domains.len() > PRUNE_DOMAINS_ABOVE {
            self.domains.retain(|_, s| !s.idle(now));
        }
    }

    /// Gives back one place under the daily cap taken at `admitted_at`.
    fn refund(&mut self, admitted_at: DateTime<Utc>) {
        if let Some(pos) = self.window.iter().rposition(|(at, _)| *at == admitted_at) {
            let empty = {
                let (_, count) = &mut self.window[pos];
                *count = count.saturating_sub(1);
                *count == 0
            };
            self.window_total = self.window_total.saturating_sub(1);
            if empty {
                self.window.remove(pos);
            }
        }
    }

    /// When each blocked delivery may go, projected from the current state without changing
    /// it: first each domain's own pace (rate, concurrency, slow-down), then, in that order,
    /// the transport's rate, pause and daily cap.
    fn project(
        &mut self,
        now: DateTime<Utc>,
        blocked: &[(i64, String)],
    ) -> Vec<(i64, DateTime<Utc>)> {
        if blocked.is_empty() {
            return Vec::new();
        }
        let min = now + delta(self.settings.min_defer);
        // 1. Per domain.
        let mut virtual_domains: HashMap<&str, (Gcra, u32)> = HashMap::new();
        let mut by_domain: Vec<(usize, DateTime<Utc>)> = Vec::with_capacity(blocked.len());
        for (index, (_, domain)) in blocked.iter().enumerate() {
            let state = self.domain_state(domain, now).clone();
            let (gcra, over) = virtual_domains
                .entry(domain.as_str())
                .or_insert((state.gcra, 0));
            let t = interval(state.rate);
            let burst = state.limit.burst.min(state.concurrency).max(1);
            let mut at = gcra.earliest(now, t, burst).max(min);
            if state.in_flight >= state.concurrency {
                // Slots free up as sends are recorded; assume one round per `min_defer`.
                let rounds = 1 + *over / state.concurrency.max(1);
                at = at.max(now + delta(self.settings.min_defer) * rounds as i32);
                *over += 1;
            }
            gcra.take(at, t);
            by_domain.push((index, at));
        }
        // 2. The transport, in the order the domains allow.
        by_domain.sort_by_key(|(index, at)| (*at, *index));
        let transport_t = self.settings.per_second.map(interval);
        let burst = self.settings.transport_burst();
        let mut gcra = self.transport;
        let mut window = self.window.iter();
        let mut expiring: Option<(DateTime<Utc>, u64)> = None;
        let mut out = vec![(0i64, now); blocked.len()];
        for (extra, (index, mut at)) in by_domain.into_iter().enumerate() {
            let extra = extra as u64;
            if let Some(p) = self.paused_until {
                at = at.max(p);
            }
            if let Some(t) = transport_t {
                at = at.max(gcra.earliest(at, t, burst));
            }
            if let Some(cap) = self.settings.daily_cap
                && self.window_total + extra >= cap
            {
                // The window is full: this one waits for the next admission to leave it.
                loop {
                    match &mut expiring {
                        Some((_, left)) if *left > 0 => break,
                        _ => match window.next() {
                            Some((when, count)) => expiring = Some((*when, *count)),
                            None => break,
                        },
                    }
                }
                match &mut expiring {
                    Some((when, left)) if *left > 0 => {
                        at = at.max(*when + WINDOW);
                        *left -= 1;
                    }
                    // More deferred than the window holds: after what the deferred
                    // themselves will have used has left, at the earliest.
                    _ => at = at.max(now + WINDOW),
                }
            }
            if let Some(t) = transport_t {
                gcra.take(at, t);
            }
            out[index] = (blocked[index].0, at.max(min));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn t0() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2025, 3, 3, 9, 0, 0).unwrap()
    }

    fn secs(s: f64) -> TimeDelta {
        TimeDelta::milliseconds((s * 1000.0).round() as i64)
    }

    fn batch(ids: std::ops::Range<i64>, domain: &str) -> Vec<(i64, String)> {
        ids.map(|i| (i, domain.to_string())).collect()
    }

    fn unlimited_domains() -> DomainLimit {
        DomainLimit {
            per_second: 1e6,
            burst: 1_000_000,
            concurrency: 1_000_000,
        }
    }

    fn transport_only(
        per_second: Option<f64>,
        burst: Option<u32>,
        cap: Option<u64>,
    ) -> LimitSettings {
        LimitSettings {
            per_second,
            burst,
            daily_cap: cap,
            default_domain: unlimited_domains(),
            ..LimitSettings::default()
        }
    }

    /// Every id of the batch is answered exactly once, and deferrals are later than now.
    fn check_complete(batch: &[(i64, String)], a: &Admission, now: DateTime<Utc>) {
        let mut seen: Vec<i64> = a
            .admitted
            .iter()
            .copied()
            .chain(a.deferred.iter().map(|(id, _)| *id))
            .collect();
        seen.sort();
        let mut want: Vec<i64> = batch.iter().map(|(id, _)| *id).collect();
        want.sort();
        assert_eq!(
            seen, want,
            "every delivery is admitted or deferred, exactly once"
        );
        for (id, at) in &a.deferred {
            assert!(*at > now, "delivery {id} deferred to {at}, not after {now}");
        }
    }

    /// Runs a queue to completion: each tick admits what is due, records it as sent, and
    /// requeues the deferred at their time. Returns every admission time.
    fn drain(
        limiter: &mut Limiter,
        mut queue: Vec<(i64, String, DateTime<Utc>)>,
        tick: TimeDelta,
        until: DateTime<Utc>,
    ) -> Vec<(i64, DateTime<Utc>)> {
        let mut now = t0();
        let mut sent = Vec::new();
        while !queue.is_empty() && now <= until {
            let due: Vec<(i64, String)> = queue
                .iter()
                .filter(|(_, _, at)| *at <= now)
                .map(|(id, d, _)| (*id, d.clone()))
                .collect();
            if !due.is_empty() {
                let a = limiter.admit(now, &due);
                check_complete(&due, &a, now);
                for id in &a.admitted {
                    sent.push((*id, now));
                    assert_eq!(limiter.record(now, &(*id, Ok(()))), None);
                }
                let deferred: HashMap<i64, DateTime<Utc>> = a.deferred.iter().copied().collect();
                queue.retain(|(id, _, _)| !a.admitted.contains(id));
                for (id, _, at) in queue.iter_mut() {
                    if let Some(when) = deferred.get(id) {
                        *at = *when;
                    }
                }
            }
            now += tick;
        }
        assert!(
            queue.is_empty(),
            "{} deliveries never went out",
            queue.len()
        );
        sent
    }

    #[test]
    fn nothing_goes_over_the_per_second_rate() {
        let mut limiter = Limiter::new(transport_only(Some(10.0), Some(10), None));
        let queue: Vec<_> = (0..500)
            .map(|i| (i, "example.org".to_string(), t0()))
            .collect();
        let sent = drain(&mut limiter, queue, secs(0.25), t0() + TimeDelta::hours(1));
        assert_eq!(sent.len(), 500);
        // GCRA: at most burst + ⌊d·rate⌋ in any span of length d.
        let times: Vec<DateTime<Utc>> = sent.iter().map(|(_, at)| *at).collect();
        for (i, start) in times.iter().enumerate() {
            for span in [0.0, 0.5, 1.0, 3.0, 10.0] {
                let end = *start + secs(span);
                let n = times[i..].iter().take_while(|at| **at <= end).count();
                let allowed = 10 + (span * 10.0).floor() as usize;
                assert!(
                    n <= allowed,
                    "{n} messages within {span}s from {start} (allowed {allowed})"
                );
            }
        }
        // And the rate is used: 500 messages at 10/s take about 49 s after the burst.
        let last = times.last().unwrap();
        assert!(
            *last - t0() <= TimeDelta::seconds(52),
            "took {}",
            *last - t0()
        );
    }

    #[test]
    fn a_big_batch_is_split_into_now_and_a_projected_later() {
        let mut limiter = Limiter::new(transport_only(Some(5.0), Some(5), None));
        let b = batch(0..20, "example.org");
        let a = limiter.admit(t0(), &b);
        check_complete(&b, &a, t0());
        assert_eq!(a.admitted, vec![0, 1, 2, 3, 4]);
        // The rest spread at the rate: the k-th deferred at about (k+1)/5 s.
        let times: Vec<TimeDelta> = a.deferred.iter().map(|(_, at)| *at - t0()).collect();
        assert!(times.windows(2).all(|w| w[0] <= w[1]), "{times:?}");
        assert_eq!(times.first().copied(), Some(TimeDelta::seconds(1)));
        assert_eq!(times.last().copied(), Some(TimeDelta::seconds(3)));
        // At the projected time, the first deferred are admitted.
        let later: Vec<(i64, String)> = a
            .deferred
            .iter()
            .filter(|(_, at)| *at <= t0() + TimeDelta::seconds(1))
            .map(|(id, _)| (*id, "example.org".to_string()))
            .collect();
        assert!(!later.is_empty());
        let again = limiter.admit(t0() + TimeDelta::seconds(1), &later);
        assert_eq!(again.admitted.len(), later.len(), "{again:?}");
    }

    #[test]
    fn the_daily_cap_holds_over_any_rolling_24_hours_and_nothing_is_dropped() {
        let mut limiter = Limiter::new(transport_only(None, None, Some(100)));
        let queue: Vec<_> = (0..350)
            .map(|i| {
                (
                    i,
                    format!("d{}.example", i % 7),
                    t0() + TimeDelta::minutes(i * 3),
                )
            })
            .collect();
        let sent = drain(
            &mut limiter,
            queue,
            TimeDelta::minutes(10),
            t0() + TimeDelta::days(10),
        );
        assert_eq!(sent.len(), 350, "every delivery eventually goes");
        let mut ids: Vec<i64> = sent.iter().map(|(id, _)| *id).collect();
        ids.sort();
        ids.dedup();
        assert_eq!(ids.len(), 350, "and only once");
        let times: Vec<DateTime<Utc>> = sent.iter().map(|(_, at)| *at).collect();
        for (i, start) in times.iter().enumerate() {
            let n = times[i..]
                .iter()
                .take_while(|at| **at < *start + WINDOW)
                .count();
            assert!(n <= 100, "{n} messages in the 24 h from {start}");
        }
    }

    #[test]
    fn the_rolling_window_frees_a_place_exactly_24_hours_after_each_send() {
        let mut limiter = Limiter::new(transport_only(None, None, Some(3)));
        for h in 0..3 {
            let now = t0() + TimeDelta::hours(h);
            let a = limiter.admit(now, &[(h, "a.test")]);
            assert_eq!(a.admitted, vec![h]);
            limiter.record(now, &(h, Ok(())));
        }
        // Full: the next ones wait for the sends at 0 h, 1 h, 2 h to leave the window.
        let now = t0() + TimeDelta::hours(23) + TimeDelta::minutes(59);
        let a = limiter.admit(
            now,
            &[
                (10, "a.test"),
                (11, "b.test"),
                (12, "c.test"),
                (13, "d.test"),
            ],
        );
        assert!(a.admitted.is_empty());
        let due: Vec<DateTime<Utc>> = a.deferred.iter().map(|(_, at)| *at).collect();
        assert_eq!(due[0], t0() + TimeDelta::hours(24));
        assert_eq!(due[1], t0() + TimeDelta::hours(25));
        assert_eq!(due[2], t0() + TimeDelta::hours(26));
        assert!(due[3] >= t0() + TimeDelta::hours(26), "{:?}", due[3]);
        // One second before the boundary: still full. At the boundary: one place.
        let just_before = t0() + TimeDelta::hours(24) - TimeDelta::seconds(1);
        assert!(
            limiter
                .admit(just_before, &[(10, "a.test")])
                .admitted
                .is_empty()
        );
        let at = t0() + TimeDelta::hours(24);
        let a = limiter.admit(at, &[(10, "a.test"), (11, "b.test")]);
        assert_eq!(a.admitted, vec![10]);
        assert_eq!(a.deferred[0].1, t0() + TimeDelta::hours(25));
        assert_eq!(limiter.sent_in_window(at), 3);
    }

    #[test]
    fn transient_failures_give_their_place_under_the_cap_back() {
        let mut limiter = Limiter::new(transport_only(None, None, Some(2)));
        let a = limiter.admit(t0(), &[(1, "a.test"), (2, "a.test"), (3, "a.test")]);
        assert_eq!(a.admitted, vec![1, 2]);
        limiter.record(
            t0(),
            &(1, Err(SendError::Transient("connection refused".into()))),
        );
        limiter.record(t0(), &(2, Err(SendError::Unknown("broke off".into()))));
        assert_eq!(
            limiter.sent_in_window(t0()),
            1,
            "an unknown outcome stays counted"
        );
        let a = limiter.admit(
            t0() + TimeDelta::seconds(5),
            &[(3, "a.test"), (4, "a.test")],
        );
        assert_eq!(a.admitted, vec![3]);
        // Released (never sent): given back too.
        limiter.release(3);
        assert_eq!(limiter.sent_in_window(t0() + TimeDelta::seconds(5)), 1);
    }

    #[test]
    fn domain_concurrency_holds_until_outcomes_are_recorded() {
        let mut limiter = Limiter::new(LimitSettings {
            default_domain: DomainLimit {
                per_second: 1000.0,
                burst: 1000,
                concurrency: 3,
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
        let e = SendError::Transient("RCPT TO refused: 421 4.7.0 try later".into());
        limiter.record(t0(), &(1, Err(e)));
        assert_eq!(limiter.domain_pace(t0(), "live.com"), (500.0, 1));
        assert_eq!(limiter.domain_pace(t0(), "gmail.com"), (10.0, 20));
    }

    #[test]
    fn composed_messages_are_split_by_their_recipients_domain() {
        let mut limiter = Limiter::new(LimitSettings {
            default_domain: DomainLimit {
                per_second: 1000.0,
                burst: 1000,
                concurrency: 1,
            },
            ..LimitSettings::default()
        });
        let email = |id: i64, to: &str| OutgoingEmail {
            delivery_id: id,
            envelope_from: "bounces@acme.test".into(),
            envelope_to: to.into(),
            message_id: format!("{id}@acme.test"),
            bytes: b"Subject: x\r\n\r\nhi\r\n".to_vec(),
        };
        let (go, later) = limiter.admit_emails(
            t0(),
            vec![
                email(1, "a@Gmail.com"),
                email(2, "b@gmail.com"),
                email(3, "c@acme.test"),
            ],
        );
        let ids: Vec<i64> = go.iter().map(|m| m.delivery_id).collect();
        assert_eq!(ids, vec![1, 3]);
        assert_eq!(later.len(), 1);
        assert_eq!(later[0].0, 2);
        assert!(later[0].1 > t0());
    }

    #[test]
    fn stale_in_flight_deliveries_are_forgotten() {
        let mut limiter = Limiter::new(LimitSettings {
            default_domain: DomainLimit {
                per_second: 1000.0,
                burst: 1000,
                concurrency: 1,
            },
            in_flight_timeout: Duration::from_secs(60),
            ..LimitSettings::default()
        });
        assert_eq!(limiter.admit(t0(), &[(1, "a.test")]).admitted, vec![1]);
        assert!(
            limiter
                .admit(t0() + secs(59.0), &[(2, "a.test")])
                .admitted
                .is_empty()
        );
        assert_eq!(
            limiter.admit(t0() + secs(60.0), &[(2, "a.test")]).admitted,
            vec![2]
        );
    }

    fn gmail_settings() -> LimitSettings {
        LimitSettings {
            domains: HashMap::from([(
                "gmail.com".to_string(),
                DomainLimit {
                    per_second: 8.0,
                    burst: 8,
                    concurrency: 8,
                },
            )]),
            recovery_interval: Duration::from_secs(60),
            recovery_fraction: 0.25,
            ..LimitSettings::default()
        }
    }

    #[test]
    fn a_domain_that_pushes_back_is_halved_once_per_round_and_recovers_slowly() {
        let mut limiter = Limiter::new(gmail_settings());
        let b = batch(0..8, "gmail.com");
        assert_eq!(limiter.admit(t0(), &b).admitted.len(), 8);
        // All eight come back "421 try later": one halving, not eight.
        let now = t0() + secs(1.0);
        for id in 0..8 {
            let e = SendError::Transient("RCPT TO refused: 421 4.7.0 Try again later".into());
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
        let e = SendError::Transient("end of data refused: 451 4.3.0 mailbox busy".into());
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
            let e = SendError::Transient("MAIL FROM refused: 450 4.7.1 rate limited".into());
            limiter.record(now, &(id, Err(e)));
        }
        let (rate, concurrency) = limiter.domain_pace(now, "gmail.com");
        assert_eq!(rate, 0.5);
        assert_eq!(concurrency, 1);
    }

    #[test]
    fn a_provider_429_pauses_the_whole_transport_and_defers_instead_of_retrying() {
        let mut limiter = Limiter::new(transport_only(Some(100.0), None, None));
        let b = batch(0..3, "a.test");
        assert_eq!(limiter.admit(t0(), &b).admitted.len(), 3);
        let e = SendError::Transient(
            "postmark: HTTP 429 rate limited by the provider (retry after 20s): slow down".into(),
        );
        assert_eq!(
            limiter.record(t0(), &(0, Err(e))),
            Some(t0() + TimeDelta::seconds(20))
        );
        let e = SendError::Transient("sendgrid: HTTP 429 rate limited by the provider: x".into());
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
            (
                0,
                SendError::Transient("RCPT TO refused: 450 4.2.0 mailbox busy".into()),
            ),
            (
                1,
                SendError::Permanent("RCPT TO refused: 550 5.1.1 no such user".into()),
            ),
            (
                2,
                SendError::Unknown("end of data: connection reset".into()),
            ),
            (
                3,
                SendError::Transient("postmark: HTTP 503 provider unavailable: x".into()),
            ),
        ] {
            assert_eq!(limiter.record(t0(), &(id, Err(e.clone()))), None, "{e}");
        }
        assert_eq!(limiter.domain_pace(t0(), "a.test").0, 10.0);
    }

    #[test]
    fn throttles_are_recognised_from_the_error_text() {
        let domain = |s: &str| throttle_of(&SendError::Transient(s.into()));
        assert_eq!(
            domain("RCPT TO refused: 421 4.3.2 closing"),
            Some(Throttle::Domain)
        );
        assert_eq!(
            domain("RCPT TO refused: 451 temporary local problem"),
            Some(Throttle::Domain)
        );
        assert_eq!(
            domain("RCPT TO refused: 450 4.7.1 greylisted"),
            Some(Throttle::Domain)
        );
        assert_eq!(
            domain(
                "not sent: cannot open an SMTP session with mx:25: greeting/EHLO: transient error (421): too many connections"
            ),
            Some(Throttle::Domain)
        );
        assert_eq!(domain("RCPT TO refused: 450 4.2.0 busy"), None);
        assert_eq!(
            domain("cannot open an SMTP session with 10.0.0.1:451: refused"),
            None
        );
        assert_eq!(domain("postmark: HTTP 451 provider unavailable"), None);
        assert_eq!(
            domain("mailgun: HTTP 503 provider unavailable: upstream said 421 4.7.0"),
            None
        );
        assert_eq!(domain("ticket 44210 ref 4.7"), None);
        assert_eq!(
            domain("mailgun: HTTP 429 rate limited by the provider (retry after 12s): x"),
            Some(Throttle::Provider {
                retry_after: Some(Duration::from_secs(12))
            })
        );
        assert_eq!(
            throttle_of(&SendError::Permanent("RCPT TO refused: 554 4.7.1 x".into())),
            None
        );
    }

    #[test]
    fn a_mixed_queue_with_every_limit_drains_completely_within_all_limits() {
        let mut settings = gmail_settings();
        settings.per_second = Some(20.0);
        settings.burst = Some(20);
        settings.daily_cap = Some(400);
        settings.default_domain = DomainLimit {
            per_second: 3.0,
            burst: 3,
            concurrency: 5,
        };
        let mut limiter = Limiter::new(settings);
        let domains = [
            "gmail.com",
            "outlook.com",
            "acme.test",
            "gmail.com",
            "yahoo.com",
        ];
        let queue: Vec<_> = (0..1000)
            .map(|i| (i, domains[i as usize % domains.len()].to_string(), t0()))
            .collect();
        let sent = drain(&mut limiter, queue, secs(0.5), t0() + TimeDelta::days(4));
        assert_eq!(sent.len(), 1000);
        let times: Vec<DateTime<Utc>> = sent.iter().map(|(_, at)| *at).collect();
        for (i, start) in times.iter().enumerate() {
            let in_day = times[i..]
                .iter()
                .take_while(|at| **at < *start + WINDOW)
                .count();
            assert!(in_day <= 400, "{in_day} in 24 h");
            let in_sec = times[i..]
                .iter()
                .take_while(|at| **at <= *start + secs(1.0))
                .count();
            assert!(in_sec <= 40, "{in_sec} within 1 s");
        }
        // Per domain: gmail at most 8 + 8/s, the others 3 + 3/s.
        for domain in ["gmail.com", "acme.test"] {
            let (burst, rate) = if domain == "gmail.com" {
                (8, 8.0)
            } else {
                (3, 3.0)
            };
            let dt: Vec<DateTime<Utc>> = sent
                .iter()
                .filter(|(id, _)| domains[*id as usize % domains.len()] == domain)
                .map(|(_, at)| *at)
                .collect();
            for (i, start) in dt.iter().enumerate() {
                let n = dt[i..]
                    .iter()
                    .take_while(|at| **at <= *start + secs(2.0))
                    .count();
                assert!(
                    n <= burst + (2.0 * rate) as usize,
                    "{domain}: {n} within 2 s"
                );
            }
        }
    }

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
                "domains.gmail.com.concurrency"
            ]
        );
        assert!(LimitSettings::default().problems().is_empty());
        // And the limiter still works with them (sanitised, never panics).
        let mut limiter = Limiter::new(s);
        let a = limiter.admit(t0(), &batch(0..3, "gmail.com"));
        check_complete(&batch(0..3, "gmail.com"), &a, t0());
    }
}
