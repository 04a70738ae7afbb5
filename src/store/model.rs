//! The values the store takes and gives back: what a delivery, an outcome, a suppression
//! entry, an inbound message or a notification looks like to the rest of rewarm. Plain data,
//! the same for both databases; the batch builders that turn them into the JSON parameters
//! both backends expand in SQL live in `shared.rs`.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};

use crate::domain::email::EmailAddress;
use crate::domain::lead::LeadState;

/// What an import did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct UpsertSummary {
    pub inserted: usize,
    pub updated: usize,
    pub unchanged: usize,
}

/// What the store holds of a batch of addresses, as an import reads it (`leads import
/// --dry-run`): the known leads (id, address, import hash), and the addresses whose address
/// or `@domain` is on the suppression list.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ImportLookup {
    pub known: Vec<(i64, String, Option<i64>)>,
    pub suppressed: std::collections::HashSet<String>,
}

/// A lead to enrol in a campaign, with its first step already computed.
#[derive(Debug, Clone)]
pub struct NewEnrolment {
    pub lead_id: i64,
    pub campaign: String,
    pub segment: String,
    pub first_due: DateTime<Utc>,
    pub template: String,
}

/// A delivery claimed for sending.
#[derive(Debug, Clone)]
pub struct ClaimedDelivery {
    pub id: i64,
    pub lead_id: i64,
    pub enrolment_id: i64,
    pub campaign: String,
    pub step: u32,
    pub template: String,
    /// Including this one.
    pub attempts: u32,
    pub due_at: DateTime<Utc>,
}

/// The step that follows a finished one.
#[derive(Debug, Clone)]
pub struct NextStep {
    pub step: u32,
    pub due_at: DateTime<Utc>,
    pub template: String,
}

/// Why a delivery was put back without using up an attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeferReason {
    /// Outside the lead's send window.
    SendWindow,
    /// Over a transport or recipient-domain limit, or throttled by the provider.
    RateLimit,
    /// The transport failed as a whole (relay down, 421 at greeting, AUTH refused, …) and is
    /// paused by its circuit breaker: due again when it is probed.
    TransportPaused,
    /// The daemon stopped (its shutdown deadline passed) before this delivery's send started.
    Shutdown,
    /// On a day the campaign does not send on (holiday, blackout, calendar day, weekend).
    ClosedDay,
}

impl DeferReason {
    pub fn describe(self) -> &'static str {
        match self {
            DeferReason::SendWindow => "outside the send window",
            DeferReason::RateLimit => "over a sending limit or throttled",
            DeferReason::TransportPaused => "the transport failed as a whole and is paused",
            DeferReason::Shutdown => "the daemon stopped before it was sent",
            DeferReason::ClosedDay => "a closed day (holiday, blackout or weekend)",
        }
    }
}

/// What happened to a claimed delivery.
#[derive(Debug, Clone)]
pub enum Outcome {
    Sent {
        message_id: String,
        /// The id the email provider gave the message (API transports), for its events.
        provider_id: Option<String>,
        next: Option<NextStep>,
    },
    /// Not now (outside the lead's send window): back to `scheduled` at `due_at`; the
    /// attempt does not count.
    Deferred {
        due_at: DateTime<Utc>,
        reason: DeferReason,
    },
    /// Try again at `due_at`.
    Retry {
        due_at: DateTime<Utc>,
        error: String,
    },
    /// Final failure; the cadence goes on with `next` unless it is None.
    Failed {
        error: String,
        next: Option<NextStep>,
        suppress: bool,
    },
    /// The send broke off after the message may have left: never resent; the cadence goes on.
    Unknown {
        error: String,
        next: Option<NextStep>,
    },
    /// A call step: nothing goes to the lead; its owner is given a call task (`notifications`,
    /// enqueued in the same transaction). The delivery ends `tasked` (event `call_task`
    /// with `detail`) and the cadence goes on with `next`.
    CallTask {
        detail: serde_json::Value,
        notifications: Vec<NewNotification>,
        next: Option<NextStep>,
    },
}

