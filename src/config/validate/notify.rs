//! `[notify]`: how sales is told about re-warmed leads (owner email, webhook, digest).

use crate::config::raw::RawNotify;
use crate::config::{NotifySettings, NotifyWebhook, Problems};
use crate::domain::cadence::CronSpec;

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
            }
        }),
        digest: rn.digest_cron.and_then(|c| match CronSpec::parse(&c) {
            Ok(spec) => Some(spec),
            Err(e) => {
                p.err("notify.digest_cron", e.to_string());
                None
            }
        }),
    }
}
