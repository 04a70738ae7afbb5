//! What the console's pages read and the few writes only they make: the lead search, the
//! sales queue, the inbound review, the suppression list by page, and handing one lead to
//! another owner. Every read is one indexed statement (migration 0016) and pages by key
//! (`id` before the last one shown), never by offset, so a page costs the same at the first
//! lead and the millionth.
//!
//! The search is built from the filters a person filled in, so only the conditions used
//! reach the planner: a prefix of the address, a name or the company (each a range of its
//! own index, united), the owner, the state, the segment that enrolled the lead, a tag. The
//! databases differ in how a prefix is compared (PostgreSQL compares bytes, `COLLATE "C"`,
//! whatever the database's collation) and how a tag is found (SQLite keeps a `lead_tags`
//! table by trigger; PostgreSQL has a GIN index on the lower-cased array): each backend
//! gives its [`SearchDialect`].
//!
//! "This belongs to lead X" applies the message's effect with the same step that
//! `record_inbound` uses (`apply_effect`), inside one transaction with the review mark.

use std::future::Future;

use chrono::{DateTime, Utc};
use serde_json::Value;
use sqlx::FromRow;

use super::dialect::{Detail, Time};
use super::rows::InboundRow;
use super::*;

/// The filters of a lead search (empty ones are left out).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LeadSearch {
    /// A prefix of the address, the first or last name, or the company (case-insensitive).
    pub text: Option<String>,
    /// Only this owner's leads (compared lower-cased).
    pub owner: Option<String>,
    pub state: Option<LeadState>,
    /// Leads a segment of this name enrolled.
    pub segment: Option<String>,
    /// Leads with this tag (case-insensitive).
    pub tag: Option<String>,
    /// The page after the one that ended with this id (leads go newest first).
    pub before: Option<i64>,
    pub limit: usize,
}

/// One page of a lead search: newest first; `next` is the `before` of the next page.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LeadPage {
    pub leads: Vec<Lead>,
    pub next: Option<i64>,
}

/// How the sales queue is ordered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QueueOrder {
    /// The latest re-warm first.
    Newest,
    /// The re-warm waiting longest first.
    Stalest,
}

/// A re-warmed lead in the sales queue, with the last reply it sent (none when its score
/// re-warmed it).
#[derive(Debug, Clone, PartialEq)]
pub struct QueuedLead {
    pub lead: Lead,
    pub rewarmed_at: DateTime<Utc>,
    pub reply: Option<QueuedReply>,
}

/// The text of a lead's last reply (its `replied` event).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueuedReply {
    pub at: DateTime<Utc>,
    pub subject: Option<String>,
    pub text: String,
}

/// A message no lead matched, waiting for a person (its text, not its bytes).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ToReview {
    pub id: i64,
    pub received_at: DateTime<Utc>,
    pub source: String,
    pub from_address: Option<String>,
    pub subject: Option<String>,
    pub classification: String,
    /// The first [`REVIEW_TEXT_CHARS`] characters of its text.
    pub text: Option<String>,
}

/// Characters of a message's text the review list carries.
pub const REVIEW_TEXT_CHARS: i64 = 600;

/// One stored message with its review mark.
#[derive(Debug, Clone)]
pub struct ReviewedInbound {
    pub message: StoredInbound,
    pub reviewed_at: Option<DateTime<Utc>>,
    pub reviewed_by: Option<String>,
}

/// What "this belongs to lead X" did.
#[derive(Debug, Clone, PartialEq)]
pub enum Assigned {
    /// The message is the lead's now and its effect was applied (`effects` as stored).
    Applied { effects: Value },
    /// No such message, or it is matched or reviewed already: nothing changed.
    NotForReview,
    /// No such lead: nothing changed.
    NoSuchLead,
}

/// One page of the suppression list, newest entry first; `next` is the `before` of the
/// next page.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SuppressionPage {
    pub entries: Vec<(i64, Suppression)>,
    pub next: Option<i64>,
    pub total: i64,
}

