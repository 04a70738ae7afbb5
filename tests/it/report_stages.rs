//! The report's kept stages (migration 0019) against the event log, on SQLite and
//! PostgreSQL. Histories that move the report's windows are written row by row, the way no
//! daemon path writes them in one go: a second campaign later (the window of the first
//! shrinks), two campaigns at the same instant (both windows hold the same events), an
//! enrolment dated before events already there, a campaign entered again (its start moves),
//! a reply recorded out of order, a sent delivery deleted, an event's reason rewritten (as
//! `leads forget` does) and an event deleted. After each step every enrolment's kept stages
//! must equal a recomputation from the event log, and the report must give, for every
//! grouping and several ranges, the figures `report --verify` recomputes from the events.

use chrono::{DateTime, Duration, TimeZone, Utc};
use rewarm::domain::report::GroupBy;
use rewarm::store::postgres::PgStore;
use rewarm::store::prelude::*;
use rewarm::store::sqlite::SqliteStore;
use rewarm::store::{ReportQuery, ReportStore};
use sqlx::Connection as _;

use crate::support::db::{TestDatabase, with_postgres};

/// Day 0 of the histories.
fn day(n: f64) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, 2, 9, 0, 0).unwrap() + Duration::minutes((n * 1440.0) as i64)
}

/// A time as the backend's SQL literal (SQLite keeps milliseconds, PostgreSQL timestamptz).
fn at(postgres: bool, n: f64) -> String {
    let ms = day(n).timestamp_millis();
    if postgres {
        format!("to_timestamp({ms} / 1000.0)")
    } else {
        ms.to_string()
    }
}

