//! Holidays, blackouts and calendar files through the real binary (`rewarm run --once --now
//! T`, the `file` transport): an email due on a holiday of the lead's country goes out at
//! the next open slot of its window — Thanksgiving (US), Christmas and Boxing Day (GB, from
//! a `country` column), Golden Week (JP), Easter Monday (DE) — and `check` names the file
//! and line of a bad `.ics`.

use crate::support;

use std::path::{Path, PathBuf};

use support::bin::{self, repo};
use support::config::TestConfig;
use support::db::TestDatabase;

pub(crate) fn run(config: &Path, now: &str, args: &[&str]) -> (bool, String, String) {
    let out = bin::command()
        .arg("--config")
        .arg(config)
        .args(["--now", now])
        .args(args)
        .env_remove("RUST_LOG")
        .output()
        .expect("run rewarm");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

pub(crate) fn run_ok(config: &Path, now: &str, args: &[&str]) -> String {
    let (ok, stdout, stderr) = run(config, now, args);
    assert!(ok, "rewarm {args:?} at {now}: {stdout}\n{stderr}");
    stdout
}

/// The recipients of the .eml files in `outbox`, sorted.
pub(crate) fn recipients(outbox: &Path) -> Vec<String> {
    let mut out: Vec<String> = std::fs::read_dir(outbox)
        .map(|dir| {
            dir.filter_map(|e| e.ok())
                .filter_map(|e| std::fs::read_to_string(e.path()).ok())
                .filter_map(|text| {
                    text.lines()
                        .find_map(|l| l.strip_prefix("To: ").map(str::to_string))
                })
                .collect()
        })
        .unwrap_or_default();
    out.sort();
    out
}

/// A config with one campaign `hello`: one email 30 days after the loss, weekday office
/// hours, `skip_holidays`; the file transport into `outbox`.
pub(crate) fn holiday_config(dir: &Path, database_url: &str) -> (PathBuf, PathBuf) {
    let outbox = dir.join("outbox");
    let config = TestConfig::bare(database_url)
        .timezone("UTC")
        .templates_dir(&repo().join("tests/fixtures/pipeline/templates"))
        .file_transport(&outbox.display().to_string())
        .segment("everyone", "hello")
        .campaign("hello", "30d", "30d")
        .campaign_key("hello", "max_touches", "1")
        .campaign_key("hello", "templates", r#"["recycle_first", "recycle_next"]"#)
        .campaign_key("hello", "skip_holidays", "true")
        .write(&dir.join("rewarm.toml"));
    (config, outbox)
}

fn first_due(config: &Path, now: &str, email: &str) -> String {
    let shown: serde_json::Value =
        serde_json::from_str(&run_ok(config, now, &["leads", "show", email, "--json"])).unwrap();
    let enrolled = shown["timeline"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["kind"] == "enrolled")
        .unwrap_or_else(|| panic!("{email} not enrolled: {shown}"));
    enrolled["detail"]["first_due"]
        .as_str()
        .unwrap()
        .to_string()
}

#[test]
fn emails_due_on_a_holiday_of_the_leads_country_go_out_on_the_next_open_day() {
    let dir = tempfile::tempdir().unwrap();
    let db = TestDatabase::sqlite();
    let (config, outbox) = holiday_config(dir.path(), db.url());
    // Each loss + 30 days lands on a holiday at 10:00–11:00 local time. Each lead is
    // imported (and enrolled by a pass) an hour after its loss.
    let leads = [
        // Easter Monday (6 Apr 2026, 10:00 CEST) → Tuesday, when the window opens (09:00).
        (
            "berlin@example.de",
            "2026-03-07T09:00:00Z",
            "Europe/Berlin",
            "",
            "2026-04-07T07:00:00+00:00",
        ),
        // Sunday 3 May; Golden Week Mon 4 – Wed 6 May → Thursday 09:00 JST.
        (
            "tokyo@example.jp",
            "2026-04-03T01:00:00Z",
            "Asia/Tokyo",
            "",
            "2026-05-07T00:00:00+00:00",
        ),
        // Thanksgiving (Thu 26 Nov 2026, 11:00 EST) → Friday 09:00 EST.
        (
            "ny@example.com",
            "2026-10-27T15:00:00Z",
            "America/New_York",
            "",
            "2026-11-27T14:00:00+00:00",
        ),
        // Christmas (Fri), the weekend, Boxing Day observed (Mon 28) → Tuesday 09:00, in a
        // UTC zone with `country` GB.
        (
            "london@example.co.uk",
            "2026-11-25T10:00:00Z",
            "UTC",
            "GB",
            "2026-12-29T09:00:00+00:00",
        ),
    ];
    // On each holiday, at the hour the cadence alone would have chosen: nothing goes out.
    // The next open day: that lead's email, and only it.
    let passes = [
        ("2026-04-06T08:30:00Z", 0),
        ("2026-04-07T08:30:00Z", 1),
        ("2026-05-04T01:30:00Z", 1),
        ("2026-05-06T01:30:00Z", 1),
        ("2026-05-07T00:30:00Z", 2),
        ("2026-11-26T16:30:00Z", 2),
        ("2026-11-27T14:30:00Z", 3),
        ("2026-12-25T10:30:00Z", 3),
        ("2026-12-28T10:30:00Z", 3),
        ("2026-12-29T09:30:00Z", 4),
    ];
    // Imports and passes in time order.
    let mut steps: Vec<(String, Option<usize>, Option<usize>)> = leads
        .iter()
        .enumerate()
        .map(|(i, l)| {
            let at =
                chrono::DateTime::parse_from_rfc3339(l.1).unwrap() + chrono::TimeDelta::hours(1);
            (
                at.to_utc().format("%Y-%m-%dT%H:%M:%SZ").to_string(),
                Some(i),
                None,
            )
        })
        .chain(
            passes
                .iter()
                .map(|(at, n)| (at.to_string(), None, Some(*n))),
        )
        .collect();
    steps.sort();
    for (at, lead, sent) in steps {
        if let Some(i) = lead {
            let (email, lost, zone, country, due) = leads[i];
            let csv = dir.path().join(format!("leads-{i}.csv"));
            std::fs::write(
                &csv,
                format!("email,lost_reason,lost_at,timezone,country,industry\n{email},no_budget,{lost},{zone},{country},logistics\n"),
            )
            .unwrap();
            run_ok(&config, &at, &["leads", "import", csv.to_str().unwrap()]);
            run_ok(&config, &at, &["run", "--once"]);
            assert_eq!(first_due(&config, &at, email), due, "{email}");
        }
        if let Some(sent) = sent {
            if at == "2026-04-06T08:30:00Z" {
                let story = run_ok(&config, &at, &["explain", "berlin@example.de"]);
                for want in [
                    "Next email: step 1 `recycle_first` due Tue 2026-04-07 09:00 CEST",
                    "closed day: Mon 2026-04-06 is a holiday in DE: Easter Monday",
                ] {
                    assert!(story.contains(want), "{want}\n{story}");
                }
            }
            run_ok(&config, &at, &["run", "--once"]);
            assert_eq!(recipients(&outbox).len(), sent, "after the pass at {at}");
        }
    }
    assert_eq!(
        recipients(&outbox),
        [
            "berlin@example.de",
            "london@example.co.uk",
            "ny@example.com",
            "tokyo@example.jp"
        ]
    );
}

#[test]
fn blackouts_and_calendar_files_hold_every_lead_and_bad_files_are_named_with_their_line() {
    let dir = tempfile::tempdir().unwrap();
    let db = TestDatabase::sqlite();
    let (config, outbox) = holiday_config(dir.path(), db.url());
    let ics = dir.path().join("office.ics");
    std::fs::write(
        &ics,
        "BEGIN:VCALENDAR\r\nBEGIN:VEVENT\r\nDTSTART;VALUE=DATE:20260810\r\nDTEND;VALUE=DATE:20260815\r\nSUMMARY:Office move\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n",
    )
    .unwrap();
    let mut text = std::fs::read_to_string(&config).unwrap();
    text = format!(
        "calendars = [{}]\n{text}\n[[blackouts]]\nname = \"year end\"\nfrom = \"12-24\"\nto = \"01-02\"\n",
        support::config::quoted(&ics.display().to_string())
    );
    std::fs::write(&config, &text).unwrap();
    let import = |now: &str, row: &str| {
        let csv = dir.path().join("leads.csv");
        std::fs::write(
            &csv,
            format!("email,lost_reason,lost_at,timezone,industry\n{row},logistics\n"),
        )
        .unwrap();
        run_ok(&config, now, &["leads", "import", csv.to_str().unwrap()]);
        run_ok(&config, now, &["run", "--once"]);
    };
    let start = "2026-07-12T12:00:00Z";
    import(start, "move@example.com,no_budget,2026-07-12T10:00:00Z,UTC");
    // 11 Aug is inside the office move (10–14 Aug) → Mon 17 Aug 09:00 (15–16: weekend).
    assert_eq!(
        first_due(&config, start, "move@example.com"),
        "2026-08-17T09:00:00+00:00"
    );
    // 30 Dec is inside the year-end blackout → Mon 4 Jan 2027 09:00.
    import(
        "2026-11-30T12:00:00Z",
        "yearend@example.com,no_budget,2026-11-30T10:00:00Z,UTC",
    );
    assert_eq!(
        first_due(&config, start, "yearend@example.com"),
        "2027-01-04T09:00:00+00:00"
    );
    run_ok(&config, "2026-12-30T10:30:00Z", &["run", "--once"]);
    assert_eq!(recipients(&outbox), ["move@example.com"]);
    let story = run_ok(
        &config,
        "2026-12-30T10:30:00Z",
        &["explain", "yearend@example.com"],
    );
    assert!(
        story.contains("closed day: Wed 2026-12-30 is a blackout `year end`"),
        "{story}"
    );

    // A broken calendar file and a bad blackout: `check` names the file, the line and the key.
    std::fs::write(
        &ics,
        "BEGIN:VCALENDAR\nBEGIN:VEVENT\nDTSTART:2026-08-10\nEND:VEVENT\nEND:VCALENDAR\n",
    )
    .unwrap();
    std::fs::write(&config, text.replace("\"01-02\"", "\"13-02\"")).unwrap();
    let (ok, stdout, stderr) = run(&config, start, &["check", "--offline"]);
    assert!(!ok, "{stdout}");
    let all = format!("{stdout}{stderr}");
    assert!(
        all.contains(&format!("{}:3: bad date `2026-08-10`", ics.display())),
        "{all}"
    );
    assert!(all.contains("calendars[1]"), "{all}");
    assert!(
        all.contains("blackouts[1].from") && all.contains("`13-02` is not a date"),
        "{all}"
    );
}
