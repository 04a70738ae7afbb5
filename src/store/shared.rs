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

/// A condition on `deliveries` that holds for the rows of the leads `$leads` (a lead's id, such
/// as `$1`, or a subquery of ids), with an optional alias prefix (`"d."`): found through their
/// enrolments (`UNIQUE (lead_id, campaign)`) and the key `(enrolment_id, cycle, step)`. No
/// index of `deliveries` starts with the lead: keyed by lead, every next step a send pass
/// writes went to a random leaf (migration 0024 on SQLite, 0025 on PostgreSQL). Every
/// delivery belongs to an enrolment of its own lead. A state the statement also asks for is
/// spelled `(…) IS TRUE`, which no index serves: otherwise either database may read every
/// lead's rows in that state (`deliveries_pending`, `deliveries_sent`) instead of the lead's few.
macro_rules! of_leads {
    ($leads:literal) => {
        of_leads!("", $leads)
    };
    ($alias:literal, $leads:literal) => {
        concat!(
            $alias,
            "enrolment_id IN (SELECT e.id FROM enrolments e WHERE e.lead_id IN (",
            $leads,
            "))"
        )
    };
}

/// `SELECT $cols FROM` every event of the lead $1, in two halves: those `events_lead` holds,
/// and its sent emails' `sent` events (kept out of `events_lead`: a send pass would write
/// their entries at random places) through its deliveries and `events_delivery`, whose
/// entries a send pass writes at the right edge (migration 0023 on SQLite, 0024 on
/// PostgreSQL). A query that reads one kind of a lead's events spells `kind <> 'sent'` for
/// `events_lead`'s condition to hold.
macro_rules! lead_events {
    ($cols:literal) => {
        concat!(
            "SELECT ",
            $cols,
            " FROM events WHERE lead_id = $1 AND (kind <> 'sent' OR delivery_id IS NULL)
             UNION ALL SELECT ",
            $cols,
            " FROM events
             WHERE delivery_id IN (SELECT d.id FROM deliveries d WHERE ",
            of_leads!("d.", "$1"),
            ") AND delivery_id IS NOT NULL AND kind = 'sent'"
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
/// A lead's ($1) history, oldest first: its events by `events_lead`, and its sent emails'
/// events through its deliveries and `events_delivery` (`sent` events are kept out of
/// `events_lead`, migration 0023 on SQLite, 0024 on PostgreSQL).
pub(crate) const TIMELINE: &str = concat!(
    "SELECT at, kind, detail FROM (",
    lead_events!("id, at, kind, detail"),
    ") t ORDER BY id"
);
/// The statements that read one lead's events by its id, by name (`lead_history_plans` on
/// each backend: each must search an index, never read every event, nor every event of one
/// kind such as `sent`).
pub(crate) const LEAD_EVENT_READS: [(&str, &str); 8] = [
    ("timeline", TIMELINE),
    ("forget", crate::store::privacy::LEAD_EVENTS),
    ("score", SCORE),
    ("signals", SIGNALS),
    ("clicks_since", CLICKS_SINCE),
    ("soft_bounces_in_a_row", SOFT_BOUNCES_IN_A_ROW),
    ("stale_handoffs", crate::store::handoff::STALE_HANDOFFS),
    ("record_chase", crate::store::handoff::RECORD_CHASE),
];
/// The statements that find one lead's deliveries (`of_leads!`), by name, for
/// `lead_delivery_plans` on both stores (which bind a lead's id and times): each must
/// reach `deliveries` through `deliveries_enrolment`, never by reading every pending row.
pub(crate) const LEAD_DELIVERY_STATEMENTS: [(&str, &str); 7] = [
    ("cancel_waiting", CANCEL_WAITING),
    ("postpone", POSTPONE),
    ("reactivate_enrolments", REACTIVATE_ENROLMENTS),
    ("hold_lead", crate::store::hold::HOLD_LEAD),
    ("release_lead", crate::store::hold::RELEASE_LEAD),
    ("hold_paused_leads", crate::store::hold::HOLD_PAUSED_LEADS),
    ("lead_deliveries", crate::store::hold::LEAD_DELIVERIES),
];
pub(crate) const INSERT_EVENT: &str =
    "INSERT INTO events (lead_id, at, kind, detail) VALUES ($1, $2, $3, $4)";
/// The score: `engaged` points since the lead was last recycled.
pub(crate) const SCORE: &str =
    "SELECT CAST(COALESCE(sum(CAST(detail->>'points' AS BIGINT)), 0) AS BIGINT) FROM events
     WHERE lead_id = $1 AND kind = 'engaged' AND kind <> 'sent'
       AND id > COALESCE((SELECT max(id) FROM events WHERE lead_id = $1 AND kind = 'recycled' AND kind <> 'sent'), 0)";
/// The lead's ($1) `engaged` events since it was last recycled, oldest first: the signals
/// its (decayed) score is made of.
pub(crate) const SIGNALS: &str = "SELECT at, kind, detail FROM events
     WHERE lead_id = $1 AND kind = 'engaged' AND kind <> 'sent'
       AND id > COALESCE((SELECT max(id) FROM events WHERE lead_id = $1 AND kind = 'recycled' AND kind <> 'sent'), 0)
     ORDER BY id";
/// What a click needs of its delivery ($1): whose, which step, when it went out. A click
/// can beat the record of its send (the email arrives while the outcome is being written):
/// a delivery still `claimed` went out just now, as far as the grace period goes.
pub(crate) const CLICK_DELIVERY: &str = "SELECT lead_id, campaign, step, CASE WHEN state = 'claimed' THEN $2 ELSE sent_at END FROM deliveries WHERE id = $1";
/// The lead's ($1) clicks since $2, oldest first (the click judge's memory).
pub(crate) const CLICKS_SINCE: &str = "SELECT at, kind, detail FROM events
     WHERE lead_id = $1 AND kind = 'clicked' AND kind <> 'sent' AND at >= $2 ORDER BY id";
/// "In a row": soft bounces since the last sign that mail reaches the person (a reply, an
/// auto-reply, a click). A `sent` proves nothing (the bounce comes after it), so it does not
/// reset the count. Several about one email (a server's "Action: delayed" DSN every few
/// hours, then its final word) count once: bounces of one known delivery are one.
pub(crate) const SOFT_BOUNCES_IN_A_ROW: &str = "SELECT count(DISTINCT COALESCE(CAST(detail->>'delivery_id' AS TEXT), 'event:' || CAST(id AS TEXT))) FROM events WHERE lead_id = $1 AND kind = 'soft_bounce' AND kind <> 'sent'
       AND id > COALESCE((SELECT max(id) FROM events WHERE lead_id = $1 AND kind <> 'sent'
                                   AND (kind IN ('replied', 'clicked')
                                        OR (kind = 'inbound' AND detail->>'classification' IN ('human_reply', 'auto_reply')))), 0)";

/// The lead's ($1) waiting deliveries are cancelled at $2 (re-warmed, retired, out of scope…).
pub(crate) const CANCEL_WAITING: &str = concat!(
    "UPDATE deliveries SET state = 'cancelled', updated_at = $2 WHERE ",
    of_leads!("$1"),
    " AND (state IN ('scheduled', 'retry_wait', 'held')) IS TRUE"
);
/// Re-warming a lead ($1) at $2: what waits is cancelled, its enrolments stop, then the lead.
pub(crate) const REWARM: [&str; 3] = [
    CANCEL_WAITING,
    "UPDATE enrolments SET state = 'stopped', ended_at = $2 WHERE lead_id = $1 AND state = 'active'",
    "UPDATE leads SET state = 'rewarmed', updated_at = $2 WHERE id = $1",
];
/// An out-of-office: the lead's ($1) waiting deliveries are not due before $3.
pub(crate) const POSTPONE: &str = concat!(
    "UPDATE deliveries SET due_at = $3, updated_at = $2 WHERE ",
    of_leads!("$1"),
    " AND (state IN ('scheduled', 'retry_wait', 'held') AND due_at < $3) IS TRUE"
);
/// `recycle`: the enrolments whose deliveries were scheduled again become active again.
pub(crate) const REACTIVATE_ENROLMENTS: &str = "UPDATE enrolments SET state = 'active', ended_at = NULL
     WHERE lead_id = $1 AND state = 'stopped' AND EXISTS (SELECT 1 FROM deliveries d WHERE d.enrolment_id = enrolments.id AND (d.state = 'scheduled') IS TRUE)";
/// `set_lifecycle`: the lead's ($1) state and what a pause holds.
pub(crate) const LEAD_LIFECYCLE: &str =
    "SELECT state, scope_reason, recheck_at, paused_from FROM leads WHERE id = $1";
/// `set_lifecycle`: the lead ($1) goes to state $2 at $3, with its out-of-scope reason ($4),
/// re-check date ($5) and paused-from state ($6) (NULL unless the new state uses them).
pub(crate) const SET_LIFECYCLE: &str = "UPDATE leads SET state = $2, updated_at = $3, scope_reason = $4, recheck_at = $5, paused_from = $6 WHERE id = $1";
/// A lifecycle transition that stops the cadence: what waits is cancelled, enrolments stop.
pub(crate) const STOP_CADENCE: [&str; 2] = [
    CANCEL_WAITING,
    "UPDATE enrolments SET state = 'stopped', ended_at = $2 WHERE lead_id = $1 AND state = 'active'",
];
/// Out-of-scope leads due for their re-check at $1, at most $2 (the `leads_recheck` index).
pub(crate) const RECHECK_DUE: &str = "SELECT id FROM leads WHERE state = 'out_of_scope' AND recheck_at IS NOT NULL AND recheck_at <= $1
     ORDER BY recheck_at, id LIMIT $2";
/// Leaving out of scope or a pause clears what those states kept.
pub(crate) const CLEAR_LIFECYCLE: &str =
    "UPDATE leads SET scope_reason = NULL, recheck_at = NULL, paused_from = NULL WHERE id = $1";
pub(crate) const COUNT_ENROLMENTS: &str = "SELECT count(*) FROM enrolments WHERE lead_id = $1";

/// The clicks of `CLICKS_SINCE` on one email: its delivery's, or (recorded before clicks
/// named their delivery) its campaign's and step's. Those older clicks were all scored.
pub(crate) fn prior_clicks(
    rows: Vec<super::rows::EventRow>,
    delivery_id: i64,
    campaign: &str,
    step: i64,
) -> Vec<crate::domain::signal::PriorClick> {
    rows.into_iter()
        .map(Event::from)
        .filter(|e| match e.detail["delivery_id"].as_i64() {
            Some(id) => id == delivery_id,
            None => e.detail["campaign"] == campaign && e.detail["step"].as_i64() == Some(step),
        })
        .map(|e| crate::domain::signal::PriorClick {
            at: e.at,
            url: e.detail["url"].as_str().unwrap_or_default().to_string(),
            counted: e.detail["counted"].as_bool().unwrap_or(true),
            burst: e.detail["signal"] == "burst",
        })
        .collect()
}

// ── Queue ───────────────────────────────────────────────────────────────────────────────

/// `enter_campaign`: the lead's state and email.
pub(crate) const LEAD_STATE_EMAIL: &str = "SELECT state, email FROM leads WHERE id = $1";
/// `enter_campaign`: the lead's ($1) enrolment in campaign $2 starts its next round.
pub(crate) const REENTER_ENROLMENT: &str = "UPDATE enrolments SET state = 'active', cycle = cycle + 1, segment = $3, enrolled_at = $4, ended_at = NULL
     WHERE lead_id = $1 AND campaign = $2 RETURNING id, cycle";
pub(crate) const INSERT_ENROLMENT: &str =
    "INSERT INTO enrolments (lead_id, campaign, segment, state, enrolled_at)
     VALUES ($1, $2, $3, 'active', $4) RETURNING id, cycle";
/// `enter_campaign`: step 0 of the round: lead $1, enrolment $2, campaign $3, template $4,
/// due $5, at $6, cycle $7.
pub(crate) const INSERT_FIRST_DELIVERY: &str = "INSERT INTO deliveries (lead_id, enrolment_id, campaign, step, template, state, due_at, updated_at, cycle)
     VALUES ($1, $2, $3, 0, $4, 'scheduled', $5, $6, $7) ON CONFLICT (enrolment_id, cycle, step) DO NOTHING";
/// `enter_campaign`: the lead's ($1) other enrolments, finished or stopped, are behind it
/// now: a later recycle does not resume them.
pub(crate) const CONTINUE_ENROLMENTS: &str = "UPDATE enrolments SET state = 'continued'
     WHERE lead_id = $1 AND state IN ('completed', 'stopped') AND campaign <> $2";
/// `enter_campaign`: the lead ($1) is in nurture again at $2.
pub(crate) const LEAD_NURTURING: &str = "UPDATE leads SET state = 'nurturing', updated_at = $2, scope_reason = NULL, recheck_at = NULL, paused_from = NULL WHERE id = $1";
/// Completed leads whose enrolment in campaign $1 is completed, at most $2 (the
/// `enrolments_state_campaign` index).
pub(crate) const COMPLETED_IN: &str = "SELECT e.lead_id, e.segment FROM enrolments e JOIN leads l ON l.id = e.lead_id
     WHERE e.state = 'completed' AND e.campaign = $1 AND l.state = 'completed' ORDER BY e.lead_id LIMIT $2";

/// Deliveries due and not sent yet, of leads in nurture (`QueueStore::due_now`): one range
/// of the `deliveries_pending` index (0011) counted without a look-up per row, less those of
/// paused leads (a pause holds its lead's emails; `CROSS JOIN`: SQLite starts from the few
/// paused leads of `leads_state`, not from every due row), so a `/metrics`
/// scrape stays fast with a million due. Every other move out of nurture cancels the lead's
/// pending deliveries in the same transaction.
macro_rules! due_now_sql {
    ($now:literal) => {
        concat!(
            "(SELECT count(*) FROM deliveries WHERE state IN ('scheduled', 'retry_wait') AND due_at <= ",
            $now,
            ") - (SELECT count(*) FROM leads l CROSS JOIN enrolments e CROSS JOIN deliveries d
                  WHERE l.state = 'paused' AND e.lead_id = l.id AND d.enrolment_id = e.id AND (d.state IN ('scheduled', 'retry_wait') AND d.due_at <= ",
            $now,
            ") IS TRUE)"
        )
    };
}
/// `due_now` by the shorter side of `now` in `deliveries_pending` (a million due, or a million
/// waiting, must not cost a scrape a million index entries): the pending total (the counters of
/// 0018), how many are due counted up to $2, and if that many, how many are not due yet
/// (then the due ones are the total less those); less the paused leads' due rows. $1: now.
/// `$pending` names the pending deliveries: `deliveries` on PostgreSQL, `deliveries INDEXED
/// BY deliveries_pending` on SQLite, whose planner, with statistics that count most rows
/// pending and due, may walk the whole table instead (no index of every delivery's state
/// since migration 0025).
macro_rules! due_now_parts {
    ($pending:literal) => {
        concat!(
            "SELECT (SELECT CAST(coalesce(sum(n), 0) AS BIGINT) FROM state_counts WHERE part = 'deliveries' AND state IN ('scheduled', 'retry_wait')),
            (SELECT count(*) FROM (SELECT 1 FROM ",
            $pending,
            " WHERE state IN ('scheduled', 'retry_wait') AND due_at <= $1 LIMIT $2) AS due),
            (SELECT count(*) FROM leads l CROSS JOIN enrolments e CROSS JOIN deliveries d
             WHERE l.state = 'paused' AND e.lead_id = l.id AND d.enrolment_id = e.id
               AND (d.state IN ('scheduled', 'retry_wait') AND d.due_at <= $1) IS TRUE)"
        )
    };
}
pub(crate) use due_now_parts;
/// The pending deliveries not due yet at $1 (`due_now_parts!`' other side; `$pending` as
/// there).
macro_rules! not_due {
    ($pending:literal) => {
        concat!(
            "SELECT count(*) FROM ",
            $pending,
            " WHERE state IN ('scheduled', 'retry_wait') AND due_at > $1"
        )
    };
}
pub(crate) use not_due;
/// Due rows `DUE_NOW_PARTS` counts before it counts the other side instead.
pub(crate) const DUE_COUNT_CAP: i64 = 50_000;
/// An enrolment stalls only when a lease expires into `unknown` (every other outcome
/// schedules the next step in its own transaction), so the repair starts from the rows
/// written off (`deliveries_unknown`, a partial index: a few rows, whatever the number of
/// leads) and checks each one's enrolment for a pending row among the enrolment's few rows
/// (`deliveries_enrolment`; migration 0020 dropped the partial index that doubled it).
pub(crate) const STALLED_ENROLMENTS: &str = "SELECT e.id, e.lead_id, e.campaign, max(d.step) AS last_step, max(coalesce(d.sent_at, d.updated_at)) AS last_at
     FROM (SELECT DISTINCT u.enrolment_id FROM deliveries u WHERE u.state = 'unknown'
             AND NOT EXISTS (SELECT 1 FROM deliveries p WHERE p.enrolment_id = u.enrolment_id AND p.state IN ('scheduled', 'claimed', 'retry_wait', 'held'))) u
     JOIN enrolments e ON e.id = u.enrolment_id
     JOIN leads l ON l.id = e.lead_id
     JOIN deliveries d ON d.enrolment_id = e.id AND d.cycle = e.cycle
     WHERE e.state = 'active' AND l.state = 'nurturing'
     GROUP BY e.id, e.lead_id, e.campaign ORDER BY e.id LIMIT $1";
/// `stalled_in`: like [`STALLED_ENROLMENTS`], but every active enrolment of campaign $1 with
/// nothing pending (a config edit that cancels waiting steps leaves them so), at most $2.
pub(crate) const STALLED_IN: &str = "SELECT e.id, e.lead_id, e.campaign, max(d.step) AS last_step, max(coalesce(d.sent_at, d.updated_at)) AS last_at
     FROM enrolments e JOIN leads l ON l.id = e.lead_id JOIN deliveries d ON d.enrolment_id = e.id AND d.cycle = e.cycle
     WHERE e.campaign = $1 AND e.state = 'active' AND l.state = 'nurturing'
       AND NOT EXISTS (SELECT 1 FROM deliveries p WHERE p.enrolment_id = e.id AND p.state IN ('scheduled', 'claimed', 'retry_wait', 'held'))
     GROUP BY e.id, e.lead_id, e.campaign ORDER BY e.id LIMIT $2";
/// `release_unstarted`: claims of $1 never started go back to due at $2.
pub(crate) const RELEASE_UNSTARTED: &str = "UPDATE deliveries SET state = 'scheduled', attempts = attempts - 1, claimed_by = NULL, lease_until = NULL, updated_at = $2
     WHERE state = 'claimed' AND claimed_by = $1 AND started_at IS NULL";
/// `unknown_deliveries`: the rows written off, latest first (the `deliveries_unknown` index).
/// Whether the suppression list has anything on it (its probes are skipped while it is empty:
/// an enrolment's on SQLite, the forecast's on both).
pub(crate) const ANY_LISTED: &str = "SELECT EXISTS (SELECT 1 FROM suppressions)";

/// The questions that name a delivery's state alone, by name, as both stores' `state_plans`
/// ask them (with the backend's sends per day), and their parameters.
macro_rules! state_plans_method {
    () => {
        /// The plans of the questions that name a delivery's state alone, by name: the rows
        /// written off (`unknown`), every pending delivery in due order
        /// (`QueueStore::pending_deliveries`) and the console's sends per day (`sent`). Each
        /// reads a partial index of its state since the index of every delivery's state was
        /// dropped (migration 0027 on PostgreSQL, asked with `enable_seqscan = off` as
        /// `tick_plans`; 0025 on SQLite): a sequential scan of `deliveries` means none serves it.
        pub async fn state_plans(
            &self,
            now: DateTime<Utc>,
        ) -> Result<Vec<(&'static str, Vec<String>)>, StoreError> {
            let statements = [
                ("unknown deliveries", sql::UNKNOWN_DELIVERIES),
                ("pending deliveries", sql::PENDING_DELIVERIES),
                ("sends per day", super::console::SENDS_PER_DAY),
            ];
            self.plans_of(&statements, |name, query| match name {
                "unknown deliveries" => query.bind(100_i64),
                "pending deliveries" => query,
                _ => query.bind(Time(now)),
            })
            .await
        }
    };
}
pub(crate) use state_plans_method;

pub(crate) const UNKNOWN_DELIVERIES: &str =
    "SELECT d.id, d.lead_id, l.email, d.campaign, d.step, d.updated_at, d.last_error
     FROM deliveries d JOIN leads l ON l.id = d.lead_id WHERE d.state = 'unknown'
     ORDER BY d.updated_at DESC, d.id DESC LIMIT $1";
pub(crate) const PENDING_DELIVERIES: &str = "SELECT d.lead_id, d.campaign, d.step, d.template, d.due_at FROM deliveries d JOIN leads l ON l.id = d.lead_id
     WHERE d.state IN ('scheduled', 'retry_wait') AND l.state = 'nurturing' ORDER BY d.due_at, d.id";
pub(crate) const DELIVERY_TARGET: &str =
    "SELECT d.id, d.lead_id, l.email, d.campaign, d.step, d.message_id
     FROM deliveries d JOIN leads l ON l.id = d.lead_id WHERE d.id = $1";
pub(crate) const DELIVERY_BY_PROVIDER_ID: &str =
    "SELECT id FROM deliveries WHERE provider_message_id = $1 ORDER BY id LIMIT 1";

// ── Suppression ─────────────────────────────────────────────────────────────────────────

pub(crate) const UNSUPPRESS: &str = "DELETE FROM suppressions WHERE address = $1";

/// The leads an entry ($1) suppressed, for `unsuppress_and_restore` once the entry is gone:
/// `r(lead_id, at, back_to, covered)`, every lead still `suppressed` whose last suppression
/// (a `suppressed` event, or an import that found it listed) names the entry; `at` is when
/// (what it cancelled and stopped then carries that time), `back_to` the state it was in,
/// `covered` whether another entry (its address or its domain, spelled `$domain` by the
/// backend) still lists it. Prefixed to each statement of the restore.
macro_rules! restore_matches {
    ($domain:literal, $($rest:tt)+) => {
        concat!(
            "WITH r0 AS (
                SELECT l.id AS lead_id, e.at AS at, COALESCE(e.detail->>'from', 'new') AS back_to,
                       EXISTS (SELECT 1 FROM suppressions s WHERE s.address IN (l.email, ",
            $domain,
            ")) AS covered
                FROM leads l JOIN events e ON e.id = (
                    SELECT max(x.id) FROM events x WHERE x.lead_id = l.id AND x.kind <> 'sent'
                      AND (x.kind = 'suppressed' OR (x.kind IN ('imported', 'updated') AND x.detail->>'state' = 'suppressed')))
                WHERE l.state = 'suppressed' AND e.detail->>'address' = $1),
             r AS (SELECT lead_id, at, back_to FROM r0 WHERE NOT covered)
             ",
            $($rest)+
        )
    };
}

/// Where a restored lead goes (`r` row, lead `leads.id`): where it was, except that a lead
/// that was nurturing with nothing left to resume completes (or is new if never enrolled).
macro_rules! restore_to {
    () => {
        "CASE WHEN r.back_to <> 'nurturing'
                   OR EXISTS (SELECT 1 FROM enrolments n WHERE n.lead_id = r.lead_id AND n.state = 'active') THEN r.back_to
              WHEN EXISTS (SELECT 1 FROM enrolments n WHERE n.lead_id = r.lead_id) THEN 'completed'
              ELSE 'new' END"
    };
}

/// `restore_matches!` statements that read the same in both databases, before the events:
/// what the suppression cancelled is scheduled again (not before now), what it stopped is
/// active again — only for leads that were nurturing then.
macro_rules! restore_resume {
    ($domain:literal) => {
        [
            restore_matches!(
                $domain,
                "UPDATE deliveries SET state = 'scheduled', due_at = CASE WHEN due_at < $2 THEN $2 ELSE due_at END, updated_at = $2
                 WHERE state = 'cancelled' AND EXISTS (
                     SELECT 1 FROM r WHERE r.lead_id = deliveries.lead_id AND r.at = deliveries.updated_at AND r.back_to = 'nurturing')"
            ),
            restore_matches!(
                $domain,
                "UPDATE enrolments SET state = 'active', ended_at = NULL
                 WHERE state = 'stopped' AND EXISTS (
                     SELECT 1 FROM r WHERE r.lead_id = enrolments.lead_id AND r.at = enrolments.ended_at AND r.back_to = 'nurturing')"
            ),
        ]
    };
}

/// After the events: the leads' states.
macro_rules! restore_leads {
    ($domain:literal) => {
        restore_matches!(
            $domain,
            concat!(
                "UPDATE leads SET state = (SELECT ",
                restore_to!(),
                " FROM r WHERE r.lead_id = leads.id), updated_at = $2 WHERE id IN (SELECT lead_id FROM r)"
            )
        )
    };
}

/// How many leads the entry suppressed stay suppressed by another entry.
macro_rules! restore_covered {
    ($domain:literal) => {
        restore_matches!($domain, "SELECT count(*) FROM r0 WHERE covered")
    };
}
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
/// Every named value whose key starts with $1 ($2: its length in characters), by key.
pub(crate) const KV_PREFIXED: &str =
    "SELECT key, value FROM kv_state WHERE substr(key, 1, $2) = $1 ORDER BY key";
pub(crate) const KV_INSERT_IF_ABSENT: &str = "INSERT INTO kv_state (key, value, updated_at) VALUES ($1, $2, $3) ON CONFLICT (key) DO NOTHING";
pub(crate) const SECRET_GET: &str = "SELECT value FROM secrets WHERE name = $1";
pub(crate) const SECRET_INSERT_IF_ABSENT: &str = "INSERT INTO secrets (name, value, created_at) VALUES ($1, $2, $3) ON CONFLICT (name) DO NOTHING";

// ── Status and health ───────────────────────────────────────────────────────────────────

pub(crate) const PING: &str = "SELECT 1";

/// Every count `status` shows, in one statement (one snapshot): rows of (part, key, key 2,
/// count); `since` is $1, `now` $2. Leads, enrolments and deliveries per state are the
/// counters the triggers of migration 0018 keep (`state_counts`, a few rows); the rest is a
/// range of one index each (0011: `deliveries_pending` for due now, sent today by `sent_at`;
/// 0018: `deliveries_ended`), never a pass over every lead.
pub(crate) const STATUS: &str = concat!(
    "SELECT part, state AS k1, '' AS k2, CAST(sum(n) AS BIGINT) AS n FROM state_counts
       WHERE part IN ('leads', 'deliveries') GROUP BY part, state HAVING sum(n) <> 0
     UNION ALL SELECT 'enrolments', campaign, state, CAST(sum(n) AS BIGINT) FROM state_counts
       WHERE part = 'enrolments' GROUP BY campaign, state HAVING sum(n) <> 0
     UNION ALL SELECT 'sent', '', '', count(*) FROM deliveries WHERE state = 'sent' AND sent_at >= $1
     UNION ALL SELECT state, '', '', count(*) FROM deliveries WHERE state IN ('failed', 'unknown') AND updated_at >= $1 GROUP BY state
     UNION ALL SELECT 'due_now', '', '', ",
    due_now_sql!("$2"),
    "
     UNION ALL SELECT 'inbound', classification, '', count(*) FROM inbound WHERE received_at >= $1 GROUP BY classification
     UNION ALL SELECT 'unmatched', '', '', count(*) FROM inbound WHERE lead_id IS NULL
     UNION ALL SELECT 'notifications', state, '', count(*) FROM notifications GROUP BY state",
);

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
     UNION ALL SELECT 'kv_state', count(*) FROM kv_state UNION ALL SELECT 'forgotten', count(*) FROM forgotten
     UNION ALL SELECT 'campaign_versions', count(*) FROM campaign_versions
     UNION ALL SELECT 'console_users', count(*) FROM console_users UNION ALL SELECT 'console_events', count(*) FROM console_events";

/// `TABLE_COUNTS`' rows by table.
pub(crate) fn table_counts(rows: Vec<(String, i64)>) -> BTreeMap<Table, i64> {
    rows.into_iter()
        .filter_map(|(name, n)| Table::parse(&name).map(|t| (t, n)))
        .collect()
}

/// Emptying every table `db copy` writes: children before parents.
pub(crate) const DELETE_ALL: [&str; 13] = [
    "DELETE FROM console_events",
    "DELETE FROM console_users",
    "DELETE FROM campaign_versions",
    "DELETE FROM inbound",
    "DELETE FROM notifications",
    "DELETE FROM kv_state",
    "DELETE FROM events",
    "DELETE FROM deliveries",
    "DELETE FROM enrolments",
    "DELETE FROM leads",
    "DELETE FROM suppressions",
    "DELETE FROM secrets",
    "DELETE FROM forgotten",
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
