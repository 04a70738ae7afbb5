//! The rules both formats share: which columns/keys mean which lead field (normalised like CRM
//! headers), how `lost_at`, time zones, tags and free text are read and checked, and the
//! [`RowBuilder`] that turns one row's values into a [`NewLead`] or a [`RowError`].

use std::str::FromStr;

use chrono::{DateTime, NaiveDate, NaiveDateTime, TimeDelta, TimeZone, Utc};
use chrono_tz::Tz;

use super::RowError;
use super::merge::push_tag;
use crate::domain::email::EmailAddress;
use crate::domain::lead::NewLead;

/// Where a row comes from and the clock it is checked against.
#[derive(Debug, Clone, Copy)]
pub(super) struct Ctx<'a> {
    pub(super) source: &'a str,
    pub(super) default_tz: Tz,
    pub(super) now: DateTime<Utc>,
    /// The longest value (in characters) any field may hold (`ingest.max_field_length`).
    pub(super) max_len: usize,
}

impl Ctx<'_> {
    pub(super) fn error(
        &self,
        line: usize,
        field: Option<&str>,
        reason: impl Into<String>,
    ) -> RowError {
        RowError::new(self.source, line, field, reason)
    }
}

/// The columns / keys we understand; everything else is a custom field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Field {
    Email,
    FirstName,
    LastName,
    Company,
    Title,
    OwnerEmail,
    OwnerName,
    LostReason,
    LostAt,
    Timezone,
    Tags,
}

impl Field {
    /// The recognised field for a normalised key (see [`normalise_key`]).
    pub(super) fn from_key(key: &str) -> Option<Field> {
        Some(match key {
            "email" | "e_mail" | "email_address" | "e_mail_address" => Field::Email,
            "first_name" | "firstname" => Field::FirstName,
            "last_name" | "lastname" => Field::LastName,
            "company" => Field::Company,
            "title" => Field::Title,
            "owner_email" => Field::OwnerEmail,
            "owner_name" => Field::OwnerName,
            "lost_reason" => Field::LostReason,
            "lost_at" => Field::LostAt,
            "timezone" | "time_zone" => Field::Timezone,
            "tags" => Field::Tags,
            _ => return None,
        })
    }

    pub(super) fn name(self) -> &'static str {
        match self {
            Field::Email => "email",
            Field::FirstName => "first_name",
            Field::LastName => "last_name",
            Field::Company => "company",
            Field::Title => "title",
            Field::OwnerEmail => "owner_email",
            Field::OwnerName => "owner_name",
            Field::LostReason => "lost_reason",
            Field::LostAt => "lost_at",
            Field::Timezone => "timezone",
            Field::Tags => "tags",
        }
    }
}

/// A CSV column or JSON key, once its name is normalised.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Column {
    Known(Field),
    Custom(String),
}

impl Column {
    pub(super) fn for_key(key: &str) -> Column {
        match Field::from_key(key) {
            Some(field) => Column::Known(field),
            None => Column::Custom(key.to_string()),
        }
    }

    pub(super) fn name(&self) -> &str {
        match self {
            Column::Known(field) => field.name(),
            Column::Custom(key) => key,
        }
    }
}

/// `" First  Name "` → `first_name`, `E-mail` → `e_mail`: trimmed, lower-cased, and each run of
/// spaces, hyphens and underscores turned into one `_`.
pub(super) fn normalise_key(raw: &str) -> String {
    let mut out = String::with_capacity(raw.len());
    let mut in_gap = false;
    for c in raw.trim().trim_start_matches('\u{feff}').trim().chars() {
        if c.is_whitespace() || c == '-' || c == '_' {
            in_gap = true;
            continue;
        }
        if in_gap && !out.is_empty() {
            out.push('_');
        }
        in_gap = false;
        out.extend(c.to_lowercase());
    }
    // A key made only of separators (`_id` keeps its meaning as `id`; `__` as `_`).
    if out.is_empty() && in_gap {
        out.push('_');
    }
    out
}

/// A `lost_at` as written, before it can be placed in the lead's zone.
#[derive(Debug, Clone)]
pub(super) struct LostAt {
    pub(super) raw: String,
    pub(super) kind: LostAtKind,
}

