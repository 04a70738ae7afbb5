//! Which lead an inbound message is about, in the order:
//!
//! 1. `token`: a signed token in a recipient address (`reply+TOKEN@…`, `bounce+TOKEN@…`);
//! 2. `in_reply_to`: In-Reply-To / References against our Message-IDs (the signed token in
//!    `<TOKEN@domain>`; a foreign id, or one whose key left `[tokens] keys`, names nothing);
//! 3. `report`: for DSNs and ARF reports, the original message's Message-ID, then its
//!    Final-Recipient / Original-Rcpt-To / To addresses against the leads;
//! 4. `sender`: the From address against the leads.
//!
//! A forged or foreign token verifies to nothing and matching moves on to the next rule.
//! The address/ID helpers are pure; [`find`] asks the store.

use crate::domain::email::EmailAddress;
use crate::inbound::parse::{Failure, ParsedInbound, Report};
use crate::store::{DeliveryTarget, Store, StoreError, bare_message_id};
use crate::tokens::{TokenKeys, TokenKind};

/// What a message was matched to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Match {
    pub lead_id: i64,
    pub email: EmailAddress,
    pub delivery_id: Option<i64>,
    /// `token`, `in_reply_to`, `report` or `sender`.
    pub matched_by: &'static str,
}

impl Match {
    fn from_target(t: DeliveryTarget, matched_by: &'static str) -> Self {
        Match {
            lead_id: t.lead_id,
            email: t.email,
            delivery_id: Some(t.delivery_id),
            matched_by,
        }
    }
}

/// The token of a VERP/reply address: `reply+TOKEN@…` → (Reply, TOKEN), `bounce+TOKEN@…` →
/// (Bounce, TOKEN). Accepts `Name <addr>` and angle brackets; the prefix is case-insensitive.
pub fn address_token(address: &str) -> Option<(TokenKind, &str)> {
    let addr = address.trim();
    let addr = match (addr.rfind('<'), addr.rfind('>')) {
        (Some(a), Some(b)) if a < b => &addr[a + 1..b],
        _ => addr,
    };
    let local = &addr[..addr.rfind('@')?];
    let (prefix, token) = local.split_once('+')?;
    let kind = if prefix.eq_ignore_ascii_case("reply") {
        TokenKind::Reply
    } else if prefix.eq_ignore_ascii_case("bounce") {
        TokenKind::Bounce
    } else {
        return None;
    };
    (!token.is_empty()).then_some((kind, token))
}

/// The part of a Message-ID before its `@` (`<TOKEN@domain>` → TOKEN).
pub fn message_id_token(message_id: &str) -> Option<&str> {
    let bare = bare_message_id(message_id);
    let (local, _) = bare.rsplit_once('@')?;
    (!local.is_empty()).then_some(local)
}

/// Every Message-ID in In-Reply-To and References (each header may hold several), newest
/// first: In-Reply-To, then References from the last.
pub fn thread_ids(parsed: &ParsedInbound) -> Vec<String> {
    let split = |v: &String| -> Vec<String> {
        v.split(|c: char| c.is_whitespace() || c == ',')
            .filter(|s| !s.trim().is_empty())
            .map(|s| bare_message_id(s).to_string())
            .filter(|s| !s.is_empty())
            .collect()
    };
    let mut out: Vec<String> = Vec::new();
    for id in parsed.in_reply_to.iter().flat_map(split).chain(
        parsed
            .references
            .iter()
            .rev()
            .flat_map(|r| split(r).into_iter().rev()),
    ) {
        if !out.contains(&id) {
            out.push(id);
        }
    }
    out
}

/// `rfc822; ann@acme.test` → `ann@acme.test`, as a lead address if valid.
pub fn report_address(field: &str) -> Option<EmailAddress> {
    let value = match field.split_once(';') {
        Some((_, v)) => v,
        None => field,
    };
    let value = value.trim().trim_start_matches('<').trim_end_matches('>');
    EmailAddress::parse(value).ok()
}

