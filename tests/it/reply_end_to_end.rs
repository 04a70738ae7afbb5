//! The issue's whole loop through the real `rewarm` binary, as an operator runs it: leads
//! imported with `rewarm leads import`, then the daemon (`rewarm run --now T`: a clock that
//! starts at a fixed time and runs on, so nothing depends on the hour) sends the
//! first email to a capturing SMTP server; the lead's reply is APPENDed to a real Dovecot
//! mailbox; the daemon polls it, re-warms the lead, stops its cadence and POSTs one signed
//! webhook to a receiver started here. Then the daemon is stopped (SIGTERM) and started again
//! on the same config: it polls the mailbox again and again, and nothing happens twice.
//!
//! The cadence's second step is due 15 s after the first, so "the cadence stopped" is seen,
//! not assumed: the test waits past that time and no second email arrives.
//!
//! Without `dovecot` installed the test prints SKIPPED and passes, and fails under `CI=true`
//! (`.ci/run` installs it).

use crate::support;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use hmac::{KeyInit, Mac};
use rewarm::store::prelude::*;
use rewarm::store::sqlite::SqliteStore;
use serde_json::Value;
use support::bin::{self, repo};
use support::config::TestConfig;
use support::daemon::Daemon;
use support::dovecot::{self, Dovecot};
use support::recording_http::{RecordedRequest, RecordingServer};
use support::smtp_server::{CapturedMessage, TestSmtpServer};

const LEAD: &str = "fay.fine@finekg.example";
const OWNER: &str = "maria.chen@acme.test";
const REPLY_TEXT: &str = "good timing - we have budget again. Can we talk on Friday?";
/// Where time starts (a Monday morning; the send window is any hour of any day anyway).
const START: &str = "2026-03-02T10:00:00Z";
/// The cadence's rhythm: step 2 would go out this long after step 1.
const EVERY: Duration = Duration::from_secs(15);

/// Secrets, each read by the daemon from the environment variable the config names.
const IMAP_PASSWORD_ENV: &str = "REWARM_E2E_IMAP_PASSWORD";
const WEBHOOK_SECRET: (&str, &str) = ("REWARM_E2E_WEBHOOK_SECRET", "e2e-webhook-hmac-key");
const TOKEN_KEY: (&str, &str) = (
    "REWARM_E2E_TOKEN_KEY",
    "e2e-token-key-0123456789abcdef0123456789",
);

// ---------------------------------------------------------------------------------------------
// Harness
// ---------------------------------------------------------------------------------------------

