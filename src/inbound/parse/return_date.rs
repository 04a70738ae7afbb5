//! The return date an out-of-office reply states ("back on 12 March", "bis zum 12.03.",
//! "jusqu'au 12 mars", …), read after classification and only for auto-replies.

use std::ops::RangeInclusive;

use chrono::{Datelike, Days, NaiveDate};

use super::ParsedInbound;
use super::fold::fold;
use crate::domain::reply::Classification;

/// How many characters of an auto-reply are searched for a return date.
const DATE_SCAN_LIMIT: usize = 8 * 1024;

/// The date an auto-reply says its sender is back ([`return_date`] over its subject and new
/// text), counted from the day it was written: its Date header, else `received_on` (a dateless
/// auto-reply was surely written about when it arrived). None for anything but an auto-reply:
/// only those announce an absence, and a person's "back on Monday" postpones nothing.
pub fn stated_return_date(
    p: &ParsedInbound,
    classification: Classification,
    received_on: NaiveDate,
) -> Option<NaiveDate> {
    if classification != Classification::AutoReply {
        return None;
    }
    let reference = p.sent_on.unwrap_or(received_on);
    return_date(&format!("{}\n{}", p.subject, p.text), reference)
}

/// The return date an out-of-office text states, best effort: dates written as ISO
/// (`2027-03-12`), numerically (`12.03.2027`, `12/03/2027`, `3/12/27`, `12.03.`) or with
/// month names in English, German, French, Spanish or Dutch (`12 March 2027`,
/// `March 12th`, `12. März`, `le 12 mars`, `12 de marzo de 2027`, `12 maart`). A year left
/// out is the next one that puts the date on or after `reference` (the message's date);
/// `03/12` style dates that could be either way round take the reading nearest after it.
/// Of the dates found (ignoring ones before `reference` or more than 400 days after it),
/// those near "back", "until", "zurück", "bis", "retour", "jusqu'au", "hasta", "terug", "tot"
/// … are preferred, and the latest of them is the return date.
pub fn return_date(text: &str, reference: NaiveDate) -> Option<NaiveDate> {
    let head: String = text.chars().take(DATE_SCAN_LIMIT).collect();
    let chars: Vec<char> = fold(&head).chars().collect();
    let tokens = tokenize(&chars);
    let earliest = reference.checked_sub_days(Days::new(1))?;
    let latest = reference.checked_add_days(Days::new(400))?;
    let mut near_keyword: Vec<NaiveDate> = Vec::new();
    let mut elsewhere: Vec<NaiveDate> = Vec::new();
    // A keyword belongs to the nearest date after it, not to every date in reach.
    let mut previous_end = 0;
    let mut i = 0;
    while i < tokens.len() {
        let Some((date, len)) = date_at(&tokens, i, reference) else {
            i += 1;
            continue;
        };
        let start = tokens[i].start;
        let end = tokens[i + len - 1].end;
        let from = start.saturating_sub(45).max(previous_end);
        previous_end = end;
        if (earliest..=latest).contains(&date) {
            if keyword_near(&chars, from, start, end) {
                near_keyword.push(date);
            } else {
                elsewhere.push(date);
            }
        }
        i += len;
    }
    near_keyword
        .into_iter()
        .max()
        .or_else(|| elsewhere.into_iter().max())
}

#[derive(Debug, Clone, PartialEq)]
enum Kind {
    /// A number and how many digits it was written with.
    Num(u32, usize),
    Word(String),
    Punct(char),
}

#[derive(Debug, Clone)]
struct Token {
    kind: Kind,
    /// Char positions in the folded text.
    start: usize,
    end: usize,
}

fn tokenize(chars: &[char]) -> Vec<Token> {
    let mut tokens = Vec::new();
    let mut i = 0;
    while let Some(&c) = chars.get(i) {
        let start = i;
        if c.is_ascii_digit() {
            let mut value: u32 = 0;
            while let Some(d) = chars.get(i).and_then(|c| c.to_digit(10)) {
                value = value.saturating_mul(10).saturating_add(d);
                i += 1;
            }
            tokens.push(Token {
                kind: Kind::Num(value, i - start),
                start,
                end: i,
            });
        } else if c.is_alphabetic() {
            while chars.get(i).is_some_and(|c| c.is_alphabetic()) {
                i += 1;
            }
            let word: String = chars[start..i].iter().collect();
            tokens.push(Token {
                kind: Kind::Word(word),
                start,
                end: i,
            });
        } else {
            i += 1;
            if !c.is_whitespace() {
                tokens.push(Token {
                    kind: Kind::Punct(c),
                    start,
                    end: i,
                });
            }
        }
    }
    tokens
}

