//! `POST /inbound/postmark`: Postmark's inbound JSON webhook, behind basic auth (the password is
//! the secret). The message is Postmark's `RawEmail` when the server sends it, else one rebuilt
//! from the JSON fields; its dedupe key is Postmark's `MessageID`.
//!
//! Postmark's *outbound* webhooks (Bounce, SpamComplaint, Delivery, SubscriptionChange, …)
//! carry a `RecordType`; posted here by mistake, one is refused with a log line and an
//! answer naming the right URL (`/events/postmark`), never stored as an empty message.

use axum::http::HeaderMap;
use serde_json::Value;

use super::rebuild::{Synth, header_in, synthesize};
use super::{Credential, Guard, Provider, Refusal, bare_id, fallback_key};

/// Postmark's inbound webhook.
pub(super) struct Postmark;

impl Provider for Postmark {
    const GUARD: Guard = Guard {
        endpoint: "postmark",
        env: |s| s.inbound.webhooks.postmark_token_env.clone(),
        credential: Credential::BasicPassword,
    };

    /// The message (`RawEmail`, else rebuilt) and Postmark's `MessageID` as its key.
    fn message(_headers: &HeaderMap, body: &[u8]) -> Result<(Vec<u8>, String), Refusal> {
        let payload: Value = match serde_json::from_slice(body) {
            Ok(v @ Value::Object(_)) => v,
            _ => {
                return Err(Refusal::bad_request(
                    "the body is not a Postmark inbound JSON object",
                ));
            }
        };
        if let Some(kind) = payload
            .get("RecordType")
            .and_then(Value::as_str)
            .filter(|k| *k != "Inbound")
        {
            tracing::warn!(
                record_type = kind,
                "A Postmark {kind} webhook posts to /inbound/postmark (the route for inbound mail): set its URL to /events/postmark"
            );
            return Err(Refusal::bad_request(format!(
                "this is a Postmark {kind} webhook, not inbound mail: set the webhook's URL to /events/postmark (this route takes the inbound stream's webhook)"
            )));
        }
        let raw = postmark_mime(&payload);
        let key = match payload.get("MessageID").and_then(Value::as_str) {
            Some(id) if !id.trim().is_empty() => format!("postmark:{}", id.trim()),
            _ => fallback_key("postmark", &raw),
        };
        Ok((raw, key))
    }
}

/// Postmark's `RawEmail` when present, else a message rebuilt from its fields.
fn postmark_mime(p: &Value) -> Vec<u8> {
    let s = |k: &str| p.get(k).and_then(Value::as_str).unwrap_or("").to_string();
    if let Some(raw) = p
        .get("RawEmail")
        .and_then(Value::as_str)
        .filter(|r| !r.trim().is_empty())
    {
        return raw.as_bytes().to_vec();
    }
    let headers: Vec<(String, String)> = p
        .get("Headers")
        .and_then(Value::as_array)
        .map(|all| {
            all.iter()
                .filter_map(|h| {
                    Some((
                        h.get("Name")?.as_str()?.to_string(),
                        h.get("Value")?.as_str()?.to_string(),
                    ))
                })
                .collect()
        })
        .unwrap_or_default();
    let header = |name: &str| header_in(&headers, name);
    let from = match (s("FromName"), s("From")) {
        (name, from) if !name.is_empty() && !from.contains('<') => format!("\"{name}\" <{from}>"),
        (_, from) => from,
    };
    let message_id = header("Message-ID")
        .unwrap_or_else(|| format!("<{}@postmark.inbound>", bare_id(&s("MessageID"))));
    let to = if s("To").is_empty() {
        s("OriginalRecipient")
    } else {
        s("To")
    };
    synthesize(Synth {
        from,
        to,
        subject: s("Subject"),
        message_id,
        date: header("Date").unwrap_or_else(|| s("Date")),
        extra: headers,
        text: s("TextBody"),
        html: s("HtmlBody"),
    })
}
#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_rebuilt_postmark_message_keeps_threading_headers() {
        let p = json!({
            "From": "sam@initech.example", "FromName": "Sam", "To": "reply@acme.example",
            "Subject": "Re: hello", "MessageID": "abc-123",
            "Headers": [{"Name": "In-Reply-To", "Value": "<d1@acme.example>"},
                        {"Name": "Message-ID", "Value": "<orig@initech.example>"}],
            "TextBody": "Yes, call me.\nSam", "HtmlBody": ""
        });
        let raw = String::from_utf8(postmark_mime(&p)).unwrap();
        assert!(raw.contains("In-Reply-To: <d1@acme.example>\r\n"), "{raw}");
        assert!(
            raw.contains("Message-ID: <orig@initech.example>\r\n"),
            "{raw}"
        );
        let parsed = mail_parser::MessageParser::new()
            .parse(raw.as_bytes())
            .unwrap();
        assert_eq!(
            parsed.body_text(0).unwrap().trim_end(),
            "Yes, call me.\r\nSam"
        );
    }
}
