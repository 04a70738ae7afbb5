//! How a send pass stops, in three moments:
//!
//! 1. `stop` (SIGTERM/SIGINT): nothing new is claimed; batches in flight go on sending,
//!    wave after wave, and are recorded.
//! 2. `abort`, `scheduler.shutdown_grace` after `stop`: conversations still open are
//!    abandoned — their deliveries are recorded `unknown` (they were on the wire) — and every
//!    delivery of those batches that had not started goes back to due (not sent, no attempt
//!    counted).
//! 3. `give_up`, [`RECORDING_AFTER_ABORT`] later: outcomes that still could not be written
//!    (the database is down) are given up; their rows are repaired by lease expiry like
//!    after a crash (started → `unknown`, not started → due again).
//!
//! The unit's `TimeoutStopSec` is larger than the grace plus that margin, so systemd never
//! has to SIGKILL a daemon that is still recording.

use std::time::Duration;

use tokio_util::sync::CancellationToken;

/// How long outcomes are still retried after sends were aborted at the deadline.
pub const RECORDING_AFTER_ABORT: Duration = Duration::from_secs(5);

/// The three moments of a stop (see the module docs).
#[derive(Clone, Debug, Default)]
pub struct Shutdown {
    pub stop: CancellationToken,
    pub abort: CancellationToken,
    pub give_up: CancellationToken,
}

impl Shutdown {
    /// A stop without a deadline: in-flight batches always finish and recording never gives
    /// up (tests and tools that drive single passes).
    pub fn without_deadline(stop: CancellationToken) -> Shutdown {
        Shutdown {
            stop,
            ..Shutdown::default()
        }
    }

    /// A stop whose sends are aborted `grace` after `stop` fires, and whose recording gives
    /// up `margin` after that (the daemon: [`RECORDING_AFTER_ABORT`]). Needs a Tokio
    /// runtime (spawns the timer).
    pub fn with_grace(stop: CancellationToken, grace: Duration, margin: Duration) -> Shutdown {
        let shutdown = Shutdown {
            stop,
            ..Shutdown::default()
        };
        let timer = shutdown.clone();
        tokio::spawn(async move {
            timer.stop.cancelled().await;
            tokio::select! {
                _ = tokio::time::sleep(grace) => {}
                _ = timer.abort.cancelled() => {}
            }
            if !timer.abort.is_cancelled() {
                tracing::warn!(grace = ?grace, "Shutdown grace is over: aborting the sends still in flight");
                timer.abort.cancel();
            }
            tokio::time::sleep(margin).await;
            timer.give_up.cancel();
        });
        shutdown
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_deadline_aborts_after_the_grace_and_gives_up_after_the_margin() {
        let ms = Duration::from_millis;
        let stop = CancellationToken::new();
        let s = Shutdown::with_grace(stop.clone(), ms(200), ms(200));
        tokio::time::sleep(ms(300)).await;
        assert!(!s.abort.is_cancelled(), "no deadline before stop");
        stop.cancel();
        tokio::time::sleep(ms(100)).await;
        assert!(!s.abort.is_cancelled(), "not before the grace is over");
        tokio::time::sleep(ms(200)).await;
        assert!(s.abort.is_cancelled());
        assert!(!s.give_up.is_cancelled());
        tokio::time::sleep(ms(250)).await;
        assert!(s.give_up.is_cancelled());
    }

    #[tokio::test]
    async fn without_a_deadline_nothing_is_ever_aborted() {
        let stop = CancellationToken::new();
        let s = Shutdown::without_deadline(stop.clone());
        stop.cancel();
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert!(s.stop.is_cancelled());
        assert!(!s.abort.is_cancelled() && !s.give_up.is_cancelled());
    }
}
