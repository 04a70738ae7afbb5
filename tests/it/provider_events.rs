//! Sending through Postmark, SendGrid and Mailgun closes its loop: per provider, a lead's
//! email goes through the API transport (to a stand-in that checks requests as the provider
//! does, `support::providers`), the provider's id of the message is stored, then the provider's
//! "bounce" event is posted to the daemon with a real signature (basic auth for Postmark, an
//! ECDSA P-256 key made here for SendGrid, the HMAC for Mailgun): the lead is suppressed once;
//! the same post again changes nothing; a forged one is 401 and changes nothing.

use crate::support;

use base64::Engine as _;
use hmac::{KeyInit, Mac};
use rewarm::config::SendGridKey;
use rewarm::domain::lead::LeadState;
use rewarm::secret::Secret;
use rewarm::store::SuppressionReason;
use rewarm::store::prelude::*;
use rewarm::transport::Transport;
use rewarm::transport::api::mailgun::{MailgunSettings, MailgunTransport};
use rewarm::transport::api::postmark::{PostmarkSettings, PostmarkTransport};
use rewarm::transport::api::sendgrid::{SendGridSettings, SendGridTransport};
use ring::signature::{ECDSA_P256_SHA256_ASN1_SIGNING, EcdsaKeyPair, KeyPair};
use serde_json::{Value, json};
use support::http_app::{HttpApp, T0, at};
use support::recording_http::RecordingServer;

const LEAD: &str = "sam@initech.example";
const PM_TOKEN: &str = "pm-server-token";
const SG_KEY: &str = "SG.key";
const MG_KEY: &str = "key-mg";
const MG_DOMAIN: &str = "mg.acme.example";
const PM_EVENTS: (&str, &str) = ("REWARM_TEST_EV_POSTMARK", "pm-events-secret");
const MG_SIGNING: (&str, &str) = ("REWARM_TEST_EV_MAILGUN", "mg-signing-key");

/// The app with every event route on, a lead, and `transport` pointed at `server`; one pass
/// at T0 has sent the lead its first email.
async fn sent_through(
    server: &RecordingServer,
    transport: Transport,
    sg_key: Option<String>,
) -> HttpApp {
    static ENV: std::sync::Once = std::sync::Once::new();
    ENV.call_once(|| {
        for (name, value) in [PM_EVENTS, MG_SIGNING] {
            // SAFETY of set_var: done once, before any test of this module reads these.
            unsafe { std::env::set_var(name, value) };
        }
    });
    let mut app = HttpApp::spawn().await;
    app.reconfigure(|s| {
        s.inbound.events.postmark_token_env = Some(PM_EVENTS.0.into());
        s.inbound.webhooks.mailgun_signing_key_env = Some(MG_SIGNING.0.into());
        s.inbound.events.sendgrid_public_key = sg_key.map(|k| {
            SendGridKey(rewarm::http::events::sendgrid_public_key(&k).expect("a valid key"))
        });
    });
    app.transport = transport;
    app.add_leads(&[LEAD]).await;
    let report = app.pass(at(T0)).await;
    assert_eq!(report.sent, 1, "{report:?} {:?}", server.requests());
    app
}

/// The provider's id of the one delivery, as stored on send.
async fn provider_id(app: &HttpApp) -> String {
    app.deliveries()
        .await
        .into_iter()
        .find_map(|d| d.provider_message_id)
        .expect("the provider's id was stored on send")
}

async fn inbound_count(app: &HttpApp) -> usize {
    app.store
        .inbound_messages(0, 1000)
        .await
        .expect("inbound")
        .len()
}

fn suppressed_events(timeline: &[rewarm::store::Event]) -> usize {
    timeline.iter().filter(|e| e.kind == "suppressed").count()
}

