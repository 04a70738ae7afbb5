//! The PostgreSQL store: for several daemons (on several machines) sharing one database.
//! PostgreSQL is the coordinator — no home-made locking:
//!
//! - **Claims** are one `UPDATE` whose subquery picks due rows `FOR UPDATE SKIP LOCKED`:
//!   concurrent claimers skip each other's rows instead of waiting, and a row another
//!   daemon claimed a moment ago is re-checked and left alone. The claim commits at once
//!   (a lease: `claimed_by`, `lease_until`); nothing is held across the network.
//! - **Batches** travel as one `jsonb` parameter expanded with `jsonb_array_elements`, in
//!   the same format as the SQLite store (times as integer milliseconds, turned into
//!   `timestamptz` by the `rewarm_ms()` SQL function), so a batch is a handful of statements.
//! - **Imports, enrolments and repairs** (`upsert_leads`, `enrol`, `resume_enrolments`)
//!   take one transaction-scoped advisory lock, so they run one at a time across daemons,
//!   as every write does on SQLite: two daemons importing or enrolling the same leads at
//!   once neither collide on unique keys nor write an event twice.
//! - A transaction that loses a deadlock or a serialization check is retried (it changed
//!   nothing), so a rare lock-order clash between daemons never loses an outcome.
//!
//! Time stamps are `timestamptz` truncated to the millisecond on the way in, exactly as the
//! SQLite store keeps them, so both backends return the same values.

use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::str::FromStr;
use std::time::Duration;

use chrono::{DateTime, Utc};
use futures::TryFutureExt as _;
use serde_json::{Value, json};
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use sqlx::{FromRow, SqlSafeStr};

use super::sqlite::{
    fold_new_lead, lead_json, merge_lead, new_lead_json, outcome_json, recycle_target, rewarmable,
};
use super::*;
use crate::domain::email::EmailAddress;
use crate::domain::lead::{Lead, LeadState, NewLead};

#[derive(Clone)]
pub struct PgStore {
    pool: PgPool,
}

const MIGRATIONS: &[(i64, &str, &str)] = &[
    (
        1,
        "initial",
        include_str!("../../migrations/postgres/0001_initial.sql"),
    ),
    (
        2,
        "suppression",
        include_str!("../../migrations/postgres/0002_suppression.sql"),
    ),
    (
        3,
        "inbound",
        include_str!("../../migrations/postgres/0003_inbound.sql"),
    ),
];

/// The `suppressions` columns, in `Suppression` order.
#[derive(FromRow)]
struct SuppressionRow {
    id: i64,
    address: String,
    reason: String,
    evidence: Value,
    created_at: DateTime<Utc>,
}

impl SuppressionRow {
    fn into_suppression(self) -> Result<Suppression, StoreError> {
        Ok(Suppression {
            reason: SuppressionReason::parse(&self.reason).ok_or_else(|| StoreError::Corrupt {
                table: "suppressions",
                id: self.id,
                reason: format!("unknown reason `{}`", self.reason),
            })?,
            address: self.address,
            evidence: self.evidence,
            created_at: self.created_at,
        })
    }
}

/// The leads a `suppress` batch ($1) reaches and are not suppressed yet, each once, with the
/// entry that reaches it (its exact address if listed in the batch, else its `@domain`):
/// `m(lead_id, state, address, reason, evidence)`. Prefixed to each of `suppress`' statements.
macro_rules! suppress_matches {
    ($rest:literal) => {
        concat!(
            "WITH m AS (
                SELECT l.id AS lead_id, l.state AS state, s.address AS address, s.reason AS reason, s.evidence AS evidence
                FROM jsonb_array_elements($1) AS j(v) JOIN suppressions s ON s.address = j.v->>'address'
                JOIN leads l ON l.email = s.address
                WHERE l.state <> 'suppressed'
                UNION ALL
                SELECT l.id, l.state, s.address, s.reason, s.evidence
                FROM jsonb_array_elements($1) AS j(v) JOIN suppressions s ON s.address = j.v->>'address'
                JOIN leads l ON rewarm_at_domain(l.email) = s.address
                WHERE l.state <> 'suppressed' AND l.email NOT IN (SELECT k.v->>'address' FROM jsonb_array_elements($1) AS k(v)))
             ",
            $rest
        )
    };
}

/// The advisory lock (`pg_advisory_xact_lock`) that serialises imports, enrolments and
/// repairs across daemons ("rewarm" in ASCII, then 1).
const WRITE_LOCK: i64 = 0x7265_7761_726d_0001;

/// How often a transaction that lost a deadlock or serialization check is tried again.
const RETRIES: u32 = 5;

impl PgStore {
    /// Connects to `url` (`postgres://user@host:port/db` or `postgresql://…`).
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        let options = PgConnectOptions::from_str(url)?.application_name("rewarm");
        let pool = PgPoolOptions::new()
            .max_connections(8)
            .acquire_timeout(Duration::from_secs(30))
            .connect_with(options)
            .await?;
        Ok(Self { pool })
    }

    /// The connection pool (for tests and tools).
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// Closes every connection of the pool.
    pub async fn close(&self) {
        self.pool.close().await;
    }

    /// A transaction holding the write lock (see the module docs).
    async fn locked_write(&self) -> Result<sqlx::Transaction<'static, sqlx::Postgres>, StoreError> {
        let mut tx = self.pool.begin().await?;
        sqlx::query("SELECT pg_advisory_xact_lock($1)")
            .bind(WRITE_LOCK)
            .execute(&mut *tx)
            .await?;
        Ok(tx)
    }
}

/// Time stamps are kept to the millisecond, as on SQLite.
fn ts(t: DateTime<Utc>) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(t.timestamp_millis()).unwrap_or(t)
}

fn ms(t: DateTime<Utc>) -> i64 {
    t.timestamp_millis()
}

/// Deadlocks (40P01) and serialization failures (40001) abort the whole transaction, which
/// can then simply run again.
fn retryable(e: &StoreError) -> bool {
    match e {
        StoreError::Database(sqlx::Error::Database(db)) => {
            matches!(db.code().as_deref(), Some("40P01" | "40001"))
        }
        _ => false,
    }
}

/// Runs `$body` (an expression producing a `Result` future) again while it fails with a
/// retryable error, at most `RETRIES` times.
macro_rules! retrying {
    ($body:expr) => {{
        let mut attempt = 0;
        loop {
            match $body.await {
                Err(e) if retryable(&e) && attempt < RETRIES => {
                    attempt += 1;
                    tracing::debug!(error = %e, attempt, "Transaction lost a lock conflict; trying again");
                    tokio::time::sleep(Duration::from_millis(10 * u64::from(attempt))).await;
                }
                other => break other,
            }
        }
    }};
}

#[derive(FromRow)]
struct LeadRow {
    id: i64,
    email: String,
    first_name: Option<String>,
    last_name: Option<String>,
    company: Option<String>,
    title: Option<String>,
    owner_email: Option<String>,
    owner_name: Option<String>,
    lost_reason: Option<String>,
    lost_at: Option<DateTime<Utc>>,
    timezone: Option<String>,
    tags: Value,
    fields: Value,
    state: String,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

impl LeadRow {
    /// Data read back is parsed again, not trusted.
    fn into_lead(self) -> Result<Lead, StoreError> {
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
            lost_at: self.lost_at,
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
            created_at: self.created_at,
            updated_at: self.updated_at,
        })
    }
}

/// `SELECT <every lead column> FROM leads <rest>`, as one static string.
macro_rules! select_leads {
    ($rest:literal) => {
        concat!(
            "SELECT id, email, first_name, last_name, company, title, owner_email, owner_name, lost_reason, lost_at, timezone, tags, fields, state, created_at, updated_at FROM leads ",
            $rest
        )
    };
}

/// The same text the SQLite store writes (`json_object(...)` there, `jsonb_build_object` here).
const UNKNOWN_REASON: &str = "lease expired before the outcome was recorded; not resent";

/// Deliveries due and not sent yet, of leads still in nurture (`Store::due_now`).
const DUE_NOW_SQL: &str = "SELECT count(*) FROM deliveries d JOIN leads l ON l.id = d.lead_id
     WHERE d.state IN ('scheduled', 'retry_wait') AND d.due_at <= $1 AND l.state = 'nurturing'";

impl Store for PgStore {
    async fn migrate(&self) -> Result<(), StoreError> {
        let migrations = MIGRATIONS
            .iter()
            .map(|(version, description, sql)| {
                sqlx::migrate::Migration::new(
                    *version,
                    Cow::Borrowed(*description),
                    sqlx::migrate::MigrationType::Simple,
                    sql.into_sql_str(),
                    false,
                )
            })
            .collect::<Vec<_>>();
        // `locking` (the default) takes a PostgreSQL advisory lock, so daemons starting at
        // once apply each migration exactly once; the others wait, then find nothing to do.
        let migrator = sqlx::migrate::Migrator {
            migrations: Cow::Owned(migrations),
            ..sqlx::migrate::Migrator::DEFAULT
        };
        if let Err(e) = migrator.run(&self.pool).await {
            // The migrator's advisory lock belongs to a session, and a failed run returns
            // its connection to the pool still holding it: closing the pool releases it,
            // so other daemons are not left waiting. This store is unusable afterwards.
            self.pool.close().await;
            return Err(e.into());
        }
        Ok(())
    }

    async fn upsert_leads(
        &self,
        leads: &[NewLead],
        source: &str,
        now: DateTime<Utc>,
    ) -> Result<UpsertSummary, StoreError> {
        // Fold duplicates inside the batch first (same normalised email).
        let mut order: Vec<EmailAddress> = Vec::new();
        let mut by_email: HashMap<EmailAddress, NewLead> = HashMap::new();
        for lead in leads {
            let Some(email) = lead.email.clone() else {
                continue;
            };
            match by_email.get_mut(&email) {
                Some(existing) => fold_new_lead(existing, lead),
                None => {
                    order.push(email.clone());
                    by_email.insert(email, lead.clone());
                }
            }
        }
        if order.is_empty() {
            return Ok(UpsertSummary::default());
        }
        retrying!(self.upsert_once(&order, &by_email, source, ts(now)))
    }

    async fn lead_by_email(&self, email: &EmailAddress) -> Result<Option<Lead>, StoreError> {
        let row: Option<LeadRow> = sqlx::query_as(select_leads!("WHERE email = $1"))
            .bind(email.as_str())
            .fetch_optional(&self.pool)
            .await?;
        row.map(LeadRow::into_lead).transpose()
    }

    async fn leads_by_ids(&self, ids: &[i64]) -> Result<Vec<Lead>, StoreError> {
        let rows: Vec<LeadRow> = sqlx::query_as(select_leads!("WHERE id = ANY($1)"))
            .bind(ids)
            .fetch_all(&self.pool)
            .await?;
        rows.into_iter().map(LeadRow::into_lead).collect()
    }

