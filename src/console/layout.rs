//! The page frame: Tera templates embedded in the binary (autoescaped), the shared CSS, the
//! navigation by role, and the small answers every page gives (a message, 403, 303, a
//! database failure).

use std::sync::OnceLock;

use axum::Router;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use serde::Serialize;

use super::{Ctx, NAV, Viewer};
use crate::store::{Store, StoreError};

pub(super) const TEMPLATES: &[(&str, &str)] = &[
    ("layout.html", include_str!("templates/layout.html")),
    ("macros.html", include_str!("templates/macros.html")),
    ("message.html", include_str!("templates/message.html")),
];

const CSS: &str = include_str!("static/console.css");

pub(super) fn routes<S: Store>() -> Router<Ctx<S>> {
    Router::new()
        .route("/console/static/console.css", get(css))
        .route("/console", get(|| async { Redirect::to("/console/") }))
}

async fn css() -> Response {
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/css; charset=utf-8"),
        )],
        CSS,
    )
        .into_response()
}

/// Every template of every page, parsed once.
fn tera() -> &'static Result<tera::Tera, String> {
    static TERA: OnceLock<Result<tera::Tera, String>> = OnceLock::new();
    TERA.get_or_init(|| {
        let mut tera = tera::Tera::default();
        tera.add_raw_templates(super::TEMPLATES.iter().flat_map(|t| t.iter().copied()))
            .map_err(|e| format!("{e:?}"))?;
        Ok(tera)
    })
}

/// One entry of the navigation, as templates see it.
#[derive(Debug, Serialize)]
struct NavEntry {
    label: &'static str,
    href: &'static str,
    current: bool,
}

/// The context of a page: `title`, `nav` (the entries `viewer` may open, `current` on the
/// one named `nav_key`), `viewer` and `csrf_field`. Add the page's own values with
/// `insert`, then [`render`].
pub fn page(viewer: &Viewer, title: &str, nav_key: &str) -> tera::Context {
    let nav: Vec<NavEntry> = NAV
        .iter()
        .filter(|n| n.needs.is_none_or(|p| viewer.can(p)))
        .map(|n| NavEntry {
            label: n.label,
            href: n.href,
            current: n.key == nav_key,
        })
        .collect();
    let mut context = tera::Context::new();
    context.insert("title", title);
    context.insert("nav", &nav);
    context.insert("viewer", viewer);
    context.insert("csrf_field", &viewer.csrf_field());
    context
}

/// Renders `template` with `context` as a 200 page.
pub fn render(template: &str, context: &tera::Context) -> Response {
    render_status(StatusCode::OK, template, context)
}

pub fn render_status(status: StatusCode, template: &str, context: &tera::Context) -> Response {
    let rendered = match tera() {
        Ok(tera) => tera.render(template, context).map_err(|e| {
            let mut chain = e.to_string();
            let mut source = std::error::Error::source(&e);
            while let Some(cause) = source {
                chain.push_str(&format!(": {cause}"));
                source = cause.source();
            }
            chain
        }),
        Err(e) => Err(e.clone()),
    };
    match rendered {
        Ok(html) => (
            status,
            [(
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/html; charset=utf-8"),
            )],
            html,
        )
            .into_response(),
        Err(error) => {
            tracing::warn!(template, %error, "A console page could not be rendered");
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                "the page could not be drawn\n",
            )
                .into_response()
        }
    }
}

/// A page with a title and one paragraph (no navigation): errors, confirmations, the
/// sign-in answers.
pub fn message(status: StatusCode, title: &str, text: &str) -> Response {
    let mut context = tera::Context::new();
    context.insert("title", title);
    context.insert("text", text);
    render_status(status, "message.html", &context)
}

/// 403 for a signed-in person whose role does not allow this.
pub fn forbidden(viewer: &Viewer) -> Response {
    message(
        StatusCode::FORBIDDEN,
        "Not for your role",
        &format!(
            "Signed in as {} ({}): this needs another role. Ask an admin.",
            viewer.email, viewer.role
        ),
    )
}

/// 404, the same for what does not exist and what the viewer may not see.
pub fn not_found() -> Response {
    message(
        StatusCode::NOT_FOUND,
        "Not found",
        "There is nothing here (or not for you).",
    )
}

/// The answer to a POST that worked: see the page at `to` (303).
pub fn see_other(to: &str) -> Response {
    Redirect::to(to).into_response()
}

/// Logs a store failure once and answers 503 (the database did not answer: try again) or
/// 500.
pub fn store_failure(what: &'static str, error: &StoreError) -> Response {
    tracing::warn!(request = what, error = %error, "Console request failed on a database error");
    let status = match error {
        StoreError::Database(_) => StatusCode::SERVICE_UNAVAILABLE,
        _ => StatusCode::INTERNAL_SERVER_ERROR,
    };
    message(
        status,
        "Please try again",
        "The database did not answer. Try again in a moment.",
    )
}
