//! Cron rhythms: a campaign step "at 10:00 on the first Monday of the month", evaluated on the
//! lead's wall clock by the `cron` crate. Fires once per local wall-clock time: never twice in a
//! fall-back repeat, and at the end of the gap instead of never on spring-forward day.

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Datelike, Days, NaiveDateTime, TimeDelta, Utc};
use chrono_tz::Tz;

use super::CadenceError;
use super::crontab::*;
use super::dst::*;

pub(super) const CRON_HINT: &str =
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
pub(super) fn repeat_end(t: DateTime<Utc>, tz: Tz) -> Option<NaiveDateTime> {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::cadence::testing::*;

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
}
