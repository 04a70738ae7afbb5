//! End to end: leads in a SQLite file, the scheduler's passes driven at simulated times, real
//! SMTP over TCP to a capturing server, and the binary run as real processes. Every test
//! asserts exact outcomes: which lead got which step when, what it said, what the store shows.
//!
//! Configuration and templates: tests/fixtures/pipeline/ (the config's database, templates
//! folder and SMTP port are filled in per test).

use crate::support;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use chrono::{
    DateTime, Datelike, Days, Months, NaiveTime, TimeDelta, TimeZone, Timelike, Utc, Weekday,
};
use chrono_tz::Tz;
use rewarm::app::{Loaded, build_transport};
use rewarm::config::Settings;
use rewarm::domain::email::EmailAddress;
use rewarm::domain::lead::{Lead, LeadState, NewLead};
use rewarm::outbound::scheduler::{self, PassReport};
use rewarm::store::prelude::*;
use rewarm::store::sqlite::SqliteStore;
use rewarm::store::{Event, Outcome, RecordedOutcome, Store};
use rewarm::transport::Transport;
use rewarm::transport::smtp::{SmtpPool, SmtpSettings, TlsMode};
use support::smtp_server::{CapturedMessage, TestSmtpServer};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_util::sync::CancellationToken;

use support::config::{PIPELINE_FIXTURES, pipeline_fixture};

const SENDER: &str = "claire@acme.test";
const SENDER_NAME: &str = "Claire at Acme";

// ---------------------------------------------------------------------------------------------
// Harness
// ---------------------------------------------------------------------------------------------

fn at(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s)
        .unwrap_or_else(|e| panic!("bad time {s}: {e}"))
        .with_timezone(&Utc)
}

/// A SQLite file in a temporary folder, the capturing SMTP server, the fixture config (with
/// `edit` applied) and the SMTP transport built from it, as the daemon builds it.
struct Harness {
    dir: tempfile::TempDir,
    database_url: String,
    server: TestSmtpServer,
    store: SqliteStore,
    loaded: Arc<Loaded>,
    transport: Transport,
}

impl Harness {
    async fn start() -> Harness {
        Self::start_with(|text| text).await
    }

    async fn start_with(edit: impl FnOnce(String) -> String) -> Harness {
        let dir = tempfile::tempdir().expect("a temporary folder");
        let database_url = format!("sqlite://{}", dir.path().join("rewarm.db").display());
        let server = TestSmtpServer::start().await;
        let text = edit(pipeline_fixture(&database_url, server.port()));
        let settings =
            Settings::from_toml(&text, "pipeline.toml").unwrap_or_else(|e| panic!("{e}"));
        let transport = build_transport(&settings).expect("the SMTP transport");
        assert_eq!(transport.kind(), "smtp");
        let loaded = Arc::new(Loaded::with_settings(settings).unwrap_or_else(|e| panic!("{e:#}")));
        let store = SqliteStore::connect(&database_url)
            .await
            .expect("open the database");
        store.migrate().await.expect("migrate");
        Harness {
            dir,
            database_url,
            server,
            store,
            loaded,
            transport,
        }
    }

    async fn add_leads(&self, leads: &[NewLead], now: DateTime<Utc>) {
        let summary = self
            .store
            .upsert_leads(leads, "test", now)
            .await
            .expect("upsert leads");
        assert_eq!(summary.inserted, leads.len());
    }

    async fn pass(&self, now: DateTime<Utc>) -> PassReport {
        self.pass_via(&self.transport, now).await
    }

    async fn pass_via(&self, transport: &Transport, now: DateTime<Utc>) -> PassReport {
        scheduler::pass(
            &self.store,
            &self.loaded,
            transport,
            now,
            true,
            &CancellationToken::new(),
        )
        .await
        .unwrap_or_else(|e| panic!("pass at {now}: {e}"))
    }

    async fn lead(&self, email: &str) -> Lead {
        let address = EmailAddress::parse(email).expect("a valid address");
        self.store
            .lead_by_email(&address)
            .await
            .expect("lead_by_email")
            .unwrap_or_else(|| panic!("no lead {email}"))
    }

    async fn timeline(&self, email: &str) -> Vec<Event> {
        let id = self.lead(email).await.id;
        self.store.timeline(id).await.expect("timeline")
    }

    fn zone(&self, lead: &Lead) -> Tz {
        lead.zone_or(self.loaded.settings.default_tz)
    }
}

/// A lead as a CRM export would give it (one argument per column of the export).
#[allow(clippy::too_many_arguments)]
fn new_lead(
    email: &str,
    first: &str,
    last: &str,
    company: &str,
    tz: Option<Tz>,
    reason: &str,
    lost_at: &str,
    fields: &[(&str, &str)],
) -> NewLead {
    NewLead {
        email: Some(EmailAddress::parse(email).expect("a valid address")),
        first_name: Some(first.into()),
        last_name: Some(last.into()),
        company: Some(company.into()),
        owner_email: Some(EmailAddress::parse("maria.chen@acme.test").expect("a valid address")),
        owner_name: Some("Maria Chen".into()),
        lost_reason: Some(reason.into()),
        lost_at: Some(at(lost_at)),
        timezone: tz,
        fields: fields
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        ..NewLead::default()
    }
}

/// `from`, `from + step`, … up to and including `until`.
fn times(from: DateTime<Utc>, until: DateTime<Utc>, step: TimeDelta) -> Vec<DateTime<Utc>> {
    let mut out = Vec::new();
    let mut t = from;
    while t <= until {
        out.push(t);
        t += step;
    }
    out
}

/// A `sent` event of a lead's timeline.
#[derive(Debug, Clone, PartialEq)]
struct SentEvent {
    at: DateTime<Utc>,
    campaign: String,
    /// 1-based: the touch number.
    step: u64,
    template: String,
    message_id: String,
    attempt: u64,
}

fn events<'a>(timeline: &'a [Event], kind: &str) -> Vec<&'a Event> {
    timeline.iter().filter(|e| e.kind == kind).collect()
}

fn sent_events(timeline: &[Event]) -> Vec<SentEvent> {
    events(timeline, "sent")
        .into_iter()
        .map(|e| {
            let d = &e.detail;
            SentEvent {
                at: e.at,
                campaign: d["campaign"]
                    .as_str()
                    .unwrap_or_else(|| panic!("campaign in {d}"))
                    .to_string(),
                step: d["step"].as_u64().unwrap_or_else(|| panic!("step in {d}")),
                template: d["template"]
                    .as_str()
                    .unwrap_or_else(|| panic!("template in {d}"))
                    .to_string(),
                message_id: d["message_id"]
                    .as_str()
                    .unwrap_or_else(|| panic!("message_id in {d}"))
                    .to_string(),
                attempt: d["attempt"]
                    .as_u64()
                    .unwrap_or_else(|| panic!("attempt in {d}")),
            }
        })
        .collect()
}

/// A captured message as an independent reader sees it: header fields (unfolded, in order)
/// and the body (CRLF turned into LF).
#[derive(Debug, Clone)]
struct Mail {
    mail_from: String,
    rcpt_to: Vec<String>,
    raw_head: String,
    headers: Vec<(String, String)>,
    body: String,
}

impl Mail {
    fn parse(m: &CapturedMessage) -> Mail {
        let text = std::str::from_utf8(&m.data).expect("a UTF-8 message");
        let (head, body) = text
            .split_once("\r\n\r\n")
            .expect("a blank line between header and body");
        let mut headers: Vec<(String, String)> = Vec::new();
        for line in head.split("\r\n") {
            if line.starts_with([' ', '\t']) {
                // RFC 5322 §2.2.3: unfolding removes the CRLF, keeps the white space.
                let last = headers
                    .last_mut()
                    .unwrap_or_else(|| panic!("a continuation line first: {line:?}"));
                last.1.push_str(line);
            } else {
                let (name, value) = line
                    .split_once(':')
                    .unwrap_or_else(|| panic!("not a header field: {line:?}"));
                assert!(
                    !name.is_empty() && name.bytes().all(|b| b.is_ascii_graphic()),
                    "bad field name {name:?}"
                );
                headers.push((name.to_string(), value.trim().to_string()));
            }
        }
        Mail {
            mail_from: m.mail_from.clone(),
            rcpt_to: m.rcpt_to.clone(),
            raw_head: head.to_string(),
            headers,
            body: body.replace("\r\n", "\n"),
        }
    }

