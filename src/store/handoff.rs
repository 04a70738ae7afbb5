//! Hand-offs to sales after the re-warm: stale ones found and chased, an owner's leads moved
//! to another owner, and what the weekly digest reads. The SQL is the same on both databases
//! (`$1` placeholders, times through `Time`, JSON parameters as `Value`), so the methods are
//! written once here ([`handoff_methods!`]) and expanded in `sqlite/handoff.rs` and
//! `postgres/handoff.rs`.
//!
//! Every query here is indexed: stale hand-offs start from the re-warmed leads
//! (`leads_state`), then read each one's events by `events_lead`; reassignments and leads
//! without an owner use `leads_owner` (`lower(owner_email)`; on PostgreSQL `leads_owner_id`,
//! which starts with it); the digest's week is a range of `events_kind_at` (migration 0012).

use std::future::Future;

use chrono::{DateTime, Utc};
use sqlx::FromRow;

use super::dialect::{Detail, Time};
use super::*;
use crate::domain::handoff::{ChaseDone, ChaseStage};

/// A re-warmed lead with no feedback since its last re-warm.
#[derive(Debug, Clone, PartialEq)]
pub struct StaleHandoff {
    pub lead_id: i64,
    /// The id of its last `rewarmed` event: the chase belongs to that re-warm.
    pub rewarm_event: i64,
    pub rewarmed_at: DateTime<Utc>,
    pub done: ChaseDone,
}

/// One stage of a chase to record: its event and the notifications that go with it.
#[derive(Debug, Clone)]
pub struct Chase {
    pub lead_id: i64,
    pub rewarm_event: i64,
    pub stage: ChaseStage,
    pub detail: serde_json::Value,
    pub notifications: Vec<NewNotification>,
}

/// One event of the digest's week.
#[derive(Debug, Clone)]
pub struct DigestEvent {
    pub lead_id: i64,
    pub at: DateTime<Utc>,
    pub kind: String,
    pub detail: serde_json::Value,
}

/// Leads that moved to a new owner.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reassigned {
    pub leads: u64,
}

/// How many leads one owner (lower-cased; None: no owner) has in one state.
#[derive(Debug, Clone, PartialEq, Eq, FromRow)]
pub struct OwnerCount {
    pub owner: Option<String>,
    pub state: String,
    pub n: i64,
}

/// Event kinds the digest reads from its week.
pub const DIGEST_KINDS: [&str; 9] = [
    "rewarmed",
    "feedback",
    "working",
    "won",
    "out_of_scope",
    "reminded",
    "escalated",
    "suppressed",
    "postponed",
];

/// See the module docs.
pub trait HandoffStore {
    /// Leads now `rewarmed`, last re-warmed at or before `rewarmed_before`, with no
    /// feedback event (`domain::handoff::FEEDBACK_KINDS`) since, id > `after_id`, by id, at
    /// most `limit`; with the chase stages done since that re-warm.
    fn stale_handoffs(
        &self,
        rewarmed_before: DateTime<Utc>,
        after_id: i64,
        limit: usize,
    ) -> impl Future<Output = Result<Vec<StaleHandoff>, StoreError>> + Send;

    /// Records chase stages in one transaction: each stage's event (`reminded`,
    /// `escalated`) is written only if the lead is still re-warmed and neither that stage
    /// nor feedback followed the re-warm (`rewarm_event`), and only then are its
    /// notifications enqueued (their idempotency keys dedupe too). Returns the leads whose
    /// stage was written, in order.
    fn record_chases(
        &self,
        chases: &[Chase],
        now: DateTime<Utc>,
    ) -> impl Future<Output = Result<Vec<i64>, StoreError>> + Send;

    /// Leads whose owner is `owner` (compared lower-cased).
    fn count_owned(&self, owner: &str) -> impl Future<Output = Result<i64, StoreError>> + Send;

    /// Moves every lead of `from` to `to` (name `name`), in one transaction and three
    /// set-based statements: a `reassigned` event {from, to, name, reason} per lead, then
    /// the leads. `from` and `to` are compared lower-cased.
    fn reassign(
        &self,
        from: &str,
        to: &str,
        name: Option<&str>,
        reason: &str,
        now: DateTime<Utc>,
    ) -> impl Future<Output = Result<Reassigned, StoreError>> + Send;

    /// The events of kinds [`DIGEST_KINDS`] in `[start, end)`, oldest first, at most `limit`.
    fn digest_events(
        &self,
        start: DateTime<Utc>,
        end: DateTime<Utc>,
        limit: usize,
    ) -> impl Future<Output = Result<Vec<DigestEvent>, StoreError>> + Send;

    /// Leads without an owner that are still in play (not suppressed, won or out of scope):
    /// how many, and the first `limit` by id.
    fn unowned_leads(
        &self,
        limit: usize,
    ) -> impl Future<Output = Result<(i64, Vec<Lead>), StoreError>> + Send;

