//! SQLite's enrolment write runs its row statements with the triggers off and does what
//! they would have done once for the whole write (`src/store/sqlite/bulk.rs`): the counters
//! `status` reads and the report's kept stages must come out as the triggers keep them, and
//! the writer must run its triggers again afterwards.

use chrono::Duration;
use rewarm::outbound::scheduler;
use rewarm::store::LeadStore as _;
use rewarm::store::sqlite::SqliteStore;
use sqlx::Connection as _;

use crate::scale::{lead, loaded, on_sqlite, t0};
use crate::support::counts;

/// The triggers of the tables the enrolment write fills, by table. The write stands in for
/// those that fire on its rows (`ENROL_COUNTS`, `ENROL_REPORT` and the `unmatched_until`
/// of the leads' update in `src/store/sqlite/queue.rs`); the others do nothing for them.
/// A trigger added to these tables fails this test until that list is checked against it.
const TRIGGERS: &[(&str, &str)] = &[
    ("deliveries", "deliveries_count_delete"),
    ("deliveries", "deliveries_count_insert"),
    ("deliveries", "deliveries_count_update"),
    ("deliveries", "deliveries_report_delete"),
    ("deliveries", "deliveries_report_insert"),
    ("deliveries", "deliveries_report_sent"),
    ("deliveries", "deliveries_report_unsent"),
    ("enrolments", "enrolments_count_delete"),
    ("enrolments", "enrolments_count_insert"),
    ("enrolments", "enrolments_count_update"),
    ("enrolments", "enrolments_report_delete"),
    ("enrolments", "enrolments_report_insert"),
    ("enrolments", "enrolments_report_update"),
    ("events", "events_report_delete"),
    ("events", "events_report_insert"),
    ("events", "events_report_update"),
    ("leads", "lead_tags_delete"),
    ("leads", "lead_tags_insert"),
    ("leads", "lead_tags_update"),
    ("leads", "leads_count_delete"),
    ("leads", "leads_count_insert"),
    ("leads", "leads_count_update"),
    ("leads", "leads_examine_again"),
    ("leads", "leads_import_stale"),
];

#[tokio::test]
async fn the_enrolment_write_stands_in_for_every_trigger_of_its_tables() {
    on_sqlite(the_triggers_are_the_known_ones).await;
}

async fn the_triggers_are_the_known_ones(_store: SqliteStore, url: String) {
    let mut conn = sqlx::SqliteConnection::connect(&url)
        .await
        .expect("connect");
    let found: Vec<(String, String)> = sqlx::query_as(
        "SELECT tbl_name, name FROM sqlite_master WHERE type = 'trigger'
           AND tbl_name IN ('leads', 'enrolments', 'deliveries', 'events') ORDER BY tbl_name, name",
    )
    .fetch_all(&mut conn)
    .await
    .expect("triggers");
    let expected: Vec<(String, String)> = TRIGGERS
        .iter()
        .map(|(t, n)| (t.to_string(), n.to_string()))
        .collect();
    assert_eq!(
        found, expected,
        "the triggers of the tables SQLite's enrolment write fills changed: check what the \
         write does in their place (src/store/sqlite/queue.rs, `enrol`)"
    );
}

/// A pass of several writes: the counters equal a full count, each enrolment's kept stages
/// equal a recomputation (a lead with a reply already on record is queued for it), the
/// leads no segment matches are marked, and the writer runs its triggers again.
#[tokio::test]
async fn an_enrolment_without_row_triggers_keeps_counters_and_report_exact() {
    on_sqlite(a_pass_keeps_counters_and_report_exact).await;
}

async fn a_pass_keeps_counters_and_report_exact(store: SqliteStore, url: String) {
    let dir = tempfile::tempdir().expect("dir");
    let rules = loaded(dir.path(), &url, false);
    let mut conn = sqlx::SqliteConnection::connect(&url)
        .await
        .expect("connect");
    let now = t0();
    let leads: Vec<_> = (0..90)
        .map(|i| {
            let reason = if i % 3 == 0 { "went_quiet" } else { "timing" };
            lead(
                &format!("bulk{i}@example.com"),
                reason,
                now - Duration::days(40 + i),
            )
        })
        .collect();
    store
        .upsert_leads(&leads, "test", now)
        .await
        .expect("upsert");
    let replied = now + Duration::hours(1);
    let (first,): (i64,) = sqlx::query_as("SELECT min(id) FROM leads")
        .fetch_one(&mut conn)
        .await
        .expect("lead");
    let lead_id = first + 1; // a `timing` lead
    assert!(
        store
            .record_event(lead_id, "replied", &serde_json::json!({}), &[], replied)
            .await
            .expect("event")
    );
    let enrolled = scheduler::enrol_in_pages(&store, &rules, now, 7, 20)
        .await
        .expect("enrol");
    assert_eq!(enrolled, 60);
    assert!(store.writer_runs_row_checks().await.expect("setting"));
    let (kept,): (Option<i64>,) =
        sqlx::query_as("SELECT first_replied_at FROM enrolments WHERE lead_id = $1")
            .bind(lead_id)
            .fetch_one(&mut conn)
            .await
            .expect("enrolment");
    assert_eq!(kept, Some(replied.timestamp_millis()));
    counts::assert_exact(&url).await;
    let (marked, first_steps): (i64, i64) = sqlx::query_as(
        "SELECT (SELECT count(*) FROM leads WHERE unmatched_until IS NOT NULL),
                (SELECT count(*) FROM deliveries WHERE step = 0 AND state = 'scheduled')",
    )
    .fetch_one(&mut conn)
    .await
    .expect("rows");
    assert_eq!((marked, first_steps), (30, 60));
}