    fn all(&self, name: &str) -> Vec<&str> {
        self.headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
            .collect()
    }

    /// The one value of a header that must appear exactly once.
    fn one(&self, name: &str) -> &str {
        match self.all(name).as_slice() {
            [v] => v,
            other => panic!(
                "{name}: expected exactly one, found {other:?} in\n{}",
                self.raw_head
            ),
        }
    }

    fn message_id(&self) -> String {
        let v = self.one("Message-ID");
        v.strip_prefix('<')
            .and_then(|v| v.strip_suffix('>'))
            .unwrap_or_else(|| panic!("Message-ID without <>: {v}"))
            .to_string()
    }

    fn recipient(&self) -> &str {
        match self.rcpt_to.as_slice() {
            [one] => one,
            other => panic!("expected one recipient, got {other:?}"),
        }
    }
}

/// Office hours as the test reads them, independently of the crate: Monday to Friday,
/// 09:00 (included) to 17:00 (excluded), on the lead's own wall clock.
fn in_office_hours(t: DateTime<Utc>, tz: Tz) -> bool {
    let local = t.with_timezone(&tz);
    !matches!(local.weekday(), Weekday::Sat | Weekday::Sun) && (9..17).contains(&local.hour())
}

/// `t` plus `days` calendar days on `tz`'s wall clock (office hours never fall in a DST gap).
fn plus_local_days(t: DateTime<Utc>, days: u64, tz: Tz) -> DateTime<Utc> {
    let wall = t.with_timezone(&tz).naive_local() + Days::new(days);
    tz.from_local_datetime(&wall)
        .earliest()
        .expect("a wall-clock time that exists")
        .with_timezone(&Utc)
}

/// The first firing of `0 10 1 * *` (10:00 on the 1st of a month, the lead's wall clock)
/// strictly after `t`.
fn next_first_of_month_10am(t: DateTime<Utc>, tz: Tz) -> DateTime<Utc> {
    let local = t.with_timezone(&tz).naive_local();
    let ten = NaiveTime::from_hms_opt(10, 0, 0).expect("10:00");
    let this_month = local.date().with_day(1).expect("the 1st").and_time(ten);
    let firing = if this_month > local {
        this_month
    } else {
        this_month + Months::new(1)
    };
    tz.from_local_datetime(&firing)
        .earliest()
        .expect("10:00 exists")
        .with_timezone(&Utc)
}

/// The first pass at or after `due` that falls in the lead's office hours.
fn first_open_pass(passes: &[DateTime<Utc>], due: DateTime<Utc>, tz: Tz) -> DateTime<Utc> {
    *passes
        .iter()
        .find(|&&p| p >= due && in_office_hours(p, tz))
        .unwrap_or_else(|| panic!("no pass in office hours after {due}"))
}

// ---------------------------------------------------------------------------------------------
// 1. The main scenario: eight months of passes, six leads, two campaigns
// ---------------------------------------------------------------------------------------------

const T0: &str = "2026-03-02T00:00:00Z"; // a Monday
const END: &str = "2026-11-02T00:00:00Z";

/// (email, first name, last name, company, zone, lost reason, lost at, industry)
type LeadRow = (
    &'static str,
    &'static str,
    &'static str,
    &'static str,
    Option<Tz>,
    &'static str,
    &'static str,
    &'static str,
);

const LEADS: [LeadRow; 7] = [
    // Lost more than a year ago: its first touch is long overdue.
    (
        "ana.lopez@harbor.example",
        "Ana",
        "Lopez",
        "Harbor Freight",
        Some(chrono_tz::America::New_York),
        "no_budget",
        "2025-01-15T17:00:00Z",
        "Logistics",
    ),
    // 90 days after the loss is Tuesday 16:30 in Berlin; the 18:00 UTC pass is after hours.
    (
        "ben.vogel@vogel.example",
        "Ben",
        "Vogel",
        "Vogel Maschinenbau",
        Some(chrono_tz::Europe::Berlin),
        "Competitor",
        "2025-12-10T15:30:00Z",
        "Manufacturing",
    ),
    // 60 days after the loss is Saturday 4 April in Tokyo.
    (
        "chika.sato@sato-trading.example",
        "Chika",
        "Sato",
        "Sato Trading",
        Some(chrono_tz::Asia::Tokyo),
        "timing",
        "2026-02-03T02:00:00Z",
        "Retail",
    ),
    // No zone: the default (Los Angeles) applies.
    (
        "dana.whitfield@whitfield.example",
        "Dana",
        "Whitfield",
        "Whitfield Farms",
        None,
        "went_quiet",
        "2026-01-05T20:00:00Z",
        "Agriculture",
    ),
    // Lost recently; a name that needs encoding in the To header.
    (
        "emil.muller@acme-robotics.example",
        "Emil",
        "Müller",
        "Acme Robotics",
        Some(chrono_tz::America::New_York),
        "chose_competitor",
        "2026-02-20T09:00:00Z",
        "Robotics",
    ),
    // Lost the day before the run starts; 90 days later is Saturday 30 May in Tokyo.
    (
        "fumi.ito@ito-soft.example",
        "Fumi",
        "Ito",
        "Ito Software",
        Some(chrono_tz::Asia::Tokyo),
        "competitor",
        "2026-03-01T03:00:00Z",
        "Software",
    ),
    // The same Saturday in New York; her third firing, 1 August, is a Saturday too.
    (
        "gina.rossi@rossi-design.example",
        "Gina",
        "Rossi",
        "Rossi Design",
        Some(chrono_tz::America::New_York),
        "competitor",
        "2026-03-01T15:00:00Z",
        "Design",
    ),
];

/// Per lead: (sent at, step, campaign, template) of each email.
type Steps = BTreeMap<String, Vec<(DateTime<Utc>, u64, String, String)>>;

/// (email, campaign, segment, [(send time, template); 3])
type Expected = (
    &'static str,
    &'static str,
    &'static str,
    [(&'static str, &'static str); 3],
);

/// (email, campaign, segment, [(send time, template); 3]): worked out by hand from the
/// cadence rules, the office hours in each lead's zone and the 6-hourly passes.
const EXPECTED: [Expected; 7] = [
    // Enrolled Sunday 19:00 New York time: Monday 09:00 opens at 14:00 UTC, the next pass is
    // 18:00 UTC. Then 30 days later at the same New York time (13:00 EST → 13:00 EDT = 17:00
    // UTC → the 18:00 pass), then again (14:00 EDT = 18:00 UTC exactly).
    (
        "ana.lopez@harbor.example",
        "recycle",
        "no-budget-yet",
        [
            ("2026-03-02T18:00:00Z", "recycle_first"),
            ("2026-04-01T18:00:00Z", "recycle_next"),
            ("2026-05-01T18:00:00Z", "recycle_next"),
        ],
    ),
    // Due Tue 10 March 16:30 CET; the 18:00 UTC pass (19:00 CET) defers it to Wed 09:00 CET,
    // sent by the 12:00 UTC pass. Then the cron: 1 April and 1 May at 10:00 CEST (08:00 UTC).
    (
        "ben.vogel@vogel.example",
        "competitor",
        "chose-a-competitor",
        [
            ("2026-03-11T12:00:00Z", "competitor_checkin"),
            ("2026-04-01T12:00:00Z", "competitor_checkin"),
            ("2026-05-01T12:00:00Z", "competitor_checkin"),
        ],
    ),
    // Saturday 4 April → Monday 6 April 09:00 JST = 00:00 UTC, then every 30 days at 09:00 JST.
    (
        "chika.sato@sato-trading.example",
        "recycle",
        "no-budget-yet",
        [
            ("2026-04-06T00:00:00Z", "recycle_first"),
            ("2026-05-06T00:00:00Z", "recycle_next"),
            ("2026-06-05T00:00:00Z", "recycle_next"),
        ],
    ),
    // Due Friday 6 March 12:00 PST = 20:00 UTC; the next pass, Sat 00:00 UTC, is still Friday
    // 16:00 in Los Angeles. +30d = Sunday 5 April 16:00 PDT → Monday 09:00 PDT → the 18:00 UTC
    // pass (11:00 PDT); +30d = Wed 6 May 11:00 PDT = 18:00 UTC.
    (
        "dana.whitfield@whitfield.example",
        "recycle",
        "everyone-else",
        [
            ("2026-03-07T00:00:00Z", "recycle_first"),
            ("2026-04-06T18:00:00Z", "recycle_next"),
            ("2026-05-06T18:00:00Z", "recycle_next"),
        ],
    ),
    // Due Thu 21 May 04:00 EDT → 09:00 EDT (13:00 UTC) → the 18:00 pass; then the cron:
    // Mon 1 June and Wed 1 July 10:00 EDT (14:00 UTC) → the 18:00 passes.
    (
        "emil.muller@acme-robotics.example",
        "competitor",
        "chose-a-competitor",
        [
            ("2026-05-21T18:00:00Z", "competitor_checkin"),
            ("2026-06-01T18:00:00Z", "competitor_checkin"),
            ("2026-07-01T18:00:00Z", "competitor_checkin"),
        ],
    ),
    // Saturday 30 May → Monday 1 June 09:00 JST (00:00 UTC). The cron's 10:00 firing that same
    // day is skipped (never two touches within a day: the next firing is taken at least 23 h
    // after the previous send), so the second touch is Wed 1 July 10:00 JST → the 06:00 pass;
    // the third Saturday 1 August 10:00 JST → pushed to Monday 3 August 09:00 JST (00:00 UTC).
    (
        "fumi.ito@ito-soft.example",
        "competitor",
        "chose-a-competitor",
        [
            ("2026-06-01T00:00:00Z", "competitor_checkin"),
            ("2026-07-01T06:00:00Z", "competitor_checkin"),
            ("2026-08-03T00:00:00Z", "competitor_checkin"),
        ],
    ),
    // Saturday 30 May 10:00 EDT → Monday 1 June 09:00 EDT (13:00 UTC) → the 18:00 pass, after
    // that day's firing (14:00 UTC); cron Wed 1 July 10:00 EDT → 18:00 UTC; cron Saturday
    // 1 August → Monday 3 August 09:00 EDT (13:00 UTC) → 18:00 UTC.
    (
        "gina.rossi@rossi-design.example",
        "competitor",
        "chose-a-competitor",
        [
            ("2026-06-01T18:00:00Z", "competitor_checkin"),
            ("2026-07-01T18:00:00Z", "competitor_checkin"),
            ("2026-08-03T18:00:00Z", "competitor_checkin"),
        ],
    ),
];

