//! `rewarm explain EMAIL`: a lead's story in plain words — which segment took it and why each
//! earlier one did not, its campaign and step, its next email and every rule that moved it,
//! what cancelled each step, and what would bring it back if it is stopped. Built from what
//! the store holds (the lead, its deliveries and timeline, the paused campaigns) with the
//! same rules the scheduler uses ([`Segment::misses`], [`Cadence::next_slot_why`]); no I/O
//! here, so each situation is unit tested and `leads show` reuses the pieces.

use std::collections::BTreeMap;

use chrono::{DateTime, TimeDelta, Utc};
use chrono_tz::Tz;

use crate::config::{Campaign, Settings};
use crate::domain::cadence::days::Move;
use crate::domain::cadence::late::{LatePolicy, Lateness};
use crate::domain::cadence::{Cadence, Rhythm};
use crate::domain::calendar::Place;
use crate::domain::lead::{Lead, LeadState};
use crate::outbound::replan::rules::CampaignDef;
use crate::store::{CampaignVersion, Event, LeadDelivery, LeadLifecycle, PausedCampaign};

/// Everything the story is told from.
pub struct Facts<'a> {
    pub settings: &'a Settings,
    pub lead: &'a Lead,
    pub lifecycle: LeadLifecycle,
    /// Oldest first.
    pub deliveries: &'a [LeadDelivery],
    /// Oldest first.
    pub timeline: &'a [Event],
    pub paused: &'a [PausedCampaign],
    pub score: i64,
    /// The suppression entry covering the lead (its reason), if any.
    pub suppressed: Option<String>,
    pub versions: Versions,
    pub now: DateTime<Utc>,
}

/// Campaign versions as the store has them (`campaign_versions`, `enrolments.version`).
#[derive(Debug, Clone, Default)]
pub struct Versions {
    /// The version the lead's enrolment in each campaign follows (None: the current one).
    pub followed: BTreeMap<String, Option<String>>,
    /// Each campaign's version applied last.
    pub current: BTreeMap<String, CampaignVersion>,
}

/// Delivery states that still wait to be sent.
const WAITING: [&str; 4] = ["scheduled", "retry_wait", "held", "claimed"];

impl Facts<'_> {
    fn place(&self) -> Place {
        self.lead.place(self.settings.default_tz)
    }

    fn tz(&self) -> Tz {
        self.place().tz
    }

    /// The waiting delivery, if any (the newest).
    pub fn waiting(&self) -> Option<&LeadDelivery> {
        self.deliveries
            .iter()
            .rev()
            .find(|d| WAITING.contains(&d.state.as_str()))
    }

    fn campaign_paused(&self, name: &str) -> Option<&PausedCampaign> {
        self.paused.iter().find(|p| p.name == name)
    }

    /// "Mon 2027-01-04 09:00 CET (2027-01-04 08:00 UTC)"; UTC once for a UTC lead.
    fn when(&self, t: DateTime<Utc>) -> String {
        let local = t.with_timezone(&self.tz()).format("%a %Y-%m-%d %H:%M %Z");
        if self.tz() == Tz::UTC {
            return local.to_string();
        }
        format!("{local} ({} UTC)", t.format("%Y-%m-%d %H:%M"))
    }
}

/// The whole story, line by line.
pub fn explain(f: &Facts) -> Vec<String> {
    let mut out = vec![header(f)];
    out.extend(segments(f));
    out.extend(campaign(f));
    out.extend(next(f));
    let steps = steps(f);
    if !steps.is_empty() {
        out.push("Steps:".into());
        out.extend(steps.into_iter().map(|l| format!("  {l}")));
    }
    out.extend(comeback(f));
    out
}

fn header(f: &Facts) -> String {
    let place = f.place();
    let mut country = match (f.lead.country(), place.country) {
        (Some(c), _) => format!("country {c} (its `country` field)"),
        (None, Some(c)) => format!("country {c} (from its zone)"),
        (None, None) => "no country (no holidays apply)".into(),
    };
    let field = f
        .lead
        .fields
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("country"));
    if let Some((_, v)) = field.filter(|_| f.lead.country().is_none()) {
        country.push_str(&format!(
            " — its `country` field `{v}` is not a two-letter ISO 3166 code, so it is ignored"
        ));
    }
    format!(
        "{}: {}, score {}; zone {}, {country}",
        f.lead.email,
        f.lead.state.as_str(),
        f.score,
        place.tz.name()
    )
}

