//! Query plans on SQLite, for the tests that hold the send pass linear: what the claim
//! statement would do, as `EXPLAIN QUERY PLAN` prints it (nothing is claimed).

use super::queue::CLAIM_DUE;
use super::*;

impl SqliteStore {
    /// The plan of the claim at `now`, one line per step (`SEARCH d USING INDEX
    /// deliveries_pending (due_at<?)`, …). A `SCAN d` or a temporary B-tree for the order
    /// would mean a claim reads every due row.
    pub async fn claim_plan(&self, now: DateTime<Utc>) -> Result<Vec<String>, StoreError> {
        let sql = format!("EXPLAIN QUERY PLAN {CLAIM_DUE}");
        let rows: Vec<(i64, i64, i64, String)> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .bind("plan")
            .bind(Time(now))
            .bind(Time(now))
            .bind(500_i64)
            .fetch_all(&self.pool)
            .await?;
        Ok(rows.into_iter().map(|(_, _, _, detail)| detail).collect())
    }
}
