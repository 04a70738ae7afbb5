//! The store contract for closing the loop, on both backends (the harness of `store.rs`):
//! clicks judged against their email, decaying scores, soft bounces per email, undoing a
//! suppression, the report's funnel, forgetting a lead.

use chrono::{DateTime, Duration, Utc};
use serde_json::json;

use crate::store::{
    click, email, enrolled_as, for_lead, inbound_record, last_event, lead_state, note, outcome, t0,
};
use rewarm::domain::lead::{Lead, LeadState};
use rewarm::domain::signal::{ClickRequest, ClickVerdict};
use rewarm::store::{Click, Engagement, InboundEffect, Outcome, Store};

/// Each name is an `async fn NAME<S: Store>(store: S)` below; it runs once per backend.
macro_rules! loop_store_tests {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    crate::store::on_sqlite(|store| super::$name(store)).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    crate::store::on_postgres(stringify!($name), |store| super::$name(store)).await;
                }
            )*
        }
    };
}

loop_store_tests!(
    clicks_are_judged_against_their_email_and_each_other,
    a_scanners_burst_is_one_machine_signal,
    scores_decay_and_a_rewarm_names_its_signals,
    delayed_dsns_about_one_email_count_once,
    removing_an_entry_with_restore_puts_its_leads_back,
    a_restored_lead_goes_back_to_the_state_it_was_in,
);

/// One lead enrolled in `c`, its first email sent at `sent`; returns it and the delivery id.
async fn sent_to<S: Store>(store: &S, address: &str, sent: DateTime<Utc>) -> (Lead, i64) {
    let leads = enrolled_as(store, &[address]).await;
    let claimed = store
        .claim_due(sent, "w", sent + Duration::minutes(5), 10)
        .await
        .unwrap();
    let d = for_lead(&claimed, &leads[0]);
    store
        .record_outcomes(
            &[outcome(
                &d,
                Outcome::Sent {
                    message_id: format!("<{}@rewarm>", d.id),
                    provider_id: None,
                    next: None,
                },
            )],
            "w",
            sent,
        )
        .await
        .unwrap();
    (leads[0].clone(), d.id)
}

async fn judged<S: Store>(store: &S, c: &Click<'_>, at: DateTime<Utc>) -> (ClickVerdict, usize) {
    let r = store.record_click(c, at).await.unwrap().expect("recorded");
    (r.judgement.verdict, r.judgement.retract)
}

async fn clicks_are_judged_against_their_email_and_each_other<S: Store>(store: S) {
    let (ann, d) = sent_to(&store, "ann@a.example", t0()).await;
    let a = "https://acme.example/a";
    let s = |secs: i64| t0() + Duration::seconds(secs);
    assert_eq!(
        judged(&store, &click(d, a), s(5)).await,
        (ClickVerdict::WithinGrace, 0)
    );
    let head = Click {
        request: ClickRequest::from_parts("HEAD", []),
        ..click(d, a)
    };
    assert_eq!(
        judged(&store, &head, s(3600)).await,
        (ClickVerdict::Head, 0)
    );
    let prefetch = Click {
        request: ClickRequest::from_parts("GET", [("Sec-Purpose", "prefetch")]),
        ..click(d, a)
    };
    assert_eq!(
        judged(&store, &prefetch, s(3600)).await,
        (ClickVerdict::Prefetch, 0)
    );
    // The scanner's fetches earlier do not make a person's click a repeat…
    assert_eq!(
        judged(&store, &click(d, a), s(7200)).await,
        (ClickVerdict::Counted, 0)
    );
    // … a second click on the same link the same day is one; the next day counts again.
    assert_eq!(
        judged(&store, &click(d, a), s(7300)).await,
        (ClickVerdict::Repeat, 0)
    );
    assert_eq!(
        judged(&store, &click(d, a), s(7200 + 86_400)).await,
        (ClickVerdict::Counted, 0)
    );
    let e = last_event(&store, ann.id).await;
    assert_eq!(e.kind, "clicked");
    assert_eq!(e.detail["counted"], true);
    assert_eq!(e.detail["signal"], "counted");
    assert_eq!(e.detail["delivery_id"], d);
    let clicks = store
        .timeline(ann.id)
        .await
        .unwrap()
        .into_iter()
        .filter(|e| e.kind == "clicked")
        .map(|e| e.detail["signal"].as_str().unwrap_or_default().to_string())
        .collect::<Vec<_>>();
    assert_eq!(
        clicks,
        [
            "within_grace",
            "head",
            "prefetch",
            "counted",
            "repeat",
            "counted"
        ]
    );
    assert_eq!(lead_state(&store, ann.id).await, LeadState::Completed);
}

