//! The WAL's checkpoints, run beside the writer instead of inside its commits.
//!
//! SQLite's automatic checkpoint runs inside the commit that takes the WAL past its threshold:
//! the writer copies the WAL's pages back into the database file and waits for both files'
//! `fsync` before it can start its next transaction. In a 1M first enrolment pass that was
//! 0.2–1.2 s after each large write, ~3 s of the writer's 12 (the `fsync`s alone 1.3 s).
//!
//! Here the writer's connection only reports each commit's WAL size (`sqlite3_wal_hook`, the
//! hook SQLite's own automatic checkpoint uses); past the threshold it wakes a checkpointer
//! task with a connection of its own, which runs `PRAGMA wal_checkpoint(PASSIVE)` while the
//! writer goes on. In WAL mode one checkpoint and one writer run at once: a passive
//! checkpoint copies the frames committed before it started and never waits for the writer,
//! nor the writer for it. The next write after a complete checkpoint starts the WAL again
//! from its beginning (and cuts the file back to `journal_size_limit`), as before.
//!
//! Should the checkpointer fall behind (the WAL at twice the threshold), the writer
//! checkpoints in its commit as SQLite would have, so the WAL stays within bounds.
//!
//! Durability is unchanged: with `synchronous = NORMAL` a commit is in the WAL, and the WAL
//! is synced by each checkpoint, whichever connection runs it.

use std::ffi::{c_char, c_int, c_void};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use libsqlite3_sys::{
    SQLITE_CHECKPOINT_PASSIVE, SQLITE_OK, sqlite3, sqlite3_wal_checkpoint_v2, sqlite3_wal_hook,
};
use sqlx::sqlite::SqliteConnectOptions;
use sqlx::{ConnectOptions as _, Connection as _, SqliteConnection};
use tokio::sync::Notify;
use tokio::task::JoinHandle;

use crate::store::StoreError;

/// One database file's checkpoints: the threshold (WAL pages), the checkpointer's wake-up,
/// and what was done, for the tests.
pub(super) struct Checkpoints {
    threshold: AtomicU64,
    wake: Notify,
    closing: AtomicBool,
    task: Mutex<Option<JoinHandle<()>>>,
    /// Checkpoints the checkpointer ran, and those the writer ran in a commit.
    beside: AtomicU64,
    in_commit: AtomicU64,
}

impl Checkpoints {
    /// The checkpoints of one store, kept for the life of the process: every writer
    /// connection's hook points at them, and SQLite gives a hook no way to let go of its
    /// argument (a few dozen bytes per store opened).
    pub(super) fn new(threshold: u64) -> &'static Self {
        Box::leak(Box::new(Self {
            threshold: AtomicU64::new(threshold),
            wake: Notify::new(),
            closing: AtomicBool::new(false),
            task: Mutex::new(None),
            beside: AtomicU64::new(0),
            in_commit: AtomicU64::new(0),
        }))
    }

    pub(super) fn threshold(&self) -> u64 {
        self.threshold.load(Ordering::Relaxed)
    }

    pub(super) fn set_threshold(&self, pages: u64) {
        self.threshold.store(pages, Ordering::Relaxed);
    }

    /// (checkpoints run beside the writer, checkpoints the writer ran in its commits).
    pub(super) fn done(&self) -> (u64, u64) {
        (
            self.beside.load(Ordering::Relaxed),
            self.in_commit.load(Ordering::Relaxed),
        )
    }

    /// Starts the checkpointer (connecting with `options` when first woken).
    pub(super) fn start(&'static self, options: SqliteConnectOptions) {
        let task = tokio::spawn(self.run(options));
        *self.task.lock().unwrap_or_else(|e| e.into_inner()) = Some(task);
    }

    async fn run(&'static self, options: SqliteConnectOptions) {
        let mut conn: Option<SqliteConnection> = None;
        loop {
            self.wake.notified().await;
            if self.closing.load(Ordering::SeqCst) {
                break;
            }
            if let Err(e) = self.checkpoint(&mut conn, &options).await {
                // The writer's own checkpoint (at twice the threshold) keeps the WAL bounded.
                tracing::warn!(error = %e, "background WAL checkpoint failed");
                conn = None;
            }
        }
        if let Some(conn) = conn {
            let _ = conn.close().await;
        }
    }

    async fn checkpoint(
        &self,
        conn: &mut Option<SqliteConnection>,
        options: &SqliteConnectOptions,
    ) -> Result<(), StoreError> {
        if conn.is_none() {
            *conn = Some(options.connect().await?);
        }
        if let Some(conn) = conn {
            sqlx::query("PRAGMA wal_checkpoint(PASSIVE)")
                .execute(&mut *conn)
                .await?;
            self.beside.fetch_add(1, Ordering::Relaxed);
        }
        Ok(())
    }

    /// Stops the checkpointer (waiting for a checkpoint under way): before the pools close,
    /// so that the last connection's own checkpoint finds nothing running.
    pub(super) async fn stop(&self) {
        self.closing.store(true, Ordering::SeqCst);
        self.wake.notify_one();
        let task = self.task.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(task) = task {
            let _ = task.await;
        }
    }

    /// Puts the writer connection `conn`'s commits under these checkpoints (in place of
    /// SQLite's automatic checkpoint, which the hook replaces).
    pub(super) async fn watch(
        &'static self,
        conn: &mut SqliteConnection,
    ) -> Result<(), sqlx::Error> {
        let mut handle = conn.lock_handle().await?;
        let db = handle.as_raw_handle();
        install(db.as_ptr(), self);
        Ok(())
    }
}

#[allow(unsafe_code)]
fn install(db: *mut sqlite3, checkpoints: &'static Checkpoints) {
    let arg = checkpoints as *const Checkpoints as *mut c_void;
    // SAFETY: `db` comes from a locked handle (`lock_handle`), which keeps the connection's
    // worker thread off it for the call; `arg` points at a `Checkpoints` that is never freed.
    unsafe {
        sqlite3_wal_hook(db, Some(committed), arg);
    }
}

/// SQLite's call after each commit on a watched connection, with the WAL's size in frames
/// (pages), inside the commit on the writer's thread: it only wakes the checkpointer, or
/// checkpoints here when the WAL is twice the threshold (what SQLite's own hook does at the
/// threshold). Returns `SQLITE_OK`: the commit has happened whatever this does.
#[allow(unsafe_code)]
unsafe extern "C" fn committed(
    arg: *mut c_void,
    db: *mut sqlite3,
    name: *const c_char,
    frames: c_int,
) -> c_int {
    // SAFETY: `arg` is the `&'static Checkpoints` given to `sqlite3_wal_hook` in `install`.
    let checkpoints = unsafe { &*(arg as *const Checkpoints) };
    let frames = u64::try_from(frames).unwrap_or(0);
    let threshold = checkpoints.threshold();
    if frames >= threshold.saturating_mul(2) {
        // SAFETY: SQLite's own hook calls the same with the same `db` and schema name; a
        // checkpoint running beside makes it return SQLITE_BUSY at once, which is fine.
        let rc = unsafe {
            sqlite3_wal_checkpoint_v2(
                db,
                name,
                SQLITE_CHECKPOINT_PASSIVE,
                std::ptr::null_mut(),
                std::ptr::null_mut(),
            )
        };
        if rc == SQLITE_OK {
            checkpoints.in_commit.fetch_add(1, Ordering::Relaxed);
        }
    } else if frames >= threshold {
        checkpoints.wake.notify_one();
    }
    SQLITE_OK
}
