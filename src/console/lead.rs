//! `GET /console/leads/{id}`: one lead — its data, its story as `rewarm explain` tells it,
//! its next email, its score and the signals that made it, its timeline — and the actions
//! the viewer's role allows, each a confirmed POST (`/console/leads/{id}/{action}`):
//! `recycle`, `won`, `out-of-scope`, `pause`, `resume`, `reassign`, `forget` (admin only).
//! Every action runs the code the CLI runs (`outbound::actions`, `outbound::recycle`,
//! `BrowseStore::reassign_lead`) and writes its event with the viewer as `by`. A sales user
//! sees and acts on their own leads only: another owner's lead is 404, as a missing one.

use axum::Router;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::{get, post};
use chrono::{DateTime, Utc};
use serde_json::Value;

use super::layout::{self, message, see_other, store_failure};
use super::leads::full_name;
use super::{Action, Ctx, Empty, Permission, Viewer};
use crate::domain::email::EmailAddress;
use crate::domain::lead::{Lead, LeadState};
use crate::domain::lifecycle::{Transition, Verdict, recyclable};
use crate::outbound::actions::{self, OutOfScopeForm, Outcome};
use crate::outbound::explain;
use crate::outbound::story::Story;
use crate::store::{Event, Store};

pub(super) const TEMPLATES: &[(&str, &str)] = &[("lead.html", include_str!("templates/lead.html"))];

/// Timeline entries the page shows (the newest).
const TIMELINE_SHOWN: usize = 200;

pub(super) fn routes<S: Store>() -> Router<Ctx<S>> {
    Router::new()
        .route("/console/leads/{id}", get(page::<S>))
        .route("/console/leads/{id}/won", post(won::<S>))
        .route("/console/leads/{id}/out-of-scope", post(out_of_scope::<S>))
        .route("/console/leads/{id}/pause", post(pause::<S>))
        .route("/console/leads/{id}/resume", post(resume::<S>))
        .route("/console/leads/{id}/recycle", post(recycle::<S>))
        .route("/console/leads/{id}/reassign", post(reassign::<S>))
        .route("/console/leads/{id}/forget", post(forget::<S>))
}

/// The lead `id` if `viewer` may see it; else the 404 to answer (the same for a lead that
/// does not exist and one of another owner).
pub(super) async fn visible_lead<S: Store>(
    ctx: &Ctx<S>,
    viewer: &Viewer,
    id: i64,
) -> Result<Lead, Response> {
    match ctx.store().leads_by_ids(&[id]).await {
        Ok(mut leads) => match leads.pop() {
            Some(lead) if viewer.sees_owner(lead.owner_email.as_deref()) => Ok(lead),
            _ => Err(layout::not_found()),
        },
        Err(e) => Err(store_failure("lead", &e)),
    }
}

/// One timeline entry as shown.
#[derive(Debug, serde::Serialize)]
struct Entry {
    at: String,
    kind: String,
    detail: String,
}

/// Which actions the page offers (each only when the rules would let it act).
#[derive(Debug, serde::Serialize)]
struct Offers {
    won: bool,
    out_of_scope: bool,
    pause: bool,
    resume: bool,
    recycle: bool,
    reassign: bool,
    forget: bool,
}

fn offers(viewer: &Viewer, lead: &Lead, paused_from: Option<LeadState>) -> Offers {
    let change = viewer.can(Permission::ChangeLeads);
    let moves =
        |t: Transition| change && matches!(t.verdict(lead.state, paused_from), Verdict::Move(_));
    let out = Transition::OutOfScope {
        reason: String::new(),
        recheck_at: None,
    };
    Offers {
        won: moves(Transition::Won),
        out_of_scope: moves(out),
        pause: moves(Transition::Pause),
        resume: moves(Transition::Resume),
        recycle: change && recyclable(lead.state),
        reassign: change,
        forget: viewer.can(Permission::Forget),
    }
}

