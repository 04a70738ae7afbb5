//! The daemon's HTTP side (axum): one-click unsubscribe, click tracking, health probes,
//! Prometheus metrics and the leads API. One file per job:
//!
//! - [`unsubscribe`]: `GET /u/{token}` (a confirmation page, changes nothing) and
//!   `POST /u/{token}` (RFC 8058 one-click: suppresses the address, answers 200, never a redirect).
//! - [`click`]: `GET /c/{token}?u=URL` records the click and redirects, only to a URL we signed.
//! - [`feedback`]: `GET /feedback/{token}` (a confirmation page, changes nothing) and `POST`
//!   (sales' one-click answer: working, won, not now, out of scope).
//! - [`health`]: `/healthz` (the process answers) and `/readyz` (the database answers).
//! - [`metrics`]: `/metrics`, the Prometheus text exposition.
//! - [`api`]: `POST /api/leads` and `GET /api/leads/{email}`, behind a bearer token.
//! - [`inbound`]: `POST /inbound/{postmark,mailgun,mailgun/mime,sendgrid,raw}`, provider webhooks
//!   for replies.
//! - [`events`]: `POST /events/{postmark,sendgrid,mailgun}`, the providers' event webhooks
//!   (bounces, complaints, unsubscribes, deliveries of what we sent through them).
//!
//! - `/console/…`: the web console (`crate::console`), 404 unless `[console] enabled`.
//!
//! - `server`: connections are served under limits (a connection cap that leaves file
//!   descriptors for sending, header-read/idle and request timeouts), so a flood of clients
//!   cannot take the daemon down.
//!
//! Nothing here trusts a request: a token is verified before the store is asked anything
//! (a feedback token is signed over its lead's owner, so its sealed lead is read first, then
//! the token verified against that owner before anything is done), and a forged token gets
//! the same 404 as an unknown one. Handlers never panic; a failure is
//! logged once, at `warn`, where it is answered.

mod api;
mod click;
pub mod events;
mod feedback;
mod health;
mod inbound;
mod metrics;
mod server;
mod unsubscribe;

pub use server::{ServerLimits, fd_budget};

use std::sync::Arc;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::StatusCode;
use axum::routing::{get, post};
use tokio_util::sync::CancellationToken;

use crate::app::Current;
use crate::domain::clock::Clock;
use crate::secret::Secret;
use crate::store::{Store, StoreError};
use crate::tokens::{Claims, TokenKeys, TokenKind};

/// What the handlers share.
pub struct HttpState<S: Store> {
    pub store: S,
    /// The configuration and templates, swapped whole on reload.
    pub current: Current,
    /// Verify unsubscribe and click tokens, together with the keys of the current
    /// configuration (so links signed after a reload that changed the keys verify too).
    pub keys: TokenKeys,
    /// The bearer token of `/api/…`; without one the API answers 404.
    pub api_token: Option<Secret>,
    pub clock: Clock,
}

impl<S: Store> HttpState<S> {
    /// The claims of a `kind` token signed over `context` by one of our keys, else None.
    fn verify(&self, token: &str, context: &[u8], kind: TokenKind) -> Option<Claims> {
        let claims = self
            .keys
            .verify_with(token, context)
            .or_else(|| self.current.get().keys.verify_with(token, context))?;
        (claims.kind == kind).then_some(claims)
    }
}

/// The state as handlers hold it: shared, never cloned field by field.
type Shared<S> = Arc<HttpState<S>>;

