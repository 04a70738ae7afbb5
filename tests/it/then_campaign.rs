//! No dead end after a campaign: through the real binary (`rewarm run --once --now T`) and a
//! capturing SMTP server, a lead that completes a one-step campaign naming `then =
//! "evergreen"` enters the evergreen campaign and gets its email 90 days later; `leads
//! recycle --campaign` and the CLI lifecycle commands answer as documented.

use crate::support;

use std::path::Path;

use support::bin::{self, repo};
use support::config::TestConfig;
use support::db::TestDatabase;
use support::smtp_server::TestSmtpServer;

const LEAD: &str = "fay.fine@finekg.example";

fn write_config(dir: &Path, database_url: &str, smtp_port: u16) -> std::path::PathBuf {
    TestConfig::bare(database_url)
        .timezone("UTC")
        .templates_dir(&repo().join("tests/fixtures/pipeline/templates"))
        .smtp(smtp_port, 1)
        .set_str("transport.smtp", "timeout", "5s")
        .segment("everyone", "short")
        .campaign("short", "90d", "30d")
        .campaign_key("short", "max_touches", "1")
        .campaign_key("short", "templates", r#"["recycle_first"]"#)
        .campaign_key("short", "then", r#""evergreen""#)
        .any_time("short")
        .campaign("evergreen", "90d", "90d")
        .campaign_key("evergreen", "max_touches", "2")
        .campaign_key("evergreen", "templates", r#"["recycle_next"]"#)
        .campaign_key("evergreen", "then", r#""evergreen""#)
        .any_time("evergreen")
        .write(&dir.join("rewarm.toml"))
}

fn run(config: &Path, now: &str, args: &[&str]) -> (bool, String, String) {
    let out = bin::command()
        .arg("--config")
        .arg(config)
        .args(["--now", now])
        .args(args)
        .env_remove("RUST_LOG")
        .output()
        .expect("run rewarm");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn run_ok(config: &Path, now: &str, args: &[&str]) -> String {
    let (ok, stdout, stderr) = run(config, now, args);
    assert!(ok, "rewarm {args:?}: {stdout}\n{stderr}");
    stdout
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_completed_lead_flows_into_its_then_campaign_and_its_email_goes_out_90_days_later() {
    let dir = tempfile::tempdir().unwrap();
    let db = TestDatabase::sqlite();
    let smtp = TestSmtpServer::start().await;
    let config = write_config(dir.path(), db.url(), smtp.port());
    let csv = dir.path().join("leads.csv");
    std::fs::write(
        &csv,
        format!("email,first_name,company,lost_reason,lost_at,industry\n{LEAD},Fay,Fine KG,no_budget,2025-06-01,logistics\n"),
    )
    .unwrap();
    run_ok(
        &config,
        "2026-03-02T10:00:00Z",
        &["leads", "import", csv.to_str().unwrap()],
    );
    // The one step of `short` goes out; the lead completes it.
    run_ok(&config, "2026-03-02T10:00:00Z", &["run", "--once"]);
    assert_eq!(smtp.count(), 1);
    // The next pass moves it on to `evergreen`: nothing due yet.
    run_ok(&config, "2026-03-02T10:05:00Z", &["run", "--once"]);
    assert_eq!(smtp.count(), 1);
    let shown: serde_json::Value = serde_json::from_str(&run_ok(
        &config,
        "2026-03-02T10:05:00Z",
        &["leads", "show", LEAD, "--json"],
    ))
    .unwrap();
    assert_eq!(shown["lead"]["state"], "nurturing");
    let timeline = shown["timeline"].as_array().unwrap();
    let kinds: Vec<&str> = timeline.iter().filter_map(|e| e["kind"].as_str()).collect();
    assert!(kinds.ends_with(&["completed", "enrolled"]), "{kinds:?}");
    let enrolled = timeline.last().unwrap();
    assert_eq!(enrolled["detail"]["campaign"], "evergreen");
    assert_eq!(enrolled["detail"]["via"], "then:short");
    assert_eq!(enrolled["detail"]["first_due"], "2026-05-31T10:05:00Z");
    // 89 days on: still nothing; 90 days on: the evergreen email.
    run_ok(&config, "2026-05-30T10:05:00Z", &["run", "--once"]);
    assert_eq!(smtp.count(), 1);
    run_ok(&config, "2026-05-31T10:06:00Z", &["run", "--once"]);
    assert_eq!(smtp.count(), 2);
    assert_eq!(smtp.messages()[1].rcpt_to, [LEAD]);

    // The CLI: won, then recycle into a named campaign; an unknown campaign is refused.
    assert!(
        run_ok(&config, "2026-06-01T10:00:00Z", &["leads", "won", LEAD])
            .contains("nurturing → won")
    );
    let (ok, _, stderr) = run(
        &config,
        "2026-06-01T10:00:00Z",
        &[
            "leads",
            "recycle",
            LEAD,
            "--reason",
            "lost again",
            "--campaign",
            "nope",
        ],
    );
    assert!(
        !ok && stderr.contains("campaign `nope` is not defined"),
        "{stderr}"
    );
    let out = run_ok(
        &config,
        "2026-06-01T10:00:00Z",
        &[
            "leads",
            "recycle",
            LEAD,
            "--reason",
            "lost again",
            "--campaign",
            "short",
            "--after",
            "30d",
        ],
    );
    assert!(
        out.contains("won → nurturing into short (next email not before 2026-07-01 10:00 UTC)"),
        "{out}"
    );
    let (ok, _, stderr) = run(
        &config,
        "2026-06-01T10:00:00Z",
        &[
            "leads",
            "out-of-scope",
            LEAD,
            "--reason",
            "chose a competitor",
            "--recheck-after",
            "12m",
        ],
    );
    assert!(!ok && stderr.contains("12mo"), "{stderr}");
    let out = run_ok(
        &config,
        "2026-06-01T10:00:00Z",
        &[
            "leads",
            "out-of-scope",
            LEAD,
            "--reason",
            "chose a competitor",
            "--recheck-after",
            "12mo",
        ],
    );
    assert!(out.contains("nurturing → out_of_scope (chose a competitor; back to nurture after 2027-06-01 10:00 UTC)"), "{out}");
    // The re-check date passes: the daemon's pass puts it back in nurture, the step of
    // `short` the out-of-scope mark cancelled goes out (its last: the lead completes).
    run_ok(&config, "2027-06-01T10:01:00Z", &["run", "--once"]);
    let shown: serde_json::Value = serde_json::from_str(&run_ok(
        &config,
        "2027-06-01T10:01:00Z",
        &["leads", "show", LEAD, "--json"],
    ))
    .unwrap();
    assert_eq!(shown["lead"]["state"], "completed");
    let recycled = shown["timeline"]
        .as_array()
        .unwrap()
        .iter()
        .rfind(|e| e["kind"] == "recycled")
        .unwrap();
    assert_eq!(recycled["detail"]["reason"], "recheck");
    assert_eq!(smtp.count(), 3, "{:#}", shown["timeline"]);
}

/// A config with campaign `a` (first email `first_after` the loss, `then = then_a`) and `b`.
fn then_config(first_after: &str, then_a: &str) -> String {
    TestConfig::bare("sqlite::memory:")
        .segment("all", "a")
        .campaign("a", first_after, "30d")
        .campaign_key("a", "then", format!("\"{then_a}\""))
        .campaign("b", "90d", "90d")
        .campaign_key("b", "then", r#""a""#)
        .toml()
}

#[test]
fn then_must_name_a_campaign_and_a_loop_must_wait_a_day() {
    use rewarm::config::Settings;
    let errors = Settings::from_toml(&then_config("90d", "nope"), "t.toml")
        .unwrap_err()
        .to_string();
    assert!(
        errors.contains("campaigns.a.then")
            && errors.contains("campaign `nope` is not defined (defined: a, b)"),
        "{errors}"
    );
    // a → b → a loops: fine when every campaign on it waits; not when one sends at once.
    assert!(Settings::from_toml(&then_config("90d", "b"), "t.toml").is_ok());
    let errors = Settings::from_toml(&then_config("0d", "b"), "t.toml")
        .unwrap_err()
        .to_string();
    assert!(
        errors.contains("campaigns.a.first_after") && errors.contains("`then` loop"),
        "{errors}"
    );
    // A campaign naming itself is an endless long-tail.
    assert!(Settings::from_toml(&then_config("90d", "a"), "t.toml").is_ok());
}
