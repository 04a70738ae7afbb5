//! Cadence maths: when each step of a campaign is due, in the lead's own time zone.
//!
//! Everything here is pure: callers pass the instants (now, the loss date, when the last email
//! went out) and the lead's zone, and get UTC instants back. All calendar reasoning (days,
//! months, send windows, cron fields) happens on the lead's local wall clock, because
//! "10:00 on a weekday, every 30 days" is what marketers mean whatever the season.
//!
//! Daylight-saving time is handled the same way everywhere:
//! - a local time that does not exist (the spring-forward gap) means the first instant after
//!   the gap, so 02:30 on that day becomes 03:00 instead of being skipped;
//! - a local time that happens twice (the fall-back repeat) means the earlier instant, and a
//!   cron schedule fires once per local wall-clock time, never twice in the repeated hour.

use std::fmt;
use std::str::FromStr;

use chrono::{
    DateTime, Datelike, Days, LocalResult, Months as CalendarMonths, NaiveDateTime, NaiveTime,
    Offset, TimeDelta, TimeZone, Timelike, Utc, Weekday,
};
use chrono_tz::Tz;

/// Why a cadence setting could not be read. Every message quotes the offending text, since it
/// ends up in front of whoever wrote the campaign config.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum CadenceError {
    #[error("bad duration `{input}`: {reason}")]
    BadDuration { input: String, reason: String },
    #[error("bad cron expression `{expr}`: {reason}")]
    BadCron { expr: String, reason: String },
    #[error("bad send window days `{input}`: {reason}")]
    BadWindowDays { input: String, reason: String },
    #[error("bad send window hours `{input}`: {reason}")]
    BadWindowHours { input: String, reason: String },
}

// ---------------------------------------------------------------------------------------------
// Span
// ---------------------------------------------------------------------------------------------

/// The longest span accepted from text: a century is far beyond any sensible cadence, and the
/// cap keeps every later date computation well inside chrono's range.
const MAX_SPAN_DAYS: u64 = 36_600;
const MAX_SPAN_MONTHS: u64 = 1_200;
const MAX_SPAN_SECONDS: u64 = MAX_SPAN_DAYS * 86_400;
const SPAN_HINT: &str = "expected a number followed by s, m, h, d, w or mo (e.g. 90d)";
const SPAN_TOO_LONG: &str = "too long: at most 100 years (36600d or 1200mo)";

/// A length of time as marketers write it: "90d", "30d", "2w", "12h", "45m", "30s", "3mo".
///
/// Days and months are calendar lengths (they keep the local wall-clock time, so a day across a
/// DST change lasts 23 or 25 hours); seconds, minutes and hours are absolute.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Span {
    /// Absolute time: written with s, m or h.
    Fixed(chrono::Duration),
    /// Calendar days: written with d, or w (7 days each).
    Days(u32),
    /// Calendar months: written with mo; the day clamps to the month's end.
    Months(u32),
}

impl Span {
    /// Reads "90d", "90 d", "90days", "2w", "2weeks", "3mo", "3 months", "12h", "45m", "30s"
    /// (units are case-insensitive, surrounding blanks ignored). Zero is allowed ("0d");
    /// signs, fractions, compound forms ("1h30m"), unknown units and spans over 100 years are
    /// not. A bare capital `M` is refused because it means minutes to some and months to others.
    pub fn parse(s: &str) -> Result<Span, CadenceError> {
        let input = s.trim();
        let bad = |reason: &str| CadenceError::BadDuration {
            input: input.to_string(),
            reason: reason.to_string(),
        };
        let split = input
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(input.len());
        // `split` is where a char starts (or the end), so both slices are on char boundaries.
        let (digits, unit) = (&input[..split], input[split..].trim_start());
        if digits.is_empty() || unit.is_empty() {
            return Err(bad(SPAN_HINT));
        }
        if unit == "M" {
            return Err(bad(
                "`M` is ambiguous: write m for minutes or mo for months",
            ));
        }
        // `digits` holds only ASCII digits, so parsing can fail only by overflowing.
        let n: u64 = digits.parse().map_err(|_| bad(SPAN_TOO_LONG))?;
        let fixed = |unit_seconds: u64| {
            n.checked_mul(unit_seconds)
                .filter(|&secs| secs <= MAX_SPAN_SECONDS)
                .and_then(|secs| i64::try_from(secs).ok())
                .and_then(TimeDelta::try_seconds)
                .map(Span::Fixed)
        };
        let days = |per_unit: u64| {
            n.checked_mul(per_unit)
                .filter(|&d| d <= MAX_SPAN_DAYS)
                .and_then(|d| u32::try_from(d).ok())
                .map(Span::Days)
        };
        let span = match unit.to_ascii_lowercase().as_str() {
            "s" | "sec" | "secs" | "second" | "seconds" => fixed(1),
            "m" | "min" | "mins" | "minute" | "minutes" => fixed(60),
            "h" | "hr" | "hrs" | "hour" | "hours" => fixed(3_600),
            "d" | "day" | "days" => days(1),
            "w" | "wk" | "wks" | "week" | "weeks" => days(7),
            "mo" | "mos" | "month" | "months" => Some(n)
                .filter(|&m| m <= MAX_SPAN_MONTHS)
                .and_then(|m| u32::try_from(m).ok())
                .map(Span::Months),
            _ => return Err(bad(SPAN_HINT)),
        };
        span.ok_or_else(|| bad(SPAN_TOO_LONG))
    }

    /// True for "0d", "0s", "0mo": such a span adds nothing. Worth refusing as a campaign
    /// rhythm, where it would send every remaining step at once.
    pub fn is_zero(&self) -> bool {
        match *self {
            Span::Fixed(d) => d.is_zero(),
            Span::Days(n) | Span::Months(n) => n == 0,
        }
    }

    /// `t` plus this span, computed in zone `tz`: days and months keep the local wall-clock
    /// time (10:00 stays 10:00 across a DST change) and months clamp to the month's end
    /// (Jan 31 + 1mo = Feb 28 or 29). A local result inside a spring-forward gap moves to the
    /// first instant after the gap; one in a fall-back repeat takes the earlier instant.
    /// Fixed spans add absolute time.
    ///
    /// Saturates at chrono's limits instead of panicking (see [`Span::checked_after`]).
    pub fn after(&self, t: DateTime<Utc>, tz: Tz) -> DateTime<Utc> {
        self.checked_after(t, tz).unwrap_or(match *self {
            Span::Fixed(d) if d < TimeDelta::zero() => DateTime::<Utc>::MIN_UTC,
            _ => DateTime::<Utc>::MAX_UTC,
        })
    }

    /// Like [`Span::after`], but `None` when the result falls outside chrono's range.
    pub fn checked_after(&self, t: DateTime<Utc>, tz: Tz) -> Option<DateTime<Utc>> {
        // A zero calendar span must give `t` back: going through the wall clock would turn an
        // instant in the second pass of a repeated hour into the earlier, first pass.
        if self.is_zero() {
            return Some(t);
        }
        // At the very edges of chrono's range the local reading may not exist; zone rules are
        // meaningless there, so fall back to the UTC wall clock rather than failing.
        let wall = local_naive(t, tz).unwrap_or(t.naive_utc());
        match *self {
            Span::Fixed(d) => t.checked_add_signed(d),
            Span::Days(n) => earliest_instant(wall.checked_add_days(Days::new(n.into()))?, tz),
            Span::Months(n) => {
                earliest_instant(wall.checked_add_months(CalendarMonths::new(n))?, tz)
            }
        }
    }
}

/// Writes the canonical text ("90d", "3mo", "12h", "45m", "30s"), which [`Span::parse`] reads
/// back to the same span. Weeks come out as days ("2w" → "14d"). Sub-second and negative
/// fixed spans, which `parse` never produces, are shown in whole seconds.
impl fmt::Display for Span {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Span::Fixed(d) => {
                let secs = d.num_seconds();
                if secs != 0 && secs % 3_600 == 0 {
                    write!(f, "{}h", secs / 3_600)
                } else if secs != 0 && secs % 60 == 0 {
                    write!(f, "{}m", secs / 60)
                } else {
                    write!(f, "{secs}s")
                }
            }
            Span::Days(n) => write!(f, "{n}d"),
            Span::Months(n) => write!(f, "{n}mo"),
        }
    }
}

impl FromStr for Span {
    type Err = CadenceError;

    fn from_str(s: &str) -> Result<Span, CadenceError> {
        Span::parse(s)
    }
}

// ---------------------------------------------------------------------------------------------
// Local wall clock helpers
// ---------------------------------------------------------------------------------------------

/// The wall-clock reading of `t` in `tz`; `None` only at the edges of chrono's range (where
/// `DateTime::naive_local` would panic).
fn local_naive(t: DateTime<Utc>, tz: Tz) -> Option<NaiveDateTime> {
    let offset = tz.offset_from_utc_datetime(&t.naive_utc()).fix();
    t.naive_utc().checked_add_offset(offset)
}

/// The instants a wall-clock reading denotes in `tz`, earliest first: one normally, two inside
/// a fall-back repeat, and for a reading inside a spring-forward gap the first instant after
/// the gap.
fn instants(naive: NaiveDateTime, tz: Tz) -> [Option<DateTime<Utc>>; 2] {
    match tz.from_local_datetime(&naive) {
        LocalResult::Single(t) => [Some(t.to_utc()), None],
        LocalResult::Ambiguous(a, b) => {
            let (a, b) = (a.to_utc(), b.to_utc());
            [Some(a.min(b)), Some(a.max(b))]
        }
        LocalResult::None => [end_of_gap(naive, tz), None],
    }
}

/// The one instant we use for a wall-clock reading: the earliest, or the end of the gap.
fn earliest_instant(naive: NaiveDateTime, tz: Tz) -> Option<DateTime<Utc>> {
    instants(naive, tz)[0]
}

/// The first instant after the spring-forward gap that contains `naive`.
fn end_of_gap(naive: NaiveDateTime, tz: Tz) -> Option<DateTime<Utc>> {
    if let Some(end) = chrono_tz::GapInfo::new(&naive, &tz).and_then(|gap| gap.end) {
        return Some(end.to_utc());
    }
    // GapInfo gives up when the reading after the gap is itself ambiguous or at the edge of the
    // zone data. Walk forward minute by minute instead (real gaps last at most a day).
    let mut minute = naive.with_second(0)?.with_nanosecond(0)?;
    for _ in 0..26 * 60 {
        minute = minute.checked_add_signed(TimeDelta::minutes(1))?;
        match tz.from_local_datetime(&minute) {
            LocalResult::Single(t) => return Some(t.to_utc()),
            LocalResult::Ambiguous(a, b) => return Some(a.min(b).to_utc()),
            LocalResult::None => {}
        }
    }
    None
}

/// UTC offset of `tz` at the given Unix second.
fn offset_seconds_at(unix_seconds: i64, tz: Tz) -> Option<i32> {
    let t = DateTime::from_timestamp(unix_seconds, 0)?;
    Some(
        tz.offset_from_utc_datetime(&t.naive_utc())
            .fix()
            .local_minus_utc(),
    )
}

