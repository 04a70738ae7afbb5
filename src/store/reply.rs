//! What a human reply read for its intent does to its lead ([`InboundEffect::Reply`]), inside
//! `record_inbound`'s transaction: the same statements on both databases, expanded per
//! backend by [`reply_write_steps`] (like `common_write_steps`, whose `insert_event`,
//! `enqueue` and re-warm it uses).

/// `Retire`: the lead's ($1) waiting deliveries are cancelled, its active enrolments stop.
pub(crate) const RETIRE_CADENCE: [&str; 2] = [
    crate::store::shared::CANCEL_WAITING,
    "UPDATE enrolments SET state = 'stopped', ended_at = $2 WHERE lead_id = $1 AND state = 'active'",
];
/// `Retire`: the lead ($1) becomes `completed` ($2 = now): only `new` leads are enrolled, so
/// it gets nothing more.
pub(crate) const RETIRE_LEAD: &str =
    "UPDATE leads SET state = 'completed', updated_at = $2 WHERE id = $1";
/// A referral ($2 address, $3 first name, $4 last name, $5 `@domain`, $6 now) becomes a lead
/// like the one who referred it ($1): company, owner, loss, zone, tags and fields carried
/// over; `suppressed` if its address or domain is listed. Nothing if the address is a lead.
pub(crate) const INSERT_REFERRED: &str = "INSERT INTO leads (email, first_name, last_name, company, title, owner_email, owner_name, lost_reason, lost_at, timezone, tags, fields, state, created_at, updated_at)
     SELECT $2, $3, $4, company, NULL, owner_email, owner_name, lost_reason, lost_at, timezone, tags, fields,
            CASE WHEN EXISTS (SELECT 1 FROM suppressions s WHERE s.address IN ($2, $5)) THEN 'suppressed' ELSE 'new' END, $6, $6
     FROM leads WHERE id = $1
     ON CONFLICT (email) DO NOTHING RETURNING id";
pub(crate) const LEAD_ID_BY_EMAIL: &str = "SELECT id FROM leads WHERE email = $1";
pub(crate) const LEAD_STATE_BY_ID: &str = "SELECT state FROM leads WHERE id = $1";

/// The `replied` event of a read reply: {text, subject, classification, inbound_id, intent,
/// intent_rule, intent_phrase} and, when the reply has them, `intent_when`
/// (the named moment) and `referrals` — flat, so a timeline shows them on one line.
pub(crate) fn replied_detail(
    (text, subject): (&str, Option<&str>),
    classification: &str,
    inbound_id: i64,
    intent: &serde_json::Value,
) -> serde_json::Value {
    let mut d = serde_json::json!({
        "text": text, "subject": subject, "classification": classification,
        "inbound_id": inbound_id, "intent": intent["intent"], "intent_rule": intent["rule"],
    });
    for (key, from) in [("intent_phrase", "phrase"), ("intent_when", "when")] {
        if !intent[from].is_null() {
            d[key] = intent[from].clone();
        }
    }
    if intent["referrals"]
        .as_array()
        .is_some_and(|a| !a.is_empty())
    {
        d["referrals"] = intent["referrals"].clone();
    }
    d
}

