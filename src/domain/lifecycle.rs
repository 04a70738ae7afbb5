//! The lifecycle transitions a person asks for — sales' feedback (one-click links, the
//! digest, call tasks) and the CLI (`leads won`, `leads out-of-scope`, `leads working`,
//! `leads pause`, `leads resume`) — and which state may go where. Pure rules, no I/O.
//!
//! **Internal API for other modules:** build a [`Transition`] and hand it to
//! `LeadStore::set_lifecycle(lead_id, &transition, by, notifications, now)`: it reads the
//! lead's state, asks [`Transition::verdict`] here, and in one transaction changes the
//! state, stops what must stop, writes the event (kind [`Transition::event_kind`], detail
//! `{from, to, by, …}`) and enqueues the given notifications. Nothing else changes these
//! states (besides recycling, `LeadStore::recycle`).
//!
//! | transition | allowed from | to | stops the cadence |
//! |---|---|---|---|
//! | `Won` | every state but `won` | `won` | yes: waiting deliveries cancelled, enrolments stopped |
//! | `OutOfScope` | new, nurturing, completed, rewarmed, paused, out_of_scope | `out_of_scope` | yes |
//! | `Working` | new, nurturing, completed, rewarmed, paused, out_of_scope | `rewarmed` | yes (if it was not re-warmed already) |
//! | `Pause` | new, nurturing, completed, rewarmed | `paused` | no: held, not cancelled |
//! | `Resume` | paused | the state it was paused in | no: held deliveries go out again |
//!
//! `won` → `won` and `paused` → `paused` are [`Verdict::Already`] (a second click changes
//! nothing and writes nothing). A `suppressed` lead can only be marked won: it must never
//! be emailed, and the suppression list keeps it so whatever its state.

use chrono::{DateTime, Utc};

use super::lead::LeadState;

/// A change of a lead's lifecycle that a person asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Transition {
    /// Sales closed it: everything stops.
    Won,
    /// Not a fit, for `reason`; with `recheck_at` the daemon returns it to nurture then.
    OutOfScope {
        reason: String,
        recheck_at: Option<DateTime<Utc>>,
    },
    /// Sales is on it ("I'm on it"): the lead is (or stays) `rewarmed`.
    Working,
    /// Hold everything; scheduled emails wait.
    Pause,
    /// Continue where the pause held it.
    Resume,
}

/// What a transition does to a lead in a given state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// The lead goes to this state.
    Move(LeadState),
    /// The lead is there already: nothing changes, nothing is written.
    Already,
    /// Not allowed from this state; the text says why (for the CLI and the feedback page).
    Refused(&'static str),
}

impl Transition {
    /// The event kind written on the lead's timeline (the shared vocabulary).
    pub fn event_kind(&self) -> &'static str {
        match self {
            Transition::Won => "won",
            Transition::OutOfScope { .. } => "out_of_scope",
            Transition::Working => "working",
            Transition::Pause => "paused",
            Transition::Resume => "resumed",
        }
    }

    /// Where a lead in `from` goes; `paused_from` is the state a paused lead was paused in
    /// (`Resume` returns it there; unknown → `new`, which segments pick up again).
    pub fn verdict(&self, from: LeadState, paused_from: Option<LeadState>) -> Verdict {
        use LeadState::*;
        match (self, from) {
            (Transition::Won, Won) => Verdict::Already,
            (Transition::Won, _) => Verdict::Move(Won),
            (_, Won) => Verdict::Refused("the lead is won"),
            (_, Suppressed) => Verdict::Refused(
                "the lead is suppressed (it must never be emailed; only `won` applies)",
            ),
            (Transition::OutOfScope { .. }, _) => Verdict::Move(OutOfScope),
            (Transition::Working, _) => Verdict::Move(Rewarmed),
            (Transition::Pause, Paused) => Verdict::Already,
            (Transition::Pause, OutOfScope) => {
                Verdict::Refused("the lead is out of scope: nothing is scheduled to pause")
            }
            (Transition::Pause, _) => Verdict::Move(Paused),
            (Transition::Resume, Paused) => Verdict::Move(
                paused_from
                    .filter(|s| Self::Pause.can_leave(*s))
                    .unwrap_or(New),
            ),
            (Transition::Resume, _) => Verdict::Refused("the lead is not paused"),
        }
    }

    /// True if `Pause` (or any transition) could have left `state` (a state worth returning to).
    fn can_leave(&self, state: LeadState) -> bool {
        matches!(self.verdict(state, None), Verdict::Move(_))
    }

    /// True if moving from `from` to `to` cancels the lead's waiting deliveries and stops its
    /// active enrolments (they are resumed by a later recycle, history intact).
    pub fn stops_cadence(&self, from: LeadState, to: LeadState) -> bool {
        match self {
            Transition::Won | Transition::OutOfScope { .. } => true,
            Transition::Working => from != LeadState::Rewarmed && to == LeadState::Rewarmed,
            Transition::Pause | Transition::Resume => false,
        }
    }
}

