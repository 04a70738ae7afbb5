//! systemd's watchdog: with `WatchdogSec=` set, the service must say it is alive or systemd
//! restarts it. The feeding task stops with the daemon, so a hung drain is noticed.

use sd_notify::NotifyState;
use tokio_util::sync::CancellationToken;

/// Feeds the watchdog at half its interval until `stop`; does nothing when it is not enabled.
pub fn spawn(stop: CancellationToken) {
    let Some(interval) = sd_notify::watchdog_enabled() else {
        return;
    };
    tokio::spawn(async move {
        let mut ticker = tokio::time::interval(interval / 2);
        while !stop.is_cancelled() {
            ticker.tick().await;
            let _ = sd_notify::notify(&[NotifyState::Watchdog]);
        }
    });
}
