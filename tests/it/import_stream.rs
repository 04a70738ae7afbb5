//! Imports that stream (issue 12): a file of more than one chunk (5,000 leads) is checked
//! whole before anything is written (`--strict` with a bad row in a later chunk writes
//! nothing), duplicates and owner conflicts across chunks fold into the first row as for a
//! small file, an unchanged re-import writes nothing (and a lead changed since by another path
//! is read and merged again) — on SQLite and PostgreSQL; and a JSON
//! Lines file and the API's batches store the same leads and events.

use std::path::{Path, PathBuf};
use std::process::Output;

use rewarm::domain::email::EmailAddress;
use rewarm::store::prelude::*;
use serde_json::{Value, json};

use crate::support::bin;
use crate::support::config::TestConfig;
use crate::support::db::{TestDatabase, with_postgres};
use crate::support::http_app::{HttpApp, T0, at};

const NOW: &str = "2026-03-02T10:00:00Z";
/// More than two chunks.
const ROWS: usize = 12_000;

struct Deploy {
    dir: tempfile::TempDir,
    config: PathBuf,
}

impl Deploy {
    fn new(url: &str) -> Deploy {
        let dir = bin::dir_with_templates();
        let config = TestConfig::bare(url)
            .set_str("", "default_timezone", "UTC")
            .templates_dir(&dir.path().join("templates"))
            .segment("all", "checkin")
            .campaign("checkin", "90d", "30d")
            .set("import", "owner_conflict", "\"latest_lost_at\"")
            .write(&dir.path().join("rewarm.toml"));
        Deploy { dir, config }
    }

    fn rewarm(&self, args: &[&str]) -> Output {
        bin::command()
            .arg("--config")
            .arg(&self.config)
            .args(args)
            .args(["--now", NOW])
            .env_remove("RUST_LOG")
            .env_remove("REWARM_CONFIG")
            .current_dir(self.dir.path())
            .output()
            .expect("run the rewarm binary")
    }

    fn lead(&self, email: &str) -> Option<Value> {
        let out = self.rewarm(&["leads", "show", email, "--json"]);
        out.status
            .success()
            .then(|| serde_json::from_slice(&out.stdout).expect("JSON"))
    }

    /// `leads.csv` with a header and `rows` (line 2 onwards).
    fn csv(&self, rows: &[String]) -> String {
        let path = self.dir.path().join("leads.csv");
        let mut text = String::from("email,first_name,owner_email,lost_at,tags\n");
        for row in rows {
            text.push_str(row);
            text.push('\n');
        }
        std::fs::write(&path, text).expect("write the CSV");
        path.display().to_string()
    }
}

fn filler(i: usize) -> String {
    format!("lead{i}@acme.example,Lee{i},,2026-01-01,bulk")
}

fn text(out: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        bin::stderr_of(out),
    )
}

async fn strict_refuses_a_file_with_a_bad_row_in_a_later_chunk(url: String) {
    let d = Deploy::new(&url);
    let mut rows: Vec<String> = (0..ROWS).map(filler).collect();
    // Line 11,002: in the third chunk.
    rows[11_000] = "not-an-email,Bad,,2026-01-01,".to_string();
    let csv = d.csv(&rows);

    let strict = d.rewarm(&["leads", "import", &csv, "--strict"]);
    let (out, err) = text(&strict);
    assert!(!strict.status.success(), "{out}\n{err}");
    assert!(err.contains("leads.csv:11002: field `email`"), "{err}");
    assert!(
        err.contains("1 bad row(s); nothing was imported (--strict)"),
        "{err}"
    );
    assert!(d.lead("lead0@acme.example").is_none(), "nothing written");

    let lenient = d.rewarm(&["leads", "import", &csv]);
    let (out, err) = text(&lenient);
    assert_eq!(lenient.status.code(), Some(3), "{out}\n{err}");
    assert!(
        out.contains(
            "inserted 11999, updated 0, unchanged 0, merged 0 duplicate row(s), rejected 1"
        ),
        "{out}"
    );
    let again = d.rewarm(&["leads", "import", &csv]);
    let (out, err) = text(&again);
    assert_eq!(again.status.code(), Some(3), "{out}\n{err}");
    assert!(
        out.contains(
            "inserted 0, updated 0, unchanged 11999, merged 0 duplicate row(s), rejected 1"
        ),
        "{out}"
    );
    let last = d.lead("lead11999@acme.example").expect("the last lead");
    let kinds: Vec<&str> = last["timeline"]
        .as_array()
        .expect("a timeline")
        .iter()
        .filter_map(|e| e["kind"].as_str())
        .collect();
    assert_eq!(kinds, vec!["imported"], "no event for an unchanged row");
}

