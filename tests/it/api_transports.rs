//! The HTTP API transports (Postmark, SendGrid, Mailgun) against a local recording HTTP
//! server: each request is checked against the provider's documented shape (endpoint, auth,
//! JSON fields or multipart parts), batch use, and how answers map to outcomes (success,
//! 429, 5xx, hard bounces, our own misconfiguration, timeouts, refused connections).

use crate::support;

use std::collections::{BTreeSet, HashMap};
use std::time::Duration;

use base64::Engine as _;
use lettre::message::header::{ContentType, HeaderName, HeaderValue, MessageId};
use lettre::message::{Mailbox, MultiPart, SinglePart};
use rewarm::secret::Secret;
use rewarm::transport::api::mailgun::{MailgunSettings, MailgunTransport};
use rewarm::transport::api::postmark::{PostmarkSettings, PostmarkTransport};
use rewarm::transport::api::sendgrid::{SendGridSettings, SendGridTransport};
use rewarm::transport::limits::{LimitSettings, Limiter, Throttle, throttle_of};
use rewarm::transport::{OutgoingEmail, SendError, SendOutcome, Transport};
use serde_json::{Value, json};
use support::recording_http::{RecordedRequest, RecordingServer, ScriptedResponse};

const TOKEN: &str = "pm-server-token-123";
const SG_KEY: &str = "SG.secret-key";
const MG_KEY: &str = "key-mailgun-secret";

/// A message as compose() builds it: names, subject, Message-ID, one-click unsubscribe headers,
/// text (and HTML for odd ids).
fn email(i: i64) -> OutgoingEmail {
    let to_addr = format!("lead{i}@example.org");
    let message_id = format!("rw.{i}.abc@mail.acme.test");
    let builder = lettre::Message::builder()
        .from("Sam from Acme <sam@acme.test>".parse().unwrap())
        .reply_to("Acme Sales <sales@acme.test>".parse().unwrap())
        .to(Mailbox::new(
            Some(format!("Zoë Müller-{i}, PhD")),
            to_addr.parse().unwrap(),
        ))
        .subject(format!("Ça va, lead {i}? Still looking for a CRM"))
        .header(MessageId::from(format!("<{message_id}>")))
        .raw_header(HeaderValue::new(
            HeaderName::new_from_ascii_str("List-Unsubscribe"),
            format!("<https://rewarm.acme.test/u/token{i}>"),
        ))
        .raw_header(HeaderValue::new(
            HeaderName::new_from_ascii_str("List-Unsubscribe-Post"),
            "List-Unsubscribe=One-Click".to_string(),
        ));
    let text = format!("Hi lead {i},\r\n\r\nWe spoke last spring. Grüße!\r\n\r\nSam\r\n");
    let message = if i % 2 == 1 {
        builder
            .multipart(MultiPart::alternative_plain_html(
                text,
                format!("<p>Hi lead {i}, Grüße &amp; <b>bye</b></p>"),
            ))
            .unwrap()
    } else {
        builder
            .singlepart(
                SinglePart::builder()
                    .header(ContentType::TEXT_PLAIN)
                    .body(text),
            )
            .unwrap()
    };
    OutgoingEmail {
        delivery_id: i,
        envelope_from: "bounces@acme.test".to_string(),
        envelope_to: to_addr,
        message_id,
        bytes: message.formatted(),
    }
}

fn text_of(i: i64) -> String {
    format!("Hi lead {i},\r\n\r\nWe spoke last spring. Grüße!\r\n\r\nSam\r\n")
}

fn outcome_map(outcomes: Vec<SendOutcome>) -> HashMap<i64, Result<(), SendError>> {
    let n = outcomes.len();
    let map: HashMap<_, _> = outcomes.into_iter().collect();
    assert_eq!(map.len(), n, "one outcome per delivery");
    map
}

fn postmark(server: &RecordingServer) -> PostmarkSettings {
    PostmarkSettings {
        base_url: format!("{}/", server.url()),
        message_stream: Some("broadcast".into()),
        timeout: Duration::from_secs(5),
        ..PostmarkSettings::new(Secret::new(TOKEN))
    }
}

