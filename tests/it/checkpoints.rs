//! SQLite's WAL checkpoints: past a threshold that follows the database's size, run beside
//! the writer by a checkpointer of the store's own, not inside the writer's commit; in the
//! commit only when the WAL reaches twice the threshold (`src/store/sqlite/checkpoint.rs`).

use std::time::Duration;

use rewarm::domain::email::EmailAddress;
use rewarm::domain::lead::NewLead;
use rewarm::store::sqlite::SqliteStore;
use rewarm::store::{LeadStore as _, Store};
use sqlx::Connection as _;

use crate::scale::t0;
use crate::support::db::TestDatabase;

/// `n` leads from `from` on, each with a company name long enough to fill pages quickly.
fn leads(from: usize, n: usize) -> Vec<NewLead> {
    (from..from + n)
        .map(|i| NewLead {
            email: Some(EmailAddress::parse(&format!("grown{i}@example.com")).expect("email")),
            company: Some(format!("A company with a long enough name, number {i}")),
            ..Default::default()
        })
        .collect()
}

fn path(db: &TestDatabase) -> String {
    db.url().trim_start_matches("sqlite://").to_string()
}

/// Frames (pages) in the WAL file of the database at `path` (its header is 32 bytes, each
/// frame's 24 before the page).
fn wal_frames(path: &str) -> u64 {
    let len = std::fs::metadata(format!("{path}-wal")).map_or(0, |m| m.len());
    len.saturating_sub(32) / (4096 + 24)
}

/// A daemon started on a small database checkpoints every 1,000 WAL pages (SQLite's default);
/// once the file has grown, its next tick's storage check sets the threshold the rule gives
/// the new size (as many pages as the file, at most 40,000), as a restart would. SQLite's own
/// automatic checkpoint of the writer is off (`wal_autocheckpoint` reads 0): the store's
/// checkpointer runs them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_wal_checkpoint_follows_the_database_as_it_grows_on_sqlite() {
    let db = TestDatabase::sqlite();
    let store = SqliteStore::connect(db.url()).await.expect("open");
    store.migrate().await.expect("migrate");
    assert_eq!(
        store.writer_checkpoint_pages().await.expect("pragma"),
        (Some(1_000), 0)
    );
    store
        .upsert_leads(&leads(0, 12_000), "test", t0())
        .await
        .expect("upsert");
    let mut conn = sqlx::SqliteConnection::connect(db.url())
        .await
        .expect("connect");
    // The store's checkpointer may be at it: a checkpoint at a time (busy: try again).
    for _ in 0..100 {
        let (busy, _, _): (i64, i64, i64) = sqlx::query_as("PRAGMA wal_checkpoint(TRUNCATE)")
            .fetch_one(&mut conn)
            .await
            .expect("checkpoint");
        if busy == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let _ = conn.close().await;
    let pages = std::fs::metadata(path(&db)).expect("file").len() / 4096;
    assert!((1_001..40_000).contains(&pages), "{pages} pages");
    store.check_storage().await.expect("check");
    assert_eq!(
        store.writer_checkpoint_pages().await.expect("pragma"),
        (Some(pages), 0)
    );
    store.close().await;
}

/// Small commits take the WAL past the threshold: the commit that does only wakes the
/// checkpointer, which checkpoints beside the writer; no commit checkpoints. Every lead is
/// there after the store is closed and opened again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn past_the_threshold_the_checkpoint_runs_beside_the_writer() {
    let db = TestDatabase::sqlite();
    let store = SqliteStore::connect(db.url()).await.expect("open");
    store.migrate().await.expect("migrate");
    let (threshold, _) = store.writer_checkpoint_pages().await.expect("pragma");
    let threshold = threshold.expect("a file's threshold");
    let mut written = 0;
    while wal_frames(&path(&db)) < threshold {
        assert_eq!(store.checkpoints_done(), (0, 0), "before the threshold");
        store
            .upsert_leads(&leads(written, 200), "test", t0())
            .await
            .expect("upsert");
        written += 200;
        assert!(written < 100_000, "the WAL never reached {threshold} pages");
    }
    let frames = wal_frames(&path(&db));
    assert!(frames < 2 * threshold, "one commit of {frames} frames");
    // The checkpointer runs on its own: wait for it (never more than a few seconds).
    let mut waited = 0;
    while store.checkpoints_done().0 == 0 {
        assert!(waited < 300, "no checkpoint beside the writer after 30 s");
        tokio::time::sleep(Duration::from_millis(100)).await;
        waited += 1;
    }
    assert_eq!(store.checkpoints_done().1, 0, "a commit checkpointed");
    store.close().await;

    let mut conn = sqlx::SqliteConnection::connect(db.url())
        .await
        .expect("reopen");
    let leads: i64 = sqlx::query_scalar("SELECT count(*) FROM leads")
        .fetch_one(&mut conn)
        .await
        .expect("count");
    assert_eq!(leads, written as i64);
    let _ = conn.close().await;
}

/// One commit that takes the WAL to twice the threshold checkpoints in that commit, as
/// SQLite's own automatic checkpoint would have at the threshold: the WAL stays bounded even
/// if the checkpointer falls behind.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_commit_twice_the_threshold_checkpoints_itself() {
    let db = TestDatabase::sqlite();
    let store = SqliteStore::connect(db.url()).await.expect("open");
    store.migrate().await.expect("migrate");
    store
        .upsert_leads(&leads(0, 30_000), "test", t0())
        .await
        .expect("upsert");
    let frames = wal_frames(&path(&db));
    assert!(frames >= 2_000, "the write was {frames} frames");
    assert!(
        store.checkpoints_done().1 >= 1,
        "{:?}",
        store.checkpoints_done()
    );
    store.close().await;
}
