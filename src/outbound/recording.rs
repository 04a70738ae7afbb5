//! Known outcomes are never thrown away: a [`Recorder`] writes each wave's outcomes and, when
//! the database refuses (connection lost, database restarted, disk full, lock timeout),
//! keeps them in memory and tries again with backoff until they are written — also during
//! shutdown, until the shutdown's `give_up` moment. A lost PostgreSQL connection is
//! replaced by the pool on the next try; a SQLite connection left inside a failed
//! transaction is closed, not reused (`store::sqlite`).
//!
//! Storage faults are reported to [`health`](crate::health) as `Component::Storage` with a
//! short reason ([`storage_reason`]): `/readyz` answers 503 with it, and the log says so once
//! when the fault starts and once when it clears ([`storage_failed`], [`storage_ok`]).

use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::health::{Component, Fault};
use crate::outbound::shutdown::Shutdown;
use crate::store::{RecordedOutcome, Store, StoreError};

/// The first wait after a failed write; it doubles up to [`MAX_BACKOFF`].
const FIRST_BACKOFF: Duration = Duration::from_millis(50);
const MAX_BACKOFF: Duration = Duration::from_secs(5);

/// Writes outcomes for one worker, retrying until they are written or the shutdown gives up.
pub struct Recorder<'a> {
    worker: &'a str,
    shutdown: &'a Shutdown,
}

impl<'a> Recorder<'a> {
    pub fn new(worker: &'a str, shutdown: &'a Shutdown) -> Recorder<'a> {
        Recorder { worker, shutdown }
    }

    /// Records `outcomes` at `now`; on failure waits (50 ms, doubling to 5 s) and tries
    /// again. Returns the last error only once the shutdown gave up.
    pub async fn record<S: Store>(
        &self,
        store: &S,
        outcomes: &[RecordedOutcome],
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        if outcomes.is_empty() {
            return Ok(());
        }
        let give_up = &self.shutdown.give_up;
        retry("record outcomes", now, give_up, || {
            store.record_outcomes(outcomes, self.worker, now)
        })
        .await
    }

    /// Marks `ids` started at `at` (see `QueueStore::mark_started`), retrying like
    /// [`Recorder::record`] — until the shutdown's abort: what could not be marked by then
    /// is not sent (nothing is returned for it) and goes back to due when its lease expires.
    /// Marking again after a reply was lost is safe: a row already marked at `at` by this
    /// worker is returned again.
    pub async fn mark_started<S: Store>(
        &self,
        store: &S,
        ids: &[i64],
        at: DateTime<Utc>,
    ) -> Result<Vec<i64>, StoreError> {
        let abort = &self.shutdown.abort;
        match retry("mark started", at, abort, || {
            store.mark_started(ids, self.worker, at)
        })
        .await
        {
            Ok(started) => Ok(started),
            Err(_) if abort.is_cancelled() => Ok(Vec::new()),
            Err(e) => Err(e),
        }
    }
}

impl Recorder<'_> {
    /// Records `outcomes` (the wave just sent) and marks `ids` (the next wave) started, in one
    /// write ([`Store::record_and_start`]), retrying until the shutdown's abort. If the abort
    /// comes first, nothing is marked (nor sent) and the outcomes are still written, retried
    /// until the shutdown gives up, like [`Recorder::record`].
    pub async fn record_and_start<S: Store>(
        &self,
        store: &S,
        outcomes: &[RecordedOutcome],
        ids: &[i64],
        now: DateTime<Utc>,
        at: DateTime<Utc>,
    ) -> Result<Vec<i64>, StoreError> {
        if outcomes.is_empty() {
            return self.mark_started(store, ids, at).await;
        }
        if ids.is_empty() {
            self.record(store, outcomes, now).await?;
            return Ok(Vec::new());
        }
        let abort = &self.shutdown.abort;
        match retry("record outcomes, mark started", now, abort, || {
            store.record_and_start(outcomes, ids, self.worker, now, at)
        })
        .await
        {
            Ok(started) => Ok(started),
            // `retry` gives up only at the abort: nothing more starts, the outcomes still go in.
            Err(_) => {
                self.record(store, outcomes, now).await?;
                Ok(Vec::new())
            }
        }
    }
}

