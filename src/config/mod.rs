//! Typed settings: built-in defaults → the TOML config file → `REWARM__SECTION__KEY`
//! environment variables (last wins). `Settings::load` validates everything and reports
//! every problem with the file and the key at fault.
//!
//! - this module: [`Settings`] (the validated tree every other module reads), [`Settings::load`]
//!   and the error collector ([`ConfigError`] names file and key; all are reported at once).
//! - `raw`: the file's shapes as serde reads them, with the built-in defaults.
//! - `validate`: one validator per section (sender, transport, scheduler, http, inbound,
//!   notify, campaigns, segments), each noting its problems under the exact key.

mod raw;
mod validate;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use chrono_tz::Tz;

use crate::domain::cadence::{Cadence, CronSpec, Span};
use crate::domain::segment::Segment;
use raw::RawConfig;

/// One problem in the configuration, located by file and key.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{file}: `{key}`: {message}")]
pub struct ConfigError {
    pub file: String,
    pub key: String,
    pub message: String,
}

/// All problems found in a configuration (never just the first).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{} configuration error(s):\n{}", .0.len(), .0.iter().map(|e| format!("  - {e}")).collect::<Vec<_>>().join("\n"))]
pub struct ConfigErrors(pub Vec<ConfigError>);

/// The error collector: validators note each problem under its key and go on, so the
/// caller gets every problem in the file at once.
struct Problems {
    file: String,
    errors: Vec<ConfigError>,
}

impl Problems {
    fn new(file: &str) -> Self {
        Problems {
            file: file.to_string(),
            errors: Vec::new(),
        }
    }

    /// Notes one problem at `key` (e.g. `transport.smtp.tls`).
    fn err(&mut self, key: &str, message: String) {
        self.errors.push(ConfigError {
            file: self.file.clone(),
            key: key.into(),
            message,
        })
    }

    fn into_result(self) -> Result<(), ConfigErrors> {
        if self.errors.is_empty() {
            Ok(())
        } else {
            Err(ConfigErrors(self.errors))
        }
    }
}

// ---------- validated settings ----------

/// The validated configuration the daemon and the CLI run on.
#[derive(Debug, Clone)]
pub struct Settings {
    /// The file these settings came from (for messages).
    pub file: PathBuf,
    pub database_url: String,
    pub default_tz: Tz,
    pub templates_dir: PathBuf,
    pub log: LogSettings,
    pub sender: SenderSettings,
    pub transport: TransportSettings,
    /// Sending limits (rate, daily cap, per-domain); None: no limits.
    pub limits: Option<crate::transport::limits::LimitSettings>,
    /// When the transport is paused for failing as a whole, and how it is probed.
    pub breaker: crate::transport::breaker::BreakerSettings,
    pub scheduler: SchedulerSettings,
    pub http: HttpSettings,
    /// `[console]`: the web console on the HTTP listener (off by default).
    pub console: ConsoleSettings,
    /// The longest value (in characters) a lead's field may hold, on import and in the API
    /// (`ingest.max_field_length`, default 1,000).
    pub max_field_length: usize,
    /// `[import]`: CRM header mapping, role/disposable address policies, owner conflicts.
    pub import: crate::ingest::checked::ImportSettings,
    pub compliance: ComplianceSettings,
    /// Token signing keys as (key id, name of the env var / credential holding it); the first
    /// signs. Empty: a key generated once and kept in the database is used.
    pub token_keys: Vec<(String, String)>,
    pub dkim: Option<DkimSettings>,
    pub inbound: InboundSettings,
    pub scoring: ScoringSettings,
    pub notify: NotifySettings,
    /// What human replies' intents do (`[intents]`).
    pub intents: IntentSettings,
    /// In config order: the first that matches a lead wins.
    pub segments: Vec<Segment>,
    pub campaigns: BTreeMap<String, Campaign>,
}

/// `[intents]`: what each intent of a human reply does, the phrases marketing added, and the
/// default postponement and re-check spans.
#[derive(Debug, Clone)]
pub struct IntentSettings {
    /// Effect per intent (every intent present: the default where not configured).
    pub effects: BTreeMap<crate::domain::intent::Intent, crate::domain::intent::IntentEffect>,
    /// Phrases per intent, folded for matching, in intent order.
    pub phrases: Vec<(crate::domain::intent::Intent, Vec<String>)>,
    /// How long a `later` reply naming no moment postpones the cadence (default 3 months).
    pub postpone: crate::domain::cadence::Span,
    /// When a `not_interested` (out of scope) lead is looked at again (default 12 months).
    pub recheck_after: crate::domain::cadence::Span,
}