/// Each segment in config order up to the one that matches now, with why each earlier one
/// did not; and the segment the lead was enrolled by, if different.
fn segments(f: &Facts) -> Vec<String> {
    let mut out = vec!["Segments (first match wins):".to_string()];
    let mut matched = false;
    for s in &f.settings.segments {
        let misses = s.misses(f.lead, f.now, f.settings.default_tz);
        if misses.is_empty() {
            out.push(format!(
                "  `{}` matches → campaign `{}`",
                s.name, s.campaign
            ));
            matched = true;
            break;
        }
        let said: Vec<String> = misses.iter().map(ToString::to_string).collect();
        out.push(format!("  `{}` does not: {}", s.name, said.join("; ")));
    }
    if !matched {
        out.push("  no segment matches now".into());
    }
    if let Some(e) = last_event(f, &["enrolled"]) {
        out.push(format!(
            "  enrolled {} by segment `{}` in campaign `{}`",
            f.when(e.at),
            text(&e.detail["segment"]),
            text(&e.detail["campaign"])
        ));
    }
    out
}

fn campaign(f: &Facts) -> Vec<String> {
    let Some(current) = f.waiting().or(f.deliveries.last()) else {
        return Vec::new();
    };
    let Some(c) = f.settings.campaigns.get(&current.campaign) else {
        return vec![format!(
            "Campaign `{}`: no longer configured",
            current.campaign
        )];
    };
    let sent = f
        .deliveries
        .iter()
        .filter(|d| d.campaign == c.name && d.cycle == current.cycle && d.state == "sent")
        .count();
    let mut out = vec![format!(
        "Campaign `{}`: {}; {sent} of {} step(s) sent",
        c.name,
        describe(c),
        c.cadence.max_touches
    )];
    out.extend(version(f, c).into_iter().map(|l| format!("  {l}")));
    out.push(format!("  lateness: {}", lateness(&c.lateness)));
    if let Some(p) = f.campaign_paused(&c.name) {
        out.push(format!(
            "  paused {} by {}",
            f.when(p.paused_at),
            p.paused_by
        ));
    }
    out
}

/// The version the lead's enrolment follows, against the one applied last and the file's.
fn version(f: &Facts, c: &Campaign) -> Vec<String> {
    let in_file = CampaignDef::of(c).version();
    let Some(current) = f.versions.current.get(&c.name) else {
        return vec![format!(
            "version: none recorded yet (the daemon records version {in_file} when it starts)"
        )];
    };
    let followed = f
        .versions
        .followed
        .get(&c.name)
        .cloned()
        .flatten()
        .unwrap_or_else(|| current.version.clone());
    let mut out = vec![if followed == current.version {
        format!(
            "version {followed}, the current one (applied {})",
            f.when(current.applied_at)
        )
    } else {
        format!(
            "version {followed}, an earlier one: the campaign is at version {} since {}",
            current.version,
            f.when(current.applied_at)
        )
    }];
    if in_file != current.version {
        out.push(format!(
            "the config file holds version {in_file}, not applied yet: `rewarm plan` shows what applying it changes"
        ));
    }
    out
}

/// A campaign's lateness policy in words, the default said so.
fn lateness(l: &Lateness) -> String {
    let default = if l.policy == LatePolicy::default() {
        ", the default"
    } else {
        ""
    };
    let policy = format!("`late = \"{}\"`{default}", l.policy.as_str());
    let Some(after) = l.after else {
        return format!(
            "no `late_after`, so no step is ever late: a step goes out when it is reached and the rest of the cadence moves with it ({policy})"
        );
    };
    let what = match l.policy {
        LatePolicy::Skip => "skipped, the next step staying on its planned date",
        LatePolicy::Send => "sent at once, the next steps keeping their planned dates",
        LatePolicy::Shift => "sent at once, the rest of the cadence moving with it",
    };
    format!(
        "a step reached more than {} after its due time is {what} ({policy})",
        span(after)
    )
}

/// "2d", "36h", "90m", "45s": the largest unit that divides it.
fn span(d: TimeDelta) -> String {
    let s = d.num_seconds();
    match s {
        _ if s != 0 && s % 86_400 == 0 => format!("{}d", s / 86_400),
        _ if s != 0 && s % 3_600 == 0 => format!("{}h", s / 3_600),
        _ if s != 0 && s % 60 == 0 => format!("{}m", s / 60),
        _ => format!("{s}s"),
    }
}

