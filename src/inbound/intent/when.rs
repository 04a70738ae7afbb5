//! The moment a "later" reply names — "in Q3", "after the summer", "in September",
//! "next year", "in 3 months" (and the same in German, French, Spanish, Italian, Dutch and
//! Portuguese) — as a date counted from the day the reply came.
//!
//! Pure: folded text in (see `parse::fold`), a [`When`] out. What each phrase means:
//!
//! | phrase | date |
//! |---|---|
//! | month ("in September", "im September", "en septembre", "a settembre") | the 1st of the next such month (the 15th after "mid") |
//! | quarter ("in Q3", "im dritten Quartal", "au troisième trimestre") | the quarter's first day (a month on, inside the quarter it is) |
//! | "next month" / "next quarter" / "next year" | the 1st of the next month / quarter; 15 January |
//! | "in 3 months", "in zwei Wochen", "dans un an", "tra 6 mesi" | that long after the reply |
//! | "a few months", "ein paar Monaten", "quelques mois" | 3 months |
//! | season ("in spring", "after the summer", "nach dem Sommer", "après l'été") | its start (the next season's start after "after") |
//! | "after Christmas", "in the new year" | 7 January |

use chrono::{Datelike, Days, Months, NaiveDate};

/// A named moment, as a date, with the words that named it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct When {
    pub date: NaiveDate,
    pub phrase: String,
}

impl When {
    /// Whether it is far enough away to mean "not now" (three weeks or more after `from`).
    pub fn is_far_from(&self, from: NaiveDate) -> bool {
        from.checked_add_days(Days::new(21))
            .is_some_and(|soon| self.date >= soon)
    }
}

/// Month names (folded) → month number.
const MONTHS: &[(&str, u32)] = &[
    ("january", 1),
    ("jan", 1),
    ("januar", 1),
    ("janvier", 1),
    ("enero", 1),
    ("gennaio", 1),
    ("januari", 1),
    ("janeiro", 1),
    ("february", 2),
    ("feb", 2),
    ("februar", 2),
    ("fevrier", 2),
    ("febrero", 2),
    ("febbraio", 2),
    ("februari", 2),
    ("fevereiro", 2),
    ("march", 3),
    ("marz", 3),
    ("mars", 3),
    ("marzo", 3),
    ("maart", 3),
    ("marco", 3),
    ("april", 4),
    ("avril", 4),
    ("abril", 4),
    ("aprile", 4),
    ("may", 5),
    ("mai", 5),
    ("mayo", 5),
    ("maggio", 5),
    ("mei", 5),
    ("maio", 5),
    ("june", 6),
    ("juni", 6),
    ("juin", 6),
    ("junio", 6),
    ("giugno", 6),
    ("junho", 6),
    ("july", 7),
    ("juli", 7),
    ("juillet", 7),
    ("julio", 7),
    ("luglio", 7),
    ("julho", 7),
    ("august", 8),
    ("aug", 8),
    ("aout", 8),
    ("agosto", 8),
    ("augustus", 8),
    ("september", 9),
    ("sept", 9),
    ("sep", 9),
    ("septembre", 9),
    ("septiembre", 9),
    ("settembre", 9),
    ("setembro", 9),
    ("october", 10),
    ("oct", 10),
    ("oktober", 10),
    ("octobre", 10),
    ("octubre", 10),
    ("ottobre", 10),
    ("outubro", 10),
    ("november", 11),
    ("nov", 11),
    ("novembre", 11),
    ("noviembre", 11),
    ("novembro", 11),
    ("december", 12),
    ("dec", 12),
    ("dezember", 12),
    ("decembre", 12),
    ("diciembre", 12),
    ("dicembre", 12),
    ("dezembro", 12),
];

