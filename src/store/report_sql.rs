//! The SQL of `report` (`common_loop.rs`): the same text on both databases (`$1`
//! placeholders), with the parts that differ (the month, the days between two times, the
//! period's condition) passed in by the backend (`sqlite/report.rs`, `postgres/report.rs`).

/// The group expression of `by`, over enrolment `e` and lead `l`; the backend spells the
/// month (`month`).
pub(crate) fn report_group(by: crate::domain::report::GroupBy, month: &str) -> String {
    use crate::domain::report::{GroupBy, NO_OWNER};
    match by {
        GroupBy::Campaign => "e.campaign".into(),
        GroupBy::Segment => "e.segment".into(),
        GroupBy::Owner => format!("COALESCE(l.owner_email, '{NO_OWNER}')"),
        GroupBy::Month => month.into(),
    }
}

/// The cohort `c(id, lead_id, since_at, until_at, grp, lost_at)` read from the event log:
/// enrolments made in [$1, $2), each with the time until the lead's next enrolment (or $2),
/// grouped by `group`; and `v`, the events of the funnel's stages in [$1, $2).
fn report_cohort(group: &str) -> String {
    format!(
        "WITH c AS (
            SELECT e.id, e.lead_id, e.enrolled_at AS since_at,
                   COALESCE((SELECT min(n.enrolled_at) FROM enrolments n
                             WHERE n.lead_id = e.lead_id AND n.enrolled_at > e.enrolled_at AND n.enrolled_at < $2), $2) AS until_at,
                   {group} AS grp, l.lost_at
            FROM enrolments e JOIN leads l ON l.id = e.lead_id
            WHERE e.enrolled_at >= $1 AND e.enrolled_at < $2),
         v AS (SELECT lead_id, kind, at, detail->>'reason' AS reason, detail->>'intent' AS intent FROM events
               WHERE kind IN ('replied', 'rewarmed', 'won', 'out_of_scope', 'suppressed') AND at >= $1 AND at < $2)"
    )
}

/// `t`, the per-lead fold of `f` (for the totals).
const REPORT_TOTALS: &str =
    "t AS (SELECT lead_id, max(lost_at) AS lost_at, max(emailed) AS emailed, max(replied) AS replied,
                  min(rewarmed_at) AS rewarmed_at, max(won) AS won, max(out_of_scope) AS out_of_scope,
                  max(unsubscribed) AS unsubscribed, max(bounced) AS bounced
           FROM f GROUP BY lead_id)";