/// The steps of the history, each a list of statements (`{d:N}` is day N's time).
const STEPS: &[&[&str]] = &[
    // Six leads, each lost a year before day 0 (lead 6 has no owner).
    &[
        "INSERT INTO leads (id, email, owner_email, lost_reason, lost_at, state, created_at, updated_at) VALUES
            (1, 'l1@x.example', 'olga@acme.test', 'no_budget', {d:-365}, 'nurturing', {d:0}, {d:0}),
            (2, 'l2@x.example', 'olga@acme.test', 'no_budget', {d:-365}, 'nurturing', {d:0}, {d:0}),
            (3, 'l3@x.example', 'pete@acme.test', 'no_budget', {d:-300}, 'nurturing', {d:0}, {d:0}),
            (4, 'l4@x.example', 'pete@acme.test', 'went_quiet', {d:-200}, 'nurturing', {d:0}, {d:0}),
            (5, 'l5@x.example', 'pete@acme.test', 'went_quiet', {d:-100}, 'nurturing', {d:0}, {d:0}),
            (6, 'l6@x.example', NULL, 'went_quiet', {d:-50}, 'nurturing', {d:0}, {d:0})",
    ],
    // Lead 1 in `budget` on day 0, emailed an hour later, replies on day 5.
    &[
        "INSERT INTO enrolments (id, lead_id, campaign, segment, enrolled_at) VALUES (1, 1, 'budget', 'no-budget', {d:0})",
        "INSERT INTO deliveries (id, lead_id, enrolment_id, campaign, step, template, due_at, updated_at)
            VALUES (1, 1, 1, 'budget', 0, 'budget_followup', {d:0}, {d:0})",
        "UPDATE deliveries SET state = 'sent', sent_at = {d:0.04} WHERE id = 1",
        "INSERT INTO events (lead_id, at, kind, detail) VALUES (1, {d:5}, 'replied', '{\"intent\":\"later\"}')",
    ],
    // Lead 1 moves on to `checkin` on day 10 and re-warms on day 12: `budget`'s window ends.
    &[
        "INSERT INTO enrolments (id, lead_id, campaign, segment, enrolled_at) VALUES (2, 1, 'checkin', 'everyone', {d:10})",
        "INSERT INTO events (lead_id, at, kind, detail) VALUES (1, {d:12}, 'rewarmed', '{}')",
    ],
    // Lead 2 enters two campaigns at the same instant; an unsubscribe on day 3 counts in both.
    &[
        "INSERT INTO enrolments (id, lead_id, campaign, segment, enrolled_at) VALUES
            (3, 2, 'budget', 'no-budget', {d:1}), (4, 2, 'checkin', 'everyone', {d:1})",
        "INSERT INTO events (lead_id, at, kind, detail) VALUES (2, {d:3}, 'suppressed', '{\"reason\":\"unsubscribed\"}')",
    ],
    // Lead 3 replies on day 2 in `budget` (day 0); then an enrolment dated day 1 arrives: the
    // reply is now `checkin`'s.
    &[
        "INSERT INTO enrolments (id, lead_id, campaign, segment, enrolled_at) VALUES (5, 3, 'budget', 'no-budget', {d:0})",
        "INSERT INTO events (lead_id, at, kind, detail) VALUES (3, {d:2}, 'replied', '{\"intent\":\"question\"}')",
        "INSERT INTO enrolments (id, lead_id, campaign, segment, enrolled_at) VALUES (6, 3, 'checkin', 'everyone', {d:1})",
    ],
    // Lead 3 enters `budget` again on day 20 and is won on day 22; a reply on day 21 is
    // recorded after the win, and an earlier win (day 21.5) after that.
    &[
        "UPDATE enrolments SET enrolled_at = {d:20}, cycle = cycle + 1 WHERE id = 5",
        "INSERT INTO events (lead_id, at, kind, detail) VALUES (3, {d:22}, 'won', '{}')",
        "INSERT INTO events (lead_id, at, kind, detail) VALUES (3, {d:21}, 'replied', '{}')",
        "INSERT INTO events (lead_id, at, kind, detail) VALUES (3, {d:21.5}, 'won', '{}')",
    ],
    // Lead 4: its history comes first (a hard bounce on day 4, out of scope on day 6), then
    // an enrolment dated day 2, as `db copy` may write them.
    &[
        "INSERT INTO events (lead_id, at, kind, detail) VALUES
            (4, {d:4}, 'suppressed', '{\"reason\":\"hard_bounce\"}'), (4, {d:6}, 'out_of_scope', '{}')",
        "INSERT INTO enrolments (id, lead_id, campaign, segment, enrolled_at) VALUES (7, 4, 'checkin', 'everyone', {d:2})",
    ],
    // Lead 5: emailed twice, the first send deleted; a complaint whose reason is rewritten,
    // then a re-warm that is deleted.
    &[
        "INSERT INTO enrolments (id, lead_id, campaign, segment, enrolled_at) VALUES (8, 5, 'checkin', 'everyone', {d:3})",
        "INSERT INTO deliveries (id, lead_id, enrolment_id, campaign, step, template, state, due_at, sent_at, updated_at)
            VALUES (2, 5, 8, 'checkin', 0, 'checkin', 'sent', {d:3}, {d:3.5}, {d:3}),
                   (3, 5, 8, 'checkin', 1, 'checkin', 'sent', {d:9}, {d:9.5}, {d:9})",
        "INSERT INTO events (lead_id, at, kind, detail) VALUES (5, {d:7}, 'suppressed', '{\"reason\":\"complaint\"}')",
        "INSERT INTO events (lead_id, at, kind, detail) VALUES (5, {d:8}, 'rewarmed', '{}')",
    ],
    &[
        "DELETE FROM deliveries WHERE id = 2",
        "UPDATE events SET detail = '{\"reason\":\"manual\"}' WHERE lead_id = 5 AND kind = 'suppressed'",
        "DELETE FROM events WHERE lead_id = 5 AND kind = 'rewarmed'",
    ],
    // Lead 6, no owner: enrolled on day 40, emailed, re-warmed on day 45 (after the ranges
    // that end on day 30).
    &[
        "INSERT INTO enrolments (id, lead_id, campaign, segment, enrolled_at) VALUES (9, 6, 'checkin', 'everyone', {d:40})",
        "INSERT INTO deliveries (id, lead_id, enrolment_id, campaign, step, template, due_at, updated_at)
            VALUES (4, 6, 9, 'checkin', 0, 'checkin', {d:40}, {d:40})",
        "UPDATE deliveries SET state = 'sent', sent_at = {d:40.1} WHERE id = 4",
        "INSERT INTO events (lead_id, at, kind, detail) VALUES (6, {d:45}, 'rewarmed', '{}'), (6, {d:44}, 'replied', '{}')",
    ],
];

