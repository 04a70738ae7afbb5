//! The delivery queue on PostgreSQL: enrolments (under the write lock), claims
//! (`FOR UPDATE SKIP LOCKED`, committed at once), outcomes (rows locked while deciding),
//! leases and repairs; a transaction that loses a lock conflict runs again.

use std::collections::HashMap;

use futures::TryFutureExt as _;
use serde_json::Value;

use super::record::{MARK_STARTED, SentWave, record_applicable};
use super::*;

/// The same text the SQLite store writes (`json_object(...)` there, `jsonb_build_object` here).
const WRITTEN_OFF_REASON: &str =
    "lease expired after the send started, before its outcome was recorded; not resent";

/// `expire_leases` in one statement: rows whose send had started are written off (with
/// their event), rows never started go back to due, the attempt not counted. Both read the
/// `deliveries_lease` partial index. Returns (written off, released).
pub(super) const EXPIRE_LEASES: &str = "WITH expired AS (
        UPDATE deliveries SET state = 'unknown', updated_at = $1
        WHERE state = 'claimed' AND lease_until < $1 AND started_at IS NOT NULL
        RETURNING id, lead_id, campaign, step, template, claimed_by),
     released AS (
        UPDATE deliveries SET state = 'scheduled', attempts = deliveries.attempts - 1, claimed_by = NULL, lease_until = NULL, updated_at = $1
        WHERE state = 'claimed' AND lease_until < $1 AND started_at IS NULL
        RETURNING id),
     events AS (
        INSERT INTO events (lead_id, at, kind, detail)
        SELECT lead_id, $1, 'written_off',
               jsonb_build_object('campaign', campaign, 'step', step + 1, 'template', template, 'claimed_by', claimed_by, 'reason', $2::text)
        FROM expired ORDER BY id
        RETURNING 1)
     SELECT (SELECT count(*) FROM events), (SELECT count(*) FROM released)";

/// One statement, committed at once. SKIP LOCKED: rows another daemon is claiming right now
/// are skipped, not waited for; a row claimed and committed by another daemon after this
/// statement's snapshot is re-checked under its lock and dropped. The lead is share-locked
/// too, so its state is re-checked the same way: a lead suppressed or re-warmed a moment ago
/// is never claimed. The suppression list is read in the same statement: an address or
/// domain listed (committed) before the claim is refused even if its lead row was never
/// updated.
///
/// Linear whatever the backlog: pending deliveries are read in (`due_at`, `id`) order from
/// the partial index `deliveries_pending` (migration 0011), each lead by its key, each
/// suppression check (address, then domain) by the unique index; the scan stops after `$4`
/// rows, and the update finds them by primary key (`= ANY`: never a hash join over every
/// delivery). `tests/it/scale.rs` checks the plan.
pub(crate) const CLAIM_DUE: &str = "WITH due AS MATERIALIZED (
                    SELECT d.id FROM deliveries d JOIN leads l ON l.id = d.lead_id
                    WHERE d.state IN ('scheduled', 'retry_wait') AND d.due_at <= $3 AND l.state = 'nurturing'
                      AND NOT EXISTS (SELECT 1 FROM suppressions s WHERE s.address = l.email)
                      AND NOT EXISTS (SELECT 1 FROM suppressions s WHERE s.address = rewarm_at_domain(l.email))
                    ORDER BY d.due_at, d.id LIMIT $4
                    FOR UPDATE OF d SKIP LOCKED
                    FOR SHARE OF l SKIP LOCKED)
                 UPDATE deliveries SET state = 'claimed', claimed_by = $1, lease_until = $2, attempts = deliveries.attempts + 1, updated_at = $3
                 WHERE deliveries.id = ANY (ARRAY(SELECT id FROM due))
                 RETURNING deliveries.id, deliveries.lead_id, deliveries.enrolment_id, deliveries.campaign, deliveries.step,
                           deliveries.template, deliveries.attempts, deliveries.due_at";

/// `enrol`'s batch as arrays ($1 lead ids, $2 campaigns, $3 segments, $4 first due times in
/// milliseconds, $5 templates, $6 `enrolled` event details), expanded once per statement with
/// `UNNEST`, joined by key.
macro_rules! enrol_batch {
    () => {
        "UNNEST($1::bigint[], $2::text[], $3::text[], $4::bigint[], $5::text[], $6::text[]) WITH ORDINALITY
         AS b(lead_id, campaign, segment, due, template, detail, n)"
    };
}

