//! `[campaigns.NAME]`: each campaign's cadence (first touch, rhythm, send window) and its
//! templates, or its `steps` (each an email or a call task).

use std::collections::BTreeMap;

use crate::config::raw::{OneOrMany, RawCampaign, RawStep};
use crate::config::{CALL_TEMPLATE, CallStep, Campaign, Problems};
use crate::domain::cadence::late::{LatePolicy, Lateness};
use crate::domain::cadence::{Cadence, CronSpec, Rhythm, SendWindow, Span};
use crate::domain::calendar::DayRules;

pub(super) fn campaigns(
    raw: BTreeMap<String, RawCampaign>,
    p: &mut Problems,
) -> BTreeMap<String, Campaign> {
    let mut campaigns = BTreeMap::new();
    for (name, c) in raw {
        let key = |k: &str| format!("campaigns.{name}.{k}");
        let first_after = Span::parse(&c.first_after).unwrap_or_else(|e| {
            p.err(&key("first_after"), e.to_string());
            Span::Days(0)
        });
        let rhythm = match (c.every, c.cron) {
            (Some(every), None) => Rhythm::Every(match Span::parse(&every) {
                // A zero rhythm would send every remaining step at once.
                Ok(span) if span.is_zero() => {
                    p.err(&key("every"), format!("`{every}` must be longer than zero"));
                    Span::Days(30)
                }
                Ok(span) => span,
                Err(e) => {
                    p.err(&key("every"), e.to_string());
                    Span::Days(30)
                }
            }),
            (None, Some(cron)) => match CronSpec::parse(&cron) {
                Ok(spec) => Rhythm::Cron(spec),
                Err(e) => {
                    p.err(&key("cron"), e.to_string());
                    Rhythm::Every(Span::Days(30))
                }
            },
            (Some(_), Some(_)) => {
                p.err(
                    &key("cron"),
                    "set either `every` or `cron`, not both".into(),
                );
                Rhythm::Every(Span::Days(30))
            }
            (None, None) if c.max_touches > 1 => {
                p.err(
                    &key("every"),
                    "missing: set `every` (e.g. \"30d\") or `cron` (e.g. \"0 10 1 * *\")".into(),
                );
                Rhythm::Every(Span::Days(30))
            }
            (None, None) => Rhythm::Every(Span::Days(30)),
        };
        if c.max_touches == 0 {
            p.err(&key("max_touches"), "must be at least 1".into());
        }
        let window = match c.send_window {
            None => SendWindow::office_hours(),
            Some(w) => SendWindow::parse(&w.days, &w.hours).unwrap_or_else(|e| {
                p.err(&key("send_window"), e.to_string());
                SendWindow::office_hours()
            }),
        };
        let (templates, calls) = match (c.templates, c.steps) {
            (Some(_), Some(_)) => {
                p.err(
                    &key("steps"),
                    "set either `templates` or `steps`, not both".into(),
                );
                (vec![name.clone()], BTreeMap::new())
            }
            (None, Some(raw)) => steps(&name, raw, p),
            (templates, None) => (
                templates
                    .map(OneOrMany::into_vec)
                    .unwrap_or_else(|| vec![name.clone()]),
                BTreeMap::new(),
            ),
        };
        if templates.is_empty() {
            p.err(&key("templates"), "list at least one template".into());
        }
        let lateness = lateness(&name, c.late_after.as_deref(), c.late.as_deref(), p);
        let cadence = Cadence {
            first_after,
            rhythm,
            max_touches: c.max_touches.max(1),
            window,
            days: DayRules {
                skip_holidays: c.skip_holidays,
                business_days_only: c.business_days_only,
                ..DayRules::default()
            },
        };
        campaigns.insert(
            name.clone(),
            Campaign {
                name,
                cadence,
                templates,
                track_clicks: c.track_clicks,
                calls,
                then: c.then,
                lateness,
            },
        );
    }
    check_then(&campaigns, p);
    campaigns
}

