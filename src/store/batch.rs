//! The JSON batches both backends expand in SQL (one array parameter per statement, so a
//! batch of any size is a handful of statements, not a query per row): times as integer
//! milliseconds, in the same shape for SQLite's `json_each` and PostgreSQL's
//! `jsonb_array_elements`. Also how an import merges a row into a known lead (the rest of
//! an import's Rust side is in `import.rs`).

use std::collections::{BTreeSet, HashMap};

use chrono::{DateTime, Utc};
use serde_json::{Value, json};

use super::*;

fn ms(t: DateTime<Utc>) -> i64 {
    t.timestamp_millis()
}

/// Merges `new` into `old`; returns the names of the columns that changed.
pub(crate) fn merge_lead(old: &Lead, new: &NewLead) -> (Lead, Vec<&'static str>) {
    let mut merged = old.clone();
    let mut changed = Vec::new();
    let mut set = |slot: &mut Option<String>, value: &Option<String>, name: &'static str| {
        if let Some(v) = value
            && slot.as_deref() != Some(v.as_str())
        {
            *slot = Some(v.clone());
            changed.push(name);
        }
    };
    set(&mut merged.first_name, &new.first_name, "first_name");
    set(&mut merged.last_name, &new.last_name, "last_name");
    set(&mut merged.company, &new.company, "company");
    set(&mut merged.title, &new.title, "title");
    set(
        &mut merged.owner_email,
        &new.owner_email.as_ref().map(|e| e.to_string()),
        "owner_email",
    );
    set(&mut merged.owner_name, &new.owner_name, "owner_name");
    set(&mut merged.lost_reason, &new.lost_reason, "lost_reason");
    if new.lost_at.is_some() && new.lost_at != merged.lost_at {
        merged.lost_at = new.lost_at;
        changed.push("lost_at");
    }
    if new.timezone.is_some() && new.timezone != merged.timezone {
        merged.timezone = new.timezone;
        changed.push("timezone");
    }
    let before = merged.tags.len();
    for tag in &new.tags {
        if !merged.tags.iter().any(|t| t.eq_ignore_ascii_case(tag)) {
            merged.tags.push(tag.clone());
        }
    }
    if merged.tags.len() != before {
        changed.push("tags");
    }
    let mut fields_changed = false;
    for (k, v) in &new.fields {
        if merged.fields.get(k) != Some(v) {
            merged.fields.insert(k.clone(), v.clone());
            fields_changed = true;
        }
    }
    if fields_changed {
        changed.push("fields");
    }
    (merged, changed)
}

pub(crate) fn lead_json(l: &Lead) -> Value {
    json!({
        "id": l.id,
        "email": l.email.as_str(),
        "first_name": l.first_name,
        "last_name": l.last_name,
        "company": l.company,
        "title": l.title,
        "owner_email": l.owner_email,
        "owner_name": l.owner_name,
        "lost_reason": l.lost_reason,
        "lost_at": l.lost_at.map(ms),
        "timezone": l.timezone.map(|t| t.name()),
        "tags": serde_json::to_string(&l.tags).unwrap_or_else(|_| "[]".into()),
        "fields": serde_json::to_string(&l.fields).unwrap_or_else(|_| "{}".into()),
    })
}

/// The outcomes that still apply to their delivery (`outcome_applies`, given the delivery
/// states claimed by the recording worker), as `outcome_json`: the batch `record_outcomes`
/// expands. Events are written only for these.
pub(crate) fn applicable_outcomes(
    outcomes: &[RecordedOutcome],
    states: &HashMap<i64, String>,
) -> Vec<Value> {
    outcomes
        .iter()
        .filter(|o| outcome_applies(&o.outcome, states.get(&o.delivery.id).map(String::as_str)))
        .map(outcome_json)
        .collect()
}

/// The call tasks' notifications of the outcomes that still apply (enqueued by
/// `record_outcomes` in its transaction).
pub(crate) fn call_task_notifications(
    outcomes: &[RecordedOutcome],
    states: &HashMap<i64, String>,
) -> Vec<NewNotification> {
    outcomes
        .iter()
        .filter(|o| outcome_applies(&o.outcome, states.get(&o.delivery.id).map(String::as_str)))
        .flat_map(|o| match &o.outcome {
            Outcome::CallTask { notifications, .. } => notifications.clone(),
            _ => Vec::new(),
        })
        .collect()
}

