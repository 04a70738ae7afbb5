//! A segment's own intent effects, the digest that tells owners about the replies they were
//! not notified of, and the report's replies by intent — end to end through the binary
//! (`run --once --now T`, `inbound replay`, `report`), a real SMTP server, on SQLite and
//! PostgreSQL.
//!
//! Two segments: `vip` (lost to a competitor) says `later = "rewarm"` and `not_interested =
//! "review"`; `everyone` keeps the defaults. Vera (vip) and Mary (everyone) write the same
//! "later": Vera is re-warmed and her owner told, Mary is postponed to September and nobody is
//! told. Noah (everyone) says no thanks: out of scope, nobody told; Uma (everyone) writes
//! something unclear: re-warmed, "needs a look". The owner's weekly digest lists Mary under
//! Later, Noah under Not interested and Uma as needing a look; `report` counts the replies
//! per campaign by intent.

use std::path::Path;

use rewarm::domain::email::EmailAddress;
use rewarm::domain::lead::LeadState;
use rewarm::store::postgres::PgStore;
use rewarm::store::prelude::*;
use rewarm::store::sqlite::SqliteStore;
use serde_json::{Value, json};

use crate::intent::{reply, rewarm, to};
use crate::support::bin::repo;
use crate::support::config::TestConfig;
use crate::support::db::{TestDatabase, with_postgres};
use crate::support::smtp_server::{CapturedMessage, TestSmtpServer};

const OWNER: &str = "rita.owner@acme.test";
const VERA: &str = "vera.vip@globex.example";
const MARY: &str = "mary.jones@jones.example";
const NOAH: &str = "noah.kim@jones.example";
const UMA: &str = "uma.unsure@jones.example";

/// The first pass (a Monday): every lead lost on 1 November 2026, due 90 days later.
const FIRST_PASS: &str = "2027-03-01T10:00:00Z";
const REPLIES_IN: &str = "2027-03-02T09:00:00Z";
/// After the digest of Monday 8 March, 08:00 UTC.
const DIGEST_RUN: &str = "2027-03-08T08:30:00Z";

const LATER: &str =
    "Not right now, we are in the middle of a migration. Try me again in September.";

