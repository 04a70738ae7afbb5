//! Bulk statements without the row checks: a few set-based statements of one write
//! transaction run with the main schema's triggers and the foreign-key checks off
//! (`SQLITE_DBCONFIG_ENABLE_TRIGGER` and `SQLITE_DBCONFIG_ENABLE_FKEY`, settings of the
//! connection), and the statements around them do in bulk what those triggers would have
//! done row by row (the counters of migration 0018, the report's recomputation queue of
//! migration 0019).
//!
//! Why: a trigger runs as a sub-program once per row. A first enrolment of 700,000 leads ran
//! seven trigger programs per lead, among them four counter statements and three index
//! probes: a sixth of the writer's time. The same changes counted once per statement cost a
//! few milliseconds. A foreign-key check is a look-up of the parent row for every row
//! written: the enrolments and first deliveries, written in due order, looked up their
//! leads at random, 1.4 million look-ups into the largest table, a fifth to a third of the same
//! statements' time (`docs/performance.md`). A bulk path only writes rows whose parents its
//! own statements have just read or written in the same transaction (a join on the lead
//! still `new`, the enrolment just inserted), which is what the check would have asked.
//!
//! Which triggers a bulk path replaces is written next to it, and `tests/it/bulk_triggers.rs`
//! holds the list of triggers of the tables it writes: a new trigger there fails that test
//! until the bulk paths are checked against it.
//!
//! The settings belong to the connection, so they must never outlive the statements: they
//! are turned back on before the transaction commits, also when a statement failed; and the
//! connection they were turned off on is remembered in the store (`row_checks_off`), so a
//! write dropped in between (its future cancelled) has its connection's checks turned back
//! on when the pool takes the connection back, before anyone else can use it. (`PRAGMA
//! foreign_keys` is ignored inside a transaction; the connection setting it reads is not,
//! and with no deferred constraints in the schema there is no pending count to carry over.)

use std::ffi::c_int;
use std::ptr::NonNull;
use std::sync::atomic::{AtomicUsize, Ordering};

use libsqlite3_sys::{
    SQLITE_DBCONFIG_ENABLE_FKEY, SQLITE_DBCONFIG_ENABLE_TRIGGER, SQLITE_OK, sqlite3,
    sqlite3_db_config,
};
use sqlx::SqliteConnection;

use crate::store::StoreError;

/// The connection settings a bulk write turns off, and what each is called in an error.
const ROW_CHECKS: [(c_int, &str); 2] = [
    (SQLITE_DBCONFIG_ENABLE_TRIGGER, "triggers"),
    (SQLITE_DBCONFIG_ENABLE_FKEY, "foreign-key checks"),
];

/// Turns the main schema's triggers and the foreign-key checks of `conn` on or off, and
/// records in `off` which connection has them off (its handle's address; 0: none).
pub(super) async fn set_row_checks(
    conn: &mut SqliteConnection,
    on: bool,
    off: &AtomicUsize,
) -> Result<(), StoreError> {
    let mut handle = conn.lock_handle().await?;
    let db = handle.as_raw_handle();
    if !on {
        off.store(address(db), Ordering::SeqCst);
    }
    configure(db, on)?;
    if on {
        off.store(0, Ordering::SeqCst);
    }
    Ok(())
}

/// For the pools' `after_release`: when `conn` is the connection left with its checks off
/// (a write dropped mid-way), turns them back on. Costs nothing when no connection has them
/// off.
pub(super) async fn restore_row_checks(
    conn: &mut SqliteConnection,
    off: &AtomicUsize,
) -> Result<(), sqlx::Error> {
    if off.load(Ordering::SeqCst) == 0 {
        return Ok(());
    }
    let mut handle = conn.lock_handle().await?;
    let db = handle.as_raw_handle();
    if off.load(Ordering::SeqCst) == address(db) {
        configure(db, true)?;
        off.store(0, Ordering::SeqCst);
    }
    Ok(())
}

/// Whether `conn` runs the main schema's triggers and checks foreign keys (both; either
/// off is `false`).
pub(super) async fn row_checks_enabled(conn: &mut SqliteConnection) -> Result<bool, StoreError> {
    let mut handle = conn.lock_handle().await?;
    let db = handle.as_raw_handle();
    let mut all = true;
    for (op, what) in ROW_CHECKS {
        let mut enabled: c_int = -1;
        // -1 leaves the setting as it is and writes it to `enabled`.
        let rc = db_config(db, op, -1, Some(&mut enabled));
        if rc != SQLITE_OK {
            return Err(sqlx::Error::Protocol(format!(
                "SQLite refused to report its setting of {what} (code {rc})"
            ))
            .into());
        }
        all &= enabled == 1;
    }
    Ok(all)
}

fn address(db: NonNull<sqlite3>) -> usize {
    db.as_ptr() as usize
}

fn configure(db: NonNull<sqlite3>, on: bool) -> Result<(), sqlx::Error> {
    // Changing a setting expires the connection's prepared statements; SQLite prepares
    // each again at its next use.
    for (op, what) in ROW_CHECKS {
        let rc = db_config(db, op, c_int::from(on), None);
        if rc != SQLITE_OK {
            return Err(sqlx::Error::Protocol(format!(
                "SQLite refused to turn its {what} {} (code {rc})",
                if on { "on" } else { "off" }
            )));
        }
    }
    Ok(())
}

