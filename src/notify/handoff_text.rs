//! The emails that chase a hand-off: the owner's reminder, the escalation to the fallback
//! address, and a call task (a campaign step that is a call, not an email) — each with the
//! lead and its timeline.

use chrono::DateTime;
use serde_json::Value;

use super::owner_email::{lead_section, links_section};
use super::{display_name, str_field};
use crate::domain::lead::Lead;
use crate::store::{Event, Notification};

/// Subject and body of a `lead.reminder`, `lead.escalated` or `lead.call_task` email, with the
/// one-click feedback `links` (bound to the lead and the recipient).
pub(super) fn handoff_text(
    n: &Notification,
    lead: &Lead,
    timeline: &[Event],
    links: &[(String, String)],
) -> (String, String) {
    let p = &n.payload;
    let name = display_name(lead);
    let day = |k: &str| {
        str_field(p, &[k])
            .and_then(|s| DateTime::parse_from_rfc3339(&s).ok())
            .map(|d| d.format("%Y-%m-%d").to_string())
            .unwrap_or_else(|| "-".into())
    };
    let days = p["days_without_feedback"].as_i64().unwrap_or(0);
    let owner = str_field(p, &["owner"]).unwrap_or_else(|| "nobody (no owner)".into());
    let (subject, mut t) = match p["event"].as_str() {
        Some("lead.reminder") => (
            format!("Reminder: {name} is waiting for your answer"),
            format!(
                "{name} <{}> re-warmed on {} and was handed to you {days} days ago; nobody has \
                 said what happened since.\nPlease answer: are you on it, won, not now, or out of scope?\n",
                lead.email,
                day("rewarmed_at"),
            ),
        ),
        Some("lead.escalated") => {
            let mut t = format!(
                "{name} <{}> re-warmed on {} and was handed to {owner}; {days} days later \
                 there is still no answer (a reminder was sent).\n",
                lead.email,
                day("rewarmed_at"),
            );
            if p["returns_to_nurture"].as_bool() == Some(true) {
                t.push_str("It goes back to nurture now (notify.stale_returns_to_nurture).\n");
            } else {
                t.push_str("It stays re-warmed until someone answers or recycles it.\n");
            }
            (format!("Stale lead: {name} — no answer from {owner}"), t)
        }
        _ => call_task(p, lead, &name),
    };
    t.push_str(&links_section(links));
    t.push_str(&lead_section(lead, timeline));
    t.push_str(&format!("\nIdempotency key: {}\n", n.idempotency_key));
    (subject, t)
}

/// A call task: the campaign, the step, the note to the caller, the lead's phone if known.
fn call_task(p: &Value, lead: &Lead, name: &str) -> (String, String) {
    let company = lead
        .company
        .as_deref()
        .map(|c| format!(" ({c})"))
        .unwrap_or_default();
    let mut t = format!(
        "Time to call {name} <{}>{company}: step {} of campaign `{}` is a call, not an email; \
         the lead was sent nothing.\n",
        lead.email,
        p["step"].as_i64().unwrap_or(0),
        str_field(p, &["campaign"]).unwrap_or_default(),
    );
    if let Some(note) = str_field(p, &["note"]).filter(|n| !n.trim().is_empty()) {
        t.push_str(&format!("\nWhat to say: {note}\n"));
    }
    for key in ["phone", "mobile", "telephone"] {
        if let Some(phone) = lead.fields.get(key) {
            t.push_str(&format!("Phone: {phone}\n"));
        }
    }
    (format!("Call task: {name}{company}"), t)
}
