//! Sales is told: the notification outbox is drained here. Notifications are written by the
//! store in the same transaction as the change they report (a re-warm), so none is lost;
//! [`deliver_due`] claims the due ones in a batch, delivers them and records every outcome in
//! one call:
//!
//! - `owner_email` and `digest`: a plain-text email (From = `sender.from`) to the payload's
//!   `to` (else the lead's owner, else `notify.fallback_email`), through the transport.
//! - `webhook`: a JSON POST to `notify.webhook.url`, signed `X-Rewarm-Signature:
//!   sha256=<hex HMAC-SHA256 of the body>` (key from `notify.webhook.secret_env`), with an
//!   `Idempotency-Key` header and `idempotency_key` in the body; Slack format posts `{"text"}`.
//!
//! 2xx is sent; 429, 5xx and network errors are retried later (exponential backoff with
//! jitter, at most [`MAX_ATTEMPTS`] attempts); any other 4xx fails for good. Delivery is at
//! least once: receivers dedupe on the idempotency key.
//!
//! [`enqueue_digests`] puts one weekly `digest` per owner in the outbox when the
//! `notify.digest` cron fired.
//!
//! [`chase`] chases stale hand-offs (a reminder to the owner, then an escalation to
//! `notify.fallback_email`); [`owners`] keeps the owners who left (a notification to them
//! hard-bounced), whose notifications go to the fallback address instead.
//!
//! One file per job: [`outbox`] (claim, deliver, record), [`owner_email`] (the emails to lead
//! owners, with [`feedback`]'s one-click action links), [`handoff_text`] (reminders,
//! escalations, call tasks), [`webhook`] (the signed POSTs), [`digest`] (the weekly digests),
//! [`chase`], [`owners`]. What a re-warm puts in the outbox is built here
//! ([`rewarm_notifications`]), called by `inbound::effect`.

mod call_task;
pub mod chase;
mod digest;
pub mod feedback;
mod handoff_text;
mod outbox;
mod owner_email;
pub mod owners;
pub mod relay;
mod retry;
mod slack;
mod webhook;

use serde_json::{Value, json};

use crate::config::NotifySettings;
use chrono::{DateTime, Utc};

use crate::domain::lead::Lead;
use crate::domain::lifecycle::Transition;
use crate::store::{Event, NewNotification};

pub use call_task::call_task_notifications;
pub use chase::{ChaseReport, chase_if_due, chase_stale};
pub use digest::enqueue_digests;
pub use outbox::deliver_due;
pub use relay::relay_events;
pub use retry::retry_at;
pub use webhook::signature;

/// Notifications claimed per call.
pub const BATCH: usize = 50;
/// After this many attempts a notification fails for good.
pub const MAX_ATTEMPTS: u32 = 10;
/// Lines of a lead's timeline in an owner email or a webhook body.
const TIMELINE_LINES: usize = 50;

/// What one [`deliver_due`] call did.
#[derive(Debug, Default, Clone, PartialEq, Eq, serde::Serialize)]
pub struct NotifyReport {
    pub claimed: usize,
    pub sent: usize,
    /// Will be tried again (429, 5xx, network, transient SMTP).
    pub retrying: usize,
    /// Failed for good (4xx, bad payload, too many attempts).
    pub failed: usize,
}

/// The notifications a re-warm of `lead` puts in the outbox, per the `notify` settings.
/// `key` identifies the re-warm (e.g. `rewarm:{inbound dedupe key}`); each notification's
/// idempotency key is `{key}:{kind}`.
pub fn rewarm_notifications(
    settings: &NotifySettings,
    lead: &Lead,
    key: &str,
    reply: &str,
    subject: Option<&str>,
) -> Vec<NewNotification> {
    let mut out = Vec::new();
    let to = lead
        .owner_email
        .clone()
        .filter(|o| !o.trim().is_empty())
        .or_else(|| settings.fallback_email.clone());
    if settings.owner_email
        && let Some(to) = to
    {
        out.push(NewNotification {
            kind: "owner_email".into(),
            lead_id: Some(lead.id),
            idempotency_key: format!("{key}:owner_email"),
            payload: json!({
                "event": "lead.rewarmed", "to": to, "lead_email": lead.email.to_string(),
                "reply": reply, "subject": subject,
            }),
        });
    }
    if settings.webhook_for("rewarmed").is_some() {
        out.push(NewNotification {
            kind: "webhook".into(),
            lead_id: Some(lead.id),
            idempotency_key: format!("{key}:webhook"),
            payload: json!({
                "version": WEBHOOK_VERSION, "event": "lead.rewarmed", "lead_email": lead.email.to_string(),
                "reply": reply, "subject": subject,
            }),
        });
    }
    out
}

/// What a lifecycle change of `lead` puts in the outbox (written in the same transaction as
/// the change by `LeadStore::set_lifecycle`): the webhook, when one is configured, with
/// event `lead.{kind}` (`lead.won`, `lead.out_of_scope`, `lead.working`, `lead.paused`,
/// `lead.resumed`; see docs/notifications.md). Its idempotency key names the lead, the
/// change and the time: `lifecycle:{lead id}:{kind}:{ms}:webhook`.
pub fn lifecycle_notifications(
    settings: &NotifySettings,
    lead: &Lead,
    transition: &Transition,
    now: DateTime<Utc>,
) -> Vec<NewNotification> {
    let kind = transition.event_kind();
    let mut detail = json!({});
    if let Transition::OutOfScope { reason, recheck_at } = transition {
        detail = json!({"reason": reason, "recheck_at": recheck_at});
    }
    event_webhook(settings, lead, kind, detail, now)
}

/// The versioned webhook notification (`"version": 1`) for an event of `kind` on `lead`
/// (none when no webhook is configured, or `notify.webhook_events` leaves `kind` out).
pub fn event_webhook(
    settings: &NotifySettings,
    lead: &Lead,
    kind: &str,
    detail: Value,
    now: DateTime<Utc>,
) -> Vec<NewNotification> {
    if settings.webhook_for(kind).is_none() {
        return Vec::new();
    }
    vec![NewNotification {
        kind: "webhook".into(),
        lead_id: Some(lead.id),
        idempotency_key: format!(
            "lifecycle:{}:{kind}:{}:webhook",
            lead.id,
            now.timestamp_millis()
        ),
        payload: json!({
            "version": WEBHOOK_VERSION, "event": format!("lead.{kind}"), "at": now,
            "lead_email": lead.email.to_string(), "detail": detail,
        }),
    }]
}

/// The version of the webhook payloads (docs/notifications.md).
pub const WEBHOOK_VERSION: u32 = 1;

/// The reply's text: from the payload, else the lead's last `replied` event.
fn reply_of(payload: &Value, timeline: &[Event]) -> Option<String> {
    str_field(payload, &["reply", "text", "reply_text"]).or_else(|| {
        timeline
            .iter()
            .rev()
            .filter(|e| e.kind == "replied")
            .find_map(|e| {
                e.detail
                    .get("text")
                    .and_then(Value::as_str)
                    .map(str::to_string)
            })
    })
}

fn display_name(lead: &Lead) -> String {
    let name = [lead.first_name.as_deref(), lead.last_name.as_deref()]
        .into_iter()
        .flatten()
        .collect::<Vec<_>>()
        .join(" ");
    if name.is_empty() {
        lead.email.to_string()
    } else {
        name
    }
}

fn str_field(payload: &Value, names: &[&str]) -> Option<String> {
    names
        .iter()
        .find_map(|k| payload.get(k).and_then(Value::as_str))
        .map(str::to_string)
}
