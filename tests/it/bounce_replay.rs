//! Bounces through the binary and the store: `inbound replay` (at a fixed `--now`) of a
//! plain-text bounce naming three leads suppresses each of them once, and replaying it again
//! changes nothing; a message unsure between bounce and reply is kept unmatched for review and
//! reaches no lead; and `record_inbound_for_all` — the store side of "one message, one state
//! change per lead" — on SQLite and PostgreSQL.

use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::path::Path;

use futures::FutureExt as _;
use rewarm::domain::email::EmailAddress;
use rewarm::domain::lead::{LeadState, NewLead};
use rewarm::store::postgres::PgStore;
use rewarm::store::prelude::*;
use rewarm::store::sqlite::SqliteStore;
use rewarm::store::{InboundEffect, InboundRecord, OtherLead, Store, SuppressionReason};

use crate::support::bin::{self, repo, stdout_of};
use crate::support::config::TestConfig;
use crate::support::db::TestDatabase;

const NOW: &str = "2026-03-02T10:00:00Z";

const LEADS: [&str; 3] = [
    "hana.jost@example.org",
    "ivan.kohl@example.org",
    "jade.lutz@example.org",
];

fn rewarm(dir: &Path, args: &[&str]) -> std::process::Output {
    bin::rewarm(dir, &[args, &["--now", NOW]].concat())
}

/// A temp dir with a config and the three leads (and a bystander) imported.
fn setup() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("a temp dir");
    TestConfig::new("sqlite://bounces.db")
        .templates_dir(&repo().join("templates"))
        .write(&dir.path().join("test.toml"));
    let mut csv = String::from("email,first_name,lost_reason,lost_at\n");
    for lead in LEADS.iter().chain(&["kim.mohr@example.org"]) {
        csv.push_str(&format!("{lead},Ann,no_budget,2025-06-01\n"));
    }
    std::fs::write(dir.path().join("leads.csv"), csv).expect("written");
    stdout_of(&rewarm(
        dir.path(),
        &["--config", "test.toml", "leads", "import", "leads.csv"],
    ));
    dir
}

async fn store(dir: &Path) -> SqliteStore {
    let url = format!("sqlite://{}", dir.join("bounces.db").display());
    SqliteStore::connect(&url).await.expect("the test database")
}

fn email(s: &str) -> EmailAddress {
    EmailAddress::parse(s).expect("an address")
}