/// A statement with its `{d:N}` times written out.
fn statement(template: &str, postgres: bool) -> String {
    let mut out = String::new();
    let mut rest = template;
    while let Some(i) = rest.find("{d:") {
        out.push_str(&rest[..i]);
        let end = i + rest[i..].find('}').expect("closing brace");
        let n: f64 = rest[i + 3..end].parse().expect("day");
        out.push_str(&at(postgres, n));
        rest = &rest[end + 1..];
    }
    out.push_str(rest);
    out
}

/// The ranges the report is asked for: all, the first 30 days, days 1–11, from day 10.
fn ranges() -> Vec<(Option<DateTime<Utc>>, DateTime<Utc>)> {
    vec![
        (None, day(100.0)),
        (Some(day(0.0)), day(30.0)),
        (Some(day(1.0)), day(11.0)),
        (Some(day(10.0)), day(100.0)),
        (None, day(6.5)),
    ]
}

async fn check_reports(store: &impl ReportStore) -> usize {
    let mut nonempty = 0;
    for (since, until) in ranges() {
        for by in [
            GroupBy::Campaign,
            GroupBy::Segment,
            GroupBy::Owner,
            GroupBy::Month,
        ] {
            let q = ReportQuery { since, until, by };
            let kept = store.report_counts(&q).await.expect("report");
            let log = store
                .report_counts_from_events(&q)
                .await
                .expect("recompute");
            assert_eq!(kept, log, "{by:?} from {since:?} until {until}");
            nonempty += usize::from(!kept.funnels.is_empty());
        }
    }
    nonempty
}

macro_rules! run_history {
    ($store:expr, $url:expr, $conn:ty, $postgres:expr) => {{
        let store = $store;
        store.migrate().await.expect("migrate");
        let mut conn = <$conn>::connect($url).await.expect("connect");
        for step in STEPS {
            for template in *step {
                let sql = statement(template, $postgres);
                sqlx::query(sqlx::AssertSqlSafe(sql.clone()))
                    .execute(&mut conn)
                    .await
                    .unwrap_or_else(|e| panic!("{sql}: {e}"));
            }
            crate::support::counts::assert_exact($url).await;
            check_reports(&store).await;
        }
        let _ = conn.close().await;
        // The whole history, known figures: all time, by campaign.
        let q = ReportQuery {
            since: None,
            until: day(100.0),
            by: GroupBy::Campaign,
        };
        let counts = store.report_counts(&q).await.expect("report");
        // budget: leads 1, 2, 3 (3 entered again on day 20); checkin: leads 1–6.
        // Stages: enrolled, emailed, replied, re-warmed, won, out of scope, unsubscribed, bounced.
        assert_eq!(
            counts.funnels,
            vec![
                ("(all)".to_string(), [6, 3, 3, 2, 1, 1, 1, 1]),
                ("budget".to_string(), [3, 1, 2, 0, 1, 0, 1, 0]),
                ("checkin".to_string(), [6, 2, 2, 2, 0, 1, 1, 1]),
            ],
            "{counts:?}"
        );
        assert_eq!(store.rebuild_report_stages().await.expect("rebuild"), 9);
        assert_eq!(store.report_counts(&q).await.expect("report"), counts);
        crate::support::counts::assert_exact($url).await;
    }};
}

#[tokio::test]
async fn kept_stages_follow_every_write_on_sqlite() {
    let db = TestDatabase::sqlite();
    let store = SqliteStore::connect(db.url()).await.expect("open");
    run_history!(store, db.url(), sqlx::SqliteConnection, false);
}

#[tokio::test]
async fn kept_stages_follow_every_write_on_postgres() {
    with_postgres("kept_stages_follow_every_write", |url| async move {
        let store = PgStore::connect(&url).await.expect("connect");
        run_history!(store, &url, sqlx::PgConnection, true);
    })
    .await;
}
