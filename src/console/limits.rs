//! Rate limits of the console, in memory (per daemon): sign-in links asked for per address
//! and in total per hour, actions per person per minute. A fixed window per key, counted by
//! the injected clock; the map is swept when it grows, so a flood of made-up addresses
//! cannot grow it without bound.

use std::collections::HashMap;
use std::sync::Mutex;

use chrono::{DateTime, Duration, Utc};

/// Keys kept before expired windows are swept.
const SWEEP_OVER: usize = 10_000;

#[derive(Default)]
pub(super) struct RateLimits {
    windows: Mutex<HashMap<String, (DateTime<Utc>, u32)>>,
}

impl RateLimits {
    /// Counts one attempt for `key` in the window of length `window` that holds `now`;
    /// false (not counted) when `limit` attempts were made in it already.
    pub(super) fn allow(
        &self,
        key: &str,
        limit: u32,
        window: Duration,
        now: DateTime<Utc>,
    ) -> bool {
        let mut windows = self
            .windows
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if windows.len() > SWEEP_OVER {
            windows.retain(|_, (start, _)| *start + window > now);
        }
        let entry = windows.entry(key.to_string()).or_insert((now, 0));
        if entry.0 + window <= now || entry.0 > now {
            *entry = (now, 0);
        }
        if entry.1 >= limit {
            return false;
        }
        entry.1 += 1;
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_window_allows_its_limit_then_refuses_until_it_ends() {
        let limits = RateLimits::default();
        let t0 = DateTime::from_timestamp(1_800_000_000, 0).unwrap();
        let hour = Duration::hours(1);
        assert!((0..3).all(|_| limits.allow("a", 3, hour, t0)));
        assert!(!limits.allow("a", 3, hour, t0 + Duration::minutes(59)));
        assert!(limits.allow("b", 3, hour, t0));
        assert!(limits.allow("a", 3, hour, t0 + hour));
    }
}
