//! What the console's pages read and write in the store (`store/browse.rs`), on SQLite and
//! PostgreSQL: the lead search (filters, key paging, indexes), the sales queue, the inbound
//! review ("belongs to lead X" through `inbound::review`, "ignore"), the suppression list
//! by page and one lead handed to another owner.

use std::future::Future;
use std::panic::AssertUnwindSafe;

use chrono::{DateTime, Duration, Utc};
use futures::FutureExt as _;
use rewarm::app::Loaded;
use rewarm::domain::email::EmailAddress;
use rewarm::domain::lead::{Lead, LeadState, NewLead};
use rewarm::store::postgres::PgStore;
use rewarm::store::prelude::*;
use rewarm::store::sqlite::SqliteStore;
use rewarm::store::{
    Assigned, InboundEffect, InboundRecord, LeadSearch, NewEnrolment, QueueOrder, Store,
    Suppression, SuppressionReason,
};
use sqlx::Connection as _;

use crate::support::db::TestDatabase;

macro_rules! browse_tests {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let db = crate::support::db::TestDatabase::sqlite();
                    let store = rewarm::store::sqlite::SqliteStore::connect(db.url()).await.expect("open SQLite");
                    super::on(store, super::$name).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::on_postgres(stringify!($name), |store, _| super::$name(store)).await;
                }
            )*
        }
    };
}

browse_tests!(
    the_search_filters_by_prefix_owner_state_segment_and_tag,
    the_search_pages_newest_first_by_key,
    a_changed_tag_is_found_under_its_new_name_only,
    the_sales_queue_lists_an_owners_rewarmed_leads_with_their_reply,
    a_message_assigned_by_review_applies_its_effect_like_a_matched_one,
    an_ignored_message_leaves_the_review_list_unmatched,
    the_suppression_list_pages_newest_first,
    one_lead_handed_to_another_owner_writes_who_did_it,
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
    F: FnOnce(PgStore, String) -> Fut,
    Fut: Future<Output = ()>,
{
    let Some(db) = TestDatabase::postgres(test).await else {
        return;
    };
    let store = PgStore::connect(db.url()).await.expect("connect");
    store.migrate().await.expect("migrate PostgreSQL");
    let result = AssertUnwindSafe(body(store.clone(), db.url().to_string()))
        .catch_unwind()
        .await;
    store.close().await;
    db.drop_database().await;
    if let Err(panic) = result {
        std::panic::resume_unwind(panic);
    }
}

// ── Helpers ─────────────────────────────────────────────────────────────────────────────

fn t0() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2027-03-01T10:00:00Z")
        .expect("a time")
        .to_utc()
}

fn email(s: &str) -> EmailAddress {
    EmailAddress::parse(s).expect("an address")
}

/// A lead with these names, company, owner and tags.
fn lead(address: &str, name: (&str, &str), company: &str, owner: &str, tags: &[&str]) -> NewLead {
    NewLead {
        email: Some(email(address)),
        first_name: Some(name.0.into()),
        last_name: Some(name.1.into()),
        company: Some(company.into()),
        owner_email: Some(email(owner)),
        tags: tags.iter().map(|t| t.to_string()).collect(),
        ..NewLead::default()
    }
}

async fn by_email<S: Store>(store: &S, address: &str) -> Lead {
    store
        .lead_by_email(&email(address))
        .await
        .expect("read")
        .expect("the lead")
}

fn search() -> LeadSearch {
    LeadSearch {
        limit: 50,
        ..LeadSearch::default()
    }
}

async fn found<S: Store>(store: &S, q: LeadSearch) -> Vec<String> {
    let page = store.search_leads(&q).await.expect("search");
    page.leads.iter().map(|l| l.email.to_string()).collect()
}

