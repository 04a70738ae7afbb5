//! What a person's reply means for its lead — its [`Intent`] — and what each intent does
//! ([`IntentEffect`]). Pure names and defaults: the rules that read a reply are in
//! `inbound::intent`, the configuration (`[intents.*]`, per segment) in `config`, the
//! effect applied in `inbound::effect` and the store.

use std::fmt;

/// What a human reply says about its sender's interest.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Intent {
    /// Wants to talk, buy, see a demo: hot.
    Interested,
    /// Asks something (price, features) without saying more: hot enough for a person.
    Question,
    /// Not now, but later ("in September", "next year", "later").
    Later,
    /// Does not want it (chose another vendor, no need).
    NotInterested,
    /// The person left the company: this address is dead.
    LeftCompany,
    /// Not the right contact (often naming the right one).
    WrongPerson,
    /// No rule decided, or rules disagreed: a person must look.
    Unclear,
}

impl Intent {
    pub const ALL: [Intent; 7] = [
        Intent::Interested,
        Intent::Question,
        Intent::Later,
        Intent::NotInterested,
        Intent::LeftCompany,
        Intent::WrongPerson,
        Intent::Unclear,
    ];

    /// The stored and printed name (`interested`, `not_interested`, …).
    pub fn as_str(self) -> &'static str {
        match self {
            Intent::Interested => "interested",
            Intent::Question => "question",
            Intent::Later => "later",
            Intent::NotInterested => "not_interested",
            Intent::LeftCompany => "left_company",
            Intent::WrongPerson => "wrong_person",
            Intent::Unclear => "unclear",
        }
    }

    /// The intent named `name` (as [`Intent::as_str`] writes it).
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|i| i.as_str() == name.trim())
    }

    /// What the intent does unless configured otherwise (the defaults of docs/replies.md).
    pub fn default_effect(self) -> IntentEffect {
        match self {
            Intent::Interested | Intent::Question => IntentEffect::Rewarm,
            Intent::Unclear => IntentEffect::Review,
            Intent::Later => IntentEffect::Postpone,
            Intent::NotInterested => IntentEffect::OutOfScope,
            Intent::LeftCompany | Intent::WrongPerson => IntentEffect::Retire,
        }
    }
}

impl fmt::Display for Intent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a reply of some intent does to its lead.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum IntentEffect {
    /// Re-warmed and handed to sales (the notification names the intent).
    Rewarm,
    /// Re-warmed and handed to sales marked "needs a look".
    Review,
    /// Not handed to sales: the cadence waits until the moment the reply names (or the
    /// default postponement), event `postponed`.
    Postpone,
    /// Out of scope with the reply as reason and a re-check date; the owner reads it in the
    /// digest only.
    OutOfScope,
    /// The address is retired (no more emails to it, no suppression); each referral with an
    /// address becomes a new lead.
    Retire,
}

impl IntentEffect {
    pub const ALL: [IntentEffect; 5] = [
        IntentEffect::Rewarm,
        IntentEffect::Review,
        IntentEffect::Postpone,
        IntentEffect::OutOfScope,
        IntentEffect::Retire,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            IntentEffect::Rewarm => "rewarm",
            IntentEffect::Review => "review",
            IntentEffect::Postpone => "postpone",
            IntentEffect::OutOfScope => "out_of_scope",
            IntentEffect::Retire => "retire",
        }
    }

    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|e| e.as_str() == name.trim())
    }
}

impl fmt::Display for IntentEffect {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for i in Intent::ALL {
            assert_eq!(Intent::parse(i.as_str()), Some(i));
            assert_eq!(serde_json::to_value(i).unwrap(), i.as_str());
        }
        for e in IntentEffect::ALL {
            assert_eq!(IntentEffect::parse(e.as_str()), Some(e));
            assert_eq!(serde_json::to_value(e).unwrap(), e.as_str());
        }
        assert_eq!(Intent::parse("hot"), None);
        assert_eq!(IntentEffect::parse("delete"), None);
    }

    #[test]
    fn the_defaults_hand_only_hot_replies_to_sales() {
        assert_eq!(Intent::Interested.default_effect(), IntentEffect::Rewarm);
        assert_eq!(Intent::Question.default_effect(), IntentEffect::Rewarm);
        assert_eq!(Intent::Unclear.default_effect(), IntentEffect::Review);
        assert_eq!(Intent::Later.default_effect(), IntentEffect::Postpone);
        assert_eq!(
            Intent::NotInterested.default_effect(),
            IntentEffect::OutOfScope
        );
        assert_eq!(Intent::LeftCompany.default_effect(), IntentEffect::Retire);
        assert_eq!(Intent::WrongPerson.default_effect(), IntentEffect::Retire);
    }
}
