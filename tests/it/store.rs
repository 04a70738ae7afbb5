//! The store contract: one behavioural suite, the same test functions run on SQLite (a temp
//! file) and on PostgreSQL (a fresh database per test, dropped afterwards).
//!
//! The PostgreSQL variants need `REWARM_TEST_POSTGRES_URL` (a database the tests may connect
//! to and run CREATE DATABASE from), e.g.
//! `REWARM_TEST_POSTGRES_URL=postgres://postgres@127.0.0.1:5432/test cargo test --test it store::`
//! (the fixture: tests/it/support/db.rs).
//! Without it they print a loud SKIPPED line and pass (and fail under `CI=true`).

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::future::Future;
use std::panic::AssertUnwindSafe;

use crate::support::db::TestDatabase;
use chrono::{DateTime, Duration, Utc};
use futures::FutureExt as _;
use rewarm::domain::email::EmailAddress;
use rewarm::domain::lead::{Lead, LeadState, NewLead};
use rewarm::store::postgres::PgStore;
use rewarm::store::sqlite::SqliteStore;
use rewarm::store::{
    ClaimedDelivery, Click, DeliveryRecord, DeliveryTarget, Engagement, Expired, InboundApplied,
    InboundEffect, InboundRecord, NewEnrolment, NewNotification, NextStep, Outcome,
    RecordedOutcome, Rows, Store, Suppression, SuppressionReason, SuppressionRecord, Table,
    UpsertSummary,
};

// ── Harness ─────────────────────────────────────────────────────────────────────────────

/// Each name is an `async fn NAME<S: Store>(store: S)` below; it runs once per backend.
macro_rules! store_tests {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::on_sqlite(|store| super::$name(store)).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::on_postgres(stringify!($name), |store| super::$name(store)).await;
                }
            )*
        }
    };
}

store_tests!(
    upsert_inserts_merges_and_writes_events,
    enrolling_twice_enrols_once,
    claims_take_only_due_deliveries_of_nurturing_leads_oldest_first,
    concurrent_claimers_never_get_the_same_delivery,
    outcomes_move_deliveries_leads_and_enrolments,
    a_late_or_foreign_outcome_is_handled_as_documented,
    an_expired_lease_becomes_unknown_and_is_never_claimed_again,
    stalled_enrolments_resume_with_their_next_step_or_complete,
    pending_deliveries_are_the_waiting_ones_by_due_time,
    status_counts_every_state,
    time_stamps_round_trip_to_the_millisecond,
    export_pages_every_row_by_id,
    suppressing_an_address_and_a_domain_stops_everything_for_their_leads,
    suppress_keeps_the_first_entry_per_address_and_writes_no_second_event,
    a_new_lead_on_the_list_is_imported_suppressed_and_never_enrolled,
    claims_check_the_list_itself_even_when_the_lead_row_was_not_updated,
    enrolment_suppresses_a_new_lead_whose_address_is_listed,
    unsuppress_removes_the_entry_but_leaves_the_leads_suppressed,
    a_hard_bounce_lists_the_address_and_schedules_nothing_more,
    a_secret_is_generated_once_and_stays_the_same,
    delivery_target_names_the_lead_campaign_and_step,
    a_click_is_recorded_on_the_leads_timeline,
    ping_answers,
    a_reply_rewarms_once_stops_the_cadence_and_enqueues_notifications,
    unmatched_mail_is_kept_and_changes_no_lead,
    an_auto_reply_postpones_and_a_bounce_suppresses,
    soft_bounces_suppress_after_the_limit_in_a_row,
    engagement_crossing_the_threshold_rewarms_once,
    notifications_are_claimed_leased_and_recorded,
    kv_values_are_kept_and_replaced,
    kv_set_if_absent_binds_a_key_once_even_under_a_race,
    a_reply_threads_by_the_token_of_its_message_id,
    a_delivery_is_found_by_the_providers_id,
    one_delivery_one_effect_across_channels_and_batches_in_one_call,
    a_recycled_lead_resumes_its_cadence_after_the_wait,
    a_claim_never_started_goes_back_to_due_when_its_lease_expires,
    a_worker_releases_its_claims_never_started_and_only_those,
    only_the_claiming_worker_marks_a_delivery_started_and_only_once,
);

pub(crate) async fn on_sqlite<F, Fut>(test: F)
where
    F: FnOnce(SqliteStore) -> Fut,
    Fut: Future<Output = ()>,
{
    let (store, db) = sqlite_store().await;
    test(store).await;
    crate::support::counts::assert_exact(db.url()).await;
}

pub(crate) async fn on_postgres<F, Fut>(test: &str, body: F)
where
    F: FnOnce(PgStore) -> Fut,
    Fut: Future<Output = ()>,
{
    let Some(db) = TestDatabase::postgres(test).await else {
        return;
    };
    let store = PgStore::connect(db.url())
        .await
        .expect("connect to the test database");
    store.migrate().await.expect("migrate PostgreSQL");
    let result = AssertUnwindSafe(async {
        body(store.clone()).await;
        crate::support::counts::assert_exact(db.url()).await;
    })
    .catch_unwind()
    .await;
    store.close().await;
    db.drop_database().await;
    if let Err(panic) = result {
        std::panic::resume_unwind(panic);
    }
}

// ── Helpers ─────────────────────────────────────────────────────────────────────────────

/// Marks every claimed delivery started by `worker` (as dispatch does just before sending).
async fn started<S: Store>(store: &S, claimed: &[ClaimedDelivery], worker: &str) {
    let ids: Vec<i64> = claimed.iter().map(|d| d.id).collect();
    let marked = store.mark_started(&ids, worker, t0()).await.unwrap();
    assert_eq!(marked.len(), ids.len(), "every claim marked started");
}

pub(crate) fn t(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s)
        .expect("RFC 3339 time")
        .with_timezone(&Utc)
}

/// The time the suite's clock stands at (a Tuesday morning in Paris).
pub(crate) fn t0() -> DateTime<Utc> {
    t("2026-03-03T09:00:00Z")
}

pub(crate) fn email(s: &str) -> EmailAddress {
    EmailAddress::parse(s).expect("valid email")
}

pub(crate) fn lead(address: &str) -> NewLead {
    NewLead {
        email: Some(email(address)),
        first_name: Some("Ann".into()),
        lost_reason: Some("no_budget".into()),
        lost_at: Some(t("2025-06-01T12:00:00Z")),
        ..Default::default()
    }
}

/// `n` new leads `lead{i}@example.com`, imported at `now`; returned by id.
async fn import<S: Store>(store: &S, n: usize, now: DateTime<Utc>) -> Vec<Lead> {
    let leads: Vec<NewLead> = (0..n)
        .map(|i| lead(&format!("lead{i}@example.com")))
        .collect();
    for chunk in leads.chunks(500) {
        store
            .upsert_leads(chunk, "test", now)
            .await
            .expect("upsert");
    }
    let mut all = store
        .leads_in_state(LeadState::New, 0, n + 10)
        .await
        .expect("leads");
    all.sort_by_key(|l| l.id);
    all
}

pub(crate) fn enrolment(lead: &Lead, campaign: &str, due: DateTime<Utc>) -> NewEnrolment {
    NewEnrolment {
        lead_id: lead.id,
        campaign: campaign.into(),
        segment: "all".into(),
        first_due: due,
        template: "first".into(),
    }
}

/// `n` leads enrolled in campaign `c`, step 0 due at `due`.
async fn enrolled<S: Store>(store: &S, n: usize, due: DateTime<Utc>) -> Vec<Lead> {
    let leads = import(store, n, t0() - Duration::days(1)).await;
    let batch: Vec<NewEnrolment> = leads.iter().map(|l| enrolment(l, "c", due)).collect();
    assert_eq!(
        store
            .enrol(&batch, t0() - Duration::hours(2))
            .await
            .expect("enrol"),
        n
    );
    leads
}

pub(crate) async fn deliveries<S: Store>(store: &S) -> Vec<DeliveryRecord> {
    match store
        .export_rows(Table::Deliveries, 0, 1_000_000)
        .await
        .expect("export deliveries")
    {
        Rows::Deliveries(rows) => rows,
        other => panic!("asked for deliveries, got {:?}", other.table()),
    }
}

pub(crate) async fn delivery_of<S: Store>(store: &S, lead_id: i64, step: i64) -> DeliveryRecord {
    deliveries(store)
        .await
        .into_iter()
        .find(|d| d.lead_id == lead_id && d.step == step)
        .unwrap_or_else(|| panic!("no delivery for lead {lead_id} step {step}"))
}

pub(crate) async fn lead_state<S: Store>(store: &S, id: i64) -> LeadState {
    store.leads_by_ids(&[id]).await.expect("lead")[0].state
}

async fn kinds<S: Store>(store: &S, lead_id: i64) -> Vec<String> {
    store
        .timeline(lead_id)
        .await
        .expect("timeline")
        .into_iter()
        .map(|e| e.kind)
        .collect()
}

async fn enrolment_states<S: Store>(store: &S) -> BTreeMap<i64, String> {
    match store
        .export_rows(Table::Enrolments, 0, 1_000_000)
        .await
        .expect("export enrolments")
    {
        Rows::Enrolments(rows) => rows.into_iter().map(|e| (e.lead_id, e.state)).collect(),
        other => panic!("asked for enrolments, got {:?}", other.table()),
    }
}

fn next(step: u32, due: DateTime<Utc>) -> Option<NextStep> {
    Some(NextStep {
        step,
        due_at: due,
        template: format!("t{step}"),
    })
}

pub(crate) fn outcome(d: &ClaimedDelivery, outcome: Outcome) -> RecordedOutcome {
    RecordedOutcome {
        delivery: d.clone(),
        outcome,
    }
}

pub(crate) fn for_lead(claimed: &[ClaimedDelivery], lead: &Lead) -> ClaimedDelivery {
    claimed
        .iter()
        .find(|d| d.lead_id == lead.id)
        .cloned()
        .unwrap_or_else(|| panic!("lead {} was not claimed", lead.id))
}

// ── The contract ────────────────────────────────────────────────────────────────────────

async fn upsert_inserts_merges_and_writes_events<S: Store>(store: S) {
    let now = t0();
    let mut a = lead("ann@example.com");
    a.tags = vec!["vip".into()];
    a.fields.insert("plan".into(), "pro".into());
    let b = lead("bob@example.com");
    // The same address twice in one batch: folded into one lead (later non-empty values win).
    let mut a_again = NewLead {
        email: Some(email(" ANN@example.com ")),
        last_name: Some("Lee".into()),
        ..Default::default()
    };
    a_again.tags = vec!["emea".into()];
    let no_email = NewLead {
        first_name: Some("Nobody".into()),
        ..Default::default()
    };
    let summary = store
        .upsert_leads(&[a, b.clone(), a_again, no_email], "first.csv", now)
        .await
        .unwrap();
    assert_eq!(
        summary,
        UpsertSummary {
            inserted: 2,
            updated: 0,
            unchanged: 0
        }
    );

    let ann = store
        .lead_by_email(&email("ann@example.com"))
        .await
        .unwrap()
        .expect("ann");
    assert_eq!(
        (ann.first_name.as_deref(), ann.last_name.as_deref()),
        (Some("Ann"), Some("Lee"))
    );
    assert_eq!(ann.tags, vec!["vip".to_string(), "emea".to_string()]);
    assert_eq!(ann.state, LeadState::New);
    assert_eq!(ann.created_at, now);

    // Second import: new values win, empty ones keep what is there, tags union (ignoring
    // case), fields merge; an identical row changes nothing; a new address is inserted.
    let later = now + Duration::hours(1);
    let mut a2 = NewLead {
        email: Some(email("ann@example.com")),
        company: Some("Acme".into()),
        ..Default::default()
    };
    a2.tags = vec!["EMEA".into(), "new".into()];
    a2.fields.insert("seats".into(), "5".into());
    let summary = store
        .upsert_leads(&[a2, b, lead("cid@example.com")], "second.csv", later)
        .await
        .unwrap();
    assert_eq!(
        summary,
        UpsertSummary {
            inserted: 1,
            updated: 1,
            unchanged: 1
        }
    );

    let ann = store
        .lead_by_email(&email("ann@example.com"))
        .await
        .unwrap()
        .expect("ann");
    assert_eq!(ann.first_name.as_deref(), Some("Ann"));
    assert_eq!(ann.company.as_deref(), Some("Acme"));
    assert_eq!(
        ann.tags,
        vec!["vip".to_string(), "emea".to_string(), "new".to_string()]
    );
    assert_eq!(
        ann.fields,
        BTreeMap::from([
            ("plan".to_string(), "pro".to_string()),
            ("seats".to_string(), "5".to_string())
        ])
    );
    assert_eq!((ann.created_at, ann.updated_at), (now, later));

    let timeline = store.timeline(ann.id).await.unwrap();
    assert_eq!(
        timeline.iter().map(|e| e.kind.as_str()).collect::<Vec<_>>(),
        ["imported", "updated"]
    );
    assert_eq!(timeline[0].detail["source"], "first.csv");
    assert_eq!(timeline[1].detail["source"], "second.csv");
    assert_eq!(
        timeline[1].detail["changed"],
        serde_json::json!(["company", "tags", "fields"])
    );
    assert_eq!(timeline[1].at, later);
    let bob = store
        .lead_by_email(&email("bob@example.com"))
        .await
        .unwrap()
        .expect("bob");
    assert_eq!(
        kinds(&store, bob.id).await,
        ["imported"],
        "an unchanged lead gets no event"
    );

    assert_eq!(
        store.field_names().await.unwrap(),
        BTreeSet::from(["plan".to_string(), "seats".to_string()])
    );
    assert!(
        store
            .lead_by_email(&email("nobody@example.com"))
            .await
            .unwrap()
            .is_none()
    );

    // Paging by id.
    let page1 = store.leads_in_state(LeadState::New, 0, 2).await.unwrap();
    assert_eq!(page1.len(), 2);
    let page2 = store
        .leads_in_state(LeadState::New, page1[1].id, 2)
        .await
        .unwrap();
    assert_eq!(page2.len(), 1);
    assert!(page1[0].id < page1[1].id && page1[1].id < page2[0].id);
    assert!(
        store
            .leads_in_state(LeadState::Nurturing, 0, 10)
            .await
            .unwrap()
            .is_empty()
    );
    let by_ids = store
        .leads_by_ids(&[page2[0].id, page1[0].id, 999_999])
        .await
        .unwrap();
    assert_eq!(
        by_ids.iter().map(|l| l.id).collect::<BTreeSet<_>>(),
        BTreeSet::from([page1[0].id, page2[0].id])
    );
}

