//! Leads on PostgreSQL: imports (under the write lock, one multi-row statement per step,
//! ids in the file's order), reads, the timeline, and the hand-over to and back from sales.

use std::collections::{BTreeSet, HashMap};

use crate::store::import::{Folded, Merged, NewRow};

use serde_json::{Value, json};

use super::*;

/// Leads re-warmed since $1 (optionally of owner $2), with when: `id`, `at`.
const LEADS_REWARMED: &str = "SELECT l.id, r.at FROM leads l
             JOIN (SELECT lead_id, max(at) AS at FROM events WHERE kind = 'rewarmed' GROUP BY lead_id) r ON r.lead_id = l.id
             WHERE l.state = 'rewarmed' AND r.at >= $1 AND ($2::text IS NULL OR lower(l.owner_email) = lower($2::text))
             ORDER BY r.at DESC, l.id";

/// `recycle`: the lead's ($1) deliveries cancelled while their enrolment was stopped are
/// scheduled again at $2, not before `resume_at` ($3).
const RECYCLE_RESUME: &str = concat!(
    "UPDATE deliveries SET state = 'scheduled', due_at = GREATEST(due_at, $3), claimed_by = NULL, lease_until = NULL, updated_at = $2 WHERE ",
    of_leads!("$1"),
    " AND (state = 'cancelled') IS TRUE
      AND EXISTS (SELECT 1 FROM enrolments e WHERE e.id = deliveries.enrolment_id AND e.cycle = deliveries.cycle AND e.state = 'stopped')"
);

/// The known leads among the addresses $1: id, address, import hash.
const KNOWN_FOR_IMPORT: &str = "SELECT id, email, import_hash FROM leads WHERE email = ANY($1)";

/// The addresses among $1 whose address or `@domain` is on the suppression list.
const SUPPRESSED_AMONG: &str = "SELECT e FROM UNNEST($1::text[]) AS e
     WHERE EXISTS (SELECT 1 FROM suppressions s WHERE s.address IN (e, rewarm_at_domain(e)))";

impl LeadStore for PgStore {
    /// Larger chunks did not pay here (100k leads: 3.8 s in chunks of 5,000 or 20,000) and
    /// only held more memory.
    const IMPORT_CHUNK: usize = 5_000;

    async fn upsert_leads(
        &self,
        leads: &[NewLead],
        source: &str,
        now: DateTime<Utc>,
    ) -> Result<UpsertSummary, StoreError> {
        let folded = Folded::new(leads);
        if folded.is_empty() {
            return Ok(UpsertSummary::default());
        }
        retrying!(self.upsert_once(&folded, source, now))
    }

    common_lead_methods!();

    async fn import_lookup(&self, emails: &[&str]) -> Result<ImportLookup, StoreError> {
        let known: Vec<(i64, String, Option<i64>)> = sqlx::query_as(KNOWN_FOR_IMPORT)
            .bind(emails)
            .fetch_all(&self.pool)
            .await?;
        let suppressed: Vec<String> = sqlx::query_scalar(SUPPRESSED_AMONG)
            .bind(emails)
            .fetch_all(&self.pool)
            .await?;
        Ok(ImportLookup {
            known,
            suppressed: suppressed.into_iter().collect(),
        })
    }

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

/// New leads in file order from one array per column (`UNNEST`), each with its `imported`
/// event in the same statement: ids are handed out in the file's order, and a new lead whose
/// address or domain is on the suppression list arrives `suppressed`, its event saying why.
const INSERT_NEW: &str = "WITH v AS (
        SELECT * FROM UNNEST($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[], $8::text[],
                             $9::bigint[], $10::text[], $11::text[], $12::text[], $13::bigint[])
            WITH ORDINALITY AS v(email, first_name, last_name, company, title, owner_email, owner_name, lost_reason,
                                 lost_at, timezone, tags, fields, import_hash, n)),
    ins AS (
        INSERT INTO leads (email, first_name, last_name, company, title, owner_email, owner_name, lost_reason, lost_at, timezone,
                           tags, fields, import_hash, state, created_at, updated_at)
        SELECT email, first_name, last_name, company, title, owner_email, owner_name, lost_reason, rewarm_ms(lost_at), timezone,
               tags::jsonb, fields::jsonb, import_hash,
               CASE WHEN EXISTS (SELECT 1 FROM suppressions s WHERE s.address IN (v.email, rewarm_at_domain(v.email)))
                    THEN 'suppressed' ELSE 'new' END,
               $14, $14
        FROM v ORDER BY n
        RETURNING id, email, state)
     INSERT INTO events (lead_id, at, kind, detail)
     SELECT ins.id, $14, 'imported',
            CASE WHEN ins.state = 'suppressed'
                 THEN jsonb_build_object('source', $15::text, 'state', 'suppressed', 'reason', s.reason, 'evidence', s.evidence, 'address', s.address)
                 ELSE jsonb_build_object('source', $15::text, 'state', ins.state) END
     FROM ins LEFT JOIN LATERAL (
        SELECT s2.reason, s2.evidence, s2.address FROM suppressions s2 WHERE s2.address IN (ins.email, rewarm_at_domain(ins.email))
        ORDER BY s2.address LIKE '@%' LIMIT 1) s ON true
     ORDER BY ins.id";

