//! Inbound webhooks on a real port: each provider's signed request is processed once, a
//! retry of the same request is answered 200 and changes nothing, and a bad or missing
//! signature is 401 with nothing changed. Mailgun's retries come hours later, re-encoded, with
//! the first attempt's signature: accepted; its token with another message: refused.

use crate::support;

use hmac::{KeyInit, Mac};
use rewarm::domain::clock::Clock;
use rewarm::domain::lead::LeadState;
use rewarm::http::HttpState;
use rewarm::store::prelude::*;
use support::http_app::{HttpApp, T0, at, test_keys};

const LEAD: &str = "sam@initech.example";
const POSTMARK: (&str, &str) = ("REWARM_TEST_WH_POSTMARK", "pm-secret-123");
const MAILGUN: (&str, &str) = ("REWARM_TEST_WH_MAILGUN", "mg-signing-key-456");
const SENDGRID: (&str, &str) = ("REWARM_TEST_WH_SENDGRID", "sg-secret-789");
const RAW: (&str, &str) = ("REWARM_TEST_WH_RAW", "raw-bearer-000");

/// A server whose four endpoints are on, with one lead that was sent its first email.
/// Returns the app and that email's Message-ID.
async fn app() -> (HttpApp, String) {
    static ENV: std::sync::Once = std::sync::Once::new();
    ENV.call_once(|| {
        for (name, value) in [POSTMARK, MAILGUN, SENDGRID, RAW] {
            // SAFETY of set_var: done once, before any test of this binary reads these.
            unsafe { std::env::set_var(name, value) };
        }
    });
    let app = HttpApp::spawn().await;
    app.reconfigure(|settings| {
        let w = &mut settings.inbound.webhooks;
        w.postmark_token_env = Some(POSTMARK.0.into());
        w.mailgun_signing_key_env = Some(MAILGUN.0.into());
        w.sendgrid_token_env = Some(SENDGRID.0.into());
        w.raw_token_env = Some(RAW.0.into());
    });
    app.add_leads(&[LEAD]).await;
    app.pass(at(T0)).await;
    let id = app.first_message_id().await;
    (app, id)
}

/// A human reply to the email with `message_id`.
fn reply(message_id: &str, own_id: &str) -> String {
    format!(
        "From: Sam <{LEAD}>\r\nTo: claire@acme.example\r\nSubject: Re: checking in\r\n\
         Message-ID: <{own_id}>\r\nIn-Reply-To: <{message_id}>\r\nReferences: <{message_id}>\r\n\
         Date: Mon, 2 Mar 2026 10:30:00 +0000\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n\
         Yes, good timing: we have budget again. Can you call me on Thursday?\r\n\r\nSam\r\n"
    )
}

async fn inbound_count(app: &HttpApp) -> usize {
    app.store
        .inbound_messages(0, 1000)
        .await
        .expect("inbound")
        .len()
}

/// Checks the first request re-warmed the lead, then that `again` (the same request) is a
/// no-op answered 200.
async fn assert_once(app: &HttpApp, first: reqwest::Response, again: reqwest::Response) {
    assert_eq!(first.status(), 200, "{:?}", first.text().await);
    assert_eq!(inbound_count(app).await, 1);
    assert_eq!(app.lead(LEAD).await.state, LeadState::Rewarmed);
    let timeline = app.timeline(LEAD).await.len();
    assert_eq!(again.status(), 200);
    let body: serde_json::Value = again.json().await.expect("json");
    assert_eq!(body["duplicate"], true);
    assert_eq!(inbound_count(app).await, 1);
    assert_eq!(app.timeline(LEAD).await.len(), timeline);
}

async fn assert_nothing_changed(app: &HttpApp, response: reqwest::Response) {
    assert_eq!(response.status(), 401);
    assert_eq!(inbound_count(app).await, 0);
    assert_eq!(app.lead(LEAD).await.state, LeadState::Nurturing);
}

