//! `rewarm explain EMAIL` through the real binary: golden outputs (tests/fixtures/explain/)
//! for a lead in each situation — not enrolled (too young, wrong reason), waiting for its
//! window, held by a holiday, postponed by an out-of-office reply, paused, cancelled (the lead
//! was won), held by the daily cap, cancelled by an edit (a lowered `max_touches`).
//! `REWARM_UPDATE_GOLDEN=1` rewrites the files after a deliberate change; review the diff.

use crate::calendar::{recipients, run_ok};
use crate::support;

use std::path::Path;

use support::bin::repo;
use support::config::TestConfig;
use support::db::TestDatabase;

const NOW: &str = "2026-12-01T12:00:00Z";
const LATER: &str = "2026-12-01T14:00:00Z";

fn config(dir: &Path, database_url: &str) -> (std::path::PathBuf, std::path::PathBuf) {
    let outbox = dir.join("outbox");
    let config = TestConfig::bare(database_url)
        .timezone("UTC")
        .templates_dir(&repo().join("tests/fixtures/pipeline/templates"))
        .file_transport(&outbox.display().to_string())
        .set_str("inbound", "reply_domain", "reply.acme.example")
        .segment("competitor", "hello")
        .set("segments", "lost_reason", r#"["chose_competitor"]"#)
        .segment("budget", "hello")
        .set("segments", "lost_reason", r#"["no_budget"]"#)
        .set_str("segments", "min_age", "30d")
        .campaign("hello", "60d", "30d")
        .campaign_key("hello", "max_touches", "3")
        .campaign_key("hello", "templates", r#"["recycle_first", "recycle_next"]"#)
        .campaign_key("hello", "skip_holidays", "true")
        .write(&dir.join("rewarm.toml"));
    (config, outbox)
}

/// An out-of-office reply from `from`, back on Monday 11 January 2027.
fn out_of_office(from: &str) -> String {
    format!(
        "From: Olga <{from}>\r\nTo: reply@reply.acme.example\r\nSubject: Automatic reply: Checking in\r\n\
Date: Tue, 1 Dec 2026 13:00:00 +0000\r\nMessage-ID: <ooo-1@example.com>\r\nAuto-Submitted: auto-replied\r\n\
Content-Type: text/plain; charset=us-ascii\r\n\r\n\
Thank you for your email. I am out of the office and will be back on Monday, 11 January 2027.\r\n"
    )
}

fn golden(name: &str, got: &str) {
    let path = repo().join(format!("tests/fixtures/explain/{name}.txt"));
    if std::env::var_os("REWARM_UPDATE_GOLDEN").is_some() {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, got).unwrap();
    }
    let want = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e} (REWARM_UPDATE_GOLDEN=1 writes it)", path.display()));
    assert_eq!(got, want, "explain {name} differs from {}", path.display());
}

#[test]
fn explain_tells_each_situation_in_plain_words() {
    let dir = tempfile::tempdir().unwrap();
    let db = TestDatabase::sqlite();
    let (config, outbox) = config(dir.path(), db.url());
    let csv = dir.path().join("leads.csv");
    std::fs::write(
        &csv,
        "email,first_name,lost_reason,lost_at,timezone,industry\n\
         young@example.com,Yan,no_budget,2026-11-20T10:00:00Z,UTC,logistics\n\
         window@example.com,Wim,chose_competitor,2026-10-02T19:00:00Z,UTC,logistics\n\
         holiday@example.com,Hal,chose_competitor,2026-10-26T15:00:00Z,America/New_York,logistics\n\
         ooo@example.com,Olga,chose_competitor,2026-09-01T10:00:00Z,UTC,logistics\n\
         paused@example.com,Pia,chose_competitor,2026-09-01T10:00:00Z,UTC,logistics\n\
         cancelled@example.com,Cai,chose_competitor,2026-09-01T10:00:00Z,UTC,logistics\n",
    )
    .unwrap();
    run_ok(&config, NOW, &["leads", "import", csv.to_str().unwrap()]);
    run_ok(&config, NOW, &["run", "--once"]);
    assert_eq!(
        recipients(&outbox),
        [
            "Cai <cancelled@example.com>",
            "Olga <ooo@example.com>",
            "Pia <paused@example.com>"
        ]
    );
    let reply = dir.path().join("ooo.eml");
    std::fs::write(&reply, out_of_office("ooo@example.com")).unwrap();
    run_ok(
        &config,
        "2026-12-01T13:00:00Z",
        &["inbound", "replay", reply.to_str().unwrap()],
    );
    run_ok(
        &config,
        "2026-12-01T13:00:00Z",
        &[
            "leads",
            "pause",
            "paused@example.com",
            "--by",
            "rita@acme.example",
        ],
    );
    run_ok(
        &config,
        "2026-12-01T13:00:00Z",
        &[
            "leads",
            "won",
            "cancelled@example.com",
            "--by",
            "rita@acme.example",
        ],
    );
    for name in ["young", "window", "holiday", "ooo", "paused", "cancelled"] {
        let email = format!("{name}@example.com");
        golden(name, &run_ok(&config, LATER, &["explain", &email]));
    }
    // `leads show` carries the same next line, the score, the current step and every step.
    let shown = run_ok(&config, LATER, &["leads", "show", "cancelled@example.com"]);
    for want in [
        "score: 0   current step: hello step 2 of 3",
        "Next email: none scheduled",
        "hello step 1 `recycle_first`: sent Tue 2026-12-01 12:00 UTC\n",
        "hello step 2 `recycle_next`: cancelled Tue 2026-12-01 13:00 UTC: the lead was won",
    ] {
        assert!(shown.contains(want), "{want}\n{shown}");
    }
}

/// Two campaigns under a daily cap of one email: `hello` (three steps) and `later` (with a
/// lateness policy); `hello_touches` is `hello`'s `max_touches`.
fn cap_config(dir: &Path, database_url: &str, hello_touches: &str) -> std::path::PathBuf {
    let outbox = dir.join("outbox");
    TestConfig::bare(database_url)
        .timezone("UTC")
        .templates_dir(&repo().join("tests/fixtures/pipeline/templates"))
        .file_transport(&outbox.display().to_string())
        .set_str("inbound", "reply_domain", "reply.acme.example")
        .set("transport.limits", "daily_cap", "1")
        .segment("competitor", "hello")
        .set("segments", "lost_reason", r#"["chose_competitor"]"#)
        .segment("budget", "later")
        .set("segments", "lost_reason", r#"["no_budget"]"#)
        .campaign("hello", "60d", "30d")
        .campaign_key("hello", "max_touches", hello_touches)
        .campaign_key("hello", "templates", r#"["recycle_first", "recycle_next"]"#)
        .campaign("later", "60d", "30d")
        .campaign_key("later", "max_touches", "3")
        .campaign_key("later", "templates", r#"["recycle_first", "recycle_next"]"#)
        .campaign_key("later", "late_after", r#""2d""#)
        .campaign_key("later", "late", r#""skip""#)
        .write(&dir.join("rewarm.toml"))
}

#[test]
fn explain_tells_a_step_held_by_the_cap_and_one_cancelled_by_an_edit() {
    let dir = tempfile::tempdir().unwrap();
    let db = TestDatabase::sqlite();
    let config = cap_config(dir.path(), db.url(), "3");
    let csv = dir.path().join("leads.csv");
    // Both due at once; the cap lets the first imported through and defers the other.
    std::fs::write(
        &csv,
        "email,first_name,lost_reason,lost_at,timezone,industry\n\
         edited@example.com,Eda,chose_competitor,2026-09-01T10:00:00Z,UTC,logistics\n\
         capped@example.com,Cap,no_budget,2026-09-01T10:00:00Z,UTC,logistics\n",
    )
    .unwrap();
    run_ok(&config, NOW, &["leads", "import", csv.to_str().unwrap()]);
    run_ok(&config, NOW, &["run", "--once"]);
    assert_eq!(
        recipients(&dir.path().join("outbox")),
        ["Eda <edited@example.com>"]
    );
    // `hello` cut to one touch: the daemon re-plans at start-up, step 2 is cancelled.
    cap_config(dir.path(), db.url(), "1");
    run_ok(&config, "2026-12-01T13:00:00Z", &["run", "--once"]);
    for name in ["capped", "edited"] {
        let email = format!("{name}@example.com");
        golden(name, &run_ok(&config, LATER, &["explain", &email]));
    }
}
