//! `plan`: what applying a configuration would do to the leads in flight, computed with the
//! rules `apply` runs ([`super::rules`]) and without writing anything. "Before" is what the
//! daemon applied last: each campaign's current version in `campaign_versions`.
//!
//! Counts are aggregate SQL (waiting steps per step and template, active enrolments per
//! campaign, version and segment); leads are read only where the rules need them: a sample of
//! re-timed steps, leads of a removed campaign whose segment no longer decides for them,
//! and the `new` leads that would enrol — streamed, never all at once, and only those whose
//! loss reason a segment lists (see [`enrolling`]).

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::rules::{self, CampaignDef, Destination};
use super::{PAGE, waiting};
use crate::config::{Campaign, Settings};
use crate::domain::segment::first_match;
use crate::store::forecast::reason_filter;
use crate::store::{Followed, Store, StoreError};

/// Re-timed steps shown as examples, per campaign.
const SAMPLES: usize = 5;

/// What a configuration would do (see the module docs).
#[derive(Debug, Clone, Serialize)]
pub struct Plan {
    pub now: DateTime<Utc>,
    pub campaigns: Vec<CampaignPlan>,
    /// `new` leads that would enrol now, per segment and campaign.
    pub enrol: Vec<Enrolling>,
    pub summary: Summary,
}

/// One campaign's part of the plan.
#[derive(Debug, Clone, Serialize)]
pub struct CampaignPlan {
    pub campaign: String,
    /// `unchanged`, `changed`, `new` (never applied), `unversioned` (applied before versions
    /// were kept: max_touches and templates are enforced, timing kept) or `removed`.
    pub status: &'static str,
    pub from_version: Option<String>,
    pub to_version: Option<String>,
    /// What changed, one line per setting.
    pub changes: Vec<String>,
    /// Active enrolments.
    pub leads: i64,
    /// Waiting steps cancelled, per step (1-based).
    pub cancelled: Vec<StepCount>,
    pub retemplated: Vec<Retemplated>,
    /// Scheduled steps re-timed from the new cadence, and examples.
    pub rescheduled: i64,
    pub samples: Vec<Sample>,
    /// Leads of a removed campaign moved, per segment and destination.
    pub moved: Vec<Moved>,
    /// Leads of a removed campaign parked `paused`.
    pub parked: i64,
}

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct StepCount {
    pub step: u32,
    pub deliveries: i64,
}

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Retemplated {
    pub step: u32,
    pub from: String,
    pub to: String,
    pub deliveries: i64,
}

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Sample {
    pub email: String,
    pub step: u32,
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
}

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Moved {
    pub segment: String,
    pub to_campaign: String,
    pub to_segment: String,
    pub leads: i64,
}

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Enrolling {
    pub segment: String,
    pub campaign: String,
    pub leads: i64,
}

#[derive(Debug, Clone, Copy, Default, Serialize, PartialEq, Eq)]
pub struct Summary {
    pub cancelled: i64,
    pub retemplated: i64,
    pub rescheduled: i64,
    pub moved: i64,
    pub parked: i64,
    pub enrolling: i64,
}

impl Summary {
    /// One line: "2 cancelled, 1 re-templated, …".
    pub fn line(&self) -> String {
        format!(
            "{} cancelled, {} re-templated, {} rescheduled, {} moved, {} parked, {} enrolling",
            self.cancelled,
            self.retemplated,
            self.rescheduled,
            self.moved,
            self.parked,
            self.enrolling
        )
    }
}

/// What applying `settings` at `now` would do to the leads in `store`.
pub async fn plan<S: Store>(
    store: &S,
    settings: &Settings,
    now: DateTime<Utc>,
) -> Result<Plan, StoreError> {
    plan_with(store, settings, now, true).await
}

