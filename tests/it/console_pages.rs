//! The console's lead search, lead page and sales queue over real HTTP (a real router on a
//! real port, a real SQLite file): what each role sees, that every action changes the lead
//! and writes an event naming who did it, that a form without its CSRF token (or with a
//! wrong one) is 403 and changes nothing — on every page's POSTs, the inbound and
//! suppression ones (`console_review`) included — and that a sales user gets 404 for another
//! owner's lead, page and actions alike.

use chrono::Duration;
use rewarm::console::Role;
use rewarm::domain::email::EmailAddress;
use rewarm::domain::lead::{LeadState, NewLead};
use rewarm::notify::feedback::{FeedbackAction, feedback_links, sign};
use rewarm::store::prelude::*;
use rewarm::store::{Event, InboundEffect, InboundRecord};

use crate::support::console::{Visitor, console_app, csrf_in, invite};
use crate::support::http_app::{HttpApp, T0, at};

pub(crate) const REP: &str = "rep@acme.example";
const OTHER: &str = "other@acme.example";

/// Four leads: ann and bob are REP's, carl and dora OTHER's.
pub(crate) async fn seed(app: &HttpApp) {
    let lead = |email: &str, first: &str, company: &str, owner: &str| NewLead {
        email: Some(EmailAddress::parse(email).unwrap()),
        first_name: Some(first.into()),
        company: Some(company.into()),
        owner_email: Some(EmailAddress::parse(owner).unwrap()),
        lost_reason: Some("timing".into()),
        lost_at: Some(at(T0) - Duration::days(200)),
        tags: vec!["vip".into()],
        ..NewLead::default()
    };
    let leads = [
        lead("ann@client.example", "Ann", "Annex", REP),
        lead("bob@client.example", "Bob", "Bobco", REP),
        lead("carl@other.example", "Carl", "Annapolis", OTHER),
        lead("dora@other.example", "Dora", "Doraco", OTHER),
    ];
    app.store
        .upsert_leads(&leads, "test", at(T0) - Duration::days(1))
        .await
        .unwrap();
    app.reconfigure(|s| s.console.actions_per_minute = 1000);
}

pub(crate) async fn signed_in(app: &HttpApp, email: &str, role: Role) -> (Visitor, String) {
    let link = invite(app, email, role).await;
    let mut visitor = Visitor::sign_in(app, &link).await;
    let page = visitor.page(app, "/console/leads").await;
    let csrf = csrf_in(&page);
    (visitor, csrf)
}

/// A page's text with Tera's escapes of `/` and `&` undone (in attributes they mean the same).
pub(crate) fn unescape(html: &str) -> String {
    html.replace("&#x2F;", "/").replace("&amp;", "&")
}

async fn id_of(app: &HttpApp, email: &str) -> i64 {
    app.lead(email).await.id
}

/// The last event of `kind` on the lead's timeline.
pub(crate) async fn last_event(app: &HttpApp, email: &str, kind: &str) -> Event {
    app.timeline(email)
        .await
        .into_iter()
        .rev()
        .find(|e| e.kind == kind)
        .unwrap_or_else(|| panic!("no `{kind}` event for {email}"))
}

async fn rewarm_by_reply(app: &HttpApp, email: &str, text: &str, hours: i64) {
    let lead = app.lead(email).await;
    let when = at(T0) - Duration::hours(hours);
    let record = InboundRecord {
        dedupe_key: format!("reply:{email}"),
        source: "replay".into(),
        received_at: when,
        message_id: None,
        from_address: Some(email.into()),
        subject: Some("Re: checking in".into()),
        classification: "human_reply".into(),
        lead_id: Some(lead.id),
        delivery_id: None,
        matched_by: Some("sender".into()),
        text: Some(text.into()),
        raw: format!("From: {email}\r\nSubject: Re: checking in\r\n\r\n{text}\r\n").into_bytes(),
    };
    let effect = InboundEffect::Rewarm {
        text: text.into(),
        subject: record.subject.clone(),
        notifications: Vec::new(),
    };
    app.store
        .record_inbound(&record, &effect, when)
        .await
        .unwrap();
}

// ── Leads ───────────────────────────────────────────────────────────────────────────────