/// Four leads of two owners; two enrolled by segment `timing`.
async fn seed_four<S: Store>(store: &S) {
    let leads = [
        lead(
            "ann@acme.example",
            ("Ann", "Smith"),
            "Acme",
            "rep@us.example",
            &["VIP", "q3"],
        ),
        lead(
            "bob@beta.example",
            ("Bob", "Annan"),
            "Beta",
            "rep@us.example",
            &["q3"],
        ),
        lead(
            "carl@gamma.example",
            ("Carl", "Jones"),
            "Annex Ltd",
            "other@us.example",
            &[],
        ),
        lead(
            "dora@delta.example",
            ("Dora", "Day"),
            "Delta",
            "other@us.example",
            &["vip"],
        ),
    ];
    store
        .upsert_leads(&leads, "test", t0() - Duration::days(1))
        .await
        .expect("import");
    for address in ["ann@acme.example", "dora@delta.example"] {
        let l = by_email(store, address).await;
        let e = NewEnrolment {
            lead_id: l.id,
            campaign: "checkin".into(),
            segment: "timing".into(),
            first_due: t0() + Duration::days(1),
            template: "checkin-1".into(),
        };
        store.enrol(&[e], t0()).await.expect("enrol");
    }
}

// ── Search ──────────────────────────────────────────────────────────────────────────────

async fn the_search_filters_by_prefix_owner_state_segment_and_tag<S: Store>(store: S) {
    seed_four(&store).await;
    let text = |t: &str| LeadSearch {
        text: Some(t.into()),
        ..search()
    };
    // "ann": Ann's address and first name, Bob's last name, Carl's company; newest first.
    assert_eq!(
        found(&store, text("ANN")).await,
        ["carl@gamma.example", "bob@beta.example", "ann@acme.example"]
    );
    assert_eq!(found(&store, text("dora@d")).await, ["dora@delta.example"]);
    assert!(found(&store, text("zz")).await.is_empty());
    let owner = LeadSearch {
        owner: Some("REP@us.example".into()),
        ..search()
    };
    assert_eq!(
        found(&store, owner.clone()).await,
        ["bob@beta.example", "ann@acme.example"]
    );
    let nurturing = LeadSearch {
        state: Some(LeadState::Nurturing),
        ..owner.clone()
    };
    assert_eq!(found(&store, nurturing).await, ["ann@acme.example"]);
    let segment = LeadSearch {
        segment: Some("timing".into()),
        ..search()
    };
    assert_eq!(
        found(&store, segment).await,
        ["dora@delta.example", "ann@acme.example"]
    );
    let tag = LeadSearch {
        tag: Some("Vip".into()),
        ..search()
    };
    assert_eq!(
        found(&store, tag).await,
        ["dora@delta.example", "ann@acme.example"]
    );
    let everything = LeadSearch {
        text: Some("a".into()),
        owner: Some("rep@us.example".into()),
        state: Some(LeadState::Nurturing),
        segment: Some("timing".into()),
        tag: Some("q3".into()),
        ..search()
    };
    assert_eq!(found(&store, everything).await, ["ann@acme.example"]);
}

async fn the_search_pages_newest_first_by_key<S: Store>(store: S) {
    let leads: Vec<NewLead> = (0..7)
        .map(|i| NewLead {
            email: Some(email(&format!("lead{i}@example.com"))),
            ..NewLead::default()
        })
        .collect();
    store
        .upsert_leads(&leads, "test", t0())
        .await
        .expect("import");
    let mut q = LeadSearch {
        limit: 3,
        ..LeadSearch::default()
    };
    let mut seen = Vec::new();
    let mut pages = 0;
    loop {
        let page = store.search_leads(&q).await.expect("search");
        pages += 1;
        seen.extend(page.leads.iter().map(|l| l.id));
        match page.next {
            Some(next) => q.before = Some(next),
            None => break,
        }
    }
    assert_eq!(pages, 3);
    let mut sorted = seen.clone();
    sorted.sort_unstable_by(|a, b| b.cmp(a));
    assert_eq!(seen, sorted, "newest first, each lead once");
    assert_eq!(seen.len(), 7);
}

async fn a_changed_tag_is_found_under_its_new_name_only<S: Store>(store: S) {
    seed_four(&store).await;
    let again = lead(
        "bob@beta.example",
        ("Bob", "Annan"),
        "Beta",
        "rep@us.example",
        &["renewal"],
    );
    store
        .upsert_leads(&[again], "test", t0())
        .await
        .expect("merge");
    let tag = |t: &str| LeadSearch {
        tag: Some(t.into()),
        ..search()
    };
    // Tags are merged (unioned) on import: Bob keeps q3 and gains renewal.
    assert_eq!(found(&store, tag("renewal")).await, ["bob@beta.example"]);
    assert_eq!(
        found(&store, tag("q3")).await,
        ["bob@beta.example", "ann@acme.example"]
    );
}

