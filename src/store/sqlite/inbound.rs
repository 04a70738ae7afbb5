//! Inbound mail and engagement on SQLite: what a reply, a bounce or a click does to its lead,
//! in one transaction with the message it came from.

use serde_json::json;

use super::*;

impl InboundStore for SqliteStore {
    common_inbound_methods!();

    async fn record_click(
        &self,
        delivery_id: i64,
        url: &str,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let mut tx = self.write().await?;
        let n = sqlx::query(
            "INSERT INTO events (lead_id, at, kind, detail)
             SELECT lead_id, $2, 'clicked', json_object('campaign', campaign, 'step', step + 1, 'url', $3) FROM deliveries WHERE id = $1",
        )
        .bind(delivery_id)
        .bind(Time(now))
        .bind(url)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        tx.commit().await?;
        Ok(n > 0)
    }
}
