//! Sales is told: the notification outbox is drained here. Notifications are written by the
//! store in the same transaction as the change they report (a re-warm), so none is lost;
//! [`deliver_due`] claims the due ones in a batch, delivers them and records every outcome in
//! one call:
//!
//! - `owner_email` and `digest`: a plain-text email (From = `sender.from`) to the payload's
//!   `to` (else the lead's owner, else `notify.fallback_email`), through the transport.
//! - `webhook`: a JSON POST to `notify.webhook.url`, signed `X-Rewarm-Signature:
//!   sha256=<hex HMAC-SHA256 of the body>` (key from `notify.webhook.secret_env`), with an
//!   `Idempotency-Key` header and `idempotency_key` in the body; Slack format posts `{"text"}`.
//!
//! 2xx is sent; 429, 5xx and network errors are retried later (exponential backoff with
//! jitter, at most [`MAX_ATTEMPTS`] attempts); any other 4xx fails for good. Delivery is at
//! least once: receivers dedupe on the idempotency key.
//!
//! [`enqueue_digests`] puts one weekly `digest` per owner in the outbox when the
//! `notify.digest` cron fired.

use std::collections::BTreeMap;
use std::time::Duration;

use anyhow::Context as _;
use chrono::{DateTime, Utc};
use hmac::{KeyInit, Mac};
use serde_json::{Map, Value, json};

use crate::app::Loaded;
use crate::config::NotifySettings;
use crate::domain::lead::{Lead, LeadState};
use crate::metrics::NotificationOutcome;
use crate::secret::Secret;
use crate::store::{Event, NewNotification, Notification, Store};
use crate::transport::{OutgoingEmail, Transport};

/// Notifications claimed per call.
pub const BATCH: usize = 50;
/// After this many attempts a notification fails for good.
pub const MAX_ATTEMPTS: u32 = 10;
/// How long a claim lasts: longer than the slowest delivery (a webhook times out sooner).
const LEASE: chrono::Duration = chrono::Duration::minutes(5);
const WEBHOOK_TIMEOUT: Duration = Duration::from_secs(15);
/// Lines of a lead's timeline in an owner email.
const TIMELINE_LINES: usize = 50;

/// What one [`deliver_due`] call did.
#[derive(Debug, Default, Clone, PartialEq, Eq, serde::Serialize)]
pub struct NotifyReport {
    pub claimed: usize,
    pub sent: usize,
    /// Will be tried again (429, 5xx, network, transient SMTP).
    pub retrying: usize,
    /// Failed for good (4xx, bad payload, too many attempts).
    pub failed: usize,
}

