//! The inbound and sales-side commands through the binary: `inbound replay --dry-run` over the
//! corpus prints the expected JSON line per file and changes nothing; a real replay records every
//! message once (unmatched mail kept), again is a no-op, and the same message in other bytes
//! changes its lead once; `inbound list` / `show` review what was kept; `leads rewarmed` and
//! `leads recycle` hand leads between sales and nurture.

use std::path::Path;
use std::process::Output;

use rewarm::domain::lead::LeadState;
use rewarm::store::prelude::*;
use rewarm::store::sqlite::SqliteStore;

use crate::support::bin::{self, repo, stdout_of};
use crate::support::config::TestConfig;

/// The moment every command runs at, unless it passes its own `--now`: a Monday morning inside
/// the default send window. No test here reads the wall clock.
const NOW: &str = "2026-03-02T10:00:00Z";

fn now() -> chrono::DateTime<chrono::Utc> {
    rewarm::cli::parse_now(NOW).expect("a fixed time")
}

/// `rewarm ARGS…` in `dir`, at [`NOW`] unless the arguments say `--now`.
fn rewarm(dir: &Path, args: &[&str]) -> Output {
    if args.contains(&"--now") {
        bin::rewarm(dir, args)
    } else {
        bin::rewarm(dir, &[args, &["--now", NOW]].concat())
    }
}

/// (file, classification, lead or None).
fn expected() -> Vec<(String, String, Option<String>)> {
    std::fs::read_to_string(repo().join("tests/fixtures/inbound/expected.tsv"))
        .expect("expected.tsv")
        .lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
        .map(|l| {
            let cols: Vec<&str> = l.split('\t').collect();
            let lead = cols[2].trim();
            (
                cols[0].to_string(),
                cols[1].to_string(),
                (lead != "-").then(|| lead.to_string()),
            )
        })
        .collect()
}

/// A temp dir with a config and the corpus' leads imported.
fn setup() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    TestConfig::new("sqlite://inbound.db")
        .templates_dir(&repo().join("templates"))
        .write(&dir.path().join("test.toml"));
    let mut csv = String::from("email,first_name,lost_reason,lost_at\n");
    for (_, _, lead) in expected() {
        if let Some(lead) = lead
            && !csv.contains(&format!("\n{lead},"))
        {
            csv.push_str(&format!("{lead},Ann,no_budget,2025-06-01\n"));
        }
    }
    std::fs::write(dir.path().join("leads.csv"), csv).unwrap();
    let out = rewarm(
        dir.path(),
        &["--config", "test.toml", "leads", "import", "leads.csv"],
    );
    assert!(
        out.status.success(),
        "import: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    dir
}

/// The intent of the corpus' human replies (tests/fixtures/intent/ has the intent corpus).
fn intent_of(file: &str) -> Option<&'static str> {
    match file {
        "gmail_human_reply.eml" | "apple_mail_human_reply.eml" => Some("interested"),
        "outlook_human_reply.eml" => Some("question"),
        _ => None,
    }
}

fn corpus_files() -> Vec<String> {
    expected()
        .iter()
        .map(|(f, _, _)| {
            repo()
                .join("tests/fixtures/inbound")
                .join(f)
                .display()
                .to_string()
        })
        .collect()
}

