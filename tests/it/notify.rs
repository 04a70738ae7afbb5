//! Sales is told: a re-warm puts notifications in the outbox and `notify::deliver_due`
//! delivers each exactly once — a signed JSON webhook (or Slack `text`), retried after a 5xx,
//! and an owner email with the reply and the lead's timeline through a real SMTP server.
//! Each recorded outcome is counted on `/metrics`.

use crate::support;

use std::time::Duration;

use chrono::{DateTime, Utc};
use rewarm::config::{NotifyWebhook, Settings};
use rewarm::domain::email::EmailAddress;
use rewarm::domain::lead::NewLead;
use rewarm::inbound::process::{InboundMessage, process};
use rewarm::notify::{self, deliver_due};
use rewarm::store::prelude::*;
use rewarm::transport::Transport;
use rewarm::transport::smtp::{SmtpPool, SmtpSettings, TlsMode};
use support::http_app::{HttpApp, LOST_AT, T0, at};
use support::recording_http::{RecordingServer, ScriptedResponse};
use support::smtp_server::TestSmtpServer;

const LEAD: &str = "dana@globex.example";
const OWNER: &str = "rep@acme.example";
const SECRET: (&str, &str) = ("REWARM_TEST_NOTIFY_SECRET", "notify-hmac-key-1");
const REPLY_TEXT: &str = "Happy to talk again, the budget freeze is over.";

fn init_env() {
    static ENV: std::sync::Once = std::sync::Once::new();
    // SAFETY of set_var: done once, before any test of this binary reads it.
    ENV.call_once(|| unsafe { std::env::set_var(SECRET.0, SECRET.1) });
}

/// An app with one lead owned by [`OWNER`] that was sent its first email, `notify` changed by
/// `configure`. Returns the Message-ID of that email.
async fn app(configure: impl FnOnce(&mut Settings)) -> (HttpApp, String) {
    init_env();
    let app = HttpApp::spawn().await;
    app.reconfigure(configure);
    let lead = NewLead {
        email: Some(EmailAddress::parse(LEAD).unwrap()),
        first_name: Some("Dana".into()),
        last_name: Some("Scully".into()),
        company: Some("Globex".into()),
        owner_email: Some(EmailAddress::parse(OWNER).unwrap()),
        lost_at: Some(at(LOST_AT)),
        ..Default::default()
    };
    app.store
        .upsert_leads(&[lead], "test", at(T0))
        .await
        .unwrap();
    app.pass(at(T0)).await;
    let id = app.first_message_id().await;
    (app, id)
}

/// Runs a human reply to `message_id` through the inbound path.
async fn reply(app: &HttpApp, message_id: &str, now: DateTime<Utc>) {
    let raw = format!(
        "From: Dana <{LEAD}>\r\nTo: claire@acme.example\r\nSubject: Re: checking in\r\n\
         Message-ID: <dana-1@globex.example>\r\nIn-Reply-To: <{message_id}>\r\n\
         Date: Mon, 2 Mar 2026 10:30:00 +0000\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n\
         {REPLY_TEXT}\r\n\r\nDana\r\n"
    );
    let message = InboundMessage {
        raw: raw.into_bytes(),
        source: "raw".into(),
        dedupe_key: "raw:dana-1@globex.example".into(),
        received_at: now,
    };
    let loaded = app.current.get();
    let store = app.store.clone();
    let handle = tokio::runtime::Handle::current();
    // `process` is awaited on its own thread (its future is not Send; see src/http/inbound.rs).
    let done = tokio::task::spawn_blocking(move || {
        handle.block_on(process(&store, &loaded, &message, now, false))
    })
    .await
    .unwrap()
    .expect("process");
    assert_eq!(done.classification.as_str(), "human_reply");
}

fn webhook(url: String, slack: bool) -> impl FnOnce(&mut Settings) {
    move |s: &mut Settings| {
        s.notify.owner_email = false;
        s.notify.webhook = Some(NotifyWebhook {
            url,
            secret_env: Some(SECRET.0.into()),
            slack,
            events: None,
        });
    }
}