async fn rows_of_one_lead_in_different_chunks_fold_into_the_first(url: String) {
    let d = Deploy::new(&url);
    let mut rows: Vec<String> = (0..ROWS).map(filler).collect();
    rows[0] = "dup@acme.example,,rita@acme.example,2026-02-01,a".to_string();
    // Line 9,000, in the second chunk: an older loss, another owner, a name, another tag.
    rows[8_998] = "DUP@acme.example,Dee,tom@acme.example,2025-01-01,b".to_string();
    let csv = d.csv(&rows);

    let import = d.rewarm(&["leads", "import", &csv]);
    let (out, err) = text(&import);
    assert!(import.status.success(), "{out}\n{err}");
    assert!(
        out.contains(
            "inserted 11999, updated 0, unchanged 0, merged 1 duplicate row(s), rejected 0"
        ),
        "{out}"
    );
    assert!(
        err.contains("dup@acme.example: rows disagree on the owner (line 2 rita@acme.example, line 9000 tom@acme.example); kept rita@acme.example (import.owner_conflict = \"latest_lost_at\")"),
        "{err}"
    );
    let dup = d.lead("dup@acme.example").expect("the folded lead");
    assert_eq!(dup["lead"]["owner_email"], "rita@acme.example");
    assert_eq!(dup["lead"]["first_name"], "Dee", "later values win");
    assert_eq!(dup["lead"]["tags"], json!(["a", "b"]));
    assert_eq!(dup["timeline"].as_array().map(Vec::len), Some(1));
    let next = d.lead("lead1@acme.example").expect("the second row's lead");
    assert!(
        dup["lead"]["id"].as_i64() < next["lead"]["id"].as_i64(),
        "the folded lead keeps its first row's place"
    );

    let again = d.rewarm(&["leads", "import", &csv]);
    let (out, err) = text(&again);
    assert!(again.status.success(), "{out}\n{err}");
    assert!(
        out.contains("inserted 0, updated 0, unchanged 11999"),
        "{out}"
    );
}

/// Leads as JSON objects: more than a chunk, one address twice (apart), custom fields.
/// `sql` on the database at `url`, as any other code path (or a person with `psql`) writes it.
async fn execute(url: &str, sql: &'static str) {
    if url.starts_with("postgres") {
        let pool = sqlx::PgPool::connect(url).await.expect("connect");
        sqlx::query(sql).execute(&pool).await.expect("execute");
        pool.close().await;
    } else {
        let pool = sqlx::SqlitePool::connect(url).await.expect("connect");
        sqlx::query(sql).execute(&pool).await.expect("execute");
        pool.close().await;
    }
}

/// The hash that lets a re-import skip a lead without reading it survives what does not
/// change the lead's data (the enrolment's state: a million rows on a first pass) and is
/// cleared by what does, whichever code path writes it (the triggers of migration 0017; on
/// PostgreSQL their WHEN clause holds the whole test since migration 0028).
async fn a_state_change_keeps_the_import_hash_and_a_data_change_clears_it(url: String) {
    let d = Deploy::new(&url);
    let rows: Vec<String> = (0..3).map(filler).collect();
    let csv = d.csv(&rows);
    let first = d.rewarm(&["leads", "import", &csv]);
    assert!(first.status.success(), "{:?}", text(&first));
    let pass = d.rewarm(&["run", "--once"]);
    assert!(pass.status.success(), "{:?}", text(&pass));
    assert_eq!(
        d.lead("lead1@acme.example").expect("lead1")["lead"]["state"],
        "nurturing"
    );
    let again = d.rewarm(&["leads", "import", &csv]);
    let (out, err) = text(&again);
    assert!(
        out.contains("inserted 0, updated 0, unchanged 3"),
        "{out}\n{err}"
    );

    execute(
        &url,
        "UPDATE leads SET first_name = 'Changed' WHERE email = 'lead1@acme.example'",
    )
    .await;
    let after_edit = d.rewarm(&["leads", "import", &csv]);
    let (out, err) = text(&after_edit);
    assert!(
        out.contains("inserted 0, updated 1, unchanged 2"),
        "the edited lead is read and merged again: {out}\n{err}"
    );
    assert_eq!(
        d.lead("lead1@acme.example").expect("lead1")["lead"]["first_name"],
        "Lee1"
    );
}

