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
//!
//! - [`span`]: "90d", "1mo", "36h" and adding them on the lead's calendar.
//! - [`window`]: send windows ("Mon-Fri", "09:00-17:00") and when the next one opens.
//! - [`late`]: what a campaign does with a step reached long after it was due.
//! - [`cron`]: cron rhythms on the lead's wall clock; [`crontab`] translates Unix crontab
//!   lines for the `cron` crate.
//! - `dst`: local readings ↔ instants across the gap and the repeat.
//! - [`days`]: closed days (holidays, blackouts, calendar files, weekends) and the next open
//!   slot, [`Cadence::next_slot`].
//! - this module: [`Cadence`], a campaign's timing — when the first and each next step is due.

pub mod cron;
pub mod crontab;
pub mod days;
mod dst;
pub mod late;
#[cfg(test)]
mod props;
pub mod span;
#[cfg(test)]
mod testing;
pub mod window;

use crate::domain::calendar::{DayRules, Place};
use chrono::{DateTime, TimeDelta, Utc};
pub use cron::CronSpec;
pub use span::Span;
pub use window::SendWindow;

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
    /// Days the campaign does not write on (holidays, blackouts, …); the default: none.
    pub days: DayRules,
}

impl Cadence {
    /// Due time of the first step (step 0): `anchor` (the loss date; the caller passes the
    /// import time when a lead has none) plus `first_after` in the lead's zone. If that is
    /// already past (a lead lost long ago) the step is due `now`: the campaign starts at the
    /// next allowed slot, it never replays missed steps. Then pushed into the send window,
    /// past closed days ([`Cadence::next_slot`]).
    pub fn first_due(
        &self,
        anchor: DateTime<Utc>,
        now: DateTime<Utc>,
        place: impl Into<Place>,
    ) -> DateTime<Utc> {
        let place = place.into();
        let due = self.first_after.after(anchor, place.tz).max(now);
        self.next_slot(due, place)
    }

    /// Due time of step `step`, the email about to be scheduled, counting the first email as
    /// step 0 (so step 1 is the second email), given that the previous one went out at
    /// `prev_sent`: `prev_sent` plus the
    /// rhythm's span in the lead's zone, or the next cron firing after `prev_sent`; then
    /// pushed into the send window, past closed days.
    ///
    /// `None` when `step >= max_touches` (the campaign is finished), when the cron schedule
    /// has no later firing, or when the date would leave chrono's range.
    pub fn next_due(
        &self,
        step: u32,
        prev_sent: DateTime<Utc>,
        place: impl Into<Place>,
    ) -> Option<DateTime<Utc>> {
        if step >= self.max_touches {
            return None;
        }
        let place = place.into();
        let tz = place.tz;
        match &self.rhythm {
            Rhythm::Every(span) => Some(self.next_slot(span.checked_after(prev_sent, tz)?, place)),
            // Never two emails of one campaign within a day: a first email pushed into a
            // window (Monday 09:00) must not be followed by the cron's firing an hour later.
            // 23 hours, not 24, so a daily cron still fires on the next day.
            Rhythm::Cron(spec) => {
                let earliest = prev_sent + TimeDelta::hours(CRON_MIN_GAP_HOURS);
                let mut firing = spec.next_after(prev_sent, tz)?;
                // Bounded: a daily cron needs at most one step; a minutely one about 1,400.
                for _ in 0..2_000 {
                    let due = self.next_slot(firing, place);
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
    use crate::domain::cadence::testing::*;

    // --- Cadence -----------------------------------------------------------------------------

    fn cadence(first_after: &str, rhythm: Rhythm, max_touches: u32, window: SendWindow) -> Cadence {
        Cadence {
            first_after: Span::parse(first_after).unwrap(),
            rhythm,
            max_touches,
            window,
            days: DayRules::default(),
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
            days: DayRules::default(),
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
