//! Click tracking: `GET /c/{token}?u=URL`. The token's signature covers the target URL, so
//! only a URL that was signed into one of our emails can be a target (no open redirect);
//! anything else is a 404. A valid click is recorded on the lead's timeline, then redirected.

use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::Shared;
use crate::metrics::{self, Metrics};
use crate::store::Store;
use crate::tokens::TokenKind;

#[derive(Debug, serde::Deserialize)]
pub(super) struct ClickQuery {
    u: Option<String>,
}

/// `GET /c/{token}?u=URL`: 303 to URL if the token was signed for it, else 404.
pub(super) async fn follow<S: Store>(
    State(state): State<Shared<S>>,
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
    // The reader's click matters more than our record of it: a store failure is logged and
    // the redirect still happens.
    match state
        .store
        .record_click(claims.delivery_id, &url, state.clock.now())
        .await
    {
        Ok(true) => {
            Metrics::add(&metrics::get().clicks, 1);
            if let Err(e) = score_click(&state, claims.delivery_id, &url).await {
                tracing::warn!(delivery_id = claims.delivery_id, error = %e, "Click not scored on an error");
            }
        }
        Ok(false) => tracing::debug!(
            delivery_id = claims.delivery_id,
            "Click on a signed link of an unknown delivery"
        ),
        Err(e) => {
            tracing::warn!(delivery_id = claims.delivery_id, error = %e, "Click not recorded on a database error")
        }
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

/// Adds the `click` points of `[scoring]` to the clicker's engagement score; crossing the
/// segment's `rewarm_score` re-warms the lead (and tells sales) like a reply would.
async fn score_click<S: Store>(
    state: &Shared<S>,
    delivery_id: i64,
    url: &str,
) -> anyhow::Result<()> {
    let loaded = state.current.get();
    let points = loaded.settings.scoring.points_for("click");
    if points == 0 {
        return Ok(());
    }
    let Some(target) = state.store.delivery_target(delivery_id).await? else {
        return Ok(());
    };
    let now = state.clock.now();
    let key = format!("{delivery_id}:{}:{url}", now.timestamp_millis());
    crate::inbound::process::engage(
        &state.store,
        &loaded,
        target.lead_id,
        Some(&target.campaign),
        "click",
        points,
        &key,
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