/// Whether an outcome may still be recorded on a delivery now in `state` (claimed by the
/// recording worker; None = not claimed by it). A result that arrives after its lease expired
/// (`unknown`) still records what really happened to the message, but a retry or deferral
/// of a row no longer ours is dropped: another pass has moved the cadence on.
pub fn outcome_applies(outcome: &Outcome, state: Option<&str>) -> bool {
    match outcome {
        Outcome::Retry { .. } | Outcome::Deferred { .. } => state == Some("claimed"),
        Outcome::Sent { .. }
        | Outcome::Failed { .. }
        | Outcome::Unknown { .. }
        | Outcome::CallTask { .. } => matches!(state, Some("claimed" | "unknown")),
    }
}

#[derive(Debug, Clone)]
pub struct RecordedOutcome {
    pub delivery: ClaimedDelivery,
    pub outcome: Outcome,
}

/// An active enrolment with nothing scheduled (its last delivery ended without a
/// successor being recorded, e.g. after a crash): the scheduler decides what comes next.
#[derive(Debug, Clone)]
pub struct StalledEnrolment {
    pub enrolment_id: i64,
    pub lead_id: i64,
    pub campaign: String,
    /// The last step that was attempted, and when it ended.
    pub last_step: u32,
    pub last_at: DateTime<Utc>,
}

/// A delivery waiting to be sent (for the forecast).
#[derive(Debug, Clone)]
pub struct PendingDelivery {
    pub lead_id: i64,
    pub campaign: String,
    pub step: u32,
    pub template: String,
    pub due_at: DateTime<Utc>,
}

/// One entry on a lead's timeline.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Event {
    pub at: DateTime<Utc>,
    pub kind: String,
    pub detail: serde_json::Value,
}

/// Counts for `rewarm status`.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct StatusReport {
    pub leads_by_state: BTreeMap<String, i64>,
    /// campaign → enrolment state → count
    pub enrolments: BTreeMap<String, BTreeMap<String, i64>>,
    /// delivery state → count, over all time
    pub deliveries_by_state: BTreeMap<String, i64>,
    pub sent_since: i64,
    pub failed_since: i64,
    pub unknown_since: i64,
    /// Deliveries due now or earlier and not yet sent.
    pub due_now: i64,
    /// Inbound messages received since `since`, by classification.
    pub inbound_since: BTreeMap<String, i64>,
    /// Inbound messages no lead matched, over all time (kept for review).
    pub inbound_unmatched: i64,
    /// The notification outbox by state (`pending`, `claimed`, `sent`, `failed`), over all time.
    pub notifications_by_state: BTreeMap<String, i64>,
}

/// Why an address is suppressed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SuppressionReason {
    Unsubscribed,
    HardBounce,
    Complaint,
    Manual,
}

impl SuppressionReason {
    pub const ALL: [SuppressionReason; 4] = [
        SuppressionReason::Unsubscribed,
        SuppressionReason::HardBounce,
        SuppressionReason::Complaint,
        SuppressionReason::Manual,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            SuppressionReason::Unsubscribed => "unsubscribed",
            SuppressionReason::HardBounce => "hard_bounce",
            SuppressionReason::Complaint => "complaint",
            SuppressionReason::Manual => "manual",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|r| r.as_str() == s)
    }
}

impl std::fmt::Display for SuppressionReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One entry of the global suppression list.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Suppression {
    /// A normalised email address, or `@domain` (lower-case) for a whole domain.
    pub address: String,
    pub reason: SuppressionReason,
    /// Why, as recorded (e.g. {"delivery_id", "error"} for a hard bounce, {"note"} for manual).
    pub evidence: serde_json::Value,
    pub created_at: DateTime<Utc>,
}