#[tokio::test]
async fn a_raw_message_with_the_bearer_token_rewarms_once() {
    let (app, id) = app().await;
    let body = reply(&id, "r1@initech.example");
    let post = |token: &str| {
        app.client
            .post(app.url("/inbound/raw"))
            .bearer_auth(token)
            .body(body.clone())
    };
    assert_nothing_changed(&app, post("wrong").send().await.unwrap()).await;
    let missing = app.client.post(app.url("/inbound/raw")).body(body.clone());
    assert_nothing_changed(&app, missing.send().await.unwrap()).await;
    let first = post(RAW.1).send().await.unwrap();
    let again = post(RAW.1).send().await.unwrap();
    assert_once(&app, first, again).await;
    // Counted by class on /metrics (a process-wide counter other tests add to as well).
    let human = app
        .metric(r#"rewarm_replies_total{class="human_reply"}"#)
        .await;
    assert!(human >= 1, "{human}");
}

#[tokio::test]
async fn a_postmark_message_with_the_basic_auth_password_rewarms_once() {
    let (app, id) = app().await;
    let payload = serde_json::json!({
        "From": LEAD, "FromName": "Sam", "To": "claire@acme.example",
        "Subject": "Re: checking in", "MessageID": "7f1c6b0e-postmark",
        "Date": "Mon, 2 Mar 2026 10:30:00 +0000",
        "Headers": [
            {"Name": "In-Reply-To", "Value": format!("<{id}>")},
            {"Name": "Message-ID", "Value": "<r2@initech.example>"}
        ],
        "TextBody": "Yes, good timing: we have budget again. Can you call me on Thursday?\n\nSam",
        "HtmlBody": "<p>Yes, good timing: we have budget again.</p>"
    });
    let post = |password: &str| {
        app.client
            .post(app.url("/inbound/postmark"))
            .basic_auth("postmark", Some(password))
            .json(&payload)
    };
    assert_nothing_changed(&app, post("wrong").send().await.unwrap()).await;
    let missing = app.client.post(app.url("/inbound/postmark")).json(&payload);
    assert_nothing_changed(&app, missing.send().await.unwrap()).await;
    let first = post(POSTMARK.1).send().await.unwrap();
    let again = post(POSTMARK.1).send().await.unwrap();
    assert_once(&app, first, again).await;
}

#[tokio::test]
async fn a_sendgrid_raw_mime_parse_rewarms_once() {
    let (app, id) = app().await;
    let body = reply(&id, "r3@initech.example");
    let post = |password: Option<&str>| {
        let form = reqwest::multipart::Form::new()
            .text("to", "claire@acme.example")
            .text("email", body.clone());
        let request = app
            .client
            .post(app.url("/inbound/sendgrid"))
            .multipart(form);
        match password {
            Some(p) => request.basic_auth("sendgrid", Some(p)),
            None => request,
        }
    };
    assert_nothing_changed(&app, post(Some("wrong")).send().await.unwrap()).await;
    assert_nothing_changed(&app, post(None).send().await.unwrap()).await;
    let first = post(Some(SENDGRID.1)).send().await.unwrap();
    let again = post(Some(SENDGRID.1)).send().await.unwrap();
    assert_once(&app, first, again).await;
}

fn mailgun_form(key: &str, timestamp: i64, token: &str, body_mime: &str) -> Vec<(String, String)> {
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(key.as_bytes()).unwrap();
    mac.update(format!("{timestamp}{token}").as_bytes());
    let signature: String = mac
        .finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    vec![
        ("timestamp".into(), timestamp.to_string()),
        ("token".into(), token.into()),
        ("signature".into(), signature),
        ("recipient".into(), "claire@acme.example".into()),
        ("body-mime".into(), body_mime.into()),
    ]
}

#[tokio::test]
async fn a_mailgun_mime_post_with_a_valid_signature_rewarms_once() {
    let (app, id) = app().await;
    let body = reply(&id, "r4@initech.example");
    let now = at(T0).timestamp();
    let post = |form: Vec<(String, String)>| {
        app.client
            .post(app.url("/inbound/mailgun"))
            .form(&form)
            .send()
    };
    // Signed with another key, unsigned, and signed but more than five minutes ahead.
    let forged = mailgun_form("not-the-key", now, "tok-forged", &body);
    assert_nothing_changed(&app, post(forged).await.unwrap()).await;
    let mut unsigned = mailgun_form(MAILGUN.1, now, "tok-unsigned", &body);
    unsigned.retain(|(k, _)| k != "signature");
    assert_nothing_changed(&app, post(unsigned).await.unwrap()).await;
    let future = mailgun_form(MAILGUN.1, now + 301, "tok-future", &body);
    assert_nothing_changed(&app, post(future).await.unwrap()).await;

    let good = mailgun_form(MAILGUN.1, now - 10, "tok-good-1", &body);
    let first = post(good.clone()).await.unwrap();
    let again = post(good).await.unwrap();
    assert_once(&app, first, again).await;

    // The same token and signature on another message is a replay: refused.
    let other = reply(&id, "r5@initech.example");
    let replayed = mailgun_form(MAILGUN.1, now - 10, "tok-good-1", &other);
    assert_eq!(post(replayed).await.unwrap().status(), 401);
    assert_eq!(inbound_count(&app).await, 1);
}

/// Mailgun's form as multipart (as Mailgun posts a message with attachments), with a fresh
/// random boundary each time.
fn multipart(form: &[(String, String)]) -> reqwest::multipart::Form {
    form.iter()
        .fold(reqwest::multipart::Form::new(), |f, (k, v)| {
            f.text(k.clone(), v.clone())
        })
}

/// What the app's store holds: inbound messages, and the lead's state and timeline length.
async fn snapshot(app: &HttpApp) -> (usize, LeadState, usize) {
    (
        inbound_count(app).await,
        app.lead(LEAD).await.state,
        app.timeline(LEAD).await.len(),
    )
}

#[tokio::test]
async fn a_mailgun_retry_reencoded_with_a_new_multipart_boundary_is_a_duplicate() {
    let (app, id) = app().await;
    let body = reply(&id, "r6@initech.example");
    let form = mailgun_form(MAILGUN.1, at(T0).timestamp() - 10, "tok-boundary", &body);
    let (first, again) = (multipart(&form), multipart(&form));
    assert_ne!(first.boundary(), again.boundary());
    let post = |form| {
        app.client
            .post(app.url("/inbound/mailgun/mime"))
            .multipart(form)
            .send()
    };
    let first = post(first).await.unwrap();
    let again = post(again).await.unwrap();
    assert_once(&app, first, again).await;
}

#[tokio::test]
async fn a_mailgun_retry_hours_later_with_its_original_signature_is_accepted_once() {
    let (app, id) = app().await;
    let body = reply(&id, "r7@initech.example");
    // The server's clock is T0: this is Mailgun's retry two hours after a failed first attempt.
    let two_hours_ago = at(T0).timestamp() - 2 * 3600;
    let form = mailgun_form(MAILGUN.1, two_hours_ago, "tok-2h", &body);
    let post = || {
        app.client
            .post(app.url("/inbound/mailgun"))
            .form(&form)
            .send()
    };
    let first = post().await.unwrap();
    let again = post().await.unwrap();
    assert_once(&app, first, again).await;
}

#[tokio::test]
async fn a_mailgun_timestamp_older_than_the_retry_horizon_is_refused() {
    let (app, id) = app().await;
    let body = reply(&id, "r8@initech.example");
    let nine_hours_and_a_second = at(T0).timestamp() - 9 * 3600 - 1;
    let form = mailgun_form(MAILGUN.1, nine_hours_and_a_second, "tok-old", &body);
    let response = app
        .client
        .post(app.url("/inbound/mailgun"))
        .form(&form)
        .send()
        .await
        .unwrap();
    assert_nothing_changed(&app, response).await;
    // Refused before its token was looked at: nothing of it is remembered.
    let remembered = app.store.kv_get("mailgun:token:tok-old").await.unwrap();
    assert_eq!(remembered, None);
}

#[tokio::test]
async fn a_known_mailgun_token_with_another_message_is_refused_by_every_daemon() {
    let (app, id) = app().await;
    let now = at(T0).timestamp() - 60;
    let genuine = mailgun_form(
        MAILGUN.1,
        now,
        "tok-shared",
        &reply(&id, "r9@initech.example"),
    );
    let response = app
        .client
        .post(app.url("/inbound/mailgun"))
        .form(&genuine)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200, "{:?}", response.text().await);
    let before = snapshot(&app).await;
    assert_eq!(before.0, 1);
    assert!(
        app.store
            .kv_get("mailgun:token:tok-shared")
            .await
            .unwrap()
            .is_some(),
        "the token is bound to its message in the store"
    );

    // A second daemon on the same database (or this one after a restart): the binding holds.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let other = format!("http://{}", listener.local_addr().unwrap());
    let stop = tokio_util::sync::CancellationToken::new();
    let state = HttpState {
        store: app.store.clone(),
        current: app.current.clone(),
        keys: test_keys(),
        api_token: None,
        clock: Clock::Fixed(at(T0)),
    };
    tokio::spawn(rewarm::http::serve(listener, state, stop.clone()));
    let _stop = stop.drop_guard();

    // The captured timestamp, token and signature, carrying another message.
    let forged = reply(&id, "forged@initech.example");
    let replayed = mailgun_form(MAILGUN.1, now, "tok-shared", &forged);
    for base in [&app.base, &other] {
        let response = app
            .client
            .post(format!("{base}/inbound/mailgun/mime"))
            .form(&replayed)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 401, "{base}");
        assert_eq!(snapshot(&app).await, before, "{base}");
    }
    // The genuine message again, through the other daemon: a retry, a no-op.
    let retry = app
        .client
        .post(format!("{other}/inbound/mailgun"))
        .multipart(multipart(&genuine))
        .send()
        .await
        .unwrap();
    assert_eq!(retry.status(), 200);
    let retry: serde_json::Value = retry.json().await.unwrap();
    assert_eq!(retry["duplicate"], true);
    assert_eq!(snapshot(&app).await, before);
}

