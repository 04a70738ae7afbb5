//! The delivery queue on SQLite: enrolments, claims (one conditional `UPDATE … RETURNING`
//! under the single writer), outcomes (only the statements an outcome kind can touch),
//! leases and repairs (recording itself: `record.rs`).

use serde_json::json;

use super::bulk;
use super::record::{MARK_STARTED, record_tx};
use super::*;

/// `resume_enrolments`: the next step of each enrolment that has one; those without complete,
/// with their lead.
const RESUME: [&str; 4] = [
    "INSERT INTO deliveries (lead_id, enrolment_id, campaign, step, template, state, due_at, updated_at, cycle)
     SELECT j.value->>'lead_id', j.value->>'enrolment_id', j.value->>'campaign', j.value->>'$.next.step', j.value->>'$.next.template', 'scheduled', j.value->>'$.next.due', $2,
            (SELECT e.cycle FROM enrolments e WHERE e.id = j.value->>'enrolment_id')
     FROM json_each($1) j WHERE j.value->>'next' IS NOT NULL
     ON CONFLICT (enrolment_id, cycle, step) DO NOTHING",
    "INSERT INTO events (lead_id, at, kind, detail)
     SELECT l.id, $2, 'completed', json_object('campaign', j.value->>'campaign', 'from', l.state, 'to', 'completed')
     FROM json_each($1) j CROSS JOIN leads l ON l.id = j.value->>'lead_id' WHERE j.value->>'next' IS NULL AND l.state = 'nurturing'",
    "UPDATE enrolments SET state = 'completed', ended_at = $2
     FROM json_each($1) j WHERE j.value->>'next' IS NULL AND enrolments.id = j.value->>'enrolment_id' AND +enrolments.state = 'active'",
    "UPDATE leads SET state = 'completed', updated_at = $2
     FROM json_each($1) j WHERE j.value->>'next' IS NULL AND leads.id = j.value->>'lead_id' AND +leads.state = 'nurturing'",
];

/// `enrol`: the batch is staged in a temporary table keyed by lead (bound values, many rows a
/// statement), then every write is one statement joining it by key: no JSON to re-read per
/// statement, no per-lead query.
const ENROL_STAGE: [&str; 2] = [
    "CREATE TEMP TABLE IF NOT EXISTS enrol_batch (lead_id INTEGER NOT NULL, campaign TEXT NOT NULL,
        segment TEXT NOT NULL, due INTEGER NOT NULL, template TEXT NOT NULL, detail TEXT NOT NULL,
        PRIMARY KEY (lead_id, campaign))",
    "DELETE FROM temp.enrol_batch",
];