async fn a_scanners_burst_is_one_machine_signal<S: Store>(store: S) {
    let (_, d) = sent_to(&store, "ann@a.example", t0()).await;
    let later = t0() + Duration::minutes(10);
    let ms = |n: i64| later + Duration::milliseconds(n);
    let links = [
        "https://a.example/1",
        "https://a.example/2",
        "https://a.example/3",
    ];
    // The first looks like a person (past the grace period, alone)…
    assert_eq!(
        judged(&store, &click(d, links[0]), ms(0)).await,
        (ClickVerdict::Counted, 0)
    );
    // … until the next link follows within seconds: the burst takes it back, once.
    assert_eq!(
        judged(&store, &click(d, links[1]), ms(800)).await,
        (ClickVerdict::Burst, 1)
    );
    assert_eq!(
        judged(&store, &click(d, links[2]), ms(1500)).await,
        (ClickVerdict::Burst, 0)
    );
    assert_eq!(
        judged(&store, &click(d, links[0]), ms(2000)).await,
        (ClickVerdict::Burst, 0)
    );
    // Concurrent requests see each other (each judged in the write transaction).
    let (_, d2) = sent_to(&store, "bob@b.example", t0()).await;
    let mut tasks = Vec::new();
    for i in 0..6 {
        let store = store.clone();
        let url = format!("https://b.example/{}", i % 3);
        tasks.push(tokio::spawn(async move {
            let c = click(d2, &url);
            store
                .record_click(&c, later)
                .await
                .unwrap()
                .expect("recorded")
                .judgement
        }));
    }
    let mut counted = 0;
    let mut retracted = 0;
    for t in tasks {
        let j = t.await.unwrap();
        counted += usize::from(j.verdict.counted());
        retracted += j.retract;
    }
    assert_eq!(
        counted, 1,
        "one click of six at once counted before the burst showed"
    );
    assert_eq!(retracted, 1, "and was taken back once");
}

async fn scores_decay_and_a_rewarm_names_its_signals<S: Store>(store: S) {
    let leads = enrolled_as(&store, &["ann@a.example", "bob@b.example"]).await;
    let points = |lead: &Lead, points: i64, half_life: Option<Duration>| Engagement {
        lead_id: lead.id,
        kind: "click",
        points,
        threshold: 100,
        half_life,
        detail: json!({"url": "https://a.example/"}),
    };
    let month = Some(Duration::days(30));
    let (ann, bob) = (&leads[0], &leads[1]);
    // 90 points, then 10 a month later: with a 30-day half-life that is 45 + 10.
    for lead in [ann, bob] {
        assert!(
            !store
                .engage(&points(lead, 90, month), &[], t0())
                .await
                .unwrap()
        );
    }
    let later = t0() + Duration::days(30);
    assert!(
        !store
            .engage(&points(ann, 10, month), &[note(ann.id, "a")], later)
            .await
            .unwrap()
    );
    assert_eq!(lead_state(&store, ann.id).await, LeadState::Nurturing);
    assert_eq!(last_event(&store, ann.id).await.detail["score"], 55);
    assert_eq!(
        last_event(&store, ann.id).await.detail["url"],
        "https://a.example/"
    );
    // Without decay the same history re-warms, and says what made it.
    assert!(
        store
            .engage(&points(bob, 10, None), &[note(bob.id, "b")], later)
            .await
            .unwrap()
    );
    let e = last_event(&store, bob.id).await;
    assert_eq!(e.kind, "rewarmed");
    assert_eq!(e.detail["reason"], "score");
    assert_eq!(e.detail["score"], 100);
    assert_eq!(e.detail["threshold"], 100);
    let signals = e.detail["signals"].as_array().expect("signals").clone();
    assert_eq!(signals.len(), 2);
    assert_eq!(signals[0]["points"], 10);
    assert_eq!(signals[1]["points"], 90);
    assert_eq!(signals[1]["url"], "https://a.example/");
    let queued = store.notifications(0, 10).await.unwrap();
    assert_eq!(queued.len(), 1);
    assert_eq!(queued[0].payload["signals"], json!(signals));
}

async fn delayed_dsns_about_one_email_count_once<S: Store>(store: S) {
    let (ann, d) = sent_to(&store, "ann@a.example", t0()).await;
    let delayed = |n: u32| InboundEffect::SoftBounce {
        limit: 3,
        evidence: json!({"action": "delayed", "n": n}),
    };
    for n in 0..3 {
        let mut record = inbound_record(&format!("delayed{n}"), Some(ann.id), "soft_bounce");
        record.delivery_id = Some(d);
        store
            .record_inbound(&record, &delayed(n), t0())
            .await
            .unwrap();
    }
    assert_ne!(lead_state(&store, ann.id).await, LeadState::Suppressed);
    assert!(
        store
            .suppression_for(&email("ann@a.example"))
            .await
            .unwrap()
            .is_none()
    );
    // Bounces about emails we cannot name still count one each.
    for n in 0..3 {
        let record = inbound_record(&format!("unknown{n}"), Some(ann.id), "soft_bounce");
        store
            .record_inbound(&record, &delayed(n), t0())
            .await
            .unwrap();
    }
    assert_eq!(lead_state(&store, ann.id).await, LeadState::Suppressed);
}

