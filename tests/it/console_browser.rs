//! The console in a real browser: headless Chromium over WebDriver signs in through the link
//! emailed to the test SMTP server, opens every page, checks a key number of each against
//! the store (the overview's funnel against `rewarm report`, the lead search, the lead's
//! score, the inbound and suppression counts), presses a feedback button in the sales queue
//! and sees the lead change, and saves a PNG of each page (wide, and the overview at 375 px)
//! in the test's output folder (`support::browser::output_dir`).
//!
//! With `REWARM_SCREENSHOTS_DIR` set (`docs/screenshots.sh`), the overview and the lead page
//! are also written there as `overview.png` and `lead.png`: the documentation's pictures.

use chrono::{DateTime, Duration, Utc};
use fantoccini::Locator;
use rewarm::console::Role;
use rewarm::domain::email::EmailAddress;
use rewarm::domain::lead::{LeadState, NewLead};
use rewarm::domain::report::{GroupBy, assemble};
use rewarm::store::prelude::*;
use rewarm::store::{
    InboundEffect, InboundRecord, LeadSearch, ReportQuery, Suppression, SuppressionReason,
};

use crate::support::browser::{Chrome, docs_dir};
use crate::support::config::TestConfig;
use crate::support::console::console_app;
use crate::support::http_app::{HttpApp, LOST_AT, T0, at};
use crate::support::smtp_server::TestSmtpServer;

/// The lead that replies, is re-warmed and is won from the sales queue.
const ANN: &str = "ann@client.example";
const REPLY: &str = "Good timing: send me the pricing for 20 seats, please.";

/// The sign-in link in the last message the SMTP server captured.
fn link_in(smtp: &TestSmtpServer) -> String {
    let message = smtp.messages().pop().expect("the sign-in email arrived");
    let parsed = mail_parser::MessageParser::default()
        .parse(&message.data)
        .expect("a parseable email");
    let text = parsed.body_text(0).expect("a text body").into_owned();
    text.lines()
        .map(str::trim)
        .find(|l| l.contains("/console/signin/"))
        .unwrap_or_else(|| panic!("no sign-in link in:\n{text}"))
        .to_string()
}

#[tokio::test]
async fn an_admin_signs_in_from_the_email_and_sees_the_reports_numbers_on_every_page() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let Some(chrome) = Chrome::start().await else {
        assert!(
            docs_dir().is_none(),
            "REWARM_SCREENSHOTS_DIR is set but Chromium is missing: no screenshot was made"
        );
        return;
    };
    let (mut app, now) = seeded().await;
    let link = emailed_link(&mut app, now).await;
    // The browser opens the link and presses "Sign in": it lands on the overview.
    chrome.client.goto(&link).await.expect("open the link");
    chrome
        .client
        .find(Locator::Id("use-link"))
        .await
        .expect("the button")
        .click()
        .await
        .expect("click");
    chrome
        .client
        .wait()
        .for_element(Locator::Css("#funnel-campaign"))
        .await
        .expect("the overview after signing in");
    overview(&chrome, &app, now).await;
    campaigns(&chrome, &app).await;
    leads(&chrome, &app).await;
    queue(&chrome, &app).await;
    inbound_and_suppression(&chrome, &app).await;

    // Readable at 375 px: the same pages, narrow.
    let c = &chrome.client;
    c.set_window_size(375, 900).await.expect("resize");
    c.goto(&app.url("/console/")).await.expect("overview");
    chrome.screenshot("overview-375").await;
    chrome.close().await;
}

/// Four leads emailed at T0; an hour later ann has replied (re-warmed), a stray message
/// waits for review and an address is suppressed. Returns the app, restarted at that hour.
async fn seeded() -> (HttpApp, DateTime<Utc>) {
    let mut app = console_app().await;
    // Ann has an owner, a title and tags: the lead page the documentation shows.
    let ann = NewLead {
        email: Some(EmailAddress::parse(ANN).unwrap()),
        first_name: Some("Ann".into()),
        last_name: Some("Lee".into()),
        company: Some("Initech".into()),
        title: Some("Head of Operations".into()),
        owner_email: Some(EmailAddress::parse("rita@acme.example").unwrap()),
        owner_name: Some("Rita Rep".into()),
        lost_reason: Some("timing".into()),
        lost_at: Some(at(LOST_AT)),
        tags: vec!["vip".into(), "emea".into()],
        ..NewLead::default()
    };
    app.store
        .upsert_leads(&[ann], "test", at(T0))
        .await
        .expect("ann");
    app.add_leads(&["bob@client.example", "cy@client.example"])
        .await;
    app.add_leads_lost_for(&["dee@client.example"], Some("pricing"))
        .await;
    let sent = app.pass(at(T0)).await;
    assert!(sent.sent >= 4, "{sent:?}");
    let replied = at(T0) + Duration::minutes(30);
    let ann = app.lead(ANN).await;
    app.store
        .record_inbound(
            &inbound(Some(ann.id), ANN, "reply:ann", replied),
            &InboundEffect::Rewarm {
                text: REPLY.into(),
                subject: Some("Re: checking in".into()),
                notifications: Vec::new(),
            },
            replied,
        )
        .await
        .expect("ann's reply");
    app.store
        .record_inbound(
            &inbound(None, "assistant@elsewhere.example", "stray", replied),
            &InboundEffect::None,
            replied,
        )
        .await
        .expect("a stray reply");
    let entry = Suppression {
        address: "left@client.example".into(),
        reason: SuppressionReason::Manual,
        evidence: serde_json::json!({"source": "test", "note": "asked by phone"}),
        created_at: replied,
    };
    app.store
        .suppress(&[entry], replied)
        .await
        .expect("suppress");
    // An hour later (the report counts enrolments before its `until`: now).
    let now = at(T0) + Duration::hours(1);
    app.restart_at(now).await;
    (app, now)
}

