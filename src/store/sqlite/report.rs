//! The report's aggregates on SQLite: only the month of a time stamp and the days
//! between two differ from the other backend (`shared::report_sql`).

use sqlx::AssertSqlSafe;

use super::*;

/// The month (`YYYY-MM`, UTC) of an enrolment `e`.
const MONTH: &str = "strftime('%Y-%m', e.enrolled_at / 1000, 'unixepoch')";
/// Whole days from a lead's `l` loss to its re-warm `r.at`.
const DAYS: &str = "CAST((r.at - l.lost_at) / 86400000 AS INTEGER)";

impl ReportStore for SqliteStore {
    common_report_methods!();
}
