//! A sent email's `sent` event is kept out of `events_lead` (a send pass would write its entry
//! at a random place in it) and found through its delivery (`events.delivery_id`, index
//! `events_delivery`). Held here on both databases: a lead's history still shows every email
//! in order among its other events; each question about one lead's events searches an index;
//! and the `sent` events an earlier version wrote are linked to their deliveries by the
//! migration (SQLite 0023, PostgreSQL 0024), or, if one cannot be, stay in `events_lead`.

use chrono::{DateTime, Duration, Utc};
use rewarm::domain::lead::{Lead, LeadState};
use rewarm::store::postgres::PgStore;
use rewarm::store::sqlite::SqliteStore;
use rewarm::store::{
    ClaimedDelivery, EventRecord, NewEnrolment, NextStep, Outcome, RecordedOutcome, Rows, Store,
    Table,
};
use sqlx::Connection as _;

use crate::store::{enrolment, lead, t0};
use crate::support::db::{TestDatabase, with_postgres};

/// Two leads, each in campaigns `c` and `d` (first steps due a minute before `t0`).
pub(crate) async fn two_leads_in_two_campaigns<S: Store>(store: &S) -> Vec<Lead> {
    let new = [lead("ann@example.com"), lead("bob@example.com")];
    store
        .upsert_leads(&new, "test", t0() - Duration::days(1))
        .await
        .expect("upsert");
    let leads = store
        .leads_in_state(LeadState::New, 0, 10)
        .await
        .expect("leads");
    let due = t0() - Duration::minutes(1);
    let batch: Vec<NewEnrolment> = leads
        .iter()
        .flat_map(|l| [enrolment(l, "c", due), enrolment(l, "d", due)])
        .collect();
    store
        .enrol(&batch, t0() - Duration::hours(2))
        .await
        .expect("enrol");
    leads
}

/// Claims what is due at `now` and records each as sent (`<lead.campaign.step@x>`), with a
/// next step a day later while `with_next`.
pub(crate) async fn send_due<S: Store>(store: &S, now: DateTime<Utc>, with_next: bool) -> usize {
    let claimed: Vec<ClaimedDelivery> = store
        .claim_due(now, "w", now + Duration::minutes(5), 10)
        .await
        .expect("claim");
    let ids: Vec<i64> = claimed.iter().map(|d| d.id).collect();
    store.mark_started(&ids, "w", now).await.expect("started");
    let outcomes: Vec<RecordedOutcome> = claimed
        .iter()
        .map(|d| RecordedOutcome {
            delivery: d.clone(),
            outcome: Outcome::Sent {
                message_id: format!("<{}.{}.{}@x>", d.lead_id, d.campaign, d.step),
                provider_id: None,
                next: with_next.then(|| NextStep {
                    step: d.step + 1,
                    due_at: now + Duration::days(1),
                    template: "next".into(),
                }),
            },
        })
        .collect();
    store
        .record_outcomes(&outcomes, "w", now)
        .await
        .expect("record");
    claimed.len()
}

/// The lead's history as (kind, Message-ID of a `sent`).
async fn history<S: Store>(store: &S, lead_id: i64) -> Vec<(String, Option<String>)> {
    store
        .timeline(lead_id)
        .await
        .expect("timeline")
        .into_iter()
        .map(|e| {
            let message_id = e.detail["message_id"].as_str().map(str::to_owned);
            (e.kind, message_id)
        })
        .collect()
}

async fn events<S: Store>(store: &S) -> Vec<EventRecord> {
    match store
        .export_rows(Table::Events, 0, 1000)
        .await
        .expect("events")
    {
        Rows::Events(rows) => rows,
        other => panic!("asked for events, got {:?}", other.table()),
    }
}

fn sent(message_id: &str) -> (String, Option<String>) {
    ("sent".into(), Some(message_id.into()))
}

fn kind(kind: &str) -> (String, Option<String>) {
    (kind.into(), None)
}

