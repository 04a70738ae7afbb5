//! `POST /inbound/mailgun` and `POST /inbound/mailgun/mime` (the URL Mailgun posts raw MIME
//! to): Mailgun's form (urlencoded or multipart), signed in the form itself — HMAC-SHA256 of
//! `timestamp + token` with the signing key. A timestamp may be up to
//! [`MAILGUN_MAX_AGE_SECS`] old (Mailgun's retry horizon), and each token is bound to one
//! message in the store ([`mailgun_token`]), so a captured signature carries nothing else.

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use hmac::{KeyInit, Mac};
use serde_json::json;
use sha2::Digest as _;

use super::rebuild::{Synth, header_in, synthesize};
use super::{
    accept, bare_id, fallback_key, form, header_message_id, not_found, same_secret, secret_of,
    unauthorized,
};
use crate::config::Settings;
use crate::http::Shared;
use crate::store::{Store, StoreError};

/// How old a Mailgun timestamp may be. Mailgun retries a POST it did not get a 200 (or 406)
/// for during 8 hours (after 5 or 10 min, …, 2 h, 4 h), apparently with the first attempt's
/// timestamp, token and signature; a shorter window would refuse those retries and lose the
/// message. 9 hours covers the 8 with an hour to spare (queueing on Mailgun's side, skew).
/// Replays inside the window are harmless: a token is bound to one message ([`mailgun_token`]).
const MAILGUN_MAX_AGE_SECS: i64 = 9 * 60 * 60;

/// How far ahead of our clock a Mailgun timestamp may be (clock skew).
const MAILGUN_MAX_SKEW_SECS: i64 = 5 * 60;

type HmacSha256 = hmac::Hmac<sha2::Sha256>;

/// `POST /inbound/mailgun` and `POST /inbound/mailgun/mime`
pub(in crate::http) async fn mailgun<S: Store>(
    State(state): State<Shared<S>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let env = |s: &Settings| s.inbound.webhooks.mailgun_signing_key_env.clone();
    let Some(secret) = secret_of(&state, "mailgun", env) else {
        return not_found();
    };
    // The signature travels in the form itself: the form is split into fields, and nothing of
    // the message is processed until the signature, its age and its token are checked.
    let Some(fields) = form::fields(&headers, &body) else {
        return not_a_form(&headers, &body);
    };
    let field = |name: &str| {
        fields
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| String::from_utf8_lossy(v).into_owned())
    };
    let (Some(timestamp), Some(token), Some(signature)) =
        (field("timestamp"), field("token"), field("signature"))
    else {
        return unauthorized("Mailgun");
    };
    let signed = Signed {
        timestamp: &timestamp,
        token: &token,
        signature: &signature,
    };
    if let Err(response) = verify_signed(&state, &secret, &signed) {
        return response;
    }
    let raw = match field("body-mime") {
        Some(mime) if !mime.trim().is_empty() => mime.into_bytes(),
        _ => mailgun_mime(&field, &fields),
    };
    let given_id = field("Message-Id");
    // The digest covers everything the dedupe key is made of, so a token bound to it is bound
    // to one message and one key, however the form was encoded.
    let digest = message_digest(given_id.as_deref(), &raw);
    if let Err(response) = bind_token(&state, &token, &digest).await {
        return response;
    }
    let key = match given_id.or_else(|| header_message_id(&raw)) {
        Some(id) if !id.trim().is_empty() => format!("mailgun:{}", bare_id(&id)),
        _ => fallback_key("mailgun", &raw),
    };
    accept(&state, raw, "mailgun", key).await
}

/// Mailgun's signature block: the same three fields in its forms (inbound routes) and in
/// its JSON events (`signature.{timestamp,token,signature}`).
pub(in crate::http) struct Signed<'a> {
    pub timestamp: &'a str,
    pub token: &'a str,
    pub signature: &'a str,
}