fn month_number(word: &str) -> Option<u32> {
    const MONTHS: [&[&str]; 12] = [
        &[
            "january", "jan", "januar", "janner", "janvier", "janv", "enero", "ene", "januari",
        ],
        &[
            "february", "feb", "februar", "fevrier", "fevr", "fev", "febrero", "februari",
        ],
        &[
            "march", "mar", "marz", "maerz", "mars", "marzo", "maart", "mrt",
        ],
        &["april", "apr", "avril", "avr", "abril", "abr"],
        &["may", "mai", "mayo", "mei"],
        &["june", "jun", "juni", "juin", "junio"],
        &["july", "jul", "juli", "juillet", "juil", "julio"],
        &["august", "aug", "aout", "agosto", "augustus"],
        &[
            "september",
            "sep",
            "sept",
            "septembre",
            "septiembre",
            "setiembre",
        ],
        &["october", "oct", "oktober", "okt", "octobre", "octubre"],
        &["november", "nov", "novembre", "noviembre"],
        &[
            "december",
            "dec",
            "dezember",
            "dez",
            "decembre",
            "diciembre",
            "dic",
        ],
    ];
    MONTHS
        .iter()
        .position(|names| names.contains(&word))
        .and_then(|i| u32::try_from(i + 1).ok())
}

const ORDINALS: &[&str] = &["st", "nd", "rd", "th", "er", "e", "eme", "o", "ro", "de"];

/// The tokens from one position on, read by offset.
#[derive(Clone, Copy)]
struct Cursor<'a> {
    tokens: &'a [Token],
    i: usize,
}

impl<'a> Cursor<'a> {
    fn kind(self, k: usize) -> Option<&'a Kind> {
        self.tokens.get(self.i + k).map(|t| &t.kind)
    }

    /// Whether tokens `k` and `k + 1` touch (nothing between them).
    fn adjacent(self, k: usize) -> bool {
        match (self.tokens.get(self.i + k), self.tokens.get(self.i + k + 1)) {
            (Some(a), Some(b)) => a.end == b.start,
            _ => false,
        }
    }

    /// Token `k` as a number written with a count of digits in `digits`.
    fn num(self, k: usize, digits: RangeInclusive<usize>) -> Option<u32> {
        match self.kind(k) {
            Some(Kind::Num(v, d)) if digits.contains(d) => Some(*v),
            _ => None,
        }
    }

    fn punct(self, k: usize) -> Option<char> {
        match self.kind(k) {
            Some(Kind::Punct(c)) => Some(*c),
            _ => None,
        }
    }

    fn word(self, k: usize) -> Option<&'a str> {
        match self.kind(k) {
            Some(Kind::Word(w)) => Some(w.as_str()),
            _ => None,
        }
    }
}

/// What one way of writing a date makes of the tokens at a position: None when they are not
/// written that way (the next way is tried), else the reading, which decides — an impossible
/// date (`2027-02-30`) is no date, not a cue to try another way.
type Reading = Option<Option<(NaiveDate, usize)>>;

/// A date starting at token `i`, and how many tokens it spans.
fn date_at(tokens: &[Token], i: usize, reference: NaiveDate) -> Option<(NaiveDate, usize)> {
    let at = Cursor { tokens, i };
    iso_date(at)
        .or_else(|| numeric_date(at, reference))
        .or_else(|| day_month_date(at, reference))
        .or_else(|| month_day_date(at, reference))
        .flatten()
}

/// `2027-03-12`
fn iso_date(at: Cursor<'_>) -> Reading {
    if let (Some(y), Some(sep)) = (at.num(0, 4..=4), at.punct(1))
        && matches!(sep, '-' | '/' | '.')
        && (0..4).all(|k| at.adjacent(k))
        && at.punct(3) == Some(sep)
        && let (Some(m), Some(d)) = (at.num(2, 1..=2), at.num(4, 1..=2))
    {
        return Some(ymd(y, m, d).map(|date| (date, 5)));
    }
    None
}

