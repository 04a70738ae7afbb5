//! Pause: held work. A paused campaign (`campaigns pause`) or a paused lead (`leads pause`)
//! keeps its waiting deliveries, with state `held` and the state they were held in
//! (`held_from`). Claims read only `scheduled` / `retry_wait` rows, so held work never enters
//! a claim (nothing to skip, nothing scanned); resuming puts each row back in the state it
//! was held in, with its due time unchanged — an overdue step is due at once and dispatch
//! still waits for the lead's window and open day (see docs/campaigns.md#pause). A row stays
//! held while either its lead or its campaign is paused.
//!
//! The SQL is the same on both databases (`$1` placeholders, times through `Time`, JSON
//! parameters as `Value`): the methods are written once ([`hold_methods!`]) and expanded in
//! `sqlite/hold.rs` and `postgres/hold.rs`. Every statement is indexed: a campaign's waiting
//! rows by `deliveries_campaign_waiting` and its held rows by `deliveries_campaign_held`
//! (migration 0020 on both databases: neither moves when a row is sent); a lead's rows by its
//! `(lead_id, …)` unique key.

use std::future::Future;

use chrono::{DateTime, Utc};
use sqlx::FromRow;

use super::dialect::Time;
use super::*;

/// A campaign paused by `campaigns pause`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct PausedCampaign {
    pub name: String,
    pub paused_at: DateTime<Utc>,
    pub paused_by: String,
}

/// What pausing or resuming a campaign did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct HoldChange {
    /// False when the campaign already was in the asked state (nothing changed).
    pub changed: bool,
    /// Deliveries held (pause) or released (resume).
    pub deliveries: u64,
}

/// One delivery of a lead, whatever its state, for `leads show` and `explain`.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct LeadDelivery {
    pub campaign: String,
    pub cycle: i64,
    /// 0-based, as stored.
    pub step: u32,
    pub template: String,
    pub state: String,
    /// The state a `held` row returns to.
    pub held_from: Option<String>,
    pub due_at: DateTime<Utc>,
    pub sent_at: Option<DateTime<Utc>>,
    pub attempts: u32,
    pub last_error: Option<String>,
    pub updated_at: DateTime<Utc>,
}

/// See the module docs.
pub trait HoldStore {
    /// Pauses campaign `name` (by `by`): records it, holds its waiting deliveries and writes
    /// a `paused` event {campaign, by, scope: "campaign"} on each lead that had one.
    fn pause_campaign(
        &self,
        name: &str,
        by: &str,
        now: DateTime<Utc>,
    ) -> impl Future<Output = Result<HoldChange, StoreError>> + Send;

    /// Resumes campaign `name`: releases its held deliveries (except those of paused
    /// leads), writing a `resumed` event on each lead released.
    fn resume_campaign(
        &self,
        name: &str,
        by: &str,
        now: DateTime<Utc>,
    ) -> impl Future<Output = Result<HoldChange, StoreError>> + Send;

    /// The paused campaigns, by name.
    fn paused_campaigns(
        &self,
    ) -> impl Future<Output = Result<Vec<PausedCampaign>, StoreError>> + Send;

    /// Holds the waiting deliveries created since the pause (a new enrolment, the step after
    /// one in flight) of paused campaigns and paused leads; returns how many. Each pass
    /// runs it before dispatch.
    fn hold_new(&self, now: DateTime<Utc>) -> impl Future<Output = Result<u64, StoreError>> + Send;

    /// Every delivery of lead `lead_id`, oldest first.
    fn lead_deliveries(
        &self,
        lead_id: i64,
    ) -> impl Future<Output = Result<Vec<LeadDelivery>, StoreError>> + Send;
}

pub(crate) const PAUSE_CAMPAIGN: &str = "INSERT INTO paused_campaigns (name, paused_at, paused_by) VALUES ($1, $2, $3) ON CONFLICT (name) DO NOTHING";
pub(crate) const UNPAUSE_CAMPAIGN: &str = "DELETE FROM paused_campaigns WHERE name = $1";
pub(crate) const PAUSED_CAMPAIGNS: &str =
    "SELECT name, paused_at, paused_by FROM paused_campaigns ORDER BY name";
