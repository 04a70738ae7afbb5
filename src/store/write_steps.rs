//! The steps of a write both backends share (`common_write_steps!`), split from `common.rs`:
//! the same word-for-word Rust, expanded by each backend over its own connection type.

/// The steps of a write both backends share, as free functions over the backend's
/// connection type (inside the caller's transaction), with the backend's statements named
/// in their docs.
macro_rules! common_write_steps {
    ($conn:ty) => {
        /// The body of `set_lifecycle` inside the caller's transaction (also what a reply's
        /// intent uses to put a lead out of scope): state, columns, cadence and event; no
        /// notifications.
        async fn lifecycle_tx(
            conn: &mut $conn,
            lead_id: i64,
            transition: &Transition,
            by: &str,
            now: DateTime<Utc>,
        ) -> Result<LifecycleChange, StoreError> {
            let row: Option<LifecycleRow> = sqlx::query_as(sql::LEAD_LIFECYCLE)
                .bind(lead_id)
                .fetch_optional(&mut *conn)
                .await?;
            let Some(row) = row else {
                return Ok(LifecycleChange::NoSuchLead);
            };
            let (from, held) = row.parse(lead_id)?;
            let to = match transition.verdict(from, held.paused_from) {
                Verdict::Move(to) => to,
                Verdict::Already => return Ok(LifecycleChange::Already { state: from }),
                Verdict::Refused(why) => return Ok(LifecycleChange::Refused { from, why }),
            };
            if transition.stops_cadence(from, to) {
                for sql in sql::STOP_CADENCE {
                    sqlx::query(sql)
                        .bind(lead_id)
                        .bind(Time(now))
                        .execute(&mut *conn)
                        .await?;
                }
            }
            let (reason, recheck_at) = match transition {
                Transition::OutOfScope { reason, recheck_at } => (Some(reason.as_str()), *recheck_at),
                _ => (None, None),
            };
            let paused_from = (to == LeadState::Paused).then_some(from.as_str());
            sqlx::query(sql::SET_LIFECYCLE)
                .bind(lead_id)
                .bind(to.as_str())
                .bind(Time(now))
                .bind(reason)
                .bind(recheck_at.map(Time))
                .bind(paused_from)
                .execute(&mut *conn)
                .await?;
            // A pause holds what waits; leaving it releases it (see `store/hold.rs`).
            let hold = match (from, to) {
                (_, LeadState::Paused) => Some(crate::store::hold::HOLD_LEAD),
                (LeadState::Paused, _) => Some(crate::store::hold::RELEASE_LEAD),
                _ => None,
            };
            if let Some(sql) = hold {
                sqlx::query(sql)
                    .bind(lead_id)
                    .bind(Time(now))
                    .execute(&mut *conn)
                    .await?;
            }
            let mut detail = json!({"from": from.as_str(), "to": to.as_str(), "by": by});
            if let Some(reason) = reason {
                detail["reason"] = json!(reason);
                detail["recheck_at"] = json!(recheck_at);
            }
            insert_event(conn, lead_id, transition.event_kind(), &detail, now).await?;
            Ok(LifecycleChange::Applied { from, to })
        }

        /// Puts notifications in the outbox inside the caller's transaction; returns how many were new.
        async fn enqueue(
            conn: &mut $conn,
            notifications: &[NewNotification],
            now: DateTime<Utc>,
        ) -> Result<usize, StoreError> {
            if notifications.is_empty() {
                return Ok(0);
            }
            let n = sqlx::query(ENQUEUE)
            .bind(notifications_json(notifications, now))
            .execute(&mut *conn)
            .await?
            .rows_affected();
            Ok(n as usize)
        }

        /// The body of `suppress` inside the caller's transaction (the backend's `SUPPRESS_INSERT`,
        /// then its `SUPPRESS_REACH`); `batch` as `suppressions_json`. Returns the new entries.
        async fn suppress_tx(
            conn: &mut $conn,
            batch: &Value,
            now: DateTime<Utc>,
        ) -> Result<u64, StoreError> {
            let inserted = sqlx::query(SUPPRESS_INSERT)
                .bind(batch)
                .execute(&mut *conn)
                .await?
                .rows_affected();

            for sql in SUPPRESS_REACH {
                sqlx::query(sql)
                    .bind(batch)
                    .bind(Time(now))
                    .execute(&mut *conn)
                    .await?;
            }
            Ok(inserted)
        }

        /// Writes one event on a lead's timeline.
        async fn insert_event(
            conn: &mut $conn,
            lead_id: i64,
            kind: &str,
            detail: &Value,
            now: DateTime<Utc>,
        ) -> Result<(), StoreError> {
            sqlx::query(sql::INSERT_EVENT)
                .bind(lead_id)
                .bind(Time(now))
                .bind(kind)
                .bind(detail)
                .execute(&mut *conn)
                .await?;
            Ok(())
        }

        /// The lead's engagement score, inside the caller's transaction.
        async fn lead_score(conn: &mut $conn, lead_id: i64) -> Result<i64, StoreError> {
            Ok(sqlx::query_scalar(sql::SCORE)
                .bind(lead_id)
                .fetch_one(&mut *conn)
                .await?)
        }

        /// Re-warms a lead in `state` (if it can be): cancels what waits, stops its enrolments, event
        /// `rewarmed` {from, to, reason}. True if it changed.
        async fn rewarm(
            conn: &mut $conn,
            lead_id: i64,
            state: &str,
            reason: &str,
            now: DateTime<Utc>,
        ) -> Result<bool, StoreError> {
            rewarm_with(conn, lead_id, state, reason, &json!({}), now).await
        }

        /// `rewarm`, with `extra` keys on its event (a score's signals).
        async fn rewarm_with(
            conn: &mut $conn,
            lead_id: i64,
            state: &str,
            reason: &str,
            extra: &Value,
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
            let mut detail = json!({"from": state, "to": "rewarmed", "reason": reason});
            if let (Some(d), Some(x)) = (detail.as_object_mut(), extra.as_object()) {
                for (k, v) in x {
                    d.insert(k.clone(), v.clone());
                }
            }
            insert_event(conn, lead_id, "rewarmed", &detail, now).await?;
            Ok(true)
        }

        /// Lists a lead's address (inside the caller's transaction), exactly like `suppress`; true
        /// if the entry is new.
        async fn suppress_lead(
            conn: &mut $conn,
            lead_id: i64,
            reason: SuppressionReason,
            evidence: &Value,
            now: DateTime<Utc>,
        ) -> Result<bool, StoreError> {
            let email: String = sqlx::query_scalar(sql::LEAD_EMAIL)
                .bind(lead_id)
                .fetch_one(&mut *conn)
                .await?;
            let batch = suppressions_json(&[Suppression {
                address: email,
                reason,
                evidence: evidence.clone(),
                created_at: now,
            }]);
            Ok(suppress_tx(conn, &batch, now).await? > 0)
        }

        /// The body of `record_inbound` inside the caller's transaction (a duplicate changes
        /// nothing: the caller may commit or roll back).
        async fn record_inbound_tx(
            conn: &mut $conn,
            record: &InboundRecord,
            effect: &InboundEffect,
            others: &[OtherLead],
            now: DateTime<Utc>,
        ) -> Result<InboundApplied, StoreError> {
            let inserted: Option<i64> = sqlx::query_scalar(sql::INSERT_INBOUND)
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
                .fetch_optional(&mut *conn)
                .await?;
            let Some(inbound_id) = inserted else {
                let id: i64 = sqlx::query_scalar(sql::INBOUND_ID_BY_KEY)
                    .bind(&record.dedupe_key)
                    .fetch_one(&mut *conn)
                    .await?;
                return Ok(InboundApplied {
                    inbound_id: id,
                    duplicate: true,
                });
            };
            let mut effects = json!({"effect": "none"});
            let state: Option<String> = match record.lead_id {
                Some(lead_id) => sqlx::query_scalar(sql::LEAD_STATE)
                    .bind(lead_id)
                    .fetch_optional(&mut *conn)
                    .await?,
                None => None,
            };
            // One message, one state change, whichever channel reported it first.
            let earlier: Option<i64> = match (record.delivery_id, effect) {
                (Some(delivery_id), InboundEffect::Suppress { .. } | InboundEffect::SoftBounce { .. }) => {
                    sqlx::query_scalar(sql::SAME_EFFECT_BEFORE)
                        .bind(delivery_id)
                        .bind(&record.classification)
                        .bind(inbound_id)
                        .fetch_optional(&mut *conn)
                        .await?
                }
                _ => None,
            };
            if let Some(earlier) = earlier {
                effects = json!({"effect": "none", "already_applied_by": earlier});
            } else if let (Some(lead_id), Some(state)) = (record.lead_id, state) {
                if !matches!(effect, InboundEffect::Delivered { .. }) {
                    insert_event(
                        conn,
                        lead_id,
                        "inbound",
                        &json!({"classification": record.classification, "subject": record.subject,
                                "matched_by": record.matched_by, "inbound_id": inbound_id}),
                        now,
                    )
                    .await?;
                }
                effects = apply_effect(conn, lead_id, &state, inbound_id, record, effect, now).await?;
            }
            let mut done: Vec<i64> = record.lead_id.into_iter().collect();
            let mut applied_others = Vec::new();
            for other in others {
                if done.contains(&other.lead_id) {
                    continue;
                }
                done.push(other.lead_id);
                let state: Option<String> = sqlx::query_scalar(sql::LEAD_STATE)
                    .bind(other.lead_id)
                    .fetch_optional(&mut *conn)
                    .await?;
                let Some(state) = state else { continue };
                insert_event(
                    conn,
                    other.lead_id,
                    "inbound",
                    &json!({"classification": other.classification, "subject": record.subject,
                            "matched_by": "report", "inbound_id": inbound_id}),
                    now,
                )
                .await?;
                let as_other = InboundRecord {
                    classification: other.classification.clone(),
                    ..record.clone()
                };
                let mut applied =
                    apply_effect(conn, other.lead_id, &state, inbound_id, &as_other, &other.effect, now)
                        .await?;
                applied["lead_id"] = json!(other.lead_id);
                applied["classification"] = json!(other.classification);
                applied_others.push(applied);
            }
            if !applied_others.is_empty() {
                effects["others"] = json!(applied_others);
            }
            sqlx::query(sql::SET_INBOUND_EFFECTS)
                .bind(inbound_id)
                .bind(&effects)
                .execute(&mut *conn)
                .await?;
            Ok(InboundApplied {
                inbound_id,
                duplicate: false,
            })
        }

        /// Applies an inbound effect to a matched lead (in `state`); returns the effects summary.
        async fn apply_effect(
            conn: &mut $conn,
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
                InboundEffect::Reply { text, subject, intent, action } => {
                    apply_reply(conn, lead_id, state, inbound_id, record, (text, subject.as_deref(), intent), action, now).await?
                }
                InboundEffect::SoftBounce { limit, evidence } => {
                    insert_event(
                        conn,
                        lead_id,
                        "soft_bounce",
                        &json!({"evidence": evidence, "inbound_id": inbound_id, "delivery_id": record.delivery_id}),
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
                InboundEffect::Delivered { detail } => {
                    insert_event(
                        conn,
                        lead_id,
                        "delivered",
                        &json!({"detail": detail, "inbound_id": inbound_id, "delivery_id": record.delivery_id}),
                        now,
                    )
                    .await?;
                    json!({"effect": "delivered"})
                }
            })
        }
    };
}
