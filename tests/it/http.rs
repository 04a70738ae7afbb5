//! The daemon's HTTP side over real HTTP on 127.0.0.1: one-click unsubscribe (the page, the
//! POST, forged tokens), click tracking, health probes, metrics and the leads API. Each test
//! gets its own SQLite file, port and outbox (tests/it/support/http_app.rs).

use crate::support;

use std::collections::HashSet;

use chrono::TimeDelta;
use futures::StreamExt as _;
use rand::Rng as _;
use reqwest::StatusCode;
use reqwest::header::{CONTENT_TYPE, LOCATION, SET_COOKIE, WWW_AUTHENTICATE};
use rewarm::domain::email::EmailAddress;
use rewarm::domain::lead::LeadState;
use rewarm::store::SuppressionReason;
use rewarm::store::prelude::*;
use rewarm::tokens::TokenKind;
use serde_json::{Value, json};
use support::http_app::{API_TOKEN, HttpApp, PRICING_URL, T0, at};

const SAM: &str = "sam.jones@initech.example";
const PAT: &str = "pat@initech.example";

/// Two leads, each sent its first email at T0.
async fn app_with_two_sent_leads() -> HttpApp {
    let app = HttpApp::spawn().await;
    app.add_leads(&[SAM, PAT]).await;
    let report = app.pass(at(T0)).await;
    assert_eq!(report.sent, 2, "{report:?}");
    app
}

async fn suppression_of(app: &HttpApp, email: &str) -> Option<rewarm::store::Suppression> {
    let address = EmailAddress::parse(email).expect("a valid address");
    app.store
        .suppression_for(&address)
        .await
        .expect("suppression_for")
}

/// The emails in the outbox addressed to `email`.
fn emails_to(app: &HttpApp, email: &str) -> usize {
    app.emails()
        .iter()
        .filter(|(_, text)| text.contains(&format!("<{email}>")))
        .count()
}

// ---------------------------------------------------------------------------------------------
// Unsubscribe
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn opening_the_unsubscribe_link_shows_a_confirmation_page_and_changes_nothing() {
    let app = app_with_two_sent_leads().await;
    let url = app.unsubscribe_url(app.delivery_to(SAM).await);
    let before = app.timeline(SAM).await;

    let response = app.get(&url).await;

    assert_eq!(response.status(), StatusCode::OK);
    assert!(response.headers().get(LOCATION).is_none());
    assert!(
        response.headers()[CONTENT_TYPE]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    let page = response.text().await.unwrap();
    assert!(page.contains("s***s@initech.example"), "{page}");
    assert!(
        !page.contains(SAM),
        "the page shows the whole address: {page}"
    );
    assert!(page.contains("<form method=\"post\">"), "{page}");
    assert!(page.contains("Claire at Acme"), "{page}");
    assert_eq!(app.lead(SAM).await.state, LeadState::Nurturing);
    assert!(suppression_of(&app, SAM).await.is_none());
    assert_eq!(app.timeline(SAM).await.len(), before.len());
}

#[tokio::test]
async fn a_one_click_post_unsubscribes_the_lead_and_the_next_pass_sends_it_nothing() {
    let app = app_with_two_sent_leads().await;
    let delivery_id = app.delivery_to(SAM).await;
    let url = app.unsubscribe_url(delivery_id);

    let response = app.post_one_click(&url).await;

    assert_eq!(response.status(), StatusCode::OK);
    assert!(response.headers().get(LOCATION).is_none());
    assert!(response.headers().get(SET_COOKIE).is_none());
    assert!(response.text().await.unwrap().contains("is unsubscribed"));
    assert_eq!(app.lead(SAM).await.state, LeadState::Suppressed);
    let listed = app.store.suppressions().await.expect("suppressions");
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].address, SAM);
    assert_eq!(listed[0].reason, SuppressionReason::Unsubscribed);
    assert_eq!(listed[0].evidence["delivery_id"], delivery_id);
    assert_eq!(listed[0].evidence["campaign"], "checkin");
    assert_eq!(listed[0].evidence["step"], 1);
    assert_eq!(listed[0].evidence["via"], "one-click");

    // The second step is due 30 days later: Pat gets it, Sam nothing.
    let report = app.pass(at(T0) + TimeDelta::days(31)).await;
    assert_eq!(report.sent, 1, "{report:?}");
    assert_eq!(emails_to(&app, SAM), 1);
    assert_eq!(emails_to(&app, PAT), 2);

    // Again: the same answer, nothing more recorded.
    let timeline = app.timeline(SAM).await;
    let again = app.post_one_click(&url).await;
    assert_eq!(again.status(), StatusCode::OK);
    assert!(again.headers().get(LOCATION).is_none());
    assert_eq!(app.store.suppressions().await.unwrap(), listed);
    assert_eq!(app.timeline(SAM).await.len(), timeline.len());
}

