//! Holidays per lead country, through the real path: leads in several countries and zones are
//! imported and enrolled by `run --once` (the binary), so their next emails are stored rows;
//! then `forecast --days N --leads --json` and the daemon's passes over the same days (as in
//! `forecast_exact`) must agree email for email, and nobody gets an email on a holiday of
//! their country: Thanksgiving (US), Christmas and Boxing Day (GB), Labour Thanksgiving Day
//! and Golden Week (JP), Easter Monday (DE, a moving feast). Half of the leads have a
//! `country` column that differs from their zone's country (a US lead in London, a GB lead
//! in UTC, a DE lead in Chicago, a JP lead in UTC): their holidays come from the column, in
//! the forecast's replay of stored rows too.

use std::path::Path;

use crate::forecast_exact::{Sends, assert_agree, at, daemon_on, forecast_of, rewarm_ok};
use crate::support::bin::repo;
use crate::support::config::TestConfig;
use crate::support::db::{TestDatabase, with_postgres};

/// One campaign `checkin`: the first email 30 days after the loss, then weekly, seven in
/// all, Mon–Fri 09:00–17:00 in the lead's zone, no email on its country's holidays. Passes
/// every two hours (on even UTC hours from the start).
fn write_config(dir: &Path, url: &str) -> std::path::PathBuf {
    let outbox = dir.join("outbox");
    TestConfig::bare(url)
        .timezone("UTC")
        .templates_dir(&repo().join("templates"))
        .file_transport(&outbox.display().to_string())
        .set_str("scheduler", "tick", "2h")
        .segment("everyone", "checkin")
        .campaign("checkin", "30d", "7d")
        .campaign_key("checkin", "max_touches", "7")
        .campaign_key("checkin", "templates", r#"["checkin"]"#)
        .campaign_key("checkin", "skip_holidays", "true")
        .write(&dir.join("rewarm.toml"))
}

/// A season: leads imported and enrolled an hour before `start`, then `days` forecast and
/// run; `(lead, days without an email to it, the day of its moved email)` (UTC dates).
struct Season {
    start: &'static str,
    days: i64,
    leads: &'static str,
    holidays: &'static [(&'static str, &'static [&'static str], &'static str)],
}

/// From Mon 16 Nov 2026 to 31 Dec: Thanksgiving, Labour Thanksgiving Day, Christmas, Boxing
/// Day. Each lead's steps are weekly from its first (30 days after the loss).
const WINTER: Season = Season {
    start: "2026-11-16T08:00:00Z",
    days: 45,
    leads: "email,first_name,lost_reason,lost_at,timezone,country
us-in-london@example.com,Una,timing,2026-10-20T09:00:00Z,Europe/London,US
gb-in-utc@example.co.uk,Gail,timing,2026-10-21T10:00:00Z,UTC,GB
ny@example.com,Ned,timing,2026-10-27T15:00:00Z,America/New_York,
tokyo@example.jp,Taro,timing,2026-10-24T01:00:00Z,Asia/Tokyo,
",
    holidays: &[
        // Thu 19 Nov, then Thanksgiving (US, not GB) → Fri 27; Christmas → Mon 28.
        (
            "us-in-london@example.com",
            &["2026-11-26", "2026-12-25"],
            "2026-11-27",
        ),
        // Fri 20 Nov weekly: Christmas, the weekend, Boxing Day observed → Tue 29 Dec.
        (
            "gb-in-utc@example.co.uk",
            &["2026-12-25", "2026-12-28"],
            "2026-12-29",
        ),
        // Its first email falls on Thanksgiving (US from the zone) → Fri 27 Nov.
        ("ny@example.com", &["2026-11-26"], "2026-11-27"),
        // Labour Thanksgiving Day (JP, Mon 23 Nov) → Tue 24, 09:00 JST.
        ("tokyo@example.jp", &["2026-11-23"], "2026-11-24"),
    ],
};

