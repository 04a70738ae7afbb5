//! Start-up and repair are indexed (issue 9 part 8): the plans of the lease-expiry,
//! release and stalled-enrolment queries read indexes, never a whole table, on both
//! backends. Not timed: `benches/repair.rs` times them at 1,000,000 leads next to its
//! references.
//!
//! PostgreSQL's planner prefers a sequential scan of a small table whatever the indexes, so
//! there the plans are asked with `enable_seqscan = off`: a query that an index can serve
//! then shows it, one that no index can serve still scans.

use crate::support::db::with_postgres;
use rewarm::store::Store;
use rewarm::store::postgres::PgStore;
use rewarm::store::sqlite::SqliteStore;

/// The names of the repairs every plan must cover.
const REPAIRS: [&str; 3] = ["lease expiry", "release_unstarted", "stalled_enrolments"];

fn covers_every_repair(plans: &[(&'static str, String)]) {
    for repair in REPAIRS {
        assert!(
            plans.iter().any(|(name, _)| name.starts_with(repair)),
            "no plan for {repair}: {plans:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_repairs_search_indexes_and_scan_no_table() {
    let dir = tempfile::tempdir().expect("temp dir");
    let url = format!("sqlite://{}", dir.path().join("r.db").display());
    let store = SqliteStore::connect(&url).await.expect("open");
    store.migrate().await.expect("migrate");
    let plans = store.repair_plans().await.expect("plans");
    covers_every_repair(&plans);
    for (name, plan) in &plans {
        for line in plan.lines() {
            // `SCAN t` alone reads a whole table; `SCAN t USING … INDEX` reads an index, and
            // `SCAN u` of the small DISTINCT co-routine reads its own result.
            let bare_scan =
                line.starts_with("SCAN ") && !line.contains("INDEX") && line != "SCAN u";
            assert!(!bare_scan, "{name} scans a table: {line}\n{plan}");
        }
        assert!(
            plan.contains("USING INDEX") || plan.contains("USING COVERING INDEX"),
            "{name}: {plan}"
        );
    }
    let stalled = &plans
        .iter()
        .find(|(n, _)| *n == "stalled_enrolments")
        .expect("stalled")
        .1;
    assert!(
        stalled.contains("deliveries_enrolment"),
        "the pending check reads the enrolment's rows by index:\n{stalled}"
    );
    store.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_repairs_use_their_partial_indexes() {
    with_postgres(
        "postgres_repairs_use_their_partial_indexes",
        |url| async move {
            let store = PgStore::connect(&url).await.expect("connect");
            store.migrate().await.expect("migrate");
            let plans = store.repair_plans(true).await.expect("plans");
            covers_every_repair(&plans);
            for (name, plan) in &plans {
                for table in ["deliveries", "enrolments", "leads"] {
                    assert!(
                        !plan.contains(&format!("Seq Scan on {table}")),
                        "{name} scans {table}:\n{plan}"
                    );
                }
            }
            let plan_of = |n: &str| &plans.iter().find(|(name, _)| *name == n).expect(n).1;
            assert!(
                plan_of("lease expiry").contains("deliveries_lease"),
                "{}",
                plan_of("lease expiry")
            );
            let stalled = plan_of("stalled_enrolments");
            assert!(stalled.contains("deliveries_unknown"), "{stalled}");
            assert!(stalled.contains("deliveries_enrolment"), "{stalled}");
            store.close().await;
        },
    )
    .await;
}
