//! The report's aggregates on PostgreSQL: only the month of a time stamp and the days
//! between two differ from the other backend (`shared::report_sql`).

use sqlx::AssertSqlSafe;

use super::*;

/// The month (`YYYY-MM`, UTC) of an enrolment `e`.
const MONTH: &str = "to_char(e.enrolled_at AT TIME ZONE 'UTC', 'YYYY-MM')";
/// Whole days from a cohort row's loss `f.lost_at` to its first re-warm `f.rewarmed_at`.
const DAYS: &str = "CAST(floor(EXTRACT(EPOCH FROM (f.rewarmed_at - f.lost_at)) / 86400) AS BIGINT)";

impl ReportStore for PgStore {
    common_report_methods!();
}
