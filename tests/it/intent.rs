//! Replies read for their intent, end to end through the binary, on SQLite and PostgreSQL:
//! `rewarm run --once --now T` sends the first emails to a real SMTP server; the leads' replies
//! answer them (their Reply-To token and Message-ID) and come in with `rewarm inbound replay`
//! (the path IMAP and the webhooks share).
//!
//! - Mary writes "later … in September": nobody is told, her cadence waits until 1 September
//!   (the next step, due on 31 March, goes out on 1 September and not before), and `leads
//!   show` says so.
//! - Lena writes that she moved on and names her successor with his address: her address is
//!   retired (no more emails, not suppressed), Dan becomes a lead of the same company, owner,
//!   tags and fields, is enrolled by the segments and gets the first email; the owner is told
//!   once, however often the reply comes in.
//! - `inbound replay --dry-run` prints the intents and changes nothing.
//!
//! No test here reads the wall clock: every command runs at a fixed `--now`.

use std::path::Path;

use rewarm::domain::email::EmailAddress;
use rewarm::domain::lead::LeadState;
use rewarm::store::postgres::PgStore;
use rewarm::store::prelude::*;
use rewarm::store::sqlite::SqliteStore;
use serde_json::Value;

use crate::support::bin::{self, repo, stdout_of};
use crate::support::config::TestConfig;
use crate::support::db::{TestDatabase, with_postgres};
use crate::support::smtp_server::{CapturedMessage, TestSmtpServer};

const OWNER: &str = "rita.owner@acme.test";
const MARY: &str = "mary.jones@jones.example";
const LENA: &str = "lena.berg@jones.example";
const DAN: &str = "dan.brooks@jones.example";
const NOAH: &str = "noah.kim@jones.example";

/// The first pass: both leads lost on 1 November 2026, due 90 days later.
const FIRST_PASS: &str = "2027-03-01T10:00:00Z";
/// When the replies come in.
const REPLIES_IN: &str = "2027-03-02T09:00:00Z";

fn write_config(dir: &Path, database_url: &str, smtp_port: u16) {
    TestConfig::bare(database_url)
        .timezone("UTC")
        .templates_dir(&repo().join("tests/fixtures/pipeline/templates"))
        .set_str("sender", "from", "Claire at Acme <claire@acme.test>")
        .smtp(smtp_port, 1)
        .set_str("inbound", "reply_domain", "reply.acme.test")
        .set("notify", "owner_email", "true")
        .segment("everyone", "recycle")
        .campaign("recycle", "90d", "30d")
        .campaign_key("recycle", "max_touches", "3")
        .campaign_key(
            "recycle",
            "templates",
            r#"["recycle_first", "recycle_next"]"#,
        )
        .any_time("recycle")
        .write(&dir.join("rewarm.toml"));
    let csv = format!(
        "email,first_name,last_name,company,owner_email,owner_name,lost_reason,lost_at,tags,industry\n\
         {MARY},Mary,Jones,Jones & Partners,{OWNER},Rita Owner,no_budget,2026-11-01,enterprise;emea,Logistics\n\
         {LENA},Lena,Berg,Jones & Partners,{OWNER},Rita Owner,no_budget,2026-11-01,enterprise;emea,Logistics\n\
         {NOAH},Noah,Kim,Jones & Partners,{OWNER},Rita Owner,no_budget,2026-11-01,enterprise;emea,Logistics\n"
    );
    std::fs::write(dir.join("leads.csv"), csv).expect("write leads.csv");
}

