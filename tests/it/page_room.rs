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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_send_keeps_its_rows_on_their_pages() {
    on_postgres("page room", |store, _url| async move {
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

        let lease = t0() + Duration::minutes(5);
        let claimed = store
            .claim_due(t0(), "w", lease, LEADS)
            .await
            .expect("claim");
        assert_eq!(claimed.len(), LEADS);
        send_in_waves(&store, &claimed).await;

        // Each enrolment took its first send's time (one update) on its own page: a HOT
        // update (585 of 600 here; with full pages 188 did, those of pages with room left).
        let kept = stayed(&enrolments, &pages(&store, ENROLMENT_PAGES).await);
        assert!(
            kept >= LEADS * 9 / 10,
            "{kept} of {LEADS} enrolments stayed on their page"
        );
        // Each delivery was claimed, marked started and sent: three versions. The claim's
        // stays on the row's page where it fits, and the start mark and `sent` follow it there
        // once the claim's old versions are pruned (360 of 600 here; with full pages none).
        let kept = stayed(&deliveries, &pages(&store, DELIVERY_PAGES).await);
        assert!(
            kept >= LEADS / 3,
            "{kept} of {LEADS} deliveries stayed on their page"
        );
    })
    .await;
}
