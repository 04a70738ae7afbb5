//! The weekly digest: when the `notify.digest` cron fired, one `digest` notification per
//! owner about exactly the week before the firing, `[firing − 7 days, firing)`, and its text.
//!
//! Per owner (lower-cased): the leads re-warmed that week, the stale ones (re-warmed, no
//! feedback for `notify.remind_after` or longer, escalated or not), the leads they marked
//! that week (`feedback`, `working`, `won`, `out_of_scope` events), the leads that bounced,
//! complained or unsubscribed that week, and how many are in nurture. The replies sales is
//! told about in the digest only (issue "read what a reply says"): re-warms by an unclear
//! reply are marked "needs a look", `later` replies (a `postponed` event with reason
//! `reply`) are listed with the date nurture resumes, `not_interested` ones (an
//! `out_of_scope` event by `reply`) with their re-check date and what the lead wrote. The digest of
//! `notify.fallback_email` also lists the leads without an owner, every escalated lead and the
//! owners marked gone (since when, why, how many leads they still own).
//! Everything is read by indexed queries (`HandoffStore`), never lead by lead.

use std::collections::{BTreeMap, BTreeSet};

use anyhow::Context as _;
use chrono::{DateTime, Duration, Utc};
use serde_json::{Value, json};

use super::display_name;
use super::owners::{GoneOwner, all_gone, describe};
use crate::app::Loaded;
use crate::config::Settings;
use crate::domain::handoff::FEEDBACK_KINDS;
use crate::domain::lead::Lead;
use crate::store::{DigestEvent, NewNotification, StaleHandoff, Store};

/// Events of one week read at most (a digest says when it was cut).
const MAX_EVENTS: usize = 20_000;
/// Leads without an owner listed by name (all are counted).
const MAX_UNOWNED: usize = 200;

/// The week a digest fired at `fired` covers: `[fired − 7 days, fired)`.
pub fn digest_week(fired: DateTime<Utc>) -> (DateTime<Utc>, DateTime<Utc>) {
    (fired - Duration::days(7), fired)
}

/// When `notify.digest` fired after `last_run` (default: a week ago) and at or before `now`,
/// enqueues one `digest` per owner (idempotency key `digest:{owner}:{firing date}`, so a
/// second call for the same firing adds nothing) for the week before that firing. A daemon
/// that was down sends the last digest it missed, once. Returns how many were new.
pub async fn enqueue_digests<S: Store>(
    store: &S,
    loaded: &Loaded,
    now: DateTime<Utc>,
    last_run: Option<DateTime<Utc>>,
) -> anyhow::Result<usize> {
    let settings = &loaded.settings;
    let Some(cron) = settings.notify.digest.as_ref() else {
        return Ok(0);
    };
    let mut t = last_run.unwrap_or(now - Duration::days(7));
    let mut fired = None;
    for _ in 0..10_000 {
        match cron.next_after(t, settings.default_tz) {
            Some(next) if next <= now => {
                fired = Some(next);
                t = next;
            }
            _ => break,
        }
    }
    let Some(fired) = fired else {
        return Ok(0);
    };
    let (start, end) = digest_week(fired);
    let week = read_week(store, settings, start, end).await?;
    let date = fired.with_timezone(&settings.default_tz).format("%Y-%m-%d");
    let items: Vec<NewNotification> = per_owner(settings, &week)
        .into_iter()
        .map(|(owner, mut payload)| {
            add_links(loaded, &week, &owner, &mut payload, now);
            payload["to"] = json!(owner);
            payload["start"] = json!(start);
            payload["end"] = json!(end);
            NewNotification {
                kind: "digest".into(),
                lead_id: None,
                idempotency_key: format!("digest:{owner}:{date}"),
                payload,
            }
        })
        .collect();
    if items.is_empty() {
        return Ok(0);
    }
    store
        .enqueue_notifications(&items, now)
        .await
        .context("Failed to enqueue digests")
}

