//! `POST /inbound/sendgrid`: SendGrid Inbound Parse in raw mode (multipart, the whole message
//! in the `email` field), behind basic auth (the password is the secret).

use axum::http::HeaderMap;

use super::{Credential, Guard, Provider, form, message_key};

/// SendGrid Inbound Parse, raw mode.
pub(super) struct SendGrid;

impl Provider for SendGrid {
    const GUARD: Guard = Guard {
        endpoint: "sendgrid",
        env: |s| s.inbound.webhooks.sendgrid_token_env.clone(),
        credential: Credential::BasicPassword,
    };

    /// The `email` field of the form, keyed by its Message-ID.
    fn message(headers: &HeaderMap, body: &[u8]) -> Result<(Vec<u8>, String), &'static str> {
        let Some(fields) = form::fields(headers, body) else {
            return Err("the body is not a SendGrid Inbound Parse form");
        };
        let Some(raw) = fields
            .into_iter()
            .find(|(k, _)| k == "email")
            .map(|(_, v)| v)
            .filter(|v| !v.is_empty())
        else {
            return Err("no `email` field: turn on \"POST the raw, full MIME message\"");
        };
        let key = message_key("sendgrid", &raw);
        Ok((raw, key))
    }
}