/// "every 30d, window Mon-Fri 09:00-17:00, skips holidays".
pub fn describe(c: &Campaign) -> String {
    let rhythm = match &c.cadence.rhythm {
        Rhythm::Every(span) => format!(
            "first {} after the loss, then every {span}",
            c.cadence.first_after
        ),
        Rhythm::Cron(spec) => format!(
            "first {} after the loss, then cron `{spec}`",
            c.cadence.first_after
        ),
    };
    let mut parts = vec![rhythm, format!("window {}", c.cadence.window)];
    let days = &c.cadence.days;
    if days.skip_holidays {
        parts.push("skips holidays".into());
    }
    if days.business_days_only {
        parts.push("business days only".into());
    }
    if !days.blackouts.is_empty() {
        let names: Vec<&str> = days.blackouts.iter().map(|b| b.name.as_str()).collect();
        parts.push(format!("blackouts: {}", names.join(", ")));
    }
    parts.join(", ")
}

/// The next email: when, and every rule that moved it.
pub fn next(f: &Facts) -> Vec<String> {
    let Some(d) = f.waiting() else {
        return vec!["Next email: none scheduled".into()];
    };
    let what = f
        .settings
        .campaigns
        .get(&d.campaign)
        .and_then(|c| c.call_for(d.step))
        .map_or("email", |_| "call task");
    let mut out = vec![format!(
        "Next {what}: step {} `{}` due {}{}",
        d.step + 1,
        d.template,
        f.when(d.due_at),
        match d.state.as_str() {
            "held" => " — held",
            "claimed" => " — being sent",
            "retry_wait" => " — waiting to retry",
            _ => "",
        }
    )];
    if let Some(c) = f.settings.campaigns.get(&d.campaign) {
        out.extend(planned(f, c, d).into_iter().map(|l| format!("  {l}")));
    }
    out.extend(step_events(f, d).into_iter().map(|l| format!("  {l}")));
    // A due time set outside the cadence (an out-of-office return date, a retry) still waits
    // for the window and an open day when it is claimed.
    if let Some(c) = f.settings.campaigns.get(&d.campaign) {
        let slot = c.cadence.next_slot(d.due_at.max(f.now), f.place());
        if slot != d.due_at.max(f.now) {
            out.push(format!(
                "  goes out at the first open slot after that: {}",
                f.when(slot)
            ));
        }
    }
    if let Some(c) = f.settings.campaigns.get(&d.campaign)
        && d.state == "scheduled"
        && let Some(by) = c.lateness.late_by(d.due_at, f.now)
    {
        let then = match c.lateness.policy {
            LatePolicy::Skip => "the next pass skips it",
            LatePolicy::Send => {
                "it goes out at the next pass, the next step keeping its planned date"
            }
            LatePolicy::Shift => {
                "it goes out at the next pass, the rest of the cadence moving with it"
            }
        };
        out.push(format!(
            "  late by {} (more than `late_after`): {then}",
            span(TimeDelta::minutes(by.num_minutes()))
        ));
    }
    if d.state == "held" {
        if f.lead.state == LeadState::Paused {
            out.push("  held: the lead is paused".into());
        }
        if let Some(p) = f.campaign_paused(&d.campaign) {
            out.push(format!("  held: campaign `{}` is paused", p.name));
        }
        if d.due_at < f.now {
            out.push("  overdue: on resume it is due at once, at the lead's next open slot".into());
        }
    }
    out
}

/// How the cadence placed step `d`: its base time and each move (window, closed day).
fn planned(f: &Facts, c: &Campaign, d: &LeadDelivery) -> Vec<String> {
    let tz = f.tz();
    let cadence: &Cadence = &c.cadence;
    let (base, from) = if d.step == 0 {
        let anchor = f.lead.lost_at.unwrap_or(f.lead.created_at);
        let what = if f.lead.lost_at.is_some() {
            "the loss"
        } else {
            "the import"
        };
        let base = cadence.first_after.after(anchor, tz);
        let from = format!("{} after {what} ({})", cadence.first_after, f.when(anchor));
        match last_event(f, &["enrolled"]).map(|e| e.at) {
            Some(enrolled) if enrolled > base => (
                enrolled,
                format!(
                    "{from}, already past when it was enrolled ({}): due at once",
                    f.when(enrolled)
                ),
            ),
            _ => (base, from),
        }
    } else {
        let Some(prev) = f
            .deliveries
            .iter()
            .rev()
            .find(|p| p.campaign == d.campaign && p.cycle == d.cycle && p.step + 1 == d.step)
        else {
            return Vec::new();
        };
        let prev_at = prev.sent_at.unwrap_or(prev.updated_at);
        let base = match &cadence.rhythm {
            Rhythm::Every(span) => span.after(prev_at, tz),
            Rhythm::Cron(spec) => spec.next_after(prev_at, tz).unwrap_or(prev_at),
        };
        let rhythm = match &cadence.rhythm {
            Rhythm::Every(span) => format!("{span}"),
            Rhythm::Cron(spec) => format!("the next `{spec}` firing"),
        };
        (
            base,
            format!(
                "{rhythm} after step {} went out ({})",
                prev.step + 1,
                f.when(prev_at)
            ),
        )
    };
    let mut out = vec![format!("cadence: {from} → {}", f.when(base))];
    let (slot, moves) = cadence.next_slot_why(base, f.place());
    for m in moves {
        out.push(match m {
            Move::Window { to, .. } => {
                format!(
                    "send window {}: next opening {}",
                    cadence.window,
                    f.when(to)
                )
            }
            Move::ClosedDay { day, why } => {
                format!("closed day: {} is a {why}", day.format("%a %Y-%m-%d"))
            }
        });
    }
    if slot != d.due_at {
        out.push(format!(
            "planned for {}; now due {} (see below)",
            f.when(slot),
            f.when(d.due_at)
        ));
    }
    out
}

