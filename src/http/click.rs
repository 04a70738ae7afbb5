//! Click tracking: `GET /c/{token}?u=URL`. The token's signature covers the target URL, so
//! only a URL that was signed into one of our emails can be a target (no open redirect);
//! anything else is a 404. A valid click is recorded on the lead's timeline, then redirected.

use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::Shared;
use serde_json::json;

use crate::domain::signal::ClickRequest;
use crate::metrics::{self, Metrics};
use crate::store::{Click, Store};
use crate::tokens::TokenKind;

#[derive(Debug, serde::Deserialize)]
pub(super) struct ClickQuery {
    u: Option<String>,
}

/// `GET /c/{token}?u=URL` (and `HEAD`): 303 to URL if the token was signed for it, else 404.
/// Whether the click counts as interest is judged by `domain::signal` (scanners do not).
pub(super) async fn follow<S: Store>(
    State(state): State<Shared<S>>,
    method: Method,
    headers: HeaderMap,
    token: Result<Path<String>, PathRejection>,
    query: Result<Query<ClickQuery>, QueryRejection>,
) -> Response {
    let (Ok(Path(token)), Ok(Query(ClickQuery { u: Some(url) }))) = (token, query) else {
        return not_found();
    };
    let Some(claims) = state.verify(&token, url.as_bytes(), TokenKind::Click) else {
        return not_found();
    };
    // We signed it, so it is ours; still, send browsers nowhere but to the web.
    let Some(location) = web_location(&url) else {
        return not_found();
    };
    let request = ClickRequest::from_parts(
        method.as_str(),
        headers
            .iter()
            .filter_map(|(name, value)| Some((name.as_str(), value.to_str().ok()?))),
    );
    // The reader's click matters more than our record of it: a store failure is logged and
    // the redirect still happens.
    if let Err(e) = record(&state, claims.delivery_id, &url, request).await {
        tracing::warn!(delivery_id = claims.delivery_id, error = %e, "Click not recorded or scored on an error");
    }
    (
        StatusCode::SEE_OTHER,
        [
            (header::LOCATION, location),
            (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
            (
                header::REFERRER_POLICY,
                HeaderValue::from_static("no-referrer"),
            ),
        ],
    )
        .into_response()
}

/// Records the click on the lead's timeline, judged; a counted one adds the `click` points
/// of `[scoring]` to the lead's score (crossing the segment's `rewarm_score` re-warms it and
/// tells sales, like a reply), and a scanner's burst takes back the click it began with.
async fn record<S: Store>(
    state: &Shared<S>,
    delivery_id: i64,
    url: &str,
    request: ClickRequest,
) -> anyhow::Result<()> {
    let loaded = state.current.get();
    let scoring = &loaded.settings.scoring;
    let now = state.clock.now();
    let click = Click {
        delivery_id,
        url,
        request,
        policy: scoring.clicks,
    };
    let Some(recorded) = state.store.record_click(&click, now).await? else {
        tracing::debug!(delivery_id, "Click on a signed link of an unknown delivery");
        return Ok(());
    };
    Metrics::add(&metrics::get().clicks, 1);
    let points = scoring.points_for("click");
    let judgement = recorded.judgement;
    if points == 0 || (!judgement.verdict.counted() && judgement.retract == 0) {
        return Ok(());
    }
    let (points, detail) = if judgement.verdict.counted() {
        (points, json!({"url": url, "delivery_id": delivery_id}))
    } else {
        // The burst's first click was counted before the burst showed: taken back, once.
        let n = i64::try_from(judgement.retract).unwrap_or(i64::MAX);
        (
            points.saturating_mul(-n),
            json!({"url": url, "delivery_id": delivery_id, "retracted": "burst"}),
        )
    };
    crate::inbound::process::engage(
        &state.store,
        &loaded,
        recorded.lead_id,
        Some(&recorded.campaign),
        "click",
        points,
        detail,
        &format!("{delivery_id}:{}:{url}", now.timestamp_millis()),
        now,
    )
    .await?;
    Ok(())
}

/// `url` as a `Location` value, if it is an http(s) URL a header can carry.
fn web_location(url: &str) -> Option<HeaderValue> {
    let lower = url.get(..8).unwrap_or(url).to_ascii_lowercase();
    if !(lower.starts_with("http://") || lower.starts_with("https://")) {
        return None;
    }
    if url.chars().any(|c| c.is_control() || c.is_whitespace()) {
        return None;
    }
    HeaderValue::from_str(url).ok()
}

fn not_found() -> Response {
    (StatusCode::NOT_FOUND, "not found\n").into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_web_urls_are_redirect_targets() {
        assert!(web_location("https://acme.example/pricing?a=1#x").is_some());
        assert!(web_location("HTTP://acme.example/").is_some());
        for bad in [
            "javascript:alert(1)",
            "//evil.example",
            "ftp://x.example",
            "https://a.example/\r\nSet-Cookie: x",
            "data:text/html,x",
            "http",
        ] {
            assert!(web_location(bad).is_none(), "{bad}");
        }
    }
}
