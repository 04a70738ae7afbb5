//! The config file as written: serde shapes that mirror the TOML, with the built-in defaults.
//! Nothing here is checked beyond types (unknown keys are refused); `validate` turns these into
//! [`Settings`](super::Settings) and reports every problem with its key.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::Deserialize;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawConfig {
    #[serde(default = "default_database_url")]
    pub(super) database_url: String,
    #[serde(default = "default_timezone")]
    pub(super) default_timezone: String,
    #[serde(default = "default_templates_dir")]
    pub(super) templates_dir: PathBuf,
    #[serde(default)]
    pub(super) log: RawLog,
    pub(super) sender: RawSender,
    #[serde(default)]
    pub(super) transport: RawTransport,
    #[serde(default)]
    pub(super) scheduler: RawScheduler,
    #[serde(default)]
    pub(super) http: RawHttp,
    #[serde(default)]
    pub(super) console: RawConsole,
    #[serde(default)]
    pub(super) ingest: RawIngest,
    #[serde(default)]
    pub(super) import: RawImport,
    #[serde(default)]
    pub(super) compliance: RawCompliance,
    #[serde(default)]
    pub(super) tokens: RawTokens,
    pub(super) dkim: Option<RawDkim>,
    #[serde(default)]
    pub(super) inbound: RawInbound,
    #[serde(default)]
    pub(super) scoring: RawScoring,
    #[serde(default)]
    pub(super) notify: RawNotify,
    #[serde(default)]
    pub(super) intents: RawIntents,
    #[serde(default)]
    pub(super) segments: Vec<RawSegment>,
    #[serde(default)]
    pub(super) campaigns: BTreeMap<String, RawCampaign>,
    /// `.ics` files whose all-day events close days for every campaign.
    #[serde(default)]
    pub(super) calendars: Vec<PathBuf>,
    /// `[[blackouts]]`: company-wide ranges of days without email.
    #[serde(default)]
    pub(super) blackouts: Vec<RawBlackout>,
}

/// One `[[blackouts]]` entry: `from`/`to` as `MM-DD` (every year) or `YYYY-MM-DD` (once),
/// both included; `campaigns` limits it to those campaigns (default: all).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawBlackout {
    pub(super) name: Option<String>,
    pub(super) from: String,
    pub(super) to: String,
    pub(super) campaigns: Option<Vec<String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawHttp {
    pub(super) listen: Option<String>,
    pub(super) public_url: Option<String>,
    pub(super) api_token_env: Option<String>,
    pub(super) max_connections: Option<usize>,
    pub(super) header_timeout: Option<String>,
    pub(super) request_timeout: Option<String>,
}

/// `[console]`: the web console (off unless `enabled`).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawConsole {
    pub(super) enabled: Option<bool>,
    pub(super) link_lifetime: Option<String>,
    pub(super) session_lifetime: Option<String>,
    pub(super) signin_per_hour: Option<u32>,
    pub(super) actions_per_minute: Option<u32>,
}

/// `[ingest]`: limits on leads coming in (files and the API).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawIngest {
    pub(super) max_field_length: Option<usize>,
}