/// The search plans on SQLite: every filter reads an index, none scans the leads.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_search_reads_indexes_on_sqlite() {
    let db = TestDatabase::sqlite();
    let store = SqliteStore::connect(db.url()).await.expect("open");
    store.migrate().await.expect("migrate");
    seed_four(&store).await;
    for q in plan_cases() {
        let plan = store.search_plan(&q).await.expect("plan");
        assert!(
            !plan
                .iter()
                .any(|l| l.starts_with("SCAN leads") || l.starts_with("SCAN enrolments")),
            "{q:?} scans: {plan:#?}"
        );
        assert!(plan.iter().any(|l| l.contains("USING")), "{q:?}: {plan:#?}");
    }
}

/// The search plans on PostgreSQL, with statistics of 5,000 leads: no sequential scan.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_search_reads_indexes_on_postgres() {
    on_postgres("search plan", |store, url| async move {
        let leads: Vec<NewLead> = (0..5000)
            .map(|i| {
                lead(
                    &format!("lead{i}@example{}.com", i % 50),
                    (&format!("first{i}"), &format!("last{i}")),
                    &format!("company{}", i % 300),
                    &format!("rep{}@us.example", i % 20),
                    &[&format!("t{}", i % 100)],
                )
            })
            .collect();
        store
            .upsert_leads(&leads, "test", t0())
            .await
            .expect("import");
        let mut conn = sqlx::PgConnection::connect(&url).await.expect("connect");
        sqlx::query("ANALYZE")
            .execute(&mut conn)
            .await
            .expect("analyze");
        let _ = conn.close().await;
        for q in plan_cases() {
            let plan = store.search_plan(&q).await.expect("plan");
            assert!(
                !plan.iter().any(|l| l.contains("Seq Scan on leads")),
                "{q:?} scans: {plan:#?}"
            );
        }
    })
    .await;
}

fn plan_cases() -> Vec<LeadSearch> {
    let base = search();
    vec![
        LeadSearch {
            text: Some("first12".into()),
            ..base.clone()
        },
        LeadSearch {
            owner: Some("rep3@us.example".into()),
            ..base.clone()
        },
        LeadSearch {
            owner: Some("rep3@us.example".into()),
            text: Some("first4".into()),
            ..base.clone()
        },
        LeadSearch {
            tag: Some("t7".into()),
            ..base.clone()
        },
        LeadSearch {
            segment: Some("timing".into()),
            ..base.clone()
        },
        LeadSearch {
            before: Some(100),
            ..base.clone()
        },
    ]
}

// ── Sales queue ─────────────────────────────────────────────────────────────────────────

fn reply_record(key: &str, lead_id: Option<i64>, text: &str, at: DateTime<Utc>) -> InboundRecord {
    InboundRecord {
        dedupe_key: key.into(),
        source: "replay".into(),
        received_at: at,
        message_id: None,
        from_address: Some("someone@acme.example".into()),
        subject: Some("Re: hello".into()),
        classification: "human_reply".into(),
        lead_id,
        delivery_id: None,
        matched_by: lead_id.map(|_| "sender".into()),
        text: Some(text.into()),
        raw: format!("From: someone@acme.example\r\nSubject: Re: hello\r\n\r\n{text}\r\n")
            .into_bytes(),
    }
}

fn rewarm(text: &str) -> InboundEffect {
    InboundEffect::Rewarm {
        text: text.into(),
        subject: Some("Re: hello".into()),
        notifications: Vec::new(),
    }
}

