//! The lifecycle part of the store contract (won, out of scope, working, pause/resume,
//! re-check, campaign rounds), run on SQLite and PostgreSQL like `store.rs`.

use std::future::Future;
use std::panic::AssertUnwindSafe;

use chrono::{DateTime, Duration, Utc};
use futures::FutureExt as _;
use rewarm::domain::email::EmailAddress;
use rewarm::domain::lead::{Lead, LeadState, NewLead};
use rewarm::domain::lifecycle::Transition;
use rewarm::store::postgres::PgStore;
use rewarm::store::{
    DeliveryRecord, LifecycleChange, NewEnrolment, NewNotification, Outcome, RecordedOutcome, Rows,
    Store, Table,
};

use crate::support::db::TestDatabase;

macro_rules! lifecycle_tests {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let db = crate::support::db::TestDatabase::sqlite();
                    let store = rewarm::store::sqlite::SqliteStore::connect(db.url()).await.expect("open SQLite");
                    super::on(store, super::$name).await;
                    crate::support::counts::assert_exact(db.url()).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::on_postgres(stringify!($name), super::$name).await;
                }
            )*
        }
    };
}

lifecycle_tests!(
    won_stops_everything_and_a_second_won_changes_nothing,
    out_of_scope_keeps_its_reason_and_the_recheck_returns_the_lead_to_nurture,
    pause_holds_scheduled_emails_and_resume_sends_them,
    working_hands_a_nurturing_lead_to_sales,
    refused_transitions_write_nothing,
    a_transition_enqueues_its_notifications_in_the_same_write,
    a_completed_lead_enters_its_next_campaign_and_new_rounds_of_the_same_one,
);

async fn on<S: Store, F, Fut>(store: S, test: F)
where
    F: FnOnce(S) -> Fut,
    Fut: Future<Output = ()>,
{
    store.migrate().await.expect("migrate");
    test(store).await;
}

async fn on_postgres<F, Fut>(test: &str, body: F)
where
    F: FnOnce(PgStore) -> Fut,
    Fut: Future<Output = ()>,
{
    let Some(db) = TestDatabase::postgres(test).await else {
        return;
    };
    let store = PgStore::connect(db.url()).await.expect("connect");
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

fn t(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s)
        .expect("RFC 3339 time")
        .with_timezone(&Utc)
}

fn t0() -> DateTime<Utc> {
    t("2026-03-03T09:00:00Z")
}

/// One lead `address`, enrolled in campaign `c` with step 0 due a day after `t0`.
async fn enrolled<S: Store>(store: &S, address: &str) -> Lead {
    let new = NewLead {
        email: Some(EmailAddress::parse(address).expect("email")),
        first_name: Some("Ann".into()),
        owner_email: Some(EmailAddress::parse("rep@seller.example").expect("email")),
        ..Default::default()
    };
    store
        .upsert_leads(&[new], "test", t0() - Duration::days(1))
        .await
        .expect("upsert");
    let lead = store
        .lead_by_email(&EmailAddress::parse(address).expect("email"))
        .await
        .expect("read")
        .expect("lead");
    let enrolment = NewEnrolment {
        lead_id: lead.id,
        campaign: "c".into(),
        segment: "all".into(),
        first_due: t0() + Duration::days(1),
        template: "first".into(),
    };
    assert_eq!(store.enrol(&[enrolment], t0()).await.expect("enrol"), 1);
    lead
}

async fn deliveries<S: Store>(store: &S, lead_id: i64) -> Vec<DeliveryRecord> {
    match store
        .export_rows(Table::Deliveries, 0, 1_000_000)
        .await
        .expect("export")
    {
        Rows::Deliveries(rows) => rows.into_iter().filter(|d| d.lead_id == lead_id).collect(),
        other => panic!("asked for deliveries, got {:?}", other.table()),
    }
}

async fn state<S: Store>(store: &S, id: i64) -> LeadState {
    store.leads_by_ids(&[id]).await.expect("lead")[0].state
}

async fn last_event<S: Store>(store: &S, id: i64) -> rewarm::store::Event {
    store
        .timeline(id)
        .await
        .expect("timeline")
        .pop()
        .expect("an event")
}

async fn claimed_leads<S: Store>(store: &S, at: DateTime<Utc>) -> Vec<i64> {
    store
        .claim_due(at, "w", at + Duration::minutes(5), 100)
        .await
        .expect("claim")
        .into_iter()
        .map(|c| c.lead_id)
        .collect()
}

// ── The contract ────────────────────────────────────────────────────────────────────────

