//! SQL that both databases run exactly as written (`$1` placeholders work on both; times and
//! JSON bind through `dialect.rs`), kept once so the backends cannot drift, and what turns
//! the answers into the store's values. A statement that differs between the databases
//! lives in the backend's file for its area, next to its twin's name.

use std::borrow::Cow;
use std::collections::BTreeMap;

use sqlx::SqlSafeStr;
use sqlx::migrate::Migrator;

use super::*;

/// `SELECT <every lead column> FROM leads <rest>`, as one static string.
macro_rules! select_leads {
    ($rest:literal) => {
        concat!(
            "SELECT id, email, first_name, last_name, company, title, owner_email, owner_name, lost_reason, lost_at, timezone, tags, fields, state, created_at, updated_at FROM leads ",
            $rest
        )
    };
}

// ── Leads ───────────────────────────────────────────────────────────────────────────────

pub(crate) const LEAD_BY_EMAIL: &str = select_leads!("WHERE email = $1");
pub(crate) const LEADS_IN_STATE: &str =
    select_leads!("WHERE state = $1 AND id > $2 ORDER BY id LIMIT $3");
pub(crate) const LEAD_STATE: &str = "SELECT state FROM leads WHERE id = $1";
pub(crate) const LEAD_EMAIL: &str = "SELECT email FROM leads WHERE id = $1";
pub(crate) const SET_LEAD_STATE: &str =
    "UPDATE leads SET state = $2, updated_at = $3 WHERE id = $1";
pub(crate) const TIMELINE: &str =
    "SELECT at, kind, detail FROM events WHERE lead_id = $1 ORDER BY id";
pub(crate) const INSERT_EVENT: &str =
    "INSERT INTO events (lead_id, at, kind, detail) VALUES ($1, $2, $3, $4)";
/// The score: `engaged` points since the lead was last recycled.
pub(crate) const SCORE: &str =
    "SELECT CAST(COALESCE(sum(CAST(detail->>'points' AS BIGINT)), 0) AS BIGINT) FROM events
     WHERE lead_id = $1 AND kind = 'engaged'
       AND id > COALESCE((SELECT max(id) FROM events WHERE lead_id = $1 AND kind = 'recycled'), 0)";
/// "In a row": soft bounces since the last sign that mail reaches the person (a reply, an
/// auto-reply, a click). A `sent` proves nothing (the bounce comes after it), so it does not
/// reset the count.
pub(crate) const SOFT_BOUNCES_IN_A_ROW: &str = "SELECT count(*) FROM events WHERE lead_id = $1 AND kind = 'soft_bounce'
       AND id > COALESCE((SELECT max(id) FROM events WHERE lead_id = $1
                                   AND (kind IN ('replied', 'clicked')
                                        OR (kind = 'inbound' AND detail->>'classification' IN ('human_reply', 'auto_reply')))), 0)";

/// Re-warming a lead ($1) at $2: what waits is cancelled, its enrolments stop, then the lead.
pub(crate) const REWARM: [&str; 3] = [
    "UPDATE deliveries SET state = 'cancelled', updated_at = $2 WHERE lead_id = $1 AND state IN ('scheduled', 'retry_wait')",
    "UPDATE enrolments SET state = 'stopped', ended_at = $2 WHERE lead_id = $1 AND state = 'active'",
    "UPDATE leads SET state = 'rewarmed', updated_at = $2 WHERE id = $1",
];
/// An out-of-office: the lead's ($1) waiting deliveries are not due before $3.
pub(crate) const POSTPONE: &str = "UPDATE deliveries SET due_at = $3, updated_at = $2 WHERE lead_id = $1 AND state IN ('scheduled', 'retry_wait') AND due_at < $3";
/// `recycle`: the enrolments whose deliveries were scheduled again become active again.
pub(crate) const REACTIVATE_ENROLMENTS: &str = "UPDATE enrolments SET state = 'active', ended_at = NULL
     WHERE lead_id = $1 AND state = 'stopped' AND id IN (SELECT enrolment_id FROM deliveries WHERE lead_id = $1 AND state = 'scheduled')";
pub(crate) const COUNT_ENROLMENTS: &str = "SELECT count(*) FROM enrolments WHERE lead_id = $1";

// ── Queue ───────────────────────────────────────────────────────────────────────────────

/// Deliveries due and not sent yet, of leads still in nurture (`QueueStore::due_now`).
pub(crate) const DUE_NOW: &str =
    "SELECT count(*) FROM deliveries d JOIN leads l ON l.id = d.lead_id
     WHERE d.state IN ('scheduled', 'retry_wait') AND d.due_at <= $1 AND l.state = 'nurturing'";
pub(crate) const STALLED_ENROLMENTS: &str = "SELECT e.id, e.lead_id, e.campaign, max(d.step) AS last_step, max(coalesce(d.sent_at, d.updated_at)) AS last_at
     FROM enrolments e JOIN leads l ON l.id = e.lead_id JOIN deliveries d ON d.enrolment_id = e.id
     WHERE e.state = 'active' AND l.state = 'nurturing'
       AND NOT EXISTS (SELECT 1 FROM deliveries p WHERE p.enrolment_id = e.id AND p.state IN ('scheduled', 'claimed', 'retry_wait'))
     GROUP BY e.id, e.lead_id, e.campaign ORDER BY e.id LIMIT $1";
