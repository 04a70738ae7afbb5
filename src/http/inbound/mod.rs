//! Inbound mail from email providers, each behind its own secret (one file per provider):
//!
//! - [`postmark`] `POST /inbound/postmark`: Postmark's inbound JSON, basic auth (the password
//!   is checked).
//! - [`mailgun`] `POST /inbound/mailgun` and `POST /inbound/mailgun/mime` (the URL Mailgun
//!   posts raw MIME to): Mailgun's form (urlencoded or multipart), HMAC-SHA256 of
//!   `timestamp + token` with the signing key, timestamps up to 9 hours old (Mailgun's retry
//!   horizon), each token bound to one message in the store.
//! - [`sendgrid`] `POST /inbound/sendgrid`: SendGrid Inbound Parse in raw mode (multipart,
//!   `email` field), basic auth (the password is checked).
//! - [`raw`] `POST /inbound/raw`: a raw RFC 5322 message, `Authorization: Bearer TOKEN`.
//!
//! The secret is checked before anything of the message is parsed: a bad or missing one is
//! 401 and nothing changes. An endpoint whose secret is not configured does not exist (404).
//! Every message goes through [`crate::inbound::process::process`] (the same path as IMAP and
//! `inbound replay`) and the answer is 200 only once that wrote it; a provider's retry of the
//! same message carries the same dedupe key, so it is answered 200 and changes nothing.
//!
//! What they share is here, once: the secret check and the body read ([`authenticated_body`]),
//! and [`accept`], which processes the message and answers. Postmark, SendGrid and raw differ
//! only in how a body becomes a message (their [`Provider`] impls, run by [`guarded`]);
//! Mailgun signs inside its form, so it has its own handler. [`form`] splits the form bodies
//! Mailgun and SendGrid post, and [`rebuild`] writes a message from the fields of providers
//! that post parsed mail (Postmark, Mailgun without `body-mime`).

mod form;
mod mailgun;
mod postmark;
mod raw;
mod rebuild;
mod sendgrid;

use std::panic::AssertUnwindSafe;

use axum::Json;
use axum::body::{Body, Bytes};
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use futures::FutureExt as _;
use serde_json::json;
use sha2::Digest as _;
use subtle::ConstantTimeEq as _;

pub(super) use mailgun::{Signed, bind_token, mailgun, verify_signed};

use super::Shared;
use crate::config::Settings;
use crate::inbound::process::{InboundMessage, process};
use crate::secret::Secret;
use crate::store::Store;

/// The largest body an inbound endpoint reads (providers post up to ~25 MB with attachments).
pub(super) const BODY_LIMIT: usize = 40 * 1024 * 1024;

/// An endpoint guarded by a secret in a header: its name, where the configuration names its
/// secret, and how the caller presents it.
struct Guard {
    endpoint: &'static str,
    /// The env var / credential holding the secret (`inbound.webhooks.*_env`), if set.
    env: fn(&Settings) -> Option<String>,
    credential: Credential,
}

/// How a caller proves it holds an endpoint's secret.
#[derive(Clone, Copy)]
enum Credential {
    /// `Authorization: Basic`, the secret as the password (any user name).
    BasicPassword,
    /// `Authorization: Basic` as above, or the secret in the URL (`?token=SECRET`), for
    /// providers whose settings take credentials only as part of the URL.
    BasicPasswordOrUrl,
    /// `Authorization: Bearer SECRET`.
    Bearer,
}

/// A provider that posts one message per request with a secret in a header: how its body
/// becomes a raw message and that message's dedupe key.
trait Provider {
    const GUARD: Guard;

    /// The raw message and its dedupe key, from an authenticated request; Err is the answer
    /// when the body is not what the provider posts (400, or 5xx where the provider should
    /// keep the message and retry once its settings are fixed).
    fn message(headers: &HeaderMap, body: &[u8]) -> Result<(Vec<u8>, String), Refusal>;
}

/// Why an authenticated body is not taken: the status to answer and what to say.
pub(super) struct Refusal {
    pub status: StatusCode,
    pub error: String,
}

impl Refusal {
    pub(super) fn bad_request(error: impl Into<String>) -> Refusal {
        Refusal {
            status: StatusCode::BAD_REQUEST,
            error: error.into(),
        }
    }

    fn into_response(self) -> Response {
        (self.status, Json(json!({"error": self.error}))).into_response()
    }
}