fn sendgrid(server: &RecordingServer) -> SendGridSettings {
    SendGridSettings {
        base_url: server.url(),
        timeout: Duration::from_secs(5),
        ..SendGridSettings::new(Secret::new(SG_KEY))
    }
}

fn mailgun(server: &RecordingServer) -> MailgunSettings {
    MailgunSettings {
        base_url: server.url(),
        timeout: Duration::from_secs(5),
        ..MailgunSettings::new(Secret::new(MG_KEY), "mg.acme.test")
    }
}

/// Postmark's batch answer: one OK result per message of the request, in order.
fn postmark_ok(request: &RecordedRequest) -> ScriptedResponse {
    let ok = |m: &Value| {
        json!({"To": m["To"], "SubmittedAt": "2025-03-03T09:00:00Z",
               "MessageID": "b7bc2f4a-e38e-4336-af7d-e6c392c2f817", "ErrorCode": 0, "Message": "OK"})
    };
    match request.json() {
        Value::Array(messages) => {
            ScriptedResponse::json(200, Value::Array(messages.iter().map(ok).collect()))
        }
        single => ScriptedResponse::json(200, ok(&single)),
    }
}

/// The fields Postmark documents for a message (send email / batch).
const POSTMARK_FIELDS: &[&str] = &[
    "From",
    "To",
    "Cc",
    "Bcc",
    "Subject",
    "Tag",
    "HtmlBody",
    "TextBody",
    "ReplyTo",
    "Headers",
    "TrackOpens",
    "TrackLinks",
    "Metadata",
    "Attachments",
    "MessageStream",
];

