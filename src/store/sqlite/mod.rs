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
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::{Value, json};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};

use self::outbox::ENQUEUE;
use self::suppression::{SUPPRESS_INSERT, SUPPRESS_REACH};
use super::batch::*;
use super::dialect::Time;
use super::rows::*;
use super::shared::{self as sql, migrator};
use super::*;

mod copy;
mod handoff;
mod inbound;
mod kv;
mod leads;
mod outbox;
mod plan;
mod queue;
mod report;
mod suppression;
mod unmatched;

#[derive(Clone)]
pub struct SqliteStore {
    pool: SqlitePool,
}

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
        7,
        "provider_events",
        include_str!("../../../migrations/sqlite/0007_provider_events.sql"),
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
];

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

impl SqliteStore {
    /// Closes the connections (waiting for those in use); every later call fails.
    pub async fn close(&self) {
        self.pool.close().await;
    }

    /// Opens (creating if missing) the database at `url` (`sqlite://FILE` or `sqlite::memory:`).
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        let options = SqliteConnectOptions::from_str(url)?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .busy_timeout(Duration::from_secs(30))
            .foreign_keys(true)
            // SQLite's default 2 MB page cache put a third of a 20k send pass in the kernel,
            // re-reading pages: 32 MiB per connection (filled only as pages are read), and
            // reads through a 256 MiB memory map instead of read(2).
            .pragma("cache_size", "-32768")
            .pragma("mmap_size", "268435456");
        let pool = SqlitePoolOptions::new()
            .max_connections(4)
            .connect_with(options)
            .await?;
        Ok(Self { pool })
    }

    /// The one writer: a `BEGIN IMMEDIATE` transaction (it waits for the write lock up front
    /// instead of failing on upgrade).
    async fn write(&self) -> Result<sqlx::Transaction<'static, sqlx::Sqlite>, StoreError> {
        Ok(self.pool.begin_with("BEGIN IMMEDIATE").await?)
    }
}

impl Store for SqliteStore {
    async fn migrate(&self) -> Result<(), StoreError> {
        migrator(MIGRATIONS).run(&self.pool).await?;
        Ok(())
    }

    common_store_methods!();
}

common_write_steps!(sqlx::SqliteConnection);
reply_write_steps!(sqlx::SqliteConnection);