/// `apply_reply` for the backend's connection type.
macro_rules! reply_write_steps {
    ($conn:ty) => {
        /// Applies [`InboundEffect::Reply`] to a matched lead (in `state`); returns the effects
        /// summary.
        #[allow(clippy::too_many_arguments)]
        async fn apply_reply(
            conn: &mut $conn,
            lead_id: i64,
            state: &str,
            inbound_id: i64,
            record: &InboundRecord,
            (text, subject, intent): (&str, Option<&str>, &Value),
            action: &ReplyAction,
            now: DateTime<Utc>,
        ) -> Result<Value, StoreError> {
            let replied = $crate::store::reply::replied_detail(
                (text, subject),
                &record.classification,
                inbound_id,
                intent,
            );
            insert_event(conn, lead_id, "replied", &replied, now).await?;
            let name = intent["intent"].clone();
            Ok(match action {
                ReplyAction::Rewarm { notifications, needs_look } => {
                    let rewarmed = $crate::store::batch::rewarmable(state);
                    if rewarmed {
                        for sql in sql::REWARM {
                            sqlx::query(sql).bind(lead_id).bind(Time(now)).execute(&mut *conn).await?;
                        }
                        let mut detail = json!({"from": state, "to": "rewarmed", "reason": "reply", "intent": name});
                        if *needs_look {
                            detail["needs_look"] = json!(true);
                        }
                        insert_event(conn, lead_id, "rewarmed", &detail, now).await?;
                    }
                    let queued = if state == "suppressed" { 0 } else { enqueue(conn, notifications, now).await? };
                    json!({"effect": "rewarm", "intent": name, "needs_look": needs_look,
                           "rewarmed": rewarmed, "notifications": queued})
                }
                ReplyAction::Postpone { until } => {
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
                        &json!({"until": until, "reason": "reply", "intent": name,
                                "phrase": intent["when_phrase"], "deliveries": n, "inbound_id": inbound_id}),
                        now,
                    )
                    .await?;
                    json!({"effect": "postpone", "intent": name, "until": until, "deliveries": n})
                }
                ReplyAction::OutOfScope { reason, recheck_at } => {
                    let transition = $crate::domain::lifecycle::Transition::OutOfScope {
                        reason: reason.clone(),
                        recheck_at: Some(*recheck_at),
                    };
                    let change = lifecycle_tx(conn, lead_id, &transition, "reply", now).await?;
                    let applied = matches!(change, LifecycleChange::Applied { .. });
                    json!({"effect": "out_of_scope", "intent": name, "applied": applied,
                           "recheck_at": recheck_at})
                }
                ReplyAction::Retire { reason, referrals, notifications } => {
                    let retired = state != "suppressed";
                    if retired {
                        for sql in $crate::store::reply::RETIRE_CADENCE {
                            sqlx::query(sql).bind(lead_id).bind(Time(now)).execute(&mut *conn).await?;
                        }
                        sqlx::query($crate::store::reply::RETIRE_LEAD)
                            .bind(lead_id)
                            .bind(Time(now))
                            .execute(&mut *conn)
                            .await?;
                    }
                    let to = if retired { "completed" } else { state };
                    let mut created = Vec::new();
                    for r in referrals {
                        created.push(refer(conn, lead_id, r, inbound_id, now).await?);
                    }
                    insert_event(
                        conn,
                        lead_id,
                        "retired",
                        &json!({"reason": reason, "from": state, "to": to, "inbound_id": inbound_id,
                                "address": record.from_address, "referrals": intent["referrals"],
                                "leads": created}),
                        now,
                    )
                    .await?;
                    let queued = if state == "suppressed" { 0 } else { enqueue(conn, notifications, now).await? };
                    json!({"effect": "retire", "intent": name, "retired": retired,
                           "referred": created, "notifications": queued})
                }
            })
        }

        /// One referral becomes a lead (or is linked to the lead it already is): `referred`
        /// events on both timelines. Returns {lead_id, email, new, state}.
        async fn refer(
            conn: &mut $conn,
            from_lead: i64,
            r: &ReferralLead,
            inbound_id: i64,
            now: DateTime<Utc>,
        ) -> Result<Value, StoreError> {
            let domain = r.email.rsplit('@').next().unwrap_or_default();
            let inserted: Option<i64> = sqlx::query_scalar($crate::store::reply::INSERT_REFERRED)
                .bind(from_lead)
                .bind(&r.email)
                .bind(&r.first_name)
                .bind(&r.last_name)
                .bind(format!("@{domain}"))
                .bind(Time(now))
                .fetch_optional(&mut *conn)
                .await?;
            let (id, new) = match inserted {
                Some(id) => (id, true),
                None => {
                    let id: i64 = sqlx::query_scalar($crate::store::reply::LEAD_ID_BY_EMAIL)
                        .bind(&r.email)
                        .fetch_one(&mut *conn)
                        .await?;
                    (id, false)
                }
            };
            let state: String = sqlx::query_scalar($crate::store::reply::LEAD_STATE_BY_ID)
                .bind(id)
                .fetch_one(&mut *conn)
                .await?;
            if new {
                insert_event(conn, id, "imported", &json!({"source": "referral", "state": state}), now).await?;
            }
            insert_event(
                conn,
                id,
                "referred",
                &json!({"referred_by": from_lead, "inbound_id": inbound_id, "new": new}),
                now,
            )
            .await?;
            insert_event(
                conn,
                from_lead,
                "referred",
                &json!({"lead_id": id, "email": r.email, "new": new, "inbound_id": inbound_id}),
                now,
            )
            .await?;
            Ok(json!({"lead_id": id, "email": r.email, "new": new, "state": state}))
        }
    };
}
