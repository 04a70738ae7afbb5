//! The counters `status` reads (`state_counts`, kept by the triggers of migration 0018) must
//! always equal a full count of the rows: the store-contract and lifecycle suites check it
//! after every scenario, so every path that changes a state (imports, enrolment, claims,
//! outcomes, bounces, suppression, recycling, forgetting, pauses, moves …) is covered on both
//! databases.

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

/// Panics unless the counters of the database at `url` equal the full counts.
pub async fn assert_exact(url: &str) {
    let (counted, kept): (Vec<Row>, Vec<Row>) = if url.starts_with("sqlite:") {
        let mut conn = sqlx::SqliteConnection::connect(url).await.expect("open");
        let counted: Result<Vec<Row>, _> = sqlx::query_as(COUNTED).fetch_all(&mut conn).await;
        let kept: Result<Vec<Row>, _> = sqlx::query_as(KEPT).fetch_all(&mut conn).await;
        (counted.expect("count"), kept.expect("counters"))
    } else {
        let mut conn = sqlx::PgConnection::connect(url).await.expect("connect");
        let counted: Result<Vec<Row>, _> = sqlx::query_as(COUNTED).fetch_all(&mut conn).await;
        let kept: Result<Vec<Row>, _> = sqlx::query_as(KEPT).fetch_all(&mut conn).await;
        let _ = conn.close().await;
        (counted.expect("count"), kept.expect("counters"))
    };
    assert_eq!(kept, counted, "the state counters drifted from the rows");
}
