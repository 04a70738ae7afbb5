//! A million leads on one machine, checked without timing anything: the claim reads due
//! rows in index order on both databases (its plan has no sequential scan of `deliveries`
//! and no sort of every due row), every other statement of an idle tick searches an index,
//! and a `new` lead that no segment matches is examined
//! again only when it could start matching (its data changed, the segments changed, or its
//! `min_age` moment came).

use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::path::Path;

use chrono::{DateTime, Duration, Utc};
use futures::FutureExt as _;
use rewarm::app::Loaded;
use rewarm::domain::email::EmailAddress;
use rewarm::domain::lead::{LeadState, NewLead};
use rewarm::outbound::scheduler;
use rewarm::store::postgres::PgStore;
use rewarm::store::sqlite::SqliteStore;
use rewarm::store::{ClaimedDelivery, NewEnrolment, QueueStore as _, Store};
use sqlx::Connection as _;

use crate::support::bin::repo;
use crate::support::config::TestConfig;
use crate::support::db::TestDatabase;

pub(crate) fn t0() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2026-03-03T09:00:00Z")
        .expect("time")
        .with_timezone(&Utc)
}

/// Enough due rows that a planner would rather scan and sort them than use a poor index.
const DUE: usize = 3000;

/// `DUE` leads, each with its first email due at a different minute before `t0`, the
/// latest first (so id order is not due order).
pub(crate) async fn seed_due<S: Store>(store: &S) {
    let leads: Vec<NewLead> = (0..DUE)
        .map(|i| NewLead {
            email: Some(EmailAddress::parse(&format!("lead{i}@example.com")).expect("email")),
            ..Default::default()
        })
        .collect();
    store
        .upsert_leads(&leads, "test", t0() - Duration::days(2))
        .await
        .expect("upsert");
    let mut enrolments = Vec::with_capacity(DUE);
    let mut after = 0;
    loop {
        let page = store
            .leads_in_state(LeadState::New, after, 1000)
            .await
            .expect("leads");
        let Some(last) = page.last() else { break };
        after = last.id;
        enrolments.extend(page.iter().map(|l| NewEnrolment {
            lead_id: l.id,
            campaign: "c".into(),
            segment: "all".into(),
            first_due: t0() - Duration::minutes(l.id),
            template: "first".into(),
        }));
    }
    assert_eq!(store.enrol(&enrolments, t0()).await.expect("enrol"), DUE);
}

/// Statistics taken now, as a live database has them (the plans tested depend on them).
pub(crate) async fn analyze_postgres(url: &str) {
    let mut conn = sqlx::PgConnection::connect(url).await.expect("connect");
    sqlx::query("ANALYZE")
        .execute(&mut conn)
        .await
        .expect("analyze");
    let _ = conn.close().await;
}

/// The same on SQLite.
pub(crate) async fn analyze_sqlite(url: &str) {
    let mut conn = sqlx::SqliteConnection::connect(url).await.expect("connect");
    sqlx::query("ANALYZE")
        .execute(&mut conn)
        .await
        .expect("analyze");
    let _ = conn.close().await;
}

