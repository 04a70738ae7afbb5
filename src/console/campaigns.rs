//! `GET /console/campaigns[?lead=EMAIL]`: every campaign as the daemon runs it — its
//! cadence, send window and closed days in `explain`'s words, its steps with each email
//! rendered for a sample lead (or the lead named) exactly as `rewarm preview` renders it
//! (`outbound::preview`), its funnel from the overview's figures (`rewarm report`), and,
//! when the config file on disk differs from what the daemon runs, `rewarm plan`'s account
//! of what reloading it would do (`outbound::replan::plan`). Marketing and admin only.

use std::collections::BTreeMap;

use axum::Router;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::response::Response;
use axum::routing::get;
use chrono::{DateTime, Utc};
use serde::Serialize;

use super::layout::{self, store_failure};
use super::overview::FIRST_WAIT;
use super::{Ctx, Permission, Viewer, figures};
use crate::app::Loaded;
use crate::config::Settings;
use crate::domain::email::EmailAddress;
use crate::domain::lead::{Lead, LeadState};
use crate::outbound::preview::{Preview, preview};
use crate::store::Store;

pub(super) const TEMPLATES: &[(&str, &str)] =
    &[("campaigns.html", include_str!("templates/campaigns.html"))];

pub(super) fn routes<S: Store>() -> Router<Ctx<S>> {
    Router::new().route("/console/campaigns", get(page::<S>))
}

#[derive(Debug, Default, serde::Deserialize)]
struct Params {
    /// Render the steps for this lead instead of the sample one.
    lead: Option<String>,
}

#[derive(Debug, Serialize)]
struct CampaignView {
    name: String,
    rules: String,
    then: Option<String>,
    track_clicks: bool,
    paused: Option<String>,
    steps: Vec<StepView>,
    /// Enrolled, emailed, replied, re-warmed, won (from the report).
    numbers: Option<[i64; 5]>,
}

#[derive(Debug, Serialize)]
struct StepView {
    step: u32,
    /// "email" or "call".
    kind: &'static str,
    template: String,
    subject: String,
    text: String,
    html: Option<String>,
    /// A call's note, or why the email could not be rendered.
    note: Option<String>,
}

async fn page<S: Store>(
    State(ctx): State<Ctx<S>>,
    viewer: Viewer,
    params: Result<Query<Params>, QueryRejection>,
) -> Response {
    if !viewer.can(Permission::SeeAll) {
        return layout::forbidden(&viewer);
    }
    let params = params.map(|Query(p)| p).unwrap_or_default();
    let now = ctx.now();
    let loaded = ctx.settings();
    let mut context = layout::page(&viewer, "Campaigns", "campaigns");
    let lead = match params
        .lead
        .as_deref()
        .map(str::trim)
        .filter(|l| !l.is_empty())
    {
        Some(typed) => {
            context.insert("chosen", typed);
            match EmailAddress::parse(typed) {
                Ok(address) => match ctx.store().lead_by_email(&address).await {
                    Ok(found) => found,
                    Err(e) => return store_failure("console campaigns", &e),
                },
                Err(_) => None,
            }
        }
        None => None,
    };
    context.insert("lead_found", &lead.is_some());
    let lead = lead.unwrap_or_else(|| sample_lead(now));
    context.insert("lead_email", lead.email.as_str());
    let paused: BTreeMap<String, String> = match ctx.store().paused_campaigns().await {
        Ok(p) => p
            .into_iter()
            .map(|p| {
                let when = p.paused_at.format("%Y-%m-%d %H:%M UTC");
                (p.name, format!("paused by {} on {when}", p.paused_by))
            })
            .collect(),
        Err(e) => return store_failure("console campaigns", &e),
    };
    let store = ctx.store().clone();
    let figures = ctx
        .figures
        .get(FIRST_WAIT, move || async move {
            figures::figures(&store, now).await.ok()
        })
        .await;
    let numbers: BTreeMap<String, [i64; 5]> = figures
        .as_ref()
        .map(|f| {
            f.value
                .by_campaign
                .groups
                .iter()
                .map(|g| {
                    let c = g.funnel.counts();
                    (g.group.clone(), [c[0], c[1], c[2], c[3], c[4]])
                })
                .collect()
        })
        .unwrap_or_default();
    let campaigns: Vec<CampaignView> = loaded
        .settings
        .campaigns
        .values()
        .map(|c| CampaignView {
            name: c.name.clone(),
            rules: crate::outbound::explain::describe(c),
            then: c.then.clone(),
            track_clicks: c.track_clicks,
            paused: paused.get(&c.name).cloned(),
            steps: steps(&loaded, &lead, &c.name, c.cadence.max_touches, now),
            numbers: numbers.get(&c.name).copied(),
        })
        .collect();
    context.insert("campaigns", &campaigns);
    if let Some(f) = &figures {
        context.insert(
            "figures_as_of",
            &f.as_of.format("%Y-%m-%d %H:%M UTC").to_string(),
        );
    }
    match disk_plan(ctx.store(), &loaded.settings, now).await {
        Ok(Some(plan)) => context.insert("plan", &plan),
        Ok(None) => {}
        Err(e) => return store_failure("console campaigns", &e),
    }
    context.insert("config_file", &loaded.settings.file.display().to_string());
    layout::render("campaigns.html", &context)
}

