//! One-click unsubscribe (RFC 8058). `GET /u/{token}` shows who would be unsubscribed and a
//! button; it changes nothing, because link scanners and previews follow GETs. `POST
//! /u/{token}` — what a mailbox provider sends for `List-Unsubscribe-Post:
//! List-Unsubscribe=One-Click`, or the page's button — puts the address on the suppression
//! list and answers 200 with a short page: never a redirect, no cookie, no login. Posting
//! again answers the same and changes nothing more.

use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, PathRejection};
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::{Shared, store_failure};
use crate::domain::email::EmailAddress;
use crate::metrics::{self, Metrics};
use crate::store::{DeliveryTarget, Store, Suppression, SuppressionReason};
use crate::tokens::TokenKind;

/// The body is not needed (any body or none unsubscribes); this only bounds what is read.
pub(super) const BODY_LIMIT: usize = 64 * 1024;

/// `GET /u/{token}`: the confirmation page.
pub(super) async fn page<S: Store>(
    State(state): State<Shared<S>>,
    token: Result<Path<String>, PathRejection>,
) -> Response {
    let target = match target(&state, token).await {
        Ok(target) => target,
        Err(response) => return response,
    };
    match state.store.suppression_for(&target.email).await {
        Ok(Some(_)) => return unsubscribed(&state, &target),
        Ok(None) => {}
        Err(e) => return retry_later(store_failure("unsubscribe page", &e)),
    }
    let form = format!(
        "<p>Stop all emails from {sender} to <strong>{address}</strong>?</p>\n\
         <form method=\"post\"><button type=\"submit\">Unsubscribe</button></form>",
        sender = escape(&sender_name(&state)),
        address = escape(&mask(&target.email)),
    );
    html(StatusCode::OK, "Unsubscribe", &form)
}

/// `POST /u/{token}`: suppresses the delivery's address.
pub(super) async fn confirm<S: Store>(
    State(state): State<Shared<S>>,
    token: Result<Path<String>, PathRejection>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let target = match target(&state, token).await {
        Ok(target) => target,
        Err(response) => return response,
    };
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok());
    // A body too large to read is still a request to unsubscribe.
    let body = body.unwrap_or_default();
    let via = if is_one_click(content_type, &body) {
        "one-click"
    } else {
        "page"
    };
    let now = state.clock.now();
    let entry = Suppression {
        address: target.email.to_string(),
        reason: SuppressionReason::Unsubscribed,
        evidence: json!({
            "delivery_id": target.delivery_id,
            "campaign": target.campaign,
            "step": target.step,
            "via": via,
        }),
        created_at: now,
    };
    match state.store.suppress(&[entry], now).await {
        Ok(0) => {}
        Ok(added) => {
            let metrics = metrics::get();
            Metrics::add(&metrics.unsubscribes, 1);
            Metrics::add(&metrics.suppressed, added);
            tracing::info!(delivery_id = target.delivery_id, campaign = %target.campaign, via, "Address unsubscribed");
        }
        Err(e) => return retry_later(store_failure("unsubscribe", &e)),
    }
    unsubscribed(&state, &target)
}

/// The answer to a done unsubscribe (also shown when the address is already listed).
fn unsubscribed<S: Store>(state: &Shared<S>, target: &DeliveryTarget) -> Response {
    let done = format!(
        "<p><strong>{address}</strong> is unsubscribed: {sender} will not email it again.</p>",
        sender = escape(&sender_name(state)),
        address = escape(&mask(&target.email)),
    );
    html(StatusCode::OK, "Unsubscribed", &done)
}

/// The delivery a valid unsubscribe token names, or the response to give instead.
async fn target<S: Store>(
    state: &Shared<S>,
    token: Result<Path<String>, PathRejection>,
) -> Result<DeliveryTarget, Response> {
    let claims = token
        .ok()
        .and_then(|Path(token)| state.verify(&token, b"", TokenKind::Unsubscribe))
        .ok_or_else(not_found)?;
    match state.store.delivery_target(claims.delivery_id).await {
        Ok(Some(target)) => Ok(target),
        Ok(None) => Err(not_found()),
        Err(e) => Err(retry_later(store_failure("unsubscribe", &e))),
    }
}