async fn enrolling_twice_enrols_once<S: Store>(store: S) {
    let leads = import(&store, 3, t0()).await;
    let due = t0() + Duration::days(1);
    let batch: Vec<NewEnrolment> = leads[..2].iter().map(|l| enrolment(l, "c", due)).collect();
    assert_eq!(store.enrol(&batch, t0()).await.unwrap(), 2);
    assert_eq!(
        store.enrol(&batch, t0()).await.unwrap(),
        0,
        "same batch, same time"
    );
    assert_eq!(
        store
            .enrol(&batch, t0() + Duration::minutes(1))
            .await
            .unwrap(),
        0,
        "same batch, later"
    );
    // A lead already nurturing is not enrolled in another campaign either.
    assert_eq!(
        store
            .enrol(&[enrolment(&leads[0], "other", due)], t0())
            .await
            .unwrap(),
        0
    );
    assert_eq!(store.enrol(&[], t0()).await.unwrap(), 0);

    let counts = store.table_counts().await.unwrap();
    assert_eq!(
        (counts[&Table::Enrolments], counts[&Table::Deliveries]),
        (2, 2)
    );
    for l in &leads[..2] {
        assert_eq!(lead_state(&store, l.id).await, LeadState::Nurturing);
        assert_eq!(kinds(&store, l.id).await, ["imported", "enrolled"]);
        let d = delivery_of(&store, l.id, 0).await;
        assert_eq!(
            (d.state.as_str(), d.due_at, d.template.as_str(), d.attempts),
            ("scheduled", due, "first", 0)
        );
    }
    let enrolled = &store.timeline(leads[0].id).await.unwrap()[1];
    assert_eq!(enrolled.detail["campaign"], "c");
    assert_eq!(
        (
            enrolled.detail["from"].as_str(),
            enrolled.detail["to"].as_str()
        ),
        (Some("new"), Some("nurturing"))
    );
    assert_eq!(lead_state(&store, leads[2].id).await, LeadState::New);
}

async fn claims_take_only_due_deliveries_of_nurturing_leads_oldest_first<S: Store>(store: S) {
    let leads = import(&store, 5, t0()).await;
    // Leads 0..3 due at staggered times; lead 4 in two campaigns, one of which will suppress it.
    let mut batch: Vec<NewEnrolment> = leads[..4]
        .iter()
        .enumerate()
        .map(|(i, l)| enrolment(l, "c", t0() - Duration::minutes(10 * i as i64)))
        .collect();
    batch.push(enrolment(&leads[4], "a", t0() - Duration::hours(1)));
    batch.push(enrolment(&leads[4], "b", t0() + Duration::hours(1)));
    assert_eq!(
        store.enrol(&batch, t0() - Duration::days(1)).await.unwrap(),
        6
    );

    assert!(
        store
            .claim_due(t0() - Duration::hours(2), "w", t0(), 10)
            .await
            .unwrap()
            .is_empty(),
        "nothing due yet"
    );
    let lease = t0() + Duration::minutes(10);
    let first = store.claim_due(t0(), "w", lease, 2).await.unwrap();
    // Oldest due first: lead 4's campaign a (-1h) and lead 3 (-30 min); the batch itself
    // comes back in no particular order.
    let ids = |batch: &[ClaimedDelivery]| batch.iter().map(|d| d.lead_id).collect::<BTreeSet<_>>();
    assert_eq!(ids(&first), BTreeSet::from([leads[4].id, leads[3].id]));
    assert!(
        first
            .iter()
            .all(|d| d.attempts == 1 && d.step == 0 && d.template == "first")
    );
    let rest = store.claim_due(t0(), "w", lease, 10).await.unwrap();
    assert_eq!(
        ids(&rest),
        BTreeSet::from([leads[2].id, leads[1].id, leads[0].id])
    );
    assert!(
        store
            .claim_due(t0(), "w", lease, 10)
            .await
            .unwrap()
            .is_empty(),
        "claimed rows are not claimed again"
    );
    let row = delivery_of(&store, leads[0].id, 0).await;
    assert_eq!(
        (
            row.state.as_str(),
            row.claimed_by.as_deref(),
            row.lease_until
        ),
        ("claimed", Some("w"), Some(lease))
    );

    // Campaign a fails hard for lead 4: the lead is suppressed (and its address listed), so
    // campaign b's delivery, due later, is cancelled and never claimed.
    let a = for_lead(&first, &leads[4]);
    store
        .record_outcomes(
            &[outcome(
                &a,
                Outcome::Failed {
                    error: "550 no such user".into(),
                    next: None,
                    suppress: true,
                },
            )],
            "w",
            t0(),
        )
        .await
        .unwrap();
    assert_eq!(lead_state(&store, leads[4].id).await, LeadState::Suppressed);
    assert!(
        store
            .claim_due(t0() + Duration::days(1), "w", lease, 10)
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(delivery_of(&store, leads[4].id, 0).await.state, "failed");
    let b = deliveries(&store)
        .await
        .into_iter()
        .find(|d| d.lead_id == leads[4].id && d.campaign == "b")
        .expect("b");
    assert_eq!(b.state, "cancelled");
    let listed = store
        .suppression_for(&leads[4].email)
        .await
        .unwrap()
        .expect("hard bounce listed");
    assert_eq!(listed.reason, SuppressionReason::HardBounce);
    assert_eq!(listed.evidence["delivery_id"], a.id);
    assert_eq!(listed.evidence["error"], "550 no such user");
}

async fn concurrent_claimers_never_get_the_same_delivery<S: Store>(store: S) {
    const N: usize = 300;
    enrolled(&store, N, t0() - Duration::minutes(5)).await;
    let mut tasks = Vec::new();
    for w in 0..4 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            let worker = format!("w{w}");
            let mut mine = Vec::new();
            loop {
                let batch = store
                    .claim_due(t0(), &worker, t0() + Duration::minutes(5), 7)
                    .await
                    .expect("claim");
                if batch.is_empty() {
                    break;
                }
                mine.extend(batch.into_iter().map(|d| d.id));
                tokio::task::yield_now().await;
            }
            (worker, mine)
        }));
    }
    let mut seen = HashSet::new();
    let mut per_worker = BTreeMap::new();
    for task in tasks {
        let (worker, ids) = task.await.expect("claimer task");
        per_worker.insert(worker.clone(), ids.len());
        for id in ids {
            assert!(
                seen.insert(id),
                "delivery {id} claimed twice (second time by {worker})"
            );
        }
    }
    assert_eq!(
        seen.len(),
        N,
        "every due delivery claimed exactly once: {per_worker:?}"
    );
    // The table agrees with what the claimers were told.
    for d in deliveries(&store).await {
        assert_eq!((d.state.as_str(), d.attempts), ("claimed", 1));
    }
}

async fn outcomes_move_deliveries_leads_and_enrolments<S: Store>(store: S) {
    let leads = enrolled(&store, 7, t0() - Duration::minutes(1)).await;
    let claimed = store
        .claim_due(t0(), "w1", t0() + Duration::minutes(10), 100)
        .await
        .unwrap();
    assert_eq!(claimed.len(), 7);
    let d = |i: usize| for_lead(&claimed, &leads[i]);
    let month = t0() + Duration::days(30);
    let outcomes = vec![
        outcome(
            &d(0),
            Outcome::Sent {
                message_id: "m0@x".into(),
                provider_id: None,
                next: next(1, month),
            },
        ),
        outcome(
            &d(1),
            Outcome::Retry {
                due_at: t0() + Duration::minutes(5),
                error: "450 busy".into(),
            },
        ),
        outcome(
            &d(2),
            Outcome::Deferred {
                due_at: t0() + Duration::hours(2),
                reason: rewarm::store::DeferReason::SendWindow,
            },
        ),
        outcome(
            &d(3),
            Outcome::Failed {
                error: "template broke".into(),
                next: next(1, month),
                suppress: false,
            },
        ),
        outcome(
            &d(4),
            Outcome::Failed {
                error: "550 unknown user".into(),
                next: None,
                suppress: true,
            },
        ),
        outcome(
            &d(5),
            Outcome::Unknown {
                error: "connection reset after DATA".into(),
                next: None,
            },
        ),
        outcome(
            &d(6),
            Outcome::Sent {
                message_id: "m6@x".into(),
                provider_id: None,
                next: None,
            },
        ),
    ];
    store.record_outcomes(&outcomes, "w1", t0()).await.unwrap();
    store.record_outcomes(&[], "w1", t0()).await.unwrap();

    // Sent with a next step: the step is scheduled, the lead keeps nurturing.
    let sent = delivery_of(&store, leads[0].id, 0).await;
    assert_eq!(
        (
            sent.state.as_str(),
            sent.message_id.as_deref(),
            sent.sent_at,
            sent.lease_until
        ),
        ("sent", Some("m0@x"), Some(t0()), None)
    );
    let step1 = delivery_of(&store, leads[0].id, 1).await;
    assert_eq!(
        (
            step1.state.as_str(),
            step1.due_at,
            step1.template.as_str(),
            step1.attempts
        ),
        ("scheduled", month, "t1", 0)
    );
    assert_eq!(lead_state(&store, leads[0].id).await, LeadState::Nurturing);
    assert_eq!(
        kinds(&store, leads[0].id).await,
        ["imported", "enrolled", "sent"]
    );
    let event = store
        .timeline(leads[0].id)
        .await
        .unwrap()
        .pop()
        .expect("sent event");
    assert_eq!(
        (
            event.detail["message_id"].as_str(),
            event.detail["step"].as_u64(),
            event.at
        ),
        (Some("m0@x"), Some(1), t0())
    );

    // Retry: waits, then is claimed again with the attempt counted.
    let retry = delivery_of(&store, leads[1].id, 0).await;
    assert_eq!(
        (
            retry.state.as_str(),
            retry.due_at,
            retry.last_error.as_deref()
        ),
        ("retry_wait", t0() + Duration::minutes(5), Some("450 busy"))
    );
    assert_eq!(
        kinds(&store, leads[1].id).await.last().map(String::as_str),
        Some("delivery_retry")
    );
    assert!(
        store
            .claim_due(
                t0() + Duration::minutes(4),
                "w1",
                t0() + Duration::hours(1),
                10
            )
            .await
            .unwrap()
            .is_empty()
    );
    let again = store
        .claim_due(
            t0() + Duration::minutes(5),
            "w2",
            t0() + Duration::hours(1),
            10,
        )
        .await
        .unwrap();
    assert_eq!(
        again
            .iter()
            .map(|d| (d.lead_id, d.attempts))
            .collect::<Vec<_>>(),
        [(leads[1].id, 2)]
    );

    // Deferred: back to scheduled at the window's opening; the attempt does not count.
    let deferred = delivery_of(&store, leads[2].id, 0).await;
    assert_eq!(
        (
            deferred.state.as_str(),
            deferred.due_at,
            deferred.attempts,
            deferred.claimed_by
        ),
        ("scheduled", t0() + Duration::hours(2), 0, None)
    );
    assert_eq!(
        kinds(&store, leads[2].id).await.last().map(String::as_str),
        Some("delivery_deferred")
    );

    // Failed (not permanent for the lead): the cadence goes on.
    let failed = delivery_of(&store, leads[3].id, 0).await;
    assert_eq!(
        (failed.state.as_str(), failed.last_error.as_deref()),
        ("failed", Some("template broke"))
    );
    assert_eq!(delivery_of(&store, leads[3].id, 1).await.state, "scheduled");
    assert_eq!(lead_state(&store, leads[3].id).await, LeadState::Nurturing);

    // Failed hard: lead suppressed, enrolment stopped, both on the timeline.
    assert_eq!(lead_state(&store, leads[4].id).await, LeadState::Suppressed);
    assert_eq!(
        kinds(&store, leads[4].id).await,
        ["imported", "enrolled", "delivery_failed", "suppressed"]
    );
    let suppressed = store
        .timeline(leads[4].id)
        .await
        .unwrap()
        .pop()
        .expect("suppressed event");
    assert_eq!(
        (
            suppressed.detail["from"].as_str(),
            suppressed.detail["to"].as_str(),
            suppressed.detail["reason"].as_str(),
            suppressed.detail["error"].as_str()
        ),
        (
            Some("nurturing"),
            Some("suppressed"),
            Some("hard_bounce"),
            Some("550 unknown user")
        )
    );

    // Unknown and sent as the last step: the enrolment and the lead complete.
    assert_eq!(delivery_of(&store, leads[5].id, 0).await.state, "unknown");
    assert_eq!(
        kinds(&store, leads[5].id).await,
        ["imported", "enrolled", "delivery_unknown", "completed"]
    );
    assert_eq!(lead_state(&store, leads[5].id).await, LeadState::Completed);
    assert_eq!(
        kinds(&store, leads[6].id).await,
        ["imported", "enrolled", "sent", "completed"]
    );
    assert_eq!(lead_state(&store, leads[6].id).await, LeadState::Completed);
    let completed = store
        .timeline(leads[6].id)
        .await
        .unwrap()
        .pop()
        .expect("completed event");
    assert_eq!(
        (
            completed.detail["from"].as_str(),
            completed.detail["to"].as_str()
        ),
        (Some("nurturing"), Some("completed"))
    );

    let enrolments = enrolment_states(&store).await;
    let expected = [
        "active",
        "active",
        "active",
        "active",
        "stopped",
        "completed",
        "completed",
    ];
    for (i, state) in expected.iter().enumerate() {
        assert_eq!(enrolments[&leads[i].id], *state, "lead {i}'s enrolment");
    }
}

async fn a_late_or_foreign_outcome_is_handled_as_documented<S: Store>(store: S) {
    let leads = enrolled(&store, 2, t0() - Duration::minutes(1)).await;
    let claimed = store
        .claim_due(t0(), "w1", t0() + Duration::minutes(5), 10)
        .await
        .unwrap();
    started(&store, &claimed, "w1").await;
    // A worker that does not hold the claim cannot settle it.
    let foreign = for_lead(&claimed, &leads[0]);
    store
        .record_outcomes(
            &[outcome(
                &foreign,
                Outcome::Sent {
                    message_id: "x@x".into(),
                    provider_id: None,
                    next: None,
                },
            )],
            "intruder",
            t0(),
        )
        .await
        .unwrap();
    assert_eq!(delivery_of(&store, leads[0].id, 0).await.state, "claimed");
    assert_eq!(
        kinds(&store, leads[0].id).await,
        ["imported", "enrolled"],
        "nothing recorded"
    );
    assert_eq!(lead_state(&store, leads[0].id).await, LeadState::Nurturing);
    // A result that arrives after the lease expired (row already `unknown`) is still recorded.
    let late = for_lead(&claimed, &leads[1]);
    assert_eq!(
        store
            .expire_leases(t0() + Duration::minutes(6))
            .await
            .unwrap()
            .written_off,
        2
    );
    assert_eq!(delivery_of(&store, leads[1].id, 0).await.state, "unknown");
    // …but a late retry or deferral is not: the row is no longer waiting for one.
    let retry = Outcome::Retry {
        due_at: t0() + Duration::hours(1),
        error: "451".into(),
    };
    store
        .record_outcomes(&[outcome(&late, retry)], "w1", t0() + Duration::minutes(7))
        .await
        .unwrap();
    assert_eq!(delivery_of(&store, leads[1].id, 0).await.state, "unknown");
    assert_eq!(
        kinds(&store, leads[1].id).await,
        ["imported", "enrolled", "written_off"]
    );
    store
        .record_outcomes(
            &[outcome(
                &late,
                Outcome::Sent {
                    message_id: "late@x".into(),
                    provider_id: None,
                    next: next(1, t0() + Duration::days(30)),
                },
            )],
            "w1",
            t0() + Duration::minutes(7),
        )
        .await
        .unwrap();
    let row = delivery_of(&store, leads[1].id, 0).await;
    assert_eq!(
        (row.state.as_str(), row.message_id.as_deref()),
        ("sent", Some("late@x"))
    );
    assert_eq!(delivery_of(&store, leads[1].id, 1).await.state, "scheduled");
}

