//! The notification outbox on SQLite: claims are one conditional `UPDATE … RETURNING`
//! under the single writer; results are one `json_each` batch.

use super::*;

/// Claims up to $4 notifications due at $1 (or whose lease expired) for worker $2 until $3.
const CLAIM_NOTIFICATIONS: &str = "UPDATE notifications SET state = 'claimed', claimed_by = $2, lease_until = $3, attempts = attempts + 1
             WHERE id IN (SELECT id FROM notifications
                          WHERE (state = 'pending' AND next_at <= $1) OR (state = 'claimed' AND lease_until <= $1)
                          ORDER BY next_at, id LIMIT $4)
             RETURNING id, idempotency_key, kind, lead_id, payload, state, attempts, next_at, last_error, created_at, sent_at";

/// Records a batch of results ($1) of worker $2 at $3.
const RECORD_NOTIFICATIONS: &str = "UPDATE notifications SET state = j.value->>'state', last_error = j.value->>'error',
                 next_at = CASE WHEN j.value->>'state' = 'pending' THEN j.value->>'retry_at' ELSE next_at END,
                 sent_at = CASE WHEN j.value->>'state' = 'sent' THEN $3 ELSE sent_at END,
                 claimed_by = NULL, lease_until = NULL
             FROM json_each($1) j
             WHERE notifications.id = j.value->>'id' AND notifications.state = 'claimed' AND notifications.claimed_by = $2";

impl OutboxStore for SqliteStore {
    common_outbox_methods!();
}

/// Puts notifications in the outbox inside the caller's transaction; returns how many were new.
pub(super) async fn enqueue(
    conn: &mut sqlx::SqliteConnection,
    notifications: &[NewNotification],
    now: DateTime<Utc>,
) -> Result<usize, StoreError> {
    if notifications.is_empty() {
        return Ok(0);
    }
    let n = sqlx::query(
        "INSERT INTO notifications (idempotency_key, kind, lead_id, payload, state, attempts, next_at, created_at)
         SELECT j.value->>'key', j.value->>'kind', j.value->>'lead_id', json(j.value->'payload'), 'pending', 0, j.value->>'at', j.value->>'at'
         FROM json_each($1) j WHERE true
         ON CONFLICT (idempotency_key) DO NOTHING",
    )
    .bind(notifications_json(notifications, now))
    .execute(&mut *conn)
    .await?
    .rows_affected();
    Ok(n as usize)
}
