//! Mailgun's event webhooks: one JSON object per post, `{"signature": {"timestamp", "token",
//! "signature"}, "event-data": {…}}`, signed like its inbound routes (checked by
//! `http::inbound`'s `verify_signed`, the token bound to this post's digest in the same store).
//!
//! | `event` (`severity`, `reason`)                    | kind          |
//! |---------------------------------------------------|---------------|
//! | `failed` permanent                                | hard bounce   |
//! | `failed` permanent, `suppress-complaint`          | complaint     |
//! | `failed` permanent, `suppress-unsubscribe`        | unsubscribe   |
//! | `failed` temporary                                | soft bounce   |
//! | `complained`                                      | complaint     |
//! | `unsubscribed`                                    | unsubscribe   |
//! | `delivered`                                       | delivered     |
//! | `accepted`, `opened`, `clicked`, `stored`         | not kept      |
//!
//! The event id is `event-data.id`; Mailgun's id of the message is
//! `event-data.message.headers.message-id` (our Message-ID, as the send's `id` was); our token
//! is the user variable `rewarm_token`.

use serde_json::Value;
use sha2::Digest as _;

use crate::inbound::events::{EventKind, ProviderEvent};
use crate::transport::api::client::TOKEN_ARG;

/// A post's signature block, its event and the digest its token is bound to.
pub(super) struct Envelope {
    pub timestamp: String,
    pub token: String,
    pub signature: String,
    pub event_data: Value,
    /// Hex SHA-256 of the whole body.
    pub digest: String,
}

impl Envelope {
    /// None when the body is not JSON or has no complete signature block (answered 401).
    pub fn read(body: &[u8]) -> Option<Envelope> {
        let v: Value = serde_json::from_slice(body).ok()?;
        let sig = v.get("signature")?;
        let field = |k: &str| match sig.get(k)? {
            Value::String(s) => Some(s.clone()),
            Value::Number(n) => Some(n.to_string()),
            _ => None,
        };
        Some(Envelope {
            timestamp: field("timestamp")?,
            token: field("token")?,
            signature: field("signature")?,
            event_data: v.get("event-data").cloned().unwrap_or(Value::Null),
            digest: crate::hex::encode(&sha2::Sha256::digest(body)),
        })
    }
}

/// The event of a verified post (none for noise); Err says what is missing.
pub(super) fn events(data: &Value) -> Result<Vec<ProviderEvent>, String> {
    if !data.is_object() {
        return Err("no `event-data` object".into());
    }
    let text = |v: &Value, k: &str| {
        v.get(k)
            .and_then(Value::as_str)
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_string)
    };
    let name = text(data, "event").ok_or("`event-data` has no `event`")?;
    let id = text(data, "id").ok_or("`event-data` has no `id`")?;
    let severity = text(data, "severity").unwrap_or_default();
    let reason = text(data, "reason").unwrap_or_default();
    let kind = match (name.as_str(), severity.as_str()) {
        ("failed", "temporary") => EventKind::SoftBounce,
        ("failed", _) => match reason.as_str() {
            "suppress-complaint" => EventKind::Complaint,
            "suppress-unsubscribe" => EventKind::Unsubscribe,
            _ => EventKind::HardBounce,
        },
        ("complained", _) => EventKind::Complaint,
        ("unsubscribed", _) => EventKind::Unsubscribe,
        ("delivered", _) => EventKind::Delivered,
        ("accepted" | "opened" | "clicked" | "stored", _) => return Ok(Vec::new()),
        _ => EventKind::Other,
    };
    let status = data.get("delivery-status").cloned().unwrap_or(Value::Null);
    let code = status.get("code").map(|c| c.to_string());
    let description = [
        code,
        text(&status, "message"),
        text(&status, "description"),
        (!reason.is_empty()).then(|| reason.clone()),
    ]
    .into_iter()
    .flatten()
    .collect::<Vec<_>>()
    .join(" — ");
    let message_id = data
        .pointer("/message/headers/message-id")
        .and_then(Value::as_str)
        .map(|id| id.trim().trim_matches(['<', '>']).to_string())
        .filter(|id| !id.is_empty());
    let name = if severity.is_empty() {
        name
    } else {
        format!("{name}/{severity}")
    };
    Ok(vec![ProviderEvent {
        provider: "mailgun",
        event_id: id,
        kind,
        name,
        recipient: text(data, "recipient"),
        provider_message_id: message_id,
        token: data.get("user-variables").and_then(|u| text(u, TOKEN_ARG)),
        description: (!description.is_empty()).then_some(description),
        raw: serde_json::to_vec(data).map_err(|e| e.to_string())?,
    }])
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn failures_map_by_severity_and_reason() {
        let e = |event: &str, severity: &str, reason: &str| {
            events(&json!({"id": "ev1", "event": event, "severity": severity, "reason": reason,
                "recipient": "a@x.example", "message": {"headers": {"message-id": "<rw.1@mail.acme.test>"}},
                "user-variables": {"rewarm_token": "tok"},
                "delivery-status": {"code": 550, "message": "5.1.1 unknown user"}}))
            .unwrap()
        };
        let hard = e("failed", "permanent", "bounce");
        assert_eq!(hard[0].kind, EventKind::HardBounce);
        assert_eq!(
            hard[0].provider_message_id.as_deref(),
            Some("rw.1@mail.acme.test")
        );
        assert_eq!(hard[0].token.as_deref(), Some("tok"));
        assert!(hard[0].description.as_deref().unwrap().contains("550"));
        assert_eq!(e("failed", "temporary", "")[0].kind, EventKind::SoftBounce);
        assert_eq!(
            e("failed", "permanent", "suppress-complaint")[0].kind,
            EventKind::Complaint
        );
        assert_eq!(e("complained", "", "")[0].kind, EventKind::Complaint);
        assert_eq!(e("delivered", "", "")[0].kind, EventKind::Delivered);
        assert!(e("opened", "", "").is_empty());
    }

    #[test]
    fn a_post_without_its_event_or_signature_is_refused() {
        assert!(events(&json!({"id": "x"})).unwrap_err().contains("event"));
        assert!(
            events(&json!({"event": "failed"}))
                .unwrap_err()
                .contains("id")
        );
        assert!(events(&Value::Null).is_err());
        assert!(Envelope::read(br#"{"event-data": {}}"#).is_none());
        let env = Envelope::read(
            br#"{"signature": {"timestamp": "1", "token": "t", "signature": "s"}, "event-data": {"id": "x"}}"#,
        )
        .unwrap();
        assert_eq!((env.timestamp.as_str(), env.token.as_str()), ("1", "t"));
        assert_eq!(env.digest.len(), 64);
    }
}
