//! The daemon: a loop of send passes until SIGTERM, with the side tasks of each tick.
//!
//! Each tick runs one [`scheduler::pass`] (the whole send pipeline), then the
//! [`side`] tasks (poll the reply mailbox, tell sales), then sleeps for `scheduler.tick` — or
//! wakes early to stop or to reload the configuration. `rewarm run --once` is [`once`]: the
//! same pass and side tasks a single time, so tests drive exactly the daemon's logic.
//!
//! - [`side`]: the reply-mailbox poll and the notification/digest delivery.
//! - [`signals`]: SIGTERM/SIGINT drain, SIGHUP reloads.
//! - [`watchdog`]: keeps systemd's `WatchdogSec=` fed.
//!
//! A failed pass or side task never ends the loop: it is logged and the next tick tries again.
//! Stopping cancels new claims; in-flight sends finish and are recorded before we return.

pub mod side;
pub mod signals;
pub mod watchdog;

use std::path::Path;
use std::sync::Arc;

use anyhow::Context as _;
use chrono::{DateTime, Utc};
use sd_notify::NotifyState;
use tokio_util::sync::CancellationToken;

use crate::app::{Current, Loaded};
use crate::config::Settings;
use crate::domain::clock::Clock;
use crate::outbound::recording;
use crate::outbound::scheduler::{self, PassReport};
use crate::outbound::shutdown::{RECORDING_AFTER_ABORT, Shutdown};
use crate::store::Store;
use crate::transport::Transport;

/// One pass and one round of side tasks at `now`, then the SMTP pool is closed: what
/// `run --once` does. SIGTERM/SIGINT stop it like the daemon: nothing new is claimed, what
/// is on the wire finishes (until `scheduler.shutdown_grace`) and is recorded.
pub async fn once<S: Store>(
    store: &S,
    loaded: &Arc<Loaded>,
    transport: &Transport,
    now: DateTime<Utc>,
) -> anyhow::Result<PassReport> {
    let stop = CancellationToken::new();
    signals::spawn_stop_handler(stop.clone())?;
    let shutdown = shutdown_for(loaded, &stop);
    release_unstarted(store, loaded, now).await;
    let report = scheduler::pass_until(store, loaded, transport, now, true, &shutdown).await;
    // Replies and notifications once too: a one-shot run does a whole daemon tick (unless
    // it was told to stop).
    let side = if stop.is_cancelled() {
        Ok(())
    } else {
        side::run(store, loaded, transport, now, true, &stop).await
    };
    release_unstarted(store, loaded, now).await;
    close(transport).await;
    if stop.is_cancelled() {
        tracing::info!("Stopped: in-flight deliveries were recorded, nothing new was claimed");
    }
    side?;
    Ok(report?)
}

/// The stop's deadlines: sends aborted `scheduler.shutdown_grace` after `stop`.
fn shutdown_for(loaded: &Loaded, stop: &CancellationToken) -> Shutdown {
    Shutdown::with_grace(
        stop.clone(),
        loaded.settings.scheduler.shutdown_grace,
        RECORDING_AFTER_ABORT,
    )
}

/// Claims of this worker that never started go back to due: at start (the same worker
/// restarted after a crash: no need to wait for their lease) and at the end. Needs a
/// `scheduler.worker_id` that no other running daemon uses (the default names the
/// process, so a restart only releases at lease expiry).
async fn release_unstarted<S: Store>(store: &S, loaded: &Loaded, now: DateTime<Utc>) {
    let worker = &loaded.settings.scheduler.worker_id;
    match store.release_unstarted(worker, now).await {
        Ok(0) => {}
        Ok(n) => tracing::info!(released = n, %worker, "Claims never started are due again"),
        Err(e) => {
            tracing::warn!(error = %e, "Could not release claims never started; their lease expiry will")
        }
    }
}

/// Runs the daemon until SIGTERM/SIGINT: HTTP server, signal handlers, watchdog, and the
/// loop of passes. `config` is re-read on SIGHUP; `clock` gives every tick its `now`.
pub async fn run<S: Store>(
    store: &S,
    config: &Path,
    current: Current,
    transport: &Transport,
    clock: Clock,
) -> anyhow::Result<()> {
    // Before any socket is opened: room for sending and for the HTTP side's clients.
    crate::fds::raise_limit();
    let stop = CancellationToken::new();
    let reload = Arc::new(tokio::sync::Notify::new());
    signals::spawn_handlers(stop.clone(), reload.clone())?;
    let http = spawn_http(store, &current, clock, stop.clone()).await?;
    watchdog::spawn(stop.clone());
    let _ = sd_notify::notify(&[NotifyState::Ready]);
    tracing::info!(config = %config.display(), transport = transport.kind(), "rewarm is running");
    let shutdown = shutdown_for(&current.get(), &stop);
    release_unstarted(store, &current.get(), clock.now()).await;

    let mut repair = true;
    let mut last_imap_poll = None;
    while !stop.is_cancelled() {
        let loaded = current.get();
        if tick(store, &loaded, transport, clock.now(), repair, &shutdown).await {
            repair = false;
        }
        let poll_imap = imap_poll_due(&loaded, &mut last_imap_poll);
        if let Err(e) = side::run(store, &loaded, transport, clock.now(), poll_imap, &stop).await {
            tracing::warn!(error = %format!("{e:#}"), "Replies or notifications failed; retrying at the next tick");
        }
        tokio::select! {
            _ = tokio::time::sleep(loaded.settings.scheduler.tick) => {}
            _ = stop.cancelled() => {}
            _ = reload.notified() => match reload_config(config, store, &loaded).await {
                Ok(new) => {
                    if let Err(e) = apply_campaign_edits(store, &new, clock.now()).await {
                        tracing::error!(error = %format!("{e:#}"), "Applying the campaign edits failed; the next reload or restart tries again");
                    }
                    current.replace(new);
                    tracing::info!(config = %config.display(), "Configuration reloaded");
                }
                Err(e) => tracing::error!(error = %format!("{e:#}"), "New configuration is invalid; keeping the old one"),
            },
        }
    }
    let _ = sd_notify::notify(&[NotifyState::Stopping]);
    release_unstarted(store, &current.get(), clock.now()).await;
    close(transport).await;
    if let Err(e) = http.await {
        tracing::warn!(error = %e, "HTTP server task ended badly");
    }
    tracing::info!("rewarm stopped: in-flight deliveries were recorded");
    Ok(())
}

