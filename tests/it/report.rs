//! `rewarm report` against a scripted history, through the binary, on SQLite and PostgreSQL:
//! six leads in two campaigns are imported and emailed (`run --once`), two reply (`inbound
//! replay`), one is won and one out of scope (`leads won`, `leads out-of-scope`), one
//! unsubscribes and one bounces (`suppress add`); the report must say exactly that, as text,
//! JSON and CSV, per campaign and per owner, the time from loss to re-warm and the replies by
//! intent (both ask a question: "Can we talk next week?").

use std::path::{Path, PathBuf};

use serde_json::json;

use crate::support::bin;
use crate::support::config::TestConfig;
use crate::support::db::{TestDatabase, with_postgres};

const LEADS: &str = "\
email,first_name,lost_reason,lost_at,owner_email
a1@x.example,Ann,no_budget,2025-12-01,olga@acme.test
a2@x.example,Abe,no_budget,2025-09-01,olga@acme.test
a3@x.example,Ada,no_budget,2025-12-01,pete@acme.test
b1@y.example,Bea,went_quiet,2025-12-01,pete@acme.test
b2@y.example,Ben,went_quiet,2025-06-01,
b3@z.example,Bo,went_quiet,2025-12-01,olga@acme.test
";

fn setup(dir: &Path, database_url: &str) -> PathBuf {
    std::fs::write(dir.join("leads.csv"), LEADS).expect("leads.csv");
    TestConfig::bare(database_url)
        .timezone("UTC")
        .templates_dir(&bin::repo().join("templates"))
        .file_transport(&dir.join("outbox").display().to_string())
        .segment("no-budget", "budget")
        .set("segments", "lost_reason", r#"["no_budget"]"#)
        .segment("everyone", "checkin")
        .campaign("budget", "90d", "30d")
        .campaign_key("budget", "max_touches", "2")
        .campaign_key(
            "budget",
            "templates",
            r#"["budget_followup", "budget_last_call"]"#,
        )
        .any_time("budget")
        .campaign("checkin", "90d", "30d")
        .campaign_key("checkin", "max_touches", "2")
        .any_time("checkin")
        .write(&dir.join("rewarm.toml"))
}

fn rewarm(config: &Path, args: &[&str]) -> String {
    let out = bin::command()
        .arg("--config")
        .arg(config)
        .args(args)
        .env_remove("RUST_LOG")
        .output()
        .expect("run rewarm");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "rewarm {args:?}: {}\n{stdout}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

/// A person's reply from `from`.
fn reply(dir: &Path, from: &str) -> String {
    let path = dir.join(format!("reply-{from}.eml"));
    std::fs::write(
        &path,
        format!(
            "From: <{from}>\r\nTo: Acme <hello@acme.example>\r\nSubject: Re: checking in\r\n\
             Message-ID: <reply-{from}>\r\nDate: Thu, 05 Mar 2026 10:00:00 +0000\r\n\r\n\
             Hi, yes, the budget is back. Can we talk next week?\r\n"
        ),
    )
    .expect("reply");
    path.display().to_string()
}

/// The history: enrolled and emailed 2 March, replies 5 March, outcomes 6–10 March.
fn script(dir: &Path, config: &Path) {
    let leads = dir.join("leads.csv").display().to_string();
    rewarm(
        config,
        &["leads", "import", &leads, "--now", "2026-03-01T09:00:00Z"],
    );
    let out = rewarm(config, &["run", "--once", "--now", "2026-03-02T10:00:00Z"]);
    assert!(out.contains("\"sent\":6"), "{out}");
    for from in ["a1@x.example", "b2@y.example"] {
        rewarm(
            config,
            &[
                "inbound",
                "replay",
                &reply(dir, from),
                "--now",
                "2026-03-05T10:00:00Z",
            ],
        );
    }
    rewarm(
        config,
        &[
            "suppress",
            "add",
            "b3@z.example",
            "--reason",
            "unsubscribed",
            "--now",
            "2026-03-06T10:00:00Z",
        ],
    );
    rewarm(
        config,
        &[
            "suppress",
            "add",
            "a3@x.example",
            "--reason",
            "hard_bounce",
            "--now",
            "2026-03-06T10:00:00Z",
        ],
    );
    rewarm(
        config,
        &[
            "leads",
            "won",
            "a1@x.example",
            "--now",
            "2026-03-10T10:00:00Z",
        ],
    );
    rewarm(
        config,
        &[
            "leads",
            "out-of-scope",
            "b2@y.example",
            "--reason",
            "chose another vendor",
            "--now",
            "2026-03-10T10:00:00Z",
        ],
    );
}

const TEXT: &str = "\
Leads enrolled from the beginning until 2026-04-01 00:00 UTC, by campaign

campaign  enrolled  emailed  replied  rewarmed     won  out_of_scope  unsubscribed  bounced  median months loss→re-warm
budget           3        3        1         1       1             0             0        1  3.1
checkin          3        3        1         1       0             1             1        0  9.1
(all)            6        6        2         2       1             1             1        1  6.1

Re-warmed leads by months since the loss (months:leads)
budget    3:1
checkin   9:1
(all)     3:1  9:1

Replies by intent (intent:replies)
budget    question:1
checkin   question:1
(all)     question:2
";

const CSV: &str = "\
owner,enrolled,emailed,replied,rewarmed,won,out_of_scope,unsubscribed,bounced,rewarmed_with_loss_date,median_days_loss_to_rewarm,median_months_loss_to_rewarm,rewarmed_by_months_since_loss,replies_by_intent
(no owner),1,1,1,1,0,1,0,0,1,277,9.1,9:1,question:1
olga@acme.test,3,3,1,1,1,0,1,0,1,94,3.1,3:1,question:1
pete@acme.test,2,2,0,0,0,0,0,1,0,,,,
(all),6,6,2,2,1,1,1,1,2,185.5,6.1,3:1 9:1,question:2
";

async fn the_report_matches_the_scripted_history(database_url: &str) {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = setup(dir.path(), database_url);
    script(dir.path(), &config);
    let now = ["--now", "2026-04-01"];

    let text = rewarm(&config, &[&["report"][..], &now].concat());
    assert_eq!(text, TEXT);
    // `--verify` recomputes every figure from the event log (and would fail on a difference).
    let verified = rewarm(&config, &[&["report", "--verify"][..], &now].concat());
    assert_eq!(verified, TEXT);
    let csv = rewarm(
        &config,
        &[&["report", "--by", "owner", "--csv", "--verify"][..], &now].concat(),
    );
    assert_eq!(csv, CSV);
    let json: serde_json::Value = serde_json::from_str(&rewarm(
        &config,
        &[&["report", "--json"][..], &now].concat(),
    ))
    .expect("JSON");
    let funnel = |e, m, r, w, won, o, u, b| {
        json!({"enrolled": e, "emailed": m, "replied": r, "rewarmed": w, "won": won,
               "out_of_scope": o, "unsubscribed": u, "bounced": b})
    };
    assert_eq!(
        json,
        json!({
            "since": null,
            "until": "2026-04-01T00:00:00Z",
            "by": "campaign",
            "groups": [
                {"group": "budget", "funnel": funnel(3, 3, 1, 1, 1, 0, 0, 1),
                 "loss_to_rewarm": {"leads": 1, "median_days": 94.0, "by_months": {"3": 1}},
                 "replies_by_intent": {"question": 1}},
                {"group": "checkin", "funnel": funnel(3, 3, 1, 1, 0, 1, 1, 0),
                 "loss_to_rewarm": {"leads": 1, "median_days": 277.0, "by_months": {"9": 1}},
                 "replies_by_intent": {"question": 1}},
            ],
            "total": {"group": "(all)", "funnel": funnel(6, 6, 2, 2, 1, 1, 1, 1),
                      "loss_to_rewarm": {"leads": 2, "median_days": 185.5, "by_months": {"3": 1, "9": 1}},
                      "replies_by_intent": {"question": 2}},
        })
    );
    // A window that ends before anyone was enrolled counts nobody; one that starts after the
    // enrolments, too.
    for window in [
        vec!["report", "--json", "--until", "2026-03-02T09:00:00Z"],
        vec![
            "report",
            "--json",
            "--since",
            "2026-03-03",
            "--until",
            "2026-04-01",
        ],
    ] {
        let empty: serde_json::Value =
            serde_json::from_str(&rewarm(&config, &window)).expect("JSON");
        assert_eq!(empty["groups"], json!([]), "{window:?}");
        assert_eq!(
            empty["total"]["funnel"],
            funnel(0, 0, 0, 0, 0, 0, 0, 0),
            "{window:?}"
        );
    }
    // By month of enrolment.
    let months = rewarm(
        &config,
        &["report", "--by", "month", "--csv", "--now", "2026-04-01"],
    );
    assert!(
        months
            .lines()
            .nth(1)
            .expect("a row")
            .starts_with("2026-03,6,6,2,2,1,1,1,1,"),
        "{months}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_report_matches_a_scripted_history_on_sqlite() {
    let db = TestDatabase::sqlite();
    the_report_matches_the_scripted_history(db.url()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_report_matches_a_scripted_history_on_postgres() {
    with_postgres("report", |url| async move {
        the_report_matches_the_scripted_history(&url).await;
    })
    .await;
}