/// `enrol`, first: the batch's leads are locked in id order (enrolments run beside each
/// other; see the module docs), so another daemon enrolling one of them waits for this one
/// and then finds it no longer `new`.
const ENROL_LOCK: &str = "SELECT 1 FROM leads WHERE id = ANY($1) ORDER BY id FOR NO KEY UPDATE";

/// `enrol`: a lead whose address or domain is on the suppression list is never enrolled: it
/// becomes `suppressed` here (with its event), so the statements of `ENROL` skip it.
const ENROL_SUPPRESSED: &str = "WITH hit AS (
        SELECT l.id, l.state, s.reason, s.evidence, s.address
        FROM leads l CROSS JOIN LATERAL (
            SELECT s2.reason, s2.evidence, s2.address FROM suppressions s2 WHERE s2.address IN (l.email, rewarm_at_domain(l.email))
            ORDER BY s2.address LIKE '@%' LIMIT 1) s
        WHERE l.id = ANY($1) AND l.state = 'new'
        FOR UPDATE OF l),
     upd AS (UPDATE leads SET state = 'suppressed', updated_at = $7 FROM hit WHERE leads.id = hit.id)
     INSERT INTO events (lead_id, at, kind, detail)
     SELECT id, $7, 'suppressed', jsonb_build_object('from', state, 'to', 'suppressed', 'reason', reason, 'evidence', evidence, 'address', address)
     FROM hit ORDER BY id";

/// `enrol`, after the suppressed leads are turned away: enrolment rows (only for leads still
/// `new`: a lead suppressed or re-warmed meanwhile is left alone), first deliveries, events,
/// then the lead, at $7. The first statement's count is the number enrolled.
///
/// Enrolments and first deliveries are inserted in due order (the claim's order), so the
/// send pass's updates find their rows on neighbouring heap pages (as on SQLite).
///
/// Every statement reaches its rows from the page's own leads, one look-up by key each (a
/// `LATERAL` subquery with `OFFSET 0`, which the planner keeps as such: the page's rows drive
/// a loop of key look-ups whatever the statistics say); the conditions on an enrolment's time
/// and a lead's state are written `(…) IS TRUE`, which no index serves. Each form replaced a
/// misplan:
/// - the statistics know no enrolment of this very moment, and with a plain `enrolled_at =
///   $7` the planner read every enrolment made so far in the pass from `enrolments_enrolled`,
///   looping over the page for each: 42–52 s per page of 5,000 late in a 143k-lead pass;
/// - imported leads are all `new` while the statistics (taken before the import) count few,
///   and with a plain join on `l.state = 'new'` the planner read every `new` lead from
///   `leads_state` (or every lead, without that index) into a hash for each page: 36–45 ms a
///   page at 100k leads, ten times that at 1M;
/// - the first deliveries used to also ask `e.lead_id = ANY($1)`: PostgreSQL made it part of
///   the index condition of each of the page's 3,500 look-ups of the enrolment, sorting the
///   whole array each time: 300 of a statement's 385 ms (auto_explain, 2026-12-04).
pub(super) const ENROL: [&str; 4] = [
    concat!(
        "INSERT INTO enrolments (lead_id, campaign, segment, state, enrolled_at)
         SELECT b.lead_id, b.campaign, b.segment, 'active', $7 FROM ",
        enrol_batch!(),
        " CROSS JOIN LATERAL (SELECT 1 FROM leads l WHERE l.id = b.lead_id AND (l.state = 'new') IS TRUE OFFSET 0) l
         ORDER BY b.due, b.n
         ON CONFLICT (lead_id, campaign) DO NOTHING"
    ),
    concat!(
        "INSERT INTO deliveries (lead_id, enrolment_id, campaign, step, template, state, due_at, updated_at, cycle)
         SELECT e.lead_id, e.id, e.campaign, 0, b.template, 'scheduled', rewarm_ms(b.due), $7, e.cycle FROM ",
        enrol_batch!(),
        " CROSS JOIN LATERAL (SELECT e.id, e.lead_id, e.campaign, e.cycle FROM enrolments e
            WHERE e.lead_id = b.lead_id AND e.campaign = b.campaign AND (e.enrolled_at = $7 AND e.state = 'active') IS TRUE
            OFFSET 0) e
         ORDER BY b.due, b.n
         ON CONFLICT (enrolment_id, cycle, step) DO NOTHING"
    ),
    concat!(
        "INSERT INTO events (lead_id, at, kind, detail) SELECT b.lead_id, $7, 'enrolled', b.detail::jsonb FROM ",
        enrol_batch!(),
        " CROSS JOIN LATERAL (SELECT 1 FROM leads l WHERE l.id = b.lead_id AND (l.state = 'new') IS TRUE OFFSET 0) l ORDER BY b.n"
    ),
    "UPDATE leads SET state = 'nurturing', updated_at = $7 WHERE state = 'new' AND id = ANY($1)",
];

