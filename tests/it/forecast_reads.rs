//! What the forecast reads, on both backends. Of the leads in `new`: with the segments' loss
//! reasons as a filter, every lead a segment could take is read (whatever the case, the
//! spaces around the reason, or a `%`, `_` or `\` in it), and leads whose reason no segment
//! lists are not. Of the pending deliveries: those of leads whose address or domain is on the
//! suppression list are not read (the list empty: every one, without a probe). On SQLite
//! they are read in chunks: any chunk size reads each one once, in claim order, even where a
//! chunk ends inside a run of equal due times, and a chunk searches `deliveries_pending`.
//! With many due, SQLite reads the leads once by a scan instead of one look-up per delivery:
//! the same deliveries with the same cells, in the same order, whatever the chunk sizes.

use std::future::Future;
use std::panic::AssertUnwindSafe;

use chrono::{DateTime, Duration, Utc};
use futures::FutureExt as _;
use rewarm::domain::email::EmailAddress;
use rewarm::domain::lead::NewLead;
use rewarm::store::forecast::reason_filter;
use rewarm::store::postgres::PgStore;
use rewarm::store::prelude::*;
use rewarm::store::sqlite::SqliteStore;
use rewarm::store::{ForecastStore, NewEnrolment};
use sqlx::Connection as _;

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

/// The addresses of the pending deliveries the forecast reads for the next day.
async fn pending<S: ForecastStore>(store: &S) -> Vec<String> {
    let mut read = Vec::new();
    store
        .pending_before(t0() + Duration::days(1), true, |d| read.push(d.email))
        .await
        .expect("pending");
    read.sort();
    read
}

/// Leads with these addresses, each enrolled in campaign `c` with its first email due at
/// `due(i)` (`i` its place in `emails`); how many were enrolled.
async fn enrol<S: Store>(
    store: &S,
    emails: &[impl AsRef<str>],
    due: impl Fn(usize) -> DateTime<Utc>,
) -> usize {
    let leads: Vec<NewLead> = emails
        .iter()
        .map(|e| NewLead {
            email: Some(EmailAddress::parse(e.as_ref()).expect("an address")),
            ..NewLead::default()
        })
        .collect();
    store
        .upsert_leads(&leads, "test", t0())
        .await
        .expect("leads");
    let found = store
        .leads_in_state(rewarm::domain::lead::LeadState::New, 0, 100)
        .await
        .expect("leads");
    let enrolments: Vec<NewEnrolment> = found
        .iter()
        .map(|l| {
            let i = emails
                .iter()
                .position(|e| e.as_ref() == l.email.as_str())
                .expect("one of the leads");
            NewEnrolment {
                lead_id: l.id,
                campaign: "c".into(),
                segment: "all".into(),
                first_due: due(i),
                template: "first".into(),
            }
        })
        .collect();
    store.enrol(&enrolments, t0()).await.expect("enrol")
}

