//! The notification outbox on PostgreSQL: claims skip rows another daemon is claiming
//! (`FOR UPDATE SKIP LOCKED`); results are one `jsonb_array_elements` batch.

use super::*;

/// Claims notifications (see `claim_notifications!`).
const CLAIM_NOTIFICATIONS: &str = claim_notifications!(" FOR UPDATE SKIP LOCKED");

/// Records a batch of results ($1) of worker $2 at $3.
const RECORD_NOTIFICATIONS: &str = "UPDATE notifications SET state = v->>'state', last_error = v->>'error',
                 next_at = CASE WHEN v->>'state' = 'pending' THEN rewarm_ms((v->>'retry_at')::bigint) ELSE next_at END,
                 sent_at = CASE WHEN v->>'state' = 'sent' THEN $3 ELSE sent_at END,
                 claimed_by = NULL, lease_until = NULL
             FROM jsonb_array_elements($1) j(v)
             WHERE notifications.id = (v->>'id')::bigint AND notifications.state = 'claimed' AND notifications.claimed_by = $2";

/// Puts a batch of new notifications ($1) in the outbox; a known idempotency key is skipped.
pub(super) const ENQUEUE: &str = "INSERT INTO notifications (idempotency_key, kind, lead_id, payload, state, attempts, next_at, created_at)
         SELECT v->>'key', v->>'kind', (v->>'lead_id')::bigint, v->'payload', 'pending', 0, rewarm_ms((v->>'at')::bigint), rewarm_ms((v->>'at')::bigint)
         FROM jsonb_array_elements($1) WITH ORDINALITY AS j(v, n) ORDER BY n
         ON CONFLICT (idempotency_key) DO NOTHING";

impl OutboxStore for PgStore {
    common_outbox_methods!();
}
