//! The event log for the webhook relay on SQLite (`store/relay.rs`). One writer at a time:
//! an id is taken inside the write transaction and the next writer starts after the commit,
//! so every event a reader sees has all lower ids committed before it — the horizon is the
//! highest id.

use super::*;
use crate::store::relay::*;

impl RelayStore for SqliteStore {
    async fn relay_horizon(&self) -> Result<Option<i64>, StoreError> {
        let max: i64 = sqlx::query_scalar("SELECT COALESCE(max(id), 0) FROM events")
            .fetch_one(&self.pool)
            .await?;
        Ok(Some(max))
    }

    relay_methods!();
}