/// The JSON one outcome contributes to `record_outcomes`' statements.
pub(crate) fn outcome_json(r: &RecordedOutcome) -> Value {
    let d = &r.delivery;
    let base = |kind: &str, event: &str, detail: Value| {
        json!({"id": d.id, "lead_id": d.lead_id, "enrolment_id": d.enrolment_id, "campaign": d.campaign,
               "kind": kind, "event": event, "detail": detail.to_string()})
    };
    let next_json = |next: &Option<NextStep>| match next {
        Some(n) => json!({"step": n.step, "due": ms(n.due_at), "template": n.template}),
        None => Value::Null,
    };
    match &r.outcome {
        Outcome::Sent {
            message_id,
            provider_id,
            next,
        } => {
            let mut detail = json!({"campaign": d.campaign, "step": d.step + 1, "template": d.template, "message_id": message_id, "attempt": d.attempts});
            if let Some(id) = provider_id {
                detail["provider_message_id"] = json!(id);
            }
            let mut v = base("sent", "sent", detail);
            v["message_id"] = json!(message_id);
            v["provider_id"] = json!(provider_id);
            v["next"] = next_json(next);
            v
        }
        Outcome::Deferred { due_at, reason } => {
            let mut v = base(
                "deferred",
                "delivery_deferred",
                json!({"campaign": d.campaign, "step": d.step + 1, "until": due_at.to_rfc3339(), "reason": reason.describe()}),
            );
            v["due"] = json!(ms(*due_at));
            v
        }
        Outcome::Retry { due_at, error } => {
            let mut v = base(
                "retry",
                "delivery_retry",
                json!({"campaign": d.campaign, "step": d.step + 1, "attempt": d.attempts, "error": error, "retry_at": due_at.to_rfc3339()}),
            );
            v["due"] = json!(ms(*due_at));
            v["error"] = json!(error);
            v
        }
        Outcome::Failed {
            error,
            next,
            suppress,
        } => {
            let mut v = base(
                "failed",
                "delivery_failed",
                json!({"campaign": d.campaign, "step": d.step + 1, "template": d.template, "attempt": d.attempts, "error": error}),
            );
            v["error"] = json!(error);
            // A suppressed address gets no next step.
            v["next"] = if *suppress {
                Value::Null
            } else {
                next_json(next)
            };
            v["suppress"] = json!(suppress);
            v
        }
        Outcome::CallTask { detail, next, .. } => {
            let mut v = base("tasked", "call_task", detail.clone());
            v["next"] = next_json(next);
            v
        }
        Outcome::Unknown { error, next } => {
            let mut v = base(
                "unknown",
                "delivery_unknown",
                json!({"campaign": d.campaign, "step": d.step + 1, "template": d.template, "attempt": d.attempts, "error": error,
                       "reason": "the conversation broke off after the message may have been accepted; not resent"}),
            );
            v["error"] = json!(error);
            v["next"] = next_json(next);
            v
        }
    }
}

/// The detail of an enrolment's `enrolled` event, as JSON text.
pub(crate) fn enrolled_detail(e: &NewEnrolment) -> String {
    json!({"campaign": e.campaign, "segment": e.segment, "first_due": e.first_due.to_rfc3339(), "from": "new", "to": "nurturing"})
        .to_string()
}

/// `resume_enrolments`' batch: the enrolment and its next step (null: it completes).
pub(crate) fn resumed_json(resumed: &[(StalledEnrolment, Option<NextStep>)]) -> Value {
    Value::Array(
        resumed
            .iter()
            .map(|(s, next)| {
                json!({"enrolment_id": s.enrolment_id, "lead_id": s.lead_id, "campaign": s.campaign,
                       "next": next.as_ref().map(|n| json!({"step": n.step, "due": ms(n.due_at), "template": n.template}))})
            })
            .collect(),
    )
}

