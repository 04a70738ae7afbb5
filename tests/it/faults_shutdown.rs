//! Shutdown has a deadline (issue 9 part 6) and `run --once` stops like the daemon (issue 12
//! part 8): real processes of the built binary, the test SMTP server, a SQLite file.
//!
//! - SIGTERM while the relay stalls every transaction at RCPT: the daemon exits within
//!   `scheduler.shutdown_grace` (plus its few seconds of recording); what was mid-transaction
//!   is `unknown` (at most one per connection; `scheduler.wave_depth` per connection when
//!   set), what never started is due again, nothing is left claimed; a later run sends the
//!   rest once. On PostgreSQL too, where two batches send at once (two lanes of half the
//!   depth each): the bound is the same.
//! - SIGTERM to `run --once` mid-pass: it claims nothing new, finishes and records what is
//!   on the wire, exits 0; nothing is left claimed, nothing lost.
//! - The unit's `TimeoutStopSec` outlasts the shipped grace plus the recording margin.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use crate::support::bin::{self, repo, stdout_of};
use crate::support::daemon::Daemon;
use crate::support::db::with_postgres;
use crate::support::faults::{self, SERIAL, T0, Tally};
use crate::support::smtp_server::TestSmtpServer;

const POOL: usize = 4;

fn count_states(states: &std::collections::HashMap<String, String>) -> BTreeMap<String, usize> {
    let mut out = BTreeMap::new();
    for s in states.values() {
        *out.entry(s.clone()).or_default() += 1;
    }
    out
}

/// `run --once --now NOW` to its end; the tally afterwards.
async fn drain_once(
    config: &std::path::Path,
    dir: &std::path::Path,
    url: &str,
    server: &TestSmtpServer,
    n: usize,
) -> Tally {
    let out = bin::rewarm(
        dir,
        &[
            "--config",
            &config.display().to_string(),
            "run",
            "--once",
            "--now",
            &faults::now_after(1),
        ],
    );
    stdout_of(&out);
    faults::tally(url, server, n).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_with_a_stalled_relay_exits_within_the_grace_and_records_every_outcome() {
    stalled_relay(1).await;
}

/// With `scheduler.wave_depth = 3` a wave is three deliveries per connection: what a stop
/// at the deadline writes off is still bounded, by the wave (3 per connection).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deeper_wave_writes_off_at_most_its_depth_per_connection() {
    stalled_relay(3).await;
}

/// On PostgreSQL two batches send at once, each in waves of half the depth (two lanes: one
/// records while the other is on the wire): what a stop writes off is still at most the
/// depth per connection, nothing is lost or sent twice.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_lanes_on_postgresql_write_off_at_most_the_depth_per_connection() {
    let _serial = SERIAL.lock().await;
    with_postgres("stalled_relay_lanes", |url| async move {
        let dir = tempfile::tempdir().expect("temp dir");
        stalled_relay_on(&url, dir.path(), 4).await;
    })
    .await;
}

async fn stalled_relay(depth: usize) {
    let _serial = SERIAL.lock().await;
    let dir = tempfile::tempdir().expect("temp dir");
    let url = format!("sqlite://{}", dir.path().join("rewarm.db").display());
    stalled_relay_on(&url, dir.path(), depth).await;
}

