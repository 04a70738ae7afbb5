//! Bulk statements without the row triggers: a few set-based statements of one write
//! transaction run with the main schema's triggers off (`SQLITE_DBCONFIG_ENABLE_TRIGGER`, a
//! setting of the connection), and the statements around them do in bulk what those
//! triggers would have done row by row (the counters of migration 0018, the report's
//! recomputation queue of migration 0019).
//!
//! Why: a trigger runs as a sub-program once per row. A first enrolment of 700,000 leads ran
//! seven trigger programs per lead, among them four counter statements and three index
//! probes: a sixth of the writer's time. The same changes counted once per statement cost a
//! few milliseconds.
//!
//! Which triggers a bulk path replaces is written next to it, and `tests/it/bulk_triggers.rs`
//! holds the list of triggers of the tables it writes: a new trigger there fails that test
//! until the bulk paths are checked against it.
//!
//! The setting belongs to the connection, so it must never outlive the statements: it is
//! turned back on before the transaction commits, also when a statement failed; and the
//! connection it was turned off on is remembered in the store (`triggers_off`), so a write
//! dropped in between (its future cancelled) has its connection's triggers turned back on
//! when the pool takes the connection back, before anyone else can use it.

use std::ffi::c_int;
use std::ptr::NonNull;
use std::sync::atomic::{AtomicUsize, Ordering};

use libsqlite3_sys::{SQLITE_DBCONFIG_ENABLE_TRIGGER, SQLITE_OK, sqlite3, sqlite3_db_config};
use sqlx::SqliteConnection;

use crate::store::StoreError;

/// Turns the main schema's triggers of `conn` on or off, and records in `off` which
/// connection has them off (its handle's address; 0: none).
pub(super) async fn set_triggers(
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

/// For the pools' `after_release`: when `conn` is the connection left with its triggers off
/// (a write dropped mid-way), turns them back on. Costs nothing when no connection has them off.
pub(super) async fn restore_triggers(
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

/// Whether `conn` runs the main schema's triggers.
pub(super) async fn triggers_enabled(conn: &mut SqliteConnection) -> Result<bool, StoreError> {
    let mut handle = conn.lock_handle().await?;
    let mut enabled: c_int = -1;
    // -1 leaves the setting as it is and writes it to `enabled`.
    let rc = enable_trigger(handle.as_raw_handle(), -1, Some(&mut enabled));
    if rc != SQLITE_OK {
        return Err(sqlx::Error::Protocol(format!(
            "SQLite refused to report its trigger setting (code {rc})"
        ))
        .into());
    }
    Ok(enabled == 1)
}

fn address(db: NonNull<sqlite3>) -> usize {
    db.as_ptr() as usize
}

fn configure(db: NonNull<sqlite3>, on: bool) -> Result<(), sqlx::Error> {
    // Changing the setting expires the connection's prepared statements; SQLite prepares
    // each again at its next use.
    let rc = enable_trigger(db, c_int::from(on), None);
    if rc == SQLITE_OK {
        Ok(())
    } else {
        Err(sqlx::Error::Protocol(format!(
            "SQLite refused to turn its triggers {} (code {rc})",
            if on { "on" } else { "off" }
        )))
    }
}

/// `sqlite3_db_config(db, SQLITE_DBCONFIG_ENABLE_TRIGGER, value, out)`: 1 on, 0 off, -1
/// unchanged; the setting after the call goes to `out`.
#[allow(unsafe_code)]
fn enable_trigger(db: NonNull<sqlite3>, value: c_int, out: Option<&mut c_int>) -> c_int {
    let out = out.map_or(std::ptr::null_mut(), |out| out as *mut c_int);
    // SAFETY: `db` comes from a locked handle (`lock_handle`), which keeps the connection's
    // worker thread off it for the call; this option takes an int and an int pointer, which
    // may be null.
    unsafe { sqlite3_db_config(db.as_ptr(), SQLITE_DBCONFIG_ENABLE_TRIGGER, value, out) }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::Ordering;

    use super::*;
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
        assert!(triggers_enabled(&mut conn).await.expect("setting"));
        set_triggers(&mut conn, false, &store.triggers_off)
            .await
            .expect("off");
        assert!(!triggers_enabled(&mut conn).await.expect("setting"));
        assert_ne!(store.triggers_off.load(Ordering::SeqCst), 0);
        set_triggers(&mut conn, true, &store.triggers_off)
            .await
            .expect("on");
        assert!(triggers_enabled(&mut conn).await.expect("setting"));
        assert_eq!(store.triggers_off.load(Ordering::SeqCst), 0);
    }

    /// A write dropped between turning them off and on (its future cancelled) hands its
    /// connection back to the pool, which turns them on before anyone else gets it; another
    /// connection handed back meanwhile changes nothing.
    #[tokio::test]
    async fn a_connection_handed_back_with_its_triggers_off_gets_them_back() {
        let (_dir, store) = store().await;
        let mut conn = store.writer.acquire().await.expect("writer");
        set_triggers(&mut conn, false, &store.triggers_off)
            .await
            .expect("off");
        let reader = store.pool.acquire().await.expect("reader");
        drop(reader);
        store.pool.acquire().await.expect("reader again");
        assert_ne!(
            store.triggers_off.load(Ordering::SeqCst),
            0,
            "only the connection that turned them off clears the mark"
        );
        drop(conn);
        assert!(store.writer_runs_triggers().await.expect("setting"));
        assert_eq!(store.triggers_off.load(Ordering::SeqCst), 0);
    }
}