async fn won_stops_everything_and_a_second_won_changes_nothing<S: Store>(store: S) {
    let ann = enrolled(&store, "ann@a.example").await;
    let change = store
        .set_lifecycle(ann.id, &Transition::Won, "rep@seller.example", &[], t0())
        .await
        .unwrap();
    assert_eq!(
        change,
        LifecycleChange::Applied {
            from: LeadState::Nurturing,
            to: LeadState::Won
        }
    );
    assert_eq!(state(&store, ann.id).await, LeadState::Won);
    let d = deliveries(&store, ann.id).await;
    assert_eq!(d.len(), 1);
    assert_eq!(d[0].state, "cancelled");
    assert!(
        claimed_leads(&store, t0() + Duration::days(30))
            .await
            .is_empty()
    );
    let e = last_event(&store, ann.id).await;
    assert_eq!(e.kind, "won");
    assert_eq!(e.detail["from"], "nurturing");
    assert_eq!(e.detail["by"], "rep@seller.example");
    let events = store.timeline(ann.id).await.unwrap().len();
    assert_eq!(
        store
            .set_lifecycle(ann.id, &Transition::Won, "cli", &[], t0())
            .await
            .unwrap(),
        LifecycleChange::Already {
            state: LeadState::Won
        }
    );
    assert_eq!(store.timeline(ann.id).await.unwrap().len(), events);
    // A won lead is not recycled by the re-check nor listed as due.
    assert!(
        store
            .recheck_due(t0() + Duration::days(999), 10)
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        store
            .set_lifecycle(999_999, &Transition::Won, "cli", &[], t0())
            .await
            .unwrap(),
        LifecycleChange::NoSuchLead
    );
}

async fn out_of_scope_keeps_its_reason_and_the_recheck_returns_the_lead_to_nurture<S: Store>(
    store: S,
) {
    let ann = enrolled(&store, "ann@a.example").await;
    let recheck = t0() + Duration::days(365);
    let oos = Transition::OutOfScope {
        reason: "chose another vendor".into(),
        recheck_at: Some(recheck),
    };
    assert!(matches!(
        store
            .set_lifecycle(ann.id, &oos, "cli", &[], t0())
            .await
            .unwrap(),
        LifecycleChange::Applied {
            to: LeadState::OutOfScope,
            ..
        }
    ));
    let held = store.lead_lifecycle(ann.id).await.unwrap().unwrap();
    assert_eq!(held.scope_reason.as_deref(), Some("chose another vendor"));
    assert_eq!(held.recheck_at, Some(recheck));
    let e = last_event(&store, ann.id).await;
    assert_eq!(e.kind, "out_of_scope");
    assert_eq!(e.detail["reason"], "chose another vendor");
    assert_eq!(deliveries(&store, ann.id).await[0].state, "cancelled");
    assert!(
        claimed_leads(&store, t0() + Duration::days(2))
            .await
            .is_empty()
    );
    // Not due before the date; due at it.
    assert!(
        store
            .recheck_due(recheck - Duration::seconds(1), 10)
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(store.recheck_due(recheck, 10).await.unwrap(), vec![ann.id]);
    // The daemon's re-check: recycled, reason `recheck`; the cadence resumes, not before now.
    assert_eq!(
        store
            .recycle(ann.id, "recheck", recheck, recheck)
            .await
            .unwrap(),
        Some(LeadState::Nurturing)
    );
    let e = last_event(&store, ann.id).await;
    assert_eq!(
        (e.kind.as_str(), e.detail["reason"].as_str()),
        ("recycled", Some("recheck"))
    );
    assert_eq!(e.detail["from"], "out_of_scope");
    assert_eq!(
        store.lead_lifecycle(ann.id).await.unwrap().unwrap(),
        Default::default()
    );
    assert!(store.recheck_due(recheck, 10).await.unwrap().is_empty());
    let d = &deliveries(&store, ann.id).await[0];
    assert_eq!((d.state.as_str(), d.due_at), ("scheduled", recheck));
    assert_eq!(claimed_leads(&store, recheck).await, vec![ann.id]);
}

async fn pause_holds_scheduled_emails_and_resume_sends_them<S: Store>(store: S) {
    let ann = enrolled(&store, "ann@a.example").await;
    let bob = enrolled(&store, "bob@b.example").await;
    assert_eq!(
        store
            .set_lifecycle(ann.id, &Transition::Pause, "cli", &[], t0())
            .await
            .unwrap(),
        LifecycleChange::Applied {
            from: LeadState::Nurturing,
            to: LeadState::Paused
        }
    );
    assert_eq!(
        store
            .lead_lifecycle(ann.id)
            .await
            .unwrap()
            .unwrap()
            .paused_from,
        Some(LeadState::Nurturing)
    );
    // Held, not dropped: `held` (no claim reads it) and back to `scheduled` on resume.
    assert_eq!(deliveries(&store, ann.id).await[0].state, "held");
    let later = t0() + Duration::days(3);
    assert_eq!(claimed_leads(&store, later).await, vec![bob.id]);
    assert_eq!(
        store
            .set_lifecycle(ann.id, &Transition::Pause, "cli", &[], later)
            .await
            .unwrap(),
        LifecycleChange::Already {
            state: LeadState::Paused
        }
    );
    assert_eq!(
        store
            .set_lifecycle(ann.id, &Transition::Resume, "cli", &[], later)
            .await
            .unwrap(),
        LifecycleChange::Applied {
            from: LeadState::Paused,
            to: LeadState::Nurturing
        }
    );
    assert_eq!(last_event(&store, ann.id).await.kind, "resumed");
    assert_eq!(
        store
            .lead_lifecycle(ann.id)
            .await
            .unwrap()
            .unwrap()
            .paused_from,
        None
    );
    assert_eq!(deliveries(&store, ann.id).await[0].state, "scheduled");
    assert_eq!(claimed_leads(&store, later).await, vec![ann.id]);
}

async fn working_hands_a_nurturing_lead_to_sales<S: Store>(store: S) {
    let ann = enrolled(&store, "ann@a.example").await;
    assert_eq!(
        store
            .set_lifecycle(
                ann.id,
                &Transition::Working,
                "rep@seller.example",
                &[],
                t0()
            )
            .await
            .unwrap(),
        LifecycleChange::Applied {
            from: LeadState::Nurturing,
            to: LeadState::Rewarmed
        }
    );
    assert_eq!(deliveries(&store, ann.id).await[0].state, "cancelled");
    // Again (sales confirms): an event, no change of state.
    assert_eq!(
        store
            .set_lifecycle(
                ann.id,
                &Transition::Working,
                "rep@seller.example",
                &[],
                t0()
            )
            .await
            .unwrap(),
        LifecycleChange::Applied {
            from: LeadState::Rewarmed,
            to: LeadState::Rewarmed
        }
    );
    let kinds: Vec<String> = store
        .timeline(ann.id)
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.kind)
        .collect();
    assert_eq!(kinds.iter().filter(|k| *k == "working").count(), 2);
    // Recycling resumes the cadence it stopped.
    assert_eq!(
        store.recycle(ann.id, "not now", t0(), t0()).await.unwrap(),
        Some(LeadState::Nurturing)
    );
}

