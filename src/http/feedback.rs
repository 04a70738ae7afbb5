//! Sales' one-click feedback (`notify::feedback` makes the links). `GET /feedback/{token}`
//! shows the lead and the action with a button (and, for *out of scope*, a reason and a
//! re-check choice); it changes nothing, because link scanners and previews follow GETs.
//! `POST /feedback/{token}` acts — the same rules as unsubscribe: no login, no cookie, no
//! redirect, a short page back. A forged token, one for another lead or another owner, is
//! answered 404; an expired one 410. Every POST writes a `feedback` event {action, by,
//! result} (visible in `leads show`) and, when a webhook is configured, a `lead.feedback`
//! webhook; the change itself writes its own event (`working`, `won`, `recycled`,
//! `out_of_scope`).

use axum::Form;
use axum::extract::rejection::{FormRejection, PathRejection};
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use chrono::{DateTime, Utc};

use super::unsubscribe::{escape, html, retry_later};
use super::{Shared, store_failure};
use crate::domain::lead::Lead;
use crate::notify::feedback::{self, Feedback, FeedbackAction, Rejected};
use crate::outbound::actions::{self, OutOfScopeForm, Outcome};
use crate::store::Store;

/// Forms are a reason and a choice: this bounds what is read.
pub(super) const BODY_LIMIT: usize = 16 * 1024;

/// The out-of-scope form's fields (any other POST body is ignored).
pub(super) type FeedbackForm = OutOfScopeForm;

/// `GET /feedback/{token}`: the confirmation page.
pub(super) async fn page<S: Store>(
    State(state): State<Shared<S>>,
    token: Result<Path<String>, PathRejection>,
) -> Response {
    let now = state.clock.now();
    let (lead, fb, _) = match resolve(&state, token, now).await {
        Ok(found) => found,
        Err(response) => return response,
    };
    let mut form = format!(
        "<p><strong>{label}</strong> for {who}?</p>\n<form method=\"post\">\n",
        label = escape(&fb.action.label()),
        who = escape(&who(&lead)),
    );
    if fb.action == FeedbackAction::OutOfScope {
        form.push_str(
            "<p><label>Why? <input name=\"reason\" maxlength=\"200\" required></label></p>\n\
             <p><label>Look again in <select name=\"recheck\">\
             <option value=\"3\">3 months</option><option value=\"6\">6 months</option>\
             <option value=\"12\" selected>12 months</option><option value=\"never\">never</option>\
             </select></label></p>\n",
        );
    }
    form.push_str("<button type=\"submit\">Confirm</button></form>");
    html(StatusCode::OK, "Your answer", &form)
}

/// `POST /feedback/{token}`: applies the action, writes the `feedback` event.
pub(super) async fn act<S: Store>(
    State(state): State<Shared<S>>,
    token: Result<Path<String>, PathRejection>,
    form: Result<Form<FeedbackForm>, FormRejection>,
) -> Response {
    let now = state.clock.now();
    let (lead, fb, by) = match resolve(&state, token, now).await {
        Ok(found) => found,
        Err(response) => return response,
    };
    let form = form.map(|Form(f)| f).unwrap_or_default();
    let loaded = state.current.get();
    let settings = &loaded.settings;
    let outcome =
        match actions::feedback(&state.store, settings, &lead, fb.action, &form, &by, now).await {
            Ok(outcome) => outcome,
            Err(e) => return retry_later(store_failure("feedback", &e)),
        };
    let (status, text) = match &outcome {
        Outcome::Done(what) => (
            StatusCode::OK,
            format!("Thank you: {} — {what}.", fb.action.label()),
        ),
        Outcome::Already(state) => (
            StatusCode::OK,
            format!("Already recorded: the lead is {state}."),
        ),
        Outcome::Refused(why) => (StatusCode::CONFLICT, format!("Not recorded: {why}.")),
    };
    html(
        status,
        "Your answer",
        &format!("<p>{}</p><p>{}</p>", escape(&who(&lead)), escape(&text)),
    )
}

/// The lead a valid token names, the verified feedback and the address it was bound to; or
/// the page to answer instead (404 invalid, 410 expired).
async fn resolve<S: Store>(
    state: &Shared<S>,
    token: Result<Path<String>, PathRejection>,
    now: DateTime<Utc>,
) -> Result<(Lead, Feedback, String), Response> {
    let Ok(Path(token)) = token else {
        return Err(not_valid());
    };
    let loaded = state.current.get();
    let lead_id = feedback::lead_of(&state.keys, &token)
        .or_else(|| feedback::lead_of(&loaded.keys, &token))
        .ok_or_else(not_valid)?;
    let lead = match state.store.leads_by_ids(&[lead_id]).await {
        Ok(mut leads) => leads.pop().ok_or_else(not_valid)?,
        Err(e) => return Err(retry_later(store_failure("feedback", &e))),
    };
    let owners = feedback::recipients(&lead, loaded.settings.notify.fallback_email.as_deref());
    for owner in &owners {
        match feedback::verify(
            &[&state.keys, &loaded.keys],
            &token,
            std::slice::from_ref(owner),
            now,
        ) {
            Ok(fb) if fb.lead_id == lead.id => return Ok((lead, fb, owner.clone())),
            Err(Rejected::Expired) => return Err(expired()),
            _ => {}
        }
    }
    Err(not_valid())
}

pub(crate) fn who(lead: &Lead) -> String {
    let name = [lead.first_name.as_deref(), lead.last_name.as_deref()]
        .into_iter()
        .flatten()
        .collect::<Vec<_>>()
        .join(" ");
    let company = lead
        .company
        .as_deref()
        .map(|c| format!(", {c}"))
        .unwrap_or_default();
    if name.is_empty() {
        format!("{}{company}", lead.email)
    } else {
        format!("{name} <{}>{company}", lead.email)
    }
}

fn not_valid() -> Response {
    html(
        StatusCode::NOT_FOUND,
        "Link not valid",
        "<p>This link is not valid (or not for you). Please use the link from the email itself.</p>",
    )
}

fn expired() -> Response {
    html(
        StatusCode::GONE,
        "Link expired",
        "<p>This link has expired. Please use a newer email, or ask an operator (<code>rewarm leads …</code>).</p>",
    )
}