async fn an_expired_lease_becomes_unknown_and_is_never_claimed_again<S: Store>(store: S) {
    let leads = enrolled(&store, 3, t0() - Duration::minutes(1)).await;
    let lease = t0() + Duration::minutes(5);
    let claimed = store
        .claim_due(t0(), "crashed-worker", lease, 2)
        .await
        .unwrap();
    assert_eq!(claimed.len(), 2);
    started(&store, &claimed, "crashed-worker").await;
    let none = Expired::default();
    assert_eq!(
        store
            .expire_leases(t0() + Duration::minutes(4))
            .await
            .unwrap(),
        none
    );
    assert_eq!(
        store.expire_leases(lease).await.unwrap(),
        none,
        "a lease is good until its last instant"
    );
    let after = lease + Duration::milliseconds(1);
    assert_eq!(
        store.expire_leases(after).await.unwrap(),
        Expired {
            written_off: 2,
            released: 0
        }
    );
    assert_eq!(
        store
            .expire_leases(after + Duration::minutes(1))
            .await
            .unwrap(),
        none,
        "expired once"
    );
    for d in &claimed {
        let row = delivery_of(&store, d.lead_id, 0).await;
        assert_eq!((row.state.as_str(), row.updated_at), ("unknown", after));
        let timeline = store.timeline(d.lead_id).await.unwrap();
        let event = timeline.last().expect("event");
        assert_eq!(event.kind, "written_off");
        assert_eq!(
            (
                event.detail["claimed_by"].as_str(),
                event.detail["step"].as_u64(),
                event.at
            ),
            (Some("crashed-worker"), Some(1), after)
        );
    }
    // Never sent again: only the third lead's delivery is ever claimable.
    let later = store
        .claim_due(
            t0() + Duration::days(365),
            "w2",
            t0() + Duration::days(366),
            10,
        )
        .await
        .unwrap();
    assert_eq!(
        later.iter().map(|d| d.lead_id).collect::<Vec<_>>(),
        [leads
            .iter()
            .map(|l| l.id)
            .find(|id| claimed.iter().all(|c| c.lead_id != *id))
            .unwrap()]
    );
    let status = store.status(t0(), after).await.unwrap();
    assert_eq!(status.unknown_since, 2);
}

async fn stalled_enrolments_resume_with_their_next_step_or_complete<S: Store>(store: S) {
    let leads = enrolled(&store, 3, t0() - Duration::minutes(1)).await;
    assert!(
        store.stalled_enrolments(10).await.unwrap().is_empty(),
        "scheduled work is not stalled"
    );
    let claimed = store
        .claim_due(t0(), "w", t0() + Duration::minutes(5), 10)
        .await
        .unwrap();
    assert_eq!(claimed.len(), 3);
    started(&store, &claimed, "w").await;
    assert!(
        store.stalled_enrolments(10).await.unwrap().is_empty(),
        "claimed work is not stalled"
    );
    let expired_at = t0() + Duration::minutes(6);
    store.expire_leases(expired_at).await.unwrap();
    let mut stalled = store.stalled_enrolments(10).await.unwrap();
    stalled.sort_by_key(|s| s.lead_id);
    assert_eq!(stalled.len(), 3);
    for (s, l) in stalled.iter().zip(&leads) {
        assert_eq!(
            (s.lead_id, s.campaign.as_str(), s.last_step, s.last_at),
            (l.id, "c", 0, expired_at)
        );
    }
    assert_eq!(store.stalled_enrolments(2).await.unwrap().len(), 2, "limit");

    let resumed = vec![
        (stalled[0].clone(), next(1, t0() + Duration::days(30))),
        (stalled[1].clone(), None),
        (stalled[2].clone(), next(1, t0() + Duration::days(30))),
    ];
    store.resume_enrolments(&resumed, expired_at).await.unwrap();
    // Resuming twice (two daemons repairing at once) neither doubles a step nor an event.
    store.resume_enrolments(&resumed, expired_at).await.unwrap();
    store.resume_enrolments(&[], expired_at).await.unwrap();
    assert!(store.stalled_enrolments(10).await.unwrap().is_empty());

    let step1 = delivery_of(&store, leads[0].id, 1).await;
    assert_eq!(
        (step1.state.as_str(), step1.due_at, step1.template.as_str()),
        ("scheduled", t0() + Duration::days(30), "t1")
    );
    assert_eq!(lead_state(&store, leads[0].id).await, LeadState::Nurturing);
    assert_eq!(lead_state(&store, leads[1].id).await, LeadState::Completed);
    assert_eq!(
        kinds(&store, leads[1].id).await,
        ["imported", "enrolled", "written_off", "completed"]
    );
    assert_eq!(enrolment_states(&store).await[&leads[1].id], "completed");
    assert_eq!(store.table_counts().await.unwrap()[&Table::Deliveries], 5);
    let claimed = store
        .claim_due(
            t0() + Duration::days(30),
            "w",
            t0() + Duration::days(31),
            10,
        )
        .await
        .unwrap();
    assert_eq!(
        claimed
            .iter()
            .map(|d| (d.lead_id, d.step))
            .collect::<BTreeSet<_>>(),
        BTreeSet::from([(leads[0].id, 1), (leads[2].id, 1)])
    );
}

async fn pending_deliveries_are_the_waiting_ones_by_due_time<S: Store>(store: S) {
    let leads = import(&store, 4, t0()).await;
    let dues = [
        t0() + Duration::days(3),
        t0() - Duration::hours(1),
        t0() + Duration::days(1),
        t0() - Duration::hours(2),
    ];
    let batch: Vec<NewEnrolment> = leads
        .iter()
        .zip(dues)
        .map(|(l, due)| enrolment(l, "c", due))
        .collect();
    store.enrol(&batch, t0() - Duration::days(1)).await.unwrap();
    // Lead 3 (due first) is claimed and fails hard; lead 1 is claimed and retried.
    let claimed = store
        .claim_due(t0(), "w", t0() + Duration::minutes(5), 2)
        .await
        .unwrap();
    let retry_at = t0() + Duration::days(2);
    store
        .record_outcomes(
            &[
                outcome(
                    &for_lead(&claimed, &leads[3]),
                    Outcome::Failed {
                        error: "550".into(),
                        next: None,
                        suppress: true,
                    },
                ),
                outcome(
                    &for_lead(&claimed, &leads[1]),
                    Outcome::Retry {
                        due_at: retry_at,
                        error: "451".into(),
                    },
                ),
            ],
            "w",
            t0(),
        )
        .await
        .unwrap();
    let pending = store.pending_deliveries().await.unwrap();
    let got: Vec<(i64, DateTime<Utc>, u32, &str)> = pending
        .iter()
        .map(|p| (p.lead_id, p.due_at, p.step, p.template.as_str()))
        .collect();
    assert_eq!(
        got,
        [
            (leads[2].id, dues[2], 0, "first"),
            (leads[1].id, retry_at, 0, "first"),
            (leads[0].id, dues[0], 0, "first")
        ]
    );
    assert!(pending.iter().all(|p| p.campaign == "c"));
}

async fn status_counts_every_state<S: Store>(store: S) {
    let leads = import(&store, 6, t0() - Duration::days(2)).await;
    let batch: Vec<NewEnrolment> = leads[..5]
        .iter()
        .map(|l| enrolment(l, "c", t0() - Duration::days(1)))
        .collect();
    store
        .enrol(
            &[enrolment(&leads[4], "other", t0() + Duration::days(1))],
            t0() - Duration::days(2),
        )
        .await
        .unwrap();
    store
        .enrol(&batch[..4], t0() - Duration::days(2))
        .await
        .unwrap();
    // Yesterday: lead 0 sent (next step due today at 08:00).
    let yesterday = t0() - Duration::days(1);
    let claimed = store
        .claim_due(yesterday, "w", yesterday + Duration::minutes(5), 1)
        .await
        .unwrap();
    store
        .record_outcomes(
            &[outcome(
                &claimed[0],
                Outcome::Sent {
                    message_id: "y@x".into(),
                    provider_id: None,
                    next: next(1, t0() - Duration::hours(1)),
                },
            )],
            "w",
            yesterday,
        )
        .await
        .unwrap();
    let first = claimed[0].lead_id;
    // Today: one sent (last step), one failed hard, one unknown; one claim left running.
    let claimed = store
        .claim_due(t0(), "w", t0() + Duration::minutes(5), 10)
        .await
        .unwrap();
    let by_lead = |id: i64| {
        claimed
            .iter()
            .find(|d| d.lead_id == id)
            .cloned()
            .expect("claimed")
    };
    let others: Vec<i64> = leads[..4]
        .iter()
        .map(|l| l.id)
        .filter(|id| *id != first)
        .collect();
    store
        .record_outcomes(
            &[
                outcome(
                    &by_lead(others[0]),
                    Outcome::Sent {
                        message_id: "a@x".into(),
                        provider_id: None,
                        next: None,
                    },
                ),
                outcome(
                    &by_lead(others[1]),
                    Outcome::Failed {
                        error: "550".into(),
                        next: None,
                        suppress: true,
                    },
                ),
                outcome(
                    &by_lead(others[2]),
                    Outcome::Unknown {
                        error: "reset".into(),
                        next: next(1, t0() + Duration::days(30)),
                    },
                ),
            ],
            "w",
            t0(),
        )
        .await
        .unwrap();
    let since = t("2026-03-03T00:00:00Z");
    let report = store.status(since, t0()).await.unwrap();
    let leads_by_state: BTreeMap<&str, i64> = report
        .leads_by_state
        .iter()
        .map(|(k, v)| (k.as_str(), *v))
        .collect();
    assert_eq!(
        leads_by_state,
        BTreeMap::from([
            ("new", 1),
            ("nurturing", 3),
            ("completed", 1),
            ("rewarmed", 0),
            ("suppressed", 1),
            ("won", 0),
            ("out_of_scope", 0),
            ("paused", 0)
        ])
    );
    let enrolments: BTreeMap<&str, BTreeMap<&str, i64>> = report
        .enrolments
        .iter()
        .map(|(c, m)| {
            (
                c.as_str(),
                m.iter().map(|(s, n)| (s.as_str(), *n)).collect(),
            )
        })
        .collect();
    assert_eq!(
        enrolments,
        BTreeMap::from([
            (
                "c",
                BTreeMap::from([("active", 2), ("completed", 1), ("stopped", 1)])
            ),
            ("other", BTreeMap::from([("active", 1)]))
        ])
    );
    let deliveries_by_state: BTreeMap<&str, i64> = report
        .deliveries_by_state
        .iter()
        .map(|(k, v)| (k.as_str(), *v))
        .collect();
    // Lead 0's step 1 (due an hour ago) was claimed in today's batch and is still out.
    assert_eq!(
        deliveries_by_state,
        BTreeMap::from([
            ("sent", 2),
            ("failed", 1),
            ("unknown", 1),
            ("claimed", 1),
            ("scheduled", 2)
        ])
    );
    assert_eq!(
        (report.sent_since, report.failed_since, report.unknown_since),
        (1, 1, 1)
    );
    // Due now: nothing (lead 0's step 1 is claimed; the unknown's next step is next month;
    // campaign `other` is due tomorrow).
    assert_eq!(report.due_now, 0);
    assert_eq!(
        store
            .status(since, t0() + Duration::days(1))
            .await
            .unwrap()
            .due_now,
        1
    );
    assert_eq!(
        store
            .status(since, t0() + Duration::days(31))
            .await
            .unwrap()
            .due_now,
        2
    );
    // The cheap count /metrics uses agrees with `status`.
    for days in [0, 1, 31] {
        let at = t0() + Duration::days(days);
        assert_eq!(
            store.due_now(at).await.unwrap(),
            store.status(since, at).await.unwrap().due_now,
            "{days} days on"
        );
    }
}

async fn time_stamps_round_trip_to_the_millisecond<S: Store>(store: S) {
    let precise = t("2025-01-02T03:04:05.678901Z");
    let ms = t("2025-01-02T03:04:05.678Z");
    let now = t("2026-03-03T09:00:00.123456789Z");
    let now_ms = t("2026-03-03T09:00:00.123Z");
    let mut l = lead("time@example.com");
    l.lost_at = Some(precise);
    store.upsert_leads(&[l], "t", now).await.unwrap();
    let stored = store
        .lead_by_email(&email("time@example.com"))
        .await
        .unwrap()
        .expect("lead");
    assert_eq!(
        (stored.lost_at, stored.created_at, stored.updated_at),
        (Some(ms), now_ms, now_ms)
    );
    assert_eq!(store.timeline(stored.id).await.unwrap()[0].at, now_ms);
    let due = t("2026-03-03T08:59:59.999999Z");
    store
        .enrol(&[enrolment(&stored, "c", due)], now)
        .await
        .unwrap();
    let lease = t("2026-03-03T09:05:00.000999Z");
    let claimed = store.claim_due(now, "w", lease, 1).await.unwrap();
    assert_eq!(claimed[0].due_at, t("2026-03-03T08:59:59.999Z"));
    let row = delivery_of(&store, stored.id, 0).await;
    assert_eq!(
        (row.lease_until, row.updated_at),
        (Some(t("2026-03-03T09:05:00.000Z")), now_ms)
    );
    // Far from 1970 in both directions.
    let mut old = lead("old@example.com");
    old.lost_at = Some(t("1969-07-20T20:17:40.5Z"));
    let mut future = lead("future@example.com");
    future.lost_at = Some(t("2199-12-31T23:59:59.999Z"));
    store.upsert_leads(&[old, future], "t", now).await.unwrap();
    assert_eq!(
        store
            .lead_by_email(&email("old@example.com"))
            .await
            .unwrap()
            .expect("old")
            .lost_at,
        Some(t("1969-07-20T20:17:40.5Z"))
    );
    assert_eq!(
        store
            .lead_by_email(&email("future@example.com"))
            .await
            .unwrap()
            .expect("future")
            .lost_at,
        Some(t("2199-12-31T23:59:59.999Z"))
    );
}

