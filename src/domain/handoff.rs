//! Stale hand-offs: when a re-warmed lead that nobody answered for is chased — pure rules,
//! no I/O. A re-warm hands a lead to its owner; when no feedback (`feedback`, `working`,
//! `won`, `out_of_scope`) follows it, the owner gets one reminder after
//! [`ChasePolicy::remind_after`], and after [`ChasePolicy::escalate_after`] the lead goes to
//! the fallback address (a sales manager) and is listed as stale in the digest; with
//! [`ChasePolicy::returns_to_nurture`] it then goes back to nurture by itself.
//!
//! ```text
//! rewarmed ──remind_after──▶ reminded ──escalate_after──▶ escalated ──(returns_to_nurture)──▶ recycled
//!     └──── any feedback event stops the chase ────┘
//! ```
//! Both times count from the lead's last re-warm. A stage is done at most once per re-warm;
//! a daemon that was down past `escalate_after` escalates without sending the late reminder.

use chrono::{DateTime, Duration, Utc};

/// Event kinds that answer a hand-off: after one of them the lead is not stale.
pub const FEEDBACK_KINDS: [&str; 4] = ["feedback", "working", "won", "out_of_scope"];

/// `[notify]`'s `remind_after`, `escalate_after` and `stale_returns_to_nurture`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChasePolicy {
    /// After this long without feedback the owner gets a reminder (default 7 days).
    pub remind_after: Duration,
    /// After this long without feedback the lead is escalated (default 14 days).
    pub escalate_after: Duration,
    /// An escalated lead goes back to nurture by itself (default false: it waits for a person).
    pub returns_to_nurture: bool,
}

impl Default for ChasePolicy {
    fn default() -> Self {
        Self {
            remind_after: Duration::days(7),
            escalate_after: Duration::days(14),
            returns_to_nurture: false,
        }
    }
}

/// A step of the chase, each written as an event of its name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum ChaseStage {
    /// One reminder to the owner.
    Remind,
    /// To the fallback address, listed as stale.
    Escalate,
}

impl ChaseStage {
    /// The event kind (`reminded`, `escalated`).
    pub fn event(self) -> &'static str {
        match self {
            ChaseStage::Remind => "reminded",
            ChaseStage::Escalate => "escalated",
        }
    }

    /// The `event` of its notifications' payloads.
    pub fn notification_event(self) -> &'static str {
        match self {
            ChaseStage::Remind => "lead.reminder",
            ChaseStage::Escalate => "lead.escalated",
        }
    }
}

/// Where a re-warmed lead stands in its chase.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ChaseDone {
    pub reminded: bool,
    pub escalated: bool,
}

impl ChasePolicy {
    /// Leads re-warmed at or before this moment may be due for a stage at `now`.
    pub fn cutoff(&self, now: DateTime<Utc>) -> DateTime<Utc> {
        now - self.remind_after
    }

    /// The stage due at `now` for a lead last re-warmed at `rewarmed_at` (None: nothing yet,
    /// or everything done). Escalation wins over a reminder never sent.
    pub fn due(
        &self,
        rewarmed_at: DateTime<Utc>,
        done: ChaseDone,
        now: DateTime<Utc>,
    ) -> Option<ChaseStage> {
        if done.escalated {
            None
        } else if now >= rewarmed_at + self.escalate_after {
            Some(ChaseStage::Escalate)
        } else if !done.reminded && now >= rewarmed_at + self.remind_after {
            Some(ChaseStage::Remind)
        } else {
            None
        }
    }

    /// Whether an escalated lead goes back to nurture now (it is still re-warmed).
    pub fn recycles(&self, done: ChaseDone) -> bool {
        self.returns_to_nurture && done.escalated
    }

