//! `GET /console/suppression`: the global suppression list, newest entry first, 50 a page
//! (marketing and admin). `POST /console/suppression/add` puts an address or `@domain` on
//! it — the rules of `suppress add` (`outbound::suppression`): a domain reaching more than
//! `compliance.confirm_domain_over` leads is added only when confirmed. `POST
//! /console/suppression/remove` takes an entry off, with `restore` putting back the leads it
//! suppressed (`suppress remove --restore`). Both are logged (`suppression_added`,
//! `suppression_removed`) with who did it; the leads' own events are the store's.

use axum::Router;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::{get, post};
use serde_json::json;

use super::layout::{self, message, see_other, store_failure};
use super::{Action, Ctx, Permission, Viewer};
use crate::outbound::suppression::{entry, evidence, too_broad};
use crate::store::{Store, Suppression, SuppressionReason};

pub(super) const TEMPLATES: &[(&str, &str)] = &[
    (
        "suppression.html",
        include_str!("templates/suppression.html"),
    ),
    (
        "suppression_confirm.html",
        include_str!("templates/suppression_confirm.html"),
    ),
];

/// Entries a page shows.
const PAGE: usize = 50;

pub(super) fn routes<S: Store>() -> Router<Ctx<S>> {
    Router::new()
        .route("/console/suppression", get(page::<S>))
        .route("/console/suppression/add", post(add::<S>))
        .route("/console/suppression/remove", post(remove::<S>))
}

#[derive(Debug, Default, serde::Deserialize)]
struct PageQuery {
    #[serde(default)]
    before: String,
}

#[derive(Debug, serde::Serialize)]
struct Row {
    address: String,
    reason: &'static str,
    evidence: String,
    since: String,
}

impl From<&Suppression> for Row {
    fn from(s: &Suppression) -> Self {
        Row {
            address: s.address.clone(),
            reason: s.reason.as_str(),
            evidence: s.evidence.to_string(),
            since: s.created_at.format("%Y-%m-%d").to_string(),
        }
    }
}

fn may_change(viewer: &Viewer) -> bool {
    viewer.can(Permission::SeeAll) && viewer.can(Permission::ChangeLeads)
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
    let page = match ctx.store().suppression_page(before, PAGE).await {
        Ok(page) => page,
        Err(e) => return store_failure("suppression list", &e),
    };
    let rows: Vec<Row> = page.entries.iter().map(|(_, s)| Row::from(s)).collect();
    let mut context = layout::page(&viewer, "Suppression list", "suppression");
    context.insert("rows", &rows);
    context.insert("total", &page.total);
    context.insert("next", &page.next);
    context.insert("first_page", &before.is_none());
    context.insert(
        "reasons",
        &SuppressionReason::ALL.map(SuppressionReason::as_str),
    );
    context.insert("may_change", &may_change(&viewer));
    let loaded = ctx.settings();
    context.insert("over", &loaded.settings.compliance.confirm_domain_over);
    layout::render("suppression.html", &context)
}

#[derive(Debug, serde::Deserialize)]
struct AddForm {
    address: String,
    #[serde(default)]
    reason: String,
    #[serde(default)]
    note: String,
    /// Present (any value) when the person confirmed a broad domain.
    #[serde(default)]
    confirm_broad: Option<String>,
}

async fn add<S: Store>(
    State(ctx): State<Ctx<S>>,
    Action { viewer, form }: Action<AddForm>,
) -> Response {
    if !may_change(&viewer) {
        return layout::forbidden(&viewer);
    }
    let reason = match form.reason.trim() {
        "" => SuppressionReason::Manual,
        r => match SuppressionReason::parse(r) {
            Some(r) => r,
            None => return unprocessable(&format!("Unknown reason `{r}`.")),
        },
    };
    let now = ctx.now();
    let note = Some(form.note.trim()).filter(|n| !n.is_empty());
    let new = match entry(
        &form.address,
        reason,
        evidence("console", note, Some(&viewer.email), None),
        now,
    ) {
        Ok(new) => new,
        Err(e) => return unprocessable(&format!("{e} (use an email address or @domain.tld)")),
    };
    let loaded = ctx.settings();
    let over = loaded.settings.compliance.confirm_domain_over;
    let entries = [new];
    if form.confirm_broad.is_none() {
        match too_broad(ctx.store(), &entries, over).await {
            Ok(broad) if !broad.is_empty() => return confirm_broad(&viewer, &form, &broad, over),
            Ok(_) => {}
            Err(e) => return store_failure("suppression reach", &e),
        }
    }
    match ctx.store().suppress(&entries, now).await {
        Ok(added) => {
            let detail =
                json!({"address": entries[0].address, "reason": reason.as_str(), "added": added});
            ctx.log(&viewer.email, "suppression_added", detail).await;
            see_other("/console/suppression")
        }
        Err(e) => store_failure("suppress", &e),
    }
}

/// The broad-domain guard's page: what the entry would reach, and a form to confirm it.
fn confirm_broad(viewer: &Viewer, form: &AddForm, broad: &[(String, i64)], over: i64) -> Response {
    let mut context = layout::page(viewer, "Confirm a broad entry", "suppression");
    let (address, reach) = broad.first().cloned().unwrap_or_default();
    context.insert("address", &address);
    context.insert("reach", &reach);
    context.insert("over", &over);
    context.insert("reason", &form.reason);
    context.insert("note", &form.note);
    layout::render_status(StatusCode::CONFLICT, "suppression_confirm.html", &context)
}

#[derive(Debug, serde::Deserialize)]
struct RemoveForm {
    address: String,
    /// Present (any value): put back the leads the entry suppressed.
    #[serde(default)]
    restore: Option<String>,
}

async fn remove<S: Store>(
    State(ctx): State<Ctx<S>>,
    Action { viewer, form }: Action<RemoveForm>,
) -> Response {
    if !may_change(&viewer) {
        return layout::forbidden(&viewer);
    }
    let address = match Suppression::normalise_address(&form.address) {
        Ok(address) => address,
        Err(e) => return unprocessable(&format!("{e} (use an email address or @domain.tld)")),
    };
    let store = ctx.store();
    let (removed, detail) = if form.restore.is_some() {
        match store.unsuppress_and_restore(&address, ctx.now()).await {
            Ok(Some(r)) => (
                true,
                json!({"address": address, "restore": true, "restored": r.restored,
                       "resumed_deliveries": r.resumed_deliveries, "still_suppressed": r.still_suppressed}),
            ),
            Ok(None) => (false, json!({})),
            Err(e) => return store_failure("unsuppress", &e),
        }
    } else {
        match store.unsuppress(&address).await {
            Ok(removed) => (removed, json!({"address": address, "restore": false})),
            Err(e) => return store_failure("unsuppress", &e),
        }
    };
    if !removed {
        return message(
            StatusCode::CONFLICT,
            "Nothing changed",
            &format!("{address} is not on the suppression list."),
        );
    }
    ctx.log(&viewer.email, "suppression_removed", detail).await;
    see_other("/console/suppression")
}

fn unprocessable(text: &str) -> Response {
    message(StatusCode::UNPROCESSABLE_ENTITY, "Nothing changed", text)
}
