//! The Rust both backends run word for word, kept once as macros each backend's impl
//! expands (`common_lead_methods!()` inside `impl LeadStore for SqliteStore { … }`, and the
//! same for `PgStore`). With times, JSON and row shapes unified (`dialect.rs`, `rows.rs`),
//! what differs between the backends is a statement's text or how a transaction begins;
//! both are looked up where the macro is expanded: `self.write()` (SQLite's `BEGIN
//! IMMEDIATE`, PostgreSQL's advisory write lock), and the backend's own constants and
//! helpers named below (e.g. `RECYCLE_RESUME`, `CLAIM_NOTIFICATIONS`, `enqueue`,
//! `suppress_tx`). Macros rather than functions generic over the database: sqlx's bounds for
//! that explode, and the backends would drift behind them anyway.

/// `Store::ping` and `Store::status`.
macro_rules! common_store_methods {
    () => {
        async fn ping(&self) -> Result<(), StoreError> {
            sqlx::query(sql::PING).execute(&self.pool).await?;
            Ok(())
        }

        async fn status(
            &self,
            since: DateTime<Utc>,
            now: DateTime<Utc>,
        ) -> Result<StatusReport, StoreError> {
            self.fold_counts().await?;
            let rows = sqlx::query_as(sql::STATUS)
                .bind(Time(since))
                .bind(Time(now))
                .fetch_all(&self.pool)
                .await?;
            Ok(sql::status_report(rows))
        }
    };
}