/// Every route, ready to serve.
pub fn router<S: Store>(state: HttpState<S>) -> Router {
    let state = Arc::new(state);
    Router::new()
        .route(
            "/u/{token}",
            get(unsubscribe::page::<S>)
                .post(unsubscribe::confirm::<S>)
                .layer(DefaultBodyLimit::max(unsubscribe::BODY_LIMIT)),
        )
        .route("/c/{token}", get(click::follow::<S>))
        .route(
            "/feedback/{token}",
            get(feedback::page::<S>)
                .post(feedback::act::<S>)
                .layer(DefaultBodyLimit::max(feedback::BODY_LIMIT)),
        )
        .route("/healthz", get(health::live))
        .route("/readyz", get(health::ready::<S>))
        .route("/metrics", get(metrics::scrape::<S>))
        .route(
            "/api/leads",
            post(api::upsert_leads::<S>).layer(DefaultBodyLimit::max(api::BODY_LIMIT)),
        )
        .route("/api/leads/{email}", get(api::show_lead::<S>))
        .route(
            "/inbound/postmark",
            post(inbound::postmark::<S>).layer(DefaultBodyLimit::max(inbound::BODY_LIMIT)),
        )
        .route(
            "/inbound/mailgun",
            post(inbound::mailgun::<S>).layer(DefaultBodyLimit::max(inbound::BODY_LIMIT)),
        )
        // Mailgun posts the raw message (`body-mime`) only to URLs ending in `mime`.
        .route(
            "/inbound/mailgun/mime",
            post(inbound::mailgun::<S>).layer(DefaultBodyLimit::max(inbound::BODY_LIMIT)),
        )
        .route(
            "/inbound/sendgrid",
            post(inbound::sendgrid::<S>).layer(DefaultBodyLimit::max(inbound::BODY_LIMIT)),
        )
        .route(
            "/inbound/raw",
            post(inbound::raw::<S>).layer(DefaultBodyLimit::max(inbound::BODY_LIMIT)),
        )
        .route(
            "/events/postmark",
            post(events::postmark::<S>).layer(DefaultBodyLimit::max(events::BODY_LIMIT)),
        )
        .route(
            "/events/sendgrid",
            post(events::sendgrid::<S>).layer(DefaultBodyLimit::max(events::BODY_LIMIT)),
        )
        .route(
            "/events/mailgun",
            post(events::mailgun::<S>).layer(DefaultBodyLimit::max(events::BODY_LIMIT)),
        )
        .with_state(Arc::clone(&state))
        .merge(crate::console::router(state))
}

/// Serves `router(state)` on `listener` until `shutdown` is cancelled, then stops accepting
/// and lets requests in flight finish. The limits come from `[http]`; the connection cap is
/// lowered to what the file descriptor limit leaves after the reserve for sending.
pub async fn serve<S: Store>(
    listener: tokio::net::TcpListener,
    state: HttpState<S>,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    let address = listener.local_addr()?;
    let limits = limits(&state.current.get().settings);
    tracing::info!(
        %address,
        max_connections = limits.max_connections,
        header_timeout = ?limits.header_timeout,
        request_timeout = ?limits.request_timeout,
        "HTTP server listening"
    );
    let app = server::with_request_timeout(router(state), limits.request_timeout);
    server::run(listener, app, limits, shutdown).await;
    tracing::info!(%address, "HTTP server stopped");
    Ok(())
}

/// `[http]`'s limits, the connection cap within the file descriptor budget.
fn limits(settings: &crate::config::Settings) -> ServerLimits {
    let http = &settings.http;
    let budget = crate::fds::limit().soft.map_or(usize::MAX, |soft| {
        fd_budget(soft, crate::fds::open_now(), crate::fds::reserve(settings))
    });
    if budget < http.max_connections {
        tracing::warn!(
            configured = http.max_connections,
            allowed = budget,
            "http.max_connections is more than the file descriptor limit leaves after the reserve for sending; capping it (raise LimitNOFILE)"
        );
    }
    ServerLimits {
        max_connections: http.max_connections.min(budget),
        header_timeout: http.header_timeout,
        request_timeout: http.request_timeout,
    }
}

/// Logs a store failure once and gives the status to answer: 503 when the database did not
/// answer (the client's next try may work), 500 for anything else.
fn store_failure(what: &'static str, error: &StoreError) -> StatusCode {
    tracing::warn!(request = what, error = %error, "Request failed on a database error");
    match error {
        StoreError::Database(_) => StatusCode::SERVICE_UNAVAILABLE,
        _ => StatusCode::INTERNAL_SERVER_ERROR,
    }
}