/// The first claim takes the rows due earliest: the index order is the due order.
async fn claim_takes_the_earliest<S: Store>(store: &S) {
    let claimed = store
        .claim_due(t0(), "w", t0() + Duration::minutes(5), 10)
        .await
        .expect("claim");
    let mut due: Vec<DateTime<Utc>> = claimed.iter().map(|c| c.due_at).collect();
    due.sort();
    let earliest: Vec<DateTime<Utc>> = (0..10)
        .map(|i| t0() - Duration::minutes(DUE as i64 - i))
        .collect();
    assert_eq!(due, earliest);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_claim_reads_due_rows_in_index_order_on_sqlite() {
    let db = TestDatabase::sqlite();
    let store = SqliteStore::connect(db.url()).await.expect("open");
    store.migrate().await.expect("migrate");
    seed_due(&store).await;
    analyze_sqlite(db.url()).await;
    let plan = store.claim_plan(t0()).await.expect("plan");
    assert!(
        plan.iter()
            .any(|l| l.contains("SEARCH d USING INDEX deliveries_pending")),
        "{plan:#?}"
    );
    assert!(
        !plan
            .iter()
            .any(|l| l.starts_with("SCAN") || l.contains("TEMP B-TREE")),
        "the claim scans or sorts: {plan:#?}"
    );
    claim_takes_the_earliest(&store).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_claim_reads_due_rows_in_index_order_on_postgres() {
    let Some(db) = TestDatabase::postgres("claim plan").await else {
        return;
    };
    let store = PgStore::connect(db.url()).await.expect("connect");
    let result = AssertUnwindSafe(async {
        store.migrate().await.expect("migrate");
        seed_due(&store).await;
        analyze_postgres(db.url()).await;
        let plan = store.claim_plan(t0()).await.expect("plan");
        assert!(
            plan.iter()
                .any(|l| l.contains("Index Scan using deliveries_pending on deliveries d")),
            "{plan:#?}"
        );
        assert!(
            !plan
                .iter()
                .any(|l| l.contains("Seq Scan on deliveries") || l.contains("Sort")),
            "the claim scans or sorts deliveries: {plan:#?}"
        );
        claim_takes_the_earliest(&store).await;
    })
    .catch_unwind()
    .await;
    store.close().await;
    db.drop_database().await;
    if let Err(panic) = result {
        std::panic::resume_unwind(panic);
    }
}

// ── An idle tick ───────────────────────────────────────────────────────────────────────

/// Co-routines and the small subqueries the statements read their own results from.
const OWN_RESULTS: [&str; 4] = ["SCAN u", "SCAN p", "SCAN due", "SCAN CONSTANT ROW"];

/// Every statement of an idle tick (claim and repairs aside, tested above and in
/// `faults_repair`) searches an index: none walks `leads`, `events`, `enrolments` or
/// `deliveries`, so a tick costs the same at 3,000 leads as at a million.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_tick_searches_indexes_only_on_sqlite() {
    let db = TestDatabase::sqlite();
    let store = SqliteStore::connect(db.url()).await.expect("open");
    store.migrate().await.expect("migrate");
    seed_due(&store).await;
    analyze_sqlite(db.url()).await;
    let plans = store.tick_plans(t0()).await.expect("plans");
    assert_eq!(plans.len(), 7, "{plans:#?}");
    for (name, plan) in &plans {
        for line in plan {
            let scan = line.starts_with("SCAN ") && !OWN_RESULTS.contains(&line.as_str());
            assert!(
                !scan,
                "{name} walks a table or a whole index: {line}\n{plan:#?}"
            );
        }
        assert!(
            plan.iter().any(|l| l.starts_with("SEARCH")),
            "{name}: {plan:#?}"
        );
    }
    // The paused leads' due rows are each paused lead's few, found through its enrolments:
    // never every due row (`deliveries_due`) once per paused lead.
    let due_now = &plans.iter().find(|p| p.0 == "due_now").expect("due_now").1;
    assert!(
        due_now
            .iter()
            .any(|l| l.starts_with("SEARCH d USING INDEX deliveries_enrolment")),
        "{due_now:#?}"
    );
    store.close().await;
}

/// The question each new enrolment's report trigger asks (migration 0019: has the lead
/// events of the report's stages at or after it?), as the trigger spells it.
const REPORT_HISTORY: &str = "SELECT 1 FROM events v WHERE v.lead_id = $1
     AND v.kind IN ('replied', 'rewarmed', 'won', 'out_of_scope', 'suppressed') AND v.at >= $2";

/// That question is one probe of the small partial index `events_report` (migrations
/// 0021 / 0022), not a walk of the lead's events, each read from the table for its kind.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_enrolments_report_question_reads_the_report_events_index_on_sqlite() {
    let db = TestDatabase::sqlite();
    let store = SqliteStore::connect(db.url()).await.expect("open");
    store.migrate().await.expect("migrate");
    seed_due(&store).await;
    let mut conn = sqlx::SqliteConnection::connect(db.url())
        .await
        .expect("connect");
    let explain = format!("EXPLAIN QUERY PLAN {REPORT_HISTORY}");
    let plan: Vec<String> =
        sqlx::query_as::<_, (i64, i64, i64, String)>(sqlx::AssertSqlSafe(explain))
            .bind(1_i64)
            .bind(0_i64)
            .fetch_all(&mut conn)
            .await
            .expect("plan")
            .into_iter()
            .map(|r| r.3)
            .collect();
    assert!(
        plan.iter().any(|l| l.contains("INDEX events_report")),
        "{plan:#?}"
    );
    let _ = conn.close().await;
    store.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_enrolments_report_question_reads_the_report_events_index_on_postgres() {
    on_postgres("report events index", |store, url| async move {
        seed_due(&store).await;
        analyze_postgres(&url).await;
        let mut conn = sqlx::PgConnection::connect(&url).await.expect("connect");
        let explain = format!("EXPLAIN {REPORT_HISTORY}");
        let plan: Vec<String> = sqlx::query_scalar(sqlx::AssertSqlSafe(explain))
            .bind(1_i64)
            .bind(t0())
            .fetch_all(&mut conn)
            .await
            .expect("plan");
        assert!(
            plan.iter().any(|l| l.contains("events_report")),
            "{plan:#?}"
        );
        let _ = conn.close().await;
    })
    .await;
}

/// Every console request looks up its session and whether the viewer owns leads: by the
/// index `leads_owner`, not by reading every lead (SQLite cannot use an expression index in
/// a comparison with a column of TEXT affinity).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_console_request_searches_the_owners_index_on_sqlite() {
    let db = TestDatabase::sqlite();
    let store = SqliteStore::connect(db.url()).await.expect("open");
    store.migrate().await.expect("migrate");
    let plan = store.console_session_plan().await.expect("plan");
    assert!(
        plan.iter().any(|l| l.contains("INDEX leads_owner")),
        "{plan:#?}"
    );
    assert!(
        !plan.iter().any(|l| l.starts_with("SCAN leads")),
        "{plan:#?}"
    );
    store.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_tick_searches_indexes_only_on_postgres() {
    on_postgres("idle tick plans", |store, _url| async move {
        seed_due(&store).await;
        let plans = store.tick_plans(t0()).await.expect("plans");
        assert_eq!(plans.len(), 7, "{plans:#?}");
        for (name, plan) in &plans {
            for table in ["leads", "events", "enrolments", "deliveries"] {
                assert!(
                    !plan
                        .iter()
                        .any(|l| l.contains(&format!("Seq Scan on {table}"))),
                    "{name} scans {table}:\n{plan:#?}"
                );
            }
        }
    })
    .await;
}

// ── The send pass's writes on PostgreSQL ────────────────────────────────────────────────

/// Recording a wave, marking the next one started and writing an enrolment's first
/// deliveries name their rows by key, whatever the statistics say: analysed before the claim
/// (as a live database is), they count no `claimed` row and no enrolment of this moment, and
/// a plan through `deliveries_due` or `enrolments_enrolled` read every such row once per
/// row of the wave (the 45 ms waves of docs/performance.md).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_send_writes_find_their_rows_by_key_on_postgres() {
    on_postgres("record plans", |store, url| async move {
        seed_due(&store).await;
        analyze_postgres(&url).await;
        let claimed = store
            .claim_due(t0(), "plan", t0() + Duration::minutes(5), 128)
            .await
            .expect("claim");
        assert_eq!(claimed.len(), 128);
        let ids: Vec<i64> = claimed.iter().map(|d| d.id).collect();
        let leads: Vec<i64> = claimed.iter().map(|d| d.lead_id).collect();
        let plans = store
            .record_plans(&ids, &leads, "plan", t0())
            .await
            .expect("plans");
        let names: Vec<&str> = plans.iter().map(|(name, _)| *name).collect();
        assert_eq!(
            names,
            [
                "record a sent wave",
                "mark started",
                "enrolments",
                "first deliveries",
                "enrolled events"
            ]
        );
        for (name, plan) in &plans {
            for misplan in [
                "deliveries_due",
                "enrolments_enrolled",
                "leads_state",
                "Seq Scan on deliveries",
                "Seq Scan on enrolments",
                "Seq Scan on leads",
            ] {
                assert!(
                    !plan.iter().any(|l| l.contains(misplan)),
                    "{name} reads {misplan}:\n{plan:#?}"
                );
            }
            // A look-up per row of the page must not carry the page's whole array in its
            // index condition (PostgreSQL sorts the array at each one).
            assert!(
                !plan.iter().any(|l| l.contains("Index Cond")
                    && l.contains("b.lead_id")
                    && l.contains("ANY")),
                "{name} sorts the page's array at each look-up:\n{plan:#?}"
            );
        }
        // The page's rows drive one look-up by key each (an index condition on the row's
        // lead), never a read of every lead or enrolment hashed once per page.
        for name in ["enrolments", "first deliveries", "enrolled events"] {
            let plan = &plans.iter().find(|(n, _)| *n == name).expect(name).1;
            assert!(
                plan.iter()
                    .any(|l| l.contains("Index Cond") && l.contains("b.lead_id")),
                "{name} does not look its rows up by key:\n{plan:#?}"
            );
            assert!(
                !plan.iter().any(|l| l.contains("Hash")),
                "{name} hashes a table:\n{plan:#?}"
            );
        }
        for (name, plan) in &plans[..2] {
            assert!(
                plan.iter().any(|l| l.contains("deliveries_pkey")),
                "{name} does not find its deliveries by key:\n{plan:#?}"
            );
        }
    })
    .await;
}