async fn export_pages_every_row_by_id<S: Store>(store: S) {
    enrolled(&store, 25, t0()).await;
    let counts = store.table_counts().await.unwrap();
    assert_eq!(
        counts.iter().map(|(t, n)| (*t, *n)).collect::<Vec<_>>(),
        [
            (Table::Leads, 25),
            (Table::Enrolments, 25),
            (Table::Deliveries, 25),
            (Table::Events, 50),
            (Table::Suppressions, 0),
            (Table::Secrets, 0),
            (Table::Inbound, 0),
            (Table::Notifications, 0),
            (Table::KvState, 0),
            (Table::Forgotten, 0),
            (Table::CampaignVersions, 0),
            (Table::ConsoleUsers, 0),
            (Table::ConsoleEvents, 0)
        ]
    );
    for table in Table::ALL {
        let (mut after, mut ids) = (0, Vec::new());
        loop {
            let page = store.export_rows(table, after, 7).await.unwrap();
            assert_eq!(page.table(), table);
            let Some(last) = page.last_id() else { break };
            let page_ids: Vec<i64> = match &page {
                Rows::Leads(r) => r.iter().map(|r| r.id).collect(),
                Rows::Enrolments(r) => r.iter().map(|r| r.id).collect(),
                Rows::Deliveries(r) => r.iter().map(|r| r.id).collect(),
                Rows::Events(r) => r.iter().map(|r| r.id).collect(),
                Rows::Suppressions(r) => r.iter().map(|r| r.id).collect(),
                Rows::Secrets(r) => r.iter().map(|r| r.id).collect(),
                Rows::Inbound(r) => r.iter().map(|r| r.id).collect(),
                Rows::Notifications(r) => r.iter().map(|r| r.id).collect(),
                Rows::KvState(r) => r.iter().map(|r| r.id).collect(),
                Rows::Forgotten(r) => r.iter().map(|r| r.id).collect(),
                Rows::CampaignVersions(r) => r.iter().map(|r| r.id).collect(),
                Rows::ConsoleUsers(r) => r.iter().map(|r| r.id).collect(),
                Rows::ConsoleEvents(r) => r.iter().map(|r| r.id).collect(),
            };
            ids.extend(page_ids);
            after = last;
        }
        assert!(ids.windows(2).all(|w| w[0] < w[1]), "{table}: by id");
        assert_eq!(ids.len() as i64, counts[&table], "{table}: every row once");
    }
}

// ── Suppression, tokens, health ─────────────────────────────────────────────────────────

fn entry(address: &str, reason: SuppressionReason, note: &str) -> Suppression {
    Suppression {
        address: address.into(),
        reason,
        evidence: serde_json::json!({ "note": note }),
        created_at: t0(),
    }
}

/// Leads with these addresses, imported a day before `t0()` and enrolled in campaign `c`
/// with step 0 due an hour before `t0()`; returned in the order given.
pub(crate) async fn enrolled_as<S: Store>(store: &S, addresses: &[&str]) -> Vec<Lead> {
    let batch: Vec<NewLead> = addresses.iter().map(|a| lead(a)).collect();
    store
        .upsert_leads(&batch, "test", t0() - Duration::days(1))
        .await
        .unwrap();
    let mut leads = Vec::new();
    for a in addresses {
        leads.push(
            store
                .lead_by_email(&email(a))
                .await
                .unwrap()
                .expect("imported"),
        );
    }
    let enrol: Vec<NewEnrolment> = leads
        .iter()
        .map(|l| enrolment(l, "c", t0() - Duration::hours(1)))
        .collect();
    assert_eq!(
        store
            .enrol(&enrol, t0() - Duration::hours(2))
            .await
            .unwrap(),
        leads.len()
    );
    leads
}

pub(crate) async fn last_event<S: Store>(store: &S, lead_id: i64) -> rewarm::store::Event {
    store
        .timeline(lead_id)
        .await
        .unwrap()
        .pop()
        .expect("an event")
}

pub(crate) async fn event_count<S: Store>(store: &S) -> i64 {
    store.table_counts().await.unwrap()[&Table::Events]
}

async fn suppressing_an_address_and_a_domain_stops_everything_for_their_leads<S: Store>(store: S) {
    let leads = enrolled_as(
        &store,
        &[
            "ann@a.example",
            "bob@b.example",
            "cat@b.example",
            "dan@c.example",
            "eve@sub.b.example",
        ],
    )
    .await;
    let [ann, bob, cat, dan, eve] = &leads[..] else {
        unreachable!()
    };
    // Bob's email is waiting for a retry, the others are back to `scheduled`.
    let claimed = store
        .claim_due(t0(), "w", t0() + Duration::minutes(5), 10)
        .await
        .unwrap();
    assert_eq!(claimed.len(), 5);
    let outcomes: Vec<RecordedOutcome> = claimed
        .iter()
        .map(|d| {
            outcome(
                d,
                if d.lead_id == bob.id {
                    Outcome::Retry {
                        due_at: t0() + Duration::minutes(5),
                        error: "451".into(),
                    }
                } else {
                    Outcome::Deferred {
                        due_at: t0() + Duration::minutes(1),
                        reason: rewarm::store::DeferReason::RateLimit,
                    }
                },
            )
        })
        .collect();
    store.record_outcomes(&outcomes, "w", t0()).await.unwrap();
    assert_eq!(delivery_of(&store, bob.id, 0).await.state, "retry_wait");

    let added = store
        .suppress(
            &[
                entry("ann@a.example", SuppressionReason::Unsubscribed, "token 17"),
                entry("@b.example", SuppressionReason::Complaint, "abuse desk"),
                entry("cat@b.example", SuppressionReason::Manual, "asked by phone"),
            ],
            t0() + Duration::seconds(1),
        )
        .await
        .unwrap();
    assert_eq!(added, 3);

    // The address, the domain (not its subdomain), and nobody else.
    for (lead, state) in [
        (ann, LeadState::Suppressed),
        (bob, LeadState::Suppressed),
        (cat, LeadState::Suppressed),
        (dan, LeadState::Nurturing),
        (eve, LeadState::Nurturing),
    ] {
        assert_eq!(lead_state(&store, lead.id).await, state, "{}", lead.email);
    }
    for (lead, state) in [
        (ann, "cancelled"),
        (bob, "cancelled"),
        (cat, "cancelled"),
        (dan, "scheduled"),
        (eve, "scheduled"),
    ] {
        assert_eq!(
            delivery_of(&store, lead.id, 0).await.state,
            state,
            "{}",
            lead.email
        );
    }
    let enrolments = enrolment_states(&store).await;
    assert_eq!(enrolments[&ann.id], "stopped");
    assert_eq!(enrolments[&bob.id], "stopped");
    assert_eq!(enrolments[&cat.id], "stopped");
    assert_eq!(enrolments[&dan.id], "active");

    // One `suppressed` event per lead, naming the entry that did it (an exact address of
    // the batch wins over its domain).
    for (lead, address, reason, note) in [
        (ann, "ann@a.example", "unsubscribed", "token 17"),
        (bob, "@b.example", "complaint", "abuse desk"),
        (cat, "cat@b.example", "manual", "asked by phone"),
    ] {
        let timeline = store.timeline(lead.id).await.unwrap();
        let suppressed: Vec<_> = timeline.iter().filter(|e| e.kind == "suppressed").collect();
        assert_eq!(suppressed.len(), 1, "{}", lead.email);
        let e = suppressed[0];
        assert_eq!(e.at, t0() + Duration::seconds(1));
        assert_eq!(e.detail["from"], "nurturing");
        assert_eq!(e.detail["to"], "suppressed");
        assert_eq!(e.detail["reason"], reason);
        assert_eq!(e.detail["address"], address);
        assert_eq!(e.detail["evidence"]["note"], note);
    }
    assert!(
        !kinds(&store, dan.id)
            .await
            .contains(&"suppressed".to_string())
    );

    // Only Dan and Eve are ever claimed again.
    let later = store
        .claim_due(t0() + Duration::days(1), "w", t0() + Duration::days(2), 10)
        .await
        .unwrap();
    assert_eq!(
        later.iter().map(|d| d.lead_id).collect::<BTreeSet<_>>(),
        BTreeSet::from([dan.id, eve.id])
    );
    assert!(
        store
            .pending_deliveries()
            .await
            .unwrap()
            .iter()
            .all(|p| p.lead_id == dan.id || p.lead_id == eve.id)
    );

    // The list, oldest first; lookups by address or domain.
    let list = store.suppressions().await.unwrap();
    assert_eq!(
        list.iter().map(|s| s.address.as_str()).collect::<Vec<_>>(),
        ["ann@a.example", "@b.example", "cat@b.example"]
    );
    assert_eq!(list[0].reason, SuppressionReason::Unsubscribed);
    assert_eq!(list[0].evidence, serde_json::json!({"note": "token 17"}));
    assert_eq!(list[0].created_at, t0());
    let found = |s: Option<Suppression>| s.map(|s| s.address);
    assert_eq!(
        found(store.suppression_for(&ann.email).await.unwrap()).as_deref(),
        Some("ann@a.example")
    );
    assert_eq!(
        found(store.suppression_for(&bob.email).await.unwrap()).as_deref(),
        Some("@b.example")
    );
    assert_eq!(
        found(store.suppression_for(&cat.email).await.unwrap()).as_deref(),
        Some("cat@b.example"),
        "the exact address before its domain"
    );
    assert_eq!(
        found(
            store
                .suppression_for(&email("new@b.example"))
                .await
                .unwrap()
        )
        .as_deref(),
        Some("@b.example")
    );
    assert_eq!(store.suppression_for(&eve.email).await.unwrap(), None);
    assert_eq!(store.suppression_for(&dan.email).await.unwrap(), None);
    assert_eq!(store.table_counts().await.unwrap()[&Table::Suppressions], 3);
}

async fn suppress_keeps_the_first_entry_per_address_and_writes_no_second_event<S: Store>(store: S) {
    let leads = enrolled_as(&store, &["ann@a.example"]).await;
    // The same address twice in one batch: the first entry is kept.
    let added = store
        .suppress(
            &[
                entry("ann@a.example", SuppressionReason::Unsubscribed, "first"),
                entry("ann@a.example", SuppressionReason::Manual, "second"),
            ],
            t0(),
        )
        .await
        .unwrap();
    assert_eq!(added, 1);
    let events = event_count(&store).await;
    // Again, later, with another reason: nothing new, no second event.
    let added = store
        .suppress(
            &[entry(
                "ann@a.example",
                SuppressionReason::Complaint,
                "third",
            )],
            t0() + Duration::hours(1),
        )
        .await
        .unwrap();
    assert_eq!(added, 0);
    assert_eq!(event_count(&store).await, events);
    let list = store.suppressions().await.unwrap();
    assert_eq!(list.len(), 1);
    assert_eq!(list[0].reason, SuppressionReason::Unsubscribed);
    assert_eq!(list[0].evidence["note"], "first");
    assert_eq!(lead_state(&store, leads[0].id).await, LeadState::Suppressed);
    // An empty batch changes nothing.
    assert_eq!(store.suppress(&[], t0()).await.unwrap(), 0);
}

