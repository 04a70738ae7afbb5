//! Personal data (`rewarm leads forget`, `rewarm leads export`): the same steps on both
//! databases, expanded per backend by [`privacy_steps`] over its connection type, with the
//! few spellings that differ (the schema query, "contains" on text, JSON and bytes, a row
//! as JSON) in `sqlite/privacy.rs` and `postgres/privacy.rs`.
//!
//! ## What forgetting does, in one write transaction
//! 1. The lead's cadence stops (waiting deliveries cancelled, active enrolments stopped).
//! 2. Its own rows lose their content: every event's detail keeps only its structure
//!    (`domain::privacy::redact_detail`); every inbound message of the lead loses its
//!    sender, subject, text and raw bytes; every notification about it loses its payload
//!    (one still waiting is `failed`, "lead forgotten", and never sent).
//! 3. The lead row keeps its id, owner, loss date and history but becomes
//!    `forgotten-ID@forgotten.invalid`, `suppressed`, every personal column empty.
//! 4. A suppression entry for the exact address is replaced by the keyed hash in
//!    `forgotten` (imports and the API check it); the placeholder domain is listed.
//! 5. **The sweep:** every text, JSON and bytes column of every table, read off the
//!    database's own schema (so a table added later is covered too), is searched for the
//!    address; in those rows, and in every row of a table with a `lead_id` that points at
//!    the lead, each of the person's distinctive values becomes `[erased]` (in another
//!    lead's own row only the address itself is erased).
//! 6. A `forgotten` event {from, to, by, erased: counts} without personal data.

use std::collections::BTreeSet;
use std::future::Future;

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::Value;

use super::StoreError;
use crate::domain::email::EmailAddress;
use crate::domain::lead::LeadState;

/// How a column's cells are searched and rewritten by the sweep.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum CellKind {
    Text,
    Json,
    Bytes,
}

/// One table of the database as its schema describes it: columns in order, each with how
/// the sweep treats it (`None`: numbers, times — nothing personal to erase).
#[derive(Debug, Clone)]
pub(crate) struct SchemaTable {
    pub name: String,
    pub columns: Vec<(String, Option<CellKind>)>,
}

impl SchemaTable {
    pub(crate) fn has(&self, column: &str) -> bool {
        self.columns.iter().any(|(c, _)| c == column)
    }
}

/// Columns that name things of the deployment (states, campaigns, templates, kinds), never
/// a person: the sweep does not rewrite them, so a campaign called like a lead stays intact.
pub(crate) const STRUCTURAL_COLUMNS: &[&str] = &[
    "state",
    "kind",
    "campaign",
    "segment",
    "template",
    "classification",
    "matched_by",
    "source",
    "claimed_by",
    "paused_from",
    "name",
    "key",
    "hash",
    // Another lead's own address is never rewritten (it only contains the person's as a
    // substring); the forgotten lead's was replaced before the sweep.
    "email",
];

/// Tables the sweep leaves alone: the migrations' own bookkeeping, and the hashes.
pub(crate) fn swept(table: &str) -> bool {
    !(table.starts_with("_sqlx") || table.starts_with("sqlite_") || table == "forgotten")
}

/// `"name"`, an identifier quoted for SQL (both databases).
pub(crate) fn ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// What `forget` did (counts only: nothing personal).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ForgetReport {
    /// The lead that was forgotten (None: the address was no lead; its mentions were erased
    /// and the hash kept all the same).
    pub lead_id: Option<i64>,
    pub from: Option<LeadState>,
    pub events: usize,
    pub inbound: usize,
    pub notifications: usize,
    /// Suppression entries of the exact address, replaced by the hash.
    pub suppressions: usize,
    /// Rows in which the sweep erased something.
    pub rows_scrubbed: usize,
}

/// Everything held about one address, table by table, rows as stored.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct PersonalRows {
    /// Rows of every table with a `lead_id` column that point at the lead, by id.
    pub by_lead: std::collections::BTreeMap<String, Vec<Value>>,
    /// Rows of any table (not counted above) that mention the address.
    pub mentions: std::collections::BTreeMap<String, Vec<Value>>,
}

impl PersonalRows {
    /// Rows per table, both kinds together (for `leads forget` without `--yes`).
    pub fn counts(&self) -> std::collections::BTreeMap<String, usize> {
        let mut out = std::collections::BTreeMap::new();
        for (t, rows) in self.by_lead.iter().chain(&self.mentions) {
            *out.entry(t.clone()).or_insert(0) += rows.len();
        }
        out
    }
}

