//! Webhook notifications: the JSON body (the payload with the lead and its timeline as they
//! are at delivery, or Slack's `{"text"}`), signed with HMAC-SHA256 and POSTed with an
//! `Idempotency-Key`; 429, 5xx and network errors are retried, other 4xx fail for good.

use std::time::Duration;

use chrono::{DateTime, Utc};
use hmac::{KeyInit, Mac};
use serde_json::{Map, Value, json};

use super::retry::{Outcome, retry_at};
use super::{TIMELINE_LINES, reply_of};
use crate::config::NotifySettings;
use crate::domain::lead::Lead;
use crate::secret::Secret;
use crate::store::{Event, Notification};

const WEBHOOK_TIMEOUT: Duration = Duration::from_secs(15);

/// The JSON body of a webhook notification (Slack: `{"text": …}`).
pub(super) fn webhook_body(
    settings: &NotifySettings,
    n: &Notification,
    lead: Option<&Lead>,
    timeline: &[Event],
) -> Result<Vec<u8>, String> {
    let webhook = settings
        .webhook
        .as_ref()
        .ok_or("notify.webhook_url is not configured")?;
    let reply = reply_of(&n.payload, timeline);
    let body = if webhook.slack {
        let text = super::slack::slack_text(&n.payload, lead, reply.as_deref());
        json!({ "text": text, "idempotency_key": n.idempotency_key })
    } else {
        let mut body = match &n.payload {
            Value::Object(map) => map.clone(),
            _ => Map::new(),
        };
        body.insert("idempotency_key".into(), json!(n.idempotency_key));
        body.insert("notification_id".into(), json!(n.id));
        body.entry("event").or_insert(json!("lead.rewarmed"));
        body.entry("version")
            .or_insert(json!(super::WEBHOOK_VERSION));
        if let Some(reply) = reply {
            body.entry("reply").or_insert(json!(reply));
        }
        // The lead and its timeline as they are at delivery (re-warmed, the reply on it),
        // over the copy taken when the notification was queued.
        if let Some(lead) = lead {
            body.insert(
                "lead".into(),
                serde_json::to_value(lead).unwrap_or(Value::Null),
            );
            let skip = timeline.len().saturating_sub(TIMELINE_LINES);
            body.insert(
                "timeline".into(),
                serde_json::to_value(&timeline[skip..]).unwrap_or(Value::Null),
            );
        }
        Value::Object(body)
    };
    serde_json::to_vec(&body).map_err(|e| format!("cannot encode the webhook body: {e}"))
}

/// `sha256=<hex HMAC-SHA256(key, body)>`, the `X-Rewarm-Signature` header.
pub fn signature(key: &str, body: &[u8]) -> String {
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(key.as_bytes())
        .expect("HMAC takes keys of any length");
    mac.update(body);
    format!(
        "sha256={}",
        crate::hex::encode(&mac.finalize().into_bytes())
    )
}

/// Posts each body; the outcome of each, as recorded.
pub(super) async fn post_webhooks(
    settings: &NotifySettings,
    hooks: Vec<(&Notification, Vec<u8>)>,
    now: DateTime<Utc>,
) -> Vec<Outcome> {
    let Some(webhook) = settings.webhook.as_ref() else {
        return hooks
            .iter()
            .map(|(n, _)| {
                (
                    n.id,
                    Err("notify.webhook_url is not configured".into()),
                    None,
                )
            })
            .collect();
    };
    let key = match webhook
        .secret_env
        .as_deref()
        .map(Secret::from_env_or_credential)
    {
        None => None,
        Some(Ok(secret)) => Some(secret),
        Some(Err(e)) => {
            let error = format!("cannot read notify.webhook_secret_env: {e}");
            return hooks
                .iter()
                .map(|(n, _)| (n.id, Err(error.clone()), retry_at(n.attempts, now)))
                .collect();
        }
    };
    let _ = rustls::crypto::ring::default_provider().install_default();
    let client = match reqwest::Client::builder().timeout(WEBHOOK_TIMEOUT).build() {
        Ok(c) => c,
        Err(e) => {
            let error = format!("cannot build an HTTP client: {e}");
            return hooks
                .iter()
                .map(|(n, _)| (n.id, Err(error.clone()), retry_at(n.attempts, now)))
                .collect();
        }
    };
    let posts = hooks.into_iter().map(|(n, body)| {
        let mut request = client
            .post(&webhook.url)
            .header("content-type", "application/json")
            .header("idempotency-key", &n.idempotency_key)
            .header("user-agent", concat!("rewarm/", env!("CARGO_PKG_VERSION")));
        if let Some(key) = &key {
            request = request.header("x-rewarm-signature", signature(key.expose(), &body));
        }
        async move {
            let outcome = match request.body(body).send().await {
                Ok(response) => {
                    let status = response.status();
                    if status.is_success() {
                        Ok(())
                    } else if status.as_u16() == 429 || status.is_server_error() {
                        Err((format!("webhook answered {status}"), true))
                    } else {
                        Err((format!("webhook refused it: {status}"), false))
                    }
                }
                Err(e) => Err((format!("webhook unreachable: {e}"), true)),
            };
            match outcome {
                Ok(()) => (n.id, Ok(()), None),
                Err((error, true)) => (n.id, Err(error), retry_at(n.attempts, now)),
                Err((error, false)) => (n.id, Err(error), None),
            }
        }
    });
    futures::future::join_all(posts).await
}
#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_signature_is_a_hex_hmac_of_the_body() {
        // RFC 4231 test case 2.
        assert_eq!(
            signature("Jefe", b"what do ya want for nothing?"),
            "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }
}