/// [`plan`]; without the `new` leads that would enrol when `enrolling` is false (what the
/// daemon logs when it applies a config: only what the edit does).
pub async fn plan_with<S: Store>(
    store: &S,
    settings: &Settings,
    now: DateTime<Utc>,
    enrolling_too: bool,
) -> Result<Plan, StoreError> {
    let current = store.current_versions().await?;
    let followed = store.followed().await?;
    let mut leads: BTreeMap<String, i64> = BTreeMap::new();
    for f in &followed {
        *leads.entry(f.campaign.clone()).or_default() += f.enrolments;
    }
    let mut names: Vec<String> = settings.campaigns.keys().cloned().collect();
    names.extend(
        leads
            .keys()
            .filter(|n| !settings.campaigns.contains_key(*n))
            .cloned(),
    );
    let mut campaigns = Vec::new();
    for name in names {
        let n = leads.get(&name).copied().unwrap_or(0);
        let cur = current.get(&name);
        let p = match settings.campaigns.get(&name) {
            Some(c) => {
                let old = cur.and_then(|v| CampaignDef::from_json(&v.definition));
                changed(
                    store,
                    settings,
                    c,
                    cur.map(|v| v.version.clone()),
                    old,
                    n,
                    now,
                )
                .await?
            }
            None => {
                let of: Vec<Followed> = followed
                    .iter()
                    .filter(|f| f.campaign == name)
                    .cloned()
                    .collect();
                removed(
                    store,
                    settings,
                    &name,
                    cur.map(|v| v.version.clone()),
                    &of,
                    now,
                )
                .await?
            }
        };
        campaigns.push(p);
    }
    let enrol = match enrolling_too {
        true => enrolling(store, settings, now).await?,
        false => Vec::new(),
    };
    let mut summary = Summary {
        enrolling: enrol.iter().map(|e| e.leads).sum(),
        ..Summary::default()
    };
    for c in &campaigns {
        summary.cancelled += c.cancelled.iter().map(|s| s.deliveries).sum::<i64>();
        summary.retemplated += c.retemplated.iter().map(|s| s.deliveries).sum::<i64>();
        summary.rescheduled += c.rescheduled;
        summary.moved += c.moved.iter().map(|m| m.leads).sum::<i64>();
        summary.parked += c.parked;
    }
    Ok(Plan {
        now,
        campaigns,
        enrol,
        summary,
    })
}

fn empty(campaign: &str, status: &'static str, leads: i64) -> CampaignPlan {
    CampaignPlan {
        campaign: campaign.to_string(),
        status,
        from_version: None,
        to_version: None,
        changes: Vec::new(),
        leads,
        cancelled: Vec::new(),
        retemplated: Vec::new(),
        rescheduled: 0,
        samples: Vec::new(),
        moved: Vec::new(),
        parked: 0,
    }
}

/// A configured campaign: its waiting steps under the new definition.
async fn changed<S: Store>(
    store: &S,
    settings: &Settings,
    c: &Campaign,
    from_version: Option<String>,
    old: Option<CampaignDef>,
    leads: i64,
    now: DateTime<Utc>,
) -> Result<CampaignPlan, StoreError> {
    let def = CampaignDef::of(c);
    let version = def.version();
    let status = match (&from_version, &old) {
        (Some(v), _) if *v == version => "unchanged",
        (Some(_), Some(_)) => "changed",
        _ if leads > 0 => "unversioned",
        _ => "new",
    };
    let mut p = empty(&c.name, status, leads);
    p.changes = old.as_ref().map(|o| o.changes_to(&def)).unwrap_or_default();
    p.from_version = from_version;
    p.to_version = Some(version);
    if status == "unchanged" {
        return Ok(p);
    }
    let max = c.cadence.max_touches;
    let mut cancelled: BTreeMap<u32, i64> = BTreeMap::new();
    let mut retemplated: BTreeMap<(u32, String, String), i64> = BTreeMap::new();
    for w in store.waiting_counts(&c.name).await? {
        if w.step >= max {
            *cancelled.entry(w.step + 1).or_default() += w.deliveries;
            continue;
        }
        let to = c.template_for(w.step);
        if to != w.template {
            *retemplated
                .entry((w.step + 1, w.template.clone(), to.to_string()))
                .or_default() += w.deliveries;
        }
        if !w.retrying && old.as_ref().is_some_and(|o| o.retimes(&def, w.step)) {
            p.rescheduled += w.deliveries;
        }
    }
    p.cancelled = cancelled
        .into_iter()
        .map(|(step, deliveries)| StepCount { step, deliveries })
        .collect();
    p.retemplated = retemplated
        .into_iter()
        .map(|((step, from, to), deliveries)| Retemplated {
            step,
            from,
            to,
            deliveries,
        })
        .collect();
    if p.rescheduled > 0 {
        for w in store.waiting_steps(&c.name, false, 0, PAGE).await? {
            if p.samples.len() >= SAMPLES {
                break;
            }
            let place = super::place(&w, settings.default_tz);
            if let Some(to) = rules::fate(old.as_ref(), c, &waiting(&w), now, place).due_at {
                p.samples.push(Sample {
                    email: w.email.clone(),
                    step: w.step + 1,
                    from: w.due_at,
                    to,
                });
            }
        }
    }
    Ok(p)
}

