//! The suppression list on PostgreSQL: `suppress` lists a batch and reaches its leads with
//! four statements over the same matches, under the write lock.

use serde_json::Value;

use super::*;

/// The leads a `suppress` batch ($1) reaches and are not suppressed yet, each once, with the
/// entry that reaches it (its exact address if listed in the batch, else its `@domain`):
/// `m(lead_id, state, address, reason, evidence)`. Prefixed to each of `suppress`' statements.
macro_rules! suppress_matches {
    ($rest:literal) => {
        concat!(
            "WITH m AS (
                SELECT l.id AS lead_id, l.state AS state, s.address AS address, s.reason AS reason, s.evidence AS evidence
                FROM jsonb_array_elements($1) AS j(v) JOIN suppressions s ON s.address = j.v->>'address'
                JOIN leads l ON l.email = s.address
                WHERE l.state <> 'suppressed'
                UNION ALL
                SELECT l.id, l.state, s.address, s.reason, s.evidence
                FROM jsonb_array_elements($1) AS j(v) JOIN suppressions s ON s.address = j.v->>'address'
                JOIN leads l ON rewarm_at_domain(l.email) = s.address
                WHERE l.state <> 'suppressed' AND l.email NOT IN (SELECT k.v->>'address' FROM jsonb_array_elements($1) AS k(v)))
             ",
            $rest
        )
    };
}

/// `suppress`: the batch's ($1) new entries (an address already listed keeps its first).
pub(super) const SUPPRESS_INSERT: &str = "INSERT INTO suppressions (address, reason, evidence, created_at)
             SELECT v->>'address', v->>'reason', v->'evidence', rewarm_ms((v->>'created_at')::bigint)
             FROM jsonb_array_elements($1) WITH ORDINALITY AS j(v, n) ORDER BY n
             ON CONFLICT (address) DO NOTHING";

/// `suppress`, after `SUPPRESS_INSERT`: every statement reads the same matches (`m`); the
/// lead's state changes last.
pub(super) const SUPPRESS_REACH: [&str; 4] = [
            suppress_matches!(
                "UPDATE deliveries SET state = 'cancelled', updated_at = $2
                 WHERE state IN ('scheduled', 'retry_wait', 'held')
                   AND enrolment_id IN (SELECT e.id FROM enrolments e WHERE e.lead_id IN (SELECT lead_id FROM m))"
            ),
            suppress_matches!(
                "UPDATE enrolments SET state = 'stopped', ended_at = $2 WHERE state = 'active' AND lead_id IN (SELECT lead_id FROM m)"
            ),
            suppress_matches!(
                "INSERT INTO events (lead_id, at, kind, detail)
                 SELECT lead_id, $2, 'suppressed', jsonb_build_object('from', state, 'to', 'suppressed', 'reason', reason, 'evidence', evidence, 'address', address)
                 FROM m ORDER BY lead_id"
            ),
            suppress_matches!(
                "UPDATE leads SET state = 'suppressed', updated_at = $2 WHERE id IN (SELECT lead_id FROM m)"
            ),
];

/// `unsuppress_and_restore`: what the entry ($1) cancelled and stopped resumes (at $2)…
const RESTORE_RESUME: [&str; 2] = restore_resume!("rewarm_at_domain(l.email)");
/// … each restored lead gets its event …
const RESTORE_EVENTS: &str = restore_matches!(
    "rewarm_at_domain(l.email)",
    "INSERT INTO events (lead_id, at, kind, detail) SELECT r.lead_id, $2, 'restored', jsonb_build_object('from', 'suppressed', 'to', ",
    restore_to!(),
    ", 'address', $1::text) FROM r ORDER BY r.lead_id"
);
/// … and its state back.
const RESTORE_LEADS: &str = restore_leads!("rewarm_at_domain(l.email)");
/// Leads the entry suppressed that another entry lists.
const RESTORE_COVERED: &str = restore_covered!("rewarm_at_domain(l.email)");
/// Leads not suppressed yet at an address ($1) …
const REACHED_ADDRESS: &str =
    "SELECT count(*) FROM leads WHERE email = $1 AND state <> 'suppressed'";
/// … or at a domain ($1, `@example.com`).
const REACHED_DOMAIN: &str =
    "SELECT count(*) FROM leads WHERE rewarm_at_domain(email) = $1 AND state <> 'suppressed'";
/// Domain entries reaching more than $1 leads.
const BROAD_DOMAINS: &str = "SELECT s.address, count(*) FROM suppressions s JOIN leads l ON rewarm_at_domain(l.email) = s.address WHERE s.address LIKE '@%' GROUP BY s.address HAVING count(*) > $1 ORDER BY count(*) DESC, s.address";

impl SuppressionStore for PgStore {
    async fn suppress(
        &self,
        entries: &[Suppression],
        now: DateTime<Utc>,
    ) -> Result<usize, StoreError> {
        if entries.is_empty() {
            return Ok(0);
        }
        let batch = suppressions_json(entries);
        retrying!(self.suppress_once(&batch, now))
    }

    async fn unsuppress(&self, address: &str) -> Result<bool, StoreError> {
        let n = sqlx::query(sql::UNSUPPRESS)
            .bind(address)
            .execute(&self.pool)
            .await?
            .rows_affected();
        Ok(n > 0)
    }

    common_suppression_methods!();
    common_restore_methods!();
}

impl PgStore {
    /// One attempt of `suppress` (see `retrying!`).
    /// Holds the write lock, so an import or enrolment running at the same moment either
    /// sees the new entries or has finished before they are matched against the leads.
    async fn suppress_once(&self, batch: &Value, now: DateTime<Utc>) -> Result<usize, StoreError> {
        let mut tx = self.write().await?;
        let inserted = suppress_tx(&mut tx, batch, now).await?;
        tx.commit().await?;
        Ok(inserted as usize)
    }
}
