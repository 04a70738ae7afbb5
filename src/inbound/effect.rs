//! What a classified inbound message does to its lead (pure: builds the
//! [`InboundEffect`] that `Store::record_inbound` applies in one transaction), and the
//! notifications a re-warm puts in the outbox with it.
//!
//! | classification | effect |
//! |---|---|
//! | `human_reply` | [`InboundEffect::Reply`]: by its intent (below); unread, [`InboundEffect::Rewarm`] |
//! | `auto_reply` | [`InboundEffect::Postpone`] to the day after a stated return date, else none |
//! | `hard_bounce` / `complaint` / `unsubscribe` | [`InboundEffect::Suppress`] |
//! | `soft_bounce` | [`InboundEffect::SoftBounce`] (suppressed after `inbound.soft_bounce_limit` in a row) |
//! | `other` | none |
//!
//! A human reply's intent (`inbound::intent`) does what `[intents]` (or the lead's segment)
//! says — by default:
//!
//! | intent | effect | |
//! |---|---|---|
//! | `interested`, `question` | `rewarm` | re-warmed, handed to sales; the notification names the intent |
//! | `unclear` | `review` | re-warmed, marked "needs a look" |
//! | `later` | `postpone` | not handed to sales: the cadence waits until the named moment (else `intents.postpone`) |
//! | `not_interested` | `out_of_scope` | out of scope with the reply as reason, re-check after `intents.recheck_after` (12 months); nobody told now |
//! | `left_company`, `wrong_person` | `retire` | address retired; each referral with an address becomes a lead; the owner is told once |

use chrono::{DateTime, NaiveDate, Utc};
use serde_json::{Value, json};

