//! The SQLite store: the embedded default. WAL mode, one writer at a time; every write is
//! one short `BEGIN IMMEDIATE` transaction, never held across network I/O. Batches travel
//! as one JSON array parameter expanded with `json_each`, so a batch of any size is a
//! handful of statements, not a query per lead.

use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::str::FromStr;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::{Value, json};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};
use sqlx::{FromRow, SqlSafeStr};

use super::*;
use crate::domain::email::EmailAddress;
use crate::domain::lead::{Lead, LeadState, NewLead};

#[derive(Clone)]
pub struct SqliteStore {
    pool: SqlitePool,
}

const MIGRATIONS: &[(i64, &str, &str)] = &[
    (
        1,
        "initial",
        include_str!("../../migrations/sqlite/0001_initial.sql"),
    ),
    (
        2,
        "suppression",
        include_str!("../../migrations/sqlite/0002_suppression.sql"),
    ),
    (
        3,
        "inbound",
        include_str!("../../migrations/sqlite/0003_inbound.sql"),
    ),
];

/// `concat!`s `$before`, then `'@' || <the domain of the email column $col>` spelled exactly as
/// the `leads_at_domain` index spells it (migrations/sqlite/0002), then `$after`.
macro_rules! at_domain {
    ($before:literal, $col:literal, $after:literal) => {
        concat!(
            $before,
            "substr(",
            $col,
            ", length(rtrim(",
            $col,
            ", replace(",
            $col,
            ", '@', ''))))",
            $after
        )
    };
}

/// The `suppressions` columns, in `Suppression` order.
#[derive(FromRow)]
struct SuppressionRow {
    id: i64,
    address: String,
    reason: String,
    evidence: String,
    created_at: i64,
}

impl SuppressionRow {
    fn into_suppression(self) -> Result<Suppression, StoreError> {
        let corrupt = |reason: String| StoreError::Corrupt {
            table: "suppressions",
            id: self.id,
            reason,
        };
        Ok(Suppression {
            reason: SuppressionReason::parse(&self.reason)
                .ok_or_else(|| corrupt(format!("unknown reason `{}`", self.reason)))?,
            evidence: serde_json::from_str(&self.evidence)
                .map_err(|e| corrupt(format!("evidence: {e}")))?,
            created_at: from_ms("suppressions", self.id, self.created_at)?,
            address: self.address,
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
                FROM json_each($1) j CROSS JOIN suppressions s ON s.address = j.value->>'address'
                CROSS JOIN leads l ON l.email = s.address
                WHERE +l.state <> 'suppressed'
                UNION ALL
                SELECT l.id, l.state, s.address, s.reason, s.evidence
                FROM leads l CROSS JOIN suppressions s ON s.address = ",
            at_domain!("", "l.email", ""),
            // Spelled as `<domain expression> IN (…)`, the leads_at_domain index is used.
            at_domain!("
                WHERE ", "l.email", " IN (SELECT k.value->>'address' FROM json_each($1) k)"),
            "
                  AND +l.state <> 'suppressed' AND l.email NOT IN (SELECT k.value->>'address' FROM json_each($1) k))
             ",
            $rest
        )
    };
}

impl SqliteStore {
    /// Closes the connections (waiting for those in use); every later call fails.
    pub async fn close(&self) {
        self.pool.close().await;
    }

    /// Opens (creating if missing) the database at `url` (`sqlite://FILE` or `sqlite::memory:`).
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        let options = SqliteConnectOptions::from_str(url)?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .busy_timeout(Duration::from_secs(30))
            .foreign_keys(true);
        let pool = SqlitePoolOptions::new()
            .max_connections(4)
            .connect_with(options)
            .await?;
        Ok(Self { pool })
    }

    async fn write(&self) -> Result<sqlx::Transaction<'static, sqlx::Sqlite>, StoreError> {
        Ok(self.pool.begin_with("BEGIN IMMEDIATE").await?)
    }
}

pub(crate) fn ms(t: DateTime<Utc>) -> i64 {
    t.timestamp_millis()
}

pub(crate) fn from_ms(table: &'static str, id: i64, v: i64) -> Result<DateTime<Utc>, StoreError> {
    DateTime::from_timestamp_millis(v).ok_or_else(|| StoreError::Corrupt {
        table,
        id,
        reason: format!("time stamp {v} out of range"),
    })
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
    lost_at: Option<i64>,
    timezone: Option<String>,
    tags: String,
    fields: String,
    state: String,
    created_at: i64,
    updated_at: i64,
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
            lost_at: self
                .lost_at
                .map(|v| from_ms("leads", self.id, v))
                .transpose()?,
            timezone: self
                .timezone
                .as_deref()
                .map(|tz| {
                    chrono_tz::Tz::from_str(tz)
                        .map_err(|_| corrupt(format!("unknown time zone `{tz}`")))
                })
                .transpose()?,
            tags: serde_json::from_str(&self.tags).map_err(|e| corrupt(format!("tags: {e}")))?,
            fields: serde_json::from_str(&self.fields)
                .map_err(|e| corrupt(format!("fields: {e}")))?,
            state: LeadState::parse(&self.state)
                .ok_or_else(|| corrupt(format!("unknown state `{}`", self.state)))?,
            created_at: from_ms("leads", self.id, self.created_at)?,
            updated_at: from_ms("leads", self.id, self.updated_at)?,
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

/// Merges `new` into `old`; returns the names of the columns that changed.
pub(crate) fn merge_lead(old: &Lead, new: &NewLead) -> (Lead, Vec<&'static str>) {
    let mut merged = old.clone();
    let mut changed = Vec::new();
    let mut set = |slot: &mut Option<String>, value: &Option<String>, name: &'static str| {
        if let Some(v) = value {
            if slot.as_deref() != Some(v.as_str()) {
                *slot = Some(v.clone());
                changed.push(name);
            }
        }
    };
    set(&mut merged.first_name, &new.first_name, "first_name");
    set(&mut merged.last_name, &new.last_name, "last_name");
    set(&mut merged.company, &new.company, "company");
    set(&mut merged.title, &new.title, "title");
    set(
        &mut merged.owner_email,
        &new.owner_email.as_ref().map(|e| e.to_string()),
        "owner_email",
    );
    set(&mut merged.owner_name, &new.owner_name, "owner_name");
    set(&mut merged.lost_reason, &new.lost_reason, "lost_reason");
    if new.lost_at.is_some() && new.lost_at != merged.lost_at {
        merged.lost_at = new.lost_at;
        changed.push("lost_at");
    }
    if new.timezone.is_some() && new.timezone != merged.timezone {
        merged.timezone = new.timezone;
        changed.push("timezone");
    }
    let before = merged.tags.len();
    for tag in &new.tags {
        if !merged.tags.iter().any(|t| t.eq_ignore_ascii_case(tag)) {
            merged.tags.push(tag.clone());
        }
    }
    if merged.tags.len() != before {
        changed.push("tags");
    }
    let mut fields_changed = false;
    for (k, v) in &new.fields {
        if merged.fields.get(k) != Some(v) {
            merged.fields.insert(k.clone(), v.clone());
            fields_changed = true;
        }
    }
    if fields_changed {
        changed.push("fields");
    }
    (merged, changed)
}

pub(crate) fn lead_json(l: &Lead) -> Value {
    json!({
        "id": l.id,
        "email": l.email.as_str(),
        "first_name": l.first_name,
        "last_name": l.last_name,
        "company": l.company,
        "title": l.title,
        "owner_email": l.owner_email,
        "owner_name": l.owner_name,
        "lost_reason": l.lost_reason,
        "lost_at": l.lost_at.map(ms),
        "timezone": l.timezone.map(|t| t.name()),
        "tags": serde_json::to_string(&l.tags).unwrap_or_else(|_| "[]".into()),
        "fields": serde_json::to_string(&l.fields).unwrap_or_else(|_| "{}".into()),
    })
}

