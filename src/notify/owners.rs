//! Owners who left: a hard bounce on a notification email to an owner — a DSN that names the
//! notification's Message-ID (`notify-ID-…@domain`), or a recipient refused for good while
//! sending it — marks that owner gone, kept in the store (`kv_state` key
//! `owner:gone:ADDRESS`, a JSON {since, evidence}). Notifications to a gone owner go to
//! `notify.fallback_email` instead, saying so; `leads reassign` hands their leads over.
//! `leads owner-back` ([`clear_gone`]) clears the mark: the record stays, with `back_at` and
//! `back_by` added (the history of the mark), and a later hard bounce marks them gone again.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde_json::{Value, json};

use crate::app::Loaded;
use crate::domain::reply::Classification;
use crate::inbound::parse::{ParsedInbound, Report};
use crate::store::{Store, StoreError};

const PREFIX: &str = "owner:gone:";

/// An owner marked gone.
#[derive(Debug, Clone, PartialEq)]
pub struct GoneOwner {
    pub since: DateTime<Utc>,
    pub evidence: Value,
}

/// Marks `address` gone (the first mark stays). True if it is new.
pub async fn mark_gone<S: Store>(
    store: &S,
    address: &str,
    evidence: Value,
    now: DateTime<Utc>,
) -> Result<bool, StoreError> {
    let address = address.trim().to_ascii_lowercase();
    let value = json!({"since": now, "evidence": evidence}).to_string();
    let key = format!("{PREFIX}{address}");
    let stored = store.kv_set_if_absent(&key, &value).await?;
    let mut new = stored == value;
    if !new && parse(&stored).is_none() {
        // Cleared by `leads owner-back` (or unreadable): gone again, from now.
        store.kv_set(&key, &value).await?;
        new = true;
    }
    if new {
        tracing::warn!(owner = %address, "Owner marked gone after a hard bounce; their notifications go to notify.fallback_email");
    }
    Ok(new)
}

/// The gone owners among `addresses` (lower-cased), one read per distinct address.
pub async fn gone_among<S: Store>(
    store: &S,
    addresses: impl IntoIterator<Item = String>,
) -> Result<BTreeMap<String, GoneOwner>, StoreError> {
    let mut distinct: Vec<String> = addresses
        .into_iter()
        .map(|a| a.trim().to_ascii_lowercase())
        .collect();
    distinct.sort();
    distinct.dedup();
    let mut gone = BTreeMap::new();
    for address in distinct {
        if let Some(v) = store.kv_get(&format!("{PREFIX}{address}")).await?
            && let Some(owner) = parse(&v)
        {
            gone.insert(address, owner);
        }
    }
    Ok(gone)
}

/// Every owner marked gone now (lower-cased address and mark), by address; marks cleared by
/// `leads owner-back` are left out.
pub async fn all_gone<S: Store>(store: &S) -> Result<Vec<(String, GoneOwner)>, StoreError> {
    Ok(store
        .kv_prefixed(PREFIX)
        .await?
        .into_iter()
        .filter_map(|(key, value)| {
            let address = key.strip_prefix(PREFIX)?.to_string();
            parse(&value).map(|mark| (address, mark))
        })
        .collect())
}

/// Clears `address`'s gone mark (`leads owner-back`): the record keeps the mark and gets
/// `back_at` and `back_by`. The mark that was cleared, or None if they were not gone.
pub async fn clear_gone<S: Store>(
    store: &S,
    address: &str,
    by: &str,
    now: DateTime<Utc>,
) -> Result<Option<GoneOwner>, StoreError> {
    let address = address.trim().to_ascii_lowercase();
    let key = format!("{PREFIX}{address}");
    let Some(stored) = store.kv_get(&key).await? else {
        return Ok(None);
    };
    let Some(mark) = parse(&stored) else {
        return Ok(None);
    };
    let value =
        json!({"since": mark.since, "evidence": mark.evidence, "back_at": now, "back_by": by});
    store.kv_set(&key, &value.to_string()).await?;
    tracing::info!(owner = %address, by, gone_since = %mark.since, "Owner back: their notifications go to them again");
    Ok(Some(mark))
}

