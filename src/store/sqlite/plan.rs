//! Query plans on SQLite, for the tests that hold the send pass linear: what the claim
//! statement would do, as `EXPLAIN QUERY PLAN` prints it (nothing is claimed).

use super::queue::CLAIM_DUE;
use super::*;

/// An `EXPLAIN QUERY PLAN` of one statement, before its parameters are bound.
type Explain = sqlx::query::QueryAs<
    'static,
    sqlx::Sqlite,
    (i64, i64, i64, String),
    sqlx::sqlite::SqliteArguments,
>;

impl SqliteStore {
    /// The plans of `statements`, by name, one line per step, each bound by `bind`.
    async fn plans_of(
        &self,
        statements: &[(&'static str, &str)],
        bind: impl Fn(&str, Explain) -> Explain,
    ) -> Result<Vec<(&'static str, Vec<String>)>, StoreError> {
        let mut plans = Vec::new();
        for (name, statement) in statements {
            let explain = format!("EXPLAIN QUERY PLAN {statement}");
            let query = bind(name, sqlx::query_as(sqlx::AssertSqlSafe(explain)));
            let rows = query.fetch_all(&self.pool).await?;
            plans.push((*name, rows.into_iter().map(|r| r.3).collect()));
        }
        Ok(plans)
    }
}

impl SqliteStore {
    /// The plan of the claim at `now`, one line per step (`SEARCH d USING INDEX
    /// deliveries_pending (due_at<?)`, …). A `SCAN d` or a temporary B-tree for the order
    /// would mean a claim reads every due row.
    pub async fn claim_plan(&self, now: DateTime<Utc>) -> Result<Vec<String>, StoreError> {
        let sql = format!("EXPLAIN QUERY PLAN {CLAIM_DUE}");
        let rows: Vec<(i64, i64, i64, String)> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .bind("plan")
            .bind(Time(now))
            .bind(Time(now))
            .bind(500_i64)
            .fetch_all(&self.pool)
            .await?;
        Ok(rows.into_iter().map(|(_, _, _, detail)| detail).collect())
    }
}

impl SqliteStore {
    /// The plans of the statements an idle daemon tick runs besides the claim and the
    /// repairs (`repair_plans`), by name: re-checks due, changed leads, leads to examine for
    /// enrolment, unmatched leads to wake, paused leads, and `/metrics`' due-now counts. Each
    /// must search an index: a `SCAN` of `leads`, `events`, `enrolments` or `deliveries`
    /// would cost every tick time in proportion to the database.
    pub async fn tick_plans(
        &self,
        now: DateTime<Utc>,
    ) -> Result<Vec<(&'static str, Vec<String>)>, StoreError> {
        let statements = [
            ("recheck_due", sql::RECHECK_DUE),
            ("updated_upto", crate::store::edits_sql::UPDATED_UPTO),
            ("leads_to_examine", super::unmatched::LEADS_TO_EXAMINE),
            ("wake_unmatched", super::unmatched::ANY_TO_WAKE),
            ("any_paused_lead", crate::store::hold::ANY_PAUSED_LEAD),
            ("due_now", super::DUE_NOW_PARTS),
            ("not_due", super::NOT_DUE),
        ];
        self.plans_of(&statements, |name, query| match name {
            "recheck_due" => query.bind(Time(now)).bind(1000_i64),
            "updated_upto" | "leads_to_examine" => query.bind(0_i64).bind(1000_i64),
            "any_paused_lead" => query,
            "due_now" => query.bind(Time(now)).bind(sql::DUE_COUNT_CAP),
            _ => query.bind(Time(now)),
        })
        .await
    }
}

impl SqliteStore {
    sql::state_plans_method!();
}

impl SqliteStore {
    /// The plans of the statements that read one lead's events by its id, by name
    /// (`LEAD_EVENT_READS`): each must search `events_lead` (SQLite uses a partial index only
    /// when the query spells its condition, `kind <> 'sent'`), the timeline also
    /// `events_delivery`; a `SCAN` of `events` would read the whole history per question.
    pub async fn lead_history_plans(
        &self,
        now: DateTime<Utc>,
    ) -> Result<Vec<(&'static str, Vec<String>)>, StoreError> {
        self.plans_of(&sql::LEAD_EVENT_READS, |name, query| match name {
            "clicks_since" => query.bind(1_i64).bind(Time(now)),
            "stale_handoffs" => query.bind(Time(now)).bind(0_i64).bind(100_i64),
            "record_chase" => query
                .bind(1_i64)
                .bind(Time(now))
                .bind("reminded")
                .bind(serde_json::json!({}))
                .bind(0_i64),
            _ => query.bind(1_i64),
        })
        .await
    }
}

impl SqliteStore {
    /// The plans of the statements that find one lead's deliveries through its enrolments
    /// (`LEAD_DELIVERY_STATEMENTS`), by name: each must search `deliveries_enrolment`; a `SCAN`
    /// of `deliveries` or a search of a state's index would read rows of every lead.
    pub async fn lead_delivery_plans(
        &self,
        now: DateTime<Utc>,
    ) -> Result<Vec<(&'static str, Vec<String>)>, StoreError> {
        self.plans_of(&sql::LEAD_DELIVERY_STATEMENTS, |name, query| match name {
            "postpone" => query.bind(1_i64).bind(Time(now)).bind(Time(now)),
            "reactivate_enrolments" | "lead_deliveries" => query.bind(1_i64),
            "hold_paused_leads" => query.bind(Time(now)),
            _ => query.bind(1_i64).bind(Time(now)),
        })
        .await
    }
}

impl SqliteStore {
    /// The plan of the console's session look-up, which every console request runs: it must
    /// search `leads_owner` for the viewer's leads, never `SCAN leads`.
    pub async fn console_session_plan(&self) -> Result<Vec<String>, StoreError> {
        let sql = format!(
            "EXPLAIN QUERY PLAN {}",
            crate::store::console::CONSOLE_SESSION
        );
        let rows: Vec<(i64, i64, i64, String)> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .bind("hash")
            .bind(Time(DateTime::UNIX_EPOCH))
            .fetch_all(&self.pool)
            .await?;
        Ok(rows.into_iter().map(|(_, _, _, detail)| detail).collect())
    }
}
