//! `POST /inbound/sendgrid`: SendGrid Inbound Parse in raw mode (multipart, the whole message
//! in the `email` field), behind basic auth (the password is the secret).

use axum::body::Body;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::Response;

use super::{Credential, Guard, accept, authenticated_body, bad_request, form, message_key};
use crate::http::Shared;
use crate::store::Store;

const GUARD: Guard = Guard {
    endpoint: "sendgrid",
    env: |s| s.inbound.webhooks.sendgrid_token_env.clone(),
    credential: Credential::BasicPassword,
};

/// `POST /inbound/sendgrid`
pub(in crate::http) async fn sendgrid<S: Store>(
    State(state): State<Shared<S>>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let body = match authenticated_body(&state, &GUARD, &headers, body).await {
        Ok(body) => body,
        Err(response) => return response,
    };
    let Some(fields) = form::fields(&headers, &body) else {
        return bad_request("the body is not a SendGrid Inbound Parse form");
    };
    let Some(raw) = fields
        .into_iter()
        .find(|(k, _)| k == "email")
        .map(|(_, v)| v)
        .filter(|v| !v.is_empty())
    else {
        return bad_request("no `email` field: turn on \"POST the raw, full MIME message\"");
    };
    let key = message_key("sendgrid", &raw);
    accept(&state, raw, "sendgrid", key).await
}