async fn the_sales_queue_lists_an_owners_rewarmed_leads_with_their_reply<S: Store>(store: S) {
    seed_four(&store).await;
    for (i, (address, text)) in [
        ("ann@acme.example", "Call me next week"),
        ("bob@beta.example", "Send the pricing"),
        ("dora@delta.example", "Interested"),
    ]
    .into_iter()
    .enumerate()
    {
        let l = by_email(&store, address).await;
        let at = t0() + Duration::hours(i as i64);
        let record = reply_record(&format!("k{i}"), Some(l.id), text, at);
        store
            .record_inbound(&record, &rewarm(text), at)
            .await
            .expect("reply");
    }
    let newest = store
        .sales_queue(Some("Rep@us.example"), QueueOrder::Newest, 10)
        .await
        .expect("queue");
    let shown: Vec<(&str, Option<&str>)> = newest
        .iter()
        .map(|q| {
            (
                q.lead.email.as_str(),
                q.reply.as_ref().map(|r| r.text.as_str()),
            )
        })
        .collect();
    assert_eq!(
        shown,
        [
            ("bob@beta.example", Some("Send the pricing")),
            ("ann@acme.example", Some("Call me next week")),
        ]
    );
    assert_eq!(newest[0].rewarmed_at, t0() + Duration::hours(1));
    let stalest = store
        .sales_queue(Some("rep@us.example"), QueueOrder::Stalest, 1)
        .await
        .expect("queue");
    assert_eq!(stalest.len(), 1);
    assert_eq!(stalest[0].lead.email.as_str(), "ann@acme.example");
    let all = store
        .sales_queue(None, QueueOrder::Newest, 10)
        .await
        .expect("queue");
    assert_eq!(all.len(), 3);
    assert_eq!(all[0].lead.email.as_str(), "dora@delta.example");
}

// ── Inbound review ──────────────────────────────────────────────────────────────────────

async fn a_message_assigned_by_review_applies_its_effect_like_a_matched_one<S: Store>(store: S) {
    seed_four(&store).await;
    let loaded = Loaded::load(std::path::Path::new("config/example.toml")).expect("config");
    let unmatched = reply_record(
        "stray",
        None,
        "Yes, I am interested, please send the pricing.",
        t0(),
    );
    let applied = store
        .record_inbound(&unmatched, &InboundEffect::None, t0())
        .await
        .expect("kept unmatched");
    let id = applied.inbound_id;
    let (waiting, total) = store.inbound_to_review(None, 10).await.expect("list");
    assert_eq!((waiting.len(), total), (1, 1));
    assert_eq!(waiting[0].id, id);
    assert_eq!(
        waiting[0].text.as_deref(),
        Some("Yes, I am interested, please send the pricing.")
    );

    let carl = by_email(&store, "carl@gamma.example").await;
    let at = t0() + Duration::minutes(5);
    let missing =
        rewarm::inbound::review::belongs_to(&store, &loaded, id, 999_999, "mk@us.example", at)
            .await
            .expect("review");
    assert_eq!(missing, Assigned::NoSuchLead);
    let done =
        rewarm::inbound::review::belongs_to(&store, &loaded, id, carl.id, "mk@us.example", at)
            .await
            .expect("review");
    let Assigned::Applied { effects } = done else {
        panic!("not applied: {done:?}")
    };
    assert_eq!(effects["reviewed_by"], "mk@us.example", "{effects}");
    assert_eq!(
        by_email(&store, "carl@gamma.example").await.state,
        LeadState::Rewarmed
    );
    let timeline = store.timeline(carl.id).await.expect("timeline");
    let inbound = timeline
        .iter()
        .find(|e| e.kind == "inbound")
        .expect("an inbound event");
    assert_eq!(inbound.detail["matched_by"], "review");
    assert_eq!(inbound.detail["by"], "mk@us.example");
    assert!(
        timeline.iter().any(|e| e.kind == "replied"),
        "{timeline:#?}"
    );
    assert!(
        timeline.iter().any(|e| e.kind == "rewarmed"),
        "{timeline:#?}"
    );

    // Done once: the message is the lead's, off the list, and a second word changes nothing.
    let stored = store
        .inbound_message(id)
        .await
        .expect("read")
        .expect("kept");
    assert_eq!(stored.message.record.lead_id, Some(carl.id));
    assert_eq!(stored.message.record.matched_by.as_deref(), Some("review"));
    assert_eq!(stored.reviewed_by.as_deref(), Some("mk@us.example"));
    assert_eq!(store.inbound_to_review(None, 10).await.expect("list").1, 0);
    let again =
        rewarm::inbound::review::belongs_to(&store, &loaded, id, carl.id, "mk@us.example", at)
            .await
            .expect("review");
    assert_eq!(again, Assigned::NotForReview);
    let events = store.timeline(carl.id).await.expect("timeline").len();
    assert_eq!(events, timeline.len());
}

