//! Inbound mail from email providers, each behind its own secret:
//!
//! - `POST /inbound/postmark`: Postmark's inbound JSON, basic auth (the password is checked).
//! - `POST /inbound/mailgun` and `POST /inbound/mailgun/mime` (the URL Mailgun posts raw MIME
//!   to): Mailgun's form (urlencoded or multipart), HMAC-SHA256 of `timestamp + token` with the
//!   signing key, timestamps up to [`MAILGUN_MAX_AGE_SECS`] old (Mailgun's retry horizon), each
//!   token bound to one message in the store (see [`mailgun_token`]).
//! - `POST /inbound/sendgrid`: SendGrid Inbound Parse in raw mode (multipart, `email` field),
//!   basic auth (the password is checked).
//! - `POST /inbound/raw`: a raw RFC 5322 message, `Authorization: Bearer TOKEN`.
//!
//! The secret is checked before anything of the message is parsed: a bad or missing one is
//! 401 and nothing changes. An endpoint whose secret is not configured does not exist (404).
//! Every message goes through [`crate::inbound::process::process`] (the same path as IMAP and
//! `inbound replay`) and the answer is 200 only once that wrote it; a provider's retry of the
//! same message carries the same dedupe key, so it is answered 200 and changes nothing.

use axum::Json;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use hmac::{KeyInit, Mac};
use serde_json::{Value, json};
use sha2::Digest as _;
use subtle::ConstantTimeEq as _;

use super::Shared;
use crate::inbound::process::{InboundMessage, process};
use crate::secret::Secret;
use crate::store::{Store, StoreError};

/// The largest body an inbound endpoint reads (providers post up to ~25 MB with attachments).
pub(super) const BODY_LIMIT: usize = 40 * 1024 * 1024;

/// How old a Mailgun timestamp may be. Mailgun retries a POST it did not get a 200 (or 406)
/// for during 8 hours (after 5 or 10 min, …, 2 h, 4 h), apparently with the first attempt's
/// timestamp, token and signature; a shorter window would refuse those retries and lose the
/// message. 9 hours covers the 8 with an hour to spare (queueing on Mailgun's side, skew).
/// Replays inside the window are harmless: a token is bound to one message ([`mailgun_token`]).
const MAILGUN_MAX_AGE_SECS: i64 = 9 * 60 * 60;

/// How far ahead of our clock a Mailgun timestamp may be (clock skew).
const MAILGUN_MAX_SKEW_SECS: i64 = 5 * 60;

type HmacSha256 = hmac::Hmac<sha2::Sha256>;

/// `POST /inbound/postmark`
pub(super) async fn postmark<S: Store>(
    State(state): State<Shared<S>>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let env = state
        .current
        .get()
        .settings
        .inbound
        .webhooks
        .postmark_token_env
        .clone();
    let Some(secret) = configured(env.as_deref(), "postmark") else {
        return not_found();
    };
    if !basic_password_ok(&headers, &secret) {
        return unauthorized("Basic realm=\"rewarm\"");
    }
    let body = match read(body).await {
        Ok(body) => body,
        Err(response) => return response,
    };
    let payload: Value = match serde_json::from_slice(&body) {
        Ok(v @ Value::Object(_)) => v,
        _ => return bad_request("the body is not a Postmark inbound JSON object"),
    };
    let raw = postmark_mime(&payload);
    let key = match payload.get("MessageID").and_then(Value::as_str) {
        Some(id) if !id.trim().is_empty() => format!("postmark:{}", id.trim()),
        _ => fallback_key("postmark", &raw),
    };
    accept(&state, raw, "postmark", key).await
}