/// Runs `write` until it succeeds, waiting 50 ms (doubling to 5 s) between tries and
/// reporting the storage fault; gives up (the last error) once `until` is cancelled.
async fn retry<T, F, Fut>(
    what: &str,
    now: DateTime<Utc>,
    until: &tokio_util::sync::CancellationToken,
    mut write: F,
) -> Result<T, StoreError>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, StoreError>>,
{
    let mut wait = FIRST_BACKOFF;
    let mut tries = 0u32;
    loop {
        match write().await {
            Ok(done) => {
                if tries > 0 {
                    storage_ok();
                    tracing::info!(
                        what,
                        tries = tries + 1,
                        "Written after the database came back"
                    );
                }
                return Ok(done);
            }
            Err(e) => {
                tries += 1;
                storage_failed(&e, now);
                if until.is_cancelled() {
                    tracing::error!(what, error = %e, "Giving up at the shutdown deadline; lease expiry repairs these rows");
                    return Err(e);
                }
                tracing::debug!(what, error = %e, tries, wait = ?wait, "Write failed; kept in memory, trying again");
                tokio::select! {
                    _ = tokio::time::sleep(wait) => {}
                    _ = until.cancelled() => {}
                }
                wait = (wait * 2).min(MAX_BACKOFF);
            }
        }
    }
}

/// A short, stable label for a storage error: `disk_full`, `read_only`, `database_gone`,
/// `unreachable`, or `error`. Read from the database's error code (SQLite's primary result
/// code, PostgreSQL's SQLSTATE) or the kind of failure, never the message text.
pub fn storage_reason(e: &StoreError) -> &'static str {
    let e = match e {
        StoreError::Database(e) => e,
        StoreError::Gone(_) => return "database_gone",
        _ => return "error",
    };
    match e {
        sqlx::Error::Database(db) => match db.code().as_deref() {
            Some(code) => match code.parse::<i32>() {
                // SQLite: the primary code is the low byte of the extended one.
                Ok(n) => sqlite_reason(n & 0xff),
                Err(_) => pg_reason(code),
            },
            None => "error",
        },
        sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::WorkerCrashed => "unreachable",
        _ => "error",
    }
}

fn sqlite_reason(primary: i32) -> &'static str {
    match primary {
        13 => "disk_full",                    // SQLITE_FULL
        8 => "read_only",                     // SQLITE_READONLY
        10 | 11 | 14 | 26 => "database_gone", // IOERR, CORRUPT, CANTOPEN, NOTADB
        _ => "error",
    }
}

fn pg_reason(sqlstate: &str) -> &'static str {
    match sqlstate {
        "53100" => "disk_full",
        "25006" => "read_only",
        "3D000" => "database_gone",
        s if s.starts_with("08") || s.starts_with("57P") => "unreachable",
        _ => "error",
    }
}

/// Reports a storage fault (logged at ERROR when it starts or its reason changes).
pub fn storage_failed(e: &StoreError, now: DateTime<Utc>) {
    storage_fault(storage_reason(e), &e.to_string(), now);
}

/// Reports a storage fault by reason and detail (see [`storage_failed`]).
pub fn storage_fault(reason: &str, detail: &str, now: DateTime<Utc>) {
    let health = crate::health::global();
    let previous = health.fault(Component::Storage);
    let since = match &previous {
        Some(f) if f.reason == reason => f.since,
        _ => now,
    };
    if previous.as_ref().is_none_or(|f| f.reason != reason) {
        tracing::error!(reason, error = %detail, "Storage fault: claiming stopped until the database works again");
    }
    health.set(
        Component::Storage,
        Fault {
            reason: reason.to_string(),
            detail: detail.to_string(),
            since,
            next_try: None,
        },
    );
}

/// Clears the storage fault, if any (logged once, when it clears).
pub fn storage_ok() {
    if let Some(f) = crate::health::global().clear(Component::Storage) {
        tracing::warn!(reason = %f.reason, since = %f.since, "Storage works again: claiming resumes");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sqlite_codes_name_their_fault() {
        for (code, reason) in [
            (13, "disk_full"),
            (8, "read_only"),
            (8 | (1 << 8), "read_only"), // SQLITE_READONLY_RECOVERY
            (10 | (13 << 8), "database_gone"),
            (14, "database_gone"),
            (26, "database_gone"),
            (5, "error"), // SQLITE_BUSY
        ] {
            assert_eq!(sqlite_reason(code & 0xff), reason, "code {code}");
        }
    }

    #[test]
    fn postgres_states_name_their_fault() {
        for (state, reason) in [
            ("53100", "disk_full"),
            ("25006", "read_only"),
            ("3D000", "database_gone"),
            ("57P01", "unreachable"),
            ("08006", "unreachable"),
            ("23505", "error"),
        ] {
            assert_eq!(pg_reason(state), reason, "{state}");
        }
    }

    #[test]
    fn pool_and_io_failures_are_unreachable_and_others_are_errors() {
        let io = StoreError::Database(sqlx::Error::Io(std::io::Error::other("reset")));
        assert_eq!(storage_reason(&io), "unreachable");
        let timed_out = StoreError::Database(sqlx::Error::PoolTimedOut);
        assert_eq!(storage_reason(&timed_out), "unreachable");
        let corrupt = StoreError::Corrupt {
            table: "leads",
            id: 1,
            reason: "bad".into(),
        };
        assert_eq!(storage_reason(&corrupt), "error");
    }
}