/// From Wed 25 Mar 2026 to 14 May: Easter Monday (6 Apr) and Golden Week (4–6 May).
const SPRING: Season = Season {
    start: "2026-03-25T08:00:00Z",
    days: 50,
    leads: "email,first_name,lost_reason,lost_at,timezone,country
de-in-chicago@example.de,Dora,timing,2026-02-28T16:00:00Z,America/Chicago,DE
jp-in-utc@example.jp,Jun,timing,2026-03-01T10:00:00Z,UTC,JP
berlin@example.de,Bernd,timing,2026-03-06T09:00:00Z,Europe/Berlin,
tokyo@example.jp,Taro,timing,2026-02-28T01:00:00Z,Asia/Tokyo,
",
    holidays: &[
        // Mon 30 Mar weekly: Easter Monday (DE, not US) → Tue 7 Apr.
        ("de-in-chicago@example.de", &["2026-04-06"], "2026-04-07"),
        // Tue 31 Mar weekly: Children's Day in Golden Week → Thu 7 May.
        (
            "jp-in-utc@example.jp",
            &["2026-05-04", "2026-05-05", "2026-05-06"],
            "2026-05-07",
        ),
        // Its first email falls on Easter Sunday, then Easter Monday → Tue 7 Apr.
        ("berlin@example.de", &["2026-04-06"], "2026-04-07"),
        // Mon 30 Mar weekly: Golden Week (Mon 4 – Wed 6 May) → Thu 7 May 09:00 JST.
        (
            "tokyo@example.jp",
            &["2026-05-04", "2026-05-05", "2026-05-06"],
            "2026-05-07",
        ),
    ],
};

async fn season_agrees(url: String, season: &Season) {
    let dir = tempfile::tempdir().expect("a temporary folder");
    let config = write_config(dir.path(), &url);
    let csv = dir.path().join("leads.csv");
    std::fs::write(&csv, season.leads).expect("write leads");
    let before = (at(season.start) - chrono::Duration::hours(1)).to_rfc3339();
    rewarm_ok(
        &config,
        &[
            "leads",
            "import",
            csv.to_str().expect("a path"),
            "--now",
            &before,
        ],
    );
    // Enrolled: every lead's next email is a stored row before the forecast starts.
    rewarm_ok(&config, &["run", "--once", "--now", &before]);
    let forecast = forecast_of(&config, season.start, season.days);
    let emails: Vec<&str> = season
        .leads
        .lines()
        .skip(1)
        .map(|l| l.split(',').next().unwrap_or_default())
        .collect();
    let daemon = daemon_on(&url, &config, season.start, season.days, &emails).await;
    assert_agree(&forecast, &daemon);
    for (lead, closed, moved_to) in season.holidays {
        let days = days_of(&daemon, lead);
        for day in *closed {
            assert!(
                !days.contains(&day.to_string()),
                "{lead} on {day}: {days:?}"
            );
        }
        assert!(
            days.contains(&moved_to.to_string()),
            "{lead} not on {moved_to}: {days:?}"
        );
    }
}

/// The UTC days on which `lead` got an email.
fn days_of(sends: &Sends, lead: &str) -> Vec<String> {
    sends
        .iter()
        .filter(|(k, _)| k.0 == lead)
        .map(|(_, minute)| minute[..10].to_string())
        .collect()
}

async fn winter(url: String) {
    season_agrees(url, &WINTER).await;
}

async fn spring(url: String) {
    season_agrees(url, &SPRING).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn holidays_per_country_hold_in_the_forecast_and_the_daemon_alike_on_sqlite() {
    let winter_db = TestDatabase::sqlite();
    winter(winter_db.url().to_string()).await;
    let spring_db = TestDatabase::sqlite();
    spring(spring_db.url().to_string()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn holidays_per_country_hold_in_the_forecast_and_the_daemon_alike_on_postgres() {
    with_postgres(
        "holidays_per_country_hold_in_the_forecast_and_the_daemon_alike_winter",
        winter,
    )
    .await;
    with_postgres(
        "holidays_per_country_hold_in_the_forecast_and_the_daemon_alike_spring",
        spring,
    )
    .await;
}
