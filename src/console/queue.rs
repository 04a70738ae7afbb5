//! `GET /console/queue`: the sales queue — the viewer's re-warmed leads (marketing and
//! admin: everyone's, or one owner's), the newest re-warm first or the stalest, each with
//! the reply that re-warmed it and the one-click feedback buttons of the owner emails
//! (`POST /console/queue/{id}/feedback`: working, won, not now, out of scope), applied by
//! `outbound::actions::feedback` — the code `/feedback/{token}` runs — with the viewer as
//! `by`.
//!
//! `GET /console/feedback/{token}` is where the action links of owner emails point while
//! the console is on: a signed-in viewer who may see the lead lands on this queue with
//! that lead first; anybody else goes on to the tokened `/feedback/{token}` page, which
//! needs no session.

use axum::Router;
use axum::extract::rejection::PathRejection;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};

use super::layout::{self, message, see_other, store_failure};
use super::lead::visible_lead;
use super::leads::full_name;
use super::{Action, Ctx, Permission, Viewer};
use crate::domain::lead::Lead;
use crate::notify::feedback::{FeedbackAction, NOT_NOW_MONTHS};
use crate::outbound::actions::{self, OutOfScopeForm, Outcome};
use crate::store::{QueueOrder, QueuedLead, Store};

pub(super) const TEMPLATES: &[(&str, &str)] =
    &[("queue.html", include_str!("templates/queue.html"))];

/// Leads the queue shows.
const SHOWN: usize = 100;
/// Reply characters the queue shows.
const REPLY_CHARS: usize = 600;

pub(super) fn routes<S: Store>() -> Router<Ctx<S>> {
    Router::new()
        .route("/console/queue", get(page::<S>))
        .route("/console/queue/{id}/feedback", post(feedback::<S>))
        .route(
            "/console/feedback/{token}",
            get(from_email::<S>).post(from_email_post),
        )
}

#[derive(Debug, Default, serde::Deserialize)]
struct QueueQuery {
    #[serde(default)]
    order: String,
    #[serde(default)]
    owner: String,
    /// A lead to show first (the one an email's link was about).
    #[serde(default)]
    lead: String,
}

/// A queue entry as shown.
#[derive(Debug, serde::Serialize)]
struct Entry {
    id: i64,
    email: String,
    name: String,
    company: String,
    owner: String,
    state: &'static str,
    rewarmed_at: String,
    /// Whole days since the re-warm.
    waiting_days: i64,
    reply_subject: Option<String>,
    reply: Option<String>,
}

fn entry(q: &QueuedLead, now: chrono::DateTime<chrono::Utc>) -> Entry {
    Entry {
        rewarmed_at: q.rewarmed_at.format("%Y-%m-%d %H:%M UTC").to_string(),
        waiting_days: (now - q.rewarmed_at).num_days().max(0),
        reply_subject: q.reply.as_ref().and_then(|r| r.subject.clone()),
        reply: q
            .reply
            .as_ref()
            .map(|r| r.text.chars().take(REPLY_CHARS).collect()),
        ..plain(&q.lead)
    }
}

fn plain(lead: &Lead) -> Entry {
    Entry {
        id: lead.id,
        email: lead.email.to_string(),
        name: full_name(lead),
        company: lead.company.clone().unwrap_or_default(),
        owner: lead.owner_email.clone().unwrap_or_default(),
        state: lead.state.as_str(),
        rewarmed_at: String::new(),
        waiting_days: 0,
        reply_subject: None,
        reply: None,
    }
}

async fn page<S: Store>(
    State(ctx): State<Ctx<S>>,
    viewer: Viewer,
    query: Result<Query<QueueQuery>, QueryRejection>,
) -> Response {
    let query = query.map(|Query(q)| q).unwrap_or_default();
    let order = match query.order.as_str() {
        "stalest" => QueueOrder::Stalest,
        _ => QueueOrder::Newest,
    };
    let sees_all = viewer.can(Permission::SeeAll);
    let owner = if sees_all {
        Some(query.owner.trim().to_string()).filter(|o| !o.is_empty())
    } else {
        Some(viewer.email.clone())
    };
    let now = ctx.now();
    let queued = match ctx
        .store()
        .sales_queue(owner.as_deref(), order, SHOWN)
        .await
    {
        Ok(queued) => queued,
        Err(e) => return store_failure("sales queue", &e),
    };
    let mut entries: Vec<Entry> = queued.iter().map(|q| entry(q, now)).collect();
    // The lead an email's link named comes first (if the viewer may see it).
    let mut focus = None;
    if let Ok(id) = query.lead.trim().parse::<i64>() {
        if let Some(i) = entries.iter().position(|e| e.id == id) {
            let e = entries.remove(i);
            entries.insert(0, e);
            focus = Some(id);
        } else if let Ok(lead) = visible_lead(&ctx, &viewer, id).await {
            entries.insert(0, plain(&lead));
            focus = Some(id);
        }
    }
    let title = if sees_all {
        "Sales queue"
    } else {
        "My sales queue"
    };
    let mut context = layout::page(&viewer, title, "queue");
    context.insert("entries", &entries);
    context.insert("focus", &focus);
    context.insert(
        "order",
        if order == QueueOrder::Stalest {
            "stalest"
        } else {
            "newest"
        },
    );
    context.insert("owner", &owner.unwrap_or_default());
    context.insert("sees_all", &sees_all);
    context.insert("not_now", &NOT_NOW_MONTHS);
    layout::render("queue.html", &context)
}

