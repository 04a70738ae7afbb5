//! The daemon's HTTP side on a real port: a SQLite file in a temporary folder, the repo's
//! templates (copied), the `file` transport, and `rewarm::http::serve` on 127.0.0.1:0, driven
//! by a fixed clock. Passes are run by calling `scheduler::pass` directly, never by sleeping.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use chrono::{DateTime, Utc};
use rewarm::app::{Current, Loaded};
use rewarm::config::Settings;
use rewarm::domain::clock::Clock;
use rewarm::domain::email::EmailAddress;
use rewarm::domain::lead::{Lead, NewLead};
use rewarm::http::HttpState;
use rewarm::outbound::scheduler::{self, PassReport};
use rewarm::secret::Secret;
use rewarm::store::prelude::*;
use rewarm::store::sqlite::SqliteStore;
use rewarm::store::{DeliveryRecord, Event, Rows, Store, Table};
use rewarm::tokens::{TokenKeys, TokenKind};
use rewarm::transport::Transport;
use rewarm::transport::file::FileTransport;
use tokio_util::sync::CancellationToken;

use super::bin::dir_with_templates;
use super::config::TestConfig;

/// The bearer token of the API in these tests.
pub const API_TOKEN: &str = "test-api-token-0123456789";
/// When the HTTP side believes it is: a Monday, 10:00 UTC.
pub const T0: &str = "2026-03-02T10:00:00Z";
/// When the test leads were lost: long enough before T0 that their first email is due at T0.
pub const LOST_AT: &str = "2025-12-01T10:00:00Z";