/// `POST /inbound/mailgun` and `POST /inbound/mailgun/mime`
pub(super) async fn mailgun<S: Store>(
    State(state): State<Shared<S>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let env = state
        .current
        .get()
        .settings
        .inbound
        .webhooks
        .mailgun_signing_key_env
        .clone();
    let Some(secret) = configured(env.as_deref(), "mailgun") else {
        return not_found();
    };
    // The signature travels in the form itself: the form is split into fields, and nothing of
    // the message is processed until the signature, its age and its token are checked.
    let Some(fields) = form_fields(&headers, &body) else {
        return unauthorized("Mailgun");
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
    if !mailgun_signature_ok(secret.expose(), &timestamp, &token, &signature) {
        return unauthorized("Mailgun");
    }
    let Ok(ts) = timestamp.trim().parse::<i64>() else {
        return unauthorized("Mailgun");
    };
    let age = state.clock.now().timestamp() - ts;
    if !(-MAILGUN_MAX_SKEW_SECS..=MAILGUN_MAX_AGE_SECS).contains(&age) {
        tracing::warn!(
            timestamp = ts,
            age_secs = age,
            "Refused a Mailgun webhook whose timestamp is too old or in the future"
        );
        return unauthorized("Mailgun");
    }
    let raw = match field("body-mime") {
        Some(mime) if !mime.trim().is_empty() => mime.into_bytes(),
        _ => mailgun_mime(&field, &fields),
    };
    let given_id = field("Message-Id");
    // The digest covers everything the dedupe key is made of, so a token bound to it is bound
    // to one message and one key, however the form was encoded.
    let digest = message_digest(given_id.as_deref(), &raw);
    match mailgun_token(&state.store, &token, &digest).await {
        Ok(true) => {}
        Ok(false) => {
            tracing::warn!("Refused a Mailgun webhook whose token came with another message");
            return unauthorized("Mailgun");
        }
        Err(error) => {
            // Not answered 2xx: Mailgun tries again, with the same token.
            tracing::warn!(%error, "Mailgun webhook token not checked: database error");
            return (
                StatusCode::SERVICE_UNAVAILABLE,
                Json(json!({"error": "the message could not be stored; try again later"})),
            )
                .into_response();
        }
    }
    let key = match given_id.or_else(|| header_message_id(&raw)) {
        Some(id) if !id.trim().is_empty() => format!("mailgun:{}", bare_id(&id)),
        _ => fallback_key("mailgun", &raw),
    };
    accept(&state, raw, "mailgun", key).await
}

/// `POST /inbound/sendgrid`
pub(super) async fn sendgrid<S: Store>(
    State(state): State<Shared<S>>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let env = state
        .current
        .get()
        .settings
        .inbound
        .webhooks
        .sendgrid_token_env
        .clone();
    let Some(secret) = configured(env.as_deref(), "sendgrid") else {
        return not_found();
    };
    if !basic_password_ok(&headers, &secret) {
        return unauthorized("Basic realm=\"rewarm\"");
    }
    let body = match read(body).await {
        Ok(body) => body,
        Err(response) => return response,
    };
    let Some(fields) = form_fields(&headers, &body) else {
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
    let key = match header_message_id(&raw) {
        Some(id) => format!("sendgrid:{}", bare_id(&id)),
        None => fallback_key("sendgrid", &raw),
    };
    accept(&state, raw, "sendgrid", key).await
}

/// `POST /inbound/raw`
pub(super) async fn raw<S: Store>(
    State(state): State<Shared<S>>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let env = state
        .current
        .get()
        .settings
        .inbound
        .webhooks
        .raw_token_env
        .clone();
    let Some(secret) = configured(env.as_deref(), "raw") else {
        return not_found();
    };
    let given = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            let (scheme, token) = v.trim().split_once(' ')?;
            scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
        });
    if !given.is_some_and(|token| same_secret(token, secret.expose())) {
        return unauthorized("Bearer");
    }
    let body = match read(body).await {
        Ok(body) => body,
        Err(response) => return response,
    };
    if body.is_empty() {
        return bad_request("the body is empty; send the raw RFC 5322 message");
    }
    let raw = body.to_vec();
    let key = match header_message_id(&raw) {
        Some(id) => format!("raw:{}", bare_id(&id)),
        None => fallback_key("raw", &raw),
    };
    accept(&state, raw, "raw", key).await
}