/// `sqlite3_db_config(db, op, value, out)` for an on/off option (`SQLITE_DBCONFIG_ENABLE_*`):
/// 1 on, 0 off, -1 unchanged; the setting after the call goes to `out`.
#[allow(unsafe_code)]
fn db_config(db: NonNull<sqlite3>, op: c_int, value: c_int, out: Option<&mut c_int>) -> c_int {
    let out = out.map_or(std::ptr::null_mut(), |out| out as *mut c_int);
    // SAFETY: `db` comes from a locked handle (`lock_handle`), which keeps the connection's
    // worker thread off it for the call; the on/off options take an int and an int pointer,
    // which may be null.
    unsafe { sqlite3_db_config(db.as_ptr(), op, value, out) }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::Ordering;

    use super::*;
    use crate::store::Store;
    use crate::store::sqlite::SqliteStore;

    async fn store() -> (tempfile::TempDir, SqliteStore) {
        let dir = tempfile::tempdir().expect("dir");
        let url = format!("sqlite://{}", dir.path().join("bulk.db").display());
        let store = SqliteStore::connect(&url).await.expect("open");
        (dir, store)
    }

    #[tokio::test]
    async fn triggers_turned_off_are_off_until_turned_on() {
        let (_dir, store) = store().await;
        let mut conn = store.writer.acquire().await.expect("writer");
        assert!(row_checks_enabled(&mut conn).await.expect("setting"));
        set_row_checks(&mut conn, false, &store.row_checks_off)
            .await
            .expect("off");
        assert!(!row_checks_enabled(&mut conn).await.expect("setting"));
        assert_ne!(store.row_checks_off.load(Ordering::SeqCst), 0);
        set_row_checks(&mut conn, true, &store.row_checks_off)
            .await
            .expect("on");
        assert!(row_checks_enabled(&mut conn).await.expect("setting"));
        assert_eq!(store.row_checks_off.load(Ordering::SeqCst), 0);
    }

    /// Foreign keys go unchecked only between turning the checks off and on again, inside the
    /// same transaction; the counters' triggers likewise.
    #[tokio::test]
    async fn foreign_keys_and_triggers_are_checked_again_once_turned_on() {
        let (_dir, store) = store().await;
        store.migrate().await.expect("migrate");
        let mut conn = store.writer.acquire().await.expect("writer");
        let orphan = |lead: i64| {
            sqlx::query(
                "INSERT INTO enrolments (lead_id, campaign, segment, state, enrolled_at)
                 VALUES ($1, 'c', 's', 'active', 0)",
            )
            .bind(lead)
        };
        let counted = "SELECT coalesce(sum(n), 0) FROM state_counts WHERE part = 'enrolments'";
        sqlx::query("BEGIN")
            .execute(&mut *conn)
            .await
            .expect("begin");
        set_row_checks(&mut conn, false, &store.row_checks_off)
            .await
            .expect("off");
        orphan(999).execute(&mut *conn).await.expect("unchecked");
        let n: i64 = sqlx::query_scalar(counted)
            .fetch_one(&mut *conn)
            .await
            .expect("n");
        assert_eq!(n, 0, "no counter trigger ran");
        set_row_checks(&mut conn, true, &store.row_checks_off)
            .await
            .expect("on");
        let err = orphan(998).execute(&mut *conn).await.expect_err("checked");
        assert!(err.to_string().contains("FOREIGN KEY"), "{err}");
        sqlx::query("ROLLBACK")
            .execute(&mut *conn)
            .await
            .expect("rollback");
        sqlx::query(
            "INSERT INTO leads (email, created_at, updated_at) VALUES ('a@b.example', 0, 0)",
        )
        .execute(&mut *conn)
        .await
        .expect("lead");
        orphan(1)
            .execute(&mut *conn)
            .await
            .expect("a lead's enrolment");
        let n: i64 = sqlx::query_scalar(counted)
            .fetch_one(&mut *conn)
            .await
            .expect("n");
        assert_eq!(n, 1, "the counter trigger ran");
    }

    /// A write dropped between turning them off and on (its future cancelled) hands its
    /// connection back to the pool, which turns them on before anyone else gets it; another
    /// connection handed back meanwhile changes nothing.
    #[tokio::test]
    async fn a_connection_handed_back_with_its_row_checks_off_gets_them_back() {
        let (_dir, store) = store().await;
        let mut conn = store.writer.acquire().await.expect("writer");
        set_row_checks(&mut conn, false, &store.row_checks_off)
            .await
            .expect("off");
        let reader = store.pool.acquire().await.expect("reader");
        drop(reader);
        store.pool.acquire().await.expect("reader again");
        assert_ne!(
            store.row_checks_off.load(Ordering::SeqCst),
            0,
            "only the connection that turned them off clears the mark"
        );
        drop(conn);
        assert!(store.writer_runs_row_checks().await.expect("setting"));
        assert_eq!(store.row_checks_off.load(Ordering::SeqCst), 0);
    }
}
