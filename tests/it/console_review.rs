//! The console's inbound review and suppression pages over real HTTP (the helpers are
//! `console_pages`'): what marketing may do there, that each answer applies the rules of the
//! command line and is logged with who gave it, and that a sales user may do none of it.

use rewarm::console::Role;
use rewarm::domain::lead::LeadState;
use rewarm::store::prelude::*;
use rewarm::store::{InboundEffect, InboundRecord, Suppression, SuppressionReason};

use crate::console_pages::{REP, last_event, seed, signed_in, unescape};
use crate::support::console::console_app;
use crate::support::http_app::{HttpApp, T0, at};

// ── Inbound review ──────────────────────────────────────────────────────────────────────

async fn stray_reply(app: &HttpApp, key: &str, text: &str) -> i64 {
    let record = InboundRecord {
        dedupe_key: key.into(),
        source: "replay".into(),
        received_at: at(T0),
        message_id: None,
        from_address: Some("assistant@client.example".into()),
        subject: Some("Re: your offer".into()),
        classification: "human_reply".into(),
        lead_id: None,
        delivery_id: None,
        matched_by: None,
        text: Some(text.into()),
        raw: format!("From: assistant@client.example\r\nSubject: Re: your offer\r\n\r\n{text}\r\n")
            .into_bytes(),
    };
    app.store
        .record_inbound(&record, &InboundEffect::None, at(T0))
        .await
        .unwrap()
        .inbound_id
}

#[tokio::test]
async fn unmatched_mail_is_reviewed_assigned_to_a_lead_with_its_effect_or_ignored() {
    let app = console_app().await;
    seed(&app).await;
    let first = stray_reply(&app, "s1", "Yes, I am interested, please send the pricing.").await;
    let second = stray_reply(&app, "s2", "Unrelated newsletter").await;
    let (mut marketing, csrf) = signed_in(&app, "mia@acme.example", Role::Marketing).await;
    let page = marketing.page(&app, "/console/inbound").await;
    assert!(
        page.contains("Yes, I am interested, please send the pricing.")
            && page.contains("Unrelated newsletter")
    );
    assert!(page.contains("2 messages"), "{page}");

    let r = marketing
        .post(
            &app,
            &format!("/console/inbound/{first}/assign"),
            &[("csrf", &csrf), ("lead", "dora@other.example")],
        )
        .await;
    assert_eq!(r.status(), 303);
    assert_eq!(
        app.lead("dora@other.example").await.state,
        LeadState::Rewarmed
    );
    let inbound = last_event(&app, "dora@other.example", "inbound").await;
    assert_eq!(
        (
            inbound.detail["matched_by"].as_str(),
            inbound.detail["by"].as_str()
        ),
        (Some("review"), Some("mia@acme.example"))
    );
    last_event(&app, "dora@other.example", "replied").await;
    // Done once.
    let again = marketing
        .post(
            &app,
            &format!("/console/inbound/{first}/assign"),
            &[("csrf", &csrf), ("lead", "dora@other.example")],
        )
        .await;
    assert_eq!(again.status(), 409);
    let unknown = marketing
        .post(
            &app,
            &format!("/console/inbound/{second}/assign"),
            &[("csrf", &csrf), ("lead", "nobody@x.example")],
        )
        .await;
    assert_eq!(unknown.status(), 422);

    let r = marketing
        .post(
            &app,
            &format!("/console/inbound/{second}/ignore"),
            &[("csrf", &csrf)],
        )
        .await;
    assert_eq!(r.status(), 303);
    let page = marketing.page(&app, "/console/inbound").await;
    assert!(page.contains("Nothing to review"), "{page}");
    let log = app.store.console_events(10).await.unwrap();
    assert!(
        log.iter()
            .any(|e| e.kind == "inbound_ignored" && e.actor == "mia@acme.example")
    );

    let (mut sales, sales_csrf) = signed_in(&app, REP, Role::Sales).await;
    assert_eq!(sales.get(&app, "/console/inbound").await.status(), 403);
    let r = sales
        .post(
            &app,
            &format!("/console/inbound/{second}/ignore"),
            &[("csrf", &sales_csrf)],
        )
        .await;
    assert_eq!(r.status(), 403);
}