#[tokio::test]
async fn the_search_finds_by_prefix_and_a_sales_user_sees_only_their_own_leads() {
    let app = console_app().await;
    seed(&app).await;
    let (mut marketing, _) = signed_in(&app, "mia@acme.example", Role::Marketing).await;
    let found = marketing.page(&app, "/console/leads?q=ann").await;
    assert!(found.contains("ann@client.example") && found.contains("carl@other.example"));
    assert!(!found.contains("bob@client.example"), "{found}");
    let by_owner = marketing
        .page(
            &app,
            &format!("/console/leads?owner={OTHER}&state=new&tag=VIP"),
        )
        .await;
    assert!(by_owner.contains("dora@other.example") && !by_owner.contains("ann@client.example"));
    let bad = marketing.page(&app, "/console/leads?state=bogus").await;
    assert!(bad.contains("no state `bogus`"), "{bad}");

    let (mut sales, _) = signed_in(&app, REP, Role::Sales).await;
    for url in [
        "/console/leads",
        &format!("/console/leads?owner={OTHER}"),
        "/console/leads?q=carl",
    ] {
        let page = sales.page(&app, url).await;
        assert!(
            !page.contains("carl@other.example") && !page.contains("dora@other.example"),
            "{url}: {page}"
        );
    }
    let mine = sales.page(&app, "/console/leads").await;
    assert!(mine.contains("ann@client.example") && mine.contains("bob@client.example"));
}

#[tokio::test]
async fn the_search_pages_by_key() {
    let app = console_app().await;
    let leads: Vec<NewLead> = (0..60)
        .map(|i| NewLead {
            email: Some(EmailAddress::parse(&format!("p{i:02}@page.example")).unwrap()),
            ..NewLead::default()
        })
        .collect();
    app.store
        .upsert_leads(&leads, "test", at(T0))
        .await
        .unwrap();
    let (mut marketing, _) = signed_in(&app, "mia@acme.example", Role::Marketing).await;
    let first = marketing.page(&app, "/console/leads?q=p").await;
    assert!(first.contains("p59@page.example") && !first.contains("p09@page.example"));
    let start = first.find("rel=\"next\" href=\"").expect("a next page") + 17;
    let next = first[start..]
        .split('"')
        .next()
        .unwrap()
        .replace("&amp;", "&");
    let second = marketing.page(&app, &next).await;
    assert!(second.contains("p09@page.example") && !second.contains("p59@page.example"));
    assert!(!second.contains("rel=\"next\""));
}

#[tokio::test]
async fn the_lead_page_shows_data_explain_next_email_score_and_timeline() {
    let app = console_app().await;
    seed(&app).await;
    let id = id_of(&app, "ann@client.example").await;
    let (mut marketing, _) = signed_in(&app, "mia@acme.example", Role::Marketing).await;
    let page = unescape(&marketing.page(&app, &format!("/console/leads/{id}")).await);
    for needle in [
        "ann@client.example",
        "Annex",
        "id=\"explain\"",
        "id=\"next\"",
        "id=\"score\"",
        "data-kind=\"imported\"",
        "/won\"",
        "/reassign\"",
    ] {
        assert!(page.contains(needle), "{needle} missing:\n{page}");
    }
    // Marketing does not erase people.
    assert!(!page.contains("/forget\""));
    let (mut admin, _) = signed_in(&app, "ada@acme.example", Role::Admin).await;
    let page = unescape(&admin.page(&app, &format!("/console/leads/{id}")).await);
    assert!(page.contains("/forget\""));
    assert_eq!(
        marketing.get(&app, "/console/leads/999999").await.status(),
        404
    );
}

#[tokio::test]
async fn another_owners_lead_is_404_for_a_sales_user_page_and_actions() {
    let app = console_app().await;
    seed(&app).await;
    let carl = id_of(&app, "carl@other.example").await;
    let ann = id_of(&app, "ann@client.example").await;
    let (mut sales, csrf) = signed_in(&app, REP, Role::Sales).await;
    sales.page(&app, &format!("/console/leads/{ann}")).await;
    assert_eq!(
        sales
            .get(&app, &format!("/console/leads/{carl}"))
            .await
            .status(),
        404
    );
    for action in [
        "won",
        "pause",
        "recycle",
        "out-of-scope",
        "reassign",
        "forget",
    ] {
        let url = format!("/console/leads/{carl}/{action}");
        let form = [
            ("csrf", csrf.as_str()),
            ("reason", "x"),
            ("to", "me@acme.example"),
        ];
        assert_eq!(
            sales.post(&app, &url, &form).await.status(),
            404,
            "{action}"
        );
    }
    let feedback = format!("/console/queue/{carl}/feedback");
    let form = [("csrf", csrf.as_str()), ("action", "won")];
    assert_eq!(sales.post(&app, &feedback, &form).await.status(), 404);
    let untouched = app.lead("carl@other.example").await;
    assert_eq!(
        (untouched.state, untouched.owner_email.as_deref()),
        (LeadState::New, Some(OTHER))
    );
}

