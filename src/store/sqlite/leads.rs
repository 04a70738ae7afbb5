//! Leads on SQLite: imports (one `json_each` batch per statement), reads, the timeline, and
//! the hand-over to and back from sales.

use std::collections::{BTreeSet, HashMap};

use crate::store::import::{Folded, Merged, NewRow};

use serde_json::{Value, json};

use super::*;

/// Leads re-warmed since $1 (optionally of owner $2), with when: `id`, `at`.
const LEADS_REWARMED: &str = "SELECT l.id, r.at FROM leads l
             CROSS JOIN (SELECT lead_id, max(at) AS at FROM events WHERE kind = 'rewarmed' GROUP BY lead_id) r ON r.lead_id = l.id
             WHERE l.state = 'rewarmed' AND r.at >= $1 AND ($2 IS NULL OR lower(l.owner_email) = lower($2))
             ORDER BY r.at DESC, l.id";

/// `recycle`: the lead's ($1) deliveries cancelled while their enrolment was stopped are
/// scheduled again at $2, not before `resume_at` ($3).
const RECYCLE_RESUME: &str = concat!(
    "UPDATE deliveries SET state = 'scheduled', due_at = max(due_at, $3), claimed_by = NULL, lease_until = NULL, updated_at = $2 WHERE ",
    of_leads!("$1"),
    " AND (state = 'cancelled') IS TRUE
      AND EXISTS (SELECT 1 FROM enrolments e WHERE e.id = deliveries.enrolment_id AND e.cycle = deliveries.cycle AND e.state = 'stopped')"
);

/// New leads per `INSERT` (14 values each, under SQLite's 32,766 parameters).
const INSERT_ROWS: usize = 500;