async fn refused_transitions_write_nothing<S: Store>(store: S) {
    let ann = enrolled(&store, "ann@a.example").await;
    store
        .set_lifecycle(ann.id, &Transition::Won, "cli", &[], t0())
        .await
        .unwrap();
    let before = store.timeline(ann.id).await.unwrap().len();
    for t in [
        Transition::Working,
        Transition::Pause,
        Transition::Resume,
        Transition::OutOfScope {
            reason: "x".into(),
            recheck_at: None,
        },
    ] {
        assert!(
            matches!(
                store
                    .set_lifecycle(ann.id, &t, "cli", &[], t0())
                    .await
                    .unwrap(),
                LifecycleChange::Refused {
                    from: LeadState::Won,
                    ..
                }
            ),
            "{t:?}"
        );
    }
    assert_eq!(store.timeline(ann.id).await.unwrap().len(), before);
    assert_eq!(state(&store, ann.id).await, LeadState::Won);
}

async fn a_transition_enqueues_its_notifications_in_the_same_write<S: Store>(store: S) {
    let ann = enrolled(&store, "ann@a.example").await;
    let note = NewNotification {
        kind: "webhook".into(),
        lead_id: Some(ann.id),
        idempotency_key: "lifecycle:test:won".into(),
        payload: serde_json::json!({"version": 1, "event": "lead.won"}),
    };
    store
        .set_lifecycle(
            ann.id,
            &Transition::Won,
            "cli",
            std::slice::from_ref(&note),
            t0(),
        )
        .await
        .unwrap();
    // Refused: nothing enqueued.
    let refused = NewNotification {
        idempotency_key: "lifecycle:test:pause".into(),
        ..note.clone()
    };
    store
        .set_lifecycle(ann.id, &Transition::Pause, "cli", &[refused], t0())
        .await
        .unwrap();
    let keys: Vec<String> = store
        .notifications(0, 10)
        .await
        .unwrap()
        .into_iter()
        .map(|n| n.idempotency_key)
        .collect();
    assert_eq!(keys, ["lifecycle:test:won"]);
}