/// Reads, `leads_rewarmed` (the backend's `LEADS_REWARMED`) and `recycle` (the backend's
/// `RECYCLE_RESUME` schedules the cancelled deliveries again).
macro_rules! common_lead_methods {
    () => {
        async fn lead_by_email(&self, email: &EmailAddress) -> Result<Option<Lead>, StoreError> {
            let row: Option<LeadRow> = sqlx::query_as(sql::LEAD_BY_EMAIL)
                .bind(email.as_str())
                .fetch_optional(&self.pool)
                .await?;
            row.map(LeadRow::into_lead).transpose()
        }

        async fn leads_in_state(
            &self,
            state: LeadState,
            after_id: i64,
            limit: usize,
        ) -> Result<Vec<Lead>, StoreError> {
            let rows: Vec<LeadRow> = sqlx::query_as(sql::LEADS_IN_STATE)
                .bind(state.as_str())
                .bind(after_id)
                .bind(limit as i64)
                .fetch_all(&self.pool)
                .await?;
            rows.into_iter().map(LeadRow::into_lead).collect()
        }

        async fn timeline(&self, lead_id: i64) -> Result<Vec<Event>, StoreError> {
            let rows: Vec<EventRow> = sqlx::query_as(sql::TIMELINE)
                .bind(lead_id)
                .fetch_all(&self.pool)
                .await?;
            Ok(rows.into_iter().map(Event::from).collect())
        }

        async fn leads_rewarmed(
            &self,
            since: DateTime<Utc>,
            owner: Option<&str>,
        ) -> Result<Vec<(Lead, DateTime<Utc>)>, StoreError> {
            let rows: Vec<RewarmedRow> = sqlx::query_as(LEADS_REWARMED)
            .bind(Time(since))
            .bind(owner)
            .fetch_all(&self.pool)
            .await?;
            let ids: Vec<i64> = rows.iter().map(|r| r.id).collect();
            let mut leads: HashMap<i64, Lead> = self
                .leads_by_ids(&ids)
                .await?
                .into_iter()
                .map(|l| (l.id, l))
                .collect();
            Ok(rows
                .into_iter()
                .filter_map(|r| leads.remove(&r.id).map(|l| (l, r.at.0)))
                .collect())
        }

        async fn set_lifecycle(
            &self,
            lead_id: i64,
            transition: &Transition,
            by: &str,
            notifications: &[NewNotification],
            now: DateTime<Utc>,
        ) -> Result<LifecycleChange, StoreError> {
            let mut tx = self.write().await?;
            let change = lifecycle_tx(&mut tx, lead_id, transition, by, now).await?;
            if matches!(change, LifecycleChange::Applied { .. }) {
                enqueue(&mut tx, notifications, now).await?;
                tx.commit().await?;
            }
            Ok(change)
        }

        async fn record_event(
            &self,
            lead_id: i64,
            kind: &str,
            detail: &Value,
            notifications: &[NewNotification],
            now: DateTime<Utc>,
        ) -> Result<bool, StoreError> {
            let mut tx = self.write().await?;
            let state: Option<String> = sqlx::query_scalar(sql::LEAD_STATE)
                .bind(lead_id)
                .fetch_optional(&mut *tx)
                .await?;
            if state.is_none() {
                return Ok(false);
            }
            insert_event(&mut tx, lead_id, kind, detail, now).await?;
            enqueue(&mut tx, notifications, now).await?;
            tx.commit().await?;
            Ok(true)
        }

        async fn lead_lifecycle(&self, lead_id: i64) -> Result<Option<LeadLifecycle>, StoreError> {
            let row: Option<LifecycleRow> = sqlx::query_as(sql::LEAD_LIFECYCLE)
                .bind(lead_id)
                .fetch_optional(&self.pool)
                .await?;
            row.map(|r| r.parse(lead_id).map(|(_, l)| l)).transpose()
        }

        async fn recheck_due(&self, now: DateTime<Utc>, limit: usize) -> Result<Vec<i64>, StoreError> {
            Ok(sqlx::query_scalar(sql::RECHECK_DUE)
                .bind(Time(now))
                .bind(limit as i64)
                .fetch_all(&self.pool)
                .await?)
        }

        async fn recycle(
            &self,
            lead_id: i64,
            reason: &str,
            resume_at: DateTime<Utc>,
            now: DateTime<Utc>,
        ) -> Result<Option<LeadState>, StoreError> {
            let mut tx = self.write().await?;
            let state: Option<String> = sqlx::query_scalar(sql::LEAD_STATE)
                .bind(lead_id)
                .fetch_optional(&mut *tx)
                .await?;
            let Some(from) = state.filter(|s| LeadState::parse(s).is_some_and(recyclable)) else {
                return Ok(None);
            };
            if from == "suppressed" {
                let email: String = sqlx::query_scalar(sql::LEAD_EMAIL)
                    .bind(lead_id)
                    .fetch_one(&mut *tx)
                    .await?;
                let domain = email.rsplit_once('@').map_or("", |(_, d)| d);
                let listed: Option<SuppressionRow> = sqlx::query_as(sql::SUPPRESSION_FOR)
                    .bind(&email)
                    .bind(format!("@{domain}"))
                    .fetch_optional(&mut *tx)
                    .await?;
                if listed.is_some() {
                    return Ok(None);
                }
            }
            if from == "paused" {
                // Held deliveries become cancelled ones, resumed below not before `resume_at`.
                for sql in sql::STOP_CADENCE {
                    sqlx::query(sql).bind(lead_id).bind(Time(now)).execute(&mut *tx).await?;
                }
            }
            sqlx::query(sql::CLEAR_LIFECYCLE)
                .bind(lead_id)
                .execute(&mut *tx)
                .await?;
            let resumed = sqlx::query(RECYCLE_RESUME)
            .bind(lead_id)
            .bind(Time(now))
            .bind(Time(resume_at))
            .execute(&mut *tx)
            .await?
            .rows_affected();
            sqlx::query(sql::REACTIVATE_ENROLMENTS)
                .bind(lead_id)
                .execute(&mut *tx)
                .await?;
            let enrolled: i64 = sqlx::query_scalar(sql::COUNT_ENROLMENTS)
                .bind(lead_id)
                .fetch_one(&mut *tx)
                .await?;
            let to = recycle_target(resumed, enrolled);
            insert_event(
                &mut tx,
                lead_id,
                "recycled",
                &json!({"reason": reason, "after": resume_at, "from": from, "to": to.as_str(), "resumed_deliveries": resumed}),
                now,
            )
            .await?;
            sqlx::query(sql::SET_LEAD_STATE)
                .bind(lead_id)
                .bind(to.as_str())
                .bind(Time(now))
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
            Ok(Some(to))
        }
    };
}