/// The report's stages over enrolments `e` as kept by migration 0019 (the first time of each
/// in the enrolment's window; counted when before $2): (name, expression), the re-warm a
/// time, the others 1 or 0.
fn kept_stages() -> [(&'static str, String); 7] {
    let stage = |column: &str| format!("CASE WHEN e.{column} < $2 THEN 1 ELSE 0 END");
    [
        ("emailed", stage("first_emailed_at")),
        ("replied", stage("first_replied_at")),
        (
            "rewarmed_at",
            "CASE WHEN e.first_rewarmed_at < $2 THEN e.first_rewarmed_at END".to_string(),
        ),
        ("won", stage("first_won_at")),
        ("out_of_scope", stage("first_out_of_scope_at")),
        ("unsubscribed", stage("first_unsubscribed_at")),
        ("bounced", stage("first_bounced_at")),
    ]
}

/// A stage folded over several rows: any (max), the re-warm the first (min).
fn fold_stage(name: &str, expression: &str) -> String {
    match name {
        "rewarmed_at" => format!("min({expression}) AS {name}"),
        _ => format!("max({expression}) AS {name}"),
    }
}

/// The report from the stages each enrolment keeps (migration 0019: its window and the first
/// time of each stage in it, kept by triggers with every write), reading no event. Rows as
/// `report_sql` says. A lead with one enrolment (`lead_enrolments = 1`, most leads) counts
/// once in its group and once in the totals as it is, so those are aggregated straight per
/// group (`one`, one pass over the enrolments of the range, `range` being the backend's
/// condition) and their totals are the sums of their groups; only the leads with several
/// enrolments are folded per group and lead (`m`) and per lead (`mt`). The days from loss to
/// re-warm read only the re-warmed enrolments (`enrolments_rewarmed`).
fn report_kept_sql(group: &str, days: &str, range: &str) -> String {
    let stages = kept_stages();
    let single: Vec<String> = stages.iter().map(|(n, e)| format!("{e} AS {n}")).collect();
    let grouped: Vec<String> = stages.iter().map(|(n, e)| fold_stage(n, e)).collect();
    let folded: Vec<String> = stages.iter().map(|(n, _)| fold_stage(n, n)).collect();
    let counts = "count(*) AS n, sum(emailed) AS emailed, sum(replied) AS replied, count(rewarmed_at) AS rewarmed,
                  sum(won) AS won, sum(out_of_scope) AS out_of_scope, sum(unsubscribed) AS unsubscribed,
                  sum(bounced) AS bounced";
    let sums = "CAST(sum(n) AS BIGINT), CAST(sum(emailed) AS BIGINT), CAST(sum(replied) AS BIGINT),
                CAST(sum(rewarmed) AS BIGINT), CAST(sum(won) AS BIGINT), CAST(sum(out_of_scope) AS BIGINT),
                CAST(sum(unsubscribed) AS BIGINT), CAST(sum(bounced) AS BIGINT)";
    let zeros = REPORT_ZEROS;
    let all = crate::domain::report::ALL;
    format!(
        "WITH one AS (
            SELECT {group} AS grp, {single}
            FROM enrolments e JOIN leads l ON l.id = e.lead_id
            WHERE {range} AND e.lead_enrolments = 1),
         m AS MATERIALIZED (
            SELECT {group} AS grp, e.lead_id, max(l.lost_at) AS lost_at, {grouped}
            FROM enrolments e JOIN leads l ON l.id = e.lead_id
            WHERE {range} AND e.lead_enrolments > 1
            GROUP BY {group}, e.lead_id),
         mt AS (SELECT lead_id, max(lost_at) AS lost_at, {folded} FROM m GROUP BY lead_id),
         g AS MATERIALIZED (
            SELECT 1 AS alone, grp, {counts} FROM one GROUP BY grp
            UNION ALL SELECT 0, grp, {counts} FROM m GROUP BY grp),
         r AS (SELECT {group} AS grp, l.lost_at, e.first_rewarmed_at AS rewarmed_at
               FROM enrolments e JOIN leads l ON l.id = e.lead_id
               WHERE e.first_rewarmed_at < $2 AND {range} AND e.lead_enrolments = 1 AND l.lost_at IS NOT NULL)
         SELECT 'funnel' AS part, grp, CAST(0 AS BIGINT) AS days, {sums} FROM g GROUP BY grp
         UNION ALL SELECT 'funnel', CAST('{all}' AS TEXT), CAST(0 AS BIGINT), {sums}
                   FROM (SELECT n, emailed, replied, rewarmed, won, out_of_scope, unsubscribed, bounced FROM g WHERE alone = 1
                         UNION ALL SELECT {counts} FROM mt) x
                   HAVING sum(n) > 0
         UNION ALL SELECT 'days', grp, {days}, count(*), {zeros}
                   FROM (SELECT grp, lost_at, rewarmed_at FROM r
                         UNION ALL SELECT grp, lost_at, rewarmed_at FROM m WHERE rewarmed_at IS NOT NULL AND lost_at IS NOT NULL) f
                   GROUP BY grp, {days}
         UNION ALL SELECT 'days', CAST('{all}' AS TEXT), {days}, count(*), {zeros}
                   FROM (SELECT lost_at, rewarmed_at FROM r
                         UNION ALL SELECT lost_at, rewarmed_at FROM mt WHERE rewarmed_at IS NOT NULL AND lost_at IS NOT NULL) f
                   GROUP BY {days}",
        single = single.join(", "),
        grouped = grouped.join(", "),
        folded = folded.join(", "),
    )
}

/// Seven zero counts (the `days` rows' unused columns).
const REPORT_ZEROS: &str = "CAST(0 AS BIGINT), CAST(0 AS BIGINT), CAST(0 AS BIGINT), CAST(0 AS BIGINT), \
                 CAST(0 AS BIGINT), CAST(0 AS BIGINT), CAST(0 AS BIGINT)";

