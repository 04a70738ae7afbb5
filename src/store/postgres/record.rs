//! Recording outcomes on PostgreSQL, from arrays: every statement reads the batch as typed
//! arrays expanded once by `UNNEST` (joined by primary key), never a JSON document re-read per
//! row (joined to `jsonb_array_elements`, the planner's nested loop re-read every element for
//! every row: 250 ms for one 500-row update). A wave that only sent, each with a next step
//! (the hot path of a send pass), is one statement with the next wave's start.
//!
//! Rows are found by primary key, never by their state: `claimed` rows exist only during a
//! pass, so the statistics count none, and with a plain `state IN ('claimed', …)` the planner
//! read every claimed row (from `deliveries_due`, or a sequential scan) and looped over the
//! whole wave for each: 93 ms of a 98 ms wave at 10k (auto_explain), the pass's 45 ms per
//! wave once ascribed to TLS. So a condition on `state` is written `(state = …) IS TRUE`,
//! which no index serves, and the rows are also named by `id = ANY($1)` (the wave's ids), so
//! whatever the plan only the wave's rows reach the join. The hot `sent` update joins nothing:
//! each row takes its Message-ID from the arrays by its id's position (a join planned for one
//! row re-read the whole wave for each of its 128 rows: 20 ms of a 30 ms wave).

use serde_json::Value;

use super::*;

/// `mark_started`: ids ($1) claimed by $2 and not started yet (or started at this very $3).
pub(super) const MARK_STARTED: &str = "UPDATE deliveries SET started_at = $3
     WHERE id = ANY($1) AND (state = 'claimed') IS TRUE AND claimed_by = $2 AND (started_at IS NULL OR started_at = $3)
     RETURNING id";

/// A wave whose every outcome is `sent` with a next step (the hot path of a send pass),
/// recorded — and the next wave marked started — in one statement, from arrays (`UNNEST`, no
/// JSON): the update decides which outcomes still apply (claimed by $3, `claimed` or
/// `unknown`, as `outcome_applies` says) and only those get their event and next step.
pub(super) const RECORD_SENT_WAVE: &str = "WITH u AS (
        SELECT * FROM UNNEST($1::bigint[], $4::text[], $5::text[], $6::bigint[], $7::bigint[], $8::text[], $9::bigint[],
                             $10::text[], $11::bigint[], $12::bigint[], $13::bigint[], $14::text[])
            WITH ORDINALITY AS u(id, message_id, provider_id, lead_id, enrolment_id, campaign, step, template, attempt,
                                 next_step, next_due, next_template, n)),
     sent AS (
        UPDATE deliveries SET state = 'sent', sent_at = $2,
               message_id = ($4::text[])[array_position($1::bigint[], deliveries.id)],
               provider_message_id = ($5::text[])[array_position($1::bigint[], deliveries.id)],
               last_error = NULL, lease_until = NULL, updated_at = $2
        WHERE deliveries.id = ANY($1::bigint[]) AND (deliveries.state IN ('claimed', 'unknown')) IS TRUE AND deliveries.claimed_by = $3
        RETURNING deliveries.id),
     events AS (
        INSERT INTO events (lead_id, at, kind, detail, delivery_id)
        SELECT u.lead_id, $2, 'sent',
               jsonb_build_object('campaign', u.campaign, 'step', u.step + 1, 'template', u.template, 'message_id', u.message_id,
                                  'attempt', u.attempt)
               || CASE WHEN u.provider_id IS NULL THEN '{}'::jsonb ELSE jsonb_build_object('provider_message_id', u.provider_id) END,
               u.id
        FROM u JOIN sent ON sent.id = u.id ORDER BY u.n),
     next AS (
        INSERT INTO deliveries (lead_id, enrolment_id, campaign, step, template, state, due_at, updated_at, cycle)
        SELECT u.lead_id, u.enrolment_id, u.campaign, u.next_step, u.next_template, 'scheduled', rewarm_ms(u.next_due), $2,
               (SELECT e.cycle FROM enrolments e WHERE e.id = u.enrolment_id)
        FROM u JOIN sent ON sent.id = u.id ORDER BY u.n
        ON CONFLICT (enrolment_id, cycle, step) DO NOTHING),
     started AS (
        UPDATE deliveries SET started_at = $16
        WHERE id = ANY($15::bigint[]) AND (state = 'claimed') IS TRUE AND claimed_by = $3 AND (started_at IS NULL OR started_at = $16)
        RETURNING id)
     SELECT id FROM started";