#[tokio::test]
async fn the_review_list_pages_by_key_and_offers_no_empty_page() {
    let app = console_app().await;
    for i in 0..26 {
        stray_reply(&app, &format!("p{i}"), &format!("stray number {i:02}")).await;
    }
    let (mut marketing, _) = signed_in(&app, "mia@acme.example", Role::Marketing).await;
    let first = marketing.page(&app, "/console/inbound").await;
    assert!(first.contains("26 messages") && first.contains("stray number 25"));
    assert!(!first.contains("stray number 00"));
    let start = first.find("rel=\"next\" href=\"").expect("a next page") + 17;
    let next = unescape(first[start..].split('"').next().unwrap());
    let second = marketing.page(&app, &next).await;
    assert!(second.contains("stray number 00") && !second.contains("stray number 01"));
    assert!(!second.contains("rel=\"next\""), "{second}");
}

// ── Suppression ─────────────────────────────────────────────────────────────────────────

#[tokio::test]
async fn the_suppression_list_adds_guards_broad_domains_and_removes_with_restore() {
    let app = console_app().await;
    seed(&app).await;
    app.reconfigure(|s| s.compliance.confirm_domain_over = 1);
    let (mut marketing, csrf) = signed_in(&app, "mia@acme.example", Role::Marketing).await;

    let r = marketing
        .post(
            &app,
            "/console/suppression/add",
            &[
                ("csrf", &csrf),
                ("address", "Ann@Client.example"),
                ("reason", "manual"),
                ("note", "asked by phone"),
            ],
        )
        .await;
    assert_eq!(r.status(), 303);
    assert_eq!(
        app.lead("ann@client.example").await.state,
        LeadState::Suppressed
    );
    let list = marketing.page(&app, "/console/suppression").await;
    assert!(list.contains("ann@client.example") && list.contains("asked by phone"));
    let entry: Suppression = app.store.suppressions().await.unwrap().pop().unwrap();
    assert_eq!(
        (entry.reason, entry.evidence["by"].as_str()),
        (SuppressionReason::Manual, Some("mia@acme.example"))
    );

    // A domain reaching 2 leads (> 1): a confirmation first, nothing added.
    let form = [
        ("csrf", csrf.as_str()),
        ("address", "@other.example"),
        ("reason", "manual"),
        ("note", ""),
    ];
    let r = marketing
        .post(&app, "/console/suppression/add", &form)
        .await;
    assert_eq!(r.status(), 409);
    assert!(r.text().await.unwrap().contains("would suppress 2 leads"));
    assert_eq!(app.lead("carl@other.example").await.state, LeadState::New);
    let mut confirmed = form.to_vec();
    confirmed.push(("confirm_broad", "yes"));
    assert_eq!(
        marketing
            .post(&app, "/console/suppression/add", &confirmed)
            .await
            .status(),
        303
    );
    assert_eq!(
        app.lead("carl@other.example").await.state,
        LeadState::Suppressed
    );

    // Remove with restore: the leads come back; without: they stay suppressed.
    let r = marketing
        .post(
            &app,
            "/console/suppression/remove",
            &[
                ("csrf", &csrf),
                ("address", "@other.example"),
                ("restore", "yes"),
            ],
        )
        .await;
    assert_eq!(r.status(), 303);
    assert_eq!(app.lead("carl@other.example").await.state, LeadState::New);
    last_event(&app, "carl@other.example", "restored").await;
    let r = marketing
        .post(
            &app,
            "/console/suppression/remove",
            &[("csrf", &csrf), ("address", "ann@client.example")],
        )
        .await;
    assert_eq!(r.status(), 303);
    assert_eq!(
        app.lead("ann@client.example").await.state,
        LeadState::Suppressed
    );
    let again = marketing
        .post(
            &app,
            "/console/suppression/remove",
            &[("csrf", &csrf), ("address", "ann@client.example")],
        )
        .await;
    assert_eq!(again.status(), 409);
    let log = app.store.console_events(20).await.unwrap();
    assert!(
        log.iter()
            .filter(|e| e.actor == "mia@acme.example")
            .any(|e| e.kind == "suppression_removed")
    );

    let (mut sales, sales_csrf) = signed_in(&app, REP, Role::Sales).await;
    assert_eq!(sales.get(&app, "/console/suppression").await.status(), 403);
    let r = sales
        .post(
            &app,
            "/console/suppression/add",
            &[("csrf", &sales_csrf), ("address", "x@y.example")],
        )
        .await;
    assert_eq!(r.status(), 403);
}