/// `[import]`: CRM header mapping and the quality rules of imports.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawImport {
    #[serde(default)]
    pub(super) columns: BTreeMap<String, String>,
    pub(super) role_addresses: Option<String>,
    pub(super) disposable_addresses: Option<String>,
    #[serde(default)]
    pub(super) disposable_domains: Vec<String>,
    pub(super) owner_conflict: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawCompliance {
    pub(super) postal_address: Option<String>,
    pub(super) unsubscribe_mailto: Option<String>,
    /// `suppress add @domain` asks for `--yes` (and `check` warns) above this many leads.
    pub(super) confirm_domain_over: Option<i64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawInbound {
    pub(super) reply_domain: Option<String>,
    pub(super) bounce_domain: Option<String>,
    pub(super) soft_bounce_limit: Option<u32>,
    pub(super) imap: Option<RawImap>,
    #[serde(default)]
    pub(super) webhooks: RawWebhooks,
    #[serde(default)]
    pub(super) events: RawEvents,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawEvents {
    pub(super) postmark_token_env: Option<String>,
    pub(super) sendgrid_public_key: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawImap {
    pub(super) host: String,
    pub(super) port: Option<u16>,
    #[serde(default = "default_true")]
    pub(super) tls: bool,
    pub(super) username: String,
    pub(super) password_env: String,
    #[serde(default = "default_mailbox")]
    pub(super) mailbox: String,
    pub(super) processed_mailbox: Option<String>,
    #[serde(default = "default_poll")]
    pub(super) poll: String,
    pub(super) ca_file: Option<PathBuf>,
}
pub(super) fn default_true() -> bool {
    true
}
pub(super) fn default_mailbox() -> String {
    "INBOX".into()
}
pub(super) fn default_poll() -> String {
    "30s".into()
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawWebhooks {
    pub(super) postmark_token_env: Option<String>,
    pub(super) mailgun_signing_key_env: Option<String>,
    pub(super) sendgrid_token_env: Option<String>,
    pub(super) raw_token_env: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawScoring {
    #[serde(default)]
    pub(super) points: BTreeMap<String, i64>,
    /// A click this soon after its email went out is a link scanner's ("60s").
    pub(super) click_grace: Option<String>,
    /// Clicks on different links of one email this close together are one machine ("10s").
    pub(super) click_burst: Option<String>,
    /// Engagement points halve every this long ("30d"; "0d" = never).
    pub(super) half_life: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawNotify {
    #[serde(default = "default_true")]
    pub(super) owner_email: bool,
    pub(super) fallback_email: Option<String>,
    pub(super) webhook_url: Option<String>,
    pub(super) webhook_secret_env: Option<String>,
    pub(super) webhook_format: Option<String>,
    /// The events the webhook carries (default: all).
    pub(super) webhook_events: Option<Vec<String>>,
    pub(super) digest_cron: Option<String>,
    pub(super) remind_after: Option<String>,
    pub(super) escalate_after: Option<String>,
    #[serde(default)]
    pub(super) stale_returns_to_nurture: bool,
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
            webhook_events: None,
            digest_cron: None,
            remind_after: None,
            escalate_after: None,
            stale_returns_to_nurture: false,
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawDkim {
    pub(super) domain: String,
    pub(super) selector: String,
    pub(super) key_env: String,
    #[serde(default = "default_dkim_algorithm")]
    pub(super) algorithm: String,
}
pub(super) fn default_dkim_algorithm() -> String {
    "rsa".into()
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawTokens {
    #[serde(default)]
    pub(super) keys: Vec<RawTokenKey>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawTokenKey {
    pub(super) id: String,
    pub(super) secret_env: String,
}

pub(super) fn default_database_url() -> String {
    "sqlite://rewarm.db".into()
}
pub(super) fn default_timezone() -> String {
    "UTC".into()
}
pub(super) fn default_templates_dir() -> PathBuf {
    "templates".into()
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawLog {
    #[serde(default = "default_log_format")]
    pub(super) format: String,
    #[serde(default = "default_log_level")]
    pub(super) level: String,
}
impl Default for RawLog {
    fn default() -> Self {
        Self {
            format: default_log_format(),
            level: default_log_level(),
        }
    }
}
pub(super) fn default_log_format() -> String {
    "text".into()
}
pub(super) fn default_log_level() -> String {
    "info".into()
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawSender {
    pub(super) from: String,
    pub(super) reply_to: Option<String>,
    pub(super) message_id_domain: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawTransport {
    #[serde(default = "default_transport_kind")]
    pub(super) kind: String,
    #[serde(default = "default_outbox")]
    pub(super) outbox: PathBuf,
    #[serde(default)]
    pub(super) smtp: RawSmtp,
    pub(super) postmark: Option<RawApi>,
    pub(super) sendgrid: Option<RawApi>,
    pub(super) mailgun: Option<RawApi>,
    pub(super) limits: Option<RawLimits>,
    #[serde(default)]
    pub(super) breaker: RawBreaker,
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
            breaker: RawBreaker::default(),
        }
    }
}

/// `[transport.postmark]`, `[transport.sendgrid]`, `[transport.mailgun]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawApi {
    pub(super) base_url: Option<String>,
    /// Postmark's server token / the SendGrid or Mailgun API key: the env var or credential name.
    pub(super) key_env: Option<String>,
    /// Mailgun's sending domain.
    pub(super) domain: Option<String>,
    /// Postmark's message stream.
    pub(super) message_stream: Option<String>,
    pub(super) batch_size: Option<usize>,
    pub(super) concurrency: Option<usize>,
    pub(super) timeout: Option<String>,
}

/// `[transport.breaker]`: when a failing transport is paused and how it is probed.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawBreaker {
    pub(super) threshold: Option<u32>,
    pub(super) probe_after: Option<String>,
    pub(super) probe_max: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawLimits {
    pub(super) per_second: Option<f64>,
    pub(super) burst: Option<u32>,
    pub(super) daily_cap: Option<u64>,
    pub(super) default_domain: Option<RawDomainLimit>,
    #[serde(default)]
    pub(super) domain: Vec<RawDomainLimit>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawDomainLimit {
    #[serde(default)]
    pub(super) domains: Vec<String>,
    pub(super) per_second: Option<f64>,
    pub(super) burst: Option<u32>,
    pub(super) concurrency: Option<u32>,
    /// The domain's budget: messages in any rolling 24 hours (kept in the database).
    pub(super) daily_cap: Option<u64>,
}
pub(super) fn default_transport_kind() -> String {
    "file".into()
}
pub(super) fn default_outbox() -> PathBuf {
    "outbox".into()
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawSmtp {
    #[serde(default = "default_smtp_host")]
    pub(super) host: String,
    pub(super) port: Option<u16>,
    #[serde(default = "default_smtp_tls")]
    pub(super) tls: String,
    pub(super) username: Option<String>,
    pub(super) password_env: Option<String>,
    #[serde(default = "default_pool_size")]
    pub(super) pool_size: usize,
    #[serde(default = "default_smtp_timeout")]
    pub(super) timeout: String,
    pub(super) hello_name: Option<String>,
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
pub(super) fn default_smtp_host() -> String {
    "localhost".into()
}
pub(super) fn default_smtp_tls() -> String {
    "starttls".into()
}
pub(super) fn default_pool_size() -> usize {
    8
}
pub(super) fn default_smtp_timeout() -> String {
    "30s".into()
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawScheduler {
    #[serde(default = "default_tick")]
    pub(super) tick: String,
    #[serde(default = "default_batch_size")]
    pub(super) batch_size: usize,
    #[serde(default = "default_lease")]
    pub(super) lease: String,
    #[serde(default = "default_max_attempts")]
    pub(super) max_attempts: u32,
    #[serde(default = "default_retry_base")]
    pub(super) retry_base: String,
    pub(super) worker_id: Option<String>,
    #[serde(default = "default_shutdown_grace")]
    pub(super) shutdown_grace: String,
    #[serde(default = "default_wave_depth")]
    pub(super) wave_depth: usize,
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
            shutdown_grace: default_shutdown_grace(),
            wave_depth: default_wave_depth(),
        }
    }
}
pub(super) fn default_wave_depth() -> usize {
    1
}
pub(super) fn default_shutdown_grace() -> String {
    "20s".into()
}
pub(super) fn default_tick() -> String {
    "30s".into()
}
pub(super) fn default_batch_size() -> usize {
    500
}
pub(super) fn default_lease() -> String {
    "10m".into()
}
pub(super) fn default_max_attempts() -> u32 {
    5
}
pub(super) fn default_retry_base() -> String {
    "1m".into()
}

/// A value that may be written as one string or as a list of strings.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub(super) enum OneOrMany {
    One(String),
    Many(Vec<String>),
}
impl OneOrMany {
    pub(super) fn into_vec(self) -> Vec<String> {
        match self {
            OneOrMany::One(s) => vec![s],
            OneOrMany::Many(v) => v,
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawSegment {
    pub(super) name: String,
    pub(super) campaign: String,
    pub(super) lost_reason: Option<OneOrMany>,
    pub(super) min_age: Option<String>,
    pub(super) max_age: Option<String>,
    pub(super) tags: Option<OneOrMany>,
    pub(super) owner: Option<OneOrMany>,
    #[serde(default)]
    pub(super) fields: BTreeMap<String, String>,
    /// Engagement score at which a lead of this segment is re-warmed (default 100).
    pub(super) rewarm_score: Option<i64>,
    /// What a reply's intent does to a lead of this segment (intent name → effect name),
    /// over `[intents.NAME] effect`.
    #[serde(default)]
    pub(super) intents: BTreeMap<String, String>,
    /// A lead already emailed whose data changes so that another segment matches: "stay"
    /// (default) or "move".
    pub(super) on_change: Option<String>,
}

/// `[intents]`: what human replies' intents do (see docs/replies.md).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawIntents {
    /// How long a `later` reply that names no moment postpones the cadence ("3mo").
    pub(super) postpone: Option<String>,
    /// When an out-of-scope (`not_interested`) lead is looked at again ("12mo").
    pub(super) recheck_after: Option<String>,
    pub(super) interested: Option<RawIntent>,
    pub(super) question: Option<RawIntent>,
    pub(super) later: Option<RawIntent>,
    pub(super) not_interested: Option<RawIntent>,
    pub(super) left_company: Option<RawIntent>,
    pub(super) wrong_person: Option<RawIntent>,
    pub(super) unclear: Option<RawIntent>,
}

/// `[intents.NAME]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawIntent {
    pub(super) effect: Option<String>,
    #[serde(default)]
    pub(super) phrases: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawCampaign {
    pub(super) first_after: String,
    pub(super) every: Option<String>,
    pub(super) cron: Option<String>,
    #[serde(default = "default_max_touches")]
    pub(super) max_touches: u32,
    pub(super) templates: Option<OneOrMany>,
    /// Instead of `templates`: one entry per step, an email (`template`) or a call task.
    pub(super) steps: Option<Vec<RawStep>>,
    pub(super) send_window: Option<RawWindow>,
    #[serde(default)]
    pub(super) track_clicks: bool,
    /// The campaign a lead enters after this one's last step.
    pub(super) then: Option<String>,
    /// A step reached more than this after its due time is late ("2d"; unset: never).
    pub(super) late_after: Option<String>,
    /// What a late step does: "send", "skip" or "shift" (default).
    pub(super) late: Option<String>,
    /// Skip the public holidays of the lead's country.
    #[serde(default)]
    pub(super) skip_holidays: bool,
    /// Skip Saturdays and Sundays whatever the send window says.
    #[serde(default)]
    pub(super) business_days_only: bool,
}

/// One `[[campaigns.NAME.steps]]` entry: `kind = "email"` (default) with `template`, or
/// `kind = "call"` with an optional `note` for the caller.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawStep {
    pub(super) kind: Option<String>,
    pub(super) template: Option<String>,
    pub(super) note: Option<String>,
}
pub(super) fn default_max_touches() -> u32 {
    6
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawWindow {
    #[serde(default = "default_window_days")]
    pub(super) days: String,
    #[serde(default = "default_window_hours")]
    pub(super) hours: String,
}
pub(super) fn default_window_days() -> String {
    "Mon-Fri".into()
}
pub(super) fn default_window_hours() -> String {
    "09:00-17:00".into()
}
