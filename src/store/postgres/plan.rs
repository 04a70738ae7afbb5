//! Query plans on PostgreSQL, for the tests that hold the send pass linear: what the claim
//! statement would do, as `EXPLAIN` prints it (nothing is claimed or locked).

use super::queue::CLAIM_DUE;
use super::*;

impl PgStore {
    /// The plan of the claim at `now`, one line per node (`Index Scan using
    /// deliveries_pending on deliveries d`, …). A `Seq Scan on deliveries` would mean a
    /// claim reads every due row.
    pub async fn claim_plan(&self, now: DateTime<Utc>) -> Result<Vec<String>, StoreError> {
        let sql = format!("EXPLAIN (COSTS OFF) {CLAIM_DUE}");
        let rows: Vec<(String,)> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .bind("plan")
            .bind(Time(now))
            .bind(Time(now))
            .bind(500_i64)
            .fetch_all(&self.pool)
            .await?;
        Ok(rows.into_iter().map(|(line,)| line).collect())
    }
}
