//! Unmatched `new` leads on SQLite (`store/unmatched.rs`): the marks travel as one JSON array.

use super::*;
use crate::store::unmatched::*;

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