/// The configuration: the file transport into `outbox`, leads lost for `pricing` in the
/// click-tracked `pricing` campaign (one email), everyone else in `checkin` (three), both due
/// 30 days after the loss at any hour.
fn config(database_url: &str, templates: &Path, public_url: &str, outbox: &Path) -> String {
    TestConfig::bare(database_url)
        .timezone("UTC")
        .templates_dir(templates)
        .log(None, "warn")
        .set_str("sender", "from", "Claire at Acme <claire@acme.example>")
        .set_str("http", "public_url", public_url)
        .file_transport(&outbox.display().to_string())
        .segment("asked-about-pricing", "pricing")
        .set("segments", "lost_reason", r#"["pricing"]"#)
        .segment("everyone", "checkin")
        .campaign("checkin", "30d", "30d")
        .campaign_key("checkin", "max_touches", "3")
        .campaign_key("checkin", "templates", r#"["checkin"]"#)
        .any_time("checkin")
        .campaign("pricing", "30d", "30d")
        .campaign_key("pricing", "max_touches", "1")
        .campaign_key("pricing", "templates", r#"["pricing"]"#)
        .campaign_key("pricing", "track_clicks", "true")
        .any_time("pricing")
        .toml()
}

/// The link of the `pricing` template (its campaign tracks clicks).
pub const PRICING_URL: &str = "https://acme.example/pricing?plan=pro&seats=5";

/// A plain-text template with one link, written next to the repo's templates.
fn write_pricing_template(templates: &Path) {
    let dir = templates.join("pricing");
    std::fs::create_dir_all(&dir).expect("create the pricing template folder");
    std::fs::write(dir.join("subject.txt"), "Our new prices").expect("write subject.txt");
    let text = format!(
        "Hi {{{{ lead.first_name }}}},\n\nThe new prices are at {PRICING_URL} if you want a look.\n\n\
         {{{{ postal_address }}}}\nUnsubscribe in one click: {{{{ unsubscribe_url }}}}\n"
    );
    std::fs::write(dir.join("text.txt"), text).expect("write text.txt");
}

pub fn at(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s)
        .unwrap_or_else(|e| panic!("bad time {s}: {e}"))
        .with_timezone(&Utc)
}

/// The key the tests sign tokens with (and the server verifies them with).
pub fn test_keys() -> TokenKeys {
    TokenKeys::new(vec![("k1".into(), Secret::new("x".repeat(32)))]).expect("a valid key")
}

pub struct HttpApp {
    /// Holds the database, templates and outbox; removed on drop.
    pub _dir: tempfile::TempDir,
    pub store: SqliteStore,
    pub current: Current,
    pub keys: TokenKeys,
    pub transport: Transport,
    pub outbox: PathBuf,
    /// `http://127.0.0.1:PORT`
    pub base: String,
    /// One keep-alive client that does not follow redirects.
    pub client: reqwest::Client,
    pub stop: CancellationToken,
    pub server: Option<tokio::task::JoinHandle<std::io::Result<()>>>,
    api_token: Option<String>,
}

impl HttpApp {
    /// A server with the API on (bearer [`API_TOKEN`]).
    pub async fn spawn() -> HttpApp {
        Self::spawn_with(Some(API_TOKEN)).await
    }

    pub async fn spawn_with(api_token: Option<&str>) -> HttpApp {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let dir = dir_with_templates();
        let templates = dir.path().join("templates");
        write_pricing_template(&templates);
        let outbox = dir.path().join("outbox");
        let database_url = format!("sqlite://{}", dir.path().join("rewarm.db").display());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind 127.0.0.1:0");
        let base = format!(
            "http://{}",
            listener.local_addr().expect("the bound address")
        );
        let text = config(&database_url, &templates, &base, &outbox);
        let settings =
            Settings::from_toml(&text, "http-test.toml").unwrap_or_else(|e| panic!("{e}"));
        let mut loaded = Loaded::with_settings(settings).unwrap_or_else(|e| panic!("{e:#}"));
        // Emails sign their links with the keys the server verifies them with.
        let keys = test_keys();
        loaded.keys = keys.clone();
        let store = SqliteStore::connect(&database_url)
            .await
            .expect("open the database");
        store.migrate().await.expect("migrate");
        let current = Current::new(loaded);
        let stop = CancellationToken::new();
        let state = HttpState {
            store: store.clone(),
            current: current.clone(),
            keys: keys.clone(),
            api_token: api_token.map(Secret::new),
            clock: Clock::Fixed(at(T0)),
        };
        let server = tokio::spawn(rewarm::http::serve(listener, state, stop.clone()));
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("an HTTP client");
        HttpApp {
            _dir: dir,
            store,
            current,
            keys,
            transport: Transport::File(FileTransport::new(outbox.clone())),
            outbox,
            base,
            client,
            stop,
            server: Some(server),
            api_token: api_token.map(str::to_string),
        }
    }

    /// Stops the server and starts it again (on a new port) with its clock standing at `now`:
    /// what a reader does hours or days after the email came.
    pub async fn restart_at(&mut self, now: DateTime<Utc>) {
        self.shut_down().await.expect("the server stopped cleanly");
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind 127.0.0.1:0");
        self.base = format!(
            "http://{}",
            listener.local_addr().expect("the bound address")
        );
        let state = HttpState {
            store: self.store.clone(),
            current: self.current.clone(),
            keys: self.keys.clone(),
            api_token: self.api_token.clone().map(Secret::new),
            clock: Clock::Fixed(now),
        };
        self.stop = CancellationToken::new();
        self.server = Some(tokio::spawn(rewarm::http::serve(
            listener,
            state,
            self.stop.clone(),
        )));
    }

    /// Changes the configuration as a reload does (the token keys stay [`test_keys`]).
    pub fn reconfigure(&self, configure: impl FnOnce(&mut Settings)) {
        let mut settings = self.current.get().settings.clone();
        configure(&mut settings);
        let mut loaded = Loaded::with_settings(settings).unwrap_or_else(|e| panic!("{e:#}"));
        loaded.keys = test_keys();
        self.current.replace(loaded);
    }

    /// The Message-ID, without its angle brackets, of the first email a pass sent.
    pub async fn first_message_id(&self) -> String {
        let id = self
            .deliveries()
            .await
            .into_iter()
            .find_map(|d| d.message_id)
            .expect("the first email was sent with a Message-ID");
        id.trim_matches(['<', '>']).to_string()
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// `GET url` (see [`HttpApp::url`]) with the app's client; panics if nothing answers.
    pub async fn get(&self, url: impl reqwest::IntoUrl) -> reqwest::Response {
        self.client.get(url).send().await.expect("GET")
    }

    /// `POST url` without a body; panics if nothing answers.
    pub async fn post(&self, url: impl reqwest::IntoUrl) -> reqwest::Response {
        self.client.post(url).send().await.expect("POST")
    }

    /// The one-click unsubscribe a mailbox provider sends (RFC 8058): a form with
    /// `List-Unsubscribe=One-Click`.
    pub async fn post_one_click(&self, url: impl reqwest::IntoUrl) -> reqwest::Response {
        self.client
            .post(url)
            .form(&[("List-Unsubscribe", "One-Click")])
            .send()
            .await
            .expect("POST one-click")
    }

    /// `POST /api/leads` with the right bearer token: the status and the JSON answer.
    pub async fn post_leads(
        &self,
        body: &serde_json::Value,
    ) -> (reqwest::StatusCode, serde_json::Value) {
        let response = self
            .client
            .post(self.url("/api/leads"))
            .bearer_auth(API_TOKEN)
            .json(body)
            .send()
            .await
            .expect("POST /api/leads");
        let status = response.status();
        (status, response.json().await.expect("a JSON body"))
    }

    /// Adds leads lost at [`LOST_AT`], so a pass at [`T0`] sends each its first email.
    pub async fn add_leads(&self, emails: &[&str]) {
        self.add_leads_lost_for(emails, None).await;
    }

    /// Like `add_leads`, with a lost reason (`pricing` puts them in the click-tracked campaign).
    pub async fn add_leads_lost_for(&self, emails: &[&str], lost_reason: Option<&str>) {
        let leads: Vec<NewLead> = emails
            .iter()
            .map(|e| NewLead {
                email: Some(EmailAddress::parse(e).expect("a valid address")),
                first_name: Some("Sam".into()),
                company: Some("Initech".into()),
                lost_reason: lost_reason.map(str::to_string),
                lost_at: Some(at(LOST_AT)),
                ..Default::default()
            })
            .collect();
        let summary = self
            .store
            .upsert_leads(&leads, "test", at(T0))
            .await
            .expect("upsert leads");
        assert_eq!(summary.inserted, leads.len());
    }

    /// One scheduler pass at `now` through the file transport, as the daemon runs it.
    pub async fn pass(&self, now: DateTime<Utc>) -> PassReport {
        let loaded: Arc<Loaded> = self.current.get();
        scheduler::pass(
            &self.store,
            &loaded,
            &self.transport,
            now,
            true,
            &CancellationToken::new(),
        )
        .await
        .unwrap_or_else(|e| panic!("pass at {now}: {e}"))
    }

    pub async fn lead(&self, email: &str) -> Lead {
        self.find_lead(email)
            .await
            .unwrap_or_else(|| panic!("no lead {email}"))
    }

    pub async fn find_lead(&self, email: &str) -> Option<Lead> {
        let address = EmailAddress::parse(email).expect("a valid address");
        self.store
            .lead_by_email(&address)
            .await
            .expect("lead_by_email")
    }

    pub async fn timeline(&self, email: &str) -> Vec<Event> {
        let id = self.lead(email).await.id;
        self.store.timeline(id).await.expect("timeline")
    }

    /// The value of one series on `/metrics` (its name with labels, as printed).
    pub async fn metric(&self, series: &str) -> u64 {
        let metrics = self
            .client
            .get(self.url("/metrics"))
            .send()
            .await
            .expect("GET /metrics")
            .text()
            .await
            .expect("the metrics text");
        metrics
            .lines()
            .find_map(|l| l.strip_prefix(series)?.strip_prefix(' '))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or_else(|| panic!("no {series} in:\n{metrics}"))
    }

    pub async fn deliveries(&self) -> Vec<DeliveryRecord> {
        match self
            .store
            .export_rows(Table::Deliveries, 0, 10_000)
            .await
            .expect("export deliveries")
        {
            Rows::Deliveries(rows) => rows,
            other => panic!("asked for deliveries, got {:?}", other.table()),
        }
    }

    /// The id of the first delivery to `email`.
    pub async fn delivery_to(&self, email: &str) -> i64 {
        let lead_id = self.lead(email).await.id;
        self.deliveries()
            .await
            .into_iter()
            .find(|d| d.lead_id == lead_id)
            .unwrap_or_else(|| panic!("no delivery to {email}"))
            .id
    }

    /// The unsubscribe URL of a delivery, signed as emails sign it.
    pub fn unsubscribe_url(&self, delivery_id: i64) -> String {
        self.url(&format!(
            "/u/{}",
            self.keys.sign(TokenKind::Unsubscribe, delivery_id, 0)
        ))
    }

    /// Every `.eml` in the outbox, by file name.
    pub fn emails(&self) -> Vec<(PathBuf, String)> {
        let Ok(entries) = std::fs::read_dir(&self.outbox) else {
            return Vec::new();
        };
        let mut out: Vec<(PathBuf, String)> = entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "eml"))
            .map(|p| {
                let text = std::fs::read_to_string(&p)
                    .unwrap_or_else(|e| panic!("read {}: {e}", p.display()));
                (p, text)
            })
            .collect();
        out.sort();
        out
    }

    /// Stops the server and waits until it has.
    pub async fn shut_down(&mut self) -> std::io::Result<()> {
        self.stop.cancel();
        match self.server.take() {
            Some(server) => server
                .await
                .expect("the server task ended without panicking"),
            None => Ok(()),
        }
    }
}

impl Drop for HttpApp {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}
