//! The event log read in order, for the webhook relay (`notify::relay`): events that no
//! code path notifies about as it writes them (enrolments, emails sent, replies, …) are read
//! after a cursor, up to a *horizon* below which every event is committed, and become
//! webhook notifications. The read is the same on both databases ([`relay_methods!`]); the
//! horizon is not (`sqlite/relay.rs`, `postgres/relay.rs`).

use std::future::Future;

use chrono::{DateTime, Utc};
use sqlx::FromRow;

use super::StoreError;
use super::dialect::{Detail, Time};

/// The event kinds the relay reads.
pub const RELAYED_KINDS: [&str; 8] = [
    "enrolled",
    "sent",
    "replied",
    "postponed",
    "suppressed",
    "restored",
    "reassigned",
    "recycled",
];

/// One event of the log, with its lead's address.
#[derive(Debug, Clone, PartialEq)]
pub struct LoggedEvent {
    pub id: i64,
    pub lead_id: i64,
    pub lead_email: String,
    pub at: DateTime<Utc>,
    pub kind: String,
    pub detail: serde_json::Value,
}

/// See the module docs.
pub trait RelayStore {
    /// The highest event id at or below which every event that will ever exist is already
    /// committed (no transaction still writing one), or None when that cannot be known now
    /// (PostgreSQL: a long transaction is writing events; ask again later).
    fn relay_horizon(&self) -> impl Future<Output = Result<Option<i64>, StoreError>> + Send;

    /// Events of [`RELAYED_KINDS`] with `after < id <= upto`, by id, at most `limit`.
    fn relay_events(
        &self,
        after: i64,
        upto: i64,
        limit: usize,
    ) -> impl Future<Output = Result<Vec<LoggedEvent>, StoreError>> + Send;
}

/// [`RelayStore::relay_events`]' statement (the kinds are [`RELAYED_KINDS`]).
pub(crate) const RELAY_EVENTS: &str = "SELECT v.id, v.lead_id, l.email AS lead_email, v.at, v.kind, v.detail
     FROM events v JOIN leads l ON l.id = v.lead_id
     WHERE v.id > $1 AND v.id <= $2
       AND v.kind IN ('enrolled', 'sent', 'replied', 'postponed', 'suppressed', 'restored', 'reassigned', 'recycled')
     ORDER BY v.id LIMIT $3";

#[derive(FromRow)]
pub(crate) struct LoggedEventRow {
    id: i64,
    lead_id: i64,
    lead_email: String,
    at: Time,
    kind: String,
    detail: Detail,
}

impl From<LoggedEventRow> for LoggedEvent {
    fn from(r: LoggedEventRow) -> Self {
        LoggedEvent {
            id: r.id,
            lead_id: r.lead_id,
            lead_email: r.lead_email,
            at: r.at.0,
            kind: r.kind,
            detail: r.detail.0,
        }
    }
}

/// `relay_events`, the same on both backends.
macro_rules! relay_methods {
    () => {
        async fn relay_events(
            &self,
            after: i64,
            upto: i64,
            limit: usize,
        ) -> Result<Vec<LoggedEvent>, StoreError> {
            let rows: Vec<LoggedEventRow> = sqlx::query_as(RELAY_EVENTS)
                .bind(after)
                .bind(upto)
                .bind(limit as i64)
                .fetch_all(&self.pool)
                .await?;
            Ok(rows.into_iter().map(LoggedEvent::from).collect())
        }
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_statement_reads_exactly_the_relayed_kinds() {
        for kind in RELAYED_KINDS {
            assert!(RELAY_EVENTS.contains(&format!("'{kind}'")), "{kind}");
        }
        assert_eq!(
            RELAY_EVENTS.matches("', '").count(),
            RELAYED_KINDS.len() - 1
        );
    }
}