/// Two passes: the first sends each first step with a next one (PostgreSQL's one-statement
/// wave), the second the last steps (the general path), which complete the enrolments.
async fn history_holds_every_email_in_order<S: Store>(store: &S) {
    let leads = two_leads_in_two_campaigns(store).await;
    assert_eq!(send_due(store, t0(), true).await, 4);
    assert_eq!(send_due(store, t0() + Duration::days(2), false).await, 4);
    let ann = leads[0].id;
    let expected = vec![
        kind("imported"),
        kind("enrolled"),
        kind("enrolled"),
        sent(&format!("<{ann}.c.0@x>")),
        sent(&format!("<{ann}.d.0@x>")),
        sent(&format!("<{ann}.c.1@x>")),
        sent(&format!("<{ann}.d.1@x>")),
        kind("completed"),
        kind("completed"),
    ];
    let got = history(store, ann).await;
    let mut sorted_sends = got.clone();
    // Within one wave the two campaigns' emails may be recorded in either order.
    sorted_sends[3..5].sort();
    sorted_sends[5..7].sort();
    assert_eq!(sorted_sends, expected, "{got:?}");
    // Every outcome's event names its delivery: the `sent` one is what the history follows.
    let events = events(store).await;
    let deliveries = crate::store::deliveries(store).await;
    let sent_events: Vec<_> = events.iter().filter(|e| e.kind == "sent").collect();
    assert_eq!(sent_events.len(), 8);
    for e in sent_events {
        let d = deliveries
            .iter()
            .find(|d| Some(d.id) == e.delivery_id)
            .unwrap_or_else(|| panic!("event {} names no delivery", e.id));
        assert_eq!(d.lead_id, e.lead_id);
        assert_eq!(d.message_id.as_deref(), e.detail["message_id"].as_str());
    }
}

