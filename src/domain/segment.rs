//! Segments: which leads a campaign is for. The first segment (in config order) that
//! matches a lead decides its campaign.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use chrono_tz::Tz;

use super::cadence::Span;
use super::lead::Lead;

/// A validated segment rule. Every condition that is set must hold.
#[derive(Debug, Clone, Default)]
pub struct Segment {
    pub name: String,
    pub campaign: String,
    /// Any of these loss reasons (compared case-insensitively); empty = any reason.
    pub lost_reasons: Vec<String>,
    /// The loss is at least this old.
    pub min_age: Option<Span>,
    /// The loss is at most this old.
    pub max_age: Option<Span>,
    /// The lead carries all of these tags (case-insensitive).
    pub tags: Vec<String>,
    /// The lead's owner is any of these (email or name, case-insensitive); empty = any owner.
    pub owners: Vec<String>,
    /// Custom fields that must equal these values (case-insensitive on the value).
    pub fields: BTreeMap<String, String>,
    /// Engagement score at which a lead of this segment is re-warmed.
    pub rewarm_score: i64,
    /// What a reply's intent does to a lead of this segment, where it differs from
    /// `[intents]`.
    pub intents: BTreeMap<super::intent::Intent, super::intent::IntentEffect>,
    /// What happens to a lead of this segment that was already emailed when its data changes
    /// and another segment now matches it (`on_change`).
    pub on_change: OnChange,
}

/// `on_change`: a lead already emailed whose changed data (a re-import, the API) makes
/// another segment match it stays in its campaign (`stay`, the default) or moves to the
/// other segment's campaign, continuing at the step its history says (`move`). A lead not
/// emailed yet always moves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum OnChange {
    #[default]
    Stay,
    Move,
}

impl OnChange {
    pub fn parse(s: &str) -> Option<OnChange> {
        match s.trim().to_ascii_lowercase().as_str() {
            "stay" => Some(OnChange::Stay),
            "move" => Some(OnChange::Move),
            _ => None,
        }
    }
}

impl Segment {
    /// Does `lead` belong to this segment at `now`? Ages count from the loss date
    /// (or, for a lead without one, from when it was imported), in the lead's zone.
    pub fn matches(&self, lead: &Lead, now: DateTime<Utc>, default_tz: Tz) -> bool {
        let tz = lead.zone_or(default_tz);
        let lost_at = lead.lost_at.unwrap_or(lead.created_at);
        let reason_ok = self.lost_reasons.is_empty()
            || lead.lost_reason.as_deref().is_some_and(|r| {
                self.lost_reasons
                    .iter()
                    .any(|want| want.eq_ignore_ascii_case(r.trim()))
            });
        let min_ok = self.min_age.is_none_or(|age| age.after(lost_at, tz) <= now);
        let max_ok = self.max_age.is_none_or(|age| age.after(lost_at, tz) >= now);
        let tags_ok = self
            .tags
            .iter()
            .all(|want| lead.tags.iter().any(|t| t.eq_ignore_ascii_case(want)));
        let owner_ok = self.owners.is_empty()
            || [lead.owner_email.as_deref(), lead.owner_name.as_deref()]
                .into_iter()
                .flatten()
                .any(|o| {
                    self.owners
                        .iter()
                        .any(|want| want.eq_ignore_ascii_case(o.trim()))
                });
        let fields_ok = self.fields.iter().all(|(key, want)| {
            lead.fields
                .get(key)
                .is_some_and(|v| v.trim().eq_ignore_ascii_case(want.trim()))
        });
        reason_ok && min_ok && max_ok && tags_ok && owner_ok && fields_ok
    }
}

/// The first segment that matches `lead`, in config order.
pub fn first_match<'a>(
    segments: &'a [Segment],
    lead: &Lead,
    now: DateTime<Utc>,
    default_tz: Tz,
) -> Option<&'a Segment> {
    segments.iter().find(|s| s.matches(lead, now, default_tz))
}