/// RFC 8058's `List-Unsubscribe=One-Click`, form-urlencoded or as a multipart field.
fn is_one_click(content_type: Option<&str>, body: &[u8]) -> bool {
    let Ok(body) = std::str::from_utf8(body) else {
        return false;
    };
    let content_type = content_type.unwrap_or("").to_ascii_lowercase();
    if content_type.starts_with("multipart/form-data") {
        return body.contains("name=\"List-Unsubscribe\"") && body.contains("One-Click");
    }
    body.split('&')
        .any(|pair| pair.trim() == "List-Unsubscribe=One-Click")
}

/// `jordan.reyes@acme.example` → `j***s@acme.example`: enough for its owner to recognise,
/// not enough for someone who found the link to learn the address.
fn mask(email: &EmailAddress) -> String {
    let address = email.as_str();
    let (local, domain) = address.rsplit_once('@').unwrap_or((address, ""));
    let mut chars = local.chars();
    let first = chars.next().map(String::from).unwrap_or_default();
    let last = if local.chars().count() > 2 {
        chars.next_back().map(String::from).unwrap_or_default()
    } else {
        String::new()
    };
    format!("{first}***{last}@{domain}")
}

/// Who the emails come from, as the reader knows them (the From display name).
fn sender_name<S: Store>(state: &Shared<S>) -> String {
    let from = state.current.get().settings.sender.from.clone();
    from.name.unwrap_or_else(|| from.email.to_string())
}

fn not_found() -> Response {
    html(
        StatusCode::NOT_FOUND,
        "Link not valid",
        "<p>This unsubscribe link is not valid. Please use the link from the email itself.</p>",
    )
}

pub(super) fn retry_later(status: StatusCode) -> Response {
    html(
        status,
        "Please try again",
        "<p>We could not process this just now. Please try again in a few minutes.</p>",
    )
}

/// A small page: no scripts, no outside resources, not cached, not indexed, no referrer.
pub(super) fn html(status: StatusCode, title: &str, body: &str) -> Response {
    let page = format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <meta name=\"robots\" content=\"noindex\"><title>{title}</title></head>\n\
         <body style=\"font-family: sans-serif; max-width: 32em; margin: 3em auto; padding: 0 1em\">\n\
         <h1>{title}</h1>\n{body}\n</body></html>\n"
    );
    (
        status,
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/html; charset=utf-8"),
            ),
            (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
            (
                header::REFERRER_POLICY,
                HeaderValue::from_static("no-referrer"),
            ),
        ],
        page,
    )
        .into_response()
}

pub(super) fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_are_masked_but_recognisable() {
        let mask_of = |s: &str| mask(&EmailAddress::parse(s).unwrap());
        assert_eq!(mask_of("jordan.reyes@acme.example"), "j***s@acme.example");
        assert_eq!(mask_of("al@acme.example"), "a***@acme.example");
        assert_eq!(mask_of("a@acme.example"), "a***@acme.example");
    }

    #[test]
    fn one_click_is_recognised_in_both_encodings() {
        assert!(is_one_click(
            Some("application/x-www-form-urlencoded"),
            b"List-Unsubscribe=One-Click"
        ));
        let multipart = b"--b\r\nContent-Disposition: form-data; name=\"List-Unsubscribe\"\r\n\r\nOne-Click\r\n--b--\r\n";
        assert!(is_one_click(
            Some("multipart/form-data; boundary=b"),
            multipart
        ));
        assert!(!is_one_click(None, b""));
        assert!(!is_one_click(
            Some("application/x-www-form-urlencoded"),
            b"confirm=yes"
        ));
    }

    #[test]
    fn page_text_is_escaped() {
        assert_eq!(
            escape("<a href=\"x\">'&'</a>"),
            "&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;"
        );
    }
}
