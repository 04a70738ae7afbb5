//! When a lead that no segment matches could start matching one by itself.
//!
//! A segment's conditions read the lead's data and, through `min_age` and `max_age`, the
//! time. With the data unchanged, only a `min_age` can turn a "no" into a "yes" later, at
//! the moment the loss becomes old enough: the daemon stores that moment with the lead and
//! does not examine it before then (nor ever, if no such moment exists), instead of
//! re-examining every unmatched lead on every tick. A change to the lead's data or to the
//! segments makes it examined again (the store and the scheduler see to that).

use chrono::{DateTime, Utc};
use chrono_tz::Tz;

use super::lead::Lead;
use super::segment::Segment;

/// The earliest moment after `now` at which some segment matches `lead` (its data as it is
/// now), or `None` if no segment ever will by itself. Meant for a lead no segment matches at
/// `now`: at the moment a segment's `min_age` is reached, every other condition of it is
/// checked as of then (`max_age` included), so a moment is returned only if that segment
/// does match then.
pub fn starts_matching_at(
    segments: &[Segment],
    lead: &Lead,
    now: DateTime<Utc>,
    default_tz: Tz,
) -> Option<DateTime<Utc>> {
    let tz = lead.zone_or(default_tz);
    let lost_at = lead.lost_at.unwrap_or(lead.created_at);
    segments
        .iter()
        .filter_map(|segment| {
            let old_enough = segment.min_age?.after(lost_at, tz);
            (old_enough > now && segment.matches(lead, old_enough, default_tz))
                .then_some(old_enough)
        })
        .min()
}

/// A stable fingerprint of what decides whether a lead matches: the segments (their rules,
/// in order), the campaigns they name, and the default time zone. When it changes, leads
/// found unmatched under the old rules are examined again.
pub fn rules_fingerprint(segments: &[Segment], campaigns: &[&str], default_tz: Tz) -> String {
    crate::hex::sha256(format!("{segments:?}|{campaigns:?}|{default_tz}").as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::cadence::Span;
    use crate::domain::email::EmailAddress;
    use crate::domain::lead::LeadState;
    use chrono::TimeZone;

    fn at(y: i32, m: u32, d: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(y, m, d, 12, 0, 0).unwrap()
    }

    fn lead(reason: &str, lost: DateTime<Utc>) -> Lead {
        Lead {
            id: 1,
            email: EmailAddress::parse("ana@example.com").unwrap(),
            first_name: None,
            last_name: None,
            company: None,
            title: None,
            owner_email: None,
            owner_name: None,
            lost_reason: Some(reason.into()),
            lost_at: Some(lost),
            timezone: None,
            tags: vec![],
            fields: Default::default(),
            state: LeadState::New,
            created_at: lost,
            updated_at: lost,
        }
    }

    fn seg(reason: &str, min: Option<Span>, max: Option<Span>) -> Segment {
        Segment {
            name: reason.into(),
            campaign: "c".into(),
            lost_reasons: vec![reason.into()],
            min_age: min,
            max_age: max,
            ..Default::default()
        }
    }

    #[test]
    fn a_lead_too_recent_for_min_age_starts_matching_when_old_enough() {
        let segments = [seg("timing", Some(Span::Days(30)), None)];
        let l = lead("timing", at(2026, 1, 1));
        assert_eq!(
            starts_matching_at(&segments, &l, at(2026, 1, 10), Tz::UTC),
            Some(at(2026, 1, 31))
        );
    }

    #[test]
    fn a_lead_whose_other_conditions_fail_never_starts_matching() {
        let segments = [seg("timing", Some(Span::Days(30)), None)];
        let l = lead("went_quiet", at(2026, 1, 1));
        assert_eq!(
            starts_matching_at(&segments, &l, at(2026, 1, 10), Tz::UTC),
            None
        );
    }

    #[test]
    fn a_segment_without_min_age_never_starts_matching_later() {
        let segments = [seg("timing", None, Some(Span::Days(30)))];
        let l = lead("timing", at(2026, 1, 1));
        assert_eq!(
            starts_matching_at(&segments, &l, at(2026, 3, 1), Tz::UTC),
            None
        );
    }

    #[test]
    fn max_age_passed_by_the_time_min_age_is_reached_means_never() {
        let segments = [seg("timing", Some(Span::Days(60)), Some(Span::Days(30)))];
        let l = lead("timing", at(2026, 1, 1));
        assert_eq!(
            starts_matching_at(&segments, &l, at(2026, 1, 10), Tz::UTC),
            None
        );
    }

    #[test]
    fn the_earliest_of_several_segments_wins() {
        let segments = [
            seg("timing", Some(Span::Days(90)), None),
            seg("timing", Some(Span::Days(45)), None),
            seg("other", Some(Span::Days(5)), None),
        ];
        let l = lead("timing", at(2026, 1, 1));
        assert_eq!(
            starts_matching_at(&segments, &l, at(2026, 1, 10), Tz::UTC),
            Some(at(2026, 2, 15))
        );
    }

    #[test]
    fn min_age_counts_in_the_lead_zone_like_matching_does() {
        let segments = [seg("timing", Some(Span::Days(1)), None)];
        let mut l = lead("timing", at(2026, 1, 1));
        l.timezone = Some(chrono_tz::Asia::Tokyo);
        let when = starts_matching_at(&segments, &l, at(2026, 1, 1), Tz::UTC).unwrap();
        assert!(segments[0].matches(&l, when, Tz::UTC));
        assert!(!segments[0].matches(&l, when - chrono::Duration::seconds(1), Tz::UTC));
    }

    #[test]
    fn the_fingerprint_changes_with_any_rule_and_only_then() {
        let a = [seg("timing", Some(Span::Days(30)), None)];
        let b = [seg("timing", Some(Span::Days(31)), None)];
        let tz = Tz::UTC;
        assert_eq!(
            rules_fingerprint(&a, &["c"], tz),
            rules_fingerprint(&a, &["c"], tz)
        );
        assert_ne!(
            rules_fingerprint(&a, &["c"], tz),
            rules_fingerprint(&b, &["c"], tz)
        );
        assert_ne!(
            rules_fingerprint(&a, &["c"], tz),
            rules_fingerprint(&a, &["d"], tz)
        );
        assert_ne!(
            rules_fingerprint(&a, &["c"], tz),
            rules_fingerprint(&a, &["c"], chrono_tz::Europe::Paris)
        );
    }
}