/// `POST /inbound/postmark`
pub(super) async fn postmark<S: Store>(
    state: State<Shared<S>>,
    query: RawQuery,
    headers: HeaderMap,
    body: Body,
) -> Response {
    guarded::<S, postmark::Postmark>(state, query, headers, body).await
}

/// `POST /inbound/sendgrid`
pub(super) async fn sendgrid<S: Store>(
    state: State<Shared<S>>,
    query: RawQuery,
    headers: HeaderMap,
    body: Body,
) -> Response {
    guarded::<S, sendgrid::SendGrid>(state, query, headers, body).await
}

/// `POST /inbound/raw`
pub(super) async fn raw<S: Store>(
    state: State<Shared<S>>,
    query: RawQuery,
    headers: HeaderMap,
    body: Body,
) -> Response {
    guarded::<S, raw::Raw>(state, query, headers, body).await
}

/// Handles a request to `P`'s endpoint: its secret, then its body, then [`accept`].
async fn guarded<S: Store, P: Provider>(
    State(state): State<Shared<S>>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let body = match authenticated_body(&state, &P::GUARD, &headers, query.as_deref(), body).await {
        Ok(body) => body,
        Err(response) => return response,
    };
    match P::message(&headers, &body) {
        Ok((raw, key)) => accept(&state, raw, P::GUARD.endpoint, key).await,
        Err(refusal) => refusal.into_response(),
    }
}

/// The secret of `endpoint`, named in the current configuration by `env`; None when the
/// endpoint is off (no secret configured, or an unreadable one): answer [`not_found`].
pub(super) fn secret_of<S: Store>(
    state: &Shared<S>,
    endpoint: &str,
    env: fn(&Settings) -> Option<String>,
) -> Option<Secret> {
    let env = env(&state.current.get().settings);
    configured(env.as_deref(), endpoint)
}

/// The body of a request to `guard`'s endpoint, read only once its secret checked out: Err is
/// the answer otherwise (404 endpoint off, 401 with a challenge, 413 body too large).
async fn authenticated_body<S: Store>(
    state: &Shared<S>,
    guard: &Guard,
    headers: &HeaderMap,
    query: Option<&str>,
    body: Body,
) -> Result<Bytes, Response> {
    let Some(secret) = secret_of(state, guard.endpoint, guard.env) else {
        return Err(not_found());
    };
    match guard.credential {
        Credential::BasicPassword if !basic_password_ok(headers, &secret) => {
            return Err(unauthorized("Basic realm=\"rewarm\""));
        }
        Credential::BasicPasswordOrUrl
            if !basic_password_ok(headers, &secret) && !url_token_ok(query, &secret) =>
        {
            return Err(unauthorized("Basic realm=\"rewarm\""));
        }
        Credential::Bearer if !bearer_ok(headers, &secret) => {
            return Err(unauthorized("Bearer"));
        }
        _ => {}
    }
    read(body).await
}

/// Reads a body once its request is authenticated (so strangers cannot make us buffer one).
pub(super) async fn read(body: Body) -> Result<Bytes, Response> {
    axum::body::to_bytes(body, BODY_LIMIT).await.map_err(|_| {
        (
            StatusCode::PAYLOAD_TOO_LARGE,
            Json(json!({"error": "the body is too large or was cut off"})),
        )
            .into_response()
    })
}

/// Processes one authenticated message; 200 only after the store has it.
async fn accept<S: Store>(
    state: &Shared<S>,
    raw: Vec<u8>,
    source: &'static str,
    dedupe_key: String,
) -> Response {
    let now = state.clock.now();
    let loaded = state.current.get();
    let message = InboundMessage {
        raw,
        source: source.into(),
        dedupe_key,
        received_at: now,
    };
    // A panic in processing is answered like any other failure (503: the provider retries)
    // rather than dropping the connection.
    let outcome = AssertUnwindSafe(process(&state.store, &loaded, &message, now, false))
        .catch_unwind()
        .await
        .unwrap_or_else(|_| Err(anyhow::anyhow!("inbound processing panicked")));
    match outcome {
        Ok(processed) => {
            tracing::info!(
                source,
                inbound_id = processed.inbound_id,
                duplicate = processed.duplicate,
                "Inbound webhook message processed"
            );
            (
                StatusCode::OK,
                Json(json!({
                    "ok": true,
                    "classification": processed.classification.as_str(),
                    "matched_by": processed.matched_by,
                    "inbound_id": processed.inbound_id,
                    "duplicate": processed.duplicate,
                })),
            )
                .into_response()
        }
        Err(error) => {
            // Not answered 2xx: the provider keeps the message and tries again.
            tracing::warn!(
                source,
                error = format!("{error:#}"),
                "Inbound webhook message not processed"
            );
            (
                StatusCode::SERVICE_UNAVAILABLE,
                Json(json!({"error": "the message could not be stored; try again later"})),
            )
                .into_response()
        }
    }
}

