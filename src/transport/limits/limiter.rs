//! The [`Limiter`]: admits what the rates allow now, defers the rest with a projected
//! `not_before`, and learns from what each send answered (a pause after the provider's 429,
//! a slow-down when a domain pushes back). It lives in the process; the daily caps, which
//! must hold across restarts and daemons, are kept in the database (`caps`, `durable`).

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, TimeDelta, Utc};

use super::domain::DomainState;
use super::gcra::{Gcra, delta, interval};
use super::settings::LimitSettings;
use super::{Throttle, domain_of, throttle_of};
use crate::transport::{OutgoingEmail, SendOutcome};

/// Beyond this many known domains, idle ones (at their configured rate, nothing in flight,
/// no debt) are forgotten.
const PRUNE_DOMAINS_ABOVE: usize = 10_000;

/// What [`Limiter::admit`] decided: every delivery of the batch is in exactly one list.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Admission {
    /// May be sent now, in the order given.
    pub admitted: Vec<i64>,
    /// Not now: not before the time given (always later than `now`).
    pub deferred: Vec<(i64, DateTime<Utc>)>,
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
    domains: HashMap<String, DomainState>,
    in_flight: HashMap<i64, InFlight>,
    /// The slots promised to deferred deliveries (see [`Limiter::project`]): the projection's
    /// own rate states, kept from one batch to the next, for the transport and per domain.
    reserved: Reserved,
}

/// What earlier deferrals reserved: a GCRA state per rate, ahead of the real one.
#[derive(Debug, Clone, Default)]
struct Reserved {
    transport: Option<DateTime<Utc>>,
    domains: HashMap<String, DateTime<Utc>>,
}

/// The interval between promised slots: the rate's `t`, or — when passes come every
/// `pass` and a pass can send at most `burst` (a full bucket) — `pass / burst` if longer.
fn pass_pace(t: TimeDelta, burst: u32, pass: std::time::Duration) -> TimeDelta {
    let per_pass = delta(pass) / burst.max(1) as i32;
    t.max(per_pass)
}

/// A rate's line of promised slots during a projection: GCRA from the later of the real
/// state and the slots already promised, with the rate's own burst tolerance, each slot
/// `pace` after the one before (the rate's interval, or longer: see [`pass_pace`]).
#[derive(Debug, Clone, Copy)]
struct Line {
    tat: Option<DateTime<Utc>>,
}

impl Line {
    fn new(real: Gcra, reserved: Option<DateTime<Utc>>) -> Line {
        Line {
            tat: real.tat.max(reserved),
        }
    }

    /// The first slot at or after `at` (`tau`: the burst tolerance), promised.
    fn promise(&mut self, at: DateTime<Utc>, pace: TimeDelta, tau: TimeDelta) -> DateTime<Utc> {
        let at = match self.tat {
            Some(tat) if tat - tau > at => tat - tau,
            _ => at,
        };
        let base = self.tat.filter(|tat| *tat > at).unwrap_or(at);
        self.tat = Some(base + pace);
        at
    }
}

/// A rate's burst tolerance: `burst - 1` intervals.
fn tau(t: TimeDelta, burst: u32) -> TimeDelta {
    t * (burst.saturating_sub(1) as i32)
}

impl Limiter {
    pub fn new(settings: LimitSettings) -> Limiter {
        Limiter {
            settings: settings.sanitized(),
            transport: Gcra { tat: None },
            paused_until: None,
            domains: HashMap::new(),
            in_flight: HashMap::new(),
            reserved: Reserved::default(),
        }
    }

    pub fn settings(&self) -> &LimitSettings {
        &self.settings
    }

