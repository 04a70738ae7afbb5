//! What the forecast reads of the leads in `new`, on both backends: with the segments' loss
//! reasons as a filter, every lead a segment could take is read (whatever the case, the
//! spaces around the reason, or a `%`, `_` or `\` in it), and leads whose reason no segment
//! lists are not.

use std::future::Future;
use std::panic::AssertUnwindSafe;

use chrono::{DateTime, Utc};
use futures::FutureExt as _;
use rewarm::domain::email::EmailAddress;
use rewarm::domain::lead::NewLead;
use rewarm::store::ForecastStore;
use rewarm::store::forecast::reason_filter;
use rewarm::store::postgres::PgStore;
use rewarm::store::prelude::*;
use rewarm::store::sqlite::SqliteStore;

use crate::support::db::TestDatabase;

fn t0() -> DateTime<Utc> {
    rewarm::cli::parse_now("2026-12-03T08:00:00Z").expect("a fixed time")
}

/// (address, loss reason, whether a segment listing `REASONS` takes it).
const LEADS: [(&str, Option<&str>, bool); 9] = [
    ("exact@x.example", Some("no_budget"), true),
    ("case@x.example", Some("No_BUDGET"), true),
    ("spaces@x.example", Some("  timing\t"), true),
    ("percent@x.example", Some("50%_off"), true),
    ("slash@x.example", Some(r"a\b"), true),
    ("quiet@x.example", Some("went_quiet"), false),
    ("none@x.example", None, false),
    ("near@x.example", Some("budget"), false),
    ("other@x.example", Some("50xoff"), false),
];

const REASONS: [&str; 4] = ["no_budget", "timing", "50%_off", r"a\b"];

async fn only_leads_a_segment_could_take_are_read<S: Store + ForecastStore>(store: S) {
    let leads: Vec<NewLead> = LEADS
        .iter()
        .map(|(email, reason, _)| NewLead {
            email: Some(EmailAddress::parse(email).expect("an address")),
            lost_reason: reason.map(str::to_string),
            ..NewLead::default()
        })
        .collect();
    store
        .upsert_leads(&leads, "test", t0())
        .await
        .expect("leads");
    let reasons: Vec<String> = REASONS.iter().map(|r| r.to_string()).collect();
    let mut read = Vec::new();
    store
        .new_leads(&reasons, |lead| read.push(lead.email.as_str().to_string()))
        .await
        .expect("new leads");
    for (email, _, taken) in LEADS {
        if taken {
            assert!(
                read.contains(&email.to_string()),
                "{email} not read: {read:?}"
            );
        }
    }
    for email in ["quiet@x.example", "none@x.example", "near@x.example"] {
        assert!(!read.contains(&email.to_string()), "{email} read: {read:?}");
    }
    // Without a filter, every lead in `new`.
    let mut all = 0;
    store.new_leads(&[], |_| all += 1).await.expect("new leads");
    assert_eq!(all, LEADS.len());
}

#[test]
fn a_segment_without_reasons_reads_every_lead() {
    let segment = |reasons: &[&str]| rewarm::domain::segment::Segment {
        lost_reasons: reasons.iter().map(|r| r.to_string()).collect(),
        ..rewarm::domain::segment::Segment::default()
    };
    assert_eq!(
        reason_filter(&[segment(&["b", "a"]), segment(&["a"])]),
        vec!["a".to_string(), "b".to_string()]
    );
    assert!(reason_filter(&[segment(&["a"]), segment(&[])]).is_empty());
    assert!(reason_filter(&[]).is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_only_leads_a_segment_could_take_are_read() {
    let dir = tempfile::tempdir().expect("a temp dir");
    let url = format!("sqlite://{}", dir.path().join("s.db").display());
    let store = SqliteStore::connect(&url).await.expect("open");
    store.migrate().await.expect("migrate");
    only_leads_a_segment_could_take_are_read(store).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_only_leads_a_segment_could_take_are_read() {
    on_postgres(
        "forecast_reads_only_leads_a_segment_could_take_are_read",
        only_leads_a_segment_could_take_are_read,
    )
    .await;
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
    let result = AssertUnwindSafe(body(store.clone())).catch_unwind().await;
    store.close().await;
    db.drop_database().await;
    if let Err(panic) = result {
        std::panic::resume_unwind(panic);
    }
}
