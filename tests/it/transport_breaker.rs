//! A relay outage pauses the transport, not the deliveries (issue 9, part 4): a relay that
//! answers 421 at greeting, refuses AUTH with 535, or refuses connections, for minutes, costs
//! no delivery an attempt — with `max_attempts = 1`, any attempt counted would fail it — and
//! once the relay is back every lead gets its email exactly once. A real test SMTP server
//! misbehaves on command; the release binary runs with fixed `--now` moments (one-shot runs
//! stepping simulated time) or as a daemon whose `/readyz`, `/metrics` and `status` show the
//! pause and its reason.

use std::collections::HashSet;
use std::path::Path;
use std::time::{Duration, Instant};

use crate::support::bin::{command, dir_with_templates, rewarm, stdout_of};
use crate::support::config::TestConfig;
use crate::support::daemon::Daemon;
use crate::support::smtp_server::TestSmtpServer;

const LEADS: usize = 24;
const PASSWORD_ENV: &str = "REWARM_BREAKER_SMTP_PASSWORD";
const T0: &str = "2026-03-02T10:00:00Z";

#[derive(Clone, Copy, Debug)]
enum Outage {
    Greeting,
    Auth,
    Connection,
}

impl Outage {
    fn start(self, server: &TestSmtpServer) {
        match self {
            Outage::Greeting => {
                server.refuse_greetings("421 4.3.2 Service not available, closing channel")
            }
            Outage::Auth => server.refuse_auth(),
            Outage::Connection => server.stop_listening(),
        }
    }

    /// The reason `/metrics` and `status` give.
    fn label(self) -> &'static str {
        match self {
            Outage::Greeting => "greeting",
            Outage::Auth => "auth",
            Outage::Connection => "unreachable",
        }
    }
}

/// `LEADS` leads lost long ago: every first email is due at `T0`.
fn write_leads(dir: &Path) -> String {
    let mut csv = String::from("email,first_name,lost_reason,lost_at\n");
    for i in 0..LEADS {
        csv.push_str(&format!(
            "lead{i}@example.org,Lead{i},went_quiet,2025-06-01\n"
        ));
    }
    let path = dir.join("leads.csv");
    std::fs::write(&path, csv).expect("write the leads");
    path.display().to_string()
}

/// SMTP to the test server (with AUTH), one attempt per delivery, a breaker that pauses on
/// the third fault in a row and probes after 10 s, then at most every 20 s.
fn config(dir: &Path, server: &TestSmtpServer) -> TestConfig {
    let database_url = format!("sqlite://{}", dir.join("rewarm.db").display());
    TestConfig::new(&database_url)
        .templates_dir(&dir.join("templates"))
        .campaign("checkin", "1d", "30d")
        .any_time("checkin")
        .smtp(server.port(), 2)
        .set_str("transport.smtp", "username", "rewarm")
        .set_str("transport.smtp", "password_env", PASSWORD_ENV)
        .set_str("transport.smtp", "timeout", "5s")
        .set("scheduler", "max_attempts", "1")
        .set_str("scheduler", "retry_base", "1s")
        .set("transport.breaker", "threshold", "3")
        .set_str("transport.breaker", "probe_after", "10s")
        .set_str("transport.breaker", "probe_max", "20s")
}

fn run_once(dir: &Path, config: &Path, now: &str, extra: &[&str]) -> serde_json::Value {
    let output = command()
        .current_dir(dir)
        .arg("--config")
        .arg(config)
        .args(["run", "--once", "--now", now])
        .args(extra)
        .env_remove("RUST_LOG")
        .env(PASSWORD_ENV, "secret")
        .output()
        .expect("run rewarm");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "run --once --now {now}:\n{stdout}\n{stderr}"
    );
    let line = stdout
        .lines()
        .last()
        .unwrap_or_else(|| panic!("no report:\n{stderr}"));
    serde_json::from_str(line).unwrap_or_else(|e| panic!("report {line:?}: {e}"))
}

