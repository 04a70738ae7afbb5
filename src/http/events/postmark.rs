//! Postmark's webhooks, one JSON object per post, told apart by `RecordType`:
//!
//! | `RecordType` / `Type`                                          | kind          |
//! |----------------------------------------------------------------|---------------|
//! | `Bounce` `HardBounce`, `BadEmailAddress`                       | hard bounce   |
//! | `Bounce` `SoftBounce`, `Transient`, `DnsError`, `Blocked`      | soft bounce   |
//! | `Bounce` `Unsubscribe`; `SubscriptionChange` suppressing (`ManualSuppression`) | unsubscribe |
//! | `SpamComplaint`; `SubscriptionChange` suppressing (`SpamComplaint`) | complaint |
//! | `SubscriptionChange` suppressing (`HardBounce`)                | hard bounce   |
//! | `Delivery`                                                     | delivered     |
//! | any other bounce type, a reactivation                          | other         |
//! | `Open`, `Click`                                                | not kept      |
//!
//! The event id is the bounce's `ID`; a delivery is one per `MessageID` and recipient; a
//! subscription change one per `MessageID`, `ChangedAt` and direction. Our token is in
//! `Metadata.rewarm_token`, Postmark's id of the message in `MessageID`.

use serde_json::Value;

use crate::inbound::events::{EventKind, ProviderEvent};
use crate::transport::api::client::TOKEN_ARG;

/// The events of one post (none for an open or a click); Err says what is missing.
pub(super) fn events(body: &[u8]) -> Result<Vec<ProviderEvent>, String> {
    let v: Value = serde_json::from_slice(body)
        .map_err(|e| format!("the body is not JSON ({e}): Postmark posts one JSON object"))?;
    if !v.is_object() {
        return Err("the body is not a JSON object: Postmark posts one event per request".into());
    }
    let text = |k: &str| v.get(k).and_then(Value::as_str).map(str::to_string);
    let required = |k: &str| {
        text(k)
            .filter(|s| !s.trim().is_empty())
            .ok_or_else(|| format!("the event has no `{k}`"))
    };
    let record_type = required("RecordType")?;
    let (kind, name, id) = match record_type.as_str() {
        "Bounce" | "SpamComplaint" => {
            let id = match v.get("ID") {
                Some(Value::Number(n)) => n.to_string(),
                Some(Value::String(s)) if !s.trim().is_empty() => s.trim().to_string(),
                _ => return Err(format!("the {record_type} event has no `ID`")),
            };
            let kind_name = required("Type")?;
            let kind = if record_type == "SpamComplaint" {
                EventKind::Complaint
            } else {
                bounce_kind(&kind_name)
            };
            (
                kind,
                format!("{record_type}/{kind_name}"),
                format!("bounce:{id}"),
            )
        }
        "Delivery" => {
            let message = required("MessageID")?;
            let to = text("Recipient").unwrap_or_default();
            (
                EventKind::Delivered,
                "Delivery".to_string(),
                format!("delivery:{message}:{to}"),
            )
        }
        "SubscriptionChange" => {
            let message = required("MessageID")?;
            let at = required("ChangedAt")?;
            let suppress = v
                .get("SuppressSending")
                .and_then(Value::as_bool)
                .ok_or("the SubscriptionChange event has no `SuppressSending`")?;
            let reason = text("SuppressionReason").unwrap_or_default();
            let kind = match (suppress, reason.as_str()) {
                (true, "HardBounce") => EventKind::HardBounce,
                (true, "SpamComplaint") => EventKind::Complaint,
                (true, _) => EventKind::Unsubscribe,
                (false, _) => EventKind::Other,
            };
            let name = format!(
                "SubscriptionChange/{}",
                if suppress { &reason } else { "Reactivated" }
            );
            (
                kind,
                name,
                format!("subscription:{message}:{at}:{suppress}"),
            )
        }
        "Open" | "Click" => return Ok(Vec::new()),
        other => (
            EventKind::Other,
            other.to_string(),
            format!("{other}:sha256:{}", crate::hex::sha256(body)),
        ),
    };
    let description = [text("Description"), text("Details")]
        .into_iter()
        .flatten()
        .filter(|s| !s.trim().is_empty())
        .collect::<Vec<_>>()
        .join(" — ");
    Ok(vec![ProviderEvent {
        provider: "postmark",
        event_id: id,
        kind,
        name,
        recipient: text("Email").or_else(|| text("Recipient")),
        provider_message_id: text("MessageID").filter(|s| !s.trim().is_empty()),
        token: v
            .get("Metadata")
            .and_then(|m| m.get(TOKEN_ARG))
            .and_then(Value::as_str)
            .map(str::to_string),
        description: (!description.is_empty()).then_some(description),
        raw: body.to_vec(),
    }])
}

