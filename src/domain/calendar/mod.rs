//! Calendars: the days on which a campaign does not write to a lead — public holidays of the
//! lead's country, company-wide blackouts, dates from `.ics` files and, for campaigns that
//! want it, weekends. Pure data and rules; the cadence code ([`crate::domain::cadence`]) asks
//! [`DayRules::closed`] about each candidate day.
//!
//! - [`holidays`]: public holidays per country, compiled into the binary from
//!   `data/calendar/holidays.tsv` (generated from the Python `holidays` package by
//!   `data/calendar/gen.py`; see docs/campaigns.md for the choice and the coverage).
//! - [`zones`]: the country of an IANA zone (tzdata's `zone.tab`), for leads without a
//!   `country` field.
//! - [`ics`]: a small reader for all-day `VEVENT`s of user `.ics` files.

pub mod holidays;
pub mod ics;
pub mod zones;

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use chrono::{Datelike, NaiveDate, Weekday};
use chrono_tz::Tz;

/// An ISO 3166-1 alpha-2 country code, upper case ("US", "JP").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Country([u8; 2]);

impl Country {
    /// Two ASCII letters, any case; anything else is `None`.
    pub fn parse(s: &str) -> Option<Country> {
        match s.trim().as_bytes() {
            [a, b] if a.is_ascii_alphabetic() && b.is_ascii_alphabetic() => {
                Some(Country([a.to_ascii_uppercase(), b.to_ascii_uppercase()]))
            }
            _ => None,
        }
    }

    pub fn as_str(&self) -> &str {
        // Both bytes are ASCII letters (see `parse`).
        std::str::from_utf8(&self.0).unwrap_or("??")
    }
}

impl fmt::Display for Country {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Where a lead is, as far as its calendar goes: its zone and the country whose holidays
/// apply. `From<Tz>` derives the country from the zone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Place {
    pub tz: Tz,
    pub country: Option<Country>,
}

impl Place {
    /// The lead's own country if it has one, else the zone's.
    pub fn new(tz: Tz, country: Option<Country>) -> Place {
        Place {
            tz,
            country: country.or_else(|| zones::country_of(tz)),
        }
    }
}

impl Place {
    /// The place of a lead read with a stored row: its zone's name (unknown or none:
    /// `default`) and its `country` field (a two-letter code; anything else: the zone's).
    pub fn stored(zone: Option<&str>, country: Option<&str>, default: Tz) -> Place {
        let tz = zone.and_then(|z| z.parse().ok()).unwrap_or(default);
        Place::new(tz, country.and_then(Country::parse))
    }
}

impl From<Tz> for Place {
    fn from(tz: Tz) -> Place {
        Place::new(tz, None)
    }
}

/// A company-wide range of days without email, both ends included: once (`2026-12-24` to
/// `2027-01-02`) or every year (`12-24` to `01-02`, wrapping round the new year).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Blackout {
    pub name: String,
    pub range: BlackoutRange,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BlackoutRange {
    Once(NaiveDate, NaiveDate),
    /// (month, day) to (month, day), every year.
    Yearly((u32, u32), (u32, u32)),
}

/// The longest blackout accepted (longer is most likely a typo in a year).
pub const MAX_BLACKOUT_DAYS: i64 = 92;

impl Blackout {
    /// `from`/`to` both `YYYY-MM-DD` or both `MM-DD`; `to` not before `from` (a yearly range
    /// may wrap round the new year); at most [`MAX_BLACKOUT_DAYS`] days.
    pub fn parse(name: &str, from: &str, to: &str) -> Result<Blackout, String> {
        let range = match (
            from.trim().parse::<NaiveDate>(),
            to.trim().parse::<NaiveDate>(),
        ) {
            (Ok(a), Ok(b)) if b < a => return Err(format!("`to` {b} is before `from` {a}")),
            (Ok(a), Ok(b)) if (b - a).num_days() >= MAX_BLACKOUT_DAYS => {
                return Err(format!(
                    "{} days (at most {MAX_BLACKOUT_DAYS})",
                    (b - a).num_days() + 1
                ));
            }
            (Ok(a), Ok(b)) => BlackoutRange::Once(a, b),
            _ => {
                let (a, b) = (month_day(from)?, month_day(to)?);
                // Count on a leap year so 02-29 is a valid edge.
                let on = |(m, d): (u32, u32), y| NaiveDate::from_ymd_opt(y, m, d);
                let (Some(x), Some(mut y)) = (on(a, 2024), on(b, 2024)) else {
                    return Err("no such day".into());
                };
                if y < x {
                    y = on(b, 2025).unwrap_or(y);
                }
                if (y - x).num_days() >= MAX_BLACKOUT_DAYS {
                    return Err(format!(
                        "{} days (at most {MAX_BLACKOUT_DAYS})",
                        (y - x).num_days() + 1
                    ));
                }
                BlackoutRange::Yearly(a, b)
            }
        };
        Ok(Blackout {
            name: name.to_string(),
            range,
        })
    }

