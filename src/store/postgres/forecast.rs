//! The forecast's reads on PostgreSQL (see `store::forecast`).

use futures::TryStreamExt as _;

use super::*;
use crate::store::forecast::{
    COUNT_PENDING_BEFORE, ForecastDelivery, ForecastRow, ForecastStore, forecast_pending_select,
    forecast_store_methods, pending_before_by_row,
};

const PENDING_BEFORE: &str = forecast_pending_select!("rewarm_at_domain(l.email)");
const PENDING_BEFORE_UNLISTED: &str = forecast_pending_select!(unlisted);

const NEW_LEADS: &str = "SELECT id, email, first_name, last_name, company, title, owner_email, owner_name, lost_reason, lost_at, timezone, tags, fields, state, created_at, updated_at
     FROM leads WHERE state = 'new'
       AND NOT EXISTS (SELECT 1 FROM suppressions s WHERE s.address IN (leads.email, rewarm_at_domain(leads.email)))";
/// Case-insensitive; no escape character, so a reason's `\` is itself.
const LIKE: &str = "lost_reason ILIKE $1 ESCAPE ''";

impl ForecastStore for PgStore {
    pending_before_by_row!();
    forecast_store_methods!();
}

impl PgStore {
    /// The plan (`EXPLAIN`, no costs) of the forecast's pending deliveries due before
    /// `until`, with the suppression probes: a window holding few of them reads
    /// `deliveries_pending` (a window holding most of them is joined by hashing and sorted,
    /// as it should be).
    #[doc(hidden)]
    pub async fn forecast_plan(&self, until: DateTime<Utc>) -> Result<Vec<String>, StoreError> {
        let sql = format!("EXPLAIN (COSTS OFF) {PENDING_BEFORE}");
        let rows: Vec<(String,)> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .bind(Time(until))
            .fetch_all(&self.pool)
            .await?;
        Ok(rows.into_iter().map(|(line,)| line).collect())
    }
}
