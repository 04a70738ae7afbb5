//! What a person does to one lead — the same code whether it comes from the command line
//! (`leads won`, …), sales' one-click feedback (`/feedback/{token}`) or the console:
//!
//! - [`apply_transition`]: a lifecycle [`Transition`] (won, working, out of scope, pause,
//!   resume) with the notifications it sends (`LeadStore::set_lifecycle` writes the event,
//!   naming who asked);
//! - [`feedback`]: one of sales' feedback actions, applied and written as a `feedback` event
//!   {action, by, result} (plus `reason`/`recheck_at` or `months`) with its webhook;
//! - [`bring_back`](crate::outbound::recycle::bring_back) stays in `recycle`.

use chrono::{DateTime, Utc};
use serde_json::json;

use crate::config::Settings;
use crate::domain::cadence::Span;
use crate::domain::lead::Lead;
use crate::domain::lifecycle::Transition;
use crate::notify::feedback::FeedbackAction;
use crate::outbound::recycle::{Recycled, bring_back};
use crate::store::{LifecycleChange, Store, StoreError};

/// Out-of-scope reasons are kept short.
pub const REASON_CHARS: usize = 200;

/// Applies `transition` to `lead` on behalf of `by`, with the notifications it sends.
pub async fn apply_transition<S: Store>(
    store: &S,
    settings: &Settings,
    lead: &Lead,
    transition: &Transition,
    by: &str,
    now: DateTime<Utc>,
) -> Result<LifecycleChange, StoreError> {
    let notifications =
        crate::notify::lifecycle_notifications(&settings.notify, lead, transition, now);
    store
        .set_lifecycle(lead.id, transition, by, &notifications, now)
        .await
}

/// What an action did, in words a person reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Done(String),
    Already(&'static str),
    Refused(String),
}

impl Outcome {
    /// The `result` of the `feedback` event: `applied`, `already` or `refused: why`.
    pub fn result(&self) -> String {
        match self {
            Outcome::Done(_) => "applied".into(),
            Outcome::Already(_) => "already".into(),
            Outcome::Refused(why) => format!("refused: {why}"),
        }
    }

    /// What a lifecycle change means to the person who asked for it.
    pub fn of_change(change: LifecycleChange) -> Outcome {
        match change {
            LifecycleChange::Applied { to, .. } => {
                Outcome::Done(format!("the lead is {}", to.as_str()))
            }
            LifecycleChange::Already { state } => Outcome::Already(state.as_str()),
            LifecycleChange::Refused { from, why } => {
                Outcome::Refused(format!("the lead is {}: {why}", from.as_str()))
            }
            LifecycleChange::NoSuchLead => Outcome::Refused("the lead no longer exists".into()),
        }
    }

    /// What a recycle means to the person who asked for it.
    pub fn of_recycle(r: Recycled) -> Outcome {
        match r {
            Recycled::Back { to, next, .. } => Outcome::Done(format!(
                "back to {}, next email not before {}",
                to.as_str(),
                next.format("%Y-%m-%d")
            )),
            Recycled::Refused(why) => Outcome::Refused(why),
        }
    }
}

/// The out-of-scope form as typed: a reason and "3", "6", "12" or "never" months.
#[derive(Debug, Clone, Default, serde::Deserialize)]
pub struct OutOfScopeForm {
    pub reason: Option<String>,
    /// Months until the re-check ("3", "6", "12"; "0" or "never": none).
    pub recheck: Option<String>,
}

impl OutOfScopeForm {
    /// Its reason (trimmed, cut to [`REASON_CHARS`]; a default when empty) and re-check date
    /// (12 months unless "3", "6" or "never"), in the lead's zone.
    pub fn choice(
        &self,
        lead: &Lead,
        settings: &Settings,
        now: DateTime<Utc>,
    ) -> (String, Option<DateTime<Utc>>) {
        let reason: String = self
            .reason
            .as_deref()
            .map(str::trim)
            .filter(|r| !r.is_empty())
            .unwrap_or("marked out of scope by sales")
            .chars()
            .take(REASON_CHARS)
            .collect();
        let months = match self.recheck.as_deref().map(str::trim) {
            Some("never" | "0") => None,
            Some("3") => Some(3),
            Some("6") => Some(6),
            _ => Some(12),
        };
        let recheck_at =
            months.map(|m| Span::Months(m).after(now, lead.zone_or(settings.default_tz)));
        (reason, recheck_at)
    }
}

/// Applies sales' feedback `action` to `lead` on behalf of `by` and writes the `feedback`
/// event {action, by, result, …} with its webhook; the change writes its own event.
pub async fn feedback<S: Store>(
    store: &S,
    settings: &Settings,
    lead: &Lead,
    action: FeedbackAction,
    form: &OutOfScopeForm,
    by: &str,
    now: DateTime<Utc>,
) -> Result<Outcome, StoreError> {
    let mut detail = json!({"action": action.as_str(), "by": by});
    let outcome = match action {
        FeedbackAction::Working => {
            let change =
                apply_transition(store, settings, lead, &Transition::Working, by, now).await?;
            Outcome::of_change(change)
        }
        FeedbackAction::Won => {
            let change = apply_transition(store, settings, lead, &Transition::Won, by, now).await?;
            Outcome::of_change(change)
        }
        FeedbackAction::OutOfScope => {
            let (reason, recheck_at) = form.choice(lead, settings, now);
            detail["reason"] = json!(reason);
            detail["recheck_at"] = json!(recheck_at);
            let t = Transition::OutOfScope { reason, recheck_at };
            Outcome::of_change(apply_transition(store, settings, lead, &t, by, now).await?)
        }
        FeedbackAction::NotNow(months) => {
            detail["months"] = json!(months);
            let resume_at =
                Span::Months(u32::from(months)).after(now, lead.zone_or(settings.default_tz));
            let reason = format!("not now: back in {months} months ({by})");
            let r = bring_back(store, settings, lead, &reason, resume_at, None, now).await?;
            Outcome::of_recycle(r)
        }
    };
    detail["result"] = json!(outcome.result());
    let hooks =
        crate::notify::event_webhook(&settings.notify, lead, "feedback", detail.clone(), now);
    store
        .record_event(lead.id, "feedback", &detail, &hooks, now)
        .await?;
    tracing::info!(lead_id = lead.id, action = action.as_str(), result = %outcome.result(), "Sales feedback recorded");
    Ok(outcome)
}

/// Forgets the person at `email` (the right to erasure, `leads forget --yes`): their data
/// erased everywhere, the lead kept as a suppressed placeholder, a keyed hash keeping the
/// address from coming back (see `store/privacy.rs`); `by` is recorded. Cannot be undone.
pub async fn forget<S: Store>(
    store: &S,
    email: &crate::domain::email::EmailAddress,
    by: &str,
    now: DateTime<Utc>,
) -> Result<crate::store::ForgetReport, StoreError> {
    let hash = forgotten_hash(store, email).await?;
    store.forget(email, &hash, by, now).await
}

/// The keyed hash of `email` under this database's pepper (created on first use), as the
/// list of forgotten addresses keeps it.
pub async fn forgotten_hash<S: Store>(
    store: &S,
    email: &crate::domain::email::EmailAddress,
) -> Result<String, StoreError> {
    use crate::domain::privacy::{PEPPER_SECRET, address_hash, new_pepper};
    let pepper = store.secret(PEPPER_SECRET, new_pepper).await?;
    Ok(address_hash(&pepper, email))
}