/// `resume_enrolments`: the next step of each enrolment that has one; those without complete,
/// with their lead.
const RESUME: [&str; 4] = [
    "INSERT INTO deliveries (lead_id, enrolment_id, campaign, step, template, state, due_at, updated_at, cycle)
     SELECT (j.v->>'lead_id')::bigint, (j.v->>'enrolment_id')::bigint, j.v->>'campaign', (j.v->'next'->>'step')::bigint, j.v->'next'->>'template',
            'scheduled', rewarm_ms((j.v->'next'->>'due')::bigint), $2,
            (SELECT e.cycle FROM enrolments e WHERE e.id = (j.v->>'enrolment_id')::bigint)
     FROM jsonb_array_elements($1) WITH ORDINALITY AS j(v, n) WHERE jsonb_typeof(j.v->'next') = 'object' ORDER BY j.n
     ON CONFLICT (enrolment_id, cycle, step) DO NOTHING",
    "INSERT INTO events (lead_id, at, kind, detail)
     SELECT l.id, $2, 'completed', jsonb_build_object('campaign', j.v->>'campaign', 'from', l.state, 'to', 'completed')
     FROM jsonb_array_elements($1) WITH ORDINALITY AS j(v, n) JOIN leads l ON l.id = (j.v->>'lead_id')::bigint
     WHERE coalesce(jsonb_typeof(j.v->'next'), 'null') = 'null' AND l.state = 'nurturing' ORDER BY j.n",
    "UPDATE enrolments SET state = 'completed', ended_at = $2
     FROM jsonb_array_elements($1) AS j(v) WHERE coalesce(jsonb_typeof(j.v->'next'), 'null') = 'null'
       AND enrolments.id = (j.v->>'enrolment_id')::bigint AND enrolments.state = 'active'",
    "UPDATE leads SET state = 'completed', updated_at = $2
     FROM jsonb_array_elements($1) AS j(v) WHERE coalesce(jsonb_typeof(j.v->'next'), 'null') = 'null'
       AND leads.id = (j.v->>'lead_id')::bigint AND leads.state = 'nurturing'",
];

impl QueueStore for PgStore {
    /// PostgreSQL's commits cost little, and larger statements only hold more of the
    /// server's buffers at once: at 1M pages of 20,000 took 118 s against 111 s in pages of
    /// 5,000; at 100k, alternating, 10.14 / 9.89 s against 10.15 / 10.37 s.
    const ENROL_PAGE: usize = 5_000;

    /// Each page's own: PostgreSQL appends rows wherever its free space map says.
    const ENROL_WRITE: usize = 5_000;

    /// Each write's statements run on their own connection and server process, and the
    /// server's work is most of the pass (its index entries for every updated lead).
    const ENROL_LANES: usize = 2;

    /// Each lane's statement runs on its own connection and server process: two lanes sent a
    /// 10k backlog in 1.82–1.91 s against 2.18–2.48 s, 100k in 16.6 s against 21.2 s.
    const WAVE_LANES: usize = 2;

    async fn enrol(
        &self,
        enrolments: &[NewEnrolment],
        now: DateTime<Utc>,
    ) -> Result<usize, StoreError> {
        if enrolments.is_empty() {
            return Ok(0);
        }
        retrying!(self.enrol_once(enrolments, now))
    }