pub(crate) fn new_lead_json(l: &NewLead, email: &EmailAddress) -> Value {
    json!({
        "email": email.as_str(),
        "first_name": l.first_name,
        "last_name": l.last_name,
        "company": l.company,
        "title": l.title,
        "owner_email": l.owner_email.as_ref().map(|e| e.as_str()),
        "owner_name": l.owner_name,
        "lost_reason": l.lost_reason,
        "lost_at": l.lost_at.map(ms),
        "timezone": l.timezone.map(|t| t.name()),
        "tags": serde_json::to_string(&l.tags).unwrap_or_else(|_| "[]".into()),
        "fields": serde_json::to_string(&l.fields).unwrap_or_else(|_| "{}".into()),
    })
}

/// The JSON one outcome contributes to `record_outcomes`' statements.
pub(crate) fn outcome_json(r: &RecordedOutcome) -> Value {
    let d = &r.delivery;
    let base = |kind: &str, event: &str, detail: Value| {
        json!({"id": d.id, "lead_id": d.lead_id, "enrolment_id": d.enrolment_id, "campaign": d.campaign,
               "kind": kind, "event": event, "detail": detail.to_string()})
    };
    let next_json = |next: &Option<NextStep>| match next {
        Some(n) => json!({"step": n.step, "due": ms(n.due_at), "template": n.template}),
        None => Value::Null,
    };
    match &r.outcome {
        Outcome::Sent { message_id, next } => {
            let mut v = base(
                "sent",
                "sent",
                json!({"campaign": d.campaign, "step": d.step + 1, "template": d.template, "message_id": message_id, "attempt": d.attempts}),
            );
            v["message_id"] = json!(message_id);
            v["next"] = next_json(next);
            v
        }
        Outcome::Deferred { due_at, reason } => {
            let mut v = base(
                "deferred",
                "delivery_deferred",
                json!({"campaign": d.campaign, "step": d.step + 1, "until": due_at.to_rfc3339(), "reason": reason.describe()}),
            );
            v["due"] = json!(ms(*due_at));
            v
        }
        Outcome::Retry { due_at, error } => {
            let mut v = base(
                "retry",
                "delivery_retry",
                json!({"campaign": d.campaign, "step": d.step + 1, "attempt": d.attempts, "error": error, "retry_at": due_at.to_rfc3339()}),
            );
            v["due"] = json!(ms(*due_at));
            v["error"] = json!(error);
            v
        }
        Outcome::Failed {
            error,
            next,
            suppress,
        } => {
            let mut v = base(
                "failed",
                "delivery_failed",
                json!({"campaign": d.campaign, "step": d.step + 1, "template": d.template, "attempt": d.attempts, "error": error}),
            );
            v["error"] = json!(error);
            // A suppressed address gets no next step.
            v["next"] = if *suppress {
                Value::Null
            } else {
                next_json(next)
            };
            v["suppress"] = json!(suppress);
            v
        }
        Outcome::Unknown { error, next } => {
            let mut v = base(
                "unknown",
                "delivery_unknown",
                json!({"campaign": d.campaign, "step": d.step + 1, "template": d.template, "attempt": d.attempts, "error": error,
                       "reason": "the conversation broke off after the message may have been accepted; not resent"}),
            );
            v["error"] = json!(error);
            v["next"] = next_json(next);
            v
        }
    }
}

/// Deliveries due and not sent yet, of leads still in nurture (`Store::due_now`).
const DUE_NOW_SQL: &str = "SELECT count(*) FROM deliveries d JOIN leads l ON l.id = d.lead_id
     WHERE d.state IN ('scheduled', 'retry_wait') AND d.due_at <= $1 AND l.state = 'nurturing'";

impl Store for SqliteStore {
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
        let migrator = sqlx::migrate::Migrator {
            migrations: Cow::Owned(migrations),
            ..sqlx::migrate::Migrator::DEFAULT
        };
        migrator.run(&self.pool).await?;
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
        let emails = json!(order.iter().map(|e| e.as_str()).collect::<Vec<_>>()).to_string();
        let mut tx = self.write().await?;
        let existing: Vec<LeadRow> = sqlx::query_as(select_leads!(
            "WHERE email IN (SELECT value FROM json_each($1))"
        ))
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
        for email in &order {
            let new = &by_email[email];
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
            let inserts = Value::Array(inserts).to_string();
            sqlx::query(
                "INSERT INTO leads (email, first_name, last_name, company, title, owner_email, owner_name, lost_reason, lost_at, timezone, tags, fields, state, created_at, updated_at)
                 SELECT j.value->>'email', j.value->>'first_name', j.value->>'last_name', j.value->>'company', j.value->>'title',
                        j.value->>'owner_email', j.value->>'owner_name', j.value->>'lost_reason', j.value->>'lost_at', j.value->>'timezone',
                        j.value->>'tags', j.value->>'fields',
                        CASE WHEN EXISTS (SELECT 1 FROM suppressions s WHERE s.address IN (j.value->>'email', j.value->>'at_domain'))
                             THEN 'suppressed' ELSE 'new' END,
                        $2, $2
                 FROM json_each($1) j",
            )
            .bind(&inserts)
            .bind(ms(now))
            .execute(&mut *tx)
            .await?;
            // A new lead whose address or domain is on the suppression list arrives
            // `suppressed`, and its event says which entry did it.
            sqlx::query(
                "INSERT INTO events (lead_id, at, kind, detail)
                 SELECT l.id, $2, 'imported',
                        CASE WHEN l.state = 'suppressed'
                             THEN (SELECT json_object('source', $3, 'state', 'suppressed', 'reason', s.reason, 'evidence', json(s.evidence), 'address', s.address)
                                   FROM suppressions s WHERE s.address IN (j.value->>'email', j.value->>'at_domain')
                                   ORDER BY s.address LIKE '@%' LIMIT 1)
                             ELSE json_object('source', $3, 'state', l.state) END
                 FROM json_each($1) j CROSS JOIN leads l ON l.email = j.value->>'email'",
            )
            .bind(&inserts)
            .bind(ms(now))
            .bind(source)
            .execute(&mut *tx)
            .await?;
        }
        if !updates.is_empty() {
            let updates = Value::Array(updates).to_string();
            sqlx::query(
                "UPDATE leads SET first_name = j.value->>'first_name', last_name = j.value->>'last_name', company = j.value->>'company',
                        title = j.value->>'title', owner_email = j.value->>'owner_email', owner_name = j.value->>'owner_name',
                        lost_reason = j.value->>'lost_reason', lost_at = j.value->>'lost_at', timezone = j.value->>'timezone',
                        tags = j.value->>'tags', fields = j.value->>'fields', updated_at = $2
                 FROM json_each($1) j WHERE leads.id = j.value->>'id'",
            )
            .bind(&updates)
            .bind(ms(now))
            .execute(&mut *tx)
            .await?;
            sqlx::query(
                "INSERT INTO events (lead_id, at, kind, detail) SELECT j.value->>'id', $2, 'updated', j.value->>'detail' FROM json_each($1) j",
            )
            .bind(&updates)
            .bind(ms(now))
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(summary)
    }

    async fn lead_by_email(&self, email: &EmailAddress) -> Result<Option<Lead>, StoreError> {
        let row: Option<LeadRow> = sqlx::query_as(select_leads!("WHERE email = $1"))
            .bind(email.as_str())
            .fetch_optional(&self.pool)
            .await?;
        row.map(LeadRow::into_lead).transpose()
    }