pub(crate) const PENDING_DELIVERIES: &str = "SELECT d.lead_id, d.campaign, d.step, d.template, d.due_at FROM deliveries d JOIN leads l ON l.id = d.lead_id
     WHERE d.state IN ('scheduled', 'retry_wait') AND l.state = 'nurturing' ORDER BY d.due_at, d.id";
pub(crate) const DELIVERY_TARGET: &str =
    "SELECT d.id, d.lead_id, l.email, d.campaign, d.step, d.message_id
     FROM deliveries d JOIN leads l ON l.id = d.lead_id WHERE d.id = $1";
pub(crate) const DELIVERY_BY_MESSAGE_ID: &str =
    "SELECT id FROM deliveries WHERE message_id IN ($1, $2) ORDER BY id LIMIT 1";
pub(crate) const DELIVERY_BY_PROVIDER_ID: &str =
    "SELECT id FROM deliveries WHERE provider_message_id = $1 ORDER BY id LIMIT 1";

// ── Suppression ─────────────────────────────────────────────────────────────────────────

pub(crate) const UNSUPPRESS: &str = "DELETE FROM suppressions WHERE address = $1";
pub(crate) const SUPPRESSIONS: &str =
    "SELECT id, address, reason, evidence, created_at FROM suppressions ORDER BY id";
/// The entry for an address ($1) or its `@domain` ($2), the exact address first.
pub(crate) const SUPPRESSION_FOR: &str =
    "SELECT id, address, reason, evidence, created_at FROM suppressions WHERE address IN ($1, $2)
     ORDER BY address LIKE '@%' LIMIT 1";

// ── Inbound ─────────────────────────────────────────────────────────────────────────────

/// Keeps an inbound message unless its `dedupe_key` is there already (then no id returns).
pub(crate) const INSERT_INBOUND: &str = "INSERT INTO inbound (dedupe_key, source, received_at, message_id, from_address, subject, classification,
                          lead_id, delivery_id, matched_by, text, raw, effects, created_at)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, '{}', $13)
     ON CONFLICT (dedupe_key) DO NOTHING RETURNING id";
pub(crate) const INBOUND_ID_BY_KEY: &str = "SELECT id FROM inbound WHERE dedupe_key = $1";
/// An earlier message ($3 is the new one's id) about delivery $1 with classification $2.
pub(crate) const SAME_EFFECT_BEFORE: &str =
    "SELECT id FROM inbound WHERE delivery_id = $1 AND classification = $2 AND id < $3
     ORDER BY id LIMIT 1";
pub(crate) const SET_INBOUND_EFFECTS: &str = "UPDATE inbound SET effects = $2 WHERE id = $1";
pub(crate) const INBOUND_MESSAGES: &str = "SELECT id, dedupe_key, source, received_at, message_id, from_address, subject, classification, lead_id, delivery_id,
            matched_by, text, raw, effects FROM inbound WHERE id > $1 ORDER BY id LIMIT $2";

// ── Outbox ──────────────────────────────────────────────────────────────────────────────

pub(crate) const NOTIFICATIONS: &str = "SELECT id, idempotency_key, kind, lead_id, payload, state, attempts, next_at, last_error, created_at, sent_at
     FROM notifications WHERE id > $1 ORDER BY id LIMIT $2";

