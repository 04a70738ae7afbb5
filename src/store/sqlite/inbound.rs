//! Inbound mail and engagement on SQLite: what a reply, a bounce or a click does to its lead,
//! in one transaction with the message it came from.

use serde_json::{Value, json};

use super::outbox::enqueue;
use super::suppression::suppress_lead;
use super::*;
use crate::store::batch::rewarmable;
use crate::store::rows::InboundRow;

impl InboundStore for SqliteStore {
    async fn record_inbound(
        &self,
        record: &InboundRecord,
        effect: &InboundEffect,
        now: DateTime<Utc>,
    ) -> Result<InboundApplied, StoreError> {
        let mut tx = self.write().await?;
        let inserted: Option<i64> = sqlx::query_scalar(
            "INSERT INTO inbound (dedupe_key, source, received_at, message_id, from_address, subject, classification,
                                  lead_id, delivery_id, matched_by, text, raw, effects, created_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, '{}', $13)
             ON CONFLICT (dedupe_key) DO NOTHING RETURNING id",
        )
        .bind(&record.dedupe_key)
        .bind(&record.source)
        .bind(Time(record.received_at))
        .bind(&record.message_id)
        .bind(&record.from_address)
        .bind(&record.subject)
        .bind(&record.classification)
        .bind(record.lead_id)
        .bind(record.delivery_id)
        .bind(&record.matched_by)
        .bind(&record.text)
        .bind(&record.raw)
        .bind(Time(now))
        .fetch_optional(&mut *tx)
        .await?;
        let Some(inbound_id) = inserted else {
            let id: i64 = sqlx::query_scalar(sql::INBOUND_ID_BY_KEY)
                .bind(&record.dedupe_key)
                .fetch_one(&mut *tx)
                .await?;
            tx.rollback().await?;
            return Ok(InboundApplied {
                inbound_id: id,
                duplicate: true,
            });
        };
        let mut effects = json!({"effect": "none"});
        if let Some(lead_id) = record.lead_id {
            let state: Option<String> = sqlx::query_scalar(sql::LEAD_STATE)
                .bind(lead_id)
                .fetch_optional(&mut *tx)
                .await?;
            if let Some(state) = state {
                insert_event(
                    &mut tx,
                    lead_id,
                    "inbound",
                    &json!({"classification": record.classification, "subject": record.subject,
                            "matched_by": record.matched_by, "inbound_id": inbound_id}),
                    now,
                )
                .await?;
                effects =
                    apply_effect(&mut tx, lead_id, &state, inbound_id, record, effect, now).await?;
            }
        }
        sqlx::query(sql::SET_INBOUND_EFFECTS)
            .bind(inbound_id)
            .bind(&effects)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(InboundApplied {
            inbound_id,
            duplicate: false,
        })
    }

    async fn engage(
        &self,
        lead_id: i64,
        kind: &str,
        points: i64,
        threshold: i64,
        notifications: &[NewNotification],
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        if points == 0 {
            return Ok(false);
        }
        let mut tx = self.write().await?;
        let state: Option<String> = sqlx::query_scalar(sql::LEAD_STATE)
            .bind(lead_id)
            .fetch_optional(&mut *tx)
            .await?;
        let Some(state) = state else {
            return Ok(false);
        };
        let before = lead_score(&mut tx, lead_id).await?;
        let after = before + points;
        insert_event(
            &mut tx,
            lead_id,
            "engaged",
            &json!({"kind": kind, "points": points, "score": after}),
            now,
        )
        .await?;
        let mut rewarmed = false;
        if threshold > 0 && before < threshold && after >= threshold && rewarmable(&state) {
            rewarmed = rewarm(&mut tx, lead_id, &state, "score", now).await?;
            enqueue(&mut tx, notifications, now).await?;
        }
        tx.commit().await?;
        Ok(rewarmed)
    }

    async fn inbound_messages(
        &self,
        after_id: i64,
        limit: usize,
    ) -> Result<Vec<StoredInbound>, StoreError> {
        let rows: Vec<InboundRow> = sqlx::query_as(sql::INBOUND_MESSAGES)
            .bind(after_id)
            .bind(limit as i64)
            .fetch_all(&self.pool)
            .await?;
        Ok(rows.into_iter().map(StoredInbound::from).collect())
    }

    async fn record_click(
        &self,
        delivery_id: i64,
        url: &str,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let mut tx = self.write().await?;
        let n = sqlx::query(
            "INSERT INTO events (lead_id, at, kind, detail)
             SELECT lead_id, $2, 'clicked', json_object('campaign', campaign, 'step', step + 1, 'url', $3) FROM deliveries WHERE id = $1",
        )
        .bind(delivery_id)
        .bind(Time(now))
        .bind(url)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        tx.commit().await?;
        Ok(n > 0)
    }

    async fn score(&self, lead_id: i64) -> Result<i64, StoreError> {
        let mut conn = self.pool.acquire().await?;
        lead_score(&mut conn, lead_id).await
    }
}

