//! Probes for systemd, load balancers and orchestrators. `/healthz`: the process answers.
//! `/readyz`: it can do its work — the database answers and no part of the daemon reports a
//! fault that stops it (the shared [`health`](crate::health) state: a storage fault answers
//! 503). A transport paused by its circuit breaker keeps `/readyz` at 200 — unsubscribes,
//! webhooks and the API still work — and is named on a `transport:` line of the body (and by
//! `rewarm_transport_paused` in `/metrics`).

use std::fmt::Write as _;

use axum::extract::State;
use axum::http::StatusCode;

use super::Shared;
use crate::health::{Component, Fault, Health};
use crate::store::Store;

/// `GET /healthz`: 200 `ok` while the process serves requests.
pub(super) async fn live() -> &'static str {
    "ok\n"
}

/// `GET /readyz`: 200 `ready` when the database answers and no fault blocks the work, else
/// 503 `not ready: …` with the reason; one more line per current fault.
pub(super) async fn ready<S: Store>(State(state): State<Shared<S>>) -> (StatusCode, String) {
    let health = crate::health::global();
    match state.store.ping().await {
        Ok(()) if health.ready() => (StatusCode::OK, format!("ready\n{}", fault_lines(health))),
        Ok(()) => (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("not ready\n{}", fault_lines(health)),
        ),
        Err(e) => {
            tracing::warn!(error = %e, "Not ready: the database did not answer");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                format!("not ready: {e}\n{}", fault_lines(health)),
            )
        }
    }
}

/// `transport: paused since … (auth): AUTH: 535 …; next probe at …`, one line per fault.
fn fault_lines(health: &Health) -> String {
    let mut out = String::new();
    for (component, fault) in health.faults() {
        let _ = writeln!(
            out,
            "{}: {}",
            component.as_str(),
            describe(component, &fault)
        );
    }
    out
}

fn describe(component: Component, f: &Fault) -> String {
    let what = match component {
        Component::Transport => "paused",
        Component::Storage => "failing",
    };
    let next = f
        .next_try
        .map(|t| format!("; next try at {}", t.to_rfc3339()))
        .unwrap_or_default();
    format!(
        "{what} since {} ({}): {}{next}",
        f.since.to_rfc3339(),
        f.reason,
        f.detail
    )
}