impl IntentSettings {
    /// The effect of `intent` for a lead of `segment` (its `intents` table first).
    pub fn effect(
        &self,
        intent: crate::domain::intent::Intent,
        segment: Option<&Segment>,
    ) -> crate::domain::intent::IntentEffect {
        segment
            .and_then(|s| s.intents.get(&intent))
            .or_else(|| self.effects.get(&intent))
            .copied()
            .unwrap_or_else(|| intent.default_effect())
    }
}

impl Default for IntentSettings {
    fn default() -> Self {
        use crate::domain::intent::Intent;
        IntentSettings {
            effects: Intent::ALL
                .iter()
                .map(|i| (*i, i.default_effect()))
                .collect(),
            phrases: Vec::new(),
            postpone: crate::domain::cadence::Span::Months(3),
            recheck_after: crate::domain::cadence::Span::Months(12),
        }
    }
}

/// The daemon's HTTP side (unsubscribe, clicks, health, metrics, API).
#[derive(Debug, Clone)]
pub struct HttpSettings {
    pub listen: std::net::SocketAddr,
    /// Base of the links in emails (`https://rewarm.acme.example`), without a trailing slash.
    pub public_url: String,
    /// Env var / credential holding the API's bearer token; the API is off without it.
    pub api_token_env: Option<String>,
    /// Open HTTP connections at most (lowered at start-up to what the file descriptor limit
    /// leaves after the reserve for sending); at the cap the oldest is closed. Default 16,384.
    pub max_connections: usize,
    /// A client must send a request's head within this long — also how long a kept-alive
    /// connection may sit idle; default 10 s.
    pub header_timeout: std::time::Duration,
    /// Reading a request's body and answering it take at most this long; default 30 s.
    pub request_timeout: std::time::Duration,
}

/// `[console]`: the web console served under `/console/` on the HTTP listener
/// (docs/console.md).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsoleSettings {
    /// Off by default: every `/console/…` URL answers 404.
    pub enabled: bool,
    /// How long an emailed sign-in link works (single use); default 15 minutes.
    pub link_lifetime: std::time::Duration,
    /// How long a session lasts after signing in; default 12 hours.
    pub session_lifetime: std::time::Duration,
    /// Sign-in links asked for per address per hour, and ten times that for everyone
    /// together; default 5.
    pub signin_per_hour: u32,
    /// Actions (form POSTs) per signed-in person per minute; default 30.
    pub actions_per_minute: u32,
}

impl Default for ConsoleSettings {
    fn default() -> Self {
        ConsoleSettings {
            enabled: false,
            link_lifetime: std::time::Duration::from_secs(15 * 60),
            session_lifetime: std::time::Duration::from_secs(12 * 3600),
            signin_per_hour: 5,
            actions_per_minute: 30,
        }
    }
}

/// Replies and bounces coming back.
#[derive(Debug, Clone, Default)]
pub struct InboundSettings {
    /// Reply-To of every email: `reply+TOKEN@reply_domain` (when set).
    pub reply_domain: Option<String>,
    /// VERP Return-Path `bounce+TOKEN@bounce_domain` (when set).
    pub bounce_domain: Option<String>,
    /// Soft bounces in a row that suppress an address.
    pub soft_bounce_limit: u32,
    pub imap: Option<ImapSettings>,
    pub webhooks: WebhookSecrets,
    /// The email providers' event webhooks (`POST /events/…`).
    pub events: EventWebhooks,
}

/// How the providers' event webhooks are verified (unset = endpoint off). Mailgun's events are
/// signed with the same key as its inbound routes (`inbound.webhooks.mailgun_signing_key_env`).
#[derive(Debug, Clone, Default)]
pub struct EventWebhooks {
    /// Postmark: env var / credential holding the secret of `/events/postmark`, given as the
    /// basic-auth password or as `?token=` in the webhook's URL.
    pub postmark_token_env: Option<String>,
    /// SendGrid: the Event Webhook's verification key (base64 DER, as SendGrid shows it),
    /// checked when the configuration loads.
    pub sendgrid_public_key: Option<SendGridKey>,
}

