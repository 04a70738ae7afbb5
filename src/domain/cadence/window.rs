//! Send windows: the days and hours (on the lead's clock) when an email may go out, e.g.
//! "Mon-Fri" and "09:00-17:00", and the next moment one opens.

use std::fmt;

use chrono::{DateTime, Datelike, Days, NaiveDateTime, NaiveTime, Timelike, Utc, Weekday};
use chrono_tz::Tz;

use super::CadenceError;
use super::dst::*;

pub(super) const DAY_NAMES: [&str; 7] = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"];
pub(super) const DAYS_HINT: &str =
    "expected day names such as Mon-Fri, Sat-Sun or mon,wed,fri, or * for every day";
pub(super) const HOURS_HINT: &str = "expected HH:MM-HH:MM (e.g. 09:00-17:00)";
/// How far ahead `next_open` looks for an opening: a week, plus room for an opening lost to a
/// DST gap or to a zone skipping a whole day.
pub(super) const WINDOW_SCAN_DAYS: usize = 21;

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

pub(super) fn parse_days(input: &str) -> Result<[bool; 7], CadenceError> {
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
pub(super) fn window_day_index(name: &str) -> Option<usize> {
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

pub(super) fn parse_hours(input: &str) -> Result<(NaiveTime, Option<NaiveTime>), CadenceError> {
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
pub(super) fn clock_minutes(s: &str) -> Option<u32> {
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

pub(super) fn describe_days(days: &[bool; 7]) -> String {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::cadence::testing::*;

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
}