// ── Unmatched leads ─────────────────────────────────────────────────────────────────────

/// Segment `later`: loss reason `timing`, at least 30 days old → campaign `checkin`; with
/// `quiet`, a second segment for `went_quiet` losses.
pub(crate) fn loaded(dir: &Path, url: &str, quiet: bool) -> Loaded {
    let mut config = TestConfig::bare(url)
        .timezone("UTC")
        .templates_dir(&repo().join("templates"))
        .segment("later", "checkin")
        .set_str("segments", "lost_reason", "timing")
        .set_str("segments", "min_age", "30d");
    if quiet {
        config =
            config
                .segment("quiet", "checkin")
                .set_str("segments", "lost_reason", "went_quiet");
    }
    let config = config.campaign("checkin", "1d", "30d");
    let path = config.write(&dir.join(if quiet { "b.toml" } else { "a.toml" }));
    Loaded::load(&path).expect("config")
}

pub(crate) fn lead(address: &str, reason: &str, lost: DateTime<Utc>) -> NewLead {
    NewLead {
        email: Some(EmailAddress::parse(address).expect("email")),
        lost_reason: Some(reason.into()),
        lost_at: Some(lost),
        ..Default::default()
    }
}

async fn to_examine<S: Store>(store: &S) -> usize {
    store.leads_to_examine(0, 100).await.expect("read").len()
}

