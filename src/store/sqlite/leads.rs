//! Leads on SQLite: imports (one `json_each` batch per statement), reads, the timeline, and
//! the hand-over to and back from sales.

use std::collections::{BTreeSet, HashMap};

use serde_json::{Value, json};

use super::*;

/// Leads re-warmed since $1 (optionally of owner $2), with when: `id`, `at`.
const LEADS_REWARMED: &str = "SELECT l.id, r.at FROM leads l
             CROSS JOIN (SELECT lead_id, max(at) AS at FROM events WHERE kind = 'rewarmed' GROUP BY lead_id) r ON r.lead_id = l.id
             WHERE l.state = 'rewarmed' AND r.at >= $1 AND ($2 IS NULL OR lower(l.owner_email) = lower($2))
             ORDER BY r.at DESC, l.id";

/// `recycle`: the lead's ($1) deliveries cancelled while their enrolment was stopped are
/// scheduled again at $2, not before `resume_at` ($3).
const RECYCLE_RESUME: &str = "UPDATE deliveries SET state = 'scheduled', due_at = max(due_at, $3), claimed_by = NULL, lease_until = NULL, updated_at = $2
             WHERE lead_id = $1 AND state = 'cancelled'
               AND EXISTS (SELECT 1 FROM enrolments e WHERE e.id = deliveries.enrolment_id AND e.cycle = deliveries.cycle AND e.state = 'stopped')";

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

    common_lead_methods!();

    async fn leads_by_ids(&self, ids: &[i64]) -> Result<Vec<Lead>, StoreError> {
        let rows: Vec<LeadRow> = sqlx::query_as(select_leads!(
            "WHERE id IN (SELECT value FROM json_each($1))"
        ))
        .bind(json!(ids))
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
}