/// See the module docs.
pub trait BrowseStore {
    /// The leads `q` selects, newest first, at most `q.limit`.
    fn search_leads(
        &self,
        q: &LeadSearch,
    ) -> impl Future<Output = Result<LeadPage, StoreError>> + Send;

    /// Leads now `rewarmed` (of `owner` only, compared lower-cased, when given), in `order`
    /// of their last `rewarmed` event, at most `limit`, with their last reply.
    fn sales_queue(
        &self,
        owner: Option<&str>,
        order: QueueOrder,
        limit: usize,
    ) -> impl Future<Output = Result<Vec<QueuedLead>, StoreError>> + Send;

    /// Unmatched messages nobody reviewed yet, newest first, with id < `before` (all when
    /// None), at most `limit`; and how many wait in all.
    fn inbound_to_review(
        &self,
        before: Option<i64>,
        limit: usize,
    ) -> impl Future<Output = Result<(Vec<ToReview>, i64), StoreError>> + Send;

    /// One stored message (bytes included) with its review mark.
    fn inbound_message(
        &self,
        id: i64,
    ) -> impl Future<Output = Result<Option<ReviewedInbound>, StoreError>> + Send;

    /// "This belongs to lead `lead_id`": in one transaction, the unmatched, unreviewed
    /// message `id` becomes the lead's (`matched_by` `review`, reviewed by `by`), the lead
    /// gets its `inbound` event {classification, subject, matched_by, inbound_id, by} and
    /// `effect` is applied exactly as `record_inbound` applies it; the message's `effects`
    /// say what it did and who decided.
    fn assign_inbound(
        &self,
        id: i64,
        lead_id: i64,
        effect: &InboundEffect,
        by: &str,
        now: DateTime<Utc>,
    ) -> impl Future<Output = Result<Assigned, StoreError>> + Send;