/// The signals the score is made of: `engaged` events since the lead was last recycled
/// (what `InboundStore::score` sums), weighed at `now`, one line each.
fn signals(
    timeline: &[Event],
    now: DateTime<Utc>,
    half_life: Option<chrono::Duration>,
) -> Vec<String> {
    use crate::domain::signal;
    let start = timeline
        .iter()
        .rposition(|e| e.kind == "recycled")
        .map_or(0, |i| i + 1);
    let engaged = timeline[start..]
        .iter()
        .filter(|e| e.kind == "engaged")
        .map(|e| (e.at, e.detail.clone()));
    let made = signal::made_of(&signal::from_engaged(engaged), now, half_life);
    signal::describe(&made)
}

fn entries(timeline: &[Event]) -> Vec<Entry> {
    timeline
        .iter()
        .rev()
        .take(TIMELINE_SHOWN)
        .map(|e| Entry {
            at: e.at.format("%Y-%m-%d %H:%M UTC").to_string(),
            kind: e.kind.clone(),
            detail: match &e.detail {
                Value::Object(o) if o.is_empty() => String::new(),
                d => d.to_string(),
            },
        })
        .collect()
}

async fn page<S: Store>(
    State(ctx): State<Ctx<S>>,
    viewer: Viewer,
    Path(id): Path<i64>,
) -> Response {
    let lead = match visible_lead(&ctx, &viewer, id).await {
        Ok(lead) => lead,
        Err(response) => return response,
    };
    let story = match Story::read(ctx.store(), &lead).await {
        Ok(story) => story,
        Err(e) => return store_failure("lead story", &e),
    };
    let loaded = ctx.settings();
    let settings = &loaded.settings;
    let now = ctx.now();
    let facts = story.facts(settings, &lead, now);
    let mut context = layout::page(&viewer, &lead.email.to_string(), "leads");
    context.insert("lead", &lead);
    context.insert("name", &full_name(&lead));
    context.insert("lifecycle", &story.lifecycle);
    context.insert("explain", &explain::explain(&facts));
    context.insert("next", &explain::next(&facts));
    context.insert("score", &story.score);
    context.insert(
        "signals",
        &signals(&story.timeline, now, settings.scoring.half_life),
    );
    context.insert("timeline", &entries(&story.timeline));
    context.insert("events", &story.timeline.len());
    context.insert(
        "offers",
        &offers(&viewer, &lead, story.lifecycle.paused_from),
    );
    context.insert("states", &LeadState::ALL.map(LeadState::as_str));
    layout::render("lead.html", &context)
}

/// The lead of an action: visible to the viewer and theirs to change; else the answer.
async fn changeable<S: Store>(ctx: &Ctx<S>, viewer: &Viewer, id: i64) -> Result<Lead, Response> {
    let lead = visible_lead(ctx, viewer, id).await?;
    if !viewer.can(Permission::ChangeLeads) {
        return Err(layout::forbidden(viewer));
    }
    Ok(lead)
}

/// After an action: back to the lead's page (303), or a page saying why nothing changed.
fn answer(lead: &Lead, outcome: Outcome) -> Response {
    match outcome {
        Outcome::Done(_) | Outcome::Already(_) => see_other(&format!("/console/leads/{}", lead.id)),
        Outcome::Refused(why) => message(StatusCode::CONFLICT, "Nothing changed", &why),
    }
}

async fn transition<S: Store>(ctx: &Ctx<S>, viewer: &Viewer, id: i64, t: Transition) -> Response {
    let lead = match changeable(ctx, viewer, id).await {
        Ok(lead) => lead,
        Err(response) => return response,
    };
    let loaded = ctx.settings();
    match actions::apply_transition(
        ctx.store(),
        &loaded.settings,
        &lead,
        &t,
        &viewer.email,
        ctx.now(),
    )
    .await
    {
        Ok(change) => answer(&lead, Outcome::of_change(change)),
        Err(e) => store_failure("lead action", &e),
    }
}