/// Leads listed with their one-click feedback links (bound to the lead and the digest's
/// owner), per list: the first this many.
const WITH_LINKS: usize = 50;

/// Gives the re-warmed, stale and escalated rows of a digest their feedback links.
fn add_links(loaded: &Loaded, week: &Week, owner: &str, payload: &mut Value, now: DateTime<Utc>) {
    for list in ["rewarmed", "stale", "escalated"] {
        let Some(rows) = payload[list].as_array_mut() else {
            continue;
        };
        for row in rows.iter_mut().take(WITH_LINKS) {
            // Only a lead still waiting for an answer gets them (not one marked won since).
            let Some(lead) = row["lead_id"]
                .as_i64()
                .and_then(|id| week.leads.get(&id))
                .filter(|l| l.state == crate::domain::lead::LeadState::Rewarmed)
            else {
                continue;
            };
            let links = super::feedback::feedback_links(loaded, lead, owner, now);
            row["links"] = json!(
                links
                    .into_iter()
                    .map(|(label, url)| json!({"label": label, "url": url}))
                    .collect::<Vec<_>>()
            );
        }
    }
}

/// What a digest reads of the store for one week.
#[derive(Debug, Default)]
pub(super) struct Week {
    pub events: Vec<DigestEvent>,
    /// The events were cut at [`MAX_EVENTS`].
    pub cut: bool,
    pub stale: Vec<StaleHandoff>,
    pub leads: BTreeMap<i64, Lead>,
    pub unowned_count: i64,
    pub unowned: Vec<Lead>,
    pub nurturing: Vec<(Option<String>, i64)>,
    /// Owners marked gone now, with how many leads they still own.
    pub gone: Vec<(String, GoneOwner, i64)>,
    pub end: Option<DateTime<Utc>>,
}

async fn read_week<S: Store>(
    store: &S,
    settings: &Settings,
    start: DateTime<Utc>,
    end: DateTime<Utc>,
) -> anyhow::Result<Week> {
    let events = store
        .digest_events(start, end, MAX_EVENTS)
        .await
        .context("Failed to read the week's events")?;
    let mut stale = Vec::new();
    let mut after = 0;
    loop {
        let page = store
            .stale_handoffs(settings.notify.chase.cutoff(end), after, 1000)
            .await
            .context("Failed to list stale hand-offs")?;
        let Some(last) = page.last() else { break };
        after = last.lead_id;
        let full = page.len() == 1000;
        stale.extend(page);
        if !full {
            break;
        }
    }
    let ids: BTreeSet<i64> = events
        .iter()
        .map(|e| e.lead_id)
        .chain(stale.iter().map(|s| s.lead_id))
        .collect();
    let leads = store
        .leads_by_ids(&ids.into_iter().collect::<Vec<_>>())
        .await?
        .into_iter()
        .map(|l| (l.id, l))
        .collect();
    let (unowned_count, unowned) = store.unowned_leads(MAX_UNOWNED).await?;
    let nurturing = store.nurturing_per_owner().await?;
    let mut gone = Vec::new();
    for (owner, mark) in all_gone(store).await? {
        let n = store.count_owned(&owner).await?;
        gone.push((owner, mark, n));
    }
    Ok(Week {
        cut: events.len() >= MAX_EVENTS,
        events,
        stale,
        leads,
        unowned_count,
        unowned,
        nurturing,
        gone,
        end: Some(end),
    })
}

fn row(lead: &Lead) -> Value {
    json!({"lead_id": lead.id, "email": lead.email.to_string(), "name": display_name(lead), "company": lead.company})
}