    async fn leads_by_ids(&self, ids: &[i64]) -> Result<Vec<Lead>, StoreError> {
        let rows: Vec<LeadRow> = sqlx::query_as(select_leads!(
            "WHERE id IN (SELECT value FROM json_each($1))"
        ))
        .bind(json!(ids).to_string())
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
        let names: Vec<String> =
            sqlx::query_scalar("SELECT DISTINCT j.key FROM leads, json_each(leads.fields) j")
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
        )
        .to_string();
        let mut tx = self.write().await?;
        // A lead whose address or domain is on the suppression list is never enrolled: it
        // becomes `suppressed` here (with its event), so the statements below skip it.
        sqlx::query(at_domain!(
            "INSERT INTO events (lead_id, at, kind, detail)
             SELECT l.id, $2, 'suppressed', json_object('from', l.state, 'to', 'suppressed', 'reason', s.reason, 'evidence', json(s.evidence), 'address', s.address)
             FROM leads l CROSS JOIN suppressions s ON s.id = (SELECT s2.id FROM suppressions s2 WHERE s2.address IN (l.email, ",
            "l.email",
            ") ORDER BY s2.address LIKE '@%' LIMIT 1)
             WHERE l.id IN (SELECT j.value->>'lead_id' FROM json_each($1) j) AND +l.state = 'new'"
        ))
        .bind(&batch)
        .bind(ms(now))
        .execute(&mut *tx)
        .await?;
        sqlx::query(at_domain!(
            "UPDATE leads SET state = 'suppressed', updated_at = $2
             WHERE id IN (SELECT j.value->>'lead_id' FROM json_each($1) j) AND +state = 'new'
               AND EXISTS (SELECT 1 FROM suppressions s WHERE s.address IN (leads.email, ",
            "leads.email",
            "))"
        ))
        .bind(&batch)
        .bind(ms(now))
        .execute(&mut *tx)
        .await?;
        // Only leads still `new` are enrolled: a lead suppressed or re-warmed meanwhile is left alone.
        let inserted = sqlx::query(
            "INSERT INTO enrolments (lead_id, campaign, segment, state, enrolled_at)
             SELECT j.value->>'lead_id', j.value->>'campaign', j.value->>'segment', 'active', $2
             FROM json_each($1) j CROSS JOIN leads l ON l.id = j.value->>'lead_id' WHERE l.state = 'new'
             ON CONFLICT (lead_id, campaign) DO NOTHING",
        )
        .bind(&batch)
        .bind(ms(now))
        .execute(&mut *tx)
        .await?
        .rows_affected();
        sqlx::query(
            "INSERT INTO deliveries (lead_id, enrolment_id, campaign, step, template, state, due_at, updated_at)
             SELECT e.lead_id, e.id, e.campaign, 0, j.value->>'template', 'scheduled', j.value->>'due', $2
             FROM json_each($1) j CROSS JOIN enrolments e ON e.lead_id = j.value->>'lead_id' AND e.campaign = j.value->>'campaign'
             WHERE e.enrolled_at = $2 AND e.state = 'active'
             ON CONFLICT (lead_id, campaign, step) DO NOTHING",
        )
        .bind(&batch)
        .bind(ms(now))
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            "INSERT INTO events (lead_id, at, kind, detail)
             SELECT l.id, $2, 'enrolled', j.value->>'detail'
             FROM json_each($1) j CROSS JOIN leads l ON l.id = j.value->>'lead_id' WHERE l.state = 'new'",
        )
        .bind(&batch)
        .bind(ms(now))
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            "UPDATE leads SET state = 'nurturing', updated_at = $2
             WHERE state = 'new' AND id IN (SELECT j.value->>'lead_id' FROM json_each($1) j)",
        )
        .bind(&batch)
        .bind(ms(now))
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(inserted as usize)
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
            due_at: i64,
        }
        // One statement: the lead's state and the suppression list are checked in the same
        // write as the claim, so a lead suppressed or re-warmed a moment ago, or whose address
        // or domain was listed a moment ago (even if the lead row was not updated), is never claimed.
        let rows: Vec<Row> = sqlx::query_as(at_domain!(
            "UPDATE deliveries SET state = 'claimed', claimed_by = $1, lease_until = $2, attempts = attempts + 1, updated_at = $3
             WHERE id IN (
                SELECT d.id FROM deliveries d JOIN leads l ON l.id = d.lead_id
                WHERE d.state IN ('scheduled', 'retry_wait') AND d.due_at <= $3 AND l.state = 'nurturing'
                  AND NOT EXISTS (SELECT 1 FROM suppressions s WHERE s.address IN (l.email, ",
            "l.email",
            "))
                ORDER BY d.due_at LIMIT $4)
             RETURNING id, lead_id, enrolment_id, campaign, step, template, attempts, due_at"
        ))
        .bind(worker)
        .bind(ms(lease_until))
        .bind(ms(now))
        .bind(limit as i64)
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter()
            .map(|r| {
                Ok(ClaimedDelivery {
                    id: r.id,
                    lead_id: r.lead_id,
                    enrolment_id: r.enrolment_id,
                    campaign: r.campaign,
                    step: u32::try_from(r.step).unwrap_or(0),
                    template: r.template,
                    attempts: u32::try_from(r.attempts).unwrap_or(0),
                    due_at: from_ms("deliveries", r.id, r.due_at)?,
                })
            })
            .collect()
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
        let now = ms(now);
        let mut tx = self.write().await?;
        // Only outcomes that still apply to their row are recorded (events included).
        let ids = json!(outcomes.iter().map(|o| o.delivery.id).collect::<Vec<_>>()).to_string();
        let states: HashMap<i64, String> =
            sqlx::query_as::<_, (i64, String)>("SELECT id, state FROM deliveries WHERE id IN (SELECT value FROM json_each($1)) AND claimed_by = $2")
                .bind(ids)
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
        // Which statements can touch a row: each one only reads outcomes of some kinds, so one
        // with none of those in the batch would change nothing and is not run (a batch that
        // only sent, with next steps, runs 3 of the 13).
        fn kind(v: &Value) -> &str {
            v["kind"].as_str().unwrap_or_default()
        }
        let any = |wanted: &dyn Fn(&Value) -> bool| applicable.iter().any(wanted);
        let finished = |v: &Value| matches!(kind(v), "sent" | "failed" | "unknown");
        let suppressing = |v: &Value| kind(v) == "failed" && v["suppress"].as_bool() == Some(true);
        let (sent, deferred, retry) = (
            any(&|v| kind(v) == "sent"),
            any(&|v| kind(v) == "deferred"),
            any(&|v| kind(v) == "retry"),
        );
        let failed_or_unknown = any(&|v| matches!(kind(v), "failed" | "unknown"));
        let has_next = any(&|v| finished(v) && !v["next"].is_null());
        let ends = any(&|v| finished(v) && v["next"].is_null());
        let suppresses = any(&suppressing);
        let needed: [bool; 13] = [
            true,
            sent,
            deferred,
            retry,
            failed_or_unknown,
            has_next,
            ends,
            ends,
            suppresses,
            ends,
            suppresses,
            suppresses,
            suppresses,
        ];
        let batch = Value::Array(applicable).to_string();
        // A result that comes back after its lease expired (row already `unknown`) is still recorded.
        let statements: [&'static str; 13] = [
            "INSERT INTO events (lead_id, at, kind, detail) SELECT j.value->>'lead_id', $2, j.value->>'event', j.value->>'detail' FROM json_each($1) j WHERE $3 = $3",
            "UPDATE deliveries SET state = 'sent', sent_at = $2, message_id = j.value->>'message_id', last_error = NULL, lease_until = NULL, updated_at = $2
             FROM json_each($1) j WHERE j.value->>'kind' = 'sent' AND deliveries.id = j.value->>'id'
               AND +deliveries.state IN ('claimed', 'unknown') AND +deliveries.claimed_by = $3",
            "UPDATE deliveries SET state = 'scheduled', due_at = j.value->>'due', attempts = attempts - 1, claimed_by = NULL, lease_until = NULL, updated_at = $2
             FROM json_each($1) j WHERE j.value->>'kind' = 'deferred' AND deliveries.id = j.value->>'id'
               AND +deliveries.state = 'claimed' AND +deliveries.claimed_by = $3",
            "UPDATE deliveries SET state = 'retry_wait', due_at = j.value->>'due', last_error = j.value->>'error', lease_until = NULL, updated_at = $2
             FROM json_each($1) j WHERE j.value->>'kind' = 'retry' AND deliveries.id = j.value->>'id'
               AND +deliveries.state = 'claimed' AND +deliveries.claimed_by = $3",
            "UPDATE deliveries SET state = j.value->>'kind', last_error = j.value->>'error', lease_until = NULL, updated_at = $2
             FROM json_each($1) j WHERE j.value->>'kind' IN ('failed', 'unknown') AND deliveries.id = j.value->>'id'
               AND +deliveries.state IN ('claimed', 'unknown') AND +deliveries.claimed_by = $3",
            "INSERT INTO deliveries (lead_id, enrolment_id, campaign, step, template, state, due_at, updated_at)
             SELECT j.value->>'lead_id', j.value->>'enrolment_id', j.value->>'campaign', j.value->>'$.next.step', j.value->>'$.next.template', 'scheduled', j.value->>'$.next.due', $2
             FROM json_each($1) j WHERE j.value->>'kind' IN ('sent', 'failed', 'unknown') AND j.value->>'next' IS NOT NULL AND $3 = $3
             ON CONFLICT (lead_id, campaign, step) DO NOTHING",
            // Last step done: the enrolment completes, the lead with it.
            "INSERT INTO events (lead_id, at, kind, detail)
             SELECT l.id, $2, 'completed', json_object('campaign', j.value->>'campaign', 'from', l.state, 'to', 'completed')
             FROM json_each($1) j CROSS JOIN leads l ON l.id = j.value->>'lead_id'
             WHERE j.value->>'kind' IN ('sent', 'failed', 'unknown') AND j.value->>'next' IS NULL AND NOT coalesce(j.value->>'suppress', 0) AND l.state = 'nurturing' AND $3 = $3",
            "UPDATE enrolments SET state = CASE WHEN coalesce(j.value->>'suppress', 0) THEN 'stopped' ELSE 'completed' END, ended_at = $2
             FROM json_each($1) j WHERE j.value->>'kind' IN ('sent', 'failed', 'unknown') AND j.value->>'next' IS NULL
               AND enrolments.id = j.value->>'enrolment_id' AND +enrolments.state = 'active' AND $3 = $3",
            // A hard failure (e.g. 5xx on RCPT) suppresses the address: recorded as a state change.
            // … and puts it on the suppression list (the first entry for an address stays), and
            // nothing else of the lead's goes out: other campaigns stop, their steps are cancelled.
            "INSERT INTO events (lead_id, at, kind, detail)
             SELECT l.id, $2, 'suppressed', json_object('from', l.state, 'to', 'suppressed', 'reason', 'hard_bounce', 'error', j.value->>'error',
                    'evidence', json_object('delivery_id', j.value->>'id', 'error', j.value->>'error'), 'address', l.email)
             FROM json_each($1) j CROSS JOIN leads l ON l.id = j.value->>'lead_id'
             WHERE j.value->>'kind' = 'failed' AND coalesce(j.value->>'suppress', 0) AND l.state = 'nurturing' AND $3 = $3",
            "UPDATE leads SET state = CASE WHEN coalesce(j.value->>'suppress', 0) THEN 'suppressed' ELSE 'completed' END, updated_at = $2
             FROM json_each($1) j WHERE j.value->>'kind' IN ('sent', 'failed', 'unknown') AND j.value->>'next' IS NULL
               AND leads.id = j.value->>'lead_id' AND +leads.state = 'nurturing' AND $3 = $3",
            "INSERT INTO suppressions (address, reason, evidence, created_at)
             SELECT l.email, 'hard_bounce', json_object('delivery_id', j.value->>'id', 'error', j.value->>'error'), $2
             FROM json_each($1) j CROSS JOIN leads l ON l.id = j.value->>'lead_id'
             WHERE j.value->>'kind' = 'failed' AND coalesce(j.value->>'suppress', 0) AND $3 = $3
             ON CONFLICT (address) DO NOTHING",
            "UPDATE deliveries SET state = 'cancelled', updated_at = $2
             WHERE +state IN ('scheduled', 'retry_wait') AND $3 = $3
               AND lead_id IN (SELECT j.value->>'lead_id' FROM json_each($1) j WHERE j.value->>'kind' = 'failed' AND coalesce(j.value->>'suppress', 0))",
            "UPDATE enrolments SET state = 'stopped', ended_at = $2
             WHERE +state = 'active' AND $3 = $3
               AND lead_id IN (SELECT j.value->>'lead_id' FROM json_each($1) j WHERE j.value->>'kind' = 'failed' AND coalesce(j.value->>'suppress', 0))",
        ];
        for (sql, _) in statements.iter().zip(needed).filter(|(_, needed)| *needed) {
            sqlx::query(*sql)
                .bind(&batch)
                .bind(now)
                .bind(worker)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn expire_leases(&self, now: DateTime<Utc>) -> Result<usize, StoreError> {
        let mut tx = self.write().await?;
        sqlx::query(
            "INSERT INTO events (lead_id, at, kind, detail)
             SELECT lead_id, $1, 'delivery_unknown', json_object('campaign', campaign, 'step', step + 1, 'template', template, 'claimed_by', claimed_by,
                    'reason', 'lease expired before the outcome was recorded; not resent')
             FROM deliveries WHERE state = 'claimed' AND lease_until < $1",
        )
        .bind(ms(now))
        .execute(&mut *tx)
        .await?;
        let n = sqlx::query("UPDATE deliveries SET state = 'unknown', updated_at = $1 WHERE state = 'claimed' AND lease_until < $1")
            .bind(ms(now))
            .execute(&mut *tx)
            .await?
            .rows_affected();
        tx.commit().await?;
        Ok(n as usize)
    }

    async fn stalled_enrolments(&self, limit: usize) -> Result<Vec<StalledEnrolment>, StoreError> {
        #[derive(FromRow)]
        struct Row {
            id: i64,
            lead_id: i64,
            campaign: String,
            last_step: i64,
            last_at: i64,
        }
        let rows: Vec<Row> = sqlx::query_as(
            "SELECT e.id, e.lead_id, e.campaign, max(d.step) AS last_step, max(coalesce(d.sent_at, d.updated_at)) AS last_at
             FROM enrolments e JOIN leads l ON l.id = e.lead_id JOIN deliveries d ON d.enrolment_id = e.id
             WHERE e.state = 'active' AND l.state = 'nurturing'
               AND NOT EXISTS (SELECT 1 FROM deliveries p WHERE p.enrolment_id = e.id AND p.state IN ('scheduled', 'claimed', 'retry_wait'))
             GROUP BY e.id, e.lead_id, e.campaign LIMIT $1",
        )
        .bind(limit as i64)
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter()
            .map(|r| {
                Ok(StalledEnrolment {
                    enrolment_id: r.id,
                    lead_id: r.lead_id,
                    campaign: r.campaign,
                    last_step: u32::try_from(r.last_step).unwrap_or(0),
                    last_at: from_ms("deliveries", r.id, r.last_at)?,
                })
            })
            .collect()
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
        )
        .to_string();
        let mut tx = self.write().await?;
        let statements: [&'static str; 4] = [
            "INSERT INTO deliveries (lead_id, enrolment_id, campaign, step, template, state, due_at, updated_at)
             SELECT j.value->>'lead_id', j.value->>'enrolment_id', j.value->>'campaign', j.value->>'$.next.step', j.value->>'$.next.template', 'scheduled', j.value->>'$.next.due', $2
             FROM json_each($1) j WHERE j.value->>'next' IS NOT NULL
             ON CONFLICT (lead_id, campaign, step) DO NOTHING",
            "INSERT INTO events (lead_id, at, kind, detail)
             SELECT l.id, $2, 'completed', json_object('campaign', j.value->>'campaign', 'from', l.state, 'to', 'completed')
             FROM json_each($1) j CROSS JOIN leads l ON l.id = j.value->>'lead_id' WHERE j.value->>'next' IS NULL AND l.state = 'nurturing'",
            "UPDATE enrolments SET state = 'completed', ended_at = $2
             FROM json_each($1) j WHERE j.value->>'next' IS NULL AND enrolments.id = j.value->>'enrolment_id' AND +enrolments.state = 'active'",
            "UPDATE leads SET state = 'completed', updated_at = $2
             FROM json_each($1) j WHERE j.value->>'next' IS NULL AND leads.id = j.value->>'lead_id' AND +leads.state = 'nurturing'",
        ];
        for sql in statements {
            sqlx::query(sql)
                .bind(&batch)
                .bind(ms(now))
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn pending_deliveries(&self) -> Result<Vec<PendingDelivery>, StoreError> {
        #[derive(FromRow)]
        struct Row {
            id: i64,
            lead_id: i64,
            campaign: String,
            step: i64,
            template: String,
            due_at: i64,
        }
        let rows: Vec<Row> = sqlx::query_as(
            "SELECT d.id, d.lead_id, d.campaign, d.step, d.template, d.due_at FROM deliveries d JOIN leads l ON l.id = d.lead_id
             WHERE d.state IN ('scheduled', 'retry_wait') AND l.state = 'nurturing' ORDER BY d.due_at",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter()
            .map(|r| {
                Ok(PendingDelivery {
                    lead_id: r.lead_id,
                    campaign: r.campaign,
                    step: u32::try_from(r.step).unwrap_or(0),
                    template: r.template,
                    due_at: from_ms("deliveries", r.id, r.due_at)?,
                })
            })
            .collect()
    }

    async fn timeline(&self, lead_id: i64) -> Result<Vec<Event>, StoreError> {
        let rows: Vec<(i64, i64, String, String)> = sqlx::query_as(
            "SELECT id, at, kind, detail FROM events WHERE lead_id = $1 ORDER BY id",
        )
        .bind(lead_id)
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter()
            .map(|(id, at, kind, detail)| {
                Ok(Event {
                    at: from_ms("events", id, at)?,
                    kind,
                    detail: serde_json::from_str(&detail).unwrap_or(Value::String(detail)),
                })
            })
            .collect()
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
        .bind(ms(since))
        .fetch_one(&self.pool)
        .await?;
        report.sent_since = sent;
        report.failed_since = failed;
        report.unknown_since = unknown;
        report.due_now = self.due_now(now).await?;
        let inbound: Vec<(String, i64)> = sqlx::query_as(
            "SELECT classification, count(*) FROM inbound WHERE received_at >= $1 GROUP BY classification",
        )
        .bind(ms(since))
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
        let json_column = |table: &'static str, id: i64, name: &str, text: String| {
            serde_json::from_str::<Value>(&text).map_err(|e| StoreError::Corrupt {
                table,
                id,
                reason: format!("{name}: {e}"),
            })
        };
        let opt_ms = |table: &'static str, id: i64, v: Option<i64>| {
            v.map(|v| from_ms(table, id, v)).transpose()
        };
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
                        .map(|r| {
                            Ok(LeadRecord {
                                id: r.id,
                                lost_at: opt_ms("leads", r.id, r.lost_at)?,
                                tags: json_column("leads", r.id, "tags", r.tags)?,
                                fields: json_column("leads", r.id, "fields", r.fields)?,
                                created_at: from_ms("leads", r.id, r.created_at)?,
                                updated_at: from_ms("leads", r.id, r.updated_at)?,
                                email: r.email,
                                first_name: r.first_name,
                                last_name: r.last_name,
                                company: r.company,
                                title: r.title,
                                owner_email: r.owner_email,
                                owner_name: r.owner_name,
                                lost_reason: r.lost_reason,
                                timezone: r.timezone,
                                state: r.state,
                            })
                        })
                        .collect::<Result<_, StoreError>>()?,
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
                    enrolled_at: i64,
                    ended_at: Option<i64>,
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
                        .map(|r| {
                            Ok(EnrolmentRecord {
                                id: r.id,
                                lead_id: r.lead_id,
                                enrolled_at: from_ms("enrolments", r.id, r.enrolled_at)?,
                                ended_at: opt_ms("enrolments", r.id, r.ended_at)?,
                                campaign: r.campaign,
                                segment: r.segment,
                                state: r.state,
                            })
                        })
                        .collect::<Result<_, StoreError>>()?,
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
                    due_at: i64,
                    attempts: i64,
                    claimed_by: Option<String>,
                    lease_until: Option<i64>,
                    message_id: Option<String>,
                    sent_at: Option<i64>,
                    last_error: Option<String>,
                    updated_at: i64,
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
                        .map(|r| {
                            Ok(DeliveryRecord {
                                id: r.id,
                                due_at: from_ms("deliveries", r.id, r.due_at)?,
                                lease_until: opt_ms("deliveries", r.id, r.lease_until)?,
                                sent_at: opt_ms("deliveries", r.id, r.sent_at)?,
                                updated_at: from_ms("deliveries", r.id, r.updated_at)?,
                                lead_id: r.lead_id,
                                enrolment_id: r.enrolment_id,
                                campaign: r.campaign,
                                step: r.step,
                                template: r.template,
                                state: r.state,
                                attempts: r.attempts,
                                claimed_by: r.claimed_by,
                                message_id: r.message_id,
                                last_error: r.last_error,
                            })
                        })
                        .collect::<Result<_, StoreError>>()?,
                )
            }
            Table::Events => {
                let rows: Vec<(i64, i64, i64, String, String)> =
                    sqlx::query_as("SELECT id, lead_id, at, kind, detail FROM events WHERE id > $1 ORDER BY id LIMIT $2")
                        .bind(after_id)
                        .bind(limit)
                        .fetch_all(&self.pool)
                        .await?;
                Rows::Events(
                    rows.into_iter()
                        .map(|(id, lead_id, at, kind, detail)| {
                            Ok(EventRecord {
                                id,
                                lead_id,
                                at: from_ms("events", id, at)?,
                                kind,
                                // As `timeline` reads it: text that is not JSON stays a string.
                                detail: serde_json::from_str(&detail)
                                    .unwrap_or(Value::String(detail)),
                            })
                        })
                        .collect::<Result<_, StoreError>>()?,
                )
            }
            Table::Suppressions => {
                let rows: Vec<SuppressionRow> =
                    sqlx::query_as("SELECT id, address, reason, evidence, created_at FROM suppressions WHERE id > $1 ORDER BY id LIMIT $2")
                        .bind(after_id)
                        .bind(limit)
                        .fetch_all(&self.pool)
                        .await?;
                Rows::Suppressions(
                    rows.into_iter()
                        .map(|r| {
                            Ok(SuppressionRecord {
                                id: r.id,
                                evidence: json_column(
                                    "suppressions",
                                    r.id,
                                    "evidence",
                                    r.evidence,
                                )?,
                                created_at: from_ms("suppressions", r.id, r.created_at)?,
                                address: r.address,
                                reason: r.reason,
                            })
                        })
                        .collect::<Result<_, StoreError>>()?,
                )
            }
            Table::Secrets => {
                let rows: Vec<(i64, String, String, i64)> =
                    sqlx::query_as("SELECT id, name, value, created_at FROM secrets WHERE id > $1 ORDER BY id LIMIT $2")
                        .bind(after_id)
                        .bind(limit)
                        .fetch_all(&self.pool)
                        .await?;
                Rows::Secrets(
                    rows.into_iter()
                        .map(|(id, name, value, created_at)| {
                            Ok(SecretRecord {
                                id,
                                name,
                                value,
                                created_at: from_ms("secrets", id, created_at)?,
                            })
                        })
                        .collect::<Result<_, StoreError>>()?,
                )
            }
            Table::Inbound => {
                #[derive(FromRow)]
                struct Row {
                    id: i64,
                    dedupe_key: String,
                    source: String,
                    received_at: i64,
                    message_id: Option<String>,
                    from_address: Option<String>,
                    subject: Option<String>,
                    classification: String,
                    lead_id: Option<i64>,
                    delivery_id: Option<i64>,
                    matched_by: Option<String>,
                    text: Option<String>,
                    raw: Vec<u8>,
                    effects: String,
                    created_at: i64,
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
                        .map(|r| {
                            Ok(InboundMessageRecord {
                                id: r.id,
                                received_at: from_ms("inbound", r.id, r.received_at)?,
                                effects: json_column("inbound", r.id, "effects", r.effects)?,
                                created_at: from_ms("inbound", r.id, r.created_at)?,
                                dedupe_key: r.dedupe_key,
                                source: r.source,
                                message_id: r.message_id,
                                from_address: r.from_address,
                                subject: r.subject,
                                classification: r.classification,
                                lead_id: r.lead_id,
                                delivery_id: r.delivery_id,
                                matched_by: r.matched_by,
                                text: r.text,
                                raw: r.raw,
                            })
                        })
                        .collect::<Result<_, StoreError>>()?,
                )
            }
            Table::Notifications => {
                #[derive(FromRow)]
                struct Row {
                    id: i64,
                    idempotency_key: String,
                    kind: String,
                    lead_id: Option<i64>,
                    payload: String,
                    state: String,
                    attempts: i64,
                    next_at: i64,
                    claimed_by: Option<String>,
                    lease_until: Option<i64>,
                    last_error: Option<String>,
                    created_at: i64,
                    sent_at: Option<i64>,
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
                        .map(|r| {
                            Ok(NotificationRecord {
                                id: r.id,
                                payload: json_column("notifications", r.id, "payload", r.payload)?,
                                next_at: from_ms("notifications", r.id, r.next_at)?,
                                lease_until: opt_ms("notifications", r.id, r.lease_until)?,
                                created_at: from_ms("notifications", r.id, r.created_at)?,
                                sent_at: opt_ms("notifications", r.id, r.sent_at)?,
                                idempotency_key: r.idempotency_key,
                                kind: r.kind,
                                lead_id: r.lead_id,
                                state: r.state,
                                attempts: r.attempts,
                                claimed_by: r.claimed_by,
                                last_error: r.last_error,
                            })
                        })
                        .collect::<Result<_, StoreError>>()?,
                )
            }
            Table::KvState => {
                let rows: Vec<(i64, String, String, i64)> =
                    sqlx::query_as("SELECT id, key, value, updated_at FROM kv_state WHERE id > $1 ORDER BY id LIMIT $2")
                        .bind(after_id)
                        .bind(limit)
                        .fetch_all(&self.pool)
                        .await?;
                Rows::KvState(
                    rows.into_iter()
                        .map(|(id, key, value, updated_at)| {
                            Ok(KvRecord {
                                id,
                                key,
                                value,
                                updated_at: from_ms("kv_state", id, updated_at)?,
                            })
                        })
                        .collect::<Result<_, StoreError>>()?,
                )
            }
        })
    }

