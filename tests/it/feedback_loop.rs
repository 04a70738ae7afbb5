//! Closing the loop through the real `rewarm` binary: the daemon (`rewarm run --now T`, a
//! clock that starts at a fixed time and runs on) sends a lead its first email to a capturing
//! SMTP server; the lead's reply arrives on `POST /inbound/raw`; the lead re-warms and its
//! owner gets an email (read back from the SMTP server) carrying one-click action links.
//! Opening "Not now — 3 months" changes nothing; confirming it (POST) puts the lead back in
//! nurture with its history, its next email three months later. "Won" stops everything.
//! Forged, expired and other-owner links are refused. The same on PostgreSQL.

use crate::support;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use chrono::{DateTime, Months, Utc};
use rewarm::domain::email::EmailAddress;
use rewarm::domain::lead::{Lead, LeadState};
use rewarm::notify::feedback::{self, FeedbackAction};
use rewarm::secret::Secret;
use rewarm::store::prelude::*;
use rewarm::store::{Rows, Table};
use rewarm::tokens::TokenKeys;
use support::bin::{self, repo};
use support::config::TestConfig;
use support::daemon::Daemon;
use support::db::TestDatabase;
use support::smtp_server::TestSmtpServer;

const LEAD: &str = "fay.fine@finekg.example";
const OWNER: &str = "maria.chen@acme.test";
const START: &str = "2026-03-02T10:00:00Z";
const RAW: (&str, &str) = ("REWARM_FB_RAW_TOKEN", "fb-raw-bearer-123");
const TOKEN_KEY: (&str, &str) = (
    "REWARM_FB_TOKEN_KEY",
    "fb-token-key-0123456789abcdef0123456789",
);

fn start() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(START)
        .unwrap()
        .with_timezone(&Utc)
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

