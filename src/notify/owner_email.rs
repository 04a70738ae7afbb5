//! The emails to people: "a lead replied" (or re-warmed by engagement) to the lead's owner,
//! and the weekly digest, both plain text from `sender.from`, marked `Auto-Submitted`.

use chrono::{DateTime, Utc};
use serde_json::Value;

use super::digest::digest_text;
use super::{TIMELINE_LINES, display_name, reply_of, str_field};
use crate::app::Loaded;
use crate::domain::lead::Lead;
use crate::store::{Event, Notification};
use crate::transport::OutgoingEmail;

/// The owner (or digest) email of a notification.
pub(super) fn owner_email(
    loaded: &Loaded,
    n: &Notification,
    lead: Option<&Lead>,
    timeline: &[Event],
    now: DateTime<Utc>,
) -> Result<OutgoingEmail, String> {
    let settings = &loaded.settings;
    let to = str_field(&n.payload, &["to", "owner_email", "address"])
        .or_else(|| lead.and_then(|l| l.owner_email.clone()))
        .filter(|t| !t.trim().is_empty())
        .or_else(|| settings.notify.fallback_email.clone())
        .ok_or("no owner address and no notify.fallback_email")?;
    let to: lettre::message::Mailbox = to
        .parse()
        .map_err(|e| format!("bad notification address `{to}`: {e}"))?;
    let (subject, text) = if n.kind == "digest" {
        digest_text(&n.payload)
    } else {
        let lead = lead.ok_or("the notification's lead no longer exists")?;
        let links = super::feedback::feedback_links(loaded, lead, &to.email.to_string(), now);
        rewarm_text(n, lead, timeline, &links)
    };
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
        (format!("Re-warmed: {name} replied"), t)
    };
    t.push_str(&format!(
        "\nWhat happens next? One click tells us (links valid {} days):\n",
        super::feedback::VALIDITY_DAYS
    ));
    for (label, url) in links {
        t.push_str(&format!("  {label}: {url}\n"));
    }
    t.push_str("\nThe lead\n--------\n");
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
    t.push_str(&format!("\nIdempotency key: {}\n", n.idempotency_key));
    (subject, t)
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
