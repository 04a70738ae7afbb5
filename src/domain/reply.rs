//! What an inbound message is ([`Classification`]) and the pure rules that follow from it:
//! the name it is stored and printed under, the scoring key it earns points under, and how
//! long an auto-reply's stated return date postpones a cadence.
//!
//! The classifier (`inbound::classify`) decides a message's classification; the effect
//! (`inbound::effect`), the configuration (`[scoring.points]`) and the command line only read
//! it. Keeping the type here, with no I/O and no parser behind it, is what lets all of them
//! depend on it without depending on each other.

use std::fmt;

use chrono::{DateTime, Days, NaiveDate, Utc};

/// What an inbound message is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Classification {
    HumanReply,
    AutoReply,
    HardBounce,
    SoftBounce,
    Complaint,
    Unsubscribe,
    Other,
}

impl Classification {
    pub const ALL: [Classification; 7] = [
        Classification::HumanReply,
        Classification::AutoReply,
        Classification::HardBounce,
        Classification::SoftBounce,
        Classification::Complaint,
        Classification::Unsubscribe,
        Classification::Other,
    ];

    /// The stored and printed name (`human_reply`, `auto_reply`, …).
    pub fn as_str(self) -> &'static str {
        match self {
            Classification::HumanReply => "human_reply",
            Classification::AutoReply => "auto_reply",
            Classification::HardBounce => "hard_bounce",
            Classification::SoftBounce => "soft_bounce",
            Classification::Complaint => "complaint",
            Classification::Unsubscribe => "unsubscribe",
            Classification::Other => "other",
        }
    }

    /// The classification named `name` (as [`Classification::as_str`] writes it).
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|c| c.as_str() == name.trim())
    }

    /// The key `[scoring.points]` gives points under: `reply` for a human reply (the word
    /// marketers use), else the classification's name.
    pub fn score_kind(self) -> &'static str {
        match self {
            Classification::HumanReply => "reply",
            other => other.as_str(),
        }
    }
}

impl fmt::Display for Classification {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Until when an auto-reply that states `return_date` postpones its lead's cadence: the start
/// (00:00 UTC) of the day after, so the next email arrives once its reader is back.
pub fn postpone_until(return_date: NaiveDate) -> Option<DateTime<Utc>> {
    return_date
        .checked_add_days(Days::new(1))
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .map(|t| t.and_utc())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for c in Classification::ALL {
            assert_eq!(Classification::parse(c.as_str()), Some(c));
            assert_eq!(serde_json::to_value(c).unwrap(), c.as_str());
            assert_eq!(c.to_string(), c.as_str());
        }
        assert_eq!(Classification::parse("human"), None);
    }

    #[test]
    fn a_human_reply_scores_as_reply_and_the_others_by_name() {
        assert_eq!(Classification::HumanReply.score_kind(), "reply");
        assert_eq!(Classification::AutoReply.score_kind(), "auto_reply");
        assert_eq!(Classification::HardBounce.score_kind(), "hard_bounce");
    }

    #[test]
    fn a_return_date_postpones_to_the_next_midnight() {
        let day = NaiveDate::from_ymd_opt(2027, 3, 12).unwrap();
        assert_eq!(
            postpone_until(day).map(|t| t.to_rfc3339()),
            Some("2027-03-13T00:00:00+00:00".into())
        );
        assert_eq!(postpone_until(NaiveDate::MAX), None);
    }
}