/// A forged post is 401 and changes nothing; the real one suppresses the lead once (as a
/// hard bounce, with the provider's words as evidence); the same post again is answered 200
/// and changes nothing.
async fn check_once(
    app: &HttpApp,
    provider: &str,
    forged: reqwest::Response,
    real: impl AsyncFn() -> reqwest::Response,
) {
    assert_eq!(forged.status(), 401, "{:?}", forged.text().await);
    assert_eq!(inbound_count(app).await, 0);
    assert_eq!(app.lead(LEAD).await.state, LeadState::Nurturing);

    let first = real().await;
    assert_eq!(first.status(), 200, "{:?}", first.text().await);
    let body: Value = first.json().await.expect("JSON");
    assert_eq!(body["events"][0]["duplicate"], false, "{body}");
    assert!(body["events"][0]["matched_by"].is_string(), "{body}");
    assert_eq!(app.lead(LEAD).await.state, LeadState::Suppressed);
    let entry = app
        .store
        .suppression_for(&rewarm::domain::email::EmailAddress::parse(LEAD).unwrap())
        .await
        .unwrap()
        .expect("listed");
    assert_eq!(entry.reason, SuppressionReason::HardBounce);
    assert_eq!(entry.evidence["provider"], provider);
    assert_eq!(entry.evidence["report"], "provider-event");
    let timeline = app.timeline(LEAD).await;
    assert_eq!(suppressed_events(&timeline), 1);

    let again = real().await;
    assert_eq!(again.status(), 200);
    let body: Value = again.json().await.expect("JSON");
    assert_eq!(body["events"][0]["duplicate"], true, "{body}");
    assert_eq!(app.timeline(LEAD).await.len(), timeline.len());
    assert_eq!(inbound_count(app).await, 1);
    assert_eq!(app.store.suppressions().await.unwrap().len(), 1);
}

#[tokio::test]
async fn postmark_keeps_our_message_id_and_its_bounce_event_suppresses_once() {
    let server = RecordingServer::start().await;
    support::providers::postmark(&server, PM_TOKEN);
    let transport = Transport::Postmark(
        PostmarkTransport::new(PostmarkSettings {
            base_url: server.url(),
            ..PostmarkSettings::new(Secret::new(PM_TOKEN))
        })
        .unwrap(),
    );
    let app = sent_through(&server, transport, None).await;
    let request = server.requests().remove(0);
    let message = request.json();
    let keep = message["Headers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|h| h["Name"] == "X-PM-KeepID");
    assert_eq!(keep.map(|h| h["Value"].clone()), Some(json!("true")));
    let our_id = app.first_message_id().await;
    let header = |name: &str| {
        message["Headers"]
            .as_array()
            .unwrap()
            .iter()
            .find(|h| h["Name"] == name)
            .map(|h| h["Value"].as_str().unwrap().to_string())
    };
    assert_eq!(header("Message-ID"), Some(format!("<{our_id}>")));
    assert_eq!(provider_id(&app).await, "pm-1-0");

    let bounce = json!({"RecordType": "Bounce", "ID": 4323372036854775807u64, "Type": "HardBounce",
        "TypeCode": 1, "Name": "Hard bounce", "MessageID": "pm-1-0", "MessageStream": "broadcast",
        "Description": "The server was unable to deliver your message (ex: unknown user, mailbox not found).",
        "Details": "smtp;550 5.1.1 The email account that you tried to reach does not exist.",
        "Email": LEAD, "From": "claire@acme.example", "BouncedAt": "2026-03-02T10:05:00Z",
        "Inactive": true, "CanActivate": true, "Subject": "checking in", "Metadata": {}});
    let post = |password: &str| {
        app.client
            .post(app.url("/events/postmark"))
            .basic_auth("postmark", Some(password))
            .json(&bounce)
            .send()
    };
    let forged = post("wrong").await.unwrap();
    check_once(&app, "postmark", forged, async || {
        post(PM_EVENTS.1).await.unwrap()
    })
    .await;
    // The secret may be in the URL instead (Postmark's webhook settings take either).
    let by_url = app
        .client
        .post(app.url(&format!("/events/postmark?token={}", PM_EVENTS.1)))
        .json(&bounce)
        .send()
        .await
        .unwrap();
    assert_eq!(by_url.status(), 200);
    let missing = app
        .client
        .post(app.url("/events/postmark"))
        .json(&json!({"ID": 1}))
        .basic_auth("p", Some(PM_EVENTS.1))
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), 400);
    assert!(missing.text().await.unwrap().contains("RecordType"));
}

/// A P-256 key as SendGrid holds it, and its public half as SendGrid's settings show it.
fn sendgrid_key() -> (EcdsaKeyPair, String) {
    let rng = ring::rand::SystemRandom::new();
    let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, &rng).unwrap();
    let pair =
        EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, pkcs8.as_ref(), &rng).unwrap();
    // DER SubjectPublicKeyInfo: id-ecPublicKey, prime256v1, then the uncompressed point.
    let mut der = vec![
        0x30, 0x59, 0x30, 0x13, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01, 0x06, 0x08,
        0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07, 0x03, 0x42, 0x00,
    ];
    der.extend_from_slice(pair.public_key().as_ref());
    (pair, base64::engine::general_purpose::STANDARD.encode(der))
}

