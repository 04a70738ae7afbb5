//! The PostgreSQL store: for several daemons (on several machines) sharing one database.
//! PostgreSQL is the coordinator — no home-made locking:
//!
//! - **Claims** are one `UPDATE` whose subquery picks due rows `FOR UPDATE SKIP LOCKED`:
//!   concurrent claimers skip each other's rows instead of waiting, and a row another
//!   daemon claimed a moment ago is re-checked and left alone. The claim commits at once
//!   (a lease: `claimed_by`, `lease_until`); nothing is held across the network.
//! - **Batches** travel as one `jsonb` parameter expanded with `jsonb_array_elements`, in
//!   the same format as the SQLite store (times as integer milliseconds, turned into
//!   `timestamptz` by the `rewarm_ms()` SQL function), so a batch is a handful of statements.
//! - **Imports, suppressions, enrolments and repairs** (`upsert_leads`, `suppress`, `enrol`,
//!   `resume_enrolments`) take one transaction-scoped advisory lock, so they run one at a
//!   time across daemons, as every write does on SQLite: two daemons importing the same
//!   leads at once neither collide on unique keys nor write an event twice. Enrolments take
//!   it shared: they run beside each other (a pass's writes use both of a server's cores)
//!   but never beside an import, suppression or repair, and each first locks its own leads'
//!   rows, in id order, so two daemons enrolling the same lead do it one after the other
//!   (the second finds it no longer `new`).
//! - A transaction that loses a deadlock or a serialization check is retried (it changed
//!   nothing), so a rare lock-order clash between daemons never loses an outcome.
//!
//! Time stamps are `timestamptz` truncated to the millisecond on the way in, exactly as the
//! SQLite store keeps them, so both backends return the same values (`dialect.rs`).
//!
//! One file per area, as in `sqlite/`: `leads`, `queue`, `suppression`, `inbound`,
//! `outbox`, `kv`, `copy`. Statements both databases run as written come from `shared.rs`;
//! what is here is PostgreSQL's own: `jsonb_array_elements` batches (`WITH ORDINALITY` where
//! the order of ids or events matters), `jsonb_build_object`, casts, `rewarm_at_domain()`,
//! row locks, the advisory write lock and retries.

use std::str::FromStr;
use std::time::Duration;

use chrono::{DateTime, Utc};
use futures::TryFutureExt as _;
use serde_json::{Value, json};
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};

use self::outbox::ENQUEUE;
use self::suppression::{SUPPRESS_INSERT, SUPPRESS_REACH};
use super::batch::*;
use super::dialect::Time;
use super::rows::*;
use super::shared::{self as sql, migrator};
use super::*;

/// `/metrics`' due-now counts (see `due_now_parts!`).
const DUE_NOW_PARTS: &str = sql::due_now_parts!("deliveries");
const NOT_DUE: &str = sql::not_due!("deliveries");

mod browse;
mod console;
mod copy;
mod edits;
mod forecast;
mod handoff;
mod hold;
mod inbound;
mod kv;
mod leads;
mod outbox;
mod plan;
mod privacy;
mod queue;
mod record;
mod relay;
mod report;
mod send_counts;
mod suppression;
mod unmatched;

#[derive(Clone)]
pub struct PgStore {
    pool: PgPool,
}