async fn unmatched_leads_wait_for_a_reason_to_match<S: Store>(store: S, url: String) {
    let dir = tempfile::tempdir().expect("dir");
    let rules = loaded(dir.path(), &url, false);
    let now = t0();
    // Too recent for `later` (matches in 20 days), and a reason no segment takes (never).
    let young = lead("young@example.com", "timing", now - Duration::days(10));
    let quiet = lead("quiet@example.com", "went_quiet", now - Duration::days(100));
    store
        .upsert_leads(&[young.clone(), quiet.clone()], "test", now)
        .await
        .expect("upsert");
    assert_eq!(to_examine(&store).await, 2);
    assert_eq!(
        scheduler::enrol(&store, &rules, now).await.expect("enrol"),
        0
    );
    // Both are marked: the next ticks read nothing.
    assert_eq!(to_examine(&store).await, 0);
    assert_eq!(
        scheduler::enrol(&store, &rules, now + Duration::hours(1))
            .await
            .expect("enrol"),
        0
    );
    assert_eq!(to_examine(&store).await, 0);
    // Its data changes: examined again at once (and now it matches).
    let later = now + Duration::hours(2);
    let changed = lead("quiet@example.com", "timing", now - Duration::days(100));
    store
        .upsert_leads(&[changed], "test", later)
        .await
        .expect("update");
    assert_eq!(to_examine(&store).await, 1);
    assert_eq!(
        scheduler::enrol(&store, &rules, later)
            .await
            .expect("enrol"),
        1
    );
    // The young lead's moment comes: 30 days after its loss it is examined and enrolled.
    let moment = now + Duration::days(20);
    assert_eq!(
        scheduler::enrol(&store, &rules, moment - Duration::minutes(1))
            .await
            .expect("enrol"),
        0
    );
    assert_eq!(
        scheduler::enrol(&store, &rules, moment)
            .await
            .expect("enrol"),
        1
    );
    // A new lead no segment takes waits …
    let other = lead("other@example.com", "went_quiet", now - Duration::days(100));
    store
        .upsert_leads(&[other], "test", moment)
        .await
        .expect("upsert");
    assert_eq!(
        scheduler::enrol(&store, &rules, moment)
            .await
            .expect("enrol"),
        0
    );
    assert_eq!(to_examine(&store).await, 0);
    // … until the segments change: a segment for its reason enrols it.
    let more_rules = loaded(dir.path(), &url, true);
    assert_eq!(
        scheduler::enrol(&store, &more_rules, moment + Duration::minutes(1))
            .await
            .expect("enrol"),
        1
    );
    let left = store
        .leads_in_state(LeadState::New, 0, 100)
        .await
        .expect("leads");
    assert!(left.is_empty(), "{left:?}");
}