/// What a Postmark bounce `Type` means for the address.
fn bounce_kind(bounce_type: &str) -> EventKind {
    match bounce_type {
        "HardBounce" | "BadEmailAddress" => EventKind::HardBounce,
        "SoftBounce" | "Transient" | "DnsError" | "Blocked" => EventKind::SoftBounce,
        "Unsubscribe" => EventKind::Unsubscribe,
        "SpamComplaint" => EventKind::Complaint,
        _ => EventKind::Other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn one(v: Value) -> ProviderEvent {
        let mut e = events(v.to_string().as_bytes()).expect("an event");
        assert_eq!(e.len(), 1);
        e.remove(0)
    }

    #[test]
    fn bounces_complaints_and_changes_map_to_kinds() {
        let b = one(
            json!({"RecordType": "Bounce", "ID": 4323372036854775807u64, "Type": "HardBounce",
            "TypeCode": 1, "MessageID": "883953f4-6105-42a2-a16a-77a8eac79483", "Email": "john@example.com",
            "Description": "The server was unable to deliver your message", "Details": "550 5.1.1 unknown user",
            "Metadata": {"rewarm_token": "k1.abc.def", "rewarm_delivery_id": "7"}}),
        );
        assert_eq!(b.kind, EventKind::HardBounce);
        assert_eq!(b.event_id, "bounce:4323372036854775807");
        assert_eq!(b.token.as_deref(), Some("k1.abc.def"));
        assert_eq!(
            b.provider_message_id.as_deref(),
            Some("883953f4-6105-42a2-a16a-77a8eac79483")
        );
        assert!(b.description.unwrap().contains("550 5.1.1"));
        let soft =
            one(json!({"RecordType": "Bounce", "ID": 2, "Type": "Transient", "MessageID": "m"}));
        assert_eq!(soft.kind, EventKind::SoftBounce);
        let auto = one(
            json!({"RecordType": "Bounce", "ID": 3, "Type": "AutoResponder", "MessageID": "m"}),
        );
        assert_eq!(auto.kind, EventKind::Other);
        let spam = one(
            json!({"RecordType": "SpamComplaint", "ID": 4, "Type": "SpamComplaint", "MessageID": "m"}),
        );
        assert_eq!(spam.kind, EventKind::Complaint);
        let change = |suppress: bool, reason: &str| {
            one(json!({"RecordType": "SubscriptionChange", "MessageID": "m", "ChangedAt": "2026-03-02T10:00:00Z",
                       "Recipient": "a@b.example", "SuppressSending": suppress, "SuppressionReason": reason}))
            .kind
        };
        assert_eq!(change(true, "ManualSuppression"), EventKind::Unsubscribe);
        assert_eq!(change(true, "HardBounce"), EventKind::HardBounce);
        assert_eq!(change(false, ""), EventKind::Other);
        let d =
            one(json!({"RecordType": "Delivery", "MessageID": "m", "Recipient": "a@b.example"}));
        assert_eq!(
            (d.kind, d.event_id.as_str()),
            (EventKind::Delivered, "delivery:m:a@b.example")
        );
    }

    #[test]
    fn opens_and_clicks_are_not_kept_and_malformed_posts_say_what_is_missing() {
        assert!(
            events(br#"{"RecordType":"Open","MessageID":"m"}"#)
                .unwrap()
                .is_empty()
        );
        for (body, missing) in [
            (&br#"{"ID":1,"Type":"HardBounce"}"#[..], "RecordType"),
            (br#"{"RecordType":"Bounce","Type":"HardBounce"}"#, "ID"),
            (br#"{"RecordType":"Bounce","ID":1}"#, "Type"),
            (br#"{"RecordType":"Delivery"}"#, "MessageID"),
        ] {
            let e = events(body).unwrap_err();
            assert!(e.contains(missing), "{e}");
        }
        assert!(events(b"not json").unwrap_err().contains("not JSON"));
        assert!(events(b"[]").is_err());
    }
}
