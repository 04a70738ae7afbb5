//! The counters `status` reads (`state_counts`, kept by the triggers of migration 0018) must
//! always equal a full count of the rows: the store-contract and lifecycle suites check it
//! after every scenario, so every path that changes a state (imports, enrolment, claims,
//! outcomes, bounces, suppression, recycling, forgetting, pauses, moves …) is covered on both
//! databases.
//!
//! The same scenarios check the report's kept stages (migration 0019): each enrolment's
//! window and the first time of each funnel stage in it must equal what the event log gives
//! when recomputed from scratch.

use sqlx::Connection as _;

/// Rows of (part, state, campaign, count), by a full count.
const COUNTED: &str = "SELECT part, state, campaign, n FROM (
        SELECT 'leads' AS part, state, '' AS campaign, count(*) AS n FROM leads GROUP BY state
        UNION ALL SELECT 'enrolments', state, campaign, count(*) FROM enrolments GROUP BY state, campaign
        UNION ALL SELECT 'deliveries', state, '', count(*) FROM deliveries GROUP BY state) c
     ORDER BY part, state, campaign";

/// The same rows as the counters hold them (zeros left out).
const KEPT: &str = "SELECT part, state, campaign, CAST(sum(n) AS BIGINT) FROM state_counts
     GROUP BY part, state, campaign HAVING sum(n) <> 0 ORDER BY part, state, campaign";

type Row = (String, String, String, i64);

/// The first `kind` event (and `reason`, a SQL condition over `v`) in `c`'s window.
macro_rules! first_in_window {
    ($kind:literal, $reason:literal) => {
        concat!(
            "(SELECT min(v.at) FROM events v WHERE v.lead_id = c.lead_id AND v.kind = '",
            $kind,
            "' ",
            $reason,
            " AND v.at >= c.enrolled_at AND (c.w IS NULL OR v.at < c.w))"
        )
    };
}

/// The enrolments whose kept window or stages differ from a recomputation from the event
/// log (their ids).
const STAGES_DRIFTED: &str = concat!(
    "WITH c AS (SELECT e.id, e.lead_id, e.enrolled_at,
                   (SELECT min(n.enrolled_at) FROM enrolments n
                    WHERE n.lead_id = e.lead_id AND n.enrolled_at > e.enrolled_at) AS w,
                   (SELECT count(*) FROM enrolments n WHERE n.lead_id = e.lead_id) AS k
                FROM enrolments e),
     r AS (SELECT c.id, c.w, c.k,
                  (SELECT min(d.sent_at) FROM deliveries d WHERE d.enrolment_id = c.id AND d.state = 'sent') AS emailed,
                  ",
    first_in_window!("replied", ""),
    " AS replied, ",
    first_in_window!("rewarmed", ""),
    " AS rewarmed, ",
    first_in_window!("won", ""),
    " AS won, ",
    first_in_window!("out_of_scope", ""),
    " AS out_of_scope, ",
    first_in_window!("suppressed", "AND v.detail->>'reason' IN ('unsubscribed', 'complaint')"),
    " AS unsubscribed, ",
    first_in_window!("suppressed", "AND v.detail->>'reason' = 'hard_bounce'"),
    " AS bounced
           FROM c)
     SELECT e.id FROM enrolments e JOIN r ON r.id = e.id
     WHERE e.window_until IS DISTINCT FROM r.w OR e.lead_enrolments <> r.k OR e.first_emailed_at IS DISTINCT FROM r.emailed
        OR e.first_replied_at IS DISTINCT FROM r.replied OR e.first_rewarmed_at IS DISTINCT FROM r.rewarmed
        OR e.first_won_at IS DISTINCT FROM r.won OR e.first_out_of_scope_at IS DISTINCT FROM r.out_of_scope
        OR e.first_unsubscribed_at IS DISTINCT FROM r.unsubscribed OR e.first_bounced_at IS DISTINCT FROM r.bounced
     ORDER BY e.id"
);

/// Rows whose lead is missing, or is not their enrolment's, by table: what the foreign keys of
/// `events.lead_id` and `deliveries.lead_id` guarded on PostgreSQL before its migration 0029
/// (SQLite keeps them).
const ASTRAY: &str = "SELECT 'deliveries', d.id FROM deliveries d JOIN enrolments e ON e.id = d.enrolment_id
        WHERE d.lead_id <> e.lead_id
     UNION ALL SELECT 'events', v.id FROM events v WHERE NOT EXISTS (SELECT 1 FROM leads l WHERE l.id = v.lead_id)
     ORDER BY 1, 2";

/// Panics unless the counters of the database at `url` equal the full counts (and every
/// delivery and event belongs to its lead).
pub async fn assert_exact(url: &str) {
    let (counted, kept): (Vec<Row>, Vec<Row>) = if url.starts_with("sqlite:") {
        let mut conn = sqlx::SqliteConnection::connect(url).await.expect("open");
        let counted: Result<Vec<Row>, _> = sqlx::query_as(COUNTED).fetch_all(&mut conn).await;
        let kept: Result<Vec<Row>, _> = sqlx::query_as(KEPT).fetch_all(&mut conn).await;
        let drifted: Result<Vec<i64>, _> = sqlx::query_scalar(STAGES_DRIFTED)
            .fetch_all(&mut conn)
            .await;
        let astray: Result<Vec<(String, i64)>, _> =
            sqlx::query_as(ASTRAY).fetch_all(&mut conn).await;
        assert_stages(drifted.expect("report stages"));
        assert_at_home(astray.expect("rows astray"));
        (counted.expect("count"), kept.expect("counters"))
    } else {
        let mut conn = sqlx::PgConnection::connect(url).await.expect("connect");
        let counted: Result<Vec<Row>, _> = sqlx::query_as(COUNTED).fetch_all(&mut conn).await;
        let kept: Result<Vec<Row>, _> = sqlx::query_as(KEPT).fetch_all(&mut conn).await;
        let drifted: Result<Vec<i64>, _> = sqlx::query_scalar(STAGES_DRIFTED)
            .fetch_all(&mut conn)
            .await;
        let astray: Result<Vec<(String, i64)>, _> =
            sqlx::query_as(ASTRAY).fetch_all(&mut conn).await;
        let _ = conn.close().await;
        assert_stages(drifted.expect("report stages"));
        assert_at_home(astray.expect("rows astray"));
        (counted.expect("count"), kept.expect("counters"))
    };
    assert_eq!(kept, counted, "the state counters drifted from the rows");
}

/// Panics when a delivery or an event has lost its lead, or a delivery is not its
/// enrolment's lead's.
fn assert_at_home(astray: Vec<(String, i64)>) {
    assert!(
        astray.is_empty(),
        "rows whose lead is missing or not their enrolment's (table, id): {astray:?}"
    );
}

/// Panics when an enrolment's kept report stages drifted from the event log.
fn assert_stages(drifted: Vec<i64>) {
    assert!(
        drifted.is_empty(),
        "the report stages kept on enrolments {drifted:?} differ from the event log"
    );
}