/// Four leads, each with a delivery due; then an address and a domain are put on the list
/// the way a suppression recorded a moment ago is seen (`list` inserts the rows; the leads
/// and their deliveries are left as they are): their deliveries are no longer read.
async fn suppressed_leads_are_not_pending<S, F, Fut>(store: S, list: F)
where
    S: Store + ForecastStore,
    F: FnOnce(&'static [&'static str]) -> Fut,
    Fut: Future<Output = ()>,
{
    let emails = [
        "kept@x.example",
        "listed@x.example",
        "one@listed.example",
        "two@listed.example",
    ];
    let enrolled = enrol(&store, &emails, |_| t0() + Duration::hours(1)).await;
    assert_eq!(enrolled, 4);
    assert_eq!(pending(&store).await, emails, "nothing listed");
    list(&["listed@x.example", "@listed.example"]).await;
    assert_eq!(pending(&store).await, ["kept@x.example"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_suppressed_leads_are_not_pending() {
    let (_dir, url, store) = sqlite().await;
    suppressed_leads_are_not_pending(store, |addresses| async move {
        let mut conn = sqlx::SqliteConnection::connect(&url)
            .await
            .expect("connect");
        for address in addresses {
            sqlx::query(
                "INSERT INTO suppressions (address, reason, created_at) VALUES ($1, 'manual', 0)",
            )
            .bind(address)
            .execute(&mut conn)
            .await
            .expect("listed");
        }
        let _ = conn.close().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_suppressed_leads_are_not_pending() {
    on_postgres("forecast_reads_suppressed_leads_are_not_pending", |store| async move {
        let pool = store.pool().clone();
        suppressed_leads_are_not_pending(store, |addresses| async move {
            for address in addresses {
                sqlx::query("INSERT INTO suppressions (address, reason, created_at) VALUES ($1, 'manual', now())")
                    .bind(address)
                    .execute(&pool)
                    .await
                    .expect("listed");
            }
        })
        .await;
    })
    .await;
}

/// (due time in ms, id, address) of every pending delivery due before `until`, as read in
/// chunks of `size`.
async fn in_chunks(
    store: &SqliteStore,
    until: DateTime<Utc>,
    size: i64,
) -> Vec<(i64, i64, String)> {
    let mut read = Vec::new();
    store
        .pending_before_in_chunks(until, size, |d| {
            read.push((d.due_at.timestamp_millis(), d.id, d.email))
        })
        .await
        .expect("pending");
    read
}

/// Thirteen leads `l{i}@x{i % 2}.example`, each enrolled with its first email due in one of
/// three runs of equal times (out of id order), the last one after the horizon; the horizon.
async fn enrol_thirteen(store: &SqliteStore) -> DateTime<Utc> {
    let emails: Vec<String> = (0..13)
        .map(|i| format!("l{i}@x{}.example", i % 2))
        .collect();
    let due =
        |i: usize| t0() + Duration::hours([3, 1, 2][i % 3]) + Duration::days(i64::from(i == 12));
    assert_eq!(enrol(store, &emails, due).await, 13);
    t0() + Duration::days(1)
}

/// Puts the domain of the odd leads on the suppression list.
const LIST_X1: &str =
    "INSERT INTO suppressions (address, reason, created_at) VALUES ('@x1.example', 'manual', 0)";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_chunks_read_each_pending_delivery_once_in_claim_order() {
    let (_dir, url, store) = sqlite().await;
    let until = enrol_thirteen(&store).await;
    let whole = in_chunks(&store, until, 5_000).await;
    assert_eq!(whole.len(), 12, "{whole:?}");
    let mut sorted = whole.clone();
    sorted.sort();
    assert_eq!(whole, sorted, "claim order");
    let mut trait_read = Vec::new();
    store
        .pending_before(until, true, |d| {
            trait_read.push((d.due_at.timestamp_millis(), d.id, d.email))
        })
        .await
        .expect("pending");
    assert_eq!(trait_read, whole);
    for size in [1, 2, 3, 4, 5, 11, 12, 13] {
        assert_eq!(
            in_chunks(&store, until, size).await,
            whole,
            "chunks of {size}"
        );
    }
    // With the list in use (the statement with the probes): a domain's leads are left out.
    sql(&url, LIST_X1).await;
    let kept: Vec<_> = whole
        .iter()
        .filter(|r| r.2.ends_with("@x0.example"))
        .cloned()
        .collect();
    assert_eq!(kept.len(), 6);
    for size in [1, 2, 5, 5_000] {
        assert_eq!(
            in_chunks(&store, until, size).await,
            kept,
            "chunks of {size}, listed"
        );
    }
    store.close().await;
}

/// Every pending delivery due before `until` as read by the scan of the leads (leads in
/// chunks of `sizes.0`, deliveries in chunks of `sizes.1`), each as its `Debug` text; with
/// `addresses` or without.
async fn scanning(
    store: &SqliteStore,
    until: DateTime<Utc>,
    sizes: (i64, i64),
    addresses: bool,
) -> Vec<String> {
    let mut read = Vec::new();
    store
        .pending_before_scanning(until, sizes, addresses, |d| read.push(format!("{d:?}")))
        .await
        .expect("pending");
    read
}

/// The same as [`scanning`], through a look-up of each delivery's lead, in chunks of `size`.
async fn looking_up(store: &SqliteStore, until: DateTime<Utc>, size: i64) -> Vec<String> {
    let mut read = Vec::new();
    store
        .pending_before_in_chunks(until, size, |d| read.push(format!("{d:?}")))
        .await
        .expect("pending");
    read
}

/// Runs `statement` on a connection of its own (as another process would).
async fn sql(url: &str, statement: &'static str) {
    let mut conn = sqlx::SqliteConnection::connect(url).await.expect("connect");
    sqlx::query(statement)
        .execute(&mut conn)
        .await
        .expect(statement);
    let _ = conn.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_the_scan_of_the_leads_reads_what_the_look_ups_read() {
    let (_dir, url, store) = sqlite().await;
    let until = enrol_thirteen(&store).await;
    // Zones and countries, some shared, some not; one lead leaves `nurturing` with its
    // delivery still scheduled: neither read hands it over.
    sql(&url, "UPDATE leads SET timezone = CASE id % 3 WHEN 0 THEN 'Europe/Berlin' WHEN 1 THEN 'America/New_York' END,
                    fields = CASE WHEN id % 4 = 0 THEN json_object('country', 'DE') WHEN id % 4 = 1 THEN json_object('country', 'US') ELSE fields END").await;
    sql(
        &url,
        "UPDATE leads SET state = 'rewarmed' WHERE email = 'l4@x0.example'",
    )
    .await;
    let whole = looking_up(&store, until, 5_000).await;
    assert_eq!(whole.len(), 11, "{whole:#?}");
    assert!(!whole.iter().any(|d| d.contains("l4@x0.example")));
    for zone in [
        "Europe/Berlin",
        "America/New_York",
        "\"DE\"",
        "\"US\"",
        "timezone: None",
    ] {
        assert!(whole.iter().any(|d| d.contains(zone)), "{zone}: {whole:#?}");
    }
    assert!(
        store.forecast_scans(until).await.expect("count"),
        "11 due among 12 leads"
    );
    assert!(
        !store.forecast_scans(t0()).await.expect("count"),
        "nothing due"
    );
    for lead_size in [1, 2, 5, 5_000] {
        for size in [1, 3, 11, 12, 5_000] {
            assert_eq!(
                scanning(&store, until, (lead_size, size), true).await,
                whole,
                "leads in chunks of {lead_size}, deliveries of {size}"
            );
        }
    }
    // Without addresses: the same deliveries, their addresses left empty.
    let bare = scanning(&store, until, (2, 3), false).await;
    let emptied: Vec<String> = whole
        .iter()
        .zip(&emails_of(&whole))
        .map(|(d, email)| d.replace(&format!("email: \"{email}\""), "email: \"\""))
        .collect();
    assert_eq!(bare, emptied);
    // With a domain on the list: its leads are not read (the statement with the probes).
    sql(&url, LIST_X1).await;
    let kept = looking_up(&store, until, 5_000).await;
    assert_eq!(kept.len(), 5, "{kept:#?}");
    assert!(kept.iter().all(|d| d.contains("@x0.example")));
    for sizes in [(1, 1), (2, 5), (5_000, 5_000)] {
        assert_eq!(
            scanning(&store, until, sizes, true).await,
            kept,
            "{sizes:?}"
        );
    }
    store.close().await;
}

/// The address in each `Debug` text of a `ForecastDelivery`.
fn emails_of(read: &[String]) -> Vec<String> {
    read.iter()
        .map(|d| {
            let from = d.find("email: \"").expect("an address") + 8;
            let to = from + d[from..].find('"').expect("its end");
            d[from..to].to_string()
        })
        .collect()
}

/// `plan` searches each of `searches` and scans none of `tables` (by their aliases), nor
/// sorts.
fn searches_only(plan: &[String], searches: &[&str], tables: &[&str]) {
    for search in searches {
        assert!(
            plan.iter().any(|l| l.contains(search)),
            "{search}: {plan:#?}"
        );
    }
    assert!(
        !plan.iter().any(|l| l.contains("TEMP B-TREE")
            || tables.iter().any(|t| l.starts_with(&format!("SCAN {t}")))),
        "a chunk scans a table or sorts: {plan:#?}"
    );
}

const PENDING_RANGES: [&str; 2] = [
    "SEARCH d USING INDEX deliveries_pending (due_at=? AND rowid>?)",
    "SEARCH d USING INDEX deliveries_pending (due_at>? AND due_at<?)",
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_the_scan_reads_the_leads_and_the_deliveries_through_their_indexes() {
    let (_dir, _, store) = sqlite().await;
    let plan = store.forecast_scan_plans().await.expect("plan");
    let mut searches = vec!["SEARCH l USING INDEX leads_state (state=? AND id>?)"];
    searches.extend(PENDING_RANGES);
    searches_only(&plan, &searches, &["l", "d"]);
    store.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_a_forecast_chunk_searches_the_pending_index_in_its_order() {
    let (_dir, _, store) = sqlite().await;
    let plan = store.forecast_chunk_plan().await.expect("plan");
    searches_only(&plan, &PENDING_RANGES, &["d"]);
    store.close().await;
}

/// 3,000 pending deliveries due a minute apart, statistics taken: a window holding ten of
/// them reads them from `deliveries_pending` on PostgreSQL, not by a scan of `deliveries`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_a_narrow_forecast_window_reads_the_pending_index() {
    on_postgres(
        "forecast_reads_a_narrow_window_reads_the_pending_index",
        |store| async move {
            crate::scale::seed_due(&store).await;
            sqlx::query("ANALYZE")
                .execute(store.pool())
                .await
                .expect("analyze");
            let until = crate::scale::t0() - Duration::minutes(2_990);
            let plan = store.forecast_plan(until).await.expect("plan");
            assert!(
                plan.iter()
                    .any(|l| l.contains("Index Scan using deliveries_pending on deliveries d")),
                "{plan:#?}"
            );
            assert!(
                !plan.iter().any(|l| l.contains("Seq Scan on deliveries")),
                "the forecast scans deliveries: {plan:#?}"
            );
            let mut read = 0;
            store
                .pending_before(until, false, |_| read += 1)
                .await
                .expect("pending");
            assert_eq!(read, 10);
        },
    )
    .await;
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
    let (_dir, _, store) = sqlite().await;
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

/// A migrated SQLite store in a temporary folder (kept while the folder lives), and its URL.
async fn sqlite() -> (tempfile::TempDir, String, SqliteStore) {
    let dir = tempfile::tempdir().expect("a temp dir");
    let url = format!("sqlite://{}", dir.path().join("s.db").display());
    let store = SqliteStore::connect(&url).await.expect("open");
    store.migrate().await.expect("migrate");
    (dir, url, store)
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