/// A human reply from `from` (matched to `lead_id`, or to nothing).
fn inbound(lead_id: Option<i64>, from: &str, key: &str, at: DateTime<Utc>) -> InboundRecord {
    let text = if lead_id.is_some() {
        REPLY
    } else {
        "Forwarding this to my colleague who handles purchasing."
    };
    InboundRecord {
        dedupe_key: key.into(),
        source: "replay".into(),
        received_at: at,
        message_id: None,
        from_address: Some(from.into()),
        subject: Some("Re: checking in".into()),
        classification: "human_reply".into(),
        lead_id,
        delivery_id: None,
        matched_by: lead_id.map(|_| "sender".into()),
        text: Some(text.into()),
        raw: format!("From: {from}\r\nSubject: Re: checking in\r\n\r\n{text}\r\n").into_bytes(),
    }
}

/// Invites an admin through real SMTP, as `rewarm console invite` sends it; the link.
async fn emailed_link(app: &mut HttpApp, now: DateTime<Utc>) -> String {
    let smtp = TestSmtpServer::start().await;
    let smtp_settings = rewarm::config::Settings::from_toml(
        &TestConfig::new("sqlite://unused.db")
            .smtp(smtp.port(), 1)
            .toml(),
        "smtp.toml",
    )
    .unwrap_or_else(|e| panic!("{e}"));
    // The server moved to a new port on restart: links must name it.
    let base = app.base.clone();
    app.reconfigure(|s| {
        s.transport = smtp_settings.transport.clone();
        s.http.public_url = base.clone();
    });
    let loaded = app.current.get();
    let transport = rewarm::app::build_transport(&loaded.settings).expect("the SMTP transport");
    let admin = EmailAddress::parse("ada@acme.example").unwrap();
    rewarm::console::signin::invite(&app.store, &loaded, &admin, Role::Admin, "test", now)
        .await
        .expect("invite");
    rewarm::notify::deliver_due(&app.store, &loaded, &transport, now, "test")
        .await
        .expect("send the invitation");
    let link = link_in(&smtp);
    assert!(link.starts_with(&app.base), "{link}");
    link
}

/// The overview's funnel shows `rewarm report`'s numbers.
async fn overview(chrome: &Chrome, app: &HttpApp, now: DateTime<Utc>) {
    let report = assemble(
        None,
        now,
        GroupBy::Campaign,
        app.store
            .report_counts(&ReportQuery {
                since: None,
                until: now,
                by: GroupBy::Campaign,
            })
            .await
            .expect("the report")
            .funnels,
        Vec::new(),
        Vec::new(),
    );
    let cell = |group: &str, stage: &str| {
        format!("#funnel-campaign tr[data-group=\"{group}\"] td[data-stage=\"{stage}\"]")
    };
    for (stage, expected) in [
        ("enrolled", report.total.funnel.enrolled),
        ("emailed", report.total.funnel.emailed),
        ("replied", report.total.funnel.replied),
        ("rewarmed", report.total.funnel.rewarmed),
    ] {
        assert_eq!(
            chrome.text(&cell("(all)", stage)).await,
            expected.to_string(),
            "{stage}"
        );
    }
    for group in &report.groups {
        let shown = chrome.text(&cell(&group.group, "emailed")).await;
        assert_eq!(shown, group.funnel.emailed.to_string(), "{}", group.group);
    }
    assert_eq!(
        (report.total.funnel.emailed, report.total.funnel.rewarmed),
        (4, 1)
    );
    assert!(chrome.text("#transport").await.contains("not paused"));
    chrome.doc_screenshot("overview").await;
}

