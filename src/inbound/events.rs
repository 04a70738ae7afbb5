//! Provider events — what Postmark, SendGrid and Mailgun report about the messages they took
//! (bounces, complaints, unsubscribes, deferrals, deliveries) — and what they do. The event
//! webhooks (`http::events`, one file per provider) verify a post and read it into
//! [`ProviderEvent`]s; [`process_events`] matches each to its delivery, gives it the same
//! effect as the equivalent DSN or ARF report ([`crate::inbound::effect::effect_for`]) and
//! keeps it, the whole post in one transaction (`Store::record_inbound_batch`):
//!
//! | event kind      | like                  | effect                                          |
//! |-----------------|-----------------------|-------------------------------------------------|
//! | `HardBounce`    | a DSN `failed`        | suppress (`hard_bounce`), with the provider's words as evidence |
//! | `Complaint`     | an ARF report         | suppress (`complaint`)                          |
//! | `Unsubscribe`   | an unsubscribe reply  | suppress (`unsubscribed`)                       |
//! | `SoftBounce`    | a DSN `delayed`       | counts toward `inbound.soft_bounce_limit`       |
//! | `Delivered`     | —                     | a `delivered` event on the lead's timeline      |
//! | `Other`         | —                     | kept, nothing else                              |
//!
//! **Matching**: by our signed token (`rewarm_token` in the provider's custom fields — the
//! token of the delivery's Message-ID, verified with the token keys), else by the id the
//! provider gave the message on send (stored on the delivery). The bare `rewarm_delivery_id`
//! is never trusted. An unmatched event is kept too (for `inbound list --unmatched`).
//!
//! **Once**: each event is kept under `event:{provider}:{event id}`, so a provider's retry of
//! a post changes nothing; and the store applies one effect per delivery and classification,
//! whichever channel reported it first (a DSN in the mailbox, then the provider's event).

use chrono::{DateTime, Utc};
use serde_json::{Value, json};

use crate::app::Loaded;
use crate::domain::reply::Classification;
use crate::inbound::effect::{Reply, effect_for};
use crate::store::{DeliveryTarget, InboundEffect, InboundRecord, Store};

/// What a provider event means for its message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventKind {
    HardBounce,
    SoftBounce,
    Complaint,
    Unsubscribe,
    Delivered,
    /// Kept, no effect (a reactivation, an auto-responder, an event we do not act on).
    Other,
}

impl EventKind {
    /// The classification it is kept under (a delivery is `other`, with its own effect).
    pub fn classification(self) -> Classification {
        match self {
            EventKind::HardBounce => Classification::HardBounce,
            EventKind::SoftBounce => Classification::SoftBounce,
            EventKind::Complaint => Classification::Complaint,
            EventKind::Unsubscribe => Classification::Unsubscribe,
            EventKind::Delivered | EventKind::Other => Classification::Other,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::Delivered => "delivered",
            other => other.classification().as_str(),
        }
    }
}

/// One event as a provider posted it, read by its webhook.
#[derive(Debug, Clone, PartialEq)]
pub struct ProviderEvent {
    /// `postmark`, `sendgrid`, `mailgun`.
    pub provider: &'static str,
    /// The provider's id of this event (its retries carry the same).
    pub event_id: String,
    pub kind: EventKind,
    /// The provider's own name for it (`Bounce/HardBounce`, `bounce/bounce`, `failed/permanent`).
    pub name: String,
    /// The address the message went to.
    pub recipient: Option<String>,
    /// The id the provider gave the message on send.
    pub provider_message_id: Option<String>,
    /// Our signed token from the message's custom fields.
    pub token: Option<String>,
    /// What the provider said (bounce description, SMTP diagnostic, reason).
    pub description: Option<String>,
    /// The event's JSON as posted.
    pub raw: Vec<u8>,
}

/// What became of one event.
#[derive(Debug, Clone, serde::Serialize)]
pub struct EventOutcome {
    pub event_id: String,
    pub kind: &'static str,
    /// `token`, `provider_id` or None (unmatched).
    pub matched_by: Option<&'static str>,
    pub inbound_id: i64,
    /// Seen before: nothing changed.
    pub duplicate: bool,
}