/// The queue's reads, and entering a campaign again (`enter_campaign`, one small
/// transaction for the batch: a handful of statements per lead, for the few leads a pass
/// moves on).
macro_rules! common_queue_methods {
    () => {
        async fn enter_campaign(
            &self,
            entries: &[NewEnrolment],
            from: &[LeadState],
            via: &str,
            recycled: Option<&str>,
            now: DateTime<Utc>,
        ) -> Result<Vec<i64>, StoreError> {
            let mut entered = Vec::new();
            if entries.is_empty() {
                return Ok(entered);
            }
            let mut tx = self.write().await?;
            for e in entries {
                let row: Option<(String, String)> = sqlx::query_as(sql::LEAD_STATE_EMAIL)
                    .bind(e.lead_id)
                    .fetch_optional(&mut *tx)
                    .await?;
                let Some((state, email)) = row else { continue };
                if !from.iter().any(|s| s.as_str() == state) {
                    continue;
                }
                let domain = email.rsplit_once('@').map_or("", |(_, d)| d);
                let listed: Option<SuppressionRow> = sqlx::query_as(sql::SUPPRESSION_FOR)
                    .bind(&email)
                    .bind(format!("@{domain}"))
                    .fetch_optional(&mut *tx)
                    .await?;
                for sql in sql::STOP_CADENCE {
                    sqlx::query(sql).bind(e.lead_id).bind(Time(now)).execute(&mut *tx).await?;
                }
                if let Some(listed) = listed {
                    let listed = listed.into_suppression()?;
                    sqlx::query(sql::SET_LEAD_STATE)
                        .bind(e.lead_id)
                        .bind("suppressed")
                        .bind(Time(now))
                        .execute(&mut *tx)
                        .await?;
                    insert_event(&mut tx, e.lead_id, "suppressed",
                        &json!({"from": state, "to": "suppressed", "reason": listed.reason.as_str(),
                                "evidence": listed.evidence, "address": listed.address}), now).await?;
                    continue;
                }
                let reentered: Option<(i64, i64)> = sqlx::query_as(sql::REENTER_ENROLMENT)
                    .bind(e.lead_id)
                    .bind(&e.campaign)
                    .bind(&e.segment)
                    .bind(Time(now))
                    .fetch_optional(&mut *tx)
                    .await?;
                let (enrolment_id, cycle) = match reentered {
                    Some(r) => r,
                    None => sqlx::query_as(sql::INSERT_ENROLMENT)
                        .bind(e.lead_id)
                        .bind(&e.campaign)
                        .bind(&e.segment)
                        .bind(Time(now))
                        .fetch_one(&mut *tx)
                        .await?,
                };
                sqlx::query(sql::INSERT_FIRST_DELIVERY)
                    .bind(e.lead_id)
                    .bind(enrolment_id)
                    .bind(&e.campaign)
                    .bind(&e.template)
                    .bind(Time(e.first_due))
                    .bind(Time(now))
                    .bind(cycle)
                    .execute(&mut *tx)
                    .await?;
                sqlx::query(sql::CONTINUE_ENROLMENTS)
                    .bind(e.lead_id)
                    .bind(&e.campaign)
                    .execute(&mut *tx)
                    .await?;
                sqlx::query(sql::LEAD_NURTURING)
                    .bind(e.lead_id)
                    .bind(Time(now))
                    .execute(&mut *tx)
                    .await?;
                if let Some(reason) = recycled {
                    insert_event(&mut tx, e.lead_id, "recycled",
                        &json!({"reason": reason, "after": e.first_due, "from": state, "to": "nurturing",
                                "campaign": e.campaign, "resumed_deliveries": 0}), now).await?;
                }
                insert_event(&mut tx, e.lead_id, "enrolled",
                    &json!({"campaign": e.campaign, "segment": e.segment, "cycle": cycle,
                            "first_due": e.first_due, "via": via, "from": state}), now).await?;
                entered.push(e.lead_id);
            }
            tx.commit().await?;
            Ok(entered)
        }

        async fn completed_in(
            &self,
            campaign: &str,
            limit: usize,
        ) -> Result<Vec<(i64, String)>, StoreError> {
            Ok(sqlx::query_as(sql::COMPLETED_IN)
                .bind(campaign)
                .bind(limit as i64)
                .fetch_all(&self.pool)
                .await?)
        }

        async fn stalled_enrolments(
            &self,
            limit: usize,
        ) -> Result<Vec<StalledEnrolment>, StoreError> {
            let rows: Vec<StalledRow> = sqlx::query_as(sql::STALLED_ENROLMENTS)
                .bind(limit as i64)
                .fetch_all(&self.pool)
                .await?;
            Ok(rows.into_iter().map(StalledEnrolment::from).collect())
        }

        async fn stalled_in(
            &self,
            campaign: &str,
            limit: usize,
        ) -> Result<Vec<StalledEnrolment>, StoreError> {
            let rows: Vec<StalledRow> = sqlx::query_as(sql::STALLED_IN)
                .bind(campaign)
                .bind(limit as i64)
                .fetch_all(&self.pool)
                .await?;
            Ok(rows.into_iter().map(StalledEnrolment::from).collect())
        }

        async fn unknown_deliveries(&self, limit: usize) -> Result<Vec<UnknownDelivery>, StoreError> {
            let rows: Vec<UnknownRow> = sqlx::query_as(sql::UNKNOWN_DELIVERIES)
                .bind(limit as i64)
                .fetch_all(&self.pool)
                .await?;
            Ok(rows.into_iter().map(UnknownDelivery::from).collect())
        }

        async fn pending_deliveries(&self) -> Result<Vec<PendingDelivery>, StoreError> {
            let rows: Vec<PendingRow> = sqlx::query_as(sql::PENDING_DELIVERIES)
                .fetch_all(&self.pool)
                .await?;
            Ok(rows.into_iter().map(PendingDelivery::from).collect())
        }

        async fn due_now(&self, now: DateTime<Utc>) -> Result<i64, StoreError> {
            // One read transaction: the counters and both ranges from one snapshot.
            let mut tx = self.pool.begin().await?;
            let (pending, due, paused): (i64, i64, i64) = sqlx::query_as(DUE_NOW_PARTS)
                .bind(Time(now))
                .bind(sql::DUE_COUNT_CAP)
                .fetch_one(&mut *tx)
                .await?;
            let due = if due < sql::DUE_COUNT_CAP {
                due
            } else {
                let waiting: i64 = sqlx::query_scalar(NOT_DUE)
                    .bind(Time(now))
                    .fetch_one(&mut *tx)
                    .await?;
                pending - waiting
            };
            tx.commit().await?;
            Ok(due - paused)
        }

        async fn delivery_target(
            &self,
            delivery_id: i64,
        ) -> Result<Option<DeliveryTarget>, StoreError> {
            let row: Option<TargetRow> = sqlx::query_as(sql::DELIVERY_TARGET)
                .bind(delivery_id)
                .fetch_optional(&self.pool)
                .await?;
            row.map(TargetRow::into_target).transpose()
        }

        async fn delivery_by_provider_id(
            &self,
            provider_id: &str,
        ) -> Result<Option<DeliveryTarget>, StoreError> {
            let provider_id = provider_id.trim();
            if provider_id.is_empty() {
                return Ok(None);
            }
            let id: Option<i64> = sqlx::query_scalar(sql::DELIVERY_BY_PROVIDER_ID)
                .bind(provider_id)
                .fetch_optional(&self.pool)
                .await?;
            match id {
                Some(id) => self.delivery_target(id).await,
                None => Ok(None),
            }
        }
    };
}