/// `rewarm --config rewarm.toml ARGS… --now NOW` in `dir`; its stdout (panics if it failed).
pub(crate) fn rewarm(dir: &Path, now: &str, args: &[&str]) -> String {
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

pub(crate) fn header(message: &CapturedMessage, name: &str) -> String {
    let text = String::from_utf8_lossy(&message.data);
    let head = &text[..text.find("\r\n\r\n").unwrap_or(text.len())];
    head.replace("\r\n ", " ")
        .replace("\r\n\t", " ")
        .split("\r\n")
        .find_map(|line| {
            let (n, v) = line.split_once(':')?;
            n.trim()
                .eq_ignore_ascii_case(name)
                .then(|| v.trim().to_string())
        })
        .unwrap_or_else(|| panic!("no {name} header in\n{text}"))
}

pub(crate) fn to(messages: &[CapturedMessage], address: &str) -> Vec<CapturedMessage> {
    messages
        .iter()
        .filter(|m| m.rcpt_to.iter().any(|r| r == address))
        .cloned()
        .collect()
}

/// A reply from `from` to the email `to_message`, top-posted over a quote of it.
pub(crate) fn reply(from: &str, to_message: &CapturedMessage, id: &str, body: &str) -> String {
    let reply_to = header(to_message, "Reply-To");
    let message_id = header(to_message, "Message-ID");
    format!(
        "From: {from}\r\nTo: {reply_to}\r\nSubject: Re: {subject}\r\n\
         Date: Tue, 2 Mar 2027 09:00:00 +0000\r\nMessage-ID: <{id}@jones.example>\r\n\
         In-Reply-To: {message_id}\r\nReferences: {message_id}\r\n\
         Content-Type: text/plain; charset=utf-8\r\n\r\n{body}\r\n\r\n\
         On Mon, 1 Mar 2027 at 10:00, Claire at Acme <claire@acme.test> wrote:\r\n\
         > If now is not the right moment, reply \"later\" and I'll write again.\r\n",
        subject = header(to_message, "Subject"),
    )
}

async fn intents_end_to_end<S, F, Fut>(database_url: &str, open: F)
where
    S: Store,
    F: FnOnce() -> Fut,
    Fut: std::future::Future<Output = S>,
{
    let smtp = TestSmtpServer::start().await;
    let dir = tempfile::tempdir().expect("temp dir");
    let d = dir.path();
    write_config(d, database_url, smtp.port());
    rewarm(d, FIRST_PASS, &["leads", "import", "leads.csv"]);
    rewarm(d, FIRST_PASS, &["run", "--once"]);
    let sent = smtp.messages();
    let (mary_first, lena_first) = (&to(&sent, MARY)[0], &to(&sent, LENA)[0]);
    std::fs::write(
        d.join("no.eml"),
        reply(
            &format!("Noah Kim <{NOAH}>"),
            &to(&sent, NOAH)[0],
            "no-1",
            "No thanks, we went with another vendor last quarter.",
        ),
    )
    .unwrap();
    std::fs::write(
        d.join("later.eml"),
        reply(
            &format!("Mary Jones <{MARY}>"),
            mary_first,
            "later-1",
            "Not right now, we are in the middle of a migration. Try me again in September.",
        ),
    )
    .unwrap();
    std::fs::write(
        d.join("left.eml"),
        reply(
            &format!("Lena Berg <{LENA}>"),
            lena_first,
            "left-1",
            &format!(
                "I've moved on from Jones & Partners; please reach out to my successor, \
                 Dan Brooks ({DAN})"
            ),
        ),
    )
    .unwrap();

    let store = open().await;
    let mary = store
        .lead_by_email(&EmailAddress::parse(MARY).unwrap())
        .await
        .unwrap()
        .expect("Mary");
    let lena = store
        .lead_by_email(&EmailAddress::parse(LENA).unwrap())
        .await
        .unwrap()
        .expect("Lena");
    let before = (
        store.timeline(mary.id).await.unwrap().len(),
        store.timeline(lena.id).await.unwrap().len(),
    );

    // A dry run prints the intents and changes nothing.
    let printed = rewarm(
        d,
        REPLIES_IN,
        &["inbound", "replay", "--dry-run", "later.eml", "left.eml"],
    );
    let lines: Vec<Value> = printed
        .lines()
        .map(|l| serde_json::from_str(l).expect("JSON lines"))
        .collect();
    assert_eq!(lines[0]["intent"], "later", "{printed}");
    assert_eq!(lines[1]["intent"], "left_company", "{printed}");
    assert!(
        printed
            .lines()
            .all(|l| l.contains(r#""classification":"human_reply","intent":"#)),
        "the intent comes right after the classification: {printed}"
    );
    assert!(store.inbound_messages(0, 10).await.unwrap().is_empty());
    assert!(store.notifications(0, 10).await.unwrap().is_empty());
    let dan = EmailAddress::parse(DAN).unwrap();
    assert!(store.lead_by_email(&dan).await.unwrap().is_none());
    assert_eq!(
        before,
        (
            store.timeline(mary.id).await.unwrap().len(),
            store.timeline(lena.id).await.unwrap().len()
        )
    );

    // Now for real.
    rewarm(
        d,
        REPLIES_IN,
        &["inbound", "replay", "later.eml", "left.eml", "no.eml"],
    );

    // Noah: out of scope with his words as the reason, looked at again in 12 months.
    let noah = store
        .lead_by_email(&EmailAddress::parse(NOAH).unwrap())
        .await
        .unwrap()
        .expect("Noah");
    assert_eq!(noah.state, LeadState::OutOfScope);
    let scope = store
        .lead_lifecycle(noah.id)
        .await
        .unwrap()
        .expect("lifecycle");
    assert_eq!(
        scope.recheck_at.map(|t| t.to_rfc3339()),
        Some("2028-03-02T09:00:00+00:00".to_string())
    );
    assert!(
        scope
            .scope_reason
            .as_deref()
            .is_some_and(|r| r.contains("not_interested") && r.contains("another vendor")),
        "{scope:?}"
    );

    // Mary: still in nurture, postponed to September, nobody told.
    let mary_now = store.leads_by_ids(&[mary.id]).await.unwrap().remove(0);
    assert_eq!(mary_now.state, LeadState::Nurturing);
    let timeline = store.timeline(mary.id).await.unwrap();
    let postponed = timeline
        .iter()
        .find(|e| e.kind == "postponed")
        .expect("a postponed event");
    assert_eq!(postponed.detail["until"], "2027-09-01T00:00:00Z");
    assert_eq!(postponed.detail["intent"], "later");
    let replied = timeline.iter().find(|e| e.kind == "replied").unwrap();
    assert_eq!(replied.detail["intent"], "later");
    assert_eq!(replied.detail["intent_when"], "2027-09-01");
    assert!(!timeline.iter().any(|e| e.kind == "rewarmed"));
    let shown = rewarm(d, REPLIES_IN, &["leads", "show", MARY]);
    assert!(
        shown.contains("postponed") && shown.contains("until=2027-09-01T00:00:00Z"),
        "{shown}"
    );

    // Lena: retired, not suppressed; Dan: a lead like her, linked both ways.
    let lena_now = store.leads_by_ids(&[lena.id]).await.unwrap().remove(0);
    assert_eq!(lena_now.state, LeadState::Completed);
    assert!(
        store
            .suppression_for(&lena_now.email)
            .await
            .unwrap()
            .is_none()
    );
    let lena_timeline = store.timeline(lena.id).await.unwrap();
    assert!(lena_timeline.iter().any(|e| e.kind == "retired"));
    let dan_lead = store
        .lead_by_email(&dan)
        .await
        .unwrap()
        .expect("Dan is a lead");
    assert_eq!(dan_lead.first_name.as_deref(), Some("Dan"));
    assert_eq!(dan_lead.last_name.as_deref(), Some("Brooks"));
    assert_eq!(dan_lead.company.as_deref(), Some("Jones & Partners"));
    assert_eq!(dan_lead.owner_email.as_deref(), Some(OWNER));
    assert_eq!(dan_lead.tags, lena_now.tags);
    assert_eq!(dan_lead.fields, lena_now.fields);
    let referred_to = lena_timeline
        .iter()
        .find(|e| e.kind == "referred")
        .expect("referred on Lena");
    assert_eq!(referred_to.detail["lead_id"], dan_lead.id);
    let dan_timeline = store.timeline(dan_lead.id).await.unwrap();
    let referred_by = dan_timeline
        .iter()
        .find(|e| e.kind == "referred")
        .expect("referred on Dan");
    assert_eq!(referred_by.detail["referred_by"], lena.id);

    // The next pass: Dan is enrolled and emailed, the owner gets one email about Lena.
    rewarm(d, "2027-03-02T10:00:00Z", &["run", "--once"]);
    let sent = smtp.messages();
    assert_eq!(to(&sent, DAN).len(), 1, "Dan's first email");
    let to_owner = to(&sent, OWNER);
    assert_eq!(to_owner.len(), 1, "the owner is told once");
    let about = String::from_utf8_lossy(&to_owner[0].data).into_owned();
    assert!(
        about.contains("Contact change") && about.contains(DAN),
        "{about}"
    );
    let dan_lead = store.lead_by_email(&dan).await.unwrap().unwrap();
    assert_eq!(dan_lead.state, LeadState::Nurturing);

    // The same reply again changes nothing and tells no one again.
    rewarm(d, REPLIES_IN, &["inbound", "replay", "left.eml"]);
    rewarm(d, "2027-03-02T10:05:00Z", &["run", "--once"]);
    assert_eq!(to(&smtp.messages(), OWNER).len(), 1);

    // Mary's second step (due 31 March) waits for September; Lena gets nothing more.
    rewarm(d, "2027-04-15T10:00:00Z", &["run", "--once"]);
    assert_eq!(
        to(&smtp.messages(), MARY).len(),
        1,
        "nothing before September"
    );
    rewarm(d, "2027-09-01T10:00:00Z", &["run", "--once"]);
    let sent = smtp.messages();
    assert_eq!(to(&sent, MARY).len(), 2, "the cadence resumes in September");
    assert_eq!(
        to(&sent, LENA).len(),
        1,
        "a retired address gets nothing more"
    );
    assert!(
        to(&sent, OWNER).iter().all(|m| {
            let text = String::from_utf8_lossy(&m.data);
            !text.contains(MARY) && !text.contains(NOAH)
        }),
        "no one is told about a later or a not-interested reply"
    );
    let noah_timeline = store.timeline(noah.id).await.unwrap();
    assert_eq!(
        to(&sent, NOAH).len(),
        1,
        "out of scope: nothing more; {noah_timeline:#?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn later_postpones_and_left_company_refers_on_sqlite() {
    let db = TestDatabase::sqlite();
    let url = db.url().to_string();
    intents_end_to_end(&url, || async {
        SqliteStore::connect(&url).await.expect("open SQLite")
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn later_postpones_and_left_company_refers_on_postgres() {
    with_postgres("intents end to end", |url| async move {
        let open = || async { PgStore::connect(&url).await.expect("open PostgreSQL") };
        intents_end_to_end(&url, open).await;
    })
    .await;
}

#[test]
fn explain_says_which_rule_decided_and_why() {
    let dir = tempfile::tempdir().expect("temp dir");
    TestConfig::new("sqlite://explain.db")
        .templates_dir(&repo().join("templates"))
        .set("intents.later", "phrases", r#"["ping me in spring"]"#)
        .write(&dir.path().join("rewarm.toml"));
    let fixture = repo().join("tests/fixtures/intent/003-en-outlook-september.eml");
    let out = rewarm(
        dir.path(),
        "2027-03-10T12:00:00Z",
        &["inbound", "explain", &fixture.display().to_string()],
    );
    for want in [
        "classification:  human_reply (rule: from a person)",
        "intent:          later",
        "phrase:        \"not right now\" (en)",
        "when:          2027-09-01 (\"in september\")",
        "effect:          postpone",
    ] {
        assert!(out.contains(want), "{want:?} missing from\n{out}");
    }
    std::fs::write(
        dir.path().join("spring.eml"),
        "From: a@b.example\r\nSubject: Re: hi\r\nDate: Wed, 10 Mar 2027 09:00:00 +0000\r\n\r\nInterested, but ping me in spring.\r\n",
    )
    .unwrap();
    let out = rewarm(
        dir.path(),
        "2027-03-10T12:00:00Z",
        &["inbound", "explain", "spring.eml"],
    );
    assert!(
        out.contains("rule:          configured phrase")
            && out.contains("\"ping me in spring\" (config)"),
        "{out}"
    );
    assert!(
        !dir.path().join("explain.db").exists(),
        "explain opens no database"
    );
}
