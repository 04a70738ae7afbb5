//! Sessions and CSRF: the [`Viewer`] and [`Action`] extractors, the cookies.
//!
//! The session cookie holds a random secret; the database keeps its SHA-256. The CSRF token
//! of a form is derived from the same secret (so it needs no storage and dies with the
//! session) and compared in constant time. Before signing in, forms are protected the same
//! way by a short-lived pre-session cookie (double submit): a cross-site POST carries
//! neither SameSite=Strict cookie.

use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::de::DeserializeOwned;
use sha2::Digest as _;
use subtle::ConstantTimeEq as _;

use super::{Ctx, Permission, Role};
use crate::store::Store;

/// The session cookie.
pub(super) const SESSION_COOKIE: &str = "rewarm_console";
/// The pre-session cookie of the sign-in forms.
pub(super) const PRE_COOKIE: &str = "rewarm_console_pre";
/// The form field carrying the CSRF token.
pub(super) const CSRF_FIELD: &str = "csrf";
/// Forms are small: this bounds what an action reads.
const FORM_LIMIT: usize = 64 * 1024;

/// The signed-in person looking at a page. As an extractor: a GET without a live session is
/// redirected to the sign-in page; any other request answers 401.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Viewer {
    /// Lower case.
    pub email: String,
    pub role: Role,
    #[serde(skip)]
    csrf: String,
    #[serde(skip)]
    session_hash: String,
}

impl Viewer {
    pub fn can(&self, permission: Permission) -> bool {
        self.role.can(permission)
    }

    /// Whether a lead with this owner is visible: marketing and admin see every lead, a
    /// sales user only their own (answer 404 for the others, as for a lead that does not
    /// exist).
    pub fn sees_owner(&self, owner: Option<&str>) -> bool {
        self.can(Permission::SeeAll)
            || owner.is_some_and(|o| o.trim().eq_ignore_ascii_case(&self.email))
    }

    /// The hidden field every POST form carries.
    pub fn csrf_field(&self) -> String {
        csrf_input(&self.csrf)
    }

    pub(super) fn session_hash(&self) -> &str {
        &self.session_hash
    }
}

impl<S: Store> FromRequestParts<Ctx<S>> for Viewer {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, ctx: &Ctx<S>) -> Result<Self, Response> {
        let Some(secret) = cookie(&parts.headers, SESSION_COOKIE) else {
            return Err(not_signed_in(&parts.method));
        };
        let session_hash = hash(&secret);
        let session = match ctx.store().console_session(&session_hash, ctx.now()).await {
            Ok(Some(session)) => session,
            Ok(None) => return Err(not_signed_in(&parts.method)),
            Err(e) => return Err(super::layout::store_failure("session", &e)),
        };
        let role = session
            .role
            .as_deref()
            .and_then(Role::parse)
            .or(session.owns_leads.then_some(Role::Sales));
        let Some(role) = role else {
            // Neither invited nor an owner any more.
            return Err(not_signed_in(&parts.method));
        };
        Ok(Viewer {
            email: session.email,
            role,
            csrf: csrf_of(&secret),
            session_hash,
        })
    }
}

/// A form without fields (sign-out, a confirmation).
#[derive(Debug, Default, serde::Deserialize)]
pub struct Empty {}

/// Every console POST: the [`Viewer`], its CSRF token checked (403 otherwise), the action
/// rate limit (429), then the rest of the form parsed as `F` (422 when it does not parse).
pub struct Action<F> {
    pub viewer: Viewer,
    pub form: F,
}

impl<S: Store, F: DeserializeOwned + Send> FromRequest<Ctx<S>> for Action<F> {
    type Rejection = Response;

    async fn from_request(request: Request, ctx: &Ctx<S>) -> Result<Self, Response> {
        let (mut parts, body) = request.into_parts();
        let viewer = Viewer::from_request_parts(&mut parts, ctx).await?;
        let pairs = form_pairs(body).await?;
        let (token, rest) = take_csrf(pairs);
        if !same(&token, &viewer.csrf) {
            return Err(super::layout::message(
                StatusCode::FORBIDDEN,
                "Form expired",
                "This form is out of date (or did not come from the console). Go back, reload the page and try again.",
            ));
        }
        let settings = ctx.settings();
        let per_minute = settings.settings.console.actions_per_minute;
        let key = format!("action:{}", viewer.email);
        if !ctx
            .limits
            .allow(&key, per_minute, chrono::Duration::minutes(1), ctx.now())
        {
            return Err(super::layout::message(
                StatusCode::TOO_MANY_REQUESTS,
                "Slow down",
                "Too many actions in a minute. Wait a moment and try again.",
            ));
        }
        let form = serde_urlencoded::to_string(&rest)
            .ok()
            .and_then(|text| serde_urlencoded::from_str::<F>(&text).ok())
            .ok_or_else(|| {
                super::layout::message(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "Form not understood",
                    "Some fields of this form are missing or wrong. Go back and try again.",
                )
            })?;
        Ok(Action { viewer, form })
    }
}

