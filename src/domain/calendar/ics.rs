//! A small reader for `.ics` (iCalendar, RFC 5545) files: the all-day `VEVENT`s of a company
//! or team calendar, as closed days. It reads `DTSTART`/`DTEND` dates (`;VALUE=DATE:20261224`
//! or a date-time, whose date is taken), `SUMMARY`, and unfolds continuation lines; it ignores
//! every other property and component. `DTEND` is exclusive, as the RFC says; an event
//! without one lasts one day. Recurrence rules (`RRULE`) are refused with the line, rather
//! than silently read as a single day.

use chrono::{Days, NaiveDate};

use super::CalendarDays;

/// A problem in an `.ics` file, with its line (1-based, of the first physical line of a
/// folded one).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{file}:{line}: {reason}")]
pub struct IcsError {
    pub file: String,
    pub line: usize,
    pub reason: String,
}

/// The longest event read (a longer one is most likely a mistake in the file).
const MAX_EVENT_DAYS: u64 = 366;

/// The closed days of `text` (from file `file`): each day of each event, with its summary.
pub fn parse(file: &str, text: &str) -> Result<CalendarDays, IcsError> {
    let err = |line: usize, reason: String| IcsError {
        file: file.to_string(),
        line,
        reason,
    };
    let mut days = CalendarDays::new();
    let mut event: Option<Event> = None;
    let mut seen_calendar = false;
    for (line_no, line) in unfold(text) {
        let (name, value) = split_property(&line).ok_or_else(|| {
            err(
                line_no,
                format!("expected `NAME:value`, found `{}`", short(&line)),
            )
        })?;
        let key = name.split_once(';').map_or(name, |(key, _params)| key);
        match (key.to_ascii_uppercase().as_str(), &mut event) {
            ("BEGIN", _) if value.eq_ignore_ascii_case("VCALENDAR") => seen_calendar = true,
            ("BEGIN", None) if value.eq_ignore_ascii_case("VEVENT") => {
                event = Some(Event {
                    line: line_no,
                    ..Event::default()
                })
            }
            ("BEGIN", Some(_)) if value.eq_ignore_ascii_case("VEVENT") => {
                return Err(err(line_no, "a VEVENT inside a VEVENT".into()));
            }
            ("END", Some(_)) if value.eq_ignore_ascii_case("VEVENT") => {
                let done = event.take().unwrap_or_default();
                add_event(&mut days, file, done).map_err(|reason| err(line_no, reason))?;
            }
            ("DTSTART", Some(e)) => e.start = Some(parse_date(value).map_err(|r| err(line_no, r))?),
            ("DTEND", Some(e)) => e.end = Some(parse_date(value).map_err(|r| err(line_no, r))?),
            ("SUMMARY", Some(e)) => e.summary = unescape(value),
            ("RRULE" | "RDATE", Some(_)) => {
                return Err(err(
                    line_no,
                    format!(
                        "{key} (repeating events) is not supported: list each date as its own VEVENT"
                    ),
                ));
            }
            _ => {}
        }
    }
    if let Some(e) = event {
        return Err(err(e.line, "VEVENT without END:VEVENT".into()));
    }
    if !seen_calendar {
        return Err(err(1, "not an iCalendar file (no BEGIN:VCALENDAR)".into()));
    }
    Ok(days)
}

#[derive(Debug, Default)]
struct Event {
    line: usize,
    start: Option<NaiveDate>,
    end: Option<NaiveDate>,
    summary: String,
}

fn add_event(days: &mut CalendarDays, file: &str, e: Event) -> Result<(), String> {
    let start = e
        .start
        .ok_or_else(|| format!("the VEVENT that starts on line {} has no DTSTART", e.line))?;
    let end = e.end.unwrap_or(start + Days::new(1));
    if end <= start {
        return Err(format!("DTEND {end} is not after DTSTART {start}"));
    }
    let len = (end - start).num_days() as u64;
    if len > MAX_EVENT_DAYS {
        return Err(format!("an event of {len} days (at most {MAX_EVENT_DAYS})"));
    }
    let name = if e.summary.is_empty() {
        "(no summary)".to_string()
    } else {
        e.summary
    };
    for day in start.iter_days().take(len as usize) {
        days.entry(day)
            .or_insert_with(|| (file.to_string(), name.clone()));
    }
    Ok(())
}

/// Physical lines joined back where RFC 5545 folded them (a line starting with a space or a
/// tab continues the previous one), each with the number of its first physical line.
fn unfold(text: &str) -> Vec<(usize, String)> {
    let mut out: Vec<(usize, String)> = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let raw = raw.strip_suffix('\r').unwrap_or(raw);
        match (raw.strip_prefix([' ', '\t']), out.last_mut()) {
            (Some(rest), Some((_, prev))) => prev.push_str(rest),
            _ if raw.trim().is_empty() => {}
            _ => out.push((i + 1, raw.to_string())),
        }
    }
    out
}