#[derive(Debug, Clone, Copy)]
pub(super) enum LostAtKind {
    /// `2026-03-01`: midnight in the lead's zone.
    Date(NaiveDate),
    /// `2026-03-01 09:00[:00]`: wall-clock time in the lead's zone.
    Local(NaiveDateTime),
    /// RFC 3339, carrying its own offset.
    Instant(DateTime<Utc>),
}

pub(super) const EARLIEST_LOST_YEAR: i32 = 1970;
pub(super) const LATEST_LOST_YEAR: i32 = 9999;

pub(super) fn parse_lost_at(raw: &str) -> Result<LostAt, String> {
    let not_a_date = || {
        format!("`{raw}` is not a date (expected YYYY-MM-DD or RFC 3339 like 2026-03-01T09:00:00Z)")
    };
    let kind = if let Some(date) = plain_date(raw) {
        LostAtKind::Date(date)
    } else if let Some(local) = plain_minute(raw) {
        LostAtKind::Local(local)
    } else if let Ok(date) = NaiveDate::parse_from_str(raw, "%Y-%m-%d") {
        LostAtKind::Date(date)
    } else if let Ok(instant) = DateTime::parse_from_rfc3339(raw) {
        LostAtKind::Instant(instant.with_timezone(&Utc))
    } else {
        // `YYYY-MM-DD HH:MM[:SS[.fff]]` (or with a `T`), no offset: local to the lead.
        let spaced = raw.replacen(['T', 't'], " ", 1);
        let local = ["%Y-%m-%d %H:%M:%S%.f", "%Y-%m-%d %H:%M"]
            .iter()
            .find_map(|format| NaiveDateTime::parse_from_str(&spaced, format).ok())
            .ok_or_else(not_a_date)?;
        LostAtKind::Local(local)
    };
    let year = match kind {
        LostAtKind::Date(d) => chrono::Datelike::year(&d),
        LostAtKind::Local(t) => chrono::Datelike::year(&t),
        LostAtKind::Instant(t) => chrono::Datelike::year(&t),
    };
    if year < EARLIEST_LOST_YEAR {
        return Err(format!(
            "`{raw}` is before {EARLIEST_LOST_YEAR}: check the year"
        ));
    }
    if year > LATEST_LOST_YEAR {
        return Err(format!("`{raw}` is in the future"));
    }
    Ok(LostAt {
        raw: raw.to_string(),
        kind,
    })
}

/// `YYYY-MM-DD` spelt out in full (ten characters), the usual form, without a format
/// string to interpret; None for anything else (the caller's `%Y-%m-%d` then decides, and
/// gives the same date for this form).
fn plain_date(raw: &str) -> Option<NaiveDate> {
    let b = raw.as_bytes();
    if b.len() != 10 || b[4] != b'-' || b[7] != b'-' {
        return None;
    }
    let year = i32::try_from(number(&b[..4])?).ok()?;
    NaiveDate::from_ymd_opt(year, number(&b[5..7])?, number(&b[8..])?)
}

/// The number `digits` spell (ASCII digits only, else None).
fn number(digits: &[u8]) -> Option<u32> {
    digits.iter().try_fold(0u32, |n, &d| {
        d.is_ascii_digit().then(|| n * 10 + u32::from(d - b'0'))
    })
}

/// `YYYY-MM-DD HH:MM` (or with a `T`) spelt out in full (sixteen characters), the other
/// usual form, read as `parse_lost_at`'s last format reads it; None for anything else.
fn plain_minute(raw: &str) -> Option<NaiveDateTime> {
    let b = raw.as_bytes();
    if b.len() != 16 || !matches!(b[10], b' ' | b'T' | b't') || b[13] != b':' {
        return None;
    }
    let date = plain_date(raw.get(..10)?)?;
    date.and_hms_opt(number(&b[11..13])?, number(&b[14..])?, 0)
}