async fn store(dir: &Path) -> SqliteStore {
    let url = format!("sqlite://{}", dir.join("inbound.db").display());
    SqliteStore::connect(&url).await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dry_run_prints_the_expected_line_per_file_and_changes_nothing() {
    let dir = setup();
    let files = corpus_files();
    let mut args = vec!["--config", "test.toml", "inbound", "replay", "--dry-run"];
    args.extend(files.iter().map(String::as_str));
    let out = rewarm(dir.path(), &args);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lines: Vec<serde_json::Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).expect("one JSON object per line"))
        .collect();
    let want: Vec<serde_json::Value> = expected()
        .into_iter()
        .zip(&files)
        .map(|((name, c, lead), file)| {
            serde_json::json!({"file": file, "classification": c, "intent": intent_of(&name), "lead": lead})
        })
        .collect();
    assert_eq!(lines, want);
    let store = store(dir.path()).await;
    assert!(store.inbound_messages(0, 100).await.unwrap().is_empty());
    assert!(store.notifications(0, 100).await.unwrap().is_empty());
    assert!(store.suppressions().await.unwrap().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replay_records_every_message_once_and_acts_on_the_leads() {
    let dir = setup();
    let files = corpus_files();
    let mut args = vec!["--config", "test.toml", "inbound", "replay"];
    args.extend(files.iter().map(String::as_str));
    let out = rewarm(dir.path(), &args);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let store = store(dir.path()).await;
    let stored = store.inbound_messages(0, 100).await.unwrap();
    assert_eq!(
        stored.len(),
        files.len(),
        "every message kept, matched or not"
    );
    for (file, classification, lead) in expected() {
        let Some(lead) = lead else { continue };
        let email = rewarm::domain::email::EmailAddress::parse(&lead).unwrap();
        let l = store.lead_by_email(&email).await.unwrap().unwrap();
        let want = match classification.as_str() {
            "human_reply" => LeadState::Rewarmed,
            "hard_bounce" | "complaint" | "unsubscribe" => LeadState::Suppressed,
            _ => LeadState::New,
        };
        assert_eq!(l.state, want, "{file}: {lead}");
    }
    let unmatched = stored.iter().filter(|s| s.record.lead_id.is_none()).count();
    assert_eq!(unmatched, 1, "the newsletter is kept, unmatched");
    // Replaying the same files: duplicates, nothing changes.
    let before = store.inbound_messages(0, 100).await.unwrap();
    let out = rewarm(dir.path(), &args);
    assert!(out.status.success());
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        assert_eq!(v["duplicate"], true, "{line}");
    }
    assert_eq!(store.inbound_messages(0, 100).await.unwrap(), before);
}

/// Sales' side: a reply re-warms a lead, `leads rewarmed` lists it (owner filter included),
/// `leads recycle` hands it back to nurture with its history, and the cadence resumes only
/// after `--after`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rewarmed_leads_are_listed_and_a_recycled_one_resumes_its_cadence_after_the_wait() {
    let dir = setup();
    let reply = repo().join("tests/fixtures/inbound/gmail_human_reply.eml");
    let args = ["--config", "test.toml", "inbound", "replay"];
    stdout_of(&rewarm(
        dir.path(),
        &[&args[..], &[reply.to_str().unwrap()]].concat(),
    ));

    let listed = stdout_of(&rewarm(
        dir.path(),
        &[
            "--config",
            "test.toml",
            "leads",
            "rewarmed",
            "--since",
            "1d",
        ],
    ));
    assert_eq!(listed.lines().count(), 1, "{listed}");
    assert!(listed.contains("ann@example.com"), "{listed}");
    let json = stdout_of(&rewarm(
        dir.path(),
        &["--config", "test.toml", "leads", "rewarmed", "--json"],
    ));
    let v: serde_json::Value = serde_json::from_str(json.trim()).expect("one JSON line");
    assert_eq!(v["lead"]["email"], "ann@example.com");
    let none = stdout_of(&rewarm(
        dir.path(),
        &[
            "--config",
            "test.toml",
            "leads",
            "rewarmed",
            "--owner",
            "nobody@acme.example",
        ],
    ));
    assert!(none.trim().is_empty(), "{none}");

    // A lead in nurture already is not recycled.
    let refused = rewarm(
        dir.path(),
        &[
            "--config",
            "test.toml",
            "leads",
            "recycle",
            "bob.miller@example.org",
            "--reason",
            "x",
        ],
    );
    assert!(!refused.status.success());
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("it is in nurture already"),
        "{}",
        String::from_utf8_lossy(&refused.stderr)
    );

    let recycled = stdout_of(&rewarm(
        dir.path(),
        &[
            "--config",
            "test.toml",
            "leads",
            "recycle",
            "ann@example.com",
            "--reason",
            "not ready until Q3",
            "--after",
            "30d",
        ],
    ));
    assert!(recycled.contains("rewarmed →"), "{recycled}");
    let store = store(dir.path()).await;
    let email = rewarm::domain::email::EmailAddress::parse("ann@example.com").unwrap();
    let ann = store.lead_by_email(&email).await.unwrap().unwrap();
    assert_ne!(ann.state, LeadState::Rewarmed);
    let kinds: Vec<String> = store
        .timeline(ann.id)
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.kind)
        .collect();
    for kind in ["imported", "inbound", "rewarmed", "recycled"] {
        assert!(kinds.iter().any(|k| k == kind), "no `{kind}` in {kinds:?}");
    }
    let shown = stdout_of(&rewarm(
        dir.path(),
        &["--config", "test.toml", "leads", "show", "ann@example.com"],
    ));
    assert!(shown.contains("not ready until Q3"), "{shown}");

    // Nothing for ann before the wait is over; her email once it is.
    let now = now();
    let to_ann = |at: chrono::DateTime<chrono::Utc>| {
        let at = at.to_rfc3339();
        stdout_of(&rewarm(
            dir.path(),
            &["--config", "test.toml", "run", "--once", "--now", &at],
        ));
        std::fs::read_dir(dir.path().join("outbox"))
            .map(|entries| {
                entries
                    .filter_map(Result::ok)
                    .filter(|e| {
                        std::fs::read_to_string(e.path()).is_ok_and(|t| {
                            t.contains("To: ann@example.com") || t.contains("<ann@example.com>")
                        })
                    })
                    .count()
            })
            .unwrap_or(0)
    };
    assert_eq!(to_ann(now + chrono::Duration::days(10)), 0);
    assert_eq!(to_ann(now + chrono::Duration::days(32)), 1);
    assert_eq!(to_ann(now + chrono::Duration::days(33)), 1, "sent twice");
}

