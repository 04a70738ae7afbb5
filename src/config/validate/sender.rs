//! `[sender]`, `[compliance]`, `[tokens]` and `[dkim]`: who a message is from and what every
//! message must carry (postal address, unsubscribe, signed tokens, DKIM).

use crate::config::raw::{RawCompliance, RawDkim, RawSender, RawTokens};
use crate::config::{ComplianceSettings, DkimSettings, Problems, SenderSettings};

pub(super) fn sender(raw: RawSender, p: &mut Problems) -> SenderSettings {
    let from = raw
        .from
        .parse::<lettre::message::Mailbox>()
        .unwrap_or_else(|e| {
            p.err(
                "sender.from",
                format!(
                    "`{}` is not a mailbox ({e}); write `Name <address@domain>`",
                    raw.from
                ),
            );
            lettre::message::Mailbox::new(
                None,
                lettre::Address::new("invalid", "invalid.invalid")
                    .expect("a constant valid address"),
            )
        });
    let reply_to = raw.reply_to.as_deref().and_then(|r| match r.parse() {
        Ok(m) => Some(m),
        Err(e) => {
            p.err("sender.reply_to", format!("`{r}` is not a mailbox ({e})"));
            None
        }
    });
    let message_id_domain = raw
        .message_id_domain
        .unwrap_or_else(|| from.email.domain().to_string());
    SenderSettings {
        from,
        reply_to,
        message_id_domain,
    }
}

pub(super) fn compliance(raw: RawCompliance, p: &mut Problems) -> ComplianceSettings {
    let postal_address = raw
        .postal_address
        .map(|a| a.trim().to_string())
        .unwrap_or_default();
    if postal_address.is_empty() {
        p.err("compliance.postal_address", "required: the sender's postal address, shown in every email (templates use {{ postal_address }})".into());
    }
    let unsubscribe_mailto =
        raw.unsubscribe_mailto
            .and_then(|m| match crate::domain::email::EmailAddress::parse(&m) {
                Ok(a) => Some(a.to_string()),
                Err(e) => {
                    p.err("compliance.unsubscribe_mailto", e.to_string());
                    None
                }
            });
    let confirm_domain_over = raw.confirm_domain_over.unwrap_or(50);
    if confirm_domain_over < 0 {
        p.err(
            "compliance.confirm_domain_over",
            format!("{confirm_domain_over}: must be 0 or more (leads)"),
        );
    }
    ComplianceSettings {
        postal_address,
        unsubscribe_mailto,
        confirm_domain_over: confirm_domain_over.max(0),
    }
}

/// The token signing keys as (id, name of the secret's env var or credential).
pub(super) fn token_keys(raw: RawTokens, p: &mut Problems) -> Vec<(String, String)> {
    let mut token_keys = Vec::new();
    for (i, k) in raw.keys.into_iter().enumerate() {
        if k.id.is_empty() || k.id.len() > 16 || !k.id.chars().all(|c| c.is_ascii_alphanumeric()) {
            p.err(
                &format!("tokens.keys[{i}].id"),
                format!("`{}` must be 1 to 16 letters or digits", k.id),
            );
        }
        token_keys.push((k.id, k.secret_env));
    }
    token_keys
}

pub(super) fn dkim(d: RawDkim, p: &mut Problems) -> DkimSettings {
    let ed25519 = match d.algorithm.as_str() {
        "rsa" => false,
        "ed25519" => true,
        other => {
            p.err("dkim.algorithm", format!("`{other}` is not rsa or ed25519"));
            false
        }
    };
    DkimSettings {
        domain: d.domain,
        selector: d.selector,
        key_env: d.key_env,
        ed25519,
    }
}