/// Events about step `d` since it was scheduled: deferrals (window, cap, rate limit, closed
/// day), retries, out-of-office postponements, pauses and resumes.
fn step_events(f: &Facts, d: &LeadDelivery) -> Vec<String> {
    let step = i64::from(d.step) + 1;
    let scheduled_at = f
        .deliveries
        .iter()
        .rev()
        .find(|p| p.campaign == d.campaign && p.cycle == d.cycle && p.step + 1 == d.step)
        .and_then(|p| p.sent_at.or(Some(p.updated_at)))
        .or_else(|| last_event(f, &["enrolled"]).map(|e| e.at))
        .unwrap_or(DateTime::<Utc>::MIN_UTC);
    let mut out = Vec::new();
    for e in f.timeline.iter().filter(|e| e.at >= scheduled_at) {
        let this_step = e.detail["campaign"].as_str() == Some(d.campaign.as_str())
            && e.detail["step"].as_i64() == Some(step);
        let line = match e.kind.as_str() {
            "delivery_deferred" if this_step => format!(
                "deferred {}: {} → {}",
                f.when(e.at),
                text(&e.detail["reason"]),
                time_text(f, &e.detail["until"])
            ),
            "delivery_retry" if this_step => format!(
                "retry {}: {} → {}",
                f.when(e.at),
                text(&e.detail["error"]),
                time_text(f, &e.detail["retry_at"])
            ),
            "postponed" => format!(
                "out of office: postponed until {} (reply of {})",
                time_text(f, &e.detail["until"]),
                f.when(e.at)
            ),
            "paused" | "resumed" => format!(
                "{} {} by {}{}",
                e.kind,
                f.when(e.at),
                text(&e.detail["by"]),
                e.detail["campaign"]
                    .as_str()
                    .map(|c| format!(" (campaign `{c}`)"))
                    .unwrap_or_default()
            ),
            _ => continue,
        };
        out.push(line);
    }
    out
}

/// One line per delivery: sent, failed, cancelled (and why), waiting.
pub fn steps(f: &Facts) -> Vec<String> {
    f.deliveries
        .iter()
        .map(|d| {
            let head = format!("{} step {} `{}`", d.campaign, d.step + 1, d.template);
            let what = match d.state.as_str() {
                "sent" => format!("sent {}", f.when(d.sent_at.unwrap_or(d.updated_at))),
                "tasked" => format!("call task to the owner {}", f.when(d.updated_at)),
                "failed" => format!(
                    "failed {}: {}",
                    f.when(d.updated_at),
                    d.last_error.as_deref().unwrap_or("no error recorded")
                ),
                "unknown" => format!(
                    "outcome unknown {} (lease expired; not resent)",
                    f.when(d.updated_at)
                ),
                "cancelled" => format!("cancelled {}: {}", f.when(d.updated_at), cause(f, d)),
                "held" => format!("held (due {})", f.when(d.due_at)),
                other => format!("{other} (due {})", f.when(d.due_at)),
            };
            format!("{head}: {what}")
        })
        .collect()
}

