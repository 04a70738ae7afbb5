//! The web console: server-drawn pages for marketing and sales under `/console/` on the
//! daemon's HTTP listener, off unless `[console] enabled = true` (then every `/console/…`
//! URL answers 404). docs/console.md is the user's side; this is the page author's.
//!
//! # Writing a page
//!
//! A page is one file here with a `routes()` and its templates; `mod.rs` merges them
//! ([`pages`] and [`TEMPLATES`]): add your module to both lists, nothing else.
//!
//! ```ignore
//! use super::{Ctx, Viewer, Action, layout, Role};
//!
//! pub(super) const TEMPLATES: &[(&str, &str)] =
//!     &[("leads.html", include_str!("templates/leads.html"))];
//!
//! pub(super) fn routes<S: Store>() -> Router<Ctx<S>> {
//!     Router::new()
//!         .route("/console/leads", get(list::<S>))
//!         .route("/console/leads/{id}/won", post(won::<S>))
//! }
//!
//! async fn list<S: Store>(State(ctx): State<Ctx<S>>, viewer: Viewer) -> Response {
//!     let mut page = layout::page(&viewer, "Leads", "leads");   // title, nav entry
//!     page.insert("rows", &rows);                                // anything Serialize
//!     layout::render("leads.html", &page)                        // 200, or a logged 500
//! }
//!
//! // A POST: `Action<F>` checks the session, the CSRF token and the action rate limit
//! // before the handler runs, and parses the rest of the form as `F`.
//! async fn won<S: Store>(State(ctx): State<Ctx<S>>, Path(id): Path<i64>,
//!                        Action { viewer, form }: Action<WonForm>) -> Response {
//!     if !viewer.can(Permission::ChangeLeads) { return layout::forbidden(&viewer); }
//!     // … change the lead, writing an event whose detail has "by": viewer.email …
//!     layout::see_other("/console/leads/…")       // POST → 303 → GET
//! }
//! ```
//!
//! - **[`Viewer`]** `{ email, role }` is an extractor: a GET without a live session is
//!   redirected (303) to the sign-in page, anything else answers 401. [`Viewer::can`] takes
//!   a [`Permission`]; [`Viewer::sees_owner`] says whether a lead of that owner is visible
//!   (a sales user sees only their own: answer 404 for another's, never 403).
//! - **[`Action<F>`]** is the extractor of every POST: session + CSRF + rate limit, then the
//!   form (`F: DeserializeOwned`; the `csrf` field is removed first). Failing CSRF is 403.
//! - **Templates** (Tera, autoescaped, embedded with `include_str!`): a page template starts
//!   with `{% extends "layout.html" %}` and fills `{% block main %}`; `layout::page` gives
//!   the context `title`, `nav`, `viewer` (`email`, `role`) and `csrf_field` (print it with
//!   `{{ csrf_field | safe }}` inside every `<form method="post">`). `macros.html` has
//!   `confirm(action, label, question)`: the confirm-then-POST pattern (a disclosure that
//!   opens a small form with the question and a Confirm button; works without JavaScript,
//!   by keyboard). One CSS file (`static/console.css`, served at `/console/static/…`) —
//!   no inline styles (the Content-Security-Policy forbids them), no scripts.
//! - **Charts**: [`chart::bars`] and [`chart::lines`] return inline SVG (a `<figure>` with
//!   a title, axis labels and a table fallback for screen readers); print with `| safe`.
//! - **Numbers and rules come from the rest of rewarm**, never from a second implementation:
//!   `report`'s store queries, `outbound::explain`, `forecast`, `preview`, `plan`.
//! - **Every action is an event** with who did it: on the lead's timeline
//!   (`"by": viewer.email`) or, when it belongs to no lead, `ctx.log(&viewer, kind, detail)`
//!   (`console_events`).
//! - Times: `ctx.now()` (the injected clock), never the wall clock.
//!
//! # Security
//! Sign-in is by emailed link only ([`signin`]): single use, expiring, sent through the
//! notification outbox like owner emails, stored as a SHA-256 hash. The session cookie is
//! `HttpOnly; SameSite=Strict; Path=/console` (plus `Secure` when `http.public_url` is
//! https) and is stored hashed; the CSRF token is derived from it. Every response carries
//! `Cache-Control: no-store`, `Referrer-Policy: no-referrer` and a CSP without scripts.

pub mod cache;
mod campaigns;
pub mod chart;
mod figures;
mod inbound;
pub mod layout;
mod lead;
mod leads;
mod limits;
pub mod mail;
mod overview;
mod queue;
mod role;
mod session;
pub mod signin;
mod suppression;
mod users;

pub use role::{Permission, Role};
pub use session::{Action, Empty, Viewer};

use std::sync::Arc;

use axum::Router;
use axum::extract::Request;
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::IntoResponse;
use chrono::{DateTime, Utc};
use serde_json::Value;

use crate::http::HttpState;
use crate::store::Store;

/// What console handlers share: the HTTP side's state (store, configuration, keys, clock)
/// and the console's own (rate limits, cached figures).
pub struct Console<S: Store> {
    pub http: Arc<HttpState<S>>,
    limits: limits::RateLimits,
    /// The overview's report figures (refreshed at most every minute).
    figures: cache::Cached<figures::Figures>,
    /// The 30-day forecast (refreshed at most every ten minutes).
    forecast: cache::Cached<Vec<(chrono::NaiveDate, i64)>>,
}

/// The state as handlers hold it.
pub type Ctx<S> = Arc<Console<S>>;

impl<S: Store> Console<S> {
    pub fn store(&self) -> &S {
        &self.http.store
    }