/// SendGrid's ECDSA P-256 public key, read from the base64 DER (SubjectPublicKeyInfo) that
/// SendGrid's settings show: the uncompressed point (65 bytes).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SendGridKey(pub Vec<u8>);

/// The reply mailbox the daemon polls.
#[derive(Debug, Clone)]
pub struct ImapSettings {
    pub host: String,
    pub port: u16,
    /// Implicit TLS (imaps, 993); false = plain (tests on loopback only).
    pub tls: bool,
    pub username: String,
    /// Env var / systemd credential holding the password.
    pub password_env: String,
    pub mailbox: String,
    /// Processed messages are moved here; without it they are flagged `\Seen` and `$rewarm`.
    pub processed_mailbox: Option<String>,
    pub poll: std::time::Duration,
    /// Extra trust anchors for the server certificate (a private CA), on top of the built-in
    /// Mozilla roots.
    pub ca_file: Option<CaFile>,
}

/// `inbound.imap.ca_file`: the CA certificates read from a PEM file, at least one.
#[derive(Clone)]
pub struct CaFile {
    path: PathBuf,
    certs: Vec<rustls::pki_types::CertificateDer<'static>>,
}

impl CaFile {
    /// Reads every `CERTIFICATE` section of the PEM file at `path`; an unreadable file, broken
    /// PEM or a file without a certificate is an error (its message names the path).
    pub fn read(path: &Path) -> Result<CaFile, String> {
        use rustls::pki_types::CertificateDer;
        use rustls::pki_types::pem::PemObject;

        let shown = path.display();
        let bytes = std::fs::read(path).map_err(|e| format!("cannot read `{shown}`: {e}"))?;
        let certs = CertificateDer::pem_slice_iter(&bytes)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| format!("`{shown}` is not valid PEM: {e}"))?;
        if certs.is_empty() {
            return Err(format!(
                "`{shown}` holds no PEM certificate (-----BEGIN CERTIFICATE-----)"
            ));
        }
        Ok(CaFile {
            path: path.to_path_buf(),
            certs,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The certificates, in file order (never empty).
    pub fn certs(&self) -> &[rustls::pki_types::CertificateDer<'static>] {
        &self.certs
    }
}

impl std::fmt::Debug for CaFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CaFile")
            .field("path", &self.path)
            .field("certs", &self.certs.len())
            .finish()
    }
}

/// Names of the env vars / credentials that authenticate inbound webhooks (unset = endpoint off).
#[derive(Debug, Clone, Default)]
pub struct WebhookSecrets {
    /// Postmark: the password of the webhook URL's basic auth.
    pub postmark_token_env: Option<String>,
    /// Mailgun: the HTTP webhook signing key (HMAC of timestamp+token).
    pub mailgun_signing_key_env: Option<String>,
    /// SendGrid Inbound Parse: the password of the URL's basic auth.
    pub sendgrid_token_env: Option<String>,
    /// The plain raw-MIME endpoint's bearer token.
    pub raw_token_env: Option<String>,
}

/// What `[scoring.points]` can give points for: a human reply (`reply`), a click, and the
/// other inbound classifications (`auto_reply`, `soft_bounce`, …).
pub fn score_kinds() -> Vec<&'static str> {
    use crate::domain::reply::Classification;
    ["reply", "click"]
        .into_iter()
        .chain(
            Classification::ALL
                .into_iter()
                .filter(|c| *c != Classification::HumanReply)
                .map(Classification::as_str),
        )
        .collect()
}

/// Engagement points per event kind (`reply`, `click`, `auto_reply`, …).
#[derive(Debug, Clone)]
pub struct ScoringSettings {
    pub points: BTreeMap<String, i64>,
    /// How clicks are told from link scanners (`click_grace`, `click_burst`).
    pub clicks: crate::domain::signal::ClickPolicy,
    /// Points halve every this long (`None`: they never fade).
    pub half_life: Option<chrono::Duration>,
}

impl ScoringSettings {
    pub fn points_for(&self, kind: &str) -> i64 {
        self.points.get(kind).copied().unwrap_or(0)
    }
}