/// `12.03.2027`, `12/03/2027`, `3/12/27`, and German `12.03.` without a year.
fn numeric_date(at: Cursor<'_>, reference: NaiveDate) -> Reading {
    let (Some(a), Some(sep)) = (at.num(0, 1..=2), at.punct(1)) else {
        return None;
    };
    let b = at.num(2, 1..=2)?;
    if !(matches!(sep, '.' | '/' | '-') && at.adjacent(0) && at.adjacent(1)) {
        return None;
    }
    let continues = |k: usize| {
        at.adjacent(k - 1)
            && at.punct(k) == Some(sep)
            && at.adjacent(k)
            && at.num(k + 1, 1..=9).is_some()
    };
    if at.punct(3) == Some(sep)
        && at.adjacent(2)
        && at.adjacent(3)
        && let Some(y) = at
            .num(4, 2..=2)
            .map(|y| y + 2000)
            .or_else(|| at.num(4, 4..=4))
        && !continues(5)
    {
        let date = match i32::try_from(y) {
            Ok(y) if sep == '.' => NaiveDate::from_ymd_opt(y, b, a),
            Ok(y) => either_way_round(a, b, y, reference),
            Err(_) => None,
        };
        return Some(date.map(|date| (date, 5)));
    }
    // 12.03. (German, year left out)
    if sep == '.'
        && at.punct(3) == Some('.')
        && at.adjacent(2)
        && !(at.adjacent(3) && at.num(4, 1..=9).is_some())
    {
        return Some(with_year(b, a, reference).map(|date| (date, 4)));
    }
    None
}

/// `12 March 2027`, `12th of March`, `12. März`, `1er mars`, `12 de marzo de 2027`.
fn day_month_date(at: Cursor<'_>, reference: NaiveDate) -> Reading {
    let d = at.num(0, 1..=2)?;
    let mut k = 1;
    if at.adjacent(0)
        && at
            .word(k)
            .is_some_and(|w| ORDINALS.contains(&w) && w != "de")
    {
        k += 1;
    }
    if at.punct(k) == Some('.') {
        k += 1;
    }
    if at.word(k).is_some_and(|w| w == "de" || w == "of") {
        k += 1;
    }
    let m = at.word(k).and_then(month_number)?;
    k += 1;
    if at.punct(k) == Some('.') {
        k += 1;
    }
    let year_at = if at.word(k) == Some("de") || at.punct(k) == Some(',') {
        k + 1
    } else {
        k
    };
    let date = match at.num(year_at, 4..=4) {
        Some(y) => ymd(y, m, d).map(|date| (date, year_at + 1)),
        None => with_year(m, d, reference).map(|date| (date, k)),
    };
    // Unlike the other ways, an impossible date here lets the next way try.
    date.map(Some)
}

/// `March 12, 2027`, `Mar. 12th`, `March 12`.
fn month_day_date(at: Cursor<'_>, reference: NaiveDate) -> Reading {
    let m = at.word(0).and_then(month_number)?;
    let mut k = 1;
    if at.punct(k) == Some('.') {
        k += 1;
    }
    let d = at.num(k, 1..=2)?;
    // `March 10:30`, `Mar 12/2`: a time or a number, not a day.
    if at.adjacent(k)
        && matches!(at.punct(k + 1), Some(':' | '/' | '.' | '-'))
        && at.num(k + 2, 1..=4).is_some()
    {
        return None;
    }
    let day_at = k;
    k += 1;
    if at.adjacent(day_at) && at.word(k).is_some_and(|w| ORDINALS.contains(&w)) {
        k += 1;
    }
    let year_at = if at.punct(k) == Some(',') { k + 1 } else { k };
    Some(match at.num(year_at, 4..=4) {
        Some(y) => ymd(y, m, d).map(|date| (date, year_at + 1)),
        None => with_year(m, d, reference).map(|date| (date, k)),
    })
}

/// The date of a written year (at most four digits, so it always fits), month and day.
fn ymd(year: u32, month: u32, day: u32) -> Option<NaiveDate> {
    NaiveDate::from_ymd_opt(i32::try_from(year).ok()?, month, day)
}

/// A month and day without a year: the first such date not more than a week before
/// `reference`.
fn with_year(month: u32, day: u32, reference: NaiveDate) -> Option<NaiveDate> {
    let floor = reference.checked_sub_days(Days::new(7))?;
    (0..=4)
        .filter_map(|offset| NaiveDate::from_ymd_opt(reference.year() + offset, month, day))
        .find(|date| *date >= floor)
}

/// `a/b/y` where either could be the day: the valid reading nearest on or after `reference`,
/// else the day-first one.
fn either_way_round(a: u32, b: u32, year: i32, reference: NaiveDate) -> Option<NaiveDate> {
    let day_first = NaiveDate::from_ymd_opt(year, b, a);
    let month_first = NaiveDate::from_ymd_opt(year, a, b);
    match (day_first, month_first) {
        (Some(x), Some(y)) => {
            let ahead = |d: NaiveDate| (d >= reference).then(|| d - reference);
            match (ahead(x), ahead(y)) {
                (Some(dx), Some(dy)) if dy < dx => Some(y),
                (None, Some(_)) => Some(y),
                _ => Some(x),
            }
        }
        (x, y) => x.or(y),
    }
}

