//! The rules of an edit, pure: a campaign's normalised definition and its version, what
//! changed between two definitions, what a change does to one waiting step, and where a lead
//! of a removed campaign goes. `apply` and `plan` (the parent module) run these same rules, so
//! `plan` says exactly what applying the config will do.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::config::Campaign;
use crate::domain::cadence::Rhythm;
use crate::domain::calendar::Place;
use crate::domain::lead::Lead;
use crate::domain::segment::{OnChange, Segment, first_match};

/// A campaign as its leads experience it, normalised (durations and windows spelled one
/// way): what the version hashes and `campaign_versions.definition` keeps.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CampaignDef {
    pub first_after: String,
    pub every: Option<String>,
    pub cron: Option<String>,
    pub max_touches: u32,
    pub send_window: String,
    /// The template of each configured step (`call` for a call step); the last repeats.
    pub templates: Vec<String>,
    #[serde(default)]
    pub calls: Vec<u32>,
    #[serde(default)]
    pub track_clicks: bool,
    #[serde(default)]
    pub then: Option<String>,
    #[serde(default)]
    pub late_after: Option<String>,
    #[serde(default)]
    pub late: String,
}

impl CampaignDef {
    pub fn of(c: &Campaign) -> CampaignDef {
        let (every, cron) = match &c.cadence.rhythm {
            Rhythm::Every(span) => (Some(span.to_string()), None),
            Rhythm::Cron(spec) => (None, Some(spec.to_string())),
        };
        CampaignDef {
            first_after: c.cadence.first_after.to_string(),
            every,
            cron,
            max_touches: c.cadence.max_touches,
            send_window: c.cadence.window.describe(),
            templates: c.templates.clone(),
            calls: c.calls.keys().copied().collect(),
            track_clicks: c.track_clicks,
            then: c.then.clone(),
            late_after: c.lateness.after.map(|d| format!("{}s", d.num_seconds())),
            late: c.lateness.policy.as_str().to_string(),
        }
    }

    /// The version: the first 12 hex digits of the SHA-256 of the definition's JSON (fields
    /// in declaration order, so the same definition always gives the same version).
    pub fn version(&self) -> String {
        let json = serde_json::to_vec(self).unwrap_or_default();
        let digest = Sha256::digest(&json);
        digest.iter().take(6).map(|b| format!("{b:02x}")).collect()
    }

    pub fn to_json(&self) -> serde_json::Value {
        serde_json::to_value(self).unwrap_or_default()
    }

    pub fn from_json(v: &serde_json::Value) -> Option<CampaignDef> {
        serde_json::from_value(v.clone()).ok()
    }

    /// The template of step `step` (0-based): the last one repeats.
    pub fn template_for(&self, step: u32) -> &str {
        let i = (step as usize).min(self.templates.len().saturating_sub(1));
        self.templates.get(i).map(String::as_str).unwrap_or("")
    }

    /// Whether the due times of its steps would differ (first_after, rhythm, window).
    pub fn timing_differs(&self, other: &CampaignDef) -> bool {
        (
            &self.first_after,
            &self.every,
            &self.cron,
            &self.send_window,
        ) != (
            &other.first_after,
            &other.every,
            &other.cron,
            &other.send_window,
        )
    }

    /// Whether a waiting step `step` is re-timed going from `self` to `new`: step 0 when
    /// `first_after` or the window changed, a later step when the rhythm or the window did.
    pub fn retimes(&self, new: &CampaignDef, step: u32) -> bool {
        let window = self.send_window != new.send_window;
        if step == 0 {
            window || self.first_after != new.first_after
        } else {
            window || (&self.every, &self.cron) != (&new.every, &new.cron)
        }
    }