/// Words that put a month or season in the future ("in", "im", "en", "a", "ab", "after" …):
/// a month name counts only after one of them (so "may" the verb and "mai" the Italian
/// "never" do not).
const BEFORE_MONTH: &[&str] = &[
    "in",
    "after",
    "until",
    "till",
    "by",
    "from",
    "around",
    "early",
    "mid",
    "late",
    "end",
    "beginning",
    "start",
    "of",
    "im",
    "ab",
    "nach",
    "bis",
    "anfang",
    "ende",
    "mitte",
    "erst",
    "en",
    "apres",
    "des",
    "debut",
    "fin",
    "courant",
    "mi",
    "de",
    "hasta",
    "desde",
    "finales",
    "principios",
    "mediados",
    "a",
    "ad",
    "dopo",
    "da",
    "fino",
    "entro",
    "inizio",
    "fine",
    "meta",
    "na",
    "vanaf",
    "tot",
    "begin",
    "eind",
    "half",
    "em",
    "depois",
    "ate",
    "inicio",
    "final",
    "meados",
    "partir",
];

/// Words that mean "after" (for seasons and holidays).
const AFTER: &[&str] = &["after", "nach", "apres", "despues", "dopo", "na", "depois"];

/// Seasons: the words (folded tokens) and the month each starts in.
const SEASONS: &[(&[&str], u32)] = &[
    (
        &[
            "spring",
            "fruhling",
            "fruhjahr",
            "printemps",
            "primavera",
            "lente",
        ],
        3,
    ),
    (
        &[
            "summer",
            "sommer",
            "sommerpause",
            "l'ete",
            "verano",
            "l'estate",
            "zomer",
            "zomervakantie",
            "verao",
            "summer break",
            "sommerferien",
        ],
        6,
    ),
    (
        &[
            "autumn",
            "herbst",
            "l'automne",
            "automne",
            "otono",
            "l'autunno",
            "autunno",
            "herfst",
            "outono",
        ],
        9,
    ),
    (
        &[
            "winter",
            "l'hiver",
            "hiver",
            "invierno",
            "l'inverno",
            "inverno",
        ],
        12,
    ),
];

/// Holidays after which "the new year" starts.
const NEW_YEAR: &[&[&str]] = &[
    &["christmas"],
    &["new", "year"],
    &["holidays"],
    &["weihnachten"],
    &["neujahr"],
    &["jahreswechsel"],
    &["noel"],
    &["nouvel", "an"],
    &["fetes"],
    &["navidad"],
    &["natale"],
    &["feste"],
    &["kerst"],
    &["natal"],
    &["the", "new", "year"],
];