fn check_postmark_message(m: &Value, i: i64) {
    let fields: BTreeSet<&str> = m.as_object().unwrap().keys().map(|k| k.as_str()).collect();
    for f in &fields {
        assert!(POSTMARK_FIELDS.contains(f), "undocumented field {f} in {m}");
    }
    assert_eq!(m["From"], "\"Sam from Acme\" <sam@acme.test>");
    assert_eq!(
        m["To"],
        format!("\"Zoë Müller-{i}, PhD\" <lead{i}@example.org>")
    );
    assert_eq!(m["ReplyTo"], "\"Acme Sales\" <sales@acme.test>");
    assert_eq!(
        m["Subject"],
        format!("Ça va, lead {i}? Still looking for a CRM")
    );
    assert_eq!(m["TextBody"], text_of(i));
    if i % 2 == 1 {
        assert_eq!(
            m["HtmlBody"],
            format!("<p>Hi lead {i}, Grüße &amp; <b>bye</b></p>")
        );
    } else {
        assert!(m.get("HtmlBody").is_none());
    }
    assert_eq!(m["MessageStream"], "broadcast");
    // The delivery id, and the token of our Message-ID (its local part).
    assert_eq!(
        m["Metadata"],
        json!({"rewarm_delivery_id": i.to_string(), "rewarm_token": format!("rw.{i}.abc")})
    );
    let headers: HashMap<String, String> = m["Headers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| {
            let keys: BTreeSet<&str> = h.as_object().unwrap().keys().map(|k| k.as_str()).collect();
            assert_eq!(keys, BTreeSet::from(["Name", "Value"]), "{h}");
            (
                h["Name"].as_str().unwrap().to_ascii_lowercase(),
                h["Value"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(
        headers["message-id"],
        format!("<rw.{i}.abc@mail.acme.test>")
    );
    assert_eq!(
        headers["list-unsubscribe"],
        format!("<https://rewarm.acme.test/u/token{i}>")
    );
    assert_eq!(
        headers["list-unsubscribe-post"],
        "List-Unsubscribe=One-Click"
    );
    // Without it Postmark replaces our Message-ID with its own.
    assert_eq!(headers["x-pm-keepid"], "true");
    for built in [
        "from",
        "to",
        "subject",
        "date",
        "content-type",
        "mime-version",
        "reply-to",
    ] {
        assert!(
            !headers.contains_key(built),
            "{built} passed as a custom header"
        );
    }
}

fn check_postmark_headers(r: &RecordedRequest) {
    assert_eq!(r.method, "POST");
    assert_eq!(r.header("x-postmark-server-token"), Some(TOKEN));
    assert_eq!(r.header("accept"), Some("application/json"));
    assert_eq!(r.header("content-type"), Some("application/json"));
    assert!(r.header("authorization").is_none());
}

#[tokio::test]
async fn postmark_sends_a_batch_through_the_batch_endpoint_in_the_documented_shape() {
    let server = RecordingServer::start().await;
    server.respond_with(postmark_ok);
    let transport = PostmarkTransport::new(postmark(&server)).unwrap();
    assert!(
        !format!("{transport:?}").contains(TOKEN),
        "the token never prints"
    );

    let outcomes = outcome_map(transport.send_batch((1..=3).map(email).collect()).await);

    assert!(outcomes.values().all(|o| o.is_ok()), "{outcomes:?}");
    let requests = server.requests();
    assert_eq!(requests.len(), 1, "one batch call");
    let r = &requests[0];
    check_postmark_headers(r);
    assert_eq!(r.path, "/email/batch");
    let body = r.json();
    let messages = body.as_array().expect("a JSON array of messages");
    assert_eq!(messages.len(), 3);
    for (m, i) in messages.iter().zip(1..) {
        check_postmark_message(m, i);
    }
}

#[tokio::test]
async fn postmark_sends_a_lone_message_to_the_single_endpoint() {
    let server = RecordingServer::start().await;
    server.respond_with(postmark_ok);
    let transport = PostmarkTransport::new(postmark(&server)).unwrap();

    let outcomes = transport.send_batch(vec![email(4)]).await;

    assert_eq!(outcomes, vec![(4, Ok(()))]);
    let requests = server.requests();
    assert_eq!(requests.len(), 1);
    check_postmark_headers(&requests[0]);
    assert_eq!(requests[0].path, "/email");
    check_postmark_message(&requests[0].json(), 4);
}

#[tokio::test]
async fn postmark_splits_a_batch_into_calls_of_at_most_batch_size() {
    let server = RecordingServer::start().await;
    server.respond_with(postmark_ok);
    let transport = PostmarkTransport::new(PostmarkSettings {
        batch_size: 4,
        concurrency: 2,
        ..postmark(&server)
    })
    .unwrap();

    let outcomes = transport.send_batch((0..9).map(email).collect()).await;

    let ids: Vec<i64> = outcomes.iter().map(|(id, _)| *id).collect();
    assert_eq!(
        ids,
        (0..9).collect::<Vec<_>>(),
        "outcomes in the batch's order"
    );
    assert!(outcomes.iter().all(|(_, o)| o.is_ok()));
    let requests = server.requests();
    let mut shapes: Vec<(String, usize)> = requests
        .iter()
        .map(|r| {
            let n = r.json().as_array().map_or(1, |a| a.len());
            (r.path.clone(), n)
        })
        .collect();
    shapes.sort();
    assert_eq!(
        shapes,
        vec![
            ("/email".to_string(), 1),
            ("/email/batch".to_string(), 4),
            ("/email/batch".to_string(), 4)
        ]
    );
    // Every message went exactly once.
    let mut sent: Vec<String> = requests
        .iter()
        .flat_map(|r| match r.json() {
            Value::Array(a) => a,
            one => vec![one],
        })
        .map(|m| {
            m["Metadata"]["rewarm_delivery_id"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    sent.sort();
    assert_eq!(sent, (0..9).map(|i| i.to_string()).collect::<Vec<_>>());
}

#[tokio::test]
async fn postmark_maps_each_result_of_a_batch_inactive_and_invalid_recipients_are_hard_bounces() {
    let server = RecordingServer::start().await;
    server.script(
        1,
        ScriptedResponse::json(
            200,
            json!([
                {"To": "lead1@example.org", "SubmittedAt": "2025-03-03T09:00:00Z", "MessageID": "a", "ErrorCode": 0, "Message": "OK"},
                {"ErrorCode": 406, "Message": "You tried to send to recipient(s) that have been marked as inactive. Found inactive addresses: lead2@example.org. Inactive recipients are ones that have generated a hard bounce, a spam complaint, or a manual suppression."},
                {"ErrorCode": 300, "Message": "Invalid 'To' address: 'lead3@example.org'."},
                {"ErrorCode": 300, "Message": "Invalid 'From' address: 'sam@acme.test' is not a verified sender signature."},
                {"To": "lead5@example.org", "SubmittedAt": "2025-03-03T09:00:00Z", "MessageID": "e", "ErrorCode": 0, "Message": "OK"}
            ]),
        ),
    );
    let transport = PostmarkTransport::new(postmark(&server)).unwrap();

    let outcomes = outcome_map(transport.send_batch((1..=5).map(email).collect()).await);

    assert_eq!(outcomes[&1], Ok(()));
    assert_eq!(outcomes[&5], Ok(()));
    for id in [2, 3] {
        let e = outcomes[&id].as_ref().unwrap_err();
        assert!(e.is_permanent() && e.is_hard_bounce(), "{id}: {e}");
    }
    assert!(
        outcomes[&2]
            .as_ref()
            .unwrap_err()
            .to_string()
            .contains("406")
    );
    let e = outcomes[&4].as_ref().unwrap_err();
    assert!(
        e.is_transient(),
        "our sender signature is not the lead's fault: {e}"
    );
}

#[tokio::test]
async fn postmark_a_429_is_transient_and_defers_then_the_next_call_goes_through() {
    let server = RecordingServer::start().await;
    server.respond_with(postmark_ok);
    server.script(
        1,
        ScriptedResponse::json(
            429,
            json!({"ErrorCode": 429, "Message": "Rate limit exceeded."}),
        )
        .with_header("Retry-After", "20"),
    );
    let transport = PostmarkTransport::new(postmark(&server)).unwrap();
    let mut limiter = Limiter::new(LimitSettings::default());
    let now = chrono::DateTime::parse_from_rfc3339("2026-03-02T10:00:00Z")
        .expect("a fixed time")
        .with_timezone(&chrono::Utc);
    let batch: Vec<OutgoingEmail> = (1..=3).map(email).collect();
    let admitted = limiter.admit(
        now,
        &batch
            .iter()
            .map(|m| (m.delivery_id, "example.org"))
            .collect::<Vec<_>>(),
    );
    assert_eq!(admitted.admitted.len(), 3);

    let first = transport.send_batch(batch.clone()).await;

    assert_eq!(first.len(), 3);
    for outcome in &first {
        let e = outcome.1.as_ref().unwrap_err();
        assert!(e.is_transient(), "{e}");
        assert!(e.to_string().contains("HTTP 429"), "{e}");
        // The status and Retry-After are fields, which the limits read.
        assert_eq!(e.http_status(), Some(429));
        assert_eq!(e.retry_after(), Some(Duration::from_secs(20)));
        assert_eq!(
            throttle_of(e),
            Some(Throttle::Provider {
                retry_after: Some(Duration::from_secs(20))
            })
        );
        // The limiter turns it into a deferral (no attempt used), and pauses the transport.
        assert_eq!(
            limiter.record(now, outcome),
            Some(now + chrono::TimeDelta::seconds(20))
        );
    }
    assert!(
        limiter
            .admit(now, &[(1, "example.org")])
            .admitted
            .is_empty()
    );

    let second = transport.send_batch(batch).await;
    assert!(second.iter().all(|(_, o)| o.is_ok()), "{second:?}");
    assert_eq!(server.requests().len(), 2);
}

#[tokio::test]
async fn postmark_server_errors_and_our_own_misconfiguration_are_transient() {
    let server = RecordingServer::start().await;
    server.script_next(vec![
        ScriptedResponse::status(500).with_body("Internal Server Error"),
        ScriptedResponse::status(503),
        ScriptedResponse::json(401, json!({"ErrorCode": 10, "Message": "Bad or missing Server API token."})),
        ScriptedResponse::json(422, json!({"ErrorCode": 412, "Message": "Your account is pending approval."})),
        ScriptedResponse::json(422, json!({"ErrorCode": 406, "Message": "You tried to send to recipient(s) that have been marked as inactive."})),
    ]);
    let transport = PostmarkTransport::new(postmark(&server)).unwrap();

    let mut results = Vec::new();
    for i in 0..5 {
        let mut o = transport.send_batch(vec![email(i)]).await;
        results.push(o.remove(0).1);
    }

    for (i, r) in results.iter().take(4).enumerate() {
        let e = r.as_ref().unwrap_err();
        assert!(e.is_transient(), "call {i}: {e}");
        assert!(!e.is_hard_bounce());
    }
    assert!(
        results[0]
            .as_ref()
            .unwrap_err()
            .to_string()
            .contains("HTTP 500")
    );
    assert!(
        results[2]
            .as_ref()
            .unwrap_err()
            .to_string()
            .contains("token")
    );
    assert!(
        results[3]
            .as_ref()
            .unwrap_err()
            .to_string()
            .contains("configuration")
    );
    let e = results[4].as_ref().unwrap_err();
    assert!(e.is_permanent() && e.is_hard_bounce(), "{e}");
}

#[tokio::test]
async fn postmark_a_whole_batch_refused_is_transient_for_every_message() {
    let server = RecordingServer::start().await;
    server.script(
        1,
        ScriptedResponse::json(
            422,
            json!({"ErrorCode": 300, "Message": "Invalid 'To' address."}),
        ),
    );
    let transport = PostmarkTransport::new(postmark(&server)).unwrap();

    let outcomes = transport.send_batch((1..=3).map(email).collect()).await;

    assert_eq!(outcomes.len(), 3);
    assert!(
        outcomes
            .iter()
            .all(|(_, o)| matches!(o, Err(e) if e.is_transient())),
        "{outcomes:?}"
    );
}

#[tokio::test]
async fn an_answer_that_never_comes_is_unknown_and_is_not_retried() {
    let server = RecordingServer::start().await;
    server.respond_with(|_| ScriptedResponse::status(200).after(Duration::from_secs(3)));
    let transport = PostmarkTransport::new(PostmarkSettings {
        timeout: Duration::from_millis(400),
        ..postmark(&server)
    })
    .unwrap();

    let outcomes = transport.send_batch((1..=2).map(email).collect()).await;

    assert!(
        outcomes
            .iter()
            .all(|(_, o)| matches!(o, Err(e) if e.is_unknown())),
        "{outcomes:?}"
    );
    assert_eq!(
        server.requests().len(),
        1,
        "the request arrived once; no retry"
    );
}

#[tokio::test]
async fn a_refused_connection_is_transient_for_every_provider() {
    // A port nobody listens on.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    drop(listener);
    let transports = [
        Transport::Postmark(
            PostmarkTransport::new(PostmarkSettings {
                base_url: url.clone(),
                ..PostmarkSettings::new(Secret::new(TOKEN))
            })
            .unwrap(),
        ),
        Transport::SendGrid(
            SendGridTransport::new(SendGridSettings {
                base_url: url.clone(),
                ..SendGridSettings::new(Secret::new(SG_KEY))
            })
            .unwrap(),
        ),
        Transport::Mailgun(
            MailgunTransport::new(MailgunSettings {
                base_url: url.clone(),
                ..MailgunSettings::new(Secret::new(MG_KEY), "mg.acme.test")
            })
            .unwrap(),
        ),
    ];
    for transport in &transports {
        let outcomes = transport.send_batch((1..=3).map(email).collect()).await;
        assert_eq!(outcomes.len(), 3, "{}", transport.kind());
        for (_, o) in &outcomes {
            let e = o.as_ref().unwrap_err();
            assert!(e.is_transient(), "{}: {e}", transport.kind());
            assert!(
                e.to_string().contains("connect"),
                "{}: {e}",
                transport.kind()
            );
        }
    }
}

#[tokio::test]
async fn setup_refuses_bad_base_urls_empty_keys_and_bad_domains() {
    assert!(
        PostmarkTransport::new(PostmarkSettings {
            base_url: "api.postmarkapp.com".into(),
            ..PostmarkSettings::new(Secret::new(TOKEN))
        })
        .is_err()
    );
    assert!(PostmarkTransport::new(PostmarkSettings::new(Secret::new(" "))).is_err());
    assert!(SendGridTransport::new(SendGridSettings::new(Secret::new("a\nb"))).is_err());
    assert!(MailgunTransport::new(MailgunSettings::new(Secret::new(MG_KEY), "mg/../x")).is_err());
    let err = MailgunTransport::new(MailgunSettings::new(Secret::new(MG_KEY), "")).unwrap_err();
    assert!(err.to_string().starts_with("mailgun:"), "{err}");
    assert!(PostmarkTransport::new(PostmarkSettings::new(Secret::new(TOKEN))).is_ok());
}

// ------------------------------------------------------------------------------------------
// SendGrid
// ------------------------------------------------------------------------------------------

/// Top-level fields SendGrid documents for v3 mail send.
const SENDGRID_FIELDS: &[&str] = &[
    "personalizations",
    "from",
    "reply_to",
    "reply_to_list",
    "subject",
    "content",
    "attachments",
    "template_id",
    "headers",
    "categories",
    "custom_args",
    "send_at",
    "batch_id",
    "asm",
    "ip_pool_name",
    "mail_settings",
    "tracking_settings",
];

#[tokio::test]
async fn sendgrid_sends_one_call_per_message_in_the_documented_shape() {
    let server = RecordingServer::start().await;
    server.respond_with(|_| ScriptedResponse::status(202));
    let transport = SendGridTransport::new(sendgrid(&server)).unwrap();
    assert!(!format!("{transport:?}").contains(SG_KEY));

    let outcomes = outcome_map(transport.send_batch((1..=3).map(email).collect()).await);

    assert!(outcomes.values().all(|o| o.is_ok()), "{outcomes:?}");
    let requests = server.requests();
    assert_eq!(requests.len(), 3);
    let mut seen = BTreeSet::new();
    for r in &requests {
        assert_eq!(r.method, "POST");
        assert_eq!(r.path, "/v3/mail/send");
        assert_eq!(
            r.header("authorization"),
            Some(format!("Bearer {SG_KEY}").as_str())
        );
        assert_eq!(r.header("content-type"), Some("application/json"));
        let m = r.json();
        for key in m.as_object().unwrap().keys() {
            assert!(
                SENDGRID_FIELDS.contains(&key.as_str()),
                "undocumented field {key}"
            );
        }
        let p = &m["personalizations"];
        assert_eq!(p.as_array().unwrap().len(), 1);
        let id: i64 = p[0]["custom_args"]["rewarm_delivery_id"]
            .as_str()
            .unwrap()
            .parse()
            .unwrap();
        seen.insert(id);
        assert_eq!(p[0]["custom_args"]["rewarm_token"], format!("rw.{id}.abc"));
        assert_eq!(
            p[0]["to"],
            json!([{"email": format!("lead{id}@example.org"), "name": format!("Zoë Müller-{id}, PhD")}])
        );
        assert_eq!(
            m["from"],
            json!({"email": "sam@acme.test", "name": "Sam from Acme"})
        );
        assert_eq!(
            m["reply_to"],
            json!({"email": "sales@acme.test", "name": "Acme Sales"})
        );
        assert_eq!(
            m["subject"],
            format!("Ça va, lead {id}? Still looking for a CRM")
        );
        let content = m["content"].as_array().unwrap();
        assert_eq!(
            content[0],
            json!({"type": "text/plain", "value": text_of(id)})
        );
        if id % 2 == 1 {
            assert_eq!(content.len(), 2);
            assert_eq!(content[1]["type"], "text/html");
        } else {
            assert_eq!(content.len(), 1);
        }
        let headers = m["headers"].as_object().unwrap();
        assert_eq!(
            headers["Message-ID"],
            format!("<rw.{id}.abc@mail.acme.test>")
        );
        assert_eq!(
            headers["List-Unsubscribe"],
            format!("<https://rewarm.acme.test/u/token{id}>")
        );
        assert_eq!(
            headers["List-Unsubscribe-Post"],
            "List-Unsubscribe=One-Click"
        );
        for reserved in headers.keys() {
            let r = reserved.to_ascii_lowercase();
            assert!(
                ![
                    "to",
                    "from",
                    "subject",
                    "reply-to",
                    "content-type",
                    "dkim-signature"
                ]
                .contains(&r.as_str()),
                "reserved header {reserved}"
            );
        }
    }
    assert_eq!(seen, BTreeSet::from([1, 2, 3]));
}

#[tokio::test]
async fn sendgrid_429_and_5xx_are_transient_a_bad_recipient_permanent_then_202_ok() {
    let server = RecordingServer::start().await;
    server.script_next(vec![
        ScriptedResponse::json(429, json!({"errors": [{"field": null, "message": "too many requests"}]}))
            .with_header("Retry-After", "3"),
        ScriptedResponse::json(500, json!({"errors": [{"field": null, "message": "internal error"}]})),
        ScriptedResponse::json(
            400,
            json!({"errors": [{"message": "Does not contain a valid address.", "field": "personalizations.0.to.0.email", "help": "http://sendgrid.com/docs/API_Reference/Web_API_v3/Mail/errors.html#message.personalizations.to"}]}),
        ),
        ScriptedResponse::json(401, json!({"errors": [{"field": null, "message": "The provided authorization grant is invalid, expired, or revoked"}]})),
        ScriptedResponse::status(202),
    ]);
    let transport = SendGridTransport::new(SendGridSettings {
        concurrency: 1,
        ..sendgrid(&server)
    })
    .unwrap();

    let outcomes = outcome_map(transport.send_batch((1..=5).map(email).collect()).await);

    let e = outcomes[&1].as_ref().unwrap_err();
    assert!(
        e.is_transient() && e.to_string().contains("HTTP 429"),
        "{e}"
    );
    assert_eq!(
        throttle_of(e),
        Some(Throttle::Provider {
            retry_after: Some(Duration::from_secs(3))
        })
    );
    let e = outcomes[&2].as_ref().unwrap_err();
    assert!(
        e.is_transient() && e.to_string().contains("HTTP 500"),
        "{e}"
    );
    assert_eq!(throttle_of(e), None);
    let e = outcomes[&3].as_ref().unwrap_err();
    assert!(e.is_permanent() && e.is_hard_bounce(), "{e}");
    let e = outcomes[&4].as_ref().unwrap_err();
    assert!(
        e.is_transient() && e.to_string().contains("configuration"),
        "{e}"
    );
    assert_eq!(outcomes[&5], Ok(()));
}

// ------------------------------------------------------------------------------------------
// Mailgun
// ------------------------------------------------------------------------------------------

#[tokio::test]
async fn mailgun_posts_the_raw_message_as_multipart_with_basic_auth() {
    let server = RecordingServer::start().await;
    server.respond_with(|_| {
        ScriptedResponse::json(
            200,
            json!({"id": "<20250303090000.1.ABC@mg.acme.test>", "message": "Queued. Thank you."}),
        )
    });
    let transport = MailgunTransport::new(mailgun(&server)).unwrap();
    assert!(!format!("{transport:?}").contains(MG_KEY));
    let batch: Vec<OutgoingEmail> = (1..=3).map(email).collect();

    let outcomes = outcome_map(transport.send_batch(batch.clone()).await);

    assert!(outcomes.values().all(|o| o.is_ok()), "{outcomes:?}");
    let requests = server.requests();
    assert_eq!(requests.len(), 3);
    let basic = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("api:{MG_KEY}"))
    );
    let by_id: HashMap<i64, &OutgoingEmail> = batch.iter().map(|m| (m.delivery_id, m)).collect();
    let mut seen = BTreeSet::new();
    for r in &requests {
        assert_eq!(r.method, "POST");
        assert_eq!(r.path, "/v3/mg.acme.test/messages.mime");
        assert_eq!(r.header("authorization"), Some(basic.as_str()));
        assert!(
            r.header("content-type")
                .unwrap()
                .starts_with("multipart/form-data; boundary="),
        );
        let parts = r.form_parts();
        let names: Vec<&str> = parts.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(
            names,
            vec!["to", "v:rewarm_delivery_id", "v:rewarm_token", "message"]
        );
        let id: i64 = parts[1].text().parse().unwrap();
        seen.insert(id);
        let sent = by_id[&id];
        assert_eq!(parts[0].text(), sent.envelope_to);
        let message = &parts[3];
        assert!(message.filename.is_some(), "the MIME goes as a file upload");
        assert_eq!(message.content_type.as_deref(), Some("message/rfc822"));
        assert_eq!(message.data, sent.bytes, "the message byte for byte");
    }
    assert_eq!(seen, BTreeSet::from([1, 2, 3]));
}

#[tokio::test]
async fn mailgun_429_and_5xx_are_transient_a_bad_to_is_permanent() {
    let server = RecordingServer::start().await;
    server.script_next(vec![
        ScriptedResponse::status(429).with_body("Too Many Requests"),
        ScriptedResponse::status(503).with_body("Service Unavailable"),
        ScriptedResponse::json(
            400,
            json!({"message": "'to' parameter is not a valid address. please check documentation"}),
        ),
        ScriptedResponse::json(404, json!({"message": "Domain not found: mg.acme.test"})),
        ScriptedResponse::json(
            200,
            json!({"id": "<x@mg>", "message": "Queued. Thank you."}),
        ),
    ]);
    let transport = MailgunTransport::new(MailgunSettings {
        concurrency: 1,
        ..mailgun(&server)
    })
    .unwrap();

    let outcomes = outcome_map(transport.send_batch((1..=5).map(email).collect()).await);

    let e = outcomes[&1].as_ref().unwrap_err();
    assert!(
        e.is_transient() && e.to_string().contains("HTTP 429"),
        "{e}"
    );
    assert!(matches!(throttle_of(e), Some(Throttle::Provider { .. })));
    let e = outcomes[&2].as_ref().unwrap_err();
    assert!(
        e.is_transient() && e.to_string().contains("HTTP 503"),
        "{e}"
    );
    let e = outcomes[&3].as_ref().unwrap_err();
    assert!(e.is_permanent() && e.is_hard_bounce(), "{e}");
    let e = outcomes[&4].as_ref().unwrap_err();
    assert!(
        e.is_transient() && e.to_string().contains("configuration"),
        "{e}"
    );
    assert_eq!(outcomes[&5], Ok(()));
}

#[tokio::test]
async fn api_transports_send_with_bounded_concurrency() {
    let server = RecordingServer::start().await;
    server.respond_with(|_| ScriptedResponse::status(202).after(Duration::from_millis(150)));
    let transport = SendGridTransport::new(SendGridSettings {
        concurrency: 4,
        ..sendgrid(&server)
    })
    .unwrap();

    let started = std::time::Instant::now();
    let outcomes = transport.send_batch((0..12).map(email).collect()).await;
    let took = started.elapsed();

    assert!(outcomes.iter().all(|(_, o)| o.is_ok()));
    assert_eq!(server.requests().len(), 12);
    // 12 calls of 150 ms, 4 at a time: about 450 ms; one at a time would be 1.8 s.
    assert!(
        took >= Duration::from_millis(440),
        "more than 4 at once? {took:?}"
    );
    assert!(
        took < Duration::from_millis(1500),
        "not concurrent? {took:?}"
    );
}
