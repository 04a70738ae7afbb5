//! One step once, keyed by enrolment (`deliveries_enrolment (enrolment_id, cycle, step)`,
//! unique) instead of by lead, whose key put each next step a send pass wrote at a random
//! place (SQLite 0024, PostgreSQL 0025). Held here on both databases: the statements that
//! find one lead's deliveries reach them through its enrolments by index; the migration keeps
//! every delivery, its counters and its history; and the key still refuses a step twice.

use chrono::{DateTime, Duration, Utc};
use rewarm::domain::lead::LeadState;
use rewarm::store::Store;
use rewarm::store::postgres::PgStore;
use rewarm::store::sqlite::SqliteStore;
use sqlx::Connection as _;

use crate::sent_events::{send_due, two_leads_in_two_campaigns};
use crate::store::{deliveries, enrolment, lead, t0};
use crate::support::db::{TestDatabase, with_postgres};

/// Ann and Bob, each in campaigns `c` and `d` (`sent_events`' pair); each first email sent
/// at `t0` with a next step a day later. Returns their ids.
async fn two_leads_mid_way<S: Store>(store: &S) -> (i64, i64) {
    let leads = two_leads_in_two_campaigns(store).await;
    assert_eq!(send_due(store, t0(), true).await, 4);
    (leads[0].id, leads[1].id)
}

/// `n` other leads, each with a first step waiting in campaign `c`.
async fn others_waiting<S: Store>(store: &S, n: usize) {
    let new: Vec<_> = (0..n)
        .map(|i| lead(&format!("other{i}@example.com")))
        .collect();
    store
        .upsert_leads(&new, "test", t0() - Duration::days(1))
        .await
        .expect("upsert");
    let others = store.leads_in_state(LeadState::New, 0, n + 10).await;
    let batch: Vec<_> = others
        .expect("leads")
        .iter()
        .map(|l| enrolment(l, "c", t0() + Duration::days(3)))
        .collect();
    let enrolled = store.enrol(&batch, t0()).await.expect("enrol");
    assert_eq!(enrolled, n);
}

/// (lead, campaign, step, state) of every delivery, by id.
async fn rows<S: Store>(store: &S) -> Vec<(i64, String, i64, String)> {
    deliveries(store)
        .await
        .into_iter()
        .map(|d| (d.lead_id, d.campaign, d.step, d.state))
        .collect()
}

/// A lead's deliveries are its own: each lead's list holds its four rows, as stored, by id.
async fn each_lead_has_its_own_deliveries<S: Store>(store: &S, leads: [i64; 2]) {
    let all = rows(store).await;
    for lead_id in leads {
        let listed: Vec<_> = store
            .lead_deliveries(lead_id)
            .await
            .expect("lead rows")
            .into_iter()
            .map(|d| (lead_id, d.campaign, i64::from(d.step), d.state))
            .collect();
        let stored: Vec<_> = all.iter().filter(|r| r.0 == lead_id).cloned().collect();
        assert_eq!(listed.len(), 4, "{listed:?}");
        assert_eq!(listed, stored);
    }
}

