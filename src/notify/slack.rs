//! The text of a Slack-format webhook (`notify.webhook_format = "slack"`): one message per
//! event, each in its own words — a re-warm quotes the reply, a reminder and an escalation
//! say how long the owner has not answered, a call task says whom to call and why, an
//! enrolment or an email names the campaign and step. Pure: the payload and the lead in,
//! the text out.

use chrono::DateTime;
use serde_json::Value;

use super::{display_name, str_field};
use crate::domain::lead::Lead;

/// Replies are quoted up to this many characters.
const QUOTE_CHARS: usize = 500;

/// The `text` of the Slack message for a notification's `payload` about `lead` (None: only
/// the payload's `lead_email` is known); `reply` is the reply's text, when there is one.
pub(super) fn slack_text(payload: &Value, lead: Option<&Lead>, reply: Option<&str>) -> String {
    let who = who(payload, lead);
    let owner_email = lead
        .and_then(|l| l.owner_email.clone())
        .or_else(|| str_field(payload, &["owner"]))
        .filter(|o| !o.trim().is_empty());
    let owner = owner_email
        .as_deref()
        .map(|o| format!(" (owner: {o})"))
        .unwrap_or_default();
    let answerer = owner_email.as_deref().unwrap_or("anyone (no owner)");
    let event = str_field(payload, &["event"]).unwrap_or_else(|| "lead.rewarmed".into());
    let detail = &payload["detail"];
    let day = |v: &Value| {
        v.as_str()
            .and_then(|s| DateTime::parse_from_rfc3339(s).ok())
            .map(|d| d.format("%Y-%m-%d").to_string())
            .unwrap_or_else(|| "-".into())
    };
    let days = payload["days_without_feedback"].as_i64().unwrap_or(0);
    let step = |v: &Value| {
        let campaign = v["campaign"].as_str().unwrap_or("?");
        match v["step"].as_i64() {
            Some(s) => format!("campaign `{campaign}`, step {s}"),
            None => format!("campaign `{campaign}`"),
        }
    };
    let mut text = match event.as_str() {
        "lead.rewarmed" => match payload["intent"].as_str() {
            Some(intent) if payload["needs_look"] == true => {
                format!(":eyes: Re-warmed (needs a look): {who} replied ({intent}){owner}")
            }
            Some(intent) => format!(":fire: Re-warmed: {who} replied ({intent}){owner}"),
            None if payload["reason"] == "score" => {
                let last =
                    str_field(payload, &["score_kind"]).unwrap_or_else(|| "engagement".into());
                format!(":fire: Re-warmed by engagement: {who} (last: a {last}){owner}")
            }
            None => format!(":fire: Re-warmed: {who} replied{owner}"),
        },
        "lead.retired" => format!(
            ":busts_in_silhouette: Contact change: {who} no longer reads this address{owner}"
        ),
        "lead.reminder" => format!(
            ":alarm_clock: Reminder: {who} has waited {days} days for an answer from {answerer} \
             (re-warmed {})",
            day(&payload["rewarmed_at"])
        ),
        "lead.escalated" => {
            let then = if payload["returns_to_nurture"] == true {
                "; back to nurture now"
            } else {
                "; it stays re-warmed until someone answers"
            };
            format!(
                ":rotating_light: Stale lead: {who} — no answer from {answerer} for {days} days \
                 (re-warmed {}){then}",
                day(&payload["rewarmed_at"])
            )
        }
        "lead.call_task" => {
            let phone = lead
                .and_then(|l| {
                    ["phone", "mobile", "telephone"]
                        .iter()
                        .find_map(|k| l.fields.get(*k))
                })
                .map(|p| format!(", phone {p}"))
                .unwrap_or_default();
            let mut t = format!(
                ":telephone_receiver: Call task for {answerer}: call {who}{phone} ({})",
                step(payload)
            );
            if let Some(note) = str_field(payload, &["note"]).filter(|n| !n.trim().is_empty()) {
                t.push_str(&format!("\nWhat to say: {note}"));
            }
            return t;
        }
        "lead.enrolled" => {
            let via = detail["via"]
                .as_str()
                .and_then(|v| v.strip_prefix("then:"))
                .map(|from| format!(" after completing `{from}`"))
                .unwrap_or_default();
            format!(
                ":seedling: Enrolled: {who} in campaign `{}`{via}{owner}",
                detail["campaign"].as_str().unwrap_or("?")
            )
        }
        "lead.emailed" => format!(":envelope: Emailed: {who} ({}){owner}", step(detail)),
        other => {
            // Any other lifecycle event (won, out of scope, feedback, recycled, …): one line.
            let what = other.trim_start_matches("lead.").replace('_', " ");
            return format!(":memo: {what}: {who}{owner}");
        }
    };
    let quotes =
        matches!(event.as_str(), "lead.rewarmed" | "lead.retired") && payload["reason"] != "score";
    if let Some(reply) = reply.filter(|r| quotes && !r.trim().is_empty()) {
        let cut: String = reply.chars().take(QUOTE_CHARS).collect();
        text.push_str(&format!("\n> {}", cut.trim().replace('\n', "\n> ")));
    }
    text
}