    pub fn covers(&self, day: NaiveDate) -> bool {
        match self.range {
            BlackoutRange::Once(a, b) => a <= day && day <= b,
            BlackoutRange::Yearly(a, b) => {
                let md = (day.month(), day.day());
                if a <= b {
                    a <= md && md <= b
                } else {
                    md >= a || md <= b
                }
            }
        }
    }
}

/// `MM-DD` → (month, day), checked against a leap year.
fn month_day(s: &str) -> Result<(u32, u32), String> {
    let bad = || format!("`{s}` is not a date: expected YYYY-MM-DD (once) or MM-DD (every year)");
    let (m, d) = s.trim().split_once('-').ok_or_else(bad)?;
    let (m, d) = (
        m.parse::<u32>().map_err(|_| bad())?,
        d.parse::<u32>().map_err(|_| bad())?,
    );
    NaiveDate::from_ymd_opt(2024, m, d).ok_or_else(bad)?;
    Ok((m, d))
}

/// Why a day is closed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Closed {
    /// A public holiday of the lead's country.
    Holiday { country: Country, name: String },
    /// A `[[blackouts]]` range.
    Blackout { name: String },
    /// An all-day event of a calendar (`.ics`) file.
    Calendar { file: String, name: String },
    /// Saturday or Sunday, for a `business_days_only` campaign.
    Weekend,
}

impl fmt::Display for Closed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Closed::Holiday { country, name } => write!(f, "holiday in {country}: {name}"),
            Closed::Blackout { name } => write!(f, "blackout `{name}`"),
            Closed::Calendar { file, name } => write!(f, "calendar {file}: {name}"),
            Closed::Weekend => f.write_str("weekend (business days only)"),
        }
    }
}

/// Days closed by a calendar file: date → (file, event summary).
pub type CalendarDays = BTreeMap<NaiveDate, (String, String)>;

/// A campaign's closed days. The default closes nothing.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct DayRules {
    /// Skip the public holidays of the lead's country.
    pub skip_holidays: bool,
    /// Skip Saturdays and Sundays whatever the send window says.
    pub business_days_only: bool,
    pub blackouts: Arc<Vec<Blackout>>,
    /// Days from `.ics` files (shared by every lead, whatever its country).
    pub calendar: Arc<CalendarDays>,
}

impl DayRules {
    /// True when no day can ever be closed (the cadence then skips the day walk).
    pub fn is_open(&self) -> bool {
        !self.skip_holidays
            && !self.business_days_only
            && self.blackouts.is_empty()
            && self.calendar.is_empty()
    }

