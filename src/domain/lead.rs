//! A lead as it enters (`NewLead`), as it is stored (`Lead`), and the states it moves through.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use serde::Serialize;

use super::email::EmailAddress;

/// A lead as read from a CSV row, a JSON line or an API call: already validated.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct NewLead {
    pub email: Option<EmailAddress>,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    pub company: Option<String>,
    pub title: Option<String>,
    pub owner_email: Option<EmailAddress>,
    pub owner_name: Option<String>,
    pub lost_reason: Option<String>,
    pub lost_at: Option<DateTime<Utc>>,
    pub timezone: Option<Tz>,
    pub tags: Vec<String>,
    /// Every column that is not a recognised one: usable in templates as `lead.fields.NAME`.
    pub fields: BTreeMap<String, String>,
}

/// Where a lead stands. Every change of state writes an event on the lead's timeline.
///
/// ```text
/// new ──enrol──▶ nurturing ──last step sent──▶ completed ──campaign's `then`──▶ nurturing
///                    │  ▲                          (next campaign, a new round)
///       reply/score  │  │ sales recycles it (leads recycle, "not now" feedback)
///   or sales "working" ▼  │
///                 rewarmed ──sales "won"──▶ won                    (everything stops)
/// any but won/suppressed ──"out of scope" (reason, re-check date)──▶ out_of_scope
/// out_of_scope ──re-check date passed (daemon) or leads recycle──▶ nurturing
/// new/nurturing/completed/rewarmed ──leads pause──▶ paused ──leads resume──▶ where it was
/// any ──unsubscribe / hard bounce / complaint──▶ suppressed
/// ```
/// The transitions a person asks for (won, out of scope, working, pause, resume) and which
/// state may go where are [`crate::domain::lifecycle::Transition`]; the store applies them
/// with `LeadStore::set_lifecycle`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, PartialOrd, Ord)]
#[serde(rename_all = "snake_case")]
pub enum LeadState {
    /// Imported, not (yet) matched by any segment.
    New,
    /// Enrolled in a campaign; emails are scheduled.
    Nurturing,
    /// Every step of its campaign was sent; nothing more is scheduled.
    Completed,
    /// Warmed up again: handed to sales, its cadence stopped.
    Rewarmed,
    /// Must never be emailed again.
    Suppressed,
    /// Sales closed it: nothing more is sent, nothing is waiting.
    Won,
    /// Sales says it is not a fit (with a reason, optionally a re-check date after which the
    /// daemon puts it back in nurture). Nothing is sent meanwhile.
    OutOfScope,
    /// Held by a person: waiting emails are `held` (not claimed, not dropped); resuming
    /// returns the lead to the state it was paused in and releases them.
    Paused,
}

impl LeadState {
    pub const ALL: [LeadState; 8] = [
        LeadState::New,
        LeadState::Nurturing,
        LeadState::Completed,
        LeadState::Rewarmed,
        LeadState::Suppressed,
        LeadState::Won,
        LeadState::OutOfScope,
        LeadState::Paused,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            LeadState::New => "new",
            LeadState::Nurturing => "nurturing",
            LeadState::Completed => "completed",
            LeadState::Rewarmed => "rewarmed",
            LeadState::Suppressed => "suppressed",
            LeadState::Won => "won",
            LeadState::OutOfScope => "out_of_scope",
            LeadState::Paused => "paused",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|state| state.as_str() == s)
    }
}

/// A lead read back from the store.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Lead {
    pub id: i64,
    pub email: EmailAddress,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    pub company: Option<String>,
    pub title: Option<String>,
    pub owner_email: Option<String>,
    pub owner_name: Option<String>,
    pub lost_reason: Option<String>,
    pub lost_at: Option<DateTime<Utc>>,
    #[serde(serialize_with = "serialize_tz")]
    pub timezone: Option<Tz>,
    pub tags: Vec<String>,
    pub fields: BTreeMap<String, String>,
    pub state: LeadState,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

fn serialize_tz<S: serde::Serializer>(tz: &Option<Tz>, s: S) -> Result<S::Ok, S::Error> {
    match tz {
        Some(tz) => s.serialize_some(tz.name()),
        None => s.serialize_none(),
    }
}

impl Lead {
    /// The lead's zone, or `default` when it has none.
    pub fn zone_or(&self, default: Tz) -> Tz {
        self.timezone.unwrap_or(default)
    }

    /// Where the lead is for its calendar: its zone (or `default`) and its country — the
    /// `country` field (ISO 3166-1 alpha-2, an importable column) if it holds a code, else
    /// the zone's country.
    pub fn place(&self, default: Tz) -> crate::domain::calendar::Place {
        crate::domain::calendar::Place::new(self.zone_or(default), self.country())
    }

    /// The `country` field when it is a two-letter code.
    pub fn country(&self) -> Option<crate::domain::calendar::Country> {
        self.fields
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case("country"))
            .and_then(|(_, v)| crate::domain::calendar::Country::parse(v))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn states_round_trip_through_their_names() {
        for state in LeadState::ALL {
            assert_eq!(LeadState::parse(state.as_str()), Some(state));
        }
        assert_eq!(LeadState::parse("warm"), None);
    }
}