/// Parses the address of a From / To header value (`Name <a@b>` or `a@b`).
pub fn header_address(value: &str) -> Option<EmailAddress> {
    let v = value.trim();
    let v = match (v.rfind('<'), v.rfind('>')) {
        (Some(a), Some(b)) if a < b => &v[a + 1..b],
        _ => v,
    };
    EmailAddress::parse(v.trim()).ok()
}

/// The delivery a Message-ID names. Ours are signed Reply tokens (`<TOKEN@domain>`, since the
/// first release), so the token is all that is read: a foreign id, or one signed with a key
/// since removed from `[tokens] keys` (like that email's unsubscribe link), names nothing and
/// costs no query. The stored ids are not looked up: their index, written at a random place
/// per email sent, went in migration 0022 (SQLite) / 0023 (PostgreSQL).
async fn by_thread_id<S: Store>(
    store: &S,
    keys: &TokenKeys,
    id: &str,
) -> Result<Option<DeliveryTarget>, StoreError> {
    match message_id_token(id).and_then(|token| keys.verify_kind(token, TokenKind::Reply)) {
        Some(claims) => store.delivery_target(claims.delivery_id).await,
        None => Ok(None),
    }
}

async fn by_address<S: Store>(
    store: &S,
    email: &EmailAddress,
) -> Result<Option<Match>, StoreError> {
    Ok(store.lead_by_email(email).await?.map(|l| Match {
        lead_id: l.id,
        email: l.email,
        delivery_id: None,
        matched_by: "",
    }))
}

/// Finds the lead `parsed` is about (None = unmatched).
pub async fn find<S: Store>(
    store: &S,
    keys: &TokenKeys,
    parsed: &ParsedInbound,
) -> Result<Option<Match>, StoreError> {
    // 1. A token in a recipient address.
    for r in &parsed.recipients {
        if let Some((kind, token)) = address_token(r)
            && let Some(claims) = keys.verify_kind(token, kind)
            && let Some(t) = store.delivery_target(claims.delivery_id).await?
        {
            return Ok(Some(Match::from_target(t, "token")));
        }
    }
    // 2. In-Reply-To / References.
    for id in thread_ids(parsed) {
        if let Some(t) = by_thread_id(store, keys, &id).await? {
            return Ok(Some(Match::from_target(t, "in_reply_to")));
        }
    }
    // 3. The original message inside a report.
    if let Some(report) = &parsed.report {
        let (recipients, original) = match report {
            Report::Delivery(recipients, original) => (recipients.as_slice(), original),
            Report::Feedback(original) => (&[][..], original),
        };
        if let Some(id) = original.message_id.as_deref()
            && let Some(t) = by_thread_id(store, keys, id).await?
        {
            return Ok(Some(Match::from_target(t, "report")));
        }
        // Collected before the first await: a lazy iterator of closures held across an await
        // makes the future not `Send` (its closures' lifetimes are not general enough).
        let addresses: Vec<EmailAddress> = recipients
            .iter()
            .flat_map(|r| {
                [
                    r.final_recipient.as_deref(),
                    r.original_recipient.as_deref(),
                ]
            })
            .flatten()
            .filter_map(report_address)
            .chain(original.to.iter().filter_map(|t| header_address(t)))
            .collect();
        for email in &addresses {
            if let Some(m) = by_address(store, email).await? {
                return Ok(Some(Match {
                    matched_by: "report",
                    ..m
                }));
            }
        }
    }
    // 4. The sender.
    if let Some(from) = parsed.from.as_deref().and_then(header_address)
        && let Some(m) = by_address(store, &from).await?
    {
        return Ok(Some(Match {
            matched_by: "sender",
            ..m
        }));
    }
    Ok(None)
}

