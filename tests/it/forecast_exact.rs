//! The forecast is what happens: `rewarm forecast --days 60 --leads --json --now T` (the
//! binary), then the daemon's passes one `scheduler.tick` (47 minutes) apart over the same 60 days (the
//! pass the daemon loop and `run --once` run, in this process so that the limiter keeps its
//! state from pass to pass as in the daemon; the `file` transport; no replies), and the two
//! must agree email for email: lead, campaign, step, template and the pass (minute) that
//! sends it. The config has a daily cap that defers, send windows in four zones, a segment
//! with `min_age` that leads reach during the 60 days, and a `then`.

use crate::support;

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use rewarm::app::{Loaded, build_transport};
use rewarm::config::Settings;
use rewarm::outbound::scheduler;
use rewarm::store::Store;
use rewarm::store::postgres::PgStore;
use rewarm::store::sqlite::SqliteStore;
use serde_json::Value;
use tokio_util::sync::CancellationToken;

use support::bin::{self, repo};
use support::config::TestConfig;
use support::db::{TestDatabase, with_postgres};

const T: &str = "2026-12-02T08:00:00Z";
const DAYS: i64 = 60;

/// (lead, campaign, step, template) → the minute it goes out.
pub(crate) type Sends = BTreeMap<(String, String, u64, String), String>;