/// One array per column of the new leads, as `INSERT_NEW` binds them.
#[derive(Default)]
struct Columns<'a> {
    email: Vec<&'a str>,
    text: [Vec<Option<&'a str>>; 7],
    lost_at: Vec<Option<i64>>,
    timezone: Vec<Option<&'static str>>,
    tags: Vec<String>,
    fields: Vec<String>,
    hash: Vec<i64>,
}

impl<'a> Columns<'a> {
    fn new(new: &[(&'a NewLead, i64)]) -> Self {
        let mut c = Columns::default();
        for row in new
            .iter()
            .filter_map(|(lead, hash)| NewRow::new(lead, *hash))
        {
            let l = row.lead;
            let texts = [
                l.first_name.as_deref(),
                l.last_name.as_deref(),
                l.company.as_deref(),
                l.title.as_deref(),
                row.owner_email(),
                l.owner_name.as_deref(),
                l.lost_reason.as_deref(),
            ];
            for (column, value) in c.text.iter_mut().zip(texts) {
                column.push(value);
            }
            c.email.push(row.email);
            c.lost_at.push(row.lost_at);
            c.timezone.push(row.timezone());
            c.hash.push(row.hash);
            c.tags.push(row.tags);
            c.fields.push(row.fields);
        }
        c
    }
}

impl PgStore {
    /// One attempt of `upsert_leads` (see `retrying!`).
    async fn upsert_once(
        &self,
        folded: &Folded<'_>,
        source: &str,
        now: DateTime<Utc>,
    ) -> Result<UpsertSummary, StoreError> {
        let mut tx = self.write().await?;
        let known: Vec<(i64, String, Option<i64>)> = sqlx::query_as(KNOWN_FOR_IMPORT)
            .bind(folded.emails())
            .fetch_all(&mut *tx)
            .await?;
        let sorted = folded.sort(known);
        let mut summary = UpsertSummary {
            inserted: sorted.new.len(),
            unchanged: sorted.unchanged,
            ..UpsertSummary::default()
        };
        if !sorted.new.is_empty() {
            let c = Columns::new(&sorted.new);
            let [first, last, company, title, owner_email, owner_name, reason] = &c.text;
            sqlx::query(INSERT_NEW)
                .bind(&c.email)
                .bind(first)
                .bind(last)
                .bind(company)
                .bind(title)
                .bind(owner_email)
                .bind(owner_name)
                .bind(reason)
                .bind(&c.lost_at)
                .bind(&c.timezone)
                .bind(&c.tags)
                .bind(&c.fields)
                .bind(&c.hash)
                .bind(Time(now))
                .bind(source)
                .execute(&mut *tx)
                .await?;
        }
        if !sorted.known.is_empty() {
            let stored: Vec<LeadRow> = sqlx::query_as(select_leads!("WHERE id = ANY($1)"))
                .bind(sorted.known_ids())
                .fetch_all(&mut *tx)
                .await?;
            let stored = stored
                .into_iter()
                .map(LeadRow::into_lead)
                .collect::<Result<_, _>>()?;
            let merged = sorted.merge(stored, source);
            summary.updated = merged.updates.len();
            summary.unchanged += merged.unchanged;
            write_merged(&mut tx, merged, now).await?;
        }
        tx.commit().await?;
        Ok(summary)
    }
}

/// Writes what merging known leads changed, with an `updated` event each, and the new hash of
/// those it left as they were.
async fn write_merged(
    tx: &mut sqlx::PgConnection,
    merged: Merged,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    if !merged.updates.is_empty() {
        let updates = Value::Array(merged.updates);
        sqlx::query(
            "UPDATE leads SET first_name = v->>'first_name', last_name = v->>'last_name', company = v->>'company',
                    title = v->>'title', owner_email = v->>'owner_email', owner_name = v->>'owner_name',
                    lost_reason = v->>'lost_reason', lost_at = rewarm_ms((v->>'lost_at')::bigint), timezone = v->>'timezone',
                    tags = (v->>'tags')::jsonb, fields = (v->>'fields')::jsonb, import_hash = (v->>'import_hash')::bigint, updated_at = $2
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
    if !merged.rehash.is_empty() {
        sqlx::query(
            "UPDATE leads SET import_hash = (v->>'import_hash')::bigint FROM jsonb_array_elements($1) AS j(v) WHERE leads.id = (v->>'id')::bigint",
        )
        .bind(Value::Array(merged.rehash))
        .execute(&mut *tx)
        .await?;
    }
    Ok(())
}