fn write_config(dir: &Path, database_url: &str, smtp_port: u16, http_port: u16) -> PathBuf {
    TestConfig::bare(database_url)
        .timezone("Europe/Berlin")
        .templates_dir(&repo().join("tests/fixtures/pipeline/templates"))
        .log(Some("text"), "info")
        .set_str("sender", "from", "Claire at Acme <claire@acme.test>")
        .smtp(smtp_port, 1)
        .set_str("transport.smtp", "timeout", "5s")
        .set_str("scheduler", "tick", "1s")
        .set_str("http", "listen", &format!("127.0.0.1:{http_port}"))
        .set_str(
            "http",
            "public_url",
            &format!("http://127.0.0.1:{http_port}"),
        )
        .set(
            "tokens",
            "keys",
            format!(r#"[{{ id = "fb1", secret_env = "{}" }}]"#, TOKEN_KEY.0),
        )
        .set_str("inbound.webhooks", "raw_token_env", RAW.0)
        .set("notify", "owner_email", "true")
        .segment("no-budget-yet", "recycle")
        .set_str("segments", "lost_reason", "no_budget")
        .campaign("recycle", "90d", "30d")
        .campaign_key("recycle", "max_touches", "3")
        .campaign_key(
            "recycle",
            "templates",
            r#"["recycle_first", "recycle_next"]"#,
        )
        .any_time("recycle")
        .write(&dir.join("rewarm.toml"))
}

fn rewarm(config: &Path, args: &[&str]) -> Command {
    let mut cmd = bin::command();
    cmd.arg("--config")
        .arg(config)
        .args(args)
        .env_remove("RUST_LOG")
        .env(RAW.0, RAW.1)
        .env(TOKEN_KEY.0, TOKEN_KEY.1)
        .stdin(Stdio::null());
    cmd
}

fn run_ok(config: &Path, args: &[&str]) -> String {
    let out = rewarm(config, args).output().expect("run rewarm");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "rewarm {args:?}: {stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

async fn wait_for<T>(what: &str, daemon: &mut Daemon, mut check: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(v) = check() {
            return v;
        }
        daemon.assert_alive();
        assert!(
            Instant::now() < deadline,
            "timed out waiting for {what}\n{}",
            daemon.log()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The plain text of a captured message (decoded from quoted-printable or base64).
fn text_of(data: &[u8]) -> String {
    let message = mail_parser::MessageParser::default()
        .parse(data)
        .expect("a parseable message");
    message.body_text(0).expect("a text body").into_owned()
}

/// The (label, URL) action links in an owner email's text.
fn links_in(text: &str) -> Vec<(String, String)> {
    text.lines()
        .filter_map(|line| {
            let (label, url) = line.trim().split_once(": http")?;
            url.contains("/feedback/")
                .then(|| (label.to_string(), format!("http{url}")))
        })
        .collect()
}

async fn lead_of<S: Store>(store: &S) -> Lead {
    store
        .lead_by_email(&EmailAddress::parse(LEAD).unwrap())
        .await
        .unwrap()
        .expect("the lead")
}

async fn kinds<S: Store>(store: &S, id: i64) -> Vec<String> {
    store
        .timeline(id)
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.kind)
        .collect()
}

/// The lead's deliveries as (step, cycle, state, due).
async fn deliveries<S: Store>(store: &S, id: i64) -> Vec<(i64, i64, String, DateTime<Utc>)> {
    match store.export_rows(Table::Deliveries, 0, 1000).await.unwrap() {
        Rows::Deliveries(rows) => rows
            .into_iter()
            .filter(|d| d.lead_id == id)
            .map(|d| (d.step, d.cycle, d.state, d.due_at))
            .collect(),
        _ => unreachable!(),
    }
}

fn keys() -> TokenKeys {
    TokenKeys::new(vec![("fb1".into(), Secret::new(TOKEN_KEY.1))]).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sales_answers_from_the_owner_email_and_the_lead_goes_back_to_nurture_on_sqlite() {
    let db = TestDatabase::sqlite();
    let store = SqliteStore::connect(db.url()).await.unwrap();
    the_loop(db.url(), &store).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sales_answers_from_the_owner_email_and_the_lead_goes_back_to_nurture_on_postgres() {
    let Some(db) = TestDatabase::postgres("feedback_loop").await else {
        return;
    };
    let store = rewarm::store::postgres::PgStore::connect(db.url())
        .await
        .unwrap();
    store.migrate().await.unwrap();
    the_loop(db.url(), &store).await;
    store.close().await;
    db.drop_database().await;
}

use rewarm::store::sqlite::SqliteStore;

async fn the_loop<S: Store>(database_url: &str, store: &S) {
    let dir = tempfile::tempdir().unwrap();
    let smtp = TestSmtpServer::start().await;
    let http_port = free_port();
    let config = write_config(dir.path(), database_url, smtp.port(), http_port);
    let csv = dir.path().join("leads.csv");
    std::fs::write(
        &csv,
        format!("email,first_name,company,owner_email,lost_reason,lost_at,industry\n{LEAD},Fay,Fine KG,{OWNER},no_budget,2025-06-01,logistics\n"),
    )
    .unwrap();
    run_ok(
        &config,
        &["--now", START, "leads", "import", csv.to_str().unwrap()],
    );
    let mut daemon = Daemon::spawn(
        rewarm(&config, &["run", "--now", START]),
        dir.path().join("daemon.log"),
    );
    let first = wait_for("the first email", &mut daemon, || {
        smtp.messages().into_iter().next()
    })
    .await;
    let message_id = String::from_utf8_lossy(&first.data)
        .lines()
        .find_map(|l| l.strip_prefix("Message-ID: ").map(str::to_string))
        .expect("a Message-ID");

    // The lead replies (real HTTP into the daemon).
    let _ = rustls::crypto::ring::default_provider().install_default();
    let client = reqwest::Client::new();
    let base = format!("http://127.0.0.1:{http_port}");
    let reply = format!(
        "From: Fay <{LEAD}>\r\nTo: claire@acme.test\r\nSubject: Re: hello\r\nMessage-ID: <r1@finekg.example>\r\n\
         In-Reply-To: {message_id}\r\nDate: Mon, 2 Mar 2026 10:30:00 +0000\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n\
         Good timing, but not before summer. Write again then.\r\n"
    );
    let posted = client
        .post(format!("{base}/inbound/raw"))
        .bearer_auth(RAW.1)
        .body(reply)
        .send()
        .await
        .unwrap();
    assert_eq!(posted.status(), 200, "{:?}", posted.text().await);

    // The owner's email, read from the SMTP server, carries the action links.
    let owner_mail = wait_for("the owner email", &mut daemon, || {
        smtp.messages()
            .into_iter()
            .find(|m| m.rcpt_to.iter().any(|r| r == OWNER))
    })
    .await;
    let text = text_of(&owner_mail.data);
    let links = links_in(&text);
    let labels: Vec<&str> = links.iter().map(|(l, _)| l.as_str()).collect();
    assert_eq!(
        labels,
        [
            "I'm on it",
            "Won",
            "Not now — back to nurture in 3 months",
            "Not now — back to nurture in 6 months",
            "Not now — back to nurture in 12 months",
            "Out of scope (give a reason)"
        ],
        "{text}"
    );
    let lead = lead_of(store).await;
    assert_eq!(lead.state, LeadState::Rewarmed);
    let url = |label: &str| links.iter().find(|(l, _)| l == label).unwrap().1.clone();

    // GET shows a confirm page and changes nothing.
    let events = store.timeline(lead.id).await.unwrap().len();
    let not_now = url("Not now — back to nurture in 3 months");
    let page = client.get(&not_now).send().await.unwrap();
    assert_eq!(page.status(), 200);
    let page = page.text().await.unwrap();
    assert!(
        page.contains("<form method=\"post\">") && page.contains("Fay"),
        "{page}"
    );
    assert_eq!(lead_of(store).await.state, LeadState::Rewarmed);
    assert_eq!(store.timeline(lead.id).await.unwrap().len(), events);

    // Refused: forged, other owner, expired, another lead's.
    let forged = format!("{}x", &not_now[..not_now.len() - 1]);
    assert_eq!(client.post(&forged).send().await.unwrap().status(), 404);
    let token = |owner: &str, lead_id: i64, at: DateTime<Utc>| {
        let t = feedback::sign(&keys(), lead_id, owner, FeedbackAction::Won, at);
        format!("{base}/feedback/{t}")
    };
    let other_owner = token("someone.else@acme.test", lead.id, start());
    assert_eq!(
        client.post(&other_owner).send().await.unwrap().status(),
        404
    );
    let expired = token(OWNER, lead.id, start() - chrono::Duration::days(31));
    assert_eq!(client.post(&expired).send().await.unwrap().status(), 410);
    let no_lead = token(OWNER, lead.id + 1000, start());
    assert_eq!(client.post(&no_lead).send().await.unwrap().status(), 404);
    assert_eq!(lead_of(store).await.state, LeadState::Rewarmed);
    assert_eq!(store.timeline(lead.id).await.unwrap().len(), events);

    // POST "Not now — 3 months": back in nurture, history intact, next email 3 months on.
    let done = client.post(&not_now).send().await.unwrap();
    assert_eq!(done.status(), 200, "{:?}", done.text().await);
    assert_eq!(lead_of(store).await.state, LeadState::Nurturing);
    let kinds_now = kinds(store, lead.id).await;
    for kind in ["sent", "replied", "rewarmed", "recycled", "feedback"] {
        assert!(
            kinds_now.contains(&kind.to_string()),
            "{kind} in {kinds_now:?}"
        );
    }
    let fb = store.timeline(lead.id).await.unwrap().pop().unwrap();
    assert_eq!(fb.kind, "feedback");
    assert_eq!(fb.detail["action"], "not_now");
    assert_eq!(fb.detail["by"], OWNER);
    assert_eq!(fb.detail["months"], 3);
    let scheduled: Vec<_> = deliveries(store, lead.id)
        .await
        .into_iter()
        .filter(|d| d.2 == "scheduled")
        .collect();
    assert_eq!(scheduled.len(), 1, "{scheduled:?}");
    // Three calendar months in the lead's zone (Berlin: CET in March, CEST in June).
    let three_months = start()
        .with_timezone(&chrono_tz::Europe::Berlin)
        .checked_add_months(Months::new(3))
        .unwrap()
        .with_timezone(&Utc);
    let due = scheduled[0].3;
    assert!(
        due >= three_months && due < three_months + chrono::Duration::minutes(5),
        "next email due {due}, expected three months after {START}"
    );

    // "Won" stops everything (a fresh link for the lead's owner, as the digest would carry).
    let won = token(OWNER, lead.id, start());
    let answer = client.post(&won).send().await.unwrap();
    assert_eq!(answer.status(), 200, "{:?}", answer.text().await);
    assert_eq!(lead_of(store).await.state, LeadState::Won);
    assert!(
        deliveries(store, lead.id)
            .await
            .iter()
            .all(|d| d.2 != "scheduled" && d.2 != "retry_wait"),
        "nothing waits once won"
    );
    let kinds_now = kinds(store, lead.id).await;
    assert!(
        kinds_now.ends_with(&["won".to_string(), "feedback".to_string()]),
        "{kinds_now:?}"
    );
    // A second click changes nothing more.
    assert_eq!(client.post(&won).send().await.unwrap().status(), 200);
    assert_eq!(lead_of(store).await.state, LeadState::Won);

    daemon.sigterm();
    drop(daemon);
}
