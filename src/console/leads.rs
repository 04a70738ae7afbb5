//! `GET /console/leads`: the lead search — a prefix of the address, a name or the company,
//! and the owner, state, segment and tag — newest lead first, 50 a page, paged by key
//! (`before`: the last id shown), so the millionth lead costs what the first does
//! (`BrowseStore::search_leads`). A sales user searches their own leads only, whatever
//! the form says.

use axum::Router;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::response::Response;
use axum::routing::get;

use super::layout::{self, store_failure};
use super::{Ctx, Permission, Viewer};
use crate::domain::lead::{Lead, LeadState};
use crate::store::{LeadSearch, Store};

pub(super) const TEMPLATES: &[(&str, &str)] =
    &[("leads.html", include_str!("templates/leads.html"))];

/// Leads a page shows.
pub(super) const PAGE: usize = 50;

pub(super) fn routes<S: Store>() -> Router<Ctx<S>> {
    Router::new().route("/console/leads", get(list::<S>))
}

/// The search form as submitted (every field text: a bad value is shown, not a 400).
#[derive(Debug, Default, Clone, serde::Deserialize, serde::Serialize)]
pub(super) struct SearchForm {
    #[serde(default)]
    q: String,
    #[serde(default)]
    owner: String,
    #[serde(default)]
    state: String,
    #[serde(default)]
    segment: String,
    #[serde(default)]
    tag: String,
    #[serde(default)]
    before: String,
}

/// A lead as the results table shows it.
#[derive(Debug, serde::Serialize)]
pub(super) struct Row {
    id: i64,
    email: String,
    name: String,
    company: String,
    owner: String,
    state: &'static str,
    tags: String,
}

impl Row {
    pub(super) fn of(lead: &Lead) -> Row {
        Row {
            id: lead.id,
            email: lead.email.to_string(),
            name: full_name(lead),
            company: lead.company.clone().unwrap_or_default(),
            owner: lead.owner_email.clone().unwrap_or_default(),
            state: lead.state.as_str(),
            tags: lead.tags.join(", "),
        }
    }
}

/// "First Last", or what there is of it.
pub(super) fn full_name(lead: &Lead) -> String {
    [lead.first_name.as_deref(), lead.last_name.as_deref()]
        .into_iter()
        .flatten()
        .collect::<Vec<_>>()
        .join(" ")
}

fn given(s: &str) -> Option<String> {
    Some(s.trim()).filter(|s| !s.is_empty()).map(str::to_string)
}

impl SearchForm {
    /// The store's search for `viewer` (a sales user: their own leads), or what is wrong
    /// with the form.
    fn search(&self, viewer: &Viewer) -> Result<LeadSearch, String> {
        let state = match given(&self.state) {
            Some(s) => Some(LeadState::parse(&s).ok_or_else(|| format!("no state `{s}`"))?),
            None => None,
        };
        let before = match given(&self.before) {
            Some(b) => Some(b.parse::<i64>().map_err(|_| format!("bad page `{b}`"))?),
            None => None,
        };
        let owner = if viewer.can(Permission::SeeAll) {
            given(&self.owner)
        } else {
            Some(viewer.email.clone())
        };
        Ok(LeadSearch {
            text: given(&self.q),
            owner,
            state,
            segment: given(&self.segment),
            tag: given(&self.tag),
            before,
            limit: PAGE,
        })
    }

    /// The query string of the page after `next`.
    fn next_page(&self, next: i64) -> String {
        let mut form = self.clone();
        form.before = next.to_string();
        serde_urlencoded::to_string(&form).unwrap_or_default()
    }
}

async fn list<S: Store>(
    State(ctx): State<Ctx<S>>,
    viewer: Viewer,
    form: Result<Query<SearchForm>, QueryRejection>,
) -> Response {
    let form = form.map(|Query(f)| f).unwrap_or_default();
    let mut context = layout::page(&viewer, "Leads", "leads");
    context.insert("form", &form);
    context.insert("states", &LeadState::ALL.map(LeadState::as_str));
    let loaded = ctx.settings();
    let mut segments: Vec<&str> = loaded
        .settings
        .segments
        .iter()
        .map(|s| s.name.as_str())
        .collect();
    segments.dedup();
    context.insert("segments", &segments);
    context.insert("sees_all", &viewer.can(Permission::SeeAll));
    match form.search(&viewer) {
        Ok(search) => {
            let page = match ctx.store().search_leads(&search).await {
                Ok(page) => page,
                Err(e) => return store_failure("lead search", &e),
            };
            let rows: Vec<Row> = page.leads.iter().map(Row::of).collect();
            context.insert("rows", &rows);
            context.insert("next", &page.next.map(|n| form.next_page(n)));
            context.insert("first_page", &search.before.is_none());
            context.insert("error", &None::<String>);
        }
        Err(error) => {
            context.insert("rows", &Vec::<Row>::new());
            context.insert("next", &None::<String>);
            context.insert("first_page", &true);
            context.insert("error", &Some(error));
        }
    }
    layout::render("leads.html", &context)
}
