//! Probes for systemd, load balancers and orchestrators. `/healthz`: the process answers.
//! `/readyz`: it can do its work — the database answers (the configuration is loaded before
//! the server starts, and a reload keeps the old one unless the new one is valid).

use axum::extract::State;
use axum::http::StatusCode;

use super::Shared;
use crate::store::Store;

/// `GET /healthz`: 200 `ok` while the process serves requests.
pub(super) async fn live() -> &'static str {
    "ok\n"
}

/// `GET /readyz`: 200 when the database answers, else 503 with the reason.
pub(super) async fn ready<S: Store>(State(state): State<Shared<S>>) -> (StatusCode, String) {
    match state.store.ping().await {
        Ok(()) => (StatusCode::OK, "ready\n".into()),
        Err(e) => {
            tracing::warn!(error = %e, "Not ready: the database did not answer");
            (StatusCode::SERVICE_UNAVAILABLE, format!("not ready: {e}\n"))
        }
    }
}