/// Places a `lost_at` in `tz` and checks it is not more than a day ahead of `now`.
pub(super) fn resolve_lost_at(
    lost: &LostAt,
    tz: Tz,
    now: DateTime<Utc>,
) -> Result<DateTime<Utc>, String> {
    let at = match lost.kind {
        LostAtKind::Instant(t) => t,
        LostAtKind::Local(local) => tz
            .from_local_datetime(&local)
            .earliest()
            .map(|t| t.with_timezone(&Utc))
            .ok_or_else(|| {
                format!(
                    "`{}` does not exist in {} (the clocks jump over it)",
                    lost.raw,
                    tz.name()
                )
            })?,
        LostAtKind::Date(date) => {
            // Midnight, or the first quarter hour after it where midnight falls in a DST gap.
            (0..24 * 4)
                .filter_map(|quarter| date.and_hms_opt(quarter / 4, (quarter % 4) * 15, 0))
                .find_map(|local| tz.from_local_datetime(&local).earliest())
                .map(|t| t.with_timezone(&Utc))
                .ok_or_else(|| format!("`{}` cannot be placed in {}", lost.raw, tz.name()))?
        }
    };
    if at > now + TimeDelta::days(1) {
        return Err(format!(
            "`{}` is in the future (a lead cannot be lost more than a day from now)",
            lost.raw
        ));
    }
    Ok(at)
}

/// An IANA zone name (`Europe/Paris`, `UTC`), matched exactly or else ignoring ASCII case.
pub(super) fn parse_timezone(raw: &str) -> Result<Tz, String> {
    if let Ok(tz) = Tz::from_str(raw) {
        return Ok(tz);
    }
    chrono_tz::TZ_VARIANTS
        .iter()
        .find(|tz| tz.name().eq_ignore_ascii_case(raw))
        .copied()
        .ok_or_else(|| {
            format!("unknown time zone `{raw}` (expected an IANA name like Europe/Paris or UTC)")
        })
}

/// `vip; emea,,VIP ` → `["vip", "emea"]`.
pub(super) fn split_tags(raw: &str) -> Vec<String> {
    let mut tags = Vec::new();
    for tag in raw.split([';', ',']) {
        let tag = tag.trim();
        if !tag.is_empty() {
            push_tag(&mut tags, tag.to_string());
        }
    }
    tags
}

pub(super) fn is_line_break(c: char) -> bool {
    matches!(
        c,
        '\n' | '\r' | '\u{0b}' | '\u{0c}' | '\u{85}' | '\u{2028}' | '\u{2029}'
    )
}

/// Checks a trimmed value for what no field may hold (NUL), and what single-line fields may not
/// hold (line breaks, other control characters).
pub(super) fn check_text(value: &str, single_line: bool) -> Result<(), String> {
    // Printable ASCII and tabs (nearly every cell of a CRM export) pass every check below:
    // one pass over the bytes instead of three over the characters.
    if value.bytes().all(|b| matches!(b, b' '..=b'~' | b'\t')) {
        return Ok(());
    }
    if value.contains('\0') {
        return Err("contains a NUL character".to_string());
    }
    if single_line {
        if value.chars().any(is_line_break) {
            return Err("contains a line break (only custom fields may span lines)".to_string());
        }
        if let Some(c) = value.chars().find(|&c| c.is_control() && c != '\t') {
            return Err(format!(
                "contains a control character (U+{:04X})",
                u32::from(c)
            ));
        }
    }
    Ok(())
}

/// Collects one row's values, field by field, stopping at the first problem.
pub(super) struct RowBuilder<'c, 'a> {
    pub(super) ctx: &'c Ctx<'a>,
    pub(super) line: usize,
    pub(super) lead: NewLead,
    pub(super) lost_at: Option<LostAt>,
}

impl<'c, 'a> RowBuilder<'c, 'a> {
    pub(super) fn new(ctx: &'c Ctx<'a>, line: usize) -> Self {
        RowBuilder {
            ctx,
            line,
            lead: NewLead::default(),
            lost_at: None,
        }
    }

    pub(super) fn error(&self, field: &str, reason: impl Into<String>) -> RowError {
        self.ctx.error(self.line, Some(field), reason)
    }