/// "next year" / "next month" / "next quarter" / "next week" in every language.
const NEXT: &[(&[&str], Unit)] = &[
    (&["next", "year"], Unit::Year),
    (&["nachstes", "jahr"], Unit::Year),
    (&["nachsten", "jahr"], Unit::Year),
    (&["kommendes", "jahr"], Unit::Year),
    (&["l'annee", "prochaine"], Unit::Year),
    (&["l'an", "prochain"], Unit::Year),
    (&["ano", "que", "viene"], Unit::Year),
    (&["proximo", "ano"], Unit::Year),
    (&["l'anno", "prossimo"], Unit::Year),
    (&["prossimo", "anno"], Unit::Year),
    (&["volgend", "jaar"], Unit::Year),
    (&["volgende", "jaar"], Unit::Year),
    (&["ano", "que", "vem"], Unit::Year),
    (&["next", "month"], Unit::Month),
    (&["nachsten", "monat"], Unit::Month),
    (&["mois", "prochain"], Unit::Month),
    (&["proximo", "mes"], Unit::Month),
    (&["mes", "que", "viene"], Unit::Month),
    (&["prossimo", "mese"], Unit::Month),
    (&["mese", "prossimo"], Unit::Month),
    (&["volgende", "maand"], Unit::Month),
    (&["mes", "que", "vem"], Unit::Month),
    (&["next", "quarter"], Unit::Quarter),
    (&["nachsten", "quartal"], Unit::Quarter),
    (&["trimestre", "prochain"], Unit::Quarter),
    (&["proximo", "trimestre"], Unit::Quarter),
    (&["prossimo", "trimestre"], Unit::Quarter),
    (&["volgend", "kwartaal"], Unit::Quarter),
    (&["volgende", "kwartaal"], Unit::Quarter),
    (&["next", "week"], Unit::Week),
    (&["nachste", "woche"], Unit::Week),
    (&["nachsten", "woche"], Unit::Week),
    (&["semaine", "prochaine"], Unit::Week),
    (&["proxima", "semana"], Unit::Week),
    (&["prossima", "settimana"], Unit::Week),
    (&["volgende", "week"], Unit::Week),
    (&["semana", "que", "vem"], Unit::Week),
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Unit {
    Day,
    Week,
    Month,
    Quarter,
    Year,
}

/// Unit words for "in N …".
const UNITS: &[(&str, Unit)] = &[
    ("day", Unit::Day),
    ("days", Unit::Day),
    ("tag", Unit::Day),
    ("tagen", Unit::Day),
    ("jour", Unit::Day),
    ("jours", Unit::Day),
    ("dia", Unit::Day),
    ("dias", Unit::Day),
    ("giorno", Unit::Day),
    ("giorni", Unit::Day),
    ("dag", Unit::Day),
    ("dagen", Unit::Day),
    ("week", Unit::Week),
    ("weeks", Unit::Week),
    ("woche", Unit::Week),
    ("wochen", Unit::Week),
    ("semaine", Unit::Week),
    ("semaines", Unit::Week),
    ("semana", Unit::Week),
    ("semanas", Unit::Week),
    ("settimana", Unit::Week),
    ("settimane", Unit::Week),
    ("weken", Unit::Week),
    ("month", Unit::Month),
    ("months", Unit::Month),
    ("monat", Unit::Month),
    ("monate", Unit::Month),
    ("monaten", Unit::Month),
    ("mois", Unit::Month),
    ("mes", Unit::Month),
    ("meses", Unit::Month),
    ("mese", Unit::Month),
    ("mesi", Unit::Month),
    ("maand", Unit::Month),
    ("maanden", Unit::Month),
    ("quarter", Unit::Quarter),
    ("quarters", Unit::Quarter),
    ("year", Unit::Year),
    ("years", Unit::Year),
    ("jahr", Unit::Year),
    ("jahren", Unit::Year),
    ("an", Unit::Year),
    ("ans", Unit::Year),
    ("annee", Unit::Year),
    ("ano", Unit::Year),
    ("anos", Unit::Year),
    ("anno", Unit::Year),
    ("anni", Unit::Year),
    ("jaar", Unit::Year),
];

/// Words before a duration ("in", "dans", "tra", "over", "daqui a" …).
const IN_WORDS: &[&str] = &[
    "in", "within", "after", "for", "another", "about", "it", "nach", "dans", "apres", "en", "de",
    "tra", "fra", "dopo", "over", "na", "em", "a", "wait",
];

/// Number words (and "a few" / "ein paar" …, read as 3).
const NUMBERS: &[(&str, u32)] = &[
    ("a", 1),
    ("one", 1),
    ("two", 2),
    ("three", 3),
    ("four", 4),
    ("five", 5),
    ("six", 6),
    ("nine", 9),
    ("twelve", 12),
    ("few", 3),
    ("couple", 2),
    ("ein", 1),
    ("einem", 1),
    ("einen", 1),
    ("zwei", 2),
    ("drei", 3),
    ("vier", 4),
    ("sechs", 6),
    ("zwolf", 12),
    ("paar", 3),
    ("un", 1),
    ("une", 1),
    ("deux", 2),
    ("trois", 3),
    ("quatre", 4),
    ("douze", 12),
    ("quelques", 3),
    ("uno", 1),
    ("dos", 2),
    ("tres", 3),
    ("cuatro", 4),
    ("seis", 6),
    ("doce", 12),
    ("unos", 3),
    ("algunos", 3),
    ("due", 2),
    ("tre", 3),
    ("quattro", 4),
    ("sei", 6),
    ("dodici", 12),
    ("qualche", 3),
    ("een", 1),
    ("twee", 2),
    ("drie", 3),
    ("zes", 6),
    ("twaalf", 12),
    ("um", 1),
    ("uma", 1),
    ("dois", 2),
    ("quatro", 4),
    ("doze", 12),
    ("alguns", 3),
];

/// Ordinals for quarters ("third quarter", "dritten Quartal", "troisième trimestre").
const ORDINALS: &[(&str, u32)] = &[
    ("first", 1),
    ("second", 2),
    ("third", 3),
    ("fourth", 4),
    ("1st", 1),
    ("2nd", 2),
    ("3rd", 3),
    ("4th", 4),
    ("ersten", 1),
    ("erste", 1),
    ("zweiten", 2),
    ("dritten", 3),
    ("vierten", 4),
    ("premier", 1),
    ("deuxieme", 2),
    ("troisieme", 3),
    ("quatrieme", 4),
    ("1er", 1),
    ("2e", 2),
    ("3e", 3),
    ("4e", 4),
    ("primer", 1),
    ("segundo", 2),
    ("tercer", 3),
    ("cuarto", 4),
    ("primo", 1),
    ("secondo", 2),
    ("terzo", 3),
    ("quarto", 4),
    ("eerste", 1),
    ("tweede", 2),
    ("derde", 3),
    ("vierde", 4),
    ("primeiro", 1),
    ("terceiro", 3),
];

const QUARTER_WORDS: &[&str] = &["quarter", "quartal", "trimestre", "kwartaal"];

/// The first moment `folded` names, counted from `received` (the day the reply came).
pub fn named_moment(folded: &str, received: NaiveDate) -> Option<When> {
    let tokens = tokens(folded);
    (0..tokens.len()).find_map(|i| moment_at(&tokens, i, received))
}

/// Words of folded text (letters, digits, apostrophes inside a word).
fn tokens(folded: &str) -> Vec<&str> {
    folded
        .split(|c: char| !(c.is_alphanumeric() || c == '\''))
        .map(|t| t.trim_matches('\''))
        .filter(|t| !t.is_empty())
        .collect()
}

fn starts_with(tokens: &[&str], i: usize, words: &[&str]) -> bool {
    tokens.get(i..i + words.len()) == Some(words)
}

/// A moment starting at token `i`.
fn moment_at(t: &[&str], i: usize, received: NaiveDate) -> Option<When> {
    let prev = i.checked_sub(1).map(|p| t[p]);
    let when = |date: NaiveDate, len: usize| {
        let from = if prev.is_some_and(|p| BEFORE_MONTH.contains(&p) || AFTER.contains(&p)) {
            i - 1
        } else {
            i
        };
        Some(When {
            date,
            phrase: t[from..(i + len).min(t.len())].join(" "),
        })
    };
    for (words, unit) in NEXT {
        if starts_with(t, i, words) {
            return when(next_unit(*unit, received)?, words.len());
        }
    }
    if let Some(&(_, month)) = MONTHS.iter().find(|(name, _)| *name == t[i])
        && prev.is_some_and(|p| BEFORE_MONTH.contains(&p))
    {
        let day = if matches!(
            prev,
            Some("mid" | "mitte" | "mi" | "mediados" | "meta" | "half" | "meados")
        ) {
            15
        } else {
            1
        };
        let date = next_month_day(received, month, day)?;
        return when(in_next_year_if_said(t, i + 1, date, received)?, 1);
    }
    if let Some((q, len)) = quarter_at(t, i) {
        let date = quarter_start(received, q)?;
        return when(in_next_year_if_said(t, i + len, date, received)?, len);
    }
    if let Some((date, len)) = in_n_units(t, i, received) {
        return when(date, len);
    }
    if let Some(date) = season_at(t, i, received) {
        return when(date, 1);
    }
    if prev.is_some_and(|p| AFTER.contains(&p)) {
        for words in NEW_YEAR {
            if starts_with(t, i, words) {
                return when(new_year(received)?, words.len());
            }
        }
    }
    if starts_with(t, i, &["the", "new", "year"]) && prev == Some("in") {
        return when(new_year(received)?, 3);
    }
    None
}

/// `date` moved to the year after `received` when "next year" follows at `at` ("Q1 next
/// year", "im März nächsten Jahres").
fn in_next_year_if_said(
    t: &[&str],
    at: usize,
    date: NaiveDate,
    received: NaiveDate,
) -> Option<NaiveDate> {
    let said = NEXT
        .iter()
        .any(|(words, unit)| *unit == Unit::Year && starts_with(t, at, words))
        || starts_with(t, at, &["nachsten", "jahres"]);
    if said && date.year() == received.year() {
        date.with_year(received.year() + 1)
    } else {
        Some(date)
    }
}

/// "q3" / "3rd quarter" / "dritten Quartal" / "T3" at `i`: (quarter, tokens used).
fn quarter_at(t: &[&str], i: usize) -> Option<(u32, usize)> {
    let word = t[i];
    if let Some(n) = word
        .strip_prefix('q')
        .or_else(|| word.strip_prefix('t'))
        .and_then(|n| n.parse::<u32>().ok())
        .filter(|n| (1..=4).contains(n))
    {
        // "T3" is French/Spanish for Q3; a bare "t1" elsewhere is rare enough.
        return Some((n, 1));
    }
    let ordinal = ORDINALS
        .iter()
        .find(|(w, _)| *w == word)
        .map(|(_, n)| *n)
        .or_else(|| word.parse::<u32>().ok().filter(|n| (1..=4).contains(n)))?;
    let next = t.get(i + 1)?;
    QUARTER_WORDS.contains(next).then_some((ordinal, 2))
}

/// "in 3 months", "in zwei Wochen", "dans un an", "tra 6 mesi", "over 2 maanden",
/// "in a few months", "in ein paar Monaten" at `i` (the number).
fn in_n_units(t: &[&str], i: usize, received: NaiveDate) -> Option<(NaiveDate, usize)> {
    let word = t[i];
    if !i.checked_sub(1).is_some_and(|p| IN_WORDS.contains(&t[p])) {
        return None;
    }
    let n = word
        .parse::<u32>()
        .ok()
        .filter(|n| (1..=36).contains(n))
        .or_else(|| NUMBERS.iter().find(|(w, _)| *w == word).map(|(_, n)| *n))?;
    // "a few months", "a couple of months", "ein paar Monaten": skip the filler.
    let mut j = i + 1;
    let mut n = n;
    while let Some(&w) = t.get(j) {
        match w {
            "few" | "paar" | "couple" => {
                n = if w == "couple" { 2 } else { 3 };
                j += 1;
            }
            "of" => j += 1,
            _ => break,
        }
    }
    let unit = UNITS.iter().find(|(w, _)| Some(w) == t.get(j))?.1;
    // "an" is French for a year only after a number: "dans un an", never English "an".
    let date = add(received, unit, n)?;
    Some((date, j + 1 - i))
}

/// A season at `i` ("spring", "l'été", "nach dem Sommer"): its start, or the next season's
/// start when an "after" word comes shortly before.
fn season_at(t: &[&str], i: usize, received: NaiveDate) -> Option<NaiveDate> {
    let word = t[i];
    // French "été" is also "been": only "cet été", "l'été" and after "après".
    let ete = word == "ete" && i > 0 && matches!(t[i - 1], "cet" | "apres" | "l'");
    let fall = word == "fall" && i > 0 && matches!(t[i - 1], "the" | "in" | "this" | "next");
    let month = if ete {
        6
    } else if fall {
        9
    } else {
        SEASONS
            .iter()
            .find(|(words, _)| words.contains(&word))
            .map(|(_, m)| *m)?
    };
    let after = (i.saturating_sub(3)..i).any(|k| AFTER.contains(&t[k]));
    let month = if after { month % 12 + 3 } else { month };
    // Inside the season already: "in spring" said in April is soon, a month on.
    let inside = (0..3).any(|k| (month - 1 + k) % 12 + 1 == received.month());
    if inside && !after {
        return received.checked_add_months(Months::new(1));
    }
    next_month_day(received, month, 1)
}

/// The next `day` of `month` after `received` (this year if still ahead, else next year).
fn next_month_day(received: NaiveDate, month: u32, day: u32) -> Option<NaiveDate> {
    let this_year = NaiveDate::from_ymd_opt(received.year(), month, day)?;
    if this_year > received {
        Some(this_year)
    } else {
        NaiveDate::from_ymd_opt(received.year() + 1, month, day)
    }
}

/// The first day of quarter `q` after `received`. Said in the first month of that very
/// quarter it means later in it (a month on); later in the quarter, next year's.
fn quarter_start(received: NaiveDate, q: u32) -> Option<NaiveDate> {
    let current = (received.month() - 1) / 3 + 1;
    if q == current && (received.month() - 1).is_multiple_of(3) {
        return received.checked_add_months(Months::new(1));
    }
    next_month_day(received, (q - 1) * 3 + 1, 1)
}

fn next_unit(unit: Unit, received: NaiveDate) -> Option<NaiveDate> {
    match unit {
        Unit::Year => NaiveDate::from_ymd_opt(received.year() + 1, 1, 15),
        Unit::Month => received.with_day(1)?.checked_add_months(Months::new(1)),
        Unit::Quarter => {
            let next_q_month = ((received.month() - 1) / 3 + 1) * 3 + 1;
            if next_q_month > 12 {
                NaiveDate::from_ymd_opt(received.year() + 1, 1, 1)
            } else {
                NaiveDate::from_ymd_opt(received.year(), next_q_month, 1)
            }
        }
        Unit::Week | Unit::Day => received.checked_add_days(Days::new(7)),
    }
}

fn add(received: NaiveDate, unit: Unit, n: u32) -> Option<NaiveDate> {
    match unit {
        Unit::Day => received.checked_add_days(Days::new(n.into())),
        Unit::Week => received.checked_add_days(Days::new(u64::from(n) * 7)),
        Unit::Month => received.checked_add_months(Months::new(n)),
        Unit::Quarter => received.checked_add_months(Months::new(n * 3)),
        Unit::Year => received.checked_add_months(Months::new(n * 12)),
    }
}

/// 7 January after `received` (after the holidays).
fn new_year(received: NaiveDate) -> Option<NaiveDate> {
    next_month_day(received, 1, 7)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::inbound::parse::fold::fold;

    fn day(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
    }

    /// Received on 10 March 2027.
    fn at(text: &str) -> Option<String> {
        named_moment(&fold(text), day("2027-03-10")).map(|w| w.date.to_string())
    }

    #[test]
    fn months_in_every_language_mean_their_next_first_day() {
        for text in [
            "Try me again in September",
            "Melden Sie sich im September wieder",
            "Revenez vers moi en septembre.",
            "Escríbame en septiembre",
            "Risentiamoci a settembre",
            "Neem in september contact op",
            "Fale comigo em setembro",
        ] {
            assert_eq!(at(text).as_deref(), Some("2027-09-01"), "{text}");
        }
        // A month already passed this year is next year's.
        assert_eq!(at("in February").as_deref(), Some("2028-02-01"));
        assert_eq!(at("mid June").as_deref(), Some("2027-06-15"));
    }

    #[test]
    fn may_the_verb_and_mai_the_word_for_never_are_not_months() {
        assert_eq!(at("We may be interested"), None);
        assert_eq!(at("non lo faremo mai"), None);
        assert_eq!(at("ab Mai gerne").as_deref(), Some("2027-05-01"));
    }

    #[test]
    fn quarters_and_seasons() {
        assert_eq!(at("in Q3").as_deref(), Some("2027-07-01"));
        assert_eq!(at("im dritten Quartal").as_deref(), Some("2027-07-01"));
        assert_eq!(at("au troisième trimestre").as_deref(), Some("2027-07-01"));
        assert_eq!(at("no terceiro trimestre").as_deref(), Some("2027-07-01"));
        assert_eq!(at("Q1 next year please").as_deref(), Some("2028-01-01"));
        assert_eq!(
            at("in Q1").as_deref(),
            Some("2028-01-01"),
            "late in Q1: next year's"
        );
        let jan = named_moment("in q1", day("2027-01-05")).map(|w| w.date.to_string());
        assert_eq!(
            jan.as_deref(),
            Some("2027-02-05"),
            "early in Q1: a month on"
        );
        assert_eq!(at("after the summer").as_deref(), Some("2027-09-01"));
        assert_eq!(at("nach dem Sommer").as_deref(), Some("2027-09-01"));
        assert_eq!(at("après l'été").as_deref(), Some("2027-09-01"));
        assert_eq!(at("después del verano").as_deref(), Some("2027-09-01"));
        assert_eq!(at("dopo l'estate").as_deref(), Some("2027-09-01"));
        assert_eq!(at("na de zomer").as_deref(), Some("2027-09-01"));
        assert_eq!(at("depois do verão").as_deref(), Some("2027-09-01"));
        assert_eq!(at("in the autumn").as_deref(), Some("2027-09-01"));
        assert_eq!(at("this fall").as_deref(), Some("2027-09-01"));
        assert_eq!(at("Cela a été utile"), None, "été the participle");
    }

    #[test]
    fn next_year_and_durations() {
        for text in [
            "next year",
            "nächstes Jahr",
            "l'année prochaine",
            "el año que viene",
            "l'anno prossimo",
            "volgend jaar",
            "no próximo ano",
        ] {
            assert_eq!(at(text).as_deref(), Some("2028-01-15"), "{text}");
        }
        assert_eq!(at("in 3 months").as_deref(), Some("2027-06-10"));
        assert_eq!(at("in drei Monaten").as_deref(), Some("2027-06-10"));
        assert_eq!(at("dans 6 mois").as_deref(), Some("2027-09-10"));
        assert_eq!(at("dentro de dos meses").as_deref(), Some("2027-05-10"));
        assert_eq!(at("tra sei mesi").as_deref(), Some("2027-09-10"));
        assert_eq!(at("over twee maanden").as_deref(), Some("2027-05-10"));
        assert_eq!(at("daqui a um ano").as_deref(), Some("2028-03-10"));
        assert_eq!(at("in a few months").as_deref(), Some("2027-06-10"));
        assert_eq!(at("in ein paar Monaten").as_deref(), Some("2027-06-10"));
        assert_eq!(at("in a couple of months").as_deref(), Some("2027-05-10"));
        assert_eq!(at("next month").as_deref(), Some("2027-04-01"));
        assert_eq!(at("next quarter").as_deref(), Some("2027-04-01"));
        assert_eq!(at("after Christmas").as_deref(), Some("2028-01-07"));
    }

    #[test]
    fn next_week_is_not_far() {
        let w = named_moment("call me next week", day("2027-03-10")).unwrap();
        assert!(!w.is_far_from(day("2027-03-10")));
        let w = named_moment("in september", day("2027-03-10")).unwrap();
        assert!(w.is_far_from(day("2027-03-10")));
        assert_eq!(w.phrase, "in september");
    }

    #[test]
    fn nothing_named_is_none() {
        assert_eq!(at("Thanks, sounds good"), None);
        assert_eq!(at(""), None);
    }
}
