//! The store: everything rewarm remembers, behind one interface with one module per
//! database (`sqlite.rs`, `postgres.rs`). The backend is picked once, from the URL.
//!
//! ## A delivery's states (one email to one lead for one step)
//! ```text
//! scheduled ──claim──▶ claimed ──sent──────────▶ sent
//!     ▲                  │ ├──transient error──▶ retry_wait ──(due again)──▶ claimed …
//!     │                  │ ├──permanent error / render error / attempts used up──▶ failed
//!     │                  │ └──lease expired, outcome never recorded──▶ unknown
//!     └── created when the previous step ends (sent, failed or unknown), due per the cadence
//! scheduled / retry_wait ──lead re-warmed or suppressed──▶ cancelled
//! ```
//! `(lead, campaign, step)` is unique, and only a `scheduled` or `retry_wait` row can be
//! claimed, so no step is ever sent twice. A claim is a lease: it is committed before
//! anything is sent and no transaction is held across the network. If the daemon dies
//! after a send but before recording it, the row stays `claimed` until its lease expires,
//! then becomes `unknown`: it is **not** sent again (at most once beats twice), the lead's
//! timeline records it, `status` counts it, and the cadence goes on with the next step.
//!
//! ## Suppression
//! One global list (`suppressions`) of addresses and whole domains (`@example.com`), each
//! with a reason and evidence; no campaign can pass it. Three independent guards:
//! `suppress` turns the matching leads `suppressed` at once (cancelling what was waiting),
//! `upsert_leads` / `enrol` never let a listed address become a nurturing lead, and
//! `claim_due` checks the list itself in the claiming statement — so an unsubscribe that
//! committed before a claim takes effect even if some lead row was missed. Removing an entry
//! (`unsuppress`) changes no lead: suppressed leads stay suppressed until a person recycles them.

use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;

use chrono::{DateTime, Utc};

use crate::domain::email::EmailAddress;
use crate::domain::lead::{Lead, LeadState, NewLead};

pub mod postgres;
pub mod sqlite;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    #[error("migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("corrupt row in `{table}` (id {id}): {reason}")]
    Corrupt {
        table: &'static str,
        id: i64,
        reason: String,
    },
    #[error("unsupported database URL `{0}` (use sqlite://FILE or postgres://…)")]
    UnsupportedUrl(String),
}

/// What an import did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct UpsertSummary {
    pub inserted: usize,
    pub updated: usize,
    pub unchanged: usize,
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
}

impl DeferReason {
    pub fn describe(self) -> &'static str {
        match self {
            DeferReason::SendWindow => "outside the send window",
            DeferReason::RateLimit => "over a sending limit or throttled",
        }
    }
}

