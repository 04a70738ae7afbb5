//! `rewarm leads owner-back EMAIL` clears the "gone" mark a hard-bounced notification left on
//! an owner (through the binary, on SQLite): their notifications go to them again, the record
//! keeps when and by whom, `reassign` stops warning, and a later bounce marks them gone again.

use rewarm::notify::owners::{gone_among, mark_gone};
use rewarm::store::prelude::*;
use rewarm::store::sqlite::SqliteStore;
use serde_json::{Value, json};

use crate::support::bin::{self, stdout_of};
use crate::support::config::TestConfig;
use crate::support::db::TestDatabase;

const RITA: &str = "rita@acme.example";

fn at(s: &str) -> chrono::DateTime<chrono::Utc> {
    chrono::DateTime::parse_from_rfc3339(s)
        .expect("a fixed time")
        .with_timezone(&chrono::Utc)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_owner_marked_gone_is_back_after_owner_back_and_can_be_marked_again() {
    let db = TestDatabase::sqlite();
    let dir = tempfile::tempdir().expect("temp dir");
    let d = dir.path();
    TestConfig::new(db.url())
        .set_str("notify", "fallback_email", "sales@acme.example")
        .write(&d.join("rewarm.toml"));
    let run = |args: &[&str]| {
        let args = [
            &["--config", "rewarm.toml"],
            args,
            &["--now", "2026-03-05T09:00:00Z"],
        ]
        .concat();
        bin::rewarm(d, &args)
    };

    // Not gone: refused, nothing changes.
    let out = run(&["leads", "owner-back", RITA]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("rita@acme.example is not marked gone"),
        "{out:?}"
    );

    let store = SqliteStore::connect(db.url()).await.expect("open");
    let evidence = json!({"notification_id": 12, "refused_at": "RCPT"});
    assert!(
        mark_gone(
            &store,
            "Rita@Acme.example",
            evidence,
            at("2026-03-02T10:00:00Z")
        )
        .await
        .unwrap()
    );
    assert!(
        gone_among(&store, [RITA.to_string()])
            .await
            .unwrap()
            .contains_key(RITA)
    );
    let warned = run(&[
        "leads",
        "reassign",
        "--from",
        "old@acme.example",
        "--to",
        RITA,
        "--dry-run",
    ]);
    assert!(
        String::from_utf8_lossy(&warned.stderr)
            .contains("until `rewarm leads owner-back rita@acme.example`"),
        "{warned:?}"
    );

    let out = run(&[
        "leads",
        "owner-back",
        "RITA@acme.example",
        "--by",
        "ops@acme.example",
    ]);
    assert!(out.status.success(), "{out:?}");
    assert_eq!(
        stdout_of(&out),
        "rita@acme.example is back: marked gone since 2026-03-02 10:00 UTC (notification 12 refused while sending); their notifications go to them again\n"
    );
    assert!(
        gone_among(&store, [RITA.to_string()])
            .await
            .unwrap()
            .is_empty()
    );
    let record: Value = serde_json::from_str(
        &store
            .kv_get("owner:gone:rita@acme.example")
            .await
            .unwrap()
            .expect("the record stays"),
    )
    .unwrap();
    assert_eq!(record["back_at"], "2026-03-05T09:00:00Z");
    assert_eq!(record["back_by"], "ops@acme.example");
    assert_eq!(record["evidence"]["notification_id"], 12);
    let quiet = run(&[
        "leads",
        "reassign",
        "--from",
        "old@acme.example",
        "--to",
        RITA,
        "--dry-run",
    ]);
    assert!(
        !String::from_utf8_lossy(&quiet.stderr).contains("marked gone"),
        "{quiet:?}"
    );
    // Twice: nothing to clear.
    assert_eq!(run(&["leads", "owner-back", RITA]).status.code(), Some(1));

    // A later bounce marks them gone again, from then.
    let again = json!({"notification_id": 40, "report": "delivery-status"});
    assert!(
        mark_gone(&store, RITA, again, at("2026-04-01T10:00:00Z"))
            .await
            .unwrap()
    );
    let gone = gone_among(&store, [RITA.to_string()]).await.unwrap();
    assert_eq!(gone[RITA].since, at("2026-04-01T10:00:00Z"));
}
