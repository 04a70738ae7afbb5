//! The suppression list on SQLite. `suppress` lists a batch and reaches its leads with four
//! statements over the same matches; spelled so SQLite uses the `leads_at_domain` index.

use super::*;

/// The leads a `suppress` batch ($1) reaches and are not suppressed yet, each once, with the
/// entry that reaches it (its exact address if listed in the batch, else its `@domain`):
/// `m(lead_id, state, address, reason, evidence)`. Prefixed to each of `suppress`' statements.
macro_rules! suppress_matches {
    ($rest:literal) => {
        concat!(
            "WITH m AS (
                SELECT l.id AS lead_id, l.state AS state, s.address AS address, s.reason AS reason, s.evidence AS evidence
                FROM json_each($1) j CROSS JOIN suppressions s ON s.address = j.value->>'address'
                CROSS JOIN leads l ON l.email = s.address
                WHERE +l.state <> 'suppressed'
                UNION ALL
                SELECT l.id, l.state, s.address, s.reason, s.evidence
                FROM leads l CROSS JOIN suppressions s ON s.address = ",
            at_domain!("", "l.email", ""),
            // Spelled as `<domain expression> IN (…)`, the leads_at_domain index is used.
            at_domain!("
                WHERE ", "l.email", " IN (SELECT k.value->>'address' FROM json_each($1) k)"),
            "
                  AND +l.state <> 'suppressed' AND l.email NOT IN (SELECT k.value->>'address' FROM json_each($1) k))
             ",
            $rest
        )
    };
}

/// `suppress`: the batch's ($1) new entries (an address already listed keeps its first).
pub(super) const SUPPRESS_INSERT: &str = "INSERT INTO suppressions (address, reason, evidence, created_at)
             SELECT j.value->>'address', j.value->>'reason', j.value->'evidence', j.value->>'created_at' FROM json_each($1) j WHERE true
             ON CONFLICT (address) DO NOTHING";

/// `suppress`, after `SUPPRESS_INSERT`: every statement reads the same matches (`m`); the
/// lead's state changes last.
pub(super) const SUPPRESS_REACH: [&str; 4] = [
            suppress_matches!(
                "UPDATE deliveries SET state = 'cancelled', updated_at = $2
                 WHERE +state IN ('scheduled', 'retry_wait', 'held')
                   AND enrolment_id IN (SELECT e.id FROM enrolments e WHERE e.lead_id IN (SELECT lead_id FROM m))"
            ),
            suppress_matches!("UPDATE enrolments SET state = 'stopped', ended_at = $2 WHERE +state = 'active' AND lead_id IN (SELECT lead_id FROM m)"),
            suppress_matches!(
                "INSERT INTO events (lead_id, at, kind, detail)
                 SELECT lead_id, $2, 'suppressed', json_object('from', state, 'to', 'suppressed', 'reason', reason, 'evidence', json(evidence), 'address', address)
                 FROM m ORDER BY lead_id"
            ),
            suppress_matches!("UPDATE leads SET state = 'suppressed', updated_at = $2 WHERE id IN (SELECT lead_id FROM m)"),
];

/// `unsuppress_and_restore`: what the entry ($1) cancelled and stopped resumes (at $2)…
const RESTORE_RESUME: [&str; 2] =
    restore_resume!("substr(l.email, length(rtrim(l.email, replace(l.email, '@', ''))))");
/// … each restored lead gets its event …
const RESTORE_EVENTS: &str = restore_matches!(
    "substr(l.email, length(rtrim(l.email, replace(l.email, '@', ''))))",
    "INSERT INTO events (lead_id, at, kind, detail) SELECT r.lead_id, $2, 'restored', json_object('from', 'suppressed', 'to', ",
    restore_to!(),
    ", 'address', $1) FROM r ORDER BY r.lead_id"
);
/// … and its state back.
const RESTORE_LEADS: &str =
    restore_leads!("substr(l.email, length(rtrim(l.email, replace(l.email, '@', ''))))");
/// Leads the entry suppressed that another entry lists.
const RESTORE_COVERED: &str =
    restore_covered!("substr(l.email, length(rtrim(l.email, replace(l.email, '@', ''))))");
/// Leads not suppressed yet at an address ($1) …
const REACHED_ADDRESS: &str =
    "SELECT count(*) FROM leads WHERE email = $1 AND state <> 'suppressed'";
/// … or at a domain ($1, `@example.com`).
const REACHED_DOMAIN: &str = at_domain!(
    "SELECT count(*) FROM leads WHERE ",
    "email",
    " = $1 AND +state <> 'suppressed'"
);
/// Domain entries reaching more than $1 leads.
const BROAD_DOMAINS: &str = at_domain!(
    "SELECT s.address, count(*) FROM suppressions s JOIN leads l ON ",
    "l.email",
    " = s.address WHERE s.address LIKE '@%' GROUP BY s.address HAVING count(*) > $1 ORDER BY count(*) DESC, s.address"
);

impl SuppressionStore for SqliteStore {
    async fn suppress(
        &self,
        entries: &[Suppression],
        now: DateTime<Utc>,
    ) -> Result<usize, StoreError> {
        if entries.is_empty() {
            return Ok(0);
        }
        let batch = suppressions_json(entries);
        let mut tx = self.write().await?;
        let inserted = suppress_tx(&mut tx, &batch, now).await?;
        tx.commit().await?;
        Ok(inserted as usize)
    }

    async fn unsuppress(&self, address: &str) -> Result<bool, StoreError> {
        let mut tx = self.write().await?;
        let n = sqlx::query(sql::UNSUPPRESS)
            .bind(address)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        tx.commit().await?;
        Ok(n > 0)
    }

    common_suppression_methods!();
    common_restore_methods!();
}