/// The lead's engagement score, inside the caller's transaction.
async fn lead_score(conn: &mut sqlx::SqliteConnection, lead_id: i64) -> Result<i64, StoreError> {
    Ok(sqlx::query_scalar(sql::SCORE)
        .bind(lead_id)
        .fetch_one(&mut *conn)
        .await?)
}

/// Re-warms a lead in `state` (if it can be): cancels what waits, stops its enrolments, event
/// `rewarmed` {from, to, reason}. True if it changed.
async fn rewarm(
    conn: &mut sqlx::SqliteConnection,
    lead_id: i64,
    state: &str,
    reason: &str,
    now: DateTime<Utc>,
) -> Result<bool, StoreError> {
    if !rewarmable(state) {
        return Ok(false);
    }
    for sql in sql::REWARM {
        sqlx::query(sql)
            .bind(lead_id)
            .bind(Time(now))
            .execute(&mut *conn)
            .await?;
    }
    insert_event(
        conn,
        lead_id,
        "rewarmed",
        &json!({"from": state, "to": "rewarmed", "reason": reason}),
        now,
    )
    .await?;
    Ok(true)
}

/// Applies an inbound effect to a matched lead (in `state`); returns the effects summary.
async fn apply_effect(
    conn: &mut sqlx::SqliteConnection,
    lead_id: i64,
    state: &str,
    inbound_id: i64,
    record: &InboundRecord,
    effect: &InboundEffect,
    now: DateTime<Utc>,
) -> Result<Value, StoreError> {
    Ok(match effect {
        InboundEffect::None => json!({"effect": "none"}),
        InboundEffect::Rewarm {
            text,
            subject,
            notifications,
        } => {
            insert_event(
                conn,
                lead_id,
                "replied",
                &json!({"text": text, "subject": subject, "classification": record.classification, "inbound_id": inbound_id}),
                now,
            )
            .await?;
            let rewarmed = rewarm(conn, lead_id, state, "reply", now).await?;
            let queued = if state == "suppressed" {
                0
            } else {
                enqueue(conn, notifications, now).await?
            };
            json!({"effect": "rewarm", "rewarmed": rewarmed, "notifications": queued})
        }
        InboundEffect::Postpone { until } => {
            let n = sqlx::query(sql::POSTPONE)
                .bind(lead_id)
                .bind(Time(now))
                .bind(Time(*until))
                .execute(&mut *conn)
                .await?
                .rows_affected();
            insert_event(
                conn,
                lead_id,
                "postponed",
                &json!({"until": until, "deliveries": n, "inbound_id": inbound_id}),
                now,
            )
            .await?;
            json!({"effect": "postpone", "until": until, "deliveries": n})
        }
        InboundEffect::Suppress { reason, evidence } => {
            let mut evidence = evidence.clone();
            if let Some(o) = evidence.as_object_mut() {
                o.entry("inbound_id").or_insert(json!(inbound_id));
            }
            let listed = suppress_lead(conn, lead_id, *reason, &evidence, now).await?;
            json!({"effect": "suppress", "reason": reason.as_str(), "listed": listed})
        }
        InboundEffect::SoftBounce { limit, evidence } => {
            insert_event(
                conn,
                lead_id,
                "soft_bounce",
                &json!({"evidence": evidence, "inbound_id": inbound_id}),
                now,
            )
            .await?;
            let count: i64 = sqlx::query_scalar(sql::SOFT_BOUNCES_IN_A_ROW)
                .bind(lead_id)
                .fetch_one(&mut *conn)
                .await?;
            let suppressed = count >= i64::from(*limit) && state != "suppressed";
            if suppressed {
                let evidence = json!({"soft_bounces": count, "limit": limit, "last": evidence, "inbound_id": inbound_id});
                suppress_lead(conn, lead_id, SuppressionReason::HardBounce, &evidence, now).await?;
            }
            json!({"effect": "soft_bounce", "in_a_row": count, "suppressed": suppressed})
        }
    })
}
