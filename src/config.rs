//! Typed settings: built-in defaults → the TOML config file → `REWARM__SECTION__KEY`
//! environment variables (last wins). `Settings::load` validates everything and reports
//! every problem with the file and the key at fault.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use chrono_tz::Tz;
use serde::Deserialize;

use crate::domain::cadence::{Cadence, CronSpec, Rhythm, SendWindow, Span};
use crate::domain::segment::Segment;

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

// ---------- the file as written ----------

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    #[serde(default = "default_database_url")]
    database_url: String,
    #[serde(default = "default_timezone")]
    default_timezone: String,
    #[serde(default = "default_templates_dir")]
    templates_dir: PathBuf,
    #[serde(default)]
    log: RawLog,
    sender: RawSender,
    #[serde(default)]
    transport: RawTransport,
    #[serde(default)]
    scheduler: RawScheduler,
    #[serde(default)]
    http: RawHttp,
    #[serde(default)]
    compliance: RawCompliance,
    #[serde(default)]
    tokens: RawTokens,
    dkim: Option<RawDkim>,
    #[serde(default)]
    inbound: RawInbound,
    #[serde(default)]
    scoring: RawScoring,
    #[serde(default)]
    notify: RawNotify,
    #[serde(default)]
    segments: Vec<RawSegment>,
    #[serde(default)]
    campaigns: BTreeMap<String, RawCampaign>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawHttp {
    listen: Option<String>,
    public_url: Option<String>,
    api_token_env: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCompliance {
    postal_address: Option<String>,
    unsubscribe_mailto: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawInbound {
    reply_domain: Option<String>,
    bounce_domain: Option<String>,
    soft_bounce_limit: Option<u32>,
    imap: Option<RawImap>,
    #[serde(default)]
    webhooks: RawWebhooks,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawImap {
    host: String,
    port: Option<u16>,
    #[serde(default = "default_true")]
    tls: bool,
    username: String,
    password_env: String,
    #[serde(default = "default_mailbox")]
    mailbox: String,
    processed_mailbox: Option<String>,
    #[serde(default = "default_poll")]
    poll: String,
    ca_file: Option<PathBuf>,
}
fn default_true() -> bool {
    true
}
fn default_mailbox() -> String {
    "INBOX".into()
}
fn default_poll() -> String {
    "30s".into()
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawWebhooks {
    postmark_token_env: Option<String>,
    mailgun_signing_key_env: Option<String>,
    sendgrid_token_env: Option<String>,
    raw_token_env: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawScoring {
    #[serde(default)]
    points: BTreeMap<String, i64>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawNotify {
    #[serde(default = "default_true")]
    owner_email: bool,
    fallback_email: Option<String>,
    webhook_url: Option<String>,
    webhook_secret_env: Option<String>,
    webhook_format: Option<String>,
    digest_cron: Option<String>,
}

/// Without a `[notify]` section the lead's owner is still emailed (as inside one).
impl Default for RawNotify {
    fn default() -> Self {
        Self {
            owner_email: true,
            fallback_email: None,
            webhook_url: None,
            webhook_secret_env: None,
            webhook_format: None,
            digest_cron: None,
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDkim {
    domain: String,
    selector: String,
    key_env: String,
    #[serde(default = "default_dkim_algorithm")]
    algorithm: String,
}
fn default_dkim_algorithm() -> String {
    "rsa".into()
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTokens {
    #[serde(default)]
    keys: Vec<RawTokenKey>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTokenKey {
    id: String,
    secret_env: String,
}

fn default_database_url() -> String {
    "sqlite://rewarm.db".into()
}
fn default_timezone() -> String {
    "UTC".into()
}
fn default_templates_dir() -> PathBuf {
    "templates".into()
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawLog {
    #[serde(default = "default_log_format")]
    format: String,
    #[serde(default = "default_log_level")]
    level: String,
}
impl Default for RawLog {
    fn default() -> Self {
        Self {
            format: default_log_format(),
            level: default_log_level(),
        }
    }
}
fn default_log_format() -> String {
    "text".into()
}
fn default_log_level() -> String {
    "info".into()
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSender {
    from: String,
    reply_to: Option<String>,
    message_id_domain: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTransport {
    #[serde(default = "default_transport_kind")]
    kind: String,
    #[serde(default = "default_outbox")]
    outbox: PathBuf,
    #[serde(default)]
    smtp: RawSmtp,
    postmark: Option<RawApi>,
    sendgrid: Option<RawApi>,
    mailgun: Option<RawApi>,
    limits: Option<RawLimits>,
}
impl Default for RawTransport {
    fn default() -> Self {
        Self {
            kind: default_transport_kind(),
            outbox: default_outbox(),
            smtp: RawSmtp::default(),
            postmark: None,
            sendgrid: None,
            mailgun: None,
            limits: None,
        }
    }
}

/// `[transport.postmark]`, `[transport.sendgrid]`, `[transport.mailgun]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawApi {
    base_url: Option<String>,
    /// Postmark's server token / the SendGrid or Mailgun API key: the env var or credential name.
    key_env: Option<String>,
    /// Mailgun's sending domain.
    domain: Option<String>,
    /// Postmark's message stream.
    message_stream: Option<String>,
    batch_size: Option<usize>,
    concurrency: Option<usize>,
    timeout: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawLimits {
    per_second: Option<f64>,
    burst: Option<u32>,
    daily_cap: Option<u64>,
    default_domain: Option<RawDomainLimit>,
    #[serde(default)]
    domain: Vec<RawDomainLimit>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDomainLimit {
    #[serde(default)]
    domains: Vec<String>,
    per_second: Option<f64>,
    burst: Option<u32>,
    concurrency: Option<u32>,
}
fn default_transport_kind() -> String {
    "file".into()
}
fn default_outbox() -> PathBuf {
    "outbox".into()
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSmtp {
    #[serde(default = "default_smtp_host")]
    host: String,
    port: Option<u16>,
    #[serde(default = "default_smtp_tls")]
    tls: String,
    username: Option<String>,
    password_env: Option<String>,
    #[serde(default = "default_pool_size")]
    pool_size: usize,
    #[serde(default = "default_smtp_timeout")]
    timeout: String,
    hello_name: Option<String>,
}
impl Default for RawSmtp {
    fn default() -> Self {
        Self {
            host: default_smtp_host(),
            port: None,
            tls: default_smtp_tls(),
            username: None,
            password_env: None,
            pool_size: default_pool_size(),
            timeout: default_smtp_timeout(),
            hello_name: None,
        }
    }
}
fn default_smtp_host() -> String {
    "localhost".into()
}
fn default_smtp_tls() -> String {
    "starttls".into()
}
fn default_pool_size() -> usize {
    8
}
fn default_smtp_timeout() -> String {
    "30s".into()
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawScheduler {
    #[serde(default = "default_tick")]
    tick: String,
    #[serde(default = "default_batch_size")]
    batch_size: usize,
    #[serde(default = "default_lease")]
    lease: String,
    #[serde(default = "default_max_attempts")]
    max_attempts: u32,
    #[serde(default = "default_retry_base")]
    retry_base: String,
    worker_id: Option<String>,
}
impl Default for RawScheduler {
    fn default() -> Self {
        Self {
            tick: default_tick(),
            batch_size: default_batch_size(),
            lease: default_lease(),
            max_attempts: default_max_attempts(),
            retry_base: default_retry_base(),
            worker_id: None,
        }
    }
}
fn default_tick() -> String {
    "30s".into()
}
fn default_batch_size() -> usize {
    500
}
fn default_lease() -> String {
    "10m".into()
}
fn default_max_attempts() -> u32 {
    5
}
fn default_retry_base() -> String {
    "1m".into()
}

/// A value that may be written as one string or as a list of strings.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum OneOrMany {
    One(String),
    Many(Vec<String>),
}
impl OneOrMany {
    fn into_vec(self) -> Vec<String> {
        match self {
            OneOrMany::One(s) => vec![s],
            OneOrMany::Many(v) => v,
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSegment {
    name: String,
    campaign: String,
    lost_reason: Option<OneOrMany>,
    min_age: Option<String>,
    max_age: Option<String>,
    tags: Option<OneOrMany>,
    owner: Option<OneOrMany>,
    #[serde(default)]
    fields: BTreeMap<String, String>,
    /// Engagement score at which a lead of this segment is re-warmed (default 100).
    rewarm_score: Option<i64>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCampaign {
    first_after: String,
    every: Option<String>,
    cron: Option<String>,
    #[serde(default = "default_max_touches")]
    max_touches: u32,
    templates: Option<OneOrMany>,
    send_window: Option<RawWindow>,
    #[serde(default)]
    track_clicks: bool,
}
fn default_max_touches() -> u32 {
    6
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawWindow {
    #[serde(default = "default_window_days")]
    days: String,
    #[serde(default = "default_window_hours")]
    hours: String,
}
fn default_window_days() -> String {
    "Mon-Fri".into()
}
fn default_window_hours() -> String {
    "09:00-17:00".into()
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
    pub scheduler: SchedulerSettings,
    pub http: HttpSettings,
    pub compliance: ComplianceSettings,
    /// Token signing keys as (key id, name of the env var / credential holding it); the first
    /// signs. Empty: a key generated once and kept in the database is used.
    pub token_keys: Vec<(String, String)>,
    pub dkim: Option<DkimSettings>,
    pub inbound: InboundSettings,
    pub scoring: ScoringSettings,
    pub notify: NotifySettings,
    /// In config order: the first that matches a lead wins.
    pub segments: Vec<Segment>,
    pub campaigns: BTreeMap<String, Campaign>,
}

/// The daemon's HTTP side (unsubscribe, clicks, health, metrics, API).
#[derive(Debug, Clone)]
pub struct HttpSettings {
    pub listen: std::net::SocketAddr,
    /// Base of the links in emails (`https://rewarm.acme.example`), without a trailing slash.
    pub public_url: String,
    /// Env var / credential holding the API's bearer token; the API is off without it.
    pub api_token_env: Option<String>,
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
}

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
}

#[derive(Debug, Clone)]
pub struct NotifyWebhook {
    pub url: String,
    /// Env var / credential with the HMAC-SHA256 key of the `X-Rewarm-Signature` header.
    pub secret_env: Option<String>,
    /// `json` (our payload) or `slack` (a `text` payload).
    pub slack: bool,
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
}

/// A campaign: its timing and the template of each step (the last one repeats).
#[derive(Debug, Clone)]
pub struct Campaign {
    pub name: String,
    pub cadence: Cadence,
    pub templates: Vec<String>,
    /// Rewrite links so clicks are recorded (and redirect to the original URL).
    pub track_clicks: bool,
}

impl Campaign {
    /// The template of step `step` (0-based); the last template repeats.
    pub fn template_for(&self, step: u32) -> &str {
        let index = (step as usize).min(self.templates.len().saturating_sub(1));
        self.templates
            .get(index)
            .map(String::as_str)
            .unwrap_or(self.name.as_str())
    }
}

impl Settings {
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
        Self::validate(raw, file)
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
        Self::validate(raw, file.to_string())
    }

    fn validate(raw: RawConfig, file: String) -> Result<Settings, ConfigErrors> {
        let mut errors = Vec::new();
        let mut err = |key: &str, message: String| {
            errors.push(ConfigError {
                file: file.clone(),
                key: key.into(),
                message,
            })
        };

        let default_tz = Tz::from_str(&raw.default_timezone).unwrap_or_else(|_| {
            err(
                "default_timezone",
                format!(
                    "unknown time zone `{}` (use an IANA name like Europe/Paris)",
                    raw.default_timezone
                ),
            );
            Tz::UTC
        });
        if !(raw.database_url.starts_with("sqlite:")
            || raw.database_url.starts_with("postgres:")
            || raw.database_url.starts_with("postgresql:"))
        {
            err(
                "database_url",
                format!(
                    "`{}` is neither sqlite://… nor postgres://…",
                    raw.database_url
                ),
            );
        }

        let log = LogSettings {
            format: match raw.log.format.as_str() {
                "text" => LogFormat::Text,
                "json" => LogFormat::Json,
                other => {
                    err(
                        "log.format",
                        format!("`{other}` is not a log format (text or json)"),
                    );
                    LogFormat::Text
                }
            },
            level: raw.log.level,
        };

        let from = raw
            .sender
            .from
            .parse::<lettre::message::Mailbox>()
            .unwrap_or_else(|e| {
                err(
                    "sender.from",
                    format!(
                        "`{}` is not a mailbox ({e}); write `Name <address@domain>`",
                        raw.sender.from
                    ),
                );
                lettre::message::Mailbox::new(
                    None,
                    lettre::Address::new("invalid", "invalid.invalid")
                        .expect("a constant valid address"),
                )
            });
        let reply_to = raw
            .sender
            .reply_to
            .as_deref()
            .and_then(|r| match r.parse() {
                Ok(m) => Some(m),
                Err(e) => {
                    err("sender.reply_to", format!("`{r}` is not a mailbox ({e})"));
                    None
                }
            });
        let message_id_domain = raw
            .sender
            .message_id_domain
            .unwrap_or_else(|| from.email.domain().to_string());
        let sender = SenderSettings {
            from,
            reply_to,
            message_id_domain,
        };

        let transport = match raw.transport.kind.as_str() {
            "file" => TransportSettings::File {
                outbox: raw.transport.outbox,
            },
            "smtp" => {
                let s = raw.transport.smtp;
                let tls = s.tls.parse().unwrap_or_else(|e| {
                    err("transport.smtp.tls", format!("{e}"));
                    crate::transport::smtp::TlsMode::None
                });
                let port = s.port.unwrap_or(match tls {
                    crate::transport::smtp::TlsMode::Tls => 465,
                    crate::transport::smtp::TlsMode::StartTls => 587,
                    crate::transport::smtp::TlsMode::None => 25,
                });
                if s.pool_size == 0 {
                    err("transport.smtp.pool_size", "must be at least 1".into());
                }
                if s.username.is_some() != s.password_env.is_some() {
                    err("transport.smtp.password_env", "set both `username` and `password_env` (the name of the environment variable or systemd credential holding the password), or neither".into());
                }
                let timeout = std_duration(&s.timeout).unwrap_or_else(|e| {
                    err("transport.smtp.timeout", e);
                    std::time::Duration::from_secs(30)
                });
                TransportSettings::Smtp(SmtpConfig {
                    host: s.host,
                    port,
                    tls,
                    username: s.username,
                    password_env: s.password_env,
                    pool_size: s.pool_size.max(1),
                    timeout,
                    hello_name: s.hello_name,
                })
            }
            kind @ ("postmark" | "sendgrid" | "mailgun") => {
                let provider = match kind {
                    "postmark" => ApiProvider::Postmark,
                    "sendgrid" => ApiProvider::SendGrid,
                    _ => ApiProvider::Mailgun,
                };
                let section = match provider {
                    ApiProvider::Postmark => raw.transport.postmark,
                    ApiProvider::SendGrid => raw.transport.sendgrid,
                    ApiProvider::Mailgun => raw.transport.mailgun,
                }
                .unwrap_or_default();
                let key = |k: &str| format!("transport.{kind}.{k}");
                let key_env = section.key_env.unwrap_or_else(|| {
                    err(&key("key_env"), "required: the name of the environment variable or systemd credential holding the API key".into());
                    String::new()
                });
                if provider == ApiProvider::Mailgun && section.domain.is_none() {
                    err(
                        &key("domain"),
                        "required: the sending domain set up in Mailgun".into(),
                    );
                }
                if let Some(url) = &section.base_url {
                    if !(url.starts_with("https://") || url.starts_with("http://")) {
                        err(
                            &key("base_url"),
                            format!(
                                "`{url}` must start with https:// (or http:// for a local test server)"
                            ),
                        );
                    }
                }
                let timeout = section
                    .timeout
                    .as_deref()
                    .map(std_duration)
                    .transpose()
                    .unwrap_or_else(|e| {
                        err(&key("timeout"), e);
                        None
                    });
                TransportSettings::Api(ApiConfig {
                    provider,
                    base_url: section.base_url,
                    key_env,
                    domain: section.domain,
                    message_stream: section.message_stream,
                    batch_size: section.batch_size,
                    concurrency: section.concurrency,
                    timeout,
                })
            }
            other => {
                err(
                    "transport.kind",
                    format!(
                        "`{other}` is not a transport (file, smtp, postmark, sendgrid or mailgun)"
                    ),
                );
                TransportSettings::File {
                    outbox: raw.transport.outbox,
                }
            }
        };
        let limits = raw.transport.limits.map(|l| {
            let mut settings = crate::transport::limits::LimitSettings {
                per_second: l.per_second,
                burst: l.burst,
                daily_cap: l.daily_cap,
                ..Default::default()
            };
            let domain_limit = |d: &RawDomainLimit| {
                let base = crate::transport::limits::DomainLimit::default();
                crate::transport::limits::DomainLimit {
                    per_second: d.per_second.unwrap_or(base.per_second),
                    burst: d.burst.unwrap_or(base.burst),
                    concurrency: d.concurrency.unwrap_or(base.concurrency),
                }
            };
            if let Some(d) = &l.default_domain {
                settings.default_domain = domain_limit(d);
            }
            for (i, d) in l.domain.iter().enumerate() {
                let Some((first, rest)) = d.domains.split_first() else {
                    err(
                        &format!("transport.limits.domain[{i}].domains"),
                        "list at least one domain".into(),
                    );
                    continue;
                };
                let first = first.trim().to_ascii_lowercase();
                settings.domains.insert(first.clone(), domain_limit(d));
                for alias in rest {
                    settings
                        .aliases
                        .insert(alias.trim().to_ascii_lowercase(), first.clone());
                }
            }
            for (k, message) in settings.problems() {
                err(&format!("transport.limits.{k}"), message);
            }
            settings
        });

        let sched = raw.scheduler;
        let tick = std_duration(&sched.tick).unwrap_or_else(|e| {
            err("scheduler.tick", e);
            std::time::Duration::from_secs(30)
        });
        let lease = chrono_duration(&sched.lease).unwrap_or_else(|e| {
            err("scheduler.lease", e);
            chrono::Duration::minutes(10)
        });
        let retry_base = chrono_duration(&sched.retry_base).unwrap_or_else(|e| {
            err("scheduler.retry_base", e);
            chrono::Duration::minutes(1)
        });
        if sched.batch_size == 0 {
            err("scheduler.batch_size", "must be at least 1".into());
        }
        if sched.max_attempts == 0 {
            err("scheduler.max_attempts", "must be at least 1".into());
        }
        let worker_id = sched.worker_id.unwrap_or_else(default_worker_id);
        let scheduler = SchedulerSettings {
            tick,
            batch_size: sched.batch_size.max(1),
            lease,
            max_attempts: sched.max_attempts.max(1),
            retry_base,
            worker_id,
        };

        let listen_text = raw.http.listen.unwrap_or_else(|| "127.0.0.1:8080".into());
        let listen = listen_text
            .parse::<std::net::SocketAddr>()
            .unwrap_or_else(|_| {
                err(
                    "http.listen",
                    format!("`{listen_text}` is not an address:port like 127.0.0.1:8080"),
                );
                std::net::SocketAddr::from(([127, 0, 0, 1], 8080))
            });
        let public_url = raw
            .http
            .public_url
            .unwrap_or_else(|| format!("http://{listen}"))
            .trim_end_matches('/')
            .to_string();
        if !(public_url.starts_with("http://") || public_url.starts_with("https://")) {
            err(
                "http.public_url",
                format!("`{public_url}` must start with http:// or https://"),
            );
        }
        let http = HttpSettings {
            listen,
            public_url,
            api_token_env: raw.http.api_token_env,
        };

        let postal_address = raw
            .compliance
            .postal_address
            .map(|a| a.trim().to_string())
            .unwrap_or_default();
        if postal_address.is_empty() {
            err("compliance.postal_address", "required: the sender's postal address, shown in every email (templates use {{ postal_address }})".into());
        }
        let unsubscribe_mailto = raw.compliance.unsubscribe_mailto.and_then(|m| {
            match crate::domain::email::EmailAddress::parse(&m) {
                Ok(a) => Some(a.to_string()),
                Err(e) => {
                    err("compliance.unsubscribe_mailto", e.to_string());
                    None
                }
            }
        });
        let compliance = ComplianceSettings {
            postal_address,
            unsubscribe_mailto,
        };

        let mut token_keys = Vec::new();
        for (i, k) in raw.tokens.keys.into_iter().enumerate() {
            if k.id.is_empty()
                || k.id.len() > 16
                || !k.id.chars().all(|c| c.is_ascii_alphanumeric())
            {
                err(
                    &format!("tokens.keys[{i}].id"),
                    format!("`{}` must be 1 to 16 letters or digits", k.id),
                );
            }
            token_keys.push((k.id, k.secret_env));
        }

        let dkim = raw.dkim.map(|d| {
            let ed25519 = match d.algorithm.as_str() {
                "rsa" => false,
                "ed25519" => true,
                other => {
                    err("dkim.algorithm", format!("`{other}` is not rsa or ed25519"));
                    false
                }
            };
            DkimSettings {
                domain: d.domain,
                selector: d.selector,
                key_env: d.key_env,
                ed25519,
            }
        });

        let ri = raw.inbound;
        let imap = ri.imap.map(|i| {
            let poll = std_duration(&i.poll).unwrap_or_else(|e| {
                err("inbound.imap.poll", e);
                std::time::Duration::from_secs(30)
            });
            let ca_file = i.ca_file.and_then(|path| {
                CaFile::read(&path)
                    .map_err(|e| err("inbound.imap.ca_file", e))
                    .ok()
            });
            ImapSettings {
                port: i.port.unwrap_or(if i.tls { 993 } else { 143 }),
                host: i.host,
                tls: i.tls,
                username: i.username,
                password_env: i.password_env,
                mailbox: i.mailbox,
                processed_mailbox: i.processed_mailbox,
                poll,
                ca_file,
            }
        });
        for (key, domain) in [
            ("inbound.reply_domain", &ri.reply_domain),
            ("inbound.bounce_domain", &ri.bounce_domain),
        ] {
            if let Some(d) = domain {
                if !d.contains('.') || d.contains(['@', ' ']) {
                    err(key, format!("`{d}` is not a domain"));
                }
            }
        }
        let inbound = InboundSettings {
            reply_domain: ri.reply_domain.map(|d| d.to_ascii_lowercase()),
            bounce_domain: ri.bounce_domain.map(|d| d.to_ascii_lowercase()),
            soft_bounce_limit: ri.soft_bounce_limit.unwrap_or(3).max(1),
            imap,
            webhooks: WebhookSecrets {
                postmark_token_env: ri.webhooks.postmark_token_env,
                mailgun_signing_key_env: ri.webhooks.mailgun_signing_key_env,
                sendgrid_token_env: ri.webhooks.sendgrid_token_env,
                raw_token_env: ri.webhooks.raw_token_env,
            },
        };
        let mut points: BTreeMap<String, i64> = [("reply", 100), ("click", 10), ("auto_reply", 0)]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v))
            .collect();
        let kinds = score_kinds();
        for kind in raw.scoring.points.keys() {
            if !kinds.contains(&kind.as_str()) {
                err(
                    &format!("scoring.points.{kind}"),
                    format!(
                        "unknown engagement kind `{kind}` (known: {})",
                        kinds.join(", ")
                    ),
                );
            }
        }
        points.extend(raw.scoring.points);
        let scoring = ScoringSettings { points };
        let rn = raw.notify;
        let notify = NotifySettings {
            owner_email: rn.owner_email,
            fallback_email: rn.fallback_email.and_then(|e| {
                match crate::domain::email::EmailAddress::parse(&e) {
                    Ok(a) => Some(a.to_string()),
                    Err(error) => {
                        err("notify.fallback_email", error.to_string());
                        None
                    }
                }
            }),
            webhook: rn.webhook_url.map(|url| {
                if !(url.starts_with("https://") || url.starts_with("http://")) {
                    err(
                        "notify.webhook_url",
                        format!("`{url}` must start with https:// or http://"),
                    );
                }
                let slack = match rn.webhook_format.as_deref().unwrap_or("json") {
                    "json" => false,
                    "slack" => true,
                    other => {
                        err(
                            "notify.webhook_format",
                            format!("`{other}` is not json or slack"),
                        );
                        false
                    }
                };
                NotifyWebhook {
                    url,
                    secret_env: rn.webhook_secret_env,
                    slack,
                }
            }),
            digest: rn.digest_cron.and_then(|c| match CronSpec::parse(&c) {
                Ok(spec) => Some(spec),
                Err(e) => {
                    err("notify.digest_cron", e.to_string());
                    None
                }
            }),
        };

        let mut campaigns = BTreeMap::new();
        for (name, c) in raw.campaigns {
            let key = |k: &str| format!("campaigns.{name}.{k}");
            let first_after = Span::parse(&c.first_after).unwrap_or_else(|e| {
                err(&key("first_after"), e.to_string());
                Span::Days(0)
            });
            let rhythm = match (c.every, c.cron) {
                (Some(every), None) => Rhythm::Every(match Span::parse(&every) {
                    // A zero rhythm would send every remaining step at once.
                    Ok(span) if span.is_zero() => {
                        err(&key("every"), format!("`{every}` must be longer than zero"));
                        Span::Days(30)
                    }
                    Ok(span) => span,
                    Err(e) => {
                        err(&key("every"), e.to_string());
                        Span::Days(30)
                    }
                }),
                (None, Some(cron)) => match CronSpec::parse(&cron) {
                    Ok(spec) => Rhythm::Cron(spec),
                    Err(e) => {
                        err(&key("cron"), e.to_string());
                        Rhythm::Every(Span::Days(30))
                    }
                },
                (Some(_), Some(_)) => {
                    err(
                        &key("cron"),
                        "set either `every` or `cron`, not both".into(),
                    );
                    Rhythm::Every(Span::Days(30))
                }
                (None, None) if c.max_touches > 1 => {
                    err(
                        &key("every"),
                        "missing: set `every` (e.g. \"30d\") or `cron` (e.g. \"0 10 1 * *\")"
                            .into(),
                    );
                    Rhythm::Every(Span::Days(30))
                }
                (None, None) => Rhythm::Every(Span::Days(30)),
            };
            if c.max_touches == 0 {
                err(&key("max_touches"), "must be at least 1".into());
            }
            let window = match c.send_window {
                None => SendWindow::office_hours(),
                Some(w) => SendWindow::parse(&w.days, &w.hours).unwrap_or_else(|e| {
                    err(&key("send_window"), e.to_string());
                    SendWindow::office_hours()
                }),
            };
            let templates = c
                .templates
                .map(OneOrMany::into_vec)
                .unwrap_or_else(|| vec![name.clone()]);
            if templates.is_empty() {
                err(&key("templates"), "list at least one template".into());
            }
            let cadence = Cadence {
                first_after,
                rhythm,
                max_touches: c.max_touches.max(1),
                window,
            };
            campaigns.insert(
                name.clone(),
                Campaign {
                    name,
                    cadence,
                    templates,
                    track_clicks: c.track_clicks,
                },
            );
        }

        let mut segments = Vec::new();
        let mut seen = std::collections::BTreeSet::new();
        for (i, s) in raw.segments.into_iter().enumerate() {
            let key = |k: &str| format!("segments[{i}].{k} ({})", s.name);
            if !seen.insert(s.name.clone()) {
                err(
                    &key("name"),
                    format!("segment `{}` is defined twice", s.name),
                );
            }
            if !campaigns.contains_key(&s.campaign) {
                let known: Vec<_> = campaigns.keys().cloned().collect();
                err(
                    &key("campaign"),
                    format!(
                        "campaign `{}` is not defined (defined: {})",
                        s.campaign,
                        known.join(", ")
                    ),
                );
            }
            let span = |k: &str, v: &Option<String>, errs: &mut dyn FnMut(&str, String)| {
                v.as_deref().and_then(|v| match Span::parse(v) {
                    Ok(span) => Some(span),
                    Err(e) => {
                        errs(&key(k), e.to_string());
                        None
                    }
                })
            };
            let min_age = span("min_age", &s.min_age, &mut err);
            let max_age = span("max_age", &s.max_age, &mut err);
            segments.push(Segment {
                name: s.name.clone(),
                campaign: s.campaign.clone(),
                lost_reasons: s.lost_reason.map(OneOrMany::into_vec).unwrap_or_default(),
                min_age,
                max_age,
                tags: s.tags.map(OneOrMany::into_vec).unwrap_or_default(),
                owners: s.owner.map(OneOrMany::into_vec).unwrap_or_default(),
                fields: s.fields,
                rewarm_score: s.rewarm_score.unwrap_or(100),
            });
        }
        if segments.is_empty() {
            err(
                "segments",
                "no segment is defined: no lead would ever be enrolled".into(),
            );
        }

        if !errors.is_empty() {
            return Err(ConfigErrors(errors));
        }
        Ok(Settings {
            file: PathBuf::from(file),
            database_url: raw.database_url,
            default_tz,
            templates_dir: raw.templates_dir,
            log,
            sender,
            transport,
            limits,
            scheduler,
            http,
            compliance,
            token_keys,
            dkim,
            inbound,
            scoring,
            notify,
            segments,
            campaigns,
        })
    }

    /// Every template name any campaign uses.
    pub fn template_names(&self) -> std::collections::BTreeSet<&str> {
        self.campaigns
            .values()
            .flat_map(|c| c.templates.iter().map(String::as_str))
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
fn std_duration(s: &str) -> Result<std::time::Duration, String> {
    chrono_duration(s).and_then(|d| {
        d.to_std()
            .map_err(|_| format!("`{s}` must not be negative"))
    })
}

fn chrono_duration(s: &str) -> Result<chrono::Duration, String> {
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