async fn won<S: Store>(
    State(ctx): State<Ctx<S>>,
    Path(id): Path<i64>,
    Action { viewer, .. }: Action<Empty>,
) -> Response {
    transition(&ctx, &viewer, id, Transition::Won).await
}

async fn pause<S: Store>(
    State(ctx): State<Ctx<S>>,
    Path(id): Path<i64>,
    Action { viewer, .. }: Action<Empty>,
) -> Response {
    transition(&ctx, &viewer, id, Transition::Pause).await
}

async fn resume<S: Store>(
    State(ctx): State<Ctx<S>>,
    Path(id): Path<i64>,
    Action { viewer, .. }: Action<Empty>,
) -> Response {
    transition(&ctx, &viewer, id, Transition::Resume).await
}

async fn out_of_scope<S: Store>(
    State(ctx): State<Ctx<S>>,
    Path(id): Path<i64>,
    Action { viewer, form }: Action<OutOfScopeForm>,
) -> Response {
    let lead = match changeable(&ctx, &viewer, id).await {
        Ok(lead) => lead,
        Err(response) => return response,
    };
    let loaded = ctx.settings();
    let (reason, recheck_at) = form.choice(&lead, &loaded.settings, ctx.now());
    transition(
        &ctx,
        &viewer,
        id,
        Transition::OutOfScope { reason, recheck_at },
    )
    .await
}

async fn recycle<S: Store>(
    State(ctx): State<Ctx<S>>,
    Path(id): Path<i64>,
    Action { viewer, .. }: Action<Empty>,
) -> Response {
    let lead = match changeable(&ctx, &viewer, id).await {
        Ok(lead) => lead,
        Err(response) => return response,
    };
    let loaded = ctx.settings();
    let now = ctx.now();
    // The `recycled` event's reason names who asked.
    let reason = format!("recycled from the console by {}", viewer.email);
    match crate::outbound::recycle::bring_back(
        ctx.store(),
        &loaded.settings,
        &lead,
        &reason,
        now,
        None,
        now,
    )
    .await
    {
        Ok(r) => answer(&lead, Outcome::of_recycle(r)),
        Err(e) => store_failure("lead recycle", &e),
    }
}

#[derive(Debug, serde::Deserialize)]
struct ReassignForm {
    to: String,
    #[serde(default)]
    name: String,
}

async fn reassign<S: Store>(
    State(ctx): State<Ctx<S>>,
    Path(id): Path<i64>,
    Action { viewer, form }: Action<ReassignForm>,
) -> Response {
    let lead = match changeable(&ctx, &viewer, id).await {
        Ok(lead) => lead,
        Err(response) => return response,
    };
    let Ok(to) = EmailAddress::parse(form.to.trim()) else {
        return message(
            StatusCode::UNPROCESSABLE_ENTITY,
            "Nothing changed",
            "The new owner must be an email address.",
        );
    };
    let name = Some(form.name.trim()).filter(|n| !n.is_empty());
    match ctx
        .store()
        .reassign_lead(lead.id, to.as_str(), name, &viewer.email, ctx.now())
        .await
    {
        // A sales user who gave their lead away no longer sees it.
        Ok(_) if !viewer.sees_owner(Some(to.as_str())) => see_other("/console/leads"),
        Ok(_) => see_other(&format!("/console/leads/{}", lead.id)),
        Err(e) => store_failure("lead reassign", &e),
    }
}

async fn forget<S: Store>(
    State(ctx): State<Ctx<S>>,
    Path(id): Path<i64>,
    Action { viewer, .. }: Action<Empty>,
) -> Response {
    let lead = match visible_lead(&ctx, &viewer, id).await {
        Ok(lead) => lead,
        Err(response) => return response,
    };
    if !viewer.can(Permission::Forget) {
        return layout::forbidden(&viewer);
    }
    match actions::forget(ctx.store(), &lead.email, &viewer.email, ctx.now()).await {
        Ok(_) => see_other(&format!("/console/leads/{}", lead.id)),
        Err(e) => store_failure("lead forget", &e),
    }
}
