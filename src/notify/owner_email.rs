//! The emails to people: "a lead replied" (or re-warmed by engagement) to the lead's owner,
//! and the weekly digest, both plain text from `sender.from`, marked `Auto-Submitted`.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde_json::Value;

use super::digest::digest_text;
use super::handoff_text::handoff_text;
use super::owners::GoneOwner;
use super::{TIMELINE_LINES, display_name, reply_of, str_field};
use crate::app::Loaded;
use crate::config::Settings;
use crate::domain::lead::Lead;
use crate::store::{Event, Notification};
use crate::transport::OutgoingEmail;

/// The owner (or digest) email of a notification.
pub(super) fn owner_email(
    loaded: &Loaded,
    n: &Notification,
    lead: Option<&Lead>,
    timeline: &[Event],
    gone: &BTreeMap<String, GoneOwner>,
    now: DateTime<Utc>,
) -> Result<OutgoingEmail, String> {
    let settings = &loaded.settings;
    let meant =
        recipient(settings, n, lead).ok_or("no owner address and no notify.fallback_email")?;
    // An owner who left: the fallback address gets it, told why.
    let (to, note) = match (gone.get(&meant), &settings.notify.fallback_email) {
        (Some(g), Some(fallback)) if !fallback.eq_ignore_ascii_case(&meant) => (
            fallback.clone(),
            format!(
                "Sent to you instead of {meant}, who has left (a notification to them bounced on {}).\n\
                 Hand their leads over: rewarm leads reassign --from {meant} --to NEW_OWNER\n\n",
                g.since.format("%Y-%m-%d")
            ),
        ),
        _ => (meant, String::new()),
    };
    let to: lettre::message::Mailbox = to
        .parse()
        .map_err(|e| format!("bad notification address `{to}`: {e}"))?;
    let (subject, body) = match (n.kind.as_str(), n.payload["event"].as_str()) {
        ("digest", _) => digest_text(&n.payload),
        (_, event) => {
            let lead = lead.ok_or("the notification's lead no longer exists")?;
            let links = super::feedback::feedback_links(loaded, lead, to.email.as_ref(), now);
            match event {
                Some("lead.reminder" | "lead.escalated" | "lead.call_task") => {
                    handoff_text(n, lead, timeline, &links)
                }
                _ => rewarm_text(n, lead, timeline, &links),
            }
        }
    };
    let text = format!("{note}{body}");
    let domain = &settings.sender.message_id_domain;
    let message_id = format!("notify-{}-{}@{domain}", n.id, now.timestamp());
    let message = lettre::Message::builder()
        .from(settings.sender.from.clone())
        .to(to.clone())
        .subject(subject)
        .date(now.into())
        .message_id(Some(format!("<{message_id}>")))
        .raw_header(lettre::message::header::HeaderValue::new(
            lettre::message::header::HeaderName::new_from_ascii_str("Auto-Submitted"),
            "auto-generated".into(),
        ))
        .header(lettre::message::header::ContentType::TEXT_PLAIN)
        .body(text)
        .map_err(|e| format!("cannot build the notification email: {e}"))?;
    Ok(OutgoingEmail {
        delivery_id: n.id,
        envelope_from: settings.sender.from.email.to_string(),
        envelope_to: to.email.to_string(),
        message_id,
        bytes: message.formatted(),
    })
}

/// Subject and body of "a lead replied": the reply, the lead, its timeline.
fn rewarm_text(
    n: &Notification,
    lead: &Lead,
    timeline: &[Event],
    links: &[(String, String)],
) -> (String, String) {
    let name = display_name(lead);
    let (subject, mut t) = if n.payload["reason"] == "score" {
        // Re-warmed by engagement (clicks…), not by a reply: say so, quote nothing.
        let last = str_field(&n.payload, &["score_kind"]).unwrap_or_else(|| "engagement".into());
        let threshold = n.payload["rewarm_score"].as_i64().unwrap_or(0);
        let mut t = format!(
            "{name} <{}> reached the re-warm score of {threshold} (last: a {last}).\n",
            lead.email
        );
        let made = crate::domain::signal::describe(&n.payload["signals"]);
        if !made.is_empty() {
            t.push_str("\nWhat made it (points then, weight now):\n");
            for line in made {
                t.push_str(&format!("  - {line}\n"));
            }
        }
        (format!("Re-warmed: {name} is engaging"), t)
    } else {
        let reply = reply_of(&n.payload, timeline).unwrap_or_else(|| "(no text)".into());
        let mut t = format!("{name} <{}> wrote back:\n\n", lead.email);
        for line in reply.lines() {
            t.push_str(&format!("> {line}\n"));
        }
        let subject = match n.payload["intent"].as_str() {
            _ if n.payload["event"] == "lead.retired" => {
                t.push_str(&retired_text(&n.payload));
                format!("Contact change: {name} no longer reads this address")
            }
            Some(intent) => {
                t.push_str(&intent_line(&n.payload));
                if n.payload["needs_look"] == true {
                    format!("Re-warmed (needs a look): {name} replied ({intent})")
                } else {
                    format!("Re-warmed: {name} replied ({intent})")
                }
            }
            None => format!("Re-warmed: {name} replied"),
        };
        (subject, t)
    };
    t.push_str(&links_section(links));
    t.push_str(&lead_section(lead, timeline));
    t.push_str(&format!("\nIdempotency key: {}\n", n.idempotency_key));
    (subject, t)
}