async fn a_new_lead_on_the_list_is_imported_suppressed_and_never_enrolled<S: Store>(store: S) {
    // Entries for addresses no lead has yet.
    let added = store
        .suppress(
            &[
                entry(
                    "x@a.example",
                    SuppressionReason::Unsubscribed,
                    "before import",
                ),
                entry(
                    "@blocked.example",
                    SuppressionReason::Complaint,
                    "whole domain",
                ),
            ],
            t0() - Duration::days(2),
        )
        .await
        .unwrap();
    assert_eq!(added, 2);
    let summary = store
        .upsert_leads(
            &[
                lead("X@A.example"),
                lead("y@blocked.example"),
                lead("z@ok.example"),
            ],
            "crm.csv",
            t0() - Duration::days(1),
        )
        .await
        .unwrap();
    assert_eq!(summary.inserted, 3);
    let x = store
        .lead_by_email(&email("x@a.example"))
        .await
        .unwrap()
        .unwrap();
    let y = store
        .lead_by_email(&email("y@blocked.example"))
        .await
        .unwrap()
        .unwrap();
    let z = store
        .lead_by_email(&email("z@ok.example"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (x.state, y.state, z.state),
        (LeadState::Suppressed, LeadState::Suppressed, LeadState::New)
    );
    // One event each, saying why.
    let tx = store.timeline(x.id).await.unwrap();
    assert_eq!(tx.len(), 1);
    assert_eq!(tx[0].kind, "imported");
    assert_eq!(tx[0].detail["source"], "crm.csv");
    assert_eq!(tx[0].detail["state"], "suppressed");
    assert_eq!(tx[0].detail["reason"], "unsubscribed");
    assert_eq!(tx[0].detail["address"], "x@a.example");
    assert_eq!(tx[0].detail["evidence"]["note"], "before import");
    let ty = store.timeline(y.id).await.unwrap();
    assert_eq!(ty.len(), 1);
    assert_eq!(ty[0].detail["reason"], "complaint");
    assert_eq!(ty[0].detail["address"], "@blocked.example");
    let tz = store.timeline(z.id).await.unwrap();
    assert_eq!(
        tz[0].detail,
        serde_json::json!({"source": "crm.csv", "state": "new"})
    );
    // An update of a suppressed lead keeps it suppressed.
    let mut again = lead("x@a.example");
    again.company = Some("Acme".into());
    store
        .upsert_leads(&[again], "crm2.csv", t0())
        .await
        .unwrap();
    assert_eq!(lead_state(&store, x.id).await, LeadState::Suppressed);
    // Enrolment skips them; only z is enrolled.
    let batch = vec![
        enrolment(&x, "c", t0()),
        enrolment(&y, "c", t0()),
        enrolment(&z, "c", t0()),
    ];
    assert_eq!(store.enrol(&batch, t0()).await.unwrap(), 1);
    let claimed = store
        .claim_due(t0(), "w", t0() + Duration::minutes(5), 10)
        .await
        .unwrap();
    assert_eq!(
        claimed.iter().map(|d| d.lead_id).collect::<Vec<_>>(),
        [z.id]
    );
    assert_eq!(deliveries(&store).await.len(), 1);
}

/// Entries written as raw rows (`import_rows`, as `db copy` does): the leads' rows are not
/// touched, so only the claim's own look at the list can keep them from being sent.
async fn list_behind_the_leads_back<S: Store>(store: &S, addresses: &[&str]) {
    let rows = addresses
        .iter()
        .enumerate()
        .map(|(i, a)| SuppressionRecord {
            id: 1000 + i as i64,
            address: a.to_string(),
            reason: "unsubscribed".into(),
            evidence: serde_json::json!({"via": "raw row"}),
            created_at: t0(),
        })
        .collect();
    assert_eq!(
        store.import_rows(&Rows::Suppressions(rows)).await.unwrap(),
        addresses.len()
    );
}

async fn claims_check_the_list_itself_even_when_the_lead_row_was_not_updated<S: Store>(store: S) {
    let leads = enrolled_as(
        &store,
        &[
            "ann@a.example",
            "bob@b.example",
            "cat@c.example",
            "dan@d.example",
        ],
    )
    .await;
    // Scheduled and nurturing; then Ann's address and Bob's domain are listed.
    list_behind_the_leads_back(&store, &["ann@a.example", "@b.example"]).await;
    assert_eq!(lead_state(&store, leads[0].id).await, LeadState::Nurturing);
    assert_eq!(lead_state(&store, leads[1].id).await, LeadState::Nurturing);
    let claimed = store
        .claim_due(t0(), "w", t0() + Duration::minutes(5), 10)
        .await
        .unwrap();
    assert_eq!(
        claimed.iter().map(|d| d.lead_id).collect::<BTreeSet<_>>(),
        BTreeSet::from([leads[2].id, leads[3].id])
    );
    // Still not, however often the claim runs.
    assert!(
        store
            .claim_due(t0() + Duration::days(1), "w", t0() + Duration::days(2), 10)
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(delivery_of(&store, leads[0].id, 0).await.state, "scheduled");
    assert_eq!(delivery_of(&store, leads[0].id, 0).await.attempts, 0);
    // The rows moved with `import_rows` advance the id sequence: a later entry gets a new id.
    assert_eq!(
        store
            .suppress(
                &[entry("eve@e.example", SuppressionReason::Manual, "")],
                t0()
            )
            .await
            .unwrap(),
        1
    );
    assert_eq!(store.suppressions().await.unwrap().len(), 3);
}

async fn enrolment_suppresses_a_new_lead_whose_address_is_listed<S: Store>(store: S) {
    let leads = import(&store, 3, t0() - Duration::days(1)).await;
    list_behind_the_leads_back(&store, &["lead1@example.com"]).await;
    let batch: Vec<NewEnrolment> = leads.iter().map(|l| enrolment(l, "c", t0())).collect();
    assert_eq!(store.enrol(&batch, t0()).await.unwrap(), 2);
    assert_eq!(lead_state(&store, leads[0].id).await, LeadState::Nurturing);
    assert_eq!(lead_state(&store, leads[1].id).await, LeadState::Suppressed);
    assert_eq!(lead_state(&store, leads[2].id).await, LeadState::Nurturing);
    let e = last_event(&store, leads[1].id).await;
    assert_eq!(e.kind, "suppressed");
    assert_eq!(e.detail["from"], "new");
    assert_eq!(e.detail["to"], "suppressed");
    assert_eq!(e.detail["reason"], "unsubscribed");
    assert_eq!(e.detail["address"], "lead1@example.com");
    assert_eq!(e.detail["evidence"]["via"], "raw row");
    assert_eq!(kinds(&store, leads[1].id).await, ["imported", "suppressed"]);
    assert!(
        !enrolment_states(&store).await.contains_key(&leads[1].id),
        "no enrolment row"
    );
    assert_eq!(deliveries(&store).await.len(), 2);
}

async fn unsuppress_removes_the_entry_but_leaves_the_leads_suppressed<S: Store>(store: S) {
    let leads = enrolled_as(&store, &["ann@a.example", "bob@b.example"]).await;
    store
        .suppress(
            &[
                entry("ann@a.example", SuppressionReason::Unsubscribed, ""),
                entry("@b.example", SuppressionReason::Manual, ""),
            ],
            t0(),
        )
        .await
        .unwrap();
    let events = event_count(&store).await;
    assert!(store.unsuppress("ann@a.example").await.unwrap());
    assert!(
        !store.unsuppress("ann@a.example").await.unwrap(),
        "gone already"
    );
    assert!(!store.unsuppress("nobody@a.example").await.unwrap());
    assert!(store.unsuppress("@b.example").await.unwrap());
    assert!(store.suppressions().await.unwrap().is_empty());
    assert_eq!(store.suppression_for(&leads[0].email).await.unwrap(), None);
    // The leads stay suppressed (a person must recycle them); nothing is rescheduled.
    assert_eq!(lead_state(&store, leads[0].id).await, LeadState::Suppressed);
    assert_eq!(lead_state(&store, leads[1].id).await, LeadState::Suppressed);
    assert_eq!(event_count(&store).await, events);
    assert!(
        store
            .claim_due(t0() + Duration::days(1), "w", t0() + Duration::days(2), 10)
            .await
            .unwrap()
            .is_empty()
    );
    // New leads at the domain are no longer suppressed.
    store
        .upsert_leads(&[lead("cat@b.example")], "later.csv", t0())
        .await
        .unwrap();
    assert_eq!(
        store
            .lead_by_email(&email("cat@b.example"))
            .await
            .unwrap()
            .unwrap()
            .state,
        LeadState::New
    );
}

async fn a_hard_bounce_lists_the_address_and_schedules_nothing_more<S: Store>(store: S) {
    let leads = enrolled_as(&store, &["ann@a.example", "bob@b.example"]).await;
    // Bob is listed by hand after his email was claimed: his entry stays the first one.
    let claimed = store
        .claim_due(t0(), "w", t0() + Duration::minutes(5), 10)
        .await
        .unwrap();
    store
        .suppress(
            &[entry("bob@b.example", SuppressionReason::Manual, "first")],
            t0(),
        )
        .await
        .unwrap();
    let ann_d = for_lead(&claimed, &leads[0]);
    let bob_d = for_lead(&claimed, &leads[1]);
    store
        .record_outcomes(
            &[
                // A `next` given with a hard bounce is ignored: nothing more is scheduled.
                outcome(
                    &ann_d,
                    Outcome::Failed {
                        error: "550 5.1.1 no such user".into(),
                        next: next(1, t0() + Duration::days(30)),
                        suppress: true,
                    },
                ),
                outcome(
                    &bob_d,
                    Outcome::Failed {
                        error: "550 5.1.1 gone".into(),
                        next: None,
                        suppress: true,
                    },
                ),
            ],
            "w",
            t0() + Duration::seconds(5),
        )
        .await
        .unwrap();
    assert_eq!(lead_state(&store, leads[0].id).await, LeadState::Suppressed);
    assert!(
        deliveries(&store)
            .await
            .iter()
            .all(|d| d.step == 0 && d.state == "failed"),
        "no step 1 for anyone"
    );
    let ann = store
        .suppression_for(&leads[0].email)
        .await
        .unwrap()
        .expect("listed");
    assert_eq!(ann.address, "ann@a.example");
    assert_eq!(ann.reason, SuppressionReason::HardBounce);
    assert_eq!(
        ann.evidence,
        serde_json::json!({"delivery_id": ann_d.id, "error": "550 5.1.1 no such user"})
    );
    assert_eq!(ann.created_at, t0() + Duration::seconds(5));
    let e = last_event(&store, leads[0].id).await;
    assert_eq!(e.kind, "suppressed");
    assert_eq!(e.detail["reason"], "hard_bounce");
    assert_eq!(e.detail["evidence"]["delivery_id"], ann_d.id);
    assert_eq!(e.detail["address"], "ann@a.example");
    // Bob keeps his first entry.
    let bob = store
        .suppression_for(&leads[1].email)
        .await
        .unwrap()
        .expect("listed");
    assert_eq!(bob.reason, SuppressionReason::Manual);
    assert_eq!(enrolment_states(&store).await[&leads[0].id], "stopped");
}

async fn a_secret_is_generated_once_and_stays_the_same<S: Store>(store: S) {
    let first = store
        .secret("token-key", || "generated-1".to_string())
        .await
        .unwrap();
    assert_eq!(first, "generated-1");
    let again = store
        .secret("token-key", || panic!("must not generate twice"))
        .await
        .unwrap();
    assert_eq!(again, "generated-1");
    let other = store
        .secret("other", || "generated-2".to_string())
        .await
        .unwrap();
    assert_eq!(other, "generated-2");
    // Several daemons at once: every one gets the value stored first.
    let racers: Vec<_> = (0..8)
        .map(|i| {
            let store = store.clone();
            tokio::spawn(async move { store.secret("raced", move || format!("racer-{i}")).await })
        })
        .collect();
    let mut values = HashSet::new();
    for r in racers {
        values.insert(r.await.unwrap().unwrap());
    }
    assert_eq!(values.len(), 1, "{values:?}");
    let raced = values.into_iter().next().unwrap();
    assert_eq!(
        store.secret("raced", || "late".into()).await.unwrap(),
        raced
    );
    assert_eq!(store.table_counts().await.unwrap()[&Table::Secrets], 3);
    // Exported for `db copy`, but never shown by Debug.
    let Rows::Secrets(rows) = store.export_rows(Table::Secrets, 0, 10).await.unwrap() else {
        panic!("secrets")
    };
    assert_eq!(rows[0].name, "token-key");
    assert_eq!(rows[0].value, "generated-1");
    assert!(!format!("{rows:?}").contains("generated-1"));
}

async fn delivery_target_names_the_lead_campaign_and_step<S: Store>(store: S) {
    let leads = enrolled_as(&store, &["ann@a.example", "bob@b.example"]).await;
    let claimed = store
        .claim_due(t0(), "w", t0() + Duration::minutes(5), 10)
        .await
        .unwrap();
    let d = for_lead(&claimed, &leads[0]);
    assert_eq!(
        store.delivery_target(d.id).await.unwrap(),
        Some(DeliveryTarget {
            delivery_id: d.id,
            lead_id: leads[0].id,
            email: email("ann@a.example"),
            campaign: "c".into(),
            step: 1,
            message_id: None,
        })
    );
    store
        .record_outcomes(
            &[outcome(
                &d,
                Outcome::Sent {
                    message_id: "<m1@rewarm>".into(),
                    provider_id: None,
                    next: next(1, t0() + Duration::days(30)),
                },
            )],
            "w",
            t0(),
        )
        .await
        .unwrap();
    let sent = store.delivery_target(d.id).await.unwrap().unwrap();
    assert_eq!(sent.message_id.as_deref(), Some("<m1@rewarm>"));
    assert_eq!(sent.step, 1);
    let second = delivery_of(&store, leads[0].id, 1).await;
    let target = store.delivery_target(second.id).await.unwrap().unwrap();
    assert_eq!((target.step, target.message_id), (2, None));
    assert_eq!(store.delivery_target(987_654).await.unwrap(), None);
}

async fn a_click_is_recorded_on_the_leads_timeline<S: Store>(store: S) {
    let leads = enrolled_as(&store, &["ann@a.example"]).await;
    let d = delivery_of(&store, leads[0].id, 0).await;
    let events = event_count(&store).await;
    let recorded = store
        .record_click(&click(d.id, "https://acme.example/pricing?x=1"), t0())
        .await
        .unwrap()
        .expect("a known delivery");
    assert_eq!(
        (recorded.lead_id, recorded.campaign.as_str(), recorded.step),
        (leads[0].id, "c", 1)
    );
    assert!(recorded.judgement.verdict.counted());
    let e = last_event(&store, leads[0].id).await;
    assert_eq!(e.kind, "clicked");
    assert_eq!(e.at, t0());
    assert_eq!(
        e.detail,
        serde_json::json!({"campaign": "c", "step": 1, "url": "https://acme.example/pricing?x=1",
                           "delivery_id": d.id, "counted": true, "signal": "counted"})
    );
    assert_eq!(event_count(&store).await, events + 1);
    // No such delivery: None, nothing written.
    assert!(
        store
            .record_click(&click(987_654, "https://x.example"), t0())
            .await
            .unwrap()
            .is_none()
    );
    assert_eq!(event_count(&store).await, events + 1);
    // A click changes no state.
    assert_eq!(lead_state(&store, leads[0].id).await, LeadState::Nurturing);
}

async fn ping_answers<S: Store>(store: S) {
    store.ping().await.expect("ping");
}

// ── Inbound, engagement, outbox, kv (issue 3) ──────────────────────────────────────────

pub(crate) fn inbound_record(
    key: &str,
    lead_id: Option<i64>,
    classification: &str,
) -> InboundRecord {
    InboundRecord {
        dedupe_key: key.into(),
        source: "test".into(),
        received_at: t0(),
        message_id: Some(format!("<{key}@mail.example>")),
        from_address: Some("ann@a.example".into()),
        subject: Some("Re: hello".into()),
        classification: classification.into(),
        lead_id,
        delivery_id: None,
        matched_by: lead_id.map(|_| "sender".into()),
        text: Some("Yes, let's talk.".into()),
        raw: b"Subject: Re: hello\r\n\r\nYes, let's talk.\r\n\xff".to_vec(),
    }
}

/// A plain GET on a tracked link, judged by the default rules.
pub(crate) fn click(delivery_id: i64, url: &str) -> Click<'_> {
    Click {
        delivery_id,
        url,
        request: Default::default(),
        policy: Default::default(),
    }
}

/// `points` for a click, re-warming at `threshold`, without decay.
pub(crate) fn click_points(lead_id: i64, points: i64, threshold: i64) -> Engagement<'static> {
    Engagement {
        lead_id,
        kind: "click",
        points,
        threshold,
        half_life: None,
        detail: serde_json::json!({}),
    }
}

pub(crate) fn note(lead_id: i64, key: &str) -> NewNotification {
    NewNotification {
        kind: "webhook".into(),
        lead_id: Some(lead_id),
        idempotency_key: key.into(),
        payload: serde_json::json!({"event": "lead.rewarmed", "key": key}),
    }
}

fn rewarm_effect(lead_id: i64, key: &str) -> InboundEffect {
    InboundEffect::Rewarm {
        text: "Yes, let's talk.".into(),
        subject: Some("Re: hello".into()),
        notifications: vec![note(lead_id, key)],
    }
}