/// Each recipient's digest payload (lists `rewarmed` (a `needs_look` flag on those re-warmed
/// by an unclear reply), `later`, `not_interested`, `stale`, `marked`, `left`, `unowned`,
/// `escalated`; counts `nurturing`, `unowned_count`): owners get their leads' rows, the
/// fallback address those of leads without an owner, the leads without an owner and the
/// escalated ones. Pure: the week is already read.
pub(super) fn per_owner(settings: &Settings, week: &Week) -> BTreeMap<String, Value> {
    let fallback = settings
        .notify
        .fallback_email
        .as_ref()
        .map(|f| f.to_ascii_lowercase());
    let owner_of = |lead: &Lead| {
        lead.owner_email
            .as_deref()
            .filter(|o| !o.trim().is_empty())
            .map(|o| o.trim().to_ascii_lowercase())
            .or_else(|| fallback.clone())
    };
    let mut out: BTreeMap<String, Value> = BTreeMap::new();
    let mut push = |owner: String, list: &str, r: Value| {
        let p = out.entry(owner).or_insert_with(|| json!({}));
        match p[list].as_array_mut() {
            Some(a) => a.push(r),
            None => p[list] = json!([r]),
        }
    };
    for e in &week.events {
        let Some(lead) = week.leads.get(&e.lead_id) else {
            continue;
        };
        let Some(owner) = owner_of(lead) else {
            continue;
        };
        let mut r = row(lead);
        r["at"] = json!(e.at);
        let list = match e.kind.as_str() {
            "rewarmed" => {
                if e.detail["needs_look"] == true {
                    r["needs_look"] = json!(true);
                    r["intent"] = e.detail["intent"].clone();
                }
                "rewarmed"
            }
            "postponed" if e.detail["reason"] == "reply" => {
                r["until"] = e.detail["until"].clone();
                r["phrase"] = e.detail["phrase"].clone();
                "later"
            }
            "out_of_scope" if e.detail["by"] == "reply" => {
                r["recheck_at"] = e.detail["recheck_at"].clone();
                r["reason"] = e.detail["reason"].clone();
                "not_interested"
            }
            "suppressed" => {
                r["reason"] = e.detail.get("reason").cloned().unwrap_or(Value::Null);
                "left"
            }
            k if FEEDBACK_KINDS.contains(&k) => {
                r["kind"] = json!(k);
                r["action"] = e.detail.get("action").cloned().unwrap_or(json!(k));
                "marked"
            }
            _ => continue,
        };
        push(owner, list, r);
    }
    for s in &week.stale {
        let Some(lead) = week.leads.get(&s.lead_id) else {
            continue;
        };
        let mut r = row(lead);
        r["rewarmed_at"] = json!(s.rewarmed_at);
        r["escalated"] = json!(s.done.escalated);
        if let Some(end) = week.end {
            r["days"] = json!((end - s.rewarmed_at).num_days());
        }
        if let Some(owner) = owner_of(lead) {
            push(owner, "stale", r.clone());
        }
        if let Some(f) = &fallback
            && s.done.escalated
        {
            r["owner"] = json!(lead.owner_email);
            push(f.clone(), "escalated", r);
        }
    }
    if let Some(f) = &fallback {
        for lead in &week.unowned {
            push(f.clone(), "unowned", row(lead));
        }
        for (owner, mark, leads) in &week.gone {
            let r = json!({"owner": owner, "since": mark.since, "why": describe(&mark.evidence), "leads": leads});
            push(f.clone(), "gone", r);
        }
        if week.unowned_count > 0 {
            out.entry(f.clone()).or_insert_with(|| json!({}))["unowned_count"] =
                json!(week.unowned_count);
        }
    }
    for (owner, n) in &week.nurturing {
        if let Some(owner) = owner.clone().or_else(|| fallback.clone()) {
            let p = out.entry(owner).or_insert_with(|| json!({}));
            p["nurturing"] = json!(p["nurturing"].as_i64().unwrap_or(0) + n);
        }
    }
    if week.cut {
        for p in out.values_mut() {
            p["cut"] = json!(MAX_EVENTS);
        }
    }
    out
}

