//! Recording outcomes on SQLite: the statements of `record_outcomes` (each over the whole
//! batch, expanded by `json_each`: SQLite reads it in-process, each element once, and finds
//! each row by primary key), and the start of the next wave written in the same transaction.

use std::collections::HashMap;

use serde_json::{Value, json};

use super::*;

/// `record_outcomes`: one statement per effect, each over the whole batch ($1) at $2 for
/// worker $3. A result that comes back after its lease expired (row already `unknown`) is
/// still recorded.
const RECORD_OUTCOMES: [&str; 14] = [
        "INSERT INTO events (lead_id, at, kind, detail) SELECT j.value->>'lead_id', $2, j.value->>'event', j.value->>'detail' FROM json_each($1) j WHERE $3 = $3",
        "UPDATE deliveries SET state = 'sent', sent_at = $2, message_id = j.value->>'message_id', provider_message_id = j.value->>'provider_id', last_error = NULL, lease_until = NULL, updated_at = $2
         FROM json_each($1) j WHERE j.value->>'kind' = 'sent' AND deliveries.id = j.value->>'id'
           AND +deliveries.state IN ('claimed', 'unknown') AND +deliveries.claimed_by = $3",
        "UPDATE deliveries SET state = 'scheduled', due_at = j.value->>'due', attempts = attempts - 1, claimed_by = NULL, lease_until = NULL, started_at = NULL, updated_at = $2
         FROM json_each($1) j WHERE j.value->>'kind' = 'deferred' AND deliveries.id = j.value->>'id'
           AND +deliveries.state = 'claimed' AND +deliveries.claimed_by = $3",
        "UPDATE deliveries SET state = 'retry_wait', due_at = j.value->>'due', last_error = j.value->>'error', lease_until = NULL, started_at = NULL, updated_at = $2
         FROM json_each($1) j WHERE j.value->>'kind' = 'retry' AND deliveries.id = j.value->>'id'
           AND +deliveries.state = 'claimed' AND +deliveries.claimed_by = $3",
        "UPDATE deliveries SET state = j.value->>'kind', last_error = j.value->>'error', lease_until = NULL, updated_at = $2
         FROM json_each($1) j WHERE j.value->>'kind' IN ('failed', 'unknown') AND deliveries.id = j.value->>'id'
           AND +deliveries.state IN ('claimed', 'unknown') AND +deliveries.claimed_by = $3",
        "INSERT INTO deliveries (lead_id, enrolment_id, campaign, step, template, state, due_at, updated_at, cycle)
         SELECT j.value->>'lead_id', j.value->>'enrolment_id', j.value->>'campaign', j.value->>'$.next.step', j.value->>'$.next.template', 'scheduled', j.value->>'$.next.due', $2,
                (SELECT e.cycle FROM enrolments e WHERE e.id = j.value->>'enrolment_id')
         FROM json_each($1) j WHERE j.value->>'kind' IN ('sent', 'tasked', 'failed', 'unknown') AND j.value->>'next' IS NOT NULL AND $3 = $3
         ON CONFLICT (lead_id, campaign, cycle, step) DO NOTHING",
        // Last step done: the enrolment completes, the lead with it.
        "INSERT INTO events (lead_id, at, kind, detail)
         SELECT l.id, $2, 'completed', json_object('campaign', j.value->>'campaign', 'from', l.state, 'to', 'completed')
         FROM json_each($1) j CROSS JOIN leads l ON l.id = j.value->>'lead_id'
         WHERE j.value->>'kind' IN ('sent', 'tasked', 'failed', 'unknown') AND j.value->>'next' IS NULL AND NOT coalesce(j.value->>'suppress', 0) AND l.state = 'nurturing' AND $3 = $3",
        "UPDATE enrolments SET state = CASE WHEN coalesce(j.value->>'suppress', 0) THEN 'stopped' ELSE 'completed' END, ended_at = $2
         FROM json_each($1) j WHERE j.value->>'kind' IN ('sent', 'tasked', 'failed', 'unknown') AND j.value->>'next' IS NULL
           AND enrolments.id = j.value->>'enrolment_id' AND +enrolments.state = 'active' AND $3 = $3",
        // A hard failure (e.g. 5xx on RCPT) suppresses the address: recorded as a state change.
        // … and puts it on the suppression list (the first entry for an address stays), and
        // nothing else of the lead's goes out: other campaigns stop, their steps are cancelled.
        "INSERT INTO events (lead_id, at, kind, detail)
         SELECT l.id, $2, 'suppressed', json_object('from', l.state, 'to', 'suppressed', 'reason', 'hard_bounce', 'error', j.value->>'error',
                'evidence', json_object('delivery_id', j.value->>'id', 'error', j.value->>'error'), 'address', l.email)
         FROM json_each($1) j CROSS JOIN leads l ON l.id = j.value->>'lead_id'
         WHERE j.value->>'kind' = 'failed' AND coalesce(j.value->>'suppress', 0) AND l.state = 'nurturing' AND $3 = $3",
        "UPDATE leads SET state = CASE WHEN coalesce(j.value->>'suppress', 0) THEN 'suppressed' ELSE 'completed' END, updated_at = $2
         FROM json_each($1) j WHERE j.value->>'kind' IN ('sent', 'tasked', 'failed', 'unknown') AND j.value->>'next' IS NULL
           AND leads.id = j.value->>'lead_id' AND +leads.state = 'nurturing' AND $3 = $3",
        "INSERT INTO suppressions (address, reason, evidence, created_at)
         SELECT l.email, 'hard_bounce', json_object('delivery_id', j.value->>'id', 'error', j.value->>'error'), $2
         FROM json_each($1) j CROSS JOIN leads l ON l.id = j.value->>'lead_id'
         WHERE j.value->>'kind' = 'failed' AND coalesce(j.value->>'suppress', 0) AND $3 = $3
         ON CONFLICT (address) DO NOTHING",
        "UPDATE deliveries SET state = 'cancelled', updated_at = $2
         WHERE +state IN ('scheduled', 'retry_wait', 'held') AND $3 = $3
           AND lead_id IN (SELECT j.value->>'lead_id' FROM json_each($1) j WHERE j.value->>'kind' = 'failed' AND coalesce(j.value->>'suppress', 0))",
        "UPDATE enrolments SET state = 'stopped', ended_at = $2
         WHERE +state = 'active' AND $3 = $3
           AND lead_id IN (SELECT j.value->>'lead_id' FROM json_each($1) j WHERE j.value->>'kind' = 'failed' AND coalesce(j.value->>'suppress', 0))",
        // A call step: nothing was sent to the lead, its owner got a task.
        "UPDATE deliveries SET state = 'tasked', sent_at = $2, last_error = NULL, lease_until = NULL, updated_at = $2
         FROM json_each($1) j WHERE j.value->>'kind' = 'tasked' AND deliveries.id = j.value->>'id'
           AND +deliveries.state IN ('claimed', 'unknown') AND +deliveries.claimed_by = $3",
];