    /// Leads in nurture per owner (lower-cased; None: no owner).
    fn nurturing_per_owner(
        &self,
    ) -> impl Future<Output = Result<Vec<(Option<String>, i64)>, StoreError>> + Send;

    /// Leads per owner (lower-cased; None: no owner) and state, one aggregate statement
    /// (`leads owners`).
    fn owner_counts(&self) -> impl Future<Output = Result<Vec<OwnerCount>, StoreError>> + Send;
}

pub(crate) const STALE_HANDOFFS: &str = "SELECT l.id AS lead_id, r.id AS rewarm_event, r.at AS rewarmed_at,
        (SELECT count(*) FROM events e WHERE e.lead_id = l.id AND e.id > r.id AND e.kind = 'reminded' AND e.kind <> 'sent') AS reminded,
        (SELECT count(*) FROM events e WHERE e.lead_id = l.id AND e.id > r.id AND e.kind = 'escalated' AND e.kind <> 'sent') AS escalated
     FROM leads l JOIN events r ON r.id = (SELECT max(m.id) FROM events m WHERE m.lead_id = l.id AND m.kind = 'rewarmed' AND m.kind <> 'sent')
     WHERE l.state = 'rewarmed' AND l.id > $2 AND r.at <= $1
       AND NOT EXISTS (SELECT 1 FROM events f WHERE f.lead_id = l.id AND f.id > r.id AND f.kind <> 'sent'
                         AND f.kind IN ('feedback', 'working', 'won', 'out_of_scope'))
     ORDER BY l.id LIMIT $3";

/// One stage of a chase ($3) on lead $1 at $2 with detail $4, unless it or feedback already
/// followed the re-warm event $5, or the lead is no longer re-warmed.
pub(crate) const RECORD_CHASE: &str = "INSERT INTO events (lead_id, at, kind, detail)
     SELECT l.id, $2, $3, $4 FROM leads l
     WHERE l.id = $1 AND l.state = 'rewarmed'
       AND NOT EXISTS (SELECT 1 FROM events e WHERE e.lead_id = $1 AND e.id > $5 AND e.kind <> 'sent'
                         AND (e.kind = $3 OR e.kind IN ('feedback', 'working', 'won', 'out_of_scope')))";

pub(crate) const COUNT_OWNED: &str = "SELECT count(*) FROM leads WHERE lower(owner_email) = $1";
/// `reassign`: the events first (they name the old owner), then the leads.
pub(crate) const REASSIGN_EVENTS: &str = "INSERT INTO events (lead_id, at, kind, detail)
     SELECT id, $2, 'reassigned', $3 FROM leads WHERE lower(owner_email) = $1 ORDER BY id";
pub(crate) const REASSIGN_LEADS: &str = "UPDATE leads SET owner_email = $2, owner_name = $3, updated_at = $4 WHERE lower(owner_email) = $1";

pub(crate) const DIGEST_EVENTS: &str = "SELECT lead_id, at, kind, detail FROM events
     WHERE kind IN ('rewarmed', 'feedback', 'working', 'won', 'out_of_scope', 'reminded', 'escalated', 'suppressed', 'postponed')
       AND at >= $1 AND at < $2 ORDER BY id LIMIT $3";
pub(crate) const UNOWNED_COUNT: &str = "SELECT count(*) FROM leads WHERE lower(owner_email) IS NULL AND state NOT IN ('suppressed', 'won', 'out_of_scope')";
pub(crate) const UNOWNED_LEADS: &str = select_leads!(
    "WHERE lower(owner_email) IS NULL AND state NOT IN ('suppressed', 'won', 'out_of_scope') ORDER BY id LIMIT $1"
);
pub(crate) const OWNER_COUNTS: &str = "SELECT lower(owner_email) AS owner, state, count(*) AS n FROM leads GROUP BY lower(owner_email), state";
pub(crate) const NURTURING_PER_OWNER: &str = "SELECT lower(owner_email) AS owner, count(*) AS n FROM leads WHERE state = 'nurturing' GROUP BY lower(owner_email)";

#[derive(FromRow)]
pub(crate) struct StaleRow {
    lead_id: i64,
    rewarm_event: i64,
    rewarmed_at: Time,
    reminded: i64,
    escalated: i64,
}

impl From<StaleRow> for StaleHandoff {
    fn from(r: StaleRow) -> Self {
        StaleHandoff {
            lead_id: r.lead_id,
            rewarm_event: r.rewarm_event,
            rewarmed_at: r.rewarmed_at.0,
            done: ChaseDone {
                reminded: r.reminded > 0,
                escalated: r.escalated > 0,
            },
        }
    }
}

