//! `POST /inbound/sendgrid`: SendGrid Inbound Parse in raw mode (multipart, the whole message
//! in the `email` field), behind basic auth (the password is the secret), given as an
//! `Authorization` header (what `https://user:SECRET@host/…` in Parse's settings becomes) or
//! in the URL (`?token=SECRET`).
//!
//! A Parse post *not* in raw mode (parsed fields, no `email`) is answered 503 with a log line
//! saying which setting to turn on: SendGrid does not retry a 400, and the reply would be lost;
//! it retries a 5xx (for up to three days), so once "POST the raw, full MIME message" is on,
//! nothing is lost.

use axum::http::{HeaderMap, StatusCode};

use super::{Credential, Guard, Provider, Refusal, form, message_key};

/// SendGrid Inbound Parse, raw mode.
pub(super) struct SendGrid;

impl Provider for SendGrid {
    const GUARD: Guard = Guard {
        endpoint: "sendgrid",
        env: |s| s.inbound.webhooks.sendgrid_token_env.clone(),
        credential: Credential::BasicPasswordOrUrl,
    };

    /// The `email` field of the form, keyed by its Message-ID.
    fn message(headers: &HeaderMap, body: &[u8]) -> Result<(Vec<u8>, String), Refusal> {
        let Some(fields) = form::fields(headers, body) else {
            return Err(Refusal::bad_request(
                "the body is not a SendGrid Inbound Parse form",
            ));
        };
        let parsed_mode = fields.iter().any(|(k, _)| k == "text" || k == "html");
        let Some(raw) = fields
            .into_iter()
            .find(|(k, _)| k == "email")
            .map(|(_, v)| v)
            .filter(|v| !v.is_empty())
        else {
            tracing::error!(
                parsed_mode,
                "A SendGrid Inbound Parse post is not in raw mode: turn on \"POST the raw, full MIME message\" in the Parse settings; answered 503 so that SendGrid keeps the message and retries"
            );
            return Err(Refusal {
                status: StatusCode::SERVICE_UNAVAILABLE,
                error: "no `email` field: this Parse hook is not in raw mode; turn on \"POST the raw, full MIME message\" (SendGrid retries this post)".into(),
            });
        };
        let key = message_key("sendgrid", &raw);
        Ok((raw, key))
    }
}