/// Every step of a campaign for `lead`, as `rewarm preview` renders it.
fn steps(
    loaded: &Loaded,
    lead: &Lead,
    campaign: &str,
    of: u32,
    now: DateTime<Utc>,
) -> Vec<StepView> {
    (1..=of)
        .map(
            |step| match preview(loaded, lead, Some(campaign), step, now) {
                Ok(Preview::Call { note, .. }) => StepView {
                    step,
                    kind: "call",
                    template: crate::config::CALL_TEMPLATE.into(),
                    subject: String::new(),
                    text: String::new(),
                    html: None,
                    note: Some(note.unwrap_or_else(|| "a call task to the lead's owner".into())),
                },
                Ok(Preview::Email {
                    template, rendered, ..
                }) => StepView {
                    step,
                    kind: "email",
                    template,
                    subject: rendered.subject,
                    text: rendered.text,
                    html: rendered.html,
                    note: None,
                },
                Err(e) => StepView {
                    step,
                    kind: "email",
                    template: String::new(),
                    subject: String::new(),
                    text: String::new(),
                    html: None,
                    note: Some(e.to_string()),
                },
            },
        )
        .collect()
}

/// What `rewarm plan` says about the config file on disk, when its campaigns or segments
/// differ from the ones the daemon runs (None when they are the same); a file that does not
/// load is said so.
async fn disk_plan<S: Store>(
    store: &S,
    running: &Settings,
    now: DateTime<Utc>,
) -> Result<Option<String>, crate::store::StoreError> {
    let disk = match Settings::load(&running.file) {
        Ok(disk) => disk,
        Err(e) => {
            return Ok(Some(format!(
                "The config file on disk does not load, so a reload would keep the running one:\n{e}"
            )));
        }
    };
    let shape = |s: &Settings| format!("{:?}{:?}", s.campaigns, s.segments);
    if shape(&disk) == shape(running) {
        return Ok(None);
    }
    let plan = crate::outbound::replan::plan::plan(store, &disk, now).await?;
    Ok(Some(plan.text()))
}

/// The lead the steps are rendered for when none is named.
fn sample_lead(now: DateTime<Utc>) -> Lead {
    Lead {
        id: 0,
        // Invariant: a fixed, valid address.
        email: EmailAddress::parse("sam.sample@example.com").expect("a valid sample address"),
        first_name: Some("Sam".into()),
        last_name: Some("Sample".into()),
        company: Some("Example Ltd".into()),
        title: Some("Head of Operations".into()),
        owner_email: Some("owner@example.com".into()),
        owner_name: Some("Olivia Owner".into()),
        lost_reason: Some("no_budget".into()),
        lost_at: Some(now - chrono::Duration::days(180)),
        timezone: None,
        tags: Vec::new(),
        fields: BTreeMap::new(),
        state: LeadState::Nurturing,
        created_at: now,
        updated_at: now,
    }
}
