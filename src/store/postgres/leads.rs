//! Leads on PostgreSQL: imports (under the write lock, one multi-row statement per step,
//! ids in the file's order), reads, the timeline, and the hand-over to and back from sales.

use std::collections::{BTreeSet, HashMap};

use serde_json::{Value, json};

use super::*;

/// Leads re-warmed since $1 (optionally of owner $2), with when: `id`, `at`.
const LEADS_REWARMED: &str = "SELECT l.id, r.at FROM leads l
             JOIN (SELECT lead_id, max(at) AS at FROM events WHERE kind = 'rewarmed' GROUP BY lead_id) r ON r.lead_id = l.id
             WHERE l.state = 'rewarmed' AND r.at >= $1 AND ($2::text IS NULL OR lower(l.owner_email) = lower($2::text))
             ORDER BY r.at DESC, l.id";

/// `recycle`: the lead's ($1) deliveries cancelled while their enrolment was stopped are
/// scheduled again at $2, not before `resume_at` ($3).
const RECYCLE_RESUME: &str = "UPDATE deliveries SET state = 'scheduled', due_at = GREATEST(due_at, $3), claimed_by = NULL, lease_until = NULL, updated_at = $2
             WHERE lead_id = $1 AND state = 'cancelled'
               AND EXISTS (SELECT 1 FROM enrolments e WHERE e.id = deliveries.enrolment_id AND e.cycle = deliveries.cycle AND e.state = 'stopped')";

impl LeadStore for PgStore {
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
        retrying!(self.upsert_once(&folded, source, now))
    }

    common_lead_methods!();

    async fn leads_by_ids(&self, ids: &[i64]) -> Result<Vec<Lead>, StoreError> {
        let rows: Vec<LeadRow> = sqlx::query_as(select_leads!("WHERE id = ANY($1)"))
            .bind(ids)
            .fetch_all(&self.pool)
            .await?;
        rows.into_iter().map(LeadRow::into_lead).collect()
    }

    async fn field_names(&self) -> Result<BTreeSet<String>, StoreError> {
        let names: Vec<String> = sqlx::query_scalar("SELECT DISTINCT jsonb_object_keys(fields) FROM leads WHERE jsonb_typeof(fields) = 'object'")
            .fetch_all(&self.pool)
            .await?;
        Ok(names.into_iter().collect())
    }
}

impl PgStore {
    /// One attempt of `upsert_leads` (see `retrying!`).
    async fn upsert_once(
        &self,
        folded: &Folded,
        source: &str,
        now: DateTime<Utc>,
    ) -> Result<UpsertSummary, StoreError> {
        let mut tx = self.write().await?;
        let existing: Vec<LeadRow> = sqlx::query_as(select_leads!("WHERE email = ANY($1)"))
            .bind(folded.emails())
            .fetch_all(&mut *tx)
            .await?;
        let existing = existing
            .into_iter()
            .map(LeadRow::into_lead)
            .collect::<Result<_, _>>()?;

        let plan = folded.plan(existing, source);
        if !plan.inserts.is_empty() {
            // One multi-row INSERT; ids are handed out in the file's order, and each new
            // lead gets its `imported` event in the same statement. A new lead whose address or
            // domain is on the suppression list arrives `suppressed`, and its event says why.
            sqlx::query(
                "WITH ins AS (
                    INSERT INTO leads (email, first_name, last_name, company, title, owner_email, owner_name, lost_reason, lost_at, timezone,
                                       tags, fields, state, created_at, updated_at)
                    SELECT v->>'email', v->>'first_name', v->>'last_name', v->>'company', v->>'title', v->>'owner_email', v->>'owner_name',
                           v->>'lost_reason', rewarm_ms((v->>'lost_at')::bigint), v->>'timezone', (v->>'tags')::jsonb, (v->>'fields')::jsonb,
                           CASE WHEN EXISTS (SELECT 1 FROM suppressions s WHERE s.address IN (v->>'email', v->>'at_domain'))
                                THEN 'suppressed' ELSE 'new' END,
                           $2, $2
                    FROM jsonb_array_elements($1) WITH ORDINALITY AS j(v, n) ORDER BY n
                    RETURNING id, email, state)
                 INSERT INTO events (lead_id, at, kind, detail)
                 SELECT ins.id, $2, 'imported',
                        CASE WHEN ins.state = 'suppressed'
                             THEN jsonb_build_object('source', $3::text, 'state', 'suppressed', 'reason', s.reason, 'evidence', s.evidence, 'address', s.address)
                             ELSE jsonb_build_object('source', $3::text, 'state', ins.state) END
                 FROM ins LEFT JOIN LATERAL (
                    SELECT s2.reason, s2.evidence, s2.address FROM suppressions s2 WHERE s2.address IN (ins.email, rewarm_at_domain(ins.email))
                    ORDER BY s2.address LIKE '@%' LIMIT 1) s ON true
                 ORDER BY ins.id",
            )
            .bind(Value::Array(plan.inserts))
            .bind(Time(now))
            .bind(source)
            .execute(&mut *tx)
            .await?;
        }
        if !plan.updates.is_empty() {
            let updates = Value::Array(plan.updates);
            sqlx::query(
                "UPDATE leads SET first_name = v->>'first_name', last_name = v->>'last_name', company = v->>'company',
                        title = v->>'title', owner_email = v->>'owner_email', owner_name = v->>'owner_name',
                        lost_reason = v->>'lost_reason', lost_at = rewarm_ms((v->>'lost_at')::bigint), timezone = v->>'timezone',
                        tags = (v->>'tags')::jsonb, fields = (v->>'fields')::jsonb, updated_at = $2
                 FROM jsonb_array_elements($1) AS j(v) WHERE leads.id = (v->>'id')::bigint",
            )
            .bind(&updates)
            .bind(Time(now))
            .execute(&mut *tx)
            .await?;
            sqlx::query(
                "INSERT INTO events (lead_id, at, kind, detail)
                 SELECT (v->>'id')::bigint, $2, 'updated', (v->>'detail')::jsonb FROM jsonb_array_elements($1) WITH ORDINALITY AS j(v, n) ORDER BY n",
            )
            .bind(&updates)
            .bind(Time(now))
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(plan.summary)
    }
}
