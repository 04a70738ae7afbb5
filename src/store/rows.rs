//! Rows as both databases return them (times through [`Time`], JSON as `serde_json::Value`,
//! see `dialect.rs`), and how they become the store's values. Data read back is parsed
//! again, not trusted: a row that does not parse is reported as `StoreError::Corrupt`.

use std::str::FromStr;

use serde_json::Value;
use sqlx::FromRow;

use super::dialect::{Detail, Time};
use super::*;

#[derive(FromRow)]
pub(crate) struct LeadRow {
    id: i64,
    email: String,
    first_name: Option<String>,
    last_name: Option<String>,
    company: Option<String>,
    title: Option<String>,
    owner_email: Option<String>,
    owner_name: Option<String>,
    lost_reason: Option<String>,
    lost_at: Option<Time>,
    timezone: Option<String>,
    tags: Value,
    fields: Value,
    state: String,
    created_at: Time,
    updated_at: Time,
}

impl LeadRow {
    pub(crate) fn into_lead(self) -> Result<Lead, StoreError> {
        let corrupt = |reason: String| StoreError::Corrupt {
            table: "leads",
            id: self.id,
            reason,
        };
        Ok(Lead {
            id: self.id,
            email: EmailAddress::parse(&self.email).map_err(|e| corrupt(e.to_string()))?,
            first_name: self.first_name,
            last_name: self.last_name,
            company: self.company,
            title: self.title,
            owner_email: self.owner_email,
            owner_name: self.owner_name,
            lost_reason: self.lost_reason,
            lost_at: self.lost_at.map(|t| t.0),
            timezone: self
                .timezone
                .as_deref()
                .map(|tz| {
                    chrono_tz::Tz::from_str(tz)
                        .map_err(|_| corrupt(format!("unknown time zone `{tz}`")))
                })
                .transpose()?,
            tags: serde_json::from_value(self.tags).map_err(|e| corrupt(format!("tags: {e}")))?,
            fields: serde_json::from_value(self.fields)
                .map_err(|e| corrupt(format!("fields: {e}")))?,
            state: LeadState::parse(&self.state)
                .ok_or_else(|| corrupt(format!("unknown state `{}`", self.state)))?,
            created_at: self.created_at.0,
            updated_at: self.updated_at.0,
        })
    }
}

#[derive(FromRow)]
pub(crate) struct SuppressionRow {
    id: i64,
    address: String,
    reason: String,
    evidence: Value,
    created_at: Time,
}

impl SuppressionRow {
    pub(crate) fn id(&self) -> i64 {
        self.id
    }

    pub(crate) fn into_suppression(self) -> Result<Suppression, StoreError> {
        Ok(Suppression {
            reason: SuppressionReason::parse(&self.reason).ok_or_else(|| StoreError::Corrupt {
                table: "suppressions",
                id: self.id,
                reason: format!("unknown reason `{}`", self.reason),
            })?,
            address: self.address,
            evidence: self.evidence,
            created_at: self.created_at.0,
        })
    }
}

#[derive(FromRow)]
pub(crate) struct NotificationRow {
    id: i64,
    idempotency_key: String,
    kind: String,
    lead_id: Option<i64>,
    payload: Value,
    state: String,
    attempts: i64,
    next_at: Time,
    last_error: Option<String>,
    created_at: Time,
    sent_at: Option<Time>,
}

impl NotificationRow {
    pub(crate) fn into_notification(self) -> Notification {
        Notification {
            id: self.id,
            idempotency_key: self.idempotency_key,
            kind: self.kind,
            lead_id: self.lead_id,
            payload: self.payload,
            state: self.state,
            attempts: u32::try_from(self.attempts).unwrap_or(u32::MAX),
            next_at: self.next_at.0,
            last_error: self.last_error,
            created_at: self.created_at.0,
            sent_at: self.sent_at.map(|t| t.0),
        }
    }
}

/// A claimed delivery, as `claim_due`'s `RETURNING` gives it.
#[derive(FromRow)]
pub(crate) struct ClaimRow {
    id: i64,
    lead_id: i64,
    enrolment_id: i64,
    campaign: String,
    step: i64,
    template: String,
    attempts: i64,
    due_at: Time,
}

impl From<ClaimRow> for ClaimedDelivery {
    fn from(r: ClaimRow) -> Self {
        ClaimedDelivery {
            id: r.id,
            lead_id: r.lead_id,
            enrolment_id: r.enrolment_id,
            campaign: r.campaign,
            step: u32::try_from(r.step).unwrap_or(0),
            template: r.template,
            attempts: u32::try_from(r.attempts).unwrap_or(0),
            due_at: r.due_at.0,
        }
    }
}

#[derive(FromRow)]
pub(crate) struct StalledRow {
    id: i64,
    lead_id: i64,
    campaign: String,
    last_step: i64,
    last_at: Time,
}