    /// Sets `column` from a text value (a CSV cell, a JSON string).
    pub(super) fn text(&mut self, column: &Column, raw: &str) -> Result<(), RowError> {
        let value = raw.trim();
        let field = match column {
            Column::Custom(key) => return self.custom(key, value),
            Column::Known(field) => *field,
        };
        let name = field.name();
        check_text(value, true).map_err(|reason| self.error(name, reason))?;
        // Addresses have their own limit (254, in `EmailAddress`).
        if !matches!(field, Field::Email | Field::OwnerEmail) {
            self.check_length(name, value)?;
        }
        if value.is_empty() {
            if field == Field::Email {
                return Err(self.error(name, "missing email"));
            }
            return Ok(());
        }
        let text = Some(value.to_string());
        match field {
            Field::Email => {
                let email = EmailAddress::parse_sendable(value)
                    .map_err(|e| self.error(name, e.to_string()))?;
                self.lead.email = Some(email);
            }
            Field::OwnerEmail => {
                let email = EmailAddress::parse_sendable(value)
                    .map_err(|e| self.error(name, e.to_string()))?;
                self.lead.owner_email = Some(email);
            }
            Field::FirstName => self.lead.first_name = text,
            Field::LastName => self.lead.last_name = text,
            Field::Company => self.lead.company = text,
            Field::Title => self.lead.title = text,
            Field::OwnerName => self.lead.owner_name = text,
            Field::LostReason => self.lead.lost_reason = text,
            Field::LostAt => {
                self.lost_at = Some(parse_lost_at(value).map_err(|r| self.error(name, r))?);
            }
            Field::Timezone => {
                self.lead.timezone = Some(parse_timezone(value).map_err(|r| self.error(name, r))?);
            }
            Field::Tags => {
                for tag in split_tags(value) {
                    push_tag(&mut self.lead.tags, tag);
                }
            }
        }
        Ok(())
    }