/// How sales is told about re-warmed leads.
#[derive(Debug, Clone)]
pub struct NotifySettings {
    /// Email the lead's owner (through the configured transport).
    pub owner_email: bool,
    /// Where owner emails go for leads without an owner.
    pub fallback_email: Option<String>,
    pub webhook: Option<NotifyWebhook>,
    /// When the weekly digest per owner goes out (cron, in `default_timezone`).
    pub digest: Option<CronSpec>,
    /// How a re-warmed lead nobody answered for is chased (`remind_after`, `escalate_after`,
    /// `stale_returns_to_nurture`).
    pub chase: crate::domain::handoff::ChasePolicy,
}

#[derive(Debug, Clone)]
pub struct NotifyWebhook {
    pub url: String,
    /// Env var / credential with the HMAC-SHA256 key of the `X-Rewarm-Signature` header.
    pub secret_env: Option<String>,
    /// `json` (our payload) or `slack` (a `text` payload).
    pub slack: bool,
    /// `webhook_events`: the events posted, without their `lead.` prefix (None: every one of
    /// [`WEBHOOK_EVENTS`]).
    pub events: Option<BTreeSet<String>>,
}

/// Every event the webhook can carry (`"event": "lead.NAME"`), for `notify.webhook_events`.
pub const WEBHOOK_EVENTS: [&str; 19] = [
    "rewarmed",
    "retired",
    "reminder",
    "escalated",
    "call_task",
    "working",
    "won",
    "out_of_scope",
    "paused",
    "resumed",
    "recycled",
    "feedback",
    "enrolled",
    "emailed",
    "replied",
    "postponed",
    "suppressed",
    "restored",
    "reassigned",
];

impl NotifyWebhook {
    /// Whether `event` (`lead.won` or `won`) is posted.
    pub fn wants(&self, event: &str) -> bool {
        let name = event.strip_prefix("lead.").unwrap_or(event);
        self.events.as_ref().is_none_or(|e| e.contains(name))
    }
}

impl NotifySettings {
    /// The webhook, when one is configured and `event` is among its `webhook_events`.
    pub fn webhook_for(&self, event: &str) -> Option<&NotifyWebhook> {
        self.webhook.as_ref().filter(|w| w.wants(event))
    }
}

/// DKIM signing of every message; the private key is read from `key_env`.
#[derive(Debug, Clone)]
pub struct DkimSettings {
    pub domain: String,
    pub selector: String,
    /// Env var / systemd credential holding the key: PKCS#1 PEM for rsa, base64 for ed25519.
    pub key_env: String,
    pub ed25519: bool,
}

/// What the law and mailbox providers require of every email.
#[derive(Debug, Clone)]
pub struct ComplianceSettings {
    /// The sender's postal address, shown in every email (`{{ postal_address }}`).
    pub postal_address: String,
    /// An address for `List-Unsubscribe: <mailto:…>` besides the one-click URL.
    pub unsubscribe_mailto: Option<String>,
    /// A suppression entry that would reach more leads than this (a whole company by a typo)
    /// needs `suppress add --yes`, and `check` warns of one already listed (default 50).
    pub confirm_domain_over: i64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Clone)]
pub struct LogSettings {
    pub format: LogFormat,
    /// A `tracing` filter such as `info` or `rewarm=debug,info`; `RUST_LOG` overrides it.
    pub level: String,
}

#[derive(Debug, Clone)]
pub struct SenderSettings {
    /// `From:` of every email, e.g. `Acme <hello@acme.test>`.
    pub from: lettre::message::Mailbox,
    pub reply_to: Option<lettre::message::Mailbox>,
    /// Domain of generated Message-IDs (default: the From address's domain).
    pub message_id_domain: String,
}

#[derive(Debug, Clone)]
pub enum TransportSettings {
    File { outbox: PathBuf },
    Smtp(SmtpConfig),
    Api(ApiConfig),
}