/// `RECORD_SENT_WAVE`'s arrays, one element per outcome.
#[derive(Default)]
pub(super) struct SentWave {
    ids: Vec<i64>,
    message_ids: Vec<String>,
    provider_ids: Vec<Option<String>>,
    lead_ids: Vec<i64>,
    enrolment_ids: Vec<i64>,
    campaigns: Vec<String>,
    steps: Vec<i64>,
    templates: Vec<String>,
    attempts: Vec<i64>,
    next_steps: Vec<i64>,
    next_dues: Vec<i64>,
    next_templates: Vec<String>,
}

impl SentWave {
    /// The arrays, if every outcome is `sent` with a next step (else None: the general path).
    pub(super) fn of(outcomes: &[RecordedOutcome]) -> Option<SentWave> {
        let mut w = SentWave::default();
        for o in outcomes {
            let Outcome::Sent {
                message_id,
                provider_id,
                next: Some(next),
            } = &o.outcome
            else {
                return None;
            };
            let d = &o.delivery;
            w.ids.push(d.id);
            w.message_ids.push(message_id.clone());
            w.provider_ids.push(provider_id.clone());
            w.lead_ids.push(d.lead_id);
            w.enrolment_ids.push(d.enrolment_id);
            w.campaigns.push(d.campaign.clone());
            w.steps.push(i64::from(d.step));
            w.templates.push(d.template.clone());
            w.attempts.push(i64::from(d.attempts));
            w.next_steps.push(i64::from(next.step));
            w.next_dues.push(next.due_at.timestamp_millis());
            w.next_templates.push(next.template.clone());
        }
        Some(w)
    }

    /// Records the wave and marks `start` started at `started_at`; returns the ids marked.
    pub(super) async fn run(
        &self,
        pool: &sqlx::PgPool,
        start: &[i64],
        worker: &str,
        now: DateTime<Utc>,
        started_at: DateTime<Utc>,
    ) -> Result<Vec<i64>, StoreError> {
        Ok(sqlx::query_scalar(RECORD_SENT_WAVE)
            .bind(&self.ids)
            .bind(Time(now))
            .bind(worker)
            .bind(&self.message_ids)
            .bind(&self.provider_ids)
            .bind(&self.lead_ids)
            .bind(&self.enrolment_ids)
            .bind(&self.campaigns)
            .bind(&self.steps)
            .bind(&self.templates)
            .bind(&self.attempts)
            .bind(&self.next_steps)
            .bind(&self.next_dues)
            .bind(&self.next_templates)
            .bind(start)
            .bind(Time(started_at))
            .fetch_all(pool)
            .await?)
    }
}

/// The batch of `record_outcomes` as rows `j`: $1 and $3…$16 are [`OutcomeArrays`]' arrays
/// ($2 is the moment; the worker, when a statement needs it, is $17).
macro_rules! batch {
    () => {
        "UNNEST($1::bigint[], $3::bigint[], $4::bigint[], $5::text[], $6::text[], $7::text[], $8::text[], $9::text[],
                $10::text[], $11::bigint[], $12::text[], $13::bool[], $14::bigint[], $15::bigint[], $16::text[])
            WITH ORDINALITY AS j(id, lead_id, enrolment_id, campaign, kind, event, detail, message_id, provider_id, due,
                                 error, suppress, next_step, next_due, next_template, n)"
    };
}

