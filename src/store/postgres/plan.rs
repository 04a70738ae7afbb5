//! Query plans on PostgreSQL, for the tests that hold the send pass linear: what the claim
//! statement would do, as `EXPLAIN` prints it (nothing is claimed or locked).

use super::queue::CLAIM_DUE;
use super::*;

/// An `EXPLAIN (COSTS OFF)` of one statement, before its parameters are bound.
type Explain =
    sqlx::query::QueryScalar<'static, sqlx::Postgres, String, sqlx::postgres::PgArguments>;

impl PgStore {
    /// The plans of `statements`, by name, one line per node, each bound by `bind`, asked in
    /// one transaction (rolled back) with `enable_seqscan = off`: on a small table the planner
    /// would scan whatever the indexes, so a `Seq Scan` left in a plan means no index serves it.
    async fn plans_of(
        &self,
        statements: &[(&'static str, &str)],
        bind: impl Fn(&str, Explain) -> Explain,
    ) -> Result<Vec<(&'static str, Vec<String>)>, StoreError> {
        let mut tx = self.pool.begin().await?;
        sqlx::query("SET LOCAL enable_seqscan = off")
            .execute(&mut *tx)
            .await?;
        let mut plans = Vec::new();
        for (name, statement) in statements {
            let explain = format!("EXPLAIN (COSTS OFF) {statement}");
            let query = bind(name, sqlx::query_scalar(sqlx::AssertSqlSafe(explain)));
            plans.push((*name, query.fetch_all(&mut *tx).await?));
        }
        tx.rollback().await?;
        Ok(plans)
    }
}

impl PgStore {
    /// The plan of the claim at `now`, one line per node (`Index Scan using
    /// deliveries_pending on deliveries d`, …). A `Seq Scan on deliveries` would mean a
    /// claim reads every due row.
    pub async fn claim_plan(&self, now: DateTime<Utc>) -> Result<Vec<String>, StoreError> {
        let sql = format!("EXPLAIN (COSTS OFF) {CLAIM_DUE}");
        let rows: Vec<(String,)> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .bind("plan")
            .bind(Time(now))
            .bind(Time(now))
            .bind(500_i64)
            .fetch_all(&self.pool)
            .await?;
        Ok(rows.into_iter().map(|(line,)| line).collect())
    }
}

impl PgStore {
    /// The plans of the statements an idle daemon tick runs besides the claim and the
    /// repairs (`repair_plans`), by name (see `SqliteStore::tick_plans`), asked with
    /// `enable_seqscan = off` (this transaction only): on a small table the planner would
    /// scan whatever the indexes; so a `Seq Scan` left in a plan means no index serves it.
    pub async fn tick_plans(
        &self,
        now: DateTime<Utc>,
    ) -> Result<Vec<(&'static str, Vec<String>)>, StoreError> {
        let statements = [
            ("recheck_due", sql::RECHECK_DUE),
            ("updated_upto", crate::store::edits_sql::UPDATED_UPTO),
            (
                "leads_to_examine",
                crate::store::unmatched::LEADS_TO_EXAMINE,
            ),
            ("wake_unmatched", crate::store::unmatched::ANY_TO_WAKE),
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

impl PgStore {
    /// The plans of the statements that read one lead's events by its id, by name (see
    /// `SqliteStore::lead_history_plans`), asked with `enable_seqscan = off` (as
    /// `tick_plans`): a `Seq Scan on events` left in a plan means no index serves it.
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

impl PgStore {
    /// The plans of the statements that find one lead's deliveries through its enrolments
    /// (see `SqliteStore::lead_delivery_plans`), asked with `enable_seqscan = off` (as
    /// `tick_plans`), and rolled back: a `Seq Scan on deliveries` means no index serves it.
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

impl PgStore {
    /// The plans of the send pass's writes that name their rows by key, by name: recording a
    /// wave that sent (`RECORD_SENT_WAVE`, with the next wave's start), marking a wave
    /// started, and an enrolment's rows, first deliveries and events (`ENROL`'s first three
    /// statements), for the `deliveries` claimed by `worker` and the `leads` just enrolled at
    /// `enrolled_at`. The statistics of a live database count no `claimed` row and no
    /// enrolment of this very moment (nor the `new` leads of an import made since they were
    /// taken), so a plan that reached these rows through their state (`deliveries_due`,
    /// `leads_state`) or their time (`enrolments_enrolled`) would read every such row for
    /// each one of the wave or page (docs/performance.md: 93 ms of a 98 ms wave); such an
    /// index or a sequential scan in these plans is that misplan. Asked with
    /// `enable_seqscan = off` (as `tick_plans`): a small test table would be scanned anyway.
    pub async fn record_plans(
        &self,
        deliveries: &[i64],
        leads: &[i64],
        worker: &str,
        enrolled_at: DateTime<Utc>,
    ) -> Result<Vec<(&'static str, Vec<String>)>, StoreError> {
        let n = deliveries.len();
        let texts = |s: &str| vec![s.to_string(); n];
        let numbers = |v: i64| vec![v; n];
        let explain = |sql: &str| sqlx::AssertSqlSafe(format!("EXPLAIN (COSTS OFF) {sql}"));
        let now = Time(enrolled_at);
        let mut tx = self.pool.begin().await?;
        sqlx::query("SET LOCAL enable_seqscan = off")
            .execute(&mut *tx)
            .await?;
        let mut plans = Vec::new();
        let sent_wave = sqlx::query_scalar::<_, String>(explain(super::record::RECORD_SENT_WAVE))
            .bind(deliveries)
            .bind(now)
            .bind(worker)
            .bind(texts("<m@x>"))
            .bind(vec![None::<String>; n])
            .bind(numbers(1))
            .bind(numbers(1))
            .bind(texts("c"))
            .bind(numbers(0))
            .bind(texts("t"))
            .bind(numbers(1))
            .bind(numbers(1))
            .bind(numbers(0))
            .bind(texts("t"))
            .bind(deliveries)
            .bind(now);
        plans.push(("record a sent wave", sent_wave.fetch_all(&mut *tx).await?));
        let mark = sqlx::query_scalar::<_, String>(explain(super::record::MARK_STARTED))
            .bind(deliveries)
            .bind(worker)
            .bind(now);
        plans.push(("mark started", mark.fetch_all(&mut *tx).await?));
        let m = leads.len();
        let names = ["enrolments", "first deliveries", "enrolled events"];
        for (name, sql) in names.into_iter().zip(&super::queue::ENROL[..3]) {
            let plan = sqlx::query_scalar::<_, String>(explain(sql))
                .bind(leads)
                .bind(vec!["c"; m])
                .bind(vec!["all"; m])
                .bind(vec![0_i64; m])
                .bind(vec!["first"; m])
                .bind(vec!["{}"; m])
                .bind(now);
            plans.push((name, plan.fetch_all(&mut *tx).await?));
        }
        tx.rollback().await?;
        Ok(plans)
    }
}

impl PgStore {
    sql::state_plans_method!();
}