/// The suppression list's reads.
macro_rules! common_suppression_methods {
    () => {
        async fn suppressions(&self) -> Result<Vec<Suppression>, StoreError> {
            let rows: Vec<SuppressionRow> = sqlx::query_as(sql::SUPPRESSIONS)
                .fetch_all(&self.pool)
                .await?;
            rows.into_iter()
                .map(SuppressionRow::into_suppression)
                .collect()
        }

        async fn suppression_for(
            &self,
            email: &EmailAddress,
        ) -> Result<Option<Suppression>, StoreError> {
            let row: Option<SuppressionRow> = sqlx::query_as(sql::SUPPRESSION_FOR)
                .bind(email.as_str())
                .bind(format!("@{}", email.domain()))
                .fetch_optional(&self.pool)
                .await?;
            row.map(SuppressionRow::into_suppression).transpose()
        }
    };
}

/// Everything inbound: replies, bounces, clicks and engagement.
macro_rules! common_inbound_methods {
    () => {
        async fn record_inbound(
            &self,
            record: &InboundRecord,
            effect: &InboundEffect,
            now: DateTime<Utc>,
        ) -> Result<InboundApplied, StoreError> {
            self.record_inbound_for_all(record, effect, &[], now).await
        }

        async fn record_inbound_for_all(
            &self,
            record: &InboundRecord,
            effect: &InboundEffect,
            others: &[OtherLead],
            now: DateTime<Utc>,
        ) -> Result<InboundApplied, StoreError> {
            let mut tx = self.write().await?;
            let applied = record_inbound_tx(&mut tx, record, effect, others, now).await?;
            if applied.duplicate {
                tx.rollback().await?;
            } else {
                tx.commit().await?;
            }
            Ok(applied)
        }

        async fn record_inbound_batch(
            &self,
            batch: &[(InboundRecord, InboundEffect)],
            now: DateTime<Utc>,
        ) -> Result<Vec<InboundApplied>, StoreError> {
            if batch.is_empty() {
                return Ok(Vec::new());
            }
            let mut tx = self.write().await?;
            let mut out = Vec::with_capacity(batch.len());
            for (record, effect) in batch {
                out.push(record_inbound_tx(&mut tx, record, effect, &[], now).await?);
            }
            tx.commit().await?;
            Ok(out)
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

        async fn engage(
            &self,
            e: &Engagement<'_>,
            notifications: &[NewNotification],
            now: DateTime<Utc>,
        ) -> Result<bool, StoreError> {
            if e.points == 0 {
                return Ok(false);
            }
            let mut tx = self.write().await?;
            let state: Option<String> = sqlx::query_scalar(sql::LEAD_STATE)
                .bind(e.lead_id)
                .fetch_optional(&mut *tx)
                .await?;
            let Some(state) = state else {
                return Ok(false);
            };
            let rows: Vec<EventRow> = sqlx::query_as(sql::SIGNALS)
                .bind(e.lead_id)
                .fetch_all(&mut *tx)
                .await?;
            let mut signals = crate::domain::signal::from_engaged(
                rows.into_iter().map(Event::from).map(|ev| (ev.at, ev.detail)),
            );
            let before = crate::domain::signal::score(&signals, now, e.half_life);
            let after = before + e.points as f64;
            let mut detail = e.detail.clone();
            if !detail.is_object() {
                detail = json!({});
            }
            detail["kind"] = json!(e.kind);
            detail["points"] = json!(e.points);
            detail["score"] = json!(crate::domain::signal::whole(after));
            let after_f = after;
            insert_event(&mut tx, e.lead_id, "engaged", &detail, now).await?;
            // Whole points: 10 earned a few seconds ago weigh 9.99999…, and still count 10.
            let (before, after) = (
                crate::domain::signal::whole(before),
                crate::domain::signal::whole(after),
            );
            let mut rewarmed = false;
            if e.threshold > 0 && before < e.threshold && after >= e.threshold && rewarmable(&state) {
                signals.push(crate::domain::signal::Signal {
                    at: now,
                    kind: e.kind.to_string(),
                    points: e.points,
                    detail: detail.clone(),
                });
                let made = crate::domain::signal::made_of(&signals, now, e.half_life);
                let extra = json!({"score": crate::domain::signal::whole(after_f), "threshold": e.threshold, "signals": made});
                rewarmed = rewarm_with(&mut tx, e.lead_id, &state, "score", &extra, now).await?;
                let notifications: Vec<NewNotification> = notifications
                    .iter()
                    .cloned()
                    .map(|mut n| {
                        if let Some(p) = n.payload.as_object_mut() {
                            p.insert("signals".into(), extra["signals"].clone());
                        }
                        n
                    })
                    .collect();
                enqueue(&mut tx, &notifications, now).await?;
            }
            tx.commit().await?;
            Ok(rewarmed)
        }

        async fn record_click(
            &self,
            click: &Click<'_>,
            now: DateTime<Utc>,
        ) -> Result<Option<ClickRecord>, StoreError> {
            let mut tx = self.write().await?;
            let row: Option<(i64, String, i64, Option<Time>)> = sqlx::query_as(sql::CLICK_DELIVERY)
                .bind(click.delivery_id)
                .bind(Time(now))
                .fetch_optional(&mut *tx)
                .await?;
            let Some((lead_id, campaign, step, sent_at)) = row else {
                return Ok(None);
            };
            let memory = click.policy.repeat.max(click.policy.burst);
            let rows: Vec<EventRow> = sqlx::query_as(sql::CLICKS_SINCE)
                .bind(lead_id)
                .bind(Time(now - memory))
                .fetch_all(&mut *tx)
                .await?;
            let prior = sql::prior_clicks(rows, click.delivery_id, &campaign, step + 1);
            let judgement = crate::domain::signal::judge_click(
                &click.policy,
                click.request,
                now,
                click.url,
                sent_at.map(|t| t.0),
                &prior,
            );
            insert_event(
                &mut tx,
                lead_id,
                "clicked",
                &json!({"campaign": campaign, "step": step + 1, "url": click.url, "delivery_id": click.delivery_id,
                        "counted": judgement.verdict.counted(), "signal": judgement.verdict.as_str()}),
                now,
            )
            .await?;
            tx.commit().await?;
            Ok(Some(ClickRecord {
                lead_id,
                campaign,
                step: step + 1,
                judgement,
            }))
        }

        async fn score(&self, lead_id: i64) -> Result<i64, StoreError> {
            let mut conn = self.pool.acquire().await?;
            lead_score(&mut conn, lead_id).await
        }
    };
}

/// The outbox (the backend's `CLAIM_NOTIFICATIONS` and `RECORD_NOTIFICATIONS`, and its
/// `enqueue`).
macro_rules! common_outbox_methods {
    () => {
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
            let rows: Vec<NotificationRow> = sqlx::query_as(CLAIM_NOTIFICATIONS)
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
            results: &[NotificationResult],
            worker: &str,
            now: DateTime<Utc>,
        ) -> Result<(), StoreError> {
            if results.is_empty() {
                return Ok(());
            }
            let batch = notification_results_json(results);
            let mut tx = self.write().await?;
            sqlx::query(RECORD_NOTIFICATIONS)
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
    };
}

/// Reading and setting a named value.
macro_rules! common_kv_methods {
    () => {
        async fn kv_get(&self, key: &str) -> Result<Option<String>, StoreError> {
            Ok(sqlx::query_scalar(sql::KV_GET)
                .bind(key)
                .fetch_optional(&self.pool)
                .await?)
        }

        async fn kv_set(&self, key: &str, value: &str) -> Result<(), StoreError> {
            let mut tx = self.write().await?;
            sqlx::query(sql::KV_SET)
                .bind(key)
                .bind(value)
                .bind(Time(Utc::now()))
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
            Ok(())
        }

        async fn kv_prefixed(&self, prefix: &str) -> Result<Vec<(String, String)>, StoreError> {
            let len = i32::try_from(prefix.chars().count()).unwrap_or(i32::MAX);
            Ok(sqlx::query_as(sql::KV_PREFIXED)
                .bind(prefix)
                .bind(len)
                .fetch_all(&self.pool)
                .await?)
        }
    };
}

/// Counting and exporting rows (`db copy`).
macro_rules! common_copy_methods {
    () => {
        async fn table_counts(&self) -> Result<BTreeMap<Table, i64>, StoreError> {
            let rows = sqlx::query_as(sql::TABLE_COUNTS)
                .fetch_all(&self.pool)
                .await?;
            Ok(sql::table_counts(rows))
        }

        async fn export_rows(
            &self,
            table: Table,
            after_id: i64,
            limit: usize,
        ) -> Result<Rows, StoreError> {
            let rows = sqlx::query(AssertSqlSafe(table.export_sql()))
                .bind(after_id)
                .bind(limit as i64)
                .fetch_all(&self.pool)
                .await?;
            Rows::from_db(table, &rows)
        }
    };
}