#[derive(Debug, serde::Deserialize)]
struct FeedbackForm {
    /// `working`, `won`, `not_now_3` / `_6` / `_12`, `out_of_scope`.
    action: String,
    #[serde(default)]
    reason: Option<String>,
    #[serde(default)]
    recheck: Option<String>,
}

fn feedback_action(name: &str) -> Option<FeedbackAction> {
    Some(match name {
        "working" => FeedbackAction::Working,
        "won" => FeedbackAction::Won,
        "out_of_scope" => FeedbackAction::OutOfScope,
        other => {
            let months: u8 = other.strip_prefix("not_now_")?.parse().ok()?;
            NOT_NOW_MONTHS
                .contains(&months)
                .then_some(FeedbackAction::NotNow(months))?
        }
    })
}

async fn feedback<S: Store>(
    State(ctx): State<Ctx<S>>,
    Path(id): Path<i64>,
    Action { viewer, form }: Action<FeedbackForm>,
) -> Response {
    let lead = match visible_lead(&ctx, &viewer, id).await {
        Ok(lead) => lead,
        Err(response) => return response,
    };
    if !viewer.can(Permission::ChangeLeads) {
        return layout::forbidden(&viewer);
    }
    let Some(action) = feedback_action(&form.action) else {
        return message(
            StatusCode::UNPROCESSABLE_ENTITY,
            "Nothing changed",
            "Unknown feedback: choose one of the buttons.",
        );
    };
    let scope = OutOfScopeForm {
        reason: form.reason,
        recheck: form.recheck,
    };
    let loaded = ctx.settings();
    match actions::feedback(
        ctx.store(),
        &loaded.settings,
        &lead,
        action,
        &scope,
        &viewer.email,
        ctx.now(),
    )
    .await
    {
        Ok(Outcome::Refused(why)) => message(StatusCode::CONFLICT, "Nothing changed", &why),
        Ok(_) if lead_stays_queued(action) => {
            see_other(&format!("/console/queue?lead={}", lead.id))
        }
        Ok(_) => see_other("/console/queue"),
        Err(e) => store_failure("sales feedback", &e),
    }
}

/// "I'm on it" keeps the lead re-warmed (in the queue); the others take it out.
fn lead_stays_queued(action: FeedbackAction) -> bool {
    action == FeedbackAction::Working
}

/// `GET /console/feedback/{token}`: the signed-in viewer's queue with the lead first, or
/// the tokened page for anybody else (see the module docs).
async fn from_email<S: Store>(
    State(ctx): State<Ctx<S>>,
    viewer: Result<Viewer, Response>,
    token: Result<Path<String>, PathRejection>,
) -> Response {
    let Ok(Path(token)) = token else {
        return layout::not_found();
    };
    let tokened = Redirect::to(&format!("/feedback/{token}")).into_response();
    let Ok(viewer) = viewer else {
        return tokened;
    };
    let loaded = ctx.settings();
    let lead_id = crate::notify::feedback::lead_of(&ctx.http.keys, &token)
        .or_else(|| crate::notify::feedback::lead_of(&loaded.keys, &token));
    match lead_id {
        Some(id) if visible_lead(&ctx, &viewer, id).await.is_ok() => {
            see_other(&format!("/console/queue?lead={id}"))
        }
        _ => tokened,
    }
}

/// A POST to the email's link goes on to the tokened page with its form (307 keeps the
/// method and body).
async fn from_email_post(token: Result<Path<String>, PathRejection>) -> Response {
    match token {
        Ok(Path(token)) => Redirect::temporary(&format!("/feedback/{token}")).into_response(),
        Err(_) => layout::not_found(),
    }
}
