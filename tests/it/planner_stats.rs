//! PostgreSQL plans by statistics: a pass that enrolled many leads refreshes them before the
//! send pass claims, so the first claim is not planned on a table of `new` leads and no
//! delivery (which joined every due delivery with every `nurturing` lead: minutes at 100k).

use chrono::Duration;
use rewarm::outbound::scheduler;
use rewarm::store::LeadStore as _;
use rewarm::store::postgres::PgStore;

use crate::scale::{lead, loaded, on_postgres, t0};

/// `SELECT` of one text value (None: no row).
async fn text(store: &PgStore, sql: &'static str) -> Option<String> {
    sqlx::query_scalar(sql)
        .fetch_optional(store.pool())
        .await
        .expect("query")
}

/// Imports `n` leads (`{prefix}{i}@example.com`) lost for `timing` 100 days before `t0`: a
/// segment of `loaded`'s rules enrols each.
async fn lost_leads(store: &PgStore, prefix: &str, n: usize) {
    let lost = t0() - Duration::days(100);
    let leads: Vec<_> = (0..n)
        .map(|i| lead(&format!("{prefix}{i}@example.com"), "timing", lost))
        .collect();
    store
        .upsert_leads(&leads, "test", t0())
        .await
        .expect("upsert");
}

const LEADS_STATES: &str =
    "SELECT most_common_vals::text FROM pg_stats WHERE tablename = 'leads' AND attname = 'state'";
const DELIVERY_STATES: &str = "SELECT most_common_vals::text FROM pg_stats
     WHERE tablename = 'deliveries' AND attname = 'state'";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_large_enrolment_refreshes_the_planners_statistics() {
    on_postgres("planner statistics", |store, url| async move {
        let dir = tempfile::tempdir().expect("dir");
        let rules = loaded(dir.path(), &url, false);
        let now = t0();
        lost_leads(&store, "s", scheduler::REFRESH_STATISTICS_AFTER).await;
        // Statistics from before the pass, as after `db copy` of a database not enrolled yet.
        sqlx::query("ANALYZE")
            .execute(store.pool())
            .await
            .expect("analyze");
        assert_eq!(text(&store, LEADS_STATES).await.as_deref(), Some("{new}"));
        assert_eq!(text(&store, DELIVERY_STATES).await, None);

        let enrolled = scheduler::enrol(&store, &rules, now).await.expect("enrol");
        assert_eq!(enrolled, scheduler::REFRESH_STATISTICS_AFTER);
        assert_eq!(
            text(&store, LEADS_STATES).await.as_deref(),
            Some("{nurturing}")
        );
        assert_eq!(
            text(&store, DELIVERY_STATES).await.as_deref(),
            Some("{scheduled}")
        );
    })
    .await;
}

/// Refreshes after the first run beside the writes; the last one, at the end, is waited for:
/// a pass of 40 writes (1,000 enrolments past the first refresh, 2,000 past the second, which
/// runs beside the writes after it) ends on statistics of every row it wrote.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refreshes_run_beside_the_writes_and_the_last_one_sees_them_all() {
    on_postgres(
        "planner statistics beside the writes",
        |store, url| async move {
            let dir = tempfile::tempdir().expect("dir");
            let rules = loaded(dir.path(), &url, false);
            let now = t0();
            let n = 4 * scheduler::REFRESH_STATISTICS_AFTER;
            lost_leads(&store, "w", n).await;
            let enrolled = scheduler::enrol_in_pages(&store, &rules, now, 100, 100)
                .await
                .expect("enrol");
            assert_eq!(enrolled, n);
            let rows: f32 =
                sqlx::query_scalar("SELECT reltuples FROM pg_class WHERE relname = 'enrolments'")
                    .fetch_one(store.pool())
                    .await
                    .expect("reltuples");
            assert_eq!(rows as usize, n, "the last refresh counted every enrolment");
            assert_eq!(
                text(&store, DELIVERY_STATES).await.as_deref(),
                Some("{scheduled}")
            );
        },
    )
    .await;
}
