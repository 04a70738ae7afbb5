//! What the forecast reads (`rewarm forecast`): the pending deliveries due before its
//! horizon and the leads waiting in `new`, each streamed in the order the daemon would meet
//! them — never loaded whole: row by row, or (SQLite's pending deliveries) in chunks of a
//! thousand rows. Read only.

use std::future::Future;

use chrono::{DateTime, Utc};
use sqlx::FromRow;

use super::StoreError;
use super::dialect::Time;
use crate::domain::lead::Lead;

/// A pending delivery as the forecast needs it: the row and its lead's address, zone and
/// country (`fields ->> 'country'`: the same operator on both databases).
#[derive(Debug, Clone)]
pub struct ForecastDelivery {
    pub id: i64,
    pub lead_id: i64,
    pub campaign: String,
    /// 0 = the first email.
    pub step: u32,
    pub template: String,
    pub due_at: DateTime<Utc>,
    pub email: String,
    /// The lead's IANA zone name, if it has one.
    pub timezone: Option<String>,
    /// The lead's `country` field as stored (its holidays), if it has one.
    pub country: Option<String>,
}

#[derive(FromRow)]
pub(crate) struct ForecastRow {
    id: i64,
    lead_id: i64,
    campaign: String,
    step: i64,
    template: String,
    due_at: Time,
    email: String,
    timezone: Option<String>,
    country: Option<String>,
}

impl From<ForecastRow> for ForecastDelivery {
    fn from(r: ForecastRow) -> Self {
        ForecastDelivery {
            id: r.id,
            lead_id: r.lead_id,
            campaign: r.campaign,
            step: u32::try_from(r.step).unwrap_or(0),
            template: r.template,
            due_at: r.due_at.0,
            email: r.email,
            timezone: r.timezone,
            country: r.country,
        }
    }
}