/// The failed recipients of a delivery report, each once, with how it failed (the address
/// its entry names: Final-Recipient, else Original-Recipient).
pub fn failed_recipients(parsed: &ParsedInbound) -> Vec<(EmailAddress, Failure)> {
    let Some(Report::Delivery(recipients, _)) = &parsed.report else {
        return Vec::new();
    };
    let mut out: Vec<(EmailAddress, Failure)> = Vec::new();
    for r in recipients {
        let Some(failure) = r.failure() else { continue };
        let Some(email) = r
            .final_recipient
            .as_deref()
            .or(r.original_recipient.as_deref())
            .and_then(report_address)
        else {
            continue;
        };
        if !out.iter().any(|(e, _)| *e == email) {
            out.push((email, failure));
        }
    }
    out
}

/// The leads other than `primary` that a bounce naming several failed recipients names, each
/// with how its delivery failed (matched by `report`). A report naming one recipient acts on
/// its matched lead only.
pub async fn other_failed_leads<S: Store>(
    store: &S,
    parsed: &ParsedInbound,
    primary: i64,
) -> Result<Vec<(Match, Failure)>, StoreError> {
    let named = failed_recipients(parsed);
    if named.len() < 2 {
        return Ok(Vec::new());
    }
    let mut out: Vec<(Match, Failure)> = Vec::new();
    for (email, failure) in &named {
        if let Some(m) = by_address(store, email).await?
            && m.lead_id != primary
            && !out.iter().any(|(o, _)| o.lead_id == m.lead_id)
        {
            out.push((
                Match {
                    matched_by: "report",
                    ..m
                },
                *failure,
            ));
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_come_out_of_reply_and_bounce_addresses() {
        assert_eq!(
            address_token("Reply+abc.def@r.example"),
            Some((TokenKind::Reply, "abc.def"))
        );
        assert_eq!(
            address_token("Sales <bounce+xyz@b.example>"),
            Some((TokenKind::Bounce, "xyz"))
        );
        assert_eq!(address_token("ann+news@acme.test"), None);
        assert_eq!(address_token("reply+@r.example"), None);
        assert_eq!(address_token("reply+abc"), None);
    }

    #[test]
    fn failed_recipients_come_once_each_with_their_failure() {
        use crate::inbound::parse::{DsnRecipient, OriginalHeaders};
        let entry = |to: Option<&str>, original: Option<&str>, status: &str| DsnRecipient {
            final_recipient: to.map(str::to_string),
            original_recipient: original.map(str::to_string),
            status: Some(status.to_string()),
            ..DsnRecipient::default()
        };
        let parsed = ParsedInbound {
            report: Some(Report::Delivery(
                vec![
                    entry(Some("Bob@Example.org"), None, "5.1.1"),
                    entry(Some("cy@example.net"), None, "4.2.2"),
                    entry(Some("bob@example.org"), None, "5.1.1"),
                    entry(None, Some("rfc822; dee@example.com"), "5.0.0"),
                    entry(Some("ok@example.com"), None, "2.0.0"),
                    entry(Some("not an address"), None, "5.1.1"),
                ],
                OriginalHeaders::default(),
            )),
            ..ParsedInbound::default()
        };
        let got: Vec<(String, Failure)> = failed_recipients(&parsed)
            .into_iter()
            .map(|(e, f)| (e.to_string(), f))
            .collect();
        assert_eq!(
            got,
            [
                ("bob@example.org".to_string(), Failure::Permanent),
                ("cy@example.net".to_string(), Failure::Transient),
                ("dee@example.com".to_string(), Failure::Permanent),
            ]
        );
        assert!(failed_recipients(&ParsedInbound::default()).is_empty());
    }

    #[test]
    fn message_id_tokens_and_report_addresses() {
        assert_eq!(message_id_token("<tok123@mail.example>"), Some("tok123"));
        assert_eq!(message_id_token("nothing"), None);
        assert_eq!(
            report_address("rfc822; Ann@Acme.test").map(|e| e.to_string()),
            Some("ann@acme.test".into())
        );
        assert_eq!(
            header_address("Ann <ann@acme.test>").map(|e| e.to_string()),
            Some("ann@acme.test".into())
        );
    }
}