/// `CLAIM_NOTIFICATIONS`: up to $4 notifications due at $1 (or whose lease expired) leased
/// to worker $2 until $3, attempts + 1; `$lock` is how the picking subquery locks.
macro_rules! claim_notifications {
    ($lock:literal) => {
        concat!(
            "UPDATE notifications SET state = 'claimed', claimed_by = $2, lease_until = $3, attempts = attempts + 1
             WHERE id IN (SELECT id FROM notifications
                          WHERE (state = 'pending' AND next_at <= $1) OR (state = 'claimed' AND lease_until <= $1)
                          ORDER BY next_at, id LIMIT $4",
            $lock,
            ")
             RETURNING id, idempotency_key, kind, lead_id, payload, state, attempts, next_at, last_error, created_at, sent_at"
        )
    };
}

// ── Kv and secrets ──────────────────────────────────────────────────────────────────────

pub(crate) const KV_GET: &str = "SELECT value FROM kv_state WHERE key = $1";
pub(crate) const KV_SET: &str = "INSERT INTO kv_state (key, value, updated_at) VALUES ($1, $2, $3)
     ON CONFLICT (key) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at";
pub(crate) const KV_INSERT_IF_ABSENT: &str = "INSERT INTO kv_state (key, value, updated_at) VALUES ($1, $2, $3) ON CONFLICT (key) DO NOTHING";
pub(crate) const SECRET_GET: &str = "SELECT value FROM secrets WHERE name = $1";
pub(crate) const SECRET_INSERT_IF_ABSENT: &str = "INSERT INTO secrets (name, value, created_at) VALUES ($1, $2, $3) ON CONFLICT (name) DO NOTHING";

// ── Status and health ───────────────────────────────────────────────────────────────────

pub(crate) const PING: &str = "SELECT 1";

/// Every count `status` shows, in one statement (one snapshot): rows of (part, key, key 2,
/// count); `since` is $1, `now` $2.
pub(crate) const STATUS: &str = "SELECT 'leads' AS part, state AS k1, '' AS k2, count(*) AS n FROM leads GROUP BY state
     UNION ALL SELECT 'enrolments', campaign, state, count(*) FROM enrolments GROUP BY campaign, state
     UNION ALL SELECT 'deliveries', state, '', count(*) FROM deliveries GROUP BY state
     UNION ALL SELECT 'sent', '', '', count(*) FROM deliveries WHERE state = 'sent' AND sent_at >= $1
     UNION ALL SELECT 'failed', '', '', count(*) FROM deliveries WHERE state = 'failed' AND updated_at >= $1
     UNION ALL SELECT 'unknown', '', '', count(*) FROM deliveries WHERE state = 'unknown' AND updated_at >= $1
     UNION ALL SELECT 'due_now', '', '', count(*) FROM deliveries d JOIN leads l ON l.id = d.lead_id
               WHERE d.state IN ('scheduled', 'retry_wait') AND d.due_at <= $2 AND l.state = 'nurturing'
     UNION ALL SELECT 'inbound', classification, '', count(*) FROM inbound WHERE received_at >= $1 GROUP BY classification
     UNION ALL SELECT 'unmatched', '', '', count(*) FROM inbound WHERE lead_id IS NULL
     UNION ALL SELECT 'notifications', state, '', count(*) FROM notifications GROUP BY state";

/// `STATUS`' rows as the report.
pub(crate) fn status_report(rows: Vec<(String, String, String, i64)>) -> StatusReport {
    let mut report = StatusReport::default();
    for state in LeadState::ALL {
        report.leads_by_state.insert(state.as_str().to_string(), 0);
    }
    for (part, k1, k2, n) in rows {
        match part.as_str() {
            "leads" => {
                report.leads_by_state.insert(k1, n);
            }
            "enrolments" => {
                report.enrolments.entry(k1).or_default().insert(k2, n);
            }
            "deliveries" => {
                report.deliveries_by_state.insert(k1, n);
            }
            "sent" => report.sent_since = n,
            "failed" => report.failed_since = n,
            "unknown" => report.unknown_since = n,
            "due_now" => report.due_now = n,
            "inbound" => {
                report.inbound_since.insert(k1, n);
            }
            "unmatched" => report.inbound_unmatched = n,
            "notifications" => {
                report.notifications_by_state.insert(k1, n);
            }
            _ => {}
        }
    }
    report
}

/// Rows per table `db copy` moves: (table, count).
pub(crate) const TABLE_COUNTS: &str = "SELECT 'leads', count(*) FROM leads UNION ALL SELECT 'enrolments', count(*) FROM enrolments
     UNION ALL SELECT 'deliveries', count(*) FROM deliveries UNION ALL SELECT 'events', count(*) FROM events
     UNION ALL SELECT 'suppressions', count(*) FROM suppressions UNION ALL SELECT 'secrets', count(*) FROM secrets
     UNION ALL SELECT 'inbound', count(*) FROM inbound UNION ALL SELECT 'notifications', count(*) FROM notifications
     UNION ALL SELECT 'kv_state', count(*) FROM kv_state";

/// `TABLE_COUNTS`' rows by table.
pub(crate) fn table_counts(rows: Vec<(String, i64)>) -> BTreeMap<Table, i64> {
    rows.into_iter()
        .filter_map(|(name, n)| Table::parse(&name).map(|t| (t, n)))
        .collect()
}

/// Emptying every table `db copy` writes: children before parents.
pub(crate) const DELETE_ALL: [&str; 9] = [
    "DELETE FROM inbound",
    "DELETE FROM notifications",
    "DELETE FROM kv_state",
    "DELETE FROM events",
    "DELETE FROM deliveries",
    "DELETE FROM enrolments",
    "DELETE FROM leads",
    "DELETE FROM suppressions",
    "DELETE FROM secrets",
];

/// A migrator over one backend's migrations (version, description, SQL), embedded in the
/// binary.
pub(crate) fn migrator(migrations: &'static [(i64, &'static str, &'static str)]) -> Migrator {
    let migrations = migrations
        .iter()
        .map(|(version, description, sql)| {
            sqlx::migrate::Migration::new(
                *version,
                Cow::Borrowed(*description),
                sqlx::migrate::MigrationType::Simple,
                sql.into_sql_str(),
                false,
            )
        })
        .collect::<Vec<_>>();
    Migrator {
        migrations: Cow::Owned(migrations),
        ..Migrator::DEFAULT
    }
}
