//! Signing in and out, and inviting.
//!
//! - `GET /console/signin`: a form asking for an address. `POST` sends a link when the
//!   address may sign in (invited, or a lead owner) and answers the same either way; it is
//!   rate-limited per address and in total (`console.signin_per_hour`).
//! - `GET /console/signin/{token}`: a "Sign in" button — it changes nothing, because link
//!   scanners and previews follow GETs. `POST` uses the link (once, before it expires),
//!   opens a session and sets its cookie.
//! - `POST /console/signout` ends the session.
//!
//! Every sign-in, sign-out and invitation is logged in `console_events` with who did it.

use axum::Router;
use axum::extract::{Path, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use chrono::{DateTime, Utc};
use serde_json::json;

use super::layout::{message, see_other, store_failure};
use super::session::{
    self, Action, Empty, PRE_COOKIE, SESSION_COOKIE, cookie, csrf_of, new_secret, set_cookie,
};
use super::{Ctx, Role};
use crate::app::Loaded;
use crate::domain::email::EmailAddress;
use crate::store::{SignInUse, Store, StoreError};

pub(super) const TEMPLATES: &[(&str, &str)] =
    &[("signin.html", include_str!("templates/signin.html"))];

/// How long the pre-session cookie of the sign-in forms lives.
const PRE_COOKIE_SECONDS: i64 = 3600;

pub(super) fn routes<S: Store>() -> Router<Ctx<S>> {
    Router::new()
        .route("/console/signin", get(form::<S>).post(ask::<S>))
        .route(
            "/console/signin/{token}",
            get(landing::<S>).post(use_link::<S>),
        )
        .route("/console/signout", post(sign_out::<S>))
}

/// Invites `email` with `role` (or changes their role) and emails them a sign-in link;
/// logged as `invited` by `by`. What `rewarm console invite` runs.
pub async fn invite<S: Store>(
    store: &S,
    loaded: &Loaded,
    email: &EmailAddress,
    role: Role,
    by: &str,
    now: DateTime<Utc>,
) -> Result<DateTime<Utc>, StoreError> {
    let email = email.as_str().to_ascii_lowercase();
    store
        .put_console_user(&email, role.as_str(), by, now)
        .await?;
    let detail = json!({"email": email, "role": role.as_str()});
    store.log_console_event(by, "invited", &detail, now).await?;
    super::mail::send_link(store, loaded, &email, now).await
}

/// Whether `email` (lower case) may sign in: invited, or the owner of some lead.
async fn may_sign_in<S: Store>(store: &S, email: &str) -> Result<bool, StoreError> {
    Ok(store.console_user(email).await?.is_some() || store.owns_leads(email).await?)
}

async fn form<S: Store>(State(ctx): State<Ctx<S>>, headers: HeaderMap) -> Response {
    with_pre_cookie(
        &headers,
        |csrf| {
            let mut context = tera::Context::new();
            context.insert("title", "Sign in");
            context.insert("csrf_field", &session::csrf_input(csrf));
            context.insert("token", &Option::<String>::None);
            super::layout::render("signin.html", &context)
        },
        &ctx,
    )
}

/// `POST /console/signin`: sends a link when the address may sign in; the same answer
/// whatever the address.
async fn ask<S: Store>(State(ctx): State<Ctx<S>>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let pairs = match session::form_pairs(body).await {
        Ok(pairs) => pairs,
        Err(response) => return response,
    };
    let (token, rest) = session::take_csrf(pairs);
    if !pre_csrf_ok(&parts.headers, &token) {
        return expired_form();
    }
    let typed = rest
        .iter()
        .find(|(k, _)| k == "email")
        .map(|(_, v)| v.trim().to_string())
        .unwrap_or_default();
    let Ok(address) = EmailAddress::parse(&typed) else {
        return message(
            StatusCode::UNPROCESSABLE_ENTITY,
            "Sign in",
            "That is not an email address. Go back and type yours.",
        );
    };
    let email = address.as_str().to_ascii_lowercase();
    let now = ctx.now();
    let loaded = ctx.settings();
    let per_hour = loaded.settings.console.signin_per_hour;
    let hour = chrono::Duration::hours(1);
    if !ctx
        .limits
        .allow(&format!("signin:{email}"), per_hour, hour, now)
        || !ctx
            .limits
            .allow("signin:*", per_hour.saturating_mul(10), hour, now)
    {
        tracing::info!("Console sign-in links asked for too often; refused for now");
        return message(
            StatusCode::TOO_MANY_REQUESTS,
            "Too many sign-in links",
            "Too many links were asked for. Wait a while, then use the newest email you got.",
        );
    }
    let sent = match may_sign_in(ctx.store(), &email).await {
        Ok(true) => match super::mail::send_link(ctx.store(), &loaded, &email, now).await {
            Ok(_) => true,
            Err(e) => return store_failure("console sign-in", &e),
        },
        Ok(false) => false,
        Err(e) => return store_failure("console sign-in", &e),
    };
    if sent {
        ctx.log(&email, "signin_link_sent", json!({})).await;
    }
    message(
        StatusCode::OK,
        "Check your email",
        "If this address may use the console, a sign-in link is on its way to it. The link works once and for a short time.",
    )
}

/// `GET /console/signin/{token}`: the button that uses the link.
async fn landing<S: Store>(
    State(ctx): State<Ctx<S>>,
    Path(token): Path<String>,
    headers: HeaderMap,
) -> Response {
    with_pre_cookie(
        &headers,
        |csrf| {
            let mut context = tera::Context::new();
            context.insert("title", "Sign in");
            context.insert("csrf_field", &session::csrf_input(csrf));
            context.insert("token", &Some(token.clone()));
            super::layout::render("signin.html", &context)
        },
        &ctx,
    )
}

/// `POST /console/signin/{token}`: uses the link and opens a session.
async fn use_link<S: Store>(
    State(ctx): State<Ctx<S>>,
    Path(token): Path<String>,
    request: Request,
) -> Response {
    let (parts, body) = request.into_parts();
    let pairs = match session::form_pairs(body).await {
        Ok(pairs) => pairs,
        Err(response) => return response,
    };
    let (csrf, _) = session::take_csrf(pairs);
    if !pre_csrf_ok(&parts.headers, &csrf) {
        return expired_form();
    }
    let now = ctx.now();
    let email = match ctx.store().use_signin(&session::hash(&token), now).await {
        Ok(SignInUse::SignedIn { email }) => email,
        Ok(SignInUse::Used) => {
            return message(
                StatusCode::GONE,
                "Link already used",
                "Each sign-in link works once. Ask for a new one at /console/signin.",
            );
        }
        Ok(SignInUse::Expired) => {
            return message(
                StatusCode::GONE,
                "Link expired",
                "This sign-in link has expired. Ask for a new one at /console/signin.",
            );
        }
        Ok(SignInUse::Unknown) => {
            return message(
                StatusCode::NOT_FOUND,
                "Link not valid",
                "This sign-in link is not valid. Use the link from the email itself, or ask for a new one.",
            );
        }
        Err(e) => return store_failure("console sign-in", &e),
    };
    // Invited or an owner when the link was sent; still so now?
    match may_sign_in(ctx.store(), &email).await {
        Ok(true) => {}
        Ok(false) => return super::layout::not_found(),
        Err(e) => return store_failure("console sign-in", &e),
    }
    let loaded = ctx.settings();
    let lifetime = loaded.settings.console.session_lifetime;
    let secret = match super::open_session(ctx.store(), &email, lifetime, now).await {
        Ok(secret) => secret,
        Err(e) => return store_failure("console sign-in", &e),
    };
    ctx.log(&email, "signed_in", json!({})).await;
    tracing::info!(email = %email, "Console sign-in");
    let https = https(&loaded);
    let mut response = see_other("/console/");
    let headers = response.headers_mut();
    for value in [
        set_cookie(SESSION_COOKIE, &secret, lifetime.as_secs() as i64, https),
        set_cookie(PRE_COOKIE, "", 0, https),
    ] {
        if let Ok(value) = HeaderValue::from_str(&value) {
            headers.append(header::SET_COOKIE, value);
        }
    }
    response
}

/// `POST /console/signout`.
async fn sign_out<S: Store>(State(ctx): State<Ctx<S>>, action: Action<Empty>) -> Response {
    let viewer = action.viewer;
    if let Err(e) = ctx.store().end_session(viewer.session_hash()).await {
        return store_failure("console sign-out", &e);
    }
    ctx.log(&viewer.email, "signed_out", json!({})).await;
    let mut response = see_other("/console/signin");
    if let Ok(value) =
        HeaderValue::from_str(&set_cookie(SESSION_COOKIE, "", 0, https(&ctx.settings())))
    {
        response.headers_mut().append(header::SET_COOKIE, value);
    }
    response
}

fn https(loaded: &Loaded) -> bool {
    loaded.settings.http.public_url.starts_with("https://")
}

/// Renders with the CSRF token of the browser's pre-session cookie, setting one first when
/// the browser has none.
fn with_pre_cookie<S: Store>(
    headers: &HeaderMap,
    render: impl FnOnce(&str) -> Response,
    ctx: &Ctx<S>,
) -> Response {
    let (secret, fresh) = match cookie(headers, PRE_COOKIE) {
        Some(secret) => (secret, false),
        None => (new_secret(), true),
    };
    let mut response = render(&csrf_of(&secret));
    if fresh
        && let Ok(value) = HeaderValue::from_str(&set_cookie(
            PRE_COOKIE,
            &secret,
            PRE_COOKIE_SECONDS,
            https(&ctx.settings()),
        ))
    {
        response.headers_mut().append(header::SET_COOKIE, value);
    }
    response
}

/// Whether a sign-in form's token matches the browser's pre-session cookie.
fn pre_csrf_ok(headers: &HeaderMap, token: &str) -> bool {
    cookie(headers, PRE_COOKIE).is_some_and(|secret| session::same(token, &csrf_of(&secret)))
}

fn expired_form() -> Response {
    message(
        StatusCode::FORBIDDEN,
        "Form expired",
        "This form is out of date (or did not come from the console). Open the page again and retry.",
    )
    .into_response()
}
