//! Personal data, end to end with the binary on SQLite and PostgreSQL: a lead with a full
//! history (imported, emailed over a real SMTP server, replied, re-warmed, its owner
//! notified, suppressed, named in another lead's field) is exported, then forgotten; after
//! that no text, JSON or bytes column of any table — found through the database's own
//! schema, not through rewarm's code — holds its address, its names, its company, its title,
//! its custom field or its reply; the other lead keeps its data; a re-import of the same file
//! skips the forgotten address with a clear message and the daemon never emails it again.

use std::path::PathBuf;
use std::process::Output;

use serde_json::Value;
use sqlx::Connection as _;

use crate::support::bin;
use crate::support::config::TestConfig;
use crate::support::db::{TestDatabase, with_postgres};
use crate::support::smtp_server::TestSmtpServer;

const ANN: &str = "ann.smith@zyx.example";
const BOB: &str = "bob@globex.example";
const OWNER: &str = "rita@acme.example";
/// A Monday; the leads were lost 100 days before, so their first email is due at once.
const T0: &str = "2026-03-02T10:00:00Z";
/// Everything distinctive about Ann, lower-cased: none of it may survive `leads forget`.
const ANN_VALUES: [&str; 7] = [
    "ann.smith@zyx.example",
    "annabel",
    "quorrington",
    "zyxwv",
    "widget officer",
    "zx-99812",
    "555-0199",
];

const LEADS_CSV: &str = "email,first_name,last_name,company,title,owner_email,lost_at,crm_id,assistant
ann.smith@zyx.example,Annabel,Quorrington,Zyxwv Industries,Chief Widget Officer,rita@acme.example,2025-11-22T10:00:00Z,ZX-99812,
bob@globex.example,Bob,Jones,Globex,CEO,rita@acme.example,2025-11-22T10:00:00Z,GX-1,ann.smith@zyx.example
";

struct Deploy {
    dir: tempfile::TempDir,
    config: PathBuf,
    smtp: TestSmtpServer,
}

impl Deploy {
    async fn new(url: &str) -> Deploy {
        let dir = bin::dir_with_templates();
        let smtp = TestSmtpServer::start().await;
        let config = TestConfig::new(url)
            .templates_dir(&dir.path().join("templates"))
            .smtp(smtp.port(), 1)
            .any_time("checkin")
            .write(&dir.path().join("rewarm.toml"));
        Deploy { dir, config, smtp }
    }

    fn rewarm(&self, args: &[&str]) -> Output {
        bin::command()
            .arg("--config")
            .arg(&self.config)
            .args(args)
            .env_remove("RUST_LOG")
            .env_remove("REWARM_CONFIG")
            .current_dir(self.dir.path())
            .output()
            .expect("run the rewarm binary")
    }

