//! Pause through the real binary on both databases: `campaigns pause` holds a campaign's
//! waiting emails (and those of leads enrolled later) — not claimed, not dropped, not
//! written off — `status`, `leads show` and `explain` say so, and `campaigns resume` lets
//! them go at the next pass (overdue ones at once, in the window). `leads pause` / `resume`
//! hold and release one lead's, also while its campaign is paused.

use crate::calendar::{recipients, run, run_ok};
use crate::support;

use std::path::Path;

use support::bin::repo;
use support::config::TestConfig;
use support::db::TestDatabase;

fn config(dir: &Path, database_url: &str) -> (std::path::PathBuf, std::path::PathBuf) {
    let outbox = dir.join("outbox");
    let config = TestConfig::bare(database_url)
        .timezone("UTC")
        .templates_dir(&repo().join("tests/fixtures/pipeline/templates"))
        .file_transport(&outbox.display().to_string())
        .segment("everyone", "hello")
        .campaign("hello", "30d", "30d")
        .campaign_key("hello", "max_touches", "2")
        .campaign_key("hello", "templates", r#"["recycle_first", "recycle_next"]"#)
        .write(&dir.join("rewarm.toml"));
    (config, outbox)
}

fn import(config: &Path, dir: &Path, now: &str, rows: &str) {
    let csv = dir.join(format!("leads-{}.csv", rows.len()));
    std::fs::write(
        &csv,
        format!("email,lost_reason,lost_at,timezone,industry\n{rows}"),
    )
    .unwrap();
    run_ok(config, now, &["leads", "import", csv.to_str().unwrap()]);
}

fn kinds(config: &Path, now: &str, email: &str) -> Vec<String> {
    let shown: serde_json::Value =
        serde_json::from_str(&run_ok(config, now, &["leads", "show", email, "--json"])).unwrap();
    shown["timeline"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["kind"].as_str().unwrap().to_string())
        .collect()
}

async fn paused_work_is_held_and_resumed(db: TestDatabase) {
    let dir = tempfile::tempdir().unwrap();
    let (config, outbox) = config(dir.path(), db.url());
    // Due Tue 2026-06-02 10:00 UTC (office hours).
    import(
        &config,
        dir.path(),
        "2026-05-04T09:00:00Z",
        "ann@example.com,no_budget,2026-05-03T10:00:00Z,UTC,logistics\n",
    );
    run_ok(&config, "2026-05-04T09:00:00Z", &["run", "--once"]);

    let out = run_ok(
        &config,
        "2026-06-01T09:00:00Z",
        &["campaigns", "pause", "hello", "--by", "marketing"],
    );
    assert_eq!(
        out.trim(),
        "campaign `hello`: paused; 1 waiting email(s) held"
    );
    let again = run_ok(
        &config,
        "2026-06-01T09:00:00Z",
        &["campaigns", "pause", "hello"],
    );
    assert!(again.contains("already paused; 0 waiting"), "{again}");
    let (ok, _, stderr) = run(
        &config,
        "2026-06-01T09:00:00Z",
        &["campaigns", "pause", "nope"],
    );
    assert!(
        !ok && stderr.contains("campaign `nope` is not in"),
        "{stderr}"
    );

    // A lead imported during the pause is enrolled, and its first email is held too.
    import(
        &config,
        dir.path(),
        "2026-06-01T09:00:00Z",
        "bob@example.com,no_budget,2026-04-01T10:00:00Z,UTC,logistics\n",
    );
    for now in [
        "2026-06-01T09:05:00Z",
        "2026-06-02T10:30:00Z",
        "2026-06-09T11:00:00Z",
    ] {
        run_ok(&config, now, &["run", "--once"]);
    }
    assert!(recipients(&outbox).is_empty(), "{:?}", recipients(&outbox));
    let status = run_ok(&config, "2026-06-09T11:00:00Z", &["status"]);
    assert!(
        status.contains("PAUSED since 2026-06-01 09:00 UTC by marketing"),
        "{status}"
    );
    let json: serde_json::Value = serde_json::from_str(&run_ok(
        &config,
        "2026-06-09T11:00:00Z",
        &["status", "--json"],
    ))
    .unwrap();
    assert_eq!(json["deliveries_by_state"]["held"], 2, "{json}");
    assert_eq!(json["paused_campaigns"][0]["name"], "hello");
    let shown = run_ok(
        &config,
        "2026-06-09T11:00:00Z",
        &["leads", "show", "ann@example.com"],
    );
    assert!(
        shown.contains("Next email: step 1 `recycle_first` due Tue 2026-06-02 10:00 UTC")
            && shown.contains("— held"),
        "{shown}"
    );
    let story = run_ok(
        &config,
        "2026-06-09T11:00:00Z",
        &["explain", "bob@example.com"],
    );
    for want in [
        "held: campaign `hello` is paused",
        "overdue: on resume it is due at once",
        "Stopped: campaign `hello` is paused; `rewarm campaigns resume hello` brings it back",
    ] {
        assert!(story.contains(want), "{want}\n{story}");
    }
    assert!(
        kinds(&config, "2026-06-09T11:00:00Z", "ann@example.com")
            .ends_with(&["paused".to_string()])
    );

    // Ann is paused herself too: resuming the campaign releases Bob only.
    run_ok(
        &config,
        "2026-06-09T11:00:00Z",
        &["leads", "pause", "ann@example.com"],
    );
    let out = run_ok(
        &config,
        "2026-06-10T09:00:00Z",
        &["campaigns", "resume", "hello", "--by", "marketing"],
    );
    assert_eq!(
        out.trim(),
        "campaign `hello`: resumed; 1 held email(s) released"
    );
    // Bob's overdue email goes out at the next pass, inside the window (09:00 is open).
    run_ok(&config, "2026-06-10T09:01:00Z", &["run", "--once"]);
    assert_eq!(recipients(&outbox), ["bob@example.com"]);
    assert!(
        kinds(&config, "2026-06-10T09:01:00Z", "bob@example.com")
            .windows(2)
            .any(|w| w == ["resumed", "sent"])
    );
    // Ann resumes: her held step is released and goes out next pass.
    run_ok(
        &config,
        "2026-06-10T10:00:00Z",
        &["leads", "resume", "ann@example.com"],
    );
    run_ok(&config, "2026-06-10T10:01:00Z", &["run", "--once"]);
    assert_eq!(recipients(&outbox), ["ann@example.com", "bob@example.com"]);
    let status = run_ok(&config, "2026-06-10T10:01:00Z", &["status"]);
    assert!(!status.contains("PAUSED"), "{status}");
    db.drop_database().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_paused_campaign_holds_its_emails_until_resumed_on_sqlite() {
    paused_work_is_held_and_resumed(TestDatabase::sqlite()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_paused_campaign_holds_its_emails_until_resumed_on_postgres() {
    let Some(db) = TestDatabase::postgres("a_paused_campaign_holds_its_emails_until_resumed").await
    else {
        return;
    };
    paused_work_is_held_and_resumed(db).await;
}

/// A running daemon (`rewarm run`, one pass a second) holds a paused campaign's email pass
/// after pass, and sends it once `campaigns resume` is run next to it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_running_daemon_holds_a_paused_campaign_and_sends_once_it_is_resumed() {
    use std::time::{Duration, Instant};
    let dir = tempfile::tempdir().unwrap();
    let db = TestDatabase::sqlite();
    let (config, outbox) = config(dir.path(), db.url());
    let mut text = std::fs::read_to_string(&config).unwrap();
    text.push_str("\n[scheduler]\ntick = \"1s\"\n");
    std::fs::write(&config, text).unwrap();
    let start = "2026-06-02T10:00:00Z";
    // Lost long ago: due at once when enrolled, inside Tuesday's window.
    import(
        &config,
        dir.path(),
        start,
        "cleo@example.com,no_budget,2026-01-05T10:00:00Z,UTC,logistics\n",
    );
    run_ok(&config, start, &["campaigns", "pause", "hello"]);
    let mut command = support::bin::command();
    command
        .arg("--config")
        .arg(&config)
        .args(["run", "--now", start])
        .env_remove("RUST_LOG");
    let mut daemon = support::daemon::Daemon::spawn(command, dir.path().join("daemon.log"));
    let held = || {
        let (_, out, _) = run(&config, start, &["status", "--json"]);
        serde_json::from_str::<serde_json::Value>(&out)
            .is_ok_and(|v| v["deliveries_by_state"]["held"] == 1)
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    while !held() {
        daemon.assert_alive();
        assert!(Instant::now() < deadline, "never held:\n{}", daemon.log());
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // Three more passes: still nothing sent.
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert!(recipients(&outbox).is_empty(), "{}", daemon.log());
    run_ok(&config, start, &["campaigns", "resume", "hello"]);
    let deadline = Instant::now() + Duration::from_secs(30);
    while recipients(&outbox).is_empty() {
        daemon.assert_alive();
        assert!(Instant::now() < deadline, "never sent:\n{}", daemon.log());
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(recipients(&outbox), ["cleo@example.com"]);
    daemon.terminate(Duration::from_secs(20)).await;
}