fn write_config(dir: &Path, url: &str) -> std::path::PathBuf {
    let outbox = dir.join("outbox");
    TestConfig::bare(url)
        .timezone("UTC")
        .templates_dir(&repo().join("templates"))
        .file_transport(&outbox.display().to_string())
        // 47 minutes: no two passes are exactly 24 hours apart, so whether a place under the
        // daily cap freed by a send at pass p is free again at pass p + 24 h never depends on
        // how many milliseconds into each pass the limiter was asked (docs/commands.md).
        .set_str("scheduler", "tick", "47m")
        .set("transport.limits", "daily_cap", "3")
        .segment("lost-to-a-competitor", "competitor")
        .set("segments", "lost_reason", r#"["competitor"]"#)
        .set_str("segments", "min_age", "30d")
        .segment("no-budget", "budget")
        .set("segments", "lost_reason", r#"["budget"]"#)
        // Leads lost to a competitor wait for `min_age` in `new`: no other segment takes them.
        .segment("other-reasons", "checkin")
        .set("segments", "lost_reason", r#"["timing", "other"]"#)
        .campaign("competitor", "30d", "10d")
        .campaign_key("competitor", "max_touches", "3")
        .campaign_key("competitor", "templates", r#"["competitor_checkin"]"#)
        .campaign_key(
            "competitor",
            "send_window",
            r#"{ days = "Mon-Sun", hours = "08:00-20:00" }"#,
        )
        .campaign("budget", "1d", "7d")
        .campaign_key("budget", "max_touches", "3")
        .campaign_key(
            "budget",
            "templates",
            r#"["budget_followup", "budget_last_call"]"#,
        )
        .campaign_key(
            "budget",
            "send_window",
            r#"{ days = "Mon-Fri", hours = "09:00-17:00" }"#,
        )
        .campaign_key("budget", "then", r#""checkin""#)
        .campaign("checkin", "2d", "14d")
        .campaign_key("checkin", "max_touches", "2")
        .campaign_key("checkin", "templates", r#"["checkin"]"#)
        .write(&dir.join("rewarm.toml"))
}

/// Twelve leads: three lost to a competitor (one long ago; one reaching `min_age` on
/// 10 December in New York; one on 25 December in Paris — the issue's case), five without
/// budget (all due at once: the cap of 3 a day defers two), four others.
const LEADS: &str = "email,first_name,company,lost_reason,lost_at,timezone
cora@old.example,Cora,Old,competitor,2026-06-01T03:00:00Z,Asia/Tokyo
cole@ny.example,Cole,NY,competitor,2026-11-10T15:00:00Z,America/New_York
cami@paris.example,Cami,Paris,competitor,2026-11-25T09:30:00Z,Europe/Paris
bea@one.example,Bea,One,budget,2026-11-20T10:00:00Z,Europe/Paris
bob@two.example,Bob,Two,budget,2026-11-21T10:00:00Z,America/New_York
bill@three.example,Bill,Three,budget,2026-11-22T10:00:00Z,Asia/Tokyo
bess@four.example,Bess,Four,budget,2026-11-29T10:00:00Z,UTC
bert@five.example,Bert,Five,budget,2026-12-01T23:00:00Z,Europe/Paris
rita@r.example,Rita,R,timing,2025-01-10T10:00:00Z,UTC
rafe@r.example,Rafe,R,timing,2026-11-30T12:00:00Z,America/New_York
rosa@r.example,Rosa,R,timing,2026-12-01T12:00:00Z,Asia/Tokyo
ruth@r.example,Ruth,R,other,2024-05-05T05:00:00Z,Europe/Paris
";

pub(crate) fn at(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s)
        .unwrap_or_else(|e| panic!("{s}: {e}"))
        .with_timezone(&Utc)
}

pub(crate) fn rewarm_ok(config: &Path, args: &[&str]) -> String {
    let out = bin::command()
        .arg("--config")
        .arg(config)
        .args(args)
        .env_remove("RUST_LOG")
        .output()
        .expect("run rewarm");
    bin::stdout_of(&out)
}

/// `rewarm forecast --days DAYS --leads --json --now T`, email by email.
pub(crate) fn forecast_of(config: &Path, t: &str, days: i64) -> Sends {
    let text = rewarm_ok(
        config,
        &[
            "forecast",
            "--days",
            &days.to_string(),
            "--leads",
            "--json",
            "--now",
            t,
        ],
    );
    let planned: Vec<Value> = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}: {text}"));
    let mut sends = Sends::new();
    for p in planned {
        assert_eq!(p["kind"], "email", "{p}");
        let key = (
            p["email"].as_str().unwrap_or_default().to_string(),
            p["campaign"].as_str().unwrap_or_default().to_string(),
            p["step"].as_u64().unwrap_or_default(),
            p["template"].as_str().unwrap_or_default().to_string(),
        );
        let minute = at(p["at"].as_str().unwrap_or_default())
            .format("%Y-%m-%d %H:%M")
            .to_string();
        assert!(
            sends.insert(key.clone(), minute).is_none(),
            "twice: {key:?}"
        );
    }
    sends
}

/// The daemon's passes, one tick apart, from `t` for `days` days; what they sent to the
/// leads `emails`, read from their timelines.
pub(crate) async fn daemon_sends<S: Store>(
    store: &S,
    config: &Path,
    t: &str,
    days: i64,
    emails: &[&str],
) -> Sends {
    let settings = Settings::load(config).expect("the config");
    let tick = Duration::from_std(settings.scheduler.tick).expect("a tick");
    let loaded = Arc::new(Loaded::with_store(settings, store).await.expect("loaded"));
    let transport = build_transport(&loaded.settings).expect("the file transport");
    let stop = CancellationToken::new();
    let (start, until) = (at(t), at(t) + Duration::days(days));
    let mut now = start;
    let mut sent = 0;
    while now < until {
        let report = scheduler::pass(store, &loaded, &transport, now, now == start, &stop)
            .await
            .expect("a pass");
        assert_eq!(
            report.failed + report.unknown + report.retried,
            0,
            "{report:?}"
        );
        sent += report.sent;
        now += tick;
    }
    let mut sends = Sends::new();
    for &email in emails {
        let lead = store
            .lead_by_email(&rewarm::domain::email::EmailAddress::parse(email).unwrap())
            .await
            .unwrap()
            .unwrap_or_else(|| panic!("{email} imported"));
        for event in store.timeline(lead.id).await.unwrap() {
            if event.kind != "sent" {
                continue;
            }
            let d = &event.detail;
            let key = (
                email.to_string(),
                d["campaign"].as_str().unwrap_or_default().to_string(),
                d["step"].as_u64().unwrap_or_default(),
                d["template"].as_str().unwrap_or_default().to_string(),
            );
            sends.insert(key, event.at.format("%Y-%m-%d %H:%M").to_string());
        }
    }
    assert_eq!(sends.len(), sent, "every send is on a timeline once");
    sends
}

/// [`daemon_sends`] on the database `url` (SQLite or PostgreSQL).
pub(crate) async fn daemon_on(
    url: &str,
    config: &Path,
    t: &str,
    days: i64,
    emails: &[&str],
) -> Sends {
    if url.starts_with("sqlite:") {
        let store = SqliteStore::connect(url).await.expect("SQLite");
        daemon_sends(&store, config, t, days, emails).await
    } else {
        let store = PgStore::connect(url).await.expect("PostgreSQL");
        daemon_sends(&store, config, t, days, emails).await
    }
}

/// The forecast and the daemon sent the same emails at the same minutes.
pub(crate) fn assert_agree(forecast: &Sends, daemon: &Sends) {
    let only_forecast: Vec<_> = forecast
        .iter()
        .filter(|(k, v)| daemon.get(*k) != Some(*v))
        .collect();
    let only_daemon: Vec<_> = daemon
        .iter()
        .filter(|(k, v)| forecast.get(*k) != Some(*v))
        .collect();
    assert!(
        only_forecast.is_empty() && only_daemon.is_empty(),
        "forecast only: {only_forecast:#?}\ndaemon only: {only_daemon:#?}"
    );
}

async fn forecast_equals_the_daemon(url: String) {
    let dir = tempfile::tempdir().expect("a temporary folder");
    let config = write_config(dir.path(), &url);
    let csv = dir.path().join("leads.csv");
    std::fs::write(&csv, LEADS).expect("write leads");
    rewarm_ok(
        &config,
        &["leads", "import", csv.to_str().expect("a path"), "--now", T],
    );
    let forecast = forecast_of(&config, T, DAYS);
    let emails: Vec<&str> = LEADS
        .lines()
        .skip(1)
        .map(|l| l.split(',').next().unwrap_or_default())
        .collect();
    let daemon = daemon_on(&url, &config, T, DAYS, &emails).await;
    assert_agree(&forecast, &daemon);
    // What the scenario is about happened (so the agreement is not trivial).
    let minute = |lead: &str, step: u64| {
        daemon
            .iter()
            .find(|(k, _)| k.0 == lead && k.2 == step)
            .map(|(_, v)| v.clone())
    };
    assert!(
        minute("cami@paris.example", 1)
            .is_some_and(|m| ("2026-12-25 09:30".."2026-12-26").contains(&m.as_str())),
        "qualifies on 25 December 09:30 UTC (30 days in Paris): {daemon:#?}"
    );
    assert!(minute("cole@ny.example", 1).is_some_and(|m| m.as_str() >= "2026-12-10"));
    let first_day: Vec<_> = daemon
        .values()
        .filter(|m| m.starts_with("2026-12-02"))
        .collect();
    assert_eq!(first_day.len(), 3, "the daily cap: {daemon:#?}");
    assert!(
        daemon
            .keys()
            .any(|k| k.1 == "checkin" && k.0.starts_with('b')),
        "a budget lead went on to its `then`: {daemon:#?}"
    );
    let outbox = std::fs::read_dir(dir.path().join("outbox"))
        .map(|d| d.count())
        .unwrap_or(0);
    assert_eq!(outbox, daemon.len(), "every email reached the transport");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_60_day_forecast_is_what_the_daemon_sends_email_for_email_on_sqlite() {
    let db = TestDatabase::sqlite();
    forecast_equals_the_daemon(db.url().to_string()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_60_day_forecast_is_what_the_daemon_sends_email_for_email_on_postgres() {
    with_postgres(
        "the_60_day_forecast_is_what_the_daemon_sends_email_for_email_on_postgres",
        forecast_equals_the_daemon,
    )
    .await;
}