/// Leads that match and leads that do not, read two at a time: every page's enrolments and
/// marks are written, none is read twice, none is skipped at a page's edge.
async fn a_pass_enrols_page_after_page<S: Store>(store: S, url: String) {
    let dir = tempfile::tempdir().expect("dir");
    let rules = loaded(dir.path(), &url, false);
    let now = t0();
    let leads: Vec<NewLead> = (0..7)
        .map(|i| {
            let reason = if i % 2 == 0 { "timing" } else { "went_quiet" };
            lead(
                &format!("page{i}@example.com"),
                reason,
                now - Duration::days(100),
            )
        })
        .collect();
    store
        .upsert_leads(&leads, "test", now)
        .await
        .expect("upsert");
    assert_eq!(
        scheduler::enrol_in_pages(&store, &rules, now, 2, 3)
            .await
            .expect("enrol"),
        4
    );
    assert_eq!(to_examine(&store).await, 0);
    let nurturing = store
        .leads_in_state(LeadState::Nurturing, 0, 100)
        .await
        .expect("leads");
    let enrolled: Vec<String> = nurturing.iter().map(|l| l.email.to_string()).collect();
    assert_eq!(
        enrolled,
        [
            "page0@example.com",
            "page2@example.com",
            "page4@example.com",
            "page6@example.com"
        ]
    );
    let waiting = store
        .leads_in_state(LeadState::New, 0, 100)
        .await
        .expect("leads");
    assert_eq!(waiting.len(), 3, "{waiting:?}");
    // Another pass finds nothing to read or write.
    assert_eq!(
        scheduler::enrol_in_pages(&store, &rules, now + Duration::hours(1), 2, 2)
            .await
            .expect("enrol"),
        0
    );
    let due = store
        .claim_due(now + Duration::days(10), "w", now + Duration::days(11), 100)
        .await
        .expect("claim");
    assert_eq!(due.len(), 4, "one first email per enrolment");
}

/// Leads read over several pages and written in one write are enrolled in due order across
/// the pages, not page by page: a send pass in due order then reads and rewrites one stretch
/// of rows per write. The writes ramp up: the first is one page, each next twice as many
/// pages (here pages of one lead: writes of 1, 2 and 4 leads).
async fn pages_gathered_into_one_write_are_enrolled_in_due_order<S: Store>(store: S, url: String) {
    let dir = tempfile::tempdir().expect("dir");
    let path = TestConfig::bare(&url)
        .timezone("UTC")
        .templates_dir(&repo().join("templates"))
        .segment("quiet", "checkin")
        .set_str("segments", "lost_reason", "went_quiet")
        .campaign("checkin", "1d", "30d")
        .any_time("checkin")
        .write(&dir.path().join("c.toml"));
    let rules = Loaded::load(&path).expect("config");
    let now = t0();
    // Each lead lost a minute before the one before it: the later the lead, the earlier due.
    let leads: Vec<NewLead> = (0..7)
        .map(|i| {
            lead(
                &format!("due{i}@example.com"),
                "went_quiet",
                now - Duration::minutes(i),
            )
        })
        .collect();
    store
        .upsert_leads(&leads, "test", now)
        .await
        .expect("upsert");
    assert_eq!(
        scheduler::enrol_in_pages(&store, &rules, now, 1, 100)
            .await
            .expect("enrol"),
        7
    );
    let mut claimed = store
        .claim_due(now + Duration::days(2), "w", now + Duration::days(3), 100)
        .await
        .expect("claim");
    assert_eq!(claimed.len(), 7);
    claimed.sort_by_key(|c| c.due_at);
    let leads: Vec<i64> = claimed.iter().map(|c| c.lead_id).collect();
    assert!(
        leads.iter().rev().is_sorted(),
        "the test's leads: {leads:?}"
    );
    // The leads of each write, latest (first due) first: the fourth to seventh lead (four
    // pages), the second and third (two), the first (one).
    let by_lead = |c: &&ClaimedDelivery| c.lead_id - leads[6];
    for write in [3..=6, 1..=2] {
        let rows: Vec<&ClaimedDelivery> = claimed
            .iter()
            .filter(|c| write.contains(&by_lead(c)))
            .collect();
        assert_eq!(rows.len(), write.clone().count());
        let ids: Vec<i64> = rows.iter().map(|c| c.id).collect();
        assert!(ids.is_sorted(), "delivery ids in due order: {ids:?}");
        let enrolments: Vec<i64> = rows.iter().map(|c| c.enrolment_id).collect();
        assert!(enrolments.is_sorted(), "enrolment ids: {enrolments:?}");
    }
}

