//! `POST /inbound/raw`: a raw RFC 5322 message as the body, `Authorization: Bearer TOKEN` —
//! for a mail server's pipe or any provider not covered by its own endpoint.

use axum::http::HeaderMap;

use super::{Credential, Guard, Provider, Refusal, message_key};

/// The plain raw-MIME endpoint.
pub(super) struct Raw;

impl Provider for Raw {
    const GUARD: Guard = Guard {
        endpoint: "raw",
        env: |s| s.inbound.webhooks.raw_token_env.clone(),
        credential: Credential::Bearer,
    };

    /// The body itself, keyed by its Message-ID.
    fn message(_headers: &HeaderMap, body: &[u8]) -> Result<(Vec<u8>, String), Refusal> {
        if body.is_empty() {
            return Err(Refusal::bad_request(
                "the body is empty; send the raw RFC 5322 message",
            ));
        }
        let raw = body.to_vec();
        let key = message_key("raw", &raw);
        Ok((raw, key))
    }
}
