//! Time is injected: the daemon reads a real clock, tests and `--now` a fixed one.

use chrono::{DateTime, Utc};

#[derive(Debug, Clone, Copy)]
pub enum Clock {
    Real,
    Fixed(DateTime<Utc>),
}

impl Clock {
    pub fn now(&self) -> DateTime<Utc> {
        match self {
            Clock::Real => Utc::now(),
            Clock::Fixed(t) => *t,
        }
    }
}