async fn deliver(app: &HttpApp, transport: &Transport, now: DateTime<Utc>) -> notify::NotifyReport {
    let loaded = app.current.get();
    deliver_due(&app.store, &loaded, transport, now, "test-worker")
        .await
        .expect("deliver_due")
}

/// SMTP to the test server, one connection, no TLS.
fn smtp_transport(smtp: &TestSmtpServer) -> Transport {
    Transport::Smtp(SmtpPool::new(SmtpSettings {
        host: "127.0.0.1".into(),
        port: smtp.port(),
        tls: TlsMode::None,
        username: None,
        password: None,
        pool_size: 1,
        timeout: Duration::from_secs(5),
        hello_name: Some("rewarm.test".into()),
    }))
}

/// `rewarm_notifications_total{kind="webhook",outcome="delivered"}` as `/metrics` shows it.
async fn webhooks_delivered(app: &HttpApp) -> u64 {
    app.metric(r#"rewarm_notifications_total{kind="webhook",outcome="delivered"}"#)
        .await
}

#[tokio::test]
async fn a_rewarm_posts_exactly_one_signed_webhook() {
    let receiver = RecordingServer::start().await;
    let (app, id) = app(webhook(format!("{}/hook", receiver.url()), false)).await;
    let now = at(T0) + chrono::Duration::minutes(30);
    reply(&app, &id, now).await;
    reply(&app, &id, now).await; // the same message again changes nothing

    let delivered_before = webhooks_delivered(&app).await;
    let report = deliver(&app, &app.transport, now).await;
    assert_eq!((report.claimed, report.sent), (1, 1), "{report:?}");
    let again = deliver(&app, &app.transport, now + chrono::Duration::hours(3)).await;
    assert_eq!(again.claimed, 0);
    // On /metrics (a process-wide counter other tests add to as well: at least ours).
    assert!(webhooks_delivered(&app).await > delivered_before);

    let requests = receiver.requests();
    assert_eq!(requests.len(), 1);
    let request = &requests[0];
    assert_eq!(
        request.header("x-rewarm-signature").unwrap(),
        notify::signature(SECRET.1, &request.body)
    );
    let body = request.json();
    let key = body["idempotency_key"]
        .as_str()
        .expect("an idempotency key");
    assert_eq!(request.header("idempotency-key"), Some(key));
    assert_eq!(body["lead"]["email"], LEAD);
    assert!(
        body["reply"].as_str().unwrap().contains(REPLY_TEXT),
        "{body}"
    );
}

#[tokio::test]
async fn the_slack_format_posts_a_readable_text() {
    let receiver = RecordingServer::start().await;
    let (app, id) = app(webhook(receiver.url(), true)).await;
    let now = at(T0) + chrono::Duration::minutes(30);
    reply(&app, &id, now).await;
    assert_eq!(deliver(&app, &app.transport, now).await.sent, 1);
    let body = receiver.requests()[0].json();
    let text = body["text"].as_str().expect("a text");
    assert!(text.contains(LEAD) && text.contains(REPLY_TEXT), "{text}");
}

#[tokio::test]
async fn a_webhook_answering_500_is_retried_later_and_delivered_once() {
    let receiver = RecordingServer::start().await;
    receiver.script(1, ScriptedResponse::status(500));
    let (app, id) = app(webhook(receiver.url(), false)).await;
    let now = at(T0) + chrono::Duration::minutes(30);
    reply(&app, &id, now).await;

    let first = deliver(&app, &app.transport, now).await;
    assert_eq!((first.sent, first.retrying), (0, 1), "{first:?}");
    // Not due again before its backoff.
    assert_eq!(deliver(&app, &app.transport, now).await.claimed, 0);
    let later = deliver(&app, &app.transport, now + chrono::Duration::hours(2)).await;
    assert_eq!(later.sent, 1, "{later:?}");
    assert_eq!(
        deliver(&app, &app.transport, now + chrono::Duration::hours(4))
            .await
            .claimed,
        0
    );

    let requests = receiver.requests();
    assert_eq!(requests.len(), 2);
    assert_eq!(
        requests[0].header("idempotency-key"),
        requests[1].header("idempotency-key")
    );
    let stored = app.store.notifications(0, 10).await.unwrap();
    assert_eq!(stored.len(), 1);
    assert_eq!(stored[0].state, "sent");
}

#[tokio::test]
async fn the_owner_gets_an_email_with_the_reply_and_the_timeline() {
    let smtp = TestSmtpServer::start().await;
    let (app, id) = app(|s| s.notify.owner_email = true).await;
    let now = at(T0) + chrono::Duration::minutes(30);
    reply(&app, &id, now).await;
    let transport = smtp_transport(&smtp);
    let report = deliver(&app, &transport, now).await;
    assert_eq!(report.sent, 1, "{report:?}");
    let messages = smtp.messages();
    assert_eq!(messages.len(), 1);
    assert_eq!(messages[0].rcpt_to, vec![OWNER.to_string()]);
    let text = String::from_utf8_lossy(&messages[0].data).replace("=\r\n", "");
    assert!(
        text.contains("From: Claire at Acme <claire@acme.example>")
            || text.contains("claire@acme.example"),
        "{text}"
    );
    assert!(text.contains(REPLY_TEXT), "{text}");
    assert!(text.contains("Timeline"), "{text}");
    assert!(text.contains("sent"), "{text}");

    // The weekly digest: one per owner and firing, delivered the same way.
    app.reconfigure(|settings| {
        settings.notify.digest =
            Some(rewarm::domain::cadence::CronSpec::parse("0 8 * * 1").unwrap());
    });
    let monday = at("2026-03-09T09:00:00Z");
    let loaded = app.current.get();
    let new = notify::enqueue_digests(&app.store, &loaded, monday, Some(now))
        .await
        .unwrap();
    assert_eq!(new, 1);
    assert_eq!(
        notify::enqueue_digests(&app.store, &loaded, monday, Some(now))
            .await
            .unwrap(),
        0
    );
    assert_eq!(deliver(&app, &transport, monday).await.sent, 1);
    let digest = String::from_utf8_lossy(&smtp.messages()[1].data).replace("=\r\n", "");
    assert!(
        digest.contains("Re-warmed (1)") && digest.contains(LEAD),
        "{digest}"
    );
}

/// A lead re-warmed by its score (clicks), not by a reply: the owner is told so, with no
/// made-up reply.
#[tokio::test]
async fn a_rewarm_by_score_tells_the_owner_it_was_engagement() {
    let smtp = TestSmtpServer::start().await;
    let (app, _) = app(|s| s.notify.owner_email = true).await;
    let now = at(T0) + chrono::Duration::minutes(30);
    let delivery = app
        .deliveries()
        .await
        .into_iter()
        .next()
        .expect("a delivery");
    let loaded = app.current.get();
    let rewarmed = rewarm::inbound::process::engage(
        &app.store,
        &loaded,
        delivery.lead_id,
        Some(&delivery.campaign),
        "click",
        100,
        serde_json::json!({"url": "https://acme.example/pricing"}),
        "test-click",
        now,
    )
    .await
    .expect("engage");
    assert!(rewarmed);
    let transport = smtp_transport(&smtp);
    assert_eq!(deliver(&app, &transport, now).await.sent, 1);
    let text = String::from_utf8_lossy(&smtp.messages()[0].data).replace("=\r\n", "");
    assert!(text.contains("is engaging"), "{text}");
    assert!(text.contains("(last: a click)"), "{text}");
    // It says which signals made the score.
    assert!(text.contains("What made it"), "{text}");
    assert!(
        text.contains("click +100 (100 now) https://acme.example/pricing"),
        "{text}"
    );
    assert!(
        !text.contains("replied") && !text.contains("(no text)"),
        "{text}"
    );
}