/// The report recomputed from the event log (`report --verify`): `f`, one row per group and
/// lead with its stages, each a flag (1 if it happened in any of the lead's windows in that
/// group), the first re-warm a time; `t` folds `f` per lead. The cohort, then one pass over
/// the events of the stages' kinds in [$1, $2) (`events_kind_at`) and the sent deliveries
/// (`deliveries_sent`), joined in bulk.
fn report_flags_from_events(group: &str) -> String {
    format!(
        "{cohort},
         s AS (SELECT DISTINCT enrolment_id FROM deliveries WHERE state = 'sent' AND sent_at < $2),
         f AS MATERIALIZED (
            SELECT c.grp, c.lead_id, max(c.lost_at) AS lost_at,
                   max(CASE WHEN s.enrolment_id IS NULL THEN 0 ELSE 1 END) AS emailed,
                   max(CASE WHEN v.kind = 'replied' THEN 1 ELSE 0 END) AS replied,
                   min(CASE WHEN v.kind = 'rewarmed' THEN v.at END) AS rewarmed_at,
                   max(CASE WHEN v.kind = 'won' THEN 1 ELSE 0 END) AS won,
                   max(CASE WHEN v.kind = 'out_of_scope' THEN 1 ELSE 0 END) AS out_of_scope,
                   max(CASE WHEN v.kind = 'suppressed' AND v.reason IN ('unsubscribed', 'complaint') THEN 1 ELSE 0 END) AS unsubscribed,
                   max(CASE WHEN v.kind = 'suppressed' AND v.reason = 'hard_bounce' THEN 1 ELSE 0 END) AS bounced
            FROM c LEFT JOIN s ON s.enrolment_id = c.id
                   LEFT JOIN v ON v.lead_id = c.lead_id AND v.at >= c.since_at AND v.at < c.until_at
            GROUP BY c.grp, c.lead_id),
         {REPORT_TOTALS}",
        cohort = report_cohort(group)
    )
}

/// The funnel and the days from loss to first re-warm, per group and in total, in one
/// statement: rows (part, grp, days, 8 counts) where part `funnel` has the stages
/// (`domain::report` defines them), each a count of leads, and part `days` has in its first
/// count the leads re-warmed `days` whole days after their loss (`days` is the backend's
/// expression over `f.lost_at` and `f.rewarmed_at`). From the stages the enrolments keep
/// (`range`: the backend's condition for enrolments `e` made in [$1, $2)), or
/// (`from_events`) recomputed from the event log.
pub(crate) fn report_sql(group: &str, days: &str, range: &str, from_events: bool) -> String {
    if !from_events {
        return report_kept_sql(group, days, range);
    }
    let counts = "count(*), CAST(sum(emailed) AS BIGINT), CAST(sum(replied) AS BIGINT), count(rewarmed_at),
                CAST(sum(won) AS BIGINT), CAST(sum(out_of_scope) AS BIGINT), CAST(sum(unsubscribed) AS BIGINT),
                CAST(sum(bounced) AS BIGINT)";
    let zeros = REPORT_ZEROS;
    let rewarmed = "rewarmed_at IS NOT NULL AND lost_at IS NOT NULL";
    format!(
        "{flags}
         SELECT 'funnel' AS part, grp, CAST(0 AS BIGINT) AS days, {counts} FROM f GROUP BY grp
         UNION ALL SELECT 'funnel', CAST('{all}' AS TEXT), CAST(0 AS BIGINT), {counts} FROM t HAVING count(*) > 0
         UNION ALL SELECT 'days', grp, {days}, count(*), {zeros} FROM f WHERE {rewarmed} GROUP BY grp, {days}
         UNION ALL SELECT 'days', CAST('{all}' AS TEXT), {days}, count(*), {zeros} FROM t AS f
                   WHERE {rewarmed} GROUP BY {days}",
        flags = report_flags_from_events(group),
        all = crate::domain::report::ALL,
    )
}

/// Replies per group and intent: (grp, intent, replies) — every `replied` event in each
/// cohort row's window, by the intent read on it (`unread` when none was). Each reply falls
/// in one cohort row, so the totals are the sums (made by the caller). The replies of
/// [$1, $2) (`events_kind_at`), each joined to the enrolments whose kept window holds it;
/// or (`from_events`) with the windows recomputed.
pub(crate) fn report_intents_sql(group: &str, from_events: bool) -> String {
    let unread = crate::domain::report::UNREAD;
    if from_events {
        return format!(
            "{cohort}
             SELECT c.grp, COALESCE(v.intent, '{unread}') AS intent, count(*)
             FROM c JOIN v ON v.lead_id = c.lead_id AND v.kind = 'replied'
                           AND v.at >= c.since_at AND v.at < c.until_at
             GROUP BY c.grp, COALESCE(v.intent, '{unread}')",
            cohort = report_cohort(group),
        );
    }
    format!(
        "SELECT {group} AS grp, COALESCE(v.detail->>'intent', '{unread}') AS intent, count(*)
         FROM events v
         JOIN enrolments e ON e.lead_id = v.lead_id AND e.enrolled_at <= v.at
                          AND (e.window_until IS NULL OR v.at < e.window_until)
         JOIN leads l ON l.id = e.lead_id
         WHERE v.kind = 'replied' AND v.at >= $1 AND v.at < $2 AND e.enrolled_at >= $1 AND e.enrolled_at < $2
         GROUP BY {group}, COALESCE(v.detail->>'intent', '{unread}')"
    )
}