/// No plan reads every event (`scan`); the timeline reads both halves by index.
fn assert_searches_indexes(plans: &[(&str, Vec<String>)], scan: &str) {
    for (name, plan) in plans {
        assert!(
            !plan.iter().any(|l| l.contains(scan)),
            "{name} reads every event: {plan:#?}"
        );
    }
    let timeline = &plans
        .iter()
        .find(|p| p.0 == "timeline")
        .expect("timeline")
        .1;
    for index in ["events_lead", "events_delivery"] {
        assert!(timeline.iter().any(|l| l.contains(index)), "{timeline:#?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_leads_history_holds_its_sent_emails_by_index_on_sqlite() {
    let db = TestDatabase::sqlite();
    let store = SqliteStore::connect(db.url()).await.expect("open");
    store.migrate().await.expect("migrate");
    history_holds_every_email_in_order(&store).await;
    let plans = store.lead_history_plans(t0()).await.expect("plans");
    // `SCAN events`, `SCAN e`, … (the timeline's own `SCAN t` reads its two halves' rows).
    for (name, plan) in &plans {
        let scans: Vec<_> = plan
            .iter()
            .filter(|l| l.starts_with("SCAN") && !l.starts_with("SCAN t"))
            .collect();
        assert!(scans.is_empty(), "{name} scans: {plan:#?}");
    }
    // Every `sent` event is one kind: reading them all is what must not happen.
    assert_searches_indexes(&plans, "events_kind_at (kind=?)");
    // The partial index serves only a query that spells its condition (`kind <> 'sent'`):
    // each takes it (the clicks since a moment may take the range of recent clicks instead).
    for (name, plan) in &plans {
        assert!(
            plan.iter()
                .any(|l| l.contains("INDEX events_lead (lead_id=?")
                    || l.contains("events_kind_at (kind=? AND at>?)")),
            "{name} does not search events_lead: {plan:#?}"
        );
    }
    store.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_leads_history_holds_its_sent_emails_by_index_on_postgres() {
    crate::scale::on_postgres("sent events history", |store: PgStore, url| async move {
        history_holds_every_email_in_order(&store).await;
        let mut conn = sqlx::PgConnection::connect(&url).await.expect("connect");
        sqlx::query("ANALYZE")
            .execute(&mut conn)
            .await
            .expect("analyze");
        let _ = conn.close().await;
        let plans = store.lead_history_plans(t0()).await.expect("plans");
        assert_searches_indexes(&plans, "Seq Scan on events");
    })
    .await;
}

// ── The migration links what an earlier version wrote ──────────────────────────────────

/// One lead whose first email went out before the migration (its `sent` event named no
/// delivery), and a `sent` event whose delivery cannot be found (none is expected: it must
/// still show): the statements that write them, in SQLite's or PostgreSQL's JSON.
fn old_sent_events(postgres: bool, lead_id: i64) -> [String; 3] {
    let object = if postgres {
        "jsonb_build_object"
    } else {
        "json_object"
    };
    [
        format!(
            "UPDATE deliveries SET state = 'sent', message_id = '<old@x>', sent_at = updated_at WHERE lead_id = {lead_id}"
        ),
        format!(
            "INSERT INTO events (lead_id, at, kind, detail)
             SELECT lead_id, updated_at, 'sent', {object}('campaign', campaign, 'step', 1, 'message_id', message_id)
             FROM deliveries WHERE lead_id = {lead_id}"
        ),
        format!(
            "INSERT INTO events (lead_id, at, kind, detail)
             SELECT lead_id, updated_at, 'sent', {object}('campaign', 'gone', 'step', 1, 'message_id', '<gone@x>')
             FROM deliveries WHERE lead_id = {lead_id}"
        ),
    ]
}

async fn the_migration_links_old_sent_events<S: Store>(store: &S, lead_id: i64) {
    let got = history(store, lead_id).await;
    assert_eq!(
        got,
        vec![
            kind("imported"),
            kind("enrolled"),
            sent("<old@x>"),
            sent("<gone@x>")
        ]
    );
    let events = events(store).await;
    let delivery = crate::store::delivery_of(store, lead_id, 0).await;
    let linked: Vec<(String, Option<i64>)> = events
        .iter()
        .filter(|e| e.kind == "sent")
        .map(|e| {
            (
                e.detail["message_id"].as_str().unwrap_or("").into(),
                e.delivery_id,
            )
        })
        .collect();
    assert_eq!(
        linked,
        vec![
            ("<old@x>".into(), Some(delivery.id)),
            ("<gone@x>".into(), None)
        ]
    );
}

/// Ann, imported, and the SQL of her enrolment in `c` as the earlier schema held it.
async fn one_enrolled_lead<S: Store>(store: &S, postgres: bool) -> (i64, [String; 4]) {
    store
        .upsert_leads(&[lead("ann@example.com")], "test", t0() - Duration::days(1))
        .await
        .expect("upsert");
    let ann = store
        .leads_in_state(LeadState::New, 0, 10)
        .await
        .expect("leads")
        .remove(0);
    let enrolled = crate::delivery_key::enrolled_before(postgres, ann.id, "c", t0());
    (ann.id, enrolled)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_migration_links_the_sent_events_already_stored_on_sqlite() {
    let db = TestDatabase::sqlite();
    let store = SqliteStore::connect(db.url()).await.expect("open");
    store.migrate_before(23).await.expect("migrate to 0022");
    let (ann, enrolled) = one_enrolled_lead(&store, false).await;
    let mut conn = sqlx::SqliteConnection::connect(db.url())
        .await
        .expect("connect");
    for sql in enrolled.into_iter().chain(old_sent_events(false, ann)) {
        sqlx::query(sqlx::AssertSqlSafe(sql))
            .execute(&mut conn)
            .await
            .expect("old rows");
    }
    let _ = conn.close().await;
    store.migrate().await.expect("migrate the rest");
    the_migration_links_old_sent_events(&store, ann).await;
    store.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_migration_links_the_sent_events_already_stored_on_postgres() {
    with_postgres("sent events migration", |url| async move {
        let store = PgStore::connect(&url).await.expect("connect");
        store.migrate_before(24).await.expect("migrate to 0023");
        let (ann, enrolled) = one_enrolled_lead(&store, true).await;
        let mut conn = sqlx::PgConnection::connect(&url).await.expect("connect");
        for sql in enrolled.into_iter().chain(old_sent_events(true, ann)) {
            sqlx::query(sqlx::AssertSqlSafe(sql))
                .execute(&mut conn)
                .await
                .expect("old rows");
        }
        let _ = conn.close().await;
        store.migrate().await.expect("migrate the rest");
        the_migration_links_old_sent_events(&store, ann).await;
        store.close().await;
    })
    .await;
}
