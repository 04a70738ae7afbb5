//! Unix crontab → `cron` crate: marketers write 5-field Unix lines (0/7 = Sunday, names like
//! MON-FRI); the `cron` crate wants a seconds field and numbers weekdays 1 = Sunday … 7 =
//! Saturday. This translates the one into the other, and words the crate's errors for people.

use super::cron::CRON_HINT;

/// The useful part of a cron crate parse error. The crate echoes the expression it was given
/// (for a Unix expression, our translation, which the user never wrote) and a caret on
/// separate lines before the complaint, and says "less than 59" where it means "at most 59".
pub(super) fn crate_error_reason(message: &str) -> String {
    let complaint = message
        .rsplit_once('^')
        .map_or(message, |(_, rest)| rest)
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ");
    if complaint.is_empty() {
        format!("not understood; {CRON_HINT}")
    } else {
        complaint.replace("must be less than", "must be at most")
    }
}

/// Turns Unix `minute hour dom month dow` into one or two cron-crate expressions.
pub(super) fn unix_to_crate(
    [minute, hour, dom, month, dow]: [&str; 5],
) -> Result<Vec<String>, String> {
    let weekdays = unix_weekdays_to_crate(dow)?;
    // Vixie cron's rule: a field starting with `*` is unrestricted (even `*/2`); only when
    // both day fields are restricted does a day match either of them.
    let unrestricted = |field: &str| field.starts_with('*') || field.starts_with('?');
    if unrestricted(dom) || unrestricted(dow) {
        Ok(vec![format!("0 {minute} {hour} {dom} {month} {weekdays}")])
    } else {
        Ok(vec![
            format!("0 {minute} {hour} {dom} {month} *"),
            format!("0 {minute} {hour} * {month} {weekdays}"),
        ])
    }
}

/// Rewrites a Unix day-of-week field (0-7, 0 and 7 = Sunday) as an explicit list in the cron
/// crate's numbering (1 = Sunday … 7 = Saturday), or `*`.
pub(super) fn unix_weekdays_to_crate(field: &str) -> Result<String, String> {
    if field == "*" || field == "?" {
        return Ok("*".to_string());
    }
    let mut on = [false; 7]; // Unix numbering: 0 = Sunday … 6 = Saturday
    for item in field.split(',') {
        let (base, step) = match item.split_once('/') {
            Some((base, step)) => match step.parse::<usize>() {
                Ok(step) if step > 0 => (base, step),
                _ => return Err(format!("bad step in day-of-week `{item}`")),
            },
            None => (item, 1),
        };
        let (first, last) = if base == "*" || base == "?" {
            (0, 7)
        } else if let Some((a, b)) = base.split_once('-') {
            let (a, b) = (unix_weekday(a)?, unix_weekday(b)?);
            // SUN (or 0) closing a range means the Sunday at the end of the week: SAT-SUN, 5-0.
            (a, if b == 0 && a > 0 { 7 } else { b })
        } else {
            let day = unix_weekday(base)?;
            // `N/step` runs from N to the end of the week, like `*/step` does from 0.
            (day, if item.contains('/') { 7 } else { day })
        };
        if first > last {
            return Err(format!(
                "day-of-week range `{base}` runs backwards \
                 (write 5-7 or FRI-SUN for Friday to Sunday)"
            ));
        }
        for day in (first..=last).step_by(step) {
            on[day % 7] = true;
        }
    }
    Ok((0..7)
        .filter(|&day| on[day])
        .map(|day| (day + 1).to_string())
        .collect::<Vec<_>>()
        .join(","))
}

/// A Unix weekday: 0-7 (0 and 7 = Sunday) or an English name or abbreviation.
pub(super) fn unix_weekday(s: &str) -> Result<usize, String> {
    let day = match s.to_ascii_lowercase().as_str() {
        "sun" | "sunday" => 0,
        "mon" | "monday" => 1,
        "tue" | "tues" | "tuesday" => 2,
        "wed" | "wednesday" => 3,
        "thu" | "thurs" | "thursday" => 4,
        "fri" | "friday" => 5,
        "sat" | "saturday" => 6,
        number => match number.parse::<usize>() {
            Ok(n) if n <= 7 => n,
            _ => {
                return Err(format!(
                    "day of week `{s}` is not 0-7 (0 and 7 = Sunday, 1 = Monday) \
                     or a name such as MON"
                ));
            }
        },
    };
    Ok(day)
}

#[cfg(test)]
mod tests {
    use crate::domain::cadence::CronSpec;
    use crate::domain::cadence::testing::*;

