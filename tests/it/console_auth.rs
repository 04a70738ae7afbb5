//! The console's sign-in, sessions, roles and CSRF over real HTTP (a real router on a real
//! port, a real SQLite file): emailed single-use links, their expiry, the sign-in rate
//! limit, who sees which page, and that a form without its token changes nothing.

use chrono::Duration;
use rewarm::console::Role;
use rewarm::store::prelude::*;

use crate::support::console::{
    Visitor, console_app, csrf_in, deliver, invite, invite_at, signin_links,
};
use crate::support::http_app::{HttpApp, T0, at};

#[tokio::test]
async fn a_disabled_console_answers_404_everywhere() {
    let app = HttpApp::spawn_with(None).await;
    for path in [
        "/console/",
        "/console/signin",
        "/console/campaigns",
        "/console/static/console.css",
    ] {
        assert_eq!(app.get(app.url(path)).await.status(), 404, "{path}");
    }
    assert_eq!(app.post(app.url("/console/signin")).await.status(), 404);
}

#[tokio::test]
async fn an_emailed_link_signs_in_once_and_the_session_opens_the_pages_of_the_role() {
    let app = console_app().await;
    let link = invite(&app, "Mia@Acme.example", Role::Marketing).await;
    assert!(link.contains("/console/signin/"), "{link}");
    // Only the token's hash is stored.
    let token = link.rsplit('/').next().unwrap();
    let rows = app.store.console_events(10).await.unwrap();
    assert!(
        rows.iter()
            .any(|e| e.kind == "invited" && e.actor == "test")
    );

    // Opening the link changes nothing (scanners follow GETs): the button does.
    let mut visitor = Visitor::default();
    let landing = visitor.page(&app, &link).await;
    assert!(landing.contains("Sign in"));
    let response = visitor
        .post(&app, &link, &[("csrf", &csrf_in(&landing))])
        .await;
    assert_eq!(response.status(), 303);
    assert_eq!(response.headers()["location"], "/console/");
    let cookie = response
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_string())
        .find(|v| v.starts_with("rewarm_console="))
        .expect("the session cookie");
    assert!(
        cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"),
        "{cookie}"
    );
    assert!(!cookie.contains("Secure"), "http:// public URL: {cookie}");
    assert!(!cookie.contains(token));

    let overview = visitor.page(&app, "/console/").await;
    assert!(
        overview.contains("mia@acme.example (marketing)"),
        "{overview}"
    );
    visitor.page(&app, "/console/campaigns").await;
    // Marketing does not invite.
    assert_eq!(visitor.get(&app, "/console/users").await.status(), 403);

    // The link again, in another browser: used.
    let mut other = Visitor::default();
    assert_eq!(other.use_link(&app, &link).await.status(), 410);
    let events = app.store.console_events(10).await.unwrap();
    assert!(
        events
            .iter()
            .any(|e| e.kind == "signed_in" && e.actor == "mia@acme.example")
    );
}

#[tokio::test]
async fn an_expired_link_or_a_made_up_one_signs_nobody_in() {
    let mut app = console_app().await;
    let link = invite_at(&app, "late@acme.example", Role::Admin, at(T0)).await;
    app.restart_at(at(T0) + Duration::minutes(16)).await;
    let mut visitor = Visitor::default();
    let response = visitor.use_link(&app, &link).await;
    assert_eq!(response.status(), 410);
    assert!(response.text().await.unwrap().contains("expired"));
    let forged = format!("{}x", link);
    assert_eq!(
        Visitor::default().use_link(&app, &forged).await.status(),
        404
    );
    assert!(visitor.cookies.iter().all(|(k, _)| k != "rewarm_console"));
    assert_eq!(
        visitor.get(&app, "/console/").await.status(),
        303,
        "to the sign-in page"
    );
}

