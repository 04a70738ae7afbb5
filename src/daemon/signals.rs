//! Unix signals: SIGTERM (what systemd sends) and SIGINT stop new claims so the loop drains;
//! SIGHUP asks the loop to reload config and templates.

use std::sync::Arc;

use anyhow::Context as _;
use sd_notify::NotifyState;
use tokio_util::sync::CancellationToken;

/// Listens for the signals until the process ends: a stop cancels `stop`, a reload wakes
/// `reload` (and tells systemd we are reloading, then ready again).
pub fn spawn_handlers(
    stop: CancellationToken,
    reload: Arc<tokio::sync::Notify>,
) -> anyhow::Result<()> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate()).context("Failed to listen for SIGTERM")?;
    let mut int = signal(SignalKind::interrupt()).context("Failed to listen for SIGINT")?;
    let mut hup = signal(SignalKind::hangup()).context("Failed to listen for SIGHUP")?;
    tokio::spawn(async move {
        loop {
            tokio::select! {
                _ = term.recv() => { tracing::info!("SIGTERM: draining"); stop.cancel(); }
                _ = int.recv() => { tracing::info!("SIGINT: draining"); stop.cancel(); }
                _ = hup.recv() => { let _ = sd_notify::notify(&[NotifyState::Reloading]); reload.notify_one(); let _ = sd_notify::notify(&[NotifyState::Ready]); }
            }
        }
    });
    Ok(())
}

/// For `run --once`: SIGTERM/SIGINT cancel `stop` (finish and record what is on the wire,
/// claim nothing new), as in the daemon.
pub fn spawn_stop_handler(stop: CancellationToken) -> anyhow::Result<()> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate()).context("Failed to listen for SIGTERM")?;
    let mut int = signal(SignalKind::interrupt()).context("Failed to listen for SIGINT")?;
    tokio::spawn(async move {
        tokio::select! {
            _ = term.recv() => tracing::info!("SIGTERM: finishing what is on the wire, claiming nothing new"),
            _ = int.recv() => tracing::info!("SIGINT: finishing what is on the wire, claiming nothing new"),
        }
        stop.cancel();
    });
    Ok(())
}
