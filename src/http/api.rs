//! The leads API for CRM webhooks, behind `Authorization: Bearer <token>`:
//!
//! - `POST /api/leads`: a JSON object or an array of them, with the keys and rules of a JSON
//!   Lines import. All or nothing: if any item is bad the answer is 422 with every bad item's
//!   index, field and reason, and nothing is written; else 200 with the upsert's counts.
//! - `GET /api/leads/{email}`: the lead and its timeline.
//!
//! Every answer is JSON. Without a configured token the API does not exist (404).

use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, PathRejection};
use axum::extract::{FromRequestParts, Path, State};
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use sha2::Digest as _;
use subtle::ConstantTimeEq as _;

use super::{Shared, store_failure};
use crate::domain::email::EmailAddress;
use crate::domain::lead::Lead;
use crate::ingest::{self, ParsedLead};
use crate::store::{Event, Store};

/// The largest body `POST /api/leads` reads; more is answered 413.
pub(super) const BODY_LIMIT: usize = 5 * 1024 * 1024;

/// Proof that the request carried the configured bearer token.
pub(super) struct ApiCaller;

impl<S: Store> FromRequestParts<Shared<S>> for ApiCaller {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &Shared<S>) -> Result<Self, Response> {
        // An empty token would let anyone in: it counts as none.
        let Some(expected) = state.api_token.as_ref().filter(|t| !t.expose().is_empty()) else {
            return Err(error(StatusCode::NOT_FOUND, "not found"));
        };
        let given = parts
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(bearer);
        match given {
            Some(token) if same_secret(token, expected.expose()) => Ok(ApiCaller),
            _ => {
                let mut response = error(StatusCode::UNAUTHORIZED, "missing or wrong bearer token");
                response
                    .headers_mut()
                    .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
                Err(response)
            }
        }
    }
}

/// The token of an `Authorization: Bearer TOKEN` value (the scheme is case-insensitive).
fn bearer(value: &str) -> Option<&str> {
    let (scheme, token) = value.trim().split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
}

/// Compares in constant time, lengths included (both sides are hashed first).
fn same_secret(given: &str, expected: &str) -> bool {
    let given = sha2::Sha256::digest(given.as_bytes());
    let expected = sha2::Sha256::digest(expected.as_bytes());
    given.as_slice().ct_eq(expected.as_slice()).into()
}

/// One refused item of a `POST /api/leads` body.
#[derive(serde::Serialize)]
struct ItemError {
    /// Its 0-based position in the array (0 for a single object).
    index: usize,
    /// The key at fault, when one is.
    field: Option<String>,
    reason: String,
}

#[derive(serde::Serialize)]
struct ItemErrors {
    errors: Vec<ItemError>,
}

#[derive(serde::Serialize)]
struct Counts {
    inserted: usize,
    updated: usize,
    unchanged: usize,
    /// Items left out: their address was forgotten (`leads forget`) and is never taken in
    /// (only in the answer when some were).
    #[serde(skip_serializing_if = "is_zero")]
    forgotten: usize,
}

fn is_zero(n: &usize) -> bool {
    *n == 0
}

#[derive(serde::Serialize)]
struct LeadView<'a> {
    lead: &'a Lead,
    timeline: &'a [Event],
}

/// `POST /api/leads`.
pub(super) async fn upsert_leads<S: Store>(
    _caller: ApiCaller,
    State(state): State<Shared<S>>,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let body = match body {
        Ok(body) => body,
        Err(rejection) => return error(rejection.status(), &rejection.body_text()),
    };
    let value: Value = match serde_json::from_slice(&body) {
        Ok(value) => value,
        Err(e) => {
            return error(
                StatusCode::BAD_REQUEST,
                &format!("the body is not valid JSON: {e}"),
            );
        }
    };
    let items = match value {
        Value::Array(items) => items,
        one => vec![one],
    };
    let now = state.clock.now();
    let (default_tz, max_len) = {
        let current = state.current.get();
        (
            current.settings.default_tz,
            current.settings.max_field_length,
        )
    };
    let mut leads = Vec::with_capacity(items.len());
    let mut errors = Vec::new();
    for (index, item) in items.iter().enumerate() {
        match ingest::lead_from_json_limited("api", index, item, default_tz, now, max_len) {
            Ok(lead) => leads.push(ParsedLead { line: index, lead }),
            Err(e) => errors.push(ItemError {
                index,
                field: e.field,
                reason: e.reason,
            }),
        }
    }
    if !errors.is_empty() {
        return (
            StatusCode::UNPROCESSABLE_ENTITY,
            Json(ItemErrors { errors }),
        )
            .into_response();
    }
    let (leads, _merged) = ingest::merge_duplicates(leads);
    let leads: Vec<_> = leads.into_iter().map(|parsed| parsed.lead).collect();
    // A forgotten person (`leads forget`) is never taken in again.
    let (leads, forgotten) = match crate::store::without_forgotten(&state.store, leads).await {
        Ok(split) => split,
        Err(e) => {
            return error(
                store_failure("upsert leads", &e),
                "a database error; nothing was written",
            );
        }
    };
    match state.store.upsert_leads(&leads, "api", now).await {
        Ok(summary) => {
            tracing::info!(
                inserted = summary.inserted,
                updated = summary.updated,
                unchanged = summary.unchanged,
                forgotten = forgotten.len(),
                "Leads received through the API"
            );
            Json(Counts {
                inserted: summary.inserted,
                updated: summary.updated,
                unchanged: summary.unchanged,
                forgotten: forgotten.len(),
            })
            .into_response()
        }
        Err(e) => error(
            store_failure("upsert leads", &e),
            "a database error; nothing was written",
        ),
    }
}

/// `GET /api/leads/{email}`.
pub(super) async fn show_lead<S: Store>(
    _caller: ApiCaller,
    State(state): State<Shared<S>>,
    email: Result<Path<String>, PathRejection>,
) -> Response {
    let Some(email) = email
        .ok()
        .and_then(|Path(raw)| EmailAddress::parse(&raw).ok())
    else {
        return error(StatusCode::NOT_FOUND, "no lead with this address");
    };
    let lead = match state.store.lead_by_email(&email).await {
        Ok(Some(lead)) => lead,
        Ok(None) => return error(StatusCode::NOT_FOUND, "no lead with this address"),
        Err(e) => {
            return error(store_failure("show lead", &e), "a database error");
        }
    };
    match state.store.timeline(lead.id).await {
        Ok(timeline) => Json(LeadView {
            lead: &lead,
            timeline: &timeline,
        })
        .into_response(),
        Err(e) => error(store_failure("show lead", &e), "a database error"),
    }
}

fn error(status: StatusCode, message: &str) -> Response {
    (status, Json(json!({"error": message}))).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bearer_scheme_is_case_insensitive_and_required() {
        assert_eq!(bearer("Bearer abc"), Some("abc"));
        assert_eq!(bearer("bearer  abc "), Some("abc"));
        assert_eq!(bearer("Basic abc"), None);
        assert_eq!(bearer("abc"), None);
    }

    #[test]
    fn secrets_match_only_when_equal() {
        assert!(same_secret("s3cret", "s3cret"));
        assert!(!same_secret("s3cret", "s3cre"));
        assert!(!same_secret("", "s3cret"));
    }
}
