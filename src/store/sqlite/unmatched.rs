//! Unmatched `new` leads on SQLite (`store/unmatched.rs`): the marks travel as one JSON array.

use super::*;
use crate::store::unmatched::{UnmatchedLead, UnmatchedStore};

// SQLite's own texts of the shared statements (they shadow `store/unmatched.rs`' for the
// macro): without statistics its planner takes `leads_state` for `state = 'new'` and walks
// every new lead, on every tick; `INDEXED BY` holds it to the partial indexes of 0011.
const LEADS_TO_EXAMINE: &str = select_leads!(
    "INDEXED BY leads_to_examine WHERE state = 'new' AND unmatched_until IS NULL AND id > $1 ORDER BY id LIMIT $2"
);
const ANY_TO_WAKE: &str = "SELECT EXISTS (SELECT 1 FROM leads INDEXED BY leads_unmatched WHERE state = 'new' AND unmatched_until <= $1)";
const WAKE_UNMATCHED: &str = "UPDATE leads INDEXED BY leads_unmatched SET unmatched_until = NULL WHERE state = 'new' AND unmatched_until <= $1";
const FORGET_UNMATCHED: &str = "UPDATE leads INDEXED BY leads_unmatched SET unmatched_until = NULL WHERE state = 'new' AND unmatched_until IS NOT NULL";

const MARK_UNMATCHED: &str = "UPDATE leads SET unmatched_until = j.value->>'until'
     FROM json_each($1) j WHERE leads.id = j.value->>'id' AND +leads.state = 'new' AND leads.updated_at = j.value->>'seen'";

impl UnmatchedStore for SqliteStore {
    unmatched_methods!();

    async fn mark_unmatched(&self, leads: &[UnmatchedLead]) -> Result<(), StoreError> {
        if leads.is_empty() {
            return Ok(());
        }
        let batch: Value = leads
            .iter()
            .map(|l| {
                json!({
                    "id": l.lead_id,
                    "until": l.until_ms(),
                    "seen": l.seen.timestamp_millis(),
                })
            })
            .collect();
        let mut tx = self.write().await?;
        sqlx::query(MARK_UNMATCHED)
            .bind(batch)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }
}