/// What a not-interested lead wrote, quoted and cut to 120 characters: the quote of an
/// out-of-scope reason `reply: INTENT — "TEXT"`, or the whole reason.
fn said(reason: &str) -> Option<String> {
    let quoted = reason
        .split_once(" — \"")
        .filter(|(head, _)| head.starts_with("reply: "))
        .map(|(_, text)| text.trim_end_matches('"'))
        .unwrap_or(reason);
    let words = quoted.split_whitespace().collect::<Vec<_>>().join(" ");
    if words.is_empty() {
        return None;
    }
    let cut: String = words.chars().take(120).collect();
    let more = if words.chars().count() > 120 {
        "…"
    } else {
        ""
    };
    Some(format!("\"{cut}{more}\""))
}

/// Subject and body of a weekly digest.
pub(super) fn digest_text(p: &Value) -> (String, String) {
    let time = |k: &str| {
        p.get(k)
            .and_then(Value::as_str)
            .and_then(|s| DateTime::parse_from_rfc3339(s).ok())
            .map(|d| {
                d.with_timezone(&Utc)
                    .format("%Y-%m-%d %H:%M UTC")
                    .to_string()
            })
            .unwrap_or_default()
    };
    let list = |k: &str| {
        p.get(k)
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default()
    };
    let day = |r: &Value, k: &str| {
        let at = r.get(k).and_then(Value::as_str).unwrap_or("");
        at.get(..10).unwrap_or(at).to_string()
    };
    let [rewarmed, stale, marked, left, unowned, escalated] = [
        "rewarmed",
        "stale",
        "marked",
        "left",
        "unowned",
        "escalated",
    ]
    .map(list);
    let unowned_count = p["unowned_count"].as_i64().unwrap_or(unowned.len() as i64);
    let subject = format!(
        "Weekly leads digest: {} re-warmed, {} stale, {} marked, {} without owner",
        rewarmed.len(),
        stale.len(),
        marked.len(),
        unowned_count
    );
    let mut t = format!(
        "Your leads, the week from {} to {} (the end not included)\n\
         Under each lead to answer for, one click tells us what happens next.\n",
        time("start"),
        time("end")
    );
    let line = |r: &Value, extra: &str| {
        let s = |k: &str| r.get(k).and_then(Value::as_str).unwrap_or("").to_string();
        let company = if s("company").is_empty() {
            String::new()
        } else {
            format!(", {}", s("company"))
        };
        format!("- {} <{}>{company}{extra}\n", s("name"), s("email"))
    };
    let mut section = |title: String, rows: &[Value], extra: &dyn Fn(&Value) -> String| {
        t.push_str(&format!("\n{title}\n"));
        for r in rows.iter().take(200) {
            t.push_str(&line(r, &extra(r)));
            for link in r["links"].as_array().into_iter().flatten() {
                let s = |k: &str| link[k].as_str().unwrap_or("").to_string();
                t.push_str(&format!("    {}: {}\n", s("label"), s("url")));
            }
        }
        if rows.len() > 200 {
            t.push_str(&format!("… and {} more\n", rows.len() - 200));
        }
    };
    section(
        format!("Re-warmed ({}) — call them:", rewarmed.len()),
        &rewarmed,
        &|r| {
            let look = if r["needs_look"] == true {
                ", needs a look: read the reply and decide"
            } else {
                ""
            };
            format!(" (re-warmed {}{look})", day(r, "at"))
        },
    );
    let later = list("later");
    if !later.is_empty() {
        section(
            format!(
                "Later ({}) — asked to hear from us later; nurture resumes by itself:",
                later.len()
            ),
            &later,
            &|r| {
                let phrase = r["phrase"]
                    .as_str()
                    .map(|p| format!(" (\"{p}\")"))
                    .unwrap_or_default();
                format!(": next email not before {}{phrase}", day(r, "until"))
            },
        );
    }
    let not_interested = list("not_interested");
    if !not_interested.is_empty() {
        section(
            format!(
                "Not interested ({}) — out of scope, looked at again on the re-check date:",
                not_interested.len()
            ),
            &not_interested,
            &|r| {
                let recheck = if r["recheck_at"].is_string() {
                    format!("re-check {}", day(r, "recheck_at"))
                } else {
                    "no re-check".to_string()
                };
                match said(r["reason"].as_str().unwrap_or("")) {
                    Some(said) => format!(": {recheck} — {said}"),
                    None => format!(": {recheck}"),
                }
            },
        );
    }
    section(
        format!("Stale ({}) — re-warmed, nobody answered yet:", stale.len()),
        &stale,
        &|r| {
            let escalated = if r["escalated"] == true {
                ", escalated"
            } else {
                ""
            };
            format!(
                " (re-warmed {}, {} days{escalated})",
                day(r, "rewarmed_at"),
                r["days"].as_i64().unwrap_or(0)
            )
        },
    );
    section(format!("Marked ({}):", marked.len()), &marked, &|r| {
        let action = r["action"].as_str().unwrap_or("feedback");
        format!(": {action} ({})", day(r, "at"))
    });
    section(format!("Bounced or left ({}):", left.len()), &left, &|r| {
        format!(" ({})", r["reason"].as_str().unwrap_or("suppressed"))
    });
    if !escalated.is_empty() {
        section(
            format!("Escalated to you ({}):", escalated.len()),
            &escalated,
            &|r| {
                let owner = r["owner"].as_str().unwrap_or("no owner");
                format!(" (owner {owner}, re-warmed {})", day(r, "rewarmed_at"))
            },
        );
    }
    if unowned_count > 0 {
        section(
            format!("No owner ({unowned_count}) — give them one:"),
            &unowned,
            &|_| String::new(),
        );
    }
    let gone = list("gone");
    if !gone.is_empty() {
        t.push_str(&format!(
            "\nOwners gone ({}) — their notifications come to you; hand their leads over:\n",
            gone.len()
        ));
        for r in gone.iter().take(200) {
            let owner = r["owner"].as_str().unwrap_or("");
            let leads = r["leads"].as_i64().unwrap_or(0);
            let hand_over = if leads > 0 {
                format!(": rewarm leads reassign --from {owner} --to NEW_OWNER")
            } else {
                String::new()
            };
            t.push_str(&format!(
                "- {owner}: gone since {} ({}), {leads} lead(s){hand_over}\n",
                day(r, "since"),
                r["why"].as_str().unwrap_or("a notification bounced")
            ));
        }
    }
    t.push_str(&format!(
        "\nIn nurture: {}\n",
        p["nurturing"].as_i64().unwrap_or(0)
    ));
    if let Some(cut) = p["cut"].as_i64() {
        t.push_str(&format!("(More than {cut} events this week: lists cut.)\n"));
    }
    (subject, t)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s)
            .expect("a fixed time")
            .with_timezone(&Utc)
    }

    #[test]
    fn the_week_ends_at_the_firing_and_starts_seven_days_before() {
        let (start, end) = digest_week(t("2026-11-30T08:00:00Z"));
        assert_eq!(start, t("2026-11-23T08:00:00Z"));
        assert_eq!(end, t("2026-11-30T08:00:00Z"));
    }

    #[test]
    fn the_text_lists_each_section_and_labels_the_week() {
        let p = json!({
            "start": "2026-11-23T08:00:00Z", "end": "2026-11-30T08:00:00Z",
            "rewarmed": [{"email": "a@x.example", "name": "A", "company": "X", "at": "2026-11-24T10:00:00Z"}],
            "stale": [{"email": "b@x.example", "name": "B", "rewarmed_at": "2026-11-01T10:00:00Z", "days": 28, "escalated": true}],
            "marked": [{"email": "c@x.example", "name": "C", "action": "won", "at": "2026-11-25T10:00:00Z"}],
            "unowned": [{"email": "d@x.example", "name": "D"}], "unowned_count": 3, "nurturing": 12,
            "gone": [{"owner": "rita@acme.example", "since": "2026-11-20T10:00:00Z", "why": "notification 12 refused while sending", "leads": 4},
                     {"owner": "zoe@acme.example", "since": "2026-11-21T10:00:00Z", "why": "notification 13 bounced", "leads": 0}],
        });
        let (subject, text) = digest_text(&p);
        assert_eq!(
            subject,
            "Weekly leads digest: 1 re-warmed, 1 stale, 1 marked, 3 without owner"
        );
        for want in [
            "the week from 2026-11-23 08:00 UTC to 2026-11-30 08:00 UTC",
            "Re-warmed (1) — call them:\n- A <a@x.example>, X (re-warmed 2026-11-24)",
            "- B <b@x.example> (re-warmed 2026-11-01, 28 days, escalated)",
            "- C <c@x.example>: won (2026-11-25)",
            "No owner (3) — give them one:\n- D <d@x.example>",
            "Owners gone (2) — their notifications come to you; hand their leads over:\n\
             - rita@acme.example: gone since 2026-11-20 (notification 12 refused while sending), 4 lead(s): rewarm leads reassign --from rita@acme.example --to NEW_OWNER\n\
             - zoe@acme.example: gone since 2026-11-21 (notification 13 bounced), 0 lead(s)\n",
            "In nurture: 12",
        ] {
            assert!(text.contains(want), "{want:?} not in\n{text}");
        }
    }

    #[test]
    fn the_text_lists_replies_told_in_the_digest_only() {
        let p = json!({
            "start": "2026-11-23T08:00:00Z", "end": "2026-11-30T08:00:00Z",
            "rewarmed": [{"email": "u@x.example", "name": "U", "at": "2026-11-24T10:00:00Z", "needs_look": true}],
            "later": [{"email": "l@x.example", "name": "L", "company": "X", "until": "2027-07-01T09:00:00Z", "phrase": "in Q3"}],
            "not_interested": [
                {"email": "n@x.example", "name": "N", "recheck_at": "2027-11-25T10:00:00Z",
                 "reason": "reply: not_interested — \"We are not interested,\nthanks.\""},
                {"email": "m@x.example", "name": "M", "recheck_at": null, "reason": ""},
            ],
        });
        let (subject, text) = digest_text(&p);
        assert_eq!(
            subject,
            "Weekly leads digest: 1 re-warmed, 0 stale, 0 marked, 0 without owner"
        );
        for want in [
            "- U <u@x.example> (re-warmed 2026-11-24, needs a look: read the reply and decide)",
            "Later (1) — asked to hear from us later; nurture resumes by itself:\n\
             - L <l@x.example>, X: next email not before 2027-07-01 (\"in Q3\")",
            "Not interested (2) — out of scope, looked at again on the re-check date:\n\
             - N <n@x.example>: re-check 2027-11-25 — \"We are not interested, thanks.\"\n\
             - M <m@x.example>: no re-check\n",
        ] {
            assert!(text.contains(want), "{want:?} not in\n{text}");
        }
        // Sections with nobody in them are left out.
        let (_, empty) = digest_text(&json!({}));
        assert!(
            !empty.contains("Later (") && !empty.contains("Not interested ("),
            "{empty}"
        );
    }

    #[test]
    fn what_a_lead_said_is_quoted_once_and_cut() {
        assert_eq!(
            said("reply: not_interested — \"No thanks, we went elsewhere.\"").as_deref(),
            Some("\"No thanks, we went elsewhere.\"")
        );
        assert_eq!(
            said("chose another vendor").as_deref(),
            Some("\"chose another vendor\"")
        );
        assert_eq!(said("  ").as_deref(), None);
        let long = format!("reply: not_interested — \"{}\"", "word ".repeat(60));
        let cut = said(&long).expect("a quote");
        assert!(cut.ends_with("…\"") && cut.chars().count() == 123, "{cut}");
    }
}
