//! Spans: "90d", "2w", "1mo", "36h" — how long to wait. Days, weeks and months are counted on
//! the lead's local calendar (so "1d" keeps 10:00 as 10:00 across a DST change); seconds,
//! minutes and hours are absolute time.

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Days, Months as CalendarMonths, TimeDelta, Utc};
use chrono_tz::Tz;

use super::CadenceError;
use super::dst::*;

/// The longest span accepted from text: a century is far beyond any sensible cadence, and the
/// cap keeps every later date computation well inside chrono's range.
pub(super) const MAX_SPAN_DAYS: u64 = 36_600;
pub(super) const MAX_SPAN_MONTHS: u64 = 1_200;
pub(super) const MAX_SPAN_SECONDS: u64 = MAX_SPAN_DAYS * 86_400;
pub(super) const SPAN_HINT: &str = "expected a number followed by s, m, h, d, w or mo (e.g. 90d)";
pub(super) const SPAN_TOO_LONG: &str = "too long: at most 100 years (36600d or 1200mo)";

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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::cadence::testing::*;

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

    /// Reads a span table row, "ZONE YYYY-MM-DD HH:MM + SPAN = WANT": returns the start (a
    /// wall-clock reading in ZONE) plus SPAN, the zone, and WANT.
    fn span_row(row: &str) -> (DateTime<Utc>, Tz, &str) {
        let bad = || panic!("bad table row `{row}`");
        let (sum, want) = row.split_once(" = ").unwrap_or_else(bad);
        let (start, span) = sum.split_once(" + ").unwrap_or_else(bad);
        let (zone, start) = start.split_once(' ').unwrap_or_else(bad);
        let tz: Tz = zone.parse().unwrap_or_else(|e| panic!("{row}: {e}"));
        let span: Span = span.parse().unwrap_or_else(|e| panic!("{row}: {e}"));
        (span.after(local(tz, start), tz), tz, want)
    }

    #[test]
    fn fixed_span_adds_absolute_time_across_dst() {
        for row in [
            "America/New_York 2026-03-07 10:00 + 24h = Sun 2026-03-08 11:00 EDT",
            "America/New_York 2026-10-31 10:00 + 24h = Sun 2026-11-01 09:00 EST",
            "Europe/Paris 2026-03-29 01:30 + 30m = Sun 2026-03-29 03:00 CEST",
            "Australia/Sydney 2026-04-05 01:59 + 1h = Sun 2026-04-05 02:59 AEDT",
        ] {
            let (got, tz, want) = span_row(row);
            assert_eq!(show(got, tz), want, "{row}");
        }
    }

    #[test]
    fn calendar_span_landing_in_a_spring_forward_gap_moves_past_it() {
        for row in [
            "America/New_York 2026-03-07 02:30 + 1d = Sun 2026-03-08 03:00 EDT",
            "America/New_York 2026-03-01 02:59 + 7d = Sun 2026-03-08 03:00 EDT",
            "America/New_York 2026-02-08 02:00 + 1mo = Sun 2026-03-08 03:00 EDT",
            "Europe/Paris 2026-03-28 02:30 + 1d = Sun 2026-03-29 03:00 CEST",
            "Australia/Sydney 2026-10-03 02:30 + 1d = Sun 2026-10-04 03:00 AEDT",
            "America/Los_Angeles 2026-03-07 02:15 + 1d = Sun 2026-03-08 03:00 PDT",
        ] {
            let (got, tz, want) = span_row(row);
            assert_eq!(show(got, tz), want, "{row}");
        }
    }

    #[test]
    fn calendar_span_landing_in_a_fall_back_repeat_takes_the_earlier_instant() {
        // WANT is the UTC instant: the earlier of the two readings.
        for row in [
            "America/New_York 2026-10-31 01:30 + 1d = 2026-11-01 05:30",
            "America/New_York 2026-10-01 01:00 + 1mo = 2026-11-01 05:00",
            "Europe/Paris 2026-10-24 02:30 + 1d = 2026-10-25 00:30",
            "Australia/Sydney 2026-04-04 02:30 + 1d = 2026-04-04 15:30",
        ] {
            let (got, tz, want) = span_row(row);
            assert_eq!(got, utc(want), "{row}: {}", show(got, tz));
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
}