/// The forecast's reads (implemented by both backends).
pub trait ForecastStore {
    /// Every delivery the daemon could claim (`scheduled` or `retry_wait`, of a lead in
    /// `nurturing`, whose address is not suppressed) due before `until`, in claim order
    /// (`due_at`, then id), handed to `each` one by one. Without `addresses` (the caller
    /// needs neither the addresses nor their domains), `email` may be left empty.
    fn pending_before<F: FnMut(ForecastDelivery) + Send>(
        &self,
        until: DateTime<Utc>,
        addresses: bool,
        each: F,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Every lead in `new` whose address is not suppressed (the daemon would enrol it when a
    /// segment takes it), by id, handed to `each` one by one. With `reasons`, only leads whose
    /// `lost_reason` contains one of them, ignoring ASCII case (`LIKE '%reason%'`): a superset
    /// of the leads a segment listing only those reasons can take (see [`reason_filter`]).
    fn new_leads<F: FnMut(Lead) + Send>(
        &self,
        reasons: &[String],
        each: F,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// The reference for the forecast's benchmark: a plain count of the pending deliveries
    /// due before `until`.
    fn count_pending_before(
        &self,
        until: DateTime<Utc>,
    ) -> impl Future<Output = Result<i64, StoreError>> + Send;
}

/// `ForecastStore::pending_before` read row by row, for a backend whose statements are
/// `PENDING_BEFORE` and `PENDING_BEFORE_UNLISTED` (without the suppression probes).
macro_rules! pending_before_by_row {
    () => {
        async fn pending_before<F: FnMut(ForecastDelivery) + Send>(
            &self,
            until: DateTime<Utc>,
            _addresses: bool,
            mut each: F,
        ) -> Result<(), StoreError> {
            // With nothing on the suppression list (a first import), no probe per row: at a
            // million due, SQLite's two probes a row were a third of the statement's time.
            // A suppression added between the two reads is missed, as one added just after.
            let listed: bool = sqlx::query_scalar($crate::store::shared::ANY_LISTED)
                .fetch_one(&self.pool)
                .await?;
            let sql = if listed {
                PENDING_BEFORE
            } else {
                PENDING_BEFORE_UNLISTED
            };
            let mut rows = sqlx::query_as::<_, ForecastRow>(sql)
                .bind(Time(until))
                .fetch(&self.pool);
            while let Some(row) = rows.try_next().await? {
                each(row.into());
            }
            Ok(())
        }
    };
}
pub(crate) use pending_before_by_row;

/// The rest of `ForecastStore` for a backend whose statements are `NEW_LEADS` (without its
/// order), `LIKE` (its case-insensitive match, `$1` the pattern) and `COUNT_PENDING_BEFORE`
/// in scope.
macro_rules! forecast_store_methods {
    () => {
        async fn new_leads<F: FnMut(Lead) + Send>(
            &self,
            reasons: &[String],
            mut each: F,
        ) -> Result<(), StoreError> {
            let sql = $crate::store::forecast::new_leads_sql(NEW_LEADS, LIKE, reasons.len());
            let mut query = sqlx::query_as::<_, LeadRow>(sqlx::AssertSqlSafe(sql));
            for reason in reasons {
                query = query.bind(format!("%{reason}%"));
            }
            let mut rows = query.fetch(&self.pool);
            while let Some(row) = rows.try_next().await? {
                each(row.into_lead()?);
            }
            Ok(())
        }

        async fn count_pending_before(&self, until: DateTime<Utc>) -> Result<i64, StoreError> {
            Ok(sqlx::query_scalar(COUNT_PENDING_BEFORE)
                .bind(Time(until))
                .fetch_one(&self.pool)
                .await?)
        }
    };
}
pub(crate) use forecast_store_methods;

/// `pending_before`'s statement (both backends): with the `@domain` expression of `l.email`,
/// leads whose address or domain is on the suppression list are left out, one probe each;
/// with `unlisted`, nothing is probed (for an empty list).
macro_rules! forecast_pending_select {
    ($suppressed:literal) => {
        forecast_pending_select!(@concat!(
            "AND NOT EXISTS (SELECT 1 FROM suppressions s WHERE s.address IN (l.email, ",
            $suppressed,
            "))"
        ))
    };
    (unlisted) => {
        forecast_pending_select!(@"")
    };
    (@$suppressed:expr) => {
        concat!(
            "SELECT d.id, d.lead_id, d.campaign, d.step, d.template, d.due_at, l.email, l.timezone,
                    l.fields ->> 'country' AS country
             FROM deliveries d JOIN leads l ON l.id = d.lead_id
             WHERE d.state IN ('scheduled', 'retry_wait') AND d.due_at < $1 AND l.state = 'nurturing' ",
            $suppressed,
            "
             ORDER BY d.due_at, d.id"
        )
    };
}
pub(crate) use forecast_pending_select;

pub(crate) const COUNT_PENDING_BEFORE: &str = "SELECT count(*) FROM deliveries d
     WHERE d.state IN ('scheduled', 'retry_wait') AND d.due_at < $1";

/// `new_leads`' statement: `head` (the leads in `new`, not suppressed), with `reasons`
/// patterns (`like` with `$1` … `$n`) any of which `lost_reason` must match, by id.
pub(crate) fn new_leads_sql(head: &str, like: &str, reasons: usize) -> String {
    let mut sql = head.to_string();
    if reasons > 0 {
        let any: Vec<String> = (1..=reasons)
            .map(|k| like.replace("$1", &format!("${k}")))
            .collect();
        sql.push_str(&format!(" AND ({})", any.join(" OR ")));
    }
    sql.push_str(" ORDER BY id");
    sql
}

/// The loss reasons that bound which `new` leads any segment can take, if they do: every
/// segment lists its reasons (`lost_reason`), so a lead whose reason contains none of them
/// matches no segment and need not be read. Empty: a segment takes any reason.
pub fn reason_filter(segments: &[crate::domain::segment::Segment]) -> Vec<String> {
    if segments.is_empty() || segments.iter().any(|s| s.lost_reasons.is_empty()) {
        return Vec::new();
    }
    let mut reasons: Vec<String> = segments
        .iter()
        .flat_map(|s| s.lost_reasons.iter().cloned())
        .collect();
    reasons.sort();
    reasons.dedup();
    reasons
}