/// An email provider's HTTP API; the key is read from `key_env` when the transport starts.
#[derive(Debug, Clone)]
pub struct ApiConfig {
    pub provider: ApiProvider,
    pub base_url: Option<String>,
    pub key_env: String,
    pub domain: Option<String>,
    pub message_stream: Option<String>,
    pub batch_size: Option<usize>,
    pub concurrency: Option<usize>,
    pub timeout: Option<std::time::Duration>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ApiProvider {
    Postmark,
    SendGrid,
    Mailgun,
}

/// SMTP settings as configured; the password is read from `password_env` when connecting.
#[derive(Debug, Clone)]
pub struct SmtpConfig {
    pub host: String,
    pub port: u16,
    pub tls: crate::transport::smtp::TlsMode,
    pub username: Option<String>,
    pub password_env: Option<String>,
    pub pool_size: usize,
    pub timeout: std::time::Duration,
    pub hello_name: Option<String>,
}

#[derive(Debug, Clone)]
pub struct SchedulerSettings {
    /// How often the daemon enrols and claims.
    pub tick: std::time::Duration,
    /// Deliveries claimed, rendered, sent and recorded together.
    pub batch_size: usize,
    /// How long a claim is held before another pass may treat its outcome as unknown.
    pub lease: chrono::Duration,
    /// Attempts of a delivery before a transient failure becomes final.
    pub max_attempts: u32,
    /// First retry delay; doubles per attempt, with full jitter.
    pub retry_base: chrono::Duration,
    /// Name of this daemon in claims (default: host name and process id).
    pub worker_id: String,
    /// After SIGTERM, how long sends in flight may go on before they are aborted (those
    /// not started go back to due, those mid-conversation become `unknown`).
    pub shutdown_grace: std::time::Duration,
    /// Deliveries each connection sends between two records (a wave is this many per
    /// connection): a crash leaves at most this many per connection started and unrecorded
    /// (`unknown`); more per wave means fewer commits per message.
    pub wave_depth: usize,
}

/// A campaign: its timing and the template of each step (the last one repeats).
#[derive(Debug, Clone)]
pub struct Campaign {
    pub name: String,
    pub cadence: Cadence,
    /// One per configured step; a call step's is [`CALL_TEMPLATE`].
    pub templates: Vec<String>,
    /// Rewrite links so clicks are recorded (and redirect to the original URL).
    pub track_clicks: bool,
    /// The configured steps (0-based) that are calls, not emails (`kind = "call"`).
    pub calls: BTreeMap<u32, CallStep>,
    /// The campaign a lead enters when it completes this one's last step (a new round of it
    /// if it names itself: an endless long-tail). None: the lead stays `completed`.
    pub then: Option<String>,
    /// What a step reached long after its due time does (`late_after`, `late`).
    pub lateness: crate::domain::cadence::late::Lateness,
}

/// What a delivery row of a call step names as its template.
pub const CALL_TEMPLATE: &str = "call";

/// A campaign step that is a call: the lead gets no email, its owner a call task.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CallStep {
    /// What the caller should say or ask (shown in the task).
    pub note: Option<String>,
}

impl Campaign {
    /// The configured step that step `step` (0-based) is: the last one repeats.
    fn configured(&self, step: u32) -> u32 {
        step.min(self.templates.len().saturating_sub(1) as u32)
    }

    /// The template of step `step` (0-based); the last template repeats.
    pub fn template_for(&self, step: u32) -> &str {
        self.templates
            .get(self.configured(step) as usize)
            .map(String::as_str)
            .unwrap_or(self.name.as_str())
    }

    /// The call of step `step` (0-based), if that step is a call.
    pub fn call_for(&self, step: u32) -> Option<&CallStep> {
        self.calls.get(&self.configured(step))
    }

    /// The templates of the email steps, with their 0-based step.
    pub fn email_templates(&self) -> impl Iterator<Item = (u32, &str)> {
        self.templates
            .iter()
            .enumerate()
            .filter(|(i, _)| !self.calls.contains_key(&(*i as u32)))
            .map(|(i, t)| (i as u32, t.as_str()))
    }
}

