//! Time is injected: the daemon reads a real clock, tests and `--now` a fixed or a started one.
//!
//! - [`Clock::Real`]: the wall clock (production).
//! - [`Clock::Fixed`]: time stands still (`rewarm run --once --now T`, every one-shot command).
//! - [`Clock::Started`]: time starts at a given moment and runs on at the speed of the
//!   machine's monotonic clock (`rewarm run --now T` without `--once`): a daemon under test
//!   sees minutes pass without the test depending on the hour, day or time zone it runs at.

use chrono::{DateTime, Utc};

#[derive(Debug, Clone, Copy)]
pub enum Clock {
    Real,
    Fixed(DateTime<Utc>),
    /// `at` was the time when the monotonic clock read `since`.
    Started {
        at: DateTime<Utc>,
        since: std::time::Instant,
    },
}

impl Clock {
    /// A clock that reads `at` now and runs on from there.
    pub fn starting_at(at: DateTime<Utc>) -> Clock {
        Clock::Started {
            at,
            since: std::time::Instant::now(),
        }
    }

    pub fn now(&self) -> DateTime<Utc> {
        match self {
            Clock::Real => Utc::now(),
            Clock::Fixed(t) => *t,
            Clock::Started { at, since } => {
                // An elapsed time past chrono's range (hundreds of millions of years) cannot
                // happen; saturate rather than panic.
                let elapsed =
                    chrono::Duration::from_std(since.elapsed()).unwrap_or(chrono::Duration::MAX);
                at.checked_add_signed(elapsed).unwrap_or(*at)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fixed_clock_stands_still_and_a_started_one_runs_on_from_its_start() {
        let t = DateTime::parse_from_rfc3339("2026-03-02T09:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        assert_eq!(Clock::Fixed(t).now(), t);
        let started = Clock::Started {
            at: t,
            since: std::time::Instant::now() - std::time::Duration::from_secs(90),
        };
        let now = started.now();
        assert!(now >= t + chrono::Duration::seconds(90), "{now}");
        assert!(now < t + chrono::Duration::seconds(3600), "{now}");
        assert!(Clock::starting_at(t).now() >= t);
    }
}
