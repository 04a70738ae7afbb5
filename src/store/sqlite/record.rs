//! Recording outcomes on SQLite: the statements of `record_outcomes` (each over the whole
//! batch, staged once in a temporary table of typed columns, each row found by primary key),
//! and the start of the next wave written in the same transaction.

use std::collections::HashMap;

use serde_json::{Value, json};

use super::*;

/// `record_outcomes`' batch, staged once per write: one typed row per outcome (`n` its place
/// in the batch), so each statement below reads columns by key instead of re-parsing a JSON
/// element per field (a wave's next-step insert spent ~9 µs a row in `->>`).
const RECORD_STAGE: [&str; 3] = [
    "CREATE TEMP TABLE IF NOT EXISTS record_batch (n INTEGER PRIMARY KEY, id INTEGER NOT NULL, lead_id INTEGER NOT NULL,
        enrolment_id INTEGER NOT NULL, campaign TEXT NOT NULL, kind TEXT NOT NULL, event TEXT NOT NULL, detail TEXT NOT NULL,
        message_id TEXT, provider_id TEXT, due INTEGER, error TEXT, suppress INTEGER NOT NULL,
        next_step INTEGER, next_due INTEGER, next_template TEXT)",
    "CREATE INDEX IF NOT EXISTS temp.record_batch_id ON record_batch (id)",
    "DELETE FROM temp.record_batch",
];

/// `record_outcomes`: one statement per effect, each over the staged batch (`temp.record_batch`)
/// at $1 for worker $2. Rows are found by key: the batch drives each join (`CROSS JOIN`), and
/// each update names its rows by `id IN (…)` and reads its values by the staged row's id. A
/// result that comes back after its lease expired (row already `unknown`) is still recorded.
const RECORD_OUTCOMES: [&str; 14] = [
        "INSERT INTO events (lead_id, at, kind, detail, delivery_id) SELECT j.lead_id, $1, j.event, j.detail, j.id FROM temp.record_batch j WHERE $2 = $2 ORDER BY j.n",
        "UPDATE deliveries SET state = 'sent', sent_at = $1,
               (message_id, provider_message_id) = (SELECT j.message_id, j.provider_id FROM temp.record_batch j WHERE j.id = deliveries.id),
               last_error = NULL, lease_until = NULL, updated_at = $1
         WHERE id IN (SELECT id FROM temp.record_batch WHERE kind = 'sent') AND +state IN ('claimed', 'unknown') AND +claimed_by = $2",
        "UPDATE deliveries SET state = 'scheduled', due_at = (SELECT j.due FROM temp.record_batch j WHERE j.id = deliveries.id),
               attempts = attempts - 1, claimed_by = NULL, lease_until = NULL, started_at = NULL, updated_at = $1
         WHERE id IN (SELECT id FROM temp.record_batch WHERE kind = 'deferred') AND +state = 'claimed' AND +claimed_by = $2",
        "UPDATE deliveries SET state = 'retry_wait', (due_at, last_error) = (SELECT j.due, j.error FROM temp.record_batch j WHERE j.id = deliveries.id),
               lease_until = NULL, started_at = NULL, updated_at = $1
         WHERE id IN (SELECT id FROM temp.record_batch WHERE kind = 'retry') AND +state = 'claimed' AND +claimed_by = $2",
        "UPDATE deliveries SET (state, last_error) = (SELECT j.kind, j.error FROM temp.record_batch j WHERE j.id = deliveries.id),
               lease_until = NULL, updated_at = $1
         WHERE id IN (SELECT id FROM temp.record_batch WHERE kind IN ('failed', 'unknown')) AND +state IN ('claimed', 'unknown') AND +claimed_by = $2",
        "INSERT INTO deliveries (lead_id, enrolment_id, campaign, step, template, state, due_at, updated_at, cycle)
         SELECT j.lead_id, j.enrolment_id, j.campaign, j.next_step, j.next_template, 'scheduled', j.next_due, $1,
                (SELECT e.cycle FROM enrolments e WHERE e.id = j.enrolment_id)
         FROM temp.record_batch j WHERE j.kind IN ('sent', 'tasked', 'failed', 'unknown') AND j.next_step IS NOT NULL AND $2 = $2 ORDER BY j.n
         ON CONFLICT (enrolment_id, cycle, step) DO NOTHING",
        // Last step done: the enrolment completes, the lead with it.
        "INSERT INTO events (lead_id, at, kind, detail)
         SELECT l.id, $1, 'completed', json_object('campaign', j.campaign, 'from', l.state, 'to', 'completed')
         FROM temp.record_batch j CROSS JOIN leads l ON l.id = j.lead_id
         WHERE j.kind IN ('sent', 'tasked', 'failed', 'unknown') AND j.next_step IS NULL AND NOT j.suppress AND l.state = 'nurturing' AND $2 = $2
         ORDER BY j.n",
        "UPDATE enrolments SET state = CASE WHEN EXISTS (SELECT 1 FROM temp.record_batch j WHERE j.enrolment_id = enrolments.id AND j.suppress)
                                       THEN 'stopped' ELSE 'completed' END, ended_at = $1
         WHERE id IN (SELECT enrolment_id FROM temp.record_batch WHERE kind IN ('sent', 'tasked', 'failed', 'unknown') AND next_step IS NULL)
           AND +state = 'active' AND $2 = $2",
        // A hard failure (e.g. 5xx on RCPT) suppresses the address: recorded as a state change.
        // … and puts it on the suppression list (the first entry for an address stays), and
        // nothing else of the lead's goes out: other campaigns stop, their steps are cancelled.
        "INSERT INTO events (lead_id, at, kind, detail)
         SELECT l.id, $1, 'suppressed', json_object('from', l.state, 'to', 'suppressed', 'reason', 'hard_bounce', 'error', j.error,
                'evidence', json_object('delivery_id', j.id, 'error', j.error), 'address', l.email)
         FROM temp.record_batch j CROSS JOIN leads l ON l.id = j.lead_id
         WHERE j.kind = 'failed' AND j.suppress AND l.state = 'nurturing' AND $2 = $2 ORDER BY j.n",
        "UPDATE leads SET state = CASE WHEN EXISTS (SELECT 1 FROM temp.record_batch j WHERE j.lead_id = leads.id AND j.suppress
                                                    AND j.kind IN ('sent', 'tasked', 'failed', 'unknown') AND j.next_step IS NULL)
                                   THEN 'suppressed' ELSE 'completed' END, updated_at = $1
         WHERE id IN (SELECT lead_id FROM temp.record_batch WHERE kind IN ('sent', 'tasked', 'failed', 'unknown') AND next_step IS NULL)
           AND +state = 'nurturing' AND $2 = $2",
        "INSERT INTO suppressions (address, reason, evidence, created_at)
         SELECT l.email, 'hard_bounce', json_object('delivery_id', j.id, 'error', j.error), $1
         FROM temp.record_batch j CROSS JOIN leads l ON l.id = j.lead_id
         WHERE j.kind = 'failed' AND j.suppress AND $2 = $2 ORDER BY j.n
         ON CONFLICT (address) DO NOTHING",
        concat!(
            "UPDATE deliveries SET state = 'cancelled', updated_at = $1
             WHERE +state IN ('scheduled', 'retry_wait', 'held') AND $2 = $2 AND ",
            of_leads!("SELECT lead_id FROM temp.record_batch WHERE kind = 'failed' AND suppress")
        ),
        "UPDATE enrolments SET state = 'stopped', ended_at = $1
         WHERE +state = 'active' AND $2 = $2
           AND lead_id IN (SELECT lead_id FROM temp.record_batch WHERE kind = 'failed' AND suppress)",
        // A call step: nothing was sent to the lead, its owner got a task.
        "UPDATE deliveries SET state = 'tasked', sent_at = $1, last_error = NULL, lease_until = NULL, updated_at = $1
         WHERE id IN (SELECT id FROM temp.record_batch WHERE kind = 'tasked') AND +state IN ('claimed', 'unknown') AND +claimed_by = $2",
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
    stage(conn, &applicable).await?;
    for (sql, _) in RECORD_OUTCOMES
        .into_iter()
        .zip(needed)
        .filter(|(_, needed)| *needed)
    {
        sqlx::query(sql)
            .bind(Time(now))
            .bind(worker)
            .execute(&mut *conn)
            .await?;
    }
    enqueue(conn, &tasks, now).await?;
    Ok(())
}

