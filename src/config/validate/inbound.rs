//! `[inbound]` (reply and bounce domains, the IMAP mailbox, webhook secrets) and `[scoring]`
//! (engagement points per event kind).

use std::collections::BTreeMap;

use crate::config::raw::{RawInbound, RawScoring};
use crate::config::{
    CaFile, EventWebhooks, ImapSettings, InboundSettings, Problems, ScoringSettings, SendGridKey,
    WebhookSecrets, chrono_duration, score_kinds, std_duration,
};

pub(super) fn inbound(ri: RawInbound, p: &mut Problems) -> InboundSettings {
    let imap = ri.imap.map(|i| {
        let poll = std_duration(&i.poll).unwrap_or_else(|e| {
            p.err("inbound.imap.poll", e);
            std::time::Duration::from_secs(30)
        });
        let ca_file = i.ca_file.and_then(|path| {
            CaFile::read(&path)
                .map_err(|e| p.err("inbound.imap.ca_file", e))
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
        if let Some(d) = domain
            && (!d.contains('.') || d.contains(['@', ' ']))
        {
            p.err(key, format!("`{d}` is not a domain"));
        }
    }
    InboundSettings {
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
        events: EventWebhooks {
            postmark_token_env: ri.events.postmark_token_env,
            sendgrid_public_key: ri.events.sendgrid_public_key.and_then(|k| {
                crate::http::events::sendgrid_public_key(&k)
                    .map(SendGridKey)
                    .map_err(|e| p.err("inbound.events.sendgrid_public_key", e))
                    .ok()
            }),
        },
    }
}

pub(super) fn scoring(raw: RawScoring, p: &mut Problems) -> ScoringSettings {
    let mut points: BTreeMap<String, i64> = [("reply", 100), ("click", 10), ("auto_reply", 0)]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
    let kinds = score_kinds();
    for kind in raw.points.keys() {
        if !kinds.contains(&kind.as_str()) {
            p.err(
                &format!("scoring.points.{kind}"),
                format!(
                    "unknown engagement kind `{kind}` (known: {})",
                    kinds.join(", ")
                ),
            );
        }
    }
    points.extend(raw.points);
    let mut clicks = crate::domain::signal::ClickPolicy::default();
    let mut span = |key: &str, value: Option<&String>, default: chrono::Duration| match value {
        None => default,
        Some(v) => chrono_duration(v).unwrap_or_else(|e| {
            p.err(&format!("scoring.{key}"), e);
            default
        }),
    };
    clicks.grace = span("click_grace", raw.click_grace.as_ref(), clicks.grace);
    clicks.burst = span("click_burst", raw.click_burst.as_ref(), clicks.burst);
    let half_life = span(
        "half_life",
        raw.half_life.as_ref(),
        chrono::Duration::days(30),
    );
    ScoringSettings {
        points,
        clicks,
        half_life: (half_life > chrono::Duration::zero()).then_some(half_life),
    }
}