    /// "Ignore": the unmatched, unreviewed message `id` leaves the review list (reviewed by
    /// `by`, still unmatched, kept). False if it was not waiting for review.
    fn ignore_inbound(
        &self,
        id: i64,
        by: &str,
        now: DateTime<Utc>,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// The suppression list, newest entry first, entries with id < `before` (all when None),
    /// at most `limit`.
    fn suppression_page(
        &self,
        before: Option<i64>,
        limit: usize,
    ) -> impl Future<Output = Result<SuppressionPage, StoreError>> + Send;

    /// Hands one lead to owner `to` (lower-cased; name `name`) on behalf of `by`, with a
    /// `reassigned` event {from, to, name, reason, by}, in one transaction. Returns the
    /// previous owner (`Some(None)`: it had none); None when there is no such lead. A lead
    /// of that owner already changes nothing.
    fn reassign_lead(
        &self,
        lead_id: i64,
        to: &str,
        name: Option<&str>,
        by: &str,
        now: DateTime<Utc>,
    ) -> impl Future<Output = Result<Option<Option<String>>, StoreError>> + Send;
}

/// How a backend spells the search's conditions (`{}` is a placeholder like `$3`).
pub(crate) struct SearchDialect {
    /// The expressions a prefix is a range of, each with its own index.
    pub prefixed: [&'static str; 4],
    /// The condition "has tag {}" (the parameter lower-cased).
    pub tag: &'static str,
    /// Lower-cases a parameter as the database's `lower()` does (SQLite: ASCII only).
    pub lower: fn(&str) -> String,
}

/// A parameter of the built search.
pub(crate) enum Param {
    Text(String),
    Int(i64),
}

/// The smallest string greater than every string starting with `prefix` (in byte order).
fn prefix_end(prefix: &str) -> String {
    format!("{prefix}\u{10FFFF}")
}

/// The search statement for `q` (only the filters given) and its parameters, in order.
pub(crate) fn search_sql(q: &LeadSearch, d: &SearchDialect) -> (String, Vec<Param>) {
    let mut params = Vec::new();
    let mut next = |p: Param| {
        params.push(p);
        format!("${}", params.len())
    };
    let mut conds = Vec::new();
    if let Some(text) = q.text.as_deref().map(str::trim).filter(|t| !t.is_empty()) {
        let low = (d.lower)(text);
        let end = next(Param::Text(prefix_end(&low)));
        let start = next(Param::Text(low));
        let ranges: Vec<String> = d
            .prefixed
            .iter()
            .map(|e| format!("SELECT id FROM leads WHERE {e} >= {start} AND {e} < {end}"))
            .collect();
        conds.push(format!("id IN ({})", ranges.join(" UNION ALL ")));
    }
    if let Some(owner) = q.owner.as_deref() {
        conds.push(format!(
            "lower(owner_email) = {}",
            next(Param::Text((d.lower)(owner)))
        ));
    }
    if let Some(state) = q.state {
        conds.push(format!(
            "state = {}",
            next(Param::Text(state.as_str().into()))
        ));
    }
    if let Some(segment) = q.segment.as_deref() {
        conds.push(format!(
            "id IN (SELECT lead_id FROM enrolments WHERE segment = {})",
            next(Param::Text(segment.to_string()))
        ));
    }
    if let Some(tag) = q.tag.as_deref() {
        let p = next(Param::Text((d.lower)(tag.trim())));
        conds.push(d.tag.replace("{}", &p));
    }
    if let Some(before) = q.before {
        conds.push(format!("id < {}", next(Param::Int(before))));
    }
    let filter = if conds.is_empty() {
        String::new()
    } else {
        format!("WHERE {} ", conds.join(" AND "))
    };
    let limit = next(Param::Int(q.limit as i64 + 1));
    let sql = format!(
        "{}{filter}ORDER BY id DESC LIMIT {limit}",
        select_leads!("")
    );
    (sql, params)
}

/// The sales queue: re-warmed leads with the time of their last `rewarmed` event and their
/// last `replied` event (both read from the lead's few events, `events_lead`).
macro_rules! queue_sql {
    ($filter:literal, $order:literal) => {
        concat!(
            "SELECT l.id, COALESCE((SELECT max(e.at) FROM events e WHERE e.lead_id = l.id AND e.kind = 'rewarmed' AND e.kind <> 'sent'), l.updated_at) AS rewarmed_at,
                    (SELECT e.at FROM events e WHERE e.lead_id = l.id AND e.kind = 'replied' AND e.kind <> 'sent' ORDER BY e.at DESC, e.id DESC LIMIT 1) AS replied_at,
                    (SELECT e.detail FROM events e WHERE e.lead_id = l.id AND e.kind = 'replied' AND e.kind <> 'sent' ORDER BY e.at DESC, e.id DESC LIMIT 1) AS reply
             FROM leads l ",
            $filter,
            " ",
            $order
        )
    };
}

pub(crate) const QUEUE_OWNER_NEWEST: &str = queue_sql!(
    "WHERE lower(l.owner_email) = $1 AND l.state = 'rewarmed'",
    "ORDER BY rewarmed_at DESC, l.id DESC LIMIT $2"
);
pub(crate) const QUEUE_OWNER_STALEST: &str = queue_sql!(
    "WHERE lower(l.owner_email) = $1 AND l.state = 'rewarmed'",
    "ORDER BY rewarmed_at, l.id LIMIT $2"
);
/// Everyone's queue is read from the re-warms (`events_kind_at`), latest or earliest first,
/// each lead once (at its last re-warm) and only while it is still re-warmed: the statement
/// stops after `$2` leads instead of sorting every re-warmed lead.
macro_rules! queue_all_sql {
    ($order:literal) => {
        concat!(
            "SELECT l.id, e.at AS rewarmed_at,
                    (SELECT r.at FROM events r WHERE r.lead_id = l.id AND r.kind = 'replied' AND r.kind <> 'sent' ORDER BY r.at DESC, r.id DESC LIMIT 1) AS replied_at,
                    (SELECT r.detail FROM events r WHERE r.lead_id = l.id AND r.kind = 'replied' AND r.kind <> 'sent' ORDER BY r.at DESC, r.id DESC LIMIT 1) AS reply
             FROM events e JOIN leads l ON l.id = e.lead_id
             WHERE e.kind = 'rewarmed' AND l.state = 'rewarmed' AND $1 IS NULL
               AND NOT EXISTS (SELECT 1 FROM events x WHERE x.lead_id = e.lead_id AND x.kind = 'rewarmed' AND x.kind <> 'sent'
                                 AND (x.at > e.at OR (x.at = e.at AND x.id > e.id)))
             ",
            $order
        )
    };
}

pub(crate) const QUEUE_ALL_NEWEST: &str = queue_all_sql!("ORDER BY e.at DESC, e.id DESC LIMIT $2");
pub(crate) const QUEUE_ALL_STALEST: &str = queue_all_sql!("ORDER BY e.at, e.id LIMIT $2");

pub(crate) const TO_REVIEW: &str = "SELECT id, received_at, source, from_address, subject, classification, substr(text, 1, 600) AS text
     FROM inbound WHERE lead_id IS NULL AND reviewed_at IS NULL AND id < $1 ORDER BY id DESC LIMIT $2";
pub(crate) const TO_REVIEW_COUNT: &str =
    "SELECT count(*) FROM inbound WHERE lead_id IS NULL AND reviewed_at IS NULL";
pub(crate) const INBOUND_BY_ID: &str = "SELECT id, dedupe_key, source, received_at, message_id, from_address, subject, classification, lead_id, delivery_id,
            matched_by, text, raw, effects, reviewed_at, reviewed_by FROM inbound WHERE id = $1";
/// Marks an unmatched, unreviewed message ($1) as the lead's ($2), reviewed at $3 by $4.
pub(crate) const ASSIGN_INBOUND: &str =
    "UPDATE inbound SET lead_id = $2, matched_by = 'review', reviewed_at = $3, reviewed_by = $4
     WHERE id = $1 AND lead_id IS NULL AND reviewed_at IS NULL";
pub(crate) const IGNORE_INBOUND: &str = "UPDATE inbound SET reviewed_at = $2, reviewed_by = $3
     WHERE id = $1 AND lead_id IS NULL AND reviewed_at IS NULL";
pub(crate) const SUPPRESSION_PAGE: &str =
    "SELECT id, address, reason, evidence, created_at FROM suppressions
     WHERE id < $1 ORDER BY id DESC LIMIT $2";
pub(crate) const SUPPRESSION_COUNT: &str = "SELECT count(*) FROM suppressions";
pub(crate) const LEAD_OWNER: &str = "SELECT owner_email FROM leads WHERE id = $1";
pub(crate) const REASSIGN_LEAD: &str =
    "UPDATE leads SET owner_email = $2, owner_name = $3, updated_at = $4 WHERE id = $1";

#[derive(FromRow)]
pub(crate) struct QueueRow {
    pub(crate) id: i64,
    pub(crate) rewarmed_at: Time,
    pub(crate) replied_at: Option<Time>,
    pub(crate) reply: Option<Detail>,
}

impl QueueRow {
    pub(crate) fn reply(&self) -> Option<QueuedReply> {
        let (at, detail) = (self.replied_at.as_ref()?, &self.reply.as_ref()?.0);
        Some(QueuedReply {
            at: at.0,
            subject: detail
                .get("subject")
                .and_then(Value::as_str)
                .map(str::to_string),
            text: detail
                .get("text")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string(),
        })
    }
}

#[derive(FromRow)]
pub(crate) struct ToReviewRow {
    id: i64,
    received_at: Time,
    source: String,
    from_address: Option<String>,
    subject: Option<String>,
    classification: String,
    text: Option<String>,
}

impl From<ToReviewRow> for ToReview {
    fn from(r: ToReviewRow) -> Self {
        ToReview {
            id: r.id,
            received_at: r.received_at.0,
            source: r.source,
            from_address: r.from_address,
            subject: r.subject,
            classification: r.classification,
            text: r.text,
        }
    }
}

#[derive(FromRow)]
pub(crate) struct ReviewedRow {
    #[sqlx(flatten)]
    pub(crate) message: InboundRow,
    reviewed_at: Option<Time>,
    reviewed_by: Option<String>,
}

impl From<ReviewedRow> for ReviewedInbound {
    fn from(r: ReviewedRow) -> Self {
        ReviewedInbound {
            message: r.message.into(),
            reviewed_at: r.reviewed_at.map(|t| t.0),
            reviewed_by: r.reviewed_by,
        }
    }
}

/// The methods, word for word on both backends; `$dialect` is the backend's
/// [`SearchDialect`]. `assign_inbound` calls the backend's `apply_effect` and `insert_event`
/// (`common_write_steps!`).
macro_rules! browse_methods {
    ($dialect:expr) => {
        async fn search_leads(&self, q: &LeadSearch) -> Result<LeadPage, StoreError> {
            let (sql, params) = search_sql(q, &$dialect);
            let mut query = sqlx::query_as::<_, LeadRow>(sqlx::AssertSqlSafe(sql));
            for p in params {
                query = match p {
                    Param::Text(t) => query.bind(t),
                    Param::Int(i) => query.bind(i),
                };
            }
            let mut leads = query
                .fetch_all(&self.pool)
                .await?
                .into_iter()
                .map(LeadRow::into_lead)
                .collect::<Result<Vec<_>, _>>()?;
            let next = if leads.len() > q.limit {
                leads.truncate(q.limit);
                leads.last().map(|l| l.id)
            } else {
                None
            };
            Ok(LeadPage { leads, next })
        }

        async fn sales_queue(
            &self,
            owner: Option<&str>,
            order: QueueOrder,
            limit: usize,
        ) -> Result<Vec<QueuedLead>, StoreError> {
            let sql = match (owner.is_some(), order) {
                (true, QueueOrder::Newest) => QUEUE_OWNER_NEWEST,
                (true, QueueOrder::Stalest) => QUEUE_OWNER_STALEST,
                (false, QueueOrder::Newest) => QUEUE_ALL_NEWEST,
                (false, QueueOrder::Stalest) => QUEUE_ALL_STALEST,
            };
            let rows: Vec<QueueRow> = sqlx::query_as(sql)
                .bind(owner.map(str::to_lowercase))
                .bind(limit as i64)
                .fetch_all(&self.pool)
                .await?;
            let ids: Vec<i64> = rows.iter().map(|r| r.id).collect();
            let mut leads: std::collections::HashMap<i64, Lead> = self
                .leads_by_ids(&ids)
                .await?
                .into_iter()
                .map(|l| (l.id, l))
                .collect();
            Ok(rows
                .into_iter()
                .filter_map(|r| {
                    let reply = r.reply();
                    leads.remove(&r.id).map(|lead| QueuedLead {
                        lead,
                        rewarmed_at: r.rewarmed_at.0,
                        reply,
                    })
                })
                .collect())
        }

        async fn inbound_to_review(
            &self,
            before: Option<i64>,
            limit: usize,
        ) -> Result<(Vec<ToReview>, i64), StoreError> {
            let rows: Vec<ToReviewRow> = sqlx::query_as(TO_REVIEW)
                .bind(before.unwrap_or(i64::MAX))
                .bind(limit as i64)
                .fetch_all(&self.pool)
                .await?;
            let total: i64 = sqlx::query_scalar(TO_REVIEW_COUNT)
                .fetch_one(&self.pool)
                .await?;
            Ok((rows.into_iter().map(ToReview::from).collect(), total))
        }

        async fn inbound_message(&self, id: i64) -> Result<Option<ReviewedInbound>, StoreError> {
            let row: Option<ReviewedRow> = sqlx::query_as(INBOUND_BY_ID)
                .bind(id)
                .fetch_optional(&self.pool)
                .await?;
            Ok(row.map(ReviewedInbound::from))
        }

        async fn assign_inbound(
            &self,
            id: i64,
            lead_id: i64,
            effect: &InboundEffect,
            by: &str,
            now: DateTime<Utc>,
        ) -> Result<Assigned, StoreError> {
            let mut tx = self.write().await?;
            let state: Option<String> = sqlx::query_scalar(sql::LEAD_STATE)
                .bind(lead_id)
                .fetch_optional(&mut *tx)
                .await?;
            let Some(state) = state else {
                return Ok(Assigned::NoSuchLead);
            };
            let marked = sqlx::query(ASSIGN_INBOUND)
                .bind(id)
                .bind(lead_id)
                .bind(Time(now))
                .bind(by)
                .execute(&mut *tx)
                .await?
                .rows_affected();
            if marked == 0 {
                return Ok(Assigned::NotForReview);
            }
            let row: ReviewedRow = sqlx::query_as(INBOUND_BY_ID)
                .bind(id)
                .fetch_one(&mut *tx)
                .await?;
            let record = StoredInbound::from(row.message).record;
            insert_event(
                &mut tx,
                lead_id,
                "inbound",
                &json!({"classification": record.classification, "subject": record.subject,
                        "matched_by": "review", "inbound_id": id, "by": by}),
                now,
            )
            .await?;
            let mut effects = apply_effect(&mut tx, lead_id, &state, id, &record, effect, now).await?;
            effects["reviewed_by"] = json!(by);
            sqlx::query(sql::SET_INBOUND_EFFECTS)
                .bind(id)
                .bind(&effects)
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
            Ok(Assigned::Applied { effects })
        }

        async fn ignore_inbound(
            &self,
            id: i64,
            by: &str,
            now: DateTime<Utc>,
        ) -> Result<bool, StoreError> {
            let mut tx = self.write().await?;
            let n = sqlx::query(IGNORE_INBOUND)
                .bind(id)
                .bind(Time(now))
                .bind(by)
                .execute(&mut *tx)
                .await?
                .rows_affected();
            tx.commit().await?;
            Ok(n > 0)
        }

        async fn suppression_page(
            &self,
            before: Option<i64>,
            limit: usize,
        ) -> Result<SuppressionPage, StoreError> {
            let rows: Vec<SuppressionRow> = sqlx::query_as(SUPPRESSION_PAGE)
                .bind(before.unwrap_or(i64::MAX))
                .bind(limit as i64 + 1)
                .fetch_all(&self.pool)
                .await?;
            let ids: Vec<i64> = rows.iter().map(SuppressionRow::id).collect();
            let mut entries = rows
                .into_iter()
                .zip(ids)
                .map(|(r, id)| r.into_suppression().map(|s| (id, s)))
                .collect::<Result<Vec<_>, _>>()?;
            let next = if entries.len() > limit {
                entries.truncate(limit);
                entries.last().map(|(id, _)| *id)
            } else {
                None
            };
            let total: i64 = sqlx::query_scalar(SUPPRESSION_COUNT)
                .fetch_one(&self.pool)
                .await?;
            Ok(SuppressionPage { entries, next, total })
        }

        async fn reassign_lead(
            &self,
            lead_id: i64,
            to: &str,
            name: Option<&str>,
            by: &str,
            now: DateTime<Utc>,
        ) -> Result<Option<Option<String>>, StoreError> {
            let to = to.to_lowercase();
            let mut tx = self.write().await?;
            let from: Option<Option<String>> = sqlx::query_scalar(LEAD_OWNER)
                .bind(lead_id)
                .fetch_optional(&mut *tx)
                .await?;
            let Some(from) = from else {
                return Ok(None);
            };
            if from.as_deref().map(str::to_lowercase).as_deref() == Some(to.as_str()) {
                return Ok(Some(from));
            }
            let reason = format!(
                "reassigned from {} to {to}",
                from.as_deref().unwrap_or("nobody")
            );
            insert_event(
                &mut tx,
                lead_id,
                "reassigned",
                &json!({"from": from, "to": to, "name": name, "reason": reason, "by": by}),
                now,
            )
            .await?;
            sqlx::query(REASSIGN_LEAD)
                .bind(lead_id)
                .bind(&to)
                .bind(name)
                .bind(Time(now))
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
            Ok(Some(from))
        }
    };
}