async fn removing_an_entry_with_restore_puts_its_leads_back<S: Store>(store: S) {
    use rewarm::store::{Suppression, SuppressionReason};
    let leads = enrolled_as(&store, &["ann@a.example", "bob@a.example", "cem@c.example"]).await;
    let (ann, bob, cem) = (&leads[0], &leads[1], &leads[2]);
    let entry = |address: &str, reason| Suppression {
        address: address.into(),
        reason,
        evidence: json!({"source": "test"}),
        created_at: t0(),
    };
    assert_eq!(store.leads_reached("@a.example").await.unwrap(), 2);
    assert_eq!(store.leads_reached("cem@c.example").await.unwrap(), 1);
    assert_eq!(store.leads_reached("@nobody.example").await.unwrap(), 0);
    store
        .suppress(&[entry("@a.example", SuppressionReason::Manual)], t0())
        .await
        .unwrap();
    store
        .suppress(
            &[entry("bob@a.example", SuppressionReason::Unsubscribed)],
            t0() + Duration::minutes(1),
        )
        .await
        .unwrap();
    assert_eq!(store.leads_reached("@a.example").await.unwrap(), 0);
    assert_eq!(
        store.broad_domain_entries(1).await.unwrap(),
        vec![("@a.example".to_string(), 2)]
    );
    assert!(store.broad_domain_entries(2).await.unwrap().is_empty());
    let first_due = crate::store::delivery_of(&store, ann.id, 0).await.due_at;
    assert_eq!(
        crate::store::delivery_of(&store, ann.id, 0).await.state,
        "cancelled"
    );

    let later = t0() + Duration::days(3);
    let restored = store
        .unsuppress_and_restore("@a.example", later)
        .await
        .unwrap()
        .expect("it was listed");
    assert_eq!(
        (
            restored.restored,
            restored.resumed_deliveries,
            restored.still_suppressed
        ),
        (1, 1, 1)
    );
    assert_eq!(lead_state(&store, ann.id).await, LeadState::Nurturing);
    assert_eq!(
        lead_state(&store, bob.id).await,
        LeadState::Suppressed,
        "his own entry lists him"
    );
    assert_eq!(lead_state(&store, cem.id).await, LeadState::Nurturing);
    let d = crate::store::delivery_of(&store, ann.id, 0).await;
    assert_eq!(d.state, "scheduled");
    assert_eq!(d.due_at, later.max(first_due), "not before now");
    let e = last_event(&store, ann.id).await;
    assert_eq!(e.kind, "restored");
    assert_eq!(
        e.detail,
        json!({"from": "suppressed", "to": "nurturing", "address": "@a.example"})
    );
    // The cadence resumes: her email can be claimed again; Bob's cannot.
    let claimed = store
        .claim_due(later, "w", later + Duration::minutes(5), 10)
        .await
        .unwrap();
    let ids: Vec<i64> = claimed.iter().map(|c| c.lead_id).collect();
    assert!(ids.contains(&ann.id) && !ids.contains(&bob.id), "{ids:?}");
    assert!(
        store
            .unsuppress_and_restore("@a.example", later)
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        store
            .suppression_for(&email("bob@a.example"))
            .await
            .unwrap()
            .is_some()
    );
}

async fn a_restored_lead_goes_back_to_the_state_it_was_in<S: Store>(store: S) {
    use rewarm::store::{Suppression, SuppressionReason};
    let (ann, _) = sent_to(&store, "ann@a.example", t0()).await;
    assert_eq!(lead_state(&store, ann.id).await, LeadState::Completed);
    // Imported while listed: back to new.
    store
        .suppress(
            &[Suppression {
                address: "@a.example".into(),
                reason: SuppressionReason::Manual,
                evidence: json!({}),
                created_at: t0(),
            }],
            t0(),
        )
        .await
        .unwrap();
    store
        .upsert_leads(&[crate::store::lead("zoe@a.example")], "test", t0())
        .await
        .unwrap();
    let zoe = store
        .lead_by_email(&email("zoe@a.example"))
        .await
        .unwrap()
        .expect("zoe");
    assert_eq!(zoe.state, LeadState::Suppressed);
    let r = store
        .unsuppress_and_restore("@a.example", t0())
        .await
        .unwrap()
        .expect("listed");
    assert_eq!(
        (r.restored, r.resumed_deliveries, r.still_suppressed),
        (2, 0, 0)
    );
    assert_eq!(lead_state(&store, ann.id).await, LeadState::Completed);
    assert_eq!(lead_state(&store, zoe.id).await, LeadState::New);
    assert_eq!(last_event(&store, zoe.id).await.detail["to"], "new");
}