/// Personal data: forgetting a person, and reading back everything held about them.
pub trait PrivacyStore {
    /// Forgets `email` (see the module docs), in one transaction; `hash` is its
    /// `domain::privacy::address_hash`, kept in `forgotten`. `by` is recorded on the event.
    fn forget(
        &self,
        email: &EmailAddress,
        hash: &str,
        by: &str,
        now: DateTime<Utc>,
    ) -> impl Future<Output = Result<ForgetReport, StoreError>> + Send;

    /// Every hash in `forgotten` (one per person forgotten: a short list, read once per
    /// import).
    fn forgotten_hashes(&self)
    -> impl Future<Output = Result<BTreeSet<String>, StoreError>> + Send;

    /// Every row held about `email` (its lead `lead_id`, if any), as stored.
    fn personal_rows(
        &self,
        email: &EmailAddress,
        lead_id: Option<i64>,
    ) -> impl Future<Output = Result<PersonalRows, StoreError>> + Send;
}

/// The lead's row loses every personal column ($1 id, $2 placeholder address, $3 now).
pub(crate) const ANONYMISE_LEAD: &str = "UPDATE leads SET email = $2, first_name = NULL, last_name = NULL, company = NULL, title = NULL,
     lost_reason = NULL, timezone = NULL, tags = '[]', fields = '{}', scope_reason = NULL, recheck_at = NULL,
     paused_from = NULL, import_hash = NULL, state = 'suppressed', updated_at = $3 WHERE id = $1";
/// Every event of the lead ($1), its sent emails' included (see `TIMELINE`).
pub(crate) const LEAD_EVENTS: &str = concat!(
    "SELECT id, detail FROM (",
    lead_events!("id, detail"),
    ") t ORDER BY id"
);
pub(crate) const SET_EVENT_DETAIL: &str = "UPDATE events SET detail = $2 WHERE id = $1";
pub(crate) const LEAD_INBOUND: &str =
    "SELECT id, effects FROM inbound WHERE lead_id = $1 ORDER BY id";
pub(crate) const ERASE_INBOUND: &str = "UPDATE inbound SET from_address = NULL, subject = NULL, text = NULL, raw = $2, effects = $3 WHERE id = $1";
/// A notification about the lead loses its payload; one not sent yet is never sent.
pub(crate) const ERASE_NOTIFICATIONS: &str = "UPDATE notifications SET payload = $2,
     last_error = CASE WHEN state IN ('pending', 'claimed') THEN 'lead forgotten' ELSE last_error END,
     state = CASE WHEN state IN ('pending', 'claimed') THEN 'failed' ELSE state END
     WHERE lead_id = $1";
pub(crate) const DELETE_SUPPRESSION: &str =
    "DELETE FROM suppressions WHERE address = $1 RETURNING reason";
pub(crate) const INSERT_FORGOTTEN: &str = "INSERT INTO forgotten (hash, reason, created_at) VALUES ($1, $2, $3) ON CONFLICT (hash) DO NOTHING";
pub(crate) const LIST_PLACEHOLDER_DOMAIN: &str = "INSERT INTO suppressions (address, reason, evidence, created_at) VALUES ($1, 'manual', $2, $3) ON CONFLICT (address) DO NOTHING";
pub(crate) const FORGOTTEN_HASHES: &str = "SELECT hash FROM forgotten";

