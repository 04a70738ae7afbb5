//! The store: everything rewarm remembers, behind one interface (`Store`, made of one trait
//! per area: leads, queue, suppression, inbound, outbox, kv, copy, send counts) with one module per
//! database (`sqlite/`, `postgres/`), each cut into the same files per area. The backend is
//! picked once, from the URL.
//!
//! ## Where the two databases differ, and where they do not
//! The two backends differ only where the databases do; everything else is kept once:
//!
//! | file | what it holds, for both backends |
//! |---|---|
//! | `model.rs` | the values the store takes and gives back |
//! | `dialect.rs` | how times and JSON bind and decode (ms vs `timestamptz`, TEXT vs `jsonb`) |
//! | `shared.rs` | statements both databases run as written (`$1` placeholders work on both) |
//! | `rows.rs` | the rows read back and how they become values |
//! | `batch.rs` | the JSON batches written (one array parameter per statement), import merging |
//! | `common.rs` | the Rust both backends run word for word, as macros each backend expands |
//! | `copy.rs` | the tables `db copy` moves, described once; export and import generated |
//!
//! What stays in `sqlite/` and `postgres/` (the same file per area: `leads`, `queue`,
//! `suppression`, `inbound`, `outbox`, `kv`, `copy`) is what the databases really do
//! differently: expanding a JSON batch (`json_each` vs `jsonb_array_elements`), building
//! JSON in SQL, upserting with `RETURNING` in one statement or two, claiming (`UPDATE …
//! RETURNING` under one writer vs `FOR UPDATE SKIP LOCKED`), locking and retrying across
//! daemons, and sequences after `db copy`.
//!
//! ## A delivery's states (one email to one lead for one step)
//! ```text
//! scheduled ──claim──▶ claimed ──sent──────────▶ sent
//!     ▲                  │ ├──transient error──▶ retry_wait ──(due again)──▶ claimed …
//!     │                  │ ├──permanent error / render error / attempts used up──▶ failed
//!     │                  │ └──lease expired, outcome never recorded──▶ unknown
//!     └── created when the previous step ends (sent, failed or unknown), due per the cadence
//! scheduled / retry_wait ──lead re-warmed, won, out of scope or suppressed──▶ cancelled
//! scheduled / retry_wait ──lead or campaign paused──▶ held ──resumed──▶ scheduled / retry_wait
//! claimed ──a call step (`kind = "call"`): its owner's task enqueued──▶ tasked
//! scheduled / retry_wait ──a campaign edit (lowered max_touches, removed campaign)──▶ cancelled
//! scheduled ──late, under `late = "skip"` (outbound::late)──▶ skipped
//! ```
//! A `tasked` delivery is done like a `sent` one (the cadence goes on), but nothing went to
//! the lead: its owner got a call task through the outbox, in the same transaction.
//! `(enrolment, cycle, step)` is unique (an enrolment is one lead in one campaign; the
//! unique index `deliveries_enrolment`), and only a `scheduled` or `retry_wait` row can
//! be claimed, so no step is ever sent twice within one round of a campaign (`cycle`: a lead
//! may go through a campaign again — its `then`, `leads recycle --campaign` — each time a new
//! round of the same enrolment row). A paused lead's rows stay `scheduled` but are not
//! claimed (only leads in `nurturing` are). While a lead or its campaign is paused
//! (`leads pause`, `campaigns pause`) its waiting rows are `held` (remembering `held_from`),
//! which no claim reads; resuming puts them back (`store/hold.rs`). A claim is a lease: it is committed before
//! anything is sent and no transaction is held across the network.
//!
//! **Only what was on the wire can be `unknown`.** A claimed row is not at risk until its
//! own SMTP transaction (or API call) starts: dispatch marks rows `started_at` in small
//! waves (at most `scheduler.wave_depth`, by default one, per connection: `pool_size`, or the
//! API's concurrency) just before
//! handing them to the connections, and records each wave's outcomes before the next wave
//! of the same batch starts. When a lease expires, a row never started goes back to
//! `scheduled` (attempt not counted; at once when the same worker restarts or stops), and a
//! row started but never recorded becomes `unknown`: it is **not** sent again (at most once
//! beats twice), the lead's timeline records it (`written_off`, with the moment), `status`
//! lists it, and the cadence goes on with the next step. So a crash writes off at most as
//! many deliveries as there are connections (times `wave_depth`).
//!
//! ```text
//! claimed ──(mark_started, just before its transaction)──▶ claimed + started_at
//! claimed, lease expired, never started ──▶ scheduled (due again, attempt not counted)
//! claimed + started_at, lease expired, no outcome ──▶ unknown (event `written_off`)
//! ```
//!
//! ## Suppression
//! One global list (`suppressions`) of addresses and whole domains (`@example.com`), each
//! with a reason and evidence; no campaign can pass it. Three independent guards:
//! `suppress` turns the matching leads `suppressed` at once (cancelling what was waiting),
//! `upsert_leads` / `enrol` never let a listed address become a nurturing lead, and
//! `claim_due` checks the list itself in the claiming statement — so an unsubscribe that
//! committed before a claim takes effect even if some lead row was missed. Removing an entry
//! (`unsuppress`) changes no lead; `unsuppress_and_restore` (`suppress remove --restore`)
//! also puts the leads that entry suppressed back where they were, cadence and all.

