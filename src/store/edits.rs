//! Campaign edits: the campaign versions the daemon applied (migration 0010), what `plan`
//! counts, and the writes of a re-plan (`outbound::replan`) and of the lateness policy
//! (`outbound::late`). The SQL is the same on both databases (`$1` placeholders, times
//! through `Time`, JSON parameters as `Value`), so the methods are written once here
//! ([`edit_methods!`]) and expanded in `sqlite/edits.rs` and `postgres/edits.rs`.
//!
//! Counting is aggregate SQL over the waiting rows of one campaign (the
//! `deliveries_campaign_waiting` partial index); rows that need the cadence maths (a changed
//! rhythm, a lateness policy) are read page by page by id, never all at once.
//!
//! The SQL statements are in [`super::edits_sql`].

use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;

use chrono::{DateTime, Utc};
use serde_json::{Value, json};
use sqlx::FromRow;

use super::dialect::{Detail, Time};
use super::*;

/// A campaign definition as the daemon applied it.
#[derive(Debug, Clone, PartialEq)]
pub struct CampaignVersion {
    pub campaign: String,
    pub version: String,
    /// The normalised definition (`outbound::replan::CampaignDef` as JSON).
    pub definition: Value,
    pub applied_at: DateTime<Utc>,
}

/// Active enrolments of a campaign, per version followed and segment.
#[derive(Debug, Clone, PartialEq)]
pub struct Followed {
    pub campaign: String,
    /// None: the campaign's current version.
    pub version: Option<String>,
    pub segment: String,
    pub enrolments: i64,
}

/// Waiting deliveries (scheduled or waiting for a retry) of a campaign per step and template.
#[derive(Debug, Clone, PartialEq)]
pub struct WaitingCount {
    pub step: u32,
    pub template: String,
    pub retrying: bool,
    pub deliveries: i64,
}

/// One waiting delivery with what the cadence maths needs of its lead and its history.
#[derive(Debug, Clone, PartialEq)]
pub struct WaitingStep {
    pub id: i64,
    pub lead_id: i64,
    pub enrolment_id: i64,
    pub email: String,
    pub campaign: String,
    pub step: u32,
    pub template: String,
    /// `scheduled` or `retry_wait`.
    pub state: String,
    pub due_at: DateTime<Utc>,
    /// The loss date, or the import time for a lead without one.
    pub anchor: DateTime<Utc>,
    pub timezone: Option<String>,
    /// The lead's `country` field as stored (its holidays), if it has one.
    pub country: Option<String>,
    /// When the step before it ended (sent, failed, unknown, skipped), in the same round.
    pub prev_at: Option<DateTime<Utc>>,
}

/// A waiting delivery moved to a new due time.
#[derive(Debug, Clone, PartialEq)]
pub struct Rescheduled {
    pub delivery_id: i64,
    pub lead_id: i64,
    pub step: u32,
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
}

/// An active enrolment, with how far its current round went.
#[derive(Debug, Clone, PartialEq)]
pub struct ActiveEnrolment {
    pub enrolment_id: i64,
    pub lead_id: i64,
    pub segment: String,
    /// Steps of the current round that ended (sent, failed, unknown, tasked, skipped): the
    /// step a move continues at.
    pub steps_done: u32,
    /// When the last of them ended.
    pub last_at: Option<DateTime<Utc>>,
}

/// Where an enrolment of a removed campaign goes.
#[derive(Debug, Clone)]
pub struct EnrolmentMove {
    pub enrolment_id: i64,
    pub lead_id: i64,
    pub from_campaign: String,
    /// Why it moves, as events name it: "config change", "lead data changed".
    pub via: String,
    /// None: no segment names a campaign for the lead: it is parked `paused` with `reason`.
    pub to: Option<MoveTarget>,
    pub reason: String,
}

/// The campaign a moved lead continues in, and its next step there (None: the lead had
/// as many steps as the campaign has: it completes).
#[derive(Debug, Clone)]
pub struct MoveTarget {
    pub campaign: String,
    pub segment: String,
    pub next: Option<NextStep>,
}

/// What the edits of campaigns need of a database (see the module docs).
pub trait EditStore {
    /// The current version of every campaign ever applied: its row applied last.
    fn current_versions(
        &self,
    ) -> impl Future<Output = Result<BTreeMap<String, CampaignVersion>, StoreError>> + Send;