/// `NAME;PARAM=x:value` → (`NAME;PARAM=x`, `value`); the first colon outside a quoted
/// parameter value splits them.
fn split_property(line: &str) -> Option<(&str, &str)> {
    let mut quoted = false;
    for (i, c) in line.char_indices() {
        match c {
            '"' => quoted = !quoted,
            ':' if !quoted => return Some((&line[..i], &line[i + 1..])),
            _ => {}
        }
    }
    None
}

/// `20261224`, or the date of `20261224T090000Z` / `20261224T090000`.
fn parse_date(value: &str) -> Result<NaiveDate, String> {
    let v = value.trim();
    let date = v.split('T').next().unwrap_or(v);
    NaiveDate::parse_from_str(date, "%Y%m%d")
        .map_err(|_| format!("bad date `{}` (expected YYYYMMDD)", short(v)))
}

fn unescape(value: &str) -> String {
    value
        .replace("\\n", " ")
        .replace("\\N", " ")
        .replace("\\,", ",")
        .replace("\\;", ";")
        .replace("\\\\", "\\")
        .trim()
        .to_string()
}

fn short(s: &str) -> String {
    s.chars().take(60).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> NaiveDate {
        s.parse().unwrap()
    }

    const OFFICE: &str = "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//Acme//EN\r\n\
BEGIN:VEVENT\r\nUID:1\r\nDTSTART;VALUE=DATE:20261224\r\nDTEND;VALUE=DATE:20261227\r\n\
SUMMARY:Winter\r\n  closure\r\nEND:VEVENT\r\n\
BEGIN:VEVENT\r\nDTSTART:20260814T000000Z\r\nSUMMARY:Summer party\\, all day\r\nEND:VEVENT\r\n\
BEGIN:VTODO\r\nDTSTART:20260101\r\nEND:VTODO\r\nEND:VCALENDAR\r\n";

    #[test]
    fn all_day_events_close_each_of_their_days_dtend_excluded() {
        let days = parse("office.ics", OFFICE).unwrap();
        let names: Vec<(String, String)> = days
            .iter()
            .map(|(d, (_, n))| (d.to_string(), n.clone()))
            .collect();
        assert_eq!(
            names,
            [
                ("2026-08-14".into(), "Summer party, all day".into()),
                ("2026-12-24".into(), "Winter closure".into()),
                ("2026-12-25".into(), "Winter closure".into()),
                ("2026-12-26".into(), "Winter closure".into()),
            ]
        );
        assert_eq!(days[&d("2026-12-24")].0, "office.ics");
    }

    #[test]
    fn bad_files_name_the_file_and_the_line() {
        let cases = [
            (
                "BEGIN:VCALENDAR\nBEGIN:VEVENT\nDTSTART:2026-12-24\nEND:VEVENT\nEND:VCALENDAR\n",
                3,
                "bad date `2026-12-24`",
            ),
            (
                "BEGIN:VCALENDAR\nBEGIN:VEVENT\nSUMMARY:x\nEND:VEVENT\nEND:VCALENDAR\n",
                4,
                "has no DTSTART",
            ),
            (
                "BEGIN:VCALENDAR\nBEGIN:VEVENT\nDTSTART:20261224\nDTEND:20261220\nEND:VEVENT\nEND:VCALENDAR\n",
                5,
                "is not after",
            ),
            (
                "BEGIN:VCALENDAR\nBEGIN:VEVENT\nDTSTART:20261224\nRRULE:FREQ=YEARLY\nEND:VEVENT\nEND:VCALENDAR\n",
                4,
                "RRULE",
            ),
            (
                "BEGIN:VCALENDAR\n\nBEGIN:VEVENT\nDTSTART:20261224\n",
                3,
                "without END:VEVENT",
            ),
            (
                "BEGIN:VCALENDAR\nthis is not ics\n",
                2,
                "expected `NAME:value`",
            ),
            ("hello: world\n", 1, "no BEGIN:VCALENDAR"),
            (
                "BEGIN:VCALENDAR\nBEGIN:VEVENT\nDTSTART:20260101\nDTEND:20280101\nEND:VEVENT\nEND:VCALENDAR\n",
                5,
                "730 days",
            ),
        ];
        for (text, line, want) in cases {
            let e = parse("team.ics", text).unwrap_err();
            assert_eq!(
                (e.file.as_str(), e.line),
                ("team.ics", line),
                "{text:?}: {e}"
            );
            assert!(e.to_string().contains(want), "{e}");
            assert!(e.to_string().starts_with(&format!("team.ics:{line}: ")));
        }
    }

    #[test]
    fn quoted_colons_in_parameters_do_not_split_the_value() {
        let text = "BEGIN:VCALENDAR\nBEGIN:VEVENT\nDTSTART;TZID=\"a:b\":20261231T090000\nEND:VEVENT\nEND:VCALENDAR\n";
        let days = parse("q.ics", text).unwrap();
        assert!(days.contains_key(&d("2026-12-31")));
    }
}
