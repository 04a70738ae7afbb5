//! The report's aggregates on SQLite: only the month of a time stamp and the days
//! between two differ from the other backend (`report_sql::report_sql`).

use sqlx::AssertSqlSafe;

use super::*;

/// The month (`YYYY-MM`, UTC) of an enrolment `e`.
const MONTH: &str = "strftime('%Y-%m', e.enrolled_at / 1000, 'unixepoch')";
/// Whole days from a cohort row's loss `f.lost_at` to its first re-warm `f.rewarmed_at`.
const DAYS: &str = "CAST((f.rewarmed_at - f.lost_at) / 86400000 AS INTEGER)";
/// The enrolments `e` made in [$1, $2), read by one pass over the table (`+` keeps SQLite
/// from walking `enrolments_enrolled` and looking up each row: without range statistics it
/// would for the whole table, seven times slower; a narrow range costs the same pass).
const COHORT: &str = "+e.enrolled_at >= $1 AND +e.enrolled_at < $2";

/// Recomputing every enrolment's kept stages (migration 0019).
const REBUILD: &str =
    "INSERT INTO report_recompute (lead_id) SELECT DISTINCT lead_id FROM enrolments";

impl ReportStore for SqliteStore {
    common_report_methods!();
}

impl SqliteStore {
    report_counts_of!();
}