/// The same message by two ways (here: a mailbox export whose copy gained a `Received:` line,
/// as IMAP and a webhook would deliver it) is one message: keyed by its Message-ID.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_message_arriving_twice_in_different_bytes_changes_its_lead_once() {
    let dir = setup();
    let original = repo().join("tests/fixtures/inbound/gmail_human_reply.eml");
    let bytes = std::fs::read(&original).unwrap();
    let mut copy =
        b"Received: from mx2.example.com by imap.acme.example; Mon, 2 Mar 2026 10:00:00 +0000\r\n"
            .to_vec();
    copy.extend_from_slice(&bytes);
    let copy_path = dir.path().join("copy.eml");
    std::fs::write(&copy_path, copy).unwrap();

    let first = stdout_of(&rewarm(
        dir.path(),
        &[
            "--config",
            "test.toml",
            "inbound",
            "replay",
            original.to_str().unwrap(),
        ],
    ));
    let second = stdout_of(&rewarm(
        dir.path(),
        &[
            "--config",
            "test.toml",
            "inbound",
            "replay",
            copy_path.to_str().unwrap(),
        ],
    ));
    let first: serde_json::Value = serde_json::from_str(first.trim()).unwrap();
    let second: serde_json::Value = serde_json::from_str(second.trim()).unwrap();
    assert_eq!(first["duplicate"], false, "{first}");
    assert_eq!(second["duplicate"], true, "{second}");
    let store = store(dir.path()).await;
    assert_eq!(store.inbound_messages(0, 10).await.unwrap().len(), 1);
    let email = rewarm::domain::email::EmailAddress::parse("ann@example.com").unwrap();
    let ann = store.lead_by_email(&email).await.unwrap().unwrap();
    let rewarms = store
        .timeline(ann.id)
        .await
        .unwrap()
        .into_iter()
        .filter(|e| e.kind == "rewarmed")
        .count();
    assert_eq!(rewarms, 1);
}

/// A temp dir (see `setup`) with the whole corpus replayed.
fn replayed() -> tempfile::TempDir {
    replayed_with_ids().0
}

/// A temp dir with the whole corpus replayed, and each file's inbound id (from replay's output).
fn replayed_with_ids() -> (tempfile::TempDir, Vec<(String, i64)>) {
    let dir = setup();
    let files = corpus_files();
    let mut args = vec!["--config", "test.toml", "inbound", "replay"];
    args.extend(files.iter().map(String::as_str));
    let ids = stdout_of(&rewarm(dir.path(), &args))
        .lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            (
                v["file"].as_str().unwrap().to_string(),
                v["inbound_id"].as_i64().unwrap(),
            )
        })
        .collect();
    (dir, ids)
}

fn inbound(dir: &Path, args: &[&str]) -> Output {
    rewarm(dir, &[&["--config", "test.toml", "inbound"], args].concat())
}

/// The id (first column) of each line of `inbound list`.
fn listed_ids(out: &str) -> Vec<i64> {
    out.lines()
        .map(|l| l.split_whitespace().next().unwrap().parse().expect("an id"))
        .collect()
}

