//! The outbox drained: [`deliver_due`] claims the due notifications (a lease, committed
//! before anything is sent), builds each one's email or webhook body, delivers them, and
//! records every outcome in one call; failures are retried with [`retry_at`](super::retry_at).

use std::collections::BTreeMap;

use anyhow::Context as _;
use chrono::{DateTime, Utc};

use super::owner_email::{owner_email, recipient};
use super::owners::{gone_among, mark_gone};
use super::retry::{Outcome, retry_at};
use super::webhook::{post_webhooks, webhook_body};
use super::{BATCH, MAX_ATTEMPTS, NotifyReport};
use crate::app::Loaded;
use crate::domain::lead::Lead;
use crate::metrics::NotificationOutcome;
use crate::store::{Event, Notification, Store};
use crate::transport::{OutgoingEmail, Transport};

/// How long a claim lasts: longer than the slowest delivery (a webhook times out sooner).
const LEASE: chrono::Duration = chrono::Duration::minutes(5);

/// Claims due notifications, delivers them and records the outcomes (one call).
pub async fn deliver_due<S: Store>(
    store: &S,
    loaded: &Loaded,
    transport: &Transport,
    now: DateTime<Utc>,
    worker: &str,
) -> anyhow::Result<NotifyReport> {
    let claimed = store
        .claim_notifications(now, worker, now + LEASE, BATCH)
        .await
        .context("Failed to claim notifications")?;
    let mut report = NotifyReport {
        claimed: claimed.len(),
        ..Default::default()
    };
    if claimed.is_empty() {
        return Ok(report);
    }
    let (leads, timelines) = leads_and_timelines(store, &claimed).await?;
    // Owners who left (a notification to them hard-bounced) are read once per address.
    let gone = gone_among(
        store,
        claimed
            .iter()
            .filter(|n| n.kind != "webhook")
            .filter_map(|n| {
                recipient(&loaded.settings, n, n.lead_id.and_then(|id| leads.get(&id)))
            }),
    )
    .await
    .context("Failed to read which owners left")?;

    let mut results: Vec<Outcome> = Vec::new();
    let mut emails = Vec::new();
    let mut hooks = Vec::new();
    for n in &claimed {
        let lead = n.lead_id.and_then(|id| leads.get(&id));
        let timeline = n
            .lead_id
            .and_then(|id| timelines.get(&id))
            .map_or(&[][..], Vec::as_slice);
        let built = match n.kind.as_str() {
            // A console sign-in link: to the address asked for, never to a fallback.
            crate::console::mail::NOTIFICATION_KIND => {
                crate::console::mail::signin_email(loaded, n, now).map(|e| emails.push(e))
            }
            "owner_email" | "digest" => {
                owner_email(loaded, n, lead, timeline, &gone, now).map(|e| emails.push(e))
            }
            "webhook" => {
                webhook_body(&loaded.settings.notify, n, lead, timeline).map(|b| hooks.push((n, b)))
            }
            other => Err(format!("unknown notification kind `{other}`")),
        };
        if let Err(error) = built {
            results.push((n.id, Err(error), None));
        }
    }

    let by_id: BTreeMap<i64, &Notification> = claimed.iter().map(|n| (n.id, n)).collect();
    if !emails.is_empty() {
        let (outcomes, bounced) = send_emails(transport, emails, &by_id, now).await;
        results.extend(outcomes);
        let fallback = loaded.settings.notify.fallback_email.as_deref();
        for (id, address) in bounced {
            // The fallback address is where gone owners' mail goes: never marked gone itself.
            if fallback.is_some_and(|f| f.eq_ignore_ascii_case(&address)) {
                continue;
            }
            let evidence = serde_json::json!({"notification_id": id, "refused_at": "RCPT"});
            mark_gone(store, &address, evidence, now)
                .await
                .context("Failed to mark an owner gone")?;
        }
    }
    if !hooks.is_empty() {
        let outcomes = post_webhooks(&loaded.settings.notify, hooks, now).await;
        results.extend(outcomes);
    }

    for (_, result, retry) in &results {
        match (result, retry) {
            (Ok(()), _) => report.sent += 1,
            (Err(_), Some(_)) => report.retrying += 1,
            (Err(_), None) => report.failed += 1,
        }
    }
    for (id, result, retry) in &results {
        if let Err(error) = result {
            tracing::warn!(notification = id, retry_at = ?retry, %error, "Notification not delivered");
        }
    }
    store
        .record_notifications(&results, worker, now)
        .await
        .context("Failed to record notification outcomes")?;
    // Counted once recorded: an outcome that was not recorded is claimed and tried again.
    count(&by_id, &results);
    Ok(report)
}

/// The leads the notifications are about, and each one's timeline, by lead id.
async fn leads_and_timelines<S: Store>(
    store: &S,
    claimed: &[Notification],
) -> anyhow::Result<(BTreeMap<i64, Lead>, BTreeMap<i64, Vec<Event>>)> {
    let lead_ids: Vec<i64> = claimed.iter().filter_map(|n| n.lead_id).collect();
    let leads: BTreeMap<i64, Lead> = store
        .leads_by_ids(&lead_ids)
        .await
        .context("Failed to read the notified leads")?
        .into_iter()
        .map(|l| (l.id, l))
        .collect();
    let mut timelines: BTreeMap<i64, Vec<Event>> = BTreeMap::new();
    for id in leads.keys() {
        let events = store
            .timeline(*id)
            .await
            .context("Failed to read a lead's timeline")?;
        timelines.insert(*id, events);
    }
    Ok((leads, timelines))
}

/// Sends the emails in one batch; the outcome of each (refused fails for good, anything else
/// is tried again), and the recipients refused for good (hard bounces), by notification id.
async fn send_emails(
    transport: &Transport,
    emails: Vec<OutgoingEmail>,
    by_id: &BTreeMap<i64, &Notification>,
    now: DateTime<Utc>,
) -> (Vec<Outcome>, Vec<(i64, String)>) {
    let to: BTreeMap<i64, String> = emails
        .iter()
        .map(|e| (e.delivery_id, e.envelope_to.clone()))
        .collect();
    let mut results = Vec::new();
    let mut bounced = Vec::new();
    for (id, outcome) in transport.send_batch(emails).await {
        let attempts = by_id.get(&id).map_or(MAX_ATTEMPTS, |n| n.attempts);
        results.push(match outcome {
            Ok(()) => (id, Ok(()), None),
            Err(e) if e.is_permanent() => {
                if e.is_hard_bounce()
                    && let Some(address) = to.get(&id)
                {
                    bounced.push((id, address.clone()));
                }
                (id, Err(format!("email refused: {}", e.message())), None)
            }
            // Unknown too: a notification may go twice, it must not be lost.
            Err(e) => (
                id,
                Err(format!("email not sent: {e}")),
                retry_at(attempts, now),
            ),
        });
    }
    (results, bounced)
}

/// Counts the recorded outcomes in the metrics, by notification kind.
fn count(by_id: &BTreeMap<i64, &Notification>, results: &[Outcome]) {
    let metrics = crate::metrics::get();
    for (id, result, retry) in results {
        let kind = by_id.get(id).map_or("other", |n| n.kind.as_str());
        let outcome = match (result, retry) {
            (Ok(()), _) => NotificationOutcome::Delivered,
            (Err(_), Some(_)) => NotificationOutcome::Retried,
            (Err(_), None) => NotificationOutcome::Failed,
        };
        metrics.notification(kind, outcome);
    }
}