/// Reads a body once its request is authenticated (so strangers cannot make us buffer one).
async fn read(body: Body) -> Result<Bytes, Response> {
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
    // `process` runs on a blocking thread with its own `block_on`: its future is not `Send`
    // (an iterator borrowed across an await in inbound matching), which axum requires.
    // TODO: await it directly once `inbound::matching::find` collects before awaiting.
    let store = state.store.clone();
    let handle = tokio::runtime::Handle::current();
    let outcome = tokio::task::spawn_blocking(move || {
        handle.block_on(process(&store, &loaded, &message, now, false))
    })
    .await
    .unwrap_or_else(|e| Err(anyhow::anyhow!("inbound processing panicked: {e}")));
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

fn not_found() -> Response {
    (StatusCode::NOT_FOUND, Json(json!({"error": "not found"}))).into_response()
}

fn bad_request(reason: &str) -> Response {
    (StatusCode::BAD_REQUEST, Json(json!({"error": reason}))).into_response()
}

fn unauthorized(challenge: &'static str) -> Response {
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

/// True when `Authorization: Basic` carries `secret` as its password (any user name).
fn basic_password_ok(headers: &HeaderMap, secret: &Secret) -> bool {
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
/// the same moment with different messages, only the first-bound message passes. Rows are kept, not pruned: one short row per Mailgun message, next to the inbound row
/// that keeps the whole message, and an expired token is refused by its timestamp anyway.
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

// ── Form bodies ────────────────────────────────────────────────────────────────────────

/// The fields of an `application/x-www-form-urlencoded` or `multipart/form-data` body, in
/// order; None when the content type is neither or the body does not parse.
fn form_fields(headers: &HeaderMap, body: &[u8]) -> Option<Vec<(String, Vec<u8>)>> {
    let content_type = headers.get(header::CONTENT_TYPE)?.to_str().ok()?;
    let lower = content_type.to_ascii_lowercase();
    if lower.starts_with("application/x-www-form-urlencoded") {
        Some(urlencoded(body))
    } else if lower.starts_with("multipart/form-data") {
        let boundary = content_type.split(';').find_map(|p| {
            let (k, v) = p.trim().split_once('=')?;
            k.trim()
                .eq_ignore_ascii_case("boundary")
                .then(|| v.trim().trim_matches('"').to_string())
        })?;
        multipart(body, &boundary)
    } else {
        None
    }
}

fn urlencoded(body: &[u8]) -> Vec<(String, Vec<u8>)> {
    body.split(|b| *b == b'&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let (k, v) = match pair.iter().position(|b| *b == b'=') {
                Some(i) => (&pair[..i], &pair[i + 1..]),
                None => (pair, &[][..]),
            };
            (
                String::from_utf8_lossy(&percent_decode(k)).into_owned(),
                percent_decode(v),
            )
        })
        .collect()
}

fn percent_decode(s: &[u8]) -> Vec<u8> {
    let digit = |b: u8| (b as char).to_digit(16).map(|d| d as u8);
    let mut out = Vec::with_capacity(s.len());
    let mut i = 0;
    while i < s.len() {
        match s[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < s.len() => match (digit(s[i + 1]), digit(s[i + 2])) {
                (Some(h), Some(l)) => {
                    out.push(h * 16 + l);
                    i += 2;
                }
                _ => out.push(b'%'),
            },
            b => out.push(b),
        }
        i += 1;
    }
    out
}

/// Splits a multipart/form-data body into (name, data); files are kept as data too.
fn multipart(body: &[u8], boundary: &str) -> Option<Vec<(String, Vec<u8>)>> {
    let delimiter = format!("--{boundary}");
    let delimiter = delimiter.as_bytes();
    let mut fields = Vec::new();
    let mut rest = &body[find(body, delimiter)? + delimiter.len()..];
    loop {
        if rest.starts_with(b"--") {
            return Some(fields);
        }
        // Skip the line end after the delimiter.
        let after = rest.iter().position(|b| *b == b'\n')? + 1;
        rest = &rest[after..];
        let next = find(rest, delimiter)?;
        let mut part = &rest[..next];
        // The CRLF before the delimiter belongs to the delimiter.
        if part.ends_with(b"\r\n") {
            part = &part[..part.len() - 2];
        } else if part.ends_with(b"\n") {
            part = &part[..part.len() - 1];
        }
        let (head, data) = match find(part, b"\r\n\r\n") {
            Some(i) => (&part[..i], &part[i + 4..]),
            None => {
                let i = find(part, b"\n\n")?;
                (&part[..i], &part[i + 2..])
            }
        };
        let head = String::from_utf8_lossy(head);
        let name = head.lines().find_map(|line| {
            let (k, v) = line.split_once(':')?;
            if !k.trim().eq_ignore_ascii_case("content-disposition") {
                return None;
            }
            v.split(';').find_map(|p| {
                let (k, v) = p.trim().split_once('=')?;
                (k.trim() == "name").then(|| v.trim().trim_matches('"').to_string())
            })
        });
        if let Some(name) = name {
            fields.push((name, data.to_vec()));
        }
        rest = &rest[next + delimiter.len()..];
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    if needle.is_empty() || haystack.len() < needle.len() {
        return None;
    }
    haystack.windows(needle.len()).position(|w| w == needle)
}

// ── Messages rebuilt from provider fields ──────────────────────────────────────────────

/// Headers we write ourselves when rebuilding a message (the provider's copies are skipped).
const OWN_HEADERS: [&str; 8] = [
    "from",
    "to",
    "subject",
    "message-id",
    "date",
    "content-type",
    "content-transfer-encoding",
    "mime-version",
];

/// Postmark's `RawEmail` when present, else a message rebuilt from its fields.
fn postmark_mime(p: &Value) -> Vec<u8> {
    let s = |k: &str| p.get(k).and_then(Value::as_str).unwrap_or("").to_string();
    if let Some(raw) = p
        .get("RawEmail")
        .and_then(Value::as_str)
        .filter(|r| !r.trim().is_empty())
    {
        return raw.as_bytes().to_vec();
    }
    let headers: Vec<(String, String)> = p
        .get("Headers")
        .and_then(Value::as_array)
        .map(|all| {
            all.iter()
                .filter_map(|h| {
                    Some((
                        h.get("Name")?.as_str()?.to_string(),
                        h.get("Value")?.as_str()?.to_string(),
                    ))
                })
                .collect()
        })
        .unwrap_or_default();
    let header = |name: &str| {
        headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.clone())
    };
    let from = match (s("FromName"), s("From")) {
        (name, from) if !name.is_empty() && !from.contains('<') => format!("\"{name}\" <{from}>"),
        (_, from) => from,
    };
    let message_id = header("Message-ID")
        .unwrap_or_else(|| format!("<{}@postmark.inbound>", bare_id(&s("MessageID"))));
    let to = if s("To").is_empty() {
        s("OriginalRecipient")
    } else {
        s("To")
    };
    synthesize(Synth {
        from,
        to,
        subject: s("Subject"),
        message_id,
        date: header("Date").unwrap_or_else(|| s("Date")),
        extra: headers,
        text: s("TextBody"),
        html: s("HtmlBody"),
    })
}

/// A message rebuilt from Mailgun's parsed fields (`message-headers`, `body-plain`, …).
fn mailgun_mime(field: &dyn Fn(&str) -> Option<String>, _fields: &[(String, Vec<u8>)]) -> Vec<u8> {
    let headers: Vec<(String, String)> = field("message-headers")
        .and_then(|h| serde_json::from_str::<Vec<(String, String)>>(&h).ok())
        .unwrap_or_default();
    let header = |name: &str| {
        headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.clone())
    };
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

struct Synth {
    from: String,
    to: String,
    subject: String,
    message_id: String,
    date: String,
    extra: Vec<(String, String)>,
    text: String,
    html: String,
}

/// Writes an RFC 5322 message (UTF-8, 8bit) from parsed parts.
fn synthesize(m: Synth) -> Vec<u8> {
    // A header value must stay on its line: CR and LF become spaces.
    let clean = |v: &str| v.replace(['\r', '\n'], " ");
    let mut out = String::new();
    let mut put = |name: &str, value: &str| {
        if !value.trim().is_empty() {
            out.push_str(&format!("{}: {}\r\n", clean(name), clean(value)));
        }
    };
    put("From", &m.from);
    put("To", &m.to);
    put("Subject", &m.subject);
    let id = bare_id(&m.message_id);
    if !id.is_empty() {
        put("Message-ID", &format!("<{id}>"));
    }
    put("Date", &m.date);
    for (name, value) in &m.extra {
        let valid = !name.is_empty() && name.bytes().all(|b| b.is_ascii_graphic() && b != b':');
        if valid && !OWN_HEADERS.contains(&name.to_ascii_lowercase().as_str()) {
            put(name, value);
        }
    }
    put("MIME-Version", "1.0");
    let crlf = |body: &str| body.replace("\r\n", "\n").replace('\n', "\r\n");
    if !m.html.trim().is_empty() && !m.text.trim().is_empty() {
        let boundary = format!("=_rewarm_{}", &crate::hex::sha256(m.text.as_bytes())[..16]);
        put(
            "Content-Type",
            &format!("multipart/alternative; boundary=\"{boundary}\""),
        );
        out.push_str("\r\n");
        for (kind, body) in [("plain", &m.text), ("html", &m.html)] {
            out.push_str(&format!(
                "--{boundary}\r\nContent-Type: text/{kind}; charset=utf-8\r\n\
                 Content-Transfer-Encoding: 8bit\r\n\r\n{}\r\n",
                crlf(body)
            ));
        }
        out.push_str(&format!("--{boundary}--\r\n"));
    } else {
        let (kind, body) = if m.text.trim().is_empty() && !m.html.trim().is_empty() {
            ("html", &m.html)
        } else {
            ("plain", &m.text)
        };
        put("Content-Type", &format!("text/{kind}; charset=utf-8"));
        put("Content-Transfer-Encoding", "8bit");
        out.push_str("\r\n");
        out.push_str(&crlf(body));
        out.push_str("\r\n");
    }
    out.into_bytes()
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

    #[test]
    fn multipart_and_urlencoded_forms_split_into_fields() {
        let body = b"--XX\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\none\r\n--XX\r\n\
Content-Disposition: form-data; name=\"email\"\r\n\r\nFrom: x@y.z\r\n\r\nhi\r\n--XX--\r\n";
        let fields = multipart(body, "XX").unwrap();
        assert_eq!(fields[0], ("a".into(), b"one".to_vec()));
        assert_eq!(
            fields[1],
            ("email".into(), b"From: x@y.z\r\n\r\nhi".to_vec())
        );
        let fields = urlencoded(b"a=1+2&b=%3Cx%40y%3E&c");
        assert_eq!(fields[0].1, b"1 2");
        assert_eq!(fields[1].1, b"<x@y>");
        assert_eq!(fields[2].1, b"");
    }

    #[test]
    fn a_rebuilt_postmark_message_keeps_threading_headers() {
        let p = json!({
            "From": "sam@initech.example", "FromName": "Sam", "To": "reply@acme.example",
            "Subject": "Re: hello", "MessageID": "abc-123",
            "Headers": [{"Name": "In-Reply-To", "Value": "<d1@acme.example>"},
                        {"Name": "Message-ID", "Value": "<orig@initech.example>"}],
            "TextBody": "Yes, call me.\nSam", "HtmlBody": ""
        });
        let raw = String::from_utf8(postmark_mime(&p)).unwrap();
        assert!(raw.contains("In-Reply-To: <d1@acme.example>\r\n"), "{raw}");
        assert!(
            raw.contains("Message-ID: <orig@initech.example>\r\n"),
            "{raw}"
        );
        let parsed = mail_parser::MessageParser::new()
            .parse(raw.as_bytes())
            .unwrap();
        assert_eq!(
            parsed.body_text(0).unwrap().trim_end(),
            "Yes, call me.\r\nSam"
        );
    }
}