/// A campaign no longer configured: where its leads go. A segment that alone decides where
/// its leads go is counted from `followed` (active enrolments per segment, one aggregate);
/// leads are read, page by page, only for the segments that do not.
async fn removed<S: Store>(
    store: &S,
    settings: &Settings,
    name: &str,
    from_version: Option<String>,
    followed: &[Followed],
    now: DateTime<Utc>,
) -> Result<CampaignPlan, StoreError> {
    let leads = followed.iter().map(|f| f.enrolments).sum();
    let mut p = empty(name, "removed", leads);
    p.from_version = from_version;
    let mut moved: BTreeMap<(String, String, String), i64> = BTreeMap::new();
    let mut undecided = false;
    for f in followed {
        match rules::destination(
            name,
            &f.segment,
            &settings.segments,
            &settings.campaigns,
            None,
        ) {
            Destination::Campaign { campaign, segment } => {
                *moved
                    .entry((f.segment.clone(), campaign, segment))
                    .or_default() += f.enrolments
            }
            Destination::Park(_) => undecided = true,
        }
    }
    let mut after = 0;
    while undecided {
        let page = store.active_enrolments(name, after, PAGE).await?;
        let Some(last) = page.last() else { break };
        after = last.enrolment_id;
        undecided = page.len() == PAGE;
        let page: Vec<_> = page
            .iter()
            .filter(|e| {
                !rules::decided_by_segment(
                    name,
                    &e.segment,
                    &settings.segments,
                    &settings.campaigns,
                )
            })
            .collect();
        let ids: Vec<i64> = page.iter().map(|e| e.lead_id).collect();
        let by_id: BTreeMap<i64, crate::domain::lead::Lead> = store
            .leads_by_ids(&ids)
            .await?
            .into_iter()
            .map(|l| (l.id, l))
            .collect();
        for e in &page {
            let lead = by_id.get(&e.lead_id).map(|l| (l, now, settings.default_tz));
            match rules::destination(
                name,
                &e.segment,
                &settings.segments,
                &settings.campaigns,
                lead,
            ) {
                Destination::Campaign { campaign, segment } => {
                    *moved
                        .entry((e.segment.clone(), campaign, segment))
                        .or_default() += 1
                }
                Destination::Park(_) => p.parked += 1,
            }
        }
    }
    p.moved = moved
        .into_iter()
        .map(|((segment, to_campaign, to_segment), leads)| Moved {
            segment,
            to_campaign,
            to_segment,
            leads,
        })
        .collect();
    Ok(p)
}

/// `new` leads a segment of `settings` matches at `now`, per segment. The leads are read as
/// `forecast` reads them (`ForecastStore::new_leads`: streamed, suppressed addresses left
/// out as the daemon's enrolment leaves them, and only the loss reasons some segment lists
/// when every segment lists some), so a config whose segments cannot take the `new` leads
/// waiting does not read them.
async fn enrolling<S: Store>(
    store: &S,
    settings: &Settings,
    now: DateTime<Utc>,
) -> Result<Vec<Enrolling>, StoreError> {
    let mut counts: BTreeMap<(String, String), i64> = BTreeMap::new();
    let reasons = reason_filter(&settings.segments);
    store
        .new_leads(&reasons, |lead| {
            if let Some(s) = first_match(&settings.segments, &lead, now, settings.default_tz)
                .filter(|s| settings.campaigns.contains_key(&s.campaign))
            {
                *counts
                    .entry((s.name.clone(), s.campaign.clone()))
                    .or_default() += 1;
            }
        })
        .await?;
    Ok(counts
        .into_iter()
        .map(|((segment, campaign), leads)| Enrolling {
            segment,
            campaign,
            leads,
        })
        .collect())
}

