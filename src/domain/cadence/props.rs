//! Property tests of the cadence maths: for any loss date, moment, zone, window, delay and
//! rhythm, a due time is never before `now` (or before the previous email) and always inside
//! the send window; and no text (span, window, cron line) makes a parser panic. Few cases per
//! property (CI stays fast); a failure prints the inputs that broke it.

use proptest::prelude::*;

use super::testing::*;
use super::{Cadence, Rhythm, SendWindow, Span};

/// Zones with DST in either hemisphere, half-hour and 45-minute offsets, a 30-minute DST
/// shift (Lord Howe), and none.
const ZONES: [Tz; 8] = [
    chrono_tz::UTC,
    Paris,
    New_York,
    Los_Angeles,
    Sydney,
    chrono_tz::Australia::Lord_Howe,
    chrono_tz::Asia::Kolkata,
    chrono_tz::Pacific::Chatham,
];

const CRONS: [&str; 5] = [
    "0 9 * * MON",
    "30 2 * * *",
    "0 10 1 * *",
    "15 8 * * MON-FRI",
    "0 0 29 2 *",
];

fn instant() -> impl Strategy<Value = DateTime<Utc>> {
    // 2020-01-01 .. 2035-01-01, to the second.
    (1_577_836_800i64..2_051_222_400)
        .prop_map(|s| DateTime::from_timestamp(s, 0).unwrap_or_default())
}

fn zone() -> impl Strategy<Value = Tz> {
    (0..ZONES.len()).prop_map(|i| ZONES[i])
}

/// A window: a non-empty set of days, hours from `start` to `end` (half-hour steps,
/// 24:00 = end of day).
fn window() -> impl Strategy<Value = SendWindow> {
    (1u8..128, 0u32..47, 1u32..48).prop_filter_map("start before end", |(days, a, b)| {
        let (start, end) = (a.min(b), a.max(b));
        (start < end).then_some(())?;
        let names = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"];
        let days: Vec<&str> = (0..7)
            .filter(|i| days & (1 << i) != 0)
            .map(|i| names[i])
            .collect();
        let hhmm = |half: u32| format!("{:02}:{:02}", half / 2, (half % 2) * 30);
        SendWindow::parse(&days.join(","), &format!("{}-{}", hhmm(start), hhmm(end))).ok()
    })
}

fn span() -> impl Strategy<Value = Span> {
    prop_oneof![
        (0u32..400).prop_map(|n| format!("{n}d")),
        (1u32..200).prop_map(|n| format!("{n}h")),
        (1u32..30).prop_map(|n| format!("{n}mo")),
        (1u32..60).prop_map(|n| format!("{n}w")),
    ]
    .prop_map(|s| Span::parse(&s).expect("a span the strategy writes"))
}

fn rhythm() -> impl Strategy<Value = Rhythm> {
    prop_oneof![
        span()
            .prop_filter("a rhythm longer than zero", |s| !s.is_zero())
            .prop_map(Rhythm::Every),
        (0..CRONS.len()).prop_map(|i| Rhythm::Cron(cron(CRONS[i]))),
    ]
}

fn cadence() -> impl Strategy<Value = Cadence> {
    (span(), rhythm(), 1u32..12, window()).prop_map(|(first_after, rhythm, max_touches, window)| {
        Cadence {
            first_after,
            rhythm,
            max_touches,
            window,
            days: crate::domain::calendar::DayRules::default(),
        }
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn the_first_email_is_never_due_before_now_and_always_inside_the_window(
        c in cadence(),
        now in instant(),
        lost_days_ago in 0i64..3_000,
        tz in zone(),
    ) {
        let anchor = now - TimeDelta::days(lost_days_ago);
        let due = c.first_due(anchor, now, tz);
        prop_assert!(due >= now, "due {} before now {}", show(due, tz), show(now, tz));
        prop_assert!(c.window.contains(due, tz), "due {} outside {}", show(due, tz), c.window.describe());
    }

    #[test]
    fn every_later_email_is_after_the_previous_one_and_inside_the_window(
        c in cadence(),
        now in instant(),
        tz in zone(),
    ) {
        let mut prev = c.first_due(now, now, tz);
        for step in 1..c.max_touches {
            let Some(due) = c.next_due(step, prev, tz) else { break };
            prop_assert!(due > prev, "step {step}: {} not after {}", show(due, tz), show(prev, tz));
            prop_assert!(due >= now);
            prop_assert!(c.window.contains(due, tz), "step {step}: {} outside {}", show(due, tz), c.window.describe());
            prev = due;
        }
        prop_assert!(c.next_due(c.max_touches, prev, tz).is_none());
    }

    #[test]
    fn the_next_open_moment_is_never_earlier_and_always_open(w in window(), t in instant(), tz in zone()) {
        let open = w.next_open(t, tz);
        prop_assert!(open >= t);
        prop_assert!(w.contains(open, tz), "{} outside {}", show(open, tz), w.describe());
        if w.contains(t, tz) {
            prop_assert_eq!(open, t, "an open moment stays");
        }
    }

    #[test]
    fn no_text_makes_the_span_window_or_cron_parsers_panic(s in ".{0,40}", h in ".{0,20}") {
        let _ = Span::parse(&s);
        let _ = SendWindow::parse(&s, &h);
        let _ = super::CronSpec::parse(&s);
    }
}