fn sendgrid_signature(pair: &EcdsaKeyPair, timestamp: &str, body: &[u8]) -> String {
    let mut signed = timestamp.as_bytes().to_vec();
    signed.extend_from_slice(body);
    let sig = pair
        .sign(&ring::rand::SystemRandom::new(), &signed)
        .unwrap();
    base64::engine::general_purpose::STANDARD.encode(sig.as_ref())
}

#[tokio::test]
async fn sendgrid_signed_bounce_events_suppress_once_in_one_batch() {
    let server = RecordingServer::start().await;
    support::providers::sendgrid(&server, SG_KEY);
    let transport = Transport::SendGrid(
        SendGridTransport::new(SendGridSettings {
            base_url: server.url(),
            ..SendGridSettings::new(Secret::new(SG_KEY))
        })
        .unwrap(),
    );
    let (pair, public) = sendgrid_key();
    let app = sent_through(&server, transport, Some(public)).await;
    assert_eq!(provider_id(&app).await, "sg-1");
    // SendGrid keeps the Message-ID it is given in `headers`.
    let our_id = app.first_message_id().await;
    assert_eq!(
        server.requests()[0].json()["headers"]["Message-ID"],
        format!("<{our_id}>")
    );
    let token = server.requests()[0].json()["personalizations"][0]["custom_args"]["rewarm_token"]
        .as_str()
        .expect("our signed token in custom_args")
        .to_string();

    let ts = at(T0).timestamp().to_string();
    // A batch: the message was delivered, then bounced (matched by our token and by
    // SendGrid's id), plus an open, which is not kept.
    let body = json!([
        {"email": LEAD, "timestamp": at(T0).timestamp(), "event": "delivered", "sg_event_id": "ev-d",
         "sg_message_id": "sg-1.filterdrecv-5bf99c48d-1.0", "response": "250 OK", "rewarm_token": token},
        {"email": LEAD, "timestamp": at(T0).timestamp(), "event": "bounce", "type": "bounce", "sg_event_id": "ev-b",
         "sg_message_id": "sg-1.filterdrecv-5bf99c48d-1.0", "status": "5.1.1",
         "reason": "550 5.1.1 The email account that you tried to reach does not exist.",
         "bounce_classification": "Invalid Address"},
        {"email": LEAD, "timestamp": at(T0).timestamp(), "event": "open", "sg_event_id": "ev-o"}
    ])
    .to_string();
    let post = |signature: String| {
        app.client
            .post(app.url("/events/sendgrid"))
            .header("content-type", "application/json")
            .header("X-Twilio-Email-Event-Webhook-Signature", signature)
            .header("X-Twilio-Email-Event-Webhook-Timestamp", ts.clone())
            .body(body.clone())
            .send()
    };
    let (other, _) = sendgrid_key();
    let forged = post(sendgrid_signature(&other, &ts, body.as_bytes()))
        .await
        .unwrap();
    assert_eq!(forged.status(), 401);
    assert_eq!(inbound_count(&app).await, 0);
    let real = post(sendgrid_signature(&pair, &ts, body.as_bytes()))
        .await
        .unwrap();
    assert_eq!(real.status(), 200, "{:?}", real.text().await);
    let answer: Value = real.json().await.unwrap();
    let events = answer["events"].as_array().unwrap();
    assert_eq!(events.len(), 2, "the open is not kept: {answer}");
    assert_eq!(events[0]["matched_by"], "token");
    assert_eq!(events[1]["matched_by"], "provider_id");
    assert_eq!(app.lead(LEAD).await.state, LeadState::Suppressed);
    let timeline = app.timeline(LEAD).await;
    assert_eq!(suppressed_events(&timeline), 1);
    assert_eq!(timeline.iter().filter(|e| e.kind == "delivered").count(), 1);
    // SendGrid retries the same post: nothing changes.
    let again = post(sendgrid_signature(&pair, &ts, body.as_bytes()))
        .await
        .unwrap();
    assert_eq!(again.status(), 200);
    let answer: Value = again.json().await.unwrap();
    assert!(
        answer["events"]
            .as_array()
            .unwrap()
            .iter()
            .all(|e| e["duplicate"] == true)
    );
    assert_eq!(app.timeline(LEAD).await.len(), timeline.len());
    // A body that is not an array of events: 400, nothing kept.
    let bad = "{\"event\": \"bounce\"}";
    let response = app
        .client
        .post(app.url("/events/sendgrid"))
        .header(
            "X-Twilio-Email-Event-Webhook-Signature",
            sendgrid_signature(&pair, &ts, bad.as_bytes()),
        )
        .header("X-Twilio-Email-Event-Webhook-Timestamp", ts.clone())
        .body(bad)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    assert_eq!(inbound_count(&app).await, 2);
}