/// An operator reviews kept mail without SQL: `--unmatched` is exactly the newsletter,
/// `--class` filters by classification, newest first, and the summary goes to stderr.
#[test]
fn inbound_list_filters_unmatched_mail_and_classifications_newest_first() {
    let dir = replayed();
    let out = inbound(dir.path(), &["list", "--unmatched"]);
    let listed = stdout_of(&out);
    assert_eq!(listed.lines().count(), 1, "{listed}");
    assert!(listed.contains("news@vendor.example"), "{listed}");
    assert!(
        listed.contains("This week: 7 ways to reduce churn"),
        "{listed}"
    );
    assert_eq!(String::from_utf8_lossy(&out.stderr).trim(), "1 message(s)");

    let hard_bounces = expected()
        .iter()
        .filter(|(_, c, _)| c == "hard_bounce")
        .count();
    let listed = stdout_of(&inbound(dir.path(), &["list", "--class", "hard_bounce"]));
    assert_eq!(listed.lines().count(), hard_bounces, "{listed}");
    assert!(
        listed.lines().all(|l| l.contains("  hard_bounce  ")),
        "{listed}"
    );
    let ids = listed_ids(&listed);
    assert!(ids.windows(2).all(|w| w[0] > w[1]), "newest first: {ids:?}");

    let all = stdout_of(&inbound(dir.path(), &["list", "--since", "1h"]));
    assert_eq!(all.lines().count(), corpus_files().len(), "{all}");
    let matched = all
        .lines()
        .find(|l| l.contains("ann@example.com"))
        .expect("ann's reply, with its lead");
    assert!(matched.contains("human_reply"), "{matched}");
}

#[test]
fn inbound_list_json_prints_one_object_per_message() {
    let dir = replayed();
    let listed = stdout_of(&inbound(dir.path(), &["list", "--json"]));
    let objects: Vec<serde_json::Value> = listed
        .lines()
        .map(|l| serde_json::from_str(l).expect("one JSON object per line"))
        .collect();
    assert_eq!(objects.len(), corpus_files().len());
    let unmatched: Vec<&serde_json::Value> =
        objects.iter().filter(|o| o["lead"].is_null()).collect();
    assert_eq!(unmatched.len(), 1, "{listed}");
    assert_eq!(unmatched[0]["classification"], "other");
    assert_eq!(unmatched[0]["matched_by"], serde_json::Value::Null);
    assert!(
        objects
            .iter()
            .any(|o| o["lead"] == "ann@example.com" && o["classification"] == "human_reply"),
        "{listed}"
    );
    for o in &objects {
        assert!(o["id"].is_i64() && o["received_at"].is_string(), "{o}");
    }
}

#[test]
fn inbound_show_raw_prints_the_message_exactly_as_received() {
    let (dir, ids) = replayed_with_ids();
    assert_eq!(ids.len(), corpus_files().len());
    for (file, id) in ids {
        let raw = inbound(dir.path(), &["show", &id.to_string(), "--raw"]);
        assert!(raw.status.success(), "{file}");
        assert_eq!(raw.stdout, std::fs::read(&file).unwrap(), "{file}");
    }
}

#[test]
fn inbound_show_prints_the_record_and_its_effects() {
    let dir = replayed();
    let listed = stdout_of(&inbound(dir.path(), &["list", "--unmatched"]));
    let id = listed_ids(&listed)[0].to_string();
    let shown = stdout_of(&inbound(dir.path(), &["show", &id]));
    for want in [
        "classification:  other",
        "lead:            - (unmatched)",
        "from:            news@vendor.example",
        "effects:         {\"effect\":\"none\"}",
        "VENDOR WEEKLY",
    ] {
        assert!(shown.contains(want), "no `{want}` in\n{shown}");
    }
}

#[test]
fn inbound_show_of_an_unknown_id_fails_and_says_so() {
    let dir = replayed();
    let out = inbound(dir.path(), &["show", "99999"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(out.stdout.is_empty());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("no inbound message 99999"), "{err}");
}

#[test]
fn inbound_list_refuses_an_unknown_class_and_names_the_known_ones() {
    let dir = setup();
    let out = inbound(dir.path(), &["list", "--class", "nonsense"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("nonsense"), "{err}");
    for class in rewarm::inbound::classify::Classification::ALL {
        assert!(err.contains(class.as_str()), "no `{class}` in {err}");
    }
    let out = inbound(dir.path(), &["list", "--since", "7x"]);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("--since"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