/// Campaign $1 at $2, event detail $3: the events first (they read the rows still waiting).
/// Only while the campaign is paused, read in the same statement: `hold_new` reads the paused
/// campaigns before its write, and a `campaigns resume` committed in between must not see
/// its released rows held again, with nothing left to release them.
pub(crate) const HOLD_CAMPAIGN: [&str; 2] = [
    "INSERT INTO events (lead_id, at, kind, detail)
     SELECT DISTINCT lead_id, $2, 'paused', $3 FROM deliveries WHERE campaign = $1 AND state IN ('scheduled', 'retry_wait')
       AND EXISTS (SELECT 1 FROM paused_campaigns p WHERE p.name = $1)",
    "UPDATE deliveries SET held_from = state, state = 'held', updated_at = $2
     WHERE campaign = $1 AND state IN ('scheduled', 'retry_wait') AND $3 = $3
       AND EXISTS (SELECT 1 FROM paused_campaigns p WHERE p.name = $1)",
];
/// Campaign $1 at $2, event detail $3: rows of paused leads stay held.
pub(crate) const RELEASE_CAMPAIGN: [&str; 2] = [
    "INSERT INTO events (lead_id, at, kind, detail)
     SELECT DISTINCT d.lead_id, $2, 'resumed', $3 FROM deliveries d
     WHERE d.campaign = $1 AND d.state = 'held'
       AND NOT EXISTS (SELECT 1 FROM leads l WHERE l.id = d.lead_id AND l.state = 'paused')",
    "UPDATE deliveries SET state = COALESCE(held_from, 'scheduled'), held_from = NULL, updated_at = $2
     WHERE campaign = $1 AND state = 'held' AND $3 = $3
       AND NOT EXISTS (SELECT 1 FROM leads l WHERE l.id = deliveries.lead_id AND l.state = 'paused')",
];
/// `leads pause` (inside `set_lifecycle`): lead $1's waiting rows at $2.
pub(crate) const HOLD_LEAD: &str = concat!(
    "UPDATE deliveries SET held_from = state, state = 'held', updated_at = $2 WHERE ",
    of_leads!("$1"),
    " AND (state IN ('scheduled', 'retry_wait')) IS TRUE"
);
/// `leads resume`: lead $1's held rows at $2, except those of paused campaigns.
pub(crate) const RELEASE_LEAD: &str = concat!(
    "UPDATE deliveries SET state = COALESCE(held_from, 'scheduled'), held_from = NULL, updated_at = $2 WHERE ",
    of_leads!("$1"),
    " AND (state = 'held') IS TRUE AND campaign NOT IN (SELECT name FROM paused_campaigns)"
);
/// `hold_new` for paused leads ($1: now): from the paused leads (`leads_state`) to their rows.
pub(crate) const HOLD_PAUSED_LEADS: &str = concat!(
    "UPDATE deliveries SET held_from = state, state = 'held', updated_at = $1
     WHERE (state IN ('scheduled', 'retry_wait')) IS TRUE AND ",
    of_leads!("SELECT id FROM leads WHERE state = 'paused'")
);
/// Is any lead paused? (`leads_state`; one row at most.)
pub(crate) const ANY_PAUSED_LEAD: &str =
    "SELECT count(*) FROM (SELECT 1 FROM leads WHERE state = 'paused' LIMIT 1) AS p";
pub(crate) const LEAD_DELIVERIES: &str = concat!(
    "SELECT campaign, cycle, step, template, state, held_from, due_at, sent_at, attempts, last_error, updated_at
     FROM deliveries WHERE ",
    of_leads!("$1"),
    " ORDER BY id"
);

#[derive(FromRow)]
pub(crate) struct PausedRow {
    name: String,
    paused_at: Time,
    paused_by: String,
}

impl From<PausedRow> for PausedCampaign {
    fn from(r: PausedRow) -> PausedCampaign {
        PausedCampaign {
            name: r.name,
            paused_at: r.paused_at.0,
            paused_by: r.paused_by,
        }
    }
}

#[derive(FromRow)]
pub(crate) struct LeadDeliveryRow {
    campaign: String,
    cycle: i64,
    step: i64,
    template: String,
    state: String,
    held_from: Option<String>,
    due_at: Time,
    sent_at: Option<Time>,
    attempts: i64,
    last_error: Option<String>,
    updated_at: Time,
}

