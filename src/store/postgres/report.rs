//! The report's aggregates on PostgreSQL: only the month of a time stamp and the days
//! between two differ from the other backend (`report_sql::report_sql`).

use sqlx::AssertSqlSafe;

use super::*;

/// The month (`YYYY-MM`, UTC) of an enrolment `e`.
const MONTH: &str = "to_char(e.enrolled_at AT TIME ZONE 'UTC', 'YYYY-MM')";
/// Whole days from a cohort row's loss `f.lost_at` to its first re-warm `f.rewarmed_at`.
const DAYS: &str = "CAST(floor(EXTRACT(EPOCH FROM (f.rewarmed_at - f.lost_at)) / 86400) AS BIGINT)";
/// The enrolments `e` made in [$1, $2) (the planner picks `enrolments_enrolled` or a scan).
const COHORT: &str = "e.enrolled_at >= $1 AND e.enrolled_at < $2";

/// Recomputing every enrolment's kept stages (migration 0019).
const REBUILD: &str =
    "SELECT rewarm_report_recompute(ARRAY(SELECT DISTINCT lead_id FROM enrolments))";

impl ReportStore for PgStore {
    common_report_methods!();
}

impl PgStore {
    report_counts_of!();
}
