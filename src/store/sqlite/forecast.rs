//! The forecast's reads on SQLite (see `store::forecast`).
//!
//! The pending deliveries are read in chunks of [`CHUNK`] rows, each one JSON array built by
//! SQLite (`json_group_array`), not row by row: sqlx hands each row from its worker thread
//! to the reading task through a channel, copying every column value first (a `malloc` and
//! a `free` each), and at a million rows the two threads woke each other for every row.
//! SQLite reads the next chunk while the forecast simulates the one before. With many of
//! them due in the window, each one's lead is not looked up but found among the leads read
//! once beforehand (`forecast_scan.rs`).

use futures::TryStreamExt as _;
use serde::Deserialize;

use super::*;
use crate::store::forecast::{
    COUNT_PENDING_BEFORE, ForecastDelivery, ForecastStore, forecast_store_methods,
};

/// Rows a chunk of `pending_before` holds (~150 bytes each as JSON; 5,000 was no faster).
const CHUNK: i64 = 1_000;

/// A chunk of `pending_before`: the next `$4` deliveries the daemon could claim due before
/// `$1`, after (`$2` due time, `$3` id) in claim order, as one JSON array of rows (each
/// `[id, lead_id, campaign, step, template, due_at, email, timezone, country]`), and how many
/// there are. Two ranges of `deliveries_pending` (its entries are in due time, then id
/// order), merged in that order: the rest of the last chunk's due time (`due_at = $2 AND id >
/// $3`), then the later ones. So each chunk starts where the last one ended, even inside a
/// million emails due at the same moment (after a send pass, every next step is); a single
/// `(due_at, id) > ($2, $3)` searched by due time alone and re-read that whole run for each
/// chunk (23.5 s instead of 2 s).
macro_rules! pending_chunk {
    ($suppressed:expr) => {
        concat!(
            "SELECT json_group_array(json_array(id, lead_id, CAST(campaign AS TEXT), CAST(step AS INTEGER),
                        CAST(template AS TEXT), CAST(due_at AS INTEGER), CAST(email AS TEXT), CAST(timezone AS TEXT),
                        CAST(country AS TEXT))), count(*)
             FROM (",
            pending_chunk!(@arm "d.due_at = $2 AND d.id > $3", $suppressed),
            " UNION ALL ",
            pending_chunk!(@arm "d.due_at > $2", $suppressed),
            " ORDER BY 6, 1 LIMIT $4)"
        )
    };
    (@arm $range:literal, $suppressed:expr) => {
        concat!(
            "SELECT d.id, d.lead_id, d.campaign, d.step, d.template, d.due_at, l.email, l.timezone,
                    l.fields ->> 'country' AS country
             FROM deliveries d INDEXED BY deliveries_pending CROSS JOIN leads l ON l.id = d.lead_id
             WHERE d.state IN ('scheduled', 'retry_wait') AND ",
            $range,
            " AND d.due_at < $1 AND l.state = 'nurturing' ",
            $suppressed
        )
    };
}

/// With the suppression list: leads whose address or domain is on it are left out.
const PENDING_CHUNK: &str = pending_chunk!(at_domain!(
    "AND NOT EXISTS (SELECT 1 FROM suppressions s WHERE s.address IN (l.email, ",
    "l.email",
    "))"
));
/// With nothing on the suppression list: no probe per row.
const PENDING_CHUNK_UNLISTED: &str = pending_chunk!("");

/// One row of a chunk, as `pending_chunk!` builds it.
#[derive(Deserialize)]
struct ChunkRow(
    i64,
    i64,
    String,
    i64,
    String,
    i64,
    String,
    Option<String>,
    Option<String>,
);

impl ChunkRow {
    fn delivery(self) -> Result<ForecastDelivery, StoreError> {
        let ChunkRow(id, lead_id, campaign, step, template, due, email, timezone, country) = self;
        let due_at = DateTime::from_timestamp_millis(due).ok_or_else(|| StoreError::Corrupt {
            table: "deliveries",
            id,
            reason: format!("due time {due} out of range"),
        })?;
        Ok(ForecastDelivery {
            id,
            lead_id,
            campaign,
            step: u32::try_from(step).unwrap_or(0),
            template,
            due_at,
            email,
            timezone,
            country,
        })
    }
}

/// Reads every chunk, in claim order, into `chunks`, on one connection of `pool` (one page
/// cache: the pool hands its connections out in turn, and each would fill its own).
async fn read_chunks(
    pool: &SqlitePool,
    sql: &'static str,
    (until, size): (DateTime<Utc>, i64),
    chunks: tokio::sync::mpsc::Sender<Result<Vec<ForecastDelivery>, StoreError>>,
) {
    let mut conn = match pool.acquire().await {
        Ok(conn) => conn,
        Err(e) => {
            let _ = chunks.send(Err(e.into())).await;
            return;
        }
    };
    let mut after = (i64::MIN, i64::MIN);
    loop {
        let chunk = read_chunk(&mut conn, sql, (until, size), after).await;
        let last = match &chunk {
            Ok(rows) => rows.last().map(|d| (d.due_at.timestamp_millis(), d.id)),
            Err(_) => None,
        };
        let full = chunk
            .as_ref()
            .is_ok_and(|rows| i64::try_from(rows.len()) == Ok(size));
        if chunks.send(chunk).await.is_err() {
            return; // the reader is gone (it failed)
        }
        match last {
            Some(key) if full => after = key,
            _ => return,
        }
    }
}

