//! Inbound mail and engagement on PostgreSQL: what a reply, a bounce or a click does to its
//! lead, in one transaction (under the write lock) with the message it came from.

use serde_json::json;

use super::*;

impl InboundStore for PgStore {
    common_inbound_methods!();

    async fn record_click(
        &self,
        delivery_id: i64,
        url: &str,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let n = sqlx::query(
            "INSERT INTO events (lead_id, at, kind, detail)
             SELECT lead_id, $2, 'clicked', jsonb_build_object('campaign', campaign, 'step', step + 1, 'url', $3::text)
             FROM deliveries WHERE id = $1",
        )
        .bind(delivery_id)
        .bind(Time(now))
        .bind(url)
        .execute(&self.pool)
        .await?
        .rows_affected();
        Ok(n > 0)
    }
}