#[derive(FromRow)]
pub(crate) struct DigestEventRow {
    lead_id: i64,
    at: Time,
    kind: String,
    detail: Detail,
}

impl From<DigestEventRow> for DigestEvent {
    fn from(r: DigestEventRow) -> Self {
        DigestEvent {
            lead_id: r.lead_id,
            at: r.at.0,
            kind: r.kind,
            detail: r.detail.0,
        }
    }
}

/// `impl HandoffStore for …Store { handoff_methods!(); }`: the same statements on both
/// databases; `self.write()` is the backend's write transaction.
macro_rules! handoff_methods {
    () => {
        async fn stale_handoffs(
            &self,
            rewarmed_before: DateTime<Utc>,
            after_id: i64,
            limit: usize,
        ) -> Result<Vec<StaleHandoff>, StoreError> {
            let rows: Vec<StaleRow> = sqlx::query_as(STALE_HANDOFFS)
                .bind(Time(rewarmed_before))
                .bind(after_id)
                .bind(limit as i64)
                .fetch_all(&self.pool)
                .await?;
            Ok(rows.into_iter().map(StaleHandoff::from).collect())
        }

        async fn record_chases(
            &self,
            chases: &[Chase],
            now: DateTime<Utc>,
        ) -> Result<Vec<i64>, StoreError> {
            if chases.is_empty() {
                return Ok(Vec::new());
            }
            let mut tx = self.write().await?;
            let mut written = Vec::new();
            // One statement per stale lead (few: each is chased at most twice per re-warm),
            // all in one transaction.
            for chase in chases {
                let n = sqlx::query(RECORD_CHASE)
                    .bind(chase.lead_id)
                    .bind(Time(now))
                    .bind(chase.stage.event())
                    .bind(&chase.detail)
                    .bind(chase.rewarm_event)
                    .execute(&mut *tx)
                    .await?
                    .rows_affected();
                if n > 0 {
                    written.push(chase.lead_id);
                    enqueue(&mut tx, &chase.notifications, now).await?;
                }
            }
            tx.commit().await?;
            Ok(written)
        }

        async fn count_owned(&self, owner: &str) -> Result<i64, StoreError> {
            Ok(sqlx::query_scalar(COUNT_OWNED)
                .bind(owner.to_lowercase())
                .fetch_one(&self.pool)
                .await?)
        }

        async fn reassign(
            &self,
            from: &str,
            to: &str,
            name: Option<&str>,
            reason: &str,
            now: DateTime<Utc>,
        ) -> Result<Reassigned, StoreError> {
            let (from, to) = (from.to_lowercase(), to.to_lowercase());
            let detail = json!({"from": from, "to": to, "name": name, "reason": reason});
            let mut tx = self.write().await?;
            sqlx::query(REASSIGN_EVENTS)
                .bind(&from)
                .bind(Time(now))
                .bind(&detail)
                .execute(&mut *tx)
                .await?;
            let leads = sqlx::query(REASSIGN_LEADS)
                .bind(&from)
                .bind(&to)
                .bind(name)
                .bind(Time(now))
                .execute(&mut *tx)
                .await?
                .rows_affected();
            tx.commit().await?;
            Ok(Reassigned { leads })
        }

        async fn digest_events(
            &self,
            start: DateTime<Utc>,
            end: DateTime<Utc>,
            limit: usize,
        ) -> Result<Vec<DigestEvent>, StoreError> {
            let rows: Vec<DigestEventRow> = sqlx::query_as(DIGEST_EVENTS)
                .bind(Time(start))
                .bind(Time(end))
                .bind(limit as i64)
                .fetch_all(&self.pool)
                .await?;
            Ok(rows.into_iter().map(DigestEvent::from).collect())
        }

        async fn unowned_leads(&self, limit: usize) -> Result<(i64, Vec<Lead>), StoreError> {
            let count: i64 = sqlx::query_scalar(UNOWNED_COUNT)
                .fetch_one(&self.pool)
                .await?;
            let rows: Vec<LeadRow> = sqlx::query_as(UNOWNED_LEADS)
                .bind(limit as i64)
                .fetch_all(&self.pool)
                .await?;
            let leads = rows
                .into_iter()
                .map(LeadRow::into_lead)
                .collect::<Result<_, _>>()?;
            Ok((count, leads))
        }

        async fn nurturing_per_owner(&self) -> Result<Vec<(Option<String>, i64)>, StoreError> {
            Ok(sqlx::query_as(NURTURING_PER_OWNER)
                .fetch_all(&self.pool)
                .await?)
        }

        async fn owner_counts(&self) -> Result<Vec<OwnerCount>, StoreError> {
            Ok(sqlx::query_as(OWNER_COUNTS).fetch_all(&self.pool).await?)
        }
    };
}