/// Matches, decides and keeps a provider's post, all its events in one transaction; Err when
/// the store failed (nothing was kept: answer so that the provider retries).
/// `delivery_of_token` verifies our signed token and names its delivery.
pub async fn process_events<S: Store>(
    store: &S,
    loaded: &Loaded,
    delivery_of_token: &(dyn Fn(&str) -> Option<i64> + Sync),
    events: &[ProviderEvent],
    now: DateTime<Utc>,
) -> anyhow::Result<Vec<EventOutcome>> {
    let mut targets: Vec<Option<(DeliveryTarget, &'static str)>> = Vec::with_capacity(events.len());
    for event in events {
        targets.push(target(store, delivery_of_token, event).await?);
    }
    let lead_ids: Vec<i64> = targets.iter().flatten().map(|(t, _)| t.lead_id).collect();
    let leads = store.leads_by_ids(&lead_ids).await?;
    let mut batch = Vec::with_capacity(events.len());
    for (event, target) in events.iter().zip(&targets) {
        let record = record_of(event, target.as_ref(), now);
        let lead = target
            .as_ref()
            .and_then(|(t, _)| leads.iter().find(|l| l.id == t.lead_id));
        let effect = match lead {
            Some(lead) => effect_of(loaded, event, &record, lead),
            None => InboundEffect::None,
        };
        batch.push((record, effect));
    }
    let applied = store.record_inbound_batch(&batch, now).await?;
    let mut out = Vec::with_capacity(events.len());
    for ((event, target), applied) in events.iter().zip(&targets).zip(applied) {
        if !applied.duplicate {
            crate::metrics::get().provider_event(event.provider, event.kind.as_str());
        }
        out.push(EventOutcome {
            event_id: event.event_id.clone(),
            kind: event.kind.as_str(),
            matched_by: target.as_ref().map(|(_, by)| *by),
            inbound_id: applied.inbound_id,
            duplicate: applied.duplicate,
        });
    }
    let matched = out.iter().filter(|o| o.matched_by.is_some()).count();
    let new = out.iter().filter(|o| !o.duplicate).count();
    tracing::info!(
        provider = events.first().map_or("", |e| e.provider),
        events = out.len(),
        new,
        matched,
        "Provider events processed"
    );
    Ok(out)
}

/// The delivery an event is about: by our verified token, else by the provider's id.
async fn target<S: Store>(
    store: &S,
    delivery_of_token: &(dyn Fn(&str) -> Option<i64> + Sync),
    event: &ProviderEvent,
) -> anyhow::Result<Option<(DeliveryTarget, &'static str)>> {
    if let Some(id) = event.token.as_deref().and_then(delivery_of_token)
        && let Some(t) = store.delivery_target(id).await?
    {
        return Ok(Some((t, "token")));
    }
    if let Some(pid) = event.provider_message_id.as_deref()
        && let Some(t) = store.delivery_by_provider_id(pid).await?
    {
        return Ok(Some((t, "provider_id")));
    }
    Ok(None)
}

/// The key an event is kept under: `event:{provider}:{id}` (hashed when long).
pub fn event_key(provider: &str, event_id: &str) -> String {
    let id = event_id.trim();
    if id.len() > 150 {
        format!(
            "event:{provider}:sha256:{}",
            crate::hex::sha256(id.as_bytes())
        )
    } else {
        format!("event:{provider}:{id}")
    }
}

fn record_of(
    event: &ProviderEvent,
    target: Option<&(DeliveryTarget, &'static str)>,
    now: DateTime<Utc>,
) -> InboundRecord {
    InboundRecord {
        dedupe_key: event_key(event.provider, &event.event_id),
        source: format!("{}-event", event.provider),
        received_at: now,
        message_id: event.provider_message_id.clone(),
        from_address: event.recipient.clone(),
        subject: Some(format!("{} event: {}", event.provider, event.name)),
        classification: event.kind.classification().as_str().to_string(),
        lead_id: target.map(|(t, _)| t.lead_id),
        delivery_id: target.map(|(t, _)| t.delivery_id),
        matched_by: target.map(|(_, by)| by.to_string()),
        text: event.description.clone(),
        raw: event.raw.clone(),
    }
}

/// The evidence a suppression or soft bounce keeps: who said what about which message.
fn evidence(event: &ProviderEvent) -> Value {
    json!({
        "report": "provider-event",
        "provider": event.provider,
        "event": event.name,
        "event_id": event.event_id,
        "recipient": event.recipient,
        "provider_message_id": event.provider_message_id,
        "description": event.description,
    })
}

fn effect_of(
    loaded: &Loaded,
    event: &ProviderEvent,
    record: &InboundRecord,
    lead: &crate::domain::lead::Lead,
) -> InboundEffect {
    if event.kind == EventKind::Delivered {
        return InboundEffect::Delivered {
            detail: json!({"provider": event.provider, "event_id": event.event_id,
                           "provider_message_id": event.provider_message_id}),
        };
    }
    let reply = Reply {
        dedupe_key: &record.dedupe_key,
        subject: record.subject.as_deref(),
        text: record.text.as_deref().unwrap_or_default(),
        from: record.from_address.as_deref(),
        return_date: None,
        received_at: Some(record.received_at),
        evidence: evidence(event),
        // A provider event is never a person's reply: no intent, no segment rule.
        intent: None,
        segment: None,
    };
    effect_for(
        &loaded.settings,
        event.kind.classification(),
        lead,
        &reply,
        &[],
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_keep_the_classification_of_the_report_they_stand_for() {
        assert_eq!(
            EventKind::HardBounce.classification(),
            Classification::HardBounce
        );
        assert_eq!(EventKind::Delivered.classification(), Classification::Other);
        assert_eq!(EventKind::Delivered.as_str(), "delivered");
        assert_eq!(EventKind::Complaint.as_str(), "complaint");
    }

    #[test]
    fn event_keys_are_short_and_per_provider() {
        assert_eq!(event_key("sendgrid", " abc "), "event:sendgrid:abc");
        assert_ne!(event_key("sendgrid", "1"), event_key("mailgun", "1"));
        let long = "x".repeat(1000);
        let key = event_key("mailgun", &long);
        assert!(key.starts_with("event:mailgun:sha256:") && key.len() < 100);
    }
}