/// The instants in `(from, to]` at which `tz` sets its clocks back, in order. Offsets are
/// compared a day apart and each change is pinned down to the second by bisection (zones never
/// change twice within a day).
fn clock_setbacks(from: DateTime<Utc>, to: DateTime<Utc>, tz: Tz) -> Vec<DateTime<Utc>> {
    let mut setbacks = Vec::new();
    let end = to.timestamp();
    let mut a = from.timestamp();
    while a < end {
        let b = a.saturating_add(86_400).min(end);
        if let (Some(before), Some(after)) = (offset_seconds_at(a, tz), offset_seconds_at(b, tz))
            && after < before
        {
            let (mut lo, mut hi) = (a, b);
            while hi - lo > 1 {
                let mid = lo + (hi - lo) / 2;
                if offset_seconds_at(mid, tz) == Some(before) {
                    lo = mid;
                } else {
                    hi = mid;
                }
            }
            setbacks.extend(DateTime::from_timestamp(hi, 0));
        }
        a = b;
    }
    setbacks
}

// ---------------------------------------------------------------------------------------------
// Send window
// ---------------------------------------------------------------------------------------------

const DAY_NAMES: [&str; 7] = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"];
const DAYS_HINT: &str =
    "expected day names such as Mon-Fri, Sat-Sun or mon,wed,fri, or * for every day";
const HOURS_HINT: &str = "expected HH:MM-HH:MM (e.g. 09:00-17:00)";
/// How far ahead `next_open` looks for an opening: a week, plus room for an opening lost to a
/// DST gap or to a zone skipping a whole day.
const WINDOW_SCAN_DAYS: usize = 21;

/// When emails may go out, in the lead's local time: a set of weekdays and an hours range
/// `[start, end)`. Windows do not run past midnight.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SendWindow {
    /// Indexed Monday (0) to Sunday (6); at least one is set.
    days: [bool; 7],
    start: NaiveTime,
    /// `None` stands for 24:00, the end of the day, which `NaiveTime` cannot hold.
    end: Option<NaiveTime>,
}

impl SendWindow {
    /// days: "Mon-Fri", "mon,wed,fri", "Mon-Sun", "Sat-Sun", "Fri-Mon" (wraps round the
    /// weekend), "*", "all", "daily", "weekdays", "weekends"; full names work too.
    /// hours: "09:00-17:00", "9-17", "9:30-17", "00:00-24:00" (24:00 = end of day).
    /// The start must be before the end.
    pub fn parse(days: &str, hours: &str) -> Result<SendWindow, CadenceError> {
        let days = parse_days(days)?;
        let (start, end) = parse_hours(hours)?;
        Ok(SendWindow { days, start, end })
    }

    /// Every day, all day.
    pub fn always() -> SendWindow {
        SendWindow {
            days: [true; 7],
            start: NaiveTime::MIN,
            end: None,
        }
    }

    /// Monday to Friday, 09:00 to 17:00: the default.
    pub fn office_hours() -> SendWindow {
        SendWindow {
            days: [true, true, true, true, true, false, false],
            start: NaiveTime::from_hms_opt(9, 0, 0).unwrap_or(NaiveTime::MIN),
            end: NaiveTime::from_hms_opt(17, 0, 0),
        }
    }

    /// Does the window allow sending on this weekday?
    pub fn includes_day(&self, day: Weekday) -> bool {
        self.days[day.num_days_from_monday() as usize]
    }

    /// Local opening time.
    pub fn start(&self) -> NaiveTime {
        self.start
    }

    /// Local closing time (exclusive); `None` means 24:00.
    pub fn end(&self) -> Option<NaiveTime> {
        self.end
    }

    /// Is instant `t` inside the window, in zone `tz`?
    pub fn contains(&self, t: DateTime<Utc>, tz: Tz) -> bool {
        local_naive(t, tz).is_some_and(|local| self.contains_local(local))
    }

    fn contains_local(&self, local: NaiveDateTime) -> bool {
        let time = local.time();
        self.includes_day(local.weekday())
            && time >= self.start
            && self.end.is_none_or(|end| time < end)
    }

    /// The earliest instant at or after `t` that lies inside the window in zone `tz` (`t`
    /// itself if it is inside).
    ///
    /// The window is entered either at an opening (its start time on an allowed day: the
    /// first instant after the gap if that time does not exist that day, or the second pass
    /// of a repeated time if the first has gone by) or when a fall-back puts the clock back
    /// inside it; both are considered.
    pub fn next_open(&self, t: DateTime<Utc>, tz: Tz) -> DateTime<Utc> {
        if self.contains(t, tz) {
            return t;
        }
        let Some(local) = local_naive(t, tz) else {
            return t;
        };
        let opening = local
            .date()
            .iter_days()
            .take(WINDOW_SCAN_DAYS)
            .filter(|date| self.includes_day(date.weekday()))
            .find_map(|date| {
                instants(date.and_time(self.start), tz)
                    .into_iter()
                    .flatten()
                    .find(|&c| c >= t && self.contains(c, tz))
            });
        let horizon = opening.unwrap_or_else(|| {
            t.checked_add_days(Days::new(WINDOW_SCAN_DAYS as u64))
                .unwrap_or(DateTime::<Utc>::MAX_UTC)
        });
        let reentry = clock_setbacks(t, horizon, tz)
            .into_iter()
            .find(|&s| s >= t && s < horizon && self.contains(s, tz));
        // Every window built here has an allowed day and a non-empty range, so an opening is
        // always found within three weeks, except at the very edge of chrono's range, where
        // `t` is the least surprising answer.
        reentry.or(opening).unwrap_or(t)
    }

    /// A short human description that `parse` reads back, e.g. "Mon-Fri 09:00-17:00".
    pub fn describe(&self) -> String {
        let end = match self.end {
            Some(end) => format!("{:02}:{:02}", end.hour(), end.minute()),
            None => "24:00".to_string(),
        };
        format!(
            "{} {:02}:{:02}-{end}",
            describe_days(&self.days),
            self.start.hour(),
            self.start.minute()
        )
    }
}

impl Default for SendWindow {
    fn default() -> SendWindow {
        SendWindow::office_hours()
    }
}

impl fmt::Display for SendWindow {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.describe())
    }
}

fn parse_days(input: &str) -> Result<[bool; 7], CadenceError> {
    let input = input.trim();
    let bad = |reason: String| CadenceError::BadWindowDays {
        input: input.to_string(),
        reason,
    };
    let lower = input.to_ascii_lowercase();
    match lower.as_str() {
        "*" | "all" | "daily" | "every day" | "everyday" => return Ok([true; 7]),
        "weekdays" => return Ok([true, true, true, true, true, false, false]),
        "weekend" | "weekends" => return Ok([false, false, false, false, false, true, true]),
        _ => {}
    }
    let day = |name: &str| {
        window_day_index(name).ok_or_else(|| {
            bad(if name.is_empty() {
                format!("a day is missing; {DAYS_HINT}")
            } else {
                format!("unknown day `{name}`; {DAYS_HINT}")
            })
        })
    };
    let mut days = [false; 7];
    for item in input.split(',').map(str::trim) {
        match item.split_once('-') {
            // A range walks forward through the week, so Fri-Mon covers the weekend.
            Some((from, to)) => {
                let (from, to) = (day(from.trim())?, day(to.trim())?);
                let mut d = from;
                days[d] = true;
                while d != to {
                    d = (d + 1) % 7;
                    days[d] = true;
                }
            }
            None => days[day(item)?] = true,
        }
    }
    Ok(days)
}

/// Monday = 0 … Sunday = 6, from an English day name or abbreviation, in any case.
fn window_day_index(name: &str) -> Option<usize> {
    Some(match name.to_ascii_lowercase().as_str() {
        "mon" | "monday" => 0,
        "tue" | "tues" | "tuesday" => 1,
        "wed" | "weds" | "wednesday" => 2,
        "thu" | "thur" | "thurs" | "thursday" => 3,
        "fri" | "friday" => 4,
        "sat" | "saturday" => 5,
        "sun" | "sunday" => 6,
        _ => return None,
    })
}

fn parse_hours(input: &str) -> Result<(NaiveTime, Option<NaiveTime>), CadenceError> {
    let input = input.trim();
    let bad = |reason: &str| CadenceError::BadWindowHours {
        input: input.to_string(),
        reason: reason.to_string(),
    };
    let (from, to) = input.split_once('-').ok_or_else(|| bad(HOURS_HINT))?;
    let start = clock_minutes(from.trim()).ok_or_else(|| bad(HOURS_HINT))?;
    let end = clock_minutes(to.trim()).ok_or_else(|| bad(HOURS_HINT))?;
    if start >= end {
        return Err(bad(
            "the start must be before the end (a window cannot run past midnight)",
        ));
    }
    let time = |minutes: u32| NaiveTime::from_hms_opt(minutes / 60, minutes % 60, 0);
    // `start < end <= 24:00`, so the start is a real time of day; only the end may be 24:00.
    let start = time(start).ok_or_else(|| bad(HOURS_HINT))?;
    Ok((start, time(end)))
}

/// Minutes since midnight for "9", "09", "9:30", "09:30", or "24:00"/"24" (= 1440).
fn clock_minutes(s: &str) -> Option<u32> {
    let digits = |part: &str, max_len: usize| {
        (!part.is_empty() && part.len() <= max_len && part.bytes().all(|b| b.is_ascii_digit()))
            .then(|| part.parse::<u32>().ok())
            .flatten()
    };
    let (hour, minute) = match s.split_once(':') {
        Some((h, m)) if m.len() == 2 => (digits(h, 2)?, digits(m, 2)?),
        Some(_) => return None,
        None => (digits(s, 2)?, 0),
    };
    (minute < 60 && (hour < 24 || (hour == 24 && minute == 0))).then_some(hour * 60 + minute)
}

fn describe_days(days: &[bool; 7]) -> String {
    if days.iter().all(|&d| d) {
        return "Mon-Sun".to_string();
    }
    let mut runs: Vec<(usize, usize)> = Vec::new();
    for (i, _) in days.iter().enumerate().filter(|(_, on)| **on) {
        match runs.last_mut() {
            Some(run) if run.1 + 1 == i => run.1 = i,
            _ => runs.push((i, i)),
        }
    }
    // A run ending on Sunday and one starting on Monday are one run across the weekend.
    if runs.len() >= 2 && runs[0].0 == 0 && runs[runs.len() - 1].1 == 6 {
        let monday_run = runs.remove(0);
        if let Some(last) = runs.last_mut() {
            last.1 = monday_run.1;
        }
    }
    runs.iter()
        .map(|&(a, b)| {
            if a == b {
                DAY_NAMES[a].to_string()
            } else {
                format!("{}-{}", DAY_NAMES[a], DAY_NAMES[b])
            }
        })
        .collect::<Vec<_>>()
        .join(",")
}

// ---------------------------------------------------------------------------------------------
// Cron
// ---------------------------------------------------------------------------------------------

const CRON_HINT: &str =
    "expected 5 fields: minute hour day-of-month month day-of-week (e.g. `0 9 * * 1`)";

/// A cron expression evaluated on the lead's local wall clock.
#[derive(Debug, Clone)]
pub struct CronSpec {
    /// The expression as written (trimmed).
    text: String,
    /// One schedule, or two when a Unix expression restricts both the day of the month and
    /// the day of the week: Unix cron fires when EITHER matches, the cron crate only when both
    /// do, so the two halves are evaluated separately and the earlier firing wins.
    schedules: Vec<cron::Schedule>,
}