/// What happened to a claimed delivery.
#[derive(Debug, Clone)]
pub enum Outcome {
    Sent {
        message_id: String,
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
}

/// Whether an outcome may still be recorded on a delivery now in `state` (claimed by the
/// recording worker; None = not claimed by it). A result that arrives after its lease expired
/// (`unknown`) still records what really happened to the message, but a retry or deferral
/// of a row no longer ours is dropped: another pass has moved the cadence on.
pub fn outcome_applies(outcome: &Outcome, state: Option<&str>) -> bool {
    match outcome {
        Outcome::Retry { .. } | Outcome::Deferred { .. } => state == Some("claimed"),
        Outcome::Sent { .. } | Outcome::Failed { .. } | Outcome::Unknown { .. } => {
            matches!(state, Some("claimed" | "unknown"))
        }
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

/// Everything the rest of rewarm asks of a database. Both backends pass the same
/// behavioural tests (`tests/store.rs`).
pub trait Store: Clone + Send + Sync + 'static {
    /// Applies pending migrations.
    fn migrate(&self) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Inserts new leads and merges known ones (non-empty new values win, tags unioned,
    /// fields merged); writes an `imported` or `updated` event for each changed lead. A new
    /// lead whose address or domain is on the suppression list is inserted `suppressed` (its
    /// `imported` event names the entry: state, reason, evidence, address).
    fn upsert_leads(
        &self,
        leads: &[NewLead],
        source: &str,
        now: DateTime<Utc>,
    ) -> impl Future<Output = Result<UpsertSummary, StoreError>> + Send;

    fn lead_by_email(
        &self,
        email: &EmailAddress,
    ) -> impl Future<Output = Result<Option<Lead>, StoreError>> + Send;

    fn leads_by_ids(
        &self,
        ids: &[i64],
    ) -> impl Future<Output = Result<Vec<Lead>, StoreError>> + Send;

    /// Leads in `state` with id > `after_id`, by id, at most `limit` (for paging).
    fn leads_in_state(
        &self,
        state: LeadState,
        after_id: i64,
        limit: usize,
    ) -> impl Future<Output = Result<Vec<Lead>, StoreError>> + Send;

    /// Every custom field name some lead has (for `check`).
    fn field_names(&self) -> impl Future<Output = Result<BTreeSet<String>, StoreError>> + Send;

    /// Enrols leads (one transaction): enrolment row, first delivery, lead → nurturing,
    /// events. A lead already enrolled in that campaign is skipped. A `new` lead whose address
    /// or domain is on the suppression list is not enrolled: it becomes `suppressed` (event).
    /// Returns how many were enrolled.
    fn enrol(
        &self,
        enrolments: &[NewEnrolment],
        now: DateTime<Utc>,
    ) -> impl Future<Output = Result<usize, StoreError>> + Send;

    /// Claims up to `limit` deliveries due at `now` whose lead is still nurturing and whose
    /// address and domain are not on the suppression list (checked in the claiming statement
    /// itself), leasing them to `worker` until `lease_until`.
    fn claim_due(
        &self,
        now: DateTime<Utc>,
        worker: &str,
        lease_until: DateTime<Utc>,
        limit: usize,
    ) -> impl Future<Output = Result<Vec<ClaimedDelivery>, StoreError>> + Send;

    /// Records the outcomes of claimed deliveries (one transaction): delivery rows, events,
    /// next steps, finished enrolments and lead states. `Failed { suppress: true }` (a hard
    /// bounce) suppresses the lead, lists its address (`hard_bounce`, evidence {delivery_id,
    /// error}), ignores `next`, stops its other enrolments and cancels their waiting deliveries.
    fn record_outcomes(
        &self,
        outcomes: &[RecordedOutcome],
        worker: &str,
        now: DateTime<Utc>,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Claims whose lease ended before `now` become `unknown` (never resent). Returns how many.
    fn expire_leases(
        &self,
        now: DateTime<Utc>,
    ) -> impl Future<Output = Result<usize, StoreError>> + Send;

    /// Active enrolments with no delivery scheduled, claimed or waiting for a retry.
    fn stalled_enrolments(
        &self,
        limit: usize,
    ) -> impl Future<Output = Result<Vec<StalledEnrolment>, StoreError>> + Send;

    /// Schedules the next step of stalled enrolments, or completes those with none (`None`).
    fn resume_enrolments(
        &self,
        resumed: &[(StalledEnrolment, Option<NextStep>)],
        now: DateTime<Utc>,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Deliveries scheduled or waiting for a retry, with their due time.
    fn pending_deliveries(
        &self,
    ) -> impl Future<Output = Result<Vec<PendingDelivery>, StoreError>> + Send;

    /// The lead's timeline, oldest first.
    fn timeline(&self, lead_id: i64)
    -> impl Future<Output = Result<Vec<Event>, StoreError>> + Send;

    /// Counts for `status`; `since` bounds the sent/failed/unknown counts ("today").
    fn status(
        &self,
        since: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> impl Future<Output = Result<StatusReport, StoreError>> + Send;

    // ── Whole tables, for `rewarm db copy` ─────────────────────────────────────────────

    /// Rows per table (every table `db copy` moves).
    fn table_counts(&self)
    -> impl Future<Output = Result<BTreeMap<Table, i64>, StoreError>> + Send;

    /// Up to `limit` rows of `table` with id > `after_id`, by id, exactly as stored.
    fn export_rows(
        &self,
        table: Table,
        after_id: i64,
        limit: usize,
    ) -> impl Future<Output = Result<Rows, StoreError>> + Send;

    /// Inserts exported rows with their ids (one transaction); on PostgreSQL the id
    /// sequence is advanced past them. Returns how many rows were written.
    fn import_rows(&self, rows: &Rows) -> impl Future<Output = Result<usize, StoreError>> + Send;

    /// Deletes every row of every table `db copy` writes (`db copy --force`), in one
    /// transaction. Nothing else calls this.
    fn delete_all_rows(&self) -> impl Future<Output = Result<(), StoreError>> + Send;

    // ── Suppression, tokens, health ─────────────────────────────────────────────────────

    /// Puts addresses (or `@domain`s) on the global suppression list, in one transaction:
    /// new entries are inserted (an address already listed keeps its first entry); then every
    /// lead whose email equals a listed address of the batch, or whose domain matches a listed
    /// `@domain` of the batch, and is not suppressed yet, becomes `suppressed` (event
    /// `suppressed` {from, to, reason, evidence, address}); its active enrolments stop and its
    /// `scheduled` / `retry_wait` deliveries become `cancelled`. A delivery already `claimed`
    /// is in flight and left to its worker. Returns the number of new entries.
    fn suppress(
        &self,
        entries: &[Suppression],
        now: DateTime<Utc>,
    ) -> impl Future<Output = Result<usize, StoreError>> + Send;

    /// Removes `address` (an address or `@domain`) from the list; true if it was there.
    /// Leads already `suppressed` stay suppressed and nothing of theirs is rescheduled: a
    /// person must recycle them. New imports of the address are no longer suppressed.
    fn unsuppress(&self, address: &str) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// The whole list, oldest entry first.
    fn suppressions(&self) -> impl Future<Output = Result<Vec<Suppression>, StoreError>> + Send;

    /// The entry that suppresses `email`: its exact address (preferred) or its `@domain`.
    fn suppression_for(
        &self,
        email: &EmailAddress,
    ) -> impl Future<Output = Result<Option<Suppression>, StoreError>> + Send;

    /// The lead a delivery went to (for unsubscribe/click/reply tokens).
    fn delivery_target(
        &self,
        delivery_id: i64,
    ) -> impl Future<Output = Result<Option<DeliveryTarget>, StoreError>> + Send;

    /// Writes a `clicked` event {campaign, step, url} on the delivery's lead; false (and
    /// nothing written) if there is no such delivery.
    fn record_click(
        &self,
        delivery_id: i64,
        url: &str,
        now: DateTime<Utc>,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// A trivial round trip to the database (for `/readyz`).
    fn ping(&self) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Deliveries due at `now` and not sent yet (the queue depth `status` reports as
    /// `due_now`), in one indexed count: `/metrics` asks on every scrape.
    fn due_now(&self, now: DateTime<Utc>) -> impl Future<Output = Result<i64, StoreError>> + Send;

    // ── Inbound, engagement, the notification outbox ───────────────────────────────────

    /// Keeps one inbound message and applies what it does to its lead, in one transaction.
    /// A `dedupe_key` already stored → `duplicate: true` and nothing at all changes (a
    /// provider's retry causes one state change, not two). Otherwise: the row is inserted
    /// (matched or not: unmatched mail is kept), a matched lead gets an `inbound` event
    /// {classification, subject, matched_by, inbound_id}, and `effect` is applied (see
    /// [`InboundEffect`]).
    fn record_inbound(
        &self,
        record: &InboundRecord,
        effect: &InboundEffect,
        now: DateTime<Utc>,
    ) -> impl Future<Output = Result<InboundApplied, StoreError>> + Send;

    /// Adds `points` for an engagement of `kind` (event `engaged` {kind, points, score}).
    /// The score is the sum of the lead's `engaged` points since it was last recycled. When
    /// it crosses `threshold` (was below, is now at or above; `threshold <= 0` = never) and
    /// the lead is new, nurturing or completed, the lead is re-warmed exactly like
    /// `InboundEffect::Rewarm` (reason `score`) and `notifications` are enqueued. Returns true
    /// if the lead was re-warmed now. An unknown lead or `points == 0` changes nothing.
    fn engage(
        &self,
        lead_id: i64,
        kind: &str,
        points: i64,
        threshold: i64,
        notifications: &[NewNotification],
        now: DateTime<Utc>,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// The lead's engagement score (sum of `engaged` points since it was last recycled).
    fn score(&self, lead_id: i64) -> impl Future<Output = Result<i64, StoreError>> + Send;

    /// Puts notifications in the outbox (`pending`, due at `now`); an idempotency key already
    /// there is skipped. Returns how many were new.
    fn enqueue_notifications(
        &self,
        notifications: &[NewNotification],
        now: DateTime<Utc>,
    ) -> impl Future<Output = Result<usize, StoreError>> + Send;

    /// Claims up to `limit` notifications that are `pending` and due, or `claimed` with an
    /// expired lease (the worker died: sent at least once — the idempotency key travels in
    /// the payload), leasing them to `worker` until `lease_until`; attempts + 1.
    fn claim_notifications(
        &self,
        now: DateTime<Utc>,
        worker: &str,
        lease_until: DateTime<Utc>,
        limit: usize,
    ) -> impl Future<Output = Result<Vec<Notification>, StoreError>> + Send;

    /// Records attempts on notifications claimed by `worker` (one transaction): `Ok` → `sent`;
    /// `Err` with a retry time → `pending` again at that time; `Err` without → `failed`.
    /// Rows no longer claimed by `worker` are left alone.
    fn record_notifications(
        &self,
        results: &[(i64, Result<(), String>, Option<DateTime<Utc>>)],
        worker: &str,
        now: DateTime<Utc>,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Notifications by id (any state), for inspection and tests.
    fn notifications(
        &self,
        after_id: i64,
        limit: usize,
    ) -> impl Future<Output = Result<Vec<Notification>, StoreError>> + Send;

    /// Stored inbound messages with id > `after_id`, by id (`raw` included).
    fn inbound_messages(
        &self,
        after_id: i64,
        limit: usize,
    ) -> impl Future<Output = Result<Vec<StoredInbound>, StoreError>> + Send;

    /// A small named value kept across restarts (`kv_state`).
    fn kv_get(&self, key: &str) -> impl Future<Output = Result<Option<String>, StoreError>> + Send;

    /// Sets (inserts or replaces) a named value.
    fn kv_set(&self, key: &str, value: &str)
    -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Stores `value` under `key` unless a value is there already; returns the value stored
    /// afterwards (ours, or the earlier one). Atomic: of several processes racing with
    /// different values, all get the same answer.
    fn kv_set_if_absent(
        &self,
        key: &str,
        value: &str,
    ) -> impl Future<Output = Result<String, StoreError>> + Send;

    /// The delivery that was sent with this Message-ID (compared without angle brackets,
    /// case-sensitively).
    fn delivery_by_message_id(
        &self,
        message_id: &str,
    ) -> impl Future<Output = Result<Option<DeliveryTarget>, StoreError>> + Send;

    /// Leads now `rewarmed` whose last `rewarmed` event is at or after `since`, optionally
    /// only those whose `owner_email` is `owner` (case-insensitive); newest first, with the
    /// time they re-warmed.
    fn leads_rewarmed(
        &self,
        since: DateTime<Utc>,
        owner: Option<&str>,
    ) -> impl Future<Output = Result<Vec<(Lead, DateTime<Utc>)>, StoreError>> + Send;

    /// Hands a lead back from sales to nurture, history intact (one transaction). Only a
    /// `rewarmed` or `completed` lead is recycled (else `Ok(None)`, nothing changes). The rule:
    /// every delivery of the lead that was `cancelled` while its enrolment was `stopped` (what
    /// re-warming did) is scheduled again at `max(its due time, resume_at)` and those
    /// enrolments become active again: the cadence resumes where it stopped, not before
    /// `resume_at`; the lead becomes `nurturing`. With nothing to resume the lead becomes
    /// `completed` if it was ever enrolled, else `new` (segments pick it up again). Events:
    /// `recycled` {reason, after: resume_at, from, to}. The score restarts at 0. Returns the
    /// new state.
    fn recycle(
        &self,
        lead_id: i64,
        reason: &str,
        resume_at: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> impl Future<Output = Result<Option<LeadState>, StoreError>> + Send;

    /// A named secret generated once and kept in the database (used for token signing keys
    /// when none is configured). `generate` is called only if the name has no value yet; when
    /// several daemons race, all of them get the value that was stored first.
    fn secret(
        &self,
        name: &str,
        generate: impl FnOnce() -> String + Send,
    ) -> impl Future<Output = Result<String, StoreError>> + Send;
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

/// The batch of entries `suppress` expands in SQL (first entry per address wins), as JSON.
pub(crate) fn suppressions_json(entries: &[Suppression]) -> serde_json::Value {
    let mut seen = BTreeSet::new();
    serde_json::Value::Array(
        entries
            .iter()
            .filter(|e| seen.insert(e.address.as_str()))
            .map(|e| {
                serde_json::json!({"address": e.address, "reason": e.reason.as_str(), "evidence": e.evidence,
                                   "created_at": e.created_at.timestamp_millis()})
            })
            .collect(),
    )
}

/// The tables `db copy` moves — every table a deployment's state lives in — in an order
/// that respects their references.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Table {
    Leads,
    Enrolments,
    Deliveries,
    Events,
    Suppressions,
    Secrets,
    Inbound,
    Notifications,
    KvState,
}

impl Table {
    /// Parents before children (inbound messages point at leads and deliveries,
    /// notifications at leads).
    pub const ALL: [Table; 9] = [
        Table::Leads,
        Table::Enrolments,
        Table::Deliveries,
        Table::Events,
        Table::Suppressions,
        Table::Secrets,
        Table::Inbound,
        Table::Notifications,
        Table::KvState,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Table::Leads => "leads",
            Table::Enrolments => "enrolments",
            Table::Deliveries => "deliveries",
            Table::Events => "events",
            Table::Suppressions => "suppressions",
            Table::Secrets => "secrets",
            Table::Inbound => "inbound",
            Table::Notifications => "notifications",
            Table::KvState => "kv_state",
        }
    }
}

impl std::fmt::Display for Table {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A `leads` row as stored (nothing re-validated: `db copy` moves data, it does not judge it).
#[derive(Debug, Clone, PartialEq)]
pub struct LeadRecord {
    pub id: i64,
    pub email: String,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    pub company: Option<String>,
    pub title: Option<String>,
    pub owner_email: Option<String>,
    pub owner_name: Option<String>,
    pub lost_reason: Option<String>,
    pub lost_at: Option<DateTime<Utc>>,
    pub timezone: Option<String>,
    /// A JSON array of strings.
    pub tags: serde_json::Value,
    /// A JSON object of strings.
    pub fields: serde_json::Value,
    pub state: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// An `events` row as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct EventRecord {
    pub id: i64,
    pub lead_id: i64,
    pub at: DateTime<Utc>,
    pub kind: String,
    pub detail: serde_json::Value,
}

/// An `enrolments` row as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct EnrolmentRecord {
    pub id: i64,
    pub lead_id: i64,
    pub campaign: String,
    pub segment: String,
    pub state: String,
    pub enrolled_at: DateTime<Utc>,
    pub ended_at: Option<DateTime<Utc>>,
}

/// A `deliveries` row as stored (leases included).
#[derive(Debug, Clone, PartialEq)]
pub struct DeliveryRecord {
    pub id: i64,
    pub lead_id: i64,
    pub enrolment_id: i64,
    pub campaign: String,
    pub step: i64,
    pub template: String,
    pub state: String,
    pub due_at: DateTime<Utc>,
    pub attempts: i64,
    pub claimed_by: Option<String>,
    pub lease_until: Option<DateTime<Utc>>,
    pub message_id: Option<String>,
    pub sent_at: Option<DateTime<Utc>>,
    pub last_error: Option<String>,
    pub updated_at: DateTime<Utc>,
}

/// A `suppressions` row as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct SuppressionRecord {
    pub id: i64,
    pub address: String,
    pub reason: String,
    pub evidence: serde_json::Value,
    pub created_at: DateTime<Utc>,
}

/// A `secrets` row as stored. Its `Debug` output leaves the value out.
#[derive(Clone, PartialEq)]
pub struct SecretRecord {
    pub id: i64,
    pub name: String,
    pub value: String,
    pub created_at: DateTime<Utc>,
}

impl std::fmt::Debug for SecretRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SecretRecord")
            .field("id", &self.id)
            .field("name", &self.name)
            .field("value", &"[redacted]")
            .field("created_at", &self.created_at)
            .finish()
    }
}

/// An `inbound` row as stored (matched or not, `raw` included).
#[derive(Debug, Clone, PartialEq)]
pub struct InboundMessageRecord {
    pub id: i64,
    pub dedupe_key: String,
    pub source: String,
    pub received_at: DateTime<Utc>,
    pub message_id: Option<String>,
    pub from_address: Option<String>,
    pub subject: Option<String>,
    pub classification: String,
    pub lead_id: Option<i64>,
    pub delivery_id: Option<i64>,
    pub matched_by: Option<String>,
    pub text: Option<String>,
    pub raw: Vec<u8>,
    /// A JSON object.
    pub effects: serde_json::Value,
    pub created_at: DateTime<Utc>,
}

/// A `notifications` row as stored (leases included).
#[derive(Debug, Clone, PartialEq)]
pub struct NotificationRecord {
    pub id: i64,
    pub idempotency_key: String,
    pub kind: String,
    pub lead_id: Option<i64>,
    pub payload: serde_json::Value,
    pub state: String,
    pub attempts: i64,
    pub next_at: DateTime<Utc>,
    pub claimed_by: Option<String>,
    pub lease_until: Option<DateTime<Utc>>,
    pub last_error: Option<String>,
    pub created_at: DateTime<Utc>,
    pub sent_at: Option<DateTime<Utc>>,
}

/// A `kv_state` row as stored (e.g. the IMAP mailbox's UIDVALIDITY and last UID: without
/// them a copied deployment would read its mailbox again).
#[derive(Debug, Clone, PartialEq)]
pub struct KvRecord {
    pub id: i64,
    pub key: String,
    pub value: String,
    pub updated_at: DateTime<Utc>,
}

/// A page of one table's rows.
#[derive(Debug, Clone, PartialEq)]
pub enum Rows {
    Leads(Vec<LeadRecord>),
    Enrolments(Vec<EnrolmentRecord>),
    Deliveries(Vec<DeliveryRecord>),
    Events(Vec<EventRecord>),
    Suppressions(Vec<SuppressionRecord>),
    Secrets(Vec<SecretRecord>),
    Inbound(Vec<InboundMessageRecord>),
    Notifications(Vec<NotificationRecord>),
    KvState(Vec<KvRecord>),
}

impl Rows {
    pub fn table(&self) -> Table {
        match self {
            Rows::Leads(_) => Table::Leads,
            Rows::Enrolments(_) => Table::Enrolments,
            Rows::Deliveries(_) => Table::Deliveries,
            Rows::Events(_) => Table::Events,
            Rows::Suppressions(_) => Table::Suppressions,
            Rows::Secrets(_) => Table::Secrets,
            Rows::Inbound(_) => Table::Inbound,
            Rows::Notifications(_) => Table::Notifications,
            Rows::KvState(_) => Table::KvState,
        }
    }

    pub fn len(&self) -> usize {
        match self {
            Rows::Leads(r) => r.len(),
            Rows::Enrolments(r) => r.len(),
            Rows::Deliveries(r) => r.len(),
            Rows::Events(r) => r.len(),
            Rows::Suppressions(r) => r.len(),
            Rows::Secrets(r) => r.len(),
            Rows::Inbound(r) => r.len(),
            Rows::Notifications(r) => r.len(),
            Rows::KvState(r) => r.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The id of the last row (pages are by id), if any.
    pub fn last_id(&self) -> Option<i64> {
        match self {
            Rows::Leads(r) => r.last().map(|r| r.id),
            Rows::Enrolments(r) => r.last().map(|r| r.id),
            Rows::Deliveries(r) => r.last().map(|r| r.id),
            Rows::Events(r) => r.last().map(|r| r.id),
            Rows::Suppressions(r) => r.last().map(|r| r.id),
            Rows::Secrets(r) => r.last().map(|r| r.id),
            Rows::Inbound(r) => r.last().map(|r| r.id),
            Rows::Notifications(r) => r.last().map(|r| r.id),
            Rows::KvState(r) => r.last().map(|r| r.id),
        }
    }
}

/// Exported rows as one JSON array, the batch format both backends' `import_rows` expand in
/// SQL: time stamps as integer milliseconds since the epoch, JSON columns as JSON values,
/// bytes (`inbound.raw`) as lower-case hex (SQLite's `unhex`, PostgreSQL's `decode(…, 'hex')`).
pub(crate) fn rows_json(rows: &Rows) -> serde_json::Value {
    use serde_json::json;
    let ms = |t: &DateTime<Utc>| t.timestamp_millis();
    let items: Vec<serde_json::Value> = match rows {
        Rows::Leads(rows) => rows
            .iter()
            .map(|r| {
                json!({"id": r.id, "email": r.email, "first_name": r.first_name, "last_name": r.last_name, "company": r.company,
                       "title": r.title, "owner_email": r.owner_email, "owner_name": r.owner_name, "lost_reason": r.lost_reason,
                       "lost_at": r.lost_at.as_ref().map(ms), "timezone": r.timezone, "tags": r.tags, "fields": r.fields,
                       "state": r.state, "created_at": ms(&r.created_at), "updated_at": ms(&r.updated_at)})
            })
            .collect(),
        Rows::Enrolments(rows) => rows
            .iter()
            .map(|r| {
                json!({"id": r.id, "lead_id": r.lead_id, "campaign": r.campaign, "segment": r.segment, "state": r.state,
                       "enrolled_at": ms(&r.enrolled_at), "ended_at": r.ended_at.as_ref().map(ms)})
            })
            .collect(),
        Rows::Deliveries(rows) => rows
            .iter()
            .map(|r| {
                json!({"id": r.id, "lead_id": r.lead_id, "enrolment_id": r.enrolment_id, "campaign": r.campaign, "step": r.step,
                       "template": r.template, "state": r.state, "due_at": ms(&r.due_at), "attempts": r.attempts,
                       "claimed_by": r.claimed_by, "lease_until": r.lease_until.as_ref().map(ms), "message_id": r.message_id,
                       "sent_at": r.sent_at.as_ref().map(ms), "last_error": r.last_error, "updated_at": ms(&r.updated_at)})
            })
            .collect(),
        Rows::Events(rows) => rows
            .iter()
            .map(|r| json!({"id": r.id, "lead_id": r.lead_id, "at": ms(&r.at), "kind": r.kind, "detail": r.detail}))
            .collect(),
        Rows::Suppressions(rows) => rows
            .iter()
            .map(|r| json!({"id": r.id, "address": r.address, "reason": r.reason, "evidence": r.evidence, "created_at": ms(&r.created_at)}))
            .collect(),
        Rows::Secrets(rows) => rows
            .iter()
            .map(|r| json!({"id": r.id, "name": r.name, "value": r.value, "created_at": ms(&r.created_at)}))
            .collect(),
        Rows::Inbound(rows) => rows
            .iter()
            .map(|r| {
                json!({"id": r.id, "dedupe_key": r.dedupe_key, "source": r.source, "received_at": ms(&r.received_at),
                       "message_id": r.message_id, "from_address": r.from_address, "subject": r.subject,
                       "classification": r.classification, "lead_id": r.lead_id, "delivery_id": r.delivery_id,
                       "matched_by": r.matched_by, "text": r.text, "raw": crate::hex::encode(&r.raw), "effects": r.effects,
                       "created_at": ms(&r.created_at)})
            })
            .collect(),
        Rows::Notifications(rows) => rows
            .iter()
            .map(|r| {
                json!({"id": r.id, "idempotency_key": r.idempotency_key, "kind": r.kind, "lead_id": r.lead_id,
                       "payload": r.payload, "state": r.state, "attempts": r.attempts, "next_at": ms(&r.next_at),
                       "claimed_by": r.claimed_by, "lease_until": r.lease_until.as_ref().map(ms), "last_error": r.last_error,
                       "created_at": ms(&r.created_at), "sent_at": r.sent_at.as_ref().map(ms)})
            })
            .collect(),
        Rows::KvState(rows) => rows
            .iter()
            .map(|r| json!({"id": r.id, "key": r.key, "value": r.value, "updated_at": ms(&r.updated_at)}))
            .collect(),
    };
    serde_json::Value::Array(items)
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
}

impl InboundEffect {
    pub fn name(&self) -> &'static str {
        match self {
            InboundEffect::None => "none",
            InboundEffect::Rewarm { .. } => "rewarm",
            InboundEffect::Postpone { .. } => "postpone",
            InboundEffect::Suppress { .. } => "suppress",
            InboundEffect::SoftBounce { .. } => "soft_bounce",
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

/// Notifications as the JSON batch both backends expand in SQL.
pub(crate) fn notifications_json(
    items: &[NewNotification],
    now: DateTime<Utc>,
) -> serde_json::Value {
    serde_json::Value::Array(
        items
            .iter()
            .map(|n| {
                serde_json::json!({"kind": n.kind, "lead_id": n.lead_id, "key": n.idempotency_key,
                                   "payload": n.payload, "at": now.timestamp_millis()})
            })
            .collect(),
    )
}

/// Notification results as the JSON batch both backends expand in SQL.
pub(crate) fn notification_results_json(
    results: &[(i64, Result<(), String>, Option<DateTime<Utc>>)],
) -> serde_json::Value {
    serde_json::Value::Array(
        results
            .iter()
            .map(|(id, result, retry_at)| {
                let (state, error) = match (result, retry_at) {
                    (Ok(()), _) => ("sent", None),
                    (Err(e), Some(_)) => ("pending", Some(e.as_str())),
                    (Err(e), None) => ("failed", Some(e.as_str())),
                };
                serde_json::json!({"id": id, "state": state, "error": error,
                                   "retry_at": retry_at.map(|t| t.timestamp_millis())})
            })
            .collect(),
    )
}

/// Strips surrounding whitespace and angle brackets from a Message-ID.
pub fn bare_message_id(id: &str) -> &str {
    id.trim()
        .trim_start_matches('<')
        .trim_end_matches('>')
        .trim()
}