/// One rule of a segment that a lead fails, in words (`explain`): the "why not" of
/// [`Segment::matches`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Miss {
    /// The loss reason is missing or not one of those listed.
    Reason {
        have: Option<String>,
        want: Vec<String>,
    },
    /// The loss is younger than `min_age`: it qualifies at `on`.
    TooYoung {
        min: Span,
        on: DateTime<Utc>,
        days_to_go: i64,
    },
    /// The loss is older than `max_age` since `since`.
    TooOld {
        max: Span,
        since: DateTime<Utc>,
    },
    MissingTag(String),
    Owner {
        have: Option<String>,
        want: Vec<String>,
    },
    Field {
        key: String,
        have: Option<String>,
        want: String,
    },
}

impl std::fmt::Display for Miss {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Miss::Reason {
                have: Some(r),
                want,
            } => {
                write!(
                    f,
                    "loss reason `{r}` is not in the list ({})",
                    want.join(", ")
                )
            }
            Miss::Reason { have: None, want } => {
                write!(f, "no loss reason (wants one of {})", want.join(", "))
            }
            Miss::TooYoung {
                min,
                on,
                days_to_go,
            } => write!(
                f,
                "too young by {days_to_go} day(s): min_age {min} is reached on {}",
                on.format("%Y-%m-%d %H:%M UTC")
            ),
            Miss::TooOld { max, since } => write!(
                f,
                "too old: past max_age {max} since {}",
                since.format("%Y-%m-%d %H:%M UTC")
            ),
            Miss::MissingTag(t) => write!(f, "missing tag `{t}`"),
            Miss::Owner {
                have: Some(o),
                want,
            } => {
                write!(f, "owner `{o}` is not in the list ({})", want.join(", "))
            }
            Miss::Owner { have: None, want } => {
                write!(f, "no owner (wants one of {})", want.join(", "))
            }
            Miss::Field {
                key,
                have: Some(v),
                want,
            } => {
                write!(f, "field `{key}` is `{v}`, not `{want}`")
            }
            Miss::Field {
                key,
                have: None,
                want,
            } => {
                write!(f, "no field `{key}` (wants `{want}`)")
            }
        }
    }
}

