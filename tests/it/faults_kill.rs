//! Crashes and a flaky database cost at most what was on the wire (issue 9 parts 1 and 2):
//! real processes of the built binary, the test SMTP server, a SQLite file or PostgreSQL.
//!
//! - `kill -9` at seeded random moments during sends, then restarts (the same worker id:
//!   claims never started are due again at once; started ones at lease expiry): prints
//!   sent, duplicates (0), write-offs (≤ connections × kills) and lost (0). The default is
//!   5 kills over 1,000 sends; `REWARM_FAULT_LONG=1` runs 50 kills over 10,000 sends, and
//!   `REWARM_FAULT_SEED=N` picks the moments.
//! - PostgreSQL: the daemon's connections killed with `pg_terminate_backend` 10 times during
//!   sends → 0 write-offs, 0 duplicates, nothing lost: known outcomes are kept and retried.

use std::time::{Duration, Instant};

use rand::{Rng as _, SeedableRng as _};

use crate::support::db::with_postgres;
use crate::support::faults::{self, SERIAL, Tally};
use crate::support::smtp_server::TestSmtpServer;

const POOL: usize = 4;

/// (kills, sends): CI's default, or the long run.
fn scale() -> (usize, usize) {
    if std::env::var("REWARM_FAULT_LONG").is_ok_and(|v| v == "1") {
        (50, 10_000)
    } else {
        (5, 1_000)
    }
}

fn seed() -> u64 {
    std::env::var("REWARM_FAULT_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(9)
}

/// Runs the kill scenario on `url`; returns the final tally.
async fn kill_at_random_moments(url: &str, backend: &str) -> Tally {
    let (kills, n) = scale();
    let seed = seed();
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let dir = tempfile::tempdir().expect("temp dir");
    let server = TestSmtpServer::start().await;
    let config = faults::write(
        &faults::config(url, server.port(), POOL, faults::free_port()),
        dir.path(),
    );
    faults::seed(url, &config, n).await;
    let started = Instant::now();
    // Each kill lands after a random share of what is left has arrived.
    let per_run = n / (kills + 1);
    for k in 0..kills {
        let mut daemon = faults::start_daemon(
            &config,
            &format!("run-{k}"),
            &faults::now_after(k as i64),
            dir.path(),
        );
        let target = server.count() + rng.random_range(per_run / 4..=per_run);
        let deadline = Instant::now() + Duration::from_secs(120);
        while server.count() < target && Instant::now() < deadline {
            daemon.assert_alive();
            tokio::time::sleep(Duration::from_millis(rng.random_range(1..=5))).await;
        }
        daemon.child.kill().expect("kill -9");
        let _ = daemon.child.wait();
    }
    let mut last = faults::start_daemon(
        &config,
        "final",
        &faults::now_after(kills as i64),
        dir.path(),
    );
    let tally = faults::wait_until_done(url, &server, n, Duration::from_secs(300), &mut last).await;
    let exit = last.terminate(Duration::from_secs(30)).await;
    assert!(exit.success(), "{}", last.log_tail());
    eprintln!(
        "kill -9 ({backend}, seed {seed}): {kills} kills over {n} sends, {POOL} connections, in {:.1?}: {}; \
         bound on write-offs: {} (connections × kills)",
        started.elapsed(),
        tally.line(),
        POOL * kills
    );
    assert_eq!(
        tally.pending, 0,
        "every lead got its step or is listed unknown"
    );
    assert_eq!(tally.duplicates, 0, "nothing sent twice");
    assert_eq!(tally.lost, 0, "nothing lost");
    assert_eq!(tally.failed, 0);
    assert!(
        tally.written_off <= POOL * kills,
        "write-offs {} > connections × kills = {}",
        tally.written_off,
        POOL * kills
    );
    assert_eq!(tally.sent + tally.written_off, n);
    tally
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_at_random_moments_writes_off_at_most_one_per_connection_on_sqlite() {
    let _serial = SERIAL.lock().await;
    let dir = tempfile::tempdir().expect("temp dir");
    let url = format!("sqlite://{}", dir.path().join("rewarm.db").display());
    kill_at_random_moments(&url, "sqlite").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_at_random_moments_writes_off_at_most_one_per_connection_on_postgres() {
    let _serial = SERIAL.lock().await;
    with_postgres("kill_9_at_random_moments_on_postgres", |url| async move {
        kill_at_random_moments(&url, "postgres").await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_connections_killed_during_sends_write_nothing_off() {
    let _serial = SERIAL.lock().await;
    with_postgres("postgres_connections_killed_during_sends", |url| async move {
        const N: usize = 2000;
        const TERMINATIONS: usize = 10;
        let dir = tempfile::tempdir().expect("temp dir");
        let server = TestSmtpServer::start().await;
        let config = faults::write(
            &faults::config(&url, server.port(), POOL, faults::free_port()),
            dir.path(),
        );
        faults::seed(&url, &config, N).await;
        let mut daemon = faults::start_daemon(&config, "daemon", faults::T0, dir.path());
        let admin = sqlx::PgPool::connect(&url).await.expect("admin connection");
        let mut terminated = 0i64;
        let mut rounds = 0;
        let step = N / (TERMINATIONS + 2);
        for k in 1..=TERMINATIONS {
            assert!(
                server.wait_for_count(k * step, Duration::from_secs(120)).await,
                "sending stalled after {} of {N}:\n{}",
                server.count(),
                daemon.log_tail()
            );
            let n: Vec<bool> = sqlx::query_scalar(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity
                 WHERE datname = current_database() AND application_name = 'rewarm' AND pid <> pg_backend_pid()",
            )
            .fetch_all(&admin)
            .await
            .expect("terminate");
            terminated += n.iter().filter(|t| **t).count() as i64;
            rounds += 1;
        }
        let tally =
            faults::wait_until_done(&url, &server, N, Duration::from_secs(300), &mut daemon).await;
        let exit = daemon.terminate(Duration::from_secs(30)).await;
        assert!(exit.success(), "{}", daemon.log_tail());
        admin.close().await;
        eprintln!(
            "pg_terminate_backend {rounds} times ({terminated} connections) during {N} sends: {}",
            tally.line()
        );
        assert!(terminated >= TERMINATIONS as i64, "connections were killed");
        assert_eq!(
            (tally.written_off, tally.duplicates, tally.lost, tally.pending),
            (0, 0, 0, 0),
            "{}",
            daemon.log_tail()
        );
        assert_eq!(tally.sent, N);
    })
    .await;
}
