//! The transport's circuit breaker: when the transport itself fails, pause it — not the
//! deliveries.
//!
//! A failure carrying a [`TransportFault`] (connection refused, 421 at greeting, AUTH 535,
//! TLS, EMFILE, a provider's 5xx/429 storm, a refused API account) says nothing about the
//! message: every message would have failed the same way. Such a delivery is deferred to
//! [`Breaker::resume_at`] *without counting an attempt*, and the breaker counts the fault.
//! Per-delivery attempts count only per-recipient failures.
//!
//! ```text
//!            threshold faults in a row                 probe time reached
//!  Closed ─────────────────────────────▶ Open ──────────────────────────────▶ Open(probing)
//!    ▲                                    ▲  ◀── probe failed: wait ×2 (≤ probe_max) ──┘  │
//!    └──────────── any message got through (sent, or refused per recipient) ─────────────┘
//! ```
//!
//! - **Closed**: everything goes. A fault counts; a message that got through resets the
//!   count. `threshold` faults in a row open the breaker.
//! - **Open** (the transport is *paused*): nothing is claimed, nothing is sent. When
//!   `next_probe` comes, [`Breaker::admit`] answers [`Admit::Probe`] once: the caller sends a
//!   single delivery. If it gets through, the breaker closes; if it fails with a transport
//!   fault, the wait doubles, up to `probe_max`. A probe that could not be made (nothing was
//!   due) is given back with [`Breaker::probe_unused`].
//!
//! Pure and clock-injected: every call takes `now`; nothing sleeps or reads a clock. The
//! caller (`outbound::dispatch`) owns the I/O and reports each outcome with
//! [`Breaker::observe`] (or `on_fault` / `on_ok`), and publishes [`Change`]s to the shared
//! health state (`/readyz`, `/metrics`, `status`).
//!
//! Anything that can tell "the transport cannot work right now" may feed it: the API
//! transports mark 401/403 account errors as [`TransportFault::Account`] the same way.

use chrono::{DateTime, TimeDelta, Utc};

use super::{SendError, TransportFault};

/// When to pause and how to probe (`[transport.breaker]`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BreakerSettings {
    /// Transport faults in a row (no message got through in between) that pause the transport.
    pub threshold: u32,
    /// Wait before the first probe of a paused transport; doubles after each failed probe.
    pub probe_after: TimeDelta,
    /// Longest wait between probes.
    pub probe_max: TimeDelta,
}

impl Default for BreakerSettings {
    fn default() -> Self {
        BreakerSettings {
            threshold: 3,
            probe_after: TimeDelta::seconds(30),
            probe_max: TimeDelta::minutes(10),
        }
    }
}

/// What may be sent now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admit {
    /// The transport works: send as usual.
    All,
    /// The transport is paused and a probe is due: send exactly one delivery, then report it.
    Probe,
    /// The transport is paused: send nothing before `until`.
    Paused { until: DateTime<Utc> },
}

/// Why and since when the transport is paused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pause {
    pub fault: TransportFault,
    /// The text of the last transport error (for people: logs, `/readyz`, `status`).
    pub detail: String,
    pub since: DateTime<Utc>,
    /// When the next probe may go.
    pub next_probe: DateTime<Utc>,
    /// Probes that failed since the pause began.
    pub failed_probes: u32,
    /// A probe is on the wire.
    probing: bool,
}