/// `mark_started`: ids ($1, a JSON array) claimed by $2 and not started yet.
pub(super) const MARK_STARTED: &str = "UPDATE deliveries SET started_at = $3
     WHERE id IN (SELECT value FROM json_each($1)) AND state = 'claimed' AND claimed_by = $2 AND (started_at IS NULL OR started_at = $3)
     RETURNING id";

/// The body of `record_outcomes` inside the caller's write transaction: only outcomes that
/// still apply to their row are recorded (events included), and only the statements their
/// kinds can touch run.
pub(super) async fn record_tx(
    conn: &mut sqlx::SqliteConnection,
    outcomes: &[RecordedOutcome],
    worker: &str,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    if outcomes.is_empty() {
        return Ok(());
    }
    let ids = json!(outcomes.iter().map(|o| o.delivery.id).collect::<Vec<_>>());
    let states: HashMap<i64, String> = sqlx::query_as::<_, (i64, String)>(
        "SELECT id, state FROM deliveries WHERE id IN (SELECT value FROM json_each($1)) AND claimed_by = $2",
    )
    .bind(ids)
    .bind(worker)
    .fetch_all(&mut *conn)
    .await?
    .into_iter()
    .collect();
    let applicable = applicable_outcomes(outcomes, &states);
    if applicable.is_empty() {
        return Ok(());
    }
    let tasks = call_task_notifications(outcomes, &states);
    let needed = record_outcomes_needed(&applicable);
    let batch = Value::Array(applicable);
    for (sql, _) in RECORD_OUTCOMES
        .into_iter()
        .zip(needed)
        .filter(|(_, needed)| *needed)
    {
        sqlx::query(sql)
            .bind(&batch)
            .bind(Time(now))
            .bind(worker)
            .execute(&mut *conn)
            .await?;
    }
    enqueue(conn, &tasks, now).await?;
    Ok(())
}
