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
                 WHERE +state IN ('scheduled', 'retry_wait') AND lead_id IN (SELECT lead_id FROM m)"
            ),
            suppress_matches!("UPDATE enrolments SET state = 'stopped', ended_at = $2 WHERE +state = 'active' AND lead_id IN (SELECT lead_id FROM m)"),
            suppress_matches!(
                "INSERT INTO events (lead_id, at, kind, detail)
                 SELECT lead_id, $2, 'suppressed', json_object('from', state, 'to', 'suppressed', 'reason', reason, 'evidence', json(evidence), 'address', address)
                 FROM m ORDER BY lead_id"
            ),
            suppress_matches!("UPDATE leads SET state = 'suppressed', updated_at = $2 WHERE id IN (SELECT lead_id FROM m)"),
];

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
}
