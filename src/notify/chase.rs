//! Stale hand-offs chased, every tick (at most every [`EVERY`] of the clock): re-warmed
//! leads with no feedback since their re-warm get a reminder to their owner after
//! `notify.remind_after` and are escalated to `notify.fallback_email` after
//! `notify.escalate_after` (the rules: `domain::handoff`). Each stage is an event
//! (`reminded`, `escalated`) written with its notifications in one transaction, at most once
//! per re-warm; with `notify.stale_returns_to_nurture` an escalated lead is then recycled.

use std::collections::BTreeMap;

use anyhow::Context as _;
use chrono::{DateTime, Utc};
use serde_json::json;

use crate::app::Loaded;
use crate::config::NotifySettings;
use crate::domain::handoff::ChaseStage;
use crate::domain::lead::Lead;
use crate::store::{Chase, NewNotification, StaleHandoff, Store};

/// Stale leads read and chased per statement.
const PAGE: usize = 500;
/// How often the chase looks for stale leads (its reads cost one pass over the re-warmed leads).
pub const EVERY: chrono::Duration = chrono::Duration::minutes(10);
const LAST_RUN: &str = "notify:chase:last_run";

/// What one chase did.
#[derive(Debug, Default, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ChaseReport {
    pub reminded: usize,
    pub escalated: usize,
    /// Escalated leads sent back to nurture (`stale_returns_to_nurture`).
    pub recycled: usize,
}

/// Runs [`chase_stale`] when it did not run in the last [`EVERY`] (per the stored last run).
pub async fn chase_if_due<S: Store>(
    store: &S,
    loaded: &Loaded,
    now: DateTime<Utc>,
) -> anyhow::Result<ChaseReport> {
    let last = store
        .kv_get(LAST_RUN)
        .await?
        .and_then(|v| DateTime::parse_from_rfc3339(&v).ok())
        .map(|t| t.with_timezone(&Utc));
    // A clock set back (a test, `--now` in the past) runs it too.
    if last.is_some_and(|t| t <= now && now - t < EVERY) {
        return Ok(ChaseReport::default());
    }
    let report = chase_stale(store, loaded, now).await?;
    store.kv_set(LAST_RUN, &now.to_rfc3339()).await?;
    Ok(report)
}

/// Finds the stale hand-offs at `now` and records the stage each one is due for.
pub async fn chase_stale<S: Store>(
    store: &S,
    loaded: &Loaded,
    now: DateTime<Utc>,
) -> anyhow::Result<ChaseReport> {
    let notify = &loaded.settings.notify;
    let policy = notify.chase;
    let mut report = ChaseReport::default();
    let mut after = 0;
    loop {
        let page = store
            .stale_handoffs(policy.cutoff(now), after, PAGE)
            .await
            .context("Failed to list stale hand-offs")?;
        let Some(last) = page.last() else { break };
        after = last.lead_id;
        let due: Vec<(&StaleHandoff, ChaseStage)> = page
            .iter()
            .filter_map(|s| policy.due(s.rewarmed_at, s.done, now).map(|st| (s, st)))
            .collect();
        let leads: BTreeMap<i64, Lead> = store
            .leads_by_ids(&due.iter().map(|(s, _)| s.lead_id).collect::<Vec<_>>())
            .await?
            .into_iter()
            .map(|l| (l.id, l))
            .collect();
        let chases: Vec<Chase> = due
            .iter()
            .filter_map(|(s, stage)| Some(chase(notify, leads.get(&s.lead_id)?, s, *stage, now)))
            .collect();
        let written = store
            .record_chases(&chases, now)
            .await
            .context("Failed to record reminders and escalations")?;
        let mut back: Vec<i64> = Vec::new();
        for c in chases.iter().filter(|c| written.contains(&c.lead_id)) {
            match c.stage {
                ChaseStage::Remind => report.reminded += 1,
                ChaseStage::Escalate => {
                    report.escalated += 1;
                    back.push(c.lead_id);
                }
            }
        }
        // Escalated before but still re-warmed (a stop between the two writes) go back too.
        back.extend(
            page.iter()
                .filter(|s| policy.recycles(s.done))
                .map(|s| s.lead_id),
        );
        if policy.returns_to_nurture {
            for lead_id in back {
                let reason = "stale hand-off: no feedback after escalation";
                if store.recycle(lead_id, reason, now, now).await?.is_some() {
                    report.recycled += 1;
                }
            }
        }
        if page.len() < PAGE {
            break;
        }
    }
    if report != ChaseReport::default() {
        tracing::info!(
            reminded = report.reminded,
            escalated = report.escalated,
            recycled = report.recycled,
            "Chased stale hand-offs"
        );
    }
    Ok(report)
}

/// The lead's owner, if it has one.
fn owner_of(lead: &Lead) -> Option<String> {
    lead.owner_email
        .clone()
        .filter(|o| !o.trim().is_empty())
        .map(|o| o.to_ascii_lowercase())
}

/// The stage's event and notifications: a reminder emails the owner (else the fallback
/// address); an escalation emails the fallback address (else the owner). Both go to the
/// webhook when one is configured.
fn chase(
    notify: &NotifySettings,
    lead: &Lead,
    s: &StaleHandoff,
    stage: ChaseStage,
    now: DateTime<Utc>,
) -> Chase {
    let owner = owner_of(lead);
    let to = match stage {
        ChaseStage::Remind => owner.clone().or_else(|| notify.fallback_email.clone()),
        ChaseStage::Escalate => notify.fallback_email.clone().or_else(|| owner.clone()),
    };
    let waited = (now - s.rewarmed_at).num_days();
    let key = format!("{}:{}:{}", stage.event(), lead.id, s.rewarm_event);
    let payload = json!({
        "event": stage.notification_event(), "lead_email": lead.email.to_string(),
        "owner": owner, "rewarmed_at": s.rewarmed_at, "days_without_feedback": waited,
        "returns_to_nurture": stage == ChaseStage::Escalate && notify.chase.returns_to_nurture,
    });
    let mut notifications = Vec::new();
    if let Some(to) = &to
        && (notify.owner_email || stage == ChaseStage::Escalate)
    {
        let mut payload = payload.clone();
        payload["to"] = json!(to);
        notifications.push(NewNotification {
            kind: "owner_email".into(),
            lead_id: Some(lead.id),
            idempotency_key: format!("{key}:owner_email"),
            payload,
        });
    }
    if notify.webhook_for(stage.notification_event()).is_some() {
        notifications.push(NewNotification {
            kind: "webhook".into(),
            lead_id: Some(lead.id),
            idempotency_key: format!("{key}:webhook"),
            payload: payload.clone(),
        });
    }
    Chase {
        lead_id: lead.id,
        rewarm_event: s.rewarm_event,
        stage,
        detail: json!({"to": to, "owner": owner, "rewarmed_at": s.rewarmed_at, "days_without_feedback": waited}),
        notifications,
    }
}