/// Checks a Mailgun post's signature, for the inbound routes and the event webhook alike: the
/// HMAC with the signing key and the timestamp's age ([`MAILGUN_MAX_AGE_SECS`],
/// [`MAILGUN_MAX_SKEW_SECS`]). Err is the answer (401). Then [`bind_token`].
// The Err is the answer itself, built once on the refusal path; boxing it buys nothing.
#[allow(clippy::result_large_err)]
pub(in crate::http) fn verify_signed<S: Store>(
    state: &Shared<S>,
    secret: &crate::secret::Secret,
    signed: &Signed<'_>,
) -> Result<(), Response> {
    if !mailgun_signature_ok(
        secret.expose(),
        signed.timestamp,
        signed.token,
        signed.signature,
    ) {
        return Err(unauthorized("Mailgun"));
    }
    let Ok(ts) = signed.timestamp.trim().parse::<i64>() else {
        return Err(unauthorized("Mailgun"));
    };
    let age = state.clock.now().timestamp() - ts;
    if !(-MAILGUN_MAX_SKEW_SECS..=MAILGUN_MAX_AGE_SECS).contains(&age) {
        tracing::warn!(
            timestamp = ts,
            age_secs = age,
            "Refused a Mailgun webhook whose timestamp is too old or in the future"
        );
        return Err(unauthorized("Mailgun"));
    }
    Ok(())
}

/// Binds a signed post's token to what it carries (`digest`), in one namespace for the inbound
/// routes and the event webhook ([`mailgun_token`]). Err is the answer: 401 for a token that
/// came with something else, 503 when the store could not be asked (Mailgun retries).
pub(in crate::http) async fn bind_token<S: Store>(
    state: &Shared<S>,
    token: &str,
    digest: &str,
) -> Result<(), Response> {
    match mailgun_token(&state.store, token, digest).await {
        Ok(true) => Ok(()),
        Ok(false) => {
            tracing::warn!("Refused a Mailgun webhook whose token came with another message");
            Err(unauthorized("Mailgun"))
        }
        Err(error) => {
            // Not answered 2xx: Mailgun tries again, with the same token.
            tracing::warn!(%error, "Mailgun webhook token not checked: database error");
            Err((
                StatusCode::SERVICE_UNAVAILABLE,
                Json(json!({"error": "the message could not be stored; try again later"})),
            )
                .into_response())
        }
    }
}

/// A body that is not a form: a Mailgun *event* (JSON, `event-data`) posted to the inbound
/// route gets a clear answer (and a log line) instead of a bare 401.
fn not_a_form(headers: &HeaderMap, body: &[u8]) -> Response {
    let json = headers
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.to_ascii_lowercase().starts_with("application/json"));
    let event = json
        && serde_json::from_slice::<serde_json::Value>(body)
            .is_ok_and(|v| v.get("event-data").is_some());
    if !event {
        return unauthorized("Mailgun");
    }
    tracing::warn!(
        "A Mailgun event webhook posts to /inbound/mailgun (the route for inbound mail): point it at /events/mailgun"
    );
    (
        StatusCode::BAD_REQUEST,
        Json(json!({"error": "this is a Mailgun event (JSON with event-data); /inbound/mailgun takes inbound mail from a Route. Set the event webhook's URL to /events/mailgun"})),
    )
        .into_response()
}

/// Mailgun's `signature`: hex HMAC-SHA256(signing key, timestamp + token), compared in
/// constant time.
pub fn mailgun_signature_ok(key: &str, timestamp: &str, token: &str, signature: &str) -> bool {
    let Ok(mut mac) = HmacSha256::new_from_slice(key.as_bytes()) else {
        return false;
    };
    mac.update(timestamp.as_bytes());
    mac.update(token.as_bytes());
    let expected = crate::hex::encode(&mac.finalize().into_bytes());
    let given = signature.trim().to_ascii_lowercase();
    same_secret(&given, &expected)
}