use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;

use chrono::{DateTime, Utc};

use crate::domain::email::EmailAddress;
use crate::domain::lead::{Lead, LeadState, NewLead};
use crate::domain::lifecycle::{Transition, Verdict, recyclable};

#[macro_use]
mod shared;
#[macro_use]
mod common;
#[macro_use]
mod console;
#[macro_use]
mod write_steps;
#[macro_use]
mod common_loop;
#[macro_use]
mod handoff;
#[macro_use]
mod reply;
#[macro_use]
mod privacy;
#[macro_use]
mod relay;
#[macro_use]
mod edits;
mod edits_sql;
mod report_sql;
#[macro_use]
mod hold;
#[macro_use]
mod unmatched;
#[macro_use]
mod browse;
mod batch;
mod copy;
mod dialect;
pub mod forecast;
mod import;
mod model;
pub mod postgres;
mod queue;
mod rows;
mod send_counts;
pub mod sqlite;

pub use browse::{
    Assigned, BrowseStore, LeadPage, LeadSearch, QueueOrder, QueuedLead, QueuedReply,
    REVIEW_TEXT_CHARS, ReviewedInbound, SuppressionPage, ToReview,
};
pub use console::{ConsoleEvent, ConsoleSession, ConsoleStore, ConsoleUser, SignInUse};
pub use copy::*;
pub use edits::{
    ActiveEnrolment, CampaignVersion, EditStore, EnrolmentMove, Followed, MoveTarget, Rescheduled,
    WaitingCount, WaitingStep,
};
pub use forecast::{ForecastDelivery, ForecastStore};
pub use handoff::{
    Chase, DIGEST_KINDS, DigestEvent, HandoffStore, OwnerCount, Reassigned, StaleHandoff,
};
pub use hold::{HoldChange, HoldStore, LeadDelivery, PausedCampaign};
pub use import::{ImportPreview, preview_import};
pub use model::*;
pub use privacy::{ForgetReport, Forgotten, PersonalRows, PrivacyStore, without_forgotten};
pub use queue::QueueStore;
pub use relay::{LoggedEvent, RELAYED_KINDS, RelayStore};
pub use send_counts::{SendBucket, SendCount, SendCountStore};
pub use unmatched::{NEVER_MS, UnmatchedLead, UnmatchedStore};