    /// The problem with these times, if any (both longer than zero, the escalation later).
    pub fn problem(&self) -> Option<(&'static str, String)> {
        if self.remind_after <= Duration::zero() {
            Some(("notify.remind_after", "must be longer than zero".into()))
        } else if self.escalate_after <= self.remind_after {
            Some((
                "notify.escalate_after",
                "must be longer than notify.remind_after".into(),
            ))
        } else {
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s)
            .expect("a fixed time")
            .with_timezone(&Utc)
    }

    const REWARMED: &str = "2026-03-02T10:00:00Z";
    const NOTHING: ChaseDone = ChaseDone {
        reminded: false,
        escalated: false,
    };
    const REMINDED: ChaseDone = ChaseDone {
        reminded: true,
        escalated: false,
    };
    const ESCALATED: ChaseDone = ChaseDone {
        reminded: true,
        escalated: true,
    };

    #[test]
    fn each_stage_falls_due_at_its_time_and_once() {
        let p = ChasePolicy::default();
        let r = t(REWARMED);
        let cases = [
            ("2026-03-02T10:00:00Z", NOTHING, None),
            ("2026-03-09T09:59:59Z", NOTHING, None),
            ("2026-03-09T10:00:00Z", NOTHING, Some(ChaseStage::Remind)),
            ("2026-03-12T00:00:00Z", NOTHING, Some(ChaseStage::Remind)),
            ("2026-03-12T00:00:00Z", REMINDED, None),
            ("2026-03-16T09:59:59Z", REMINDED, None),
            ("2026-03-16T10:00:00Z", REMINDED, Some(ChaseStage::Escalate)),
            ("2026-04-30T00:00:00Z", REMINDED, Some(ChaseStage::Escalate)),
            ("2026-03-16T10:00:00Z", ESCALATED, None),
            ("2027-01-01T00:00:00Z", ESCALATED, None),
        ];
        for (now, done, want) in cases {
            assert_eq!(p.due(r, done, t(now)), want, "at {now} after {done:?}");
        }
    }

    #[test]
    fn a_daemon_down_past_the_escalation_escalates_without_the_late_reminder() {
        let p = ChasePolicy::default();
        assert_eq!(
            p.due(t(REWARMED), NOTHING, t("2026-03-20T00:00:00Z")),
            Some(ChaseStage::Escalate)
        );
    }

    #[test]
    fn configured_times_apply_and_the_cutoff_is_the_reminder_time() {
        let p = ChasePolicy {
            remind_after: Duration::hours(36),
            escalate_after: Duration::days(3),
            returns_to_nurture: true,
        };
        let r = t(REWARMED);
        assert_eq!(p.due(r, NOTHING, t("2026-03-03T21:59:59Z")), None);
        assert_eq!(
            p.due(r, NOTHING, t("2026-03-03T22:00:00Z")),
            Some(ChaseStage::Remind)
        );
        assert_eq!(
            p.due(r, REMINDED, t("2026-03-05T10:00:00Z")),
            Some(ChaseStage::Escalate)
        );
        assert_eq!(p.cutoff(t("2026-03-03T22:00:00Z")), r);
        assert!(p.recycles(ESCALATED));
        assert!(!p.recycles(REMINDED));
        assert!(!ChasePolicy::default().recycles(ESCALATED));
    }

    #[test]
    fn times_in_the_wrong_order_are_a_problem() {
        assert_eq!(ChasePolicy::default().problem(), None);
        let same = ChasePolicy {
            remind_after: Duration::days(7),
            escalate_after: Duration::days(7),
            returns_to_nurture: false,
        };
        assert_eq!(same.problem().map(|p| p.0), Some("notify.escalate_after"));
        let zero = ChasePolicy {
            remind_after: Duration::zero(),
            ..ChasePolicy::default()
        };
        assert_eq!(zero.problem().map(|p| p.0), Some("notify.remind_after"));
        assert_eq!(ChaseStage::Remind.event(), "reminded");
        assert_eq!(ChaseStage::Escalate.event(), "escalated");
    }
}