/// The endpoint's secret, when it is configured and readable (else the endpoint is off).
fn configured(env: Option<&str>, endpoint: &str) -> Option<Secret> {
    let name = env?;
    match Secret::from_env_or_credential(name) {
        Ok(secret) if !secret.expose().trim().is_empty() => Some(secret),
        Ok(_) => {
            tracing::warn!(
                endpoint,
                env = name,
                "Inbound webhook secret is empty; endpoint off"
            );
            None
        }
        Err(error) => {
            tracing::warn!(endpoint, env = name, %error, "Inbound webhook secret unreadable; endpoint off");
            None
        }
    }
}

pub(super) fn not_found() -> Response {
    (StatusCode::NOT_FOUND, Json(json!({"error": "not found"}))).into_response()
}

pub(super) fn unauthorized(challenge: &'static str) -> Response {
    let mut response = (
        StatusCode::UNAUTHORIZED,
        Json(json!({"error": "missing or wrong credentials"})),
    )
        .into_response();
    response.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        HeaderValue::from_static(challenge),
    );
    response
}

/// True when the URL's query has `token=SECRET` (percent-encoded or not).
pub(super) fn url_token_ok(query: Option<&str>, secret: &Secret) -> bool {
    let Some(query) = query else {
        return false;
    };
    form::urlencoded(query.as_bytes())
        .into_iter()
        .filter(|(k, _)| k == "token")
        .any(|(_, v)| same_secret(&String::from_utf8_lossy(&v), secret.expose()))
}

/// True when `Authorization: Basic` carries `secret` as its password (any user name).
pub(super) fn basic_password_ok(headers: &HeaderMap, secret: &Secret) -> bool {
    let Some(value) = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
    else {
        return false;
    };
    let Some((scheme, encoded)) = value.trim().split_once(' ') else {
        return false;
    };
    if !scheme.eq_ignore_ascii_case("basic") {
        return false;
    }
    let Ok(decoded) = base64::engine::general_purpose::STANDARD.decode(encoded.trim()) else {
        return false;
    };
    let decoded = String::from_utf8_lossy(&decoded);
    let password = decoded.split_once(':').map_or(decoded.as_ref(), |(_, p)| p);
    same_secret(password, secret.expose())
}

/// Compares in constant time, lengths included (both sides are hashed first).
fn same_secret(given: &str, expected: &str) -> bool {
    let given = sha2::Sha256::digest(given.as_bytes());
    let expected = sha2::Sha256::digest(expected.as_bytes());
    given.as_slice().ct_eq(expected.as_slice()).into()
}

/// True when `Authorization: Bearer` carries `secret`.
fn bearer_ok(headers: &HeaderMap, secret: &Secret) -> bool {
    let given = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            let (scheme, token) = v.trim().split_once(' ')?;
            scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
        });
    given.is_some_and(|token| same_secret(token, secret.expose()))
}

/// The dedupe key of a message whose provider gives no id of its own: `{prefix}:{Message-ID}`,
/// else [`fallback_key`].
fn message_key(prefix: &str, raw: &[u8]) -> String {
    match header_message_id(raw) {
        Some(id) => format!("{prefix}:{}", bare_id(&id)),
        None => fallback_key(prefix, raw),
    }
}

/// `{prefix}:sha256:{hex}` of the raw message, when it has no id of its own.
fn fallback_key(prefix: &str, raw: &[u8]) -> String {
    format!("{prefix}:sha256:{}", crate::hex::sha256(raw))
}

/// An id without its angle brackets and surrounding space.
fn bare_id(id: &str) -> &str {
    id.trim()
        .trim_start_matches('<')
        .trim_end_matches('>')
        .trim()
}

/// The Message-ID header of a raw message, if it has one.
fn header_message_id(raw: &[u8]) -> Option<String> {
    let parsed = mail_parser::MessageParser::new().parse_headers(raw)?;
    parsed
        .message_id()
        .map(str::to_string)
        .filter(|id| !id.trim().is_empty())
}