/// The steps of `forget` and `personal_rows` over the backend's connection type. The
/// backend's `privacy.rs` supplies `SCHEMA_SQL` (table, column, type), `cell_kind(type)`,
/// `contains_sql(column, kind)` (true when the cell holds `$1`, lower-cased),
/// `read_sql(column, kind)`, `write_param(kind)` and `row_json_sql(table)`.
macro_rules! privacy_steps {
    ($conn:ty) => {
        /// Every table and column, from the database's own schema.
        async fn schema_tx(conn: &mut $conn) -> Result<Vec<SchemaTable>, StoreError> {
            let rows: Vec<(String, String, String)> =
                sqlx::query_as(SCHEMA_SQL).fetch_all(&mut *conn).await?;
            let mut tables: Vec<SchemaTable> = Vec::new();
            for (table, column, ty) in rows {
                if tables.last().is_none_or(|t| t.name != table) {
                    tables.push(SchemaTable { name: table, columns: Vec::new() });
                }
                if let Some(t) = tables.last_mut() {
                    t.columns.push((column, cell_kind(&ty)));
                }
            }
            Ok(tables)
        }

        /// The `WHERE` of the rows of `table` about the person: a cell holds the address
        /// (`$1`), or (`by_lead`) the row's `lead_id` is `$2`.
        fn about_sql(table: &SchemaTable, by_lead: bool) -> Option<String> {
            let mut terms: Vec<String> = table
                .columns
                .iter()
                .filter_map(|(c, k)| k.map(|k| contains_sql(c, k)))
                .collect();
            if by_lead {
                terms.push("lead_id = $2".to_string());
            }
            (!terms.is_empty()).then(|| terms.join(" OR "))
        }

        /// Erases the person's values in every row about them (module docs, step 5).
        /// Returns how many rows changed.
        async fn sweep_tx(
            conn: &mut $conn,
            schema: &[SchemaTable],
            needles: &Needles,
            lead_id: Option<i64>,
        ) -> Result<usize, StoreError> {
            let mut changed = BTreeSet::new();
            for table in schema.iter().filter(|t| swept(&t.name)) {
                if !table.has("id") {
                    tracing::warn!(table = %table.name, "Table without an id column: not searched for personal data");
                    continue;
                }
                let row_needles = if table.name == "leads" { needles.address_only() } else { needles.clone() };
                let by_lead = lead_id.is_some() && table.has("lead_id");
                let lead_term = if by_lead { " OR lead_id = $2" } else { "" };
                for (column, kind) in &table.columns {
                    let Some(kind) = *kind else { continue };
                    if STRUCTURAL_COLUMNS.contains(&column.as_str()) {
                        continue;
                    }
                    let select = format!(
                        "SELECT id, {} FROM {} WHERE {}{lead_term}",
                        read_sql(column, kind), ident(&table.name), contains_sql(column, kind)
                    );
                    let update = format!(
                        "UPDATE {} SET {} = {} WHERE id = $1",
                        ident(&table.name), ident(column), write_param(kind)
                    );
                    if kind == CellKind::Bytes {
                        let mut q = sqlx::query_as::<_, (i64, Option<Vec<u8>>)>(sqlx::AssertSqlSafe(select))
                            .bind(needles.email());
                        if by_lead {
                            q = q.bind(lead_id);
                        }
                        for (id, cell) in q.fetch_all(&mut *conn).await? {
                            let Some(new) = cell.and_then(|b| row_needles.scrub_bytes(&b)) else { continue };
                            sqlx::query(sqlx::AssertSqlSafe(update.clone())).bind(id).bind(new).execute(&mut *conn).await?;
                            changed.insert((table.name.clone(), id));
                        }
                    } else {
                        let mut q = sqlx::query_as::<_, (i64, Option<String>)>(sqlx::AssertSqlSafe(select))
                            .bind(needles.email());
                        if by_lead {
                            q = q.bind(lead_id);
                        }
                        for (id, cell) in q.fetch_all(&mut *conn).await? {
                            let scrubbed = cell.and_then(|t| match kind {
                                CellKind::Json => row_needles.scrub_json_text(&t),
                                _ => row_needles.scrub_cell(&t),
                            });
                            let Some(new) = scrubbed else { continue };
                            sqlx::query(sqlx::AssertSqlSafe(update.clone())).bind(id).bind(new).execute(&mut *conn).await?;
                            changed.insert((table.name.clone(), id));
                        }
                    }
                }
            }
            Ok(changed.len())
        }

        /// Every row about the person, as JSON objects (see [`PersonalRows`]).
        async fn personal_rows_tx(
            conn: &mut $conn,
            email: &EmailAddress,
            lead_id: Option<i64>,
        ) -> Result<PersonalRows, StoreError> {
            let schema = schema_tx(conn).await?;
            let mut out = PersonalRows::default();
            let needle = email.as_str().to_ascii_lowercase();
            for table in schema.iter().filter(|t| swept(&t.name) && t.has("id")) {
                let by_lead = lead_id.is_some() && table.has("lead_id");
                if by_lead {
                    // A lead's deliveries are found through its enrolments (`of_leads!`).
                    let of_lead = match table.name.as_str() {
                        "deliveries" => of_leads!("$1"),
                        _ => "lead_id = $1",
                    };
                    let sql = format!(
                        "SELECT {} FROM {} WHERE {of_lead} ORDER BY id",
                        row_json_sql(table), ident(&table.name)
                    );
                    let rows: Vec<String> = sqlx::query_scalar(sqlx::AssertSqlSafe(sql))
                        .bind(lead_id)
                        .fetch_all(&mut *conn)
                        .await?;
                    out.by_lead.insert(table.name.clone(), parse_rows(rows));
                }
                let Some(about) = about_sql(table, false) else { continue };
                let skip = match (by_lead, table.name.as_str()) {
                    (true, _) => " AND (lead_id IS NULL OR lead_id <> $2)",
                    (false, "leads") if lead_id.is_some() => " AND id <> $2",
                    _ => "",
                };
                let sql = format!(
                    "SELECT {} FROM {} WHERE ({about}){skip} ORDER BY id",
                    row_json_sql(table), ident(&table.name)
                );
                let mut q = sqlx::query_scalar::<_, String>(sqlx::AssertSqlSafe(sql)).bind(needle.clone());
                if !skip.is_empty() {
                    q = q.bind(lead_id);
                }
                let rows = q.fetch_all(&mut *conn).await?;
                if !rows.is_empty() {
                    out.mentions.insert(table.name.clone(), parse_rows(rows));
                }
            }
            Ok(out)
        }

        /// Forgets the person (module docs), inside the caller's transaction.
        async fn forget_tx(
            conn: &mut $conn,
            lead: Option<&Lead>,
            email: &EmailAddress,
            hash: &str,
            by: &str,
            now: DateTime<Utc>,
        ) -> Result<ForgetReport, StoreError> {
            let mut report = ForgetReport::default();
            let needles = match lead {
                Some(lead) => {
                    let held: Option<LifecycleRow> = sqlx::query_as(sql::LEAD_LIFECYCLE)
                        .bind(lead.id)
                        .fetch_optional(&mut *conn)
                        .await?;
                    let scope_reason = held.and_then(|h| h.parse(lead.id).ok()).and_then(|(_, h)| h.scope_reason);
                    Needles::of_lead(lead, &scope_reason.iter().map(String::as_str).collect::<Vec<_>>())
                }
                None => Needles::address(email),
            };
            if let Some(lead) = lead {
                report.lead_id = Some(lead.id);
                report.from = Some(lead.state);
                for stmt in crate::store::reply::RETIRE_CADENCE {
                    sqlx::query(stmt).bind(lead.id).bind(Time(now)).execute(&mut *conn).await?;
                }
                let events: Vec<(i64, Detail)> = sqlx::query_as(LEAD_EVENTS).bind(lead.id).fetch_all(&mut *conn).await?;
                for (id, detail) in &events {
                    let redacted = redact_detail(&detail.0, &needles);
                    sqlx::query(SET_EVENT_DETAIL).bind(id).bind(&redacted).execute(&mut *conn).await?;
                }
                report.events = events.len();
                let inbound: Vec<(i64, Detail)> = sqlx::query_as(LEAD_INBOUND).bind(lead.id).fetch_all(&mut *conn).await?;
                for (id, effects) in &inbound {
                    sqlx::query(ERASE_INBOUND)
                        .bind(id)
                        .bind(Vec::<u8>::new())
                        .bind(redact_detail(&effects.0, &needles))
                        .execute(&mut *conn)
                        .await?;
                }
                report.inbound = inbound.len();
                report.notifications = sqlx::query(ERASE_NOTIFICATIONS)
                    .bind(lead.id)
                    .bind(serde_json::json!({"erased": true}))
                    .execute(&mut *conn)
                    .await?
                    .rows_affected() as usize;
                sqlx::query(ANONYMISE_LEAD)
                    .bind(lead.id)
                    .bind(placeholder_email(lead.id))
                    .bind(Time(now))
                    .execute(&mut *conn)
                    .await?;
            }
            let reasons: Vec<String> = sqlx::query_scalar(DELETE_SUPPRESSION).bind(email.as_str()).fetch_all(&mut *conn).await?;
            report.suppressions = reasons.len();
            let reason = reasons.first().map_or("forgotten", String::as_str);
            sqlx::query(INSERT_FORGOTTEN).bind(hash).bind(reason).bind(Time(now)).execute(&mut *conn).await?;
            sqlx::query(LIST_PLACEHOLDER_DOMAIN)
                .bind(format!("@{PLACEHOLDER_DOMAIN}"))
                .bind(serde_json::json!({"source": "leads forget", "note": "placeholder addresses of forgotten leads"}))
                .bind(Time(now))
                .execute(&mut *conn)
                .await?;
            let schema = schema_tx(conn).await?;
            report.rows_scrubbed = sweep_tx(conn, &schema, &needles, report.lead_id).await?;
            if let (Some(lead), Some(from)) = (lead, report.from) {
                let detail = serde_json::json!({
                    "from": from.as_str(), "to": "suppressed", "by": by,
                    "erased": {"events": report.events, "inbound": report.inbound,
                               "notifications": report.notifications, "suppressions": report.suppressions,
                               "rows": report.rows_scrubbed},
                });
                insert_event(conn, lead.id, "forgotten", &detail, now).await?;
            }
            Ok(report)
        }
    };
}