/// `late_after` (a fixed span: s, m, h, d) and `late` (send, skip, shift).
fn lateness(campaign: &str, after: Option<&str>, late: Option<&str>, p: &mut Problems) -> Lateness {
    let key = |k: &str| format!("campaigns.{campaign}.{k}");
    let after = after.and_then(|a| match crate::config::chrono_duration(a) {
        Ok(d) if d >= chrono::TimeDelta::zero() => Some(d),
        Ok(_) => {
            p.err(&key("late_after"), format!("`{a}` must not be negative"));
            None
        }
        Err(e) => {
            p.err(&key("late_after"), e);
            None
        }
    });
    let policy = match late {
        None => LatePolicy::default(),
        Some(l) => LatePolicy::parse(l).unwrap_or_else(|| {
            p.err(
                &key("late"),
                format!("`{l}` is not a lateness policy (send, skip or shift)"),
            );
            LatePolicy::default()
        }),
    };
    if late.is_some() && after.is_none() && p.errors.iter().all(|e| e.key != key("late_after")) {
        p.err(
            &key("late_after"),
            "missing: `late` needs `late_after` (e.g. \"2d\"), the delay after which a step is late".into(),
        );
    }
    Lateness { after, policy }
}

/// `steps`: each an email (`template`) or a call (`kind = "call"`, optional `note`); returns
/// the template per step (a call's is `CALL_TEMPLATE`) and the calls by step.
fn steps(
    campaign: &str,
    raw: Vec<RawStep>,
    p: &mut Problems,
) -> (Vec<String>, BTreeMap<u32, CallStep>) {
    if raw.is_empty() {
        p.err(
            &format!("campaigns.{campaign}.steps"),
            "list at least one step".into(),
        );
    }
    let mut templates = Vec::new();
    let mut calls = BTreeMap::new();
    for (i, step) in raw.into_iter().enumerate() {
        let key = |k: &str| format!("campaigns.{campaign}.steps[{}].{k}", i + 1);
        match step.kind.as_deref().unwrap_or("email") {
            "email" => {
                if step.note.is_some() {
                    p.err(&key("note"), "only a call step has a note".into());
                }
                match step.template {
                    Some(t) if !t.trim().is_empty() => templates.push(t),
                    _ => {
                        p.err(&key("template"), "an email step names its template".into());
                        templates.push(campaign.to_string());
                    }
                }
            }
            "call" => {
                if step.template.is_some() {
                    p.err(
                        &key("template"),
                        "a call step sends no email: no template (use `note` for the caller)"
                            .into(),
                    );
                }
                calls.insert(i as u32, CallStep { note: step.note });
                templates.push(CALL_TEMPLATE.to_string());
            }
            other => {
                p.err(
                    &key("kind"),
                    format!("`{other}` is not a step kind (email or call)"),
                );
                templates.push(campaign.to_string());
            }
        }
    }
    (templates, calls)
}

/// `then` must name a defined campaign. A chain may loop (a campaign naming itself, or
/// a → b → a: the lead goes round for good, each round a new cycle of the enrolment), but
/// every campaign on a loop must wait at least a day before its first email
/// (`first_after`), or a loop of one-step campaigns would email without pause.
fn check_then(campaigns: &BTreeMap<String, Campaign>, p: &mut Problems) {
    for (name, c) in campaigns {
        let Some(then) = &c.then else { continue };
        let key = format!("campaigns.{name}.then");
        if !campaigns.contains_key(then) {
            let known: Vec<_> = campaigns.keys().cloned().collect();
            p.err(
                &key,
                format!(
                    "campaign `{then}` is not defined (defined: {})",
                    known.join(", ")
                ),
            );
            continue;
        }
        if on_a_loop(campaigns, name) && !waits_a_day(c) {
            p.err(
                &format!("campaigns.{name}.first_after"),
                format!(
                    "`{name}` is on a `then` loop, so its first email must wait at least a day (e.g. \"90d\"), or the loop would email without pause"
                ),
            );
        }
    }
}

/// True if following `then` from `start` comes back to `start`.
fn on_a_loop(campaigns: &BTreeMap<String, Campaign>, start: &str) -> bool {
    let mut at = start;
    for _ in 0..=campaigns.len() {
        match campaigns.get(at).and_then(|c| c.then.as_deref()) {
            Some(next) if next == start => return true,
            Some(next) => at = next,
            None => return false,
        }
    }
    false
}

fn waits_a_day(c: &Campaign) -> bool {
    match c.cadence.first_after {
        Span::Fixed(d) => d >= chrono::TimeDelta::days(1),
        Span::Days(n) => n >= 1,
        Span::Months(n) => n >= 1,
    }
}