/// The notifications a re-warm of `lead` puts in the outbox, per the `notify` settings.
/// `key` identifies the re-warm (e.g. `rewarm:{inbound dedupe key}`); each notification's
/// idempotency key is `{key}:{kind}`.
pub fn rewarm_notifications(
    settings: &NotifySettings,
    lead: &Lead,
    key: &str,
    reply: &str,
    subject: Option<&str>,
) -> Vec<NewNotification> {
    let mut out = Vec::new();
    let to = lead
        .owner_email
        .clone()
        .filter(|o| !o.trim().is_empty())
        .or_else(|| settings.fallback_email.clone());
    if settings.owner_email
        && let Some(to) = to
    {
        out.push(NewNotification {
            kind: "owner_email".into(),
            lead_id: Some(lead.id),
            idempotency_key: format!("{key}:owner_email"),
            payload: json!({
                "event": "lead.rewarmed", "to": to, "lead_email": lead.email.to_string(),
                "reply": reply, "subject": subject,
            }),
        });
    }
    if settings.webhook.is_some() {
        out.push(NewNotification {
            kind: "webhook".into(),
            lead_id: Some(lead.id),
            idempotency_key: format!("{key}:webhook"),
            payload: json!({
                "event": "lead.rewarmed", "lead_email": lead.email.to_string(),
                "reply": reply, "subject": subject,
            }),
        });
    }
    out
}

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

    let mut results: Vec<(i64, Result<(), String>, Option<DateTime<Utc>>)> = Vec::new();
    let mut emails = Vec::new();
    let mut hooks = Vec::new();
    for n in &claimed {
        let lead = n.lead_id.and_then(|id| leads.get(&id));
        let timeline = n
            .lead_id
            .and_then(|id| timelines.get(&id))
            .map_or(&[][..], Vec::as_slice);
        let built = match n.kind.as_str() {
            "owner_email" | "digest" => {
                owner_email(loaded, n, lead, timeline, now).map(|e| emails.push(e))
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
        for (id, outcome) in transport.send_batch(emails).await {
            let attempts = by_id.get(&id).map_or(MAX_ATTEMPTS, |n| n.attempts);
            results.push(match outcome {
                Ok(()) => (id, Ok(()), None),
                Err(e) if e.is_permanent() => {
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
    let metrics = crate::metrics::get();
    for (id, result, retry) in &results {
        let kind = by_id.get(id).map_or("other", |n| n.kind.as_str());
        let outcome = match (result, retry) {
            (Ok(()), _) => NotificationOutcome::Delivered,
            (Err(_), Some(_)) => NotificationOutcome::Retried,
            (Err(_), None) => NotificationOutcome::Failed,
        };
        metrics.notification(kind, outcome);
    }
    Ok(report)
}

/// When to try again after the `attempts`-th failed attempt: 30 s doubling up to an hour,
/// half of it random (jitter); None once [`MAX_ATTEMPTS`] were made.
pub fn retry_at(attempts: u32, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
    if attempts >= MAX_ATTEMPTS {
        return None;
    }
    let exp = (30i64 << attempts.saturating_sub(1).min(10)).min(3600);
    let jitter = rand::random_range(0..=exp / 2);
    Some(now + chrono::Duration::seconds(exp / 2 + jitter))
}

// ── Emails ─────────────────────────────────────────────────────────────────────────────

/// The owner (or digest) email of a notification.
fn owner_email(
    loaded: &Loaded,
    n: &Notification,
    lead: Option<&Lead>,
    timeline: &[Event],
    now: DateTime<Utc>,
) -> Result<OutgoingEmail, String> {
    let settings = &loaded.settings;
    let to = str_field(&n.payload, &["to", "owner_email", "address"])
        .or_else(|| lead.and_then(|l| l.owner_email.clone()))
        .filter(|t| !t.trim().is_empty())
        .or_else(|| settings.notify.fallback_email.clone())
        .ok_or("no owner address and no notify.fallback_email")?;
    let to: lettre::message::Mailbox = to
        .parse()
        .map_err(|e| format!("bad notification address `{to}`: {e}"))?;
    let (subject, text) = if n.kind == "digest" {
        digest_text(&n.payload)
    } else {
        let lead = lead.ok_or("the notification's lead no longer exists")?;
        rewarm_text(n, lead, timeline)
    };
    let domain = &settings.sender.message_id_domain;
    let message_id = format!("notify-{}-{}@{domain}", n.id, now.timestamp());
    let message = lettre::Message::builder()
        .from(settings.sender.from.clone())
        .to(to.clone())
        .subject(subject)
        .date(now.into())
        .message_id(Some(format!("<{message_id}>")))
        .raw_header(lettre::message::header::HeaderValue::new(
            lettre::message::header::HeaderName::new_from_ascii_str("Auto-Submitted"),
            "auto-generated".into(),
        ))
        .header(lettre::message::header::ContentType::TEXT_PLAIN)
        .body(text)
        .map_err(|e| format!("cannot build the notification email: {e}"))?;
    Ok(OutgoingEmail {
        delivery_id: n.id,
        envelope_from: settings.sender.from.email.to_string(),
        envelope_to: to.email.to_string(),
        message_id,
        bytes: message.formatted(),
    })
}

/// Subject and body of "a lead replied": the reply, the lead, its timeline.
fn rewarm_text(n: &Notification, lead: &Lead, timeline: &[Event]) -> (String, String) {
    let name = display_name(lead);
    let (subject, mut t) = if n.payload["reason"] == "score" {
        // Re-warmed by engagement (clicks…), not by a reply: say so, quote nothing.
        let last = str_field(&n.payload, &["score_kind"]).unwrap_or_else(|| "engagement".into());
        let threshold = n.payload["rewarm_score"].as_i64().unwrap_or(0);
        (
            format!("Re-warmed: {name} is engaging"),
            format!(
                "{name} <{}> reached the re-warm score of {threshold} (last: a {last}).\n",
                lead.email
            ),
        )
    } else {
        let reply = reply_of(&n.payload, timeline).unwrap_or_else(|| "(no text)".into());
        let mut t = format!("{name} <{}> wrote back:\n\n", lead.email);
        for line in reply.lines() {
            t.push_str(&format!("> {line}\n"));
        }
        (format!("Re-warmed: {name} replied"), t)
    };
    t.push_str("\nThe lead\n--------\n");
    let mut row = |k: &str, v: Option<String>| {
        if let Some(v) = v.filter(|v| !v.is_empty()) {
            t.push_str(&format!("{k:<12} {v}\n"));
        }
    };
    row("Email", Some(lead.email.to_string()));
    row("Name", Some(name.clone()));
    row("Company", lead.company.clone());
    row("Title", lead.title.clone());
    row("Owner", lead.owner_email.clone());
    row("Lost reason", lead.lost_reason.clone());
    row(
        "Lost at",
        // The day in the lead's zone (where the deal was lost), else UTC.
        lead.lost_at.map(|d| match lead.timezone {
            Some(tz) => d.with_timezone(&tz).format("%Y-%m-%d").to_string(),
            None => d.format("%Y-%m-%d").to_string(),
        }),
    );
    row("Tags", Some(lead.tags.join(", ")));
    for (k, v) in &lead.fields {
        row(k, Some(v.clone()));
    }
    row("State", Some(lead.state.as_str().to_string()));
    t.push_str("\nTimeline\n--------\n");
    let skip = timeline.len().saturating_sub(TIMELINE_LINES);
    for e in &timeline[skip..] {
        t.push_str(&format!(
            "{}  {:<12} {}\n",
            e.at.format("%Y-%m-%d %H:%M UTC"),
            e.kind,
            summarize(&e.detail)
        ));
    }
    t.push_str(&format!("\nIdempotency key: {}\n", n.idempotency_key));
    (subject, t)
}

/// The reply's text: from the payload, else the lead's last `replied` event.
fn reply_of(payload: &Value, timeline: &[Event]) -> Option<String> {
    str_field(payload, &["reply", "text", "reply_text"]).or_else(|| {
        timeline
            .iter()
            .rev()
            .filter(|e| e.kind == "replied")
            .find_map(|e| {
                e.detail
                    .get("text")
                    .and_then(Value::as_str)
                    .map(str::to_string)
            })
    })
}

fn display_name(lead: &Lead) -> String {
    let name = [lead.first_name.as_deref(), lead.last_name.as_deref()]
        .into_iter()
        .flatten()
        .collect::<Vec<_>>()
        .join(" ");
    if name.is_empty() {
        lead.email.to_string()
    } else {
        name
    }
}

/// An event's detail on one line: its scalar values as `key=value`, long text cut.
fn summarize(detail: &Value) -> String {
    let Value::Object(map) = detail else {
        return String::new();
    };
    map.iter()
        .filter_map(|(k, v)| {
            let v = match v {
                Value::String(s) => s.replace(['\r', '\n'], " "),
                Value::Number(n) => n.to_string(),
                Value::Bool(b) => b.to_string(),
                _ => return None,
            };
            let v = if v.chars().count() > 80 {
                format!("{}…", v.chars().take(80).collect::<String>())
            } else {
                v
            };
            Some(format!("{k}={v}"))
        })
        .collect::<Vec<_>>()
        .join(" ")
}

fn str_field(payload: &Value, names: &[&str]) -> Option<String> {
    names
        .iter()
        .find_map(|k| payload.get(k).and_then(Value::as_str))
        .map(str::to_string)
}

// ── Webhooks ───────────────────────────────────────────────────────────────────────────

/// The JSON body of a webhook notification (Slack: `{"text": …}`).
fn webhook_body(
    settings: &NotifySettings,
    n: &Notification,
    lead: Option<&Lead>,
    timeline: &[Event],
) -> Result<Vec<u8>, String> {
    let webhook = settings
        .webhook
        .as_ref()
        .ok_or("notify.webhook_url is not configured")?;
    let reply = reply_of(&n.payload, timeline);
    let body = if webhook.slack {
        let who = lead.map_or_else(
            || str_field(&n.payload, &["lead_email"]).unwrap_or_else(|| "a lead".into()),
            |l| {
                let company = l
                    .company
                    .as_deref()
                    .map(|c| format!(", {c}"))
                    .unwrap_or_default();
                format!("{} <{}>{company}", display_name(l), l.email)
            },
        );
        let owner = lead
            .and_then(|l| l.owner_email.as_deref())
            .map(|o| format!(" (owner: {o})"))
            .unwrap_or_default();
        let mut text = format!(":fire: Re-warmed: {who} replied{owner}");
        if let Some(reply) = reply.as_deref().filter(|r| !r.trim().is_empty()) {
            let cut: String = reply.chars().take(500).collect();
            text.push_str(&format!("\n> {}", cut.trim().replace('\n', "\n> ")));
        }
        json!({ "text": text, "idempotency_key": n.idempotency_key })
    } else {
        let mut body = match &n.payload {
            Value::Object(map) => map.clone(),
            _ => Map::new(),
        };
        body.insert("idempotency_key".into(), json!(n.idempotency_key));
        body.insert("notification_id".into(), json!(n.id));
        body.entry("event").or_insert(json!("lead.rewarmed"));
        if let Some(reply) = reply {
            body.entry("reply").or_insert(json!(reply));
        }
        // The lead and its timeline as they are at delivery (re-warmed, the reply on it),
        // over the copy taken when the notification was queued.
        if let Some(lead) = lead {
            body.insert(
                "lead".into(),
                serde_json::to_value(lead).unwrap_or(Value::Null),
            );
            let skip = timeline.len().saturating_sub(TIMELINE_LINES);
            body.insert(
                "timeline".into(),
                serde_json::to_value(&timeline[skip..]).unwrap_or(Value::Null),
            );
        }
        Value::Object(body)
    };
    serde_json::to_vec(&body).map_err(|e| format!("cannot encode the webhook body: {e}"))
}

/// `sha256=<hex HMAC-SHA256(key, body)>`, the `X-Rewarm-Signature` header.
pub fn signature(key: &str, body: &[u8]) -> String {
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(key.as_bytes())
        .expect("HMAC takes keys of any length");
    mac.update(body);
    format!(
        "sha256={}",
        crate::hex::encode(&mac.finalize().into_bytes())
    )
}

/// Posts each body; the outcome of each, as recorded.
async fn post_webhooks(
    settings: &NotifySettings,
    hooks: Vec<(&Notification, Vec<u8>)>,
    now: DateTime<Utc>,
) -> Vec<(i64, Result<(), String>, Option<DateTime<Utc>>)> {
    let Some(webhook) = settings.webhook.as_ref() else {
        return hooks
            .iter()
            .map(|(n, _)| {
                (
                    n.id,
                    Err("notify.webhook_url is not configured".into()),
                    None,
                )
            })
            .collect();
    };
    let key = match webhook
        .secret_env
        .as_deref()
        .map(Secret::from_env_or_credential)
    {
        None => None,
        Some(Ok(secret)) => Some(secret),
        Some(Err(e)) => {
            let error = format!("cannot read notify.webhook_secret_env: {e}");
            return hooks
                .iter()
                .map(|(n, _)| (n.id, Err(error.clone()), retry_at(n.attempts, now)))
                .collect();
        }
    };
    let _ = rustls::crypto::ring::default_provider().install_default();
    let client = match reqwest::Client::builder().timeout(WEBHOOK_TIMEOUT).build() {
        Ok(c) => c,
        Err(e) => {
            let error = format!("cannot build an HTTP client: {e}");
            return hooks
                .iter()
                .map(|(n, _)| (n.id, Err(error.clone()), retry_at(n.attempts, now)))
                .collect();
        }
    };
    let posts = hooks.into_iter().map(|(n, body)| {
        let mut request = client
            .post(&webhook.url)
            .header("content-type", "application/json")
            .header("idempotency-key", &n.idempotency_key)
            .header("user-agent", concat!("rewarm/", env!("CARGO_PKG_VERSION")));
        if let Some(key) = &key {
            request = request.header("x-rewarm-signature", signature(key.expose(), &body));
        }
        async move {
            let outcome = match request.body(body).send().await {
                Ok(response) => {
                    let status = response.status();
                    if status.is_success() {
                        Ok(())
                    } else if status.as_u16() == 429 || status.is_server_error() {
                        Err((format!("webhook answered {status}"), true))
                    } else {
                        Err((format!("webhook refused it: {status}"), false))
                    }
                }
                Err(e) => Err((format!("webhook unreachable: {e}"), true)),
            };
            match outcome {
                Ok(()) => (n.id, Ok(()), None),
                Err((error, true)) => (n.id, Err(error), retry_at(n.attempts, now)),
                Err((error, false)) => (n.id, Err(error), None),
            }
        }
    });
    futures::future::join_all(posts).await
}

// ── Weekly digest ──────────────────────────────────────────────────────────────────────

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

/// Subject and body of a weekly digest.
fn digest_text(p: &Value) -> (String, String) {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retries_back_off_exponentially_with_jitter_and_stop() {
        let now = Utc::now();
        for attempts in 1..MAX_ATTEMPTS {
            let exp = (30i64 << (attempts - 1).min(10)).min(3600);
            let at = retry_at(attempts, now).expect("a retry");
            let delay = (at - now).num_seconds();
            assert!(
                delay >= exp / 2 && delay <= exp,
                "attempt {attempts}: {delay}s"
            );
        }
        assert_eq!(retry_at(MAX_ATTEMPTS, now), None);
    }

    #[test]
    fn the_signature_is_a_hex_hmac_of_the_body() {
        // RFC 4231 test case 2.
        assert_eq!(
            signature("Jefe", b"what do ya want for nothing?"),
            "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }
}