/// The methods of [`PrivacyStore`] (inside `impl PrivacyStore for …`), over the backend's
/// `write()` transaction and pool.
macro_rules! privacy_methods {
    () => {
        async fn forget(
            &self,
            email: &EmailAddress,
            hash: &str,
            by: &str,
            now: DateTime<Utc>,
        ) -> Result<ForgetReport, StoreError> {
            let lead = self.lead_by_email(email).await?;
            let mut tx = self.write().await?;
            let report = forget_tx(&mut tx, lead.as_ref(), email, hash, by, now).await?;
            tx.commit().await?;
            Ok(report)
        }

        async fn forgotten_hashes(&self) -> Result<BTreeSet<String>, StoreError> {
            let hashes: Vec<String> = sqlx::query_scalar(FORGOTTEN_HASHES)
                .fetch_all(&self.pool)
                .await?;
            Ok(hashes.into_iter().collect())
        }

        async fn personal_rows(
            &self,
            email: &EmailAddress,
            lead_id: Option<i64>,
        ) -> Result<PersonalRows, StoreError> {
            let mut conn = self.pool.acquire().await?;
            personal_rows_tx(&mut conn, email, lead_id).await
        }
    };
}

/// Rows read as JSON text; one that does not parse is kept as a string.
pub(crate) fn parse_rows(rows: Vec<String>) -> Vec<Value> {
    rows.into_iter()
        .map(|r| serde_json::from_str(&r).unwrap_or(Value::String(r)))
        .collect()
}

