//! The weekly digest: when the `notify.digest` cron fired, one `digest` notification per
//! owner (their leads re-warmed, still nurturing, and suppressed that week), and its text.

use std::collections::BTreeMap;

use anyhow::Context as _;
use chrono::{DateTime, Utc};
use serde_json::{Value, json};

use super::display_name;
use crate::app::Loaded;
use crate::config::Settings;
use crate::domain::lead::{Lead, LeadState};
use crate::store::{NewNotification, Store};

/// When `notify.digest` fired after `last_run` (default: a week ago) and at or before `now`,
/// enqueues one `digest` per owner (idempotency key `digest:{owner}:{firing date}`, so a
/// second call for the same firing adds nothing). Returns how many were new.
///
/// A digest lists the owner's leads re-warmed in the 7 days before the firing, those still
/// nurturing, and those suppressed (bounced, unsubscribed, complained) whose record changed
/// in those 7 days. Leads without an owner go to `notify.fallback_email` (or are left out).
pub async fn enqueue_digests<S: Store>(
    store: &S,
    loaded: &Loaded,
    now: DateTime<Utc>,
    last_run: Option<DateTime<Utc>>,
) -> anyhow::Result<usize> {
    let settings = &loaded.settings;
    let Some(cron) = settings.notify.digest.as_ref() else {
        return Ok(0);
    };
    let mut t = last_run.unwrap_or(now - chrono::Duration::days(7));
    let mut fired = None;
    for _ in 0..10_000 {
        match cron.next_after(t, settings.default_tz) {
            Some(next) if next <= now => {
                fired = Some(next);
                t = next;
            }
            _ => break,
        }
    }
    let Some(fired) = fired else {
        return Ok(0);
    };
    let since = fired - chrono::Duration::days(7);
    let per_owner = rows_per_owner(store, settings, since).await?;

    let date = fired.with_timezone(&settings.default_tz).format("%Y-%m-%d");
    let items: Vec<NewNotification> = per_owner
        .into_iter()
        .map(|(owner, [rewarmed, nurturing, left])| NewNotification {
            kind: "digest".into(),
            lead_id: None,
            idempotency_key: format!("digest:{owner}:{date}"),
            payload: json!({
                "to": owner, "since": since, "until": fired,
                "rewarmed": rewarmed, "nurturing": nurturing, "left": left,
            }),
        })
        .collect();
    if items.is_empty() {
        return Ok(0);
    }
    store
        .enqueue_notifications(&items, now)
        .await
        .context("Failed to enqueue digests")
}

/// Per owner (lower-cased; `notify.fallback_email` for leads without one), the digest's three
/// lists: re-warmed since `since`, nurturing, and suppressed with a change since `since`.
async fn rows_per_owner<S: Store>(
    store: &S,
    settings: &Settings,
    since: DateTime<Utc>,
) -> anyhow::Result<BTreeMap<String, [Vec<Value>; 3]>> {
    let fallback = settings.notify.fallback_email.clone();
    let owner_of = |lead: &Lead| {
        lead.owner_email
            .clone()
            .filter(|o| !o.trim().is_empty())
            .map(|o| o.to_ascii_lowercase())
            .or_else(|| fallback.clone())
    };
    let row = |lead: &Lead| json!({"email": lead.email.to_string(), "name": display_name(lead), "company": lead.company});

    let mut per_owner: BTreeMap<String, [Vec<Value>; 3]> = BTreeMap::new();
    let rewarmed = store
        .leads_rewarmed(since, None)
        .await
        .context("Failed to list re-warmed leads")?;
    for (lead, at) in &rewarmed {
        if let Some(owner) = owner_of(lead) {
            let mut r = row(lead);
            r["rewarmed_at"] = json!(at);
            per_owner.entry(owner).or_default()[0].push(r);
        }
    }
    for (state, slot) in [(LeadState::Nurturing, 1), (LeadState::Suppressed, 2)] {
        let mut after = 0;
        loop {
            let page = store
                .leads_in_state(state, after, 1000)
                .await
                .context("Failed to list leads by state")?;
            let Some(last) = page.last() else { break };
            after = last.id;
            for lead in &page {
                if slot == 2 && lead.updated_at < since {
                    continue;
                }
                if let Some(owner) = owner_of(lead) {
                    let mut r = row(lead);
                    if slot == 2 {
                        let reason = store
                            .suppression_for(&lead.email)
                            .await
                            .context("Failed to read a suppression")?
                            .map(|s| s.reason.as_str().to_string());
                        r["reason"] = json!(reason);
                    }
                    per_owner.entry(owner).or_default()[slot].push(r);
                }
            }
        }
    }
    Ok(per_owner)
}

/// Subject and body of a weekly digest.
pub(super) fn digest_text(p: &Value) -> (String, String) {
    let date = |k: &str| {
        p.get(k)
            .and_then(Value::as_str)
            .and_then(|s| DateTime::parse_from_rfc3339(s).ok())
            .map(|d| d.format("%Y-%m-%d").to_string())
            .unwrap_or_default()
    };
    let list = |k: &str| {
        p.get(k)
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default()
    };
    let (rewarmed, nurturing, left) = (list("rewarmed"), list("nurturing"), list("left"));
    let subject = format!(
        "Weekly leads digest: {} re-warmed, {} in nurture, {} left",
        rewarmed.len(),
        nurturing.len(),
        left.len()
    );
    let mut t = format!("Your leads, {} to {}\n", date("since"), date("until"));
    let line = |r: &Value, extra: &str| {
        let s = |k: &str| r.get(k).and_then(Value::as_str).unwrap_or("").to_string();
        let company = if s("company").is_empty() {
            String::new()
        } else {
            format!(", {}", s("company"))
        };
        format!("- {} <{}>{company}{extra}\n", s("name"), s("email"))
    };
    t.push_str(&format!("\nRe-warmed ({}) — call them:\n", rewarmed.len()));
    for r in &rewarmed {
        let at = r.get("rewarmed_at").and_then(Value::as_str).unwrap_or("");
        t.push_str(&line(
            r,
            &format!(" (re-warmed {})", at.get(..10).unwrap_or(at)),
        ));
    }
    t.push_str(&format!("\nStill in nurture ({}):\n", nurturing.len()));
    for r in nurturing.iter().take(200) {
        t.push_str(&line(r, ""));
    }
    if nurturing.len() > 200 {
        t.push_str(&format!("… and {} more\n", nurturing.len() - 200));
    }
    t.push_str(&format!("\nBounced or left ({}):\n", left.len()));
    for r in &left {
        let reason = r
            .get("reason")
            .and_then(Value::as_str)
            .unwrap_or("suppressed");
        t.push_str(&line(r, &format!(" ({reason})")));
    }
    (subject, t)
}