impl From<LeadDeliveryRow> for LeadDelivery {
    fn from(r: LeadDeliveryRow) -> LeadDelivery {
        LeadDelivery {
            campaign: r.campaign,
            cycle: r.cycle,
            step: u32::try_from(r.step).unwrap_or(0),
            template: r.template,
            state: r.state,
            held_from: r.held_from,
            due_at: r.due_at.0,
            sent_at: r.sent_at.map(|t| t.0),
            attempts: u32::try_from(r.attempts).unwrap_or(0),
            last_error: r.last_error,
            updated_at: r.updated_at.0,
        }
    }
}

/// Pausing and resuming a campaign, one transaction: `mark` records the change
/// (`paused_campaigns`; a row affected: it changed), then `statements` (campaign $1 at $2,
/// event detail $3) write the leads' events and hold or release their deliveries.
macro_rules! change_campaign_hold {
    ($self:ident, $name:ident, $by:ident, $now:ident, $mark:expr, $statements:expr) => {{
        let mut tx = $self.write().await?;
        let changed = $mark.execute(&mut *tx).await?.rows_affected() > 0;
        let detail = json!({"campaign": $name, "by": $by, "scope": "campaign"});
        let mut deliveries = 0;
        for sql in $statements {
            deliveries = sqlx::query(sql)
                .bind($name)
                .bind(Time($now))
                .bind(&detail)
                .execute(&mut *tx)
                .await?
                .rows_affected();
        }
        tx.commit().await?;
        Ok(HoldChange {
            changed,
            deliveries,
        })
    }};
}

/// `impl HoldStore for …Store { hold_methods!(); }`: the same statements on both databases;
/// `self.write()` is the backend's write transaction.
macro_rules! hold_methods {
    () => {
        async fn pause_campaign(
            &self,
            name: &str,
            by: &str,
            now: DateTime<Utc>,
        ) -> Result<HoldChange, StoreError> {
            let mark = sqlx::query(PAUSE_CAMPAIGN)
                .bind(name)
                .bind(Time(now))
                .bind(by);
            change_campaign_hold!(self, name, by, now, mark, HOLD_CAMPAIGN)
        }

        async fn resume_campaign(
            &self,
            name: &str,
            by: &str,
            now: DateTime<Utc>,
        ) -> Result<HoldChange, StoreError> {
            let mark = sqlx::query(UNPAUSE_CAMPAIGN).bind(name);
            change_campaign_hold!(self, name, by, now, mark, RELEASE_CAMPAIGN)
        }

        async fn paused_campaigns(&self) -> Result<Vec<PausedCampaign>, StoreError> {
            let rows: Vec<PausedRow> = sqlx::query_as(PAUSED_CAMPAIGNS)
                .fetch_all(&self.pool)
                .await?;
            Ok(rows.into_iter().map(PausedCampaign::from).collect())
        }

        async fn hold_new(&self, now: DateTime<Utc>) -> Result<u64, StoreError> {
            let paused = self.paused_campaigns().await?;
            let leads_paused: i64 = sqlx::query_scalar(ANY_PAUSED_LEAD)
                .fetch_one(&self.pool)
                .await?;
            // Nothing paused (the usual case): no write transaction at all.
            if paused.is_empty() && leads_paused == 0 {
                return Ok(0);
            }
            let mut tx = self.write().await?;
            let mut held = 0;
            for campaign in &paused {
                let detail = json!({"campaign": campaign.name, "by": campaign.paused_by, "scope": "campaign"});
                for (i, sql) in HOLD_CAMPAIGN.into_iter().enumerate() {
                    let n = sqlx::query(sql)
                        .bind(&campaign.name)
                        .bind(Time(now))
                        .bind(&detail)
                        .execute(&mut *tx)
                        .await?
                        .rows_affected();
                    if i == 1 {
                        held += n;
                    }
                }
            }
            if leads_paused > 0 {
                held += sqlx::query(HOLD_PAUSED_LEADS)
                    .bind(Time(now))
                    .execute(&mut *tx)
                    .await?
                    .rows_affected();
            }
            tx.commit().await?;
            Ok(held)
        }

        async fn lead_deliveries(&self, lead_id: i64) -> Result<Vec<LeadDelivery>, StoreError> {
            let rows: Vec<LeadDeliveryRow> = sqlx::query_as(LEAD_DELIVERIES)
                .bind(lead_id)
                .fetch_all(&self.pool)
                .await?;
            Ok(rows.into_iter().map(LeadDelivery::from).collect())
        }
    };
}