impl Settings {
    /// Every secret the configuration names, as (the key naming it, the env var / credential
    /// name), in file order: what the daemon reads at start-up or when a feature is used.
    pub fn named_secrets(&self) -> Vec<(String, String)> {
        let mut out: Vec<(String, String)> = Vec::new();
        let mut add = |key: &str, name: Option<&String>| {
            if let Some(name) = name.filter(|n| !n.is_empty()) {
                out.push((key.to_string(), name.clone()));
            }
        };
        match &self.transport {
            TransportSettings::Smtp(s) => {
                add("transport.smtp.password_env", s.password_env.as_ref())
            }
            TransportSettings::Api(a) => {
                let kind = match a.provider {
                    ApiProvider::Postmark => "transport.postmark.key_env",
                    ApiProvider::SendGrid => "transport.sendgrid.key_env",
                    ApiProvider::Mailgun => "transport.mailgun.key_env",
                };
                add(kind, Some(&a.key_env));
            }
            TransportSettings::File { .. } => {}
        }
        add("http.api_token_env", self.http.api_token_env.as_ref());
        for (id, env) in &self.token_keys {
            add(&format!("tokens.keys[{id}].secret_env"), Some(env));
        }
        add("dkim.key_env", self.dkim.as_ref().map(|d| &d.key_env));
        add(
            "inbound.imap.password_env",
            self.inbound.imap.as_ref().map(|i| &i.password_env),
        );
        let w = &self.inbound.webhooks;
        add(
            "inbound.webhooks.postmark_token_env",
            w.postmark_token_env.as_ref(),
        );
        add(
            "inbound.webhooks.mailgun_signing_key_env",
            w.mailgun_signing_key_env.as_ref(),
        );
        add(
            "inbound.webhooks.sendgrid_token_env",
            w.sendgrid_token_env.as_ref(),
        );
        add("inbound.webhooks.raw_token_env", w.raw_token_env.as_ref());
        add(
            "inbound.events.postmark_token_env",
            self.inbound.events.postmark_token_env.as_ref(),
        );
        add(
            "notify.webhook_secret_env",
            self.notify
                .webhook
                .as_ref()
                .and_then(|w| w.secret_env.as_ref()),
        );
        out
    }

    /// Loads `path`, applies `REWARM__…` environment overrides and validates the result.
    pub fn load(path: &Path) -> Result<Settings, ConfigErrors> {
        let file = path.display().to_string();
        let one = |key: &str, message: String| {
            ConfigErrors(vec![ConfigError {
                file: file.clone(),
                key: key.into(),
                message,
            }])
        };
        if !path.exists() {
            return Err(one("", "config file not found (pass --config FILE)".into()));
        }
        let built = config::Config::builder()
            .add_source(config::File::from(path).format(config::FileFormat::Toml))
            .add_source(
                config::Environment::with_prefix("REWARM")
                    .prefix_separator("__")
                    .separator("__")
                    .try_parsing(true),
            )
            .build()
            .map_err(|e| one("", e.to_string()))?;
        let raw: RawConfig = built
            .try_deserialize()
            .map_err(|e| one(&error_key(&e), e.to_string()))?;
        validate::settings(raw, file)
    }

    /// Parses settings from TOML text (for tests and `check` on snippets); no env overrides.
    pub fn from_toml(text: &str, file: &str) -> Result<Settings, ConfigErrors> {
        let raw: RawConfig = toml_from_str(text).map_err(|message| {
            ConfigErrors(vec![ConfigError {
                file: file.into(),
                key: String::new(),
                message,
            }])
        })?;
        validate::settings(raw, file.to_string())
    }

    /// Every template name any campaign uses.
    pub fn template_names(&self) -> std::collections::BTreeSet<&str> {
        self.campaigns
            .values()
            .flat_map(|c| c.email_templates().map(|(_, t)| t))
            .collect()
    }
}

fn toml_from_str(text: &str) -> Result<RawConfig, String> {
    config::Config::builder()
        .add_source(config::File::from_str(text, config::FileFormat::Toml))
        .build()
        .and_then(|c| c.try_deserialize())
        .map_err(|e| e.to_string())
}

/// The key named in a `config` crate error, when it names one.
fn error_key(e: &config::ConfigError) -> String {
    let text = e.to_string();
    text.split("for key `")
        .nth(1)
        .and_then(|rest| rest.split('`').next())
        .unwrap_or_default()
        .to_string()
}

/// "30s", "5m", "1h" as a std duration (fixed spans only).
pub(crate) fn std_duration(s: &str) -> Result<std::time::Duration, String> {
    chrono_duration(s).and_then(|d| {
        d.to_std()
            .map_err(|_| format!("`{s}` must not be negative"))
    })
}

pub(crate) fn chrono_duration(s: &str) -> Result<chrono::Duration, String> {
    match Span::parse(s).map_err(|e| e.to_string())? {
        Span::Fixed(d) => Ok(d),
        Span::Days(n) => Ok(chrono::Duration::days(n.into())),
        Span::Months(_) => Err(format!("`{s}`: use s, m, h or d here, not months")),
    }
}

fn default_worker_id() -> String {
    let host = std::env::var("HOSTNAME")
        .ok()
        .or_else(|| {
            std::fs::read_to_string("/etc/hostname")
                .ok()
                .map(|h| h.trim().to_string())
        })
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "rewarm".into());
    format!("{host}-{}", std::process::id())
}
