//! The notification outbox on SQLite: claims are one conditional `UPDATE … RETURNING`
//! under the single writer; results are one `json_each` batch.

use super::*;
use crate::store::batch::{notification_results_json, notifications_json};
use crate::store::rows::NotificationRow;

impl OutboxStore for SqliteStore {
    async fn enqueue_notifications(
        &self,
        notifications: &[NewNotification],
        now: DateTime<Utc>,
    ) -> Result<usize, StoreError> {
        if notifications.is_empty() {
            return Ok(0);
        }
        let mut tx = self.write().await?;
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
        let mut tx = self.write().await?;
        let rows: Vec<NotificationRow> = sqlx::query_as(
            "UPDATE notifications SET state = 'claimed', claimed_by = $2, lease_until = $3, attempts = attempts + 1
             WHERE id IN (SELECT id FROM notifications
                          WHERE (state = 'pending' AND next_at <= $1) OR (state = 'claimed' AND lease_until <= $1)
                          ORDER BY next_at, id LIMIT $4)
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
        let mut tx = self.write().await?;
        sqlx::query(
            "UPDATE notifications SET state = j.value->>'state', last_error = j.value->>'error',
                 next_at = CASE WHEN j.value->>'state' = 'pending' THEN j.value->>'retry_at' ELSE next_at END,
                 sent_at = CASE WHEN j.value->>'state' = 'sent' THEN $3 ELSE sent_at END,
                 claimed_by = NULL, lease_until = NULL
             FROM json_each($1) j
             WHERE notifications.id = j.value->>'id' AND notifications.state = 'claimed' AND notifications.claimed_by = $2",
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