    /// What changed from `self` to `new`, one line per setting ("max_touches 4 → 1").
    pub fn changes_to(&self, new: &CampaignDef) -> Vec<String> {
        let mut out = Vec::new();
        let show = |o: &Option<String>| o.clone().unwrap_or_else(|| "-".into());
        let mut add = |key: &str, old: String, new: String| {
            if old != new {
                out.push(format!("{key} {old} → {new}"));
            }
        };
        add(
            "first_after",
            self.first_after.clone(),
            new.first_after.clone(),
        );
        add("every", show(&self.every), show(&new.every));
        add("cron", show(&self.cron), show(&new.cron));
        add(
            "max_touches",
            self.max_touches.to_string(),
            new.max_touches.to_string(),
        );
        add(
            "send_window",
            self.send_window.clone(),
            new.send_window.clone(),
        );
        add(
            "templates",
            format!("[{}]", self.templates.join(", ")),
            format!("[{}]", new.templates.join(", ")),
        );
        add("then", show(&self.then), show(&new.then));
        add("late_after", show(&self.late_after), show(&new.late_after));
        add("late", self.late.clone(), new.late.clone());
        add(
            "track_clicks",
            self.track_clicks.to_string(),
            new.track_clicks.to_string(),
        );
        out
    }
}

/// A waiting step as the rules see it.
#[derive(Debug, Clone, PartialEq)]
pub struct Waiting {
    pub step: u32,
    pub template: String,
    pub due_at: DateTime<Utc>,
    /// Waiting for a retry: its time is the retry's, not the cadence's.
    pub retrying: bool,
    /// The loss date (or import time): what step 0 counts from.
    pub anchor: DateTime<Utc>,
    /// When the step before it ended (None for step 0).
    pub prev_at: Option<DateTime<Utc>>,
}

/// What an edit does to one waiting step.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Fate {
    /// Beyond the new `max_touches`: cancelled.
    pub cancel: bool,
    /// The template the new config names for the step, when it differs.
    pub template: Option<String>,
    /// The due time the new timing gives, when it differs.
    pub due_at: Option<DateTime<Utc>>,
}

impl Fate {
    pub fn is_noop(&self) -> bool {
        *self == Fate::default()
    }
}

/// What re-planning from `old` (None: not known — a campaign applied before versions were
/// kept: its timing is kept) to `new` does to `w`, at `now`, in the lead's zone `tz`:
/// - a step at or past the new `max_touches` is cancelled;
/// - its template is the one the new config names for the step;
/// - when first_after, the rhythm or the window changed, a scheduled step is due where the
///   new cadence puts it: step 0 after the loss, a later step after the previous one ended;
///   never before `now`. A step waiting for a retry keeps its retry time.
pub fn fate(
    old: Option<&CampaignDef>,
    new: &Campaign,
    w: &Waiting,
    now: DateTime<Utc>,
    place: impl Into<Place>,
) -> Fate {
    let place = place.into();
    if w.step >= new.cadence.max_touches {
        return Fate {
            cancel: true,
            ..Fate::default()
        };
    }
    let template = Some(new.template_for(w.step).to_string()).filter(|t| *t != w.template);
    let retime = !w.retrying && old.is_some_and(|o| o.retimes(&CampaignDef::of(new), w.step));
    let due_at = retime
        .then(|| due_under(new, w, now, place))
        .flatten()
        .filter(|d| *d != w.due_at);
    Fate {
        cancel: false,
        template,
        due_at,
    }
}

/// When `new`'s cadence puts the waiting step `w`.
fn due_under(
    new: &Campaign,
    w: &Waiting,
    now: DateTime<Utc>,
    place: Place,
) -> Option<DateTime<Utc>> {
    let c = &new.cadence;
    match (w.step, w.prev_at) {
        (0, _) | (_, None) => Some(c.first_due(w.anchor, now, place)),
        (step, Some(prev)) => {
            let due = c.next_due(step, prev, place)?;
            Some(c.window.next_open(due.max(now), place.tz))
        }
    }
}

