//! The notification outbox on PostgreSQL: claims skip rows another daemon is claiming
//! (`FOR UPDATE SKIP LOCKED`); results are one `jsonb_array_elements` batch.

use super::*;
use crate::store::batch::{notification_results_json, notifications_json};
use crate::store::rows::NotificationRow;

impl OutboxStore for PgStore {
    async fn enqueue_notifications(
        &self,
        notifications: &[NewNotification],
        now: DateTime<Utc>,
    ) -> Result<usize, StoreError> {
        if notifications.is_empty() {
            return Ok(0);
        }
        let mut tx = self.locked_write().await?;
        let n = enqueue(&mut tx, notifications, now).await?;
        tx.commit().await?;
        Ok(n)
    }

    async fn claim_notifications(
        &self,
        now: DateTime<Utc>,
        worker: &str,
        lease_until: DateTime<Utc>,
        limit: usize,
    ) -> Result<Vec<Notification>, StoreError> {
        let mut tx = self.locked_write().await?;
        let rows: Vec<NotificationRow> = sqlx::query_as(
            "UPDATE notifications SET state = 'claimed', claimed_by = $2, lease_until = $3, attempts = attempts + 1
             WHERE id IN (SELECT id FROM notifications
                          WHERE (state = 'pending' AND next_at <= $1) OR (state = 'claimed' AND lease_until <= $1)
                          ORDER BY next_at, id LIMIT $4 FOR UPDATE SKIP LOCKED)
             RETURNING id, idempotency_key, kind, lead_id, payload, state, attempts, next_at, last_error, created_at, sent_at",
        )
        .bind(Time(now))
        .bind(worker)
        .bind(Time(lease_until))
        .bind(limit as i64)
        .fetch_all(&mut *tx)
        .await?;
        tx.commit().await?;
        let mut out = rows
            .into_iter()
            .map(NotificationRow::into_notification)
            .collect::<Vec<_>>();
        out.sort_by_key(|n| n.id);
        Ok(out)
    }

    async fn record_notifications(
        &self,
        results: &[(i64, Result<(), String>, Option<DateTime<Utc>>)],
        worker: &str,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        if results.is_empty() {
            return Ok(());
        }
        let batch = notification_results_json(results);
        let mut tx = self.locked_write().await?;
        sqlx::query(
            "UPDATE notifications SET state = v->>'state', last_error = v->>'error',
                 next_at = CASE WHEN v->>'state' = 'pending' THEN rewarm_ms((v->>'retry_at')::bigint) ELSE next_at END,
                 sent_at = CASE WHEN v->>'state' = 'sent' THEN $3 ELSE sent_at END,
                 claimed_by = NULL, lease_until = NULL
             FROM jsonb_array_elements($1) j(v)
             WHERE notifications.id = (v->>'id')::bigint AND notifications.state = 'claimed' AND notifications.claimed_by = $2",
        )
        .bind(&batch)
        .bind(worker)
        .bind(Time(now))
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    async fn notifications(
        &self,
        after_id: i64,
        limit: usize,
    ) -> Result<Vec<Notification>, StoreError> {
        let rows: Vec<NotificationRow> = sqlx::query_as(sql::NOTIFICATIONS)
            .bind(after_id)
            .bind(limit as i64)
            .fetch_all(&self.pool)
            .await?;
        Ok(rows
            .into_iter()
            .map(NotificationRow::into_notification)
            .collect())
    }
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