use crate::config::Settings;
use crate::domain::email::EmailAddress;
use crate::domain::intent::IntentEffect;
use crate::domain::lead::Lead;
use crate::domain::reply::{Classification, postpone_until};
use crate::domain::segment::Segment;
use crate::inbound::intent::IntentVerdict;
use crate::store::{
    Event, InboundEffect, NewNotification, ReferralLead, ReplyAction, SuppressionReason,
};

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
    /// A human reply's intent (None: not read, re-warmed as a plain reply).
    pub intent: Option<IntentVerdict>,
    /// The lead's segment (its `intents` table decides over `[intents]`).
    pub segment: Option<&'a Segment>,
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
        Classification::HumanReply => match &reply.intent {
            Some(verdict) => reply_effect(settings, lead, reply, timeline, verdict),
            None => InboundEffect::Rewarm {
                text: reply.text.to_string(),
                subject: reply.subject.map(str::to_string),
                notifications: notifications(settings, lead, reply, timeline),
            },
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

/// What a human reply of intent `v` does (see the module table).
fn reply_effect(
    settings: &Settings,
    lead: &Lead,
    reply: &Reply<'_>,
    timeline: &[Event],
    v: &IntentVerdict,
) -> InboundEffect {
    let detail = v.to_json();
    let rewarm = |needs_look: bool| {
        let mut out = notifications(settings, lead, reply, timeline);
        for n in &mut out {
            if let Value::Object(p) = &mut n.payload {
                p.insert("intent".into(), json!(v.intent));
                p.insert("intent_detail".into(), detail.clone());
                p.insert("needs_look".into(), json!(needs_look));
            }
        }
        ReplyAction::Rewarm {
            notifications: out,
            needs_look,
        }
    };
    let action = match settings.intents.effect(v.intent, reply.segment) {
        IntentEffect::Rewarm => rewarm(false),
        IntentEffect::Review => rewarm(true),
        IntentEffect::OutOfScope => ReplyAction::OutOfScope {
            reason: out_of_scope_reason(reply, v),
            recheck_at: settings.intents.recheck_after.after(
                reply.received_at.unwrap_or_default(),
                lead.zone_or(settings.default_tz),
            ),
        },
        IntentEffect::Postpone => ReplyAction::Postpone {
            until: later_until(settings, lead, reply, v),
        },
        IntentEffect::Retire => {
            let referrals = referral_leads(lead, v);
            ReplyAction::Retire {
                reason: v.intent.as_str().to_string(),
                notifications: retire_notifications(settings, lead, reply, v, &referrals),
                referrals,
            }
        }
    };
    InboundEffect::Reply {
        text: reply.text.to_string(),
        subject: reply.subject.map(str::to_string),
        intent: detail,
        action,
    }
}

/// The reason an out-of-scope reply is recorded with: its intent and its own words (cut to
/// 300 characters).
fn out_of_scope_reason(reply: &Reply<'_>, v: &IntentVerdict) -> String {
    let text: String = reply.text.split_whitespace().collect::<Vec<_>>().join(" ");
    let cut: String = text.chars().take(300).collect();
    let more = if text.chars().count() > 300 {
        "…"
    } else {
        ""
    };
    format!("reply: {} — \"{cut}{more}\"", v.intent)
}

/// Until when a `later` reply postpones the cadence: the start (00:00 UTC) of the day it
/// names, else `intents.postpone` after it came (in the lead's zone).
fn later_until(
    settings: &Settings,
    lead: &Lead,
    reply: &Reply<'_>,
    v: &IntentVerdict,
) -> DateTime<Utc> {
    let received = reply.received_at.unwrap_or_default();
    v.when
        .as_ref()
        .and_then(|w| w.date.and_hms_opt(0, 0, 0))
        .map(|t| t.and_utc())
        .filter(|t| *t > received)
        .unwrap_or_else(|| {
            settings
                .intents
                .postpone
                .after(received, lead.zone_or(settings.default_tz))
        })
}

/// The referrals of `v` that become leads: those with a valid address other than the lead's.
fn referral_leads(lead: &Lead, v: &IntentVerdict) -> Vec<ReferralLead> {
    let mut out: Vec<ReferralLead> = Vec::new();
    for r in &v.referrals {
        let Some(email) = r.email.as_deref().and_then(|e| EmailAddress::parse(e).ok()) else {
            continue;
        };
        if email == lead.email || out.iter().any(|o| o.email == email.as_str()) {
            continue;
        }
        let mut words = r.name.as_deref().unwrap_or_default().split_whitespace();
        let first_name = words.next().map(str::to_string);
        let last = words.collect::<Vec<_>>().join(" ");
        out.push(ReferralLead {
            email: email.to_string(),
            first_name,
            last_name: (!last.is_empty()).then_some(last),
        });
    }
    out
}

/// The owner is told once about a retired address and the contacts it named (owner email and
/// webhook per `notify`; `lead.retired`).
fn retire_notifications(
    settings: &Settings,
    lead: &Lead,
    reply: &Reply<'_>,
    v: &IntentVerdict,
    referrals: &[ReferralLead],
) -> Vec<NewNotification> {
    let key = format!("retired:{}:{}", lead.id, reply.dedupe_key);
    let mut out = crate::notify::rewarm_notifications(
        &settings.notify,
        lead,
        &key,
        reply.text,
        reply.subject,
    );
    for n in &mut out {
        if let Value::Object(p) = &mut n.payload {
            p.insert("event".into(), json!("lead.retired"));
            p.insert("intent".into(), json!(v.intent));
            p.insert("intent_detail".into(), v.to_json());
            p.insert("referrals".into(), json!(v.referrals));
            p.insert(
                "new_leads".into(),
                json!(referrals.iter().map(|r| &r.email).collect::<Vec<_>>()),
            );
            p.insert("lead".into(), json!(lead));
            p.insert("from".into(), json!(reply.from));
            p.insert("received_at".into(), json!(reply.received_at));
        }
    }
    // Built as a re-warm's, sent as `lead.retired` (if `notify.webhook_events` has it).
    out.retain(|n| n.kind != "webhook" || settings.notify.webhook_for("retired").is_some());
    out
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
