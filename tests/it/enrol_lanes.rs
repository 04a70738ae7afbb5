//! Enrolment writes that run at once. A pass reads its next leads while its writes run, and
//! on PostgreSQL two of its writes run beside each other (`QueueStore::ENROL_LANES`), as do
//! the writes of two daemons enrolling at the same moment: enrolments share the write lock
//! and lock their own leads' rows. Whatever the interleaving, each lead is enrolled once,
//! with one first email and one `enrolled` event.

use chrono::Duration;
use rewarm::domain::lead::LeadState;
use rewarm::outbound::scheduler;
use rewarm::store::postgres::PgStore;
use rewarm::store::{LeadStore as _, NewEnrolment, QueueStore as _, UnmatchedStore as _};

use crate::scale::{lead, loaded, on_postgres, t0};

/// Leads per round; enough that two writes of the same leads overlap for a while.
const LEADS: usize = 600;

/// Two daemons (two stores, each with its own connections) enrol the same leads at the same
/// moment, one of them handed the leads in reverse order: the second to reach a lead waits
/// for the first and finds it no longer `new`.
async fn two_daemons_enrolling_the_same_leads_enrol_each_once(store: PgStore, url: String) {
    let dir = tempfile::tempdir().expect("dir");
    let rules = loaded(dir.path(), &url, false);
    let other = PgStore::connect(&url).await.expect("second daemon");
    let now = t0();
    for round in 0..3 {
        let leads: Vec<_> = (0..LEADS)
            .map(|i| {
                lead(
                    &format!("r{round}-{i}@example.com"),
                    "timing",
                    now - Duration::days(40 + i as i64 % 50),
                )
            })
            .collect();
        store
            .upsert_leads(&leads, "test", now)
            .await
            .expect("upsert");
        let examined = store.leads_to_examine(0, 10 * LEADS).await.expect("read");
        let batch: Vec<NewEnrolment> = examined
            .iter()
            .filter_map(|l| scheduler::enrolment_for(&rules.settings, l, now, now))
            .collect();
        assert_eq!(batch.len(), LEADS, "round {round}: every lead matches");
        let reversed: Vec<NewEnrolment> = batch.iter().rev().cloned().collect();
        let (a, b) = tokio::join!(store.enrol(&batch, now), other.enrol(&reversed, now));
        let (a, b) = (a.expect("first daemon"), b.expect("second daemon"));
        assert_eq!(a + b, LEADS, "round {round}: {a} + {b} enrolled");
    }
    let total = 3 * LEADS as i64;
    let (enrolments, first, events, nurturing): (i64, i64, i64, i64) = sqlx::query_as(
        "SELECT (SELECT count(*) FROM enrolments),
                (SELECT count(*) FROM deliveries WHERE step = 0),
                (SELECT count(*) FROM events WHERE kind = 'enrolled'),
                (SELECT count(*) FROM leads WHERE state = 'nurturing')",
    )
    .fetch_one(store.pool())
    .await
    .expect("counts");
    assert_eq!(
        (enrolments, first, events, nurturing),
        (total, total, total, total)
    );
    other.close().await;
}

/// A pass on PostgreSQL keeps two writes in flight while it reads on: small pages and
/// writes make many of them, and every matching lead is enrolled once, every other one
/// marked.
async fn a_pass_with_writes_in_flight_enrols_each_lead_once(store: PgStore, url: String) {
    let dir = tempfile::tempdir().expect("dir");
    let rules = loaded(dir.path(), &url, false);
    let now = t0();
    let leads: Vec<_> = (0..LEADS)
        .map(|i| {
            let reason = if i % 3 == 0 { "went_quiet" } else { "timing" };
            lead(
                &format!("lane{i}@example.com"),
                reason,
                now - Duration::days(40),
            )
        })
        .collect();
    store
        .upsert_leads(&leads, "test", now)
        .await
        .expect("upsert");
    let matching = LEADS - LEADS.div_ceil(3);
    assert_eq!(
        scheduler::enrol_in_pages(&store, &rules, now, 7, 20)
            .await
            .expect("enrol"),
        matching
    );
    assert!(
        store
            .leads_to_examine(0, LEADS)
            .await
            .expect("read")
            .is_empty(),
        "each lead is enrolled or marked"
    );
    let nurturing = store
        .leads_in_state(LeadState::Nurturing, 0, LEADS)
        .await
        .expect("leads");
    assert_eq!(nurturing.len(), matching);
    let due = store
        .claim_due(now + Duration::days(2), "w", now + Duration::days(3), LEADS)
        .await
        .expect("claim");
    assert_eq!(due.len(), matching, "one first email per enrolment");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_daemons_enrol_the_same_leads_at_once() {
    on_postgres(
        "two_daemons_enrol_the_same_leads_at_once",
        two_daemons_enrolling_the_same_leads_enrol_each_once,
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pass_keeps_writes_in_flight() {
    on_postgres(
        "a_pass_keeps_writes_in_flight",
        a_pass_with_writes_in_flight_enrols_each_lead_once,
    )
    .await;
}