    /// Now, by the injected clock.
    pub fn now(&self) -> DateTime<Utc> {
        self.http.clock.now()
    }

    pub fn settings(&self) -> Arc<crate::app::Loaded> {
        self.http.current.get()
    }

    /// Logs a console action that belongs to no lead (`console_events`); a failure is
    /// logged, never shown.
    pub async fn log(&self, actor: &str, kind: &str, detail: Value) {
        if let Err(e) = self
            .store()
            .log_console_event(actor, kind, &detail, self.now())
            .await
        {
            tracing::warn!(error = %e, kind, "Could not log a console action");
        }
    }
}

/// Opens a session for `email` at `now` (what a used sign-in link does) and returns the
/// cookie's secret: the value of the `rewarm_console` cookie. For benchmarks and tests
/// that need a signed-in client without reading email.
pub async fn open_session<S: Store>(
    store: &S,
    email: &str,
    lifetime: std::time::Duration,
    now: DateTime<Utc>,
) -> Result<String, crate::store::StoreError> {
    let secret = session::new_secret();
    let lifetime = chrono::Duration::from_std(lifetime).unwrap_or(chrono::Duration::hours(12));
    store
        .create_session(
            &session::hash(&secret),
            &email.to_ascii_lowercase(),
            now + lifetime,
            now,
        )
        .await?;
    Ok(secret)
}

/// Every page's templates, embedded in the binary: (name, source).
pub(crate) const TEMPLATES: &[&[(&str, &str)]] = &[
    layout::TEMPLATES,
    signin::TEMPLATES,
    overview::TEMPLATES,
    campaigns::TEMPLATES,
    users::TEMPLATES,
    leads::TEMPLATES,
    lead::TEMPLATES,
    queue::TEMPLATES,
    inbound::TEMPLATES,
    suppression::TEMPLATES,
];

/// Every page's routes.
fn pages<S: Store>() -> Router<Ctx<S>> {
    Router::new()
        .merge(layout::routes())
        .merge(signin::routes())
        .merge(overview::routes())
        .merge(campaigns::routes())
        .merge(users::routes())
        .merge(leads::routes())
        .merge(lead::routes())
        .merge(queue::routes())
        .merge(inbound::routes())
        .merge(suppression::routes())
}

/// One entry of the navigation.
pub(crate) struct Nav {
    /// What a page passes to `layout::page` to be marked current.
    pub key: &'static str,
    pub label: &'static str,
    pub href: &'static str,
    /// Shown only to roles with this permission (None: everyone signed in).
    pub needs: Option<Permission>,
}

/// The navigation, in order. A sales user landing on `/console/` is sent to
/// `/console/queue` (their sales queue).
pub(crate) const NAV: &[Nav] = &[
    Nav {
        key: "overview",
        label: "Overview",
        href: "/console/",
        needs: Some(Permission::SeeAll),
    },
    Nav {
        key: "campaigns",
        label: "Campaigns",
        href: "/console/campaigns",
        needs: Some(Permission::SeeAll),
    },
    Nav {
        key: "leads",
        label: "Leads",
        href: "/console/leads",
        needs: None,
    },
    Nav {
        key: "queue",
        label: "Sales queue",
        href: "/console/queue",
        needs: None,
    },
    Nav {
        key: "inbound",
        label: "Inbound",
        href: "/console/inbound",
        needs: Some(Permission::SeeAll),
    },
    Nav {
        key: "suppression",
        label: "Suppression",
        href: "/console/suppression",
        needs: Some(Permission::SeeAll),
    },
    Nav {
        key: "users",
        label: "Users",
        href: "/console/users",
        needs: Some(Permission::Invite),
    },
];

/// The console's routes, answering 404 while `[console] enabled` is false (read per
/// request, so a reload turns it on or off).
pub fn router<S: Store>(http: Arc<HttpState<S>>) -> Router {
    let current = http.current.clone();
    let ctx = Arc::new(Console {
        http,
        limits: limits::RateLimits::default(),
        figures: cache::Cached::new(std::time::Duration::from_secs(60)),
        forecast: cache::Cached::new(std::time::Duration::from_secs(600)),
    });
    pages::<S>()
        .with_state(ctx)
        .layer(axum::middleware::from_fn(
            move |request: Request, next: Next| {
                let enabled = current.get().settings.console.enabled;
                async move {
                    if !enabled {
                        return off(request.uri().path());
                    }
                    let mut response = next.run(request).await;
                    secure_headers(response.headers_mut());
                    response
                }
            },
        ))
}

/// The answer of a console URL while the console is off: 404, except the action links of
/// owner emails sent while it was on, which go on to their tokened page.
fn off(path: &str) -> axum::response::Response {
    match path.strip_prefix("/console/feedback/") {
        Some(token) if !token.is_empty() && !token.contains('/') => {
            axum::response::Redirect::temporary(&format!("/feedback/{token}")).into_response()
        }
        _ => StatusCode::NOT_FOUND.into_response(),
    }
}

/// No caching, no referrer (sign-in links carry a token in the path), no scripts, no
/// framing, nothing from elsewhere.
fn secure_headers(headers: &mut axum::http::HeaderMap) {
    let set = [
        (header::CACHE_CONTROL, "no-store"),
        (header::REFERRER_POLICY, "no-referrer"),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::X_FRAME_OPTIONS, "DENY"),
        (
            header::CONTENT_SECURITY_POLICY,
            "default-src 'none'; style-src 'self'; img-src 'self' data:; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
        ),
    ];
    for (name, value) in set {
        headers.insert(name, HeaderValue::from_static(value));
    }
}