impl Suppression {
    /// Normalises an address or `@domain` for the list: addresses through
    /// `EmailAddress::parse`; domains trimmed, lower-cased, with a dot, and valid as the
    /// domain of an address.
    pub fn normalise_address(raw: &str) -> Result<String, crate::domain::email::EmailError> {
        use crate::domain::email::EmailError;
        let trimmed = raw.trim();
        match trimmed.strip_prefix('@') {
            Some(domain) => {
                if domain.is_empty() || domain.contains('@') {
                    return Err(EmailError::Invalid(trimmed.to_string()));
                }
                // A domain is valid when some address at it is.
                let probe = EmailAddress::parse(&format!("x@{domain}"))
                    .map_err(|_| EmailError::Invalid(trimmed.to_string()))?;
                Ok(format!("@{}", probe.domain()))
            }
            None => Ok(EmailAddress::parse(trimmed)?.to_string()),
        }
    }
}

/// The lead a delivery went to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeliveryTarget {
    pub delivery_id: i64,
    pub lead_id: i64,
    pub email: EmailAddress,
    pub campaign: String,
    /// 1-based, as in events and templates.
    pub step: u32,
    pub message_id: Option<String>,
}

// ── Inbound ─────────────────────────────────────────────────────────────────────────────

/// One inbound message as it is kept.
#[derive(Debug, Clone, PartialEq)]
pub struct InboundRecord {
    pub dedupe_key: String,
    pub source: String,
    pub received_at: DateTime<Utc>,
    pub message_id: Option<String>,
    pub from_address: Option<String>,
    pub subject: Option<String>,
    /// `human_reply`, `auto_reply`, `hard_bounce`, `soft_bounce`, `complaint`,
    /// `unsubscribe` or `other`.
    pub classification: String,
    pub lead_id: Option<i64>,
    pub delivery_id: Option<i64>,
    /// How it was matched (`token`, `in_reply_to`, `report`, `sender`); None = unmatched.
    pub matched_by: Option<String>,
    /// The new text (quoted history stripped).
    pub text: Option<String>,
    pub raw: Vec<u8>,
}

/// A stored inbound message.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredInbound {
    pub id: i64,
    pub record: InboundRecord,
    /// What it did (JSON: {"effect": …, …}).
    pub effects: serde_json::Value,
}

/// What an inbound message does to its (matched) lead. Ignored when unmatched.
#[derive(Debug, Clone, PartialEq)]
pub enum InboundEffect {
    /// Recorded only.
    None,
    /// A human reply: a new, nurturing or completed lead becomes `rewarmed` (events `replied`
    /// {text, subject, classification, inbound_id} and `rewarmed` {from, to, reason}), its
    /// active enrolments stop, its `scheduled`/`retry_wait` deliveries are cancelled, and
    /// `notifications` go into the outbox. A lead already re-warmed gets the `replied` event
    /// and the notifications; a suppressed lead only the `replied` event.
    Rewarm {
        text: String,
        subject: Option<String>,
        notifications: Vec<NewNotification>,
    },
    /// An out-of-office with a return date: the lead's waiting deliveries are not due before
    /// `until` (event `postponed` {until}).
    Postpone { until: DateTime<Utc> },
    /// Exactly like `suppress` of the lead's address.
    Suppress {
        reason: SuppressionReason,
        evidence: serde_json::Value,
    },
    /// Event `soft_bounce` {evidence}. The rule: when the lead has at least `limit`
    /// `soft_bounce` events after its last `sent` or `inbound` human reply event (i.e. that
    /// many in a row with nothing delivered in between), its address is suppressed
    /// (`hard_bounce`, evidence {soft_bounces, limit, last}).
    SoftBounce {
        limit: u32,
        evidence: serde_json::Value,
    },
    /// The provider delivered the message (a provider event): event `delivered` {detail,
    /// inbound_id} instead of an `inbound` event; the lead's state does not change.
    Delivered { detail: serde_json::Value },
    /// A human reply read for its intent (`inbound::intent`): event `replied` {text, subject,
    /// classification, inbound_id, intent} where `intent` is the verdict (intent, rule,
    /// phrase, language, when, referrals), then `action`.
    Reply {
        text: String,
        subject: Option<String>,
        intent: serde_json::Value,
        action: ReplyAction,
    },
}