/// Where the lead of an enrolment in a removed campaign goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Destination {
    /// Into `campaign`, as a lead of `segment`.
    Campaign { campaign: String, segment: String },
    /// No segment names a configured campaign for it: parked `paused` with this reason.
    Park(String),
}

/// The campaign a lead of the removed campaign `removed` goes to: the one its segment (by
/// name) now names; else the one the first segment that matches the lead now names (`lead`
/// is needed only then: None counts as no match); else it is parked.
pub fn destination(
    removed: &str,
    segment: &str,
    segments: &[Segment],
    campaigns: &BTreeMap<String, Campaign>,
    lead: Option<(&Lead, DateTime<Utc>, Tz)>,
) -> Destination {
    let usable = |s: &Segment| s.campaign != removed && campaigns.contains_key(&s.campaign);
    if let Some(s) = segments
        .iter()
        .find(|s| s.name == segment)
        .filter(|s| usable(s))
    {
        return Destination::Campaign {
            campaign: s.campaign.clone(),
            segment: s.name.clone(),
        };
    }
    match lead.and_then(|(l, now, tz)| first_match(segments, l, now, tz)) {
        Some(s) if usable(s) => Destination::Campaign {
            campaign: s.campaign.clone(),
            segment: s.name.clone(),
        },
        _ => Destination::Park(format!(
            "campaign `{removed}` was removed and no segment names a configured campaign for the lead"
        )),
    }
}

/// Whether the segment named `segment` alone decides a lead's destination (so `plan` can
/// count by segment without reading leads).
pub fn decided_by_segment(
    removed: &str,
    segment: &str,
    segments: &[Segment],
    campaigns: &BTreeMap<String, Campaign>,
) -> bool {
    matches!(
        destination(removed, segment, segments, campaigns, None),
        Destination::Campaign { .. }
    )
}

/// Where a lead whose data changed goes (None: it stays in its campaign). The first segment
/// that matches it now decides; if that is its current segment, names its current campaign
/// or nothing matches, it stays. Otherwise a lead not emailed yet in its current enrolment
/// (`emailed` false) moves, and an emailed one moves only if its current segment says
/// `on_change = "move"` (the default, `stay`, keeps it where it is).
pub fn after_change(
    campaign: &str,
    segment: &str,
    emailed: bool,
    segments: &[Segment],
    campaigns: &BTreeMap<String, Campaign>,
    (lead, now, default_tz): (&Lead, DateTime<Utc>, Tz),
) -> Option<Destination> {
    let new = first_match(segments, lead, now, default_tz)?;
    if new.name == segment || new.campaign == campaign || !campaigns.contains_key(&new.campaign) {
        return None;
    }
    let rule = segments
        .iter()
        .find(|s| s.name == segment)
        .map(|s| s.on_change)
        .unwrap_or_default();
    (!emailed || rule == OnChange::Move).then(|| Destination::Campaign {
        campaign: new.campaign.clone(),
        segment: new.name.clone(),
    })
}

/// The step a moved lead continues at in `target` and when it is due: the step its history
/// says (`steps_done` steps ended), counted from when the last one ended (`last_at`), or
/// from the loss (`anchor`) if none did; None when it already had as many steps as `target`
/// has (it completes there).
pub fn continue_at(
    target: &Campaign,
    steps_done: u32,
    last_at: Option<DateTime<Utc>>,
    anchor: DateTime<Utc>,
    now: DateTime<Utc>,
    tz: Tz,
) -> Option<(u32, DateTime<Utc>)> {
    let c = &target.cadence;
    if steps_done >= c.max_touches {
        return None;
    }
    let due = match (steps_done, last_at) {
        (0, _) | (_, None) => c.first_due(anchor, now, tz),
        (step, Some(last)) => c.window.next_open(c.next_due(step, last, tz)?.max(now), tz),
    };
    Some((steps_done, due))
}

#[cfg(test)]
#[path = "rules_tests.rs"]
mod tests;