#[tokio::test]
async fn a_post_without_its_csrf_token_is_refused_and_changes_nothing() {
    let app = console_app().await;
    let link = invite(&app, "ada@acme.example", Role::Admin).await;
    let mut visitor = Visitor::sign_in(&app, &link).await;
    let page = visitor.page(&app, "/console/users").await;
    let csrf = csrf_in(&page);
    for form in [
        vec![("email", "eve@acme.example"), ("role", "admin")],
        vec![
            ("email", "eve@acme.example"),
            ("role", "admin"),
            ("csrf", "forged"),
        ],
    ] {
        let response = visitor.post(&app, "/console/users/invite", &form).await;
        assert_eq!(response.status(), 403);
    }
    assert!(
        app.store
            .console_user("eve@acme.example")
            .await
            .unwrap()
            .is_none()
    );
    // A sign-in form posted from elsewhere (no pre-session cookie) is refused too.
    let response = Visitor::default()
        .post(&app, &link, &[("csrf", &csrf)])
        .await;
    assert_eq!(response.status(), 403);

    // With its token, the admin's invitation goes through and is logged with the admin.
    let response = visitor
        .post(
            &app,
            "/console/users/invite",
            &[
                ("email", "eve@acme.example"),
                ("role", "sales"),
                ("csrf", &csrf),
            ],
        )
        .await;
    assert_eq!(response.status(), 303);
    let eve = app
        .store
        .console_user("eve@acme.example")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (eve.role.as_str(), eve.invited_by.as_str()),
        ("sales", "ada@acme.example")
    );

    // Signing out ends the session (a POST with the token).
    let response = visitor
        .post(&app, "/console/signout", &[("csrf", &csrf)])
        .await;
    assert_eq!(response.status(), 303);
    assert_eq!(visitor.get(&app, "/console/users").await.status(), 303);
}

#[tokio::test]
async fn asking_for_links_answers_the_same_for_anyone_and_is_rate_limited() {
    let app = console_app().await;
    app.add_leads(&["lead@client.example"]).await;
    let mut visitor = Visitor::default();
    let form = visitor.page(&app, "/console/signin").await;
    let csrf = csrf_in(&form);
    let ask = |email: &'static str| {
        let csrf = csrf.clone();
        let mut visitor = visitor.clone();
        let app = &app;
        async move {
            let response = visitor
                .post(app, "/console/signin", &[("email", email), ("csrf", &csrf)])
                .await;
            (response.status(), response.text().await.unwrap())
        }
    };
    let (status, unknown) = ask("nobody@acme.example").await;
    assert_eq!(status, 200);
    deliver(&app, at(T0)).await;
    assert!(
        signin_links(&app).is_empty(),
        "nothing is sent to an unknown address"
    );
    app.store
        .put_console_user("kim@acme.example", "marketing", "test", at(T0))
        .await
        .unwrap();
    let (status, known) = ask("kim@acme.example").await;
    assert_eq!(status, 200);
    assert_eq!(known, unknown, "the same answer");
    deliver(&app, at(T0)).await;
    assert_eq!(signin_links(&app).len(), 1);

    for _ in 1..5 {
        assert_eq!(ask("kim@acme.example").await.0, 200);
    }
    let (status, text) = ask("kim@acme.example").await;
    assert_eq!(status, 429, "{text}");
    deliver(&app, at(T0)).await;
    assert_eq!(signin_links(&app).len(), 5, "five links an hour");
}

#[tokio::test]
async fn a_lead_owner_signs_in_as_sales_and_sees_neither_overview_nor_campaigns() {
    let app = console_app().await;
    let lead = rewarm::domain::lead::NewLead {
        email: Some(rewarm::domain::email::EmailAddress::parse("buyer@client.example").unwrap()),
        owner_email: Some(
            rewarm::domain::email::EmailAddress::parse("Rep@Acme.example").expect("email"),
        ),
        lost_at: Some(at(T0) - Duration::days(90)),
        ..Default::default()
    };
    app.store
        .upsert_leads(&[lead], "test", at(T0))
        .await
        .unwrap();
    let mut visitor = Visitor::default();
    let form = visitor.page(&app, "/console/signin").await;
    let response = visitor
        .post(
            &app,
            "/console/signin",
            &[("email", "rep@acme.example"), ("csrf", &csrf_in(&form))],
        )
        .await;
    assert_eq!(response.status(), 200);
    deliver(&app, at(T0)).await;
    let link = crate::support::console::link_for(&app, "rep@acme.example");
    let mut rep = Visitor::sign_in(&app, &link).await;
    let home = rep.get(&app, "/console/").await;
    assert_eq!(
        (
            home.status().as_u16(),
            home.headers()["location"].to_str().unwrap()
        ),
        (303, "/console/queue")
    );
    assert_eq!(rep.get(&app, "/console/campaigns").await.status(), 403);
    assert_eq!(rep.get(&app, "/console/users").await.status(), 403);
}
