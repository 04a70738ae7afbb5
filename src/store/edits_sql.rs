//! The SQL of campaign edits ([`super::edits`]): the same text on both databases (`$1`
//! placeholders), counted over the `deliveries_campaign_waiting` partial index.

pub(crate) const CURRENT_VERSIONS: &str = "SELECT v.campaign, v.version, v.definition, v.applied_at FROM campaign_versions v
     WHERE v.id = (SELECT w.id FROM campaign_versions w WHERE w.campaign = v.campaign ORDER BY w.applied_at DESC, w.id DESC LIMIT 1)";
pub(crate) const RECORD_VERSION: &str = "INSERT INTO campaign_versions (campaign, version, definition, applied_at) VALUES ($1, $2, $3, $4)
     ON CONFLICT (campaign, version) DO UPDATE SET applied_at = excluded.applied_at";
pub(crate) const PIN_PREVIOUS: &str =
    "UPDATE enrolments SET version = $2 WHERE campaign = $1 AND version IS NULL";
pub(crate) const PIN_NEW: &str = "UPDATE enrolments SET version = $2 WHERE campaign = $1 AND state = 'active' AND (version IS NULL OR version <> $2)";
pub(crate) const FOLLOWED: &str =
    "SELECT campaign, version, segment, count(*) AS n FROM enrolments WHERE state = 'active'
     GROUP BY campaign, version, segment ORDER BY campaign, version, segment";
/// The campaigns of the active enrolments, each found by one probe of
/// `enrolments_state_campaign (state, campaign)`: the next campaign after the last found.
pub(crate) const ACTIVE_CAMPAIGNS: &str = "WITH RECURSIVE c (campaign) AS (
        SELECT min(campaign) FROM enrolments WHERE state = 'active'
        UNION ALL
        SELECT (SELECT min(n.campaign) FROM enrolments n WHERE n.state = 'active' AND n.campaign > c.campaign)
        FROM c WHERE c.campaign IS NOT NULL)
     SELECT campaign FROM c WHERE campaign IS NOT NULL";
pub(crate) const ENROLMENT_VERSIONS: &str =
    "SELECT campaign, version FROM enrolments WHERE lead_id = $1";
pub(crate) const WAITING_COUNTS: &str = "SELECT step, template, state, count(*) AS n FROM deliveries
     WHERE campaign = $1 AND state IN ('scheduled', 'retry_wait') GROUP BY step, template, state ORDER BY step, template, state";
/// A waiting step with its lead's zone and loss date and when the step before it ended.
macro_rules! select_waiting {
    ($rest:literal) => {
        concat!(
            "SELECT d.id, d.lead_id, d.enrolment_id, l.email, d.campaign, d.step, d.template, d.state, d.due_at,
                    COALESCE(l.lost_at, l.created_at) AS anchor, l.timezone, l.fields ->> 'country' AS country,
                    (SELECT max(COALESCE(p.sent_at, p.updated_at)) FROM deliveries p
                      WHERE p.enrolment_id = d.enrolment_id AND p.cycle = d.cycle AND p.step = d.step - 1) AS prev_at
             FROM deliveries d JOIN leads l ON l.id = d.lead_id ",
            $rest
        )
    };
}
pub(crate) const WAITING_STEPS: &str = select_waiting!(
    "WHERE d.campaign = $1 AND d.state IN ('scheduled', 'retry_wait') AND (d.state = 'scheduled' OR $2) AND d.id > $3
     ORDER BY d.id LIMIT $4"
);
pub(crate) const LATE_STEPS: &str = select_waiting!(
    "WHERE d.campaign = $1 AND d.state IN ('scheduled', 'retry_wait') AND d.state = 'scheduled' AND d.due_at < $2
       AND l.state = 'nurturing' ORDER BY d.id LIMIT $3"
);
pub(crate) const WAITING_STEPS_FROM: &str = "SELECT DISTINCT step FROM deliveries
     WHERE campaign = $1 AND state IN ('scheduled', 'retry_wait') AND step >= $2 ORDER BY step";
pub(crate) const CANCEL_STEP_EVENTS: &str = "INSERT INTO events (lead_id, at, kind, detail)
     SELECT lead_id, $3, 'cancelled', $4 FROM deliveries WHERE campaign = $1 AND state IN ('scheduled', 'retry_wait') AND step = $2 ORDER BY id";
pub(crate) const CANCEL_STEP: &str =
    "UPDATE deliveries SET state = 'cancelled', last_error = $4, updated_at = $3
     WHERE campaign = $1 AND state IN ('scheduled', 'retry_wait') AND step = $2";
