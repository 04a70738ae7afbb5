//! PostgreSQL writes a row's new version on the row's own page when it fits, and only then
//! can an update that changes no indexed column be a HOT update (no index entry written).
//! `deliveries` and `enrolments` keep room on each page for the versions a send writes
//! (migration 0026: the claim, the start mark and the `sent` update of a delivery; the first
//! send's `first_emailed_at` of an enrolment). Held here by where the rows are after a send
//! pass's own statements, which neither timing nor the server's statistics decide.

use std::collections::HashMap;

use chrono::Duration;
use rewarm::domain::lead::LeadState;
use rewarm::store::postgres::PgStore;
use rewarm::store::{
    ClaimedDelivery, LeadStore as _, NextStep, Outcome, QueueStore as _, RecordedOutcome,
};

use crate::scale::on_postgres;
use crate::store::{enrolment, lead, t0};

/// Leads enrolled and sent to: several pages of both tables.
const LEADS: usize = 600;
/// A wave: 8 connections × `wave_depth` 16, in two lanes (PostgreSQL's `WAVE_LANES`).
const WAVE: usize = 64;

const ENROLMENT_PAGES: &str = "SELECT id, ((ctid::text::point)[0])::bigint FROM enrolments";
const DELIVERY_PAGES: &str = "SELECT id, ((ctid::text::point)[0])::bigint FROM deliveries";

/// The page (block number) each row is on, by id (`ENROLMENT_PAGES` or `DELIVERY_PAGES`).
async fn pages(store: &PgStore, sql: &'static str) -> HashMap<i64, i64> {
    sqlx::query_as::<_, (i64, i64)>(sql)
        .fetch_all(store.pool())
        .await
        .expect("pages")
        .into_iter()
        .collect()
}

/// How many of `ids` are still on the page `before` saw them on.
fn stayed(before: &HashMap<i64, i64>, after: &HashMap<i64, i64>) -> usize {
    before
        .iter()
        .filter(|(id, page)| after.get(id) == Some(page))
        .count()
}

/// Each delivery of `wave` sent, with its next step a month later.
fn sent(wave: &[ClaimedDelivery]) -> Vec<RecordedOutcome> {
    wave.iter()
        .map(|d| RecordedOutcome {
            delivery: d.clone(),
            outcome: Outcome::Sent {
                message_id: format!("<{}@x>", d.id),
                provider_id: None,
                next: Some(NextStep {
                    step: d.step + 1,
                    due_at: t0() + Duration::days(30),
                    template: "next".into(),
                }),
            },
        })
        .collect()
}

/// The send pass's writes, as `dispatch` makes them: one claim, the first wave marked
/// started, then each wave's outcomes recorded in the statement that starts the next.
async fn send_in_waves(store: &PgStore, claimed: &[ClaimedDelivery]) {
    let waves: Vec<&[ClaimedDelivery]> = claimed.chunks(WAVE).collect();
    let ids = |wave: &[ClaimedDelivery]| wave.iter().map(|d| d.id).collect::<Vec<_>>();
    store
        .mark_started(&ids(waves[0]), "w", t0())
        .await
        .expect("start");
    for pair in waves.windows(2) {
        let started = store
            .record_and_start(&sent(pair[0]), &ids(pair[1]), "w", t0(), t0())
            .await
            .expect("record and start");
        assert_eq!(started.len(), pair[1].len());
    }
    let last = waves.last().expect("a wave");
    store
        .record_outcomes(&sent(last), "w", t0())
        .await
        .expect("record");
}

/// Waits (up to 10 s) until no other backend of the server holds a transaction id, in
/// whatever database: each such transaction holds back the snapshots that decide pruning.
async fn wait_for_a_quiet_server(store: &PgStore) {
    for _ in 0..100 {
        let writing: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM pg_stat_activity WHERE backend_xid IS NOT NULL AND pid <> pg_backend_pid()",
        )
        .fetch_one(store.pool())
        .await
        .expect("activity");
        if writing == 0 {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}

/// Rows of each table still on their page after a send: (enrolments, deliveries), of
/// `LEADS` each.
async fn send_and_count_stayed(store: PgStore) -> (usize, usize) {
    let new: Vec<_> = (0..LEADS)
        .map(|i| lead(&format!("room{i}@example.com")))
        .collect();
    let since = t0() - Duration::days(1);
    store
        .upsert_leads(&new, "test", since)
        .await
        .expect("upsert");
    let leads = store
        .leads_in_state(LeadState::New, 0, LEADS + 1)
        .await
        .expect("leads");
    let batch: Vec<_> = leads
        .iter()
        .map(|l| enrolment(l, "c", t0() - Duration::minutes(1)))
        .collect();
    assert_eq!(store.enrol(&batch, since).await.expect("enrol"), LEADS);
    let (enrolments, deliveries) = (
        pages(&store, ENROLMENT_PAGES).await,
        pages(&store, DELIVERY_PAGES).await,
    );
    assert!(
        enrolments.values().max() > Some(&2),
        "{LEADS} enrolments fill several pages"
    );
    wait_for_a_quiet_server(&store).await;
    let lease = t0() + Duration::minutes(5);
    let claimed = store
        .claim_due(t0(), "w", lease, LEADS)
        .await
        .expect("claim");
    assert_eq!(claimed.len(), LEADS);
    send_in_waves(&store, &claimed).await;
    (
        stayed(&enrolments, &pages(&store, ENROLMENT_PAGES).await),
        stayed(&deliveries, &pages(&store, DELIVERY_PAGES).await),
    )
}

/// Each enrolment takes its first send's time (one update) on its own page: a HOT update
/// (585 of 600 here; with full pages 188 did, those of pages with room left). Each delivery
/// is claimed, marked started and sent: three versions. The claim's stays on the row's page
/// where it fits, and the start mark and `sent` follow it there once the claim's old
/// versions are pruned (360 of 600 here; with full pages none).
///
/// Pruning waits for every snapshot that could still see the old versions, and a backend
/// judges that from its own snapshot, which any transaction running on the server holds
/// back, in whatever database: another test's write at the same moment left all 600
/// deliveries moved now and then (a transaction left open in another database does it every
/// time). So the send waits for a moment when no other transaction is writing, and is tried
/// in up to five fresh databases, of which one must keep both.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_send_keeps_its_rows_on_their_pages() {
    let mut tries = Vec::new();
    for attempt in 0..5 {
        let result = std::sync::Arc::new(std::sync::Mutex::new(None));
        let found = result.clone();
        on_postgres(&format!("page room {attempt}"), |store, _url| async move {
            let stayed = send_and_count_stayed(store).await;
            *found.lock().expect("result") = Some(stayed);
        })
        .await;
        let Some((enrolments, deliveries)) = *result.lock().expect("result") else {
            return; // no PostgreSQL server: skipped
        };
        if enrolments >= LEADS * 9 / 10 && deliveries >= LEADS / 3 {
            return;
        }
        tries.push(format!(
            "{enrolments} of {LEADS} enrolments and {deliveries} of {LEADS} deliveries stayed on their page"
        ));
    }
    panic!(
        "in none of five sends did enough rows stay on their page: {}",
        tries.join("; ")
    );
}