/// The fields of a urlencoded body, in order.
pub(super) async fn form_pairs(body: axum::body::Body) -> Result<Vec<(String, String)>, Response> {
    let bytes = axum::body::to_bytes(body, FORM_LIMIT)
        .await
        .map_err(|_| StatusCode::PAYLOAD_TOO_LARGE.into_response())?;
    serde_urlencoded::from_bytes(&bytes).map_err(|_| StatusCode::BAD_REQUEST.into_response())
}

/// The CSRF field's value (empty when absent) and the other fields.
pub(super) fn take_csrf(pairs: Vec<(String, String)>) -> (String, Vec<(String, String)>) {
    let mut token = String::new();
    let rest = pairs
        .into_iter()
        .filter_map(|(k, v)| {
            if k == CSRF_FIELD {
                token = v;
                None
            } else {
                Some((k, v))
            }
        })
        .collect();
    (token, rest)
}

/// GETs are sent to the sign-in page; anything else is told it needs a session.
fn not_signed_in(method: &Method) -> Response {
    if method == Method::GET || method == Method::HEAD {
        Redirect::to("/console/signin").into_response()
    } else {
        super::layout::message(
            StatusCode::UNAUTHORIZED,
            "Please sign in",
            "Your session has ended. Sign in again at /console/signin.",
        )
    }
}

/// A new random secret (32 bytes, base64url).
pub(super) fn new_secret() -> String {
    URL_SAFE_NO_PAD.encode(rand::random::<[u8; 32]>())
}

/// SHA-256 of a secret, lower-case hex: what the database keeps.
pub(super) fn hash(secret: &str) -> String {
    crate::hex::encode(&sha2::Sha256::digest(secret.as_bytes()))
}

/// The CSRF token of a session (or pre-session) secret.
pub(super) fn csrf_of(secret: &str) -> String {
    let digest = sha2::Sha256::digest(format!("rewarm-console-csrf\0{secret}").as_bytes());
    URL_SAFE_NO_PAD.encode(&digest[..24])
}

/// Constant-time equality of two tokens (an empty one never matches).
pub(super) fn same(given: &str, expected: &str) -> bool {
    !given.is_empty() && bool::from(given.as_bytes().ct_eq(expected.as_bytes()))
}

pub(super) fn csrf_input(token: &str) -> String {
    format!("<input type=\"hidden\" name=\"{CSRF_FIELD}\" value=\"{token}\">")
}

/// A cookie's value from the request.
pub(super) fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.to_string())
        .filter(|v| !v.is_empty())
}

/// A `Set-Cookie` value: HttpOnly, SameSite=Strict, Path=/console, Secure over https;
/// `max_age` 0 deletes it.
pub(super) fn set_cookie(name: &str, value: &str, max_age: i64, https: bool) -> String {
    let secure = if https { "; Secure" } else { "" };
    format!("{name}={value}; Path=/console; Max-Age={max_age}; HttpOnly; SameSite=Strict{secure}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cookies_are_found_among_others_and_tokens_compare_whole() {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::COOKIE,
            "a=1; rewarm_console=s3cret; b=2".parse().unwrap(),
        );
        assert_eq!(cookie(&headers, SESSION_COOKIE).as_deref(), Some("s3cret"));
        assert_eq!(cookie(&headers, PRE_COOKIE), None);
        let token = csrf_of("s3cret");
        assert!(same(&token, &csrf_of("s3cret")));
        assert!(!same(&token[1..], &token));
        assert!(!same("", ""));
        assert_ne!(hash("s3cret"), "s3cret");
        let set = set_cookie(SESSION_COOKIE, "v", 60, true);
        assert!(
            set.contains("HttpOnly") && set.contains("SameSite=Strict") && set.ends_with("Secure")
        );
    }
}