/// Writes `applicable` (each outcome as `outcome_json` describes it) into
/// `temp.record_batch`, in order, with bound values, many rows a statement.
async fn stage(conn: &mut sqlx::SqliteConnection, applicable: &[Value]) -> Result<(), StoreError> {
    for sql in RECORD_STAGE {
        sqlx::query(sql).execute(&mut *conn).await?;
    }
    for (c, chunk) in applicable.chunks(STAGE_ROWS).enumerate() {
        let mut stage = sqlx::QueryBuilder::new(
            "INSERT INTO temp.record_batch (n, id, lead_id, enrolment_id, campaign, kind, event, detail, message_id, provider_id,
             due, error, suppress, next_step, next_due, next_template) ",
        );
        stage.push_values(chunk.iter().enumerate(), |mut row, (i, v)| {
            let text = |key: &str| v[key].as_str().map(str::to_owned);
            let next = &v["next"];
            row.push_bind((c * STAGE_ROWS + i) as i64)
                .push_bind(v["id"].as_i64())
                .push_bind(v["lead_id"].as_i64())
                .push_bind(v["enrolment_id"].as_i64())
                .push_bind(text("campaign"))
                .push_bind(text("kind"))
                .push_bind(text("event"))
                .push_bind(text("detail"))
                .push_bind(text("message_id"))
                .push_bind(text("provider_id"))
                .push_bind(v["due"].as_i64())
                .push_bind(text("error"))
                .push_bind(v["suppress"].as_bool().unwrap_or(false))
                .push_bind(next["step"].as_i64())
                .push_bind(next["due"].as_i64())
                .push_bind(next["template"].as_str().map(str::to_owned));
        });
        stage.build().execute(&mut *conn).await?;
    }
    Ok(())
}