pub(crate) const RETEMPLATE: &str = "UPDATE deliveries SET template = $4, updated_at = $5
     WHERE campaign = $1 AND state IN ('scheduled', 'retry_wait') AND step >= $2 AND step <= $3 AND template <> $4";
pub(crate) const RESCHEDULE: &str =
    "UPDATE deliveries SET due_at = $2, updated_at = $3 WHERE id = $1 AND state = 'scheduled'";
/// An active enrolment with how far its current round went.
macro_rules! select_active {
    ($rest:literal) => {
        concat!(
            "SELECT e.campaign, e.id, e.lead_id, e.segment,
        (SELECT count(DISTINCT d.step) FROM deliveries d WHERE d.enrolment_id = e.id AND d.cycle = e.cycle
            AND d.state IN ('sent', 'failed', 'unknown', 'tasked', 'skipped')) AS steps_done,
        (SELECT max(COALESCE(d.sent_at, d.updated_at)) FROM deliveries d WHERE d.enrolment_id = e.id AND d.cycle = e.cycle
            AND d.state IN ('sent', 'failed', 'unknown', 'tasked', 'skipped')) AS last_at
     FROM enrolments e ",
            $rest
        )
    };
}
pub(crate) const ACTIVE_ENROLMENTS: &str = select_active!(
    "WHERE e.campaign = $1 AND e.state = 'active' AND e.id > $2 ORDER BY e.id LIMIT $3"
);
/// The id of the `$2`-th `updated` event after event `$1` (or of the last one).
pub(crate) const UPDATED_UPTO: &str = "SELECT max(u.id) FROM (SELECT id FROM events WHERE kind = 'updated' AND id > $1 ORDER BY id LIMIT $2) u";
/// Active enrolments of the leads with an `updated` event in ($1, $2].
pub(crate) const ENROLMENTS_UPDATED: &str = select_active!(
    "WHERE e.state = 'active' AND e.lead_id IN (SELECT lead_id FROM events WHERE kind = 'updated' AND id > $1 AND id <= $2)
     ORDER BY e.id"
);
pub(crate) const MOVE_CANCEL_EVENTS: &str = "INSERT INTO events (lead_id, at, kind, detail)
     SELECT lead_id, $2, 'cancelled', $3 FROM deliveries WHERE enrolment_id = $1 AND state IN ('scheduled', 'retry_wait') ORDER BY id";
pub(crate) const MOVE_CANCEL: &str =
    "UPDATE deliveries SET state = 'cancelled', last_error = 'config change', updated_at = $2
     WHERE enrolment_id = $1 AND state IN ('scheduled', 'retry_wait')";
pub(crate) const MOVE_END: &str =
    "UPDATE enrolments SET state = 'continued', ended_at = $2 WHERE id = $1 AND state = 'active'";
pub(crate) const MOVE_ENROL: &str = "INSERT INTO enrolments (lead_id, campaign, segment, state, enrolled_at, ended_at, cycle)
     VALUES ($1, $2, $3, $4, $5, $6, 0)
     ON CONFLICT (lead_id, campaign) DO UPDATE SET state = excluded.state, segment = excluded.segment,
        enrolled_at = excluded.enrolled_at, ended_at = excluded.ended_at, cycle = enrolments.cycle + 1, version = NULL
     RETURNING id, cycle";
pub(crate) const MOVE_STEP: &str = "INSERT INTO deliveries (lead_id, enrolment_id, campaign, step, template, state, due_at, updated_at, cycle)
     VALUES ($1, $2, $3, $4, $5, 'scheduled', $6, $7, $8) ON CONFLICT (enrolment_id, cycle, step) DO NOTHING";
pub(crate) const MOVE_COMPLETE: &str =
    "UPDATE leads SET state = 'completed', updated_at = $2 WHERE id = $1 AND state = 'nurturing'
       AND NOT EXISTS (SELECT 1 FROM enrolments e WHERE e.lead_id = $1 AND e.state = 'active')";
pub(crate) const PARK: &str = "UPDATE leads SET state = 'paused', paused_from = 'new', updated_at = $2 WHERE id = $1 AND state = 'nurturing'
       AND NOT EXISTS (SELECT 1 FROM enrolments e WHERE e.lead_id = $1 AND e.state = 'active')";
pub(crate) const SKIP: &str = "UPDATE deliveries SET state = 'skipped', last_error = 'late', updated_at = $2 WHERE id = $1 AND state = 'scheduled'";
