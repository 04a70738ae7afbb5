//! GCRA, the "virtual scheduling" form of a token bucket: with an interval `T = 1/rate` and
//! a burst `b`, at most `b + ⌊d/T⌋` messages conform in any span of length `d`. The state is
//! one time, the theoretical arrival time of the next message.

use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};

/// The interval between two messages at `rate` per second.
pub(super) fn interval(rate: f64) -> TimeDelta {
    let nanos = (1e9 / rate).round();
    let nanos = nanos.clamp(1.0, 86_400e9);
    TimeDelta::nanoseconds(nanos as i64)
}

/// A configured duration as a chrono one (at most a year, so an absurd setting cannot
/// overflow a time).
pub(super) fn delta(d: Duration) -> TimeDelta {
    TimeDelta::from_std(d).unwrap_or(TimeDelta::days(365))
}

/// GCRA state: the theoretical arrival time of the next message.
#[derive(Debug, Clone, Copy)]
pub(super) struct Gcra {
    pub(super) tat: Option<DateTime<Utc>>,
}

impl Gcra {
    /// The earliest time at or after `now` a message conforms.
    pub(super) fn earliest(&self, now: DateTime<Utc>, t: TimeDelta, burst: u32) -> DateTime<Utc> {
        let tau = t * (burst.saturating_sub(1) as i32);
        match self.tat {
            Some(tat) if tat - tau > now => tat - tau,
            _ => now,
        }
    }

    pub(super) fn take(&mut self, at: DateTime<Utc>, t: TimeDelta) {
        let base = match self.tat {
            Some(tat) if tat > at => tat,
            _ => at,
        };
        self.tat = Some(base + t);
    }
}