impl From<StalledRow> for StalledEnrolment {
    fn from(r: StalledRow) -> Self {
        StalledEnrolment {
            enrolment_id: r.id,
            lead_id: r.lead_id,
            campaign: r.campaign,
            last_step: u32::try_from(r.last_step).unwrap_or(0),
            last_at: r.last_at.0,
        }
    }
}

#[derive(FromRow)]
pub(crate) struct PendingRow {
    lead_id: i64,
    campaign: String,
    step: i64,
    template: String,
    due_at: Time,
}

impl From<PendingRow> for PendingDelivery {
    fn from(r: PendingRow) -> Self {
        PendingDelivery {
            lead_id: r.lead_id,
            campaign: r.campaign,
            step: u32::try_from(r.step).unwrap_or(0),
            template: r.template,
            due_at: r.due_at.0,
        }
    }
}

/// A lead's state and lifecycle columns (`LEAD_LIFECYCLE`).
#[derive(FromRow)]
pub(crate) struct LifecycleRow {
    pub(crate) state: String,
    scope_reason: Option<String>,
    recheck_at: Option<Time>,
    paused_from: Option<String>,
}

impl LifecycleRow {
    /// The lead's state and lifecycle columns; an unknown state is corrupt.
    pub(crate) fn parse(self, id: i64) -> Result<(LeadState, LeadLifecycle), StoreError> {
        let state = LeadState::parse(&self.state).ok_or_else(|| StoreError::Corrupt {
            table: "leads",
            id,
            reason: format!("unknown state `{}`", self.state),
        })?;
        Ok((
            state,
            LeadLifecycle {
                scope_reason: self.scope_reason,
                recheck_at: self.recheck_at.map(|t| t.0),
                paused_from: self.paused_from.as_deref().and_then(LeadState::parse),
            },
        ))
    }
}

#[derive(FromRow)]
pub(crate) struct EventRow {
    at: Time,
    kind: String,
    detail: Detail,
}

impl From<EventRow> for Event {
    fn from(r: EventRow) -> Self {
        Event {
            at: r.at.0,
            kind: r.kind,
            detail: r.detail.0,
        }
    }
}

#[derive(FromRow)]
pub(crate) struct TargetRow {
    id: i64,
    lead_id: i64,
    email: String,
    campaign: String,
    step: i64,
    message_id: Option<String>,
}

impl TargetRow {
    pub(crate) fn into_target(self) -> Result<DeliveryTarget, StoreError> {
        Ok(DeliveryTarget {
            delivery_id: self.id,
            lead_id: self.lead_id,
            email: EmailAddress::parse(&self.email).map_err(|e| StoreError::Corrupt {
                table: "leads",
                id: self.lead_id,
                reason: e.to_string(),
            })?,
            campaign: self.campaign,
            step: u32::try_from(self.step + 1).unwrap_or(0),
            message_id: self.message_id,
        })
    }
}

#[derive(FromRow)]
pub(crate) struct InboundRow {
    id: i64,
    dedupe_key: String,
    source: String,
    received_at: Time,
    message_id: Option<String>,
    from_address: Option<String>,
    subject: Option<String>,
    classification: String,
    lead_id: Option<i64>,
    delivery_id: Option<i64>,
    matched_by: Option<String>,
    text: Option<String>,
    raw: Vec<u8>,
    effects: Value,
}

impl From<InboundRow> for StoredInbound {
    fn from(r: InboundRow) -> Self {
        StoredInbound {
            id: r.id,
            effects: r.effects,
            record: InboundRecord {
                dedupe_key: r.dedupe_key,
                source: r.source,
                received_at: r.received_at.0,
                message_id: r.message_id,
                from_address: r.from_address,
                subject: r.subject,
                classification: r.classification,
                lead_id: r.lead_id,
                delivery_id: r.delivery_id,
                matched_by: r.matched_by,
                text: r.text,
                raw: r.raw,
            },
        }
    }
}

/// A re-warmed lead's id and when it last re-warmed.
#[derive(FromRow)]
pub(crate) struct RewarmedRow {
    pub(crate) id: i64,
    pub(crate) at: Time,
}

#[derive(FromRow)]
pub(crate) struct UnknownRow {
    id: i64,
    lead_id: i64,
    email: String,
    campaign: String,
    step: i64,
    updated_at: Time,
    last_error: Option<String>,
}

impl From<UnknownRow> for UnknownDelivery {
    fn from(r: UnknownRow) -> Self {
        UnknownDelivery {
            delivery_id: r.id,
            lead_id: r.lead_id,
            email: r.email,
            campaign: r.campaign,
            step: u32::try_from(r.step + 1).unwrap_or(0),
            at: r.updated_at.0,
            error: r.last_error,
        }
    }
}
