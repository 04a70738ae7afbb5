//! Leads on SQLite: imports (one `json_each` batch per statement), reads, the timeline, and
//! the hand-over to and back from sales.

use std::collections::{BTreeSet, HashMap};

use serde_json::{Value, json};

use super::*;
use crate::store::batch::{Folded, recycle_target};
use crate::store::rows::{EventRow, LeadRow, RewarmedRow};

impl LeadStore for SqliteStore {
    async fn upsert_leads(
        &self,
        leads: &[NewLead],
        source: &str,
        now: DateTime<Utc>,
    ) -> Result<UpsertSummary, StoreError> {
        let folded = Folded::new(leads);
        if folded.order.is_empty() {
            return Ok(UpsertSummary::default());
        }
        let mut tx = self.write().await?;
        let existing: Vec<LeadRow> = sqlx::query_as(select_leads!(
            "WHERE email IN (SELECT value FROM json_each($1))"
        ))
        .bind(json!(folded.emails()))
        .fetch_all(&mut *tx)
        .await?;
        let existing = existing
            .into_iter()
            .map(LeadRow::into_lead)
            .collect::<Result<_, _>>()?;
        let plan = folded.plan(existing, source);
        if !plan.inserts.is_empty() {
            let inserts = Value::Array(plan.inserts);
            sqlx::query(
                "INSERT INTO leads (email, first_name, last_name, company, title, owner_email, owner_name, lost_reason, lost_at, timezone, tags, fields, state, created_at, updated_at)
                 SELECT j.value->>'email', j.value->>'first_name', j.value->>'last_name', j.value->>'company', j.value->>'title',
                        j.value->>'owner_email', j.value->>'owner_name', j.value->>'lost_reason', j.value->>'lost_at', j.value->>'timezone',
                        j.value->>'tags', j.value->>'fields',
                        CASE WHEN EXISTS (SELECT 1 FROM suppressions s WHERE s.address IN (j.value->>'email', j.value->>'at_domain'))
                             THEN 'suppressed' ELSE 'new' END,
                        $2, $2
                 FROM json_each($1) j",
            )
            .bind(&inserts)
            .bind(Time(now))
            .execute(&mut *tx)
            .await?;
            // A new lead whose address or domain is on the suppression list arrives
            // `suppressed`, and its event says which entry did it.
            sqlx::query(
                "INSERT INTO events (lead_id, at, kind, detail)
                 SELECT l.id, $2, 'imported',
                        CASE WHEN l.state = 'suppressed'
                             THEN (SELECT json_object('source', $3, 'state', 'suppressed', 'reason', s.reason, 'evidence', json(s.evidence), 'address', s.address)
                                   FROM suppressions s WHERE s.address IN (j.value->>'email', j.value->>'at_domain')
                                   ORDER BY s.address LIKE '@%' LIMIT 1)
                             ELSE json_object('source', $3, 'state', l.state) END
                 FROM json_each($1) j CROSS JOIN leads l ON l.email = j.value->>'email'",
            )
            .bind(&inserts)
            .bind(Time(now))
            .bind(source)
            .execute(&mut *tx)
            .await?;
        }
        if !plan.updates.is_empty() {
            let updates = Value::Array(plan.updates);
            sqlx::query(
                "UPDATE leads SET first_name = j.value->>'first_name', last_name = j.value->>'last_name', company = j.value->>'company',
                        title = j.value->>'title', owner_email = j.value->>'owner_email', owner_name = j.value->>'owner_name',
                        lost_reason = j.value->>'lost_reason', lost_at = j.value->>'lost_at', timezone = j.value->>'timezone',
                        tags = j.value->>'tags', fields = j.value->>'fields', updated_at = $2
                 FROM json_each($1) j WHERE leads.id = j.value->>'id'",
            )
            .bind(&updates)
            .bind(Time(now))
            .execute(&mut *tx)
            .await?;
            sqlx::query(
                "INSERT INTO events (lead_id, at, kind, detail) SELECT j.value->>'id', $2, 'updated', j.value->>'detail' FROM json_each($1) j",
            )
            .bind(&updates)
            .bind(Time(now))
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(plan.summary)
    }

    async fn lead_by_email(&self, email: &EmailAddress) -> Result<Option<Lead>, StoreError> {
        let row: Option<LeadRow> = sqlx::query_as(sql::LEAD_BY_EMAIL)
            .bind(email.as_str())
            .fetch_optional(&self.pool)
            .await?;
        row.map(LeadRow::into_lead).transpose()
    }

    async fn leads_by_ids(&self, ids: &[i64]) -> Result<Vec<Lead>, StoreError> {
        let rows: Vec<LeadRow> = sqlx::query_as(select_leads!(
            "WHERE id IN (SELECT value FROM json_each($1))"
        ))
        .bind(json!(ids))
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter().map(LeadRow::into_lead).collect()
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

    async fn field_names(&self) -> Result<BTreeSet<String>, StoreError> {
        let names: Vec<String> =
            sqlx::query_scalar("SELECT DISTINCT j.key FROM leads, json_each(leads.fields) j")
                .fetch_all(&self.pool)
                .await?;
        Ok(names.into_iter().collect())
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
        let rows: Vec<RewarmedRow> = sqlx::query_as(
            "SELECT l.id, r.at FROM leads l
             CROSS JOIN (SELECT lead_id, max(at) AS at FROM events WHERE kind = 'rewarmed' GROUP BY lead_id) r ON r.lead_id = l.id
             WHERE l.state = 'rewarmed' AND r.at >= $1 AND ($2 IS NULL OR lower(l.owner_email) = lower($2))
             ORDER BY r.at DESC, l.id",
        )
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
        let Some(from) = state.filter(|s| s == "rewarmed" || s == "completed") else {
            return Ok(None);
        };
        let resumed = sqlx::query(
            "UPDATE deliveries SET state = 'scheduled', due_at = max(due_at, $3), claimed_by = NULL, lease_until = NULL, updated_at = $2
             WHERE lead_id = $1 AND state = 'cancelled'
               AND enrolment_id IN (SELECT id FROM enrolments WHERE lead_id = $1 AND state = 'stopped')",
        )
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
}