/// No plan reads `deliveries` but by `deliveries_enrolment`; `scan` is what a full read says.
fn assert_through_enrolments(plans: &[(&str, Vec<String>)], scan: &str) {
    assert_eq!(plans.len(), 7);
    for (name, plan) in plans {
        let text = plan.join("\n");
        assert!(
            text.contains("deliveries_enrolment"),
            "{name} does not search deliveries_enrolment:\n{text}"
        );
        assert!(!text.contains(scan), "{name} reads every delivery:\n{text}");
        assert!(
            !text.contains("deliveries_due") && !text.contains("deliveries_pending"),
            "{name} reads the pending rows of every lead:\n{text}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_leads_deliveries_are_found_through_its_enrolments_on_sqlite() {
    let db = TestDatabase::sqlite();
    let store = SqliteStore::connect(db.url()).await.expect("open");
    store.migrate().await.expect("migrate");
    let (ann, bob) = two_leads_mid_way(&store).await;
    each_lead_has_its_own_deliveries(&store, [ann, bob]).await;
    let plans = store.lead_delivery_plans(t0()).await.expect("plans");
    for (name, plan) in &plans {
        let scans: Vec<_> = plan
            .iter()
            .filter(|l| l.starts_with("SCAN") && !l.contains("USING"))
            .collect();
        // `hold_paused_leads` reads the paused leads by `leads_state`, then their rows.
        assert!(scans.is_empty(), "{name} scans: {plan:#?}");
    }
    assert_through_enrolments(&plans, "SCAN deliveries");
    store.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_leads_deliveries_are_found_through_its_enrolments_on_postgres() {
    crate::scale::on_postgres("delivery key", |store: PgStore, url| async move {
        let (ann, bob) = two_leads_mid_way(&store).await;
        each_lead_has_its_own_deliveries(&store, [ann, bob]).await;
        // Statistics of a table with other leads' rows, as a live one has (on a few rows any
        // plan reads them all).
        others_waiting(&store, 2000).await;
        let mut conn = sqlx::PgConnection::connect(&url).await.expect("connect");
        sqlx::query("ANALYZE")
            .execute(&mut conn)
            .await
            .expect("analyze");
        let _ = conn.close().await;
        let plans = store.lead_delivery_plans(t0()).await.expect("plans");
        assert_through_enrolments(&plans, "Seq Scan on deliveries");
    })
    .await;
}

// ── The migration keeps what an earlier version wrote ──────────────────────────────────

/// An instant as each database stores it: SQLite milliseconds, PostgreSQL a `timestamptz`.
fn at(postgres: bool, t: DateTime<Utc>) -> String {
    if postgres {
        format!("'{}'::timestamptz", t.to_rfc3339())
    } else {
        t.timestamp_millis().to_string()
    }
}

/// What an earlier version's enrolment of `lead_id` in `campaign` wrote (the lead nurturing,
/// the enrolment, its `enrolled` event and its first step due at `due`), in SQL: today's
/// statements name the new key, which the earlier schema does not have.
pub(crate) fn enrolled_before(
    postgres: bool,
    lead_id: i64,
    campaign: &str,
    due: DateTime<Utc>,
) -> [String; 4] {
    let enrolled = at(postgres, due - Duration::hours(1));
    let object = if postgres {
        "jsonb_build_object"
    } else {
        "json_object"
    };
    [
        format!("UPDATE leads SET state = 'nurturing' WHERE id = {lead_id}"),
        format!(
            "INSERT INTO enrolments (lead_id, campaign, segment, state, enrolled_at)
             VALUES ({lead_id}, '{campaign}', 'test', 'active', {enrolled})"
        ),
        format!(
            "INSERT INTO events (lead_id, at, kind, detail)
             VALUES ({lead_id}, {enrolled}, 'enrolled', {object}('campaign', '{campaign}'))"
        ),
        format!(
            "INSERT INTO deliveries (lead_id, enrolment_id, campaign, step, template, state, due_at, updated_at)
             SELECT lead_id, id, campaign, 0, 'first', 'scheduled', {}, {enrolled}
             FROM enrolments WHERE lead_id = {lead_id} AND campaign = '{campaign}'",
            at(postgres, due)
        ),
    ]
}

/// Ann and Bob mid-way through `c` and `d` under the earlier schema: each first step sent at
/// `t0`, each second step due a day later.
fn mid_way_before(postgres: bool, leads: &[i64]) -> Vec<String> {
    let mut sql = Vec::new();
    for &lead_id in leads {
        for campaign in ["c", "d"] {
            sql.extend(enrolled_before(postgres, lead_id, campaign, t0()));
        }
    }
    let (sent, next) = (at(postgres, t0()), at(postgres, t0() + Duration::days(1)));
    sql.push(format!(
        "UPDATE deliveries SET state = 'sent', sent_at = {sent}, updated_at = {sent}, message_id = '<old@x>'"
    ));
    sql.push(format!(
        "INSERT INTO deliveries (lead_id, enrolment_id, campaign, step, template, state, due_at, updated_at)
         SELECT lead_id, enrolment_id, campaign, 1, 'next', 'scheduled', {next}, {sent} FROM deliveries ORDER BY id"
    ));
    sql
}

async fn two_new_leads<S: Store>(store: &S) -> Vec<i64> {
    store
        .upsert_leads(
            &[lead("ann@example.com"), lead("bob@example.com")],
            "test",
            t0() - Duration::days(1),
        )
        .await
        .expect("upsert");
    let leads = store.leads_in_state(LeadState::New, 0, 10).await;
    leads.expect("leads").iter().map(|l| l.id).collect()
}

/// After the migration: the same rows, the counters still match them, a send still writes its
/// next step (the recreated triggers count it), and the same step again is refused.
async fn the_rows_survive_the_new_key<S: Store>(
    store: &S,
    before: &[(i64, String, i64, String)],
    duplicate: sqlx::Result<u64>,
) {
    assert_eq!(before.len(), 8);
    assert_eq!(rows(store).await, before);
    assert_eq!(send_due(store, t0() + Duration::days(2), true).await, 4);
    let after = rows(store).await;
    assert_eq!(after.len(), 12);
    let status = store
        .status(t0(), t0() + Duration::days(2))
        .await
        .expect("status");
    let count = |state: &str| after.iter().filter(|r| r.3 == state).count() as i64;
    for (state, n) in [("sent", 8), ("scheduled", 4)] {
        assert_eq!(count(state), n);
        assert_eq!(
            status.deliveries_by_state.get(state).copied().unwrap_or(0),
            n,
            "{state}: {:?}",
            status.deliveries_by_state
        );
    }
    let error = duplicate.expect_err("the same step of the same round twice");
    assert!(
        error.to_string().to_lowercase().contains("unique"),
        "{error}"
    );
}

/// A copy of one delivery's enrolment, round and step (its lead and campaign unchanged).
const DUPLICATE_STEP: &str = "INSERT INTO deliveries (lead_id, enrolment_id, campaign, step, template, state, due_at, updated_at, cycle)
     SELECT lead_id, enrolment_id, campaign, step, template, 'scheduled', due_at, updated_at, cycle FROM deliveries WHERE step = 1
     ORDER BY id LIMIT 1";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_migration_keys_the_stored_deliveries_by_enrolment_on_sqlite() {
    let db = TestDatabase::sqlite();
    let store = SqliteStore::connect(db.url()).await.expect("open");
    store.migrate_before(24).await.expect("migrate to 0023");
    let leads = two_new_leads(&store).await;
    let mut conn = sqlx::SqliteConnection::connect(db.url())
        .await
        .expect("connect");
    for sql in mid_way_before(false, &leads) {
        let query = sqlx::query(sqlx::AssertSqlSafe(sql));
        query.execute(&mut conn).await.expect("old rows");
    }
    let before = rows(&store).await;
    store.migrate().await.expect("migrate the rest");
    let duplicate = sqlx::query(DUPLICATE_STEP).execute(&mut conn).await;
    let _ = conn.close().await;
    the_rows_survive_the_new_key(&store, &before, duplicate.map(|r| r.rows_affected())).await;
    store.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_migration_keys_the_stored_deliveries_by_enrolment_on_postgres() {
    with_postgres("delivery key migration", |url| async move {
        let store = PgStore::connect(&url).await.expect("connect");
        store.migrate_before(25).await.expect("migrate to 0024");
        let leads = two_new_leads(&store).await;
        let mut conn = sqlx::PgConnection::connect(&url).await.expect("connect");
        for sql in mid_way_before(true, &leads) {
            let query = sqlx::query(sqlx::AssertSqlSafe(sql));
            query.execute(&mut conn).await.expect("old rows");
        }
        let before = rows(&store).await;
        store.migrate().await.expect("migrate the rest");
        let duplicate = sqlx::query(DUPLICATE_STEP).execute(&mut conn).await;
        let _ = conn.close().await;
        the_rows_survive_the_new_key(&store, &before, duplicate.map(|r| r.rows_affected())).await;
        store.close().await;
    })
    .await;
}
