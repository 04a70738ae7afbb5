//! The notification outbox on SQLite: claims are one conditional `UPDATE … RETURNING`
//! under the single writer; results are one `json_each` batch.

use super::*;

/// Claims notifications (see `claim_notifications!`).
const CLAIM_NOTIFICATIONS: &str = claim_notifications!("");

/// Records a batch of results ($1) of worker $2 at $3.
const RECORD_NOTIFICATIONS: &str = "UPDATE notifications SET state = j.value->>'state', last_error = j.value->>'error',
                 next_at = CASE WHEN j.value->>'state' = 'pending' THEN j.value->>'retry_at' ELSE next_at END,
                 sent_at = CASE WHEN j.value->>'state' = 'sent' THEN $3 ELSE sent_at END,
                 claimed_by = NULL, lease_until = NULL
             FROM json_each($1) j
             WHERE notifications.id = j.value->>'id' AND notifications.state = 'claimed' AND notifications.claimed_by = $2";

/// Puts a batch of new notifications ($1) in the outbox; a known idempotency key is skipped.
pub(super) const ENQUEUE: &str = "INSERT INTO notifications (idempotency_key, kind, lead_id, payload, state, attempts, next_at, created_at)
         SELECT j.value->>'key', j.value->>'kind', j.value->>'lead_id', json(j.value->'payload'), 'pending', 0, j.value->>'at', j.value->>'at'
         FROM json_each($1) j WHERE true
         ON CONFLICT (idempotency_key) DO NOTHING";

impl OutboxStore for SqliteStore {
    common_outbox_methods!();
}