/// What cancelled `d`: the state change written at the same moment.
fn cause(f: &Facts, d: &LeadDelivery) -> String {
    let edit = f.timeline.iter().rev().find(|e| {
        e.kind == "cancelled"
            && e.at == d.updated_at
            && e.detail["campaign"].as_str() == Some(d.campaign.as_str())
            && e.detail["step"].as_i64() == Some(i64::from(d.step) + 1)
    });
    if let Some(e) = edit.filter(|e| e.detail["reason"] == crate::outbound::replan::REASON) {
        return match e.detail["max_touches"].as_i64() {
            Some(max) => format!("a config change lowered `max_touches` to {max}"),
            None => "a config change".into(),
        };
    }
    let kinds = [
        "rewarmed",
        "won",
        "out_of_scope",
        "working",
        "suppressed",
        "unsubscribed",
        "cancelled",
        "forgotten",
    ];
    f.timeline
        .iter()
        .rev()
        .find(|e| e.at == d.updated_at && kinds.contains(&e.kind.as_str()))
        .map_or_else(
            || "its cadence was stopped".to_string(),
            |e| {
                let reason = e.detail["reason"]
                    .as_str()
                    .map(|r| format!(" ({r})"))
                    .unwrap_or_default();
                format!("the lead was {}{reason}", e.kind.replace('_', " "))
            },
        )
}

/// For a lead that gets nothing: what would bring it back.
fn comeback(f: &Facts) -> Vec<String> {
    let email = &f.lead.email;
    let line = match f.lead.state {
        LeadState::New => not_enrolled(f),
        LeadState::Paused => format!(
            "Stopped: paused{}; `rewarm leads resume {email}` brings it back as {}",
            last_event(f, &["paused"])
                .map(|e| format!(" {} by {}", f.when(e.at), text(&e.detail["by"])))
                .unwrap_or_default(),
            f.lifecycle.paused_from.map_or("new", |s| s.as_str())
        ),
        LeadState::Rewarmed => format!(
            "Stopped: re-warmed and handed to sales; their \"not now\" feedback or `rewarm leads recycle {email} --reason …` brings it back to nurture"
        ),
        LeadState::Won => format!(
            "Stopped: won; nothing more is sent (`rewarm leads recycle {email} --reason …` if the deal is lost again)"
        ),
        LeadState::OutOfScope => format!(
            "Stopped: out of scope ({}); {}",
            f.lifecycle.scope_reason.as_deref().unwrap_or("no reason"),
            f.lifecycle.recheck_at.map_or_else(
                || format!(
                    "no re-check date: `rewarm leads recycle {email} --reason …` brings it back"
                ),
                |t| format!("the daemon brings it back to nurture after {}", f.when(t))
            )
        ),
        LeadState::Suppressed => format!(
            "Stopped: suppressed ({}); only `rewarm suppress remove ADDRESS --restore` brings it back",
            f.suppressed
                .as_deref()
                .unwrap_or("no entry left: `rewarm leads recycle` may bring it back")
        ),
        LeadState::Completed => format!(
            "Stopped: every step of its campaign was sent; `rewarm leads recycle {email} --reason … --campaign NAME` starts another"
        ),
        LeadState::Nurturing => match f.waiting() {
            Some(d) if d.state == "held" && f.campaign_paused(&d.campaign).is_some() => format!(
                "Stopped: campaign `{}` is paused; `rewarm campaigns resume {}` brings it back",
                d.campaign, d.campaign
            ),
            _ => return Vec::new(),
        },
    };
    vec![line]
}

/// A `new` lead: when a segment will take it (a min_age still to come), or that none will.
fn not_enrolled(f: &Facts) -> String {
    let soon = f.settings.segments.iter().find_map(|s| {
        let misses = s.misses(f.lead, f.now, f.settings.default_tz);
        match misses.as_slice() {
            [crate::domain::segment::Miss::TooYoung { on, .. }] => Some((s, *on)),
            _ => None,
        }
    });
    match soon {
        Some((s, on)) => format!(
            "Not enrolled yet: segment `{}` takes it once old enough, at the first pass after {}",
            s.name,
            f.when(on)
        ),
        None => "Not enrolled: no segment matches; change the lead's data (re-import) or add a segment that takes it".into(),
    }
}

fn last_event<'a>(f: &'a Facts, kinds: &[&str]) -> Option<&'a Event> {
    f.timeline
        .iter()
        .rev()
        .find(|e| kinds.contains(&e.kind.as_str()))
}

/// A time stamp of an event's detail in the lead's words, or the text as it is.
fn time_text(f: &Facts, v: &serde_json::Value) -> String {
    v.as_str()
        .and_then(|s| DateTime::parse_from_rfc3339(s).ok())
        .map_or_else(|| text(v), |t| f.when(t.to_utc()))
}

fn text(v: &serde_json::Value) -> String {
    match v {
        serde_json::Value::String(s) => s.clone(),
        serde_json::Value::Null => "-".into(),
        other => other.to_string(),
    }
}

#[cfg(test)]
#[path = "explain_tests.rs"]
mod tests;
