//! The SQLite store: the embedded default. WAL mode, one writer at a time; every write is
//! one short `BEGIN IMMEDIATE` transaction, never held across network I/O. Batches travel
//! as one JSON array parameter expanded with `json_each`, so a batch of any size is a
//! handful of statements, not a query per lead.
//!
//! One file per area, as in `postgres/`: `leads`, `queue`, `suppression`, `inbound`,
//! `outbox`, `kv`, `copy`. Statements both databases run as written come from `shared.rs`;
//! what is here is SQLite's own: `json_each` batches, `json_object`, the `+column` that keeps
//! the planner off a less selective index, and the `@domain` expression spelled as the
//! `leads_at_domain` index spells it.

use std::str::FromStr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::{Value, json};
use sqlx::Connection as _;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};

use self::checkpoint::Checkpoints;
use self::outbox::ENQUEUE;
use self::suppression::{SUPPRESS_INSERT, SUPPRESS_REACH};
use super::batch::*;
use super::dialect::Time;
use super::rows::*;
use super::shared::{self as sql, migrator};
use super::*;

mod browse;
mod bulk;
mod checkpoint;
mod console;
mod copy;
mod edits;
mod forecast;
mod forecast_scan;
mod handoff;
mod hold;
pub mod identity;
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
pub struct SqliteStore {
    pool: SqlitePool,
    /// One connection for the write transactions and the claims: SQLite empties a
    /// connection's page cache whenever another connection has written since its last
    /// transaction, so writes spread over the pool each started cold (re-reading every page
    /// they touched). The one writer keeps its cache; SQLite has one writer at a time anyway,
    /// and waiting here is a queue rather than the busy handler's sleeps.
    writer: SqlitePool,
    /// The database file, when there is one (not `sqlite::memory:`): what
    /// [`Store::check_storage`] watches and where the identity marker lives.
    file: Option<identity::DatabaseFile>,
    /// The WAL's checkpoints (a file's; none in memory), run beside the writer once the WAL
    /// passes `checkpoint_pages` of the file's size: set when the store opens, and again by
    /// `check_storage` when the file has grown.
    checkpoints: Option<&'static Checkpoints>,
    /// The connection whose triggers and foreign-key checks a bulk write turned off (its
    /// handle's address; 0: none), so that the pool turns them back on should that write be
    /// dropped mid-way: see [`bulk`].
    row_checks_off: Arc<AtomicUsize>,
}

/// Rows per multi-row `INSERT … VALUES` into a temporary staging table (`temp.enrol_batch`:
/// six values a row; `temp.record_batch`: sixteen): well under SQLite's 32,766 parameters.
const STAGE_ROWS: usize = 1000;

const MIGRATIONS: &[(i64, &str, &str)] = &[
    (
        1,
        "initial",
        include_str!("../../../migrations/sqlite/0001_initial.sql"),
    ),
    (
        2,
        "suppression",
        include_str!("../../../migrations/sqlite/0002_suppression.sql"),
    ),
    (
        3,
        "inbound",
        include_str!("../../../migrations/sqlite/0003_inbound.sql"),
    ),
    (
        4,
        "lifecycle",
        include_str!("../../../migrations/sqlite/0004_lifecycle.sql"),
    ),
    (
        5,
        "loop",
        include_str!("../../../migrations/sqlite/0005_loop.sql"),
    ),
    (
        6,
        "faults",
        include_str!("../../../migrations/sqlite/0006_faults.sql"),
    ),
    (
        7,
        "provider_events",
        include_str!("../../../migrations/sqlite/0007_provider_events.sql"),
    ),
    (
        8,
        "send_counts",
        include_str!("../../../migrations/sqlite/0008_send_counts.sql"),
    ),
    (
        9,
        "privacy",
        include_str!("../../../migrations/sqlite/0009_privacy.sql"),
    ),
    (
        10,
        "campaign_versions",
        include_str!("../../../migrations/sqlite/0010_campaign_versions.sql"),
    ),
    (
        11,
        "scale",
        include_str!("../../../migrations/sqlite/0011_scale.sql"),
    ),
    (
        12,
        "handoff",
        include_str!("../../../migrations/sqlite/0012_handoff.sql"),
    ),
    (
        13,
        "pause",
        include_str!("../../../migrations/sqlite/0013_pause.sql"),
    ),
    (
        14,
        "loopfin",
        include_str!("../../../migrations/sqlite/0014_loopfin.sql"),
    ),
    (
        15,
        "console",
        include_str!("../../../migrations/sqlite/0015_console.sql"),
    ),
    (
        16,
        "console_pages",
        include_str!("../../../migrations/sqlite/0016_console_pages.sql"),
    ),
    (
        17,
        "import",
        include_str!("../../../migrations/sqlite/0017_import.sql"),
    ),
    (
        18,
        "counts",
        include_str!("../../../migrations/sqlite/0018_counts.sql"),
    ),
    (
        19,
        "report",
        include_str!("../../../migrations/sqlite/0019_report.sql"),
    ),
    (
        20,
        "send_indexes",
        include_str!("../../../migrations/sqlite/0020_send_indexes.sql"),
    ),
    (
        21,
        "enrol_indexes",
        include_str!("../../../migrations/sqlite/0021_enrol_indexes.sql"),
    ),
    (
        22,
        "message_id",
        include_str!("../../../migrations/sqlite/0022_message_id.sql"),
    ),
    (
        23,
        "sent_events",
        include_str!("../../../migrations/sqlite/0023_sent_events.sql"),
    ),
    (
        24,
        "delivery_key",
        include_str!("../../../migrations/sqlite/0024_delivery_key.sql"),
    ),
    (
        25,
        "state_index",
        include_str!("../../../migrations/sqlite/0025_state_index.sql"),
    ),
];