async fn read_chunk(
    conn: &mut sqlx::SqliteConnection,
    sql: &'static str,
    (until, size): (DateTime<Utc>, i64),
    after: (i64, i64),
) -> Result<Vec<ForecastDelivery>, StoreError> {
    let (json, n): (String, i64) = sqlx::query_as(sql)
        .bind(Time(until))
        .bind(after.0)
        .bind(after.1)
        .bind(size)
        .fetch_one(&mut *conn)
        .await?;
    let rows: Vec<ChunkRow> = serde_json::from_str(&json).map_err(|e| StoreError::Corrupt {
        table: "deliveries",
        id: after.1.max(0),
        reason: format!("the {n} pending deliveries after this one could not be read: {e}"),
    })?;
    let mut rows = rows
        .into_iter()
        .map(ChunkRow::delivery)
        .collect::<Result<Vec<_>, _>>()?;
    // SQLite aggregates the rows in the order its subquery gives them; the claim order is
    // what the simulation needs, so it is not left to that (a sorted chunk sorts in one pass).
    rows.sort_by_key(|d| (d.due_at, d.id));
    Ok(rows)
}

impl ForecastStore for SqliteStore {
    async fn pending_before<F: FnMut(ForecastDelivery) + Send>(
        &self,
        until: DateTime<Utc>,
        addresses: bool,
        each: F,
    ) -> Result<(), StoreError> {
        if super::forecast_scan::scan_pays(&self.pool, until).await? {
            let sizes = (super::forecast_scan::LEAD_CHUNK, CHUNK);
            self.pending_before_scanning(until, sizes, addresses, each)
                .await
        } else {
            self.pending_before_in_chunks(until, CHUNK, each).await
        }
    }

    forecast_store_methods!();
}

impl SqliteStore {
    /// `pending_before` in chunks of `size` rows (the tests' small chunks end inside runs of
    /// equal due times).
    #[doc(hidden)]
    pub async fn pending_before_in_chunks<F: FnMut(ForecastDelivery) + Send>(
        &self,
        until: DateTime<Utc>,
        size: i64,
        mut each: F,
    ) -> Result<(), StoreError> {
        // With nothing on the suppression list (a first import), no probe per row: at a
        // million due, the two probes a row were a third of the statement's time. A
        // suppression added between the two reads is missed, as one added just after.
        let listed: bool = sqlx::query_scalar(crate::store::shared::ANY_LISTED)
            .fetch_one(&self.pool)
            .await?;
        let sql = if listed {
            PENDING_CHUNK
        } else {
            PENDING_CHUNK_UNLISTED
        };
        // The reader and the simulation take turns on this task, one chunk apart: while the
        // simulation goes through a chunk, SQLite's worker thread is already reading the
        // next. (A task of its own on another thread did the same, with 15 MiB more at the
        // peak for the allocator's second thread.)
        let (tx, mut rx) = tokio::sync::mpsc::channel(1);
        let reading = read_chunks(&self.pool, sql, (until, size.max(1)), tx);
        let simulating = async {
            while let Some(chunk) = rx.recv().await {
                for d in chunk? {
                    each(d);
                }
            }
            Ok(())
        };
        let ((), done) = tokio::join!(reading, simulating);
        done
    }

    /// The plan of a chunk of the forecast's pending deliveries (with the suppression
    /// probes), one line per step: it must search `deliveries_pending` in its order from the
    /// last chunk's key (`due_at=? AND rowid>?`, then `due_at>?`), never scan `deliveries`
    /// or sort.
    #[doc(hidden)]
    pub async fn forecast_chunk_plan(&self) -> Result<Vec<String>, StoreError> {
        let sql = format!("EXPLAIN QUERY PLAN {PENDING_CHUNK}");
        let rows: Vec<(i64, i64, i64, String)> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .bind(0_i64)
            .bind(0_i64)
            .bind(0_i64)
            .bind(CHUNK)
            .fetch_all(&self.pool)
            .await?;
        Ok(rows.into_iter().map(|(_, _, _, detail)| detail).collect())
    }
}

const NEW_LEADS: &str = at_domain!(
    "SELECT id, email, first_name, last_name, company, title, owner_email, owner_name, lost_reason, lost_at, timezone, tags, fields, state, created_at, updated_at
     FROM leads WHERE state = 'new'
       AND NOT EXISTS (SELECT 1 FROM suppressions s WHERE s.address IN (leads.email, ",
    "leads.email",
    "))"
);
/// ASCII case-insensitive, like the segments' comparison (no escape character).
const LIKE: &str = "lost_reason LIKE $1";