/// A change of state worth telling (logging once, publishing to health and metrics).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// The transport was just paused.
    Paused(Pause),
    /// The transport works again after a pause of `paused_for`.
    Resumed {
        fault: TransportFault,
        paused_for: TimeDelta,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum State {
    Closed { faults_in_row: u32 },
    Open(Pause),
}

/// The breaker of one transport. See the module docs.
#[derive(Debug, Clone)]
pub struct Breaker {
    settings: BreakerSettings,
    state: State,
}

impl Breaker {
    pub fn new(settings: BreakerSettings) -> Breaker {
        Breaker {
            settings,
            state: State::Closed { faults_in_row: 0 },
        }
    }

    pub fn settings(&self) -> BreakerSettings {
        self.settings
    }

    /// New settings (on reload); the state is kept.
    pub fn update_settings(&mut self, settings: BreakerSettings) {
        self.settings = settings;
    }

    /// The pause, while the transport is paused.
    pub fn pause(&self) -> Option<&Pause> {
        match &self.state {
            State::Open(pause) => Some(pause),
            State::Closed { .. } => None,
        }
    }

    pub fn is_paused(&self) -> bool {
        self.pause().is_some()
    }

    /// What may be sent at `now`. Answers [`Admit::Probe`] once per probe time; until the
    /// probe is reported (or given back), it answers `Paused`.
    pub fn admit(&mut self, now: DateTime<Utc>) -> Admit {
        let probe_after = self.settings.probe_after;
        match &mut self.state {
            State::Closed { .. } => Admit::All,
            State::Open(pause) if pause.probing => Admit::Paused {
                until: pause.next_probe.max(now + probe_after),
            },
            State::Open(pause) if now >= pause.next_probe => {
                pause.probing = true;
                Admit::Probe
            }
            State::Open(pause) => Admit::Paused {
                until: pause.next_probe,
            },
        }
    }

    /// The probe [`admit`](Self::admit) allowed was not made (nothing was due): the next
    /// call may probe again.
    pub fn probe_unused(&mut self) {
        if let State::Open(pause) = &mut self.state {
            pause.probing = false;
        }
    }

    /// When a delivery stopped by a transport fault at `now` should be due again: the next
    /// probe while paused, else `probe_after` from now. Never before `now`.
    pub fn resume_at(&self, now: DateTime<Utc>) -> DateTime<Utc> {
        match &self.state {
            State::Open(pause) => pause.next_probe.max(now),
            State::Closed { .. } => now + self.settings.probe_after,
        }
    }

    /// A message got through the transport (sent, or refused for its own reasons): the
    /// transport works. Closes an open breaker.
    pub fn on_ok(&mut self, now: DateTime<Utc>) -> Option<Change> {
        let previous = std::mem::replace(&mut self.state, State::Closed { faults_in_row: 0 });
        match previous {
            State::Open(pause) => Some(Change::Resumed {
                fault: pause.fault,
                paused_for: now - pause.since,
            }),
            State::Closed { .. } => None,
        }
    }

    /// The transport failed with `fault` at `now` (`detail`: the error's text).
    pub fn on_fault(
        &mut self,
        now: DateTime<Utc>,
        fault: TransportFault,
        detail: &str,
    ) -> Option<Change> {
        let settings = self.settings;
        match &mut self.state {
            State::Closed { faults_in_row } => {
                *faults_in_row += 1;
                if *faults_in_row < settings.threshold.max(1) {
                    return None;
                }
                let pause = Pause {
                    fault,
                    detail: detail.to_string(),
                    since: now,
                    next_probe: now + settings.probe_after,
                    failed_probes: 0,
                    probing: false,
                };
                self.state = State::Open(pause.clone());
                Some(Change::Paused(pause))
            }
            State::Open(pause) => {
                pause.fault = fault;
                pause.detail = detail.to_string();
                if pause.probing {
                    pause.probing = false;
                    pause.failed_probes += 1;
                    pause.next_probe = now + probe_wait(&settings, pause.failed_probes);
                }
                None
            }
        }
    }

    /// Feeds one send outcome: a transport fault counts against the transport; anything else
    /// (sent, refused per recipient, unknown) shows the transport works.
    pub fn observe(
        &mut self,
        now: DateTime<Utc>,
        result: &Result<(), SendError>,
    ) -> Option<Change> {
        match result
            .as_ref()
            .err()
            .and_then(|e| e.transport_fault().map(|f| (f, e)))
        {
            Some((fault, error)) => self.on_fault(now, fault, error.message()),
            None => self.on_ok(now),
        }
    }
}

/// The wait after `failed` failed probes: `probe_after · 2^failed`, at most `probe_max`.
fn probe_wait(settings: &BreakerSettings, failed: u32) -> TimeDelta {
    let factor = 2_i32.saturating_pow(failed.min(20));
    settings
        .probe_after
        .checked_mul(factor)
        .unwrap_or(settings.probe_max)
        .min(settings.probe_max.max(settings.probe_after))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(seconds: i64) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2026-03-02T09:00:00Z")
            .unwrap()
            .with_timezone(&Utc)
            + TimeDelta::seconds(seconds)
    }

    fn settings(threshold: u32, probe_after: i64, probe_max: i64) -> BreakerSettings {
        BreakerSettings {
            threshold,
            probe_after: TimeDelta::seconds(probe_after),
            probe_max: TimeDelta::seconds(probe_max),
        }
    }

    fn fault(f: TransportFault) -> Result<(), SendError> {
        Err(SendError::transient(format!("{f} failed")).with_transport_fault(f))
    }

    #[test]
    fn a_closed_breaker_admits_everything_and_stays_closed_below_the_threshold() {
        let mut b = Breaker::new(settings(3, 30, 600));
        assert_eq!(b.admit(t(0)), Admit::All);
        assert_eq!(b.observe(t(0), &fault(TransportFault::Greeting)), None);
        assert_eq!(b.observe(t(1), &fault(TransportFault::Greeting)), None);
        assert!(!b.is_paused());
        assert_eq!(b.admit(t(2)), Admit::All);
        // Below the threshold, a stopped delivery waits probe_after.
        assert_eq!(b.resume_at(t(2)), t(32));
    }

    #[test]
    fn a_message_that_got_through_resets_the_count() {
        let mut b = Breaker::new(settings(3, 30, 600));
        b.observe(t(0), &fault(TransportFault::Unreachable));
        b.observe(t(1), &fault(TransportFault::Unreachable));
        assert_eq!(b.observe(t(2), &Ok(())), None);
        b.observe(t(3), &fault(TransportFault::Unreachable));
        b.observe(t(4), &fault(TransportFault::Unreachable));
        assert!(!b.is_paused());
        assert!(
            b.observe(t(5), &fault(TransportFault::Unreachable))
                .is_some()
        );
        assert!(b.is_paused());
    }

    #[test]
    fn per_recipient_failures_and_unknown_outcomes_show_the_transport_works() {
        let mut b = Breaker::new(settings(2, 30, 600));
        b.observe(t(0), &fault(TransportFault::Auth));
        let refused = SendError::permanent("RCPT TO refused: 550").with_recipient_refused();
        assert_eq!(b.observe(t(1), &Err(refused)), None);
        b.observe(t(2), &fault(TransportFault::Auth));
        assert!(!b.is_paused(), "the 550 reset the count");
        let retry = SendError::transient("RCPT TO refused: 450 mailbox busy");
        b.observe(t(3), &Err(retry));
        b.observe(t(4), &fault(TransportFault::Auth));
        assert!(!b.is_paused(), "a 450 to RCPT is about the recipient");
        b.observe(t(5), &Err(SendError::unknown("broke after the body")));
        b.observe(t(6), &fault(TransportFault::Auth));
        assert!(!b.is_paused());
    }

    #[test]
    fn reaching_the_threshold_pauses_with_the_reason_and_the_first_probe_time() {
        let mut b = Breaker::new(settings(3, 30, 600));
        for s in 0..2 {
            b.observe(t(s), &fault(TransportFault::Greeting));
        }
        let change = b.observe(t(2), &fault(TransportFault::Auth)).unwrap();
        let Change::Paused(pause) = change else {
            panic!("expected a pause, got {change:?}")
        };
        assert_eq!(pause.fault, TransportFault::Auth);
        assert_eq!(pause.detail, "auth failed");
        assert_eq!(pause.since, t(2));
        assert_eq!(pause.next_probe, t(32));
        assert_eq!(b.admit(t(10)), Admit::Paused { until: t(32) });
        assert_eq!(b.resume_at(t(10)), t(32));
        // More faults while paused (batches that were already on the wire) change nothing
        // but the reason shown; no second "paused" change.
        assert_eq!(b.observe(t(11), &fault(TransportFault::Greeting)), None);
        assert_eq!(b.pause().unwrap().fault, TransportFault::Greeting);
        assert_eq!(b.pause().unwrap().next_probe, t(32));
    }

    #[test]
    fn a_threshold_of_zero_or_one_pauses_on_the_first_fault() {
        for threshold in [0, 1] {
            let mut b = Breaker::new(settings(threshold, 5, 60));
            assert!(b.observe(t(0), &fault(TransportFault::Tls)).is_some());
            assert!(b.is_paused());
        }
    }

    #[test]
    fn one_probe_at_a_time_when_the_probe_time_comes() {
        let mut b = Breaker::new(settings(1, 30, 600));
        b.observe(t(0), &fault(TransportFault::Unreachable));
        assert_eq!(b.admit(t(29)), Admit::Paused { until: t(30) });
        assert_eq!(b.admit(t(30)), Admit::Probe);
        // Until the probe is reported, nothing else goes.
        assert!(matches!(b.admit(t(31)), Admit::Paused { until } if until >= t(31)));
        assert!(matches!(b.admit(t(40)), Admit::Paused { .. }));
    }

    #[test]
    fn failed_probes_double_the_wait_up_to_the_cap() {
        let mut b = Breaker::new(settings(1, 10, 60));
        b.observe(t(0), &fault(TransportFault::Greeting));
        let mut now = t(0);
        let mut waits = Vec::new();
        for _ in 0..6 {
            now = b.pause().unwrap().next_probe;
            assert_eq!(b.admit(now), Admit::Probe);
            assert_eq!(b.observe(now, &fault(TransportFault::Greeting)), None);
            waits.push((b.pause().unwrap().next_probe - now).num_seconds());
        }
        assert_eq!(waits, vec![20, 40, 60, 60, 60, 60]);
        assert_eq!(b.pause().unwrap().failed_probes, 6);
        assert_eq!(b.pause().unwrap().since, t(0));
        assert!(now > t(0));
    }

    #[test]
    fn a_successful_probe_resumes_and_says_for_how_long_it_was_paused() {
        let mut b = Breaker::new(settings(1, 30, 600));
        b.observe(t(0), &fault(TransportFault::FdExhausted));
        assert_eq!(b.admit(t(30)), Admit::Probe);
        let change = b.observe(t(31), &Ok(())).unwrap();
        assert_eq!(
            change,
            Change::Resumed {
                fault: TransportFault::FdExhausted,
                paused_for: TimeDelta::seconds(31)
            }
        );
        assert!(!b.is_paused());
        assert_eq!(b.admit(t(32)), Admit::All);
        // And the count starts from zero again.
        assert!(b.observe(t(33), &fault(TransportFault::Auth)).is_some());
    }

    #[test]
    fn an_unused_probe_is_given_back() {
        let mut b = Breaker::new(settings(1, 30, 600));
        b.observe(t(0), &fault(TransportFault::Auth));
        assert_eq!(b.admit(t(30)), Admit::Probe);
        b.probe_unused();
        assert_eq!(b.admit(t(45)), Admit::Probe);
        assert_eq!(b.pause().unwrap().failed_probes, 0);
    }

    #[test]
    fn a_fault_from_an_earlier_batch_does_not_count_as_a_failed_probe() {
        let mut b = Breaker::new(settings(1, 10, 600));
        b.observe(t(0), &fault(TransportFault::Greeting));
        // No probe in flight: a straggler's fault does not push the probe back.
        b.observe(t(5), &fault(TransportFault::Greeting));
        assert_eq!(b.pause().unwrap().failed_probes, 0);
        assert_eq!(b.admit(t(10)), Admit::Probe);
    }

    #[test]
    fn resume_at_is_never_before_now() {
        let mut b = Breaker::new(settings(1, 10, 600));
        b.observe(t(0), &fault(TransportFault::Greeting));
        assert_eq!(b.resume_at(t(100)), t(100));
        assert_eq!(b.resume_at(t(3)), t(10));
    }

    #[test]
    fn every_fault_kind_pauses_and_a_cap_below_the_first_wait_is_the_first_wait() {
        for f in TransportFault::ALL {
            let mut b = Breaker::new(settings(1, 30, 10));
            assert!(matches!(b.observe(t(0), &fault(f)), Some(Change::Paused(p)) if p.fault == f));
            assert_eq!(b.admit(t(30)), Admit::Probe);
            b.observe(t(30), &fault(f));
            assert_eq!(b.pause().unwrap().next_probe, t(60), "{f}");
        }
    }

    #[test]
    fn new_settings_keep_the_state() {
        let mut b = Breaker::new(settings(1, 30, 600));
        b.observe(t(0), &fault(TransportFault::Auth));
        b.update_settings(settings(5, 1, 2));
        assert!(b.is_paused());
        assert_eq!(b.settings().threshold, 5);
    }
}
