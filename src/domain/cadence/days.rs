//! Closed days in the cadence: a due time that lands on a holiday, a blackout, a calendar
//! day or (for `business_days_only`) a weekend moves to the next open slot of the send
//! window on an open day, in the lead's zone. [`Cadence::next_slot`] is the one function the
//! scheduler, dispatch and the forecast use to place a step; [`Cadence::next_slot_why`] also
//! says what moved it, for `explain`.

use chrono::{DateTime, Days, NaiveTime, Utc};

use super::Cadence;
use super::dst::{earliest_instant, local_naive};
use crate::domain::calendar::{Closed, Place};

/// How many closed days in a row the search crosses before giving up (a year of blackouts
/// and holidays; config validation keeps blackouts shorter than that).
const MAX_CLOSED_DAYS: usize = 400;

/// One thing that moved a due time later.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Move {
    /// Outside the send window: moved to its next opening.
    Window {
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    },
    /// A closed day: moved past it.
    ClosedDay { day: chrono::NaiveDate, why: Closed },
}

impl Cadence {
    /// The earliest instant at or after `t` inside the send window on a day the campaign's
    /// [`DayRules`](crate::domain::calendar::DayRules) leave open for the lead at `place`.
    pub fn next_slot(&self, t: DateTime<Utc>, place: impl Into<Place>) -> DateTime<Utc> {
        let place = place.into();
        if self.days.is_open() {
            return self.window.next_open(t, place.tz);
        }
        self.walk(t, place, &mut |_| {})
    }

    /// [`Cadence::next_slot`] and every move it made, in order.
    pub fn next_slot_why(
        &self,
        t: DateTime<Utc>,
        place: impl Into<Place>,
    ) -> (DateTime<Utc>, Vec<Move>) {
        let mut moves = Vec::new();
        let at = self.walk(t, place.into(), &mut |m| moves.push(m));
        (at, moves)
    }