fn mailgun_signed(event: &Value, timestamp: i64, token: &str, key: &str) -> Value {
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(key.as_bytes()).unwrap();
    mac.update(format!("{timestamp}{token}").as_bytes());
    let signature: String = mac
        .finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    json!({"signature": {"timestamp": timestamp.to_string(), "token": token, "signature": signature},
           "event-data": event})
}

#[tokio::test]
async fn mailgun_signed_failed_event_suppresses_once_and_its_token_is_bound() {
    let server = RecordingServer::start().await;
    support::providers::mailgun(&server, MG_KEY, MG_DOMAIN);
    let transport = Transport::Mailgun(
        MailgunTransport::new(MailgunSettings {
            base_url: server.url(),
            ..MailgunSettings::new(Secret::new(MG_KEY), MG_DOMAIN)
        })
        .unwrap(),
    );
    let app = sent_through(&server, transport, None).await;
    let our_id = app.first_message_id().await;
    assert_eq!(
        provider_id(&app).await,
        our_id,
        "Mailgun's id is our Message-ID"
    );
    let event = json!({"id": "G9Bn5sl1TC6nu79C8C0bwg", "event": "failed", "severity": "permanent",
        "reason": "bounce", "recipient": LEAD, "timestamp": at(T0).timestamp(),
        "message": {"headers": {"message-id": our_id, "to": LEAD}},
        "delivery-status": {"code": 550, "message": "5.1.1 The email account does not exist.",
                            "description": "", "attempt-no": 1},
        "user-variables": {}});
    let ts = at(T0).timestamp() - 60;
    let post = |body: Value| {
        app.client
            .post(app.url("/events/mailgun"))
            .json(&body)
            .send()
    };
    let forged = post(mailgun_signed(&event, ts, "tok-1", "not-the-key"))
        .await
        .unwrap();
    let signed = mailgun_signed(&event, ts, "tok-1", MG_SIGNING.1);
    check_once(&app, "mailgun", forged, async || {
        post(signed.clone()).await.unwrap()
    })
    .await;
    // The same signature with another event: its token is bound to the first post.
    let other = json!({"id": "other", "event": "delivered", "recipient": LEAD});
    let mut replayed = mailgun_signed(&other, ts, "tok-1", MG_SIGNING.1);
    replayed["signature"] = signed["signature"].clone();
    assert_eq!(post(replayed).await.unwrap().status(), 401);
    // Too old: refused.
    let stale = mailgun_signed(&other, ts - 10 * 60 * 60, "tok-2", MG_SIGNING.1);
    assert_eq!(post(stale).await.unwrap().status(), 401);
    assert_eq!(inbound_count(&app).await, 1);
}