    /// Why `day` (a local date of the lead) is closed, if it is: blackouts first, then the
    /// calendar files, the lead's holidays, and weekends.
    pub fn closed(&self, day: NaiveDate, country: Option<Country>) -> Option<Closed> {
        if let Some(b) = self.blackouts.iter().find(|b| b.covers(day)) {
            return Some(Closed::Blackout {
                name: b.name.clone(),
            });
        }
        if let Some((file, name)) = self.calendar.get(&day) {
            return Some(Closed::Calendar {
                file: file.clone(),
                name: name.clone(),
            });
        }
        if self.skip_holidays
            && let Some(country) = country
            && let Some(name) = holidays::holiday(country, day)
        {
            return Some(Closed::Holiday {
                country,
                name: name.to_string(),
            });
        }
        if self.business_days_only && matches!(day.weekday(), Weekday::Sat | Weekday::Sun) {
            return Some(Closed::Weekend);
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
    }

    fn rules() -> DayRules {
        DayRules {
            skip_holidays: true,
            ..Default::default()
        }
    }

    #[test]
    fn country_codes_are_two_letters_in_any_case() {
        assert_eq!(
            Country::parse("us").map(|c| c.to_string()),
            Some("US".into())
        );
        assert_eq!(
            Country::parse(" Jp ").map(|c| c.to_string()),
            Some("JP".into())
        );
        for bad in ["", "U", "USA", "1A", "é", "U S"] {
            assert_eq!(Country::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn a_place_takes_the_leads_country_before_its_zones() {
        let ny = chrono_tz::America::New_York;
        assert_eq!(Place::from(ny).country, Country::parse("US"));
        assert_eq!(
            Place::new(ny, Country::parse("ca")).country,
            Country::parse("CA")
        );
        assert_eq!(Place::from(Tz::UTC).country, None);
    }

    #[test]
    fn holidays_close_days_only_when_the_campaign_skips_them() {
        let us = Country::parse("US");
        let christmas = d("2026-12-25");
        assert_eq!(DayRules::default().closed(christmas, us), None);
        assert_eq!(
            rules().closed(christmas, us),
            Some(Closed::Holiday {
                country: us.unwrap(),
                name: "Christmas Day".into()
            })
        );
        // No country known (UTC lead without a `country`): no holiday applies.
        assert_eq!(rules().closed(christmas, None), None);
        assert!(DayRules::default().is_open() && !rules().is_open());
    }

    #[test]
    fn blackouts_cover_both_ends_and_come_first() {
        let r = DayRules {
            blackouts: Arc::new(vec![Blackout::parse("year end", "12-24", "01-02").unwrap()]),
            ..rules()
        };
        let us = Country::parse("US");
        for day in ["2026-12-24", "2026-12-25", "2027-01-01", "2027-01-02"] {
            assert_eq!(
                r.closed(d(day), us),
                Some(Closed::Blackout {
                    name: "year end".into()
                }),
                "{day}"
            );
        }
        assert_eq!(r.closed(d("2026-12-23"), us), None);
        assert_eq!(r.closed(d("2027-01-04"), us), None);
    }

    #[test]
    fn blackouts_read_once_or_yearly_ranges_and_refuse_bad_ones() {
        let once = Blackout::parse("move", "2026-08-03", "2026-08-07").unwrap();
        assert!(once.covers(d("2026-08-03")) && once.covers(d("2026-08-07")));
        assert!(!once.covers(d("2027-08-05")));
        let summer = Blackout::parse("summer", "08-01", "08-15").unwrap();
        assert!(summer.covers(d("2031-08-10")) && !summer.covers(d("2031-08-16")));
        let leap = Blackout::parse("leap", "02-28", "03-01").unwrap();
        assert!(leap.covers(d("2028-02-29")));
        let bad = [
            ("2026-12-24", "2026-12-01", "before"),
            ("2026-01-01", "2026-12-31", "365 days"),
            ("12-24", "2027-01-02", "not a date"),
            ("13-01", "13-02", "not a date"),
            ("02-30", "03-01", "not a date"),
            ("xmas", "01-02", "not a date"),
            ("03-01", "02-01", "338 days"),
        ];
        for (from, to, want) in bad {
            let e = Blackout::parse("x", from, to).unwrap_err();
            assert!(e.contains(want), "{from}..{to}: {e}");
        }
    }

    #[test]
    fn business_days_only_closes_weekends() {
        let r = DayRules {
            business_days_only: true,
            ..Default::default()
        };
        assert_eq!(r.closed(d("2026-06-06"), None), Some(Closed::Weekend));
        assert_eq!(r.closed(d("2026-06-07"), None), Some(Closed::Weekend));
        assert_eq!(r.closed(d("2026-06-08"), None), None);
    }

    #[test]
    fn calendar_file_days_apply_to_every_lead() {
        let mut days = CalendarDays::new();
        days.insert(
            d("2026-08-14"),
            ("office.ics".into(), "Summer party".into()),
        );
        let r = DayRules {
            calendar: Arc::new(days),
            ..Default::default()
        };
        assert_eq!(
            r.closed(d("2026-08-14"), Country::parse("FR"))
                .map(|c| c.to_string()),
            Some("calendar office.ics: Summer party".into())
        );
    }
}