    async fn claim_due(
        &self,
        now: DateTime<Utc>,
        worker: &str,
        lease_until: DateTime<Utc>,
        limit: usize,
    ) -> Result<Vec<ClaimedDelivery>, StoreError> {
        let rows: Vec<ClaimRow> = retrying!(
            sqlx::query_as(CLAIM_DUE)
                .bind(worker)
                .bind(Time(lease_until))
                .bind(Time(now))
                .bind(limit as i64)
                .fetch_all(&self.pool)
                .map_err(StoreError::from)
        )?;
        let mut claimed: Vec<ClaimedDelivery> =
            rows.into_iter().map(ClaimedDelivery::from).collect();
        // RETURNING has no order; hand them out oldest due first, as SQLite does.
        claimed.sort_by_key(|d| (d.due_at, d.id));
        Ok(claimed)
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
        self.record_and_start(outcomes, &[], worker, now, now)
            .await
            .map(|_| ())
    }

    async fn expire_leases(&self, now: DateTime<Utc>) -> Result<Expired, StoreError> {
        // One statement: the rows written off are exactly those that get the event, even
        // with several daemons expiring at once (the second waits, re-checks, skips).
        let (written_off, released): (i64, i64) = retrying!(
            sqlx::query_as(EXPIRE_LEASES)
                .bind(Time(now))
                .bind(WRITTEN_OFF_REASON)
                .fetch_one(&self.pool)
                .map_err(StoreError::from)
        )?;
        Ok(Expired {
            written_off: written_off as usize,
            released: released as usize,
        })
    }

    async fn mark_started(
        &self,
        ids: &[i64],
        worker: &str,
        now: DateTime<Utc>,
    ) -> Result<Vec<i64>, StoreError> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        retrying!(
            sqlx::query_scalar(MARK_STARTED)
                .bind(ids)
                .bind(worker)
                .bind(Time(now))
                .fetch_all(&self.pool)
                .map_err(StoreError::from)
        )
    }

    async fn record_and_start(
        &self,
        outcomes: &[RecordedOutcome],
        start: &[i64],
        worker: &str,
        now: DateTime<Utc>,
        started_at: DateTime<Utc>,
    ) -> Result<Vec<i64>, StoreError> {
        if outcomes.is_empty() {
            return self.mark_started(start, worker, started_at).await;
        }
        // The hot path (every outcome sent, each with a next step): one statement.
        if let Some(wave) = SentWave::of(outcomes) {
            return retrying!(wave.run(&self.pool, start, worker, now, started_at));
        }
        retrying!(self.record_once(outcomes, start, worker, now, started_at))
    }

    async fn release_unstarted(
        &self,
        worker: &str,
        now: DateTime<Utc>,
    ) -> Result<usize, StoreError> {
        let n = retrying!(
            sqlx::query(sql::RELEASE_UNSTARTED)
                .bind(worker)
                .bind(Time(now))
                .execute(&self.pool)
                .map_err(StoreError::from)
        )?
        .rows_affected();
        Ok(n as usize)
    }

    common_queue_methods!();

    async fn resume_enrolments(
        &self,
        resumed: &[(StalledEnrolment, Option<NextStep>)],
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        if resumed.is_empty() {
            return Ok(());
        }
        let batch = resumed_json(resumed);
        retrying!(self.resume_once(&batch, now))
    }

    async fn refresh_enrolment_statistics(&self) -> Result<(), StoreError> {
        sqlx::query("ANALYZE leads, enrolments, deliveries")
            .execute(&self.pool)
            .await?;
        Ok(())
    }
}

/// One attempt of each write that may have to run again (see `retrying!`).
impl PgStore {
    async fn enrol_once(
        &self,
        enrolments: &[NewEnrolment],
        now: DateTime<Utc>,
    ) -> Result<usize, StoreError> {
        let ids: Vec<i64> = enrolments.iter().map(|e| e.lead_id).collect();
        let campaigns: Vec<&str> = enrolments.iter().map(|e| e.campaign.as_str()).collect();
        let segments: Vec<&str> = enrolments.iter().map(|e| e.segment.as_str()).collect();
        let due: Vec<i64> = enrolments
            .iter()
            .map(|e| e.first_due.timestamp_millis())
            .collect();
        let templates: Vec<&str> = enrolments.iter().map(|e| e.template.as_str()).collect();
        let details: Vec<String> = enrolments.iter().map(enrolled_detail).collect();
        let mut tx = self.enrol_write().await?;
        sqlx::query(ENROL_LOCK).bind(&ids).execute(&mut *tx).await?;
        let mut affected = [0; ENROL.len() + 1];
        for (sql, n) in std::iter::once(ENROL_SUPPRESSED)
            .chain(ENROL)
            .zip(&mut affected)
        {
            *n = sqlx::query(sql)
                .bind(&ids)
                .bind(&campaigns)
                .bind(&segments)
                .bind(&due)
                .bind(&templates)
                .bind(&details)
                .bind(Time(now))
                .execute(&mut *tx)
                .await?
                .rows_affected();
        }
        tx.commit().await?;
        // ENROL's first statement inserts the enrolments.
        Ok(affected[1] as usize)
    }