#[tokio::test]
async fn a_multipart_one_click_post_unsubscribes_too() {
    let app = app_with_two_sent_leads().await;
    let url = app.unsubscribe_url(app.delivery_to(SAM).await);
    let form = reqwest::multipart::Form::new().text("List-Unsubscribe", "One-Click");

    let response = app
        .client
        .post(&url)
        .multipart(form)
        .send()
        .await
        .expect("POST multipart");

    assert_eq!(response.status(), StatusCode::OK);
    assert!(response.headers().get(LOCATION).is_none());
    assert_eq!(app.lead(SAM).await.state, LeadState::Suppressed);
    let entry = suppression_of(&app, SAM).await.expect("Sam is listed");
    assert_eq!(entry.reason, SuppressionReason::Unsubscribed);
    assert_eq!(entry.evidence["via"], "one-click");
    assert_eq!(app.lead(PAT).await.state, LeadState::Nurturing);
}

#[tokio::test]
async fn the_pages_button_posts_without_a_body_and_unsubscribes() {
    let app = app_with_two_sent_leads().await;
    let url = app.unsubscribe_url(app.delivery_to(SAM).await);

    let response = app.post(&url).await;

    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(app.lead(SAM).await.state, LeadState::Suppressed);
    assert_eq!(
        suppression_of(&app, SAM)
            .await
            .expect("Sam is listed")
            .evidence["via"],
        "page"
    );
}

#[tokio::test]
async fn a_token_for_a_delivery_that_does_not_exist_is_not_found() {
    let app = app_with_two_sent_leads().await;
    let url = app.unsubscribe_url(999_999);

    assert_eq!(app.get(&url).await.status(), StatusCode::NOT_FOUND);
    assert_eq!(app.post(&url).await.status(), StatusCode::NOT_FOUND);
    assert!(app.store.suppressions().await.unwrap().is_empty());
}

#[tokio::test]
async fn a_click_token_does_not_unsubscribe() {
    let app = app_with_two_sent_leads().await;
    let delivery_id = app.delivery_to(SAM).await;
    let token = app.keys.sign(TokenKind::Click, delivery_id, 0);

    let response = app.post(app.url(&format!("/u/{token}"))).await;

    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    assert!(app.store.suppressions().await.unwrap().is_empty());
}

#[tokio::test]
async fn links_signed_with_the_keys_of_a_reloaded_configuration_work_too() {
    let app = app_with_two_sent_leads().await;
    let delivery_id = app.delivery_to(SAM).await;
    // A reload whose configuration signs with another key (here a fresh random one).
    let reloaded = rewarm::app::Loaded::with_settings(app.current.get().settings.clone()).unwrap();
    app.current.replace(reloaded);
    let token = app
        .current
        .get()
        .keys
        .sign(TokenKind::Unsubscribe, delivery_id, 0);
    assert!(
        app.keys.verify(&token).is_none(),
        "the reload should have changed the key"
    );

    let response = app.post(app.url(&format!("/u/{token}"))).await;

    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(app.lead(SAM).await.state, LeadState::Suppressed);
}

