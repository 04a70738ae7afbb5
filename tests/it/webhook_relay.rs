//! The lifecycle events written in bulk reach the CRM webhook from the event log
//! (`notify::relay`): through the binary (`run --once --now T`), a real SMTP server and a real
//! HTTP receiver, on SQLite and PostgreSQL. Enrolments (`lead.enrolled`), emails
//! (`lead.emailed`), a campaign's `then` (`lead.enrolled` via `then:…`) and the daemon's
//! re-check of an out-of-scope lead (`lead.recycled`) are each posted once, with the event's
//! id in the idempotency key, however often the daemon runs; `notify.webhook_events` picks
//! which; the Slack format words each.

use std::collections::BTreeMap;
use std::path::Path;

use serde_json::Value;

use crate::support::bin::{self, repo, stdout_of};
use crate::support::config::TestConfig;
use crate::support::db::{TestDatabase, with_postgres};
use crate::support::recording_http::RecordingServer;
use crate::support::smtp_server::TestSmtpServer;

const FAY: &str = "fay.fine@finekg.example";
const GUS: &str = "gus.gone@finekg.example";

fn write_config(
    dir: &Path,
    database_url: &str,
    smtp_port: u16,
    hook: &str,
    extra: &[(&str, &str)],
) {
    let mut config = TestConfig::bare(database_url)
        .timezone("UTC")
        .templates_dir(&repo().join("tests/fixtures/pipeline/templates"))
        .smtp(smtp_port, 1)
        .set("notify", "owner_email", "false")
        .set_str("notify", "webhook_url", hook)
        .segment("everyone", "short")
        .campaign("short", "90d", "30d")
        .campaign_key("short", "max_touches", "1")
        .campaign_key("short", "templates", r#"["recycle_first"]"#)
        .campaign_key("short", "then", r#""evergreen""#)
        .any_time("short")
        .campaign("evergreen", "90d", "90d")
        .campaign_key("evergreen", "max_touches", "2")
        .campaign_key("evergreen", "templates", r#"["recycle_next"]"#)
        .any_time("evergreen");
    for (key, value) in extra {
        config = config.set("notify", key, *value);
    }
    config.write(&dir.join("rewarm.toml"));
    std::fs::write(
        dir.join("leads.csv"),
        format!(
            "email,first_name,company,lost_reason,lost_at,industry\n\
             {FAY},Fay,Fine KG,no_budget,2025-06-01,logistics\n\
             {GUS},Gus,Fine KG,no_budget,2025-06-01,logistics\n"
        ),
    )
    .expect("leads.csv");
}

fn rewarm(dir: &Path, now: &str, args: &[&str]) -> String {
    let args = [&["--config", "rewarm.toml"], args, &["--now", now]].concat();
    let out = bin::rewarm(dir, &args);
    assert!(
        out.status.success(),
        "rewarm {args:?}: {}\n{}",
        stdout_of(&out),
        String::from_utf8_lossy(&out.stderr)
    );
    stdout_of(&out)
}

/// The JSON bodies posted so far.
fn posted(hook: &RecordingServer) -> Vec<Value> {
    hook.requests().iter().map(|r| r.json()).collect()
}

/// (event, lead) of each body, in order.
fn events(bodies: &[Value]) -> Vec<(String, String)> {
    bodies
        .iter()
        .map(|b| {
            (
                b["event"].as_str().unwrap_or("-").to_string(),
                b["lead_email"].as_str().unwrap_or("-").to_string(),
            )
        })
        .collect()
}

fn pair(event: &str, lead: &str) -> (String, String) {
    (event.to_string(), lead.to_string())
}

async fn relayed_to_the_crm(database_url: &str) {
    let smtp = TestSmtpServer::start().await;
    let hook = RecordingServer::start().await;
    let dir = tempfile::tempdir().expect("temp dir");
    let d = dir.path();
    write_config(d, database_url, smtp.port(), &hook.url(), &[]);
    rewarm(d, "2026-03-02T10:00:00Z", &["leads", "import", "leads.csv"]);

    // Enrolled and emailed in the first pass: posted by the same run.
    rewarm(d, "2026-03-02T10:00:00Z", &["run", "--once"]);
    assert_eq!(smtp.count(), 2);
    let first = posted(&hook);
    let mut got = events(&first);
    got.sort();
    assert_eq!(
        got,
        [
            pair("lead.emailed", FAY),
            pair("lead.emailed", GUS),
            pair("lead.enrolled", FAY),
            pair("lead.enrolled", GUS),
        ]
    );
    for body in &first {
        assert_eq!(body["version"], 1);
        let id = body["event_id"].as_i64().expect("the event's id");
        assert_eq!(body["idempotency_key"], format!("event:{id}:webhook"));
        assert_eq!(body["detail"]["campaign"], "short", "{body}");
        assert_eq!(
            body["lead"]["email"], body["lead_email"],
            "the lead rides along"
        );
    }
    let emailed = first
        .iter()
        .find(|b| b["event"] == "lead.emailed")
        .expect("an email");
    assert_eq!(emailed["detail"]["step"], 1);
    assert!(emailed["detail"]["message_id"].is_string(), "{emailed}");

    // The next pass moves both on to `evergreen` (its `then`); Gus goes out of scope until
    // 1 April and the daemon's re-check brings him back then.
    rewarm(d, "2026-03-02T10:05:00Z", &["run", "--once"]);
    let then: Vec<Value> = posted(&hook)[first.len()..].to_vec();
    assert_eq!(
        events(&then)
            .into_iter()
            .collect::<std::collections::BTreeSet<_>>(),
        [pair("lead.enrolled", FAY), pair("lead.enrolled", GUS)].into()
    );
    assert!(
        then.iter()
            .all(|b| b["detail"]["via"] == "then:short" && b["detail"]["campaign"] == "evergreen"),
        "{then:#?}"
    );
    rewarm(
        d,
        "2026-03-03T10:00:00Z",
        &[
            "leads",
            "out-of-scope",
            GUS,
            "--reason",
            "chose another vendor",
            "--recheck-after",
            "2026-04-01",
        ],
    );
    rewarm(d, "2026-03-03T10:01:00Z", &["run", "--once"]);
    let before = posted(&hook).len();
    rewarm(d, "2026-04-01T10:00:00Z", &["run", "--once"]);
    let recheck = posted(&hook)[before..].to_vec();
    let recycled: Vec<&Value> = recheck
        .iter()
        .filter(|b| b["event"] == "lead.recycled")
        .collect();
    assert_eq!(recycled.len(), 1, "{recheck:#?}");
    assert_eq!(recycled[0]["lead_email"], GUS);
    assert_eq!(recycled[0]["detail"]["reason"], "recheck");
    assert_eq!(recycled[0]["detail"]["from"], "out_of_scope");

    // Running again posts nothing twice.
    let all = posted(&hook);
    rewarm(d, "2026-04-01T10:10:00Z", &["run", "--once"]);
    rewarm(d, "2026-04-01T10:20:00Z", &["run", "--once"]);
    let again = posted(&hook);
    let keys: BTreeMap<String, usize> = again.iter().fold(BTreeMap::new(), |mut m, b| {
        *m.entry(b["idempotency_key"].as_str().unwrap_or("-").to_string())
            .or_default() += 1;
        m
    });
    assert!(keys.values().all(|n| *n == 1), "{keys:#?}");
    assert_eq!(again.len(), all.len(), "nothing new happened");
    let out_of_scope = again
        .iter()
        .filter(|b| b["event"] == "lead.out_of_scope")
        .count();
    assert_eq!(
        out_of_scope, 1,
        "the direct lifecycle webhook still goes once"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn enrolments_emails_then_moves_and_rechecks_reach_the_webhook_once_on_sqlite() {
    let db = TestDatabase::sqlite();
    relayed_to_the_crm(db.url()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn enrolments_emails_then_moves_and_rechecks_reach_the_webhook_once_on_postgres() {
    with_postgres("webhook relay", |url| async move {
        relayed_to_the_crm(&url).await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhook_events_chooses_what_is_posted_and_slack_words_each() {
    let smtp = TestSmtpServer::start().await;
    let hook = RecordingServer::start().await;
    let dir = tempfile::tempdir().expect("temp dir");
    let d = dir.path();
    let db = TestDatabase::sqlite();
    write_config(
        d,
        db.url(),
        smtp.port(),
        &hook.url(),
        &[
            ("webhook_events", r#"["emailed", "lead.won"]"#),
            ("webhook_format", r#""slack""#),
        ],
    );
    rewarm(d, "2026-03-02T10:00:00Z", &["leads", "import", "leads.csv"]);
    rewarm(d, "2026-03-02T10:00:00Z", &["run", "--once"]);
    rewarm(d, "2026-03-02T10:05:00Z", &["leads", "won", FAY]);
    rewarm(d, "2026-03-02T10:05:00Z", &["leads", "pause", GUS]);
    rewarm(d, "2026-03-02T10:06:00Z", &["run", "--once"]);
    let mut texts: Vec<String> = posted(&hook)
        .iter()
        .map(|b| b["text"].as_str().expect("a Slack text").to_string())
        .collect();
    texts.sort();
    assert_eq!(
        texts,
        [
            ":envelope: Emailed: Fay <fay.fine@finekg.example>, Fine KG (campaign `short`, step 1)",
            ":envelope: Emailed: Gus <gus.gone@finekg.example>, Fine KG (campaign `short`, step 1)",
            ":memo: won: Fay <fay.fine@finekg.example>, Fine KG",
        ],
        "no enrolled, then or paused event: only what webhook_events names"
    );

    // An unknown event name is a config error naming the key.
    write_config(
        d,
        db.url(),
        smtp.port(),
        &hook.url(),
        &[("webhook_events", r#"["emailed", "opened"]"#)],
    );
    let out = bin::rewarm(d, &["--config", "rewarm.toml", "check", "--offline"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(
        stderr.contains("notify.webhook_events") && stderr.contains("`opened` is not an event"),
        "{stderr}"
    );
}
