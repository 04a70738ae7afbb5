//! `[notify]`: how sales is told about re-warmed leads (owner email, webhook, digest).

use crate::config::raw::RawNotify;
use std::collections::BTreeSet;

use crate::config::{NotifySettings, NotifyWebhook, Problems, WEBHOOK_EVENTS};
use crate::domain::cadence::{CronSpec, Span};
use crate::domain::handoff::ChasePolicy;

pub(super) fn notify(rn: RawNotify, p: &mut Problems) -> NotifySettings {
    NotifySettings {
        owner_email: rn.owner_email,
        fallback_email: rn.fallback_email.and_then(|e| {
            match crate::domain::email::EmailAddress::parse(&e) {
                Ok(a) => Some(a.to_string()),
                Err(error) => {
                    p.err("notify.fallback_email", error.to_string());
                    None
                }
            }
        }),
        webhook: rn.webhook_url.map(|url| {
            if !(url.starts_with("https://") || url.starts_with("http://")) {
                p.err(
                    "notify.webhook_url",
                    format!("`{url}` must start with https:// or http://"),
                );
            }
            let slack = match rn.webhook_format.as_deref().unwrap_or("json") {
                "json" => false,
                "slack" => true,
                other => {
                    p.err(
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
                events: rn.webhook_events.map(|names| events(names, p)),
            }
        }),
        digest: rn.digest_cron.and_then(|c| match CronSpec::parse(&c) {
            Ok(spec) => Some(spec),
            Err(e) => {
                p.err("notify.digest_cron", e.to_string());
                None
            }
        }),
        chase: chase(
            rn.remind_after.as_deref(),
            rn.escalate_after.as_deref(),
            rn.stale_returns_to_nurture,
            p,
        ),
    }
}

/// `webhook_events`: known event names (with or without `lead.`), each once.
fn events(names: Vec<String>, p: &mut Problems) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for name in names {
        let bare = name.trim().strip_prefix("lead.").unwrap_or(name.trim());
        if WEBHOOK_EVENTS.contains(&bare) {
            out.insert(bare.to_string());
        } else {
            p.err(
                "notify.webhook_events",
                format!(
                    "`{name}` is not an event (events: {})",
                    WEBHOOK_EVENTS.join(", ")
                ),
            );
        }
    }
    out
}

/// `remind_after`, `escalate_after` (spans in days, weeks, hours…; not months: a chase
/// counts exact time) and `stale_returns_to_nurture`.
fn chase(
    remind: Option<&str>,
    escalate: Option<&str>,
    returns_to_nurture: bool,
    p: &mut Problems,
) -> ChasePolicy {
    let default = ChasePolicy::default();
    let mut span = |key: &str, value: Option<&str>, default: chrono::Duration| {
        let Some(value) = value else {
            return default;
        };
        match Span::parse(value) {
            Ok(Span::Fixed(d)) => d,
            Ok(Span::Days(n)) => chrono::Duration::days(i64::from(n)),
            Ok(Span::Months(_)) => {
                p.err(
                    key,
                    format!("`{value}`: use days or weeks (\"30d\"), not months"),
                );
                default
            }
            Err(e) => {
                p.err(key, e.to_string());
                default
            }
        }
    };
    let policy = ChasePolicy {
        remind_after: span("notify.remind_after", remind, default.remind_after),
        escalate_after: span("notify.escalate_after", escalate, default.escalate_after),
        returns_to_nurture,
    };
    if let Some((key, message)) = policy.problem() {
        p.err(key, message);
    }
    policy
}