    fn walk(&self, t: DateTime<Utc>, place: Place, moved: &mut dyn FnMut(Move)) -> DateTime<Utc> {
        let tz = place.tz;
        let mut from = t;
        for _ in 0..MAX_CLOSED_DAYS {
            let slot = self.window.next_open(from, tz);
            if slot != from {
                moved(Move::Window { from, to: slot });
            }
            let Some(local) = local_naive(slot, tz) else {
                return slot;
            };
            let day = local.date();
            let Some(why) = self.days.closed(day, place.country) else {
                return slot;
            };
            moved(Move::ClosedDay { day, why });
            // On to the start of the next local day (the first instant of it, DST or not).
            let next_midnight = day
                .checked_add_days(Days::new(1))
                .and_then(|d| earliest_instant(d.and_time(NaiveTime::MIN), tz));
            match next_midnight {
                Some(next) if next > slot => from = next,
                _ => return slot,
            }
        }
        from
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::super::testing::*;
    use super::super::{Rhythm, SendWindow};
    use super::*;
    use crate::domain::calendar::{Blackout, Country, DayRules};

    fn campaign(window: SendWindow, days: DayRules) -> Cadence {
        Cadence {
            first_after: Span::parse("0d").unwrap(),
            rhythm: Rhythm::Every(Span::parse("30d").unwrap()),
            max_touches: 6,
            window,
            days,
        }
    }

    use super::super::Span;

    fn holidays() -> DayRules {
        DayRules {
            skip_holidays: true,
            ..Default::default()
        }
    }

    fn at(c: &Cadence, tz: Tz, when: &str) -> String {
        show(c.next_slot(local(tz, when), tz), tz)
    }

    #[test]
    fn holidays_move_a_due_time_to_the_next_open_slot() {
        let c = campaign(SendWindow::office_hours(), holidays());
        let berlin = chrono_tz::Europe::Berlin;
        let london = chrono_tz::Europe::London;
        let cases = [
            // Christmas Friday in New York: Saturday/Sunday are outside the window → Monday.
            (New_York, "2026-12-25 10:00", "Mon 2026-12-28 09:00 EST"),
            // Thanksgiving (Thu 26 Nov 2026) → Friday morning.
            (New_York, "2026-11-26 11:30", "Fri 2026-11-27 09:00 EST"),
            (Los_Angeles, "2026-11-25 18:00", "Fri 2026-11-27 09:00 PST"),
            // Golden Week: Wed 29 Apr is Shōwa Day; Sun 3 – Wed 6 May → Thursday 7 May.
            (Tokyo, "2026-04-29 09:00", "Thu 2026-04-30 09:00 JST"),
            (Tokyo, "2026-05-01 17:30", "Thu 2026-05-07 09:00 JST"),
            // Easter Monday 2026-04-06 (Good Friday 3rd too) in Germany and England.
            (berlin, "2026-04-03 10:00", "Tue 2026-04-07 09:00 CEST"),
            (london, "2026-04-06 08:00", "Tue 2026-04-07 09:00 BST"),
            // Boxing Day observed on Monday 28 Dec 2026 in England.
            (london, "2026-12-24 17:00", "Tue 2026-12-29 09:00 GMT"),
            // An open day stays put.
            (New_York, "2026-12-23 10:00", "Wed 2026-12-23 10:00 EST"),
        ];
        for (tz, when, want) in cases {
            assert_eq!(at(&c, tz, when), want, "{tz} {when}");
        }
    }

    #[test]
    fn the_leads_country_decides_not_the_utc_date() {
        let c = campaign(SendWindow::always(), holidays());
        // 2026-12-25 04:00 UTC: still the 24th in New York, already Christmas in Tokyo.
        let t = utc("2026-12-25 04:00");
        assert_eq!(c.next_slot(t, New_York), t);
        let tokyo_us = Place::new(Tokyo, Country::parse("US"));
        assert_eq!(
            show(c.next_slot(t, tokyo_us), Tokyo),
            "Sat 2026-12-26 00:00 JST"
        );
        // 23:30 on Christmas Eve in Los Angeles: the next half hour is open, then closed.
        let eve = local(Los_Angeles, "2026-12-24 23:30");
        assert_eq!(c.next_slot(eve, Los_Angeles), eve);
        let christmas = local(Los_Angeles, "2026-12-25 00:00");
        assert_eq!(
            show(c.next_slot(christmas, Los_Angeles), Los_Angeles),
            "Sat 2026-12-26 00:00 PST"
        );
    }

    #[test]
    fn blackouts_and_business_days_and_the_reasons_given() {
        let days = DayRules {
            skip_holidays: true,
            business_days_only: true,
            blackouts: Arc::new(vec![
                Blackout::parse("year end", "2026-12-24", "2027-01-02").unwrap(),
            ]),
            ..Default::default()
        };
        let c = campaign(window("*", "10:00-16:00"), days);
        let (slot, moves) = c.next_slot_why(local(Paris, "2026-12-23 17:00"), Paris);
        // Blackout until Sat 2 Jan; Sun 3 Jan is a weekend day → Monday 4 Jan 10:00.
        assert_eq!(show(slot, Paris), "Mon 2027-01-04 10:00 CET");
        let said: Vec<String> = moves
            .iter()
            .map(|m| match m {
                Move::Window { .. } => "window".to_string(),
                Move::ClosedDay { day, why } => format!("{day} {why}"),
            })
            .collect();
        assert_eq!(said.first().map(String::as_str), Some("window"));
        assert!(said.contains(&"2026-12-25 blackout `year end`".to_string()));
        assert!(said.contains(&"2027-01-03 weekend (business days only)".to_string()));
        assert_eq!(
            said.iter().filter(|s| s.contains("blackout")).count(),
            10,
            "{said:?}"
        );
    }

    #[test]
    fn a_day_closed_across_a_dst_change_still_moves_forward() {
        // Sunday 2026-03-08 (spring forward in New York) closed by business_days_only.
        let days = DayRules {
            business_days_only: true,
            ..Default::default()
        };
        let c = campaign(SendWindow::always(), days);
        assert_eq!(
            at(&c, New_York, "2026-03-07 12:00"),
            "Mon 2026-03-09 00:00 EDT"
        );
    }

    #[test]
    fn open_rules_keep_the_plain_window_answer() {
        let c = campaign(SendWindow::office_hours(), DayRules::default());
        let t = local(New_York, "2026-12-25 10:00");
        assert_eq!(c.next_slot(t, New_York), t);
        assert_eq!(c.next_slot_why(t, New_York), (t, vec![]));
    }
}
