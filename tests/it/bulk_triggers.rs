//! SQLite's enrolment write and an import's new leads run their row statements with the
//! triggers off and do what they would have done once for the whole write
//! (`src/store/sqlite/bulk.rs`): the counters `status` reads, the report's kept stages and
//! the tag mirror must come out as the triggers keep them, and the writer must run its
//! triggers again afterwards.

use chrono::Duration;
use rewarm::outbound::scheduler;
use rewarm::store::sqlite::SqliteStore;
use rewarm::store::{LeadStore as _, Suppression, SuppressionReason, SuppressionStore as _};
use sqlx::Connection as _;

use crate::scale::{lead, loaded, on_sqlite, t0};
use crate::support::counts;

/// The triggers of the tables the enrolment write and an import fill, by table. The
/// enrolment write stands in for those that fire on its rows (`ENROL_COUNTS`,
/// `ENROL_REPORT` and the `unmatched_until` of the leads' update in
/// `src/store/sqlite/queue.rs`), an import's new leads for `leads_count_insert` and
/// `lead_tags_insert` (`IMPORTED_BULK` in `src/store/sqlite/leads.rs`); the others do
/// nothing for their rows.
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

/// Two imports with the triggers off for their new leads: the counters equal a full count
/// (leads arriving `new` and, listed by address or domain, `suppressed`), the tag mirror
/// equals one built from the leads' tags, and the writer runs its triggers again.
#[tokio::test]
async fn an_import_without_row_triggers_keeps_counters_and_tags_exact() {
    on_sqlite(imports_keep_counters_and_tags_exact).await;
}

async fn imports_keep_counters_and_tags_exact(store: SqliteStore, url: String) {
    let now = t0();
    let listed = ["bulk3@example.com", "@listed.example"].map(|address| Suppression {
        address: address.into(),
        reason: SuppressionReason::Manual,
        evidence: serde_json::json!({"source": "test"}),
        created_at: now,
    });
    store.suppress(&listed, now).await.expect("suppress");
    let batch = |from: i64| -> Vec<_> {
        (from..from + 40)
            .map(|i| {
                let domain = if i % 10 == 0 {
                    "listed.example"
                } else {
                    "example.com"
                };
                let mut lead = lead(&format!("bulk{i}@{domain}"), "timing", now);
                lead.tags = match i % 4 {
                    0 => vec![],
                    1 => vec!["VIP".into()],
                    _ => vec!["vip".into(), format!("t{}", i % 3)],
                };
                lead
            })
            .collect()
    };
    for from in [0, 40] {
        store
            .upsert_leads(&batch(from), "test", now)
            .await
            .expect("import");
    }
    assert!(store.writer_runs_row_checks().await.expect("setting"));
    counts::assert_exact(&url).await;
    let mut conn = sqlx::SqliteConnection::connect(&url)
        .await
        .expect("connect");
    let mirror = "SELECT tag, lead_id FROM lead_tags ORDER BY 1, 2";
    let kept: Vec<(String, i64)> = sqlx::query_as(mirror)
        .fetch_all(&mut conn)
        .await
        .expect("tags");
    let built: Vec<(String, i64)> = sqlx::query_as(
        "SELECT DISTINCT lower(j.value), l.id FROM leads l, json_each(l.tags) j ORDER BY 1, 2",
    )
    .fetch_all(&mut conn)
    .await
    .expect("tags built");
    assert_eq!(kept, built);
    assert_eq!(kept.len(), 100, "20 leads with one tag, 40 with two");
    let states: Vec<(String, i64)> =
        sqlx::query_as("SELECT state, count(*) FROM leads GROUP BY state ORDER BY 1")
            .fetch_all(&mut conn)
            .await
            .expect("states");
    assert_eq!(states, [("new".into(), 71), ("suppressed".into(), 9)]);
}
