//! Unmatched `new` leads on PostgreSQL (`store/unmatched.rs`): the marks travel as three
//! arrays expanded once with `UNNEST`.

use super::*;
use crate::store::unmatched::*;

const MARK_UNMATCHED: &str = "UPDATE leads SET unmatched_until = rewarm_ms(u.until)
     FROM UNNEST($1::bigint[], $2::bigint[], $3::bigint[]) AS u(id, until, seen)
     WHERE leads.id = u.id AND leads.state = 'new' AND leads.updated_at = rewarm_ms(u.seen)";

impl UnmatchedStore for PgStore {
    unmatched_methods!();

    async fn mark_unmatched(&self, leads: &[UnmatchedLead]) -> Result<(), StoreError> {
        if leads.is_empty() {
            return Ok(());
        }
        let ids: Vec<i64> = leads.iter().map(|l| l.lead_id).collect();
        let until: Vec<i64> = leads.iter().map(|l| l.until_ms()).collect();
        let seen: Vec<i64> = leads.iter().map(|l| l.seen.timestamp_millis()).collect();
        sqlx::query(MARK_UNMATCHED)
            .bind(ids)
            .bind(until)
            .bind(seen)
            .execute(&self.pool)
            .await?;
        Ok(())
    }
}
