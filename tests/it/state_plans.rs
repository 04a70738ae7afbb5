//! Neither database keeps an index of every delivery's state (PostgreSQL's migration 0027,
//! SQLite's 0025: each of a send's state changes, and each first delivery an enrolment
//! writes, put an entry into it). Held here: the questions that name a state alone
//! still read a partial index of that state, and the index is gone. The tick's questions
//! (`scale::an_idle_tick_searches_indexes_only_on_postgres`), the repairs
//! (`faults_repair::postgres_repairs_use_their_partial_indexes`) and the send pass's writes
//! (`scale::the_send_writes_find_their_rows_by_key_on_postgres`) are held where they are.

use sqlx::Connection as _;

use crate::scale::{analyze_postgres, analyze_sqlite, on_postgres, on_sqlite, seed_due, t0};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn questions_by_a_deliverys_state_read_its_partial_index_on_postgres() {
    on_postgres("state plans", |store, url| async move {
        seed_due(&store).await;
        analyze_postgres(&url).await;
        let indexes: Vec<String> = sqlx::query_scalar(
            "SELECT indexname::text FROM pg_indexes WHERE tablename = 'deliveries'",
        )
        .fetch_all(store.pool())
        .await
        .expect("indexes");
        assert!(
            !indexes.iter().any(|i| i == "deliveries_due"),
            "{indexes:?}"
        );
        let plans = store.state_plans(t0()).await.expect("plans");
        // Each reads a partial index of its state (the pending rows: either of the two).
        let expected: [(&str, &[&str]); 3] = [
            (
                "unknown deliveries",
                &["deliveries_unknown", "deliveries_ended"],
            ),
            (
                "pending deliveries",
                &["deliveries_pending", "deliveries_campaign_waiting"],
            ),
            ("sends per day", &["deliveries_sent"]),
        ];
        assert_eq!(plans.len(), expected.len());
        for ((name, plan), (want, partial)) in plans.iter().zip(expected) {
            assert_eq!(*name, want);
            assert!(
                !plan.iter().any(|l| l.contains("Seq Scan on deliveries")),
                "{name} scans deliveries:\n{plan:#?}"
            );
            assert!(
                plan.iter().any(|l| partial.iter().any(|i| l.contains(i))),
                "{name} reads none of {partial:?}:\n{plan:#?}"
            );
        }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn questions_by_a_deliverys_state_read_its_partial_index_on_sqlite() {
    on_sqlite(|store, url| async move {
        seed_due(&store).await;
        analyze_sqlite(&url).await;
        let mut conn = sqlx::SqliteConnection::connect(&url)
            .await
            .expect("connect");
        let indexes: Vec<String> = sqlx::query_scalar(
            "SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'deliveries'",
        )
        .fetch_all(&mut conn)
        .await
        .expect("indexes");
        let _ = conn.close().await;
        assert!(
            !indexes.iter().any(|i| i == "deliveries_due"),
            "{indexes:?}"
        );
        let plans = store.state_plans(t0()).await.expect("plans");
        let expected: [(&str, &[&str]); 3] = [
            ("unknown deliveries", &["deliveries_unknown"]),
            ("pending deliveries", &["deliveries_pending"]),
            ("sends per day", &["deliveries_sent"]),
        ];
        assert_eq!(plans.len(), expected.len());
        for ((name, plan), (want, partial)) in plans.iter().zip(expected) {
            assert_eq!(*name, want);
            // A walk of deliveries is one of a state's partial index (its rows alone).
            assert!(
                !plan.iter().any(|l| (l.starts_with("SCAN d ")
                    || l == "SCAN d"
                    || l.starts_with("SCAN deliveries"))
                    && !partial.iter().any(|i| l.contains(i))),
                "{name} scans deliveries:\n{plan:#?}"
            );
            assert!(
                plan.iter().any(|l| partial.iter().any(|i| l.contains(i))),
                "{name} reads none of {partial:?}:\n{plan:#?}"
            );
        }
        store.close().await;
    })
    .await;
}