/// `/metrics`' due-now counts (see `due_now_parts!`), through the pending deliveries' index.
const DUE_NOW_PARTS: &str = sql::due_now_parts!("deliveries INDEXED BY deliveries_pending");
const NOT_DUE: &str = sql::not_due!("deliveries INDEXED BY deliveries_pending");

/// `concat!`s `$before`, then `'@' || <the domain of the email column $col>` spelled exactly as
/// the `leads_at_domain` index spells it (migrations/sqlite/0002), then `$after`.
macro_rules! at_domain {
    ($before:literal, $col:literal, $after:literal) => {
        concat!(
            $before,
            "substr(",
            $col,
            ", length(rtrim(",
            $col,
            ", replace(",
            $col,
            ", '@', ''))))",
            $after
        )
    };
}
pub(crate) use at_domain;

/// Bytes of the database each connection reads through a memory map (`mmap_size`): 256 MiB
/// for the daemon, whose send pass re-reads the same pages; see [`read_as_one_shot`].
static MEMORY_MAP: AtomicU64 = AtomicU64::new(256 << 20);

/// KiB of page cache of each reading connection (the writer keeps 32 MiB): 32 MiB for the
/// daemon; see [`read_as_one_shot`].
static READ_CACHE_KIB: AtomicU64 = AtomicU64::new(32 << 10);

/// Stores opened from now on in this process read through their page cache only, no memory
/// map, and each reading connection keeps 8 MiB of pages instead of 32. For one-shot commands
/// (`leads import`, `forecast`, `status`, …), which read each page about once:
///
/// - the pages a map reads count in the process's resident memory (a 1M-lead import or
///   forecast peaked at 212–244 MiB, almost all of it mapped file pages);
/// - the reading pool opens up to 4 connections, a new one whenever a query starts before
///   the last one's connection is back (it returns asynchronously), and then takes them in
///   turn, so each fills its own cache: a 1M-lead `leads import --dry-run`, whose look-ups
///   read the whole `leads` table, peaked at 96–99 MiB in some runs and 156 MiB in another.
pub fn read_as_one_shot() {
    MEMORY_MAP.store(0, Ordering::Relaxed);
    READ_CACHE_KIB.store(8 << 10, Ordering::Relaxed);
}

/// WAL pages past which a checkpoint runs (beside the writer: [`checkpoint`]) for a database
/// file of `bytes`: as many as the file has (4 KiB each), at least SQLite's default 1,000, at
/// most 40,000 (160 MiB).
///
/// A send pass dirties pages all over the deliveries and events B-trees; checkpointing every
/// 1,000 pages copied them back (and fsynced) 1,667 times in a 100k pass, re-reading what it
/// had just written; with more pages between checkpoints a page written many times is copied
/// back once (40,000: 4× fewer page reads, 65 fsyncs). That pass: 3,084 msg/s at 1,000,
/// 3,604–3,902 with this rule (33,421 pages for its 137 MB file), 4,393 at 40,000. The WAL
/// grows up to that size before it is checkpointed, so the threshold follows the database:
/// a small database keeps SQLite's default and needs no more than ~8 MiB free for its WAL; a
/// larger one at most twice its own size (should the checkpointer fall behind, the commit
/// that reaches twice the threshold checkpoints), and never more than 320 MiB. Set when the
/// store opens, and again by each tick's [`Store::check_storage`] when the file has grown
/// (or shrunk) into another value.
pub(crate) fn checkpoint_pages(bytes: u64) -> u64 {
    (bytes / 4096).clamp(1_000, 40_000)
}

