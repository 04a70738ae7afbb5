//! The notification outbox on PostgreSQL: claims skip rows another daemon is claiming
//! (`FOR UPDATE SKIP LOCKED`); results are one `jsonb_array_elements` batch.

use super::*;

/// Claims up to $4 notifications due at $1 (or whose lease expired) for worker $2 until $3.
const CLAIM_NOTIFICATIONS: &str = "UPDATE notifications SET state = 'claimed', claimed_by = $2, lease_until = $3, attempts = attempts + 1
             WHERE id IN (SELECT id FROM notifications
                          WHERE (state = 'pending' AND next_at <= $1) OR (state = 'claimed' AND lease_until <= $1)
                          ORDER BY next_at, id LIMIT $4 FOR UPDATE SKIP LOCKED)
             RETURNING id, idempotency_key, kind, lead_id, payload, state, attempts, next_at, last_error, created_at, sent_at";

/// Records a batch of results ($1) of worker $2 at $3.
const RECORD_NOTIFICATIONS: &str = "UPDATE notifications SET state = v->>'state', last_error = v->>'error',
                 next_at = CASE WHEN v->>'state' = 'pending' THEN rewarm_ms((v->>'retry_at')::bigint) ELSE next_at END,
                 sent_at = CASE WHEN v->>'state' = 'sent' THEN $3 ELSE sent_at END,
                 claimed_by = NULL, lease_until = NULL
             FROM jsonb_array_elements($1) j(v)
             WHERE notifications.id = (v->>'id')::bigint AND notifications.state = 'claimed' AND notifications.claimed_by = $2";

impl OutboxStore for PgStore {
    common_outbox_methods!();
}

/// Puts notifications in the outbox inside the caller's transaction; returns how many were new.
pub(super) async fn enqueue(
    conn: &mut sqlx::PgConnection,
    notifications: &[NewNotification],
    now: DateTime<Utc>,
) -> Result<usize, StoreError> {
    if notifications.is_empty() {
        return Ok(0);
    }
    let n = sqlx::query(
        "INSERT INTO notifications (idempotency_key, kind, lead_id, payload, state, attempts, next_at, created_at)
         SELECT v->>'key', v->>'kind', (v->>'lead_id')::bigint, v->'payload', 'pending', 0, rewarm_ms((v->>'at')::bigint), rewarm_ms((v->>'at')::bigint)
         FROM jsonb_array_elements($1) WITH ORDINALITY AS j(v, n) ORDER BY n
         ON CONFLICT (idempotency_key) DO NOTHING",
    )
    .bind(notifications_json(notifications, now))
    .execute(&mut *conn)
    .await?
    .rows_affected();
    Ok(n as usize)
}