/// One line about a gone mark's evidence (which notification bounced, and how).
pub fn describe(evidence: &Value) -> String {
    let id = evidence["notification_id"]
        .as_i64()
        .map(|id| format!("notification {id}"))
        .unwrap_or_else(|| "a notification".into());
    let how = if evidence["refused_at"].is_string() {
        "refused while sending"
    } else if evidence["report"].is_string() {
        "bounced (a delivery report)"
    } else {
        "bounced"
    };
    format!("{id} {how}")
}

/// A gone mark; None for a record cleared by `leads owner-back` (it has `back_at`).
fn parse(value: &str) -> Option<GoneOwner> {
    let v: Value = serde_json::from_str(value).ok()?;
    if !v["back_at"].is_null() {
        return None;
    }
    let since = v.get("since")?.as_str()?;
    Some(GoneOwner {
        since: DateTime::parse_from_rfc3339(since)
            .ok()?
            .with_timezone(&Utc),
        evidence: v.get("evidence").cloned().unwrap_or(Value::Null),
    })
}

/// The notification id in one of our notification Message-IDs (`notify-ID-STAMP@domain`,
/// with or without angle brackets).
pub fn notification_id(message_id: &str) -> Option<i64> {
    let bare = message_id.trim().trim_start_matches('<');
    let rest = bare.strip_prefix("notify-")?;
    let (id, rest) = rest.split_once('-')?;
    let (stamp, _) = rest.split_once('@')?;
    if stamp.is_empty() || !stamp.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    id.parse().ok()
}

/// The owners a hard-bounce DSN about one of our notification emails says are gone: its
/// failed recipients (never the fallback address itself).
pub fn bounced_owners(
    parsed: &ParsedInbound,
    classification: Classification,
    fallback: Option<&str>,
) -> Vec<(String, Value)> {
    if classification != Classification::HardBounce {
        return Vec::new();
    }
    let Some(Report::Delivery(recipients, original)) = &parsed.report else {
        return Vec::new();
    };
    let Some(id) = original.message_id.as_deref().and_then(notification_id) else {
        return Vec::new();
    };
    recipients
        .iter()
        .filter(|r| {
            r.action
                .as_deref()
                .is_none_or(|a| a.eq_ignore_ascii_case("failed"))
                && r.status.as_deref().is_none_or(|s| s.starts_with('5'))
        })
        .filter_map(|r| r.final_recipient.as_deref())
        .map(|a| {
            a.rsplit(';')
                .next()
                .unwrap_or(a)
                .trim()
                .to_ascii_lowercase()
        })
        .filter(|a| a.contains('@') && fallback.is_none_or(|f| !f.eq_ignore_ascii_case(a)))
        .map(|a| {
            let evidence = json!({"notification_id": id, "message_id": original.message_id,
                                  "report": "delivery-status", "recipient": a});
            (a, evidence)
        })
        .collect()
}

/// Marks the owners gone that a hard-bounce DSN about a notification names; how many were new.
pub async fn note_bounce<S: Store>(
    store: &S,
    loaded: &Loaded,
    parsed: &ParsedInbound,
    classification: Classification,
    now: DateTime<Utc>,
) -> Result<usize, StoreError> {
    let fallback = loaded.settings.notify.fallback_email.as_deref();
    let mut new = 0;
    for (address, evidence) in bounced_owners(parsed, classification, fallback) {
        if mark_gone(store, &address, evidence, now).await? {
            new += 1;
        }
    }
    Ok(new)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn notification_message_ids_are_recognised() {
        assert_eq!(
            notification_id("notify-12-1772445600@acme.example"),
            Some(12)
        );
        assert_eq!(
            notification_id("<notify-7-1772445600@acme.example>"),
            Some(7)
        );
        assert_eq!(notification_id("rw-12-1772445600@acme.example"), None);
        assert_eq!(notification_id("notify-x-1@acme.example"), None);
        assert_eq!(notification_id("notify-12-@acme.example"), None);
        assert_eq!(notification_id("notify-12@acme.example"), None);
    }
}