/// `Name <email>, Company`, or the payload's `lead_email`.
fn who(payload: &Value, lead: Option<&Lead>) -> String {
    match lead {
        Some(l) => {
            let company = l
                .company
                .as_deref()
                .map(|c| format!(", {c}"))
                .unwrap_or_default();
            format!("{} <{}>{company}", display_name(l), l.email)
        }
        None => str_field(payload, &["lead_email"]).unwrap_or_else(|| "a lead".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn lead() -> Lead {
        let at = DateTime::parse_from_rfc3339("2026-03-01T00:00:00Z")
            .expect("a fixed time")
            .with_timezone(&chrono::Utc);
        Lead {
            id: 7,
            email: crate::domain::email::EmailAddress::parse("dana@globex.example")
                .expect("an address"),
            first_name: Some("Dana".into()),
            last_name: None,
            company: Some("Globex".into()),
            title: None,
            owner_email: Some("rita@acme.example".into()),
            owner_name: None,
            lost_reason: None,
            lost_at: None,
            timezone: None,
            tags: vec![],
            fields: [("phone".to_string(), "+1 555 0100".to_string())].into(),
            state: crate::domain::lead::LeadState::Rewarmed,
            created_at: at,
            updated_at: at,
        }
    }

    fn text(payload: Value) -> String {
        slack_text(&payload, Some(&lead()), Some("Call me.\nTuesday?"))
    }

    #[test]
    fn each_event_has_its_own_words() {
        let cases = [
            (
                json!({"event": "lead.rewarmed", "intent": "interested"}),
                ":fire: Re-warmed: Dana <dana@globex.example>, Globex replied (interested) (owner: rita@acme.example)\n> Call me.\n> Tuesday?",
            ),
            (
                json!({"event": "lead.rewarmed", "intent": "unclear", "needs_look": true}),
                ":eyes: Re-warmed (needs a look): Dana <dana@globex.example>, Globex replied (unclear) (owner: rita@acme.example)\n> Call me.\n> Tuesday?",
            ),
            (
                json!({"event": "lead.rewarmed", "reason": "score", "score_kind": "click"}),
                ":fire: Re-warmed by engagement: Dana <dana@globex.example>, Globex (last: a click) (owner: rita@acme.example)",
            ),
            (
                json!({"event": "lead.reminder", "owner": "rita@acme.example",
                       "rewarmed_at": "2026-03-02T11:00:00Z", "days_without_feedback": 7}),
                ":alarm_clock: Reminder: Dana <dana@globex.example>, Globex has waited 7 days for an answer from rita@acme.example (re-warmed 2026-03-02)",
            ),
            (
                json!({"event": "lead.escalated", "owner": "rita@acme.example",
                       "rewarmed_at": "2026-03-02T11:00:00Z", "days_without_feedback": 14}),
                ":rotating_light: Stale lead: Dana <dana@globex.example>, Globex — no answer from rita@acme.example for 14 days (re-warmed 2026-03-02); it stays re-warmed until someone answers",
            ),
            (
                json!({"event": "lead.escalated", "owner": "rita@acme.example", "returns_to_nurture": true,
                       "rewarmed_at": "2026-03-02T11:00:00Z", "days_without_feedback": 15}),
                ":rotating_light: Stale lead: Dana <dana@globex.example>, Globex — no answer from rita@acme.example for 15 days (re-warmed 2026-03-02); back to nurture now",
            ),
            (
                json!({"event": "lead.call_task", "campaign": "budget", "step": 3, "note": "Ask about Q3."}),
                ":telephone_receiver: Call task for rita@acme.example: call Dana <dana@globex.example>, Globex, phone +1 555 0100 (campaign `budget`, step 3)\nWhat to say: Ask about Q3.",
            ),
            (
                json!({"event": "lead.enrolled", "detail": {"campaign": "evergreen", "via": "then:checkin"}}),
                ":seedling: Enrolled: Dana <dana@globex.example>, Globex in campaign `evergreen` after completing `checkin` (owner: rita@acme.example)",
            ),
            (
                json!({"event": "lead.emailed", "detail": {"campaign": "checkin", "step": 2}}),
                ":envelope: Emailed: Dana <dana@globex.example>, Globex (campaign `checkin`, step 2) (owner: rita@acme.example)",
            ),
            (
                json!({"event": "lead.out_of_scope", "detail": {}}),
                ":memo: out of scope: Dana <dana@globex.example>, Globex (owner: rita@acme.example)",
            ),
        ];
        for (payload, want) in cases {
            assert_eq!(text(payload.clone()), want, "{payload}");
        }
    }

    #[test]
    fn no_chase_or_task_text_says_re_warmed() {
        for event in [
            "lead.reminder",
            "lead.escalated",
            "lead.call_task",
            "lead.enrolled",
            "lead.emailed",
        ] {
            let t = text(json!({"event": event}));
            assert!(!t.contains("Re-warmed:"), "{event}: {t}");
            assert!(!t.contains("> Call me."), "{event} quotes no reply: {t}");
        }
    }

    #[test]
    fn without_a_lead_row_the_payload_names_the_lead() {
        let t = slack_text(
            &json!({"event": "lead.reminder", "lead_email": "x@y.example", "days_without_feedback": 8}),
            None,
            None,
        );
        assert_eq!(
            t,
            ":alarm_clock: Reminder: x@y.example has waited 8 days for an answer from anyone (no owner) (re-warmed -)"
        );
        let t = slack_text(&json!({"lead_email": "x@y.example"}), None, None);
        assert_eq!(t, ":fire: Re-warmed: x@y.example replied");
    }

    #[test]
    fn a_long_reply_is_cut() {
        let long = "x".repeat(2000);
        let t = slack_text(&json!({"event": "lead.rewarmed"}), None, Some(&long));
        assert_eq!(t.matches('x').count(), QUOTE_CHARS);
    }
}
