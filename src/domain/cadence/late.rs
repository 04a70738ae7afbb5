//! Lateness: what a campaign does with a step that is reached long after it was due (the
//! daemon was down for a week, a pause ended). Per campaign, `late_after` says when a step
//! counts as late and `late` what then happens:
//!
//! - `shift` (the default): the step goes out at once and the rest of the cadence moves with
//!   it — the next step counts from when this one actually went out;
//! - `send`: the step goes out at once, and the rest keeps its planned dates — the next step
//!   counts from when this one was due (never less than a day after it actually went out, so
//!   catching up is one email a day at most);
//! - `skip`: the step is not sent (its delivery becomes `skipped`, event `skipped`); the next
//!   step counts from when the skipped one was due, so a step that is late too is skipped
//!   as well.
//!
//! Without `late_after` no step is ever late, which is `shift`: what rewarm always did.

use chrono::{DateTime, TimeDelta, Utc};

use super::{CRON_MIN_GAP_HOURS, Cadence};
use crate::domain::calendar::Place;

/// What happens to a late step (see the module docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LatePolicy {
    Send,
    Skip,
    #[default]
    Shift,
}

impl LatePolicy {
    pub const ALL: [LatePolicy; 3] = [LatePolicy::Send, LatePolicy::Skip, LatePolicy::Shift];

    pub fn as_str(self) -> &'static str {
        match self {
            LatePolicy::Send => "send",
            LatePolicy::Skip => "skip",
            LatePolicy::Shift => "shift",
        }
    }

    pub fn parse(s: &str) -> Option<LatePolicy> {
        Self::ALL
            .into_iter()
            .find(|p| p.as_str().eq_ignore_ascii_case(s.trim()))
    }
}

/// A campaign's lateness policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Lateness {
    /// A step reached more than this after its due time is late (None: never late).
    pub after: Option<TimeDelta>,
    pub policy: LatePolicy,
}

impl Lateness {
    /// How late a step due at `due` is at `now`, if it counts as late.
    pub fn late_by(&self, due: DateTime<Utc>, now: DateTime<Utc>) -> Option<TimeDelta> {
        let after = self.after?;
        let by = now - due;
        (by > after).then_some(by)
    }

    /// Whether a step due at `due` and reached at `now` is skipped.
    pub fn skips(&self, due: DateTime<Utc>, now: DateTime<Utc>) -> bool {
        self.policy == LatePolicy::Skip && self.late_by(due, now).is_some()
    }

    /// Due time of step `step` after the previous step, due at `due`, went out at `sent`.
    /// Only a late step under `send` counts from `due` (not earlier than a day after `sent`);
    /// every other counts from `sent`.
    pub fn next_due(
        &self,
        cadence: &Cadence,
        step: u32,
        due: DateTime<Utc>,
        sent: DateTime<Utc>,
        place: impl Into<Place>,
    ) -> Option<DateTime<Utc>> {
        let place = place.into();
        match (self.policy, self.late_by(due, sent)) {
            (LatePolicy::Send, Some(_)) => {
                let planned = cadence.next_due(step, due, place)?;
                let earliest =
                    cadence.next_slot(sent + TimeDelta::hours(CRON_MIN_GAP_HOURS), place);
                Some(planned.max(earliest))
            }
            _ => cadence.next_due(step, sent, place),
        }
    }

    /// Due time of the step after a skipped one that was due at `due`: the planned date.
    pub fn after_skip(
        &self,
        cadence: &Cadence,
        step: u32,
        due: DateTime<Utc>,
        place: impl Into<Place>,
    ) -> Option<DateTime<Utc>> {
        cadence.next_due(step, due, place)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::cadence::{Rhythm, SendWindow, Span};

    fn t(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    fn cadence() -> Cadence {
        Cadence {
            first_after: Span::Days(0),
            rhythm: Rhythm::Every(Span::Days(7)),
            max_touches: 4,
            window: SendWindow::always(),
            days: Default::default(),
        }
    }

    fn policy(after: Option<i64>, policy: LatePolicy) -> Lateness {
        Lateness {
            after: after.map(TimeDelta::days),
            policy,
        }
    }

    #[test]
    fn policies_parse_by_name_and_shift_is_the_default() {
        assert_eq!(LatePolicy::default(), LatePolicy::Shift);
        for p in LatePolicy::ALL {
            assert_eq!(LatePolicy::parse(p.as_str()), Some(p));
        }
        assert_eq!(LatePolicy::parse(" SKIP "), Some(LatePolicy::Skip));
        assert_eq!(LatePolicy::parse("drop"), None);
        assert_eq!(LatePolicy::parse(""), None);
    }

    #[test]
    fn a_step_is_late_only_past_late_after() {
        let due = t("2026-12-01T10:00:00Z");
        let cases = [
            (None, "2027-06-01T10:00:00Z", None),
            (Some(2), "2026-12-02T10:00:00Z", None),
            (Some(2), "2026-12-03T10:00:00Z", None), // exactly late_after: not late
            (Some(2), "2026-12-03T10:00:01Z", Some(2 * 86_400 + 1)),
            (Some(0), "2026-12-01T10:00:01Z", Some(1)),
            (Some(2), "2026-11-30T10:00:00Z", None), // early
        ];
        for (after, now, want) in cases {
            let l = policy(after, LatePolicy::Skip);
            assert_eq!(
                l.late_by(due, t(now)).map(|d| d.num_seconds()),
                want,
                "{after:?} {now}"
            );
            assert_eq!(l.skips(due, t(now)), want.is_some());
            assert!(!policy(after, LatePolicy::Send).skips(due, t(now)));
            assert!(!policy(after, LatePolicy::Shift).skips(due, t(now)));
        }
    }

    #[test]
    fn the_next_step_counts_from_the_send_or_the_plan_per_policy() {
        let c = cadence();
        let tz = chrono_tz::UTC;
        let due = t("2026-12-01T10:00:00Z");
        let sent_late = t("2026-12-05T10:00:00Z"); // 4 days late
        let sent_on_time = t("2026-12-01T11:00:00Z");
        let cases = [
            // (policy, sent, next due)
            (LatePolicy::Shift, sent_late, "2026-12-12T10:00:00Z"),
            (LatePolicy::Send, sent_late, "2026-12-08T10:00:00Z"),
            (LatePolicy::Skip, sent_late, "2026-12-12T10:00:00Z"),
            (LatePolicy::Shift, sent_on_time, "2026-12-08T11:00:00Z"),
            (LatePolicy::Send, sent_on_time, "2026-12-08T11:00:00Z"),
        ];
        for (p, sent, want) in cases {
            let l = policy(Some(2), p);
            assert_eq!(
                l.next_due(&c, 1, due, sent, tz),
                Some(t(want)),
                "{p:?} {sent}"
            );
        }
        // Catching up under `send`: never within a day of the late email.
        let very_late = t("2026-12-07T20:00:00Z");
        assert_eq!(
            policy(Some(2), LatePolicy::Send).next_due(&c, 1, due, very_late, tz),
            Some(t("2026-12-08T19:00:00Z"))
        );
        // After a skip, the plan: one rhythm after the skipped step's due time.
        assert_eq!(
            policy(Some(2), LatePolicy::Skip).after_skip(&c, 1, due, tz),
            Some(t("2026-12-08T10:00:00Z"))
        );
        // The campaign's end is the end under every policy.
        for p in LatePolicy::ALL {
            assert_eq!(policy(Some(2), p).next_due(&c, 4, due, sent_late, tz), None);
        }
    }
}