    async fn leads_in_state(
        &self,
        state: LeadState,
        after_id: i64,
        limit: usize,
    ) -> Result<Vec<Lead>, StoreError> {
        let rows: Vec<LeadRow> = sqlx::query_as(select_leads!(
            "WHERE state = $1 AND id > $2 ORDER BY id LIMIT $3"
        ))
        .bind(state.as_str())
        .bind(after_id)
        .bind(limit as i64)
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter().map(LeadRow::into_lead).collect()
    }

    async fn field_names(&self) -> Result<BTreeSet<String>, StoreError> {
        let names: Vec<String> = sqlx::query_scalar("SELECT DISTINCT jsonb_object_keys(fields) FROM leads WHERE jsonb_typeof(fields) = 'object'")
            .fetch_all(&self.pool)
            .await?;
        Ok(names.into_iter().collect())
    }

    async fn enrol(
        &self,
        enrolments: &[NewEnrolment],
        now: DateTime<Utc>,
    ) -> Result<usize, StoreError> {
        if enrolments.is_empty() {
            return Ok(0);
        }
        let batch = Value::Array(
            enrolments
                .iter()
                .map(|e| json!({"lead_id": e.lead_id, "campaign": e.campaign, "segment": e.segment, "due": ms(e.first_due), "template": e.template,
                                "detail": json!({"campaign": e.campaign, "segment": e.segment, "first_due": e.first_due.to_rfc3339(), "from": "new", "to": "nurturing"}).to_string()}))
                .collect(),
        );
        retrying!(self.enrol_once(&batch, ts(now)))
    }

