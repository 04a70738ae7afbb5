//! Helpers shared by the cadence unit tests: instants written as text, and how they read on a
//! lead's clock.

pub(super) use chrono::{DateTime, NaiveDate, NaiveDateTime, TimeDelta, TimeZone, Utc};
pub(super) use chrono_tz::Tz;

pub(super) use chrono_tz::America::{Los_Angeles, New_York};
pub(super) use chrono_tz::Asia::Tokyo;
pub(super) use chrono_tz::Australia::Sydney;
pub(super) use chrono_tz::Europe::Paris;

use super::{CronSpec, SendWindow, Span};

/// An instant given as UTC, "YYYY-MM-DD HH:MM[:SS]".
pub(super) fn utc(s: &str) -> DateTime<Utc> {
    let naive = NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S")
        .or_else(|_| NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M"))
        .unwrap_or_else(|e| panic!("bad test time {s}: {e}"));
    naive.and_utc()
}

/// An instant given as a wall-clock reading in `tz` (the earlier one if repeated).
pub(super) fn local(tz: Tz, s: &str) -> DateTime<Utc> {
    let naive = utc(s).naive_utc();
    tz.from_local_datetime(&naive)
        .earliest()
        .unwrap_or_else(|| panic!("{s} does not exist in {tz}"))
        .to_utc()
}

/// How an instant reads in `tz`, e.g. "Sun 2026-03-08 03:00 EDT".
pub(super) fn show(t: DateTime<Utc>, tz: Tz) -> String {
    t.with_timezone(&tz)
        .format("%a %Y-%m-%d %H:%M %Z")
        .to_string()
}

pub(super) fn cron(expr: &str) -> CronSpec {
    CronSpec::parse(expr).unwrap_or_else(|e| panic!("{e}"))
}

/// The next `n` firings after `from` as "Mon 2026-03-09 09:00 EDT, …", each checked to be
/// strictly later than the one before.
pub(super) fn firings(expr: &str, tz: Tz, from: DateTime<Utc>, n: usize) -> String {
    let spec = cron(expr);
    let mut t = from;
    let mut out = Vec::new();
    for _ in 0..n {
        let Some(next) = spec.next_after(t, tz) else {
            break;
        };
        assert!(next > t, "{expr}: {next} is not after {t}");
        out.push(show(next, tz));
        t = next;
    }
    out.join(", ")
}

pub(super) fn window(days: &str, hours: &str) -> SendWindow {
    SendWindow::parse(days, hours).unwrap_or_else(|e| panic!("{e}"))
}

pub(super) fn hours(h: i64) -> Span {
    Span::Fixed(TimeDelta::hours(h))
}
