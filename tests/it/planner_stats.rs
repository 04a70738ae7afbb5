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
        let leads: Vec<_> = (0..scheduler::REFRESH_STATISTICS_AFTER)
            .map(|i| {
                lead(
                    &format!("s{i}@example.com"),
                    "timing",
                    now - Duration::days(100),
                )
            })
            .collect();
        store
            .upsert_leads(&leads, "test", now)
            .await
            .expect("upsert");
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