    /// Records `version` of `campaign` as applied at `now` (its current version from now
    /// on); a version seen before keeps its definition and gets the new time.
    fn record_version(
        &self,
        campaign: &str,
        version: &str,
        definition: &Value,
        now: DateTime<Utc>,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Pins versions when `campaign` changes from `previous` to `new`: enrolments of any
    /// state that follow the current version implicitly (NULL) are stamped `previous`
    /// (what they followed), then the active ones are stamped `new`.
    fn pin_versions(
        &self,
        campaign: &str,
        previous: Option<&str>,
        new: &str,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Active enrolments per campaign, version and segment (one aggregate statement).
    fn followed(&self) -> impl Future<Output = Result<Vec<Followed>, StoreError>> + Send;

    /// The campaigns with active enrolments: one probe of `enrolments_state_campaign` per
    /// campaign, whatever the number of enrolments (`followed` counts them all: 1 s at 1M).
    fn active_campaigns(&self)
    -> impl Future<Output = Result<BTreeSet<String>, StoreError>> + Send;

    /// The version each enrolment of lead `lead_id` follows, per campaign (None: its
    /// campaign's current version), for `explain`.
    fn enrolment_versions(
        &self,
        lead_id: i64,
    ) -> impl Future<Output = Result<BTreeMap<String, Option<String>>, StoreError>> + Send;

    /// Waiting deliveries of `campaign` per step, template and state (one aggregate).
    fn waiting_counts(
        &self,
        campaign: &str,
    ) -> impl Future<Output = Result<Vec<WaitingCount>, StoreError>> + Send;

    /// Waiting deliveries of `campaign` with id > `after_id`, by id, at most `limit`;
    /// `retries`: also those waiting for a retry.
    fn waiting_steps(
        &self,
        campaign: &str,
        retries: bool,
        after_id: i64,
        limit: usize,
    ) -> impl Future<Output = Result<Vec<WaitingStep>, StoreError>> + Send;

    /// Cancels every waiting delivery of `campaign` at step `from_step` or later (a lowered
    /// `max_touches`), each with an event `cancelled` {campaign, step, reason, max_touches}.
    /// Returns how many.
    fn cancel_from_step(
        &self,
        campaign: &str,
        from_step: u32,
        reason: &str,
        now: DateTime<Utc>,
    ) -> impl Future<Output = Result<u64, StoreError>> + Send;

    /// Sets `template` on the waiting deliveries of `campaign` at steps `from..=to` that name
    /// another one. Returns how many changed.
    fn retemplate(
        &self,
        campaign: &str,
        from: u32,
        to: u32,
        template: &str,
        now: DateTime<Utc>,
    ) -> impl Future<Output = Result<u64, StoreError>> + Send;

    /// Moves scheduled deliveries to new due times (one transaction), each with an event
    /// `rescheduled` {campaign, step, from, to, reason}. Rows no longer scheduled are left.
    fn reschedule(
        &self,
        campaign: &str,
        rows: &[Rescheduled],
        reason: &str,
        now: DateTime<Utc>,
    ) -> impl Future<Output = Result<u64, StoreError>> + Send;

    /// Active enrolments of `campaign` with id > `after_id`, by id, at most `limit`.
    fn active_enrolments(
        &self,
        campaign: &str,
        after_id: i64,
        limit: usize,
    ) -> impl Future<Output = Result<Vec<ActiveEnrolment>, StoreError>> + Send;

    /// The id of the `limit`-th `updated` event (a lead's data changed) after event
    /// `after_event`, or of the last one; None when there is none.
    fn updated_upto(
        &self,
        after_event: i64,
        limit: usize,
    ) -> impl Future<Output = Result<Option<i64>, StoreError>> + Send;

    /// Active enrolments (with their campaign) of the leads that have an `updated` event with
    /// an id in `(after_event, upto]`.
    fn enrolments_updated(
        &self,
        after_event: i64,
        upto: i64,
    ) -> impl Future<Output = Result<Vec<(String, ActiveEnrolment)>, StoreError>> + Send;

    /// Moves enrolments of a removed campaign (one transaction): the waiting deliveries are
    /// cancelled (event `cancelled` {campaign, reason}), the enrolment becomes `continued`;
    /// then the lead is enrolled in its target campaign (a new round if it was there before)
    /// at the step its history says (event `enrolled` {campaign, segment, cycle, step,
    /// first_due, via: "config change", from_campaign}), or completes there when it had as
    /// many steps; or, with no target, a nurturing lead is parked `paused` (paused from
    /// `new`: `leads resume` lets segments enrol it afresh; event `paused` {from, to, by:
    /// "config", reason}). Returns how many moved or were parked.
    fn move_enrolments(
        &self,
        moves: &[EnrolmentMove],
        now: DateTime<Utc>,
    ) -> impl Future<Output = Result<u64, StoreError>> + Send;

    /// Scheduled deliveries of `campaign` due before `due_before` whose lead is nurturing,
    /// by id, at most `limit` (the lateness policy `skip`).
    fn late_steps(
        &self,
        campaign: &str,
        due_before: DateTime<Utc>,
        limit: usize,
    ) -> impl Future<Output = Result<Vec<WaitingStep>, StoreError>> + Send;

    /// Marks late deliveries `skipped` (one transaction), each with an event `skipped`
    /// {campaign, step, due_at, late_by, reason: "late"}. Returns the ids skipped (rows no
    /// longer scheduled are left).
    fn skip_steps(
        &self,
        rows: &[WaitingStep],
        now: DateTime<Utc>,
    ) -> impl Future<Output = Result<Vec<i64>, StoreError>> + Send;
}

// The statements live in `edits_sql.rs` (the seam this file was split along).
pub(crate) use super::edits_sql::*;

#[derive(FromRow)]
pub(crate) struct VersionRow {
    campaign: String,
    version: String,
    definition: Detail,
    applied_at: Time,
}

#[derive(FromRow)]
pub(crate) struct FollowedRow {
    campaign: String,
    version: Option<String>,
    segment: String,
    n: i64,
}

#[derive(FromRow)]
pub(crate) struct CountRow {
    step: i64,
    template: String,
    state: String,
    n: i64,
}

#[derive(FromRow)]
pub(crate) struct WaitingRow {
    id: i64,
    lead_id: i64,
    enrolment_id: i64,
    email: String,
    campaign: String,
    step: i64,
    template: String,
    state: String,
    due_at: Time,
    anchor: Time,
    timezone: Option<String>,
    country: Option<String>,
    prev_at: Option<Time>,
}

#[derive(FromRow)]
pub(crate) struct ActiveRow {
    campaign: String,
    id: i64,
    lead_id: i64,
    segment: String,
    steps_done: i64,
    last_at: Option<Time>,
}

impl From<VersionRow> for CampaignVersion {
    fn from(r: VersionRow) -> Self {
        CampaignVersion {
            campaign: r.campaign,
            version: r.version,
            definition: r.definition.0,
            applied_at: r.applied_at.0,
        }
    }
}

impl From<FollowedRow> for Followed {
    fn from(r: FollowedRow) -> Self {
        Followed {
            campaign: r.campaign,
            version: r.version,
            segment: r.segment,
            enrolments: r.n,
        }
    }
}

impl From<CountRow> for WaitingCount {
    fn from(r: CountRow) -> Self {
        WaitingCount {
            step: u32::try_from(r.step).unwrap_or(u32::MAX),
            template: r.template,
            retrying: r.state == "retry_wait",
            deliveries: r.n,
        }
    }
}

impl From<WaitingRow> for WaitingStep {
    fn from(r: WaitingRow) -> Self {
        WaitingStep {
            id: r.id,
            lead_id: r.lead_id,
            enrolment_id: r.enrolment_id,
            email: r.email,
            campaign: r.campaign,
            step: u32::try_from(r.step).unwrap_or(u32::MAX),
            template: r.template,
            state: r.state,
            due_at: r.due_at.0,
            anchor: r.anchor.0,
            timezone: r.timezone,
            country: r.country,
            prev_at: r.prev_at.map(|t| t.0),
        }
    }
}

impl ActiveRow {
    pub(crate) fn with_campaign(self) -> (String, ActiveEnrolment) {
        (self.campaign.clone(), ActiveEnrolment::from(self))
    }
}

impl From<ActiveRow> for ActiveEnrolment {
    fn from(r: ActiveRow) -> Self {
        ActiveEnrolment {
            enrolment_id: r.id,
            lead_id: r.lead_id,
            segment: r.segment,
            steps_done: u32::try_from(r.steps_done).unwrap_or(u32::MAX),
            last_at: r.last_at.map(|t| t.0),
        }
    }
}

/// The detail of the `enrolled` event of a move.
pub(crate) fn moved_detail(m: &EnrolmentMove, t: &MoveTarget, cycle: i64) -> Value {
    json!({
        "campaign": t.campaign,
        "segment": t.segment,
        "cycle": cycle,
        "step": t.next.as_ref().map(|n| n.step + 1),
        "first_due": t.next.as_ref().map(|n| n.due_at.to_rfc3339()),
        "via": m.via,
        "from_campaign": m.from_campaign,
    })
}

/// `impl EditStore for …Store { edit_methods!(); }`: the same statements on both
/// databases; `self.write()` is the backend's write transaction.
macro_rules! edit_methods {
    () => {
        async fn current_versions(
            &self,
        ) -> Result<BTreeMap<String, CampaignVersion>, StoreError> {
            let rows: Vec<VersionRow> = sqlx::query_as(CURRENT_VERSIONS)
                .fetch_all(&self.pool)
                .await?;
            Ok(rows
                .into_iter()
                .map(CampaignVersion::from)
                .map(|v| (v.campaign.clone(), v))
                .collect())
        }

        async fn record_version(
            &self,
            campaign: &str,
            version: &str,
            definition: &Value,
            now: DateTime<Utc>,
        ) -> Result<(), StoreError> {
            let mut tx = self.write().await?;
            sqlx::query(RECORD_VERSION)
                .bind(campaign)
                .bind(version)
                .bind(definition)
                .bind(Time(now))
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
            Ok(())
        }

        async fn pin_versions(
            &self,
            campaign: &str,
            previous: Option<&str>,
            new: &str,
        ) -> Result<(), StoreError> {
            let mut tx = self.write().await?;
            if let Some(previous) = previous {
                sqlx::query(PIN_PREVIOUS)
                    .bind(campaign)
                    .bind(previous)
                    .execute(&mut *tx)
                    .await?;
            }
            sqlx::query(PIN_NEW)
                .bind(campaign)
                .bind(new)
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
            Ok(())
        }

        async fn followed(&self) -> Result<Vec<Followed>, StoreError> {
            let rows: Vec<FollowedRow> = sqlx::query_as(FOLLOWED).fetch_all(&self.pool).await?;
            Ok(rows.into_iter().map(Followed::from).collect())
        }

        async fn active_campaigns(&self) -> Result<BTreeSet<String>, StoreError> {
            let rows: Vec<(String,)> = sqlx::query_as(ACTIVE_CAMPAIGNS).fetch_all(&self.pool).await?;
            Ok(rows.into_iter().map(|(c,)| c).collect())
        }

        async fn enrolment_versions(
            &self,
            lead_id: i64,
        ) -> Result<BTreeMap<String, Option<String>>, StoreError> {
            let rows: Vec<(String, Option<String>)> = sqlx::query_as(ENROLMENT_VERSIONS)
                .bind(lead_id)
                .fetch_all(&self.pool)
                .await?;
            Ok(rows.into_iter().collect())
        }

        async fn waiting_counts(&self, campaign: &str) -> Result<Vec<WaitingCount>, StoreError> {
            let rows: Vec<CountRow> = sqlx::query_as(WAITING_COUNTS)
                .bind(campaign)
                .fetch_all(&self.pool)
                .await?;
            Ok(rows.into_iter().map(WaitingCount::from).collect())
        }

        async fn waiting_steps(
            &self,
            campaign: &str,
            retries: bool,
            after_id: i64,
            limit: usize,
        ) -> Result<Vec<WaitingStep>, StoreError> {
            let rows: Vec<WaitingRow> = sqlx::query_as(WAITING_STEPS)
                .bind(campaign)
                .bind(retries)
                .bind(after_id)
                .bind(limit as i64)
                .fetch_all(&self.pool)
                .await?;
            Ok(rows.into_iter().map(WaitingStep::from).collect())
        }

        async fn cancel_from_step(
            &self,
            campaign: &str,
            from_step: u32,
            reason: &str,
            now: DateTime<Utc>,
        ) -> Result<u64, StoreError> {
            let mut tx = self.write().await?;
            let steps: Vec<i64> = sqlx::query_scalar(WAITING_STEPS_FROM)
                .bind(campaign)
                .bind(i64::from(from_step))
                .fetch_all(&mut *tx)
                .await?;
            let mut total = 0;
            // One pair of set-based statements per step (a handful: steps are few).
            for step in steps {
                let detail = json!({"campaign": campaign, "step": step + 1, "reason": reason,
                                    "max_touches": from_step});
                sqlx::query(CANCEL_STEP_EVENTS)
                    .bind(campaign)
                    .bind(step)
                    .bind(Time(now))
                    .bind(&detail)
                    .execute(&mut *tx)
                    .await?;
                total += sqlx::query(CANCEL_STEP)
                    .bind(campaign)
                    .bind(step)
                    .bind(Time(now))
                    .bind(reason)
                    .execute(&mut *tx)
                    .await?
                    .rows_affected();
            }
            tx.commit().await?;
            Ok(total)
        }

        async fn retemplate(
            &self,
            campaign: &str,
            from: u32,
            to: u32,
            template: &str,
            now: DateTime<Utc>,
        ) -> Result<u64, StoreError> {
            let mut tx = self.write().await?;
            let n = sqlx::query(RETEMPLATE)
                .bind(campaign)
                .bind(i64::from(from))
                .bind(i64::from(to))
                .bind(template)
                .bind(Time(now))
                .execute(&mut *tx)
                .await?
                .rows_affected();
            tx.commit().await?;
            Ok(n)
        }

        async fn reschedule(
            &self,
            campaign: &str,
            rows: &[Rescheduled],
            reason: &str,
            now: DateTime<Utc>,
        ) -> Result<u64, StoreError> {
            if rows.is_empty() {
                return Ok(0);
            }
            let mut tx = self.write().await?;
            let mut total = 0;
            for r in rows {
                let n = sqlx::query(RESCHEDULE)
                    .bind(r.delivery_id)
                    .bind(Time(r.to))
                    .bind(Time(now))
                    .execute(&mut *tx)
                    .await?
                    .rows_affected();
                if n > 0 {
                    total += n;
                    let detail = json!({"campaign": campaign, "step": r.step + 1,
                        "from": r.from.to_rfc3339(), "to": r.to.to_rfc3339(), "reason": reason});
                    super::insert_event(&mut tx, r.lead_id, "rescheduled", &detail, now).await?;
                }
            }
            tx.commit().await?;
            Ok(total)
        }

        async fn active_enrolments(
            &self,
            campaign: &str,
            after_id: i64,
            limit: usize,
        ) -> Result<Vec<ActiveEnrolment>, StoreError> {
            let rows: Vec<ActiveRow> = sqlx::query_as(ACTIVE_ENROLMENTS)
                .bind(campaign)
                .bind(after_id)
                .bind(limit as i64)
                .fetch_all(&self.pool)
                .await?;
            Ok(rows.into_iter().map(ActiveEnrolment::from).collect())
        }

        async fn updated_upto(
            &self,
            after_event: i64,
            limit: usize,
        ) -> Result<Option<i64>, StoreError> {
            Ok(sqlx::query_scalar(UPDATED_UPTO)
                .bind(after_event)
                .bind(limit as i64)
                .fetch_one(&self.pool)
                .await?)
        }

        async fn enrolments_updated(
            &self,
            after_event: i64,
            upto: i64,
        ) -> Result<Vec<(String, ActiveEnrolment)>, StoreError> {
            let rows: Vec<ActiveRow> = sqlx::query_as(ENROLMENTS_UPDATED)
                .bind(after_event)
                .bind(upto)
                .fetch_all(&self.pool)
                .await?;
            Ok(rows
                .into_iter()
                .map(ActiveRow::with_campaign)
                .collect())
        }

        async fn move_enrolments(
            &self,
            moves: &[EnrolmentMove],
            now: DateTime<Utc>,
        ) -> Result<u64, StoreError> {
            if moves.is_empty() {
                return Ok(0);
            }
            let mut tx = self.write().await?;
            let mut total = 0;
            for m in moves {
                let cancelled = json!({"campaign": m.from_campaign, "reason": m.via,
                                       "detail": m.reason});
                sqlx::query(MOVE_CANCEL_EVENTS)
                    .bind(m.enrolment_id)
                    .bind(Time(now))
                    .bind(&cancelled)
                    .execute(&mut *tx)
                    .await?;
                sqlx::query(MOVE_CANCEL)
                    .bind(m.enrolment_id)
                    .bind(Time(now))
                    .bind(&m.via)
                    .execute(&mut *tx)
                    .await?;
                let ended = sqlx::query(MOVE_END)
                    .bind(m.enrolment_id)
                    .bind(Time(now))
                    .execute(&mut *tx)
                    .await?
                    .rows_affected();
                if ended == 0 {
                    continue; // no longer active: someone else moved it
                }
                total += 1;
                match &m.to {
                    Some(t) => {
                        let (state, ended_at) = match t.next {
                            Some(_) => ("active", None),
                            None => ("completed", Some(Time(now))),
                        };
                        let (id, cycle): (i64, i64) = sqlx::query_as(MOVE_ENROL)
                            .bind(m.lead_id)
                            .bind(&t.campaign)
                            .bind(&t.segment)
                            .bind(state)
                            .bind(Time(now))
                            .bind(ended_at)
                            .fetch_one(&mut *tx)
                            .await?;
                        if let Some(next) = &t.next {
                            sqlx::query(MOVE_STEP)
                                .bind(m.lead_id)
                                .bind(id)
                                .bind(&t.campaign)
                                .bind(i64::from(next.step))
                                .bind(&next.template)
                                .bind(Time(next.due_at))
                                .bind(Time(now))
                                .bind(cycle)
                                .execute(&mut *tx)
                                .await?;
                        }
                        let detail = moved_detail(m, t, cycle);
                        super::insert_event(&mut tx, m.lead_id, "enrolled", &detail, now).await?;
                        if t.next.is_none() {
                            let done = sqlx::query(MOVE_COMPLETE)
                                .bind(m.lead_id)
                                .bind(Time(now))
                                .execute(&mut *tx)
                                .await?
                                .rows_affected();
                            if done > 0 {
                                let detail = json!({"campaign": t.campaign, "from": "nurturing",
                                                    "to": "completed"});
                                super::insert_event(&mut tx, m.lead_id, "completed", &detail, now).await?;
                            }
                        }
                    }
                    None => {
                        let parked = sqlx::query(PARK)
                            .bind(m.lead_id)
                            .bind(Time(now))
                            .execute(&mut *tx)
                            .await?
                            .rows_affected();
                        if parked > 0 {
                            let detail = json!({"from": "nurturing", "to": "paused",
                                "by": "config", "campaign": m.from_campaign, "reason": m.reason});
                            super::insert_event(&mut tx, m.lead_id, "paused", &detail, now).await?;
                        }
                    }
                }
            }
            tx.commit().await?;
            Ok(total)
        }

        async fn late_steps(
            &self,
            campaign: &str,
            due_before: DateTime<Utc>,
            limit: usize,
        ) -> Result<Vec<WaitingStep>, StoreError> {
            let rows: Vec<WaitingRow> = sqlx::query_as(LATE_STEPS)
                .bind(campaign)
                .bind(Time(due_before))
                .bind(limit as i64)
                .fetch_all(&self.pool)
                .await?;
            Ok(rows.into_iter().map(WaitingStep::from).collect())
        }

        async fn skip_steps(
            &self,
            rows: &[WaitingStep],
            now: DateTime<Utc>,
        ) -> Result<Vec<i64>, StoreError> {
            if rows.is_empty() {
                return Ok(Vec::new());
            }
            let mut tx = self.write().await?;
            let mut skipped = Vec::new();
            for r in rows {
                let n = sqlx::query(SKIP)
                    .bind(r.id)
                    .bind(Time(now))
                    .execute(&mut *tx)
                    .await?
                    .rows_affected();
                if n > 0 {
                    skipped.push(r.id);
                    let late_by = (now - r.due_at).num_seconds();
                    let detail = json!({"campaign": r.campaign, "step": r.step + 1,
                        "due_at": r.due_at.to_rfc3339(), "late_by_seconds": late_by, "reason": "late"});
                    super::insert_event(&mut tx, r.lead_id, "skipped", &detail, now).await?;
                }
            }
            tx.commit().await?;
            Ok(skipped)
        }
    };
}