async fn stalled_relay_on(url: &str, dir: &std::path::Path, depth: usize) {
    const N: usize = 300;
    let grace = Duration::from_secs(2);
    let server = TestSmtpServer::start().await;
    let config = faults::write(
        &faults::config(url, server.port(), POOL, faults::free_port())
            .set_str("scheduler", "shutdown_grace", "2s")
            .set("scheduler", "wave_depth", depth.to_string()),
        dir,
    );
    faults::seed(url, &config, N).await;
    let mut daemon = faults::start_daemon(&config, "daemon", T0, dir);
    assert!(
        server.wait_for_count(20, Duration::from_secs(60)).await,
        "nothing was sent:\n{}",
        daemon.log()
    );
    server.stall_rcpt();
    let deadline = Instant::now() + Duration::from_secs(10);
    while server.stalled_rcpts() == 0 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(server.stalled_rcpts() > 0, "no transaction stalled");
    tokio::time::sleep(Duration::from_millis(200)).await;

    let asked = Instant::now();
    let exit = daemon.terminate(Duration::from_secs(15)).await;
    let took = asked.elapsed();
    assert!(exit.success(), "exit {exit}:\n{}", daemon.log());
    assert!(
        took < grace + Duration::from_secs(4),
        "stopped {took:?} after SIGTERM with a {grace:?} grace:\n{}",
        daemon.log()
    );
    let log = daemon.log();
    assert!(log.contains("Shutdown grace is over"), "{log}");

    let states = count_states(&faults::states(url).await);
    let stopped = faults::tally(url, &server, N).await;
    eprintln!(
        "SIGTERM with a stalled relay: stopped in {took:?} (grace {grace:?}); states {states:?}; {}",
        stopped.line()
    );
    assert_eq!(states.get("claimed"), None, "nothing left claimed");
    assert!(
        (1..=POOL * depth).contains(&stopped.written_off),
        "mid-transaction at the deadline: unknown, at most {depth} per connection: {}",
        stopped.written_off
    );
    // A wave's connection that finished its message before the stall took the wave's next
    // one: the wave is abandoned as a whole, so a message that did arrive can be among them.
    assert!(stopped.written_off_arrived < stopped.written_off);
    assert_eq!((stopped.lost, stopped.duplicates), (0, 0));
    assert_eq!(
        stopped.sent + stopped.written_off_arrived,
        server.count(),
        "every arrival recorded sent, or written off with its abandoned wave"
    );
    assert!(stopped.pending > 0, "what never started is due again");

    // The relay answers again: one more run sends the rest, once.
    server.release_rcpt();
    let done = drain_once(&config, dir, url, &server, N).await;
    eprintln!("after a second run: {}", done.line());
    assert_eq!((done.pending, done.lost, done.duplicates), (0, 0, 0));
    assert_eq!(done.written_off, stopped.written_off);
    assert_eq!(done.sent + done.written_off, N);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_once_stops_cleanly_on_sigterm_claiming_nothing_new() {
    let _serial = SERIAL.lock().await;
    const N: usize = 3000;
    let dir = tempfile::tempdir().expect("temp dir");
    let url = format!("sqlite://{}", dir.path().join("rewarm.db").display());
    let server = TestSmtpServer::start().await;
    let config = faults::write(
        &faults::config(&url, server.port(), POOL, faults::free_port()),
        dir.path(),
    );
    faults::seed(&url, &config, N).await;
    let mut command = bin::command();
    command
        .args(["--config", &config.display().to_string()])
        .args(["run", "--once", "--now", T0])
        .env_remove("RUST_LOG");
    let mut once = Daemon::spawn(command, dir.path().join("once.log"));
    assert!(
        server.wait_for_count(50, Duration::from_secs(60)).await,
        "nothing was sent:\n{}",
        once.log()
    );
    let exit = once.terminate(Duration::from_secs(10)).await;
    assert!(exit.success(), "exit {exit}:\n{}", once.log());
    assert!(once.log().contains("SIGTERM"), "{}", once.log());

    let states = count_states(&faults::states(&url).await);
    let stopped = faults::tally(&url, &server, N).await;
    eprintln!(
        "run --once stopped by SIGTERM: states {states:?}; {}",
        stopped.line()
    );
    assert_eq!(states.get("claimed"), None, "nothing left claimed");
    assert_eq!(
        stopped.written_off, 0,
        "in-flight sends finished and were recorded"
    );
    assert_eq!((stopped.lost, stopped.duplicates), (0, 0));
    assert_eq!(stopped.sent, server.count());
    assert!(
        stopped.pending > 0,
        "it stopped claiming: the rest is still due"
    );

    let done = drain_once(&config, dir.path(), &url, &server, N).await;
    assert_eq!((done.pending, done.lost, done.duplicates), (0, 0, 0));
    assert_eq!(done.sent, N);
}

#[test]
fn the_units_stop_timeout_outlasts_the_shutdown_grace_and_its_recording() {
    let unit = std::fs::read_to_string(repo().join("systemd/rewarm.service")).expect("the unit");
    let stop_timeout: u64 = unit
        .lines()
        .find_map(|l| l.strip_prefix("TimeoutStopSec="))
        .and_then(|v| v.trim().trim_end_matches('s').parse().ok())
        .expect("TimeoutStopSec=N in the unit");
    let settings = rewarm::config::Settings::load(&repo().join("config/rewarm.toml"))
        .expect("config/rewarm.toml loads");
    let grace = settings.scheduler.shutdown_grace;
    assert_eq!(grace, Duration::from_secs(20), "the documented default");
    let needed =
        grace + rewarm::outbound::shutdown::RECORDING_AFTER_ABORT + Duration::from_secs(10);
    assert!(
        Duration::from_secs(stop_timeout) >= needed,
        "TimeoutStopSec={stop_timeout} must be at least {needed:?} (grace {grace:?} + recording + start-up slack)"
    );
    let docs = std::fs::read_to_string(repo().join("docs/configuration.md")).expect("docs");
    assert!(
        docs.contains("`scheduler.shutdown_grace` | `20s`"),
        "docs/configuration.md documents scheduler.shutdown_grace and its default"
    );
}