/// Whether words that announce a return or an end of absence stand just before the date
/// ("back on", "until", "bis zum", "jusqu'au", "hasta el", "tot en met"), or "again" words
/// just after it ("ab 12.03. wieder im Büro").
fn keyword_near(chars: &[char], from: usize, start: usize, end: usize) -> bool {
    const BEFORE: &[&str] = &[
        "back",
        "return",
        "until",
        "till",
        "zuruck",
        "wieder",
        "bis",
        "retour",
        "jusqu",
        "des le",
        "a partir du",
        "regres",
        "vuelta",
        "volver",
        "hasta",
        "a partir del",
        "terug",
        "weer",
        "tot en met",
        "t/m",
        "tot ",
        "vanaf",
        "ab dem",
        "ab ",
        "erreichbar",
        "disponible",
        "bereikbaar",
        "available",
        "reachable",
    ];
    const AFTER: &[&str] = &[
        "wieder",
        "back",
        "zuruck",
        "de retour",
        "terug",
        "weer",
        "de vuelta",
        "again",
    ];
    let before: String = chars[from.min(start)..start].iter().collect();
    let after: String = chars[end.min(chars.len())..(end + 30).min(chars.len())]
        .iter()
        .collect();
    BEFORE.iter().any(|k| before.contains(k)) || AFTER.iter().any(|k| after.contains(k))
}
#[cfg(test)]
mod tests {
    use super::*;

    fn date(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
    }

    #[test]
    fn return_dates_are_read_in_every_supported_form() {
        let reference = date("2027-03-01");
        let cases: &[(&str, &str)] = &[
            ("I will be back on 12 March 2027.", "2027-03-12"),
            ("I will return on March 12.", "2027-03-12"),
            ("I'm out of the office until March 12th, 2027", "2027-03-12"),
            ("Back on Mar. 12", "2027-03-12"),
            ("returning 2027-03-12", "2027-03-12"),
            ("Ich bin ab dem 12.03.2027 wieder im Büro.", "2027-03-12"),
            ("Ich bin zurück am 12.3.27.", "2027-03-12"),
            ("Ich bin bis zum 12. März nicht erreichbar.", "2027-03-12"),
            ("Ab 12.03. bin ich wieder da.", "2027-03-12"),
            ("Je serai de retour le 12/03/2027.", "2027-03-12"),
            ("Je suis absente jusqu'au 12 mars inclus.", "2027-03-12"),
            ("De retour le 1er avril.", "2027-04-01"),
            ("Estaré de vuelta el 12 de marzo de 2027.", "2027-03-12"),
            ("Regreso el 12/03/2027.", "2027-03-12"),
            ("Ik ben terug op 12 maart 2027.", "2027-03-12"),
            ("Afwezig t/m 12-03-2027.", "2027-03-12"),
            ("I am away from 1 March to 12 March.", "2027-03-12"),
            (
                "Back on 3/12/2027 (US style, nearest reading).",
                "2027-03-12",
            ),
            ("Back on 25/03/2027 (day first, unambiguous).", "2027-03-25"),
            (
                "Back on 03/25/2027 (month first, unambiguous).",
                "2027-03-25",
            ),
            (
                "I am out from 2 March, back 12 March; call 555-0100 or see v1.2.3.",
                "2027-03-12",
            ),
        ];
        for (text, expected) in cases {
            assert_eq!(return_date(text, reference), Some(date(expected)), "{text}");
        }
    }

    #[test]
    fn return_dates_roll_into_next_year_and_ignore_noise() {
        let december = date("2026-12-20");
        assert_eq!(
            return_date("Back on 5 January.", december),
            Some(date("2027-01-05"))
        );
        assert_eq!(
            return_date("Back on January 5th", december),
            Some(date("2027-01-05"))
        );
        let reference = date("2027-03-01");
        let none: &[&str] = &[
            "I am out of the office with limited access to email.",
            "Back soon, call +1 555 0100.",
            "Version 10.2.3 released; meeting at 10:30.",
            "Back on 12 March 2019.",
            "Back on 2031-01-01.",
            "",
        ];
        for text in none {
            assert_eq!(return_date(text, reference), None, "{text}");
        }
    }

    #[test]
    fn keyword_dates_win_over_other_dates() {
        let reference = date("2027-03-01");
        let text = "Out of office until 12 March. Our conference on 20 March 2027 is open.";
        assert_eq!(return_date(text, reference), Some(date("2027-03-12")));
    }
}