    async fn record_once(
        &self,
        outcomes: &[RecordedOutcome],
        start: &[i64],
        worker: &str,
        now: DateTime<Utc>,
        started_at: DateTime<Utc>,
    ) -> Result<Vec<i64>, StoreError> {
        let mut tx = self.pool.begin().await?;
        // Only outcomes that still apply to their row are recorded (events included), as on
        // SQLite. The rows are locked while deciding, so a daemon expiring leases at the same
        // moment either goes first (the row is `unknown` here) or waits for this commit.
        let ids: Vec<i64> = outcomes.iter().map(|o| o.delivery.id).collect();
        let states: HashMap<i64, String> = sqlx::query_as::<_, (i64, String)>(
            "SELECT id, state FROM deliveries WHERE id = ANY($1) AND claimed_by = $2 ORDER BY id FOR UPDATE",
        )
        .bind(&ids)
        .bind(worker)
        .fetch_all(&mut *tx)
        .await?
        .into_iter()
        .collect();
        let applicable = applicable_outcomes(outcomes, &states);
        if !applicable.is_empty() {
            let tasks = call_task_notifications(outcomes, &states);
            record_applicable(&mut tx, &applicable, &tasks, worker, now).await?;
        }
        let marked = if start.is_empty() {
            Vec::new()
        } else {
            sqlx::query_scalar(MARK_STARTED)
                .bind(start)
                .bind(worker)
                .bind(Time(started_at))
                .fetch_all(&mut *tx)
                .await?
        };
        tx.commit().await?;
        Ok(marked)
    }

    async fn resume_once(&self, batch: &Value, now: DateTime<Utc>) -> Result<(), StoreError> {
        let mut tx = self.write().await?;

        for sql in RESUME {
            sqlx::query(sql)
                .bind(batch)
                .bind(Time(now))
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(())
    }
}

impl PgStore {
    /// The query plans (`EXPLAIN`) of the repairs a pass starts with — lease expiry, stalled
    /// enrolments, releasing a worker's claims — by name. With `force_index` the planner is
    /// told to avoid sequential scans (`enable_seqscan = off`, this transaction only), which
    /// shows on a small table that an index can serve the query; without it, the plan the
    /// planner really picks (the benchmark at 1,000,000 leads).
    pub async fn repair_plans(
        &self,
        force_index: bool,
    ) -> Result<Vec<(&'static str, String)>, StoreError> {
        let now = Time(chrono::Utc::now());
        let statements = [
            ("lease expiry", EXPIRE_LEASES),
            ("release_unstarted", sql::RELEASE_UNSTARTED),
            ("stalled_enrolments", sql::STALLED_ENROLMENTS),
        ];
        let mut tx = self.pool.begin().await?;
        if force_index {
            sqlx::query("SET LOCAL enable_seqscan = off")
                .execute(&mut *tx)
                .await?;
        }
        let mut plans = Vec::new();
        for (name, statement) in statements {
            let explain = format!("EXPLAIN {statement}");
            let query = sqlx::query_scalar::<_, String>(sqlx::AssertSqlSafe(explain));
            let query = match name {
                "lease expiry" => query.bind(now).bind(WRITTEN_OFF_REASON),
                "release_unstarted" => query.bind("w").bind(now),
                _ => query.bind(1000_i64),
            };
            let rows = query.fetch_all(&mut *tx).await?;
            plans.push((name, rows.join("\n")));
        }
        tx.rollback().await?;
        Ok(plans)
    }
}