#[tokio::test]
async fn the_mailgun_mime_alias_takes_a_raw_bounce() {
    let (app, id) = app().await;
    let bounce = format!(
        "From: Mail Delivery System <MAILER-DAEMON@initech.example>\r\nTo: claire@acme.example\r\n\
         Subject: Undelivered Mail Returned to Sender\r\nMessage-ID: <dsn-1@initech.example>\r\n\
         Date: Mon, 2 Mar 2026 10:30:00 +0000\r\nMIME-Version: 1.0\r\n\
         Content-Type: multipart/report; report-type=delivery-status; boundary=\"B\"\r\n\r\n\
         --B\r\nContent-Type: text/plain\r\n\r\nYour message could not be delivered.\r\n\
         --B\r\nContent-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; mx.initech.example\r\n\r\n\
         Final-Recipient: rfc822; {LEAD}\r\nAction: failed\r\nStatus: 5.1.1\r\n\
         Diagnostic-Code: smtp; 550 5.1.1 user unknown\r\n\r\n\
         --B\r\nContent-Type: text/rfc822-headers\r\n\r\nMessage-ID: <{id}>\r\nTo: {LEAD}\r\n\r\n--B--\r\n"
    );
    let form = mailgun_form(MAILGUN.1, at(T0).timestamp(), "tok-mime", &bounce);
    let response = app
        .client
        .post(app.url("/inbound/mailgun/mime"))
        .multipart(multipart(&form))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["classification"], "hard_bounce", "{body}");
    assert_eq!(inbound_count(&app).await, 1);
    assert_eq!(app.lead(LEAD).await.state, LeadState::Suppressed);
}

#[tokio::test]
async fn an_endpoint_without_a_configured_secret_does_not_exist() {
    let app = HttpApp::spawn().await;
    for path in [
        "/inbound/postmark",
        "/inbound/mailgun",
        "/inbound/mailgun/mime",
        "/inbound/sendgrid",
        "/inbound/raw",
    ] {
        let response = app
            .client
            .post(app.url(path))
            .body("x")
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 404, "{path}");
    }
}