/// A daemon config: the test SMTP server, the Dovecot mailbox polled every second (replies
/// stay in INBOX, flagged), a signed JSON webhook, any hour of any day, step 1 due 90 days
/// after the loss and step 2 [`EVERY`] later.
fn write_config(
    dir: &Path,
    database_url: &str,
    smtp_port: u16,
    imap_port: u16,
    webhook_url: &str,
) -> PathBuf {
    TestConfig::bare(database_url)
        .timezone("Europe/Berlin")
        .templates_dir(&repo().join("tests/fixtures/pipeline/templates"))
        .log(Some("text"), "info")
        .set_str("sender", "from", "Claire at Acme <claire@acme.test>")
        .set_str(
            "sender",
            "reply_to",
            "Claire Martin <claire.martin@acme.test>",
        )
        .smtp(smtp_port, 1)
        .set_str("transport.smtp", "timeout", "5s")
        .set_str("transport.smtp", "hello_name", "rewarm.test")
        .set_str("scheduler", "tick", "1s")
        .set_str("http", "listen", "127.0.0.1:0")
        .set(
            "tokens",
            "keys",
            format!(r#"[{{ id = "e2e1", secret_env = "{}" }}]"#, TOKEN_KEY.0),
        )
        .set_str("inbound", "reply_domain", "reply.acme.test")
        .set_str("inbound.imap", "host", "127.0.0.1")
        .set("inbound.imap", "port", imap_port.to_string())
        .set("inbound.imap", "tls", "false")
        .set_str("inbound.imap", "username", dovecot::USER)
        .set_str("inbound.imap", "password_env", IMAP_PASSWORD_ENV)
        .set_str("inbound.imap", "mailbox", "INBOX")
        .set_str("inbound.imap", "poll", "1s")
        .set("notify", "owner_email", "false")
        .set_str("notify", "webhook_url", webhook_url)
        .set_str("notify", "webhook_secret_env", WEBHOOK_SECRET.0)
        .set_str("notify", "webhook_format", "json")
        // The CRM hears of re-warms only (not every enrolment and email: notify::relay).
        .set("notify", "webhook_events", r#"["rewarmed"]"#)
        .segment("no-budget-yet", "recycle")
        .set_str("segments", "lost_reason", "no_budget")
        .campaign("recycle", "90d", &format!("{}s", EVERY.as_secs()))
        .campaign_key("recycle", "max_touches", "3")
        .campaign_key(
            "recycle",
            "templates",
            r#"["recycle_first", "recycle_next"]"#,
        )
        .any_time("recycle")
        .write(&dir.join("rewarm.toml"))
}

/// `rewarm --config CONFIG ARGS…` with the secrets in its environment.
fn rewarm(config: &Path, args: &[&str]) -> Command {
    let mut cmd = bin::command();
    cmd.arg("--config")
        .arg(config)
        .args(args)
        .env_remove("RUST_LOG")
        .env(IMAP_PASSWORD_ENV, dovecot::PASSWORD)
        .env(WEBHOOK_SECRET.0, WEBHOOK_SECRET.1)
        .env(TOKEN_KEY.0, TOKEN_KEY.1)
        .stdin(Stdio::null());
    cmd
}

/// Runs a one-shot command and returns its stdout (panics with its output if it failed).
fn rewarm_output(config: &Path, args: &[&str]) -> String {
    let out = rewarm(config, args)
        .output()
        .expect("run the rewarm binary");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "rewarm {args:?} failed ({}):\n{stdout}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

/// `rewarm run --now NOW`, its output in `log`: the daemon's clock starts at `now` and runs on.
fn start_daemon(config: &Path, log: PathBuf, now: DateTime<Utc>) -> Daemon {
    Daemon::spawn(rewarm(config, &["run", "--now", &now.to_rfc3339()]), log)
}

/// Polls `check` every 100 ms until it returns `Some`, the daemon dies, or `timeout` passes.
async fn wait_for<T, F, Fut>(
    what: &str,
    timeout: Duration,
    daemon: &mut Daemon,
    server: &Dovecot,
    mut check: F,
) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(value) = check().await {
            return value;
        }
        daemon.assert_alive();
        if Instant::now() > deadline {
            panic!(
                "timed out after {timeout:?} waiting for {what}\n--- daemon log ---\n{}\n{}",
                daemon.log(),
                server.logs()
            );
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The value of header `name` (case-insensitive) in the message's header block.
fn header(message: &CapturedMessage, name: &str) -> String {
    let text = String::from_utf8_lossy(&message.data);
    let head = &text[..text.find("\r\n\r\n").unwrap_or(text.len())];
    // Unfold continuation lines first.
    let unfolded = head.replace("\r\n ", " ").replace("\r\n\t", " ");
    unfolded
        .split("\r\n")
        .find_map(|line| {
            let (n, v) = line.split_once(':')?;
            n.trim()
                .eq_ignore_ascii_case(name)
                .then(|| v.trim().to_string())
        })
        .unwrap_or_else(|| panic!("no {name} header in\n{text}"))
}

/// The address inside `Name <address>` (or the whole value).
fn angle_address(value: &str) -> &str {
    match (value.rfind('<'), value.rfind('>')) {
        (Some(a), Some(b)) if a < b => &value[a + 1..b],
        _ => value.trim(),
    }
}

/// `sha256=<hex HMAC-SHA256(key, body)>`, computed here rather than with `rewarm::notify`.
fn expected_signature(key: &str, body: &[u8]) -> String {
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(key.as_bytes())
        .expect("HMAC takes keys of any length");
    mac.update(body);
    let hex: String = mac
        .finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    format!("sha256={hex}")
}

/// `rewarm leads show EMAIL --json`: the lead and its timeline.
fn show(config: &Path) -> Value {
    let out = rewarm_output(config, &["leads", "show", LEAD, "--json"]);
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("leads show --json ({e}):\n{out}"))
}

fn event_count(shown: &Value, kind: &str) -> usize {
    shown["timeline"]
        .as_array()
        .expect("a timeline")
        .iter()
        .filter(|e| e["kind"] == kind)
        .count()
}

/// Successful IMAP logins in Dovecot's log: one per poll of the daemon.
fn imap_logins(server: &Dovecot) -> usize {
    std::fs::read_to_string(server.dir().join("dovecot.log"))
        .unwrap_or_default()
        .lines()
        .filter(|l| l.contains("imap-login:") && l.contains(" Login: user="))
        .count()
}

/// The daemon logs ERROR only when data is lost or an operator must act, and a failed poll or
/// notification is a warning: neither may appear here.
fn assert_clean(log: &str) {
    let bad: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("ERROR") || l.contains("Replies or notifications failed"))
        .collect();
    assert!(bad.is_empty(), "the daemon logged:\n{}", bad.join("\n"));
}

// ---------------------------------------------------------------------------------------------
// The test
// ---------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reply_polled_by_the_daemon_rewarms_the_lead_notifies_once_and_a_restart_repeats_nothing()
{
    let Some(server) = Dovecot::start().await else {
        return;
    };
    let smtp = TestSmtpServer::start().await;
    let receiver = RecordingServer::start().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let database_url = format!("sqlite://{}", dir.path().join("rewarm.db").display());
    let config = write_config(
        dir.path(),
        &database_url,
        smtp.port(),
        server.port(),
        &format!("{}/hooks/rewarm", receiver.url()),
    );

    // No wall clock: time starts at START and runs on, here and in each daemon (`run --now`).
    // A daemon's clock starts a moment after this one, so it is never ahead of `clock`.
    let start: DateTime<Utc> = DateTime::parse_from_rfc3339(START)
        .expect("a fixed time")
        .with_timezone(&Utc);
    let clock = rewarm::domain::clock::Clock::starting_at(start);

    // The CRM export: one lead lost for "no budget" 200 days ago, so step 1 is due now.
    let lost_on = (start - chrono::Duration::days(200)).format("%Y-%m-%d");
    let csv = dir.path().join("leads.csv");
    std::fs::write(
        &csv,
        format!(
            "Email,First Name,Last Name,Company,Owner Email,Lost Reason,Lost At,Time Zone,Industry\n\
             {LEAD},Fay,Fine,Fine KG,{OWNER},no_budget,{lost_on},Europe/Berlin,Logistics\n"
        ),
    )
    .expect("write the CSV");
    rewarm_output(
        &config,
        &[
            "leads",
            "import",
            csv.to_str().expect("UTF-8 path"),
            "--now",
            START,
        ],
    );

    // ── 1. The daemon sends step 1. ─────────────────────────────────────────────────────────
    let started = Instant::now();
    let mut daemon = start_daemon(&config, dir.path().join("daemon-1.log"), clock.now());
    let sent = wait_for(
        "the first email",
        Duration::from_secs(20),
        &mut daemon,
        &server,
        || async { smtp.messages().into_iter().next() },
    )
    .await;
    assert_eq!(sent.rcpt_to, vec![LEAD.to_string()]);
    let message_id = header(&sent, "Message-ID");
    let subject = header(&sent, "Subject");
    let reply_to = header(&sent, "Reply-To");
    assert!(
        angle_address(&reply_to).starts_with("reply+")
            && angle_address(&reply_to).ends_with("@reply.acme.test"),
        "Reply-To {reply_to}"
    );
    assert_eq!(subject, "Fine KG: is the budget there now, Fay?");

    // Step 2 is waiting, due EVERY after step 1.
    let store = SqliteStore::connect(&database_url)
        .await
        .expect("open the database");
    let lead_id = store
        .lead_by_email(&rewarm::domain::email::EmailAddress::parse(LEAD).expect("address"))
        .await
        .expect("lead_by_email")
        .expect("the imported lead")
        .id;
    let step_2_due: DateTime<Utc> = wait_for(
        "step 2 to be scheduled",
        Duration::from_secs(10),
        &mut daemon,
        &server,
        || async {
            let pending = store
                .pending_deliveries()
                .await
                .expect("pending deliveries");
            pending
                .iter()
                .find(|p| p.lead_id == lead_id && p.step == 1)
                .map(|p| p.due_at)
        },
    )
    .await;
    let first_sent_at = {
        let shown = show(&config);
        assert_eq!(event_count(&shown, "sent"), 1, "{shown:#}");
        let at = shown["timeline"]
            .as_array()
            .expect("a timeline")
            .iter()
            .find(|e| e["kind"] == "sent")
            .and_then(|e| e["at"].as_str())
            .expect("the sent event's time")
            .to_string();
        DateTime::parse_from_rfc3339(&at)
            .expect("an RFC 3339 time")
            .with_timezone(&Utc)
    };
    let gap = step_2_due - first_sent_at;
    assert!(
        gap >= chrono::Duration::seconds(EVERY.as_secs() as i64 - 1)
            && gap <= chrono::Duration::seconds(EVERY.as_secs() as i64 + 1),
        "step 2 due {step_2_due}, step 1 sent {first_sent_at}"
    );

    // ── 2. The lead replies; the reply lands in the polled mailbox. ─────────────────────────
    let reply = format!(
        "Return-Path: <{LEAD}>\r\n\
         From: Fay Fine <{LEAD}>\r\n\
         To: {reply_to}\r\n\
         Subject: Re: {subject}\r\n\
         Date: {date}\r\n\
         Message-ID: <CAF-e2e-reply-1@mail.finekg.example>\r\n\
         In-Reply-To: {message_id}\r\n\
         References: {message_id}\r\n\
         MIME-Version: 1.0\r\n\
         Content-Type: text/plain; charset=utf-8\r\n\
         \r\n\
         Hi Claire,\r\n\
         {REPLY_TEXT}\r\n\
         \r\n\
         Fay\r\n",
        date = clock.now().to_rfc2822(),
    );
    server.append("INBOX", reply.as_bytes()).await;

    // ── 3. The daemon polls it, re-warms the lead and notifies the webhook once. ────────────
    let hook: RecordedRequest = wait_for(
        "the webhook notification",
        Duration::from_secs(10),
        &mut daemon,
        &server,
        || async { receiver.requests().into_iter().next() },
    )
    .await;
    assert!(
        clock.now() < step_2_due,
        "the re-warm came after step 2 was due: the test proves nothing about the cadence"
    );
    assert_eq!(
        (hook.method.as_str(), hook.path.as_str()),
        ("POST", "/hooks/rewarm")
    );
    assert_eq!(
        hook.header("x-rewarm-signature"),
        Some(expected_signature(WEBHOOK_SECRET.1, &hook.body).as_str()),
        "the signature must be the HMAC-SHA256 of the body with the configured secret"
    );
    let body = hook.json();
    let key = body["idempotency_key"]
        .as_str()
        .unwrap_or_else(|| panic!("no idempotency_key in {body:#}"));
    assert!(!key.is_empty());
    assert_eq!(hook.header("idempotency-key"), Some(key));
    assert_eq!(body["event"], "lead.rewarmed", "{body:#}");
    assert_eq!(body["lead_email"], LEAD, "{body:#}");
    assert_eq!(body["lead"]["email"], LEAD, "{body:#}");
    // The lead as it is now, not as it was when the reply came in.
    assert_eq!(body["lead"]["state"], "rewarmed", "{body:#}");
    let kinds: Vec<&str> = body["timeline"]
        .as_array()
        .expect("a timeline")
        .iter()
        .filter_map(|e| e["kind"].as_str())
        .collect();
    assert!(kinds.contains(&"rewarmed"), "{kinds:?}");
    assert!(
        body["reply"]
            .as_str()
            .is_some_and(|r| r.contains(REPLY_TEXT)),
        "{body:#}"
    );

    // The lead is re-warmed, matched by its reply token; its cadence stopped.
    let shown = show(&config);
    assert_eq!(shown["lead"]["state"], "rewarmed", "{shown:#}");
    let counts = |shown: &Value| {
        ["sent", "replied", "rewarmed"].map(|kind| (kind, event_count(shown, kind)))
    };
    let expected_counts = [("sent", 1), ("replied", 1), ("rewarmed", 1)];
    assert_eq!(counts(&shown), expected_counts, "{shown:#}");
    let inbound = store.inbound_messages(0, 10).await.expect("inbound");
    assert_eq!(inbound.len(), 1, "{inbound:#?}");
    let record = &inbound[0].record;
    assert_eq!(
        (
            record.source.as_str(),
            record.classification.as_str(),
            record.lead_id,
            record.matched_by.as_deref(),
        ),
        ("imap", "human_reply", Some(lead_id), Some("token"))
    );
    assert!(
        store
            .pending_deliveries()
            .await
            .expect("pending")
            .iter()
            .all(|p| p.lead_id != lead_id),
        "step 2 must be cancelled"
    );

    // ── 4. Stop the daemon (SIGTERM) and start it again on the same config. ─────────────────
    let status = daemon.terminate(Duration::from_secs(15)).await;
    assert!(status.success(), "exit {status}:\n{}", daemon.log());
    let first_log = daemon.log();
    assert_clean(&first_log);
    // The reply stays in INBOX, flagged as processed (no processed_mailbox configured): the
    // restarted daemon sees it again and must not act on it.
    let inbox = server.messages("INBOX").await;
    assert_eq!(inbox.len(), 1, "{inbox:?}");
    assert!(
        inbox[0].seen
            && inbox[0]
                .keywords
                .iter()
                .any(|k| k == rewarm::inbound::imap::PROCESSED_KEYWORD),
        "{:?}",
        inbox[0]
    );

    let logins_before = imap_logins(&server);
    let mut daemon = start_daemon(&config, dir.path().join("daemon-2.log"), clock.now());
    // A few polls of the mailbox by the new daemon.
    wait_for(
        "three polls of the restarted daemon",
        Duration::from_secs(15),
        &mut daemon,
        &server,
        || async { (imap_logins(&server) >= logins_before + 3).then_some(()) },
    )
    .await;
    // And past the time step 2 would have gone out (without the re-warm it goes within a
    // tick of its due time), plus three ticks.
    let past_step_2 = step_2_due + chrono::Duration::seconds(3);
    while clock.now() < past_step_2 {
        daemon.assert_alive();
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    // Nothing happened twice: one email, one notification, one inbound row, one re-warm.
    assert_eq!(
        smtp.count(),
        1,
        "the cadence went on after the re-warm:\n{}",
        daemon.log()
    );
    assert_eq!(
        receiver.requests().len(),
        1,
        "notified again after the restart:\n{}",
        daemon.log()
    );
    let status = daemon.terminate(Duration::from_secs(15)).await;
    assert!(status.success(), "exit {status}:\n{}", daemon.log());
    assert_clean(&daemon.log());

    let shown = show(&config);
    assert_eq!(shown["lead"]["state"], "rewarmed", "{shown:#}");
    assert_eq!(counts(&shown), expected_counts, "{shown:#}");
    assert_eq!(
        store.inbound_messages(0, 10).await.expect("inbound").len(),
        1
    );
    let notifications = store.notifications(0, 10).await.expect("notifications");
    assert_eq!(notifications.len(), 1, "{notifications:#?}");
    assert_eq!(
        (
            notifications[0].kind.as_str(),
            notifications[0].state.as_str(),
            notifications[0].attempts,
            notifications[0].idempotency_key.as_str(),
        ),
        ("webhook", "sent", 1, key)
    );
    assert!(
        store
            .pending_deliveries()
            .await
            .expect("pending")
            .is_empty()
    );
    eprintln!(
        "reply_end_to_end: send → reply → re-warm → webhook → restart took {:.1?}",
        started.elapsed()
    );
}
