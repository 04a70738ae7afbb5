//! Figures too costly to compute per request (the report's aggregates over every
//! enrolment, the 30-day forecast that replays the daemon's passes): computed in the
//! background and kept with the moment they describe ("as of"). A request older than the
//! time to live starts one refresh (never two at once) and is answered with what is there;
//! the very first one waits a moment for it, so a small database shows its figures at once.

use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use tokio::sync::watch;

/// A value and the moment it describes.
#[derive(Debug)]
pub struct Stamped<T> {
    pub value: T,
    /// The (injected) time the figures were computed for.
    pub as_of: DateTime<Utc>,
    /// How long computing them took.
    pub took: Duration,
}

/// One cached figure. Cheap to clone (shared).
pub struct Cached<T> {
    ttl: Duration,
    value: watch::Sender<Option<Arc<Stamped<T>>>>,
    /// When the last refresh started, and whether one is running.
    refresh: Arc<Mutex<(Option<Instant>, bool)>>,
}

impl<T: Send + Sync + 'static> Cached<T> {
    pub fn new(ttl: Duration) -> Cached<T> {
        Cached {
            ttl,
            value: watch::Sender::new(None),
            refresh: Arc::new(Mutex::new((None, false))),
        }
    }

    /// The value (None while the first computation runs longer than `wait`). Starts
    /// `make` in the background when there is none yet or it is older than the time to
    /// live and no refresh is running.
    pub async fn get<F, Fut>(&self, wait: Duration, make: F) -> Option<Arc<Stamped<T>>>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Option<Stamped<T>>> + Send + 'static,
    {
        let start = {
            let mut refresh = self
                .refresh
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            let stale = refresh.0.is_none_or(|at| at.elapsed() >= self.ttl);
            let start = stale && !refresh.1;
            if start {
                *refresh = (Some(Instant::now()), true);
            }
            start
        };
        if start {
            let future = make();
            let (sender, refresh) = (self.value.clone(), Arc::clone(&self.refresh));
            tokio::spawn(async move {
                // A failure keeps the figures there were (it was logged by `make`).
                if let Some(value) = future.await {
                    sender.send_replace(Some(Arc::new(value)));
                }
                refresh
                    .lock()
                    .unwrap_or_else(|poisoned| poisoned.into_inner())
                    .1 = false;
            });
        }
        let mut receiver = self.value.subscribe();
        if receiver.borrow().is_none() {
            let _ = tokio::time::timeout(wait, receiver.changed()).await;
        }
        receiver.borrow().clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stamped(v: u32) -> Option<Stamped<u32>> {
        Some(Stamped {
            value: v,
            as_of: DateTime::from_timestamp(0, 0).unwrap(),
            took: Duration::ZERO,
        })
    }

    #[tokio::test]
    async fn the_first_request_waits_then_the_value_is_kept_until_it_is_stale() {
        let cache = Cached::new(Duration::from_secs(3600));
        let first = cache
            .get(Duration::from_secs(5), || async { stamped(1) })
            .await;
        assert_eq!(first.map(|s| s.value), Some(1));
        // Fresh: `make` is not run again.
        let again = cache.get(Duration::ZERO, || async { stamped(2) }).await;
        assert_eq!(again.map(|s| s.value), Some(1));
        // A slow first computation: answered without figures, filled in later.
        let slow = Cached::new(Duration::from_secs(3600));
        let none = slow
            .get(Duration::from_millis(1), || async {
                tokio::time::sleep(Duration::from_millis(50)).await;
                stamped(3)
            })
            .await;
        assert!(none.is_none());
        tokio::time::sleep(Duration::from_millis(100)).await;
        let later = slow.get(Duration::ZERO, || async { stamped(4) }).await;
        assert_eq!(later.map(|s| s.value), Some(3));
    }
}