/// `enrol`: a lead whose address or domain is on the suppression list is never enrolled: it
/// becomes `suppressed` here (with its event). Only the page's leads are probed (two index
/// look-ups each); the event and the update run only for the few found.
const ENROL_LISTED: &str = at_domain!(
    "SELECT b.lead_id FROM temp.enrol_batch b CROSS JOIN leads l ON l.id = b.lead_id
     WHERE l.state = 'new' AND EXISTS (SELECT 1 FROM suppressions s WHERE s.address IN (l.email, ",
    "l.email",
    "))"
);
const ENROL_SUPPRESSED: [&str; 2] = [
    at_domain!(
        "INSERT INTO events (lead_id, at, kind, detail)
         SELECT l.id, $2, 'suppressed', json_object('from', l.state, 'to', 'suppressed', 'reason', s.reason, 'evidence', json(s.evidence), 'address', s.address)
         FROM leads l CROSS JOIN suppressions s ON s.id = (SELECT s2.id FROM suppressions s2 WHERE s2.address IN (l.email, ",
        "l.email",
        ") ORDER BY s2.address LIKE '@%' LIMIT 1)
         WHERE l.id IN (SELECT value FROM json_each($1)) AND +l.state = 'new'"
    ),
    "UPDATE leads SET state = 'suppressed', updated_at = $2 WHERE id IN (SELECT value FROM json_each($1)) AND +state = 'new'",
];

/// `enrol`, once the staged batch holds only leads still `new` and not listed: enrolment
/// rows, first deliveries, events, then the lead. The first statement's count is the number
/// enrolled. They run with the triggers and the foreign-key checks off ([`bulk`]): every
/// row's lead was just found still `new` (`ENROL_FRESH`), every first delivery's enrolment
/// was just written. What the triggers would have done row by row is done after them for
/// the whole write: the counters (`ENROL_COUNTS`), the report's queue (`ENROL_REPORT`), and
/// `leads_examine_again`'s cleared mark, which the last statement sets itself
/// (`unmatched_until = NULL`). The other triggers of these tables do
/// nothing for these rows: `deliveries_report_insert` (a `sent` row), `events_report_insert`
/// (a report stage's event).
///
/// Enrolments and first deliveries are written in due order (the send pass's claim order),
/// so their ids follow it (the first deliveries are those of the enrolments after the
/// largest id before the write, $2, read in id order: no sort, no look-up in the whole
/// table): a wave's claim, start and outcome, and each enrolment's first
/// email, then rewrite neighbouring pages instead of one page per row (100k due: 4.6 → 1.8 GB
/// written to the WAL by the pass, 24.9 → 17.3 s). Events keep lead order (`events_lead`).
const ENROL: [&str; 4] = [
    "INSERT INTO enrolments (lead_id, campaign, segment, state, enrolled_at)
     SELECT lead_id, campaign, segment, 'active', $1 FROM temp.enrol_batch ORDER BY due, lead_id
     ON CONFLICT (lead_id, campaign) DO NOTHING",
    "INSERT INTO deliveries (lead_id, enrolment_id, campaign, step, template, state, due_at, updated_at, cycle)
     SELECT e.lead_id, e.id, e.campaign, 0, b.template, 'scheduled', b.due, $1, e.cycle
     FROM enrolments e CROSS JOIN temp.enrol_batch b ON b.lead_id = e.lead_id AND b.campaign = e.campaign
     WHERE e.id > $2 ORDER BY e.id
     ON CONFLICT (enrolment_id, cycle, step) DO NOTHING",
    "INSERT INTO events (lead_id, at, kind, detail) SELECT lead_id, $1, 'enrolled', detail FROM temp.enrol_batch ORDER BY lead_id",
    "UPDATE leads SET state = 'nurturing', updated_at = $1, unmatched_until = NULL
     WHERE id IN (SELECT lead_id FROM temp.enrol_batch) AND +state = 'new'",
];

/// `enrol`: the counters (migration 0018) of `ENROL`'s rows, counted once for the write:
/// the enrolments after the largest id before it ($1) by campaign, then the first
/// deliveries ($1: how many) and the leads turned from `new` to `nurturing` ($1: how many).
const ENROL_COUNTS: [&str; 4] = [
    "INSERT INTO state_counts (part, state, campaign, n)
     SELECT 'enrolments', state, campaign, count(*) FROM enrolments WHERE id > $1 GROUP BY state, campaign
     ON CONFLICT DO UPDATE SET n = n + excluded.n",
    "INSERT INTO state_counts (part, state, campaign, n) VALUES ('deliveries', 'scheduled', '', $1)
     ON CONFLICT DO UPDATE SET n = n + excluded.n",
    "UPDATE state_counts SET n = n - $1 WHERE part = 'leads' AND state = 'new' AND campaign = ''",
    "INSERT INTO state_counts (part, state, campaign, n) VALUES ('leads', 'nurturing', '', $1)
     ON CONFLICT DO UPDATE SET n = n + excluded.n",
];

/// `enrol`, triggers on again: `enrolments_report_insert` for the write's leads: a lead is
/// recomputed when it has an enrolment in another campaign or events of the report's stages
/// from now ($1) on. Read in lead order from the staged batch (neighbouring look-ups, two a
/// lead). The trigger's third question (sent deliveries of the new enrolment) has no answer
/// here: the only deliveries of these enrolments are this write's first ones, scheduled. A
/// staged lead whose enrolment was already there (not written) may be queued too, which
/// only recomputes what is already right; one enrolled in two campaigns at once is queued
/// once.
const ENROL_REPORT: &str = "INSERT INTO report_recompute (lead_id)
     SELECT DISTINCT b.lead_id FROM temp.enrol_batch b
     WHERE EXISTS (SELECT 1 FROM enrolments o WHERE o.lead_id = b.lead_id AND o.campaign <> b.campaign)
        OR EXISTS (SELECT 1 FROM events v WHERE v.lead_id = b.lead_id
                   AND v.kind IN ('replied', 'rewarmed', 'won', 'out_of_scope', 'suppressed') AND v.at >= $1)";

/// `enrol`'s rows (`ENROL`) and their counters (`ENROL_COUNTS`), on a connection whose
/// triggers and foreign-key checks are off; the number of enrolments written.
async fn enrol_rows(
    conn: &mut sqlx::SqliteConnection,
    now: DateTime<Utc>,
    before: i64,
) -> Result<u64, StoreError> {
    let mut affected = [0; ENROL.len()];
    for (sql, n) in ENROL.into_iter().zip(&mut affected) {
        *n = sqlx::query(sql)
            .bind(Time(now))
            .bind(before)
            .execute(&mut *conn)
            .await?
            .rows_affected();
    }
    // ENROL's first statement inserts the enrolments, the second the first deliveries, the
    // last updates the leads.
    let [enrolled, first, _, leads] = affected;
    let by = [before, first as i64, leads as i64, leads as i64];
    for (sql, by) in ENROL_COUNTS.into_iter().zip(by) {
        sqlx::query(sql).bind(by).execute(&mut *conn).await?;
    }
    Ok(enrolled)
}

/// `enrol`: a lead suppressed, re-warmed … since it was read is left alone.
const ENROL_FRESH: &str = "DELETE FROM temp.enrol_batch
     WHERE NOT EXISTS (SELECT 1 FROM leads l WHERE l.id = enrol_batch.lead_id AND l.state = 'new')";

/// One statement: the lead's state and the suppression list are checked in the same write
/// as the claim, so a lead suppressed or re-warmed a moment ago, or whose address or domain
/// was listed a moment ago (even if the lead row was not updated), is never claimed.
///
/// Linear whatever the backlog: `CROSS JOIN` keeps deliveries the outer loop, read in due
/// order from the partial index `deliveries_pending` (migration 0011; `INDEXED BY`, since
/// with every row pending the planner's statistics favoured another index and a sort), and
/// each row's lead and suppressions are looked up by key; the scan stops after `$4` rows,
/// nothing sorts or filters every due row (`tests/it/scale.rs` checks the plan).
pub(crate) const CLAIM_DUE: &str = at_domain!(
    "UPDATE deliveries SET state = 'claimed', claimed_by = $1, lease_until = $2, attempts = attempts + 1, updated_at = $3
     WHERE id IN (
        SELECT d.id FROM deliveries d INDEXED BY deliveries_pending CROSS JOIN leads l ON l.id = d.lead_id
        WHERE d.state IN ('scheduled', 'retry_wait') AND d.due_at <= $3 AND +l.state = 'nurturing'
          AND NOT EXISTS (SELECT 1 FROM suppressions s WHERE s.address IN (l.email, ",
    "l.email",
    "))
        ORDER BY d.due_at LIMIT $4)
     RETURNING id, lead_id, enrolment_id, campaign, step, template, attempts, due_at"
);

/// `expire_leases`, in one transaction: rows whose send had started are written off (the
/// event first, then the state); rows never started go back to due, the attempt not
/// counted. Both read the `deliveries_lease` partial index.
pub(super) const EXPIRE_LEASES: [&str; 3] = [
    "INSERT INTO events (lead_id, at, kind, detail)
     SELECT lead_id, $1, 'written_off', json_object('campaign', campaign, 'step', step + 1, 'template', template, 'claimed_by', claimed_by,
            'reason', 'lease expired after the send started, before its outcome was recorded; not resent')
     FROM deliveries WHERE state = 'claimed' AND lease_until < $1 AND started_at IS NOT NULL",
    "UPDATE deliveries SET state = 'unknown', updated_at = $1 WHERE state = 'claimed' AND lease_until < $1 AND started_at IS NOT NULL",
    "UPDATE deliveries SET state = 'scheduled', attempts = attempts - 1, claimed_by = NULL, lease_until = NULL, updated_at = $1
     WHERE state = 'claimed' AND lease_until < $1 AND started_at IS NULL",
];

impl QueueStore for SqliteStore {
    /// Each page's first deliveries go into `deliveries_pending` (and, before migration 0025,
    /// `deliveries_due`) at random places (their due times), so each commit rewrites most of
    /// those indexes' leaf pages into the WAL: a 1M enrolment took ~39 s in pages of 5,000,
    /// ~32 s in pages of 20,000 (~50 MiB more held at the peak).
    const ENROL_PAGE: usize = 20_000;

    /// Enrolments and first deliveries are written in due order within one write, so a send
    /// pass (due order) reads and rewrites one stretch of their pages per write: at 1M due,
    /// writes of one page each (~70 stretches) wrote 5.1 WAL pages per email, writes of
    /// 150,000 (~7) 2.0, and the pass took 117–127 s instead of 128–134 s. The gathered
    /// enrolments cost ~90 MiB at the peak (a 1M enrolment: 580 MiB against 491, 256 of it
    /// the memory map).
    const ENROL_WRITE: usize = 150_000;

    /// One writer: the next write's leads are read while this one runs, no more.
    const ENROL_LANES: usize = 1;

    /// One writer: a second lane's record waits for the first one's anyway, and its waves
    /// (half the depth) only doubled the commits (10k: 1.50–1.71 s either way; 100k 18.8 s
    /// against 19.8 s with two).
    const WAVE_LANES: usize = 1;

    async fn enrol(
        &self,
        enrolments: &[NewEnrolment],
        now: DateTime<Utc>,
    ) -> Result<usize, StoreError> {
        // A write with no marks: the same transaction.
        Store::enrol_and_mark(self, enrolments, &[], now).await
    }

    async fn claim_due(
        &self,
        now: DateTime<Utc>,
        worker: &str,
        lease_until: DateTime<Utc>,
        limit: usize,
    ) -> Result<Vec<ClaimedDelivery>, StoreError> {
        let rows: Vec<ClaimRow> = sqlx::query_as(CLAIM_DUE)
            .bind(worker)
            .bind(Time(lease_until))
            .bind(Time(now))
            .bind(limit as i64)
            .fetch_all(&self.writer)
            .await?;
        Ok(rows.into_iter().map(ClaimedDelivery::from).collect())
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
        let mut tx = self.write().await?;
        record_tx(&mut tx, outcomes, worker, now).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn expire_leases(&self, now: DateTime<Utc>) -> Result<Expired, StoreError> {
        let mut tx = self.write().await?;
        let mut affected = [0; 3];
        for (sql, n) in EXPIRE_LEASES.into_iter().zip(&mut affected) {
            *n = sqlx::query(sql)
                .bind(Time(now))
                .execute(&mut *tx)
                .await?
                .rows_affected() as usize;
        }
        tx.commit().await?;
        Ok(Expired {
            written_off: affected[1],
            released: affected[2],
        })
    }

    async fn mark_started(
        &self,
        ids: &[i64],
        worker: &str,
        now: DateTime<Utc>,
    ) -> Result<Vec<i64>, StoreError> {
        self.record_and_start(&[], ids, worker, now, now).await
    }

    async fn record_and_start(
        &self,
        outcomes: &[RecordedOutcome],
        start: &[i64],
        worker: &str,
        now: DateTime<Utc>,
        started_at: DateTime<Utc>,
    ) -> Result<Vec<i64>, StoreError> {
        if outcomes.is_empty() && start.is_empty() {
            return Ok(Vec::new());
        }
        let mut tx = self.write().await?;
        record_tx(&mut tx, outcomes, worker, now).await?;
        let marked = if start.is_empty() {
            Vec::new()
        } else {
            sqlx::query_scalar(MARK_STARTED)
                .bind(json!(start))
                .bind(worker)
                .bind(Time(started_at))
                .fetch_all(&mut *tx)
                .await?
        };
        tx.commit().await?;
        Ok(marked)
    }

    async fn release_unstarted(
        &self,
        worker: &str,
        now: DateTime<Utc>,
    ) -> Result<usize, StoreError> {
        let mut tx = self.write().await?;
        let n = sqlx::query(sql::RELEASE_UNSTARTED)
            .bind(worker)
            .bind(Time(now))
            .execute(&mut *tx)
            .await?
            .rows_affected();
        tx.commit().await?;
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
        let mut tx = self.write().await?;
        for sql in RESUME {
            sqlx::query(sql)
                .bind(&batch)
                .bind(Time(now))
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn refresh_enrolment_statistics(&self) -> Result<(), StoreError> {
        Ok(())
    }
}

impl SqliteStore {
    /// [`QueueStore::enrol`]'s statements, inside the caller's write transaction `conn`; the
    /// number of enrolments written.
    pub(super) async fn enrol_in(
        &self,
        conn: &mut sqlx::SqliteConnection,
        enrolments: &[NewEnrolment],
        now: DateTime<Utc>,
    ) -> Result<u64, StoreError> {
        for sql in ENROL_STAGE {
            sqlx::query(sql).execute(&mut *conn).await?;
        }
        for chunk in enrolments.chunks(STAGE_ROWS) {
            let mut stage = sqlx::QueryBuilder::new(
                "INSERT OR IGNORE INTO temp.enrol_batch (lead_id, campaign, segment, due, template, detail) ",
            );
            stage.push_values(chunk, |mut row, e| {
                row.push_bind(e.lead_id)
                    .push_bind(&e.campaign)
                    .push_bind(&e.segment)
                    .push_bind(e.first_due.timestamp_millis())
                    .push_bind(&e.template)
                    .push_bind(enrolled_detail(e));
            });
            stage.build().execute(&mut *conn).await?;
        }
        // `ENROL_LISTED`'s two probes a lead are skipped while the suppression list is empty (a
        // first import: a 1M enrolment spent 1.1 s on them).
        let listed: Vec<i64> = if sqlx::query_scalar(sql::ANY_LISTED)
            .fetch_one(&mut *conn)
            .await?
        {
            sqlx::query_scalar(ENROL_LISTED)
                .fetch_all(&mut *conn)
                .await?
        } else {
            Vec::new()
        };
        if !listed.is_empty() {
            for sql in ENROL_SUPPRESSED {
                sqlx::query(sql)
                    .bind(json!(listed))
                    .bind(Time(now))
                    .execute(&mut *conn)
                    .await?;
            }
        }
        sqlx::query(ENROL_FRESH).execute(&mut *conn).await?;
        let before: i64 = sqlx::query_scalar("SELECT coalesce(max(id), 0) FROM enrolments")
            .fetch_one(&mut *conn)
            .await?;
        // The triggers and checks come back on whatever the statements did (see `bulk`).
        bulk::set_row_checks(conn, false, &self.row_checks_off).await?;
        let written = enrol_rows(conn, now, before).await;
        bulk::set_row_checks(conn, true, &self.row_checks_off).await?;
        let enrolled = written?;
        sqlx::query(ENROL_REPORT)
            .bind(Time(now))
            .execute(&mut *conn)
            .await?;
        Ok(enrolled)
    }
}

impl SqliteStore {
    /// The query plans (`EXPLAIN QUERY PLAN`) of the repairs a pass starts with — lease
    /// expiry, stalled enrolments, releasing a worker's claims — by name, for the test and
    /// the benchmark that show they read their indexes, not whole tables.
    pub async fn repair_plans(&self) -> Result<Vec<(&'static str, String)>, StoreError> {
        let now = Time(chrono::Utc::now());
        let statements = [
            ("lease expiry: written off (event)", EXPIRE_LEASES[0]),
            ("lease expiry: written off", EXPIRE_LEASES[1]),
            ("lease expiry: released", EXPIRE_LEASES[2]),
            ("release_unstarted", sql::RELEASE_UNSTARTED),
            ("stalled_enrolments", sql::STALLED_ENROLMENTS),
        ];
        let mut plans = Vec::new();
        for (name, statement) in statements {
            let explain = format!("EXPLAIN QUERY PLAN {statement}");
            let query = sqlx::query_as::<_, (i64, i64, i64, String)>(sqlx::AssertSqlSafe(explain));
            let query = match name {
                "release_unstarted" => query.bind("w").bind(now),
                "stalled_enrolments" => query.bind(1000_i64),
                _ => query.bind(now),
            };
            let rows = query.fetch_all(&self.pool).await?;
            let plan: Vec<String> = rows.into_iter().map(|r| r.3).collect();
            plans.push((name, plan.join("\n")));
        }
        Ok(plans)
    }
}