/// Binds a Mailgun token to one message, in the store (`mailgun:token:{token}` → the
/// message's digest), so the binding survives restarts and holds for every daemon sharing the
/// database. Mailgun's signature covers the timestamp and token, not the message: without this,
/// a captured signature could carry any message for [`MAILGUN_MAX_AGE_SECS`].
///
/// True for a new token (now bound to `digest`) and for a known token with the same digest (a
/// retry: it goes through the normal path, where its dedupe key makes it a no-op if it was
/// stored already); false for a known token with another message (a replayed signature).
///
/// The binding is atomic (`kv_set_if_absent`): of two daemons getting the same new token at
/// the same moment with different messages, only the first-bound message passes. Rows are
/// kept, not pruned: one short row per Mailgun message, next to the inbound row that keeps the
/// whole message, and an expired token is refused by its timestamp anyway.
async fn mailgun_token<S: Store>(store: &S, token: &str, digest: &str) -> Result<bool, StoreError> {
    let key = format!("mailgun:token:{token}");
    let bound = store.kv_set_if_absent(&key, digest).await?;
    Ok(same_secret(&bound, digest))
}

/// The hex SHA-256 of a Mailgun message: its `Message-Id` field (absent, or length-prefixed,
/// so no two pairs collide) and its raw bytes, independent of how the form was encoded.
fn message_digest(message_id: Option<&str>, raw: &[u8]) -> String {
    let mut hasher = sha2::Sha256::new();
    match message_id {
        None => hasher.update([0]),
        Some(id) => {
            hasher.update([1]);
            hasher.update((id.len() as u64).to_be_bytes());
            hasher.update(id.as_bytes());
        }
    }
    hasher.update(raw);
    crate::hex::encode(&hasher.finalize())
}

/// A message rebuilt from Mailgun's parsed fields (`message-headers`, `body-plain`, …).
fn mailgun_mime(field: &dyn Fn(&str) -> Option<String>, _fields: &[(String, Vec<u8>)]) -> Vec<u8> {
    let headers: Vec<(String, String)> = field("message-headers")
        .and_then(|h| serde_json::from_str::<Vec<(String, String)>>(&h).ok())
        .unwrap_or_default();
    let header = |name: &str| header_in(&headers, name);
    let get = |names: &[&str]| names.iter().find_map(|n| field(n)).unwrap_or_default();
    let mut extra = headers.clone();
    for name in ["In-Reply-To", "References"] {
        if header(name).is_none()
            && let Some(v) = field(name)
        {
            extra.push((name.to_string(), v));
        }
    }
    let text = field("body-plain")
        .filter(|t| !t.is_empty())
        .or_else(|| field("stripped-text"))
        .unwrap_or_default();
    synthesize(Synth {
        from: header("From").unwrap_or_else(|| get(&["from", "sender"])),
        to: header("To").unwrap_or_else(|| get(&["To", "recipient"])),
        subject: header("Subject").unwrap_or_else(|| get(&["subject"])),
        message_id: header("Message-Id").unwrap_or_else(|| get(&["Message-Id"])),
        date: header("Date").unwrap_or_else(|| get(&["Date"])),
        extra,
        text,
        html: field("body-html").unwrap_or_default(),
    })
}
#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mailgun_signatures_verify_only_with_the_key() {
        let mut mac = HmacSha256::new_from_slice(b"key-1").unwrap();
        mac.update(b"1700000000abc");
        let sig = crate::hex::encode(&mac.finalize().into_bytes());
        assert!(mailgun_signature_ok("key-1", "1700000000", "abc", &sig));
        assert!(!mailgun_signature_ok("key-2", "1700000000", "abc", &sig));
        assert!(!mailgun_signature_ok("key-1", "1700000001", "abc", &sig));
        assert!(!mailgun_signature_ok("key-1", "1700000000", "abc", ""));
    }

    #[test]
    fn a_message_digest_tells_the_id_field_apart_from_the_raw_bytes() {
        let d = |id: Option<&str>, raw: &[u8]| message_digest(id, raw);
        assert_eq!(d(Some("a@b"), b"x"), d(Some("a@b"), b"x"));
        assert_ne!(d(Some("a@b"), b"x"), d(Some("a@b"), b"y"));
        assert_ne!(d(Some("a@b"), b"x"), d(Some("a@c"), b"x"));
        assert_ne!(d(None, b"x"), d(Some(""), b"x"));
        assert_ne!(d(Some("ab"), b"c"), d(Some("a"), b"bc"));
    }
}