    async fn import_rows(&self, rows: &Rows) -> Result<usize, StoreError> {
        if rows.is_empty() {
            return Ok(0);
        }
        let batch = rows_json(rows).to_string();
        // `->` keeps JSON values as JSON text (tags, fields, details), `->>` gives SQL values.
        let sql: &'static str = match rows.table() {
            Table::Leads => {
                "INSERT INTO leads (id, email, first_name, last_name, company, title, owner_email, owner_name, lost_reason, lost_at, timezone,
                                    tags, fields, state, created_at, updated_at)
                 SELECT j.value->>'id', j.value->>'email', j.value->>'first_name', j.value->>'last_name', j.value->>'company', j.value->>'title',
                        j.value->>'owner_email', j.value->>'owner_name', j.value->>'lost_reason', j.value->>'lost_at', j.value->>'timezone',
                        j.value->'tags', j.value->'fields', j.value->>'state', j.value->>'created_at', j.value->>'updated_at'
                 FROM json_each($1) j"
            }
            Table::Enrolments => {
                "INSERT INTO enrolments (id, lead_id, campaign, segment, state, enrolled_at, ended_at)
                 SELECT j.value->>'id', j.value->>'lead_id', j.value->>'campaign', j.value->>'segment', j.value->>'state',
                        j.value->>'enrolled_at', j.value->>'ended_at'
                 FROM json_each($1) j"
            }
            Table::Deliveries => {
                "INSERT INTO deliveries (id, lead_id, enrolment_id, campaign, step, template, state, due_at, attempts, claimed_by, lease_until,
                                         message_id, sent_at, last_error, updated_at)
                 SELECT j.value->>'id', j.value->>'lead_id', j.value->>'enrolment_id', j.value->>'campaign', j.value->>'step', j.value->>'template',
                        j.value->>'state', j.value->>'due_at', j.value->>'attempts', j.value->>'claimed_by', j.value->>'lease_until',
                        j.value->>'message_id', j.value->>'sent_at', j.value->>'last_error', j.value->>'updated_at'
                 FROM json_each($1) j"
            }
            Table::Events => {
                "INSERT INTO events (id, lead_id, at, kind, detail)
                 SELECT j.value->>'id', j.value->>'lead_id', j.value->>'at', j.value->>'kind', j.value->'detail'
                 FROM json_each($1) j"
            }
            Table::Suppressions => {
                "INSERT INTO suppressions (id, address, reason, evidence, created_at)
                 SELECT j.value->>'id', j.value->>'address', j.value->>'reason', j.value->'evidence', j.value->>'created_at'
                 FROM json_each($1) j"
            }
            Table::Secrets => {
                "INSERT INTO secrets (id, name, value, created_at)
                 SELECT j.value->>'id', j.value->>'name', j.value->>'value', j.value->>'created_at'
                 FROM json_each($1) j"
            }
            Table::Inbound => {
                "INSERT INTO inbound (id, dedupe_key, source, received_at, message_id, from_address, subject, classification,
                                      lead_id, delivery_id, matched_by, text, raw, effects, created_at)
                 SELECT j.value->>'id', j.value->>'dedupe_key', j.value->>'source', j.value->>'received_at', j.value->>'message_id',
                        j.value->>'from_address', j.value->>'subject', j.value->>'classification', j.value->>'lead_id',
                        j.value->>'delivery_id', j.value->>'matched_by', j.value->>'text', unhex(j.value->>'raw'), j.value->'effects',
                        j.value->>'created_at'
                 FROM json_each($1) j"
            }
            Table::Notifications => {
                "INSERT INTO notifications (id, idempotency_key, kind, lead_id, payload, state, attempts, next_at, claimed_by, lease_until,
                                            last_error, created_at, sent_at)
                 SELECT j.value->>'id', j.value->>'idempotency_key', j.value->>'kind', j.value->>'lead_id', j.value->'payload',
                        j.value->>'state', j.value->>'attempts', j.value->>'next_at', j.value->>'claimed_by', j.value->>'lease_until',
                        j.value->>'last_error', j.value->>'created_at', j.value->>'sent_at'
                 FROM json_each($1) j"
            }
            Table::KvState => {
                "INSERT INTO kv_state (id, key, value, updated_at)
                 SELECT j.value->>'id', j.value->>'key', j.value->>'value', j.value->>'updated_at'
                 FROM json_each($1) j"
            }
        };
        let mut tx = self.write().await?;
        let n = sqlx::query(sql)
            .bind(&batch)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        tx.commit().await?;
        Ok(n as usize)
    }

    async fn delete_all_rows(&self) -> Result<(), StoreError> {
        let mut tx = self.write().await?;
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
        let batch = suppressions_json(entries).to_string();
        let mut tx = self.write().await?;
        let inserted = suppress_tx(&mut tx, &batch, now).await?;
        tx.commit().await?;
        Ok(inserted as usize)
    }

    async fn unsuppress(&self, address: &str) -> Result<bool, StoreError> {
        let mut tx = self.write().await?;
        let n = sqlx::query("DELETE FROM suppressions WHERE address = $1")
            .bind(address)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        tx.commit().await?;
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
            "SELECT id, address, reason, evidence, created_at FROM suppressions WHERE address IN ($1, $2) ORDER BY address LIKE '@%' LIMIT 1",
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
            "SELECT d.id, d.lead_id, l.email, d.campaign, d.step, d.message_id FROM deliveries d JOIN leads l ON l.id = d.lead_id WHERE d.id = $1",
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
        let mut tx = self.write().await?;
        let n = sqlx::query(
            "INSERT INTO events (lead_id, at, kind, detail)
             SELECT lead_id, $2, 'clicked', json_object('campaign', campaign, 'step', step + 1, 'url', $3) FROM deliveries WHERE id = $1",
        )
        .bind(delivery_id)
        .bind(ms(now))
        .bind(url)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        tx.commit().await?;
        Ok(n > 0)
    }

    async fn record_inbound(
        &self,
        record: &InboundRecord,
        effect: &InboundEffect,
        now: DateTime<Utc>,
    ) -> Result<InboundApplied, StoreError> {
        let mut tx = self.write().await?;
        let inserted: Option<i64> = sqlx::query_scalar(
            "INSERT INTO inbound (dedupe_key, source, received_at, message_id, from_address, subject, classification,
                                  lead_id, delivery_id, matched_by, text, raw, effects, created_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, '{}', $13)
             ON CONFLICT (dedupe_key) DO NOTHING RETURNING id",
        )
        .bind(&record.dedupe_key)
        .bind(&record.source)
        .bind(ms(record.received_at))
        .bind(&record.message_id)
        .bind(&record.from_address)
        .bind(&record.subject)
        .bind(&record.classification)
        .bind(record.lead_id)
        .bind(record.delivery_id)
        .bind(&record.matched_by)
        .bind(&record.text)
        .bind(&record.raw)
        .bind(ms(now))
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
                    apply_effect_sqlite(&mut tx, lead_id, &state, inbound_id, record, effect, now)
                        .await?;
            }
        }
        sqlx::query("UPDATE inbound SET effects = $2 WHERE id = $1")
            .bind(inbound_id)
            .bind(effects.to_string())
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
        let mut tx = self.write().await?;
        let state: Option<String> = sqlx::query_scalar("SELECT state FROM leads WHERE id = $1")
            .bind(lead_id)
            .fetch_optional(&mut *tx)
            .await?;
        let Some(state) = state else {
            return Ok(false);
        };
        let before = score_sqlite(&mut tx, lead_id).await?;
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
            rewarmed = rewarm_sqlite(&mut tx, lead_id, &state, "score", now).await?;
            enqueue_sqlite(&mut tx, notifications, now).await?;
        }
        tx.commit().await?;
        Ok(rewarmed)
    }

    async fn score(&self, lead_id: i64) -> Result<i64, StoreError> {
        let mut conn = self.pool.acquire().await?;
        score_sqlite(&mut conn, lead_id).await
    }

    async fn enqueue_notifications(
        &self,
        notifications: &[NewNotification],
        now: DateTime<Utc>,
    ) -> Result<usize, StoreError> {
        if notifications.is_empty() {
            return Ok(0);
        }
        let mut tx = self.write().await?;
        let n = enqueue_sqlite(&mut tx, notifications, now).await?;
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
        let mut tx = self.write().await?;
        let rows: Vec<NotificationRow> = sqlx::query_as(
            "UPDATE notifications SET state = 'claimed', claimed_by = $2, lease_until = $3, attempts = attempts + 1
             WHERE id IN (SELECT id FROM notifications
                          WHERE (state = 'pending' AND next_at <= $1) OR (state = 'claimed' AND lease_until <= $1)
                          ORDER BY next_at, id LIMIT $4)
             RETURNING id, idempotency_key, kind, lead_id, payload, state, attempts, next_at, last_error, created_at, sent_at",
        )
        .bind(ms(now))
        .bind(worker)
        .bind(ms(lease_until))
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
        let batch = notification_results_json(results).to_string();
        let mut tx = self.write().await?;
        sqlx::query(
            "UPDATE notifications SET state = j.value->>'state', last_error = j.value->>'error',
                 next_at = CASE WHEN j.value->>'state' = 'pending' THEN j.value->>'retry_at' ELSE next_at END,
                 sent_at = CASE WHEN j.value->>'state' = 'sent' THEN $3 ELSE sent_at END,
                 claimed_by = NULL, lease_until = NULL
             FROM json_each($1) j
             WHERE notifications.id = j.value->>'id' AND notifications.state = 'claimed' AND notifications.claimed_by = $2",
        )
        .bind(&batch)
        .bind(worker)
        .bind(ms(now))
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
        let rows: Vec<(i64, String, String, i64, Option<String>, Option<String>, Option<String>, String, Option<i64>, Option<i64>, Option<String>, Option<String>, Vec<u8>, String)> =
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
                    effects: serde_json::from_str(&r.13).map_err(|e| StoreError::Corrupt {
                        table: "inbound",
                        id: r.0,
                        reason: format!("effects: {e}"),
                    })?,
                    record: InboundRecord {
                        dedupe_key: r.1,
                        source: r.2,
                        received_at: from_ms("inbound", r.0, r.3)?,
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
        let mut tx = self.write().await?;
        sqlx::query(
            "INSERT INTO kv_state (key, value, updated_at) VALUES ($1, $2, $3)
             ON CONFLICT (key) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at",
        )
        .bind(key)
        .bind(value)
        .bind(ms(Utc::now()))
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    async fn kv_set_if_absent(&self, key: &str, value: &str) -> Result<String, StoreError> {
        let mut tx = self.write().await?;
        sqlx::query(
            "INSERT INTO kv_state (key, value, updated_at) VALUES ($1, $2, $3) ON CONFLICT (key) DO NOTHING",
        )
        .bind(key)
        .bind(value)
        .bind(ms(Utc::now()))
        .execute(&mut *tx)
        .await?;
        let stored: String = sqlx::query_scalar("SELECT value FROM kv_state WHERE key = $1")
            .bind(key)
            .fetch_one(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(stored)
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
        let rows: Vec<(i64, i64)> = sqlx::query_as(
            "SELECT l.id, r.at FROM leads l
             CROSS JOIN (SELECT lead_id, max(at) AS at FROM events WHERE kind = 'rewarmed' GROUP BY lead_id) r ON r.lead_id = l.id
             WHERE l.state = 'rewarmed' AND r.at >= $1 AND ($2 IS NULL OR lower(l.owner_email) = lower($2))
             ORDER BY r.at DESC, l.id",
        )
        .bind(ms(since))
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
        rows.into_iter()
            .filter_map(|(id, at)| {
                leads
                    .remove(&id)
                    .map(|l| from_ms("events", id, at).map(|at| (l, at)))
            })
            .collect()
    }

    async fn recycle(
        &self,
        lead_id: i64,
        reason: &str,
        resume_at: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<Option<LeadState>, StoreError> {
        let mut tx = self.write().await?;
        let state: Option<String> = sqlx::query_scalar("SELECT state FROM leads WHERE id = $1")
            .bind(lead_id)
            .fetch_optional(&mut *tx)
            .await?;
        let Some(from) = state.filter(|s| s == "rewarmed" || s == "completed") else {
            return Ok(None);
        };
        let resumed = sqlx::query(
            "UPDATE deliveries SET state = 'scheduled', due_at = max(due_at, $3), claimed_by = NULL, lease_until = NULL, updated_at = $2
             WHERE lead_id = $1 AND state = 'cancelled'
               AND enrolment_id IN (SELECT id FROM enrolments WHERE lead_id = $1 AND state = 'stopped')",
        )
        .bind(lead_id)
        .bind(ms(now))
        .bind(ms(resume_at))
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
            .bind(ms(now))
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(Some(to))
    }

    async fn due_now(&self, now: DateTime<Utc>) -> Result<i64, StoreError> {
        Ok(sqlx::query_scalar(DUE_NOW_SQL)
            .bind(ms(now))
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
        if let Some(value) =
            sqlx::query_scalar::<_, String>("SELECT value FROM secrets WHERE name = $1")
                .bind(name)
                .fetch_optional(&self.pool)
                .await?
        {
            return Ok(value);
        }
        let value = generate();
        let mut tx = self.write().await?;
        // Another process may have stored one meanwhile: the first one stored wins.
        sqlx::query("INSERT INTO secrets (name, value, created_at) VALUES ($1, $2, $3) ON CONFLICT (name) DO NOTHING")
            .bind(name)
            .bind(&value)
            .bind(ms(Utc::now()))
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

/// The body of `suppress` inside a caller's transaction; `batch` as `suppressions_json`.
async fn suppress_tx(
    conn: &mut sqlx::SqliteConnection,
    batch: &str,
    now: DateTime<Utc>,
) -> Result<u64, StoreError> {
    let inserted = sqlx::query(
            "INSERT INTO suppressions (address, reason, evidence, created_at)
             SELECT j.value->>'address', j.value->>'reason', j.value->'evidence', j.value->>'created_at' FROM json_each($1) j WHERE true
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
                 WHERE +state IN ('scheduled', 'retry_wait') AND lead_id IN (SELECT lead_id FROM m)"
            ),
            suppress_matches!("UPDATE enrolments SET state = 'stopped', ended_at = $2 WHERE +state = 'active' AND lead_id IN (SELECT lead_id FROM m)"),
            suppress_matches!(
                "INSERT INTO events (lead_id, at, kind, detail)
                 SELECT lead_id, $2, 'suppressed', json_object('from', state, 'to', 'suppressed', 'reason', reason, 'evidence', json(evidence), 'address', address)
                 FROM m ORDER BY lead_id"
            ),
            suppress_matches!("UPDATE leads SET state = 'suppressed', updated_at = $2 WHERE id IN (SELECT lead_id FROM m)"),
        ];
    for sql in statements {
        sqlx::query(sql)
            .bind(batch)
            .bind(ms(now))
            .execute(&mut *conn)
            .await?;
    }
    Ok(inserted)
}

/// A `notifications` row (SQLite).
#[derive(FromRow)]
struct NotificationRow {
    id: i64,
    idempotency_key: String,
    kind: String,
    lead_id: Option<i64>,
    payload: String,
    state: String,
    attempts: i64,
    next_at: i64,
    last_error: Option<String>,
    created_at: i64,
    sent_at: Option<i64>,
}

impl NotificationRow {
    fn into_notification(self) -> Result<Notification, StoreError> {
        Ok(Notification {
            payload: serde_json::from_str(&self.payload).map_err(|e| StoreError::Corrupt {
                table: "notifications",
                id: self.id,
                reason: format!("payload: {e}"),
            })?,
            next_at: from_ms("notifications", self.id, self.next_at)?,
            created_at: from_ms("notifications", self.id, self.created_at)?,
            sent_at: self
                .sent_at
                .map(|v| from_ms("notifications", self.id, v))
                .transpose()?,
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

/// States a reply or a score can re-warm.
pub(crate) fn rewarmable(state: &str) -> bool {
    matches!(state, "new" | "nurturing" | "completed")
}

/// Where `recycle` puts a lead: nurturing if a delivery was resumed, else completed if it was
/// ever enrolled, else new.
pub(crate) fn recycle_target(resumed: u64, enrolments: i64) -> LeadState {
    if resumed > 0 {
        LeadState::Nurturing
    } else if enrolments > 0 {
        LeadState::Completed
    } else {
        LeadState::New
    }
}

async fn insert_event(
    conn: &mut sqlx::SqliteConnection,
    lead_id: i64,
    kind: &str,
    detail: &Value,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    sqlx::query("INSERT INTO events (lead_id, at, kind, detail) VALUES ($1, $2, $3, json($4))")
        .bind(lead_id)
        .bind(ms(now))
        .bind(kind)
        .bind(detail.to_string())
        .execute(&mut *conn)
        .await?;
    Ok(())
}

async fn score_sqlite(conn: &mut sqlx::SqliteConnection, lead_id: i64) -> Result<i64, StoreError> {
    Ok(sqlx::query_scalar(
        "SELECT CAST(COALESCE(sum(json_extract(detail, '$.points')), 0) AS INTEGER) FROM events
         WHERE lead_id = $1 AND kind = 'engaged'
           AND id > COALESCE((SELECT max(id) FROM events WHERE lead_id = $1 AND kind = 'recycled'), 0)",
    )
    .bind(lead_id)
    .fetch_one(&mut *conn)
    .await?)
}

async fn enqueue_sqlite(
    conn: &mut sqlx::SqliteConnection,
    notifications: &[NewNotification],
    now: DateTime<Utc>,
) -> Result<usize, StoreError> {
    if notifications.is_empty() {
        return Ok(0);
    }
    let n = sqlx::query(
        "INSERT INTO notifications (idempotency_key, kind, lead_id, payload, state, attempts, next_at, created_at)
         SELECT j.value->>'key', j.value->>'kind', j.value->>'lead_id', json(j.value->'payload'), 'pending', 0, j.value->>'at', j.value->>'at'
         FROM json_each($1) j WHERE true
         ON CONFLICT (idempotency_key) DO NOTHING",
    )
    .bind(notifications_json(notifications, now).to_string())
    .execute(&mut *conn)
    .await?
    .rows_affected();
    Ok(n as usize)
}

/// Re-warms a lead in `state` (if it can be): cancels what waits, stops its enrolments, event
/// `rewarmed` {from, to, reason}. True if it changed.
async fn rewarm_sqlite(
    conn: &mut sqlx::SqliteConnection,
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
            .bind(ms(now))
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

async fn suppress_lead_sqlite(
    conn: &mut sqlx::SqliteConnection,
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
    Ok(suppress_tx(conn, &batch.to_string(), now).await? > 0)
}

/// Applies an inbound effect to a matched lead (in `state`); returns the effects summary.
async fn apply_effect_sqlite(
    conn: &mut sqlx::SqliteConnection,
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
            let rewarmed = rewarm_sqlite(conn, lead_id, state, "reply", now).await?;
            let queued = if state == "suppressed" {
                0
            } else {
                enqueue_sqlite(conn, notifications, now).await?
            };
            json!({"effect": "rewarm", "rewarmed": rewarmed, "notifications": queued})
        }
        InboundEffect::Postpone { until } => {
            let n = sqlx::query(
                "UPDATE deliveries SET due_at = $3, updated_at = $2 WHERE lead_id = $1 AND state IN ('scheduled', 'retry_wait') AND due_at < $3",
            )
            .bind(lead_id)
            .bind(ms(now))
            .bind(ms(*until))
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
            let listed = suppress_lead_sqlite(conn, lead_id, *reason, &evidence, now).await?;
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
                                                    OR (kind = 'inbound' AND json_extract(detail, '$.classification') IN ('human_reply', 'auto_reply')))), 0)",
            )
            .bind(lead_id)
            .fetch_one(&mut *conn)
            .await?;
            let suppressed = count >= i64::from(*limit) && state != "suppressed";
            if suppressed {
                let evidence = json!({"soft_bounces": count, "limit": limit, "last": evidence, "inbound_id": inbound_id});
                suppress_lead_sqlite(conn, lead_id, SuppressionReason::HardBounce, &evidence, now)
                    .await?;
            }
            json!({"effect": "soft_bounce", "in_a_row": count, "suppressed": suppressed})
        }
    })
}

/// Folds a later duplicate row into an earlier one (later non-empty values win).
pub(crate) fn fold_new_lead(into: &mut NewLead, from: &NewLead) {
    macro_rules! take {
        ($($f:ident),*) => { $( if from.$f.is_some() { into.$f = from.$f.clone(); } )* };
    }
    take!(
        first_name,
        last_name,
        company,
        title,
        owner_email,
        owner_name,
        lost_reason,
        lost_at,
        timezone
    );
    for tag in &from.tags {
        if !into.tags.contains(tag) {
            into.tags.push(tag.clone());
        }
    }
    into.fields.extend(from.fields.clone());
}