/// What a read human reply does (see [`InboundEffect::Reply`]).
#[derive(Debug, Clone, PartialEq)]
pub enum ReplyAction {
    /// Exactly like [`InboundEffect::Rewarm`] (re-warmed, cadence stopped, `notifications`
    /// queued); `needs_look` marks it "needs a look" on the `rewarmed` event.
    Rewarm {
        notifications: Vec<NewNotification>,
        needs_look: bool,
    },
    /// Not handed to sales: the lead's waiting deliveries are not due before `until`
    /// (event `postponed` {until, reason: "reply", intent, phrase, deliveries}); nobody is
    /// notified. A lead with nothing waiting (not nurturing) only gets the event.
    Postpone { until: DateTime<Utc> },
    /// Out of scope (the lifecycle's `set_lifecycle`, inside this transaction) with the
    /// reply as `reason` and a re-check date; by `reply`. Nobody is notified now.
    OutOfScope {
        reason: String,
        recheck_at: DateTime<Utc>,
    },
    /// The address is retired: its waiting deliveries are cancelled, its active enrolments
    /// stop, the lead becomes `completed` (never enrolled again: only `new` leads are) —
    /// event `retired` {reason, from, to, inbound_id, referrals}; the address is *not* put
    /// on the suppression list. Each referral becomes a new lead (`referred` events on both),
    /// and `notifications` tell the owner once.
    Retire {
        reason: String,
        referrals: Vec<ReferralLead>,
        notifications: Vec<NewNotification>,
    },
}

/// A person a reply refers us to, to become a lead like the one who replied (same company,
/// owner, loss, zone, tags and fields).
#[derive(Debug, Clone, PartialEq)]
pub struct ReferralLead {
    /// Normalised.
    pub email: String,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
}

/// Another lead the same inbound message acts on: a bounce that names several failed
/// recipients suppresses (or counts a soft bounce for) each lead it names, not only the one
/// it matched.
#[derive(Debug, Clone, PartialEq)]
pub struct OtherLead {
    pub lead_id: i64,
    /// What the message is for this lead (`hard_bounce` or `soft_bounce`: each recipient
    /// failed in its own way).
    pub classification: String,
    pub effect: InboundEffect,
}

impl InboundEffect {
    pub fn name(&self) -> &'static str {
        match self {
            InboundEffect::None => "none",
            InboundEffect::Rewarm { .. } => "rewarm",
            InboundEffect::Reply { action, .. } => match action {
                ReplyAction::Rewarm { .. } => "rewarm",
                ReplyAction::Postpone { .. } => "postpone",
                ReplyAction::OutOfScope { .. } => "out_of_scope",
                ReplyAction::Retire { .. } => "retire",
            },
            InboundEffect::Postpone { .. } => "postpone",
            InboundEffect::Suppress { .. } => "suppress",
            InboundEffect::SoftBounce { .. } => "soft_bounce",
            InboundEffect::Delivered { .. } => "delivered",
        }
    }
}

/// What `record_inbound` did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InboundApplied {
    pub inbound_id: i64,
    pub duplicate: bool,
}

/// A notification to put in the outbox.
#[derive(Debug, Clone, PartialEq)]
pub struct NewNotification {
    /// `owner_email`, `webhook` or `digest`.
    pub kind: String,
    pub lead_id: Option<i64>,
    pub idempotency_key: String,
    pub payload: serde_json::Value,
}

/// One attempt on a claimed notification: its id, `Ok` or the error, and when to try again
/// (None: never; it failed for good).
pub type NotificationResult = (i64, Result<(), String>, Option<DateTime<Utc>>);

/// A notification in the outbox.
#[derive(Debug, Clone, PartialEq)]
pub struct Notification {
    pub id: i64,
    pub idempotency_key: String,
    pub kind: String,
    pub lead_id: Option<i64>,
    pub payload: serde_json::Value,
    /// `pending`, `claimed`, `sent` or `failed`.
    pub state: String,
    pub attempts: u32,
    pub next_at: DateTime<Utc>,
    pub last_error: Option<String>,
    pub created_at: DateTime<Utc>,
    pub sent_at: Option<DateTime<Utc>>,
}

