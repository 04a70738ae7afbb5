//! The console in a real browser: headless Chromium over WebDriver signs in through the link
//! emailed to the test SMTP server, opens the overview and the campaigns page, checks that
//! the funnel shows `rewarm report`'s numbers, and saves a PNG of each page (wide and at
//! 375 px) in the test's output folder (`support::browser::output_dir`).

use fantoccini::Locator;
use rewarm::console::Role;
use rewarm::domain::email::EmailAddress;
use rewarm::domain::report::{GroupBy, assemble};
use rewarm::store::ReportQuery;
use rewarm::store::prelude::*;

use crate::support::browser::Chrome;
use crate::support::config::TestConfig;
use crate::support::console::console_app;
use crate::support::http_app::{T0, at};
use crate::support::smtp_server::TestSmtpServer;

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
async fn an_admin_signs_in_from_the_email_and_sees_the_reports_numbers() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let Some(chrome) = Chrome::start().await else {
        return;
    };
    let mut app = console_app().await;
    app.add_leads(&[
        "ann@client.example",
        "bob@client.example",
        "cy@client.example",
    ])
    .await;
    app.add_leads_lost_for(&["dee@client.example"], Some("pricing"))
        .await;
    let sent = app.pass(at(T0)).await;
    assert!(sent.sent >= 4, "{sent:?}");
    // An hour later (the report counts enrolments before its `until`: now).
    let now = at(T0) + chrono::Duration::hours(1);
    app.restart_at(now).await;

    // The invitation goes out through real SMTP, as `rewarm console invite` sends it.
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

    // The browser opens the link and presses "Sign in": it lands on the overview.
    let c = &chrome.client;
    c.goto(&link).await.expect("open the link");
    c.find(Locator::Id("use-link"))
        .await
        .expect("the button")
        .click()
        .await
        .expect("click");
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
    assert_eq!(report.total.funnel.emailed, 4);
    assert!(chrome.text("#transport").await.contains("not paused"));
    chrome.screenshot("overview").await;

    c.goto(&app.url("/console/campaigns"))
        .await
        .expect("campaigns");
    assert_eq!(chrome.text("#rendered-for").await, "sam.sample@example.com");
    let pricing = chrome.text("#campaign-pricing").await;
    assert!(pricing.contains("Our new prices"), "{pricing}");
    chrome.screenshot("campaigns").await;

    // Readable at 375 px: the same pages, narrow.
    c.set_window_size(375, 900).await.expect("resize");
    c.goto(&app.url("/console/")).await.expect("overview");
    chrome.screenshot("overview-375").await;
    chrome.close().await;
}