/// Messages the main scenario sends: three steps for each of the seven leads.
const MAIN_MESSAGES: usize = 3 * LEADS.len();

/// What the main scenario leaves behind.
struct Scenario {
    h: Harness,
    passes: Vec<DateTime<Utc>>,
    reports: Vec<(DateTime<Utc>, PassReport)>,
}

async fn run_main_scenario() -> Scenario {
    let h = Harness::start().await;
    let t0 = at(T0);
    let leads: Vec<NewLead> = LEADS
        .iter()
        .map(
            |&(email, first, last, company, tz, reason, lost_at, industry)| {
                new_lead(
                    email,
                    first,
                    last,
                    company,
                    tz,
                    reason,
                    lost_at,
                    &[("industry", industry)],
                )
            },
        )
        .collect();
    h.add_leads(&leads, t0).await;
    let passes = times(t0, at(END), TimeDelta::hours(6));
    assert_eq!(passes.len(), 245 * 4 + 1, "eight months of 6-hourly passes");
    let mut reports = Vec::with_capacity(passes.len());
    for &now in &passes {
        reports.push((now, h.pass(now).await));
    }
    Scenario { h, passes, reports }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn over_eight_months_each_lead_gets_its_three_steps_once_in_order_inside_its_own_office_hours()
 {
    let Scenario { h, passes, reports } = run_main_scenario().await;
    let t0 = at(T0);

    // Every lead enrolled at the first pass, and nothing else but sends and one deferral.
    assert_eq!(reports[0].1.enrolled, LEADS.len());
    let total = reports
        .iter()
        .fold(PassReport::default(), |a, (_, r)| PassReport {
            enrolled: a.enrolled + r.enrolled,
            expired: a.expired + r.expired,
            released: a.released + r.released,
            resumed: a.resumed + r.resumed,
            sent: a.sent + r.sent,
            retried: a.retried + r.retried,
            failed: a.failed + r.failed,
            unknown: a.unknown + r.unknown,
            deferred: a.deferred + r.deferred,
            call_tasks: a.call_tasks + r.call_tasks,
        });
    assert_eq!(
        total,
        PassReport {
            enrolled: LEADS.len(),
            sent: MAIN_MESSAGES,
            deferred: 1,
            ..PassReport::default()
        }
    );

    // The captured messages, matched to their lead (RCPT TO) and step (Message-ID ↔ `sent` event).
    let mails: Vec<Mail> = h.server.messages().iter().map(Mail::parse).collect();
    assert_eq!(mails.len(), MAIN_MESSAGES);
    let mut observed: Steps = BTreeMap::new();
    let mut mail_of: HashMap<String, &Mail> = HashMap::new();
    for mail in &mails {
        let to = mail.recipient().to_string();
        let sent = sent_events(&h.timeline(&to).await);
        let id = mail.message_id();
        let event = sent
            .iter()
            .find(|s| s.message_id == id)
            .unwrap_or_else(|| panic!("{to}: no `sent` event for message {id}: {sent:?}"));
        assert_eq!(event.attempt, 1, "{to} step {}", event.step);
        observed.entry(to).or_default().push((
            event.at,
            event.step,
            event.campaign.clone(),
            event.template.clone(),
        ));
        assert!(
            mail_of.insert(id.clone(), mail).is_none(),
            "Message-ID {id} twice"
        );
    }
    // Each pass's report agrees with what the server received at that pass.
    let sends_per_pass: BTreeMap<DateTime<Utc>, usize> =
        observed
            .values()
            .flatten()
            .fold(BTreeMap::new(), |mut m, (t, ..)| {
                *m.entry(*t).or_default() += 1;
                m
            });
    for (now, report) in &reports {
        assert_eq!(
            report.sent,
            sends_per_pass.get(now).copied().unwrap_or(0),
            "pass at {now}"
        );
    }

    // Exactly the expected steps, at exactly the expected times, from exactly the expected campaign.
    let mut expected: Steps = BTreeMap::new();
    for (email, campaign, _, steps) in EXPECTED {
        for (i, (when, template)) in steps.iter().enumerate() {
            expected.entry(email.to_string()).or_default().push((
                at(when),
                i as u64 + 1,
                campaign.to_string(),
                template.to_string(),
            ));
        }
    }
    for list in observed.values_mut() {
        list.sort();
    }
    assert_eq!(observed, expected);

    // The same, re-derived from the rules (independently of the crate's cadence code) so a
    // mistake in the table above cannot hide one in the scheduler.
    for (email, campaign, segment, _) in EXPECTED {
        let lead = h.lead(email).await;
        let tz = h.zone(&lead);
        let timeline = h.timeline(email).await;
        let enrolled = events(&timeline, "enrolled");
        assert_eq!(enrolled.len(), 1, "{email}");
        assert_eq!(enrolled[0].at, t0);
        assert_eq!(enrolled[0].detail["campaign"], campaign, "{email}");
        assert_eq!(enrolled[0].detail["segment"], segment, "{email}");

        let sends: Vec<DateTime<Utc>> = observed[email].iter().map(|(t, ..)| *t).collect();
        let steps: Vec<u64> = observed[email].iter().map(|(_, s, ..)| *s).collect();
        assert_eq!(steps, [1, 2, 3], "{email}: each step once, in order");
        for &t in &sends {
            let local = t.with_timezone(&tz);
            assert!(
                in_office_hours(t, tz),
                "{email}: sent {t} = {local} local, outside Mon-Fri 09:00-17:00"
            );
        }
        let lost_at = lead.lost_at.expect("a loss date");
        let first_after = if campaign == "recycle" { 60 } else { 90 };
        let first_due = plus_local_days(lost_at, first_after, tz);
        assert!(
            sends[0] >= first_due,
            "{email}: first step {} before lost_at + {first_after}d = {first_due}",
            sends[0]
        );
        assert_eq!(
            sends[0],
            first_open_pass(&passes, first_due.max(t0), tz),
            "{email}: first step"
        );
        for k in 1..3 {
            let due = if campaign == "recycle" {
                let due = plus_local_days(sends[k - 1], 30, tz);
                assert!(
                    sends[k] >= due,
                    "{email}: step {} at {} is less than 30 days after {}",
                    k + 1,
                    sends[k],
                    sends[k - 1]
                );
                due
            } else {
                // The first firing at least 23 hours after the previous send.
                let firing = next_first_of_month_10am(sends[k - 1] + TimeDelta::hours(23), tz);
                assert!(
                    sends[k] >= firing,
                    "{email}: step {} at {} before the cron firing {firing}",
                    k + 1,
                    sends[k]
                );
                firing
            };
            assert_eq!(
                sends[k],
                first_open_pass(&passes, due, tz),
                "{email}: step {} is not at the first open slot after {due}",
                k + 1
            );
        }
        assert_eq!(lead.state, LeadState::Completed, "{email}");
        assert_eq!(events(&timeline, "completed").len(), 1, "{email}");
    }

    // The lead lost long ago starts at the first allowed slot after enrolment, with one email
    // (the steps it "missed" are not replayed): nothing else within the next 30 days.
    let ana = &observed["ana.lopez@harbor.example"];
    let ana_tz = chrono_tz::America::New_York;
    assert_eq!(
        ana[0].0,
        *passes
            .iter()
            .find(|&&p| in_office_hours(p, ana_tz))
            .expect("an open pass")
    );
    assert_eq!(
        ana.iter()
            .filter(|(t, ..)| *t < t0 + TimeDelta::days(30))
            .count(),
        1
    );

    // A cron rhythm never sends two touches within a day: Fumi's first touch went out at 09:00
    // on the 1st (pushed off a weekend), and the 10:00 firing of that same day was skipped.
    let fumi = &observed["fumi.ito@ito-soft.example"];
    assert!(fumi[1].0 - fumi[0].0 > TimeDelta::days(20));

    // Ben's first step was due after hours: deferred once, to the next opening.
    let ben = h.timeline("ben.vogel@vogel.example").await;
    let deferred = events(&ben, "delivery_deferred");
    assert_eq!(deferred.len(), 1);
    assert_eq!(deferred[0].at, at("2026-03-10T18:00:00Z"));
    assert_eq!(deferred[0].detail["step"], 1);
    assert_eq!(
        at(deferred[0].detail["until"].as_str().expect("until")),
        at("2026-03-11T08:00:00Z")
    );

    // What each email said: rendered with its own lead's data.
    for (email, first, _, company, _, _, _, industry) in LEADS {
        for (when, step, campaign, template) in &observed[email] {
            let mail = mails
                .iter()
                .find(|m| {
                    m.recipient() == email
                        && DateTime::parse_from_rfc2822(m.one("Date"))
                            .expect("a Date")
                            .with_timezone(&Utc)
                            == *when
                })
                .unwrap_or_else(|| panic!("{email}: no mail dated {when}"));
            let subject = match template.as_str() {
                "recycle_first" => format!("{company}: is the budget there now, {first}?"),
                "recycle_next" => format!("Still on your list, {first}?"),
                "competitor_checkin" => format!("{first}, how is it going at {company}?"),
                other => panic!("unexpected template {other}"),
            };
            assert_eq!(mail.one("Subject"), subject, "{email} step {step}");
            let body = &mail.body;
            assert!(
                body.starts_with(&format!("Hi {first},\n")),
                "{email} step {step}: {body}"
            );
            assert!(body.contains(company), "{email} step {step}: {body}");
            assert!(body.contains(industry), "{email} step {step}: {body}");
            assert!(
                body.contains(&format!("Touch {step} of {campaign}.")),
                "{email} step {step}: {body}"
            );
            assert!(body.contains(SENDER_NAME), "{email} step {step}: {body}");
            assert!(
                !body.contains("{{") && !body.contains("{%"),
                "{email} step {step}: {body}"
            );
        }
    }

    // The store's account agrees: everyone completed, every delivery sent, nothing pending.
    let status = h.store.status(t0, at(END)).await.expect("status");
    assert_eq!(status.leads_by_state["completed"], LEADS.len() as i64);
    assert_eq!(status.leads_by_state["nurturing"], 0);
    assert_eq!(
        status.deliveries_by_state,
        BTreeMap::from([("sent".to_string(), MAIN_MESSAGES as i64)])
    );
    assert_eq!(
        status.enrolments["recycle"],
        BTreeMap::from([("completed".to_string(), 3)])
    );
    assert_eq!(
        status.enrolments["competitor"],
        BTreeMap::from([("completed".to_string(), 4)])
    );
    assert_eq!(
        (
            status.sent_since,
            status.failed_since,
            status.unknown_since,
            status.due_now
        ),
        (MAIN_MESSAGES as i64, 0, 0, 0)
    );
    assert!(
        h.store
            .pending_deliveries()
            .await
            .expect("pending")
            .is_empty()
    );
}

// ---------------------------------------------------------------------------------------------
// 6. Headers as an independent parser sees them
// ---------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_sent_message_has_one_from_to_subject_date_and_message_id_and_no_message_id_repeats()
{
    let Scenario { h, .. } = run_main_scenario().await;
    let mails: Vec<Mail> = h.server.messages().iter().map(Mail::parse).collect();
    assert_eq!(mails.len(), MAIN_MESSAGES);
    let mut ids = BTreeSet::new();
    for mail in &mails {
        let to = mail.recipient();
        assert!(
            mail.raw_head.is_ascii(),
            "8-bit header from {to}:\n{}",
            mail.raw_head
        );
        assert!(
            mail.raw_head.split("\r\n").all(|l| l.len() <= 998),
            "a header line over 998 octets"
        );
        assert_eq!(mail.mail_from, SENDER);

        let from = mail.one("From");
        assert!(from.ends_with(&format!("<{SENDER}>")), "From: {from}");
        assert!(from.contains(SENDER_NAME), "From: {from}");
        assert!(mail.one("Reply-To").ends_with("<claire.martin@acme.test>"));
        let to_header = mail.one("To");
        assert!(
            to_header.ends_with(&format!("<{to}>")),
            "To: {to_header} for RCPT {to}"
        );
        if to.starts_with("emil.") {
            // "Emil Müller": an RFC 2047 encoded word, not raw UTF-8.
            assert!(
                to_header.contains("=?") && to_header.contains("?="),
                "To: {to_header}"
            );
        } else {
            let lead = h.lead(to).await;
            let name = format!(
                "{} {}",
                lead.first_name.unwrap_or_default(),
                lead.last_name.unwrap_or_default()
            );
            assert!(
                to_header.starts_with(&name) || to_header.starts_with(&format!("\"{name}\"")),
                "To: {to_header}"
            );
        }
        assert!(!mail.one("Subject").is_empty());

        let date = DateTime::parse_from_rfc2822(mail.one("Date"))
            .unwrap_or_else(|e| panic!("Date {:?}: {e}", mail.one("Date")));
        let id = mail.message_id();
        let (local, domain) = id
            .split_once('@')
            .unwrap_or_else(|| panic!("Message-ID {id} without @"));
        assert!(
            !local.is_empty() && domain == "acme.test",
            "Message-ID {id}"
        );
        assert!(ids.insert(id.clone()), "Message-ID {id} twice");
        // The Date is the moment of the pass that sent it, as the timeline records it.
        let sent = sent_events(&h.timeline(to).await);
        let event = sent
            .iter()
            .find(|s| s.message_id == id)
            .unwrap_or_else(|| panic!("no sent event for {id}"));
        assert_eq!(
            date.with_timezone(&Utc),
            event.at,
            "{to} step {}",
            event.step
        );
        assert_eq!(mail.one("MIME-Version"), "1.0");
        assert!(
            mail.one("Content-Type").starts_with("text/plain"),
            "{}",
            mail.one("Content-Type")
        );
    }
    assert_eq!(ids.len(), MAIN_MESSAGES);
}

// ---------------------------------------------------------------------------------------------
// 2. Passes and processes repeated at the same time
// ---------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn repeating_a_pass_at_the_same_time_sends_nothing_more() {
    let h = Harness::start().await;
    let now = at("2026-03-03T15:00:00Z"); // Tuesday: 16:00 in Berlin, 10:00 in New York
    h.add_leads(
        &[
            new_lead(
                "a@berlin.example",
                "Anna",
                "Adler",
                "Adler AG",
                Some(chrono_tz::Europe::Berlin),
                "no_budget",
                "2025-05-01T10:00:00Z",
                &[("industry", "Energy")],
            ),
            new_lead(
                "b@newyork.example",
                "Bob",
                "Baker",
                "Baker Bros",
                Some(chrono_tz::America::New_York),
                "competitor",
                "2025-05-01T10:00:00Z",
                &[("industry", "Food")],
            ),
            new_lead(
                "c@tokyo.example",
                "Chie",
                "Chiba",
                "Chiba KK",
                Some(chrono_tz::Asia::Tokyo),
                "no_budget",
                "2025-05-01T10:00:00Z",
                &[("industry", "Games")],
            ),
        ],
        now,
    )
    .await;

    let first = h.pass(now).await;
    assert_eq!(
        first,
        PassReport {
            enrolled: 3,
            sent: 2,
            ..PassReport::default()
        },
        "Tokyo is asleep (00:00)"
    );
    for _ in 0..3 {
        assert_eq!(h.pass(now).await, PassReport::default());
    }
    assert_eq!(
        h.pass(now + TimeDelta::minutes(1)).await,
        PassReport::default()
    );
    assert_eq!(h.server.count(), 2);
    let mut to: Vec<String> = h
        .server
        .messages()
        .iter()
        .map(|m| Mail::parse(m).recipient().to_string())
        .collect();
    to.sort();
    assert_eq!(to, ["a@berlin.example", "b@newyork.example"]);
    for email in ["a@berlin.example", "b@newyork.example"] {
        assert_eq!(sent_events(&h.timeline(email).await).len(), 1, "{email}");
    }
    assert!(sent_events(&h.timeline("c@tokyo.example").await).is_empty());
}

