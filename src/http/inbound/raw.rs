//! `POST /inbound/raw`: a raw RFC 5322 message as the body, `Authorization: Bearer TOKEN` —
//! for a mail server's pipe or any provider not covered by its own endpoint.

use axum::body::Body;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::Response;

use super::{Credential, Guard, accept, authenticated_body, bad_request, message_key};
use crate::http::Shared;
use crate::store::Store;

const GUARD: Guard = Guard {
    endpoint: "raw",
    env: |s| s.inbound.webhooks.raw_token_env.clone(),
    credential: Credential::Bearer,
};

/// `POST /inbound/raw`
pub(in crate::http) async fn raw<S: Store>(
    State(state): State<Shared<S>>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let body = match authenticated_body(&state, &GUARD, &headers, body).await {
        Ok(body) => body,
        Err(response) => return response,
    };
    if body.is_empty() {
        return bad_request("the body is empty; send the raw RFC 5322 message");
    }
    let raw = body.to_vec();
    let key = message_key("raw", &raw);
    accept(&state, raw, "raw", key).await
}