impl Plan {
    /// Whether applying it cancels steps, moves or parks leads.
    pub fn is_destructive(&self) -> bool {
        let s = &self.summary;
        s.cancelled > 0 || s.moved > 0 || s.parked > 0
    }

    /// One warning per destructive change (for `check`).
    pub fn warnings(&self) -> Vec<String> {
        let mut out = Vec::new();
        for c in &self.campaigns {
            let cancelled: i64 = c.cancelled.iter().map(|s| s.deliveries).sum();
            if cancelled > 0 {
                out.push(format!(
                    "plan: campaign `{}`: {cancelled} waiting step(s) will be cancelled ({})",
                    c.campaign,
                    c.changes.join("; ")
                ));
            }
            let moved: i64 = c.moved.iter().map(|m| m.leads).sum();
            if moved > 0 {
                out.push(format!(
                    "plan: campaign `{}` is no longer configured: {moved} lead(s) will move to another campaign",
                    c.campaign
                ));
            }
            if c.parked > 0 {
                out.push(format!(
                    "plan: campaign `{}` is no longer configured: {} lead(s) will be parked `paused` (no segment names a campaign for them)",
                    c.campaign, c.parked
                ));
            }
        }
        out
    }

    /// The plan as text (what `rewarm plan` prints).
    pub fn text(&self) -> String {
        let mut out = String::new();
        let ver = |v: &Option<String>| v.clone().unwrap_or_else(|| "-".into());
        for c in &self.campaigns {
            out.push_str(&format!("campaign {}: {}", c.campaign, c.status));
            match c.status {
                "changed" => out.push_str(&format!(
                    " ({} → {})",
                    ver(&c.from_version),
                    ver(&c.to_version)
                )),
                "unchanged" | "new" | "unversioned" => {
                    out.push_str(&format!(" ({})", ver(&c.to_version)))
                }
                _ => {}
            }
            out.push_str(&format!(", {} lead(s) in it\n", c.leads));
            for change in &c.changes {
                out.push_str(&format!("  {change}\n"));
            }
            if !c.cancelled.is_empty() {
                let total: i64 = c.cancelled.iter().map(|s| s.deliveries).sum();
                let per: Vec<String> = c
                    .cancelled
                    .iter()
                    .map(|s| format!("step {}: {}", s.step, s.deliveries))
                    .collect();
                out.push_str(&format!(
                    "  cancelled: {total} waiting step(s) ({})\n",
                    per.join(", ")
                ));
            }
            for r in &c.retemplated {
                out.push_str(&format!(
                    "  re-templated: step {}: {} → {}: {}\n",
                    r.step, r.from, r.to, r.deliveries
                ));
            }
            if c.rescheduled > 0 {
                out.push_str(&format!(
                    "  rescheduled: {} scheduled step(s) re-timed from the new cadence\n",
                    c.rescheduled
                ));
                for s in &c.samples {
                    out.push_str(&format!(
                        "    {} step {}: {} → {}\n",
                        s.email,
                        s.step,
                        s.from.format("%Y-%m-%d %H:%M UTC"),
                        s.to.format("%Y-%m-%d %H:%M UTC")
                    ));
                }
            }
            for m in &c.moved {
                out.push_str(&format!(
                    "  moved: {} lead(s) of segment {} → campaign {} (segment {})\n",
                    m.leads, m.segment, m.to_campaign, m.to_segment
                ));
            }
            if c.parked > 0 {
                out.push_str(&format!("  parked (paused): {} lead(s)\n", c.parked));
            }
        }
        for e in &self.enrol {
            out.push_str(&format!(
                "enrol: {} new lead(s) → segment {} (campaign {})\n",
                e.leads, e.segment, e.campaign
            ));
        }
        out.push_str(&format!("summary: {}\n", self.summary.line()));
        out
    }
}