impl CronSpec {
    /// Accepts the Unix crontab 5-field form marketers write (minute hour day-of-month month
    /// day-of-week; weekday 0 or 7 = Sunday, 1 = Monday … 6 = Saturday; names such as
    /// MON-FRI and JAN; lists, ranges and steps such as */15 or 1-5/2) and translates it for
    /// the cron crate: a seconds field "0" is prepended and weekdays are renumbered to the
    /// crate's 1 = Sunday … 7 = Saturday (a range ending in 7 or SUN, such as 5-7, means
    /// Friday to Sunday). As in Unix cron, restricting both the day of the month and the day
    /// of the week fires on days matching either.
    ///
    /// 6- and 7-field expressions (seconds first, optional year) are passed to the cron crate
    /// unchanged, in its own numbering and semantics, as are @daily, @weekly and friends.
    pub fn parse(expr: &str) -> Result<CronSpec, CadenceError> {
        let text = expr.trim();
        let bad = |reason: String| CadenceError::BadCron {
            expr: text.to_string(),
            reason,
        };
        let fields: Vec<&str> = text.split_whitespace().collect();
        let crate_exprs = match fields.as_slice() {
            [] => return Err(bad(format!("it is empty; {CRON_HINT}"))),
            [shorthand] if shorthand.starts_with('@') => {
                vec![match shorthand.to_ascii_lowercase().as_str() {
                    "@annually" => "@yearly".to_string(),
                    "@midnight" => "@daily".to_string(),
                    other => other.to_string(),
                }]
            }
            [minute, hour, dom, month, dow] => {
                unix_to_crate([minute, hour, dom, month, dow]).map_err(bad)?
            }
            six_or_seven if matches!(six_or_seven.len(), 6 | 7) => vec![six_or_seven.join(" ")],
            other => {
                return Err(bad(format!(
                    "expected 5 fields (minute hour day-of-month month day-of-week), or 6-7 \
                     fields with seconds first; found {}",
                    other.len()
                )));
            }
        };
        let schedules = crate_exprs
            .iter()
            .map(|e| {
                cron::Schedule::from_str(e).map_err(|err| bad(crate_error_reason(&err.to_string())))
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(CronSpec {
            text: text.to_string(),
            schedules,
        })
    }

    /// The expression as written (trimmed).
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// The first firing strictly after `t`, evaluated on the wall clock of `tz`.
    ///
    /// The schedule runs on local wall-clock readings (computed as if they were UTC, where
    /// nothing is skipped or repeated), starting after `t`'s own reading; each reading is then
    /// placed in the zone: inside a spring-forward gap it fires at the first instant after the
    /// gap (a 02:30 schedule fires at 03:00 that day), inside a fall-back repeat at the
    /// earlier instant only. The result is later than `t` both as an instant and as a wall
    /// clock reading, so no firing is lost or doubled across a DST change.
    ///
    /// `None` when the schedule has no later firing (the cron crate stops at year 2100).
    pub fn next_after(&self, t: DateTime<Utc>, tz: Tz) -> Option<DateTime<Utc>> {
        let mut from = local_naive(t, tz)?;
        // Each pass either returns or moves `from` forward; the second pass returns in
        // practice, the bound only guards against unforeseen zone data.
        for _ in 0..1_000 {
            let reading = self.next_reading_after(from)?;
            let instant = earliest_instant(reading, tz)?;
            if instant > t {
                return Some(instant);
            }
            // Only possible when `t` is in the second pass of a fall-back repeat: every
            // reading up to the end of the repeat already happened, in its first pass,
            // before `t`. Resume where the repeat ends.
            from = match repeat_end(t, tz) {
                Some(end) => end
                    .checked_sub_signed(TimeDelta::seconds(1))
                    .map_or(reading, |end| reading.max(end)),
                None => reading,
            };
        }
        None
    }

    /// The earliest firing of any of the schedules strictly after the wall-clock reading `from`.
    fn next_reading_after(&self, from: NaiveDateTime) -> Option<NaiveDateTime> {
        // The cron crate only knows the years 1970 to 2100, and adds a second to its input
        // without checking for overflow.
        if from.year() > 2100 {
            return None;
        }
        let floor = DateTime::UNIX_EPOCH
            .naive_utc()
            .checked_sub_signed(TimeDelta::seconds(1))?;
        let from = from.max(floor).and_utc();
        self.schedules
            .iter()
            .filter_map(|schedule| schedule.after(&from).next())
            .map(|t| t.naive_utc())
            .min()
    }
}

/// The wall-clock reading at which the fall-back repeat containing `t` ends (the reading just
/// before the clocks went back), if `t` is at most two days after a setback.
fn repeat_end(t: DateTime<Utc>, tz: Tz) -> Option<NaiveDateTime> {
    let since = t.checked_sub_days(Days::new(2))?;
    let setback = clock_setbacks(since, t, tz).pop()?;
    let before = offset_seconds_at(setback.timestamp().checked_sub(1)?, tz)?;
    setback
        .naive_utc()
        .checked_add_signed(TimeDelta::seconds(before.into()))
}

impl fmt::Display for CronSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

/// The useful part of a cron crate parse error. The crate echoes the expression it was given
/// (for a Unix expression, our translation, which the user never wrote) and a caret on
/// separate lines before the complaint, and says "less than 59" where it means "at most 59".
fn crate_error_reason(message: &str) -> String {
    let complaint = message
        .rsplit_once('^')
        .map_or(message, |(_, rest)| rest)
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ");
    if complaint.is_empty() {
        format!("not understood; {CRON_HINT}")
    } else {
        complaint.replace("must be less than", "must be at most")
    }
}

/// Turns Unix `minute hour dom month dow` into one or two cron-crate expressions.
fn unix_to_crate([minute, hour, dom, month, dow]: [&str; 5]) -> Result<Vec<String>, String> {
    let weekdays = unix_weekdays_to_crate(dow)?;
    // Vixie cron's rule: a field starting with `*` is unrestricted (even `*/2`); only when
    // both day fields are restricted does a day match either of them.
    let unrestricted = |field: &str| field.starts_with('*') || field.starts_with('?');
    if unrestricted(dom) || unrestricted(dow) {
        Ok(vec![format!("0 {minute} {hour} {dom} {month} {weekdays}")])
    } else {
        Ok(vec![
            format!("0 {minute} {hour} {dom} {month} *"),
            format!("0 {minute} {hour} * {month} {weekdays}"),
        ])
    }
}

/// Rewrites a Unix day-of-week field (0-7, 0 and 7 = Sunday) as an explicit list in the cron
/// crate's numbering (1 = Sunday … 7 = Saturday), or `*`.
fn unix_weekdays_to_crate(field: &str) -> Result<String, String> {
    if field == "*" || field == "?" {
        return Ok("*".to_string());
    }
    let mut on = [false; 7]; // Unix numbering: 0 = Sunday … 6 = Saturday
    for item in field.split(',') {
        let (base, step) = match item.split_once('/') {
            Some((base, step)) => match step.parse::<usize>() {
                Ok(step) if step > 0 => (base, step),
                _ => return Err(format!("bad step in day-of-week `{item}`")),
            },
            None => (item, 1),
        };
        let (first, last) = if base == "*" || base == "?" {
            (0, 7)
        } else if let Some((a, b)) = base.split_once('-') {
            let (a, b) = (unix_weekday(a)?, unix_weekday(b)?);
            // SUN (or 0) closing a range means the Sunday at the end of the week: SAT-SUN, 5-0.
            (a, if b == 0 && a > 0 { 7 } else { b })
        } else {
            let day = unix_weekday(base)?;
            // `N/step` runs from N to the end of the week, like `*/step` does from 0.
            (day, if item.contains('/') { 7 } else { day })
        };
        if first > last {
            return Err(format!(
                "day-of-week range `{base}` runs backwards \
                 (write 5-7 or FRI-SUN for Friday to Sunday)"
            ));
        }
        for day in (first..=last).step_by(step) {
            on[day % 7] = true;
        }
    }
    Ok((0..7)
        .filter(|&day| on[day])
        .map(|day| (day + 1).to_string())
        .collect::<Vec<_>>()
        .join(","))
}

/// A Unix weekday: 0-7 (0 and 7 = Sunday) or an English name or abbreviation.
fn unix_weekday(s: &str) -> Result<usize, String> {
    let day = match s.to_ascii_lowercase().as_str() {
        "sun" | "sunday" => 0,
        "mon" | "monday" => 1,
        "tue" | "tues" | "tuesday" => 2,
        "wed" | "wednesday" => 3,
        "thu" | "thurs" | "thursday" => 4,
        "fri" | "friday" => 5,
        "sat" | "saturday" => 6,
        number => match number.parse::<usize>() {
            Ok(n) if n <= 7 => n,
            _ => {
                return Err(format!(
                    "day of week `{s}` is not 0-7 (0 and 7 = Sunday, 1 = Monday) \
                     or a name such as MON"
                ));
            }
        },
    };
    Ok(day)
}

// ---------------------------------------------------------------------------------------------
// Cadence
// ---------------------------------------------------------------------------------------------

/// The least time between two steps of a cron campaign (see `Cadence::next_due`).
pub const CRON_MIN_GAP_HOURS: i64 = 23;

/// How often a campaign writes after the first email.
#[derive(Debug, Clone)]
pub enum Rhythm {
    Every(Span),
    Cron(CronSpec),
}

/// A campaign's timing.
#[derive(Debug, Clone)]
pub struct Cadence {
    /// Delay between the loss and the first email.
    pub first_after: Span,
    pub rhythm: Rhythm,
    /// Emails in the whole campaign, the first included.
    pub max_touches: u32,
    pub window: SendWindow,
}

impl Cadence {
    /// Due time of the first step (step 0): `anchor` (the loss date; the caller passes the
    /// import time when a lead has none) plus `first_after` in the lead's zone. If that is
    /// already past (a lead lost long ago) the step is due `now`: the campaign starts at the
    /// next allowed slot, it never replays missed steps. Then pushed into the send window.
    pub fn first_due(&self, anchor: DateTime<Utc>, now: DateTime<Utc>, tz: Tz) -> DateTime<Utc> {
        let due = self.first_after.after(anchor, tz).max(now);
        self.window.next_open(due, tz)
    }

    /// Due time of step `step`, the email about to be scheduled, counting the first email as
    /// step 0 (so step 1 is the second email), given that the previous one went out at
    /// `prev_sent`: `prev_sent` plus the
    /// rhythm's span in the lead's zone, or the next cron firing after `prev_sent`; then
    /// pushed into the send window.
    ///
    /// `None` when `step >= max_touches` (the campaign is finished), when the cron schedule
    /// has no later firing, or when the date would leave chrono's range.
    pub fn next_due(&self, step: u32, prev_sent: DateTime<Utc>, tz: Tz) -> Option<DateTime<Utc>> {
        if step >= self.max_touches {
            return None;
        }
        match &self.rhythm {
            Rhythm::Every(span) => Some(
                self.window
                    .next_open(span.checked_after(prev_sent, tz)?, tz),
            ),
            // Never two emails of one campaign within a day: a first email pushed into a
            // window (Monday 09:00) must not be followed by the cron's firing an hour later.
            // 23 hours, not 24, so a daily cron still fires on the next day.
            Rhythm::Cron(spec) => {
                let earliest = prev_sent + TimeDelta::hours(CRON_MIN_GAP_HOURS);
                let mut firing = spec.next_after(prev_sent, tz)?;
                // Bounded: a daily cron needs at most one step; a minutely one about 1,400.
                for _ in 0..2_000 {
                    let due = self.window.next_open(firing, tz);
                    if due >= earliest {
                        return Some(due);
                    }
                    firing = spec.next_after(firing.max(earliest - TimeDelta::seconds(1)), tz)?;
                }
                None
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::NaiveDate;
    use chrono_tz::America::{Los_Angeles, New_York};
    use chrono_tz::Asia::Tokyo;
    use chrono_tz::Australia::Sydney;
    use chrono_tz::Europe::Paris;

    /// An instant given as UTC, "YYYY-MM-DD HH:MM[:SS]".
    fn utc(s: &str) -> DateTime<Utc> {
        let naive = NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S")
            .or_else(|_| NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M"))
            .unwrap_or_else(|e| panic!("bad test time {s}: {e}"));
        naive.and_utc()
    }

    /// An instant given as a wall-clock reading in `tz` (the earlier one if repeated).
    fn local(tz: Tz, s: &str) -> DateTime<Utc> {
        let naive = utc(s).naive_utc();
        tz.from_local_datetime(&naive)
            .earliest()
            .unwrap_or_else(|| panic!("{s} does not exist in {tz}"))
            .to_utc()
    }

    /// How an instant reads in `tz`, e.g. "Sun 2026-03-08 03:00 EDT".
    fn show(t: DateTime<Utc>, tz: Tz) -> String {
        t.with_timezone(&tz)
            .format("%a %Y-%m-%d %H:%M %Z")
            .to_string()
    }

    fn cron(expr: &str) -> CronSpec {
        CronSpec::parse(expr).unwrap_or_else(|e| panic!("{e}"))
    }

    /// The next `n` firings after `from` as "Mon 2026-03-09 09:00 EDT, …", each checked to be
    /// strictly later than the one before.
    fn firings(expr: &str, tz: Tz, from: DateTime<Utc>, n: usize) -> String {
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

    fn window(days: &str, hours: &str) -> SendWindow {
        SendWindow::parse(days, hours).unwrap_or_else(|e| panic!("{e}"))
    }

    fn hours(h: i64) -> Span {
        Span::Fixed(TimeDelta::hours(h))
    }

    // --- Span parsing ------------------------------------------------------------------------

    #[test]
    fn span_parses_every_accepted_spelling() {
        let cases = [
            ("90d", Span::Days(90)),
            ("90 d", Span::Days(90)),
            ("90days", Span::Days(90)),
            ("90 days", Span::Days(90)),
            ("1 day", Span::Days(1)),
            ("  30d\t", Span::Days(30)),
            ("90D", Span::Days(90)),
            ("0d", Span::Days(0)),
            ("2w", Span::Days(14)),
            ("2weeks", Span::Days(14)),
            ("2 Weeks", Span::Days(14)),
            ("1 wk", Span::Days(7)),
            ("3mo", Span::Months(3)),
            ("3 months", Span::Months(3)),
            ("1 month", Span::Months(1)),
            ("3MO", Span::Months(3)),
            ("12h", hours(12)),
            ("12 hours", hours(12)),
            ("1hr", hours(1)),
            ("45m", Span::Fixed(TimeDelta::minutes(45))),
            ("45 min", Span::Fixed(TimeDelta::minutes(45))),
            ("45minutes", Span::Fixed(TimeDelta::minutes(45))),
            ("30s", Span::Fixed(TimeDelta::seconds(30))),
            ("30 sec", Span::Fixed(TimeDelta::seconds(30))),
            ("0s", Span::Fixed(TimeDelta::zero())),
            ("007d", Span::Days(7)),
            ("36600d", Span::Days(36_600)),
            ("1200mo", Span::Months(1_200)),
        ];
        for (text, want) in cases {
            assert_eq!(Span::parse(text), Ok(want), "{text:?}");
            assert_eq!(text.parse::<Span>(), Ok(want), "{text:?} via FromStr");
        }
    }

    #[test]
    fn span_rejects_malformed_or_absurd_input() {
        let cases = [
            ("", SPAN_HINT),
            ("   ", SPAN_HINT),
            ("x", SPAN_HINT),
            ("d", SPAN_HINT),
            ("-5d", SPAN_HINT),
            ("+5d", SPAN_HINT),
            ("5", SPAN_HINT),
            ("5y", SPAN_HINT),
            ("5 years", SPAN_HINT),
            ("5.5d", SPAN_HINT),
            ("1h30m", SPAN_HINT),
            ("5 d d", SPAN_HINT),
            ("d5", SPAN_HINT),
            ("٣d", SPAN_HINT),
            ("5 mon", SPAN_HINT),
            ("99999999999d", SPAN_TOO_LONG),
            ("99999999999999999999999d", SPAN_TOO_LONG),
            ("36601d", SPAN_TOO_LONG),
            ("5229w", SPAN_TOO_LONG),
            ("1201mo", SPAN_TOO_LONG),
            ("99999999999s", SPAN_TOO_LONG),
            ("3M", "ambiguous"),
        ];
        for (text, reason) in cases {
            let err = Span::parse(text).expect_err(text);
            let message = err.to_string();
            assert!(
                message.starts_with(&format!("bad duration `{}`: ", text.trim())),
                "{text:?}: {message}"
            );
            assert!(message.contains(reason), "{text:?}: {message}");
        }
    }

    #[test]
    fn span_error_message_says_what_is_expected() {
        assert_eq!(
            Span::parse("9x").map_err(|e| e.to_string()),
            Err(
                "bad duration `9x`: expected a number followed by s, m, h, d, w or mo (e.g. 90d)"
                    .to_string()
            )
        );
    }

    #[test]
    fn span_display_is_canonical_and_round_trips_through_parse() {
        let cases = [
            ("90d", "90d"),
            ("0d", "0d"),
            ("2w", "14d"),
            ("3 months", "3mo"),
            ("1mo", "1mo"),
            ("12h", "12h"),
            ("90m", "90m"),
            ("60m", "1h"),
            ("120s", "2m"),
            ("30s", "30s"),
            ("0s", "0s"),
            ("48h", "48h"),
        ];
        for (text, canonical) in cases {
            let span = Span::parse(text).unwrap();
            assert_eq!(span.to_string(), canonical, "{text:?}");
            assert_eq!(Span::parse(&span.to_string()), Ok(span), "{text:?}");
        }
    }

    #[test]
    fn zero_spans_are_recognised() {
        for text in ["0d", "0s", "0mo", "0w"] {
            assert!(Span::parse(text).unwrap().is_zero(), "{text}");
        }
        for text in ["1d", "1s", "1mo"] {
            assert!(!Span::parse(text).unwrap().is_zero(), "{text}");
        }
    }

    // --- Span arithmetic ---------------------------------------------------------------------

    #[test]
    fn monthly_span_clamps_to_the_end_of_the_month() {
        let cases = [
            ("2026-01-31 10:00", 1, "Sat 2026-02-28 10:00 CET"),
            ("2028-01-31 10:00", 1, "Tue 2028-02-29 10:00 CET"),
            ("2026-03-31 10:00", 1, "Thu 2026-04-30 10:00 CEST"),
            ("2026-08-31 10:00", 6, "Sun 2027-02-28 10:00 CET"),
            ("2026-12-31 10:00", 2, "Sun 2027-02-28 10:00 CET"),
            ("2027-12-31 10:00", 2, "Tue 2028-02-29 10:00 CET"),
            ("2026-01-15 10:00", 12, "Fri 2027-01-15 10:00 CET"),
            ("2026-10-31 23:30", 1, "Mon 2026-11-30 23:30 CET"),
        ];
        for (start, months, want) in cases {
            let got = Span::Months(months).after(local(Paris, start), Paris);
            assert_eq!(show(got, Paris), want, "{start} + {months}mo");
        }
    }

    #[test]
    fn daily_span_keeps_local_wall_time_across_dst_changes() {
        // (zone, start, span, expected local result, expected absolute length in hours)
        let cases = [
            (
                Paris,
                "2026-03-28 10:00",
                "1d",
                "Sun 2026-03-29 10:00 CEST",
                23,
            ),
            (
                Paris,
                "2026-10-24 10:00",
                "1d",
                "Sun 2026-10-25 10:00 CET",
                25,
            ),
            (
                Paris,
                "2026-03-22 10:00",
                "2w",
                "Sun 2026-04-05 10:00 CEST",
                14 * 24 - 1,
            ),
            (
                New_York,
                "2026-03-07 10:00",
                "1d",
                "Sun 2026-03-08 10:00 EDT",
                23,
            ),
            (
                New_York,
                "2026-10-31 10:00",
                "1d",
                "Sun 2026-11-01 10:00 EST",
                25,
            ),
            (
                New_York,
                "2026-01-15 10:00",
                "90d",
                "Wed 2026-04-15 10:00 EDT",
                90 * 24 - 1,
            ),
            (
                Sydney,
                "2026-04-04 10:00",
                "1d",
                "Sun 2026-04-05 10:00 AEST",
                25,
            ),
            (
                Sydney,
                "2026-10-03 10:00",
                "1d",
                "Sun 2026-10-04 10:00 AEDT",
                23,
            ),
            (
                Tokyo,
                "2026-03-07 10:00",
                "1d",
                "Sun 2026-03-08 10:00 JST",
                24,
            ),
            (
                Tokyo,
                "2026-10-31 10:00",
                "1d",
                "Sun 2026-11-01 10:00 JST",
                24,
            ),
        ];
        for (tz, start, span, want, length) in cases {
            let t = local(tz, start);
            let got = Span::parse(span).unwrap().after(t, tz);
            assert_eq!(show(got, tz), want, "{tz} {start} + {span}");
            assert_eq!((got - t).num_hours(), length, "{tz} {start} + {span}");
        }
    }

    #[test]
    fn fixed_span_adds_absolute_time_across_dst() {
        let cases = [
            (
                New_York,
                "2026-03-07 10:00",
                "24h",
                "Sun 2026-03-08 11:00 EDT",
            ),
            (
                New_York,
                "2026-10-31 10:00",
                "24h",
                "Sun 2026-11-01 09:00 EST",
            ),
            (
                Paris,
                "2026-03-29 01:30",
                "30m",
                "Sun 2026-03-29 03:00 CEST",
            ),
            (
                Sydney,
                "2026-04-05 01:59",
                "1h",
                "Sun 2026-04-05 02:59 AEDT",
            ),
        ];
        for (tz, start, span, want) in cases {
            let got = Span::parse(span).unwrap().after(local(tz, start), tz);
            assert_eq!(show(got, tz), want, "{tz} {start} + {span}");
        }
    }

    #[test]
    fn calendar_span_landing_in_a_spring_forward_gap_moves_past_it() {
        let cases = [
            (
                New_York,
                "2026-03-07 02:30",
                Span::Days(1),
                "Sun 2026-03-08 03:00 EDT",
            ),
            (
                New_York,
                "2026-03-01 02:59",
                Span::Days(7),
                "Sun 2026-03-08 03:00 EDT",
            ),
            (
                New_York,
                "2026-02-08 02:00",
                Span::Months(1),
                "Sun 2026-03-08 03:00 EDT",
            ),
            (
                Paris,
                "2026-03-28 02:30",
                Span::Days(1),
                "Sun 2026-03-29 03:00 CEST",
            ),
            (
                Sydney,
                "2026-10-03 02:30",
                Span::Days(1),
                "Sun 2026-10-04 03:00 AEDT",
            ),
            (
                Los_Angeles,
                "2026-03-07 02:15",
                Span::Days(1),
                "Sun 2026-03-08 03:00 PDT",
            ),
        ];
        for (tz, start, span, want) in cases {
            let got = span.after(local(tz, start), tz);
            assert_eq!(show(got, tz), want, "{tz} {start} + {span}");
        }
    }

    #[test]
    fn calendar_span_landing_in_a_fall_back_repeat_takes_the_earlier_instant() {
        let cases = [
            (
                New_York,
                "2026-10-31 01:30",
                Span::Days(1),
                "2026-11-01 05:30",
            ),
            (
                New_York,
                "2026-10-01 01:00",
                Span::Months(1),
                "2026-11-01 05:00",
            ),
            (Paris, "2026-10-24 02:30", Span::Days(1), "2026-10-25 00:30"),
            (
                Sydney,
                "2026-04-04 02:30",
                Span::Days(1),
                "2026-04-04 15:30",
            ),
        ];
        for (tz, start, span, want) in cases {
            let got = span.after(local(tz, start), tz);
            assert_eq!(got, utc(want), "{tz} {start} + {span}: {}", show(got, tz));
        }
    }

    #[test]
    fn zero_span_returns_the_same_instant_even_in_a_repeated_hour() {
        // 01:30 EST, the second 01:30 of 2026-11-01 in New York.
        let second_pass = utc("2026-11-01 06:30");
        for span in [
            Span::Days(0),
            Span::Months(0),
            Span::Fixed(TimeDelta::zero()),
        ] {
            assert_eq!(span.after(second_pass, New_York), second_pass, "{span}");
        }
    }

    #[test]
    fn spans_starting_in_the_second_pass_of_a_repeated_hour_keep_its_wall_time() {
        let second_pass = utc("2026-11-01 06:30"); // 01:30 EST
        let got = Span::Days(1).after(second_pass, New_York);
        assert_eq!(show(got, New_York), "Mon 2026-11-02 01:30 EST");
    }

    #[test]
    fn spans_at_the_edges_of_time_saturate_instead_of_panicking() {
        let now = utc("2026-03-10 12:00");
        let max = DateTime::<Utc>::MAX_UTC;
        let min = DateTime::<Utc>::MIN_UTC;
        assert_eq!(Span::Days(u32::MAX).after(now, Paris), max);
        assert_eq!(Span::Months(u32::MAX).after(now, Paris), max);
        assert_eq!(Span::Fixed(TimeDelta::MAX).after(now, Paris), max);
        assert_eq!(Span::Fixed(TimeDelta::MIN).after(now, Paris), min);
        assert_eq!(Span::Days(1).checked_after(max, Tokyo), None);
        assert_eq!(Span::Days(1).after(max, Los_Angeles), max);
        assert!(Span::Days(1).after(min, Los_Angeles) > min);
        assert!(Span::Months(1).after(min, Tokyo) > min);
    }

    // --- Send windows ------------------------------------------------------------------------

    #[test]
    fn send_window_parses_day_and_hour_spellings() {
        let cases = [
            ("Mon-Fri", "09:00-17:00", "Mon-Fri 09:00-17:00"),
            ("mon,wed,fri", "9-17", "Mon,Wed,Fri 09:00-17:00"),
            ("Mon-Sun", "00:00-24:00", "Mon-Sun 00:00-24:00"),
            ("Sat-Sun", "10:00-14:30", "Sat-Sun 10:00-14:30"),
            ("Fri-Mon", "8-12", "Fri-Mon 08:00-12:00"),
            ("Sun-Mon", "8-12", "Sun-Mon 08:00-12:00"),
            ("*", "9-17", "Mon-Sun 09:00-17:00"),
            ("all", "9:30-17", "Mon-Sun 09:30-17:00"),
            ("Daily", "0-24", "Mon-Sun 00:00-24:00"),
            ("weekdays", " 09:00 - 17:00 ", "Mon-Fri 09:00-17:00"),
            ("weekends", "10-16", "Sat-Sun 10:00-16:00"),
            ("Monday, Tuesday", "9:30-17:45", "Mon-Tue 09:30-17:45"),
            ("sun", "23:00-24:00", "Sun 23:00-24:00"),
            ("Tue-Tue", "9-10", "Tue 09:00-10:00"),
            ("mon,sun,wed", "9-17", "Wed,Sun-Mon 09:00-17:00"),
            ("THU-SAT,mon", "9-17", "Mon,Thu-Sat 09:00-17:00"),
            ("Sat-Fri", "9-17", "Mon-Sun 09:00-17:00"),
        ];
        for (days, hours, want) in cases {
            let w = window(days, hours);
            assert_eq!(w.describe(), want, "{days:?} {hours:?}");
            assert_eq!(w.to_string(), want);
            // describe() reads back to the same window
            let (d, h) = want.split_once(' ').unwrap();
            assert_eq!(window(d, h), w, "{want}");
        }
    }

    #[test]
    fn send_window_rejects_bad_days_and_hours() {
        let cases = [
            ("", "9-17", "bad send window days ``: a day is missing"),
            (
                "Mon-",
                "9-17",
                "bad send window days `Mon-`: a day is missing",
            ),
            (
                "mon,,fri",
                "9-17",
                "bad send window days `mon,,fri`: a day is missing",
            ),
            (
                "Funday",
                "9-17",
                "bad send window days `Funday`: unknown day `Funday`",
            ),
            ("Mon-Fri-Sat", "9-17", "unknown day `Fri-Sat`"),
            ("1-5", "9-17", "unknown day `1`"),
            (
                "Mon-Fri",
                "",
                "bad send window hours ``: expected HH:MM-HH:MM",
            ),
            (
                "Mon-Fri",
                "9",
                "bad send window hours `9`: expected HH:MM-HH:MM",
            ),
            ("Mon-Fri", "9am-5pm", "expected HH:MM-HH:MM"),
            ("Mon-Fri", "09:00-17:00-18:00", "expected HH:MM-HH:MM"),
            ("Mon-Fri", "9:5-17", "expected HH:MM-HH:MM"),
            ("Mon-Fri", "9:60-17", "expected HH:MM-HH:MM"),
            ("Mon-Fri", "25-26", "expected HH:MM-HH:MM"),
            ("Mon-Fri", "009-17", "expected HH:MM-HH:MM"),
            ("Mon-Fri", "24:30-24:45", "expected HH:MM-HH:MM"),
            ("Mon-Fri", "-9-17", "expected HH:MM-HH:MM"),
            ("Mon-Fri", "17:00-09:00", "the start must be before the end"),
            ("Mon-Fri", "9-9", "the start must be before the end"),
            ("Mon-Fri", "24-24", "the start must be before the end"),
            ("Mon-Fri", "00:00-00:00", "the start must be before the end"),
        ];
        for (days, hours, want) in cases {
            let err = SendWindow::parse(days, hours).expect_err(&format!("{days} {hours}"));
            assert!(err.to_string().contains(want), "{days:?} {hours:?}: {err}");
        }
    }

    #[test]
    fn always_and_office_hours_are_the_obvious_windows() {
        assert_eq!(SendWindow::always(), window("*", "00:00-24:00"));
        assert_eq!(SendWindow::always().describe(), "Mon-Sun 00:00-24:00");
        assert_eq!(SendWindow::office_hours(), window("Mon-Fri", "09:00-17:00"));
        assert_eq!(SendWindow::default(), SendWindow::office_hours());
        let office = SendWindow::office_hours();
        assert!(office.includes_day(Weekday::Fri) && !office.includes_day(Weekday::Sat));
        assert_eq!(office.start(), NaiveTime::from_hms_opt(9, 0, 0).unwrap());
        assert_eq!(office.end(), NaiveTime::from_hms_opt(17, 0, 0));
        assert_eq!(SendWindow::always().end(), None);
    }

    #[test]
    fn contains_checks_the_day_and_the_half_open_hours() {
        let office = SendWindow::office_hours();
        let cases = [
            ("2026-03-11 09:00", true),
            ("2026-03-11 08:59", false),
            ("2026-03-11 16:59", true),
            ("2026-03-11 17:00", false),
            ("2026-03-14 12:00", false),
            ("2026-03-15 12:00", false),
        ];
        for (at, want) in cases {
            assert_eq!(office.contains(local(New_York, at), New_York), want, "{at}");
        }
        let all_day = SendWindow::always();
        assert!(all_day.contains(utc("2026-03-11 00:00"), Tokyo));
        assert!(all_day.contains(utc("2026-03-11 23:59:59"), Tokyo));
    }

    #[test]
    fn next_open_pushes_instants_into_office_hours() {
        let office = SendWindow::office_hours();
        // 2026-03-09 is a Monday (after New York switched to EDT).
        let cases = [
            ("2026-03-11 10:00", "Wed 2026-03-11 10:00 EDT"), // inside: unchanged
            ("2026-03-11 09:00", "Wed 2026-03-11 09:00 EDT"), // at opening: unchanged
            ("2026-03-11 07:00", "Wed 2026-03-11 09:00 EDT"), // before opening: same day
            ("2026-03-11 00:00", "Wed 2026-03-11 09:00 EDT"),
            ("2026-03-11 17:00", "Thu 2026-03-12 09:00 EDT"), // at closing: next day
            ("2026-03-11 18:00", "Thu 2026-03-12 09:00 EDT"), // after closing: next day
            ("2026-03-13 17:30", "Mon 2026-03-16 09:00 EDT"), // Friday evening: Monday
            ("2026-03-14 12:00", "Mon 2026-03-16 09:00 EDT"), // Saturday
            ("2026-03-15 23:59", "Mon 2026-03-16 09:00 EDT"), // Sunday night
            ("2026-03-06 18:00", "Mon 2026-03-09 09:00 EDT"), // weekend spanning the DST change
        ];
        for (at, want) in cases {
            let t = local(New_York, at);
            let got = office.next_open(t, New_York);
            assert_eq!(show(got, New_York), want, "{at}");
            assert!(got >= t && office.contains(got, New_York), "{at}");
        }
        let inside = local(New_York, "2026-03-11 10:00:07");
        assert_eq!(office.next_open(inside, New_York), inside);
    }

    #[test]
    fn next_open_in_a_weekend_only_window() {
        let weekend = window("Sat-Sun", "10:00-14:00");
        let cases = [
            ("2026-03-11 12:00", "Sat 2026-03-14 10:00 CET"),
            ("2026-03-14 09:00", "Sat 2026-03-14 10:00 CET"),
            ("2026-03-14 11:00", "Sat 2026-03-14 11:00 CET"),
            ("2026-03-14 15:00", "Sun 2026-03-15 10:00 CET"),
            ("2026-03-15 14:00", "Sat 2026-03-21 10:00 CET"),
            ("2026-03-23 10:00", "Sat 2026-03-28 10:00 CET"),
            ("2026-03-28 14:00", "Sun 2026-03-29 10:00 CEST"),
        ];
        for (at, want) in cases {
            assert_eq!(
                show(weekend.next_open(local(Paris, at), Paris), Paris),
                want,
                "{at}"
            );
        }
    }

    #[test]
    fn next_open_in_a_day_range_wrapping_round_the_weekend() {
        let long_weekend = window("Fri-Mon", "9-17");
        let cases = [
            ("2026-03-10 10:00", "Fri 2026-03-13 09:00 JST"), // Tuesday
            ("2026-03-09 16:00", "Mon 2026-03-09 16:00 JST"), // Monday: inside
            ("2026-03-09 17:00", "Fri 2026-03-13 09:00 JST"), // Monday after closing
            ("2026-03-15 12:00", "Sun 2026-03-15 12:00 JST"), // Sunday: inside
            ("2026-03-14 20:00", "Sun 2026-03-15 09:00 JST"),
        ];
        for (at, want) in cases {
            assert_eq!(
                show(long_weekend.next_open(local(Tokyo, at), Tokyo), Tokyo),
                want,
                "{at}"
            );
        }
    }

    #[test]
    fn an_all_day_window_runs_from_midnight_to_midnight() {
        let weekdays = window("Mon-Fri", "00:00-24:00");
        let cases = [
            ("2026-03-13 23:59:59", "Fri 2026-03-13 23:59 PDT"),
            ("2026-03-14 00:00", "Mon 2026-03-16 00:00 PDT"),
            ("2026-03-16 00:00", "Mon 2026-03-16 00:00 PDT"),
        ];
        for (at, want) in cases {
            let got = weekdays.next_open(local(Los_Angeles, at), Los_Angeles);
            assert_eq!(show(got, Los_Angeles), want, "{at}");
        }
    }

    #[test]
    fn the_same_instant_is_judged_on_the_leads_own_clock() {
        let office = SendWindow::office_hours();
        let t = utc("2026-03-11 01:00"); // Wed 10:00 in Tokyo, Tue 18:00 in Los Angeles
        assert!(office.contains(t, Tokyo));
        assert!(!office.contains(t, Los_Angeles));
        assert_eq!(office.next_open(t, Tokyo), t);
        assert_eq!(office.next_open(t, Los_Angeles), utc("2026-03-11 16:00"));
        assert_eq!(
            show(office.next_open(t, Los_Angeles), Los_Angeles),
            "Wed 2026-03-11 09:00 PDT"
        );
    }

    #[test]
    fn a_window_opening_inside_the_spring_forward_gap_opens_after_it() {
        let early = window("*", "02:30-05:00");
        let cases = [
            (New_York, "2026-03-08 01:00", "Sun 2026-03-08 03:00 EDT"),
            (New_York, "2026-03-07 06:00", "Sun 2026-03-08 03:00 EDT"),
            (Paris, "2026-03-29 00:10", "Sun 2026-03-29 03:00 CEST"),
            (Sydney, "2026-10-04 01:59", "Sun 2026-10-04 03:00 AEDT"),
        ];
        for (tz, at, want) in cases {
            assert_eq!(
                show(early.next_open(local(tz, at), tz), tz),
                want,
                "{tz} {at}"
            );
        }
        assert_eq!(
            early.next_open(local(New_York, "2026-03-08 01:00"), New_York),
            utc("2026-03-08 07:00")
        );
    }

    #[test]
    fn a_window_that_falls_wholly_in_the_gap_is_skipped_that_day() {
        let narrow = window("*", "02:00-02:45");
        let got = narrow.next_open(local(New_York, "2026-03-08 01:00"), New_York);
        assert_eq!(show(got, New_York), "Mon 2026-03-09 02:00 EDT");
    }

    #[test]
    fn a_window_opening_in_the_repeated_hour_opens_at_the_first_pass_still_ahead() {
        let w = window("*", "01:30-03:00");
        // 01:10 EDT: the first 01:30 is still ahead.
        assert_eq!(
            w.next_open(utc("2026-11-01 05:10"), New_York),
            utc("2026-11-01 05:30")
        );
        // 01:10 EST: the first 01:30 has gone by, the second has not.
        assert_eq!(
            w.next_open(utc("2026-11-01 06:10"), New_York),
            utc("2026-11-01 06:30")
        );
    }

    #[test]
    fn a_fall_back_that_puts_the_clock_back_inside_the_window_reopens_it() {
        let w = window("*", "00:00-01:30");
        // 01:45 EDT is after closing, but at 02:00 EDT the clock goes back to 01:00 EST.
        let got = w.next_open(utc("2026-11-01 05:45"), New_York);
        assert_eq!(got, utc("2026-11-01 06:00"));
        assert_eq!(show(got, New_York), "Sun 2026-11-01 01:00 EST");
        // Same in Paris (03:00 CEST -> 02:00 CET) with a window closing at 02:15.
        let w = window("Sun", "01:00-02:15");
        let got = w.next_open(local(Paris, "2026-10-25 02:20"), Paris);
        assert_eq!(show(got, Paris), "Sun 2026-10-25 02:00 CET");
    }

    // --- Cron --------------------------------------------------------------------------------

    #[test]
    fn unix_crontab_expressions_are_translated_for_the_cron_crate() {
        // (expression, after this UTC instant, the next firings in UTC without the zone name)
        // 2026-03-04 is a Wednesday.
        let cases = [
            (
                "0 9 * * 1",
                "2026-03-04 12:00",
                "Mon 03-09 09:00, Mon 03-16 09:00",
            ),
            (
                "0 9 * * 0",
                "2026-03-04 12:00",
                "Sun 03-08 09:00, Sun 03-15 09:00",
            ),
            (
                "0 9 * * 7",
                "2026-03-04 12:00",
                "Sun 03-08 09:00, Sun 03-15 09:00",
            ),
            (
                "0 9 * * 6",
                "2026-03-04 12:00",
                "Sat 03-07 09:00, Sat 03-14 09:00",
            ),
            (
                "0 9 * * 1-5",
                "2026-03-06 10:00",
                "Mon 03-09 09:00, Tue 03-10 09:00",
            ),
            (
                "0 9 * * 1-5",
                "2026-03-04 08:00",
                "Wed 03-04 09:00, Thu 03-05 09:00",
            ),
            (
                "0 9 1 * *",
                "2026-03-04 12:00",
                "Wed 04-01 09:00, Fri 05-01 09:00",
            ),
            (
                "0 9 * * MON-FRI",
                "2026-03-07 12:00",
                "Mon 03-09 09:00, Tue 03-10 09:00",
            ),
            (
                "0 9 * * mon-fri",
                "2026-03-13 12:00",
                "Mon 03-16 09:00, Tue 03-17 09:00",
            ),
            (
                "0 9 * * 5-7",
                "2026-03-05 12:00",
                "Fri 03-06 09:00, Sat 03-07 09:00, Sun 03-08 09:00, Fri 03-13 09:00",
            ),
            (
                "0 9 * * FRI-SUN",
                "2026-03-05 12:00",
                "Fri 03-06 09:00, Sat 03-07 09:00, Sun 03-08 09:00, Fri 03-13 09:00",
            ),
            (
                "0 9 * * 0-2",
                "2026-03-06 12:00",
                "Sun 03-08 09:00, Mon 03-09 09:00, Tue 03-10 09:00, Sun 03-15 09:00",
            ),
            (
                "0 9 * * 1,3,5",
                "2026-03-08 12:00",
                "Mon 03-09 09:00, Wed 03-11 09:00, Fri 03-13 09:00, Mon 03-16 09:00",
            ),
            (
                "0 9 * * 1-5/2",
                "2026-03-08 12:00",
                "Mon 03-09 09:00, Wed 03-11 09:00, Fri 03-13 09:00, Mon 03-16 09:00",
            ),
            (
                "0 9 * * */2",
                "2026-03-07 12:00",
                "Sun 03-08 09:00, Tue 03-10 09:00, Thu 03-12 09:00, Sat 03-14 09:00",
            ),
            (
                "0 9 * * 7,Wed",
                "2026-03-04 12:00",
                "Sun 03-08 09:00, Wed 03-11 09:00, Sun 03-15 09:00",
            ),
            (
                "*/15 * * * *",
                "2026-03-04 10:07",
                "Wed 03-04 10:15, Wed 03-04 10:30, Wed 03-04 10:45, Wed 03-04 11:00",
            ),
            (
                "30 8,17 * * *",
                "2026-03-04 12:00",
                "Wed 03-04 17:30, Thu 03-05 08:30",
            ),
            (
                "0 10 1 */3 *",
                "2026-03-04 12:00",
                "Wed 04-01 10:00, Wed 07-01 10:00",
            ),
            (
                "0 9 * jan mon",
                "2026-03-04 12:00",
                "Mon 01-04 09:00, Mon 01-11 09:00",
            ),
            (
                "@daily",
                "2026-03-04 12:00",
                "Thu 03-05 00:00, Fri 03-06 00:00",
            ),
            (
                "@midnight",
                "2026-03-04 12:00",
                "Thu 03-05 00:00, Fri 03-06 00:00",
            ),
            (
                "@weekly",
                "2026-03-04 12:00",
                "Sun 03-08 00:00, Sun 03-15 00:00",
            ),
        ];
        for (expr, from, want) in cases {
            let spec = cron(expr);
            let mut t = utc(from);
            let got: Vec<String> = (0..want.split(", ").count())
                .map(|_| {
                    let next = spec.next_after(t, Tz::UTC).unwrap();
                    assert!(next > t, "{expr}");
                    t = next;
                    next.format("%a %m-%d %H:%M").to_string()
                })
                .collect();
            assert_eq!(got.join(", "), want, "{expr:?} after {from}");
        }
    }

    #[test]
    fn six_and_seven_field_expressions_keep_the_cron_crate_numbering() {
        let from = utc("2026-03-04 12:00");
        let cases = [
            ("0 0 9 * * 2", "Mon 2026-03-09 09:00 UTC"), // crate: 2 = Monday
            ("0 0 9 * * 1", "Sun 2026-03-08 09:00 UTC"), // crate: 1 = Sunday
            ("0 0 9 * * 7", "Sat 2026-03-07 09:00 UTC"), // crate: 7 = Saturday
            ("0 0 9 * * Mon", "Mon 2026-03-09 09:00 UTC"),
            ("30 0 9 * * *", "Thu 2026-03-05 09:00 UTC"),
            ("0 0 9 1 1 * 2027", "Fri 2027-01-01 09:00 UTC"),
            // The crate ANDs day-of-month and day-of-week: Friday the 13th only.
            (
                "0 0 9 13 * 6",
                "Fri 2026-03-13 09:00 UTC, Fri 2026-11-13 09:00 UTC",
            ),
        ];
        for (expr, want) in cases {
            let n = want.split(", ").count();
            assert_eq!(firings(expr, Tz::UTC, from, n), want, "{expr}");
        }
        let spec = cron("  0 0 9 * * 2 ");
        assert_eq!(spec.as_str(), "0 0 9 * * 2");
        assert_eq!(spec.to_string(), "0 0 9 * * 2");
    }

    #[test]
    fn unix_day_of_month_and_day_of_week_both_set_fire_on_either() {
        let from = utc("2026-03-01 00:00");
        // Vixie cron: "on the 13th, and on Fridays".
        assert_eq!(
            firings("0 9 13 * 5", Tz::UTC, from, 8),
            "Fri 2026-03-06 09:00 UTC, Fri 2026-03-13 09:00 UTC, Fri 2026-03-20 09:00 UTC, \
             Fri 2026-03-27 09:00 UTC, Fri 2026-04-03 09:00 UTC, Fri 2026-04-10 09:00 UTC, \
             Mon 2026-04-13 09:00 UTC, Fri 2026-04-17 09:00 UTC"
        );
        // A star in either day field lets the other decide alone.
        assert_eq!(
            firings("0 9 13 * *", Tz::UTC, from, 2),
            "Fri 2026-03-13 09:00 UTC, Mon 2026-04-13 09:00 UTC"
        );
        // `*/10` starts with a star, so both must match: Fridays that are the 1st, 11th, 21st
        // or 31st.
        assert_eq!(
            firings("0 9 */10 * 5", Tz::UTC, from, 2),
            "Fri 2026-05-01 09:00 UTC, Fri 2026-07-31 09:00 UTC"
        );
    }

    #[test]
    fn bad_cron_expressions_are_rejected_with_the_text_quoted() {
        let cases = [
            ("", "empty"),
            ("   ", "empty"),
            ("0 9 * *", "found 4"),
            ("garbage", "found 1"),
            ("0 9 * * * * * *", "found 8"),
            ("61 * * * *", "Minutes"),
            ("0 25 * * *", "Hours"),
            ("0 9 32 * *", "Days of Month"),
            ("0 9 * 13 *", "Months"),
            ("0 9 * * 8", "day of week `8`"),
            ("0 9 * * -1", "day of week ``"),
            ("0 9 * * FOO", "day of week `FOO`"),
            ("0 9 * * 5-1", "runs backwards"),
            ("0 9 * * 1/0", "bad step"),
            ("0 9 * * 1/x", "bad step"),
            ("0 9 * * L", "day of week `L`"),
            ("0 9 * * MON#2", "day of week `MON#2`"),
            ("0 9 * * 1,,2", "day of week ``"),
            ("x 9 * * *", ""),
            ("0 9 * * * nonsense", ""),
            ("@reboot", ""),
            ("0 0 9 * * 0", "Days of Week"),
        ];
        for (expr, detail) in cases {
            let err = CronSpec::parse(expr).expect_err(expr);
            let message = err.to_string();
            assert!(
                message.starts_with(&format!("bad cron expression `{}`: ", expr.trim())),
                "{expr:?}: {message}"
            );
            assert!(message.contains(detail), "{expr:?}: {message}");
            assert!(!message.contains('\n'), "{expr:?}: {message}");
        }
    }

    #[test]
    fn cron_is_evaluated_on_the_leads_wall_clock() {
        let monday_nine = cron("0 9 * * 1");
        let from = utc("2026-03-04 12:00");
        assert_eq!(
            monday_nine.next_after(from, Tokyo),
            Some(utc("2026-03-09 00:00"))
        );
        assert_eq!(
            monday_nine.next_after(from, New_York),
            Some(utc("2026-03-09 13:00"))
        );
        assert_eq!(
            monday_nine.next_after(from, Paris),
            Some(utc("2026-03-09 08:00"))
        );
        assert_eq!(
            monday_nine.next_after(from, Sydney),
            Some(utc("2026-03-08 22:00"))
        );
    }

    #[test]
    fn a_2_30_schedule_still_fires_on_spring_forward_day_at_3_00() {
        let from = local(New_York, "2026-03-07 02:30");
        assert_eq!(
            firings("30 2 * * *", New_York, from, 3),
            "Sun 2026-03-08 03:00 EDT, Mon 2026-03-09 02:30 EDT, Tue 2026-03-10 02:30 EDT"
        );
        assert_eq!(
            cron("30 2 * * *").next_after(from, New_York),
            Some(utc("2026-03-08 07:00"))
        );
    }

    #[test]
    fn a_1_30_schedule_fires_once_on_fall_back_day() {
        let from = local(New_York, "2026-10-31 01:30");
        assert_eq!(
            firings("30 1 * * *", New_York, from, 3),
            "Sun 2026-11-01 01:30 EDT, Mon 2026-11-02 01:30 EST, Tue 2026-11-03 01:30 EST"
        );
        // From the first 01:30 (05:30 UTC) the next firing is a day later, not the second 01:30.
        let spec = cron("30 1 * * *");
        assert_eq!(
            spec.next_after(utc("2026-11-01 05:30"), New_York),
            Some(utc("2026-11-02 06:30"))
        );
    }

    #[test]
    fn a_schedule_started_in_the_second_pass_of_the_repeat_skips_what_the_first_pass_fired() {
        let t = utc("2026-11-01 06:10"); // 01:10 EST; 01:30 EDT went by forty minutes ago
        assert_eq!(
            cron("30 1 * * *").next_after(t, New_York),
            Some(utc("2026-11-02 06:30"))
        );
        // Every five minutes: the readings 01:15 to 01:55 already fired in the first pass.
        assert_eq!(
            cron("*/5 * * * *").next_after(t, New_York),
            Some(utc("2026-11-01 07:00"))
        );
        // Every second (crate form): the next reading not yet fired is 02:00:00 EST.
        assert_eq!(
            cron("* * * * * *").next_after(t, New_York),
            Some(utc("2026-11-01 07:00"))
        );
        // In the first pass, the rest of the repeated hour is still ahead.
        assert_eq!(
            cron("*/5 * * * *").next_after(utc("2026-11-01 05:10"), New_York),
            Some(utc("2026-11-01 05:15"))
        );
    }

    #[test]
    fn an_hourly_schedule_neither_skips_nor_doubles_wall_clock_hours() {
        assert_eq!(
            firings("0 * * * *", New_York, utc("2026-11-01 04:00"), 3),
            "Sun 2026-11-01 01:00 EDT, Sun 2026-11-01 02:00 EST, Sun 2026-11-01 03:00 EST"
        );
        assert_eq!(
            firings(
                "0 * * * *",
                New_York,
                local(New_York, "2026-03-08 00:30"),
                3
            ),
            "Sun 2026-03-08 01:00 EST, Sun 2026-03-08 03:00 EDT, Sun 2026-03-08 04:00 EDT"
        );
        // 02:00 to 02:45 do not exist: one firing at 03:00 stands for them, then 03:15 as usual.
        assert_eq!(
            firings(
                "*/15 * * * *",
                New_York,
                local(New_York, "2026-03-08 01:40"),
                3
            ),
            "Sun 2026-03-08 01:45 EST, Sun 2026-03-08 03:00 EDT, Sun 2026-03-08 03:15 EDT"
        );
    }

    #[test]
    fn a_daily_schedule_fires_exactly_once_per_day_through_a_week_around_each_dst_change() {
        let cases = [
            (New_York, "30 2 * * *", "2026-03-04"),
            (New_York, "30 1 * * *", "2026-10-28"),
            (New_York, "0 2 * * *", "2026-10-28"),
            (Paris, "30 2 * * *", "2026-03-25"),
            (Paris, "30 2 * * *", "2026-10-21"),
            (Sydney, "30 2 * * *", "2026-04-01"),
            (Sydney, "30 2 * * *", "2026-09-30"),
            (Los_Angeles, "15 2 * * *", "2026-03-04"),
            (Tokyo, "30 2 * * *", "2026-03-04"),
        ];
        for (tz, expr, first_day) in cases {
            let spec = cron(expr);
            let start = local(tz, &format!("{first_day} 00:00"));
            let mut t = start;
            let mut days = Vec::new();
            for _ in 0..8 {
                let next = spec.next_after(t, tz).unwrap();
                assert!(next > t, "{tz} {expr}");
                days.push(next.with_timezone(&tz).date_naive());
                t = next;
            }
            let first = start.with_timezone(&tz).date_naive();
            let want: Vec<_> = first.iter_days().take(8).collect();
            assert_eq!(days, want, "{tz} {expr} from {first_day}");
        }
    }

    #[test]
    fn a_cron_schedule_past_the_crates_last_year_has_no_next_firing() {
        assert_eq!(
            cron("0 0 9 1 1 * 2027").next_after(utc("2027-06-01 00:00"), Paris),
            None
        );
        assert_eq!(
            cron("0 9 * * *").next_after(utc("2100-12-31 12:00"), Tz::UTC),
            None
        );
        assert_eq!(
            cron("0 9 * * *").next_after(DateTime::<Utc>::MAX_UTC, Tokyo),
            None
        );
        assert_eq!(
            cron("0 9 * * *").next_after(DateTime::<Utc>::MIN_UTC, Tokyo),
            Some(utc("1970-01-01 00:00"))
        );
    }

    // --- Cadence -----------------------------------------------------------------------------

    fn cadence(first_after: &str, rhythm: Rhythm, max_touches: u32, window: SendWindow) -> Cadence {
        Cadence {
            first_after: Span::parse(first_after).unwrap(),
            rhythm,
            max_touches,
            window,
        }
    }

    fn every(span: &str) -> Rhythm {
        Rhythm::Every(Span::parse(span).unwrap())
    }

    #[test]
    fn first_due_for_a_recent_loss_is_the_loss_plus_the_delay() {
        let c = cadence("90d", every("30d"), 6, SendWindow::office_hours());
        let lost = local(New_York, "2026-01-07 10:00"); // a Wednesday, in EST
        let due = c.first_due(lost, utc("2026-01-20 12:00"), New_York);
        assert_eq!(show(due, New_York), "Tue 2026-04-07 10:00 EDT");
    }

    #[test]
    fn first_due_for_a_loss_long_ago_is_the_next_slot_from_now() {
        let c = cadence("90d", every("30d"), 6, SendWindow::office_hours());
        let lost = utc("2020-01-01 12:00");
        let now = utc("2026-03-11 03:00"); // Tue 23:00 in New York
        let due = c.first_due(lost, now, New_York);
        assert_eq!(show(due, New_York), "Wed 2026-03-11 09:00 EDT");
        assert!(due >= now);
        let now_inside = local(New_York, "2026-03-11 11:22");
        assert_eq!(c.first_due(lost, now_inside, New_York), now_inside);
    }

    #[test]
    fn first_due_landing_on_a_saturday_moves_to_the_monday_opening() {
        let c = cadence("90d", every("30d"), 6, SendWindow::office_hours());
        let lost = local(New_York, "2026-01-11 11:00"); // a Sunday; +90d is Saturday 2026-04-11
        let due = c.first_due(lost, utc("2026-01-12 00:00"), New_York);
        assert_eq!(show(due, New_York), "Mon 2026-04-13 09:00 EDT");
    }

    #[test]
    fn first_due_after_an_evening_loss_waits_for_the_window() {
        let c = cadence("1d", every("30d"), 6, SendWindow::office_hours());
        let lost = local(Tokyo, "2026-03-10 22:00");
        assert_eq!(
            show(c.first_due(lost, lost, Tokyo), Tokyo),
            "Thu 2026-03-12 09:00 JST"
        );
    }

    #[test]
    fn next_due_follows_the_rhythm_then_the_window() {
        let office = SendWindow::office_hours;
        let cases = [
            // 30 days keep the local time across the DST change.
            (
                every("30d"),
                New_York,
                "2026-03-02 10:00",
                "Wed 2026-04-01 10:00 EDT",
            ),
            // A month from Jan 30 is Saturday Feb 28: pushed to Monday.
            (
                every("1mo"),
                New_York,
                "2026-01-30 10:00",
                "Mon 2026-03-02 09:00 EST",
            ),
            (
                every("1mo"),
                Paris,
                "2026-03-31 16:30",
                "Thu 2026-04-30 16:30 CEST",
            ),
            (
                every("2w"),
                Sydney,
                "2026-03-27 15:00",
                "Fri 2026-04-10 15:00 AEST",
            ),
            // 12 hours after 10:00 is 22:00: pushed to the next morning.
            (
                every("12h"),
                Los_Angeles,
                "2026-03-10 10:00",
                "Wed 2026-03-11 09:00 PDT",
            ),
            (
                Rhythm::Cron(cron("0 10 1 * *")),
                New_York,
                "2026-03-02 10:00",
                "Wed 2026-04-01 10:00 EDT",
            ),
            (
                Rhythm::Cron(cron("0 20 * * *")),
                New_York,
                "2026-03-10 10:00",
                "Wed 2026-03-11 09:00 EDT",
            ),
            (
                Rhythm::Cron(cron("0 9 * * 1")),
                Tokyo,
                "2026-03-09 09:00",
                "Mon 2026-03-16 09:00 JST",
            ),
        ];
        for (rhythm, tz, prev, want) in cases {
            let c = cadence("0d", rhythm, 6, office());
            let due = c.next_due(1, local(tz, prev), tz).unwrap();
            assert_eq!(show(due, tz), want, "{tz} {prev} {:?}", c.rhythm);
        }
    }

    #[test]
    fn next_due_is_none_once_max_touches_is_reached() {
        let c = cadence("0d", every("30d"), 3, SendWindow::always());
        let prev = utc("2026-03-10 10:00");
        assert!(c.next_due(1, prev, Paris).is_some());
        assert!(c.next_due(2, prev, Paris).is_some());
        assert_eq!(c.next_due(3, prev, Paris), None);
        assert_eq!(c.next_due(4, prev, Paris), None);
        assert_eq!(c.next_due(u32::MAX, prev, Paris), None);
        let single = cadence("0d", every("30d"), 1, SendWindow::always());
        assert_eq!(single.next_due(1, prev, Paris), None);
    }

    #[test]
    fn next_due_is_none_when_the_cron_schedule_has_ended_or_time_runs_out() {
        let c = cadence(
            "0d",
            Rhythm::Cron(cron("0 0 9 1 1 * 2027")),
            6,
            SendWindow::always(),
        );
        assert_eq!(
            c.next_due(1, utc("2026-06-01 00:00"), Paris),
            Some(utc("2027-01-01 08:00"))
        );
        assert_eq!(c.next_due(2, utc("2027-01-01 08:00"), Paris), None);
        let huge = cadence(
            "0d",
            Rhythm::Every(Span::Days(u32::MAX)),
            6,
            SendWindow::always(),
        );
        assert_eq!(huge.next_due(1, utc("2026-06-01 00:00"), Paris), None);
    }

    #[test]
    fn a_full_campaign_of_six_touches_is_strictly_increasing_and_inside_the_window() {
        let campaigns = [
            (
                "90d",
                every("30d"),
                New_York,
                SendWindow::office_hours(),
                "2025-12-01 16:00",
            ),
            (
                "30d",
                every("1mo"),
                Paris,
                SendWindow::office_hours(),
                "2026-01-31 10:00",
            ),
            (
                "2w",
                every("2w"),
                Sydney,
                window("Sat-Sun", "10:00-14:00"),
                "2026-02-20 12:00",
            ),
            (
                "1d",
                every("12h"),
                Los_Angeles,
                SendWindow::office_hours(),
                "2026-03-05 12:00",
            ),
            (
                "0d",
                Rhythm::Cron(cron("0 10 * * 1")),
                Tokyo,
                SendWindow::office_hours(),
                "2026-03-01 10:00",
            ),
            (
                "0d",
                Rhythm::Cron(cron("30 2 * * *")),
                New_York,
                SendWindow::always(),
                "2026-03-05 12:00",
            ),
            (
                "0d",
                Rhythm::Cron(cron("30 1 * * *")),
                New_York,
                SendWindow::always(),
                "2026-10-29 12:00",
            ),
            (
                "3d",
                Rhythm::Cron(cron("0 8 * * *")),
                Paris,
                window("Mon,Wed,Fri", "09:00-12:00"),
                "2026-10-20 12:00",
            ),
        ];
        for (first_after, rhythm, tz, window, lost) in campaigns {
            let c = cadence(first_after, rhythm, 6, window);
            let lost = local(tz, lost);
            let mut sent = vec![c.first_due(lost, lost, tz)];
            for step in 1.. {
                let prev = sent[sent.len() - 1];
                match c.next_due(step, prev, tz) {
                    Some(due) => sent.push(due),
                    None => break,
                }
            }
            let label = format!("{tz} {:?}", c.rhythm);
            assert_eq!(sent.len(), 6, "{label}");
            assert!(sent.windows(2).all(|w| w[0] < w[1]), "{label}: {sent:?}");
            assert!(
                sent.iter().all(|&t| c.window.contains(t, tz)),
                "{label}: {sent:?}"
            );
        }
    }

    // --- Odd input ---------------------------------------------------------------------------

    /// Tiny deterministic generator, so the odd-input test needs no extra crate.
    struct Lcg(u64);

    impl Lcg {
        fn below(&mut self, n: usize) -> usize {
            self.0 = self
                .0
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            ((self.0 >> 33) as usize) % n
        }
    }

    #[test]
    fn odd_inputs_never_panic() {
        // Plausible pieces, good and bad, so that a fair share of the combinations parse.
        let numbers = [
            "0",
            "1",
            "5",
            "7",
            "9",
            "24",
            "59",
            "60",
            "4294967296",
            "99999999999",
        ];
        let units = [
            "d", " d", "days", "w", "mo", "M", "m", "h", "s", "y", "", ".5d", "-",
        ];
        let days = [
            "Mon-Fri", "*", "sat-sun", "Fri-Mon", "sun", "mon,wed", "x", "", "Mon-", "-",
        ];
        let hours = [
            "9-17",
            "00:00-24:00",
            "0-1",
            "23:59-24:00",
            "02:30-03:00",
            "25-1",
            "9",
            ":-",
        ];
        let cron_fields: [&[&str]; 5] = [
            &["0", "30", "*/15", "*", "5-10"],
            &["9", "*", "0", "2", "1-3", "*/6"],
            &["*", "1", "13", "31", "*/10", "29"],
            &["*", "1", "2", "jan", "*/3", "12"],
            &["*", "1", "0", "7", "5-7", "MON-FRI", "sun", "1-5/2", "*/2"],
        ];
        let bad_fields = [
            "60",
            "L",
            "?",
            "1/0",
            "5-1",
            "4294967296",
            "-",
            "@daily",
            "x",
        ];
        let zones = [
            New_York,
            Tokyo,
            Sydney,
            Tz::UTC,
            chrono_tz::Pacific::Apia,
            chrono_tz::Asia::Kathmandu,
            chrono_tz::Australia::Lord_Howe,
        ];
        let instants = [
            DateTime::<Utc>::MIN_UTC,
            DateTime::<Utc>::MAX_UTC,
            DateTime::<Utc>::UNIX_EPOCH,
            utc("2011-12-29 10:00"), // Samoa skipped 2011-12-30
            utc("2026-03-08 07:00"),
            utc("2026-11-01 06:10"),
            utc("2100-12-31 23:59:59"),
        ];
        let mut rng = Lcg(42);
        let (mut spans_ok, mut windows_ok, mut crons_ok) = (0, 0, 0);
        for round in 0..600 {
            let tz = zones[round % zones.len()];
            let t = instants[round % instants.len()];
            let span = format!(
                "{}{}",
                numbers[rng.below(numbers.len())],
                units[rng.below(units.len())]
            );
            if let Ok(span) = Span::parse(&span) {
                spans_ok += 1;
                let _ = span.after(t, tz);
                assert_eq!(Span::parse(&span.to_string()), Ok(span));
            }
            let (d, h) = (days[rng.below(days.len())], hours[rng.below(hours.len())]);
            if let Ok(w) = SendWindow::parse(d, h) {
                windows_ok += 1;
                let open = w.next_open(t, tz);
                assert!(open >= t, "{d} {h} at {t} in {tz}");
                assert_eq!(
                    window(&w.describe()[..w.describe().find(' ').unwrap()], h),
                    w
                );
            }
            let mut fields: Vec<&str> = cron_fields
                .iter()
                .map(|choices| match rng.below(12) {
                    0 => bad_fields[rng.below(bad_fields.len())],
                    _ => choices[rng.below(choices.len())],
                })
                .collect();
            match rng.below(6) {
                0 => fields.insert(0, "0"), // 6 fields, crate numbering
                1 => fields.truncate(4),    // too few
                _ => {}
            }
            let expr = fields.join(" ");
            if let Ok(spec) = CronSpec::parse(&expr) {
                crons_ok += 1;
                if let Some(next) = spec.next_after(t, tz) {
                    assert!(next > t, "{expr} at {t} in {tz}");
                }
            }
        }
        // The generator must actually reach the code under test.
        assert!(
            spans_ok > 100 && windows_ok > 100 && crons_ok > 30,
            "{spans_ok} {windows_ok} {crons_ok}"
        );
        // Free-form junk only has to be refused politely.
        let junk = [
            "",
            " ",
            "\t",
            "-",
            "--",
            "é",
            "٣d",
            "0x10d",
            "1e3d",
            "∞",
            "*/",
            "@",
            "* * * * *,",
            "\u{0}",
        ];
        for a in junk {
            for b in junk {
                let _ = Span::parse(&format!("{a}{b}"));
                let _ = SendWindow::parse(a, b);
                let _ = CronSpec::parse(&format!("{a} {b} * * *"));
            }
        }
    }

    #[test]
    fn samoa_skipping_a_whole_friday_moves_a_friday_window_to_the_next_week() {
        let apia = chrono_tz::Pacific::Apia;
        let friday = window("Fri", "09:00-17:00");
        // Thursday 2011-12-29 was followed directly by Saturday 2011-12-31.
        let got = friday.next_open(local(apia, "2011-12-29 18:00"), apia);
        assert_eq!(
            got.with_timezone(&apia).date_naive(),
            NaiveDate::from_ymd_opt(2012, 1, 6).unwrap()
        );
        let next_day = Span::Days(1).after(local(apia, "2011-12-29 10:00"), apia);
        assert_eq!(
            next_day.with_timezone(&apia).date_naive(),
            NaiveDate::from_ymd_opt(2011, 12, 31).unwrap()
        );
    }

    #[test]
    fn a_cron_step_never_follows_the_previous_email_within_the_same_day() {
        let cadence = Cadence {
            first_after: Span::Days(0),
            rhythm: Rhythm::Cron(CronSpec::parse("0 10 * * *").unwrap()),
            max_touches: 5,
            window: SendWindow::always(),
        };
        let tz = chrono_tz::Europe::Paris;
        // First email pushed to Monday 09:00 local: the 10:00 firing that day is skipped.
        let monday_9 = tz
            .with_ymd_and_hms(2026, 6, 1, 9, 0, 0)
            .unwrap()
            .with_timezone(&Utc);
        let next = cadence.next_due(1, monday_9, tz).unwrap();
        assert_eq!(
            next,
            tz.with_ymd_and_hms(2026, 6, 2, 10, 0, 0)
                .unwrap()
                .with_timezone(&Utc)
        );
        // A daily cron still fires the next day.
        let monday_10 = tz
            .with_ymd_and_hms(2026, 6, 1, 10, 0, 0)
            .unwrap()
            .with_timezone(&Utc);
        let next = cadence.next_due(1, monday_10, tz).unwrap();
        assert_eq!(
            next,
            tz.with_ymd_and_hms(2026, 6, 2, 10, 0, 0)
                .unwrap()
                .with_timezone(&Utc)
        );
    }
}
