//! `GET /metrics`: the process's counters in the Prometheus text format, with the queue
//! depth (deliveries due now and not yet sent) and the daily caps' use read from the store
//! at scrape time.

use axum::extract::State;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};

use super::{Shared, store_failure};
use crate::metrics;
use crate::store::Store;

const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

pub(super) async fn scrape<S: Store>(State(state): State<Shared<S>>) -> Response {
    let now = state.clock.now();
    let limits = state.current.get().settings.limits.clone();
    let caps =
        crate::transport::limits::durable::render_metrics(&state.store, limits.as_ref(), now);
    match futures::future::try_join(state.store.due_now(now), caps).await {
        Ok((due_now, caps)) => (
            [(header::CONTENT_TYPE, HeaderValue::from_static(CONTENT_TYPE))],
            metrics::get().render(due_now)
                + &metrics::Metrics::render_health(crate::health::global())
                + &caps,
        )
            .into_response(),
        Err(e) => (store_failure("metrics", &e), "a database error\n").into_response(),
    }
}