    // --- Cron --------------------------------------------------------------------------------

    #[test]
    fn unix_crontab_expressions_are_translated_for_the_cron_crate() {
        // (expression, after this UTC instant, the next firings in UTC without the zone name)
        // 2026-03-04 is a Wednesday.
        let cases = [
            (
                "0 9 * * 1",
                "2026-03-04 12:00",
                "Mon 03-09 09:00, Mon 03-16 09:00",
            ),
            (
                "0 9 * * 0",
                "2026-03-04 12:00",
                "Sun 03-08 09:00, Sun 03-15 09:00",
            ),
            (
                "0 9 * * 7",
                "2026-03-04 12:00",
                "Sun 03-08 09:00, Sun 03-15 09:00",
            ),
            (
                "0 9 * * 6",
                "2026-03-04 12:00",
                "Sat 03-07 09:00, Sat 03-14 09:00",
            ),
            (
                "0 9 * * 1-5",
                "2026-03-06 10:00",
                "Mon 03-09 09:00, Tue 03-10 09:00",
            ),
            (
                "0 9 * * 1-5",
                "2026-03-04 08:00",
                "Wed 03-04 09:00, Thu 03-05 09:00",
            ),
            (
                "0 9 1 * *",
                "2026-03-04 12:00",
                "Wed 04-01 09:00, Fri 05-01 09:00",
            ),
            (
                "0 9 * * MON-FRI",
                "2026-03-07 12:00",
                "Mon 03-09 09:00, Tue 03-10 09:00",
            ),
            (
                "0 9 * * mon-fri",
                "2026-03-13 12:00",
                "Mon 03-16 09:00, Tue 03-17 09:00",
            ),
            (
                "0 9 * * 5-7",
                "2026-03-05 12:00",
                "Fri 03-06 09:00, Sat 03-07 09:00, Sun 03-08 09:00, Fri 03-13 09:00",
            ),
            (
                "0 9 * * FRI-SUN",
                "2026-03-05 12:00",
                "Fri 03-06 09:00, Sat 03-07 09:00, Sun 03-08 09:00, Fri 03-13 09:00",
            ),
            (
                "0 9 * * 0-2",
                "2026-03-06 12:00",
                "Sun 03-08 09:00, Mon 03-09 09:00, Tue 03-10 09:00, Sun 03-15 09:00",
            ),
            (
                "0 9 * * 1,3,5",
                "2026-03-08 12:00",
                "Mon 03-09 09:00, Wed 03-11 09:00, Fri 03-13 09:00, Mon 03-16 09:00",
            ),
            (
                "0 9 * * 1-5/2",
                "2026-03-08 12:00",
                "Mon 03-09 09:00, Wed 03-11 09:00, Fri 03-13 09:00, Mon 03-16 09:00",
            ),
            (
                "0 9 * * */2",
                "2026-03-07 12:00",
                "Sun 03-08 09:00, Tue 03-10 09:00, Thu 03-12 09:00, Sat 03-14 09:00",
            ),
            (
                "0 9 * * 7,Wed",
                "2026-03-04 12:00",
                "Sun 03-08 09:00, Wed 03-11 09:00, Sun 03-15 09:00",
            ),
            (
                "*/15 * * * *",
                "2026-03-04 10:07",
                "Wed 03-04 10:15, Wed 03-04 10:30, Wed 03-04 10:45, Wed 03-04 11:00",
            ),
            (
                "30 8,17 * * *",
                "2026-03-04 12:00",
                "Wed 03-04 17:30, Thu 03-05 08:30",
            ),
            (
                "0 10 1 */3 *",
                "2026-03-04 12:00",
                "Wed 04-01 10:00, Wed 07-01 10:00",
            ),
            (
                "0 9 * jan mon",
                "2026-03-04 12:00",
                "Mon 01-04 09:00, Mon 01-11 09:00",
            ),
            (
                "@daily",
                "2026-03-04 12:00",
                "Thu 03-05 00:00, Fri 03-06 00:00",
            ),
            (
                "@midnight",
                "2026-03-04 12:00",
                "Thu 03-05 00:00, Fri 03-06 00:00",
            ),
            (
                "@weekly",
                "2026-03-04 12:00",
                "Sun 03-08 00:00, Sun 03-15 00:00",
            ),
        ];
        for (expr, from, want) in cases {
            let spec = cron(expr);
            let mut t = utc(from);
            let got: Vec<String> = (0..want.split(", ").count())
                .map(|_| {
                    let next = spec.next_after(t, Tz::UTC).unwrap();
                    assert!(next > t, "{expr}");
                    t = next;
                    next.format("%a %m-%d %H:%M").to_string()
                })
                .collect();
            assert_eq!(got.join(", "), want, "{expr:?} after {from}");
        }
    }

