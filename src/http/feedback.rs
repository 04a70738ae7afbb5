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
use serde_json::json;

use super::unsubscribe::{escape, html, retry_later};
use super::{Shared, store_failure};
use crate::domain::cadence::Span;
use crate::domain::lead::Lead;
use crate::domain::lifecycle::Transition;
use crate::notify::feedback::{self, Feedback, FeedbackAction, Rejected};
use crate::outbound::recycle::{Recycled, bring_back};
use crate::store::{LifecycleChange, Store};

/// Forms are a reason and a choice: this bounds what is read.
pub(super) const BODY_LIMIT: usize = 16 * 1024;
/// Out-of-scope reasons are kept short.
const REASON_CHARS: usize = 200;

/// The out-of-scope form's fields (any other POST body is ignored).
#[derive(Debug, Default, serde::Deserialize)]
pub(super) struct FeedbackForm {
    reason: Option<String>,
    /// Months until the re-check ("3", "6", "12"; "0" or "never": none).
    recheck: Option<String>,
}

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
    let mut detail = json!({"action": fb.action.as_str(), "by": by});
    let result = match fb.action {
        FeedbackAction::Working => transition(&state, &lead, Transition::Working, &by, now).await,
        FeedbackAction::Won => transition(&state, &lead, Transition::Won, &by, now).await,
        FeedbackAction::OutOfScope => {
            let (reason, recheck_at) = out_of_scope_choice(&form, &lead, settings, now);
            detail["reason"] = json!(reason);
            detail["recheck_at"] = json!(recheck_at);
            let t = Transition::OutOfScope { reason, recheck_at };
            transition(&state, &lead, t, &by, now).await
        }
        FeedbackAction::NotNow(months) => {
            detail["months"] = json!(months);
            let resume_at =
                Span::Months(u32::from(months)).after(now, lead.zone_or(settings.default_tz));
            let reason = format!("not now: back in {months} months ({by})");
            match bring_back(&state.store, settings, &lead, &reason, resume_at, None, now).await {
                Ok(Recycled::Back { to, next, .. }) => Ok(Outcome::Done(format!(
                    "back to {}, next email not before {}",
                    to.as_str(),
                    next.format("%Y-%m-%d")
                ))),
                Ok(Recycled::Refused(why)) => Ok(Outcome::Refused(why)),
                Err(e) => Err(e),
            }
        }
    };
    let outcome = match result {
        Ok(outcome) => outcome,
        Err(e) => return retry_later(store_failure("feedback", &e)),
    };
    detail["result"] = json!(outcome.result());
    let hooks =
        crate::notify::event_webhook(&settings.notify, &lead, "feedback", detail.clone(), now);
    if let Err(e) = state
        .store
        .record_event(lead.id, "feedback", &detail, &hooks, now)
        .await
    {
        return retry_later(store_failure("feedback", &e));
    }
    tracing::info!(lead_id = lead.id, action = fb.action.as_str(), result = %outcome.result(), "Sales feedback recorded");
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

/// What a click did.
enum Outcome {
    Done(String),
    Already(&'static str),
    Refused(String),
}

impl Outcome {
    fn result(&self) -> String {
        match self {
            Outcome::Done(_) => "applied".into(),
            Outcome::Already(_) => "already".into(),
            Outcome::Refused(why) => format!("refused: {why}"),
        }
    }
}

async fn transition<S: Store>(
    state: &Shared<S>,
    lead: &Lead,
    t: Transition,
    by: &str,
    now: DateTime<Utc>,
) -> Result<Outcome, crate::store::StoreError> {
    let loaded = state.current.get();
    let hooks = crate::notify::lifecycle_notifications(&loaded.settings.notify, lead, &t, now);
    Ok(
        match state
            .store
            .set_lifecycle(lead.id, &t, by, &hooks, now)
            .await?
        {
            LifecycleChange::Applied { to, .. } => {
                Outcome::Done(format!("the lead is {}", to.as_str()))
            }
            LifecycleChange::Already { state } => Outcome::Already(state.as_str()),
            LifecycleChange::Refused { from, why } => {
                Outcome::Refused(format!("the lead is {}: {why}", from.as_str()))
            }
            LifecycleChange::NoSuchLead => Outcome::Refused("the lead no longer exists".into()),
        },
    )
}

/// The out-of-scope form: its reason (trimmed, cut to 200 characters; a default when
/// empty) and re-check date (12 months unless "3", "6" or "never").
fn out_of_scope_choice(
    form: &FeedbackForm,
    lead: &Lead,
    settings: &crate::config::Settings,
    now: DateTime<Utc>,
) -> (String, Option<DateTime<Utc>>) {
    let reason: String = form
        .reason
        .as_deref()
        .map(str::trim)
        .filter(|r| !r.is_empty())
        .unwrap_or("marked out of scope by sales")
        .chars()
        .take(REASON_CHARS)
        .collect();
    let months = match form.recheck.as_deref().map(str::trim) {
        Some("never" | "0") => None,
        Some("3") => Some(3),
        Some("6") => Some(6),
        _ => Some(12),
    };
    let recheck_at = months.map(|m| Span::Months(m).after(now, lead.zone_or(settings.default_tz)));
    (reason, recheck_at)
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

fn who(lead: &Lead) -> String {
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