/// The one-click feedback links, as every owner email shows them.
pub(super) fn links_section(links: &[(String, String)]) -> String {
    let mut t = format!(
        "\nWhat happens next? One click tells us (links valid {} days):\n",
        super::feedback::VALIDITY_DAYS
    );
    for (label, url) in links {
        t.push_str(&format!("  {label}: {url}\n"));
    }
    t
}

/// Where a notification email goes before gone owners are considered: the payload's `to`,
/// else the lead's owner, else `notify.fallback_email` (lower-cased).
pub(super) fn recipient(
    settings: &Settings,
    n: &Notification,
    lead: Option<&Lead>,
) -> Option<String> {
    str_field(&n.payload, &["to", "owner_email", "address"])
        .or_else(|| lead.and_then(|l| l.owner_email.clone()))
        .filter(|t| !t.trim().is_empty())
        .or_else(|| settings.notify.fallback_email.clone())
        .map(|t| t.trim().to_ascii_lowercase())
}

/// "The lead" (its data) and "Timeline" (its last events), as every owner email shows them.
pub(super) fn lead_section(lead: &Lead, timeline: &[Event]) -> String {
    let name = display_name(lead);
    let mut t = String::from("\nThe lead\n--------\n");
    let mut row = |k: &str, v: Option<String>| {
        if let Some(v) = v.filter(|v| !v.is_empty()) {
            t.push_str(&format!("{k:<12} {v}\n"));
        }
    };
    row("Email", Some(lead.email.to_string()));
    row("Name", Some(name.clone()));
    row("Company", lead.company.clone());
    row("Title", lead.title.clone());
    row("Owner", lead.owner_email.clone());
    row("Lost reason", lead.lost_reason.clone());
    row(
        "Lost at",
        // The day in the lead's zone (where the deal was lost), else UTC.
        lead.lost_at.map(|d| match lead.timezone {
            Some(tz) => d.with_timezone(&tz).format("%Y-%m-%d").to_string(),
            None => d.format("%Y-%m-%d").to_string(),
        }),
    );
    row("Tags", Some(lead.tags.join(", ")));
    for (k, v) in &lead.fields {
        row(k, Some(v.clone()));
    }
    row("State", Some(lead.state.as_str().to_string()));
    t.push_str("\nTimeline\n--------\n");
    let skip = timeline.len().saturating_sub(TIMELINE_LINES);
    for e in &timeline[skip..] {
        t.push_str(&format!(
            "{}  {:<12} {}\n",
            e.at.format("%Y-%m-%d %H:%M UTC"),
            e.kind,
            summarize(&e.detail)
        ));
    }
    t
}

/// "Intent: question (rule "question phrase", phrase "how much")".
fn intent_line(payload: &Value) -> String {
    let d = &payload["intent_detail"];
    let mut line = format!(
        "\nIntent: {} (rule \"{}\"",
        payload["intent"].as_str().unwrap_or("-"),
        d["rule"].as_str().unwrap_or("-")
    );
    if let Some(phrase) = d["phrase"].as_str() {
        line.push_str(&format!(", phrase \"{phrase}\""));
    }
    line.push_str(")\n");
    if payload["needs_look"] == true {
        line.push_str("Needs a look: the rules could not tell what this reply wants.\n");
    }
    line
}

/// What a retired address's notification adds: the contacts the reply named.
fn retired_text(payload: &Value) -> String {
    let mut t = format!(
        "\nIntent: {} — this address is retired: no more emails go to it (it is not suppressed).\n",
        payload["intent"].as_str().unwrap_or("-")
    );
    let created: Vec<&str> = payload["new_leads"]
        .as_array()
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    let referrals = payload["referrals"].as_array().cloned().unwrap_or_default();
    if referrals.is_empty() {
        t.push_str("The reply names no one else.\n");
    }
    for r in &referrals {
        let who = r["name"].as_str().unwrap_or("(no name)");
        match r["email"].as_str() {
            Some(email) if created.contains(&email) => t.push_str(&format!(
                "New lead: {who} <{email}> (same company, owner, tags and fields; enrolled like any import)\n"
            )),
            Some(email) => t.push_str(&format!("Named: {who} <{email}>\n")),
            None => t.push_str(&format!("Named without an address: {who}\n")),
        }
    }
    t
}

/// An event's detail on one line: its scalar values as `key=value`, long text cut.
fn summarize(detail: &Value) -> String {
    let Value::Object(map) = detail else {
        return String::new();
    };
    map.iter()
        .filter_map(|(k, v)| {
            let v = match v {
                Value::String(s) => s.replace(['\r', '\n'], " "),
                Value::Number(n) => n.to_string(),
                Value::Bool(b) => b.to_string(),
                _ => return None,
            };
            let v = if v.chars().count() > 80 {
                format!("{}…", v.chars().take(80).collect::<String>())
            } else {
                v
            };
            Some(format!("{k}={v}"))
        })
        .collect::<Vec<_>>()
        .join(" ")
}
