//! The daily caps' counters on SQLite: the single writer (`BEGIN IMMEDIATE`) makes "read the
//! window, decide, add" atomic across processes; batches travel as one JSON array.

use std::collections::HashMap;

use super::*;
use crate::store::send_counts::*;

const TOTALS: &str = "SELECT limit_key, SUM(sent) FROM send_counts
     WHERE limit_key IN (SELECT value FROM json_each($1)) AND minute > $2 - 60 AND minute + width > $2
     GROUP BY limit_key";
const ADD: &str = "INSERT INTO send_counts (limit_key, minute, width, sent)
     SELECT value ->> 0, value ->> 1, value ->> 2, value ->> 3 FROM json_each($1) WHERE true
     ON CONFLICT (limit_key, minute, width) DO UPDATE SET sent = send_counts.sent + excluded.sent";
const TAKE_BACK: &str = "UPDATE send_counts AS s SET sent = max(s.sent + (j.value ->> 3), 0)
     FROM json_each($1) AS j
     WHERE s.limit_key = j.value ->> 0 AND s.minute = j.value ->> 1 AND s.width = j.value ->> 2";
const PRUNE: &str = "DELETE FROM send_counts WHERE minute < $1";
const BUCKETS: &str = "SELECT limit_key, minute, width, sent FROM send_counts
     WHERE limit_key IN (SELECT value FROM json_each($1)) AND minute > $2 - 60 AND minute + width > $2
     ORDER BY limit_key, minute";
const BUSIEST: &str = "SELECT limit_key, SUM(sent) AS n FROM send_counts
     WHERE minute > $1 - 60 AND minute + width > $1 AND limit_key <> '*'
     GROUP BY limit_key HAVING n > 0 ORDER BY n DESC, limit_key LIMIT $2";

fn rows(counts: &[SendCount]) -> Value {
    Value::Array(
        merged(counts)
            .into_iter()
            .map(|c| json!([c.key, c.minute, c.width, c.sent]))
            .collect(),
    )
}

impl SendCountStore for SqliteStore {
    async fn reserve_sends<F>(
        &self,
        from: i64,
        keys: &[String],
        plan: F,
    ) -> Result<HashMap<String, i64>, StoreError>
    where
        F: FnOnce(&HashMap<String, i64>) -> Vec<SendCount> + Send,
    {
        let mut tx = self.write().await?;
        let totals: HashMap<String, i64> = sqlx::query_as::<_, (String, i64)>(TOTALS)
            .bind(json!(keys))
            .bind(from)
            .fetch_all(&mut *tx)
            .await?
            .into_iter()
            .collect();
        let add = rows(&plan(&totals));
        if add.as_array().is_some_and(|a| !a.is_empty()) {
            sqlx::query(ADD).bind(add).execute(&mut *tx).await?;
        }
        sqlx::query(PRUNE)
            .bind(from - PRUNE_BEFORE)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(totals)
    }

    async fn release_sends(&self, counts: &[SendCount]) -> Result<(), StoreError> {
        let take: Vec<SendCount> = counts
            .iter()
            .map(|c| SendCount {
                sent: -c.sent,
                ..c.clone()
            })
            .collect();
        let take = rows(&take);
        if take.as_array().is_none_or(|a| a.is_empty()) {
            return Ok(());
        }
        let mut tx = self.write().await?;
        sqlx::query(TAKE_BACK).bind(take).execute(&mut *tx).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn send_buckets(
        &self,
        from: i64,
        keys: &[String],
    ) -> Result<Vec<SendBucket>, StoreError> {
        let rows: Vec<(String, i64, i64, i64)> = sqlx::query_as(BUCKETS)
            .bind(json!(keys))
            .bind(from)
            .fetch_all(&self.pool)
            .await?;
        Ok(rows
            .into_iter()
            .map(|(key, minute, width, sent)| SendBucket {
                key,
                minute,
                width,
                sent,
            })
            .collect())
    }

    async fn send_totals(
        &self,
        from: i64,
        keys: &[String],
        busiest: usize,
    ) -> Result<SendTotals, StoreError> {
        let totals: HashMap<String, i64> = sqlx::query_as::<_, (String, i64)>(TOTALS)
            .bind(json!(keys))
            .bind(from)
            .fetch_all(&self.pool)
            .await?
            .into_iter()
            .collect();
        let top: Vec<(String, i64)> = sqlx::query_as(BUSIEST)
            .bind(from)
            .bind(busiest as i64)
            .fetch_all(&self.pool)
            .await?;
        Ok((totals, top))
    }
}
