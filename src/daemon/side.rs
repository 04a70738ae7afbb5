//! The daemon's side tasks besides the send pass: polling the reply mailbox and telling sales
//! (stale hand-offs chased, notifications and the weekly digest). `rewarm run --once` runs each once after its pass;
//! the daemon runs them every tick.

use std::cell::Cell;

use anyhow::Context as _;
use chrono::{DateTime, Utc};
use tokio_util::sync::CancellationToken;

use crate::app::Loaded;
use crate::inbound::imap::ImapPoller;
use crate::inbound::process::{InboundMessage, process};
use crate::metrics::ImapPollOutcome;
use crate::secret::Secret;
use crate::store::Store;
use crate::transport::Transport;

/// One poll of the reply mailbox, when one is configured; every message goes through
/// `inbound::process`. Returns how many were handled. Each poll is counted on
/// `rewarm_imap_polls_total{outcome}`.
pub async fn poll_replies<S: Store>(
    store: &S,
    loaded: &Loaded,
    now: DateTime<Utc>,
) -> anyhow::Result<usize> {
    let Some(imap) = loaded.settings.inbound.imap.clone() else {
        return Ok(0);
    };
    // The poller stops at a message the handler refused and still answers Ok: noted here.
    let stopped = Cell::new(false);
    let polled = async {
        let password = Secret::from_env_or_credential(&imap.password_env)?;
        let poller = ImapPoller::new(imap, password);
        poller
            .poll_once(store, |raw, dedupe_key| {
                let stopped = &stopped;
                async move {
                    let msg = InboundMessage {
                        raw,
                        source: "imap".into(),
                        dedupe_key,
                        received_at: now,
                    };
                    let done = process(store, loaded, &msg, now, false).await.map(|_| ());
                    if done.is_err() {
                        stopped.set(true);
                    }
                    done
                }
            })
            .await
    }
    .await;
    crate::metrics::get().imap_poll(match &polled {
        Err(_) => ImapPollOutcome::Failed,
        Ok(_) if stopped.get() => ImapPollOutcome::Stopped,
        Ok(_) => ImapPollOutcome::Ok,
    });
    polled
}

/// Chases stale hand-offs (reminders, escalations), enqueues the weekly digest when its cron
/// fired, and delivers due notifications.
pub async fn tell_sales<S: Store>(
    store: &S,
    loaded: &Loaded,
    transport: &Transport,
    now: DateTime<Utc>,
) -> anyhow::Result<()> {
    const LAST_DIGEST: &str = "notify:digest:last_run";
    crate::notify::chase_if_due(store, loaded, now).await?;
    if loaded.settings.notify.digest.is_some() {
        let last = store
            .kv_get(LAST_DIGEST)
            .await?
            .and_then(|v| DateTime::parse_from_rfc3339(&v).ok())
            .map(|t| t.with_timezone(&Utc));
        crate::notify::enqueue_digests(store, loaded, now, last).await?;
        store.kv_set(LAST_DIGEST, &now.to_rfc3339()).await?;
    }
    crate::notify::relay_events(store, &loaded.settings.notify, now).await?;
    crate::notify::deliver_due(
        store,
        loaded,
        transport,
        now,
        &loaded.settings.scheduler.worker_id,
    )
    .await?;
    Ok(())
}

/// One tick's side tasks: polls the reply mailbox (when `poll_imap`) and tells sales
/// (notifications, digest). Both run even when the other failed.
///
/// When `stop` fires (SIGTERM) during the poll, the poll is abandoned: a mailbox server that
/// does not answer must not hold up a shutdown for its minute-long timeouts. Nothing is lost
/// or done twice: each message is recorded in one transaction before it is flagged as
/// processed, and a message read again is recognised by its key (one message, one state
/// change). Notifications are never abandoned mid-delivery.
pub async fn run<S: Store>(
    store: &S,
    loaded: &Loaded,
    transport: &Transport,
    now: DateTime<Utc>,
    poll_imap: bool,
    stop: &CancellationToken,
) -> anyhow::Result<()> {
    let replies = if poll_imap {
        tokio::select! {
            polled = poll_replies(store, loaded, now) => polled.map(|_| ()),
            _ = stop.cancelled() => {
                tracing::info!("Stopping: the reply mailbox poll was abandoned; the next start reads what it left");
                Ok(())
            }
        }
    } else {
        Ok(())
    };
    let told = tell_sales(store, loaded, transport, now).await;
    replies.context("Failed to poll the reply mailbox")?;
    told.context("Failed to deliver notifications")
}
