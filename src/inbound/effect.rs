//! What a classified inbound message does to its lead (pure: builds the
//! [`InboundEffect`] that `Store::record_inbound` applies in one transaction), and the
//! notifications a re-warm puts in the outbox with it.
//!
//! | classification | effect |
//! |---|---|
//! | `human_reply` | [`InboundEffect::Rewarm`]: lead re-warmed, cadence stopped, sales notified |
//! | `auto_reply` | [`InboundEffect::Postpone`] to the day after a stated return date, else none |
//! | `hard_bounce` / `complaint` / `unsubscribe` | [`InboundEffect::Suppress`] |
//! | `soft_bounce` | [`InboundEffect::SoftBounce`] (suppressed after `inbound.soft_bounce_limit` in a row) |
//! | `other` | none |

use chrono::{DateTime, NaiveDate, Utc};
use serde_json::{Value, json};

use crate::config::Settings;
use crate::domain::lead::Lead;
use crate::domain::reply::{Classification, postpone_until};
use crate::store::{Event, InboundEffect, NewNotification, SuppressionReason};

/// The parts of a message an effect needs.
#[derive(Debug, Clone, Default)]
pub struct Reply<'a> {
    pub dedupe_key: &'a str,
    pub subject: Option<&'a str>,
    pub text: &'a str,
    pub from: Option<&'a str>,
    pub return_date: Option<NaiveDate>,
    pub received_at: Option<DateTime<Utc>>,
    /// Evidence for suppressions and soft bounces (e.g. the DSN status and diagnostic).
    pub evidence: Value,
}

/// The idempotency key of the re-warm a reply causes (each notification's is `{key}:{kind}`).
pub fn rewarm_key(lead_id: i64, dedupe_key: &str) -> String {
    format!("rewarmed:{lead_id}:{dedupe_key}")
}

/// The effect of `classification` on `lead`; `timeline` is the lead's history (for the
/// notifications' payload).
pub fn effect_for(
    settings: &Settings,
    classification: Classification,
    lead: &Lead,
    reply: &Reply<'_>,
    timeline: &[Event],
) -> InboundEffect {
    match classification {
        Classification::HumanReply => InboundEffect::Rewarm {
            text: reply.text.to_string(),
            subject: reply.subject.map(str::to_string),
            notifications: notifications(settings, lead, reply, timeline),
        },
        Classification::AutoReply => match reply.return_date.and_then(postpone_until) {
            Some(until) => InboundEffect::Postpone { until },
            None => InboundEffect::None,
        },
        Classification::HardBounce => suppress(SuppressionReason::HardBounce, reply),
        Classification::Complaint => suppress(SuppressionReason::Complaint, reply),
        Classification::Unsubscribe => suppress(SuppressionReason::Unsubscribed, reply),
        Classification::SoftBounce => InboundEffect::SoftBounce {
            limit: settings.inbound.soft_bounce_limit.max(1),
            evidence: evidence(reply),
        },
        Classification::Other => InboundEffect::None,
    }
}

fn evidence(reply: &Reply<'_>) -> Value {
    let mut e = match &reply.evidence {
        Value::Object(o) => Value::Object(o.clone()),
        Value::Null => json!({}),
        other => json!({ "detail": other }),
    };
    e["dedupe_key"] = json!(reply.dedupe_key);
    if let Some(s) = reply.subject {
        e["subject"] = json!(s);
    }
    if let Some(f) = reply.from {
        e["from"] = json!(f);
    }
    e
}

fn suppress(reason: SuppressionReason, reply: &Reply<'_>) -> InboundEffect {
    InboundEffect::Suppress {
        reason,
        evidence: evidence(reply),
    }
}

/// The notifications a re-warm by score enqueues (its engagement of `kind` reached the
/// segment's `rewarm_score`): like a reply's, without a reply, with `reason: "score"`.
pub fn score_notifications(
    settings: &Settings,
    lead: &Lead,
    kind: &str,
    threshold: i64,
    key: &str,
    timeline: &[Event],
) -> Vec<NewNotification> {
    let reply = Reply {
        dedupe_key: &format!("score:{kind}:{key}"),
        ..Reply::default()
    };
    let mut out = notifications(settings, lead, &reply, timeline);
    for n in &mut out {
        if let Value::Object(p) = &mut n.payload {
            p.insert("reason".into(), json!("score"));
            p.insert("score_kind".into(), json!(kind));
            p.insert("rewarm_score".into(), json!(threshold));
        }
    }
    out
}

/// The notifications a re-warm by `reply` enqueues: built by
/// [`crate::notify::rewarm_notifications`] (owner email / webhook per `notify`), each payload
/// completed with the lead's data, the reply and the lead's timeline.
pub fn notifications(
    settings: &Settings,
    lead: &Lead,
    reply: &Reply<'_>,
    timeline: &[Event],
) -> Vec<NewNotification> {
    let key = rewarm_key(lead.id, reply.dedupe_key);
    let mut out = crate::notify::rewarm_notifications(
        &settings.notify,
        lead,
        &key,
        reply.text,
        reply.subject,
    );
    for n in &mut out {
        if let Value::Object(p) = &mut n.payload {
            p.insert("idempotency_key".into(), json!(n.idempotency_key));
            p.insert("rewarm_key".into(), json!(key));
            p.insert("lead".into(), json!(lead));
            p.insert("from".into(), json!(reply.from));
            p.insert("received_at".into(), json!(reply.received_at));
            p.insert("timeline".into(), json!(timeline));
        }
    }
    out
}