#[tokio::test]
async fn a_post_without_its_csrf_token_or_with_a_wrong_one_is_403_and_changes_nothing() {
    let app = console_app().await;
    seed(&app).await;
    let ann = id_of(&app, "ann@client.example").await;
    let (mut admin, _) = signed_in(&app, "ada@acme.example", Role::Admin).await;
    let posts = [
        format!("/console/leads/{ann}/won"),
        format!("/console/leads/{ann}/pause"),
        format!("/console/leads/{ann}/out-of-scope"),
        format!("/console/leads/{ann}/recycle"),
        format!("/console/leads/{ann}/reassign"),
        format!("/console/leads/{ann}/forget"),
        format!("/console/queue/{ann}/feedback"),
        "/console/inbound/1/assign".to_string(),
        "/console/inbound/1/ignore".to_string(),
        "/console/suppression/add".to_string(),
        "/console/suppression/remove".to_string(),
    ];
    for url in &posts {
        for csrf in [None, Some("forged")] {
            let mut form = vec![
                ("action", "won"),
                ("to", "x@acme.example"),
                ("address", "ann@client.example"),
                ("lead", "1"),
            ];
            form.extend(csrf.map(|c| ("csrf", c)));
            assert_eq!(
                admin.post(&app, url, &form).await.status(),
                403,
                "{url} {csrf:?}"
            );
        }
    }
    let lead = app.lead("ann@client.example").await;
    assert_eq!(
        (lead.state, lead.owner_email.as_deref()),
        (LeadState::New, Some(REP))
    );
    assert!(app.store.suppressions().await.unwrap().is_empty());
}

#[tokio::test]
async fn each_lead_action_changes_the_lead_and_writes_an_event_naming_who_did_it() {
    let app = console_app().await;
    seed(&app).await;
    let (mut sales, csrf) = signed_in(&app, REP, Role::Sales).await;
    let ann = id_of(&app, "ann@client.example").await;
    let post = |action: &str| format!("/console/leads/{ann}/{action}");

    let r = sales.post(&app, &post("pause"), &[("csrf", &csrf)]).await;
    assert_eq!(r.status(), 303);
    assert_eq!(
        app.lead("ann@client.example").await.state,
        LeadState::Paused
    );
    assert_eq!(
        last_event(&app, "ann@client.example", "paused")
            .await
            .detail["by"],
        REP
    );

    sales.post(&app, &post("resume"), &[("csrf", &csrf)]).await;
    assert_eq!(app.lead("ann@client.example").await.state, LeadState::New);
    assert_eq!(
        last_event(&app, "ann@client.example", "resumed")
            .await
            .detail["by"],
        REP
    );

    sales.post(&app, &post("won"), &[("csrf", &csrf)]).await;
    assert_eq!(app.lead("ann@client.example").await.state, LeadState::Won);
    assert_eq!(
        last_event(&app, "ann@client.example", "won").await.detail["by"],
        REP
    );

    let r = sales.post(&app, &post("recycle"), &[("csrf", &csrf)]).await;
    assert_eq!(r.status(), 303, "{}", r.text().await.unwrap());
    assert_ne!(app.lead("ann@client.example").await.state, LeadState::Won);
    let recycled = last_event(&app, "ann@client.example", "recycled").await;
    assert!(
        recycled.detail["reason"].as_str().unwrap().contains(REP),
        "{:?}",
        recycled.detail
    );

    let form = [
        ("csrf", csrf.as_str()),
        ("reason", "bought a competitor"),
        ("recheck", "6"),
    ];
    sales.post(&app, &post("out-of-scope"), &form).await;
    assert_eq!(
        app.lead("ann@client.example").await.state,
        LeadState::OutOfScope
    );
    let oos = last_event(&app, "ann@client.example", "out_of_scope").await;
    assert_eq!(
        (oos.detail["by"].as_str(), oos.detail["reason"].as_str()),
        (Some(REP), Some("bought a competitor"))
    );

    // Handing the lead away: the sales user no longer sees it.
    let form = [
        ("csrf", csrf.as_str()),
        ("to", "New@acme.example"),
        ("name", "New Rep"),
    ];
    let r = sales.post(&app, &post("reassign"), &form).await;
    assert_eq!(
        (
            r.status().as_u16(),
            r.headers()["location"].to_str().unwrap()
        ),
        (303, "/console/leads")
    );
    assert_eq!(
        app.lead("ann@client.example").await.owner_email.as_deref(),
        Some("new@acme.example")
    );
    assert_eq!(
        last_event(&app, "ann@client.example", "reassigned")
            .await
            .detail["by"],
        REP
    );
    assert_eq!(
        sales
            .get(&app, &format!("/console/leads/{ann}"))
            .await
            .status(),
        404
    );

    // Forgetting is the admin's.
    let bob = id_of(&app, "bob@client.example").await;
    let r = sales
        .post(
            &app,
            &format!("/console/leads/{bob}/forget"),
            &[("csrf", &csrf)],
        )
        .await;
    assert_eq!(r.status(), 403);
    let (mut admin, admin_csrf) = signed_in(&app, "ada@acme.example", Role::Admin).await;
    let r = admin
        .post(
            &app,
            &format!("/console/leads/{bob}/forget"),
            &[("csrf", &admin_csrf)],
        )
        .await;
    assert_eq!(r.status(), 303);
    assert!(app.find_lead("bob@client.example").await.is_none());
    let placeholder = app.store.leads_by_ids(&[bob]).await.unwrap().pop().unwrap();
    let timeline = app.store.timeline(placeholder.id).await.unwrap();
    let forgotten = timeline
        .iter()
        .find(|e| e.kind == "forgotten")
        .expect("a forgotten event");
    assert_eq!(forgotten.detail["by"], "ada@acme.example");
}

