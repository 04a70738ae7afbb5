//! When a lead waiting in `new` will be enrolled: at the first pass at which a segment
//! matches it, asked of the scheduler's own [`enrolment_for`].
//!
//! Whether a segment matches changes with time only at its age bounds: a lead becomes old
//! enough at `lost_at + min_age` and too old just after `lost_at + max_age` (in the lead's
//! zone). Between two such moments every pass gets the same answer, so it is enough to ask
//! at the first pass and at the first pass at or after each moment — a handful of questions
//! per lead instead of one per pass.

use chrono::{DateTime, TimeDelta, Utc};

use super::sim::Grid;
use crate::config::Settings;
use crate::domain::lead::Lead;
use crate::outbound::scheduler::enrolment_for;
use crate::store::NewEnrolment;

/// The pass at which `lead` is enrolled and its enrolment, if that happens before the
/// horizon.
pub fn enrolment_pass(
    settings: &Settings,
    lead: &Lead,
    grid: &Grid,
) -> Option<(DateTime<Utc>, NewEnrolment)> {
    let tz = lead.zone_or(settings.default_tz);
    let anchor = lead.lost_at.unwrap_or(lead.created_at);
    let mut passes = vec![grid.start];
    for segment in &settings.segments {
        if let Some(age) = segment.min_age {
            passes.extend(grid.pass_for(age.after(anchor, tz)));
        }
        if let Some(age) = segment.max_age {
            let past = age.after(anchor, tz) + TimeDelta::nanoseconds(1);
            passes.extend(grid.pass_for(past));
        }
    }
    passes.sort();
    passes.dedup();
    passes
        .into_iter()
        .filter(|p| *p < grid.until)
        .find_map(|p| enrolment_for(settings, lead, p, p).map(|e| (p, e)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::cadence::Span;
    use crate::domain::email::EmailAddress;
    use crate::domain::lead::LeadState;
    use crate::domain::segment::Segment;
    use chrono::TimeZone;

    fn t(d: u32, h: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 12, d, h, 0, 0).unwrap()
    }

    fn lead(lost: DateTime<Utc>, reason: &str) -> Lead {
        Lead {
            id: 1,
            email: EmailAddress::parse("ann@acme.test").unwrap(),
            first_name: None,
            last_name: None,
            company: None,
            title: None,
            owner_email: None,
            owner_name: None,
            lost_reason: Some(reason.into()),
            lost_at: Some(lost),
            timezone: Some(chrono_tz::Europe::Paris),
            tags: vec![],
            fields: Default::default(),
            state: LeadState::New,
            created_at: lost,
            updated_at: lost,
        }
    }

    fn settings(segments: Vec<Segment>) -> Settings {
        let mut s = super::super::testing::settings(
            "[campaigns.c]\nfirst_after = \"0d\"\nevery = \"7d\"\ntemplates = [\"t\"]\n",
        );
        s.segments = segments;
        s
    }

    fn seg(name: &str, min: Option<Span>, max: Option<Span>) -> Segment {
        Segment {
            name: name.into(),
            campaign: "c".into(),
            min_age: min,
            max_age: max,
            ..Default::default()
        }
    }

    fn grid(start: DateTime<Utc>, tick_h: i64, days: i64) -> Grid {
        Grid {
            start,
            tick: TimeDelta::hours(tick_h),
            until: start + TimeDelta::days(days),
        }
    }

    #[test]
    fn a_lead_that_matches_now_is_enrolled_at_the_first_pass() {
        let s = settings(vec![seg("all", None, None)]);
        let g = grid(t(2, 9), 1, 60);
        let (p, e) = enrolment_pass(&s, &lead(t(1, 9), "x"), &g).unwrap();
        assert_eq!(p, t(2, 9));
        assert_eq!(e.segment, "all");
    }

    #[test]
    fn a_lead_too_young_now_is_enrolled_at_the_first_pass_after_it_is_old_enough() {
        let s = settings(vec![seg("old", Some(Span::Days(30)), None)]);
        // Lost 25 Nov 10:30 Paris (09:30 UTC): 30 days later is 25 Dec 09:30 UTC.
        let lost = Utc.with_ymd_and_hms(2026, 11, 25, 9, 30, 0).unwrap();
        let g = grid(t(2, 0), 1, 60);
        let (p, e) = enrolment_pass(&s, &lead(lost, "x"), &g).unwrap();
        assert_eq!(p, t(25, 10), "the first hourly pass at or after 09:30");
        assert_eq!(e.segment, "old");
        // A 3-hour grid from midnight: 09:00 is too early, 12:00 is the pass.
        let g = grid(t(2, 0), 3, 60);
        assert_eq!(
            enrolment_pass(&s, &lead(lost, "x"), &g).unwrap().0,
            t(25, 12)
        );
    }

    #[test]
    fn a_lead_that_qualifies_after_the_horizon_is_not_enrolled() {
        let s = settings(vec![seg("old", Some(Span::Days(30)), None)]);
        let lost = t(1, 9);
        assert!(enrolment_pass(&s, &lead(lost, "x"), &grid(t(2, 9), 1, 20)).is_none());
        assert!(enrolment_pass(&s, &lead(lost, "x"), &grid(t(2, 9), 1, 40)).is_some());
    }

    #[test]
    fn a_segment_left_by_max_age_hands_the_lead_to_the_next_one() {
        let s = settings(vec![
            seg("fresh", None, Some(Span::Days(3))),
            seg("old", Some(Span::Days(10)), None),
        ]);
        let g = grid(t(2, 9), 1, 60);
        // Lost yesterday: fresh now.
        let (p, e) = enrolment_pass(&s, &lead(t(1, 9), "x"), &g).unwrap();
        assert_eq!((p, e.segment.as_str()), (t(2, 9), "fresh"));
        // Lost 5 days ago: too old for fresh, too young for old until the 11th, 09:00.
        let (p, e) = enrolment_pass(&s, &lead(t(1, 9) - TimeDelta::days(4), "x"), &g).unwrap();
        assert_eq!((p, e.segment.as_str()), (t(7, 9), "old"));
    }

    #[test]
    fn a_lead_no_segment_will_ever_take_is_never_enrolled() {
        let mut only = seg("budget", None, None);
        only.lost_reasons = vec!["budget".into()];
        let s = settings(vec![only]);
        assert!(enrolment_pass(&s, &lead(t(1, 9), "competitor"), &grid(t(2, 9), 1, 365)).is_none());
    }
}