impl SqliteStore {
    /// Applies only the migrations numbered below `version`: for the tests of what a
    /// migration does to the rows an earlier schema holds (then `migrate` applies the rest).
    #[doc(hidden)]
    pub async fn migrate_before(&self, version: i64) -> Result<(), StoreError> {
        let n = MIGRATIONS.iter().take_while(|m| m.0 < version).count();
        migrator(&MIGRATIONS[..n]).run(&self.pool).await?;
        Ok(())
    }

    /// WAL pages past which a checkpoint runs (none for an in-memory database), and SQLite's
    /// own `wal_autocheckpoint` of the writer connection, which reads 0 once the checkpoints
    /// are ours (see [`checkpoint`]).
    pub async fn writer_checkpoint_pages(&self) -> Result<(Option<u64>, i64), StoreError> {
        let mut conn = self.writer.acquire().await?;
        let sqlite = sqlx::query_scalar("PRAGMA wal_autocheckpoint")
            .fetch_one(&mut *conn)
            .await?;
        Ok((self.checkpoints.map(Checkpoints::threshold), sqlite))
    }

    /// Checkpoints run so far: (beside the writer, by the writer in a commit).
    #[doc(hidden)]
    pub fn checkpoints_done(&self) -> (u64, u64) {
        self.checkpoints.map_or((0, 0), Checkpoints::done)
    }

    /// Whether the writer connection runs the main schema's triggers and checks foreign keys,
    /// as SQLite reports it (a bulk write turns both off for a few statements: see [`bulk`]).
    #[doc(hidden)]
    pub async fn writer_runs_row_checks(&self) -> Result<bool, StoreError> {
        let mut conn = self.writer.acquire().await?;
        bulk::row_checks_enabled(&mut conn).await
    }

    /// Closes the connections (waiting for those in use); every later call fails.
    pub async fn close(&self) {
        if let Some(checkpoints) = self.checkpoints {
            checkpoints.stop().await;
        }
        self.writer.close().await;
        self.pool.close().await;
    }

