//! The email providers' event webhooks: what Postmark, SendGrid and Mailgun report about the
//! messages rewarm sent through them (bounces, spam complaints, unsubscribes, deferrals,
//! deliveries). One route per provider, each verified the way the provider documents:
//!
//! | route                  | verified by                                                    |
//! |------------------------|----------------------------------------------------------------|
//! | `POST /events/postmark`| basic auth (the password) or `?token=` in the URL: the secret named by `inbound.events.postmark_token_env` |
//! | `POST /events/sendgrid`| ECDSA P-256 / SHA-256 over `X-Twilio-Email-Event-Webhook-Timestamp` + body, signature in `X-Twilio-Email-Event-Webhook-Signature`, key `inbound.events.sendgrid_public_key` |
//! | `POST /events/mailgun` | HMAC-SHA256 of timestamp + token with the signing key (`inbound.webhooks.mailgun_signing_key_env`), freshness, each token bound to one post — the same check and token store as `/inbound/mailgun` |
//!
//! A route whose key is not configured does not exist (404); a bad or missing signature is
//! 401 and nothing is read further; a body that is not what the provider posts (not JSON, an
//! event without its type or id) is 400. Each provider's file verifies and reads its post into
//! [`ProviderEvent`](crate::inbound::events::ProviderEvent)s (pure, unit-tested); [`accept`]
//! hands them to [`process_events`], which keeps them — a SendGrid array in one transaction —
//! before the answer is 200. A store failure is 503: the provider keeps the events and
//! retries, and a retry of events already kept changes nothing (one key per event id).

mod mailgun;
mod postmark;
mod sendgrid;

use std::panic::AssertUnwindSafe;

use axum::Json;
use axum::body::Body;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use futures::FutureExt as _;
use serde_json::json;

pub use sendgrid::public_key as sendgrid_public_key;

use super::Shared;
use super::inbound::{
    Signed, basic_password_ok, bind_token, not_found, read, secret_of, unauthorized, url_token_ok,
    verify_signed,
};
use crate::config::Settings;
use crate::inbound::events::{ProviderEvent, process_events};
use crate::store::Store;
use crate::tokens::TokenKind;

/// The largest body an event route reads (SendGrid posts batches of up to ~1,000 events).
pub(super) const BODY_LIMIT: usize = 10 * 1024 * 1024;

/// `POST /events/postmark`: one event per post (Bounce, SpamComplaint, SubscriptionChange,
/// Delivery).
pub(super) async fn postmark<S: Store>(
    State(state): State<Shared<S>>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let env = |s: &Settings| s.inbound.events.postmark_token_env.clone();
    let Some(secret) = secret_of(&state, "postmark events", env) else {
        return not_found();
    };
    if !basic_password_ok(&headers, &secret) && !url_token_ok(query.as_deref(), &secret) {
        return unauthorized("Basic realm=\"rewarm\"");
    }
    let body = match read(body).await {
        Ok(body) => body,
        Err(response) => return response,
    };
    match postmark::events(&body) {
        Ok(events) => accept(&state, "postmark", events).await,
        Err(reason) => bad_request("postmark", &reason),
    }
}

/// `POST /events/sendgrid`: a JSON array of events, signed with SendGrid's ECDSA key.
pub(super) async fn sendgrid<S: Store>(
    State(state): State<Shared<S>>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let key = state
        .current
        .get()
        .settings
        .inbound
        .events
        .sendgrid_public_key
        .clone();
    let Some(key) = key else {
        return not_found();
    };
    // The signature covers the body: it is read (within the limit) before it can be checked.
    let body = match read(body).await {
        Ok(body) => body,
        Err(response) => return response,
    };
    if let Err(why) = sendgrid::verify(&key, &headers, &body, state.clock.now()) {
        tracing::warn!(reason = why, "Refused a SendGrid event post");
        return unauthorized("ECDSA");
    }
    match sendgrid::events(&body) {
        Ok(events) => accept(&state, "sendgrid", events).await,
        Err(reason) => bad_request("sendgrid", &reason),
    }
}

/// `POST /events/mailgun`: one event per post, `{"signature": {…}, "event-data": {…}}`.
pub(super) async fn mailgun<S: Store>(State(state): State<Shared<S>>, body: Body) -> Response {
    let env = |s: &Settings| s.inbound.webhooks.mailgun_signing_key_env.clone();
    let Some(secret) = secret_of(&state, "mailgun events", env) else {
        return not_found();
    };
    let body = match read(body).await {
        Ok(body) => body,
        Err(response) => return response,
    };
    let Some(envelope) = mailgun::Envelope::read(&body) else {
        return unauthorized("Mailgun");
    };
    let signed = Signed {
        timestamp: &envelope.timestamp,
        token: &envelope.token,
        signature: &envelope.signature,
    };
    if let Err(response) = verify_signed(&state, &secret, &signed) {
        return response;
    }
    if let Err(response) = bind_token(&state, &envelope.token, &envelope.digest).await {
        return response;
    }
    match mailgun::events(&envelope.event_data) {
        Ok(events) => accept(&state, "mailgun", events).await,
        Err(reason) => bad_request("mailgun", &reason),
    }
}

fn bad_request(provider: &'static str, reason: &str) -> Response {
    tracing::warn!(
        provider,
        reason,
        "Refused an event post that is not what the provider sends"
    );
    (StatusCode::BAD_REQUEST, Json(json!({"error": reason}))).into_response()
}

/// Keeps verified events (matched, with their effects), then answers 200; 503 when they
/// could not be kept (the provider retries).
async fn accept<S: Store>(
    state: &Shared<S>,
    provider: &'static str,
    events: Vec<ProviderEvent>,
) -> Response {
    let now = state.clock.now();
    let loaded = state.current.get();
    let verify = |token: &str| {
        state
            .verify(token, b"", TokenKind::Reply)
            .map(|c| c.delivery_id)
    };
    let outcome = AssertUnwindSafe(process_events(&state.store, &loaded, &verify, &events, now))
        .catch_unwind()
        .await
        .unwrap_or_else(|_| Err(anyhow::anyhow!("event processing panicked")));
    match outcome {
        Ok(outcomes) => (
            StatusCode::OK,
            Json(json!({"ok": true, "events": outcomes})),
        )
            .into_response(),
        Err(error) => {
            tracing::warn!(
                provider,
                error = format!("{error:#}"),
                "Provider events not kept; the provider will retry"
            );
            (
                StatusCode::SERVICE_UNAVAILABLE,
                Json(json!({"error": "the events could not be stored; try again later"})),
            )
                .into_response()
        }
    }
}