/// `record_outcomes`: one statement per effect, each over the whole batch at $2; those that
/// look at the worker take it as $17. A result that comes back after its lease expired (row
/// already `unknown`) is still recorded. The same 14 effects, in the same order, as SQLite's
/// (`record_outcomes_needed` says which can touch a row of the batch).
const RECORD_OUTCOMES: [(&str, bool); 14] = [
    (
        concat!(
            "INSERT INTO events (lead_id, at, kind, detail, delivery_id) SELECT j.lead_id, $2, j.event, j.detail::jsonb, j.id FROM ",
            batch!(),
            " ORDER BY j.n"
        ),
        false,
    ),
    (
        concat!(
            "UPDATE deliveries SET state = 'sent', sent_at = $2, message_id = j.message_id, provider_message_id = j.provider_id,
                    last_error = NULL, lease_until = NULL, updated_at = $2 FROM ",
            batch!(),
            " WHERE j.kind = 'sent' AND deliveries.id = j.id AND deliveries.id = ANY($1::bigint[]) AND (deliveries.state IN ('claimed', 'unknown')) IS TRUE AND deliveries.claimed_by = $17"
        ),
        true,
    ),
    (
        concat!(
            "UPDATE deliveries SET state = 'scheduled', due_at = rewarm_ms(j.due), attempts = deliveries.attempts - 1, claimed_by = NULL,
                    lease_until = NULL, started_at = NULL, updated_at = $2 FROM ",
            batch!(),
            " WHERE j.kind = 'deferred' AND deliveries.id = j.id AND deliveries.id = ANY($1::bigint[]) AND (deliveries.state = 'claimed') IS TRUE AND deliveries.claimed_by = $17"
        ),
        true,
    ),
    (
        concat!(
            "UPDATE deliveries SET state = 'retry_wait', due_at = rewarm_ms(j.due), last_error = j.error, lease_until = NULL,
                    started_at = NULL, updated_at = $2 FROM ",
            batch!(),
            " WHERE j.kind = 'retry' AND deliveries.id = j.id AND deliveries.id = ANY($1::bigint[]) AND (deliveries.state = 'claimed') IS TRUE AND deliveries.claimed_by = $17"
        ),
        true,
    ),
    (
        concat!(
            "UPDATE deliveries SET state = j.kind, last_error = j.error, lease_until = NULL, updated_at = $2 FROM ",
            batch!(),
            " WHERE j.kind IN ('failed', 'unknown') AND deliveries.id = j.id AND deliveries.id = ANY($1::bigint[]) AND (deliveries.state IN ('claimed', 'unknown')) IS TRUE
                AND deliveries.claimed_by = $17"
        ),
        true,
    ),
    (
        concat!(
            "INSERT INTO deliveries (lead_id, enrolment_id, campaign, step, template, state, due_at, updated_at, cycle)
             SELECT j.lead_id, j.enrolment_id, j.campaign, j.next_step, j.next_template, 'scheduled', rewarm_ms(j.next_due), $2,
                    (SELECT e.cycle FROM enrolments e WHERE e.id = j.enrolment_id)
             FROM ",
            batch!(),
            " WHERE j.kind IN ('sent', 'tasked', 'failed', 'unknown') AND j.next_step IS NOT NULL ORDER BY j.n
             ON CONFLICT (enrolment_id, cycle, step) DO NOTHING"
        ),
        false,
    ),
    // Last step done: the enrolment completes, the lead with it.
    (
        concat!(
            "INSERT INTO events (lead_id, at, kind, detail)
             SELECT l.id, $2, 'completed', jsonb_build_object('campaign', j.campaign, 'from', l.state, 'to', 'completed') FROM ",
            batch!(),
            " JOIN leads l ON l.id = j.lead_id
             WHERE j.kind IN ('sent', 'tasked', 'failed', 'unknown') AND j.next_step IS NULL AND NOT j.suppress AND l.state = 'nurturing'
             ORDER BY j.n"
        ),
        false,
    ),
    (
        concat!(
            "UPDATE enrolments SET state = CASE WHEN j.suppress THEN 'stopped' ELSE 'completed' END, ended_at = $2 FROM ",
            batch!(),
            " WHERE j.kind IN ('sent', 'tasked', 'failed', 'unknown') AND j.next_step IS NULL
                AND enrolments.id = j.enrolment_id AND enrolments.state = 'active'"
        ),
        false,
    ),
    // A hard failure (e.g. 5xx on RCPT) suppresses the address: recorded as a state change.
    // … and puts it on the suppression list (the first entry for an address stays), and
    // nothing else of the lead's goes out: other campaigns stop, their steps are cancelled.
    (
        concat!(
            "INSERT INTO events (lead_id, at, kind, detail)
             SELECT l.id, $2, 'suppressed', jsonb_build_object('from', l.state, 'to', 'suppressed', 'reason', 'hard_bounce', 'error', j.error,
                    'evidence', jsonb_build_object('delivery_id', j.id, 'error', j.error), 'address', l.email) FROM ",
            batch!(),
            " JOIN leads l ON l.id = j.lead_id WHERE j.kind = 'failed' AND j.suppress AND l.state = 'nurturing' ORDER BY j.n"
        ),
        false,
    ),
    (
        concat!(
            "UPDATE leads SET state = CASE WHEN j.suppress THEN 'suppressed' ELSE 'completed' END, updated_at = $2 FROM ",
            batch!(),
            " WHERE j.kind IN ('sent', 'tasked', 'failed', 'unknown') AND j.next_step IS NULL
                AND leads.id = j.lead_id AND leads.state = 'nurturing'"
        ),
        false,
    ),
    (
        concat!(
            "INSERT INTO suppressions (address, reason, evidence, created_at)
             SELECT l.email, 'hard_bounce', jsonb_build_object('delivery_id', j.id, 'error', j.error), $2 FROM ",
            batch!(),
            " JOIN leads l ON l.id = j.lead_id WHERE j.kind = 'failed' AND j.suppress ORDER BY j.n
             ON CONFLICT (address) DO NOTHING"
        ),
        false,
    ),
    (
        concat!(
            "UPDATE deliveries SET state = 'cancelled', updated_at = $2
             WHERE state IN ('scheduled', 'retry_wait', 'held')
               AND enrolment_id IN (SELECT e.id FROM enrolments e WHERE e.lead_id IN (SELECT j.lead_id FROM ",
            batch!(),
            " WHERE j.kind = 'failed' AND j.suppress))"
        ),
        false,
    ),
    (
        concat!(
            "UPDATE enrolments SET state = 'stopped', ended_at = $2
             WHERE state = 'active' AND lead_id IN (SELECT j.lead_id FROM ",
            batch!(),
            " WHERE j.kind = 'failed' AND j.suppress)"
        ),
        false,
    ),
    // A call step: nothing was sent to the lead, its owner got a task.
    (
        concat!(
            "UPDATE deliveries SET state = 'tasked', sent_at = $2, last_error = NULL, lease_until = NULL, updated_at = $2 FROM ",
            batch!(),
            " WHERE j.kind = 'tasked' AND deliveries.id = j.id AND deliveries.id = ANY($1::bigint[]) AND (deliveries.state IN ('claimed', 'unknown')) IS TRUE AND deliveries.claimed_by = $17"
        ),
        true,
    ),
];

/// The outcomes that still apply, as the arrays of `batch!` (one element per outcome, in
/// order), read off their `outcome_json` — the one description of what each kind records.
#[derive(Default)]
struct OutcomeArrays {
    id: Vec<i64>,
    lead_id: Vec<i64>,
    enrolment_id: Vec<i64>,
    campaign: Vec<String>,
    kind: Vec<String>,
    event: Vec<String>,
    detail: Vec<String>,
    message_id: Vec<Option<String>>,
    provider_id: Vec<Option<String>>,
    due: Vec<Option<i64>>,
    error: Vec<Option<String>>,
    suppress: Vec<bool>,
    next_step: Vec<Option<i64>>,
    next_due: Vec<Option<i64>>,
    next_template: Vec<Option<String>>,
}

impl OutcomeArrays {
    fn of(applicable: &[Value]) -> OutcomeArrays {
        let text = |v: &Value| v.as_str().map(str::to_string);
        let mut a = OutcomeArrays::default();
        for v in applicable {
            a.id.push(v["id"].as_i64().unwrap_or_default());
            a.lead_id.push(v["lead_id"].as_i64().unwrap_or_default());
            a.enrolment_id
                .push(v["enrolment_id"].as_i64().unwrap_or_default());
            a.campaign.push(text(&v["campaign"]).unwrap_or_default());
            a.kind.push(text(&v["kind"]).unwrap_or_default());
            a.event.push(text(&v["event"]).unwrap_or_default());
            a.detail
                .push(text(&v["detail"]).unwrap_or_else(|| "{}".into()));
            a.message_id.push(text(&v["message_id"]));
            a.provider_id.push(text(&v["provider_id"]));
            a.due.push(v["due"].as_i64());
            a.error.push(text(&v["error"]));
            a.suppress.push(v["suppress"].as_bool().unwrap_or(false));
            let next = &v["next"];
            a.next_step.push(next["step"].as_i64());
            a.next_due.push(next["due"].as_i64());
            a.next_template.push(text(&next["template"]));
        }
        a
    }
}

/// The statements of `record_outcomes` for the outcomes that still apply (`applicable`, as
/// `applicable_outcomes`), inside the caller's transaction, then the call tasks'
/// notifications.
pub(super) async fn record_applicable(
    tx: &mut sqlx::PgConnection,
    applicable: &[Value],
    tasks: &[NewNotification],
    worker: &str,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    let needed = record_outcomes_needed(applicable);
    let a = OutcomeArrays::of(applicable);
    for (i, (sql, uses_worker)) in RECORD_OUTCOMES.into_iter().enumerate() {
        if !needed[i] {
            continue;
        }
        let query = sqlx::query(sql)
            .bind(&a.id)
            .bind(Time(now))
            .bind(&a.lead_id)
            .bind(&a.enrolment_id)
            .bind(&a.campaign)
            .bind(&a.kind)
            .bind(&a.event)
            .bind(&a.detail)
            .bind(&a.message_id)
            .bind(&a.provider_id)
            .bind(&a.due)
            .bind(&a.error)
            .bind(&a.suppress)
            .bind(&a.next_step)
            .bind(&a.next_due)
            .bind(&a.next_template);
        let query = if uses_worker {
            query.bind(worker)
        } else {
            query
        };
        query.execute(&mut *tx).await?;
    }
    enqueue(tx, tasks, now).await?;
    Ok(())
}