async fn a_reply_rewarms_once_stops_the_cadence_and_enqueues_notifications<S: Store>(store: S) {
    let leads = enrolled_as(&store, &["ann@a.example", "bob@b.example"]).await;
    let ann = &leads[0];
    let effect = rewarm_effect(ann.id, "rewarmed:1:k1:webhook");
    let first = store
        .record_inbound(
            &inbound_record("k1", Some(ann.id), "human_reply"),
            &effect,
            t0(),
        )
        .await
        .unwrap();
    assert!(!first.duplicate);
    assert_eq!(lead_state(&store, ann.id).await, LeadState::Rewarmed);
    assert_eq!(delivery_of(&store, ann.id, 0).await.state, "cancelled");
    assert_eq!(enrolment_states(&store).await[&ann.id], "stopped");
    // Bob is untouched.
    assert_eq!(lead_state(&store, leads[1].id).await, LeadState::Nurturing);
    assert_eq!(delivery_of(&store, leads[1].id, 0).await.state, "scheduled");
    let k = kinds(&store, ann.id).await;
    assert_eq!(&k[k.len() - 3..], ["inbound", "replied", "rewarmed"]);
    let replied = store
        .timeline(ann.id)
        .await
        .unwrap()
        .into_iter()
        .find(|e| e.kind == "replied")
        .unwrap();
    assert_eq!(replied.detail["text"], "Yes, let's talk.");
    assert_eq!(replied.detail["classification"], "human_reply");
    let status = store.status(t0() - Duration::days(1), t0()).await.unwrap();
    assert_eq!(
        status.notifications_by_state,
        BTreeMap::from([("pending".to_string(), 1)])
    );
    let pending = store.notifications(0, 10).await.unwrap();
    assert_eq!(pending.len(), 1);
    assert_eq!(pending[0].state, "pending");
    assert_eq!(pending[0].lead_id, Some(ann.id));
    assert_eq!(pending[0].payload["key"], "rewarmed:1:k1:webhook");

    // The provider retries: same key → duplicate, nothing changes at all.
    let events = event_count(&store).await;
    let again = store
        .record_inbound(
            &inbound_record("k1", Some(ann.id), "human_reply"),
            &effect,
            t0() + Duration::minutes(1),
        )
        .await
        .unwrap();
    assert_eq!(
        again,
        InboundApplied {
            inbound_id: first.inbound_id,
            duplicate: true
        }
    );
    assert_eq!(event_count(&store).await, events);
    assert_eq!(store.notifications(0, 10).await.unwrap().len(), 1);
    let stored = store.inbound_messages(0, 10).await.unwrap();
    assert_eq!(stored.len(), 1);
    assert_eq!(
        stored[0].record,
        inbound_record("k1", Some(ann.id), "human_reply")
    );
    assert_eq!(stored[0].effects["effect"], "rewarm");
    assert_eq!(stored[0].effects["rewarmed"], true);

    // Re-warmed leads are listed, by owner too.
    let listed = store
        .leads_rewarmed(t0() - Duration::days(1), None)
        .await
        .unwrap();
    assert_eq!(
        listed.iter().map(|(l, at)| (l.id, *at)).collect::<Vec<_>>(),
        vec![(ann.id, t0())]
    );
    assert!(
        store
            .leads_rewarmed(t0() + Duration::seconds(1), None)
            .await
            .unwrap()
            .is_empty()
    );
    assert!(
        store
            .leads_rewarmed(t0() - Duration::days(1), Some("nobody@x.example"))
            .await
            .unwrap()
            .is_empty()
    );
}

async fn unmatched_mail_is_kept_and_changes_no_lead<S: Store>(store: S) {
    let leads = enrolled_as(&store, &["ann@a.example"]).await;
    let events = event_count(&store).await;
    let applied = store
        .record_inbound(
            &inbound_record("stray", None, "other"),
            &rewarm_effect(leads[0].id, "x"),
            t0(),
        )
        .await
        .unwrap();
    assert!(!applied.duplicate);
    assert_eq!(event_count(&store).await, events);
    assert_eq!(lead_state(&store, leads[0].id).await, LeadState::Nurturing);
    assert!(store.notifications(0, 10).await.unwrap().is_empty());
    let stored = store.inbound_messages(0, 10).await.unwrap();
    assert_eq!(stored.len(), 1);
    assert_eq!(stored[0].record.lead_id, None);
    assert_eq!(
        stored[0].record.raw,
        inbound_record("stray", None, "other").raw
    );
    let status = store.status(t0() - Duration::days(1), t0()).await.unwrap();
    assert_eq!(status.inbound_unmatched, 1);
    assert_eq!(
        status.inbound_since,
        BTreeMap::from([("other".to_string(), 1)])
    );
    assert!(status.notifications_by_state.is_empty());
    let later = store.status(t0() + Duration::days(1), t0()).await.unwrap();
    assert!(later.inbound_since.is_empty(), "counted since `since` only");
}

