//! The report's aggregates on SQLite: only the month of a time stamp and the days
//! between two differ from the other backend (`shared::report_sql`).

use sqlx::AssertSqlSafe;

use super::*;

/// The month (`YYYY-MM`, UTC) of an enrolment `e`.
const MONTH: &str = "strftime('%Y-%m', e.enrolled_at / 1000, 'unixepoch')";
/// Whole days from a cohort row's loss `f.lost_at` to its first re-warm `f.rewarmed_at`.
const DAYS: &str = "CAST((f.rewarmed_at - f.lost_at) / 86400000 AS INTEGER)";

impl ReportStore for SqliteStore {
    common_report_methods!();
}
