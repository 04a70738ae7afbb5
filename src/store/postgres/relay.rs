//! The event log for the webhook relay on PostgreSQL (`store/relay.rs`). Ids come from a
//! sequence before their transaction commits, so a reader may see id 12 while 11 is still
//! being written. The horizon is read under `LOCK TABLE events IN SHARE MODE`, which waits
//! for every transaction that is inserting events (they hold `ROW EXCLUSIVE` until they end)
//! and lets no new one start until it is read: every id at or below it is then committed or
//! gone for good. The wait is capped (`lock_timeout`): behind a long import the relay tries
//! again next tick rather than stall every writer queued behind its lock request.

use super::*;
use crate::store::relay::*;

/// How long the relay waits for the writers in flight.
const LOCK_TIMEOUT: &str = "SET LOCAL lock_timeout = '500ms'";

impl RelayStore for PgStore {
    async fn relay_horizon(&self) -> Result<Option<i64>, StoreError> {
        let mut tx = self.pool.begin().await?;
        sqlx::query(LOCK_TIMEOUT).execute(&mut *tx).await?;
        match sqlx::query("LOCK TABLE events IN SHARE MODE")
            .execute(&mut *tx)
            .await
        {
            Ok(_) => {}
            // lock_not_available: a long transaction is writing events.
            Err(sqlx::Error::Database(e)) if e.code().as_deref() == Some("55P03") => {
                return Ok(None);
            }
            Err(e) => return Err(e.into()),
        }
        let max: i64 = sqlx::query_scalar("SELECT COALESCE(max(id), 0) FROM events")
            .fetch_one(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(Some(max))
    }

    relay_methods!();
}