/// What `LeadStore::set_lifecycle` did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LifecycleChange {
    /// No lead has that id.
    NoSuchLead,
    /// The lead moved (`from` → `to`; equal for `working` on a re-warmed lead); the event
    /// is written and the notifications enqueued.
    Applied { from: LeadState, to: LeadState },
    /// The lead is there already: nothing written.
    Already { state: LeadState },
    /// Not allowed from `from` (see `domain::lifecycle`): nothing written.
    Refused { from: LeadState, why: &'static str },
}

/// A lead's lifecycle columns: why it is out of scope and until when, the state a pause
/// holds.
#[derive(Debug, Clone, PartialEq, Eq, Default, serde::Serialize)]
pub struct LeadLifecycle {
    pub scope_reason: Option<String>,
    pub recheck_at: Option<DateTime<Utc>>,
    pub paused_from: Option<LeadState>,
}

/// Strips surrounding whitespace and angle brackets from a Message-ID.
pub fn bare_message_id(id: &str) -> &str {
    id.trim()
        .trim_start_matches('<')
        .trim_end_matches('>')
        .trim()
}

/// Engagement points for a lead (`InboundStore::engage`).
#[derive(Debug, Clone)]
pub struct Engagement<'a> {
    pub lead_id: i64,
    /// `click`, `reply`, `auto_reply`, …
    pub kind: &'a str,
    /// May be negative: a click of a scanner's burst taken back.
    pub points: i64,
    /// The segment's `rewarm_score` (`<= 0`: never re-warms).
    pub threshold: i64,
    /// Points halve every this long (`None`: never).
    pub half_life: Option<chrono::Duration>,
    /// What it was (the URL clicked, …): kept on the `engaged` event, named in a re-warm.
    pub detail: serde_json::Value,
}

/// A click on a tracked link, to judge and record (`InboundStore::record_click`).
#[derive(Debug, Clone)]
pub struct Click<'a> {
    pub delivery_id: i64,
    pub url: &'a str,
    pub request: crate::domain::signal::ClickRequest,
    pub policy: crate::domain::signal::ClickPolicy,
}

/// A recorded click: whose, on which email, and whether it counts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClickRecord {
    pub lead_id: i64,
    pub campaign: String,
    pub step: i64,
    pub judgement: crate::domain::signal::Judgement,
}

/// What `unsuppress_and_restore` did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct Restored {
    /// Leads put back where they were.
    pub restored: u64,
    /// Deliveries scheduled again.
    pub resumed_deliveries: u64,
    /// Leads the entry suppressed that another entry still lists: they stay suppressed.
    pub still_suppressed: i64,
}

/// What `rewarm report` asks: enrolments made in `[since, until)`, grouped `by`.
#[derive(Debug, Clone, Copy)]
pub struct ReportQuery {
    pub since: Option<DateTime<Utc>>,
    pub until: DateTime<Utc>,
    pub by: crate::domain::report::GroupBy,
}

/// The report's aggregates (`domain::report::assemble` makes the report of them): funnel
/// rows (group, counts in `STAGES` order), (group, days from loss to re-warm, leads) and
/// (group, intent, replies); the totals under the group `(all)`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReportCounts {
    pub funnels: Vec<(String, [i64; 8])>,
    pub days: Vec<(String, i64, i64)>,
    pub intents: Vec<(String, String, i64)>,
}

/// What lease-expiry repair (`expire_leases`) did: claims whose lease ended.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct Expired {
    /// Rows whose send had started (`started_at` set): written off as `unknown`, never resent.
    pub written_off: usize,
    /// Rows claimed but never started: due again (no attempt counted), sent later, once.
    pub released: usize,
}

/// A delivery written off as `unknown`, for `status`: whose, which step, and when.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct UnknownDelivery {
    pub delivery_id: i64,
    pub lead_id: i64,
    pub email: String,
    pub campaign: String,
    /// 1-based, as people count steps.
    pub step: u32,
    /// When it became `unknown` (lease expired, or the conversation broke off).
    pub at: DateTime<Utc>,
    pub error: Option<String>,
}
