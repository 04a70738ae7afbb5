//! The daily caps' counters on PostgreSQL: "read the window, decide, add" runs under a
//! transaction-scoped advisory lock of its own, so two daemons never both take the last
//! place; batches travel as arrays (`UNNEST`).

use std::collections::HashMap;

use super::*;
use crate::store::send_counts::*;

/// The advisory lock of the send counters ("rewarm" in ASCII, then 8).
const CAPS_LOCK: i64 = 0x7265_7761_726d_0008;

const TOTALS: &str = "SELECT limit_key, SUM(sent)::BIGINT FROM send_counts
     WHERE limit_key = ANY($1) AND minute > $2 - 60 AND minute + width > $2
     GROUP BY limit_key";
const ADD: &str = "INSERT INTO send_counts (limit_key, minute, width, sent)
     SELECT * FROM UNNEST($1::text[], $2::bigint[], $3::bigint[], $4::bigint[])
     ON CONFLICT (limit_key, minute, width) DO UPDATE SET sent = send_counts.sent + EXCLUDED.sent";
const TAKE_BACK: &str = "UPDATE send_counts AS s SET sent = GREATEST(s.sent - t.n, 0)
     FROM UNNEST($1::text[], $2::bigint[], $3::bigint[], $4::bigint[]) AS t(k, m, w, n)
     WHERE s.limit_key = t.k AND s.minute = t.m AND s.width = t.w";
const PRUNE: &str = "DELETE FROM send_counts WHERE minute < $1";
const BUCKETS: &str = "SELECT limit_key, minute, width, sent FROM send_counts
     WHERE limit_key = ANY($1) AND minute > $2 - 60 AND minute + width > $2
     ORDER BY limit_key, minute";
const BUSIEST: &str = "SELECT limit_key, SUM(sent)::BIGINT AS n FROM send_counts
     WHERE minute > $1 - 60 AND minute + width > $1 AND limit_key <> '*'
     GROUP BY limit_key HAVING SUM(sent) > 0 ORDER BY n DESC, limit_key LIMIT $2";

/// The columns of `counts` (merged), as the arrays `UNNEST` takes.
fn columns(counts: &[SendCount]) -> (Vec<String>, Vec<i64>, Vec<i64>, Vec<i64>) {
    let mut cols = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for c in merged(counts) {
        cols.0.push(c.key);
        cols.1.push(c.minute);
        cols.2.push(c.width);
        cols.3.push(c.sent);
    }
    cols
}

impl SendCountStore for PgStore {
    async fn reserve_sends<F>(
        &self,
        from: i64,
        keys: &[String],
        plan: F,
    ) -> Result<HashMap<String, i64>, StoreError>
    where
        F: FnOnce(&HashMap<String, i64>) -> Vec<SendCount> + Send,
    {
        let mut tx = self.pool.begin().await?;
        sqlx::query("SELECT pg_advisory_xact_lock($1)")
            .bind(CAPS_LOCK)
            .execute(&mut *tx)
            .await?;
        let totals: HashMap<String, i64> = sqlx::query_as::<_, (String, i64)>(TOTALS)
            .bind(keys)
            .bind(from)
            .fetch_all(&mut *tx)
            .await?
            .into_iter()
            .collect();
        let (k, m, w, n) = columns(&plan(&totals));
        if !k.is_empty() {
            sqlx::query(ADD)
                .bind(k)
                .bind(m)
                .bind(w)
                .bind(n)
                .execute(&mut *tx)
                .await?;
        }
        sqlx::query(PRUNE)
            .bind(from - PRUNE_BEFORE)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(totals)
    }

    async fn release_sends(&self, counts: &[SendCount]) -> Result<(), StoreError> {
        let (k, m, w, n) = columns(counts);
        if k.is_empty() {
            return Ok(());
        }
        sqlx::query(TAKE_BACK)
            .bind(k)
            .bind(m)
            .bind(w)
            .bind(n)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn send_buckets(
        &self,
        from: i64,
        keys: &[String],
    ) -> Result<Vec<SendBucket>, StoreError> {
        let rows: Vec<(String, i64, i64, i64)> = sqlx::query_as(BUCKETS)
            .bind(keys)
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
            .bind(keys)
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