async fn an_auto_reply_postpones_and_a_bounce_suppresses<S: Store>(store: S) {
    let leads = enrolled_as(&store, &["ann@a.example", "bob@b.example"]).await;
    let (ann, bob) = (&leads[0], &leads[1]);
    let before = delivery_of(&store, ann.id, 0).await.due_at;
    let until = before + Duration::days(10);
    store
        .record_inbound(
            &inbound_record("ooo", Some(ann.id), "auto_reply"),
            &InboundEffect::Postpone { until },
            t0(),
        )
        .await
        .unwrap();
    let d = delivery_of(&store, ann.id, 0).await;
    assert_eq!((d.state.as_str(), d.due_at), ("scheduled", until));
    assert_eq!(lead_state(&store, ann.id).await, LeadState::Nurturing);
    // An earlier date never brings a delivery forward.
    store
        .record_inbound(
            &inbound_record("ooo2", Some(ann.id), "auto_reply"),
            &InboundEffect::Postpone { until: before },
            t0(),
        )
        .await
        .unwrap();
    assert_eq!(delivery_of(&store, ann.id, 0).await.due_at, until);

    store
        .record_inbound(
            &inbound_record("dsn", Some(bob.id), "hard_bounce"),
            &InboundEffect::Suppress {
                reason: SuppressionReason::HardBounce,
                evidence: serde_json::json!({"status": "5.1.1"}),
            },
            t0(),
        )
        .await
        .unwrap();
    assert_eq!(lead_state(&store, bob.id).await, LeadState::Suppressed);
    assert_eq!(delivery_of(&store, bob.id, 0).await.state, "cancelled");
    let entry = store
        .suppression_for(&email("bob@b.example"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(entry.reason, SuppressionReason::HardBounce);
    assert_eq!(entry.evidence["status"], "5.1.1");
}

async fn soft_bounces_suppress_after_the_limit_in_a_row<S: Store>(store: S) {
    let leads = enrolled_as(&store, &["ann@a.example"]).await;
    let ann = &leads[0];
    let soft = |n: u32| InboundEffect::SoftBounce {
        limit: 3,
        evidence: serde_json::json!({"n": n}),
    };
    for n in 0..2 {
        store
            .record_inbound(
                &inbound_record(&format!("soft{n}"), Some(ann.id), "soft_bounce"),
                &soft(n),
                t0(),
            )
            .await
            .unwrap();
    }
    assert_eq!(lead_state(&store, ann.id).await, LeadState::Nurturing);
    // A duplicate does not count.
    store
        .record_inbound(
            &inbound_record("soft1", Some(ann.id), "soft_bounce"),
            &soft(1),
            t0(),
        )
        .await
        .unwrap();
    assert_eq!(lead_state(&store, ann.id).await, LeadState::Nurturing);
    // A click shows mail reaches her: the count starts over.
    let claimed = store
        .claim_due(t0(), "w", t0() + Duration::minutes(5), 10)
        .await
        .unwrap();
    let ann_delivery = for_lead(&claimed, ann).id;
    assert!(
        store
            .record_click(&click(ann_delivery, "https://acme.example/"), t0())
            .await
            .unwrap()
            .is_some()
    );
    for n in 2..4 {
        store
            .record_inbound(
                &inbound_record(&format!("soft{n}"), Some(ann.id), "soft_bounce"),
                &soft(n),
                t0(),
            )
            .await
            .unwrap();
    }
    assert_eq!(lead_state(&store, ann.id).await, LeadState::Nurturing);
    store
        .record_inbound(
            &inbound_record("soft4", Some(ann.id), "soft_bounce"),
            &soft(4),
            t0(),
        )
        .await
        .unwrap();
    assert_eq!(lead_state(&store, ann.id).await, LeadState::Suppressed);
    let entry = store
        .suppression_for(&email("ann@a.example"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(entry.evidence["soft_bounces"], 3);
}

async fn engagement_crossing_the_threshold_rewarms_once<S: Store>(store: S) {
    let leads = enrolled_as(&store, &["ann@a.example", "bob@b.example"]).await;
    let ann = &leads[0];
    assert!(
        !store
            .engage(&click_points(ann.id, 5, 10), &[note(ann.id, "s1")], t0())
            .await
            .unwrap()
    );
    assert_eq!(store.score(ann.id).await.unwrap(), 5);
    assert_eq!(lead_state(&store, ann.id).await, LeadState::Nurturing);
    assert!(store.notifications(0, 10).await.unwrap().is_empty());
    assert!(
        store
            .engage(&click_points(ann.id, 5, 10), &[note(ann.id, "s2")], t0())
            .await
            .unwrap()
    );
    assert_eq!(lead_state(&store, ann.id).await, LeadState::Rewarmed);
    assert_eq!(delivery_of(&store, ann.id, 0).await.state, "cancelled");
    assert_eq!(store.notifications(0, 10).await.unwrap().len(), 1);
    // Above the threshold already: no second re-warm, no second notification.
    assert!(
        !store
            .engage(&click_points(ann.id, 5, 10), &[note(ann.id, "s3")], t0())
            .await
            .unwrap()
    );
    assert_eq!(store.notifications(0, 10).await.unwrap().len(), 1);
    assert_eq!(store.score(ann.id).await.unwrap(), 15);
    // Threshold 0 never re-warms.
    let bob = &leads[1];
    assert!(
        !store
            .engage(&click_points(bob.id, 100, 0), &[], t0())
            .await
            .unwrap()
    );
    assert_eq!(lead_state(&store, bob.id).await, LeadState::Nurturing);
    // Unknown lead: nothing.
    assert!(
        !store
            .engage(&click_points(987_654, 100, 1), &[], t0())
            .await
            .unwrap()
    );
}

async fn notifications_are_claimed_leased_and_recorded<S: Store>(store: S) {
    let leads = enrolled_as(&store, &["ann@a.example"]).await;
    let id = leads[0].id;
    let batch = [note(id, "a"), note(id, "b"), note(id, "c")];
    assert_eq!(store.enqueue_notifications(&batch, t0()).await.unwrap(), 3);
    // Same keys again: skipped.
    assert_eq!(store.enqueue_notifications(&batch, t0()).await.unwrap(), 0);
    assert!(
        store
            .claim_notifications(t0() - Duration::seconds(1), "w1", t0(), 10)
            .await
            .unwrap()
            .is_empty()
    );
    let lease = t0() + Duration::minutes(5);
    let claimed = store
        .claim_notifications(t0(), "w1", lease, 10)
        .await
        .unwrap();
    assert_eq!(
        claimed
            .iter()
            .map(|n| n.idempotency_key.as_str())
            .collect::<Vec<_>>(),
        ["a", "b", "c"]
    );
    assert!(
        claimed
            .iter()
            .all(|n| n.attempts == 1 && n.state == "claimed")
    );
    // Leased: nobody else gets them.
    assert!(
        store
            .claim_notifications(t0(), "w2", lease, 10)
            .await
            .unwrap()
            .is_empty()
    );
    let retry_at = t0() + Duration::minutes(10);
    store
        .record_notifications(
            &[
                (claimed[0].id, Ok(()), None),
                (claimed[1].id, Err("503".into()), Some(retry_at)),
                (claimed[2].id, Err("400".into()), None),
            ],
            "w1",
            t0() + Duration::seconds(1),
        )
        .await
        .unwrap();
    let all = store.notifications(0, 10).await.unwrap();
    assert_eq!(
        all.iter().map(|n| n.state.as_str()).collect::<Vec<_>>(),
        ["sent", "pending", "failed"]
    );
    assert_eq!(all[0].sent_at, Some(t0() + Duration::seconds(1)));
    assert_eq!(
        (all[1].next_at, all[1].last_error.as_deref()),
        (retry_at, Some("503"))
    );
    assert_eq!(all[2].last_error.as_deref(), Some("400"));
    // The retry comes back when due, with its attempt counted.
    let again = store
        .claim_notifications(retry_at, "w2", retry_at + Duration::minutes(5), 10)
        .await
        .unwrap();
    assert_eq!((again.len(), again[0].attempts), (1, 2));
    // A foreign worker's record is ignored; an expired lease is claimable again.
    store
        .record_notifications(&[(again[0].id, Ok(()), None)], "w1", retry_at)
        .await
        .unwrap();
    assert_eq!(
        store.notifications(0, 10).await.unwrap()[1].state,
        "claimed"
    );
    let later = retry_at + Duration::minutes(6);
    let reclaimed = store
        .claim_notifications(later, "w3", later + Duration::minutes(5), 10)
        .await
        .unwrap();
    assert_eq!((reclaimed.len(), reclaimed[0].attempts), (1, 3));
}

async fn kv_values_are_kept_and_replaced<S: Store>(store: S) {
    assert_eq!(store.kv_get("imap:uidvalidity").await.unwrap(), None);
    store.kv_set("imap:uidvalidity", "42").await.unwrap();
    store.kv_set("imap:last_uid", "7").await.unwrap();
    store.kv_set("imap:last_uid", "9").await.unwrap();
    assert_eq!(
        store.kv_get("imap:uidvalidity").await.unwrap().as_deref(),
        Some("42")
    );
    assert_eq!(
        store.kv_get("imap:last_uid").await.unwrap().as_deref(),
        Some("9")
    );
}

async fn kv_set_if_absent_binds_a_key_once_even_under_a_race<S: Store + Clone + 'static>(store: S) {
    assert_eq!(store.kv_set_if_absent("k", "first").await.unwrap(), "first");
    assert_eq!(
        store.kv_set_if_absent("k", "second").await.unwrap(),
        "first"
    );
    assert_eq!(store.kv_get("k").await.unwrap().as_deref(), Some("first"));
    // Eight writers at once with eight values: all see the same winner.
    let racers: Vec<_> = (0..8)
        .map(|i| {
            let store = store.clone();
            tokio::spawn(async move { store.kv_set_if_absent("race", &format!("v{i}")).await })
        })
        .collect();
    let mut seen = std::collections::BTreeSet::new();
    for r in racers {
        seen.insert(r.await.unwrap().unwrap());
    }
    assert_eq!(seen.len(), 1, "{seen:?}");
    assert_eq!(store.kv_get("race").await.unwrap(), seen.into_iter().next());
}

/// A reply threads back to its email by the signed token of the Message-ID it answers (our
/// Message-IDs are `<TOKEN@domain>`), past foreign ids in References; a Message-ID whose key
/// left the keyring, or one that only looks like ours, names no delivery (there is no look-up
/// of stored ids: migration 0022/0023 dropped their index), and matching goes on to the sender.
async fn a_reply_threads_by_the_token_of_its_message_id<S: Store>(store: S) {
    use rewarm::inbound::matching::find;
    use rewarm::inbound::parse::ParsedInbound;
    use rewarm::secret::Secret;
    use rewarm::tokens::{TokenKeys, TokenKind};

    let leads = enrolled_as(&store, &["ann@a.example", "bob@b.example"]).await;
    let claimed = store
        .claim_due(t0(), "w", t0() + Duration::minutes(5), 10)
        .await
        .unwrap();
    let d = for_lead(&claimed, &leads[0]);
    let old = ("k1".to_string(), Secret::new("a".repeat(32)));
    let new = ("k2".to_string(), Secret::new("b".repeat(32)));
    let keys = TokenKeys::new(vec![new.clone(), old.clone()]).unwrap();
    let old_only = TokenKeys::new(vec![old]).unwrap();
    let ours = format!(
        "<{}@mail.example>",
        old_only.sign(TokenKind::Reply, d.id, 0)
    );
    store
        .record_outcomes(
            &[outcome(
                &d,
                Outcome::Sent {
                    message_id: ours.clone(),
                    provider_id: None,
                    next: next(1, t0() + Duration::days(30)),
                },
            )],
            "w",
            t0(),
        )
        .await
        .unwrap();
    // Bob answers a forwarded thread: the newest id is foreign, Ann's email is further back.
    let reply = |in_reply_to: &str, references: &[&str]| ParsedInbound {
        in_reply_to: vec![in_reply_to.to_string()],
        references: references.iter().map(|r| r.to_string()).collect(),
        from: Some("Bob <bob@b.example>".into()),
        ..ParsedInbound::default()
    };
    let threaded = reply("<bob-1@b.example>", &[&ours, "<bob-1@b.example>"]);
    let m = find(&store, &keys, &threaded).await.unwrap().unwrap();
    assert_eq!(
        (m.matched_by, m.lead_id, m.delivery_id),
        ("in_reply_to", leads[0].id, Some(d.id))
    );
    // Brackets and spaces do not matter.
    let bare = reply(&format!(" {} ", ours.trim_matches(['<', '>'])), &[]);
    let m = find(&store, &keys, &bare).await.unwrap().unwrap();
    assert_eq!((m.matched_by, m.delivery_id), ("in_reply_to", Some(d.id)));
    // The signing key removed from the keyring: the id is stored, yet names nothing.
    let without_old = TokenKeys::new(vec![new]).unwrap();
    let m = find(&store, &without_old, &threaded)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (m.matched_by, m.lead_id, m.delivery_id),
        ("sender", leads[1].id, None)
    );
    // A token of another kind, or an altered one, names nothing either.
    let unsubscribe = old_only.sign(TokenKind::Unsubscribe, d.id, 0);
    let mut altered = ours.clone();
    altered.replace_range(4..5, if &ours[4..5] == "A" { "B" } else { "A" });
    for id in [
        format!("<{unsubscribe}@mail.example>"),
        altered,
        "<>".into(),
    ] {
        let m = find(&store, &keys, &reply(&id, &[]))
            .await
            .unwrap()
            .unwrap();
        assert_eq!((m.matched_by, m.delivery_id), ("sender", None), "{id}");
    }
}

async fn a_delivery_is_found_by_the_providers_id<S: Store>(store: S) {
    let leads = enrolled_as(&store, &["ann@a.example", "bob@b.example"]).await;
    let claimed = store
        .claim_due(t0(), "w", t0() + Duration::minutes(5), 10)
        .await
        .unwrap();
    let (ann, bob) = (for_lead(&claimed, &leads[0]), for_lead(&claimed, &leads[1]));
    let sent = |d: &ClaimedDelivery, provider_id: Option<&str>| {
        outcome(
            d,
            Outcome::Sent {
                message_id: format!("<m{}@mail.example>", d.id),
                provider_id: provider_id.map(str::to_string),
                next: None,
            },
        )
    };
    store
        .record_outcomes(&[sent(&ann, Some("pm-7f3a")), sent(&bob, None)], "w", t0())
        .await
        .unwrap();
    let target = store
        .delivery_by_provider_id(" pm-7f3a ")
        .await
        .unwrap()
        .expect("found by the provider's id");
    assert_eq!((target.delivery_id, target.lead_id), (ann.id, leads[0].id));
    for unknown in ["pm-7F3A", "pm-7f3", "", "<m1@mail.example>"] {
        assert_eq!(
            store.delivery_by_provider_id(unknown).await.unwrap(),
            None,
            "{unknown:?}"
        );
    }
    let exported = delivery_of(&store, leads[0].id, 0).await;
    assert_eq!(exported.provider_message_id.as_deref(), Some("pm-7f3a"));
    assert_eq!(
        delivery_of(&store, leads[1].id, 0)
            .await
            .provider_message_id,
        None
    );
    let timeline = store.timeline(leads[0].id).await.unwrap();
    let sent_event = timeline
        .iter()
        .find(|e| e.kind == "sent")
        .expect("a sent event");
    assert_eq!(sent_event.detail["provider_message_id"], "pm-7f3a");
}

/// A bounce reported by a DSN and again by the provider's event changes the lead once; a batch
/// (a provider's array of events) is kept in one call, duplicates included.
async fn one_delivery_one_effect_across_channels_and_batches_in_one_call<S: Store>(store: S) {
    let leads = enrolled_as(&store, &["ann@a.example", "bob@b.example"]).await;
    let claimed = store
        .claim_due(t0(), "w", t0() + Duration::minutes(5), 10)
        .await
        .unwrap();
    let (ann_d, bob_d) = (for_lead(&claimed, &leads[0]), for_lead(&claimed, &leads[1]));
    let about = |key: &str, d: &ClaimedDelivery, class: &str| InboundRecord {
        delivery_id: Some(d.id),
        matched_by: Some("token".into()),
        ..inbound_record(key, Some(d.lead_id), class)
    };
    let hard = InboundEffect::Suppress {
        reason: SuppressionReason::HardBounce,
        evidence: serde_json::json!({"status": "5.1.1"}),
    };
    let dsn = store
        .record_inbound(&about("dsn-1", &ann_d, "hard_bounce"), &hard, t0())
        .await
        .unwrap();
    assert!(!dsn.duplicate);
    let events_before = store.timeline(leads[0].id).await.unwrap().len();
    let soft = InboundEffect::SoftBounce {
        limit: 1,
        evidence: serde_json::json!({}),
    };
    let delivered = InboundEffect::Delivered {
        detail: serde_json::json!({"provider": "sendgrid"}),
    };
    let batch = vec![
        // The provider's event for the bounce the DSN reported: kept, no second change.
        (
            about("event:sendgrid:e1", &ann_d, "hard_bounce"),
            hard.clone(),
        ),
        // Bob: delivered, then a deferral (limit 1: suppresses), then the same deferral again.
        (about("event:sendgrid:e2", &bob_d, "other"), delivered),
        (
            about("event:sendgrid:e3", &bob_d, "soft_bounce"),
            soft.clone(),
        ),
        (about("event:sendgrid:e4", &bob_d, "soft_bounce"), soft),
        (about("dsn-1", &ann_d, "hard_bounce"), hard),
    ];
    let applied = store.record_inbound_batch(&batch, t0()).await.unwrap();
    let duplicates: Vec<bool> = applied.iter().map(|a| a.duplicate).collect();
    assert_eq!(duplicates, [false, false, false, false, true]);
    assert_eq!(applied[4].inbound_id, dsn.inbound_id);
    let kept = store.inbound_messages(0, 100).await.unwrap();
    let effects = |key: &str| {
        kept.iter()
            .find(|m| m.record.dedupe_key == key)
            .unwrap_or_else(|| panic!("{key} kept"))
            .effects
            .clone()
    };
    assert_eq!(
        effects("event:sendgrid:e1")["already_applied_by"],
        dsn.inbound_id
    );
    assert_eq!(effects("event:sendgrid:e2")["effect"], "delivered");
    assert_eq!(effects("event:sendgrid:e3")["effect"], "soft_bounce");
    assert_eq!(
        effects("event:sendgrid:e4")["already_applied_by"],
        applied[2].inbound_id
    );
    assert_eq!(
        store.timeline(leads[0].id).await.unwrap().len(),
        events_before
    );
    let bob = store.timeline(leads[1].id).await.unwrap();
    let kinds: Vec<&str> = bob.iter().map(|e| e.kind.as_str()).collect();
    assert_eq!(
        kinds.iter().filter(|k| **k == "delivered").count(),
        1,
        "{kinds:?}"
    );
    assert_eq!(
        kinds.iter().filter(|k| **k == "soft_bounce").count(),
        1,
        "{kinds:?}"
    );
    assert_eq!(lead_state(&store, leads[1].id).await, LeadState::Suppressed);
    assert_eq!(store.suppressions().await.unwrap().len(), 2);
    assert!(
        store
            .record_inbound_batch(&[], t0())
            .await
            .unwrap()
            .is_empty()
    );
}

async fn a_recycled_lead_resumes_its_cadence_after_the_wait<S: Store>(store: S) {
    let leads = enrolled_as(&store, &["ann@a.example", "bob@b.example"]).await;
    let ann = &leads[0];
    // Not re-warmed: nothing to recycle.
    assert_eq!(store.recycle(ann.id, "no", t0(), t0()).await.unwrap(), None);
    store
        .record_inbound(
            &inbound_record("k1", Some(ann.id), "human_reply"),
            &rewarm_effect(ann.id, "n1"),
            t0(),
        )
        .await
        .unwrap();
    let resume = t0() + Duration::days(90);
    assert_eq!(
        store
            .recycle(
                ann.id,
                "not now, try in Q3",
                resume,
                t0() + Duration::hours(1)
            )
            .await
            .unwrap(),
        Some(LeadState::Nurturing)
    );
    assert_eq!(lead_state(&store, ann.id).await, LeadState::Nurturing);
    let d = delivery_of(&store, ann.id, 0).await;
    assert_eq!((d.state.as_str(), d.due_at), ("scheduled", resume));
    assert_eq!(enrolment_states(&store).await[&ann.id], "active");
    let e = last_event(&store, ann.id).await;
    assert_eq!(e.kind, "recycled");
    assert_eq!(e.detail["reason"], "not now, try in Q3");
    assert_eq!(e.detail["from"], "rewarmed");
    // History intact: the reply is still on the timeline.
    assert!(kinds(&store, ann.id).await.contains(&"replied".to_string()));
    // Not claimable before the wait; claimable after.
    assert!(
        store
            .claim_due(t0() + Duration::days(1), "w", t0() + Duration::days(2), 10)
            .await
            .unwrap()
            .iter()
            .all(|c| c.lead_id != ann.id)
    );
    assert!(
        store
            .claim_due(resume, "w", resume + Duration::minutes(5), 10)
            .await
            .unwrap()
            .iter()
            .any(|c| c.lead_id == ann.id)
    );
    // No longer listed as re-warmed; a lead never enrolled goes back to new.
    assert!(
        store
            .leads_rewarmed(t0() - Duration::days(1), None)
            .await
            .unwrap()
            .is_empty()
    );
    store
        .upsert_leads(&[lead("carl@c.example")], "test", t0())
        .await
        .unwrap();
    let carl = store
        .lead_by_email(&email("carl@c.example"))
        .await
        .unwrap()
        .unwrap();
    assert!(
        store
            .engage(&click_points(carl.id, 10, 5), &[], t0())
            .await
            .unwrap()
    );
    assert_eq!(
        store.recycle(carl.id, "r", t0(), t0()).await.unwrap(),
        Some(LeadState::New)
    );
    assert_eq!(store.score(carl.id).await.unwrap(), 0);
}

// ── db copy across backends ─────────────────────────────────────────────────────────────

/// Every exported row of every table.
async fn dump<S: Store>(store: &S) -> Vec<Rows> {
    let mut out = Vec::new();
    for table in Table::ALL {
        out.push(store.export_rows(table, 0, 1_000_000).await.unwrap());
    }
    out
}

/// Some of everything: merged leads, enrolments, every delivery state, events, the
/// suppression list, a secret, inbound mail, the outbox in every state and kv values.
async fn busy_state<S: Store>(store: &S) {
    let leads = enrolled(store, 8, t0() - Duration::minutes(1)).await;
    let mut ann = lead("ann@example.com");
    ann.tags = vec!["vip".into()];
    ann.fields.insert("plan".into(), "pro".into());
    ann.timezone = Some(chrono_tz::Tz::America__New_York);
    store.upsert_leads(&[ann], "crm.csv", t0()).await.unwrap();
    // Ann matches no segment (the mark `db copy` keeps, with her import hash).
    let ann = store
        .lead_by_email(&email("ann@example.com"))
        .await
        .unwrap()
        .expect("ann");
    store
        .mark_unmatched(&[rewarm::store::UnmatchedLead {
            lead_id: ann.id,
            until: Some(t0() + Duration::days(90)),
            seen: ann.updated_at,
        }])
        .await
        .unwrap();
    let claimed = store
        .claim_due(t0(), "w1", t0() + Duration::minutes(5), 6)
        .await
        .unwrap();
    let outcomes: Vec<RecordedOutcome> = claimed
        .iter()
        .enumerate()
        .map(|(i, d)| {
            outcome(
                d,
                match i {
                    0 => Outcome::Sent {
                        message_id: "m@x".into(),
                        provider_id: None,
                        next: next(1, t0() + Duration::days(30)),
                    },
                    1 => Outcome::Retry {
                        due_at: t0() + Duration::minutes(5),
                        error: "451".into(),
                    },
                    2 => Outcome::Deferred {
                        due_at: t0() + Duration::hours(3),
                        reason: rewarm::store::DeferReason::SendWindow,
                    },
                    3 => Outcome::Failed {
                        error: "550".into(),
                        next: None,
                        suppress: true,
                    },
                    _ => Outcome::Sent {
                        message_id: format!("m{i}@x"),
                        provider_id: None,
                        next: None,
                    },
                },
            )
        })
        .collect();
    store.record_outcomes(&outcomes, "w1", t0()).await.unwrap();
    // The suppression list and a stored secret move with the rest.
    store
        .suppress(
            &[
                entry(
                    "@blocked.example",
                    SuppressionReason::Complaint,
                    "abuse desk",
                ),
                entry(
                    "gone@else.example",
                    SuppressionReason::Unsubscribed,
                    "token",
                ),
            ],
            t0(),
        )
        .await
        .unwrap();
    store
        .secret("unsubscribe-key", || "k3y".into())
        .await
        .unwrap();
    // Two claims stay out, one of them expires.
    let out = store
        .claim_due(
            t0() + Duration::minutes(1),
            "w2",
            t0() + Duration::minutes(2),
            2,
        )
        .await
        .unwrap();
    started(store, &out, "w2").await;
    assert_eq!(
        store
            .expire_leases(t0() + Duration::minutes(3))
            .await
            .unwrap()
            .written_off,
        2
    );
    assert_eq!(leads.len(), 8);

    // The inbound side: the outbox in every state (sent, pending for a retry, claimed under
    // a live lease, failed)…
    let later = t0() + Duration::minutes(4);
    let sent = deliveries(store)
        .await
        .into_iter()
        .find(|d| d.state == "sent")
        .expect("a sent delivery");
    let batch = ["n-sent", "n-retry", "n-claimed", "n-failed"].map(|k| note(sent.lead_id, k));
    assert_eq!(store.enqueue_notifications(&batch, later).await.unwrap(), 4);
    let claimed = store
        .claim_notifications(later, "w1", later + Duration::minutes(5), 10)
        .await
        .unwrap();
    assert_eq!(claimed.len(), 4);
    store
        .record_notifications(
            &[
                (claimed[0].id, Ok(()), None),
                (
                    claimed[1].id,
                    Err("503".into()),
                    Some(later + Duration::minutes(10)),
                ),
                (claimed[3].id, Err("400".into()), None),
            ],
            "w1",
            later,
        )
        .await
        .unwrap();
    // …a reply matched to its delivery (re-warms the lead; its notification stays pending)…
    let mut reply = inbound_record("reply-1", Some(sent.lead_id), "human_reply");
    reply.delivery_id = Some(sent.id);
    reply.matched_by = Some("in_reply_to".into());
    reply.received_at = later;
    store
        .record_inbound(
            &reply,
            &rewarm_effect(sent.lead_id, "rewarmed:reply-1:webhook"),
            later,
        )
        .await
        .unwrap();
    // …unmatched mail whose raw bytes are not UTF-8, and an empty message…
    let mut stray = inbound_record("stray-1", None, "other");
    stray.raw = vec![0x00, 0xff, 0xfe, b'\r', b'\n', 0x80, b'\\', b'x'];
    stray.text = None;
    store
        .record_inbound(&stray, &InboundEffect::None, later)
        .await
        .unwrap();
    let mut empty = inbound_record("empty-1", None, "other");
    (
        empty.raw,
        empty.message_id,
        empty.from_address,
        empty.subject,
        empty.text,
    ) = (Vec::new(), None, None, None, None);
    store
        .record_inbound(&empty, &InboundEffect::None, later)
        .await
        .unwrap();
    // …the campaign versions the daemon applied…
    store
        .record_version(
            "checkin",
            "0123456789ab",
            &serde_json::json!({"first_after": "90d", "every": "30d", "max_touches": 6}),
            later,
        )
        .await
        .unwrap();
    // …and the daemon's small named values (the IMAP position, the digest's last run).
    for (key, value) in [
        ("imap:imap.example:INBOX:uidvalidity", "1700000000"),
        ("imap:imap.example:INBOX:last_uid", "41"),
        ("imap:imap.example:INBOX:last_uid", "42"),
        ("notify:digest:last_run", "2026-03-02T08:00:00+00:00"),
    ] {
        store.kv_set(key, value).await.unwrap();
    }
    // A forgotten address (`leads forget`): only its keyed hash is kept.
    let gone = rewarm::domain::email::EmailAddress::parse("gone@example.com").unwrap();
    rewarm::store::PrivacyStore::forget(store, &gone, "0123abcd", "test", t0())
        .await
        .unwrap();
    // A campaign definition the daemon applied (`rewarm plan`, campaign edits).
    rewarm::store::EditStore::record_version(
        store,
        "checkin",
        "0123456789ab",
        &serde_json::json!({"max_touches": 3}),
        t0(),
    )
    .await
    .unwrap();
    // A console user and an action of theirs (`rewarm console invite`).
    rewarm::store::ConsoleStore::put_console_user(store, "ada@acme.example", "admin", "cli", t0())
        .await
        .unwrap();
    rewarm::store::ConsoleStore::log_console_event(
        store,
        "ada@acme.example",
        "invited",
        &serde_json::json!({"email": "bob@acme.example"}),
        t0(),
    )
    .await
    .unwrap();
}

async fn copy_round_trip_keeps_every_row<A: Store, B: Store>(a: A, b: B, a_again: A) {
    busy_state(&a).await;
    let counts = a.table_counts().await.unwrap();
    assert_eq!(counts.len(), Table::ALL.len());
    assert!(
        counts.values().all(|n| *n > 0),
        "some of everything: {counts:?}"
    );
    let outcome = rewarm::cli::db::copy(&a, &b, false, false)
        .await
        .expect("copy a → b");
    assert!(outcome.matches(), "{outcome:?}");
    assert_eq!(
        outcome.copied,
        counts
            .iter()
            .map(|(t, n)| (*t, *n as usize))
            .collect::<BTreeMap<_, _>>()
    );
    assert_eq!(
        dump(&a).await,
        dump(&b).await,
        "every row, column and id survives the copy"
    );
    // …the marks the scheduler and imports keep on a lead included (not re-derived later).
    let Rows::Leads(leads) = &dump(&b).await[0] else {
        panic!("leads come first")
    };
    let ann = leads
        .iter()
        .find(|l| l.email == "ann@example.com")
        .expect("ann copied");
    assert!(
        ann.unmatched_until.is_some() && ann.import_hash.is_some(),
        "{ann:?}"
    );
    // What the daemon reads back is the same too: raw bytes, effects, leases, kv values.
    assert_eq!(
        a.inbound_messages(0, 100).await.unwrap(),
        b.inbound_messages(0, 100).await.unwrap()
    );
    let outbox = b.notifications(0, 100).await.unwrap();
    assert_eq!(a.notifications(0, 100).await.unwrap(), outbox);
    assert_eq!(
        outbox.iter().map(|n| n.state.as_str()).collect::<Vec<_>>(),
        ["sent", "pending", "claimed", "failed", "pending"]
    );
    assert_eq!(
        b.kv_get("imap:imap.example:INBOX:last_uid")
            .await
            .unwrap()
            .as_deref(),
        Some("42")
    );
    // The copied lease is honoured: only the pending notifications are claimable.
    let due = t0() + Duration::minutes(4);
    let claimable = b
        .claim_notifications(due, "w9", due + Duration::minutes(1), 10)
        .await
        .unwrap();
    assert_eq!(
        claimable
            .iter()
            .map(|n| n.idempotency_key.as_str())
            .collect::<Vec<_>>(),
        ["rewarmed:reply-1:webhook"]
    );
    // Refuses a non-empty target…
    let refused = rewarm::cli::db::copy(&a, &b, false, false)
        .await
        .expect_err("non-empty target");
    assert!(refused.to_string().contains("not empty"), "{refused}");
    // …unless forced, which replaces its contents.
    let outcome = rewarm::cli::db::copy(&a, &b, true, false)
        .await
        .expect("forced copy");
    assert!(outcome.matches());
    assert_eq!(dump(&a).await, dump(&b).await);
    // And back: the same rows again.
    rewarm::cli::db::copy(&b, &a_again, false, false)
        .await
        .expect("copy b → a");
    assert_eq!(dump(&a).await, dump(&a_again).await);
    // New rows in the copy get fresh ids after the copied ones (sequences advanced).
    let before = dump(&b).await;
    let max_lead = before[0].last_id().unwrap_or(0);
    store_one_more(&b).await;
    let added = b
        .lead_by_email(&email("after-copy@example.com"))
        .await
        .unwrap()
        .expect("new lead");
    assert!(
        added.id > max_lead,
        "new id {} after copied max {max_lead}",
        added.id
    );
    let events = b.timeline(added.id).await.unwrap();
    assert_eq!(events.len(), 1);
    let after = dump(&b).await;
    for (table, (was, now)) in Table::ALL.iter().zip(before.iter().zip(&after)) {
        if matches!(
            table,
            Table::Inbound | Table::Notifications | Table::KvState
        ) {
            assert_eq!(now.len(), was.len() + 1, "{table}: one row more");
            assert!(
                now.last_id() > was.last_id(),
                "{table}: new id {:?} after copied max {:?}",
                now.last_id(),
                was.last_id()
            );
        }
    }
}

async fn store_one_more<S: Store>(store: &S) {
    store
        .upsert_leads(&[lead("after-copy@example.com")], "later.csv", t0())
        .await
        .unwrap();
    store
        .record_inbound(
            &inbound_record("after-copy", None, "other"),
            &InboundEffect::None,
            t0(),
        )
        .await
        .unwrap();
    store
        .enqueue_notifications(&[note(1, "after-copy")], t0())
        .await
        .unwrap();
    store.kv_set("after-copy", "1").await.unwrap();
}

/// A migrated SQLite store, and the file it lives in (removed when dropped).
async fn sqlite_store() -> (SqliteStore, TestDatabase) {
    let db = TestDatabase::sqlite();
    let store = SqliteStore::connect(db.url()).await.expect("open SQLite");
    store.migrate().await.expect("migrate SQLite");
    (store, db)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn db_copy_sqlite_to_sqlite_keeps_every_row() {
    let (a, _da) = sqlite_store().await;
    let (b, _db) = sqlite_store().await;
    let (c, _dc) = sqlite_store().await;
    copy_round_trip_keeps_every_row(a, b, c).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn db_copy_sqlite_to_postgres_and_back_keeps_every_row() {
    let Some(db) =
        TestDatabase::postgres("db_copy_sqlite_to_postgres_and_back_keeps_every_row").await
    else {
        return;
    };
    let (a, _da) = sqlite_store().await;
    let (c, _dc) = sqlite_store().await;
    let b = PgStore::connect(db.url()).await.expect("postgres");
    let result = AssertUnwindSafe(copy_round_trip_keeps_every_row(a, b.clone(), c))
        .catch_unwind()
        .await;
    b.close().await;
    db.drop_database().await;
    if let Err(panic) = result {
        std::panic::resume_unwind(panic);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn migrations_run_once_when_several_daemons_start_at_once() {
    let Some(db) =
        TestDatabase::postgres("migrations_run_once_when_several_daemons_start_at_once").await
    else {
        return;
    };
    let result = AssertUnwindSafe(async {
        let stores = futures::future::join_all((0..4).map(|_| PgStore::connect(db.url()))).await;
        let stores: Vec<PgStore> = stores.into_iter().map(|s| s.expect("connect")).collect();
        let results = futures::future::join_all(stores.iter().map(|s| s.migrate())).await;
        for r in results {
            r.expect("every concurrent migrate succeeds");
        }
        let applied: i64 = sqlx::query_scalar("SELECT count(*) FROM _sqlx_migrations")
            .fetch_one(stores[0].pool())
            .await
            .expect("count");
        // Every migration file, each once (whatever their number: helpers add their own).
        let files = std::fs::read_dir("migrations/postgres")
            .expect("the migrations folder")
            .filter(|e| {
                e.as_ref()
                    .is_ok_and(|e| e.path().extension().is_some_and(|x| x == "sql"))
            })
            .count() as i64;
        assert_eq!(applied, files, "each migration once");
        for s in &stores {
            s.close().await;
        }
    })
    .catch_unwind()
    .await;
    db.drop_database().await;
    if let Err(panic) = result {
        std::panic::resume_unwind(panic);
    }
}

// ── Waves: only what was on the wire can be unknown ─────────────────────────────────────

async fn a_claim_never_started_goes_back_to_due_when_its_lease_expires<S: Store>(store: S) {
    let leads = enrolled(&store, 3, t0() - Duration::minutes(1)).await;
    let lease = t0() + Duration::minutes(5);
    let claimed = store.claim_due(t0(), "w", lease, 10).await.unwrap();
    assert_eq!(claimed.len(), 3);
    let on_wire = for_lead(&claimed, &leads[0]);
    started(&store, std::slice::from_ref(&on_wire), "w").await;
    let after = lease + Duration::seconds(1);
    assert_eq!(
        store.expire_leases(after).await.unwrap(),
        Expired {
            written_off: 1,
            released: 2
        }
    );
    let written_off = delivery_of(&store, leads[0].id, 0).await;
    assert_eq!(
        (written_off.state.as_str(), written_off.started_at),
        ("unknown", Some(t0()))
    );
    assert_eq!(
        kinds(&store, leads[0].id).await,
        ["imported", "enrolled", "written_off"]
    );
    for lead in &leads[1..] {
        let row = delivery_of(&store, lead.id, 0).await;
        assert_eq!(
            (
                row.state.as_str(),
                row.attempts,
                row.claimed_by.as_deref(),
                row.started_at
            ),
            ("scheduled", 0, None, None),
            "released, the attempt not counted"
        );
        assert_eq!(kinds(&store, lead.id).await, ["imported", "enrolled"]);
    }
    // Released rows are due again (sent later, once); the written-off one never is.
    let again = store
        .claim_due(after, "w2", after + Duration::minutes(5), 10)
        .await
        .unwrap();
    let mut ids: Vec<i64> = again.iter().map(|d| d.lead_id).collect();
    ids.sort();
    assert_eq!(ids, [leads[1].id, leads[2].id]);
    assert!(again.iter().all(|d| d.attempts == 1));
    // `status` lists the write-off with its moment.
    let unknown = store.unknown_deliveries(10).await.unwrap();
    assert_eq!(unknown.len(), 1);
    assert_eq!(
        (unknown[0].lead_id, unknown[0].step, unknown[0].at),
        (leads[0].id, 1, after)
    );
}

async fn a_worker_releases_its_claims_never_started_and_only_those<S: Store>(store: S) {
    let leads = enrolled(&store, 4, t0() - Duration::minutes(1)).await;
    let lease = t0() + Duration::minutes(10);
    let mine = store.claim_due(t0(), "w1", lease, 3).await.unwrap();
    let theirs = store.claim_due(t0(), "w2", lease, 3).await.unwrap();
    assert_eq!((mine.len(), theirs.len()), (3, 1));
    started(&store, &mine[..1], "w1").await;
    assert_eq!(store.release_unstarted("w1", t0()).await.unwrap(), 2);
    assert_eq!(store.release_unstarted("w1", t0()).await.unwrap(), 0);
    let states: BTreeMap<i64, String> = deliveries(&store)
        .await
        .into_iter()
        .map(|d| (d.id, d.state))
        .collect();
    assert_eq!(states[&mine[0].id], "claimed", "started: still on the wire");
    assert_eq!(states[&mine[1].id], "scheduled");
    assert_eq!(states[&mine[2].id], "scheduled");
    assert_eq!(states[&theirs[0].id], "claimed", "another worker's claim");
    assert_eq!(leads.len(), 4);
}

async fn only_the_claiming_worker_marks_a_delivery_started_and_only_once<S: Store>(store: S) {
    enrolled(&store, 2, t0() - Duration::minutes(1)).await;
    let claimed = store
        .claim_due(t0(), "w1", t0() + Duration::minutes(5), 10)
        .await
        .unwrap();
    let mut ids: Vec<i64> = claimed.iter().map(|d| d.id).collect();
    ids.sort();
    assert!(
        store
            .mark_started(&ids, "w2", t0())
            .await
            .unwrap()
            .is_empty()
    );
    let mut marked = store.mark_started(&ids, "w1", t0()).await.unwrap();
    marked.sort();
    assert_eq!(marked, ids);
    // The same wave marked again (its reply was lost) is returned again…
    assert_eq!(store.mark_started(&ids, "w1", t0()).await.unwrap().len(), 2);
    // …but another wave cannot start a row already started.
    let later = t0() + Duration::seconds(1);
    assert!(
        store
            .mark_started(&ids, "w1", later)
            .await
            .unwrap()
            .is_empty()
    );
    assert!(
        store
            .mark_started(&[], "w1", later)
            .await
            .unwrap()
            .is_empty()
    );
}