async fn an_ignored_message_leaves_the_review_list_unmatched<S: Store>(store: S) {
    let ids: Vec<i64> = {
        let mut ids = Vec::new();
        for i in 0..3 {
            let r = reply_record(&format!("s{i}"), None, "spam", t0());
            ids.push(
                store
                    .record_inbound(&r, &InboundEffect::None, t0())
                    .await
                    .expect("kept")
                    .inbound_id,
            );
        }
        ids
    };
    assert!(
        store
            .ignore_inbound(ids[1], "mk@us.example", t0())
            .await
            .expect("ignore")
    );
    assert!(
        !store
            .ignore_inbound(ids[1], "mk@us.example", t0())
            .await
            .expect("ignore")
    );
    let (list, total) = store.inbound_to_review(None, 10).await.expect("list");
    assert_eq!(
        list.iter().map(|m| m.id).collect::<Vec<_>>(),
        [ids[2], ids[0]]
    );
    assert_eq!(total, 2);
    let (page, _) = store
        .inbound_to_review(Some(ids[2]), 10)
        .await
        .expect("list");
    assert_eq!(page.iter().map(|m| m.id).collect::<Vec<_>>(), [ids[0]]);
    let ignored = store
        .inbound_message(ids[1])
        .await
        .expect("read")
        .expect("kept");
    assert_eq!(ignored.message.record.lead_id, None);
    assert_eq!(ignored.reviewed_by.as_deref(), Some("mk@us.example"));
}

// ── Suppression and owners ──────────────────────────────────────────────────────────────

async fn the_suppression_list_pages_newest_first<S: Store>(store: S) {
    let entries: Vec<Suppression> = (0..5)
        .map(|i| Suppression {
            address: format!("x{i}@example.com"),
            reason: SuppressionReason::Manual,
            evidence: serde_json::json!({"source": "test"}),
            created_at: t0(),
        })
        .collect();
    store.suppress(&entries, t0()).await.expect("suppress");
    let first = store.suppression_page(None, 3).await.expect("page");
    let addresses: Vec<&str> = first
        .entries
        .iter()
        .map(|(_, s)| s.address.as_str())
        .collect();
    assert_eq!(
        addresses,
        ["x4@example.com", "x3@example.com", "x2@example.com"]
    );
    assert_eq!(first.total, 5);
    let second = store.suppression_page(first.next, 3).await.expect("page");
    let addresses: Vec<&str> = second
        .entries
        .iter()
        .map(|(_, s)| s.address.as_str())
        .collect();
    assert_eq!(addresses, ["x1@example.com", "x0@example.com"]);
    assert_eq!(second.next, None);
}

async fn one_lead_handed_to_another_owner_writes_who_did_it<S: Store>(store: S) {
    seed_four(&store).await;
    let ann = by_email(&store, "ann@acme.example").await;
    let before = store.timeline(ann.id).await.expect("timeline").len();
    let from = store
        .reassign_lead(
            ann.id,
            "New@us.example",
            Some("New Rep"),
            "admin@us.example",
            t0(),
        )
        .await
        .expect("reassign");
    assert_eq!(from, Some(Some("rep@us.example".into())));
    let moved = by_email(&store, "ann@acme.example").await;
    assert_eq!(moved.owner_email.as_deref(), Some("new@us.example"));
    assert_eq!(moved.owner_name.as_deref(), Some("New Rep"));
    let timeline = store.timeline(ann.id).await.expect("timeline");
    assert_eq!(timeline.len(), before + 1);
    let event = timeline.last().expect("an event");
    assert_eq!(event.kind, "reassigned");
    assert_eq!(event.detail["by"], "admin@us.example");
    assert_eq!(event.detail["from"], "rep@us.example");
    // The same owner again changes nothing; no lead, None.
    let same = store
        .reassign_lead(ann.id, "new@us.example", None, "admin@us.example", t0())
        .await
        .expect("reassign");
    assert!(same.is_some());
    assert_eq!(
        store.timeline(ann.id).await.expect("timeline").len(),
        before + 1
    );
    let none = store
        .reassign_lead(999_999, "x@us.example", None, "admin@us.example", t0())
        .await
        .expect("reassign");
    assert_eq!(none, None);
}