    #[test]
    fn six_and_seven_field_expressions_keep_the_cron_crate_numbering() {
        let from = utc("2026-03-04 12:00");
        let cases = [
            ("0 0 9 * * 2", "Mon 2026-03-09 09:00 UTC"), // crate: 2 = Monday
            ("0 0 9 * * 1", "Sun 2026-03-08 09:00 UTC"), // crate: 1 = Sunday
            ("0 0 9 * * 7", "Sat 2026-03-07 09:00 UTC"), // crate: 7 = Saturday
            ("0 0 9 * * Mon", "Mon 2026-03-09 09:00 UTC"),
            ("30 0 9 * * *", "Thu 2026-03-05 09:00 UTC"),
            ("0 0 9 1 1 * 2027", "Fri 2027-01-01 09:00 UTC"),
            // The crate ANDs day-of-month and day-of-week: Friday the 13th only.
            (
                "0 0 9 13 * 6",
                "Fri 2026-03-13 09:00 UTC, Fri 2026-11-13 09:00 UTC",
            ),
        ];
        for (expr, want) in cases {
            let n = want.split(", ").count();
            assert_eq!(firings(expr, Tz::UTC, from, n), want, "{expr}");
        }
        let spec = cron("  0 0 9 * * 2 ");
        assert_eq!(spec.as_str(), "0 0 9 * * 2");
        assert_eq!(spec.to_string(), "0 0 9 * * 2");
    }

    #[test]
    fn unix_day_of_month_and_day_of_week_both_set_fire_on_either() {
        let from = utc("2026-03-01 00:00");
        // Vixie cron: "on the 13th, and on Fridays".
        assert_eq!(
            firings("0 9 13 * 5", Tz::UTC, from, 8),
            "Fri 2026-03-06 09:00 UTC, Fri 2026-03-13 09:00 UTC, Fri 2026-03-20 09:00 UTC, \
             Fri 2026-03-27 09:00 UTC, Fri 2026-04-03 09:00 UTC, Fri 2026-04-10 09:00 UTC, \
             Mon 2026-04-13 09:00 UTC, Fri 2026-04-17 09:00 UTC"
        );
        // A star in either day field lets the other decide alone.
        assert_eq!(
            firings("0 9 13 * *", Tz::UTC, from, 2),
            "Fri 2026-03-13 09:00 UTC, Mon 2026-04-13 09:00 UTC"
        );
        // `*/10` starts with a star, so both must match: Fridays that are the 1st, 11th, 21st
        // or 31st.
        assert_eq!(
            firings("0 9 */10 * 5", Tz::UTC, from, 2),
            "Fri 2026-05-01 09:00 UTC, Fri 2026-07-31 09:00 UTC"
        );
    }

    #[test]
    fn bad_cron_expressions_are_rejected_with_the_text_quoted() {
        let cases = [
            ("", "empty"),
            ("   ", "empty"),
            ("0 9 * *", "found 4"),
            ("garbage", "found 1"),
            ("0 9 * * * * * *", "found 8"),
            ("61 * * * *", "Minutes"),
            ("0 25 * * *", "Hours"),
            ("0 9 32 * *", "Days of Month"),
            ("0 9 * 13 *", "Months"),
            ("0 9 * * 8", "day of week `8`"),
            ("0 9 * * -1", "day of week ``"),
            ("0 9 * * FOO", "day of week `FOO`"),
            ("0 9 * * 5-1", "runs backwards"),
            ("0 9 * * 1/0", "bad step"),
            ("0 9 * * 1/x", "bad step"),
            ("0 9 * * L", "day of week `L`"),
            ("0 9 * * MON#2", "day of week `MON#2`"),
            ("0 9 * * 1,,2", "day of week ``"),
            ("x 9 * * *", ""),
            ("0 9 * * * nonsense", ""),
            ("@reboot", ""),
            ("0 0 9 * * 0", "Days of Week"),
        ];
        for (expr, detail) in cases {
            let err = CronSpec::parse(expr).expect_err(expr);
            let message = err.to_string();
            assert!(
                message.starts_with(&format!("bad cron expression `{}`: ", expr.trim())),
                "{expr:?}: {message}"
            );
            assert!(message.contains(detail), "{expr:?}: {message}");
            assert!(!message.contains('\n'), "{expr:?}: {message}");
        }
    }
}