#[tokio::test]
async fn a_refused_action_says_why_and_changes_nothing() {
    let app = console_app().await;
    seed(&app).await;
    let ann = id_of(&app, "ann@client.example").await;
    let (mut admin, csrf) = signed_in(&app, "ada@acme.example", Role::Admin).await;
    // A new lead is in nurture already: nothing to recycle.
    let r = admin
        .post(
            &app,
            &format!("/console/leads/{ann}/recycle"),
            &[("csrf", &csrf)],
        )
        .await;
    assert_eq!(r.status(), 409);
    let events = app.timeline("ann@client.example").await.len();
    let r = admin
        .post(
            &app,
            &format!("/console/leads/{ann}/reassign"),
            &[("csrf", &csrf), ("to", "not an address")],
        )
        .await;
    assert_eq!(r.status(), 422);
    assert_eq!(app.timeline("ann@client.example").await.len(), events);
}

// ── Sales queue ─────────────────────────────────────────────────────────────────────────

#[tokio::test]
async fn the_sales_queue_shows_a_reps_rewarmed_leads_with_the_reply_and_its_buttons_act() {
    let app = console_app().await;
    seed(&app).await;
    rewarm_by_reply(&app, "ann@client.example", "Call me in March", 30).await;
    rewarm_by_reply(&app, "bob@client.example", "Send the pricing please", 2).await;
    rewarm_by_reply(&app, "carl@other.example", "Interested", 1).await;
    let (mut sales, csrf) = signed_in(&app, REP, Role::Sales).await;
    let queue = sales.page(&app, "/console/queue").await;
    assert!(queue.contains("Call me in March") && queue.contains("Send the pricing please"));
    assert!(!queue.contains("carl@other.example"), "{queue}");
    let bob_at = queue.find("bob@client.example").unwrap();
    assert!(
        bob_at < queue.find("ann@client.example").unwrap(),
        "newest first"
    );
    let stalest = sales.page(&app, "/console/queue?order=stalest").await;
    assert!(
        stalest.find("ann@client.example").unwrap() < stalest.find("bob@client.example").unwrap()
    );

    let ann = id_of(&app, "ann@client.example").await;
    let r = sales
        .post(
            &app,
            &format!("/console/queue/{ann}/feedback"),
            &[("csrf", &csrf), ("action", "won")],
        )
        .await;
    assert_eq!(r.status(), 303);
    assert_eq!(app.lead("ann@client.example").await.state, LeadState::Won);
    let feedback = last_event(&app, "ann@client.example", "feedback").await;
    assert_eq!(
        (
            feedback.detail["action"].as_str(),
            feedback.detail["by"].as_str()
        ),
        (Some("won"), Some(REP))
    );
    let bob = id_of(&app, "bob@client.example").await;
    let r = sales
        .post(
            &app,
            &format!("/console/queue/{bob}/feedback"),
            &[("csrf", &csrf), ("action", "not_now_6")],
        )
        .await;
    assert_eq!(r.status(), 303);
    assert_ne!(
        app.lead("bob@client.example").await.state,
        LeadState::Rewarmed
    );
    assert_eq!(
        last_event(&app, "bob@client.example", "feedback")
            .await
            .detail["months"],
        6
    );
    let after = sales.page(&app, "/console/queue").await;
    assert!(!after.contains("Call me in March") && !after.contains("Send the pricing please"));

    // Marketing sees everyone's queue, or one owner's.
    let (mut marketing, _) = signed_in(&app, "mia@acme.example", Role::Marketing).await;
    assert!(
        marketing
            .page(&app, "/console/queue")
            .await
            .contains("carl@other.example")
    );
    let theirs = marketing
        .page(&app, &format!("/console/queue?owner={REP}"))
        .await;
    assert!(!theirs.contains("carl@other.example"));
}