/// Every single-character substitution, deletion and insertion of a valid token, then random
/// tokens up to 10,000.
fn mutations_of(token: &str) -> Vec<String> {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.";
    let bytes = token.as_bytes();
    let mut seen: HashSet<String> = HashSet::new();
    let mut out = Vec::new();
    let mut push = |candidate: Vec<u8>, out: &mut Vec<String>| {
        let candidate = String::from_utf8(candidate).expect("ASCII");
        if candidate != token && seen.insert(candidate.clone()) {
            out.push(candidate);
        }
    };
    for i in 0..=bytes.len() {
        for &c in ALPHABET {
            if i < bytes.len() {
                let mut substituted = bytes.to_vec();
                substituted[i] = c;
                push(substituted, &mut out);
            }
            let mut inserted = bytes.to_vec();
            inserted.insert(i, c);
            push(inserted, &mut out);
        }
        if i < bytes.len() {
            let mut deleted = bytes.to_vec();
            deleted.remove(i);
            push(deleted, &mut out);
        }
    }
    let mut rng = rand::rng();
    let mut random = |len: usize| -> String {
        (0..len)
            .map(|_| ALPHABET[rng.random_range(0..ALPHABET.len() - 1)] as char)
            .collect()
    };
    let (kid, rest) = token.split_once('.').expect("KEYID.PAYLOAD.TAG");
    let (payload, _) = rest.split_once('.').expect("KEYID.PAYLOAD.TAG");
    let mut n = 0;
    while out.len() < 10_000 {
        let candidate = match n % 3 {
            // The right key and payload, a random tag.
            0 => format!("{kid}.{payload}.{}", random(22)),
            // The right key, random payload and tag.
            1 => format!("{kid}.{}.{}", random(18), random(22)),
            // Anything.
            _ => random(1 + n % 80),
        };
        n += 1;
        push(candidate.into_bytes(), &mut out);
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn ten_thousand_mutated_tokens_unsubscribe_nobody() {
    let app = app_with_two_sent_leads().await;
    let delivery_id = app.delivery_to(SAM).await;
    let token = app.keys.sign(TokenKind::Unsubscribe, delivery_id, 0);
    let mutated = mutations_of(&token);
    assert_eq!(mutated.len(), 10_000);
    let timeline = app.timeline(SAM).await;

    let statuses: Vec<StatusCode> = futures::stream::iter(mutated)
        .map(|t| {
            let request = app
                .client
                .post(app.url(&format!("/u/{t}")))
                .form(&[("List-Unsubscribe", "One-Click")]);
            async move {
                request
                    .send()
                    .await
                    .unwrap_or_else(|e| panic!("POST /u/{t}: {e}"))
                    .status()
            }
        })
        .buffer_unordered(16)
        .collect()
        .await;

    let accepted = statuses
        .iter()
        .filter(|s| **s != StatusCode::NOT_FOUND)
        .count();
    assert_eq!(
        accepted,
        0,
        "{:?}",
        statuses
            .iter()
            .filter(|s| **s != StatusCode::NOT_FOUND)
            .take(5)
            .collect::<Vec<_>>()
    );
    assert!(app.store.suppressions().await.unwrap().is_empty());
    assert_eq!(app.lead(SAM).await.state, LeadState::Nurturing);
    assert_eq!(app.timeline(SAM).await.len(), timeline.len());
    // The real token still works: the test could have seen an acceptance.
    let real = app.post(app.unsubscribe_url(delivery_id)).await;
    assert_eq!(real.status(), StatusCode::OK);
}

#[tokio::test]
async fn the_list_unsubscribe_header_of_a_sent_email_unsubscribes_with_one_post() {
    let app = HttpApp::spawn().await;
    app.add_leads(&[SAM, PAT]).await;
    assert_eq!(app.pass(at(T0)).await.sent, 2);
    let (_, email) = app
        .emails()
        .into_iter()
        .find(|(_, text)| text.contains(&format!("<{SAM}>")))
        .expect("an email to Sam");
    assert_eq!(
        header(&email, "List-Unsubscribe-Post").as_deref(),
        Some("List-Unsubscribe=One-Click")
    );
    let list_unsubscribe = header(&email, "List-Unsubscribe").expect("a List-Unsubscribe header");
    let url = list_unsubscribe
        .split(['<', '>'])
        .find(|part| part.starts_with("http"))
        .unwrap_or_else(|| panic!("no URL in `{list_unsubscribe}`"))
        .to_string();
    assert!(url.starts_with(&format!("{}/u/", app.base)), "{url}");

    // What a mailbox provider does (RFC 8058): a POST with this body, no cookies, no redirects.
    let response = app
        .client
        .post(&url)
        .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body("List-Unsubscribe=One-Click")
        .send()
        .await
        .expect("POST the header's URL");

    assert_eq!(response.status(), StatusCode::OK);
    assert!(response.headers().get(LOCATION).is_none());
    assert_eq!(app.lead(SAM).await.state, LeadState::Suppressed);
    let report = app.pass(at(T0) + TimeDelta::days(31)).await;
    assert_eq!(report.sent, 1, "{report:?}");
    assert_eq!(emails_to(&app, SAM), 1);
    assert_eq!(emails_to(&app, PAT), 2);
}

/// The body of a single-part message, decoded (7bit, quoted-printable or base64).
fn body_text(message: &str) -> String {
    let (_, body) = message.split_once("\r\n\r\n").expect("a header and a body");
    match header(message, "Content-Transfer-Encoding").as_deref() {
        Some(e) if e.eq_ignore_ascii_case("quoted-printable") => {
            let joined = body.replace("=\r\n", "");
            let bytes = joined.as_bytes();
            let mut out = Vec::with_capacity(bytes.len());
            let mut i = 0;
            while i < bytes.len() {
                match (bytes[i], bytes.get(i + 1..i + 3)) {
                    (b'=', Some(hex)) => {
                        let hex = std::str::from_utf8(hex).expect("ASCII");
                        out.push(
                            u8::from_str_radix(hex, 16)
                                .unwrap_or_else(|_| panic!("bad QP escape ={hex}")),
                        );
                        i += 3;
                    }
                    (b, _) => {
                        out.push(b);
                        i += 1;
                    }
                }
            }
            String::from_utf8(out).expect("UTF-8 text")
        }
        Some(e) if e.eq_ignore_ascii_case("base64") => {
            use base64::Engine as _;
            let compact: String = body.chars().filter(|c| !c.is_whitespace()).collect();
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(compact)
                .expect("base64");
            String::from_utf8(bytes).expect("UTF-8 text")
        }
        _ => body.to_string(),
    }
}

/// The unfolded value of the first header `name` of a raw message.
fn header(message: &str, name: &str) -> Option<String> {
    let head = message.split("\r\n\r\n").next()?;
    let mut lines = head.split("\r\n").peekable();
    while let Some(line) = lines.next() {
        let Some((key, value)) = line.split_once(':') else {
            continue;
        };
        if !key.eq_ignore_ascii_case(name) {
            continue;
        }
        let mut value = value.trim().to_string();
        while let Some(next) = lines.next_if(|l| l.starts_with([' ', '\t'])) {
            value.push(' ');
            value.push_str(next.trim());
        }
        return Some(value);
    }
    None
}

// ---------------------------------------------------------------------------------------------
// Clicks
// ---------------------------------------------------------------------------------------------

const TARGET: &str = "https://acme.example/pricing?plan=pro&ref=mail#compare";

/// Percent-encodes everything but RFC 3986's unreserved characters.
fn encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[tokio::test]
async fn a_signed_click_redirects_to_its_url_and_lands_on_the_timeline() {
    let app = app_with_two_sent_leads().await;
    let delivery_id = app.delivery_to(SAM).await;
    let token = app
        .keys
        .sign_with(TokenKind::Click, delivery_id, 0, TARGET.as_bytes());

    let response = app
        .client
        .get(app.url(&format!("/c/{token}?u={}", encode(TARGET))))
        .send()
        .await
        .expect("GET the click link");

    assert!(
        matches!(response.status(), StatusCode::SEE_OTHER | StatusCode::FOUND),
        "{}",
        response.status()
    );
    assert_eq!(response.headers()[LOCATION], TARGET);
    let clicks: Vec<_> = app
        .timeline(SAM)
        .await
        .into_iter()
        .filter(|e| e.kind == "clicked")
        .collect();
    assert_eq!(clicks.len(), 1);
    assert_eq!(clicks[0].detail["url"], TARGET);
}

/// Clicks score (`[scoring] points.click`, 10 by default) when a person makes them; reaching
/// the segment's `rewarm_score` (100 by default) re-warms the lead once, like a reply.
/// A person clicks one link once a day, and not in the minute the email arrives.
#[tokio::test]
async fn a_persons_clicks_add_up_to_the_rewarm_score_and_rewarm_the_lead_once() {
    let mut app = app_with_two_sent_leads().await;
    let delivery_id = app.delivery_to(SAM).await;
    let token = app
        .keys
        .sign_with(TokenKind::Click, delivery_id, 0, TARGET.as_bytes());
    let lead_id = app.lead(SAM).await.id;
    // No decay here: this is about counting.
    app.reconfigure(|s| s.scoring.half_life = None);

    // Ten GETs at the moment of delivery: a scanner's, none counts.
    for _ in 0..10 {
        let response = app
            .get(app.url(&format!("/c/{token}?u={}", encode(TARGET))))
            .await;
        assert_eq!(response.status(), StatusCode::SEE_OTHER);
    }
    assert_eq!(app.store.score(lead_id).await.unwrap(), 0);
    // A person, once a day (a second click the same day is not more interest).
    for day in 1..=10 {
        app.restart_at(at(T0) + TimeDelta::days(day)).await;
        let link = app.url(&format!("/c/{token}?u={}", encode(TARGET)));
        for _ in 0..2 {
            assert_eq!(app.get(&link).await.status(), StatusCode::SEE_OTHER);
        }
        let expected = if day < 10 {
            LeadState::Nurturing
        } else {
            LeadState::Rewarmed
        };
        assert_eq!(
            app.store.score(lead_id).await.unwrap(),
            10 * day,
            "day {day}"
        );
        assert_eq!(app.lead(SAM).await.state, expected, "day {day}");
    }
    app.restart_at(at(T0) + TimeDelta::days(11)).await;
    let link = app.url(&format!("/c/{token}?u={}", encode(TARGET)));
    app.get(&link).await;
    let timeline = app.timeline(SAM).await;
    let rewarms: Vec<_> = timeline.iter().filter(|e| e.kind == "rewarmed").collect();
    assert_eq!(rewarms.len(), 1, "a second crossing re-warmed again");
    assert_eq!(
        rewarms[0].detail["signals"].as_array().map(Vec::len),
        Some(10)
    );
    assert_eq!(rewarms[0].detail["signals"][0]["url"], TARGET);
    let signals: Vec<&str> = timeline
        .iter()
        .filter(|e| e.kind == "clicked")
        .filter_map(|e| e.detail["signal"].as_str())
        .collect();
    assert_eq!(signals.iter().filter(|s| **s == "within_grace").count(), 10);
    assert_eq!(signals.iter().filter(|s| **s == "counted").count(), 11);
    assert_eq!(signals.iter().filter(|s| **s == "repeat").count(), 10);
    assert_eq!(app.lead(PAT).await.state, LeadState::Nurturing);
}

/// `HEAD` and prefetching requests redirect like any other but never count.
#[tokio::test]
async fn head_and_prefetch_requests_redirect_but_do_not_count() {
    let mut app = app_with_two_sent_leads().await;
    let delivery_id = app.delivery_to(SAM).await;
    let token = app
        .keys
        .sign_with(TokenKind::Click, delivery_id, 0, TARGET.as_bytes());
    app.restart_at(at(T0) + TimeDelta::days(2)).await;
    let link = app.url(&format!("/c/{token}?u={}", encode(TARGET)));
    let head = app.client.head(&link).send().await.expect("HEAD");
    assert_eq!(head.status(), StatusCode::SEE_OTHER);
    for (name, value) in [
        ("Purpose", "prefetch"),
        ("Sec-Purpose", "prefetch"),
        ("X-Moz", "prefetch"),
    ] {
        let r = app
            .client
            .get(&link)
            .header(name, value)
            .send()
            .await
            .expect("GET");
        assert_eq!(r.status(), StatusCode::SEE_OTHER);
        assert_eq!(r.headers()[LOCATION], TARGET);
    }
    let lead_id = app.lead(SAM).await.id;
    assert_eq!(app.store.score(lead_id).await.unwrap(), 0);
    let signals: Vec<String> = app
        .timeline(SAM)
        .await
        .into_iter()
        .filter(|e| e.kind == "clicked")
        .filter_map(|e| e.detail["signal"].as_str().map(str::to_string))
        .collect();
    assert_eq!(signals, ["head", "prefetch", "prefetch", "prefetch"]);
}

#[tokio::test]
async fn a_tracked_link_in_a_sent_email_redirects_to_the_original_url_and_records_the_click() {
    let app = HttpApp::spawn().await;
    app.add_leads_lost_for(&[SAM], Some("pricing")).await;
    assert_eq!(app.pass(at(T0)).await.sent, 1);
    let [(_, email)] = app.emails().try_into().expect("one email");
    let body = body_text(&email);
    assert!(
        !body.contains(PRICING_URL),
        "the link was not rewritten:\n{body}"
    );
    let prefix = format!("{}/c/", app.base);
    let start = body
        .find(&prefix)
        .unwrap_or_else(|| panic!("no tracked link in:\n{body}"));
    let link: String = body[start..]
        .chars()
        .take_while(|c| !c.is_whitespace())
        .collect();
    // The unsubscribe link is left as it is.
    assert!(body.contains(&format!("{}/u/", app.base)), "{body}");

    let response = app.get(&link).await;

    assert_eq!(response.status(), StatusCode::SEE_OTHER, "{link}");
    assert_eq!(response.headers()[LOCATION], PRICING_URL);
    let clicks: Vec<_> = app
        .timeline(SAM)
        .await
        .into_iter()
        .filter(|e| e.kind == "clicked")
        .collect();
    assert_eq!(clicks.len(), 1);
    assert_eq!(clicks[0].detail["url"], PRICING_URL);
    assert_eq!(clicks[0].detail["campaign"], "pricing");
}

#[tokio::test]
async fn a_click_token_leads_only_to_the_url_it_was_signed_for() {
    let app = app_with_two_sent_leads().await;
    let delivery_id = app.delivery_to(SAM).await;
    let click = app
        .keys
        .sign_with(TokenKind::Click, delivery_id, 0, TARGET.as_bytes());
    let reply = app
        .keys
        .sign_with(TokenKind::Reply, delivery_id, 0, TARGET.as_bytes());
    let unsubscribe = app.keys.sign(TokenKind::Unsubscribe, delivery_id, 0);
    let script = "javascript:alert(1)";
    let script_token = app
        .keys
        .sign_with(TokenKind::Click, delivery_id, 1, script.as_bytes());

    let cases: [(&str, Option<&str>); 6] = [
        (&click, Some("https://evil.example/")),
        (&click, Some("https://acme.example/pricing")),
        (&click, None),
        (&reply, Some(TARGET)),
        (&unsubscribe, Some(TARGET)),
        (&script_token, Some(script)),
    ];
    for (token, u) in cases {
        let path = match u {
            Some(u) => format!("/c/{token}?u={}", encode(u)),
            None => format!("/c/{token}"),
        };
        let response = app.get(app.url(&path)).await;
        assert_eq!(response.status(), StatusCode::NOT_FOUND, "{token} {u:?}");
        assert!(response.headers().get(LOCATION).is_none());
    }
    assert!(app.timeline(SAM).await.iter().all(|e| e.kind != "clicked"));
}

// ---------------------------------------------------------------------------------------------
// Health and metrics
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn the_probes_answer_while_the_database_does() {
    let app = HttpApp::spawn().await;

    let health = app.get(app.url("/healthz")).await;
    assert_eq!(health.status(), StatusCode::OK);
    assert_eq!(health.text().await.unwrap().trim(), "ok");
    let ready = app.get(app.url("/readyz")).await;
    assert_eq!(ready.status(), StatusCode::OK);

    // The database goes away: not ready (503, with the reason), still alive.
    app.store.close().await;
    let ready = app.get(app.url("/readyz")).await;
    assert_eq!(ready.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert!(ready.text().await.unwrap().starts_with("not ready:"));
    let health = app.get(app.url("/healthz")).await;
    assert_eq!(health.status(), StatusCode::OK);
}

#[tokio::test]
async fn metrics_are_prometheus_text_with_the_queue_depth() {
    let app = HttpApp::spawn().await;
    app.add_leads(&[SAM, PAT]).await;
    // Enrolled, so due at T0, and not sent.
    let enrolled = rewarm::outbound::scheduler::enrol(&app.store, &app.current.get(), at(T0))
        .await
        .unwrap();
    assert_eq!(enrolled, 2);

    let response = app.get(app.url("/metrics")).await;

    assert_eq!(response.status(), StatusCode::OK);
    assert!(
        response.headers()[CONTENT_TYPE]
            .to_str()
            .unwrap()
            .starts_with("text/plain; version=0.0.4")
    );
    let text = response.text().await.unwrap();
    assert!(text.contains("rewarm_queue_depth 2\n"), "{text}");
    for family in [
        "# TYPE rewarm_sent_total counter",
        "# TYPE rewarm_suppressed_total counter",
        "# TYPE rewarm_unsubscribes_total counter",
        "# TYPE rewarm_clicks_total counter",
        "rewarm_replies_total{class=\"hard_bounce\"}",
        "# TYPE rewarm_send_latency_seconds histogram",
        "rewarm_send_latency_seconds_bucket{le=\"+Inf\"}",
    ] {
        assert!(text.contains(family), "no `{family}` in:\n{text}");
    }
}

#[tokio::test]
async fn unknown_paths_are_not_found() {
    let app = HttpApp::spawn().await;
    assert_eq!(
        app.get(app.url("/nope")).await.status(),
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        app.get(app.url("/u/")).await.status(),
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn cancelling_the_shutdown_token_stops_the_server() {
    let mut app = HttpApp::spawn().await;
    assert_eq!(app.get(app.url("/healthz")).await.status(), StatusCode::OK);

    tokio::time::timeout(std::time::Duration::from_secs(10), app.shut_down())
        .await
        .expect("the server stops within 10 s")
        .expect("the server stops cleanly");

    let fresh = reqwest::Client::new();
    assert!(fresh.get(app.url("/healthz")).send().await.is_err());
}

// ---------------------------------------------------------------------------------------------
// API
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn the_api_refuses_callers_without_the_right_bearer_token() {
    let app = HttpApp::spawn().await;
    let body = json!({"email": "ann@acme.example"});

    let requests = [
        app.client.post(app.url("/api/leads")).json(&body),
        app.client
            .post(app.url("/api/leads"))
            .bearer_auth("wrong-token")
            .json(&body),
        app.client
            .post(app.url("/api/leads"))
            .bearer_auth(&API_TOKEN[..API_TOKEN.len() - 1])
            .json(&body),
        app.client
            .post(app.url("/api/leads"))
            .basic_auth("api", Some(API_TOKEN))
            .json(&body),
        app.client.get(app.url("/api/leads/ann@acme.example")),
        app.client
            .get(app.url("/api/leads/ann@acme.example"))
            .bearer_auth("wrong-token"),
    ];
    for request in requests {
        let response = request.send().await.unwrap();
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
        assert_eq!(response.headers()[WWW_AUTHENTICATE], "Bearer");
        let body: Value = response.json().await.unwrap();
        assert!(body["error"].is_string());
    }
    assert!(app.find_lead("ann@acme.example").await.is_none());
}

#[tokio::test]
async fn without_a_configured_token_the_api_does_not_exist() {
    let app = HttpApp::spawn_with(None).await;
    let post = app
        .client
        .post(app.url("/api/leads"))
        .bearer_auth(API_TOKEN)
        .json(&json!({"email": "ann@acme.example"}))
        .send()
        .await
        .unwrap();
    assert_eq!(post.status(), StatusCode::NOT_FOUND);
    let get = app
        .client
        .get(app.url("/api/leads/ann@acme.example"))
        .bearer_auth(API_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(get.status(), StatusCode::NOT_FOUND);
    assert!(app.find_lead("ann@acme.example").await.is_none());
}

#[tokio::test]
async fn one_bad_item_refuses_the_whole_batch_naming_its_index_and_field() {
    let app = HttpApp::spawn().await;
    let body = json!([
        {"email": "ann@acme.example", "first_name": "Ann"},
        {"email": "bob@acme.example", "lost_at": "31/02/2026"},
        {"first_name": "No address"},
    ]);

    let (status, answer) = app.post_leads(&body).await;

    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    let errors = answer["errors"].as_array().expect("an errors array");
    assert_eq!(errors.len(), 2, "{answer}");
    assert_eq!(
        (errors[0]["index"].as_u64(), errors[0]["field"].as_str()),
        (Some(1), Some("lost_at"))
    );
    assert!(
        errors[0]["reason"].as_str().unwrap().contains("not a date"),
        "{answer}"
    );
    assert_eq!(
        (errors[1]["index"].as_u64(), errors[1]["field"].as_str()),
        (Some(2), Some("email"))
    );
    assert!(app.find_lead("ann@acme.example").await.is_none());
    assert!(app.find_lead("bob@acme.example").await.is_none());
}

#[tokio::test]
async fn good_leads_are_upserted_and_counted() {
    let app = HttpApp::spawn().await;

    let (status, answer) = app
        .post_leads(&json!({"email": "ann@acme.example", "company": "Acme"}))
        .await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(answer, json!({"inserted": 1, "updated": 0, "unchanged": 0}));

    let batch = json!([
        {"Email": "Ann@Acme.example", "title": "CTO", "tags": ["vip"]},
        {"email": "bob@acme.example", "lost_reason": "no_budget", "lost_at": "2026-01-15", "plan": "pro"},
    ]);
    let (status, answer) = app.post_leads(&batch).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(answer, json!({"inserted": 1, "updated": 1, "unchanged": 0}));

    let (status, answer) = app.post_leads(&batch).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(answer, json!({"inserted": 0, "updated": 0, "unchanged": 2}));

    let ann = app.lead("ann@acme.example").await;
    assert_eq!(
        (ann.company.as_deref(), ann.title.as_deref()),
        (Some("Acme"), Some("CTO"))
    );
    assert_eq!(ann.tags, vec!["vip"]);
    assert_eq!(app.lead("bob@acme.example").await.fields["plan"], "pro");
}

#[tokio::test]
async fn a_lead_is_shown_with_its_timeline_and_an_unknown_one_is_not_found() {
    let app = HttpApp::spawn().await;
    let (status, _) = app
        .post_leads(&json!({"email": "ann@acme.example", "first_name": "Ann"}))
        .await;
    assert_eq!(status, StatusCode::OK);

    let response = app
        .client
        .get(app.url("/api/leads/Ann@Acme.example"))
        .bearer_auth(API_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["lead"]["email"], "ann@acme.example");
    assert_eq!(body["lead"]["first_name"], "Ann");
    assert_eq!(body["lead"]["state"], "new");
    let timeline = body["timeline"].as_array().expect("a timeline array");
    assert_eq!(timeline.len(), 1, "{body}");
    assert_eq!(timeline[0]["kind"], "imported");

    for unknown in ["nobody@acme.example", "not-an-address"] {
        let response = app
            .client
            .get(app.url(&format!("/api/leads/{unknown}")))
            .bearer_auth(API_TOKEN)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::NOT_FOUND, "{unknown}");
        let body: Value = response.json().await.unwrap();
        assert!(body["error"].is_string());
    }
}

#[tokio::test]
async fn malformed_json_is_a_400_with_a_json_error() {
    let app = HttpApp::spawn().await;
    let response = app
        .client
        .post(app.url("/api/leads"))
        .bearer_auth(API_TOKEN)
        .header(CONTENT_TYPE, "application/json")
        .body("{\"email\": ")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    let body: Value = response.json().await.unwrap();
    assert!(
        body["error"].as_str().unwrap().contains("not valid JSON"),
        "{body}"
    );
}

#[tokio::test]
async fn a_body_over_five_megabytes_is_a_413() {
    let app = HttpApp::spawn().await;
    let big = format!(
        "[{}]",
        vec!["{\"email\": \"ann@acme.example\"}"; 200_000].join(",")
    );
    assert!(big.len() > 5 * 1024 * 1024);
    let response = app
        .client
        .post(app.url("/api/leads"))
        .bearer_auth(API_TOKEN)
        .header(CONTENT_TYPE, "application/json")
        .body(big)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::PAYLOAD_TOO_LARGE);
    assert!(app.find_lead("ann@acme.example").await.is_none());
}