/// The store's traits, for code that calls them on a concrete backend (`SqliteStore`,
/// `PgStore`); code generic over `S: Store` needs only `Store`.
pub mod prelude {
    pub use super::{
        BrowseStore, ConsoleStore, CopyStore, EditStore, HandoffStore, HoldStore, InboundStore,
        KvStore, LeadStore, OutboxStore, PrivacyStore, QueueStore, RelayStore, ReportStore,
        SendCountStore, Store, SuppressionStore, UnmatchedStore,
    };
}

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
    /// The database file was deleted or replaced, or a missing file would have been created
    /// afresh for a deployment that has run before.
    #[error("the database is gone: {0}")]
    Gone(String),
}

/// Everything the rest of rewarm asks of a database: every area at once, plus what belongs
/// to no area. Both backends pass the same behavioural tests (`tests/it/store.rs`).
pub trait Store:
    LeadStore
    + QueueStore
    + SuppressionStore
    + InboundStore
    + OutboxStore
    + KvStore
    + CopyStore
    + HandoffStore
    + EditStore
    + HoldStore
    + ReportStore
    + PrivacyStore
    + SendCountStore
    + RelayStore
    + UnmatchedStore
    + ConsoleStore
    + ForecastStore
    + BrowseStore
    + Clone
    + Send
    + Sync
    + 'static
{
    /// Applies pending migrations.
    fn migrate(&self) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// A trivial round trip to the database (for `/readyz`).
    fn ping(&self) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Whether the database is still the one this store opened and answers: a SQLite file
    /// deleted or replaced under the daemon is `StoreError::Gone` (the daemon stops
    /// claiming and says so); then a ping. The daemon asks before every pass.
    fn check_storage(&self) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// One write of an enrolment pass: [`QueueStore::enrol`] of `enrolments`, then
    /// [`UnmatchedStore::mark_unmatched`] of the leads of the same pages no segment matched;
    /// the number enrolled. Two transactions here (PostgreSQL: the enrolments' lanes lock
    /// their own leads, `ENROL_LANES`, and the marks are one statement of their own); SQLite
    /// writes both in one: the marks land on the pages of `leads` the enrolments' state
    /// change has just rewritten, which a second transaction wrote to the WAL again.
    fn enrol_and_mark(
        &self,
        enrolments: &[NewEnrolment],
        unmatched: &[UnmatchedLead],
        now: DateTime<Utc>,
    ) -> impl Future<Output = Result<usize, StoreError>> + Send {
        async move {
            let enrolled = self.enrol(enrolments, now).await?;
            self.mark_unmatched(unmatched).await?;
            Ok(enrolled)
        }
    }

    /// Counts for `status`; `since` bounds the sent/failed/unknown counts ("today").
    fn status(
        &self,
        since: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> impl Future<Output = Result<StatusReport, StoreError>> + Send;
}

/// Leads: imports, reads, the timeline, and the hand-over to and back from sales.
pub trait LeadStore {
    /// Leads an import writes per transaction (`leads import`): the backend's own trade-off
    /// between commits and memory (docs/performance.md).
    const IMPORT_CHUNK: usize;

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

    /// The known leads (id, import hash) and the suppressed addresses among `emails`: two
    /// reads for the whole batch, whatever its size (`leads import --dry-run`).
    fn import_lookup(
        &self,
        emails: &[&str],
    ) -> impl Future<Output = Result<ImportLookup, StoreError>> + Send;

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

    /// The lead's timeline, oldest first.
    fn timeline(&self, lead_id: i64)
    -> impl Future<Output = Result<Vec<Event>, StoreError>> + Send;

    /// Leads now `rewarmed` whose last `rewarmed` event is at or after `since`, optionally
    /// only those whose `owner_email` is `owner` (case-insensitive); newest first, with the
    /// time they re-warmed.
    fn leads_rewarmed(
        &self,
        since: DateTime<Utc>,
        owner: Option<&str>,
    ) -> impl Future<Output = Result<Vec<(Lead, DateTime<Utc>)>, StoreError>> + Send;

    /// Applies a lifecycle [`Transition`] a person asked for (the CLI's `leads won`,
    /// `leads out-of-scope`, `leads working`, `leads pause`, `leads resume`, sales' one-click
    /// feedback, …) — **the one entry point other modules call to change these states**.
    /// In one transaction: reads the lead's state, asks [`Transition::verdict`] (refused or
    /// already there → nothing is written), sets the state (and `scope_reason`/`recheck_at`
    /// for out of scope, `paused_from` for a pause; leaving out of scope or a pause clears
    /// them), cancels waiting deliveries and stops active enrolments when
    /// [`Transition::stops_cadence`] says so, writes the event (kind
    /// [`Transition::event_kind`], detail `{from, to, by}` plus `reason`/`recheck_at`), and
    /// enqueues `notifications` (e.g. the webhook). `by` says who asked (an owner's email,
    /// `cli`).
    fn set_lifecycle(
        &self,
        lead_id: i64,
        transition: &Transition,
        by: &str,
        notifications: &[NewNotification],
        now: DateTime<Utc>,
    ) -> impl Future<Output = Result<LifecycleChange, StoreError>> + Send;

    /// Writes one event on a lead's timeline (e.g. `feedback` {action, by, result}) and
    /// enqueues `notifications`, in one transaction; false (nothing written) if there is no
    /// such lead.
    fn record_event(
        &self,
        lead_id: i64,
        kind: &str,
        detail: &serde_json::Value,
        notifications: &[NewNotification],
        now: DateTime<Utc>,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// The lead's lifecycle columns (None: no such lead).
    fn lead_lifecycle(
        &self,
        lead_id: i64,
    ) -> impl Future<Output = Result<Option<LeadLifecycle>, StoreError>> + Send;

    /// Out-of-scope leads whose re-check date is at or before `now`, earliest first, at most
    /// `limit` (the daemon recycles them, reason `recheck`).
    fn recheck_due(
        &self,
        now: DateTime<Utc>,
        limit: usize,
    ) -> impl Future<Output = Result<Vec<i64>, StoreError>> + Send;

    /// Hands a lead back from sales to nurture, history intact (one transaction). A lead in
    /// a state `domain::lifecycle::recyclable` allows (completed, rewarmed, won,
    /// out_of_scope, paused; suppressed only when no suppression entry covers its address
    /// any more) is recycled; else `Ok(None)`, nothing changes. Leaving out of scope or a
    /// pause clears those columns; a paused lead's held deliveries are treated like
    /// cancelled ones. The rule:
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
}

/// The global suppression list (see the module docs).
pub trait SuppressionStore {
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
    /// Leads already `suppressed` stay suppressed and nothing of theirs is rescheduled
    /// (`unsuppress_and_restore` brings them back). New imports of the address are no
    /// longer suppressed.
    fn unsuppress(&self, address: &str) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// Removes `address` from the list and, in the same transaction, puts back the leads
    /// that entry suppressed (their last suppression names it) and that no other entry
    /// lists (their address or domain): each returns to the state it was in (a nurturing
    /// lead with nothing left to resume completes, or is new if never enrolled); for one
    /// that was nurturing, the enrolments the suppression stopped are active again and the
    /// deliveries it cancelled are scheduled again, not before `now`. Event `restored`
    /// {from, to, address}. `None` if the address was not on the list.
    fn unsuppress_and_restore(
        &self,
        address: &str,
        now: DateTime<Utc>,
    ) -> impl Future<Output = Result<Option<Restored>, StoreError>> + Send;

    /// Leads not suppressed yet that `address` (an address or `@domain`) would suppress.
    fn leads_reached(&self, address: &str) -> impl Future<Output = Result<i64, StoreError>> + Send;

    /// The `@domain` entries of the list that reach more than `over` leads, with how many,
    /// biggest first (for `check`: a typo in a domain entry silences a whole company).
    fn broad_domain_entries(
        &self,
        over: i64,
    ) -> impl Future<Output = Result<Vec<(String, i64)>, StoreError>> + Send;

    /// The whole list, oldest entry first.
    fn suppressions(&self) -> impl Future<Output = Result<Vec<Suppression>, StoreError>> + Send;

    /// The entry that suppresses `email`: its exact address (preferred) or its `@domain`.
    fn suppression_for(
        &self,
        email: &EmailAddress,
    ) -> impl Future<Output = Result<Option<Suppression>, StoreError>> + Send;
}

/// Inbound mail and engagement: what replies, bounces and clicks do to a lead.
pub trait InboundStore {
    /// Keeps one inbound message and applies what it does to its lead, in one transaction.
    /// A `dedupe_key` already stored → `duplicate: true` and nothing at all changes (a
    /// provider's retry causes one state change, not two). Otherwise: the row is inserted
    /// (matched or not: unmatched mail is kept), a matched lead gets an `inbound` event
    /// {classification, subject, matched_by, inbound_id}, and `effect` is applied (see
    /// [`InboundEffect`]).
    ///
    /// One message, one state change across channels: when an earlier message about the same
    /// delivery has the same classification (a DSN in the mailbox and a provider's bounce
    /// event, two `deferred` events of one message), the row is kept, its `effects` say
    /// `{"effect": "none", "already_applied_by": ID}`, and the lead is left alone.
    fn record_inbound(
        &self,
        record: &InboundRecord,
        effect: &InboundEffect,
        now: DateTime<Utc>,
    ) -> impl Future<Output = Result<InboundApplied, StoreError>> + Send;

    /// [`record_inbound`](Self::record_inbound), and in the same transaction each of `others`
    /// (further leads the message names, none of them the matched one; a lead listed twice
    /// counts once) gets its own `inbound` event {classification, subject, matched_by:
    /// `report`, inbound_id} and its own effect. The message's `effects` list theirs under
    /// `others`. A duplicate `dedupe_key` changes none of them: one message, one state change
    /// per lead.
    fn record_inbound_for_all(
        &self,
        record: &InboundRecord,
        effect: &InboundEffect,
        others: &[OtherLead],
        now: DateTime<Utc>,
    ) -> impl Future<Output = Result<InboundApplied, StoreError>> + Send;
    /// [`InboundStore::record_inbound`] for a batch (a provider's array of events), all in one
    /// transaction: every record is kept and applied, or none is. One answer per record, in
    /// order.
    fn record_inbound_batch(
        &self,
        batch: &[(InboundRecord, InboundEffect)],
        now: DateTime<Utc>,
    ) -> impl Future<Output = Result<Vec<InboundApplied>, StoreError>> + Send;

    /// Stored inbound messages with id > `after_id`, by id (`raw` included).
    fn inbound_messages(
        &self,
        after_id: i64,
        limit: usize,
    ) -> impl Future<Output = Result<Vec<StoredInbound>, StoreError>> + Send;

    /// Judges a click (`domain::signal::judge_click`: against the delivery's send time — now,
    /// if it is still `claimed`: the email arrived before its outcome was recorded — and
    /// the lead's clicks on that email in the last day, inside one write transaction, so
    /// concurrent scanner requests see each other) and writes a `clicked` event {campaign,
    /// step, url, delivery_id, counted, signal}. `None` (nothing written) if there is no such
    /// delivery.
    fn record_click(
        &self,
        click: &Click<'_>,
        now: DateTime<Utc>,
    ) -> impl Future<Output = Result<Option<ClickRecord>, StoreError>> + Send;

    /// Adds `points` for an engagement (event `engaged` {kind, points, score, …detail}). The
    /// score is the sum of the lead's `engaged` points since it was last recycled, each
    /// halved every `half_life` (`domain::signal`). When it crosses `threshold` (was below,
    /// is now at or above; `threshold <= 0` = never) and the lead is new, nurturing or
    /// completed, the lead is re-warmed exactly like `InboundEffect::Rewarm` (reason `score`;
    /// its event names the `signals` that made the score, and so does each notification's
    /// payload) and `notifications` are enqueued. Returns true if the lead was re-warmed now.
    /// An unknown lead or `points == 0` changes nothing.
    fn engage(
        &self,
        engagement: &Engagement<'_>,
        notifications: &[NewNotification],
        now: DateTime<Utc>,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// The lead's engagement score, undecayed (sum of `engaged` points since it was last
    /// recycled).
    fn score(&self, lead_id: i64) -> impl Future<Output = Result<i64, StoreError>> + Send;
}

/// The notification outbox (to sales: owner emails, webhooks, digests).
pub trait OutboxStore {
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
        results: &[NotificationResult],
        worker: &str,
        now: DateTime<Utc>,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Notifications by id (any state), for inspection and tests.
    fn notifications(
        &self,
        after_id: i64,
        limit: usize,
    ) -> impl Future<Output = Result<Vec<Notification>, StoreError>> + Send;
}

/// Small named values kept across restarts, and generated secrets.
pub trait KvStore {
    /// A small named value kept across restarts (`kv_state`).
    fn kv_get(&self, key: &str) -> impl Future<Output = Result<Option<String>, StoreError>> + Send;

    /// Sets (inserts or replaces) a named value.
    fn kv_set(&self, key: &str, value: &str)
    -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Every named value whose key starts with `prefix`, by key (a small table: read whole).
    fn kv_prefixed(
        &self,
        prefix: &str,
    ) -> impl Future<Output = Result<Vec<(String, String)>, StoreError>> + Send;

    /// Stores `value` under `key` unless a value is there already; returns the value stored
    /// afterwards (ours, or the earlier one). Atomic: of several processes racing with
    /// different values, all get the same answer.
    fn kv_set_if_absent(
        &self,
        key: &str,
        value: &str,
    ) -> impl Future<Output = Result<String, StoreError>> + Send;

    /// A named secret generated once and kept in the database (used for token signing keys
    /// when none is configured). `generate` is called only if the name has no value yet; when
    /// several daemons race, all of them get the value that was stored first.
    fn secret(
        &self,
        name: &str,
        generate: impl FnOnce() -> String + Send,
    ) -> impl Future<Output = Result<String, StoreError>> + Send;
}

/// What campaigns did, for `rewarm report` (see `domain::report` for what is counted).
pub trait ReportStore {
    /// The funnel and loss-to-re-warm aggregates of the enrolments `q` selects, per group
    /// and in total, each computed by one aggregate statement (no query per lead).
    fn report_counts(
        &self,
        q: &ReportQuery,
    ) -> impl Future<Output = Result<ReportCounts, StoreError>> + Send;

    /// The same figures recomputed from the event log alone (`report --verify`): each
    /// enrolment's window from the lead's enrolments, its stages from the events and sent
    /// deliveries in it. Slower (it reads every event of the stages' kinds in the range);
    /// equal to `report_counts` unless the kept stages went wrong.
    fn report_counts_from_events(
        &self,
        q: &ReportQuery,
    ) -> impl Future<Output = Result<ReportCounts, StoreError>> + Send;

    /// Recomputes every enrolment's window and kept stages from the event log (one
    /// transaction); returns how many enrolments there are.
    fn rebuild_report_stages(&self) -> impl Future<Output = Result<u64, StoreError>> + Send;
}

/// Whole tables, for `rewarm db copy`.
pub trait CopyStore {
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

    /// After a copy: the planner's statistics of the copied tables. PostgreSQL plans with
    /// them, and a database filled by `INSERT`s has none until autovacuum gets to it: the
    /// first claims of a daemon started at once would sort every due row (`ANALYZE`).
    /// SQLite's hot statements name their index: nothing to do there.
    fn refresh_statistics(&self) -> impl Future<Output = Result<(), StoreError>> + Send;
}