/// The `imported` event of every lead inserted after id $3 (this transaction's): a lead whose
/// address or domain is on the suppression list arrived `suppressed`, and its event says
/// which entry did it.
const IMPORTED_EVENTS: &str = at_domain!(
    "INSERT INTO events (lead_id, at, kind, detail)
     SELECT l.id, $1, 'imported',
            CASE WHEN l.state = 'suppressed'
                 THEN (SELECT json_object('source', $2, 'state', 'suppressed', 'reason', s.reason, 'evidence', json(s.evidence), 'address', s.address)
                       FROM suppressions s WHERE s.address IN (l.email, ",
    "l.email",
    ")
                       ORDER BY s.address LIKE '@%' LIMIT 1)
                 ELSE json_object('source', $2, 'state', l.state) END
     FROM leads l WHERE l.id > $3 ORDER BY l.id"
);

/// `INSERT INTO leads … VALUES` for `rows` leads: the time twice, then 14 values a lead.
/// Every parameter is an anonymous `?`: SQLite looks a named or numbered one (`$7001`) up by
/// walking a list of all the statement's names, and sqlx asks for each parameter's name at
/// every execution, so 7,001 numbered parameters cost 24 million steps a statement (70 % of
/// an import's time); anonymous ones are not in that list.
fn insert_sql(rows: usize) -> String {
    let mut sql = String::from(
        "INSERT INTO leads (email, first_name, last_name, company, title, owner_email, owner_name, lost_reason, lost_at, timezone, tags, fields, import_hash, state, created_at, updated_at)
         SELECT column1, column2, column3, column4, column5, column6, column7, column8, column9, column10, column11, column12, column13,
                CASE WHEN EXISTS (SELECT 1 FROM suppressions s WHERE s.address IN (column1, column14)) THEN 'suppressed' ELSE 'new' END,
                ?, ?
         FROM (VALUES ",
    );
    for row in 0..rows {
        if row > 0 {
            sql.push(',');
        }
        sql.push('(');
        for col in 0..14 {
            if col > 0 {
                sql.push(',');
            }
            sql.push('?');
        }
        sql.push(')');
    }
    sql.push(')');
    sql
}

/// The statement for a full batch of [`INSERT_ROWS`], built once.
fn full_insert_sql() -> &'static str {
    static SQL: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    SQL.get_or_init(|| insert_sql(INSERT_ROWS))
}

/// The known leads among the addresses $1 (a JSON array): id, address, import hash.
const KNOWN_FOR_IMPORT: &str =
    "SELECT id, email, import_hash FROM leads WHERE email IN (SELECT value FROM json_each($1))";

/// The addresses among $1 (a JSON array) whose address or `@domain` is on the suppression list.
const SUPPRESSED_AMONG: &str = at_domain!(
    "SELECT j.value FROM json_each($1) j
     WHERE EXISTS (SELECT 1 FROM suppressions s WHERE s.address IN (j.value, ",
    "j.value",
    "))"
);

/// A list of addresses as the JSON text `json_each` reads, written straight from the
/// strings (`json!` would first copy each into a `Value`: 20,000 allocations a chunk).
fn json_strings(items: &[&str]) -> String {
    // Serialising strings cannot fail: every string has a JSON spelling.
    serde_json::to_string(items).expect("a list of strings serialises")
}

impl LeadStore for SqliteStore {
    /// Each commit rewrites into the WAL every page of the eight string indexes (address,
    /// names, company, owner, domain) its random keys touched; at 1M leads chunks of 5,000
    /// wrote 5.7 GB for a 551 MB database and took 42 s, chunks of 20,000 31 s, peak RSS
    /// 80 → 126 MiB (50,000: 27 s, 240 MiB).
    const IMPORT_CHUNK: usize = 20_000;

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
        let mut tx = self.write().await?;
        let known: Vec<(i64, String, Option<i64>)> = sqlx::query_as(KNOWN_FOR_IMPORT)
            .bind(json_strings(&folded.emails()))
            .fetch_all(&mut *tx)
            .await?;
        let sorted = folded.sort(known);
        let mut summary = UpsertSummary {
            inserted: sorted.new.len(),
            unchanged: sorted.unchanged,
            ..UpsertSummary::default()
        };
        if !sorted.new.is_empty() {
            insert_new(&mut tx, &self.row_checks_off, &sorted.new, source, now).await?;
        }
        if !sorted.known.is_empty() {
            let stored: Vec<LeadRow> = sqlx::query_as(select_leads!(
                "WHERE id IN (SELECT value FROM json_each($1))"
            ))
            .bind(json!(sorted.known_ids()))
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

    common_lead_methods!();

    async fn import_lookup(&self, emails: &[&str]) -> Result<ImportLookup, StoreError> {
        let known: Vec<(i64, String, Option<i64>)> = sqlx::query_as(KNOWN_FOR_IMPORT)
            .bind(json_strings(emails))
            .fetch_all(&self.pool)
            .await?;
        let suppressed: Vec<String> = sqlx::query_scalar(SUPPRESSED_AMONG)
            .bind(json_strings(emails))
            .fetch_all(&self.pool)
            .await?;
        Ok(ImportLookup {
            known,
            suppressed: suppressed.into_iter().collect(),
        })
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

    async fn field_names(&self) -> Result<BTreeSet<String>, StoreError> {
        let names: Vec<String> =
            sqlx::query_scalar("SELECT DISTINCT j.key FROM leads, json_each(leads.fields) j")
                .fetch_all(&self.pool)
                .await?;
        Ok(names.into_iter().collect())
    }
}

/// `insert_new`, triggers on again: what `leads_count_insert` and `lead_tags_insert` would
/// have done for each lead inserted after id $1 (this write's), once for the write: the
/// leads counted by state, the tags mirrored in one join.
const IMPORTED_BULK: [&str; 2] = [
    "INSERT INTO state_counts (part, state, campaign, n)
     SELECT 'leads', state, '', count(*) FROM leads WHERE id > $1 GROUP BY state
     ON CONFLICT DO UPDATE SET n = n + excluded.n",
    "INSERT OR IGNORE INTO lead_tags (tag, lead_id)
     SELECT lower(j.value), l.id FROM leads l, json_each(l.tags) j
     WHERE l.id > $1 AND l.tags <> '[]' AND j.type = 'text'",
];

/// Inserts new leads in file order (multi-row `VALUES`, prepared once per size), then their
/// `imported` events in one statement, with the triggers and foreign-key checks off
/// ([`bulk`]); then what the triggers would have done, once for the write
/// (`IMPORTED_BULK`). With a trigger on the table, SQLite writes the rows of a multi-row
/// insert into a temporary B-tree first, whatever the trigger's WHEN says, and runs the
/// tag mirror's `json_each` once per lead. The other insert trigger of these tables,
/// `events_report_insert`, does nothing for an `imported` event (not a report stage); each
/// event's lead is one this write has just inserted (the foreign key's question).
async fn insert_new(
    tx: &mut sqlx::SqliteConnection,
    off: &std::sync::atomic::AtomicUsize,
    new: &[(&NewLead, i64)],
    source: &str,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    let before: i64 = sqlx::query_scalar("SELECT COALESCE(max(id), 0) FROM leads")
        .fetch_one(&mut *tx)
        .await?;
    // The triggers and checks come back on whatever the statements did (see `bulk`).
    bulk::set_row_checks(tx, false, off).await?;
    let written = insert_rows(tx, new, source, now, before).await;
    bulk::set_row_checks(tx, true, off).await?;
    written?;
    for sql in IMPORTED_BULK {
        sqlx::query(sql).bind(before).execute(&mut *tx).await?;
    }
    Ok(())
}

/// `insert_new`'s rows: the leads, then their `imported` events (those after id `before`).
async fn insert_rows(
    tx: &mut sqlx::SqliteConnection,
    new: &[(&NewLead, i64)],
    source: &str,
    now: DateTime<Utc>,
    before: i64,
) -> Result<(), StoreError> {
    for batch in new.chunks(INSERT_ROWS) {
        let rows: Vec<NewRow<'_>> = batch
            .iter()
            .filter_map(|(lead, hash)| NewRow::new(lead, *hash))
            .collect();
        let mut query = if rows.len() == INSERT_ROWS {
            sqlx::query(full_insert_sql())
        } else {
            sqlx::query(sqlx::AssertSqlSafe(insert_sql(rows.len())))
        }
        .bind(Time(now))
        .bind(Time(now));
        for row in &rows {
            query = query
                .bind(row.email)
                .bind(row.lead.first_name.as_deref())
                .bind(row.lead.last_name.as_deref())
                .bind(row.lead.company.as_deref())
                .bind(row.lead.title.as_deref())
                .bind(row.owner_email())
                .bind(row.lead.owner_name.as_deref())
                .bind(row.lead.lost_reason.as_deref())
                .bind(row.lost_at)
                .bind(row.timezone())
                .bind(row.tags.as_str())
                .bind(row.fields.as_str())
                .bind(row.hash)
                .bind(row.at_domain());
        }
        query.execute(&mut *tx).await?;
    }
    sqlx::query(IMPORTED_EVENTS)
        .bind(Time(now))
        .bind(source)
        .bind(before)
        .execute(&mut *tx)
        .await?;
    Ok(())
}

/// Writes what merging known leads changed, with an `updated` event each, and the new hash of
/// those it left as they were.
async fn write_merged(
    tx: &mut sqlx::SqliteConnection,
    merged: Merged,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    if !merged.updates.is_empty() {
        let updates = Value::Array(merged.updates);
        sqlx::query(
            "UPDATE leads SET first_name = j.value->>'first_name', last_name = j.value->>'last_name', company = j.value->>'company',
                    title = j.value->>'title', owner_email = j.value->>'owner_email', owner_name = j.value->>'owner_name',
                    lost_reason = j.value->>'lost_reason', lost_at = j.value->>'lost_at', timezone = j.value->>'timezone',
                    tags = j.value->>'tags', fields = j.value->>'fields', import_hash = j.value->>'import_hash', updated_at = $2
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
    if !merged.rehash.is_empty() {
        sqlx::query(
            "UPDATE leads SET import_hash = j.value->>'import_hash' FROM json_each($1) j WHERE leads.id = j.value->>'id'",
        )
        .bind(Value::Array(merged.rehash))
        .execute(&mut *tx)
        .await?;
    }
    Ok(())
}