fn write_config(dir: &Path, database_url: &str, smtp_port: u16) {
    TestConfig::bare(database_url)
        .timezone("UTC")
        .templates_dir(&repo().join("tests/fixtures/pipeline/templates"))
        .set_str("sender", "from", "Claire at Acme <claire@acme.test>")
        .smtp(smtp_port, 1)
        .set_str("inbound", "reply_domain", "reply.acme.test")
        .set("notify", "owner_email", "true")
        .set_str("notify", "digest_cron", "0 8 * * MON")
        .segment("vip", "vipcare")
        .set("segments", "lost_reason", r#"["chose_competitor"]"#)
        .set(
            "segments",
            "intents",
            r#"{ later = "rewarm", not_interested = "review" }"#,
        )
        .segment("everyone", "recycle")
        .campaign("vipcare", "90d", "30d")
        .campaign_key("vipcare", "max_touches", "3")
        .campaign_key(
            "vipcare",
            "templates",
            r#"["recycle_first", "recycle_next"]"#,
        )
        .any_time("vipcare")
        .campaign("recycle", "90d", "30d")
        .campaign_key("recycle", "max_touches", "3")
        .campaign_key(
            "recycle",
            "templates",
            r#"["recycle_first", "recycle_next"]"#,
        )
        .any_time("recycle")
        .write(&dir.join("rewarm.toml"));
    let row = |email: &str, first: &str, reason: &str| {
        format!("{email},{first},Jones & Partners,{OWNER},{reason},2026-11-01,Logistics\n")
    };
    let csv = [
        "email,first_name,company,owner_email,lost_reason,lost_at,industry\n".to_string(),
        row(VERA, "Vera", "chose_competitor"),
        row(MARY, "Mary", "no_budget"),
        row(NOAH, "Noah", "no_budget"),
        row(UMA, "Uma", "no_budget"),
    ]
    .concat();
    std::fs::write(dir.join("leads.csv"), csv).expect("write leads.csv");
}

/// The message's subject and decoded text body, on lines ending in `\n`.
fn text(m: &CapturedMessage) -> String {
    let parsed = mail_parser::MessageParser::default()
        .parse(&m.data)
        .expect("a parsable message");
    let body = parsed
        .body_text(0)
        .map(|b| b.into_owned())
        .unwrap_or_default();
    format!(
        "Subject: {}\n\n{body}",
        parsed.subject().unwrap_or_default()
    )
    .replace("\r\n", "\n")
}

async fn segments_digest_and_report<S: Store>(database_url: &str, store: impl AsyncFnOnce() -> S) {
    let smtp = TestSmtpServer::start().await;
    let dir = tempfile::tempdir().expect("temp dir");
    let d = dir.path();
    write_config(d, database_url, smtp.port());
    rewarm(d, FIRST_PASS, &["leads", "import", "leads.csv"]);
    rewarm(d, FIRST_PASS, &["run", "--once"]);
    let sent = smtp.messages();
    let replies = [
        (VERA, "Vera", "vera-1", LATER),
        (MARY, "Mary", "mary-1", LATER),
        (
            NOAH,
            "Noah",
            "noah-1",
            "No thanks, we went with another vendor last quarter.",
        ),
        (
            UMA,
            "Uma",
            "uma-1",
            "Hmm, maybe. Depends on what changed since last time.",
        ),
    ];
    let mut files = Vec::new();
    for (address, name, id, body) in replies {
        let first = &to(&sent, address)[0];
        let file = format!("{id}.eml");
        std::fs::write(
            d.join(&file),
            reply(&format!("{name} <{address}>"), first, id, body),
        )
        .expect("write a reply");
        files.push(file);
    }
    let replayed = rewarm(
        d,
        REPLIES_IN,
        &[
            &["inbound", "replay"][..],
            &files.iter().map(String::as_str).collect::<Vec<_>>(),
        ]
        .concat(),
    );
    let intents: Vec<Value> = replayed
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).expect("a JSON line")["intent"].clone())
        .collect();
    assert_eq!(
        intents,
        ["later", "later", "not_interested", "unclear"],
        "{replayed}"
    );

    let store = store().await;
    let lead = async |address: &str| {
        store
            .lead_by_email(&EmailAddress::parse(address).expect("an address"))
            .await
            .expect("read")
            .expect("a lead")
    };
    let (vera, mary, noah, uma) = (
        lead(VERA).await,
        lead(MARY).await,
        lead(NOAH).await,
        lead(UMA).await,
    );
    // The vip segment's `later = "rewarm"`: the same words re-warm Vera but postpone Mary.
    assert_eq!(vera.state, LeadState::Rewarmed);
    assert_eq!(mary.state, LeadState::Nurturing);
    assert_eq!(noah.state, LeadState::OutOfScope);
    assert_eq!(uma.state, LeadState::Rewarmed);
    let rewarmed = |timeline: &[rewarm::store::Event]| {
        timeline
            .iter()
            .find(|e| e.kind == "rewarmed")
            .map(|e| e.detail.clone())
    };
    let vera_rewarm =
        rewarmed(&store.timeline(vera.id).await.expect("timeline")).expect("re-warmed");
    assert_eq!(vera_rewarm["intent"], "later");
    assert!(vera_rewarm["needs_look"].is_null(), "{vera_rewarm}");
    let uma_rewarm = rewarmed(&store.timeline(uma.id).await.expect("timeline")).expect("re-warmed");
    assert_eq!(uma_rewarm["needs_look"], true);
    let mary_timeline = store.timeline(mary.id).await.expect("timeline");
    assert!(rewarmed(&mary_timeline).is_none());
    let postponed = mary_timeline
        .iter()
        .find(|e| e.kind == "postponed")
        .expect("postponed");
    assert_eq!(postponed.detail["until"], "2027-09-01T00:00:00Z");

    // Told now: Vera's owner (the intent in the subject) and Uma's (needs a look); no one
    // about Mary or Noah.
    rewarm(d, "2027-03-02T10:00:00Z", &["run", "--once"]);
    let owner_mail: Vec<String> = to(&smtp.messages(), OWNER).iter().map(text).collect();
    let told: Vec<&String> = owner_mail
        .iter()
        .filter(|m| !m.contains("Weekly leads digest"))
        .collect();
    assert_eq!(told.len(), 2, "{told:#?}");
    assert!(
        told.iter()
            .any(|m| m.contains("Re-warmed: Vera replied (later)")),
        "{told:#?}"
    );
    assert!(
        told.iter()
            .any(|m| m.contains("needs a look") && m.contains(UMA)),
        "{told:#?}"
    );
    assert!(
        told.iter().all(|m| !m.contains(MARY) && !m.contains(NOAH)),
        "{told:#?}"
    );

    // The weekly digest of 8 March lists what the owner was not told of one by one.
    rewarm(d, DIGEST_RUN, &["run", "--once"]);
    let digests: Vec<String> = to(&smtp.messages(), OWNER)
        .iter()
        .map(text)
        .filter(|m| m.contains("2027-03-01 08:00 UTC to 2027-03-08 08:00 UTC"))
        .collect();
    assert_eq!(digests.len(), 1, "one digest for the week");
    let digest = &digests[0];
    for want in [
        "Later (1) — asked to hear from us later; nurture resumes by itself:\n- Mary <mary.jones@jones.example>, Jones & Partners: next email not before 2027-09-01",
        "Not interested (1) — out of scope, looked at again on the re-check date:\n- Noah <noah.kim@jones.example>, Jones & Partners: re-check 2028-03-02 — \"No thanks, we went with another vendor last quarter.\"",
        "- Uma <uma.unsure@jones.example>, Jones & Partners (re-warmed 2027-03-02, needs a look: read the reply and decide)",
        "- Vera <vera.vip@globex.example>, Jones & Partners (re-warmed 2027-03-02)\n",
    ] {
        assert!(digest.contains(want), "{want:?} not in\n{digest}");
    }

    // The report counts the replies per campaign by intent.
    let report: Value =
        serde_json::from_str(&rewarm(d, "2027-03-10T00:00:00Z", &["report", "--json"]))
            .expect("JSON");
    let by_group: Vec<(Value, Value)> = report["groups"]
        .as_array()
        .expect("groups")
        .iter()
        .map(|g| (g["group"].clone(), g["replies_by_intent"].clone()))
        .collect();
    assert_eq!(
        by_group,
        [
            (
                json!("recycle"),
                json!({"later": 1, "not_interested": 1, "unclear": 1})
            ),
            (json!("vipcare"), json!({"later": 1})),
        ]
    );
    assert_eq!(
        report["total"]["replies_by_intent"],
        json!({"later": 2, "not_interested": 1, "unclear": 1})
    );
    let csv = rewarm(d, "2027-03-10T00:00:00Z", &["report", "--csv"]);
    assert!(csv.contains("\nvipcare,1,1,1,1,0,0,0,0,1,"), "{csv}");
    assert!(
        csv.lines().any(
            |l| l.starts_with("recycle,") && l.ends_with(",later:1 not_interested:1 unclear:1")
        ),
        "{csv}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_segment_decides_its_own_intent_effects_and_the_digest_and_report_show_them_on_sqlite() {
    let db = TestDatabase::sqlite();
    let url = db.url().to_string();
    segments_digest_and_report(&url, async || {
        SqliteStore::connect(&url).await.expect("open SQLite")
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_segment_decides_its_own_intent_effects_and_the_digest_and_report_show_them_on_postgres()
{
    with_postgres("intent segments", |url| async move {
        segments_digest_and_report(&url, async || {
            PgStore::connect(&url).await.expect("open PostgreSQL")
        })
        .await;
    })
    .await;
}