/// Sends the lead's due delivery at `at` as its campaign's last step.
async fn send_last<S: Store>(store: &S, lead_id: i64, at: DateTime<Utc>) {
    let claimed = store
        .claim_due(at, "w", at + Duration::minutes(5), 10)
        .await
        .unwrap();
    let d = claimed
        .into_iter()
        .find(|c| c.lead_id == lead_id)
        .expect("the lead's delivery is due");
    let outcome = RecordedOutcome {
        delivery: d,
        outcome: Outcome::Sent {
            message_id: format!("<m{}@test>", at.timestamp()),
            provider_id: None,
            next: None,
        },
    };
    store.record_outcomes(&[outcome], "w", at).await.unwrap();
}

fn entry(lead_id: i64, campaign: &str, due: DateTime<Utc>) -> NewEnrolment {
    NewEnrolment {
        lead_id,
        campaign: campaign.into(),
        segment: "all".into(),
        first_due: due,
        template: "t".into(),
    }
}

async fn a_completed_lead_enters_its_next_campaign_and_new_rounds_of_the_same_one<S: Store>(
    store: S,
) {
    let ann = enrolled(&store, "ann@a.example").await;
    let t1 = t0() + Duration::days(1);
    send_last(&store, ann.id, t1).await;
    assert_eq!(state(&store, ann.id).await, LeadState::Completed);
    assert_eq!(
        store.completed_in("c", 10).await.unwrap(),
        vec![(ann.id, "all".to_string())]
    );
    // Not from a state it is not in.
    assert!(
        store
            .enter_campaign(
                &[entry(ann.id, "evergreen", t1)],
                &[LeadState::Won],
                "then:c",
                None,
                t1
            )
            .await
            .unwrap()
            .is_empty()
    );
    let due = t1 + Duration::days(90);
    let entered = store
        .enter_campaign(
            &[entry(ann.id, "evergreen", due)],
            &[LeadState::Completed],
            "then:c",
            None,
            t1,
        )
        .await
        .unwrap();
    assert_eq!(entered, vec![ann.id]);
    assert_eq!(state(&store, ann.id).await, LeadState::Nurturing);
    assert!(store.completed_in("c", 10).await.unwrap().is_empty());
    let e = last_event(&store, ann.id).await;
    assert_eq!(
        (e.kind.as_str(), e.detail["via"].as_str()),
        ("enrolled", Some("then:c"))
    );
    assert_eq!(e.detail["cycle"], 0);
    // Round after round of the same campaign: steps start at 0 again, one per round.
    for round in 1..=2_i64 {
        let at = due + Duration::days(100 * round);
        send_last(&store, ann.id, at).await;
        assert_eq!(state(&store, ann.id).await, LeadState::Completed);
        assert_eq!(store.completed_in("evergreen", 10).await.unwrap().len(), 1);
        let next = at + Duration::days(90);
        store
            .enter_campaign(
                &[entry(ann.id, "evergreen", next)],
                &[LeadState::Completed],
                "then:evergreen",
                None,
                at,
            )
            .await
            .unwrap();
        assert_eq!(last_event(&store, ann.id).await.detail["cycle"], round);
    }
    let evergreen: Vec<(i64, i64, String)> = deliveries(&store, ann.id)
        .await
        .into_iter()
        .filter(|d| d.campaign == "evergreen")
        .map(|d| (d.cycle, d.step, d.state))
        .collect();
    assert_eq!(
        evergreen,
        [
            (0, 0, "sent".to_string()),
            (1, 0, "sent".to_string()),
            (2, 0, "scheduled".to_string())
        ]
    );
    // A person brings a won lead back into a campaign: `recycled` first, then `enrolled`.
    store
        .set_lifecycle(ann.id, &Transition::Won, "cli", &[], due)
        .await
        .unwrap();
    let back = due + Duration::days(400);
    store
        .enter_campaign(
            &[entry(ann.id, "c", back)],
            &[LeadState::Won],
            "recycle",
            Some("lost again"),
            back,
        )
        .await
        .unwrap();
    let tail: Vec<String> = store
        .timeline(ann.id)
        .await
        .unwrap()
        .into_iter()
        .rev()
        .take(2)
        .map(|e| e.kind)
        .collect();
    assert_eq!(tail, ["enrolled", "recycled"]);
    assert_eq!(state(&store, ann.id).await, LeadState::Nurturing);
    let c: Vec<(i64, i64, String)> = deliveries(&store, ann.id)
        .await
        .into_iter()
        .filter(|d| d.campaign == "c")
        .map(|d| (d.cycle, d.step, d.state))
        .collect();
    assert_eq!(
        c,
        [(0, 0, "sent".to_string()), (1, 0, "scheduled".to_string())]
    );
}