async fn campaigns(chrome: &Chrome, app: &HttpApp) {
    let c = &chrome.client;
    c.goto(&app.url("/console/campaigns"))
        .await
        .expect("campaigns");
    assert_eq!(chrome.text("#rendered-for").await, "sam.sample@example.com");
    let pricing = chrome.text("#campaign-pricing").await;
    assert!(pricing.contains("Our new prices"), "{pricing}");
    chrome.screenshot("campaigns").await;
}

/// The search lists the leads the store finds; ann's page shows her score and state.
async fn leads(chrome: &Chrome, app: &HttpApp) {
    let c = &chrome.client;
    c.goto(&app.url("/console/leads?state=nurturing"))
        .await
        .expect("leads");
    let found = app
        .store
        .search_leads(&LeadSearch {
            state: Some(LeadState::Nurturing),
            limit: 50,
            ..LeadSearch::default()
        })
        .await
        .expect("the search");
    let rows = c
        .find_all(Locator::Css("#leads tr[data-lead]"))
        .await
        .expect("the rows");
    assert!(
        !found.leads.is_empty(),
        "the leads emailed at T0 are nurtured"
    );
    assert_eq!(rows.len(), found.leads.len());
    chrome.screenshot("leads").await;

    let ann = app.lead(ANN).await;
    c.goto(&app.url(&format!("/console/leads/{}", ann.id)))
        .await
        .expect("ann's page");
    let score = app.store.score(ann.id).await.expect("the score");
    assert_eq!(chrome.text("#score").await, score.to_string());
    assert_eq!(chrome.text("td[data-state] .badge").await, "rewarmed");
    assert!(chrome.text("#timeline").await.contains("replied"));
    chrome.doc_screenshot("lead").await;
}

/// Ann waits in the queue with her reply; "Won" wins her, and she leaves the queue.
async fn queue(chrome: &Chrome, app: &HttpApp) {
    let c = &chrome.client;
    let ann = app.lead(ANN).await;
    assert_eq!(ann.state, LeadState::Rewarmed);
    // Opened with its order in the URL: the button's answer (303 to `/console/queue`) shows
    // as a change of URL, which the browser is waited for.
    c.goto(&app.url("/console/queue?order=newest"))
        .await
        .expect("queue");
    let card = format!("#lead-{}", ann.id);
    assert!(chrome.text(&card).await.contains(REPLY));
    chrome.screenshot("queue").await;
    let won = format!(
        "//article[@id='lead-{}']//form[input[@name='action' and @value='won']]/button",
        ann.id
    );
    c.find(Locator::XPath(&won))
        .await
        .expect("the Won button")
        .click()
        .await
        .expect("click Won");
    c.wait()
        .for_url(&reqwest::Url::parse(&app.url("/console/queue")).expect("a URL"))
        .await
        .expect("back on the queue");
    assert_eq!(app.lead(ANN).await.state, LeadState::Won);
    let feedback = app
        .timeline(ANN)
        .await
        .into_iter()
        .rev()
        .find(|e| e.kind == "feedback")
        .expect("a feedback event");
    assert_eq!(
        (
            feedback.detail["action"].as_str(),
            feedback.detail["by"].as_str()
        ),
        (Some("won"), Some("ada@acme.example"))
    );
    assert!(
        c.find(Locator::Css(&card)).await.is_err(),
        "ann left the queue"
    );
    c.goto(&app.url(&format!("/console/leads/{}", ann.id)))
        .await
        .expect("ann's page");
    assert_eq!(chrome.text("td[data-state] .badge").await, "won");
}

/// The inbound and suppression pages count what the store holds.
async fn inbound_and_suppression(chrome: &Chrome, app: &HttpApp) {
    let c = &chrome.client;
    c.goto(&app.url("/console/inbound")).await.expect("inbound");
    let (_, waiting) = app
        .store
        .inbound_to_review(None, 1)
        .await
        .expect("to review");
    assert_eq!(waiting, 1);
    let shown = chrome.text("#waiting").await;
    assert!(shown.starts_with(&format!("{waiting} message ")), "{shown}");
    assert!(chrome.text("main").await.contains("my colleague"));
    chrome.screenshot("inbound").await;

    c.goto(&app.url("/console/suppression"))
        .await
        .expect("suppression");
    let page = app.store.suppression_page(None, 1).await.expect("the list");
    let shown = chrome.text("#entries").await;
    assert!(
        shown.starts_with(&format!("{} entr", page.total)),
        "{shown}"
    );
    assert!(
        chrome
            .text("#suppressions")
            .await
            .contains("left@client.example")
    );
    chrome.screenshot("suppression").await;
}