    async fn claim_due(
        &self,
        now: DateTime<Utc>,
        worker: &str,
        lease_until: DateTime<Utc>,
        limit: usize,
    ) -> Result<Vec<ClaimedDelivery>, StoreError> {
        #[derive(FromRow)]
        struct Row {
            id: i64,
            lead_id: i64,
            enrolment_id: i64,
            campaign: String,
            step: i64,
            template: String,
            attempts: i64,
            due_at: DateTime<Utc>,
        }
        // One statement, committed at once. SKIP LOCKED: rows another daemon is claiming
        // right now are skipped, not waited for; a row claimed and committed by another
        // daemon after this statement's snapshot is re-checked under its lock and dropped.
        // The lead is share-locked too, so its state is re-checked the same way: a lead
        // suppressed or re-warmed a moment ago is never claimed. The suppression list is read
        // in the same statement: an address or domain listed (committed) before the claim
        // is refused even if its lead row was never updated.
        let rows: Vec<Row> = retrying!(
            sqlx::query_as(
                "WITH due AS MATERIALIZED (
                    SELECT d.id FROM deliveries d JOIN leads l ON l.id = d.lead_id
                    WHERE d.state IN ('scheduled', 'retry_wait') AND d.due_at <= $3 AND l.state = 'nurturing'
                      AND NOT EXISTS (SELECT 1 FROM suppressions s WHERE s.address IN (l.email, rewarm_at_domain(l.email)))
                    ORDER BY d.due_at, d.id LIMIT $4
                    FOR UPDATE OF d SKIP LOCKED
                    FOR SHARE OF l SKIP LOCKED)
                 UPDATE deliveries SET state = 'claimed', claimed_by = $1, lease_until = $2, attempts = deliveries.attempts + 1, updated_at = $3
                 FROM due WHERE deliveries.id = due.id
                 RETURNING deliveries.id, deliveries.lead_id, deliveries.enrolment_id, deliveries.campaign, deliveries.step,
                           deliveries.template, deliveries.attempts, deliveries.due_at",
            )
            .bind(worker)
            .bind(ts(lease_until))
            .bind(ts(now))
            .bind(limit as i64)
            .fetch_all(&self.pool)
            .map_err(StoreError::from)
        )?;
        let mut claimed: Vec<ClaimedDelivery> = rows
            .into_iter()
            .map(|r| ClaimedDelivery {
                id: r.id,
                lead_id: r.lead_id,
                enrolment_id: r.enrolment_id,
                campaign: r.campaign,
                step: u32::try_from(r.step).unwrap_or(0),
                template: r.template,
                attempts: u32::try_from(r.attempts).unwrap_or(0),
                due_at: r.due_at,
            })
            .collect();
        // RETURNING has no order; hand them out oldest due first, as SQLite does.
        claimed.sort_by_key(|d| (d.due_at, d.id));
        Ok(claimed)
    }

    async fn record_outcomes(
        &self,
        outcomes: &[RecordedOutcome],
        worker: &str,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        if outcomes.is_empty() {
            return Ok(());
        }
        retrying!(self.record_once(outcomes, worker, ts(now)))
    }

    async fn expire_leases(&self, now: DateTime<Utc>) -> Result<usize, StoreError> {
        // One statement: the rows that turn `unknown` are exactly those that get the event,
        // even with several daemons expiring at once (the second waits, re-checks, skips).
        let n = retrying!(
            sqlx::query(
                "WITH expired AS (
                    UPDATE deliveries SET state = 'unknown', updated_at = $1
                    WHERE state = 'claimed' AND lease_until < $1
                    RETURNING id, lead_id, campaign, step, template, claimed_by)
                 INSERT INTO events (lead_id, at, kind, detail)
                 SELECT lead_id, $1, 'delivery_unknown',
                        jsonb_build_object('campaign', campaign, 'step', step + 1, 'template', template, 'claimed_by', claimed_by, 'reason', $2::text)
                 FROM expired ORDER BY id",
            )
            .bind(ts(now))
            .bind(UNKNOWN_REASON)
            .execute(&self.pool)
            .map_err(StoreError::from)
        )?
        .rows_affected();
        Ok(n as usize)
    }

    async fn stalled_enrolments(&self, limit: usize) -> Result<Vec<StalledEnrolment>, StoreError> {
        #[derive(FromRow)]
        struct Row {
            id: i64,
            lead_id: i64,
            campaign: String,
            last_step: i64,
            last_at: DateTime<Utc>,
        }
        let rows: Vec<Row> = sqlx::query_as(
            "SELECT e.id, e.lead_id, e.campaign, max(d.step) AS last_step, max(coalesce(d.sent_at, d.updated_at)) AS last_at
             FROM enrolments e JOIN leads l ON l.id = e.lead_id JOIN deliveries d ON d.enrolment_id = e.id
             WHERE e.state = 'active' AND l.state = 'nurturing'
               AND NOT EXISTS (SELECT 1 FROM deliveries p WHERE p.enrolment_id = e.id AND p.state IN ('scheduled', 'claimed', 'retry_wait'))
             GROUP BY e.id, e.lead_id, e.campaign ORDER BY e.id LIMIT $1",
        )
        .bind(limit as i64)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .into_iter()
            .map(|r| StalledEnrolment {
                enrolment_id: r.id,
                lead_id: r.lead_id,
                campaign: r.campaign,
                last_step: u32::try_from(r.last_step).unwrap_or(0),
                last_at: r.last_at,
            })
            .collect())
    }

    async fn resume_enrolments(
        &self,
        resumed: &[(StalledEnrolment, Option<NextStep>)],
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        if resumed.is_empty() {
            return Ok(());
        }
        let batch = Value::Array(
            resumed
                .iter()
                .map(|(s, next)| {
                    json!({"enrolment_id": s.enrolment_id, "lead_id": s.lead_id, "campaign": s.campaign,
                           "next": next.as_ref().map(|n| json!({"step": n.step, "due": ms(n.due_at), "template": n.template}))})
                })
                .collect(),
        );
        retrying!(self.resume_once(&batch, ts(now)))
    }

    async fn pending_deliveries(&self) -> Result<Vec<PendingDelivery>, StoreError> {
        #[derive(FromRow)]
        struct Row {
            lead_id: i64,
            campaign: String,
            step: i64,
            template: String,
            due_at: DateTime<Utc>,
        }
        let rows: Vec<Row> = sqlx::query_as(
            "SELECT d.lead_id, d.campaign, d.step, d.template, d.due_at FROM deliveries d JOIN leads l ON l.id = d.lead_id
             WHERE d.state IN ('scheduled', 'retry_wait') AND l.state = 'nurturing' ORDER BY d.due_at, d.id",
        )
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .into_iter()
            .map(|r| PendingDelivery {
                lead_id: r.lead_id,
                campaign: r.campaign,
                step: u32::try_from(r.step).unwrap_or(0),
                template: r.template,
                due_at: r.due_at,
            })
            .collect())
    }

    async fn timeline(&self, lead_id: i64) -> Result<Vec<Event>, StoreError> {
        let rows: Vec<(DateTime<Utc>, String, Value)> =
            sqlx::query_as("SELECT at, kind, detail FROM events WHERE lead_id = $1 ORDER BY id")
                .bind(lead_id)
                .fetch_all(&self.pool)
                .await?;
        Ok(rows
            .into_iter()
            .map(|(at, kind, detail)| Event { at, kind, detail })
            .collect())
    }

    async fn status(
        &self,
        since: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<StatusReport, StoreError> {
        let mut report = StatusReport::default();
        for state in LeadState::ALL {
            report.leads_by_state.insert(state.as_str().to_string(), 0);
        }
        let leads: Vec<(String, i64)> =
            sqlx::query_as("SELECT state, count(*) FROM leads GROUP BY state")
                .fetch_all(&self.pool)
                .await?;
        report.leads_by_state.extend(leads);
        let enrolments: Vec<(String, String, i64)> = sqlx::query_as(
            "SELECT campaign, state, count(*) FROM enrolments GROUP BY campaign, state",
        )
        .fetch_all(&self.pool)
        .await?;
        for (campaign, state, n) in enrolments {
            report
                .enrolments
                .entry(campaign)
                .or_insert_with(BTreeMap::new)
                .insert(state, n);
        }
        let deliveries: Vec<(String, i64)> =
            sqlx::query_as("SELECT state, count(*) FROM deliveries GROUP BY state")
                .fetch_all(&self.pool)
                .await?;
        report.deliveries_by_state.extend(deliveries);
        let (sent, failed, unknown): (i64, i64, i64) = sqlx::query_as(
            "SELECT
               (SELECT count(*) FROM deliveries WHERE state = 'sent' AND sent_at >= $1),
               (SELECT count(*) FROM deliveries WHERE state = 'failed' AND updated_at >= $1),
               (SELECT count(*) FROM deliveries WHERE state = 'unknown' AND updated_at >= $1)",
        )
        .bind(ts(since))
        .fetch_one(&self.pool)
        .await?;
        report.sent_since = sent;
        report.failed_since = failed;
        report.unknown_since = unknown;
        report.due_now = self.due_now(now).await?;
        let inbound: Vec<(String, i64)> = sqlx::query_as(
            "SELECT classification, count(*) FROM inbound WHERE received_at >= $1 GROUP BY classification",
        )
        .bind(ts(since))
        .fetch_all(&self.pool)
        .await?;
        report.inbound_since.extend(inbound);
        report.inbound_unmatched =
            sqlx::query_scalar("SELECT count(*) FROM inbound WHERE lead_id IS NULL")
                .fetch_one(&self.pool)
                .await?;
        let notifications: Vec<(String, i64)> =
            sqlx::query_as("SELECT state, count(*) FROM notifications GROUP BY state")
                .fetch_all(&self.pool)
                .await?;
        report.notifications_by_state.extend(notifications);
        Ok(report)
    }

    async fn table_counts(&self) -> Result<BTreeMap<Table, i64>, StoreError> {
        #[allow(clippy::type_complexity)]
        let (leads, enrolments, deliveries, events, suppressions, secrets, inbound, notifications, kv_state): (i64, i64, i64, i64, i64, i64, i64, i64, i64) = sqlx::query_as(
            "SELECT (SELECT count(*) FROM leads), (SELECT count(*) FROM enrolments), (SELECT count(*) FROM deliveries), (SELECT count(*) FROM events),
                    (SELECT count(*) FROM suppressions), (SELECT count(*) FROM secrets), (SELECT count(*) FROM inbound),
                    (SELECT count(*) FROM notifications), (SELECT count(*) FROM kv_state)",
        )
        .fetch_one(&self.pool)
        .await?;
        Ok(BTreeMap::from([
            (Table::Leads, leads),
            (Table::Enrolments, enrolments),
            (Table::Deliveries, deliveries),
            (Table::Events, events),
            (Table::Suppressions, suppressions),
            (Table::Secrets, secrets),
            (Table::Inbound, inbound),
            (Table::Notifications, notifications),
            (Table::KvState, kv_state),
        ]))
    }

    async fn export_rows(
        &self,
        table: Table,
        after_id: i64,
        limit: usize,
    ) -> Result<Rows, StoreError> {
        let limit = limit as i64;
        Ok(match table {
            Table::Leads => {
                let rows: Vec<LeadRow> =
                    sqlx::query_as(select_leads!("WHERE id > $1 ORDER BY id LIMIT $2"))
                        .bind(after_id)
                        .bind(limit)
                        .fetch_all(&self.pool)
                        .await?;
                Rows::Leads(
                    rows.into_iter()
                        .map(|r| LeadRecord {
                            id: r.id,
                            email: r.email,
                            first_name: r.first_name,
                            last_name: r.last_name,
                            company: r.company,
                            title: r.title,
                            owner_email: r.owner_email,
                            owner_name: r.owner_name,
                            lost_reason: r.lost_reason,
                            lost_at: r.lost_at,
                            timezone: r.timezone,
                            tags: r.tags,
                            fields: r.fields,
                            state: r.state,
                            created_at: r.created_at,
                            updated_at: r.updated_at,
                        })
                        .collect(),
                )
            }
            Table::Enrolments => {
                #[derive(FromRow)]
                struct Row {
                    id: i64,
                    lead_id: i64,
                    campaign: String,
                    segment: String,
                    state: String,
                    enrolled_at: DateTime<Utc>,
                    ended_at: Option<DateTime<Utc>>,
                }
                let rows: Vec<Row> = sqlx::query_as(
                    "SELECT id, lead_id, campaign, segment, state, enrolled_at, ended_at FROM enrolments WHERE id > $1 ORDER BY id LIMIT $2",
                )
                .bind(after_id)
                .bind(limit)
                .fetch_all(&self.pool)
                .await?;
                Rows::Enrolments(
                    rows.into_iter()
                        .map(|r| EnrolmentRecord {
                            id: r.id,
                            lead_id: r.lead_id,
                            campaign: r.campaign,
                            segment: r.segment,
                            state: r.state,
                            enrolled_at: r.enrolled_at,
                            ended_at: r.ended_at,
                        })
                        .collect(),
                )
            }
            Table::Deliveries => {
                #[derive(FromRow)]
                struct Row {
                    id: i64,
                    lead_id: i64,
                    enrolment_id: i64,
                    campaign: String,
                    step: i64,
                    template: String,
                    state: String,
                    due_at: DateTime<Utc>,
                    attempts: i64,
                    claimed_by: Option<String>,
                    lease_until: Option<DateTime<Utc>>,
                    message_id: Option<String>,
                    sent_at: Option<DateTime<Utc>>,
                    last_error: Option<String>,
                    updated_at: DateTime<Utc>,
                }
                let rows: Vec<Row> = sqlx::query_as(
                    "SELECT id, lead_id, enrolment_id, campaign, step, template, state, due_at, attempts, claimed_by, lease_until,
                            message_id, sent_at, last_error, updated_at
                     FROM deliveries WHERE id > $1 ORDER BY id LIMIT $2",
                )
                .bind(after_id)
                .bind(limit)
                .fetch_all(&self.pool)
                .await?;
                Rows::Deliveries(
                    rows.into_iter()
                        .map(|r| DeliveryRecord {
                            id: r.id,
                            lead_id: r.lead_id,
                            enrolment_id: r.enrolment_id,
                            campaign: r.campaign,
                            step: r.step,
                            template: r.template,
                            state: r.state,
                            due_at: r.due_at,
                            attempts: r.attempts,
                            claimed_by: r.claimed_by,
                            lease_until: r.lease_until,
                            message_id: r.message_id,
                            sent_at: r.sent_at,
                            last_error: r.last_error,
                            updated_at: r.updated_at,
                        })
                        .collect(),
                )
            }
            Table::Events => {
                let rows: Vec<(i64, i64, DateTime<Utc>, String, Value)> =
                    sqlx::query_as("SELECT id, lead_id, at, kind, detail FROM events WHERE id > $1 ORDER BY id LIMIT $2")
                        .bind(after_id)
                        .bind(limit)
                        .fetch_all(&self.pool)
                        .await?;
                Rows::Events(
                    rows.into_iter()
                        .map(|(id, lead_id, at, kind, detail)| EventRecord {
                            id,
                            lead_id,
                            at,
                            kind,
                            detail,
                        })
                        .collect(),
                )
            }
            Table::Suppressions => {
                let rows: Vec<SuppressionRow> = sqlx::query_as(
                    "SELECT id, address, reason, evidence, created_at FROM suppressions WHERE id > $1 ORDER BY id LIMIT $2",
                )
                .bind(after_id)
                .bind(limit)
                .fetch_all(&self.pool)
                .await?;
                Rows::Suppressions(
                    rows.into_iter()
                        .map(|r| SuppressionRecord {
                            id: r.id,
                            address: r.address,
                            reason: r.reason,
                            evidence: r.evidence,
                            created_at: r.created_at,
                        })
                        .collect(),
                )
            }
            Table::Secrets => {
                let rows: Vec<(i64, String, String, DateTime<Utc>)> = sqlx::query_as(
                    "SELECT id, name, value, created_at FROM secrets WHERE id > $1 ORDER BY id LIMIT $2",
                )
                .bind(after_id)
                .bind(limit)
                .fetch_all(&self.pool)
                .await?;
                Rows::Secrets(
                    rows.into_iter()
                        .map(|(id, name, value, created_at)| SecretRecord {
                            id,
                            name,
                            value,
                            created_at,
                        })
                        .collect(),
                )
            }
            Table::Inbound => {
                #[derive(FromRow)]
                struct Row {
                    id: i64,
                    dedupe_key: String,
                    source: String,
                    received_at: DateTime<Utc>,
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
                    created_at: DateTime<Utc>,
                }
                let rows: Vec<Row> = sqlx::query_as(
                    "SELECT id, dedupe_key, source, received_at, message_id, from_address, subject, classification, lead_id, delivery_id,
                            matched_by, text, raw, effects, created_at
                     FROM inbound WHERE id > $1 ORDER BY id LIMIT $2",
                )
                .bind(after_id)
                .bind(limit)
                .fetch_all(&self.pool)
                .await?;
                Rows::Inbound(
                    rows.into_iter()
                        .map(|r| InboundMessageRecord {
                            id: r.id,
                            dedupe_key: r.dedupe_key,
                            source: r.source,
                            received_at: r.received_at,
                            message_id: r.message_id,
                            from_address: r.from_address,
                            subject: r.subject,
                            classification: r.classification,
                            lead_id: r.lead_id,
                            delivery_id: r.delivery_id,
                            matched_by: r.matched_by,
                            text: r.text,
                            raw: r.raw,
                            effects: r.effects,
                            created_at: r.created_at,
                        })
                        .collect(),
                )
            }
            Table::Notifications => {
                #[derive(FromRow)]
                struct Row {
                    id: i64,
                    idempotency_key: String,
                    kind: String,
                    lead_id: Option<i64>,
                    payload: Value,
                    state: String,
                    attempts: i64,
                    next_at: DateTime<Utc>,
                    claimed_by: Option<String>,
                    lease_until: Option<DateTime<Utc>>,
                    last_error: Option<String>,
                    created_at: DateTime<Utc>,
                    sent_at: Option<DateTime<Utc>>,
                }
                let rows: Vec<Row> = sqlx::query_as(
                    "SELECT id, idempotency_key, kind, lead_id, payload, state, attempts, next_at, claimed_by, lease_until, last_error,
                            created_at, sent_at
                     FROM notifications WHERE id > $1 ORDER BY id LIMIT $2",
                )
                .bind(after_id)
                .bind(limit)
                .fetch_all(&self.pool)
                .await?;
                Rows::Notifications(
                    rows.into_iter()
                        .map(|r| NotificationRecord {
                            id: r.id,
                            idempotency_key: r.idempotency_key,
                            kind: r.kind,
                            lead_id: r.lead_id,
                            payload: r.payload,
                            state: r.state,
                            attempts: r.attempts,
                            next_at: r.next_at,
                            claimed_by: r.claimed_by,
                            lease_until: r.lease_until,
                            last_error: r.last_error,
                            created_at: r.created_at,
                            sent_at: r.sent_at,
                        })
                        .collect(),
                )
            }
            Table::KvState => {
                let rows: Vec<(i64, String, String, DateTime<Utc>)> = sqlx::query_as(
                    "SELECT id, key, value, updated_at FROM kv_state WHERE id > $1 ORDER BY id LIMIT $2",
                )
                .bind(after_id)
                .bind(limit)
                .fetch_all(&self.pool)
                .await?;
                Rows::KvState(
                    rows.into_iter()
                        .map(|(id, key, value, updated_at)| KvRecord {
                            id,
                            key,
                            value,
                            updated_at,
                        })
                        .collect(),
                )
            }
        })
    }

    async fn import_rows(&self, rows: &Rows) -> Result<usize, StoreError> {
        if rows.is_empty() {
            return Ok(0);
        }
        let batch = rows_json(rows);
        let (insert, advance): (&'static str, &'static str) = match rows.table() {
            Table::Leads => (
                "INSERT INTO leads (id, email, first_name, last_name, company, title, owner_email, owner_name, lost_reason, lost_at, timezone,
                                    tags, fields, state, created_at, updated_at)
                 SELECT (v->>'id')::bigint, v->>'email', v->>'first_name', v->>'last_name', v->>'company', v->>'title', v->>'owner_email',
                        v->>'owner_name', v->>'lost_reason', rewarm_ms((v->>'lost_at')::bigint), v->>'timezone', v->'tags', v->'fields',
                        v->>'state', rewarm_ms((v->>'created_at')::bigint), rewarm_ms((v->>'updated_at')::bigint)
                 FROM jsonb_array_elements($1) AS j(v)",
                "SELECT setval(pg_get_serial_sequence('leads', 'id'), (SELECT coalesce(max(id), 0) + 1 FROM leads), false)",
            ),
            Table::Enrolments => (
                "INSERT INTO enrolments (id, lead_id, campaign, segment, state, enrolled_at, ended_at)
                 SELECT (v->>'id')::bigint, (v->>'lead_id')::bigint, v->>'campaign', v->>'segment', v->>'state',
                        rewarm_ms((v->>'enrolled_at')::bigint), rewarm_ms((v->>'ended_at')::bigint)
                 FROM jsonb_array_elements($1) AS j(v)",
                "SELECT setval(pg_get_serial_sequence('enrolments', 'id'), (SELECT coalesce(max(id), 0) + 1 FROM enrolments), false)",
            ),
            Table::Deliveries => (
                "INSERT INTO deliveries (id, lead_id, enrolment_id, campaign, step, template, state, due_at, attempts, claimed_by, lease_until,
                                         message_id, sent_at, last_error, updated_at)
                 SELECT (v->>'id')::bigint, (v->>'lead_id')::bigint, (v->>'enrolment_id')::bigint, v->>'campaign', (v->>'step')::bigint,
                        v->>'template', v->>'state', rewarm_ms((v->>'due_at')::bigint), (v->>'attempts')::bigint, v->>'claimed_by',
                        rewarm_ms((v->>'lease_until')::bigint), v->>'message_id', rewarm_ms((v->>'sent_at')::bigint), v->>'last_error',
                        rewarm_ms((v->>'updated_at')::bigint)
                 FROM jsonb_array_elements($1) AS j(v)",
                "SELECT setval(pg_get_serial_sequence('deliveries', 'id'), (SELECT coalesce(max(id), 0) + 1 FROM deliveries), false)",
            ),
            Table::Events => (
                "INSERT INTO events (id, lead_id, at, kind, detail)
                 SELECT (v->>'id')::bigint, (v->>'lead_id')::bigint, rewarm_ms((v->>'at')::bigint), v->>'kind', v->'detail'
                 FROM jsonb_array_elements($1) AS j(v)",
                "SELECT setval(pg_get_serial_sequence('events', 'id'), (SELECT coalesce(max(id), 0) + 1 FROM events), false)",
            ),
            Table::Suppressions => (
                "INSERT INTO suppressions (id, address, reason, evidence, created_at)
                 SELECT (v->>'id')::bigint, v->>'address', v->>'reason', v->'evidence', rewarm_ms((v->>'created_at')::bigint)
                 FROM jsonb_array_elements($1) AS j(v)",
                "SELECT setval(pg_get_serial_sequence('suppressions', 'id'), (SELECT coalesce(max(id), 0) + 1 FROM suppressions), false)",
            ),
            Table::Secrets => (
                "INSERT INTO secrets (id, name, value, created_at)
                 SELECT (v->>'id')::bigint, v->>'name', v->>'value', rewarm_ms((v->>'created_at')::bigint)
                 FROM jsonb_array_elements($1) AS j(v)",
                "SELECT setval(pg_get_serial_sequence('secrets', 'id'), (SELECT coalesce(max(id), 0) + 1 FROM secrets), false)",
            ),
            Table::Inbound => (
                "INSERT INTO inbound (id, dedupe_key, source, received_at, message_id, from_address, subject, classification,
                                      lead_id, delivery_id, matched_by, text, raw, effects, created_at)
                 SELECT (v->>'id')::bigint, v->>'dedupe_key', v->>'source', rewarm_ms((v->>'received_at')::bigint), v->>'message_id',
                        v->>'from_address', v->>'subject', v->>'classification', (v->>'lead_id')::bigint, (v->>'delivery_id')::bigint,
                        v->>'matched_by', v->>'text', decode(v->>'raw', 'hex'), v->'effects', rewarm_ms((v->>'created_at')::bigint)
                 FROM jsonb_array_elements($1) AS j(v)",
                "SELECT setval(pg_get_serial_sequence('inbound', 'id'), (SELECT coalesce(max(id), 0) + 1 FROM inbound), false)",
            ),
            Table::Notifications => (
                "INSERT INTO notifications (id, idempotency_key, kind, lead_id, payload, state, attempts, next_at, claimed_by, lease_until,
                                            last_error, created_at, sent_at)
                 SELECT (v->>'id')::bigint, v->>'idempotency_key', v->>'kind', (v->>'lead_id')::bigint, v->'payload', v->>'state',
                        (v->>'attempts')::bigint, rewarm_ms((v->>'next_at')::bigint), v->>'claimed_by', rewarm_ms((v->>'lease_until')::bigint),
                        v->>'last_error', rewarm_ms((v->>'created_at')::bigint), rewarm_ms((v->>'sent_at')::bigint)
                 FROM jsonb_array_elements($1) AS j(v)",
                "SELECT setval(pg_get_serial_sequence('notifications', 'id'), (SELECT coalesce(max(id), 0) + 1 FROM notifications), false)",
            ),
            Table::KvState => (
                "INSERT INTO kv_state (id, key, value, updated_at)
                 SELECT (v->>'id')::bigint, v->>'key', v->>'value', rewarm_ms((v->>'updated_at')::bigint)
                 FROM jsonb_array_elements($1) AS j(v)",
                "SELECT setval(pg_get_serial_sequence('kv_state', 'id'), (SELECT coalesce(max(id), 0) + 1 FROM kv_state), false)",
            ),
        };
        let mut tx = self.pool.begin().await?;
        let n = sqlx::query(insert)
            .bind(&batch)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        // Ids were given explicitly: the next row the daemon inserts must come after them.
        sqlx::query(advance).execute(&mut *tx).await?;
        tx.commit().await?;
        Ok(n as usize)
    }

    async fn delete_all_rows(&self) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await?;
        // Children before parents.
        for sql in [
            "DELETE FROM inbound",
            "DELETE FROM notifications",
            "DELETE FROM kv_state",
            "DELETE FROM events",
            "DELETE FROM deliveries",
            "DELETE FROM enrolments",
            "DELETE FROM leads",
            "DELETE FROM suppressions",
            "DELETE FROM secrets",
        ] {
            sqlx::query(sql).execute(&mut *tx).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn suppress(
        &self,
        entries: &[Suppression],
        now: DateTime<Utc>,
    ) -> Result<usize, StoreError> {
        if entries.is_empty() {
            return Ok(0);
        }
        let batch = suppressions_json(entries);
        retrying!(self.suppress_once(&batch, ts(now)))
    }

    async fn unsuppress(&self, address: &str) -> Result<bool, StoreError> {
        let n = sqlx::query("DELETE FROM suppressions WHERE address = $1")
            .bind(address)
            .execute(&self.pool)
            .await?
            .rows_affected();
        Ok(n > 0)
    }

    async fn suppressions(&self) -> Result<Vec<Suppression>, StoreError> {
        let rows: Vec<SuppressionRow> = sqlx::query_as(
            "SELECT id, address, reason, evidence, created_at FROM suppressions ORDER BY id",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter()
            .map(SuppressionRow::into_suppression)
            .collect()
    }

    async fn suppression_for(
        &self,
        email: &EmailAddress,
    ) -> Result<Option<Suppression>, StoreError> {
        let row: Option<SuppressionRow> = sqlx::query_as(
            "SELECT id, address, reason, evidence, created_at FROM suppressions WHERE address IN ($1, $2)
             ORDER BY address LIKE '@%' LIMIT 1",
        )
        .bind(email.as_str())
        .bind(format!("@{}", email.domain()))
        .fetch_optional(&self.pool)
        .await?;
        row.map(SuppressionRow::into_suppression).transpose()
    }

    async fn delivery_target(
        &self,
        delivery_id: i64,
    ) -> Result<Option<DeliveryTarget>, StoreError> {
        let row: Option<(i64, i64, String, String, i64, Option<String>)> = sqlx::query_as(
            "SELECT d.id, d.lead_id, l.email, d.campaign, d.step, d.message_id
             FROM deliveries d JOIN leads l ON l.id = d.lead_id WHERE d.id = $1",
        )
        .bind(delivery_id)
        .fetch_optional(&self.pool)
        .await?;
        row.map(|(id, lead_id, email, campaign, step, message_id)| {
            Ok(DeliveryTarget {
                delivery_id: id,
                lead_id,
                email: EmailAddress::parse(&email).map_err(|e| StoreError::Corrupt {
                    table: "leads",
                    id: lead_id,
                    reason: e.to_string(),
                })?,
                campaign,
                step: u32::try_from(step + 1).unwrap_or(0),
                message_id,
            })
        })
        .transpose()
    }

    async fn record_click(
        &self,
        delivery_id: i64,
        url: &str,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let n = sqlx::query(
            "INSERT INTO events (lead_id, at, kind, detail)
             SELECT lead_id, $2, 'clicked', jsonb_build_object('campaign', campaign, 'step', step + 1, 'url', $3::text)
             FROM deliveries WHERE id = $1",
        )
        .bind(delivery_id)
        .bind(ts(now))
        .bind(url)
        .execute(&self.pool)
        .await?
        .rows_affected();
        Ok(n > 0)
    }

    async fn record_inbound(
        &self,
        record: &InboundRecord,
        effect: &InboundEffect,
        now: DateTime<Utc>,
    ) -> Result<InboundApplied, StoreError> {
        let mut tx = self.locked_write().await?;
        let inserted: Option<i64> = sqlx::query_scalar(
            "INSERT INTO inbound (dedupe_key, source, received_at, message_id, from_address, subject, classification,
                                  lead_id, delivery_id, matched_by, text, raw, effects, created_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, '{}'::jsonb, $13)
             ON CONFLICT (dedupe_key) DO NOTHING RETURNING id",
        )
        .bind(&record.dedupe_key)
        .bind(&record.source)
        .bind(ts(record.received_at))
        .bind(&record.message_id)
        .bind(&record.from_address)
        .bind(&record.subject)
        .bind(&record.classification)
        .bind(record.lead_id)
        .bind(record.delivery_id)
        .bind(&record.matched_by)
        .bind(&record.text)
        .bind(&record.raw)
        .bind(ts(now))
        .fetch_optional(&mut *tx)
        .await?;
        let Some(inbound_id) = inserted else {
            let id: i64 = sqlx::query_scalar("SELECT id FROM inbound WHERE dedupe_key = $1")
                .bind(&record.dedupe_key)
                .fetch_one(&mut *tx)
                .await?;
            tx.rollback().await?;
            return Ok(InboundApplied {
                inbound_id: id,
                duplicate: true,
            });
        };
        let mut effects = json!({"effect": "none"});
        if let Some(lead_id) = record.lead_id {
            let state: Option<String> = sqlx::query_scalar("SELECT state FROM leads WHERE id = $1")
                .bind(lead_id)
                .fetch_optional(&mut *tx)
                .await?;
            if let Some(state) = state {
                insert_event(
                    &mut tx,
                    lead_id,
                    "inbound",
                    &json!({"classification": record.classification, "subject": record.subject,
                            "matched_by": record.matched_by, "inbound_id": inbound_id}),
                    now,
                )
                .await?;
                effects =
                    apply_effect_pg(&mut tx, lead_id, &state, inbound_id, record, effect, now)
                        .await?;
            }
        }
        sqlx::query("UPDATE inbound SET effects = $2 WHERE id = $1")
            .bind(inbound_id)
            .bind(&effects)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(InboundApplied {
            inbound_id,
            duplicate: false,
        })
    }

    async fn engage(
        &self,
        lead_id: i64,
        kind: &str,
        points: i64,
        threshold: i64,
        notifications: &[NewNotification],
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        if points == 0 {
            return Ok(false);
        }
        let mut tx = self.locked_write().await?;
        let state: Option<String> = sqlx::query_scalar("SELECT state FROM leads WHERE id = $1")
            .bind(lead_id)
            .fetch_optional(&mut *tx)
            .await?;
        let Some(state) = state else {
            return Ok(false);
        };
        let before = score_pg(&mut tx, lead_id).await?;
        let after = before + points;
        insert_event(
            &mut tx,
            lead_id,
            "engaged",
            &json!({"kind": kind, "points": points, "score": after}),
            now,
        )
        .await?;
        let mut rewarmed = false;
        if threshold > 0 && before < threshold && after >= threshold && rewarmable(&state) {
            rewarmed = rewarm_pg(&mut tx, lead_id, &state, "score", now).await?;
            enqueue_pg(&mut tx, notifications, now).await?;
        }
        tx.commit().await?;
        Ok(rewarmed)
    }

    async fn score(&self, lead_id: i64) -> Result<i64, StoreError> {
        let mut conn = self.pool.acquire().await?;
        score_pg(&mut conn, lead_id).await
    }

    async fn enqueue_notifications(
        &self,
        notifications: &[NewNotification],
        now: DateTime<Utc>,
    ) -> Result<usize, StoreError> {
        if notifications.is_empty() {
            return Ok(0);
        }
        let mut tx = self.locked_write().await?;
        let n = enqueue_pg(&mut tx, notifications, now).await?;
        tx.commit().await?;
        Ok(n)
    }

    async fn claim_notifications(
        &self,
        now: DateTime<Utc>,
        worker: &str,
        lease_until: DateTime<Utc>,
        limit: usize,
    ) -> Result<Vec<Notification>, StoreError> {
        let mut tx = self.locked_write().await?;
        let rows: Vec<NotificationRow> = sqlx::query_as(
            "UPDATE notifications SET state = 'claimed', claimed_by = $2, lease_until = $3, attempts = attempts + 1
             WHERE id IN (SELECT id FROM notifications
                          WHERE (state = 'pending' AND next_at <= $1) OR (state = 'claimed' AND lease_until <= $1)
                          ORDER BY next_at, id LIMIT $4 FOR UPDATE SKIP LOCKED)
             RETURNING id, idempotency_key, kind, lead_id, payload, state, attempts, next_at, last_error, created_at, sent_at",
        )
        .bind(ts(now))
        .bind(worker)
        .bind(ts(lease_until))
        .bind(limit as i64)
        .fetch_all(&mut *tx)
        .await?;
        tx.commit().await?;
        let mut out = rows
            .into_iter()
            .map(NotificationRow::into_notification)
            .collect::<Result<Vec<_>, _>>()?;
        out.sort_by_key(|n| n.id);
        Ok(out)
    }

    async fn record_notifications(
        &self,
        results: &[(i64, Result<(), String>, Option<DateTime<Utc>>)],
        worker: &str,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        if results.is_empty() {
            return Ok(());
        }
        let batch = notification_results_json(results);
        let mut tx = self.locked_write().await?;
        sqlx::query(
            "UPDATE notifications SET state = v->>'state', last_error = v->>'error',
                 next_at = CASE WHEN v->>'state' = 'pending' THEN rewarm_ms((v->>'retry_at')::bigint) ELSE next_at END,
                 sent_at = CASE WHEN v->>'state' = 'sent' THEN $3 ELSE sent_at END,
                 claimed_by = NULL, lease_until = NULL
             FROM jsonb_array_elements($1) j(v)
             WHERE notifications.id = (v->>'id')::bigint AND notifications.state = 'claimed' AND notifications.claimed_by = $2",
        )
        .bind(&batch)
        .bind(worker)
        .bind(ts(now))
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    async fn notifications(
        &self,
        after_id: i64,
        limit: usize,
    ) -> Result<Vec<Notification>, StoreError> {
        let rows: Vec<NotificationRow> = sqlx::query_as(
            "SELECT id, idempotency_key, kind, lead_id, payload, state, attempts, next_at, last_error, created_at, sent_at
             FROM notifications WHERE id > $1 ORDER BY id LIMIT $2",
        )
        .bind(after_id)
        .bind(limit as i64)
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter()
            .map(NotificationRow::into_notification)
            .collect()
    }

    async fn inbound_messages(
        &self,
        after_id: i64,
        limit: usize,
    ) -> Result<Vec<StoredInbound>, StoreError> {
        #[allow(clippy::type_complexity)]
        let rows: Vec<(i64, String, String, DateTime<Utc>, Option<String>, Option<String>, Option<String>, String, Option<i64>, Option<i64>, Option<String>, Option<String>, Vec<u8>, Value)> =
            sqlx::query_as(
                "SELECT id, dedupe_key, source, received_at, message_id, from_address, subject, classification, lead_id, delivery_id,
                        matched_by, text, raw, effects FROM inbound WHERE id > $1 ORDER BY id LIMIT $2",
            )
            .bind(after_id)
            .bind(limit as i64)
            .fetch_all(&self.pool)
            .await?;
        rows.into_iter()
            .map(|r| {
                Ok(StoredInbound {
                    id: r.0,
                    effects: r.13,
                    record: InboundRecord {
                        dedupe_key: r.1,
                        source: r.2,
                        received_at: r.3,
                        message_id: r.4,
                        from_address: r.5,
                        subject: r.6,
                        classification: r.7,
                        lead_id: r.8,
                        delivery_id: r.9,
                        matched_by: r.10,
                        text: r.11,
                        raw: r.12,
                    },
                })
            })
            .collect()
    }

    async fn kv_get(&self, key: &str) -> Result<Option<String>, StoreError> {
        Ok(
            sqlx::query_scalar("SELECT value FROM kv_state WHERE key = $1")
                .bind(key)
                .fetch_optional(&self.pool)
                .await?,
        )
    }

    async fn kv_set(&self, key: &str, value: &str) -> Result<(), StoreError> {
        let mut tx = self.locked_write().await?;
        sqlx::query(
            "INSERT INTO kv_state (key, value, updated_at) VALUES ($1, $2, $3)
             ON CONFLICT (key) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at",
        )
        .bind(key)
        .bind(value)
        .bind(ts(Utc::now()))
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    async fn kv_set_if_absent(&self, key: &str, value: &str) -> Result<String, StoreError> {
        // Two statements, no lock: the INSERT waits for a racing insert of the same key to
        // commit, and the SELECT (a new snapshot under READ COMMITTED) then sees the winner.
        let mut conn = self.pool.acquire().await?;
        sqlx::query(
            "INSERT INTO kv_state (key, value, updated_at) VALUES ($1, $2, $3) ON CONFLICT (key) DO NOTHING",
        )
        .bind(key)
        .bind(value)
        .bind(ts(Utc::now()))
        .execute(&mut *conn)
        .await?;
        Ok(
            sqlx::query_scalar("SELECT value FROM kv_state WHERE key = $1")
                .bind(key)
                .fetch_one(&mut *conn)
                .await?,
        )
    }

    async fn delivery_by_message_id(
        &self,
        message_id: &str,
    ) -> Result<Option<DeliveryTarget>, StoreError> {
        let bare = bare_message_id(message_id);
        if bare.is_empty() {
            return Ok(None);
        }
        let id: Option<i64> = sqlx::query_scalar(
            "SELECT id FROM deliveries WHERE message_id IN ($1, $2) ORDER BY id LIMIT 1",
        )
        .bind(bare)
        .bind(format!("<{bare}>"))
        .fetch_optional(&self.pool)
        .await?;
        match id {
            Some(id) => self.delivery_target(id).await,
            None => Ok(None),
        }
    }

    async fn leads_rewarmed(
        &self,
        since: DateTime<Utc>,
        owner: Option<&str>,
    ) -> Result<Vec<(Lead, DateTime<Utc>)>, StoreError> {
        let rows: Vec<(i64, DateTime<Utc>)> = sqlx::query_as(
            "SELECT l.id, r.at FROM leads l
             JOIN (SELECT lead_id, max(at) AS at FROM events WHERE kind = 'rewarmed' GROUP BY lead_id) r ON r.lead_id = l.id
             WHERE l.state = 'rewarmed' AND r.at >= $1 AND ($2::text IS NULL OR lower(l.owner_email) = lower($2::text))
             ORDER BY r.at DESC, l.id",
        )
        .bind(ts(since))
        .bind(owner)
        .fetch_all(&self.pool)
        .await?;
        let ids: Vec<i64> = rows.iter().map(|r| r.0).collect();
        let mut leads: HashMap<i64, Lead> = self
            .leads_by_ids(&ids)
            .await?
            .into_iter()
            .map(|l| (l.id, l))
            .collect();
        Ok(rows
            .into_iter()
            .filter_map(|(id, at)| leads.remove(&id).map(|l| (l, at)))
            .collect())
    }

    async fn recycle(
        &self,
        lead_id: i64,
        reason: &str,
        resume_at: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<Option<LeadState>, StoreError> {
        let mut tx = self.locked_write().await?;
        let state: Option<String> = sqlx::query_scalar("SELECT state FROM leads WHERE id = $1")
            .bind(lead_id)
            .fetch_optional(&mut *tx)
            .await?;
        let Some(from) = state.filter(|s| s == "rewarmed" || s == "completed") else {
            return Ok(None);
        };
        let resumed = sqlx::query(
            "UPDATE deliveries SET state = 'scheduled', due_at = GREATEST(due_at, $3), claimed_by = NULL, lease_until = NULL, updated_at = $2
             WHERE lead_id = $1 AND state = 'cancelled'
               AND enrolment_id IN (SELECT id FROM enrolments WHERE lead_id = $1 AND state = 'stopped')",
        )
        .bind(lead_id)
        .bind(ts(now))
        .bind(ts(resume_at))
        .execute(&mut *tx)
        .await?
        .rows_affected();
        sqlx::query(
            "UPDATE enrolments SET state = 'active', ended_at = NULL
             WHERE lead_id = $1 AND state = 'stopped' AND id IN (SELECT enrolment_id FROM deliveries WHERE lead_id = $1 AND state = 'scheduled')",
        )
        .bind(lead_id)
        .execute(&mut *tx)
        .await?;
        let enrolled: i64 =
            sqlx::query_scalar("SELECT count(*) FROM enrolments WHERE lead_id = $1")
                .bind(lead_id)
                .fetch_one(&mut *tx)
                .await?;
        let to = recycle_target(resumed, enrolled);
        insert_event(
            &mut tx,
            lead_id,
            "recycled",
            &json!({"reason": reason, "after": resume_at, "from": from, "to": to.as_str(), "resumed_deliveries": resumed}),
            now,
        )
        .await?;
        sqlx::query("UPDATE leads SET state = $2, updated_at = $3 WHERE id = $1")
            .bind(lead_id)
            .bind(to.as_str())
            .bind(ts(now))
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(Some(to))
    }

    async fn due_now(&self, now: DateTime<Utc>) -> Result<i64, StoreError> {
        Ok(sqlx::query_scalar(DUE_NOW_SQL)
            .bind(ts(now))
            .fetch_one(&self.pool)
            .await?)
    }

    async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    async fn secret(
        &self,
        name: &str,
        generate: impl FnOnce() -> String + Send,
    ) -> Result<String, StoreError> {
        let existing: Option<String> =
            sqlx::query_scalar("SELECT value FROM secrets WHERE name = $1")
                .bind(name)
                .fetch_optional(&self.pool)
                .await?;
        if let Some(value) = existing {
            return Ok(value);
        }
        let value = generate();
        // Another daemon may store one at the same moment: the INSERT then waits for it and
        // does nothing, and the SELECT (a new snapshot) returns the value stored first.
        let mut tx = self.pool.begin().await?;
        sqlx::query(
            "INSERT INTO secrets (name, value, created_at) VALUES ($1, $2, $3) ON CONFLICT (name) DO NOTHING",
        )
        .bind(name)
        .bind(&value)
        .bind(ts(Utc::now()))
        .execute(&mut *tx)
        .await?;
        let stored: String = sqlx::query_scalar("SELECT value FROM secrets WHERE name = $1")
            .bind(name)
            .fetch_one(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(stored)
    }
}

/// One attempt of each write that may have to run again (see `retrying!`).
impl PgStore {
    /// Holds the write lock, so an import or enrolment running at the same moment either
    /// sees the new entries or has finished before they are matched against the leads.
    async fn suppress_once(&self, batch: &Value, now: DateTime<Utc>) -> Result<usize, StoreError> {
        let mut tx = self.locked_write().await?;
        let inserted = suppress_tx(&mut tx, batch, now).await?;
        tx.commit().await?;
        Ok(inserted as usize)
    }

    async fn upsert_once(
        &self,
        order: &[EmailAddress],
        by_email: &HashMap<EmailAddress, NewLead>,
        source: &str,
        now: DateTime<Utc>,
    ) -> Result<UpsertSummary, StoreError> {
        let emails: Vec<&str> = order.iter().map(|e| e.as_str()).collect();
        let mut tx = self.locked_write().await?;
        let existing: Vec<LeadRow> = sqlx::query_as(select_leads!("WHERE email = ANY($1)"))
            .bind(&emails)
            .fetch_all(&mut *tx)
            .await?;
        let mut existing: HashMap<String, Lead> = existing
            .into_iter()
            .map(|r| r.into_lead().map(|l| (l.email.to_string(), l)))
            .collect::<Result<_, _>>()?;

        let mut inserts = Vec::new();
        let mut updates = Vec::new();
        let mut summary = UpsertSummary::default();
        for email in order {
            let Some(new) = by_email.get(email) else {
                continue;
            };
            match existing.remove(email.as_str()) {
                None => {
                    let mut v = new_lead_json(new, email);
                    v["at_domain"] = json!(format!("@{}", email.domain()));
                    inserts.push(v);
                    summary.inserted += 1;
                }
                Some(old) => {
                    let (merged, changed) = merge_lead(&old, new);
                    if changed.is_empty() {
                        summary.unchanged += 1;
                    } else {
                        let mut v = lead_json(&merged);
                        v["detail"] = json!({"source": source, "changed": changed})
                            .to_string()
                            .into();
                        updates.push(v);
                        summary.updated += 1;
                    }
                }
            }
        }
        if !inserts.is_empty() {
            // One multi-row INSERT; ids are handed out in the file's order, and each new
            // lead gets its `imported` event in the same statement. A new lead whose address or
            // domain is on the suppression list arrives `suppressed`, and its event says why.
            sqlx::query(
                "WITH ins AS (
                    INSERT INTO leads (email, first_name, last_name, company, title, owner_email, owner_name, lost_reason, lost_at, timezone,
                                       tags, fields, state, created_at, updated_at)
                    SELECT v->>'email', v->>'first_name', v->>'last_name', v->>'company', v->>'title', v->>'owner_email', v->>'owner_name',
                           v->>'lost_reason', rewarm_ms((v->>'lost_at')::bigint), v->>'timezone', (v->>'tags')::jsonb, (v->>'fields')::jsonb,
                           CASE WHEN EXISTS (SELECT 1 FROM suppressions s WHERE s.address IN (v->>'email', v->>'at_domain'))
                                THEN 'suppressed' ELSE 'new' END,
                           $2, $2
                    FROM jsonb_array_elements($1) WITH ORDINALITY AS j(v, n) ORDER BY n
                    RETURNING id, email, state)
                 INSERT INTO events (lead_id, at, kind, detail)
                 SELECT ins.id, $2, 'imported',
                        CASE WHEN ins.state = 'suppressed'
                             THEN jsonb_build_object('source', $3::text, 'state', 'suppressed', 'reason', s.reason, 'evidence', s.evidence, 'address', s.address)
                             ELSE jsonb_build_object('source', $3::text, 'state', ins.state) END
                 FROM ins LEFT JOIN LATERAL (
                    SELECT s2.reason, s2.evidence, s2.address FROM suppressions s2 WHERE s2.address IN (ins.email, rewarm_at_domain(ins.email))
                    ORDER BY s2.address LIKE '@%' LIMIT 1) s ON true
                 ORDER BY ins.id",
            )
            .bind(Value::Array(inserts))
            .bind(now)
            .bind(source)
            .execute(&mut *tx)
            .await?;
        }
        if !updates.is_empty() {
            let updates = Value::Array(updates);
            sqlx::query(
                "UPDATE leads SET first_name = v->>'first_name', last_name = v->>'last_name', company = v->>'company',
                        title = v->>'title', owner_email = v->>'owner_email', owner_name = v->>'owner_name',
                        lost_reason = v->>'lost_reason', lost_at = rewarm_ms((v->>'lost_at')::bigint), timezone = v->>'timezone',
                        tags = (v->>'tags')::jsonb, fields = (v->>'fields')::jsonb, updated_at = $2
                 FROM jsonb_array_elements($1) AS j(v) WHERE leads.id = (v->>'id')::bigint",
            )
            .bind(&updates)
            .bind(now)
            .execute(&mut *tx)
            .await?;
            sqlx::query(
                "INSERT INTO events (lead_id, at, kind, detail)
                 SELECT (v->>'id')::bigint, $2, 'updated', (v->>'detail')::jsonb FROM jsonb_array_elements($1) WITH ORDINALITY AS j(v, n) ORDER BY n",
            )
            .bind(&updates)
            .bind(now)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(summary)
    }

    async fn enrol_once(&self, batch: &Value, now: DateTime<Utc>) -> Result<usize, StoreError> {
        let mut tx = self.locked_write().await?;
        // A lead whose address or domain is on the suppression list is never enrolled: it
        // becomes `suppressed` here (with its event), so the statements below skip it.
        sqlx::query(
            "WITH hit AS (
                SELECT l.id, l.state, s.reason, s.evidence, s.address
                FROM leads l CROSS JOIN LATERAL (
                    SELECT s2.reason, s2.evidence, s2.address FROM suppressions s2 WHERE s2.address IN (l.email, rewarm_at_domain(l.email))
                    ORDER BY s2.address LIKE '@%' LIMIT 1) s
                WHERE l.id IN (SELECT (j.v->>'lead_id')::bigint FROM jsonb_array_elements($1) AS j(v)) AND l.state = 'new'
                FOR UPDATE OF l),
             upd AS (UPDATE leads SET state = 'suppressed', updated_at = $2 FROM hit WHERE leads.id = hit.id)
             INSERT INTO events (lead_id, at, kind, detail)
             SELECT id, $2, 'suppressed', jsonb_build_object('from', state, 'to', 'suppressed', 'reason', reason, 'evidence', evidence, 'address', address)
             FROM hit ORDER BY id",
        )
        .bind(batch)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        // Only leads still `new` are enrolled: a lead suppressed or re-warmed meanwhile is left alone.
        let inserted = sqlx::query(
            "INSERT INTO enrolments (lead_id, campaign, segment, state, enrolled_at)
             SELECT (j.v->>'lead_id')::bigint, j.v->>'campaign', j.v->>'segment', 'active', $2
             FROM jsonb_array_elements($1) WITH ORDINALITY AS j(v, n) JOIN leads l ON l.id = (j.v->>'lead_id')::bigint
             WHERE l.state = 'new' ORDER BY j.n
             ON CONFLICT (lead_id, campaign) DO NOTHING",
        )
        .bind(batch)
        .bind(now)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        let statements: [&'static str; 3] = [
            "INSERT INTO deliveries (lead_id, enrolment_id, campaign, step, template, state, due_at, updated_at)
             SELECT e.lead_id, e.id, e.campaign, 0, j.v->>'template', 'scheduled', rewarm_ms((j.v->>'due')::bigint), $2
             FROM jsonb_array_elements($1) WITH ORDINALITY AS j(v, n)
             JOIN enrolments e ON e.lead_id = (j.v->>'lead_id')::bigint AND e.campaign = j.v->>'campaign'
             WHERE e.enrolled_at = $2 AND e.state = 'active' ORDER BY j.n
             ON CONFLICT (lead_id, campaign, step) DO NOTHING",
            "INSERT INTO events (lead_id, at, kind, detail)
             SELECT l.id, $2, 'enrolled', (j.v->>'detail')::jsonb
             FROM jsonb_array_elements($1) WITH ORDINALITY AS j(v, n) JOIN leads l ON l.id = (j.v->>'lead_id')::bigint
             WHERE l.state = 'new' ORDER BY j.n",
            "UPDATE leads SET state = 'nurturing', updated_at = $2
             WHERE state = 'new' AND id IN (SELECT (j.v->>'lead_id')::bigint FROM jsonb_array_elements($1) AS j(v))",
        ];
        for sql in statements {
            sqlx::query(sql)
                .bind(batch)
                .bind(now)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(inserted as usize)
    }

    async fn record_once(
        &self,
        outcomes: &[RecordedOutcome],
        worker: &str,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await?;
        // Only outcomes that still apply to their row are recorded (events included), as on
        // SQLite. The rows are locked while deciding, so a daemon expiring leases at the same
        // moment either goes first (the row is `unknown` here) or waits for this commit.
        let ids: Vec<i64> = outcomes.iter().map(|o| o.delivery.id).collect();
        let states: HashMap<i64, String> = sqlx::query_as::<_, (i64, String)>(
            "SELECT id, state FROM deliveries WHERE id = ANY($1) AND claimed_by = $2 ORDER BY id FOR UPDATE",
        )
        .bind(&ids)
        .bind(worker)
        .fetch_all(&mut *tx)
        .await?
        .into_iter()
        .collect();
        let applicable: Vec<Value> = outcomes
            .iter()
            .filter(|o| outcome_applies(&o.outcome, states.get(&o.delivery.id).map(String::as_str)))
            .map(outcome_json)
            .collect();
        if applicable.is_empty() {
            return Ok(());
        }
        let batch = Value::Array(applicable);
        // A result that comes back after its lease expired (row already `unknown`) is still
        // recorded. Statements that do not look at the worker do not take it as a parameter.
        let statements: [(&'static str, bool); 13] = [
            (
                "INSERT INTO events (lead_id, at, kind, detail)
                 SELECT (j.v->>'lead_id')::bigint, $2, j.v->>'event', (j.v->>'detail')::jsonb
                 FROM jsonb_array_elements($1) WITH ORDINALITY AS j(v, n) ORDER BY j.n",
                false,
            ),
            (
                "UPDATE deliveries SET state = 'sent', sent_at = $2, message_id = j.v->>'message_id', last_error = NULL, lease_until = NULL, updated_at = $2
                 FROM jsonb_array_elements($1) AS j(v) WHERE j.v->>'kind' = 'sent' AND deliveries.id = (j.v->>'id')::bigint
                   AND deliveries.state IN ('claimed', 'unknown') AND deliveries.claimed_by = $3",
                true,
            ),
            (
                "UPDATE deliveries SET state = 'scheduled', due_at = rewarm_ms((j.v->>'due')::bigint), attempts = deliveries.attempts - 1, claimed_by = NULL,
                        lease_until = NULL, updated_at = $2
                 FROM jsonb_array_elements($1) AS j(v) WHERE j.v->>'kind' = 'deferred' AND deliveries.id = (j.v->>'id')::bigint
                   AND deliveries.state = 'claimed' AND deliveries.claimed_by = $3",
                true,
            ),
            (
                "UPDATE deliveries SET state = 'retry_wait', due_at = rewarm_ms((j.v->>'due')::bigint), last_error = j.v->>'error', lease_until = NULL, updated_at = $2
                 FROM jsonb_array_elements($1) AS j(v) WHERE j.v->>'kind' = 'retry' AND deliveries.id = (j.v->>'id')::bigint
                   AND deliveries.state = 'claimed' AND deliveries.claimed_by = $3",
                true,
            ),
            (
                "UPDATE deliveries SET state = j.v->>'kind', last_error = j.v->>'error', lease_until = NULL, updated_at = $2
                 FROM jsonb_array_elements($1) AS j(v) WHERE j.v->>'kind' IN ('failed', 'unknown') AND deliveries.id = (j.v->>'id')::bigint
                   AND deliveries.state IN ('claimed', 'unknown') AND deliveries.claimed_by = $3",
                true,
            ),
            (
                "INSERT INTO deliveries (lead_id, enrolment_id, campaign, step, template, state, due_at, updated_at)
                 SELECT (j.v->>'lead_id')::bigint, (j.v->>'enrolment_id')::bigint, j.v->>'campaign', (j.v->'next'->>'step')::bigint, j.v->'next'->>'template',
                        'scheduled', rewarm_ms((j.v->'next'->>'due')::bigint), $2
                 FROM jsonb_array_elements($1) WITH ORDINALITY AS j(v, n)
                 WHERE j.v->>'kind' IN ('sent', 'failed', 'unknown') AND jsonb_typeof(j.v->'next') = 'object' ORDER BY j.n
                 ON CONFLICT (lead_id, campaign, step) DO NOTHING",
                false,
            ),
            // Last step done: the enrolment completes, the lead with it.
            (
                "INSERT INTO events (lead_id, at, kind, detail)
                 SELECT l.id, $2, 'completed', jsonb_build_object('campaign', j.v->>'campaign', 'from', l.state, 'to', 'completed')
                 FROM jsonb_array_elements($1) WITH ORDINALITY AS j(v, n) JOIN leads l ON l.id = (j.v->>'lead_id')::bigint
                 WHERE j.v->>'kind' IN ('sent', 'failed', 'unknown') AND coalesce(jsonb_typeof(j.v->'next'), 'null') = 'null'
                   AND NOT coalesce((j.v->>'suppress')::boolean, false) AND l.state = 'nurturing' ORDER BY j.n",
                false,
            ),
            (
                "UPDATE enrolments SET state = CASE WHEN coalesce((j.v->>'suppress')::boolean, false) THEN 'stopped' ELSE 'completed' END, ended_at = $2
                 FROM jsonb_array_elements($1) AS j(v) WHERE j.v->>'kind' IN ('sent', 'failed', 'unknown') AND coalesce(jsonb_typeof(j.v->'next'), 'null') = 'null'
                   AND enrolments.id = (j.v->>'enrolment_id')::bigint AND enrolments.state = 'active'",
                false,
            ),
            // A hard failure (e.g. 5xx on RCPT) suppresses the address: recorded as a state change.
            // … and puts it on the suppression list (the first entry for an address stays), and
            // nothing else of the lead's goes out: other campaigns stop, their steps are cancelled.
            (
                "INSERT INTO events (lead_id, at, kind, detail)
                 SELECT l.id, $2, 'suppressed', jsonb_build_object('from', l.state, 'to', 'suppressed', 'reason', 'hard_bounce', 'error', j.v->>'error',
                        'evidence', jsonb_build_object('delivery_id', (j.v->>'id')::bigint, 'error', j.v->>'error'), 'address', l.email)
                 FROM jsonb_array_elements($1) WITH ORDINALITY AS j(v, n) JOIN leads l ON l.id = (j.v->>'lead_id')::bigint
                 WHERE j.v->>'kind' = 'failed' AND coalesce((j.v->>'suppress')::boolean, false) AND l.state = 'nurturing' ORDER BY j.n",
                false,
            ),
            (
                "UPDATE leads SET state = CASE WHEN coalesce((j.v->>'suppress')::boolean, false) THEN 'suppressed' ELSE 'completed' END, updated_at = $2
                 FROM jsonb_array_elements($1) AS j(v) WHERE j.v->>'kind' IN ('sent', 'failed', 'unknown') AND coalesce(jsonb_typeof(j.v->'next'), 'null') = 'null'
                   AND leads.id = (j.v->>'lead_id')::bigint AND leads.state = 'nurturing'",
                false,
            ),
            (
                "INSERT INTO suppressions (address, reason, evidence, created_at)
                 SELECT l.email, 'hard_bounce', jsonb_build_object('delivery_id', (j.v->>'id')::bigint, 'error', j.v->>'error'), $2
                 FROM jsonb_array_elements($1) WITH ORDINALITY AS j(v, n) JOIN leads l ON l.id = (j.v->>'lead_id')::bigint
                 WHERE j.v->>'kind' = 'failed' AND coalesce((j.v->>'suppress')::boolean, false) ORDER BY j.n
                 ON CONFLICT (address) DO NOTHING",
                false,
            ),
            (
                "UPDATE deliveries SET state = 'cancelled', updated_at = $2
                 WHERE state IN ('scheduled', 'retry_wait')
                   AND lead_id IN (SELECT (j.v->>'lead_id')::bigint FROM jsonb_array_elements($1) AS j(v)
                                   WHERE j.v->>'kind' = 'failed' AND coalesce((j.v->>'suppress')::boolean, false))",
                false,
            ),
            (
                "UPDATE enrolments SET state = 'stopped', ended_at = $2
                 WHERE state = 'active'
                   AND lead_id IN (SELECT (j.v->>'lead_id')::bigint FROM jsonb_array_elements($1) AS j(v)
                                   WHERE j.v->>'kind' = 'failed' AND coalesce((j.v->>'suppress')::boolean, false))",
                false,
            ),
        ];
        for (sql, uses_worker) in statements {
            let query = sqlx::query(sql).bind(&batch).bind(now);
            let query = if uses_worker {
                query.bind(worker)
            } else {
                query
            };
            query.execute(&mut *tx).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn resume_once(&self, batch: &Value, now: DateTime<Utc>) -> Result<(), StoreError> {
        let mut tx = self.locked_write().await?;
        let statements: [&'static str; 4] = [
            "INSERT INTO deliveries (lead_id, enrolment_id, campaign, step, template, state, due_at, updated_at)
             SELECT (j.v->>'lead_id')::bigint, (j.v->>'enrolment_id')::bigint, j.v->>'campaign', (j.v->'next'->>'step')::bigint, j.v->'next'->>'template',
                    'scheduled', rewarm_ms((j.v->'next'->>'due')::bigint), $2
             FROM jsonb_array_elements($1) WITH ORDINALITY AS j(v, n) WHERE jsonb_typeof(j.v->'next') = 'object' ORDER BY j.n
             ON CONFLICT (lead_id, campaign, step) DO NOTHING",
            "INSERT INTO events (lead_id, at, kind, detail)
             SELECT l.id, $2, 'completed', jsonb_build_object('campaign', j.v->>'campaign', 'from', l.state, 'to', 'completed')
             FROM jsonb_array_elements($1) WITH ORDINALITY AS j(v, n) JOIN leads l ON l.id = (j.v->>'lead_id')::bigint
             WHERE coalesce(jsonb_typeof(j.v->'next'), 'null') = 'null' AND l.state = 'nurturing' ORDER BY j.n",
            "UPDATE enrolments SET state = 'completed', ended_at = $2
             FROM jsonb_array_elements($1) AS j(v) WHERE coalesce(jsonb_typeof(j.v->'next'), 'null') = 'null'
               AND enrolments.id = (j.v->>'enrolment_id')::bigint AND enrolments.state = 'active'",
            "UPDATE leads SET state = 'completed', updated_at = $2
             FROM jsonb_array_elements($1) AS j(v) WHERE coalesce(jsonb_typeof(j.v->'next'), 'null') = 'null'
               AND leads.id = (j.v->>'lead_id')::bigint AND leads.state = 'nurturing'",
        ];
        for sql in statements {
            sqlx::query(sql)
                .bind(batch)
                .bind(now)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(())
    }
}

/// The body of `suppress` inside a caller's (locked) transaction.
async fn suppress_tx(
    conn: &mut sqlx::PgConnection,
    batch: &Value,
    now: DateTime<Utc>,
) -> Result<u64, StoreError> {
    let inserted = sqlx::query(
            "INSERT INTO suppressions (address, reason, evidence, created_at)
             SELECT v->>'address', v->>'reason', v->'evidence', rewarm_ms((v->>'created_at')::bigint)
             FROM jsonb_array_elements($1) WITH ORDINALITY AS j(v, n) ORDER BY n
             ON CONFLICT (address) DO NOTHING",
        )
        .bind(batch)
        .execute(&mut *conn)
        .await?
        .rows_affected();
    // Every statement reads the same matches (`m`); the lead's state changes last.
    let statements: [&'static str; 4] = [
            suppress_matches!(
                "UPDATE deliveries SET state = 'cancelled', updated_at = $2
                 WHERE state IN ('scheduled', 'retry_wait') AND lead_id IN (SELECT lead_id FROM m)"
            ),
            suppress_matches!(
                "UPDATE enrolments SET state = 'stopped', ended_at = $2 WHERE state = 'active' AND lead_id IN (SELECT lead_id FROM m)"
            ),
            suppress_matches!(
                "INSERT INTO events (lead_id, at, kind, detail)
                 SELECT lead_id, $2, 'suppressed', jsonb_build_object('from', state, 'to', 'suppressed', 'reason', reason, 'evidence', evidence, 'address', address)
                 FROM m ORDER BY lead_id"
            ),
            suppress_matches!(
                "UPDATE leads SET state = 'suppressed', updated_at = $2 WHERE id IN (SELECT lead_id FROM m)"
            ),
        ];
    for sql in statements {
        sqlx::query(sql)
            .bind(batch)
            .bind(now)
            .execute(&mut *conn)
            .await?;
    }
    Ok(inserted)
}

/// A `notifications` row (PostgreSQL).
#[derive(FromRow)]
struct NotificationRow {
    id: i64,
    idempotency_key: String,
    kind: String,
    lead_id: Option<i64>,
    payload: Value,
    state: String,
    attempts: i64,
    next_at: DateTime<Utc>,
    last_error: Option<String>,
    created_at: DateTime<Utc>,
    sent_at: Option<DateTime<Utc>>,
}

impl NotificationRow {
    fn into_notification(self) -> Result<Notification, StoreError> {
        Ok(Notification {
            payload: self.payload,
            next_at: self.next_at,
            created_at: self.created_at,
            sent_at: self.sent_at,
            id: self.id,
            idempotency_key: self.idempotency_key,
            kind: self.kind,
            lead_id: self.lead_id,
            state: self.state,
            attempts: u32::try_from(self.attempts).unwrap_or(u32::MAX),
            last_error: self.last_error,
        })
    }
}

async fn insert_event(
    conn: &mut sqlx::PgConnection,
    lead_id: i64,
    kind: &str,
    detail: &Value,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    sqlx::query("INSERT INTO events (lead_id, at, kind, detail) VALUES ($1, $2, $3, $4)")
        .bind(lead_id)
        .bind(ts(now))
        .bind(kind)
        .bind(detail)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

async fn score_pg(conn: &mut sqlx::PgConnection, lead_id: i64) -> Result<i64, StoreError> {
    Ok(sqlx::query_scalar(
        "SELECT COALESCE(sum((detail->>'points')::bigint), 0)::bigint FROM events
         WHERE lead_id = $1 AND kind = 'engaged'
           AND id > COALESCE((SELECT max(id) FROM events WHERE lead_id = $1 AND kind = 'recycled'), 0)",
    )
    .bind(lead_id)
    .fetch_one(&mut *conn)
    .await?)
}

async fn enqueue_pg(
    conn: &mut sqlx::PgConnection,
    notifications: &[NewNotification],
    now: DateTime<Utc>,
) -> Result<usize, StoreError> {
    if notifications.is_empty() {
        return Ok(0);
    }
    let n = sqlx::query(
        "INSERT INTO notifications (idempotency_key, kind, lead_id, payload, state, attempts, next_at, created_at)
         SELECT v->>'key', v->>'kind', (v->>'lead_id')::bigint, v->'payload', 'pending', 0, rewarm_ms((v->>'at')::bigint), rewarm_ms((v->>'at')::bigint)
         FROM jsonb_array_elements($1) WITH ORDINALITY AS j(v, n) ORDER BY n
         ON CONFLICT (idempotency_key) DO NOTHING",
    )
    .bind(notifications_json(notifications, now))
    .execute(&mut *conn)
    .await?
    .rows_affected();
    Ok(n as usize)
}

/// Re-warms a lead in `state` (if it can be): cancels what waits, stops its enrolments, event
/// `rewarmed` {from, to, reason}. True if it changed.
async fn rewarm_pg(
    conn: &mut sqlx::PgConnection,
    lead_id: i64,
    state: &str,
    reason: &str,
    now: DateTime<Utc>,
) -> Result<bool, StoreError> {
    if !rewarmable(state) {
        return Ok(false);
    }
    for sql in [
        "UPDATE deliveries SET state = 'cancelled', updated_at = $2 WHERE lead_id = $1 AND state IN ('scheduled', 'retry_wait')",
        "UPDATE enrolments SET state = 'stopped', ended_at = $2 WHERE lead_id = $1 AND state = 'active'",
        "UPDATE leads SET state = 'rewarmed', updated_at = $2 WHERE id = $1",
    ] {
        sqlx::query(sql)
            .bind(lead_id)
            .bind(ts(now))
            .execute(&mut *conn)
            .await?;
    }
    insert_event(
        conn,
        lead_id,
        "rewarmed",
        &json!({"from": state, "to": "rewarmed", "reason": reason}),
        now,
    )
    .await?;
    Ok(true)
}

async fn suppress_lead_pg(
    conn: &mut sqlx::PgConnection,
    lead_id: i64,
    reason: SuppressionReason,
    evidence: &Value,
    now: DateTime<Utc>,
) -> Result<bool, StoreError> {
    let email: String = sqlx::query_scalar("SELECT email FROM leads WHERE id = $1")
        .bind(lead_id)
        .fetch_one(&mut *conn)
        .await?;
    let batch = suppressions_json(&[Suppression {
        address: email,
        reason,
        evidence: evidence.clone(),
        created_at: now,
    }]);
    Ok(suppress_tx(conn, &batch, now).await? > 0)
}

/// Applies an inbound effect to a matched lead (in `state`); returns the effects summary.
async fn apply_effect_pg(
    conn: &mut sqlx::PgConnection,
    lead_id: i64,
    state: &str,
    inbound_id: i64,
    record: &InboundRecord,
    effect: &InboundEffect,
    now: DateTime<Utc>,
) -> Result<Value, StoreError> {
    Ok(match effect {
        InboundEffect::None => json!({"effect": "none"}),
        InboundEffect::Rewarm {
            text,
            subject,
            notifications,
        } => {
            insert_event(
                conn,
                lead_id,
                "replied",
                &json!({"text": text, "subject": subject, "classification": record.classification, "inbound_id": inbound_id}),
                now,
            )
            .await?;
            let rewarmed = rewarm_pg(conn, lead_id, state, "reply", now).await?;
            let queued = if state == "suppressed" {
                0
            } else {
                enqueue_pg(conn, notifications, now).await?
            };
            json!({"effect": "rewarm", "rewarmed": rewarmed, "notifications": queued})
        }
        InboundEffect::Postpone { until } => {
            let n = sqlx::query(
                "UPDATE deliveries SET due_at = $3, updated_at = $2 WHERE lead_id = $1 AND state IN ('scheduled', 'retry_wait') AND due_at < $3",
            )
            .bind(lead_id)
            .bind(ts(now))
            .bind(ts(*until))
            .execute(&mut *conn)
            .await?
            .rows_affected();
            insert_event(
                conn,
                lead_id,
                "postponed",
                &json!({"until": until, "deliveries": n, "inbound_id": inbound_id}),
                now,
            )
            .await?;
            json!({"effect": "postpone", "until": until, "deliveries": n})
        }
        InboundEffect::Suppress { reason, evidence } => {
            let mut evidence = evidence.clone();
            if let Some(o) = evidence.as_object_mut() {
                o.entry("inbound_id").or_insert(json!(inbound_id));
            }
            let listed = suppress_lead_pg(conn, lead_id, *reason, &evidence, now).await?;
            json!({"effect": "suppress", "reason": reason.as_str(), "listed": listed})
        }
        InboundEffect::SoftBounce { limit, evidence } => {
            insert_event(
                conn,
                lead_id,
                "soft_bounce",
                &json!({"evidence": evidence, "inbound_id": inbound_id}),
                now,
            )
            .await?;
            // "In a row": soft bounces since the last sign that mail reaches the person (a
            // reply, an auto-reply, a click). A `sent` proves nothing (the bounce comes after
            // it), so it does not reset the count.
            let count: i64 = sqlx::query_scalar(
                "SELECT count(*) FROM events WHERE lead_id = $1 AND kind = 'soft_bounce'
                   AND id > COALESCE((SELECT max(id) FROM events WHERE lead_id = $1
                                               AND (kind IN ('replied', 'clicked')
                                                    OR (kind = 'inbound' AND detail->>'classification' IN ('human_reply', 'auto_reply')))), 0)",
            )
            .bind(lead_id)
            .fetch_one(&mut *conn)
            .await?;
            let suppressed = count >= i64::from(*limit) && state != "suppressed";
            if suppressed {
                let evidence = json!({"soft_bounces": count, "limit": limit, "last": evidence, "inbound_id": inbound_id});
                suppress_lead_pg(conn, lead_id, SuppressionReason::HardBounce, &evidence, now)
                    .await?;
            }
            json!({"effect": "soft_bounce", "in_a_row": count, "suppressed": suppressed})
        }
    })
}