    fn ok(&self, args: &[&str]) -> String {
        let out = self.rewarm(args);
        assert!(
            out.status.success(),
            "rewarm {args:?} failed ({}):\n{}\n{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    fn import(&self, csv: &str) -> Output {
        let file = self.dir.path().join("leads.csv");
        std::fs::write(&file, csv).expect("write leads");
        self.rewarm(&[
            "leads",
            "import",
            file.to_str().expect("a path"),
            "--now",
            T0,
        ])
    }

    fn mail_to(&self, to: &str) -> Vec<String> {
        self.smtp
            .messages()
            .iter()
            .filter(|m| m.rcpt_to.iter().any(|r| r.eq_ignore_ascii_case(to)))
            .map(|m| String::from_utf8_lossy(&m.data).replace("=\r\n", ""))
            .collect()
    }

    /// A reply from Ann to her first email (her name and phone number in it).
    fn reply_from_ann(&self) {
        let first = self
            .mail_to(ANN)
            .into_iter()
            .next()
            .expect("an email to Ann");
        let id = first
            .lines()
            .find_map(|l| {
                l.split_once(':')
                    .filter(|(k, _)| k.eq_ignore_ascii_case("message-id"))
                    .map(|(_, v)| v.trim().to_string())
            })
            .expect("a Message-ID");
        let raw = format!(
            "From: Annabel Quorrington <{ANN}>\r\nTo: hello@acme.example\r\nSubject: Re: checking in\r\n\
             Message-ID: <reply-{ANN}>\r\nIn-Reply-To: {id}\r\n\
             Date: Mon, 2 Mar 2026 10:30:00 +0000\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n\
             Happy to talk again, the budget freeze is over. My direct line is 555-0199.\r\n\
             Annabel Quorrington, Chief Widget Officer, Zyxwv Industries\r\n"
        );
        let file = self.dir.path().join("reply.eml");
        std::fs::write(&file, raw).expect("write the reply");
        let out = self.ok(&[
            "inbound",
            "replay",
            file.to_str().expect("a path"),
            "--now",
            "2026-03-02T11:00:00Z",
        ]);
        assert!(out.contains("human_reply"), "{out}");
    }

    fn show(&self, email: &str) -> Value {
        let out = self.ok(&["leads", "show", email, "--json"]);
        serde_json::from_str(&out).unwrap_or_else(|e| panic!("leads show --json: {e}:\n{out}"))
    }
}

/// Every cell of every text, JSON and bytes column of every table (read off the
/// database's own schema), lower-cased, with where it is: `table.column#id`.
async fn every_cell(url: &str) -> Vec<(String, String)> {
    let mut cells = Vec::new();
    if url.starts_with("sqlite:") {
        let mut conn = sqlx::SqliteConnection::connect(url).await.expect("open");
        let columns: Vec<(String, String, String)> = sqlx::query_as(
            "SELECT m.name, p.name, upper(p.type) FROM sqlite_master m JOIN pragma_table_info(m.name) p
             WHERE m.type = 'table' ORDER BY m.name, p.cid",
        )
        .fetch_all(&mut conn)
        .await
        .expect("schema");
        assert!(columns.len() > 60, "the whole schema: {columns:?}");
        for (table, column, ty) in columns {
            if ty.contains("INT") {
                continue;
            }
            // Every table, WITHOUT ROWID ones included: a row is named by its position.
            let sql = format!("SELECT CAST(\"{column}\" AS BLOB) FROM \"{table}\"");
            let rows: Vec<(Option<Vec<u8>>,)> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
                .fetch_all(&mut conn)
                .await
                .expect("read a column");
            for (id, (cell,)) in rows.into_iter().enumerate() {
                let text = String::from_utf8_lossy(&cell.unwrap_or_default()).to_lowercase();
                cells.push((format!("{table}.{column}#{id}"), text));
            }
        }
    } else {
        let mut conn = sqlx::PgConnection::connect(url).await.expect("connect");
        let columns: Vec<(String, String, String)> = sqlx::query_as(
            "SELECT table_name::text, column_name::text, data_type::text FROM information_schema.columns
             WHERE table_schema = current_schema() ORDER BY table_name, ordinal_position",
        )
        .fetch_all(&mut conn)
        .await
        .expect("schema");
        assert!(columns.len() > 60, "the whole schema: {columns:?}");
        for (table, column, ty) in columns {
            let read = match ty.as_str() {
                "bytea" => format!("encode(\"{column}\", 'escape')"),
                "text" | "character varying" | "jsonb" | "json" | "ARRAY" => {
                    format!("\"{column}\"::text")
                }
                _ => continue,
            };
            let sql = format!("SELECT ctid::text, {read} FROM \"{table}\"");
            let rows: Vec<(String, Option<String>)> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
                .fetch_all(&mut conn)
                .await
                .expect("read a column");
            for (id, cell) in rows {
                cells.push((
                    format!("{table}.{column}{id}"),
                    cell.unwrap_or_default().to_lowercase(),
                ));
            }
        }
    }
    cells
}

/// Where Ann's values still are (empty: nowhere).
async fn ann_left_in(url: &str) -> Vec<String> {
    let mut found = Vec::new();
    for (place, text) in every_cell(url).await {
        for value in ANN_VALUES {
            if text.contains(value) {
                found.push(format!("{value} in {place}"));
            }
        }
    }
    found
}

async fn forget_erases_everything(url: String) {
    let d = Deploy::new(&url).await;
    assert!(d.import(LEADS_CSV).status.success());
    d.ok(&["run", "--once", "--now", T0]);
    assert_eq!(d.mail_to(ANN).len(), 1, "Ann's first email");
    d.reply_from_ann();
    d.ok(&["run", "--once", "--now", "2026-03-02T11:00:00Z"]);
    assert!(
        d.mail_to(OWNER).iter().any(|m| m.contains("Annabel")),
        "her owner was told, by name"
    );
    d.ok(&["suppress", "add", ANN, "--now", "2026-03-02T12:00:00Z"]);
    let before = ann_left_in(&url).await;
    for table in [
        "leads.",
        "events.",
        "inbound.",
        "notifications.",
        "suppressions.",
    ] {
        assert!(
            before.iter().any(|p| p.contains(table)),
            "the history reaches {table}: {before:?}"
        );
    }

    // Export: everything held, as JSON.
    let export: Value = serde_json::from_str(&d.ok(&["leads", "export", ANN])).expect("JSON");
    assert_eq!(export["lead"]["first_name"], "Annabel");
    assert_eq!(export["forgotten"], false);
    for table in [
        "events",
        "deliveries",
        "enrolments",
        "inbound",
        "notifications",
    ] {
        let rows = export["rows"][table].as_array().map_or(0, Vec::len);
        assert!(rows > 0, "export has {table}: {export:#}");
    }
    assert!(
        export["mentions"]["leads"].as_array().map_or(0, Vec::len) == 1,
        "Bob's row names Ann: {export:#}"
    );
    assert!(export["rows"]["inbound"].to_string().contains("555-0199"));

    // Without --yes nothing changes.
    let dry = d.rewarm(&["leads", "forget", ANN, "--now", "2026-03-03T09:00:00Z"]);
    assert!(!dry.status.success());
    let said = bin::stderr_of(&dry);
    assert!(
        said.contains("would forget") && said.contains("--yes"),
        "{said}"
    );
    assert_eq!(d.show(ANN)["lead"]["first_name"], "Annabel");

    let out = d.ok(&[
        "leads",
        "forget",
        ANN,
        "--yes",
        "--now",
        "2026-03-03T09:00:00Z",
    ]);
    assert!(out.contains("forgot ann.smith@zyx.example"), "{out}");
    let left = ann_left_in(&url).await;
    assert!(left.is_empty(), "Ann's data is still held: {left:#?}");

    // Bob keeps his data; only Ann's address in his field is gone.
    let bob = d.show(BOB);
    assert_eq!(bob["lead"]["company"], "Globex");
    assert_eq!(bob["lead"]["first_name"], "Bob");
    assert_eq!(bob["lead"]["fields"]["assistant"], "[erased]");
    assert_eq!(bob["lead"]["fields"]["crm_id"], "GX-1");

    // The lead's history stays, without content, ending with `forgotten`.
    let id = out
        .split("is now ")
        .nth(1)
        .and_then(|s| s.split(';').next())
        .expect("the placeholder address");
    let shown = d.show(id);
    assert_eq!(shown["lead"]["state"], "suppressed");
    let timeline = shown["timeline"].as_array().expect("a timeline");
    let last = timeline.last().expect("events");
    assert_eq!(last["kind"], "forgotten");
    assert_eq!(last["detail"]["from"], "suppressed");
    assert!(timeline.iter().any(|e| e["kind"] == "replied"));

    let export: Value = serde_json::from_str(&d.ok(&["leads", "export", ANN])).expect("JSON");
    assert_eq!(export["forgotten"], true);
    assert_eq!(export["lead"], Value::Null);

    // A re-import skips her, saying so; the daemon never emails her again.
    let first_row = LEADS_CSV.lines().take(2).collect::<Vec<_>>().join("\n");
    let again = d.import(&format!(
        "{first_row}\ncarl@initech.example,Carl,,,,,2025-11-22T10:00:00Z,,\n"
    ));
    assert!(again.status.success(), "{}", bin::stderr_of(&again));
    let stdout = String::from_utf8_lossy(&again.stdout);
    assert!(
        stdout.contains("inserted 1,") && stdout.contains("skipped 1 forgotten"),
        "{stdout}"
    );
    assert!(
        bin::stderr_of(&again).contains("skipped ann.smith@zyx.example: forgotten"),
        "{}",
        bin::stderr_of(&again)
    );
    assert!(!d.rewarm(&["leads", "show", ANN]).status.success());
    d.ok(&["run", "--once", "--now", "2026-06-01T10:00:00Z"]);
    assert_eq!(d.mail_to(ANN).len(), 1, "nothing more to Ann");
    assert!(ann_left_in(&url).await.is_empty());

    // Forgetting again: nothing left to erase.
    let twice = d.ok(&["leads", "forget", ANN, "--yes"]);
    assert!(twice.contains("already forgotten"), "{twice}");
    // The counters `status` reads followed every change (import, sends, forget, re-import).
    crate::support::counts::assert_exact(&url).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forget_leaves_no_personal_data_in_any_table_and_a_reimport_skips_it_on_sqlite() {
    let db = TestDatabase::sqlite();
    forget_erases_everything(db.url().to_string()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forget_leaves_no_personal_data_in_any_table_and_a_reimport_skips_it_on_postgres() {
    with_postgres(
        "forget_leaves_no_personal_data_in_any_table_and_a_reimport_skips_it_on_postgres",
        forget_erases_everything,
    )
    .await;
}

/// `POST /api/leads` checks the forgotten list like an import: the forgotten address is
/// left out and counted, the others are written.
#[tokio::test]
async fn the_api_refuses_a_forgotten_address_and_says_so() {
    use rewarm::domain::privacy::{PEPPER_SECRET, address_hash, new_pepper};
    use rewarm::store::prelude::*;
    use serde_json::json;

    let app = crate::support::http_app::HttpApp::spawn().await;
    let (_, answer) = app
        .post_leads(&json!({"email": "ann@acme.example", "first_name": "Annabel"}))
        .await;
    assert_eq!(answer["inserted"], 1, "{answer}");
    let ann = rewarm::domain::email::EmailAddress::parse("ann@acme.example").unwrap();
    let pepper = app.store.secret(PEPPER_SECRET, new_pepper).await.unwrap();
    let now = crate::support::http_app::at("2026-03-03T09:00:00Z");
    let report = app
        .store
        .forget(&ann, &address_hash(&pepper, &ann), "test", now)
        .await
        .unwrap();
    assert!(report.lead_id.is_some());

    let (status, answer) = app
        .post_leads(&json!([
            {"email": "Ann@Acme.example", "first_name": "Annabel"},
            {"email": "bob@acme.example"},
        ]))
        .await;
    assert_eq!(status, reqwest::StatusCode::OK, "{answer}");
    assert_eq!(
        answer,
        json!({"inserted": 1, "updated": 0, "unchanged": 0, "forgotten": 1})
    );
    assert!(app.find_lead("ann@acme.example").await.is_none());
    assert!(app.find_lead("bob@acme.example").await.is_some());
}
