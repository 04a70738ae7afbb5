//! A call task: a campaign step that is a call (`kind = "call"`) sends the lead nothing; its
//! owner (else `notify.fallback_email`) gets a task by email, and the webhook a
//! `lead.call_task` event, both through the outbox, enqueued with the step's outcome.

use serde_json::json;

use crate::config::{CallStep, NotifySettings};
use crate::domain::lead::Lead;
use crate::store::NewNotification;

/// The notifications of the call task of delivery `delivery_id` (campaign `campaign`, step
/// `step`, 1-based) for `lead`; idempotency keys `call_task:{delivery_id}:{kind}`.
pub fn call_task_notifications(
    settings: &NotifySettings,
    lead: &Lead,
    delivery_id: i64,
    campaign: &str,
    step: u32,
    call: &CallStep,
) -> Vec<NewNotification> {
    let owner = lead
        .owner_email
        .clone()
        .filter(|o| !o.trim().is_empty())
        .map(|o| o.to_ascii_lowercase());
    let to = owner.clone().or_else(|| settings.fallback_email.clone());
    let payload = json!({
        "event": "lead.call_task", "lead_email": lead.email.to_string(), "owner": owner,
        "campaign": campaign, "step": step, "note": call.note, "delivery_id": delivery_id,
    });
    let key = format!("call_task:{delivery_id}");
    let mut out = Vec::new();
    if let Some(to) = to {
        let mut payload = payload.clone();
        payload["to"] = json!(to);
        out.push(NewNotification {
            kind: "owner_email".into(),
            lead_id: Some(lead.id),
            idempotency_key: format!("{key}:owner_email"),
            payload,
        });
    }
    if settings.webhook_for("call_task").is_some() {
        out.push(NewNotification {
            kind: "webhook".into(),
            lead_id: Some(lead.id),
            idempotency_key: format!("{key}:webhook"),
            payload,
        });
    }
    out
}