impl Segment {
    /// Every rule of this segment that `lead` fails at `now`, in config order; empty exactly
    /// when [`Segment::matches`] is true (a unit test holds the two together).
    pub fn misses(&self, lead: &Lead, now: DateTime<Utc>, default_tz: Tz) -> Vec<Miss> {
        let tz = lead.zone_or(default_tz);
        let lost_at = lead.lost_at.unwrap_or(lead.created_at);
        let mut out = Vec::new();
        let one = |rule: &Segment| rule.matches(lead, now, default_tz);
        let only = |rule: Segment| Segment {
            name: self.name.clone(),
            campaign: self.campaign.clone(),
            ..rule
        };
        if !one(&only(Segment {
            lost_reasons: self.lost_reasons.clone(),
            ..Default::default()
        })) {
            out.push(Miss::Reason {
                have: lead.lost_reason.clone(),
                want: self.lost_reasons.clone(),
            });
        }
        if let Some(min) = self.min_age {
            let on = min.after(lost_at, tz);
            if on > now {
                let secs = (on - now).num_seconds();
                let days_to_go = (secs + 86_399) / 86_400;
                out.push(Miss::TooYoung {
                    min,
                    on,
                    days_to_go,
                });
            }
        }
        if let Some(max) = self.max_age {
            let since = max.after(lost_at, tz);
            if since < now {
                out.push(Miss::TooOld { max, since });
            }
        }
        for want in &self.tags {
            if !lead.tags.iter().any(|t| t.eq_ignore_ascii_case(want)) {
                out.push(Miss::MissingTag(want.clone()));
            }
        }
        if !one(&only(Segment {
            owners: self.owners.clone(),
            ..Default::default()
        })) {
            out.push(Miss::Owner {
                have: lead.owner_email.clone().or_else(|| lead.owner_name.clone()),
                want: self.owners.clone(),
            });
        }
        for (key, want) in &self.fields {
            let have = lead.fields.get(key);
            if !have.is_some_and(|v| v.trim().eq_ignore_ascii_case(want.trim())) {
                out.push(Miss::Field {
                    key: key.clone(),
                    have: have.cloned(),
                    want: want.clone(),
                });
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::email::EmailAddress;
    use crate::domain::lead::LeadState;
    use chrono::TimeZone;

    fn lead() -> Lead {
        let t = Utc.with_ymd_and_hms(2026, 1, 10, 12, 0, 0).unwrap();
        Lead {
            id: 1,
            email: EmailAddress::parse("ann@acme.test").unwrap(),
            first_name: Some("Ann".into()),
            last_name: None,
            company: Some("Acme".into()),
            title: None,
            owner_email: Some("rep@us.test".into()),
            owner_name: Some("Rita Rep".into()),
            lost_reason: Some("No Budget".into()),
            lost_at: Some(t),
            timezone: Some(chrono_tz::Europe::Paris),
            tags: vec!["enterprise".into(), "emea".into()],
            fields: [("industry".to_string(), "SaaS".to_string())].into(),
            state: LeadState::New,
            created_at: t,
            updated_at: t,
        }
    }

    fn at(y: i32, m: u32, d: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(y, m, d, 12, 0, 0).unwrap()
    }

    fn seg(name: &str) -> Segment {
        Segment {
            name: name.into(),
            campaign: name.into(),
            ..Default::default()
        }
    }

    #[test]
    fn an_empty_segment_matches_every_lead() {
        assert!(seg("all").matches(&lead(), at(2026, 1, 10), Tz::UTC));
    }

    #[test]
    fn loss_reasons_match_case_insensitively_and_any_of_them_will_do() {
        let s = Segment {
            lost_reasons: vec!["chose_competitor".into(), "no budget".into()],
            ..seg("s")
        };
        assert!(s.matches(&lead(), at(2026, 1, 10), Tz::UTC));
        let s = Segment {
            lost_reasons: vec!["chose_competitor".into()],
            ..seg("s")
        };
        assert!(!s.matches(&lead(), at(2026, 1, 10), Tz::UTC));
    }

    #[test]
    fn a_lead_without_a_loss_reason_fails_a_reason_condition() {
        let mut l = lead();
        l.lost_reason = None;
        let s = Segment {
            lost_reasons: vec!["no budget".into()],
            ..seg("s")
        };
        assert!(!s.matches(&l, at(2026, 1, 10), Tz::UTC));
    }

    #[test]
    fn min_age_waits_until_the_loss_is_old_enough() {
        let s = Segment {
            min_age: Some(Span::Days(30)),
            ..seg("s")
        };
        assert!(!s.matches(&lead(), at(2026, 2, 8), Tz::UTC));
        assert!(s.matches(&lead(), at(2026, 2, 9), Tz::UTC));
    }

    #[test]
    fn max_age_drops_losses_that_are_too_old() {
        let s = Segment {
            max_age: Some(Span::Months(12)),
            ..seg("s")
        };
        assert!(s.matches(&lead(), at(2026, 12, 1), Tz::UTC));
        assert!(!s.matches(&lead(), at(2027, 2, 1), Tz::UTC));
    }

    #[test]
    fn ages_of_leads_without_a_loss_date_count_from_import() {
        let mut l = lead();
        l.lost_at = None;
        l.created_at = at(2026, 3, 1);
        let s = Segment {
            min_age: Some(Span::Days(10)),
            ..seg("s")
        };
        assert!(!s.matches(&l, at(2026, 3, 5), Tz::UTC));
        assert!(s.matches(&l, at(2026, 3, 12), Tz::UTC));
    }

    #[test]
    fn every_listed_tag_must_be_present() {
        let s = Segment {
            tags: vec!["EMEA".into(), "enterprise".into()],
            ..seg("s")
        };
        assert!(s.matches(&lead(), at(2026, 1, 10), Tz::UTC));
        let s = Segment {
            tags: vec!["emea".into(), "smb".into()],
            ..seg("s")
        };
        assert!(!s.matches(&lead(), at(2026, 1, 10), Tz::UTC));
    }

    #[test]
    fn owner_matches_by_email_or_by_name() {
        for owner in ["REP@us.test", "rita rep"] {
            let s = Segment {
                owners: vec![owner.into()],
                ..seg("s")
            };
            assert!(s.matches(&lead(), at(2026, 1, 10), Tz::UTC), "{owner}");
        }
        let s = Segment {
            owners: vec!["bob@us.test".into()],
            ..seg("s")
        };
        assert!(!s.matches(&lead(), at(2026, 1, 10), Tz::UTC));
    }

    #[test]
    fn custom_fields_must_equal_the_configured_values() {
        let s = Segment {
            fields: [("industry".to_string(), "saas".to_string())].into(),
            ..seg("s")
        };
        assert!(s.matches(&lead(), at(2026, 1, 10), Tz::UTC));
        let s = Segment {
            fields: [("industry".to_string(), "retail".to_string())].into(),
            ..seg("s")
        };
        assert!(!s.matches(&lead(), at(2026, 1, 10), Tz::UTC));
        let s = Segment {
            fields: [("size".to_string(), "50".to_string())].into(),
            ..seg("s")
        };
        assert!(!s.matches(&lead(), at(2026, 1, 10), Tz::UTC));
    }

    #[test]
    fn the_first_matching_segment_wins() {
        let segments = vec![
            Segment {
                lost_reasons: vec!["chose_competitor".into()],
                ..seg("competitor")
            },
            Segment {
                lost_reasons: vec!["no budget".into()],
                ..seg("budget")
            },
            seg("catch_all"),
        ];
        let chosen = first_match(&segments, &lead(), at(2026, 1, 10), Tz::UTC).unwrap();
        assert_eq!(chosen.name, "budget");
    }

    #[test]
    fn no_segment_matching_gives_none() {
        let segments = vec![Segment {
            tags: vec!["smb".into()],
            ..seg("smb")
        }];
        assert!(first_match(&segments, &lead(), at(2026, 1, 10), Tz::UTC).is_none());
    }

    #[test]
    fn misses_say_which_rule_failed_and_by_how_much() {
        let s = Segment {
            lost_reasons: vec!["chose_competitor".into()],
            min_age: Some(Span::Days(30)),
            max_age: Some(Span::Days(5)),
            tags: vec!["emea".into(), "smb".into()],
            owners: vec!["bob@us.test".into()],
            fields: [
                ("industry".to_string(), "retail".to_string()),
                ("size".to_string(), "50".to_string()),
            ]
            .into(),
            ..seg("s")
        };
        let said: Vec<String> = s
            .misses(&lead(), at(2026, 1, 28), Tz::UTC)
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(
            said,
            [
                "loss reason `No Budget` is not in the list (chose_competitor)",
                "too young by 12 day(s): min_age 30d is reached on 2026-02-09 12:00 UTC",
                "too old: past max_age 5d since 2026-01-15 12:00 UTC",
                "missing tag `smb`",
                "owner `rep@us.test` is not in the list (bob@us.test)",
                "field `industry` is `SaaS`, not `retail`",
                "no field `size` (wants `50`)",
            ]
        );
    }

    #[test]
    fn misses_are_empty_exactly_when_the_segment_matches() {
        let segments = [
            seg("all"),
            Segment {
                lost_reasons: vec!["no budget".into()],
                ..seg("reason")
            },
            Segment {
                min_age: Some(Span::Days(30)),
                ..seg("min")
            },
            Segment {
                max_age: Some(Span::Months(1)),
                ..seg("max")
            },
            Segment {
                tags: vec!["EMEA".into()],
                ..seg("tags")
            },
            Segment {
                owners: vec!["rita rep".into()],
                ..seg("owner")
            },
            Segment {
                fields: [("industry".to_string(), "saas".to_string())].into(),
                ..seg("fields")
            },
        ];
        let mut bare = lead();
        bare.lost_reason = None;
        bare.tags.clear();
        bare.fields.clear();
        bare.owner_email = None;
        bare.owner_name = None;
        for l in [lead(), bare] {
            for day in [1, 9, 10, 11] {
                for month in [1, 2, 3] {
                    let now = at(2026, month, day);
                    for s in &segments {
                        assert_eq!(
                            s.misses(&l, now, Tz::UTC).is_empty(),
                            s.matches(&l, now, Tz::UTC),
                            "{} at {now}",
                            s.name
                        );
                    }
                }
            }
        }
    }
}