/// States `leads recycle` brings back to nurture (see `LeadStore::recycle`). A suppressed
/// lead only when no suppression entry covers its address any more (checked by the store).
pub fn recyclable(state: LeadState) -> bool {
    !matches!(state, LeadState::New | LeadState::Nurturing)
}

#[cfg(test)]
mod tests {
    use super::*;
    use LeadState::*;

    fn oos() -> Transition {
        Transition::OutOfScope {
            reason: "no budget".into(),
            recheck_at: None,
        }
    }

    #[test]
    fn won_is_reachable_from_every_state_and_only_once() {
        for from in LeadState::ALL {
            let expected = if from == Won {
                Verdict::Already
            } else {
                Verdict::Move(Won)
            };
            assert_eq!(Transition::Won.verdict(from, None), expected, "{from:?}");
        }
    }

    #[test]
    fn nothing_but_won_leaves_won_or_suppressed() {
        for t in [
            oos(),
            Transition::Working,
            Transition::Pause,
            Transition::Resume,
        ] {
            assert!(matches!(t.verdict(Won, None), Verdict::Refused(_)), "{t:?}");
            assert!(
                matches!(t.verdict(Suppressed, None), Verdict::Refused(_)),
                "{t:?}"
            );
        }
    }

    #[test]
    fn out_of_scope_applies_to_every_live_state_and_again_to_itself() {
        for from in [New, Nurturing, Completed, Rewarmed, Paused, OutOfScope] {
            assert_eq!(oos().verdict(from, None), Verdict::Move(OutOfScope));
            assert!(oos().stops_cadence(from, OutOfScope));
        }
    }

    #[test]
    fn working_hands_the_lead_to_sales_and_stops_its_cadence_once() {
        for from in [New, Nurturing, Completed, Paused, OutOfScope] {
            assert_eq!(
                Transition::Working.verdict(from, None),
                Verdict::Move(Rewarmed)
            );
            assert!(Transition::Working.stops_cadence(from, Rewarmed));
        }
        assert_eq!(
            Transition::Working.verdict(Rewarmed, None),
            Verdict::Move(Rewarmed)
        );
        assert!(!Transition::Working.stops_cadence(Rewarmed, Rewarmed));
    }

    #[test]
    fn pause_holds_live_leads_and_resume_returns_them_where_they_were() {
        for from in [New, Nurturing, Completed, Rewarmed] {
            assert_eq!(Transition::Pause.verdict(from, None), Verdict::Move(Paused));
            assert!(!Transition::Pause.stops_cadence(from, Paused));
            assert_eq!(
                Transition::Resume.verdict(Paused, Some(from)),
                Verdict::Move(from)
            );
        }
        assert_eq!(Transition::Pause.verdict(Paused, None), Verdict::Already);
        assert!(matches!(
            Transition::Pause.verdict(OutOfScope, None),
            Verdict::Refused(_)
        ));
        // A pause with no remembered state (or a nonsensical one) resumes as `new`.
        assert_eq!(Transition::Resume.verdict(Paused, None), Verdict::Move(New));
        assert_eq!(
            Transition::Resume.verdict(Paused, Some(Won)),
            Verdict::Move(New)
        );
        for from in [New, Nurturing, Completed, Rewarmed, OutOfScope] {
            assert!(matches!(
                Transition::Resume.verdict(from, None),
                Verdict::Refused(_)
            ));
        }
    }

    #[test]
    fn event_kinds_are_the_shared_vocabulary() {
        let kinds: Vec<_> = [
            Transition::Won,
            oos(),
            Transition::Working,
            Transition::Pause,
            Transition::Resume,
        ]
        .iter()
        .map(Transition::event_kind)
        .collect();
        assert_eq!(
            kinds,
            ["won", "out_of_scope", "working", "paused", "resumed"]
        );
    }

    #[test]
    fn recyclable_states_are_all_but_those_already_in_nurture() {
        let yes: Vec<_> = LeadState::ALL
            .into_iter()
            .filter(|s| recyclable(*s))
            .collect();
        assert_eq!(
            yes,
            [Completed, Rewarmed, Suppressed, Won, OutOfScope, Paused]
        );
    }
}