    /// Adds tags given one by one (a JSON array); each may itself hold `;`-separated tags.
    pub(super) fn tags<'v>(
        &mut self,
        items: impl IntoIterator<Item = &'v str>,
    ) -> Result<(), RowError> {
        for item in items {
            let item = item.trim();
            check_text(item, true).map_err(|reason| self.error("tags", reason))?;
            self.check_length("tags", item)?;
            for tag in split_tags(item) {
                push_tag(&mut self.lead.tags, tag);
            }
        }
        Ok(())
    }

    /// Sets a custom field; empty values are left out. Custom fields may span lines.
    pub(super) fn custom(&mut self, key: &str, raw: &str) -> Result<(), RowError> {
        let value = raw.trim();
        check_text(value, false).map_err(|reason| self.error(key, reason))?;
        self.check_length(key, value)?;
        if !value.is_empty() {
            self.lead.fields.insert(key.to_string(), value.to_string());
        }
        Ok(())
    }

    /// Refuses a value longer than `ingest.max_field_length` characters (a 1 MB first name
    /// is a mistake or an attack, never a name).
    fn check_length(&self, field: &str, value: &str) -> Result<(), RowError> {
        let max = self.ctx.max_len;
        // No more bytes than the limit: no more characters either.
        if value.len() <= max {
            return Ok(());
        }
        // Counting stops just past the limit: a huge value costs no more than a long one.
        let length = value.chars().take(max + 1).count();
        if length > max {
            return Err(self.error(
                field,
                format!(
                    "is longer than {max} characters ({} bytes); at most {max} are accepted (ingest.max_field_length)",
                    value.len()
                ),
            ));
        }
        Ok(())
    }

    pub(super) fn finish(mut self) -> Result<NewLead, RowError> {
        if self.lead.email.is_none() {
            return Err(self.error("email", "missing email"));
        }
        if let Some(lost) = &self.lost_at {
            let tz = self.lead.timezone.unwrap_or(self.ctx.default_tz);
            let at = resolve_lost_at(lost, tz, self.ctx.now)
                .map_err(|reason| self.error("lost_at", reason))?;
            self.lead.lost_at = Some(at);
        }
        Ok(self.lead)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The checks as they read before their ASCII fast path.
    fn check_text_by_chars(value: &str, single_line: bool) -> Result<(), String> {
        if value.contains('\0') {
            return Err("contains a NUL character".to_string());
        }
        if single_line {
            if value.chars().any(is_line_break) {
                return Err("contains a line break (only custom fields may span lines)".into());
            }
            if let Some(c) = value.chars().find(|&c| c.is_control() && c != '\t') {
                return Err(format!(
                    "contains a control character (U+{:04X})",
                    u32::from(c)
                ));
            }
        }
        Ok(())
    }

    #[test]
    fn the_ascii_fast_path_answers_as_the_character_checks_do() {
        let mut cases: Vec<String> = [
            "",
            "Ann",
            "Acme Inc.",
            "a\tb",
            "tab\t",
            "~!@#$%^&*()_+{}|:\"<>?`-=[]\\;',./",
            "José",
            "Zürich GmbH",
            "北京",
            "a\nb",
            "a\rb",
            "a\u{0b}b",
            "a\u{0c}b",
            "a\u{85}b",
            "a\u{2028}b",
            "a\u{2029}b",
            "a\0b",
            "a\u{7f}b",
            "a\u{1b}[0m",
            "a\u{9f}b",
            " lead ",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        // Every single character below U+0100, alone and between letters.
        for c in (0u32..0x100).filter_map(char::from_u32) {
            cases.push(c.to_string());
            cases.push(format!("ab{c}cd"));
        }
        for case in &cases {
            for single_line in [true, false] {
                assert_eq!(
                    check_text(case, single_line),
                    check_text_by_chars(case, single_line),
                    "{case:?}, single line {single_line}"
                );
            }
        }
    }

    #[test]
    fn a_plain_date_or_minute_is_read_as_the_format_strings_read_it() {
        let cases = [
            "2026-09-20",
            "2026-02-28",
            "2024-02-29",
            "2026-02-29",
            "2026-02-31",
            "2026-13-01",
            "2026-00-10",
            "2026-01-00",
            "0202-03-01",
            "9999-12-31",
            "0000-01-01",
            "2026-1-01",
            "2026-01-1",
            "26-01-2026",
            "2026/01/01",
            "2026-01-01T",
            "2026-0a-01",
            "+026-01-01",
            "2026-+1-01",
            " 026-01-01",
            "2026--1-01",
            "abcd-ef-gh",
            "",
        ];
        for raw in cases {
            let by_format = NaiveDate::parse_from_str(raw, "%Y-%m-%d").ok();
            match plain_date(raw) {
                Some(date) => assert_eq!(Some(date), by_format, "{raw}"),
                // Left to the format string: never a date it reads in the full form.
                None => {
                    let full = raw.len() == 10
                        && raw.bytes().enumerate().all(|(i, b)| {
                            if i == 4 || i == 7 {
                                b == b'-'
                            } else {
                                b.is_ascii_digit()
                            }
                        });
                    assert!(by_format.is_none() || !full, "{raw}: {by_format:?}");
                }
            }
        }
        for raw in [
            "2026-01-04 21:06",
            "2026-01-04T21:06",
            "2026-01-04t21:06",
            "2026-01-04 24:00",
            "2026-01-04 23:60",
            "2026-02-30 10:00",
            "2026-01-04 2:06",
            "2026-01-04 21:6",
            "2026-01-04x21:06",
            "2026-01-04 21-06",
            "2026-01-04 21:06:07",
            "2026-01-04 0a:06",
        ] {
            let spaced = raw.replacen(['T', 't'], " ", 1);
            let by_formats = ["%Y-%m-%d %H:%M:%S%.f", "%Y-%m-%d %H:%M"]
                .iter()
                .find_map(|format| NaiveDateTime::parse_from_str(&spaced, format).ok());
            match plain_minute(raw) {
                Some(local) => assert_eq!(Some(local), by_formats, "{raw}"),
                None => assert!(
                    by_formats.is_none() || raw.len() != 16,
                    "{raw}: {by_formats:?}"
                ),
            }
        }
        let day = NaiveDate::from_ymd_opt(2026, 9, 20);
        assert!(
            matches!(parse_lost_at("2026-09-20").expect("date").kind, LostAtKind::Date(d) if Some(d) == day)
        );
    }
}
