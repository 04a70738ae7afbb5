//! The webhook relay: the lifecycle events that are written in bulk, on hot paths or deep
//! inside other transactions — `enrolled` (a segment's enrolment, a campaign's `then`,
//! `recycle --campaign`), `sent` (posted as `lead.emailed`), `replied`, `postponed`,
//! `suppressed`, `restored`, `reassigned`, `recycled` (by a person, the daemon's re-check or
//! a stale hand-off) — reach the webhook from the event log, not from the code that wrote
//! them.
//!
//! Why: the send path records a batch of outcomes in one transaction and must not pay a
//! query per lead to build webhooks, and these events are written by many statements in
//! both backends. The event log is already durable and ordered, so each tick the relay reads
//! the events after its cursor (`kv_state` key `notify:relay:after`) up to the store's
//! *horizon* (every event at or below it committed: `RelayStore::relay_horizon`), one page
//! of 1,000 per query, and puts one webhook per event in the outbox with the idempotency key
//! `event:EVENT_ID:webhook`, then moves the cursor. Nothing is lost (the cursor moves only
//! after the notifications are stored) and nothing is sent twice (a page read again after a
//! crash finds its keys taken). Only events `notify.webhook_events` asks for become
//! notifications; without a webhook the cursor just follows the log, so a webhook set up
//! later starts from then, not from the whole history.

use anyhow::Context as _;
use chrono::{DateTime, Utc};
use serde_json::json;

use super::WEBHOOK_VERSION;
use crate::config::NotifySettings;
use crate::store::{LoggedEvent, NewNotification, RELAYED_KINDS, Store};

/// Where the relay stopped: the id of the last event it read.
pub const CURSOR: &str = "notify:relay:after";
/// Events read per query.
const PAGE: usize = 1000;
/// Pages per call: a backlog is worked off over several ticks, each one bounded.
const MAX_PAGES: usize = 50;

/// The webhook event name of a relayed event kind (`sent` → `emailed`).
pub fn webhook_event(kind: &str) -> &str {
    match kind {
        "sent" => "emailed",
        other => other,
    }
}

/// The webhook notification of one logged event, if the webhook takes that event.
pub fn relayed_notification(settings: &NotifySettings, e: &LoggedEvent) -> Option<NewNotification> {
    let event = webhook_event(&e.kind);
    settings.webhook_for(event)?;
    Some(NewNotification {
        kind: "webhook".into(),
        lead_id: Some(e.lead_id),
        idempotency_key: format!("event:{}:webhook", e.id),
        payload: json!({
            "version": WEBHOOK_VERSION, "event": format!("lead.{event}"), "at": e.at,
            "lead_email": e.lead_email, "event_id": e.id, "detail": e.detail,
        }),
    })
}

/// Whether the webhook takes any relayed event.
fn relays_any(settings: &NotifySettings) -> bool {
    RELAYED_KINDS
        .iter()
        .any(|k| settings.webhook_for(webhook_event(k)).is_some())
}

/// Relays the events logged since the last call (see the module docs); returns how many
/// webhook notifications were new.
pub async fn relay_events<S: Store>(
    store: &S,
    settings: &NotifySettings,
    now: DateTime<Utc>,
) -> anyhow::Result<usize> {
    let Some(upto) = store
        .relay_horizon()
        .await
        .context("Failed to read the event log's horizon")?
    else {
        tracing::debug!("Events are being written by a long transaction; relayed next tick");
        return Ok(0);
    };
    let stored = store.kv_get(CURSOR).await?;
    let mut after: i64 = stored.as_deref().and_then(|v| v.parse().ok()).unwrap_or(0);
    if after >= upto {
        return Ok(0);
    }
    if !relays_any(settings) {
        store.kv_set(CURSOR, &upto.to_string()).await?;
        return Ok(0);
    }
    let mut queued = 0;
    for _ in 0..MAX_PAGES {
        let events = store
            .relay_events(after, upto, PAGE)
            .await
            .context("Failed to read the event log")?;
        let full = events.len() == PAGE;
        let hooks: Vec<NewNotification> = events
            .iter()
            .filter_map(|e| relayed_notification(settings, e))
            .collect();
        if !hooks.is_empty() {
            queued += store
                .enqueue_notifications(&hooks, now)
                .await
                .context("Failed to enqueue relayed webhooks")?;
        }
        after = match events.last() {
            Some(last) if full => last.id,
            _ => upto,
        };
        store.kv_set(CURSOR, &after.to_string()).await?;
        if !full {
            break;
        }
    }
    if queued > 0 {
        tracing::info!(queued, "Lifecycle events relayed to the webhook");
    }
    Ok(queued)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::NotifyWebhook;

    fn settings(events: Option<&[&str]>) -> NotifySettings {
        NotifySettings {
            owner_email: true,
            fallback_email: None,
            webhook: Some(NotifyWebhook {
                url: "http://127.0.0.1:9/hook".into(),
                secret_env: None,
                slack: false,
                events: events.map(|e| e.iter().map(|s| s.to_string()).collect()),
            }),
            digest: None,
            chase: Default::default(),
        }
    }

    fn event(id: i64, kind: &str) -> LoggedEvent {
        LoggedEvent {
            id,
            lead_id: 3,
            lead_email: "ana@example.com".into(),
            at: DateTime::parse_from_rfc3339("2026-03-02T10:00:00Z")
                .expect("a fixed time")
                .with_timezone(&Utc),
            kind: kind.into(),
            detail: json!({"campaign": "checkin", "step": 1}),
        }
    }

    #[test]
    fn a_sent_event_is_posted_as_emailed_with_its_event_id_as_key() {
        let n = relayed_notification(&settings(None), &event(41, "sent")).expect("posted");
        assert_eq!(n.idempotency_key, "event:41:webhook");
        assert_eq!(n.lead_id, Some(3));
        assert_eq!(
            n.payload,
            json!({"version": 1, "event": "lead.emailed", "at": "2026-03-02T10:00:00Z",
                   "lead_email": "ana@example.com", "event_id": 41,
                   "detail": {"campaign": "checkin", "step": 1}})
        );
    }

    #[test]
    fn only_subscribed_events_are_posted() {
        let s = settings(Some(&["enrolled", "recycled"]));
        assert!(relayed_notification(&s, &event(1, "enrolled")).is_some());
        assert!(relayed_notification(&s, &event(2, "recycled")).is_some());
        assert!(relayed_notification(&s, &event(3, "sent")).is_none());
        assert!(relayed_notification(&s, &event(4, "suppressed")).is_none());
        assert!(relays_any(&s));
        assert!(!relays_any(&settings(Some(&["won", "rewarmed"]))));
        let mut none = settings(None);
        none.webhook = None;
        assert!(relayed_notification(&none, &event(5, "enrolled")).is_none());
        assert!(!relays_any(&none));
    }

    #[test]
    fn every_relayed_kind_is_a_webhook_event() {
        for kind in RELAYED_KINDS {
            assert!(
                crate::config::WEBHOOK_EVENTS.contains(&webhook_event(kind)),
                "{kind}"
            );
        }
    }
}