/// Postmark's answer to a revoked server token (HTTP 401, ErrorCode 10) pauses the transport:
/// nothing fails, nothing is retried, no attempt is counted, and `status`'s record names the
/// account; once the token is fixed, the probe goes and everything is sent once.
#[tokio::test]
async fn a_401_from_the_provider_pauses_the_transport_without_burning_an_attempt() {
    let server = RecordingServer::start().await;
    support::providers::postmark(&server, PM_TOKEN);
    let postmark = |token: &str| {
        Transport::Postmark(
            PostmarkTransport::new(PostmarkSettings {
                base_url: server.url(),
                ..PostmarkSettings::new(Secret::new(token))
            })
            .unwrap(),
        )
    };
    let mut app = HttpApp::spawn().await;
    app.transport = postmark("revoked-token");
    let leads = [
        "a@initech.example",
        "b@initech.example",
        "c@initech.example",
    ];
    app.add_leads(&leads).await;
    let report = app.pass(at(T0)).await;
    assert_eq!(
        (report.sent, report.failed, report.retried, report.deferred),
        (0, 0, 0, 3),
        "{report:?}"
    );
    let answer = server.requests().len();
    assert!(answer >= 1, "Postmark was asked");
    for d in app.deliveries().await {
        assert_eq!((d.state.as_str(), d.attempts), ("scheduled", 0), "{d:?}");
    }
    let health = app.current.get().gate.health("test");
    assert!(health.paused, "{health:?}");
    assert_eq!(health.reason.as_deref(), Some("account"));
    assert!(health.detail.unwrap().contains("server token"));
    // Paused: a pass before the probe sends nothing.
    app.pass(at(T0) + chrono::Duration::seconds(5)).await;
    assert_eq!(server.requests().len(), answer);
    // The token is fixed: the probe goes, the breaker closes, the rest follow, each once.
    app.transport = postmark(PM_TOKEN);
    let mut sent = 0;
    for minute in 1..=3 {
        sent += app
            .pass(at(T0) + chrono::Duration::minutes(minute))
            .await
            .sent;
    }
    assert_eq!(sent, 3);
    assert!(!app.current.get().gate.is_paused());
    for d in app.deliveries().await.iter().filter(|d| d.step == 0) {
        assert_eq!((d.state.as_str(), d.attempts), ("sent", 1), "{d:?}");
        assert!(d.provider_message_id.is_some());
    }
}

/// A Mailgun sandbox domain's "authorized recipients" refusal is our configuration, never a
/// bounce: the lead stays, the transport pauses.
#[tokio::test]
async fn a_mailgun_sandbox_refusal_is_configuration_and_never_suppresses() {
    let server = RecordingServer::start().await;
    server.respond_with(|_| {
        support::recording_http::ScriptedResponse::json(400, json!({"message":
            "Domain sandbox0123.mailgun.org is not allowed to send: Free accounts are for test purposes only. Please upgrade or add the address to authorized recipients in Account Settings."}))
    });
    let mut app = HttpApp::spawn().await;
    app.transport = Transport::Mailgun(
        MailgunTransport::new(MailgunSettings {
            base_url: server.url(),
            ..MailgunSettings::new(Secret::new(MG_KEY), MG_DOMAIN)
        })
        .unwrap(),
    );
    app.add_leads(&[LEAD]).await;
    let report = app.pass(at(T0)).await;
    assert_eq!((report.failed, report.deferred), (0, 1), "{report:?}");
    assert_eq!(app.lead(LEAD).await.state, LeadState::Nurturing);
    assert!(app.store.suppressions().await.unwrap().is_empty());
    assert_eq!(app.deliveries().await[0].attempts, 0);
}

/// SendGrid's 429 says when its limit resets (`X-RateLimit-Reset`, epoch seconds): without
/// any `[transport.limits]`, the delivery waits until then, no attempt counted.
#[tokio::test]
async fn a_sendgrid_429_defers_until_its_rate_limit_resets_without_limits_configured() {
    let server = RecordingServer::start().await;
    let date = "Mon, 02 Mar 2026 10:00:00 GMT";
    let reset = at(T0).timestamp() + 120;
    server.respond_with(move |_| {
        support::recording_http::ScriptedResponse::json(
            429,
            json!({"errors": [{"message": "too many requests", "field": null}]}),
        )
        .with_header("date", date)
        .with_header("x-ratelimit-reset", &reset.to_string())
    });
    let mut app = HttpApp::spawn().await;
    assert!(app.current.get().settings.limits.is_none());
    app.transport = Transport::SendGrid(
        SendGridTransport::new(SendGridSettings {
            base_url: server.url(),
            ..SendGridSettings::new(Secret::new(SG_KEY))
        })
        .unwrap(),
    );
    app.add_leads(&[LEAD]).await;
    let report = app.pass(at(T0)).await;
    assert_eq!((report.retried, report.deferred), (0, 1), "{report:?}");
    let d = &app.deliveries().await[0];
    assert_eq!(d.attempts, 0);
    let wait = d.due_at - at(T0);
    assert!(
        wait >= chrono::Duration::seconds(120) && wait < chrono::Duration::seconds(130),
        "due {} ({wait:?} after T0)",
        d.due_at
    );
}