#[tokio::test]
async fn an_emailed_feedback_link_opens_the_queue_when_signed_in_and_the_tokened_page_otherwise() {
    let app = console_app().await;
    seed(&app).await;
    rewarm_by_reply(&app, "ann@client.example", "Call me", 1).await;
    let ann = id_of(&app, "ann@client.example").await;
    let token = sign(&app.keys, ann, REP, FeedbackAction::Won, at(T0));
    let link = format!("/console/feedback/{token}");

    let mut stranger = Visitor::default();
    let r = stranger.get(&app, &link).await;
    assert_eq!(r.status(), 303);
    assert_eq!(
        r.headers()["location"],
        format!("/feedback/{token}").as_str()
    );
    let tokened = app.get(app.url(&format!("/feedback/{token}"))).await;
    assert_eq!(tokened.status(), 200);

    let (mut sales, _) = signed_in(&app, REP, Role::Sales).await;
    let r = sales.get(&app, &link).await;
    assert_eq!(r.status(), 303);
    let to = r.headers()["location"].to_str().unwrap().to_string();
    assert_eq!(to, format!("/console/queue?lead={ann}"));
    let queue = sales.page(&app, &to).await;
    assert!(queue.contains(&format!("id=\"lead-{ann}\"")) && queue.contains("focus"));

    // Another owner signed in: the lead is not theirs, so the tokened page.
    let (mut other, _) = signed_in(&app, OTHER, Role::Sales).await;
    let r = other.get(&app, &link).await;
    assert_eq!(
        r.headers()["location"],
        format!("/feedback/{token}").as_str()
    );
}

#[tokio::test]
async fn owner_email_links_point_at_the_console_while_it_is_on_and_still_work_once_it_is_off() {
    let app = console_app().await;
    seed(&app).await;
    let ann = app.lead("ann@client.example").await;
    let links = feedback_links(&app.current.get(), &ann, REP, at(T0));
    assert!(
        links
            .iter()
            .all(|(_, url)| url.contains("/console/feedback/")),
        "{links:?}"
    );
    let sent = links[0].1.clone();
    let token = sent.rsplit('/').next().unwrap().to_string();

    app.reconfigure(|s| s.console.enabled = false);
    let links = feedback_links(&app.current.get(), &ann, REP, at(T0));
    assert!(
        links.iter().all(|(_, url)| !url.contains("/console/")),
        "{links:?}"
    );
    // A link emailed while the console was on goes on to the tokened page.
    let r = app
        .get(app.url(&format!("/console/feedback/{token}")))
        .await;
    assert_eq!(r.status(), 307);
    assert_eq!(
        r.headers()["location"],
        format!("/feedback/{token}").as_str()
    );
    assert_eq!(app.get(app.url("/console/leads")).await.status(), 404);
}