/// A page's enrolments and first deliveries are written in due order, not lead order: the
/// send pass claims in due order, so its writes to those rows (claim, start, outcome, the
/// enrolment's first email) land on neighbouring pages instead of one page per row.
async fn a_page_is_enrolled_in_due_order<S: Store>(store: S, _url: String) {
    seed_due(&store).await; // the latest lead is due first
    let claimed = store
        .claim_due(t0(), "w", t0() + Duration::minutes(5), DUE)
        .await
        .expect("claim");
    assert_eq!(claimed.len(), DUE);
    let mut by_due = claimed.clone();
    by_due.sort_by_key(|c| c.due_at);
    let ids: Vec<i64> = by_due.iter().map(|c| c.id).collect();
    let enrolments: Vec<i64> = by_due.iter().map(|c| c.enrolment_id).collect();
    let leads: Vec<i64> = by_due.iter().map(|c| c.lead_id).collect();
    assert!(
        ids.is_sorted(),
        "delivery ids in due order: {:?}",
        &ids[..10]
    );
    assert!(
        enrolments.is_sorted(),
        "enrolment ids: {:?}",
        &enrolments[..10]
    );
    assert!(
        leads.iter().rev().is_sorted(),
        "the test's leads: {:?}",
        &leads[..10]
    );
}

/// Whether a campaign edit is pending asks which campaigns have active enrolments (at each
/// start and config reload): one index probe per campaign, not a count of every enrolment
/// (1.07 s at 1M on SQLite; the probes take under a millisecond).
async fn the_campaigns_in_flight_are_found_without_counting_enrolments<S: Store>(
    store: S,
    _url: String,
) {
    seed_due(&store).await; // 3,000 in campaign `c`
    let new: Vec<NewLead> = ["a", "z"]
        .iter()
        .map(|c| NewLead {
            email: Some(EmailAddress::parse(&format!("{c}@other.example")).expect("email")),
            ..Default::default()
        })
        .collect();
    store
        .upsert_leads(&new, "test", t0())
        .await
        .expect("upsert");
    let leads = store
        .leads_in_state(LeadState::New, 0, 10)
        .await
        .expect("leads");
    let enrolments: Vec<NewEnrolment> = leads
        .iter()
        .map(|l| NewEnrolment {
            lead_id: l.id,
            campaign: l.email.as_str()[..1].into(),
            segment: "all".into(),
            first_due: t0(),
            template: "first".into(),
        })
        .collect();
    store.enrol(&enrolments, t0()).await.expect("enrol");
    let campaigns = store.active_campaigns().await.expect("campaigns");
    assert_eq!(
        campaigns.into_iter().collect::<Vec<_>>(),
        ["a", "c", "z"].map(String::from)
    );
}

/// Each body `async fn NAME<S: Store>(store: S, url: String)` runs as two tests: `sqlite::NAME`
/// on a fresh SQLite database and `postgres::NAME` on a fresh PostgreSQL one, both migrated.
macro_rules! on_both {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::on_sqlite(super::$name).await;
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

on_both!(
    unmatched_leads_wait_for_a_reason_to_match,
    a_pass_enrols_page_after_page,
    a_page_is_enrolled_in_due_order,
    pages_gathered_into_one_write_are_enrolled_in_due_order,
    the_campaigns_in_flight_are_found_without_counting_enrolments,
);

/// Runs `body` on a fresh, migrated SQLite database (its store and URL).
pub(crate) async fn on_sqlite<F, Fut>(body: F)
where
    F: FnOnce(SqliteStore, String) -> Fut,
    Fut: Future<Output = ()>,
{
    let db = TestDatabase::sqlite();
    let store = SqliteStore::connect(db.url()).await.expect("open");
    store.migrate().await.expect("migrate");
    body(store, db.url().to_string()).await;
}

pub(crate) async fn on_postgres<F, Fut>(test: &str, body: F)
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