const MIGRATIONS: &[(i64, &str, &str)] = &[
    (
        1,
        "initial",
        include_str!("../../../migrations/postgres/0001_initial.sql"),
    ),
    (
        2,
        "suppression",
        include_str!("../../../migrations/postgres/0002_suppression.sql"),
    ),
    (
        3,
        "inbound",
        include_str!("../../../migrations/postgres/0003_inbound.sql"),
    ),
    (
        4,
        "lifecycle",
        include_str!("../../../migrations/postgres/0004_lifecycle.sql"),
    ),
    (
        5,
        "loop",
        include_str!("../../../migrations/postgres/0005_loop.sql"),
    ),
    (
        6,
        "faults",
        include_str!("../../../migrations/postgres/0006_faults.sql"),
    ),
    (
        7,
        "provider_events",
        include_str!("../../../migrations/postgres/0007_provider_events.sql"),
    ),
    (
        8,
        "send_counts",
        include_str!("../../../migrations/postgres/0008_send_counts.sql"),
    ),
    (
        9,
        "privacy",
        include_str!("../../../migrations/postgres/0009_privacy.sql"),
    ),
    (
        10,
        "campaign_versions",
        include_str!("../../../migrations/postgres/0010_campaign_versions.sql"),
    ),
    (
        11,
        "scale",
        include_str!("../../../migrations/postgres/0011_scale.sql"),
    ),
    (
        12,
        "handoff",
        include_str!("../../../migrations/postgres/0012_handoff.sql"),
    ),
    (
        13,
        "pause",
        include_str!("../../../migrations/postgres/0013_pause.sql"),
    ),
    (
        14,
        "loopfin",
        include_str!("../../../migrations/postgres/0014_loopfin.sql"),
    ),
    (
        15,
        "console",
        include_str!("../../../migrations/postgres/0015_console.sql"),
    ),
    (
        16,
        "console_pages",
        include_str!("../../../migrations/postgres/0016_console_pages.sql"),
    ),
    (
        17,
        "import",
        include_str!("../../../migrations/postgres/0017_import.sql"),
    ),
    (
        18,
        "counts",
        include_str!("../../../migrations/postgres/0018_counts.sql"),
    ),
    (
        19,
        "report",
        include_str!("../../../migrations/postgres/0019_report.sql"),
    ),
    (
        20,
        "send_indexes",
        include_str!("../../../migrations/postgres/0020_send_indexes.sql"),
    ),
    (
        21,
        "trigger_jit",
        include_str!("../../../migrations/postgres/0021_trigger_jit.sql"),
    ),
    (
        22,
        "enrol_indexes",
        include_str!("../../../migrations/postgres/0022_enrol_indexes.sql"),
    ),
    (
        23,
        "message_id",
        include_str!("../../../migrations/postgres/0023_message_id.sql"),
    ),
    (
        24,
        "sent_events",
        include_str!("../../../migrations/postgres/0024_sent_events.sql"),
    ),
    (
        25,
        "delivery_key",
        include_str!("../../../migrations/postgres/0025_delivery_key.sql"),
    ),
    (
        26,
        "page_room",
        include_str!("../../../migrations/postgres/0026_page_room.sql"),
    ),
    (
        27,
        "state_index",
        include_str!("../../../migrations/postgres/0027_state_index.sql"),
    ),
    (
        28,
        "trigger_when",
        include_str!("../../../migrations/postgres/0028_trigger_when.sql"),
    ),
    (
        29,
        "hot_foreign_keys",
        include_str!("../../../migrations/postgres/0029_hot_foreign_keys.sql"),
    ),
];

/// The advisory lock (`pg_advisory_xact_lock`) that serialises imports, suppressions and
/// repairs across daemons, and that enrolments take shared ("rewarm" in ASCII, then 1).
const WRITE_LOCK: i64 = 0x7265_7761_726d_0001;

/// How often a transaction that lost a deadlock or serialization check is tried again.
const RETRIES: u32 = 5;

