//! Unmatched `new` leads on SQLite (`store/unmatched.rs`): the marks travel as one JSON array.

use super::*;
use crate::store::unmatched::{UnmatchedLead, UnmatchedStore};

// SQLite's own texts of the shared statements (they shadow `store/unmatched.rs`' for the
// macro): without statistics its planner takes `leads_state` for `state = 'new'` and walks
// every new lead, on every tick; `INDEXED BY` holds it to the partial indexes of 0011.
pub(super) const LEADS_TO_EXAMINE: &str = select_leads!(
    "INDEXED BY leads_to_examine WHERE state = 'new' AND unmatched_until IS NULL AND id > $1 ORDER BY id LIMIT $2"
);
pub(super) const ANY_TO_WAKE: &str = "SELECT EXISTS (SELECT 1 FROM leads INDEXED BY leads_unmatched WHERE state = 'new' AND unmatched_until <= $1)";
const WAKE_UNMATCHED: &str = "UPDATE leads INDEXED BY leads_unmatched SET unmatched_until = NULL WHERE state = 'new' AND unmatched_until <= $1";
const FORGET_UNMATCHED: &str = "UPDATE leads INDEXED BY leads_unmatched SET unmatched_until = NULL WHERE state = 'new' AND unmatched_until IS NOT NULL";

/// `mark_unmatched`, one statement per this many leads (three bound values each): the
/// `VALUES` rows are the outer loop, each lead found by its key.
const MARK_ROWS: usize = 1000;

impl UnmatchedStore for SqliteStore {
    unmatched_methods!();

    async fn mark_unmatched(&self, leads: &[UnmatchedLead]) -> Result<(), StoreError> {
        if leads.is_empty() {
            return Ok(());
        }
        let mut tx = self.write().await?;
        mark_in(&mut tx, leads).await?;
        tx.commit().await?;
        Ok(())
    }
}

/// [`UnmatchedStore::mark_unmatched`]'s statements, inside the caller's write transaction.
pub(super) async fn mark_in(
    conn: &mut sqlx::SqliteConnection,
    leads: &[UnmatchedLead],
) -> Result<(), StoreError> {
    for chunk in leads.chunks(MARK_ROWS) {
        let mut mark =
            sqlx::QueryBuilder::new("UPDATE leads SET unmatched_until = v.column2 FROM (");
        mark.push_values(chunk, |mut row, l| {
            row.push_bind(l.lead_id)
                .push_bind(l.until_ms())
                .push_bind(l.seen.timestamp_millis());
        });
        mark.push(
            ") AS v WHERE leads.id = v.column1 AND +leads.state = 'new' AND leads.updated_at = v.column3",
        );
        mark.build().execute(&mut *conn).await?;
    }
    Ok(())
}