    /// Opens (creating if missing) the database at `url` (`sqlite://FILE` or `sqlite::memory:`).
    /// A missing (or empty) FILE is not created when its identity marker (`FILE.rewarm-id`)
    /// says a database was there: a daemon that has run before never silently starts afresh
    /// (new token keys, every old link dead) — see [`identity`].
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        let file = identity::sqlite_file(url).map(identity::DatabaseFile::new);
        if let Some(file) = &file {
            file.refuse_if_gone()?;
        }
        let options = SqliteConnectOptions::from_str(url)?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .busy_timeout(Duration::from_secs(30))
            .foreign_keys(true)
            // SQLite's default 2 MB page cache put a third of a 20k send pass in the kernel,
            // re-reading pages: 32 MiB per connection (filled only as pages are read), and
            // reads through a 256 MiB memory map instead of read(2) (the daemon's; see
            // `read_as_one_shot`).
            .pragma("cache_size", "-32768")
            .pragma("mmap_size", MEMORY_MAP.load(Ordering::Relaxed).to_string())
            // A statement that changes many rows inside a transaction keeps its statement
            // journal; past 64 KiB SQLite spilled it to a temporary file, created and deleted
            // once per recorded wave (1,259 files in a 10k send pass). In memory instead.
            .pragma("temp_store", "memory")
            // After a checkpoint the WAL file is cut back to 64 MiB (see `checkpoint_pages`).
            .pragma("journal_size_limit", "67108864");
        // A statement that failed inside a transaction (disk full, read-only file) can leave
        // its connection inside that transaction; such a connection is closed instead of
        // going back to the pool, so the next write starts clean ("attempted to call
        // begin_with at non-zero transaction depth" never jams the daemon).
        // A connection whose row checks a dropped bulk write left off gets them back first.
        let row_checks_off = Arc::new(AtomicUsize::new(0));
        let pool_of = |n: u32| {
            let off = row_checks_off.clone();
            SqlitePoolOptions::new()
                .max_connections(n)
                .after_release(move |conn, _| {
                    let off = off.clone();
                    Box::pin(async move {
                        bulk::restore_row_checks(conn, &off).await?;
                        Ok(!conn.is_in_transaction())
                    })
                })
                .before_acquire(|conn, _| Box::pin(async move { Ok(!conn.is_in_transaction()) }))
        };
        // The file is created here, once, if missing; every later connection (the pools open
        // and replace connections whenever they like) only opens it: a database deleted under
        // the daemon is never silently re-created empty by a reconnect.
        let (options, checkpoints) = if let Some(file) = &file {
            sqlx::ConnectOptions::connect(&options)
                .await?
                .close()
                .await?;
            let checkpoints = Checkpoints::new(checkpoint_pages(file.size()));
            let options = options.create_if_missing(false);
            // The checkpointer reads only the WAL and its index: a small page cache.
            checkpoints.start(options.clone().pragma("cache_size", "-256"));
            (options, Some(checkpoints))
        } else {
            (options, None)
        };
        // The readers' page cache (an in-memory database's pool is its writer: it keeps 32 MiB).
        let read_options = match &file {
            Some(_) => options.clone().pragma(
                "cache_size",
                format!("-{}", READ_CACHE_KIB.load(Ordering::Relaxed)),
            ),
            None => options.clone(),
        };
        let pool = pool_of(4).connect_with(read_options).await?;
        // An in-memory database is one per connection: there the writer is the pool.
        let writer = match checkpoints {
            // Every writer connection (one replaced after a failed transaction too) commits
            // under the store's checkpoints.
            Some(checkpoints) => {
                pool_of(1)
                    .after_connect(move |conn, _| Box::pin(checkpoints.watch(conn)))
                    .connect_with(options)
                    .await?
            }
            None => pool.clone(),
        };
        let file = file.map(|f| f.opened());
        Ok(Self {
            pool,
            writer,
            file,
            checkpoints,
            row_checks_off,
        })
    }

    /// The database's id (see [`identity`]): SQLite's `application_id` header field, set to a
    /// random value the first time. Kept in the file's header, so no table row (nor `db
    /// copy`) carries it: a copy is another database.
    async fn database_id(&self) -> Result<String, StoreError> {
        let mut conn = self.pool.acquire().await?;
        let mut id: i32 = sqlx::query_scalar("PRAGMA application_id")
            .fetch_one(&mut *conn)
            .await?;
        if id == 0 {
            let fresh = identity::new_id();
            sqlx::query(sqlx::AssertSqlSafe(format!(
                "PRAGMA application_id = {fresh}"
            )))
            .execute(&mut *conn)
            .await?;
            id = fresh;
        }
        Ok(format!("{:08x}", id as u32))
    }

    /// Nothing to fold: SQLite's counting triggers (migration 0018) keep one row per key.
    async fn fold_counts(&self) -> Result<(), StoreError> {
        Ok(())
    }

    /// The one writer: a `BEGIN IMMEDIATE` transaction (it waits for the write lock up front
    /// instead of failing on upgrade).
    async fn write(&self) -> Result<sqlx::Transaction<'static, sqlx::Sqlite>, StoreError> {
        Ok(self.writer.begin_with("BEGIN IMMEDIATE").await?)
    }
}

impl Store for SqliteStore {
    async fn migrate(&self) -> Result<(), StoreError> {
        migrator(MIGRATIONS).run(&self.pool).await?;
        if let Some(file) = &self.file {
            file.bind_marker(&self.database_id().await?)?;
        }
        Ok(())
    }

    async fn check_storage(&self) -> Result<(), StoreError> {
        if let Some(file) = &self.file {
            file.still_there()?;
            if let Some(checkpoints) = self.checkpoints {
                checkpoints.set_threshold(checkpoint_pages(file.size()));
            }
        }
        self.ping().await
    }

    async fn enrol_and_mark(
        &self,
        enrolments: &[NewEnrolment],
        unmatched: &[UnmatchedLead],
        now: DateTime<Utc>,
    ) -> Result<usize, StoreError> {
        if enrolments.is_empty() && unmatched.is_empty() {
            return Ok(0);
        }
        let mut tx = self.write().await?;
        let enrolled = if enrolments.is_empty() {
            0
        } else {
            self.enrol_in(&mut tx, enrolments, now).await?
        };
        unmatched::mark_in(&mut tx, unmatched).await?;
        tx.commit().await?;
        Ok(enrolled as usize)
    }

    common_store_methods!();
}

common_write_steps!(sqlx::SqliteConnection);
reply_write_steps!(sqlx::SqliteConnection);

#[cfg(test)]
mod tests {
    use super::checkpoint_pages;

    #[test]
    fn the_checkpoint_follows_the_database_between_sqlites_default_and_160_mib() {
        for (bytes, pages) in [
            (0, 1_000),
            (1 << 20, 1_000),
            (4_096_000, 1_000),
            (4_100_000, 1_000),
            (24 << 20, 6_144),
            (136_892_416, 33_421),
            (40_000 * 4096, 40_000),
            (1_400_000_000, 40_000),
            (u64::MAX, 40_000),
        ] {
            assert_eq!(checkpoint_pages(bytes), pages, "{bytes} bytes");
        }
    }
}
