//! Driving the web console over real HTTP: a server with `[console] enabled` (the
//! `http_app` one), invitations and sign-in links as `rewarm console invite` makes them,
//! the link read back from the email, cookies and CSRF tokens carried by hand (the client
//! keeps none), so every test sees exactly what a browser would send.

use chrono::{DateTime, Utc};
use rewarm::console::Role;
use rewarm::domain::email::EmailAddress;

use super::http_app::{HttpApp, T0, at};

/// A console on a real port, enabled, clock at [`T0`].
pub async fn console_app() -> HttpApp {
    let app = HttpApp::spawn_with(None).await;
    app.reconfigure(|s| s.console.enabled = true);
    app
}

/// Delivers the notification outbox (sign-in emails) through the app's file transport.
pub async fn deliver(app: &HttpApp, now: DateTime<Utc>) {
    let loaded = app.current.get();
    rewarm::notify::deliver_due(&app.store, &loaded, &app.transport, now, "test")
        .await
        .expect("deliver the outbox");
}

/// The sign-in links emailed so far, as (recipient, URL), oldest first.
pub fn signin_links(app: &HttpApp) -> Vec<(String, String)> {
    app.emails()
        .into_iter()
        .filter_map(|(_, raw)| {
            let message = mail_parser::MessageParser::default().parse(raw.as_bytes())?;
            let to = message.to()?.first()?.address()?.to_string();
            let text = message.body_text(0)?.into_owned();
            let url = text
                .lines()
                .map(str::trim)
                .find(|l| l.starts_with("http") && l.contains("/console/signin/"))?
                .to_string();
            Some((to, url))
        })
        .collect()
}

/// The newest sign-in link emailed to `email`.
pub fn link_for(app: &HttpApp, email: &str) -> String {
    signin_links(app)
        .into_iter()
        .rev()
        .find(|(to, _)| to.eq_ignore_ascii_case(email))
        .map(|(_, url)| url)
        .unwrap_or_else(|| panic!("no sign-in link was emailed to {email}"))
}

/// Invites `email` as `role` (what `rewarm console invite` runs) at `now`, delivers the
/// email and returns its link.
pub async fn invite_at(app: &HttpApp, email: &str, role: Role, now: DateTime<Utc>) -> String {
    let loaded = app.current.get();
    let address = EmailAddress::parse(email).expect("a valid address");
    rewarm::console::signin::invite(&app.store, &loaded, &address, role, "test", now)
        .await
        .expect("invite");
    deliver(app, now).await;
    link_for(app, email)
}

pub async fn invite(app: &HttpApp, email: &str, role: Role) -> String {
    invite_at(app, email, role, at(T0)).await
}

/// The `Set-Cookie` values of a response, as (name, value).
pub fn set_cookies(response: &reqwest::Response) -> Vec<(String, String)> {
    response
        .headers()
        .get_all(reqwest::header::SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .filter_map(|v| {
            let (pair, _) = v.split_once(';').unwrap_or((v, ""));
            let (name, value) = pair.split_once('=')?;
            Some((name.trim().to_string(), value.trim().to_string()))
        })
        .collect()
}

/// The CSRF token of the first form of a page.
pub fn csrf_in(html: &str) -> String {
    let start = html
        .find("name=\"csrf\" value=\"")
        .unwrap_or_else(|| panic!("no CSRF field in:\n{html}"))
        + "name=\"csrf\" value=\"".len();
    html[start..]
        .split('"')
        .next()
        .expect("a closing quote")
        .to_string()
}

/// A browser's cookies for the console, sent by hand.
#[derive(Debug, Clone, Default)]
pub struct Visitor {
    pub cookies: Vec<(String, String)>,
}

impl Visitor {
    fn cookie_header(&self) -> String {
        self.cookies
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("; ")
    }

    /// Keeps the cookies a response set (an empty value deletes).
    pub fn keep(&mut self, response: &reqwest::Response) {
        for (name, value) in set_cookies(response) {
            self.cookies.retain(|(k, _)| *k != name);
            if !value.is_empty() {
                self.cookies.push((name, value));
            }
        }
    }

    pub async fn get(&mut self, app: &HttpApp, url: &str) -> reqwest::Response {
        let url = absolute(app, url);
        let response = app
            .client
            .get(url)
            .header(reqwest::header::COOKIE, self.cookie_header())
            .send()
            .await
            .expect("GET");
        self.keep(&response);
        response
    }

    /// GET, asserting 200, and the page's HTML.
    pub async fn page(&mut self, app: &HttpApp, url: &str) -> String {
        let response = self.get(app, url).await;
        let status = response.status();
        let html = response.text().await.expect("a body");
        assert_eq!(status, 200, "GET {url}:\n{html}");
        html
    }

    pub async fn post(
        &mut self,
        app: &HttpApp,
        url: &str,
        form: &[(&str, &str)],
    ) -> reqwest::Response {
        let url = absolute(app, url);
        let response = app
            .client
            .post(url)
            .header(reqwest::header::COOKIE, self.cookie_header())
            .form(form)
            .send()
            .await
            .expect("POST");
        self.keep(&response);
        response
    }

    /// Follows an emailed link as a person would: opens it, presses "Sign in". Returns the
    /// POST's answer.
    pub async fn use_link(&mut self, app: &HttpApp, link: &str) -> reqwest::Response {
        let html = self.page(app, link).await;
        let csrf = csrf_in(&html);
        self.post(app, link, &[("csrf", &csrf)]).await
    }

    /// Signs in with `link`, asserting it worked.
    pub async fn sign_in(app: &HttpApp, link: &str) -> Visitor {
        let mut browser = Visitor::default();
        let response = browser.use_link(app, link).await;
        assert_eq!(
            response.status(),
            303,
            "{}",
            response.text().await.unwrap_or_default()
        );
        assert!(
            browser.cookies.iter().any(|(k, _)| k == "rewarm_console"),
            "a session cookie: {:?}",
            browser.cookies
        );
        browser
    }
}

/// `url` on the app's current port (a server restarted by `restart_at` listens on a new
/// one; links emailed before name the old).
fn absolute(app: &HttpApp, url: &str) -> String {
    match url.find("/console") {
        Some(i) => app.url(&url[i..]),
        None => app.url(url),
    }
}