/// The kinds of a lead's events.
async fn kinds<S: Store>(store: &S, address: &str) -> Vec<String> {
    let lead = store
        .lead_by_email(&email(address))
        .await
        .expect("read")
        .expect("the lead");
    store
        .timeline(lead.id)
        .await
        .expect("timeline")
        .into_iter()
        .map(|e| e.kind)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bounce_naming_three_leads_suppresses_each_once() {
    let dir = setup();
    let file = repo().join("tests/fixtures/bounces/simple_three_leads_plain.eml");
    let args = [
        "--config",
        "test.toml",
        "inbound",
        "replay",
        file.to_str().expect("a UTF-8 path"),
    ];
    let out = stdout_of(&rewarm(dir.path(), &args));
    let line: serde_json::Value = serde_json::from_str(out.trim()).expect("one JSON line");
    assert_eq!(line["classification"], "hard_bounce", "{out}");
    assert_eq!(line["matched_by"], "report", "{out}");
    assert_eq!(line["duplicate"], false, "{out}");
    let mut named: Vec<String> = vec![line["lead"].as_str().expect("a lead").to_string()];
    named.extend(
        line["others"]
            .as_array()
            .expect("others")
            .iter()
            .map(|v| v.as_str().expect("an address").to_string()),
    );
    named.sort();
    assert_eq!(named, LEADS);

    let store = store(dir.path()).await;
    for lead in LEADS {
        let l = store
            .lead_by_email(&email(lead))
            .await
            .unwrap()
            .expect("the lead");
        assert_eq!(l.state, LeadState::Suppressed, "{lead}");
        let entry = store
            .suppression_for(&email(lead))
            .await
            .unwrap()
            .expect("listed");
        assert_eq!(entry.reason, SuppressionReason::HardBounce, "{lead}");
        let k = kinds(&store, lead).await;
        assert_eq!(
            k.iter().filter(|k| *k == "inbound").count(),
            1,
            "{lead}: {k:?}"
        );
        assert_eq!(
            k.iter().filter(|k| *k == "suppressed").count(),
            1,
            "{lead}: {k:?}"
        );
    }
    let bystander = store
        .lead_by_email(&email("kim.mohr@example.org"))
        .await
        .unwrap()
        .expect("the lead");
    assert_eq!(bystander.state, LeadState::New);
    let kept = store.inbound_messages(0, 10).await.unwrap();
    assert_eq!(kept.len(), 1, "one message, one row");
    assert_eq!(kept[0].effects["others"].as_array().map(Vec::len), Some(2));

    // Again: a duplicate, and nothing changes for anyone.
    let before: Vec<Vec<String>> = futures::future::join_all(LEADS.map(|l| kinds(&store, l))).await;
    let again = stdout_of(&rewarm(dir.path(), &args));
    let line: serde_json::Value = serde_json::from_str(again.trim()).expect("one JSON line");
    assert_eq!(line["duplicate"], true, "{again}");
    let after: Vec<Vec<String>> = futures::future::join_all(LEADS.map(|l| kinds(&store, l))).await;
    assert_eq!(before, after);
    assert_eq!(store.inbound_messages(0, 10).await.unwrap().len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_unsure_between_bounce_and_reply_is_kept_for_review() {
    let dir = setup();
    // From a lead's own address, but a forwarded bounce: never a re-warm.
    let raw = "From: Hana Jost <hana.jost@example.org>\r\nTo: sales@acme.example\r\n\
               Subject: Fwd: Undeliverable: A faster way to follow up on old leads\r\n\
               Message-ID: <fwd-1@example.org>\r\n\r\n\
               See below, Ivan left us.\r\n\r\n\
               ---------- Forwarded message ---------\r\n\
               From: postmaster@example.org\r\n\
               Subject: Undeliverable: A faster way to follow up on old leads\r\n\r\n\
               Delivery has failed to these recipients or groups: ivan.kohl@example.org\r\n";
    std::fs::write(dir.path().join("fwd.eml"), raw).expect("written");
    let out = stdout_of(&rewarm(
        dir.path(),
        &["--config", "test.toml", "inbound", "replay", "fwd.eml"],
    ));
    let line: serde_json::Value = serde_json::from_str(out.trim()).expect("one JSON line");
    assert_eq!(line["classification"], "other", "{out}");
    assert_eq!(line["lead"], serde_json::Value::Null, "{out}");
    let listed = stdout_of(&rewarm(
        dir.path(),
        &["--config", "test.toml", "inbound", "list", "--unmatched"],
    ));
    assert!(listed.contains("Fwd: Undeliverable"), "{listed}");
    let store = store(dir.path()).await;
    for lead in LEADS {
        let l = store.lead_by_email(&email(lead)).await.unwrap().unwrap();
        assert_eq!(l.state, LeadState::New, "{lead}");
        assert!(!kinds(&store, lead).await.contains(&"inbound".to_string()));
    }
    assert!(store.notifications(0, 10).await.unwrap().is_empty());
}

// ── The store, on both backends ─────────────────────────────────────────────────────────

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_one_message_changes_each_named_lead_once() {
    let dir = tempfile::tempdir().expect("a temp dir");
    let url = format!("sqlite://{}", dir.path().join("s.db").display());
    let store = SqliteStore::connect(&url).await.expect("open");
    store.migrate().await.expect("migrate");
    one_message_changes_each_named_lead_once(store).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_one_message_changes_each_named_lead_once() {
    on_postgres(
        "bounce_one_message_changes_each_named_lead_once",
        one_message_changes_each_named_lead_once,
    )
    .await;
}

async fn on_postgres<F, Fut>(test: &str, body: F)
where
    F: FnOnce(PgStore) -> Fut,
    Fut: Future<Output = ()>,
{
    let Some(db) = TestDatabase::postgres(test).await else {
        return;
    };
    let store = PgStore::connect(db.url()).await.expect("connect");
    store.migrate().await.expect("migrate PostgreSQL");
    let result = AssertUnwindSafe(body(store.clone())).catch_unwind().await;
    store.close().await;
    db.drop_database().await;
    if let Err(panic) = result {
        std::panic::resume_unwind(panic);
    }
}

fn t0() -> chrono::DateTime<chrono::Utc> {
    rewarm::cli::parse_now(NOW).expect("a fixed time")
}

/// One bounce: the matched lead and two others (one failed for good, one for now; one named
/// twice, and the matched one again) each change once; the same key again changes nothing.
async fn one_message_changes_each_named_lead_once<S: Store>(store: S) {
    let new_leads: Vec<NewLead> = ["a@x.example", "b@x.example", "c@x.example", "d@x.example"]
        .iter()
        .map(|a| NewLead {
            email: Some(email(a)),
            ..NewLead::default()
        })
        .collect();
    store
        .upsert_leads(&new_leads, "test", t0())
        .await
        .expect("leads");
    let mut ids = Vec::new();
    for a in ["a@x.example", "b@x.example", "c@x.example", "d@x.example"] {
        ids.push(store.lead_by_email(&email(a)).await.unwrap().unwrap().id);
    }
    let record = InboundRecord {
        dedupe_key: "message-id:bounce-1@mx.example".into(),
        source: "test".into(),
        received_at: t0(),
        message_id: Some("bounce-1@mx.example".into()),
        from_address: Some("mailer-daemon@mx.example".into()),
        subject: Some("failure notice".into()),
        classification: "hard_bounce".into(),
        lead_id: Some(ids[0]),
        delivery_id: None,
        matched_by: Some("report".into()),
        text: Some("Sorry.".into()),
        raw: b"Subject: failure notice\r\n\r\nSorry.\r\n".to_vec(),
    };
    let suppress = InboundEffect::Suppress {
        reason: SuppressionReason::HardBounce,
        evidence: serde_json::json!({"status": "5.1.1"}),
    };
    let others = vec![
        OtherLead {
            lead_id: ids[1],
            classification: "hard_bounce".into(),
            effect: suppress.clone(),
        },
        OtherLead {
            lead_id: ids[2],
            classification: "soft_bounce".into(),
            effect: InboundEffect::SoftBounce {
                limit: 3,
                evidence: serde_json::json!({"status": "4.2.2"}),
            },
        },
        OtherLead {
            lead_id: ids[1],
            classification: "hard_bounce".into(),
            effect: suppress.clone(),
        },
        OtherLead {
            lead_id: ids[0],
            classification: "hard_bounce".into(),
            effect: suppress.clone(),
        },
    ];
    let applied = store
        .record_inbound_for_all(&record, &suppress, &others, t0())
        .await
        .expect("recorded");
    assert!(!applied.duplicate);
    let count = |kinds: &[String], kind: &str| kinds.iter().filter(|k| *k == kind).count();
    for (i, state, suppressed, soft) in [
        (0, LeadState::Suppressed, 1, 0),
        (1, LeadState::Suppressed, 1, 0),
        (2, LeadState::New, 0, 1),
        (3, LeadState::New, 0, 0),
    ] {
        let lead = store.leads_by_ids(&[ids[i]]).await.unwrap().remove(0);
        assert_eq!(lead.state, state, "lead {i}");
        let k: Vec<String> = store
            .timeline(ids[i])
            .await
            .unwrap()
            .into_iter()
            .map(|e| e.kind)
            .collect();
        let inbound = usize::from(i < 3);
        assert_eq!(count(&k, "inbound"), inbound, "lead {i}: {k:?}");
        assert_eq!(count(&k, "suppressed"), suppressed, "lead {i}: {k:?}");
        assert_eq!(count(&k, "soft_bounce"), soft, "lead {i}: {k:?}");
    }
    let kept = store.inbound_messages(0, 10).await.unwrap();
    assert_eq!(kept.len(), 1);
    let listed: Vec<i64> = kept[0].effects["others"]
        .as_array()
        .expect("others")
        .iter()
        .map(|o| o["lead_id"].as_i64().expect("an id"))
        .collect();
    assert_eq!(listed, [ids[1], ids[2]]);

    let again = store
        .record_inbound_for_all(&record, &suppress, &others, t0())
        .await
        .expect("recorded");
    assert!(again.duplicate);
    assert_eq!(again.inbound_id, applied.inbound_id);
    let k: Vec<String> = store
        .timeline(ids[2])
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.kind)
        .collect();
    assert_eq!(count(&k, "soft_bounce"), 1, "{k:?}");
}