/// Each body `async fn NAME(url: String)` runs as two tests: `sqlite::NAME` on a fresh SQLite
/// database and `postgres::NAME` on a fresh PostgreSQL one (skipped without a server).
macro_rules! on_both {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test]
                async fn $name() {
                    let db = super::TestDatabase::sqlite();
                    super::$name(db.url().to_string()).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test]
                async fn $name() {
                    super::with_postgres(stringify!($name), super::$name).await;
                }
            )*
        }
    };
}

on_both!(
    strict_refuses_a_file_with_a_bad_row_in_a_later_chunk,
    rows_of_one_lead_in_different_chunks_fold_into_the_first,
    a_state_change_keeps_the_import_hash_and_a_data_change_clears_it,
);

fn api_items() -> Vec<Value> {
    let mut items: Vec<Value> = (0..6_000)
        .map(|i| {
            json!({"email": format!("p{i}@acme.example"), "first_name": format!("P{i}"),
                   "lost_reason": if i % 3 == 0 { "budget" } else { "timing" },
                   "lost_at": "2026-01-15", "tags": ["api", "bulk"], "plan": "pro"})
        })
        .collect();
    items.push(json!({"email": "P7@acme.example", "company": "Seven Co", "tags": "late"}));
    items
}

/// A lead's data and the kinds of its events, as stored.
async fn stored<S: Store>(store: &S, email: &str) -> (Value, Vec<String>) {
    let address = EmailAddress::parse(email).expect("an address");
    let lead = store
        .lead_by_email(&address)
        .await
        .expect("read")
        .unwrap_or_else(|| panic!("no lead {email}"));
    let kinds = store
        .timeline(lead.id)
        .await
        .expect("timeline")
        .into_iter()
        .map(|e| e.kind)
        .collect();
    let mut value = serde_json::to_value(&lead).expect("JSON");
    for volatile in ["id", "created_at", "updated_at"] {
        value[volatile] = Value::Null;
    }
    (value, kinds)
}

fn write_jsonl(dir: &Path, items: &[Value]) -> PathBuf {
    let path = dir.join("leads.jsonl");
    let text: String = items.iter().map(|v| format!("{v}\n")).collect();
    std::fs::write(&path, text).expect("write the JSON lines");
    path
}

#[tokio::test]
async fn a_jsonl_file_and_the_api_batches_store_the_same_leads() {
    let app = HttpApp::spawn().await;
    let items = api_items();
    for batch in items.chunks(5_000) {
        let (status, body) = app.post_leads(&Value::Array(batch.to_vec())).await;
        assert_eq!(status, reqwest::StatusCode::OK, "{body}");
    }
    let (status, body) = app.post_leads(&Value::Array(items[..5_000].to_vec())).await;
    assert_eq!(status, reqwest::StatusCode::OK, "{body}");
    assert_eq!(
        body,
        json!({"inserted": 0, "updated": 0, "unchanged": 5_000})
    );

    let db = TestDatabase::sqlite();
    let file_store = rewarm::store::sqlite::SqliteStore::connect(db.url())
        .await
        .expect("connect");
    file_store.migrate().await.expect("migrate");
    let dir = tempfile::tempdir().expect("a temp dir");
    let jsonl = write_jsonl(dir.path(), &items);
    let settings = app.current.get().settings.clone();
    let outcome =
        rewarm::cli::leads::import_file(&file_store, &settings, &jsonl, true, at(T0), true)
            .await
            .expect("import");
    assert_eq!(
        (outcome.summary.inserted, outcome.merged, outcome.rejected),
        (6_000, 1, 0)
    );

    for email in ["p0@acme.example", "p7@acme.example", "p5999@acme.example"] {
        let (from_api, api_kinds) = stored(&app.store, email).await;
        let (from_file, file_kinds) = stored(&file_store, email).await;
        assert_eq!(from_api, from_file, "{email}");
        // The API got p7's second row in a later request: an update there, folded in the file.
        let api_expected = if email == "p7@acme.example" {
            vec!["imported", "updated"]
        } else {
            vec!["imported"]
        };
        assert_eq!(api_kinds, api_expected, "{email}");
        assert_eq!(file_kinds, vec!["imported"], "{email}");
    }
    let (seven, _) = stored(&file_store, "p7@acme.example").await;
    assert_eq!(seven["company"], "Seven Co");
    assert_eq!(seven["tags"], json!(["api", "bulk", "late"]));
}