/// Runs `rewarm --config CONFIG run --once --now NOW [extra…]` and returns its JSON report.
fn run_once(config: &Path, now: &str, extra: &[&str]) -> serde_json::Value {
    let output = support::bin::command()
        .arg("--config")
        .arg(config)
        .args(["run", "--once", "--now", now])
        .args(extra)
        .env_remove("RUST_LOG")
        .output()
        .expect("run the rewarm binary");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "rewarm run --once --now {now} failed ({}):\n{stdout}\n{stderr}",
        output.status
    );
    let line = stdout
        .lines()
        .last()
        .unwrap_or_else(|| panic!("no report on stdout; stderr:\n{stderr}"));
    serde_json::from_str(line).unwrap_or_else(|e| panic!("report {line:?}: {e}"))
}

/// Runs the binary twice at once (two processes on the same database).
async fn run_once_twice_at_once(config: &Path, now: &'static str) -> [serde_json::Value; 2] {
    let (a, b) = (config.to_path_buf(), config.to_path_buf());
    let first = tokio::task::spawn_blocking(move || run_once(&a, now, &[]));
    let second = tokio::task::spawn_blocking(move || run_once(&b, now, &[]));
    [
        first.await.expect("first process"),
        second.await.expect("second process"),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn running_the_binary_once_twice_on_one_database_sends_each_due_step_once() {
    let h = Harness::start().await;
    let config = h.dir.path().join("rewarm.toml");
    std::fs::write(&config, pipeline_fixture(&h.database_url, h.server.port()))
        .expect("write the config");
    let csv = format!("{PIPELINE_FIXTURES}/leads.csv");

    // Monday 09:00 UTC: 10:00 in Berlin, 09:00 in London, 18:00 in Tokyo.
    let now = "2026-03-02T09:00:00Z";
    let report = tokio::task::spawn_blocking({
        let config = config.clone();
        move || run_once(&config, now, &["--import", &csv])
    })
    .await
    .expect("first run");
    assert_eq!(
        (report["enrolled"].as_u64(), report["sent"].as_u64()),
        (Some(3), Some(2)),
        "{report}"
    );
    let report = tokio::task::spawn_blocking({
        let config = config.clone();
        move || run_once(&config, now, &[])
    })
    .await
    .expect("second run");
    assert_eq!(
        report,
        serde_json::to_value(PassReport::default()).expect("json"),
        "the second run at the same time does nothing"
    );
    assert_eq!(h.server.count(), 2);

    // Two processes at once: Tuesday 09:00 in Tokyo, Kenji's first step goes out once.
    let reports = run_once_twice_at_once(&config, "2026-03-03T00:00:00Z").await;
    assert_eq!(
        reports
            .iter()
            .map(|r| r["sent"].as_u64().expect("sent"))
            .sum::<u64>(),
        1,
        "{reports:?}"
    );
    assert_eq!(h.server.count(), 3);

    // 1 April, 10:00 UTC: Hanna's and Oliver's second steps (30 days after 2 March 09:00 UTC,
    // on their wall clocks: 08:00 UTC once summer time started) go out once.
    let reports = run_once_twice_at_once(&config, "2026-04-01T10:00:00Z").await;
    assert_eq!(
        reports
            .iter()
            .map(|r| r["sent"].as_u64().expect("sent"))
            .sum::<u64>(),
        2,
        "{reports:?}"
    );
    assert_eq!(h.server.count(), 5);
    let reports = run_once_twice_at_once(&config, "2026-04-01T10:00:00Z").await;
    assert_eq!(
        reports
            .iter()
            .map(|r| r["sent"].as_u64().expect("sent"))
            .sum::<u64>(),
        0,
        "{reports:?}"
    );

    // Exactly one message per (lead, step), each matching the step's `sent` event.
    let mut got: BTreeMap<String, Vec<(u64, DateTime<Utc>)>> = BTreeMap::new();
    for mail in h.server.messages().iter().map(Mail::parse) {
        let to = mail.recipient().to_string();
        let id = mail.message_id();
        let sent = sent_events(&h.timeline(&to).await);
        let event = sent
            .iter()
            .find(|s| s.message_id == id)
            .unwrap_or_else(|| panic!("{to}: no sent event for {id}"));
        got.entry(to).or_default().push((event.step, event.at));
    }
    for list in got.values_mut() {
        list.sort();
    }
    assert_eq!(
        got,
        BTreeMap::from([
            (
                "hanna.berg@nordlicht.example".to_string(),
                vec![
                    (1, at("2026-03-02T09:00:00Z")),
                    (2, at("2026-04-01T10:00:00Z"))
                ]
            ),
            (
                "kenji.mori@sakura-soft.example".to_string(),
                vec![(1, at("2026-03-03T00:00:00Z"))]
            ),
            (
                "oliver.hart@thamesworks.example".to_string(),
                vec![
                    (1, at("2026-03-02T09:00:00Z")),
                    (2, at("2026-04-01T10:00:00Z"))
                ]
            ),
        ])
    );
    for email in got.keys() {
        let lead = h.lead(email).await;
        assert_eq!(
            lead.fields.get("industry").map(String::is_empty),
            Some(false),
            "{email}: imported with its fields"
        );
        assert_eq!(
            sent_events(&h.timeline(email).await).len(),
            got[email].len(),
            "{email}"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// 3. A daemon killed mid-batch
// ---------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn claims_of_a_dead_worker_become_unknown_after_the_lease_are_never_sent_and_the_cadence_goes_on()
 {
    let h = Harness::start().await;
    let t = at("2026-03-03T15:00:00Z"); // Tuesday: 16:00 in Berlin, 10:00 in New York
    let emails = ["a@berlin.example", "b@newyork.example", "c@berlin.example"];
    h.add_leads(
        &[
            new_lead(
                emails[0],
                "Anna",
                "Adler",
                "Adler AG",
                Some(chrono_tz::Europe::Berlin),
                "no_budget",
                "2025-05-01T10:00:00Z",
                &[("industry", "Energy")],
            ),
            new_lead(
                emails[1],
                "Bob",
                "Baker",
                "Baker Bros",
                Some(chrono_tz::America::New_York),
                "timing",
                "2025-05-01T10:00:00Z",
                &[("industry", "Food")],
            ),
            new_lead(
                emails[2],
                "Carl",
                "Cramer",
                "Cramer KG",
                Some(chrono_tz::Europe::Berlin),
                "went_quiet",
                "2025-05-01T10:00:00Z",
                &[("industry", "Steel")],
            ),
        ],
        t,
    )
    .await;
    assert_eq!(
        scheduler::enrol(&h.store, &h.loaded, t)
            .await
            .expect("enrol"),
        3
    );

    // A worker claims everything due, then dies without sending or recording anything.
    let lease = h.loaded.settings.scheduler.lease;
    assert_eq!(lease, TimeDelta::minutes(10));
    let claimed = h
        .store
        .claim_due(t, "dead-worker", t + lease, 10)
        .await
        .expect("claim");
    assert_eq!(claimed.len(), 3);
    assert!(
        claimed
            .iter()
            .all(|d| d.step == 0 && d.attempts == 1 && d.campaign == "recycle")
    );
    // It had started their sends (a claim never started would only go back to due).
    let ids: Vec<i64> = claimed.iter().map(|d| d.id).collect();
    assert_eq!(
        h.store
            .mark_started(&ids, "dead-worker", t)
            .await
            .expect("mark started")
            .len(),
        3
    );

    // Before the lease ends (and at its very end) nobody touches them.
    for later in [TimeDelta::minutes(5), TimeDelta::minutes(10)] {
        assert_eq!(
            h.pass(t + later).await,
            PassReport::default(),
            "pass at t + {later}"
        );
    }
    assert_eq!(h.server.count(), 0);

    // After it: unknown, not sent, and the next step is scheduled.
    let expiry = t + TimeDelta::minutes(11);
    let report = h.pass(expiry).await;
    assert_eq!(
        report,
        PassReport {
            expired: 3,
            resumed: 3,
            ..PassReport::default()
        }
    );
    assert_eq!(h.server.count(), 0);
    for email in emails {
        let timeline = h.timeline(email).await;
        let unknown = events(&timeline, "written_off");
        assert_eq!(unknown.len(), 1, "{email}");
        assert_eq!(unknown[0].at, expiry);
        assert_eq!(unknown[0].detail["step"], 1);
        assert_eq!(unknown[0].detail["claimed_by"], "dead-worker");
        assert!(sent_events(&timeline).is_empty(), "{email}");
    }
    let status = h.store.status(t, expiry).await.expect("status");
    assert_eq!(
        status.deliveries_by_state,
        BTreeMap::from([("scheduled".to_string(), 3), ("unknown".to_string(), 3)])
    );
    assert_eq!(
        (
            status.sent_since,
            status.failed_since,
            status.unknown_since,
            status.due_now
        ),
        (0, 0, 3, 0)
    );
    assert_eq!(status.leads_by_state["nurturing"], 3);

    let pending = h.store.pending_deliveries().await.expect("pending");
    assert_eq!(pending.len(), 3);
    for p in &pending {
        let lead = h
            .store
            .leads_by_ids(&[p.lead_id])
            .await
            .expect("lead")
            .remove(0);
        let tz = h.zone(&lead);
        assert_eq!(
            (p.campaign.as_str(), p.step, p.template.as_str()),
            ("recycle", 1, "recycle_next"),
            "{}",
            lead.email
        );
        // 30 days after the lost step, on the lead's wall clock: counted from the claim at the
        // earliest, from the moment the loss was noticed at the latest.
        assert!(
            p.due_at >= plus_local_days(t, 30, tz) && p.due_at <= plus_local_days(expiry, 30, tz),
            "{}: due {}",
            lead.email,
            p.due_at
        );
        assert!(
            in_office_hours(p.due_at, tz),
            "{}: due {}",
            lead.email,
            p.due_at
        );
    }

    // Three more months: steps 2 and 3 go out once each; step 1 never does.
    for now in times(
        t + TimeDelta::hours(6),
        t + TimeDelta::days(100),
        TimeDelta::hours(6),
    ) {
        let report = h.pass(now).await;
        assert_eq!(
            (report.expired, report.unknown, report.failed),
            (0, 0, 0),
            "pass at {now}"
        );
    }
    assert_eq!(h.server.count(), 6);
    for email in emails {
        let timeline = h.timeline(email).await;
        let mut per_step: BTreeMap<u64, (usize, usize)> = BTreeMap::new();
        for s in sent_events(&timeline) {
            per_step.entry(s.step).or_default().0 += 1;
        }
        for u in events(&timeline, "written_off") {
            per_step
                .entry(u.detail["step"].as_u64().expect("step"))
                .or_default()
                .1 += 1;
        }
        assert_eq!(
            per_step,
            BTreeMap::from([(1, (0, 1)), (2, (1, 0)), (3, (1, 0))]),
            "{email}: (sent, unknown) per step"
        );
        assert_eq!(h.lead(email).await.state, LeadState::Completed, "{email}");
        let received = h
            .server
            .messages()
            .iter()
            .filter(|m| m.rcpt_to == [email])
            .count();
        assert_eq!(received, 2, "{email}");
    }
    let status = h
        .store
        .status(t, t + TimeDelta::days(100))
        .await
        .expect("status");
    assert_eq!(
        status.deliveries_by_state,
        BTreeMap::from([("sent".to_string(), 6), ("unknown".to_string(), 3)])
    );
}

// ---------------------------------------------------------------------------------------------
// 4. A template that fails for one lead
// ---------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_template_that_fails_for_one_lead_fails_only_that_delivery_and_the_others_are_sent_in_the_same_pass()
 {
    let h = Harness::start_with(|text| {
        let from = r#"templates = ["recycle_first", "recycle_next"]"#;
        assert!(text.contains(from), "the fixture config changed");
        text.replace(from, r#"templates = ["sized_offer", "recycle_next"]"#)
    })
    .await;
    let now = at("2026-03-03T12:00:00Z"); // Tuesday 13:00 in Berlin
    let berlin = Some(chrono_tz::Europe::Berlin);
    h.add_leads(
        &[
            new_lead(
                "sized.one@example.org",
                "Sara",
                "One",
                "One GmbH",
                berlin,
                "no_budget",
                "2025-05-01T10:00:00Z",
                &[("industry", "Energy"), ("size", "40")],
            ),
            new_lead(
                "unsized@example.org",
                "Uwe",
                "Nosize",
                "Nosize AG",
                berlin,
                "no_budget",
                "2025-05-01T10:00:00Z",
                &[("industry", "Food")],
            ),
            new_lead(
                "sized.two@example.org",
                "Tom",
                "Two",
                "Two KG",
                berlin,
                "no_budget",
                "2025-05-01T10:00:00Z",
                &[("industry", "Steel"), ("size", "250")],
            ),
        ],
        now,
    )
    .await;

    let report = h.pass(now).await;
    assert_eq!(
        report,
        PassReport {
            enrolled: 3,
            sent: 2,
            failed: 1,
            ..PassReport::default()
        }
    );

    let mails: Vec<Mail> = h.server.messages().iter().map(Mail::parse).collect();
    let mut subjects: Vec<(String, String)> = mails
        .iter()
        .map(|m| (m.recipient().to_string(), m.one("Subject").to_string()))
        .collect();
    subjects.sort();
    assert_eq!(
        subjects,
        [
            (
                "sized.one@example.org".to_string(),
                "An offer for 40 seats at One GmbH".to_string()
            ),
            (
                "sized.two@example.org".to_string(),
                "An offer for 250 seats at Two KG".to_string()
            ),
        ]
    );

    let timeline = h.timeline("unsized@example.org").await;
    assert!(sent_events(&timeline).is_empty());
    let failed = events(&timeline, "delivery_failed");
    assert_eq!(failed.len(), 1);
    assert_eq!(failed[0].at, now);
    assert_eq!(failed[0].detail["step"], 1);
    assert_eq!(failed[0].detail["template"], "sized_offer");
    let error = failed[0].detail["error"].as_str().expect("an error");
    assert!(
        error.contains("lead.fields.size"),
        "the reason names the missing variable: {error}"
    );
    assert!(
        error.contains("sized_offer"),
        "the reason names the template: {error}"
    );
    assert!(events(&timeline, "suppressed").is_empty());

    // A rendering error is not the lead's fault: it stays in the campaign, its next step
    // (another template) is scheduled per the cadence.
    let lead = h.lead("unsized@example.org").await;
    assert_eq!(lead.state, LeadState::Nurturing);
    let pending = h.store.pending_deliveries().await.expect("pending");
    let next: Vec<_> = pending.iter().filter(|p| p.lead_id == lead.id).collect();
    assert_eq!(next.len(), 1);
    assert_eq!(
        (next[0].step, next[0].template.as_str()),
        (1, "recycle_next")
    );
    assert_eq!(
        next[0].due_at,
        plus_local_days(now, 30, chrono_tz::Europe::Berlin)
    );
    let status = h.store.status(now, now).await.expect("status");
    assert_eq!(
        status.deliveries_by_state,
        BTreeMap::from([
            ("failed".to_string(), 1),
            ("scheduled".to_string(), 3),
            ("sent".to_string(), 2)
        ])
    );
    assert_eq!((status.sent_since, status.failed_since), (2, 1));
}

// ---------------------------------------------------------------------------------------------
// 5. 450 and 550 answers to RCPT TO
// ---------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_450_is_retried_until_the_server_accepts_and_a_550_fails_and_suppresses_the_lead() {
    let h = Harness::start().await;
    let t = at("2026-03-03T10:00:00Z"); // Tuesday 11:00 in Berlin
    let berlin = Some(chrono_tz::Europe::Berlin);
    h.add_leads(
        &[
            new_lead(
                "busy@example.org",
                "Bea",
                "Busy",
                "Busy GmbH",
                berlin,
                "no_budget",
                "2025-05-01T10:00:00Z",
                &[("industry", "Energy")],
            ),
            new_lead(
                "gone@example.org",
                "Gus",
                "Gone",
                "Gone AG",
                berlin,
                "no_budget",
                "2025-05-01T10:00:00Z",
                &[("industry", "Food")],
            ),
            new_lead(
                "fine@example.org",
                "Fay",
                "Fine",
                "Fine KG",
                berlin,
                "no_budget",
                "2025-05-01T10:00:00Z",
                &[("industry", "Steel")],
            ),
        ],
        t,
    )
    .await;
    h.server.reject_recipient(
        "busy@example.org",
        "450 4.2.1 Mailbox busy, try again later",
    );
    h.server
        .reject_recipient("gone@example.org", "550 5.1.1 No such user");

    let report = h.pass(t).await;
    assert_eq!(
        report,
        PassReport {
            enrolled: 3,
            sent: 1,
            retried: 1,
            failed: 1,
            ..PassReport::default()
        }
    );
    assert_eq!(
        h.server
            .messages()
            .iter()
            .map(|m| m.rcpt_to.clone())
            .collect::<Vec<_>>(),
        [["fine@example.org"]]
    );

    // 550: failed for good, the address suppressed, the enrolment stopped, nothing scheduled.
    let gone = h.lead("gone@example.org").await;
    assert_eq!(gone.state, LeadState::Suppressed);
    let timeline = h.timeline("gone@example.org").await;
    let failed = events(&timeline, "delivery_failed");
    assert_eq!(failed.len(), 1);
    assert!(
        failed[0].detail["error"]
            .as_str()
            .expect("error")
            .contains("550"),
        "{}",
        failed[0].detail
    );
    let suppressed = events(&timeline, "suppressed");
    assert_eq!(suppressed.len(), 1);
    assert_eq!(suppressed[0].detail["reason"], "hard_bounce");
    assert!(events(&timeline, "completed").is_empty());

    // 450: waiting for a retry, one attempt counted.
    let busy = h.lead("busy@example.org").await;
    let timeline = h.timeline("busy@example.org").await;
    let retries = events(&timeline, "delivery_retry");
    assert_eq!(retries.len(), 1);
    assert_eq!(retries[0].detail["attempt"], 1);
    assert!(
        retries[0].detail["error"]
            .as_str()
            .expect("error")
            .contains("450"),
        "{}",
        retries[0].detail
    );
    let retry_at = at(retries[0].detail["retry_at"].as_str().expect("retry_at"));
    assert!(
        retry_at >= t + TimeDelta::seconds(30) && retry_at <= t + TimeDelta::seconds(60),
        "first retry at {retry_at}"
    );
    let status = h.store.status(t, t).await.expect("status");
    assert_eq!(
        status.deliveries_by_state,
        BTreeMap::from([
            ("failed".to_string(), 1),
            ("retry_wait".to_string(), 1),
            ("scheduled".to_string(), 1),
            ("sent".to_string(), 1)
        ])
    );
    let pending = h.store.pending_deliveries().await.expect("pending");
    let ids: BTreeSet<i64> = pending.iter().map(|p| p.lead_id).collect();
    assert!(
        !ids.contains(&gone.id),
        "nothing pending for the suppressed lead"
    );
    let busy_pending: Vec<_> = pending.iter().filter(|p| p.lead_id == busy.id).collect();
    assert_eq!(busy_pending.len(), 1);
    assert_eq!(
        (busy_pending[0].step, busy_pending[0].due_at),
        (0, retry_at)
    );

    // Not yet due: nothing happens.
    assert_eq!(
        h.pass(t + TimeDelta::seconds(20)).await,
        PassReport::default()
    );
    // Due, still refused: a second attempt, a longer wait.
    let t2 = t + TimeDelta::minutes(2);
    assert_eq!(
        h.pass(t2).await,
        PassReport {
            retried: 1,
            ..PassReport::default()
        }
    );
    let retries = events(&h.timeline("busy@example.org").await, "delivery_retry")
        .into_iter()
        .cloned()
        .collect::<Vec<_>>();
    assert_eq!(retries.len(), 2);
    assert_eq!(retries[1].detail["attempt"], 2);
    let retry_at = at(retries[1].detail["retry_at"].as_str().expect("retry_at"));
    assert!(
        retry_at >= t2 + TimeDelta::seconds(60) && retry_at <= t2 + TimeDelta::seconds(120),
        "second retry at {retry_at}"
    );

    // The server now accepts the mailbox (the test server cannot forget a rejection, so the
    // mail goes to a second server standing for the recovered one).
    let recovered = TestSmtpServer::start().await;
    let transport = Transport::Smtp(SmtpPool::new(SmtpSettings {
        host: "127.0.0.1".into(),
        port: recovered.port(),
        tls: TlsMode::None,
        username: None,
        password: None,
        pool_size: 4,
        timeout: Duration::from_secs(5),
        hello_name: None,
    }));
    recovered.reject_recipient("gone@example.org", "550 5.1.1 No such user");
    let t3 = t + TimeDelta::minutes(5);
    assert_eq!(
        h.pass_via(&transport, t3).await,
        PassReport {
            sent: 1,
            ..PassReport::default()
        }
    );
    assert_eq!(
        recovered
            .messages()
            .iter()
            .map(|m| m.rcpt_to.clone())
            .collect::<Vec<_>>(),
        [["busy@example.org"]]
    );
    let sent = sent_events(&h.timeline("busy@example.org").await);
    assert_eq!(sent.len(), 1);
    assert_eq!((sent[0].step, sent[0].attempt, sent[0].at), (1, 3, t3));

    // Months later: busy and fine complete their campaign; gone never hears from us again.
    for now in times(
        t + TimeDelta::hours(6),
        t + TimeDelta::days(100),
        TimeDelta::hours(6),
    ) {
        let report = h.pass_via(&transport, now).await;
        assert_eq!((report.failed, report.retried), (0, 0), "pass at {now}");
    }
    let mut received: BTreeMap<String, usize> = BTreeMap::new();
    for m in h
        .server
        .messages()
        .iter()
        .chain(recovered.messages().iter())
    {
        *received
            .entry(Mail::parse(m).recipient().to_string())
            .or_default() += 1;
    }
    assert_eq!(
        received,
        BTreeMap::from([
            ("busy@example.org".to_string(), 3),
            ("fine@example.org".to_string(), 3)
        ])
    );
    for email in ["busy@example.org", "fine@example.org"] {
        let steps: Vec<u64> = sent_events(&h.timeline(email).await)
            .iter()
            .map(|s| s.step)
            .collect();
        assert_eq!(steps, [1, 2, 3], "{email}");
    }
    assert_eq!(
        h.lead("gone@example.org").await.state,
        LeadState::Suppressed
    );
    assert_eq!(
        events(&h.timeline("gone@example.org").await, "delivery_failed").len(),
        1
    );
    let status = h
        .store
        .status(t, t + TimeDelta::days(100))
        .await
        .expect("status");
    assert_eq!(status.leads_by_state["suppressed"], 1);
    assert_eq!(status.leads_by_state["completed"], 2);
    assert_eq!(
        status.enrolments["recycle"],
        BTreeMap::from([("completed".to_string(), 2), ("stopped".to_string(), 1)])
    );
    assert_eq!(
        status.deliveries_by_state,
        BTreeMap::from([("failed".to_string(), 1), ("sent".to_string(), 6)])
    );
}

// ---------------------------------------------------------------------------------------------
// Bugs found while writing these tests (ignored so the suite stays green; see each reason)
// ---------------------------------------------------------------------------------------------

/// `rewarm run --once` returns before `SmtpPool::close`, so its SMTP connections are dropped
/// without QUIT (RFC 5321 §4.1.1.10: the client MUST NOT close the channel before QUIT).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_once_says_quit_on_every_smtp_connection_it_opened() {
    let h = Harness::start().await;
    let config = h.dir.path().join("rewarm.toml");
    std::fs::write(&config, pipeline_fixture(&h.database_url, h.server.port()))
        .expect("write the config");
    let csv = format!("{PIPELINE_FIXTURES}/leads.csv");
    let report = tokio::task::spawn_blocking(move || {
        run_once(&config, "2026-03-02T09:00:00Z", &["--import", &csv])
    })
    .await
    .expect("the run");
    assert_eq!(report["sent"], 2);
    assert!(h.server.connections_accepted() >= 1);
    let deadline = std::time::Instant::now() + Duration::from_secs(2);
    while h.server.quits_received() < h.server.connections_accepted()
        && std::time::Instant::now() < deadline
    {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(
        h.server.quits_received(),
        h.server.connections_accepted(),
        "QUITs received vs connections opened"
    );
}

/// A worker that was slow, not dead: its claim expired (another pass marked it `unknown` and
/// scheduled the next step), then its result came back: a 4xx, "try again later". The
/// store keeps the row `unknown` (the retry UPDATE only applies to `claimed` rows) but still
/// writes the `delivery_retry` event: the timeline announces a retry that never happens.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_late_transient_failure_after_the_lease_expired_is_not_announced_as_a_retry_that_never_happens()
 {
    let h = Harness::start().await;
    let t = at("2026-03-03T10:00:00Z"); // Tuesday 11:00 in Berlin
    h.add_leads(
        &[new_lead(
            "slow@example.org",
            "Sol",
            "Slow",
            "Slow AG",
            Some(chrono_tz::Europe::Berlin),
            "no_budget",
            "2025-05-01T10:00:00Z",
            &[("industry", "Energy")],
        )],
        t,
    )
    .await;
    assert_eq!(
        scheduler::enrol(&h.store, &h.loaded, t)
            .await
            .expect("enrol"),
        1
    );
    let worker = h.loaded.settings.scheduler.worker_id.clone();
    let lease = h.loaded.settings.scheduler.lease;
    let claimed = h
        .store
        .claim_due(t, &worker, t + lease, 10)
        .await
        .expect("claim");
    assert_eq!(claimed.len(), 1);
    h.store
        .mark_started(&[claimed[0].id], &worker, t)
        .await
        .expect("mark started");

    // Another pass after the lease: unknown, next step scheduled.
    let expiry = t + lease + TimeDelta::minutes(1);
    assert_eq!(
        h.pass(expiry).await,
        PassReport {
            expired: 1,
            resumed: 1,
            ..PassReport::default()
        }
    );

    // The slow worker's answer: 450 on RCPT, retry in a minute.
    let late = expiry + TimeDelta::seconds(30);
    let retry_at = late + TimeDelta::minutes(1);
    let outcome = RecordedOutcome {
        delivery: claimed[0].clone(),
        outcome: Outcome::Retry {
            due_at: retry_at,
            error: "RCPT TO refused: 450 4.2.1 busy".into(),
        },
    };
    h.store
        .record_outcomes(&[outcome], &worker, late)
        .await
        .expect("record");

    let timeline = h.timeline("slow@example.org").await;
    let retry_announced = !events(&timeline, "delivery_retry").is_empty();
    let lead = h.lead("slow@example.org").await;
    let retry_pending = h
        .store
        .pending_deliveries()
        .await
        .expect("pending")
        .iter()
        .any(|p| p.lead_id == lead.id && p.step == 0);
    let status = h.store.status(t, late).await.expect("status");
    assert_eq!(
        retry_announced, retry_pending,
        "timeline announces a retry: {retry_announced}; a retry is pending: {retry_pending}; deliveries: {:?}",
        status.deliveries_by_state
    );
}

/// A TCP relay to `upstream` that holds the end of each message's data for `delay`: an SMTP
/// server that takes `delay` to accept each message.
async fn slow_relay(upstream: u16, delay: Duration) -> u16 {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind the relay");
    let port = listener.local_addr().expect("relay address").port();
    tokio::spawn(async move {
        while let Ok((client, _)) = listener.accept().await {
            tokio::spawn(async move {
                let Ok(server) = tokio::net::TcpStream::connect(("127.0.0.1", upstream)).await
                else {
                    return;
                };
                let _ = (client.set_nodelay(true), server.set_nodelay(true));
                let (mut client_read, mut client_write) = client.into_split();
                let (mut server_read, mut server_write) = server.into_split();
                let replies = tokio::spawn(async move {
                    tokio::io::copy(&mut server_read, &mut client_write).await
                });
                let mut buf = vec![0u8; 64 * 1024];
                while let Ok(n) = client_read.read(&mut buf).await {
                    if n == 0 {
                        break;
                    }
                    let chunk = &buf[..n];
                    if chunk == b".\r\n" || chunk.ends_with(b"\r\n.\r\n") {
                        tokio::time::sleep(delay).await;
                    }
                    if server_write.write_all(chunk).await.is_err() {
                        break;
                    }
                }
                let _ = server_write.shutdown().await;
                let _ = replies.await;
            });
        }
    });
    port
}

/// The dispatcher leases every batch until `now + lease` with the `now` of the pass, so in a
/// pass longer than the lease the later batches are claimed with leases that have already
/// run out. Any other daemon's pass (several daemons share the work on PostgreSQL, or an
/// operator's `run --once`) then expires them while they are on the wire: spurious
/// `unknown`, the next step scheduled early, and a transient failure of such a delivery is
/// never retried (see the test above). Here each message takes 0.25 s and each batch is in
/// flight for well under the 2 s lease, yet the pass takes about 3 s.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_batch_claimed_late_in_a_long_pass_gets_a_full_lease() {
    let h = Harness::start_with(|text| {
        let mut text = text;
        for (from, to) in [
            (r#"lease = "10m""#, r#"lease = "2s""#),
            ("batch_size = 2", "batch_size = 1"),
            (
                r#"days = "Mon-Fri", hours = "09:00-17:00""#,
                r#"days = "Mon-Sun", hours = "00:00-24:00""#,
            ),
        ] {
            assert!(text.contains(from), "the fixture config changed: {from}");
            text = text.replace(from, to);
        }
        text
    })
    .await;
    let leads: Vec<NewLead> = (0..12)
        .map(|i| {
            new_lead(
                &format!("lead{i}@example.org"),
                "Lee",
                "Long",
                "Long AG",
                Some(chrono_tz::Europe::Berlin),
                "no_budget",
                "2025-01-01T10:00:00Z",
                &[("industry", "Energy")],
            )
        })
        .collect();
    // A clock that runs (leases must be able to expire) from a fixed start, not the wall clock.
    let clock = rewarm::domain::clock::Clock::starting_at(at("2026-03-02T10:00:00Z"));
    h.add_leads(&leads, clock.now()).await;
    let relay = slow_relay(h.server.port(), Duration::from_millis(250)).await;
    let slow = Transport::Smtp(SmtpPool::new(SmtpSettings {
        host: "127.0.0.1".into(),
        port: relay,
        tls: TlsMode::None,
        username: None,
        password: None,
        pool_size: 1,
        timeout: Duration::from_secs(5),
        hello_name: None,
    }));

    // Daemon A runs one pass on the running clock; daemon B starts its passes (expiring leases
    // first, as every pass does) every 50 ms meanwhile.
    let done = AtomicBool::new(false);
    let a = async {
        let report = h.pass_via(&slow, clock.now()).await;
        done.store(true, Ordering::SeqCst);
        report
    };
    let b = async {
        let mut expired = 0;
        while !done.load(Ordering::SeqCst) {
            let repaired = h.store.expire_leases(clock.now()).await.expect("expire");
            expired += repaired.written_off + repaired.released;
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        expired
    };
    let (report, expired_by_b) = tokio::join!(a, b);
    assert_eq!(report.sent, 12);
    assert_eq!(h.server.count(), 12);
    assert_eq!(
        expired_by_b, 0,
        "deliveries of a live worker, each in flight for less than its lease, were expired as unknown"
    );
}