const PM_INBOUND: (&str, &str) = ("REWARM_TEST_EV_PM_INBOUND", "pm-inbound-secret");
const SG_INBOUND: (&str, &str) = ("REWARM_TEST_EV_SG_INBOUND", "sg-inbound-secret");

/// The inbound routes with Postmark's and SendGrid's secrets on (and Mailgun's signing key).
async fn inbound_app() -> HttpApp {
    static ENV: std::sync::Once = std::sync::Once::new();
    ENV.call_once(|| {
        for (name, value) in [PM_INBOUND, SG_INBOUND, MG_SIGNING] {
            // SAFETY of set_var: done once, before any test of this module reads these.
            unsafe { std::env::set_var(name, value) };
        }
    });
    let app = HttpApp::spawn().await;
    app.reconfigure(|s| {
        let w = &mut s.inbound.webhooks;
        w.postmark_token_env = Some(PM_INBOUND.0.into());
        w.sendgrid_token_env = Some(SG_INBOUND.0.into());
        w.mailgun_signing_key_env = Some(MG_SIGNING.0.into());
    });
    app
}

/// Events posted to the inbound routes by mistake get an answer naming the right URL, and
/// nothing is stored; a SendGrid Parse post not in raw mode is 503 (SendGrid retries it).
#[tokio::test]
async fn misrouted_events_and_a_parse_hook_not_in_raw_mode_get_clear_answers() {
    let app = inbound_app().await;
    let bounce = json!({"RecordType": "Bounce", "ID": 1, "Type": "HardBounce", "MessageID": "m", "Email": LEAD});
    let response = app
        .client
        .post(app.url("/inbound/postmark"))
        .basic_auth("postmark", Some(PM_INBOUND.1))
        .json(&bounce)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    assert!(response.text().await.unwrap().contains("/events/postmark"));

    let event = json!({"id": "e", "event": "failed", "severity": "permanent", "recipient": LEAD});
    let signed = mailgun_signed(&event, at(T0).timestamp(), "tok-in", MG_SIGNING.1);
    let response = app
        .client
        .post(app.url("/inbound/mailgun"))
        .json(&signed)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    assert!(response.text().await.unwrap().contains("/events/mailgun"));

    // Parse's default (parsed fields, no `email`): 503 so that SendGrid keeps the message.
    let parsed = reqwest::multipart::Form::new()
        .text("from", LEAD)
        .text("subject", "Re: checking in")
        .text("text", "Yes, call me.");
    let response = app
        .client
        .post(app.url("/inbound/sendgrid"))
        .basic_auth("parse", Some(SG_INBOUND.1))
        .multipart(parsed)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 503);
    assert!(response.text().await.unwrap().contains("raw"));
    assert_eq!(inbound_count(&app).await, 0);
}

/// SendGrid's Parse settings take credentials as part of the URL: the secret is accepted as
/// basic auth (`https://parse:SECRET@host/…` becomes an `Authorization` header) or as
/// `?token=SECRET`; a wrong one either way is 401.
#[tokio::test]
async fn a_sendgrid_parse_post_authenticates_by_header_or_by_url() {
    let app = inbound_app().await;
    let raw = |id: &str| {
        format!(
            "From: Sam <{LEAD}>\r\nTo: claire@acme.example\r\nSubject: hi\r\nMessage-ID: <{id}@initech.example>\r\n\r\nHello\r\n"
        )
    };
    let form = |id: &str| reqwest::multipart::Form::new().text("email", raw(id));
    let post = |path: String| app.client.post(app.url(&path));
    let by_header = post("/inbound/sendgrid".into())
        .basic_auth("parse", Some(SG_INBOUND.1))
        .multipart(form("h1"))
        .send()
        .await
        .unwrap();
    assert_eq!(by_header.status(), 200);
    let by_url = post(format!("/inbound/sendgrid?token={}", SG_INBOUND.1))
        .multipart(form("u1"))
        .send()
        .await
        .unwrap();
    assert_eq!(by_url.status(), 200);
    for wrong in [
        post("/inbound/sendgrid?token=nope".into()).multipart(form("w1")),
        post("/inbound/sendgrid".into())
            .basic_auth("parse", Some("nope"))
            .multipart(form("w2")),
    ] {
        assert_eq!(wrong.send().await.unwrap().status(), 401);
    }
    assert_eq!(inbound_count(&app).await, 2);
}