/// `leads` without the forgotten ones (their address's keyed hash is in `forgotten`), and
/// the addresses left out: what every import and `POST /api/leads` call before writing, so
/// a forgotten person is never imported again. Reads the hashes once; computes no hash (and
/// creates no key) while nobody was ever forgotten.
pub async fn without_forgotten<S: super::Store>(
    store: &S,
    leads: Vec<crate::domain::lead::NewLead>,
) -> Result<(Vec<crate::domain::lead::NewLead>, Vec<EmailAddress>), StoreError> {
    Ok(Forgotten::load(store).await?.split(leads))
}

/// The forgotten addresses' keyed hashes, read once for an import of any number of chunks.
pub struct Forgotten {
    /// The hashes and the pepper; `None` while nobody was ever forgotten.
    check: Option<(BTreeSet<String>, String)>,
}

impl Forgotten {
    pub async fn load<S: super::Store>(store: &S) -> Result<Self, StoreError> {
        use crate::domain::privacy::{PEPPER_SECRET, new_pepper};
        let hashes = store.forgotten_hashes().await?;
        if hashes.is_empty() {
            return Ok(Forgotten { check: None });
        }
        let pepper = store.secret(PEPPER_SECRET, new_pepper).await?;
        Ok(Forgotten {
            check: Some((hashes, pepper)),
        })
    }

    /// `leads` without the forgotten ones, and the addresses left out.
    pub fn split(
        &self,
        leads: Vec<crate::domain::lead::NewLead>,
    ) -> (Vec<crate::domain::lead::NewLead>, Vec<EmailAddress>) {
        use crate::domain::privacy::address_hash;
        let Some((hashes, pepper)) = &self.check else {
            return (leads, Vec::new());
        };
        let mut skipped = Vec::new();
        let kept = leads
            .into_iter()
            .filter(|lead| match &lead.email {
                Some(email) if hashes.contains(&address_hash(pepper, email)) => {
                    skipped.push(email.clone());
                    false
                }
                _ => true,
            })
            .collect();
        (kept, skipped)
    }
}