/// One tick's pass, unless the storage is out of order (then nothing is claimed; the fault
/// is reported once, and cleared when a pass works again). True when the pass ran.
async fn tick<S: Store>(
    store: &S,
    loaded: &Arc<Loaded>,
    transport: &Transport,
    now: DateTime<Utc>,
    repair: bool,
    shutdown: &Shutdown,
) -> bool {
    if let Err(e) = store.check_storage().await {
        recording::storage_failed(&e, now);
        tracing::debug!(error = %e, "Storage out of order; no pass this tick");
        return false;
    }
    match scheduler::pass_until(store, loaded, transport, now, repair, shutdown).await {
        Ok(report) => {
            recording::storage_ok();
            tracing::debug!(?report, "Pass done");
            true
        }
        // A failed pass never ends the daemon: the next tick tries again (logged at ERROR
        // once per storage fault, by `recording`).
        Err(e) => {
            recording::storage_failed(&e, now);
            tracing::debug!(error = %e, "Pass failed; retrying at the next tick");
            false
        }
    }
}

/// Applies the campaigns of `loaded` to the leads in flight (`outbound::replan::apply`),
/// logging what `plan` foresaw and what was done.
pub async fn apply_campaign_edits<S: Store>(
    store: &S,
    loaded: &Loaded,
    now: DateTime<Utc>,
) -> anyhow::Result<()> {
    if !crate::outbound::replan::pending(store, &loaded.settings)
        .await
        .context("Failed to read the campaign versions")?
    {
        return Ok(());
    }
    let plan = crate::outbound::replan::plan::plan_with(store, &loaded.settings, now, false)
        .await
        .context("Failed to plan the campaign edits")?;
    let applied = crate::outbound::replan::apply(store, loaded, now)
        .await
        .context("Failed to apply the campaign edits")?;
    if !applied.is_empty() {
        tracing::info!(
            plan = %plan.summary.line(),
            changed = ?applied.changed,
            cancelled = applied.cancelled,
            retemplated = applied.retemplated,
            rescheduled = applied.rescheduled,
            moved = applied.moved,
            "Campaign edits applied"
        );
    }
    Ok(())
}

/// The reply mailbox is polled every `inbound.imap.poll`, at most once a tick; a poll due
/// now is noted in `last`.
fn imap_poll_due(loaded: &Loaded, last: &mut Option<std::time::Instant>) -> bool {
    let poll_every = loaded
        .settings
        .inbound
        .imap
        .as_ref()
        .map(|i| i.poll)
        .unwrap_or_default();
    let due = last.is_none_or(|t| t.elapsed() >= poll_every);
    if due {
        *last = Some(std::time::Instant::now());
    }
    due
}

/// A new configuration and templates, with the same signing keys source and limiter state.
/// The transport itself is not rebuilt: a changed `[transport]` (kind, relay, pool,
/// credentials' names, provider settings) is logged as needing a restart, once per reload.
async fn reload_config<S: Store>(config: &Path, store: &S, old: &Loaded) -> anyhow::Result<Loaded> {
    let mut new = Loaded::with_store(Settings::load(config)?, store).await?;
    new.keep_limiter_of(old);
    if transport_changed(&old.settings, &new.settings) {
        tracing::warn!(
            config = %config.display(),
            "The [transport] settings changed: they need a restart (systemctl restart rewarm); until then the running transport is kept. Limits and [transport.breaker] changes are applied now."
        );
    }
    Ok(new)
}

/// Whether the transport as built at start-up differs from `new`'s (limits and breaker
/// settings apply on reload and do not count).
fn transport_changed(old: &Settings, new: &Settings) -> bool {
    // The settings hold names of secrets, never their values: comparing the Debug text is
    // comparing every field.
    format!("{:?}", old.transport) != format!("{:?}", new.transport)
}

/// Serves unsubscribes, clicks, health, metrics and the API until `stop`.
async fn spawn_http<S: Store>(
    store: &S,
    current: &Current,
    clock: Clock,
    stop: CancellationToken,
) -> anyhow::Result<tokio::task::JoinHandle<()>> {
    let loaded = current.get();
    let http = &loaded.settings.http;
    let listener = tokio::net::TcpListener::bind(http.listen)
        .await
        .with_context(|| format!("Failed to listen on {} (http.listen)", http.listen))?;
    let api_token = http
        .api_token_env
        .as_deref()
        .map(crate::secret::Secret::from_env_or_credential)
        .transpose()
        .context("Failed to read the API token (http.api_token_env)")?;
    let state = crate::http::HttpState {
        store: store.clone(),
        current: current.clone(),
        keys: loaded.keys.clone(),
        api_token,
        clock,
    };
    Ok(tokio::spawn(async move {
        if let Err(e) = crate::http::serve(listener, state, stop).await {
            tracing::error!(error = %e, "HTTP server failed");
        }
    }))
}

/// Says QUIT on idle SMTP connections.
async fn close(transport: &Transport) {
    if let Transport::Smtp(pool) = transport {
        pool.close().await;
    }
}