impl PgStore {
    /// Connects to `url` (`postgres://user@host:port/db` or `postgresql://…`).
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        let options = PgConnectOptions::from_str(url)?.application_name("rewarm");
        let pool = PgPoolOptions::new()
            .max_connections(8)
            .acquire_timeout(Duration::from_secs(30))
            .connect_with(options)
            .await?;
        Ok(Self { pool })
    }

    /// The connection pool (for tests and tools).
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// Closes every connection of the pool.
    pub async fn close(&self) {
        self.pool.close().await;
    }

    /// A transaction sharing the write lock with other enrolments (see the module docs).
    async fn enrol_write(&self) -> Result<sqlx::Transaction<'static, sqlx::Postgres>, StoreError> {
        self.locked("SELECT pg_advisory_xact_lock_shared($1)").await
    }

    /// A transaction holding the write lock (see the module docs).
    async fn write(&self) -> Result<sqlx::Transaction<'static, sqlx::Postgres>, StoreError> {
        self.locked("SELECT pg_advisory_xact_lock($1)").await
    }

    /// A transaction that took the write lock with `lock` (a statement of `WRITE_LOCK`, `$1`).
    async fn locked(
        &self,
        lock: &'static str,
    ) -> Result<sqlx::Transaction<'static, sqlx::Postgres>, StoreError> {
        let mut tx = self.pool.begin().await?;
        sqlx::query(lock).bind(WRITE_LOCK).execute(&mut *tx).await?;
        Ok(tx)
    }
}

/// Deadlocks (40P01) and serialization failures (40001) abort the whole transaction, which
/// can then simply run again.
fn retryable(e: &StoreError) -> bool {
    match e {
        StoreError::Database(sqlx::Error::Database(db)) => {
            matches!(db.code().as_deref(), Some("40P01" | "40001"))
        }
        _ => false,
    }
}

/// Runs `$body` (an expression producing a `Result` future) again while it fails with a
/// retryable error, at most `RETRIES` times.
macro_rules! retrying {
    ($body:expr) => {{
        let mut attempt = 0;
        loop {
            match $body.await {
                Err(e) if retryable(&e) && attempt < RETRIES => {
                    attempt += 1;
                    tracing::debug!(error = %e, attempt, "Transaction lost a lock conflict; trying again");
                    tokio::time::sleep(Duration::from_millis(10 * u64::from(attempt))).await;
                }
                other => break other,
            }
        }
    }};
}

pub(crate) use retrying;

impl PgStore {
    /// Applies only the migrations numbered below `version`: for the tests of what a
    /// migration does to the rows an earlier schema holds (then `migrate` applies the rest).
    #[doc(hidden)]
    pub async fn migrate_before(&self, version: i64) -> Result<(), StoreError> {
        let n = MIGRATIONS.iter().take_while(|m| m.0 < version).count();
        migrator(&MIGRATIONS[..n]).run(&self.pool).await?;
        Ok(())
    }

    /// Folds the rows the counting triggers appended (migration 0018) into one per key, in
    /// one statement: rows appended meanwhile by other transactions are not in its snapshot
    /// and stay, so every sum holds throughout.
    async fn fold_counts(&self) -> Result<(), StoreError> {
        retrying!(
            sqlx::query(
                "WITH gone AS (DELETE FROM state_counts RETURNING part, state, campaign, n)
                 INSERT INTO state_counts (part, state, campaign, n)
                 SELECT part, state, campaign, sum(n) FROM gone GROUP BY part, state, campaign HAVING sum(n) <> 0",
            )
            .execute(&self.pool)
            .map_err(StoreError::from)
        )?;
        Ok(())
    }
}

impl Store for PgStore {
    async fn migrate(&self) -> Result<(), StoreError> {
        // `locking` (the default) takes a PostgreSQL advisory lock, so daemons starting at
        // once apply each migration exactly once; the others wait, then find nothing to do.
        if let Err(e) = migrator(MIGRATIONS).run(&self.pool).await {
            // The migrator's advisory lock belongs to a session, and a failed run returns
            // its connection to the pool still holding it: closing the pool releases it,
            // so other daemons are not left waiting. This store is unusable afterwards.
            self.pool.close().await;
            return Err(e.into());
        }
        Ok(())
    }

    async fn check_storage(&self) -> Result<(), StoreError> {
        self.ping().await
    }

    common_store_methods!();
}

common_write_steps!(sqlx::PgConnection);
reply_write_steps!(sqlx::PgConnection);