fn status_json(dir: &Path, config: &Path, now: &str) -> serde_json::Value {
    let out = rewarm(
        dir,
        &[
            "--config",
            config.to_str().expect("UTF-8"),
            "status",
            "--json",
            "--now",
            now,
        ],
    );
    serde_json::from_str(&stdout_of(&out)).expect("status --json")
}

fn at(seconds: i64) -> String {
    let t0 = chrono::DateTime::parse_from_rfc3339(T0).expect("T0");
    (t0 + chrono::TimeDelta::seconds(seconds)).to_rfc3339()
}

/// Every lead got exactly one email.
fn assert_each_lead_got_one(server: &TestSmtpServer) {
    let messages = server.messages();
    let recipients: HashSet<String> = messages.iter().flat_map(|m| m.rcpt_to.clone()).collect();
    assert_eq!(messages.len(), LEADS, "one email per lead, none twice");
    assert_eq!(recipients.len(), LEADS);
}

/// The outage lasts five simulated minutes of one-shot runs every 30 s; then the relay
/// recovers and the next run sends everything.
async fn outage_for_five_minutes_costs_no_attempt(outage: Outage) {
    let server = TestSmtpServer::start().await;
    server.require_auth("rewarm", "secret");
    let dir = dir_with_templates();
    let csv = write_leads(dir.path());
    let config = config(dir.path(), &server).write(&dir.path().join("rewarm.toml"));
    outage.start(&server);

    let d = dir.path().to_path_buf();
    let reports = tokio::task::spawn_blocking({
        let (config, csv) = (config.clone(), csv.clone());
        move || {
            let mut reports = vec![run_once(&d, &config, &at(0), &["--import", &csv])];
            for step in 1..=10 {
                reports.push(run_once(&d, &config, &at(step * 30), &[]));
            }
            reports
        }
    })
    .await
    .expect("the runs during the outage");
    for (i, r) in reports.iter().enumerate() {
        assert_eq!(
            (
                r["sent"].as_u64(),
                r["failed"].as_u64(),
                r["retried"].as_u64(),
                r["unknown"].as_u64()
            ),
            (Some(0), Some(0), Some(0), Some(0)),
            "run {i} ({outage:?}): nothing may fail, retry (an attempt) or be written off: {r}"
        );
    }
    assert_eq!(
        reports[0]["deferred"].as_u64(),
        Some(LEADS as u64),
        "{}",
        reports[0]
    );
    assert_eq!(server.count(), 0);
    let (greetings, auths) = server.refusals();
    match outage {
        Outage::Greeting => assert!(greetings >= 10, "the relay was tried: {greetings}"),
        Outage::Auth => assert!(auths >= 10, "the relay was tried: {auths}"),
        Outage::Connection => {}
    }
    // `status` shows the pause and why (recorded by the last run).
    let status = status_json(dir.path(), &config, &at(300));
    assert_eq!(status["transport"]["paused"], true, "{status}");
    assert_eq!(status["transport"]["reason"], outage.label(), "{status}");
    let text = stdout_of(&rewarm(
        dir.path(),
        &[
            "--config",
            config.to_str().expect("UTF-8"),
            "status",
            "--now",
            &at(300),
        ],
    ));
    assert!(text.contains("transport: PAUSED"), "{text}");

    server.recover().await;
    let d = dir.path().to_path_buf();
    let after = tokio::task::spawn_blocking({
        let config = config.clone();
        move || {
            (
                run_once(&d, &config, &at(330), &[]),
                run_once(&d, &config, &at(360), &[]),
            )
        }
    })
    .await
    .expect("the runs after the outage");
    assert_eq!(after.0["sent"].as_u64(), Some(LEADS as u64), "{}", after.0);
    assert_eq!(after.0["failed"].as_u64(), Some(0), "{}", after.0);
    assert_eq!(
        after.1["sent"].as_u64(),
        Some(0),
        "nothing twice: {}",
        after.1
    );
    assert_each_lead_got_one(&server);
    let status = status_json(dir.path(), &config, &at(360));
    assert_eq!(
        (
            status["sent_since"].as_u64(),
            status["failed_since"].as_u64(),
            status["unknown_since"].as_u64()
        ),
        (Some(LEADS as u64), Some(0), Some(0)),
        "{status}"
    );
    assert_eq!(status["transport"]["paused"], false, "{status}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_relay_answering_421_at_greeting_for_five_minutes_costs_no_attempt_and_all_go_once_after()
{
    outage_for_five_minutes_costs_no_attempt(Outage::Greeting).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_relay_refusing_auth_with_535_for_five_minutes_costs_no_attempt_and_all_go_once_after() {
    outage_for_five_minutes_costs_no_attempt(Outage::Auth).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_relay_refusing_connections_for_five_minutes_costs_no_attempt_and_all_go_once_after() {
    outage_for_five_minutes_costs_no_attempt(Outage::Connection).await;
}

/// A free port on 127.0.0.1 for the daemon's HTTP side.
fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind :0");
    listener.local_addr().expect("address").port()
}

async fn get(url: &str) -> (u16, String) {
    rewarm::transport::api::client::ensure_crypto_provider();
    let response = reqwest::Client::new()
        .get(url)
        .timeout(Duration::from_secs(5))
        .send()
        .await
        .unwrap_or_else(|e| panic!("GET {url}: {e}"));
    let status = response.status().as_u16();
    (status, response.text().await.expect("a body"))
}

/// Waits until `check` holds, polling every 100 ms; panics with `what` after `timeout`.
async fn wait_until<F, Fut>(daemon: &mut Daemon, timeout: Duration, what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = Instant::now() + timeout;
    while !check().await {
        daemon.assert_alive();
        assert!(Instant::now() < deadline, "{what}:\n{}", daemon.log());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_daemon_shows_a_paused_transport_on_readyz_metrics_and_status_and_resumes_by_itself() {
    let server = TestSmtpServer::start().await;
    server.require_auth("rewarm", "secret");
    server.refuse_greetings("421 4.3.2 Service not available, closing channel");
    let dir = dir_with_templates();
    let csv = write_leads(dir.path());
    let port = free_port();
    let config = config(dir.path(), &server)
        .set_str("scheduler", "tick", "1s")
        .set_str("transport.breaker", "probe_after", "1s")
        .set_str("transport.breaker", "probe_max", "2s")
        .set_str("http", "listen", &format!("127.0.0.1:{port}"))
        .write(&dir.path().join("rewarm.toml"));
    let config_arg = config.to_str().expect("UTF-8").to_string();
    let imported = rewarm(
        dir.path(),
        &[
            "--config",
            &config_arg,
            "leads",
            "import",
            &csv,
            "--now",
            T0,
        ],
    );
    stdout_of(&imported);

    let mut cmd = command();
    cmd.current_dir(dir.path())
        .args(["--config", &config_arg, "run", "--now", T0])
        .env_remove("RUST_LOG")
        .env(PASSWORD_ENV, "secret");
    let mut daemon = Daemon::spawn(cmd, dir.path().join("daemon.log"));
    let base = format!("http://127.0.0.1:{port}");
    rewarm::transport::api::client::ensure_crypto_provider();

    wait_until(
        &mut daemon,
        Duration::from_secs(20),
        "the transport never paused",
        || async {
            let metrics = reqwest::get(format!("{base}/metrics")).await;
            match metrics {
                Ok(r) => r.text().await.is_ok_and(|t| {
                    t.lines()
                        .any(|l| l == "rewarm_transport_paused{reason=\"greeting\"} 1")
                }),
                Err(_) => false,
            }
        },
    )
    .await;
    let (code, body) = get(&format!("{base}/readyz")).await;
    assert_eq!(
        code, 200,
        "a paused transport keeps the daemon ready: {body}"
    );
    assert!(body.contains("transport: paused since"), "{body}");
    assert!(body.contains("(greeting)"), "{body}");
    assert!(body.contains("421"), "{body}");
    // Several probes go while the outage lasts; none costs an attempt.
    let refused_before = server.refusals().0;
    wait_until(
        &mut daemon,
        Duration::from_secs(20),
        "no probe while paused",
        || async { server.refusals().0 >= refused_before + 2 },
    )
    .await;
    let status = status_json(dir.path(), &config, T0);
    assert_eq!(status["transport"]["paused"], true, "{status}");
    assert_eq!(status["failed_since"].as_u64(), Some(0), "{status}");

    server.recover().await;
    wait_until(
        &mut daemon,
        Duration::from_secs(30),
        "not everything was sent after the outage",
        || async { server.count() >= LEADS },
    )
    .await;
    wait_until(
        &mut daemon,
        Duration::from_secs(10),
        "the pause never cleared",
        || async {
            let (_, metrics) = get(&format!("{base}/metrics")).await;
            metrics
                .lines()
                .any(|l| l == "rewarm_transport_paused{reason=\"\"} 0")
        },
    )
    .await;
    let (code, body) = get(&format!("{base}/readyz")).await;
    assert_eq!((code, body.as_str()), (200, "ready\n"));
    let exit = daemon.terminate(Duration::from_secs(15)).await;
    assert!(exit.success(), "{}", daemon.log());
    assert_each_lead_got_one(&server);
    let log = daemon.log();
    assert_eq!(
        log.matches("Transport paused").count(),
        1,
        "logged once per change:\n{log}"
    );
    assert!(log.contains("Transport resumed"), "{log}");
    let status = status_json(dir.path(), &config, T0);
    assert_eq!(status["transport"]["paused"], false, "{status}");
    assert_eq!(
        (
            status["failed_since"].as_u64(),
            status["unknown_since"].as_u64()
        ),
        (Some(0), Some(0)),
        "{status}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_applies_a_breaker_change_and_says_a_transport_change_needs_a_restart() {
    let dir = dir_with_templates();
    let database_url = format!("sqlite://{}", dir.path().join("rewarm.db").display());
    let base = TestConfig::new(&database_url)
        .templates_dir(&dir.path().join("templates"))
        .set_str("scheduler", "tick", "1s")
        .set_str("http", "listen", "127.0.0.1:0");
    let config = base
        .clone()
        .file_transport("outbox")
        .write(&dir.path().join("rewarm.toml"));
    let mut cmd = command();
    cmd.current_dir(dir.path())
        .args([
            "--config",
            config.to_str().expect("UTF-8"),
            "run",
            "--now",
            T0,
        ])
        .env_remove("RUST_LOG");
    let mut daemon = Daemon::spawn(cmd, dir.path().join("daemon.log"));
    wait_until(
        &mut daemon,
        Duration::from_secs(20),
        "the daemon never started",
        || async { daemon_log_count(&dir, "rewarm is running") >= 1 },
    )
    .await;

    // A breaker change applies at once and says nothing; a transport change needs a restart.
    base.clone()
        .file_transport("outbox")
        .set("transport.breaker", "threshold", "7")
        .write(&config);
    signal(&daemon, "-HUP");
    wait_until(
        &mut daemon,
        Duration::from_secs(10),
        "no reload",
        || async { daemon_log_count(&dir, "Configuration reloaded") >= 1 },
    )
    .await;
    assert!(
        !std::fs::read_to_string(dir.path().join("daemon.log"))
            .unwrap()
            .contains("need a restart")
    );
    base.file_transport("elsewhere").write(&config);
    signal(&daemon, "-HUP");
    wait_until(
        &mut daemon,
        Duration::from_secs(10),
        "no restart warning",
        || async { daemon_log_count(&dir, "settings changed: they need a restart") >= 1 },
    )
    .await;
    let exit = daemon.terminate(Duration::from_secs(15)).await;
    assert!(exit.success(), "{}", daemon.log());
}

fn signal(daemon: &Daemon, which: &str) {
    let status = std::process::Command::new("kill")
        .args([which, &daemon.pid().to_string()])
        .status()
        .expect("kill");
    assert!(status.success());
}

fn daemon_log_count(dir: &tempfile::TempDir, needle: &str) -> usize {
    std::fs::read_to_string(dir.path().join("daemon.log"))
        .unwrap_or_default()
        .matches(needle)
        .count()
}
