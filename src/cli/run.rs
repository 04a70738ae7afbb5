//! `rewarm run`: the daemon, or one pass with `--once`.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context as _;
use chrono::{DateTime, Utc};
use sd_notify::NotifyState;
use tokio_util::sync::CancellationToken;

use super::{init_logging, with_store};
use crate::app::{Current, Loaded, build_transport};
use crate::config::Settings;
use crate::domain::clock::Clock;
use crate::outbound::scheduler;
use crate::store::Store;

#[derive(Debug, clap::Args)]
pub struct RunArgs {
    /// One pass (enrol, send everything due now) and exit.
    #[arg(long)]
    pub once: bool,
    /// Import these lead files (CSV or JSON Lines) before starting.
    #[arg(long)]
    pub import: Vec<PathBuf>,
    /// Do not apply database migrations at start.
    #[arg(long)]
    pub no_migrate: bool,
}

/// `now` is the global `--now`: with `--once` the pass runs at that moment; the daemon's clock
/// starts there and runs on (so a test's daemon sees time pass without reading the wall clock).
pub async fn run(
    config: &Path,
    args: RunArgs,
    now: Option<DateTime<Utc>>,
) -> anyhow::Result<ExitCode> {
    let settings = Settings::load(config)?;
    init_logging(&settings);
    let url = settings.database_url.clone();
    let clock = match now {
        None => Clock::Real,
        Some(t) if args.once => Clock::Fixed(t),
        Some(t) => Clock::starting_at(t),
    };
    with_store!(&url, |store| run_with(store, config, settings, args, clock)
        .await)
}

async fn run_with<S: Store>(
    store: S,
    config: &Path,
    settings: Settings,
    args: RunArgs,
    clock: Clock,
) -> anyhow::Result<ExitCode> {
    if !args.no_migrate {
        store
            .migrate()
            .await
            .context("Failed to migrate the database")?;
    }
    let loaded = Loaded::with_store(settings, &store).await?;
    for file in &args.import {
        let outcome =
            super::leads::import_file(&store, &loaded.settings, file, false, clock.now(), true)
                .await?;
        tracing::info!(file = %file.display(), inserted = outcome.summary.inserted, updated = outcome.summary.updated, merged = outcome.merged, rejected = outcome.rejected, "Imported leads");
    }
    let transport = build_transport(&loaded.settings)?;
    let current = Current::new(loaded);

    if args.once {
        let loaded = current.get();
        let report = scheduler::pass(
            &store,
            &loaded,
            &transport,
            clock.now(),
            true,
            &CancellationToken::new(),
        )
        .await;
        // Replies and notifications once too: a one-shot run does a whole daemon tick.
        let side = side_tasks(&store, &loaded, &transport, clock.now(), true).await;
        close(&transport).await;
        side?;
        println!("{}", serde_json::to_string(&report?)?);
        return Ok(ExitCode::SUCCESS);
    }

    let stop = CancellationToken::new();
    let reload = Arc::new(tokio::sync::Notify::new());
    spawn_signal_handlers(stop.clone(), reload.clone())?;
    let http = spawn_http(&store, &current, clock, stop.clone()).await?;
    spawn_watchdog(stop.clone());
    let _ = sd_notify::notify(&[NotifyState::Ready]);
    tracing::info!(config = %config.display(), transport = transport.kind(), "rewarm is running");

    let mut repair = true;
    let mut last_imap_poll = None;
    while !stop.is_cancelled() {
        let loaded = current.get();
        match scheduler::pass(&store, &loaded, &transport, clock.now(), repair, &stop).await {
            Ok(report) => {
                repair = false;
                tracing::debug!(?report, "Pass done");
            }
            // A failed pass never ends the daemon: the next tick tries again.
            Err(e) => tracing::error!(error = %e, "Pass failed; retrying at the next tick"),
        }
        // The reply mailbox is polled every `inbound.imap.poll`, at most once a tick.
        let poll_every = loaded
            .settings
            .inbound
            .imap
            .as_ref()
            .map(|i| i.poll)
            .unwrap_or_default();
        let poll_imap =
            last_imap_poll.is_none_or(|t: std::time::Instant| t.elapsed() >= poll_every);
        if poll_imap {
            last_imap_poll = Some(std::time::Instant::now());
        }
        if let Err(e) = side_tasks(&store, &loaded, &transport, clock.now(), poll_imap).await {
            tracing::warn!(error = %format!("{e:#}"), "Replies or notifications failed; retrying at the next tick");
        }
        tokio::select! {
            _ = tokio::time::sleep(loaded.settings.scheduler.tick) => {}
            _ = stop.cancelled() => {}
            _ = reload.notified() => match reload_config(config, &store, &loaded).await {
                Ok(new) => {
                    current.replace(new);
                    tracing::info!(config = %config.display(), "Configuration reloaded");
                }
                Err(e) => tracing::error!(error = %format!("{e:#}"), "New configuration is invalid; keeping the old one"),
            },
        }
    }
    let _ = sd_notify::notify(&[NotifyState::Stopping]);
    close(&transport).await;
    if let Err(e) = http.await {
        tracing::warn!(error = %e, "HTTP server task ended badly");
    }
    tracing::info!("rewarm stopped: in-flight deliveries were recorded");
    Ok(ExitCode::SUCCESS)
}

/// Polls the reply mailbox (when `poll_imap`) and tells sales (notifications, digest).
async fn side_tasks<S: Store>(
    store: &S,
    loaded: &Loaded,
    transport: &crate::transport::Transport,
    now: chrono::DateTime<Utc>,
    poll_imap: bool,
) -> anyhow::Result<()> {
    let replies = if poll_imap {
        crate::daemon::poll_replies(store, loaded, now)
            .await
            .map(|_| ())
    } else {
        Ok(())
    };
    let told = crate::daemon::tell_sales(store, loaded, transport, now).await;
    replies.context("Failed to poll the reply mailbox")?;
    told.context("Failed to deliver notifications")
}

/// A new configuration and templates, with the same signing keys source and limiter state.
async fn reload_config<S: Store>(config: &Path, store: &S, old: &Loaded) -> anyhow::Result<Loaded> {
    let mut new = Loaded::with_store(Settings::load(config)?, store).await?;
    new.keep_limiter_of(old);
    Ok(new)
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

/// SIGTERM (systemd) and SIGINT stop claiming and drain; SIGHUP reloads config and templates.
fn spawn_signal_handlers(
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

/// Feeds systemd's watchdog (WatchdogSec=) at half its interval.
fn spawn_watchdog(stop: CancellationToken) {
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

/// Says QUIT on idle SMTP connections.
async fn close(transport: &crate::transport::Transport) {
    if let crate::transport::Transport::Smtp(pool) = transport {
        pool.close().await;
    }
}
