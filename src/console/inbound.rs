//! `GET /console/inbound`: mail that matched no lead, newest first, for marketing and admin
//! to review. `POST /console/inbound/{id}/assign` ("this belongs to lead X", by address or
//! id) runs the message through `inbound::review::belongs_to` — the steps of the normal
//! inbound path, its effect applied as if it had matched — and `POST
//! /console/inbound/{id}/ignore` takes it off the list (kept, unmatched; logged as
//! `inbound_ignored` with who did it).

use axum::Router;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::{get, post};
use serde_json::json;

use super::layout::{self, message, see_other, store_failure};
use super::{Action, Ctx, Empty, Permission, Viewer};
use crate::domain::email::EmailAddress;
use crate::store::{Assigned, Store, ToReview};

pub(super) const TEMPLATES: &[(&str, &str)] =
    &[("inbound.html", include_str!("templates/inbound.html"))];

/// Messages a page shows.
const PAGE: usize = 25;

pub(super) fn routes<S: Store>() -> Router<Ctx<S>> {
    Router::new()
        .route("/console/inbound", get(page::<S>))
        .route("/console/inbound/{id}/assign", post(assign::<S>))
        .route("/console/inbound/{id}/ignore", post(ignore::<S>))
}

#[derive(Debug, Default, serde::Deserialize)]
struct PageQuery {
    #[serde(default)]
    before: String,
}

#[derive(Debug, serde::Serialize)]
struct Row {
    id: i64,
    received_at: String,
    source: String,
    from: String,
    subject: String,
    classification: String,
    text: String,
}

impl From<ToReview> for Row {
    fn from(m: ToReview) -> Self {
        Row {
            id: m.id,
            received_at: m.received_at.format("%Y-%m-%d %H:%M UTC").to_string(),
            source: m.source,
            from: m.from_address.unwrap_or_default(),
            subject: m.subject.unwrap_or_default(),
            classification: m.classification,
            text: m.text.unwrap_or_default(),
        }
    }
}

async fn page<S: Store>(
    State(ctx): State<Ctx<S>>,
    viewer: Viewer,
    query: Result<Query<PageQuery>, QueryRejection>,
) -> Response {
    if !viewer.can(Permission::SeeAll) {
        return layout::forbidden(&viewer);
    }
    let before = query
        .ok()
        .and_then(|Query(q)| q.before.trim().parse::<i64>().ok());
    // One more than shown: whether a next page exists.
    let (mut messages, total) = match ctx.store().inbound_to_review(before, PAGE + 1).await {
        Ok(found) => found,
        Err(e) => return store_failure("inbound review", &e),
    };
    let next = if messages.len() > PAGE {
        messages.truncate(PAGE);
        messages.last().map(|m| m.id)
    } else {
        None
    };
    let rows: Vec<Row> = messages.into_iter().map(Row::from).collect();
    let mut context = layout::page(&viewer, "Inbound to review", "inbound");
    context.insert("rows", &rows);
    context.insert("total", &total);
    context.insert("next", &next);
    context.insert("first_page", &before.is_none());
    layout::render("inbound.html", &context)
}

#[derive(Debug, serde::Deserialize)]
struct AssignForm {
    /// The lead's email address, or its id.
    lead: String,
}

async fn assign<S: Store>(
    State(ctx): State<Ctx<S>>,
    Path(id): Path<i64>,
    Action { viewer, form }: Action<AssignForm>,
) -> Response {
    if !(viewer.can(Permission::SeeAll) && viewer.can(Permission::ChangeLeads)) {
        return layout::forbidden(&viewer);
    }
    let store = ctx.store();
    let given = form.lead.trim();
    let lead_id = match given.parse::<i64>() {
        Ok(id) => Some(id),
        Err(_) => match EmailAddress::parse(given) {
            Ok(email) => match store.lead_by_email(&email).await {
                Ok(lead) => lead.map(|l| l.id),
                Err(e) => return store_failure("inbound assign", &e),
            },
            Err(_) => None,
        },
    };
    let Some(lead_id) = lead_id else {
        return message(
            StatusCode::UNPROCESSABLE_ENTITY,
            "Nothing changed",
            &format!("No lead `{given}`: give a lead's email address or id."),
        );
    };
    let loaded = ctx.settings();
    match crate::inbound::review::belongs_to(store, &loaded, id, lead_id, &viewer.email, ctx.now())
        .await
    {
        Ok(Assigned::Applied { .. }) => see_other(&format!("/console/leads/{lead_id}")),
        Ok(Assigned::NoSuchLead) => message(
            StatusCode::UNPROCESSABLE_ENTITY,
            "Nothing changed",
            &format!("No lead `{given}`."),
        ),
        Ok(Assigned::NotForReview) => message(
            StatusCode::CONFLICT,
            "Nothing changed",
            "This message is no longer waiting for review.",
        ),
        Err(e) => {
            tracing::warn!(error = %e, inbound_id = id, "Assigning an inbound message failed");
            message(
                StatusCode::SERVICE_UNAVAILABLE,
                "Please try again",
                "The message could not be assigned. Try again in a moment.",
            )
        }
    }
}

async fn ignore<S: Store>(
    State(ctx): State<Ctx<S>>,
    Path(id): Path<i64>,
    Action { viewer, .. }: Action<Empty>,
) -> Response {
    if !(viewer.can(Permission::SeeAll) && viewer.can(Permission::ChangeLeads)) {
        return layout::forbidden(&viewer);
    }
    match crate::inbound::review::ignore(ctx.store(), id, &viewer.email, ctx.now()).await {
        Ok(true) => {
            ctx.log(&viewer.email, "inbound_ignored", json!({"inbound_id": id}))
                .await;
            see_other("/console/inbound")
        }
        Ok(false) => message(
            StatusCode::CONFLICT,
            "Nothing changed",
            "This message is no longer waiting for review.",
        ),
        Err(e) => {
            tracing::warn!(error = %e, inbound_id = id, "Ignoring an inbound message failed");
            message(
                StatusCode::SERVICE_UNAVAILABLE,
                "Please try again",
                "The message could not be ignored. Try again in a moment.",
            )
        }
    }
}