    /// New settings (a reload) keeping the rates' state, what is in flight and the slow-downs
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
    /// now under the rates, the concurrency and a provider's pause (not the daily caps: see
    /// `durable`). Admitted deliveries count against every limit at once; they are "in flight" for
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
                    .is_none_or(|t| self.transport.earliest(now, t, transport_burst) <= now);
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
        let admitted: HashSet<i64> = admission.admitted.into_iter().collect();
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
                let next = state.slow_down(&entry.domain, now, entry.admitted_at, min_rate);
                Some(next.max(min))
            }
        }
    }

    /// Forgets an admitted delivery that was not sent after all (its concurrency slot is
    /// given back).
    pub fn release(&mut self, id: i64) {
        if let Some(entry) = self.in_flight.remove(&id)
            && let Some(state) = self.domains.get_mut(&entry.domain)
        {
            state.in_flight = state.in_flight.saturating_sub(1);
        }
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

    /// Ends a pause that is over, forgets stale in-flight deliveries and idle domains.
    fn expire(&mut self, now: DateTime<Utc>) {
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
        if self.reserved.domains.len() > PRUNE_DOMAINS_ABOVE {
            self.reserved.domains.retain(|_, tat| *tat > now);
        }
    }

    /// When each blocked delivery may go: first each domain's own pace (rate, concurrency,
    /// slow-down), then the transport's pause and rate.
    ///
    /// Projected across batches: from the slots earlier deferrals were promised (`reserved`),
    /// not from the real state alone, and this batch's are added to them — so a backlog larger
    /// than a batch is spread over the time the limits need to send it, each delivery due
    /// again when its turn comes, instead of every batch being promised the same first free
    /// slots and the whole backlog coming back (and being deferred again) at every pass. The
    /// pace of the promises is the rate, or a burst per pass if that is slower
    /// ([`pass_pace`]): deferred deliveries are only claimed again at passes. Admission never
    /// reads the reservations: a delivery that comes back early only goes if the real limits
    /// allow, and one that never comes back (cancelled, answered) only leaves its slot unused —
    /// later deferrals are estimated that much later, no limit is ever passed.
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
        let mut lines: HashMap<&str, (Line, u32)> = HashMap::new();
        let mut by_domain: Vec<(usize, DateTime<Utc>)> = Vec::with_capacity(blocked.len());
        for (index, (_, domain)) in blocked.iter().enumerate() {
            let state = self.domain_state(domain, now).clone();
            let reserved = self.reserved.domains.get(domain.as_str()).copied();
            let (line, over) = lines
                .entry(domain.as_str())
                .or_insert((Line::new(state.gcra, reserved), 0));
            let burst = state.limit.burst.min(state.concurrency).max(1);
            let t = interval(state.rate);
            let pace = pass_pace(t, burst, self.settings.pass_interval);
            let mut at = min;
            if state.in_flight >= state.concurrency {
                // Slots free up as sends are recorded; assume one round per `min_defer`.
                let rounds = 1 + *over / state.concurrency.max(1);
                at = at.max(now + delta(self.settings.min_defer) * rounds as i32);
                *over += 1;
            }
            by_domain.push((index, line.promise(at, pace, tau(t, burst))));
        }
        for (domain, (line, _)) in lines {
            if let Some(tat) = line.tat {
                self.reserved.domains.insert(domain.to_string(), tat);
            }
        }
        // 2. The transport, in the order the domains allow.
        by_domain.sort_by_key(|(index, at)| (*at, *index));
        let burst = self.settings.transport_burst();
        let transport_t = self.settings.per_second.map(|rate| {
            let t = interval(rate);
            (
                pass_pace(t, burst, self.settings.pass_interval),
                tau(t, burst),
            )
        });
        let mut line = Line::new(self.transport, self.reserved.transport);
        let mut out = vec![(0i64, now); blocked.len()];
        for (index, mut at) in by_domain {
            if let Some(p) = self.paused_until {
                at = at.max(p);
            }
            if let Some((pace, tau)) = transport_t {
                at = line.promise(at, pace, tau);
            }
            out[index] = (blocked[index].0, at.max(min));
        }
        if transport_t.is_some() {
            self.reserved.transport = line.tat;
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::time::Duration;

    use chrono::TimeDelta;

    use super::super::test_support::*;
    use super::*;
    use crate::transport::limits::DomainLimit;

    #[test]
    fn nothing_goes_over_the_per_second_rate() {
        let mut limiter = Limiter::new(transport_only(Some(10.0), Some(10)));
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
        let mut limiter = Limiter::new(transport_only(Some(5.0), Some(5)));
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
    fn a_second_batch_is_deferred_behind_the_first_ones_deferrals() {
        let mut limiter = Limiter::new(transport_only(Some(5.0), Some(5)));
        let first = limiter.admit(t0(), &batch(0..20, "example.org"));
        let second = limiter.admit(t0(), &batch(20..40, "example.org"));
        check_complete(&batch(20..40, "example.org"), &second, t0());
        assert!(second.admitted.is_empty(), "the burst is spent");
        let last_first = first.deferred.iter().map(|(_, at)| *at).max().unwrap();
        let times: Vec<DateTime<Utc>> = second.deferred.iter().map(|(_, at)| *at).collect();
        assert!(times.windows(2).all(|w| w[0] <= w[1]), "{times:?}");
        // 15 deferred from the first batch took the slots up to 3 s; the second batch's 20
        // follow at the rate, up to 7 s — not the same first free slots again.
        assert!(times[0] > last_first, "{} after {last_first}", times[0]);
        assert_eq!(times.last().copied(), Some(t0() + TimeDelta::seconds(7)));
        // Admission reads the real rate only: at 1 s the first batch's next ones go.
        let a = limiter.admit(t0() + TimeDelta::seconds(1), &batch(5..10, "example.org"));
        assert_eq!(a.admitted, vec![5, 6, 7, 8, 9]);
    }

    #[test]
    fn a_backlog_comes_back_about_once_per_delivery_not_at_every_pass() {
        // 3,000 due at once at 10 per second (a burst of 10), claimed 100 at a time at passes
        // 30 s apart: a pass sends 10, and each delivery is deferred about once, to the pass
        // that will send it — not to the next pass with all the others.
        let mut limiter = Limiter::new(LimitSettings {
            per_second: Some(10.0),
            burst: Some(10),
            pass_interval: Duration::from_secs(30),
            ..LimitSettings::default()
        });
        let mut due: BTreeMap<(DateTime<Utc>, i64), ()> =
            (0..3000).map(|id| ((t0(), id), ())).collect();
        let (mut claims, mut now, mut sent) = (0usize, t0(), 0usize);
        while !due.is_empty() && now < t0() + TimeDelta::hours(4) {
            loop {
                let ready: Vec<(DateTime<Utc>, i64)> = due
                    .keys()
                    .take_while(|(at, _)| *at <= now)
                    .take(100)
                    .copied()
                    .collect();
                if ready.is_empty() {
                    break;
                }
                claims += ready.len();
                let b: Vec<(i64, &str)> = ready.iter().map(|(_, id)| (*id, "a.test")).collect();
                let a = limiter.admit(now, &b);
                for key in &ready {
                    due.remove(key);
                }
                for id in &a.admitted {
                    limiter.record(now, &(*id, Ok(())));
                    sent += 1;
                }
                for (id, at) in a.deferred {
                    due.insert((at, id), ());
                }
            }
            now += TimeDelta::seconds(30);
        }
        assert_eq!(sent, 3000);
        assert!(claims < 3 * 3000, "{claims} claims for 3000 deliveries");
    }

    #[test]
    fn stale_in_flight_deliveries_are_forgotten() {
        let mut limiter = Limiter::new(LimitSettings {
            default_domain: DomainLimit {
                per_second: 1000.0,
                burst: 1000,
                concurrency: 1,
                daily_cap: None,
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

    #[test]
    fn composed_messages_are_split_by_their_recipients_domain() {
        let mut limiter = Limiter::new(LimitSettings {
            default_domain: DomainLimit {
                per_second: 1000.0,
                burst: 1000,
                concurrency: 1,
                daily_cap: None,
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
    fn a_mixed_queue_with_every_limit_drains_completely_within_all_limits() {
        let mut settings = gmail_settings();
        settings.per_second = Some(20.0);
        settings.burst = Some(20);
        settings.default_domain = DomainLimit {
            per_second: 3.0,
            burst: 3,
            concurrency: 5,
            daily_cap: None,
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
        let sent = drain(&mut limiter, queue, secs(0.5), t0() + TimeDelta::days(1));
        assert_eq!(sent.len(), 1000);
        let times: Vec<DateTime<Utc>> = sent.iter().map(|(_, at)| *at).collect();
        for (i, start) in times.iter().enumerate() {
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
}