/// The batch of entries `suppress` expands in SQL (first entry per address wins), as JSON.
pub(crate) fn suppressions_json(entries: &[Suppression]) -> Value {
    let mut seen = BTreeSet::new();
    Value::Array(
        entries
            .iter()
            .filter(|e| seen.insert(e.address.as_str()))
            .map(|e| {
                json!({"address": e.address, "reason": e.reason.as_str(), "evidence": e.evidence,
                                   "created_at": e.created_at.timestamp_millis()})
            })
            .collect(),
    )
}

/// Notifications as the JSON batch both backends expand in SQL.
pub(crate) fn notifications_json(items: &[NewNotification], now: DateTime<Utc>) -> Value {
    Value::Array(
        items
            .iter()
            .map(|n| {
                json!({"kind": n.kind, "lead_id": n.lead_id, "key": n.idempotency_key,
                                   "payload": n.payload, "at": now.timestamp_millis()})
            })
            .collect(),
    )
}

/// Notification results as the JSON batch both backends expand in SQL.
pub(crate) fn notification_results_json(results: &[NotificationResult]) -> Value {
    Value::Array(
        results
            .iter()
            .map(|(id, result, retry_at)| {
                let (state, error) = match (result, retry_at) {
                    (Ok(()), _) => ("sent", None),
                    (Err(e), Some(_)) => ("pending", Some(e.as_str())),
                    (Err(e), None) => ("failed", Some(e.as_str())),
                };
                json!({"id": id, "state": state, "error": error,
                                   "retry_at": retry_at.map(|t| t.timestamp_millis())})
            })
            .collect(),
    )
}

/// States a reply or a score can re-warm.
pub(crate) fn rewarmable(state: &str) -> bool {
    matches!(state, "new" | "nurturing" | "completed")
}

/// Where `recycle` puts a lead: nurturing if a delivery was resumed, else completed if it was
/// ever enrolled, else new.
pub(crate) fn recycle_target(resumed: u64, enrolments: i64) -> LeadState {
    if resumed > 0 {
        LeadState::Nurturing
    } else if enrolments > 0 {
        LeadState::Completed
    } else {
        LeadState::New
    }
}

/// Folds a later duplicate row into an earlier one (later non-empty values win).
pub(crate) fn fold_new_lead(into: &mut NewLead, from: &NewLead) {
    macro_rules! take {
        ($($f:ident),*) => { $( if from.$f.is_some() { into.$f = from.$f.clone(); } )* };
    }
    take!(
        first_name,
        last_name,
        company,
        title,
        owner_email,
        owner_name,
        lost_reason,
        lost_at,
        timezone
    );
    for tag in &from.tags {
        if !into.tags.contains(tag) {
            into.tags.push(tag.clone());
        }
    }
    into.fields.extend(from.fields.clone());
}

/// Which of the backends' `RECORD_OUTCOMES` (the same 14 effects, in the same order) can
/// touch a row of this batch: each statement only reads outcomes of some kinds, so one with
/// none of those in the batch would change nothing and is not run (a batch that only sent,
/// with next steps, runs 3 of the 14: one round trip per step that has work).
pub(crate) fn record_outcomes_needed(applicable: &[Value]) -> [bool; 14] {
    fn kind(v: &Value) -> &str {
        v["kind"].as_str().unwrap_or_default()
    }
    let any = |wanted: &dyn Fn(&Value) -> bool| applicable.iter().any(wanted);
    let finished = |v: &Value| matches!(kind(v), "sent" | "tasked" | "failed" | "unknown");
    let suppressing = |v: &Value| kind(v) == "failed" && v["suppress"].as_bool() == Some(true);
    let (sent, deferred, retry) = (
        any(&|v| kind(v) == "sent"),
        any(&|v| kind(v) == "deferred"),
        any(&|v| kind(v) == "retry"),
    );
    let failed_or_unknown = any(&|v| matches!(kind(v), "failed" | "unknown"));
    let has_next = any(&|v| finished(v) && !v["next"].is_null());
    let ends = any(&|v| finished(v) && v["next"].is_null());
    let suppresses = any(&suppressing);
    [
        true,
        sent,
        deferred,
        retry,
        failed_or_unknown,
        has_next,
        ends,
        ends,
        suppresses,
        ends,
        suppresses,
        suppresses,
        suppresses,
        any(&|v| kind(v) == "tasked"),
    ]
}
