//! `new` leads that no segment matched, remembered so the daemon does not examine them again
//! on every tick (`domain::unmatched`). Each such lead holds `unmatched_until` (migration
//! 0011): the moment a `min_age` will make it match, or [`NEVER_MS`]. A trigger clears it when
//! the lead's data or state changes, whoever changes it; the scheduler clears every mark when
//! the segments change, and [`UnmatchedStore::wake_unmatched`] those whose moment has come.
//!
//! Everything reads an index: the leads to examine are the partial index `leads_to_examine`
//! (id order), the moments `leads_unmatched`. An idle tick with a million unmatched leads is
//! two index probes.

use std::future::Future;

use chrono::{DateTime, Utc};

use super::*;

/// "Not by itself": 9999-12-31 (in milliseconds), stored for a lead that no segment will ever
/// match unless its data or the segments change.
pub const NEVER_MS: i64 = 253_402_214_400_000;

/// A `new` lead no segment matched when the scheduler read it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UnmatchedLead {
    pub lead_id: i64,
    /// When it could start matching (`None`: never by itself).
    pub until: Option<DateTime<Utc>>,
    /// Its `updated_at` as read: a lead changed since is not marked (it is examined again).
    pub seen: DateTime<Utc>,
}

impl UnmatchedLead {
    /// The moment to store, in milliseconds.
    pub(crate) fn until_ms(&self) -> i64 {
        self.until.map_or(NEVER_MS, |t| t.timestamp_millis())
    }
}

/// See the module docs.
pub trait UnmatchedStore {
    /// `new` leads to examine for enrolment (not marked as unmatched), id > `after_id`, by
    /// id, at most `limit`.
    fn leads_to_examine(
        &self,
        after_id: i64,
        limit: usize,
    ) -> impl Future<Output = Result<Vec<Lead>, StoreError>> + Send;

    /// Unmarks the unmatched leads whose moment is at or before `now`, so they are examined
    /// again; returns how many. Writes nothing when there are none.
    fn wake_unmatched(
        &self,
        now: DateTime<Utc>,
    ) -> impl Future<Output = Result<u64, StoreError>> + Send;

    /// Marks these leads as unmatched until their moment, each only if it is still `new` and
    /// unchanged since it was read.
    fn mark_unmatched(
        &self,
        leads: &[UnmatchedLead],
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Unmarks every unmatched lead (the segments changed); returns how many.
    fn forget_unmatched(&self) -> impl Future<Output = Result<u64, StoreError>> + Send;
}

pub(crate) const LEADS_TO_EXAMINE: &str = select_leads!(
    "WHERE state = 'new' AND unmatched_until IS NULL AND id > $1 ORDER BY id LIMIT $2"
);
pub(crate) const ANY_TO_WAKE: &str =
    "SELECT EXISTS (SELECT 1 FROM leads WHERE state = 'new' AND unmatched_until <= $1)";
pub(crate) const WAKE_UNMATCHED: &str =
    "UPDATE leads SET unmatched_until = NULL WHERE state = 'new' AND unmatched_until <= $1";
pub(crate) const FORGET_UNMATCHED: &str =
    "UPDATE leads SET unmatched_until = NULL WHERE state = 'new' AND unmatched_until IS NOT NULL";

/// The methods both backends run as written; `mark_unmatched` is each backend's own (a JSON
/// array on SQLite, arrays with `UNNEST` on PostgreSQL).
macro_rules! unmatched_methods {
    () => {
        async fn leads_to_examine(
            &self,
            after_id: i64,
            limit: usize,
        ) -> Result<Vec<Lead>, StoreError> {
            let rows: Vec<LeadRow> = sqlx::query_as(LEADS_TO_EXAMINE)
                .bind(after_id)
                .bind(limit as i64)
                .fetch_all(&self.pool)
                .await?;
            rows.into_iter().map(LeadRow::into_lead).collect()
        }

        async fn wake_unmatched(&self, now: DateTime<Utc>) -> Result<u64, StoreError> {
            let any: bool = sqlx::query_scalar(ANY_TO_WAKE)
                .bind(Time(now))
                .fetch_one(&self.pool)
                .await?;
            if !any {
                return Ok(0);
            }
            Ok(sqlx::query(WAKE_UNMATCHED)
                .bind(Time(now))
                .execute(&self.pool)
                .await?
                .rows_affected())
        }

        async fn forget_unmatched(&self) -> Result<u64, StoreError> {
            Ok(sqlx::query(FORGET_UNMATCHED)
                .execute(&self.pool)
                .await?
                .rows_affected())
        }
    };
}
