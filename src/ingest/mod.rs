//! Leads in: CRM exports (CSV) and JSON lines, validated row by row.
//!
//! Both formats share one set of rules (see [`lead_from_json`] and the column list in
//! [`Field`]): a bad row becomes a [`RowError`] with its file and line, never a panic and never
//! a silent drop; a file we cannot read at all becomes an [`IngestError`]. Rows with the same
//! normalised email are folded into the first one ([`merge_duplicates`]).

pub mod csv;
pub mod jsonl;

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::path::Path;
use std::str::FromStr;

use chrono::{DateTime, NaiveDate, NaiveDateTime, TimeDelta, TimeZone, Utc};
use chrono_tz::Tz;
use serde_json::Value;

use crate::domain::email::EmailAddress;
use crate::domain::lead::NewLead;

/// A row that was rejected, with where and why.
///
/// Displays as ``leads.csv:14: field `lost_at`: `31/02/2026` is not a date (…)``, or without
/// the `field` part when the whole row is at fault.
#[derive(Debug, Clone, PartialEq)]
pub struct RowError {
    /// The file name as given (or another label, e.g. `api`).
    pub source: String,
    /// 1-based physical line where the record starts; a CSV header is line 1.
    pub line: usize,
    /// The normalised column / key at fault, when there is one.
    pub field: Option<String>,
    pub reason: String,
}

impl RowError {
    fn new(source: &str, line: usize, field: Option<&str>, reason: impl Into<String>) -> Self {
        RowError {
            source: source.to_string(),
            line,
            field: field.map(str::to_string),
            reason: reason.into(),
        }
    }
}

impl fmt::Display for RowError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.field {
            Some(field) => write!(
                f,
                "{}:{}: field `{}`: {}",
                self.source, self.line, field, self.reason
            ),
            None => write!(f, "{}:{}: {}", self.source, self.line, self.reason),
        }
    }
}

// Not derived with thiserror: a field named `source` would be taken for the error's cause.
impl std::error::Error for RowError {}

/// A whole-file problem: nothing from the file was imported.
#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    #[error("cannot read {file}: {error}")]
    Read {
        file: String,
        #[source]
        error: std::io::Error,
    },
    #[error(
        "{file}: unknown file type (expected .csv or .txt for CSV, .jsonl or .ndjson for JSON lines)"
    )]
    UnknownExtension { file: String },
    #[error("{file} is empty: expected a header row with an `email` column")]
    Empty { file: String },
    #[error("{file} is UTF-16 encoded: save or export it as UTF-8")]
    Utf16 { file: String },
    #[error(
        "{file}:{line}: the header row is not valid UTF-8 text: save or export the file as UTF-8"
    )]
    HeaderNotUtf8 { file: String, line: usize },
    #[error(
        "{file}: no `email` column (accepted headers: email, e-mail, email address); columns found: {}",
        list_columns(.columns)
    )]
    MissingEmailColumn { file: String, columns: Vec<String> },
    #[error("{file}:{line}: columns `{first}` and `{second}` both mean `{key}`")]
    DuplicateColumn {
        file: String,
        line: usize,
        first: String,
        second: String,
        key: String,
    },
    #[error("{file}: cannot parse as CSV: {message}")]
    Csv { file: String, message: String },
}

fn list_columns(columns: &[String]) -> String {
    if columns.is_empty() {
        return "none".to_string();
    }
    columns
        .iter()
        .map(|c| format!("`{c}`"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// What a file gave: the leads to import, the rows refused, and how many rows were folded
/// into an earlier one with the same email.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Parsed {
    pub leads: Vec<ParsedLead>,
    pub rejected: Vec<RowError>,
    /// Rows folded into an earlier row with the same normalised email.
    pub merged: usize,
}

/// One accepted lead and the line its (first) row starts on.
#[derive(Debug, Clone, PartialEq)]
pub struct ParsedLead {
    pub line: usize,
    /// `email` is always `Some`.
    pub lead: NewLead,
}

/// Parses a file by extension: `.csv` (and `.txt`) as CSV, `.jsonl` / `.ndjson` as JSON lines.
///
/// `default_tz` places a date-only `lost_at` (midnight in the lead's own `timezone` if it has
/// one, else in `default_tz`). A `lost_at` more than a day after the real clock is refused.
pub fn parse_path(path: &Path, default_tz: Tz) -> Result<Parsed, IngestError> {
    parse_path_at(path, default_tz, Utc::now())
}

/// [`parse_path`] with an explicit "now" (for `--now` and tests).
pub fn parse_path_at(
    path: &Path,
    default_tz: Tz,
    now: DateTime<Utc>,
) -> Result<Parsed, IngestError> {
    let file = path.display().to_string();
    let ext = path
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase)
        .unwrap_or_default();
    let kind = match ext.as_str() {
        "csv" | "txt" => FileKind::Csv,
        "jsonl" | "ndjson" => FileKind::Jsonl,
        _ => return Err(IngestError::UnknownExtension { file }),
    };
    let handle = std::fs::File::open(path).map_err(|error| IngestError::Read {
        file: file.clone(),
        error,
    })?;
    match kind {
        FileKind::Csv => csv::parse_csv_at(&file, handle, default_tz, now),
        FileKind::Jsonl => {
            jsonl::parse_jsonl_at(&file, std::io::BufReader::new(handle), default_tz, now)
        }
    }
}

enum FileKind {
    Csv,
    Jsonl,
}

/// Builds a [`NewLead`] from one JSON object (a JSON line, or a body posted to the HTTP API):
/// same keys (case-insensitive, spaces/hyphens as `_`), rules and errors as a CSV row.
///
/// `tags` may be an array of strings or a `;`-separated string; custom fields may be extra
/// top-level keys or sit in a `"fields": {..}` object (strings, numbers and booleans).
pub fn lead_from_json(
    source: &str,
    line: usize,
    value: &Value,
    default_tz: Tz,
) -> Result<NewLead, RowError> {
    lead_from_json_at(source, line, value, default_tz, Utc::now())
}

/// [`lead_from_json`] with an explicit "now" (for `--now` and tests).
pub fn lead_from_json_at(
    source: &str,
    line: usize,
    value: &Value,
    default_tz: Tz,
    now: DateTime<Utc>,
) -> Result<NewLead, RowError> {
    let ctx = Ctx {
        source,
        default_tz,
        now,
    };
    json_lead(&ctx, line, value)
}

/// Folds rows with the same normalised email into the first one: later non-empty values win,
/// tags are unioned keeping order, fields are merged with later values winning. Returns the
/// leads left and how many rows were folded.
pub fn merge_duplicates(leads: Vec<ParsedLead>) -> (Vec<ParsedLead>, usize) {
    let mut out: Vec<ParsedLead> = Vec::with_capacity(leads.len());
    let mut index: HashMap<EmailAddress, usize> = HashMap::new();
    let mut merged = 0;
    for parsed in leads {
        let Some(email) = parsed.lead.email.clone() else {
            // Cannot happen for our parsers' output; keep such a lead as it is.
            out.push(parsed);
            continue;
        };
        match index.get(&email).and_then(|&i| out.get_mut(i)) {
            Some(first) => {
                merge_into(&mut first.lead, parsed.lead);
                merged += 1;
            }
            None => {
                index.insert(email, out.len());
                out.push(parsed);
            }
        }
    }
    (out, merged)
}

fn merge_into(into: &mut NewLead, later: NewLead) {
    fn take<T>(into: &mut Option<T>, later: Option<T>) {
        if later.is_some() {
            *into = later;
        }
    }
    let NewLead {
        email,
        first_name,
        last_name,
        company,
        title,
        owner_email,
        owner_name,
        lost_reason,
        lost_at,
        timezone,
        tags,
        fields,
    } = later;
    take(&mut into.email, email);
    take(&mut into.first_name, first_name);
    take(&mut into.last_name, last_name);
    take(&mut into.company, company);
    take(&mut into.title, title);
    take(&mut into.owner_email, owner_email);
    take(&mut into.owner_name, owner_name);
    take(&mut into.lost_reason, lost_reason);
    take(&mut into.lost_at, lost_at);
    take(&mut into.timezone, timezone);
    for tag in tags {
        push_tag(&mut into.tags, tag);
    }
    into.fields.extend(fields);
}

/// Adds `tag` unless an equal one (ASCII case-insensitive, as segments match) is there.
fn push_tag(tags: &mut Vec<String>, tag: String) {
    if !tags.iter().any(|t| t.eq_ignore_ascii_case(&tag)) {
        tags.push(tag);
    }
}

// ---------------------------------------------------------------------------------------------
// Shared rules.

/// Where a row comes from and the clock it is checked against.
#[derive(Debug, Clone, Copy)]
struct Ctx<'a> {
    source: &'a str,
    default_tz: Tz,
    now: DateTime<Utc>,
}

impl Ctx<'_> {
    fn error(&self, line: usize, field: Option<&str>, reason: impl Into<String>) -> RowError {
        RowError::new(self.source, line, field, reason)
    }
}

/// The columns / keys we understand; everything else is a custom field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Field {
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
    fn from_key(key: &str) -> Option<Field> {
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

    fn name(self) -> &'static str {
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
enum Column {
    Known(Field),
    Custom(String),
}

impl Column {
    fn for_key(key: &str) -> Column {
        match Field::from_key(key) {
            Some(field) => Column::Known(field),
            None => Column::Custom(key.to_string()),
        }
    }

    fn name(&self) -> &str {
        match self {
            Column::Known(field) => field.name(),
            Column::Custom(key) => key,
        }
    }
}

/// `" First  Name "` → `first_name`, `E-mail` → `e_mail`: trimmed, lower-cased, and each run of
/// spaces, hyphens and underscores turned into one `_`.
fn normalise_key(raw: &str) -> String {
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
struct LostAt {
    raw: String,
    kind: LostAtKind,
}

#[derive(Debug, Clone, Copy)]
enum LostAtKind {
    /// `2026-03-01`: midnight in the lead's zone.
    Date(NaiveDate),
    /// `2026-03-01 09:00[:00]`: wall-clock time in the lead's zone.
    Local(NaiveDateTime),
    /// RFC 3339, carrying its own offset.
    Instant(DateTime<Utc>),
}

const EARLIEST_LOST_YEAR: i32 = 1970;
const LATEST_LOST_YEAR: i32 = 9999;

fn parse_lost_at(raw: &str) -> Result<LostAt, String> {
    let not_a_date = || {
        format!("`{raw}` is not a date (expected YYYY-MM-DD or RFC 3339 like 2026-03-01T09:00:00Z)")
    };
    let kind = if let Ok(date) = NaiveDate::parse_from_str(raw, "%Y-%m-%d") {
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

/// Places a `lost_at` in `tz` and checks it is not more than a day ahead of `now`.
fn resolve_lost_at(lost: &LostAt, tz: Tz, now: DateTime<Utc>) -> Result<DateTime<Utc>, String> {
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
fn parse_timezone(raw: &str) -> Result<Tz, String> {
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
fn split_tags(raw: &str) -> Vec<String> {
    let mut tags = Vec::new();
    for tag in raw.split([';', ',']) {
        let tag = tag.trim();
        if !tag.is_empty() {
            push_tag(&mut tags, tag.to_string());
        }
    }
    tags
}

fn is_line_break(c: char) -> bool {
    matches!(
        c,
        '\n' | '\r' | '\u{0b}' | '\u{0c}' | '\u{85}' | '\u{2028}' | '\u{2029}'
    )
}

/// Checks a trimmed value for what no field may hold (NUL), and what single-line fields may not
/// hold (line breaks, other control characters).
fn check_text(value: &str, single_line: bool) -> Result<(), String> {
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
struct RowBuilder<'c, 'a> {
    ctx: &'c Ctx<'a>,
    line: usize,
    lead: NewLead,
    lost_at: Option<LostAt>,
}

impl<'c, 'a> RowBuilder<'c, 'a> {
    fn new(ctx: &'c Ctx<'a>, line: usize) -> Self {
        RowBuilder {
            ctx,
            line,
            lead: NewLead::default(),
            lost_at: None,
        }
    }

    fn error(&self, field: &str, reason: impl Into<String>) -> RowError {
        self.ctx.error(self.line, Some(field), reason)
    }

    /// Sets `column` from a text value (a CSV cell, a JSON string).
    fn text(&mut self, column: &Column, raw: &str) -> Result<(), RowError> {
        let value = raw.trim();
        let field = match column {
            Column::Custom(key) => return self.custom(key, value),
            Column::Known(field) => *field,
        };
        let name = field.name();
        check_text(value, true).map_err(|reason| self.error(name, reason))?;
        if value.is_empty() {
            if field == Field::Email {
                return Err(self.error(name, "missing email"));
            }
            return Ok(());
        }
        let text = Some(value.to_string());
        match field {
            Field::Email => {
                let email =
                    EmailAddress::parse(value).map_err(|e| self.error(name, e.to_string()))?;
                self.lead.email = Some(email);
            }
            Field::OwnerEmail => {
                let email =
                    EmailAddress::parse(value).map_err(|e| self.error(name, e.to_string()))?;
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
    fn tags<'v>(&mut self, items: impl IntoIterator<Item = &'v str>) -> Result<(), RowError> {
        for item in items {
            let item = item.trim();
            check_text(item, true).map_err(|reason| self.error("tags", reason))?;
            for tag in split_tags(item) {
                push_tag(&mut self.lead.tags, tag);
            }
        }
        Ok(())
    }

    /// Sets a custom field; empty values are left out. Custom fields may span lines.
    fn custom(&mut self, key: &str, raw: &str) -> Result<(), RowError> {
        let value = raw.trim();
        check_text(value, false).map_err(|reason| self.error(key, reason))?;
        if !value.is_empty() {
            self.lead.fields.insert(key.to_string(), value.to_string());
        }
        Ok(())
    }

    fn finish(mut self) -> Result<NewLead, RowError> {
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

fn json_kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// A custom field's JSON value as text: `None` for null, an error for arrays and objects.
fn json_scalar(value: &Value) -> Result<Option<String>, String> {
    match value {
        Value::Null => Ok(None),
        Value::String(s) => Ok(Some(s.clone())),
        Value::Number(n) => Ok(Some(n.to_string())),
        Value::Bool(b) => Ok(Some(b.to_string())),
        Value::Array(_) | Value::Object(_) => Err(format!(
            "expected a string, number or boolean, got {}",
            json_kind(value)
        )),
    }
}

fn json_lead(ctx: &Ctx<'_>, line: usize, value: &Value) -> Result<NewLead, RowError> {
    let Value::Object(map) = value else {
        return Err(ctx.error(
            line,
            None,
            format!("expected a JSON object, got {}", json_kind(value)),
        ));
    };
    let mut row = RowBuilder::new(ctx, line);
    let mut seen: HashMap<String, &str> = HashMap::new();
    let mut fields_object = None;
    for (raw_key, value) in map {
        let key = normalise_key(raw_key);
        if key.is_empty() {
            return Err(ctx.error(line, None, "a key is empty"));
        }
        if let Some(first) = seen.insert(key.clone(), raw_key) {
            return Err(ctx.error(
                line,
                Some(&key),
                format!("keys `{first}` and `{raw_key}` both mean `{key}` (keys ignore case)"),
            ));
        }
        if key == "fields" {
            match value {
                Value::Object(inner) => fields_object = Some(inner),
                Value::Null => {}
                other => {
                    return Err(ctx.error(
                        line,
                        Some("fields"),
                        format!("expected an object, got {}", json_kind(other)),
                    ));
                }
            }
            continue;
        }
        let column = Column::for_key(&key);
        match (&column, value) {
            (_, Value::String(s)) => row.text(&column, s)?,
            (Column::Known(Field::Tags), Value::Array(items)) => {
                let mut tags = Vec::with_capacity(items.len());
                for item in items {
                    match item {
                        Value::String(s) => tags.push(s.as_str()),
                        other => {
                            return Err(ctx.error(
                                line,
                                Some("tags"),
                                format!("expected strings, got {}", json_kind(other)),
                            ));
                        }
                    }
                }
                row.tags(tags)?;
            }
            (Column::Known(_), Value::Null) => row.text(&column, "")?,
            (Column::Known(field), other) => {
                let expected = if *field == Field::Tags {
                    "a string or an array of strings"
                } else {
                    "a string"
                };
                return Err(ctx.error(
                    line,
                    Some(field.name()),
                    format!("expected {expected}, got {}", json_kind(other)),
                ));
            }
            (Column::Custom(name), other) => {
                let text = json_scalar(other).map_err(|r| ctx.error(line, Some(name), r))?;
                if let Some(text) = text {
                    row.custom(name, &text)?;
                }
            }
        }
    }
    if let Some(inner) = fields_object {
        let mut seen_inner: HashSet<String> = HashSet::new();
        for (raw_key, value) in inner {
            let key = normalise_key(raw_key);
            if key.is_empty() {
                return Err(ctx.error(line, Some("fields"), "a key is empty"));
            }
            if !seen_inner.insert(key.clone()) {
                return Err(ctx.error(
                    line,
                    Some(&key),
                    format!("`fields` names `{key}` twice (keys ignore case)"),
                ));
            }
            if seen.contains_key(&key) {
                return Err(ctx.error(
                    line,
                    Some(&key),
                    format!("`{key}` is given both at the top level and in `fields`"),
                ));
            }
            let text = json_scalar(value).map_err(|r| ctx.error(line, Some(&key), r))?;
            if let Some(text) = text {
                row.custom(&key, &text)?;
            }
        }
    }
    row.finish()
}

/// Sorts rows into leads and rejections, then folds duplicates.
fn finish_parsed(rows: Vec<Result<ParsedLead, RowError>>) -> Parsed {
    let mut leads = Vec::new();
    let mut rejected = Vec::new();
    for row in rows {
        match row {
            Ok(lead) => leads.push(lead),
            Err(error) => rejected.push(error),
        }
    }
    let (leads, merged) = merge_duplicates(leads);
    Parsed {
        leads,
        rejected,
        merged,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 6, 1, 12, 0, 0).unwrap()
    }

    fn paris() -> Tz {
        "Europe/Paris".parse().unwrap()
    }

    fn lead(value: Value) -> Result<NewLead, RowError> {
        lead_from_json_at("api", 1, &value, paris(), now())
    }

    fn parsed(line: usize, email: &str) -> ParsedLead {
        ParsedLead {
            line,
            lead: NewLead {
                email: Some(EmailAddress::parse(email).unwrap()),
                ..NewLead::default()
            },
        }
    }

    #[test]
    fn row_error_display_names_file_line_field_and_reason() {
        let e = RowError::new(
            "leads.csv",
            14,
            Some("lost_at"),
            parse_lost_at("31/02/2026").unwrap_err(),
        );
        assert_eq!(
            e.to_string(),
            "leads.csv:14: field `lost_at`: `31/02/2026` is not a date (expected YYYY-MM-DD or RFC 3339 like 2026-03-01T09:00:00Z)"
        );
    }

    #[test]
    fn row_error_display_without_a_field_has_no_field_part() {
        let e = RowError::new("x.jsonl", 3, None, "expected a JSON object, got an array");
        assert_eq!(
            e.to_string(),
            "x.jsonl:3: expected a JSON object, got an array"
        );
    }

    #[test]
    fn keys_are_normalised_like_crm_headers() {
        assert_eq!(normalise_key(" First Name "), "first_name");
        assert_eq!(normalise_key("EMAIL"), "email");
        assert_eq!(normalise_key("E-mail"), "e_mail");
        assert_eq!(normalise_key("Lost  -  Reason"), "lost_reason");
        assert_eq!(normalise_key("\u{feff}Email"), "email");
        assert_eq!(normalise_key("Deal Size ($)"), "deal_size_($)");
        assert_eq!(Field::from_key("email_address"), Some(Field::Email));
        assert_eq!(Field::from_key("e_mail"), Some(Field::Email));
        assert_eq!(Field::from_key("time_zone"), Some(Field::Timezone));
        assert_eq!(Field::from_key("plan"), None);
    }

    #[test]
    fn a_date_only_lost_at_is_midnight_in_the_zone_given() {
        let at = resolve_lost_at(&parse_lost_at("2026-03-01").unwrap(), paris(), now()).unwrap();
        assert_eq!(at, Utc.with_ymd_and_hms(2026, 2, 28, 23, 0, 0).unwrap());
    }

    #[test]
    fn a_date_whose_midnight_is_skipped_by_dst_lands_on_the_first_valid_time() {
        // Chile moved clocks from 00:00 to 01:00 on 2023-09-03.
        let santiago: Tz = "America/Santiago".parse().unwrap();
        let at = resolve_lost_at(&parse_lost_at("2023-09-03").unwrap(), santiago, now()).unwrap();
        assert_eq!(at, Utc.with_ymd_and_hms(2023, 9, 3, 4, 0, 0).unwrap());
    }

    #[test]
    fn a_local_time_lost_at_is_read_in_the_zone_given() {
        for raw in [
            "2026-03-01 09:30",
            "2026-03-01 09:30:00",
            "2026-03-01T09:30:00",
        ] {
            let at = resolve_lost_at(&parse_lost_at(raw).unwrap(), paris(), now()).unwrap();
            assert_eq!(
                at,
                Utc.with_ymd_and_hms(2026, 3, 1, 8, 30, 0).unwrap(),
                "{raw}"
            );
        }
    }

    #[test]
    fn a_local_time_inside_a_dst_gap_is_refused() {
        let err = resolve_lost_at(&parse_lost_at("2026-03-29 02:30").unwrap(), paris(), now())
            .unwrap_err();
        assert!(err.contains("does not exist in Europe/Paris"), "{err}");
    }

    #[test]
    fn rfc3339_lost_at_keeps_its_own_offset() {
        let at = resolve_lost_at(
            &parse_lost_at("2026-03-01T09:00:00+02:00").unwrap(),
            Tz::UTC,
            now(),
        )
        .unwrap();
        assert_eq!(at, Utc.with_ymd_and_hms(2026, 3, 1, 7, 0, 0).unwrap());
    }

    #[test]
    fn malformed_dates_are_refused_naming_the_formats() {
        for raw in [
            "31/02/2026",
            "2026-02-31",
            "yesterday",
            "2026-03-01 25:00",
            "20260301",
        ] {
            let err = parse_lost_at(raw).unwrap_err();
            assert!(
                err.contains("expected YYYY-MM-DD or RFC 3339"),
                "{raw}: {err}"
            );
        }
    }

    #[test]
    fn absurd_years_are_refused() {
        assert!(
            parse_lost_at("0202-03-01")
                .unwrap_err()
                .contains("before 1970")
        );
        assert!(parse_lost_at("+20000-03-01T00:00:00Z").is_err());
    }

    #[test]
    fn a_lost_at_up_to_a_day_ahead_is_accepted_but_not_further() {
        let tomorrow = resolve_lost_at(
            &parse_lost_at("2026-06-02T11:00:00Z").unwrap(),
            Tz::UTC,
            now(),
        );
        assert!(tomorrow.is_ok());
        let later = resolve_lost_at(
            &parse_lost_at("2026-06-02T12:00:01Z").unwrap(),
            Tz::UTC,
            now(),
        );
        assert!(later.unwrap_err().contains("in the future"));
    }

    #[test]
    fn time_zones_are_iana_names_or_utc() {
        assert_eq!(parse_timezone("Europe/Paris").unwrap(), paris());
        assert_eq!(parse_timezone("UTC").unwrap(), Tz::UTC);
        assert_eq!(parse_timezone("utc").unwrap(), Tz::UTC);
        assert_eq!(parse_timezone("europe/paris").unwrap(), paris());
        let err = parse_timezone("Mars/Olympus").unwrap_err();
        assert!(err.starts_with("unknown time zone `Mars/Olympus`"), "{err}");
    }

    #[test]
    fn tags_are_split_trimmed_and_deduplicated_keeping_order() {
        assert_eq!(
            split_tags(" vip ; emea;;, webinar ,VIP; emea "),
            vec!["vip", "emea", "webinar"]
        );
        assert!(split_tags(" ; , ").is_empty());
    }

    #[test]
    fn a_json_object_becomes_a_lead() {
        let l = lead(json!({
            "Email": " Ann@Example.com ",
            "First Name": "Ann",
            "last_name": "Lee",
            "company": "Acme, Inc.",
            "owner_email": "rep@ours.com",
            "lost_reason": "budget",
            "lost_at": "2026-01-15",
            "timezone": "America/New_York",
            "tags": ["enterprise", " emea ", "Enterprise", ""],
            "plan": "pro",
            "seats": 25,
            "trial": true,
            "notes": null,
            "fields": {"Deal Size": 12000.5, "empty": "  "}
        }))
        .unwrap();
        assert_eq!(l.email.unwrap().as_str(), "ann@example.com");
        assert_eq!(l.first_name.as_deref(), Some("Ann"));
        assert_eq!(l.company.as_deref(), Some("Acme, Inc."));
        assert_eq!(l.owner_email.unwrap().as_str(), "rep@ours.com");
        assert_eq!(
            l.lost_at,
            Some(Utc.with_ymd_and_hms(2026, 1, 15, 5, 0, 0).unwrap())
        );
        assert_eq!(l.tags, vec!["enterprise", "emea"]);
        let fields: Vec<(&str, &str)> = l
            .fields
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        assert_eq!(
            fields,
            vec![
                ("deal_size", "12000.5"),
                ("plan", "pro"),
                ("seats", "25"),
                ("trial", "true")
            ]
        );
    }

    #[test]
    fn json_tags_may_be_a_semicolon_string() {
        let l = lead(json!({"email": "a@ex.com", "tags": "a; b;a"})).unwrap();
        assert_eq!(l.tags, vec!["a", "b"]);
    }

    #[test]
    fn json_without_email_is_refused() {
        let e = lead(json!({"first_name": "Ann"})).unwrap_err();
        assert_eq!(
            (e.field.as_deref(), e.reason.as_str()),
            (Some("email"), "missing email")
        );
        let e = lead(json!({"email": null})).unwrap_err();
        assert_eq!(e.reason, "missing email");
        let e = lead(json!({"email": "   "})).unwrap_err();
        assert_eq!(e.reason, "missing email");
    }

    #[test]
    fn json_values_of_the_wrong_type_are_refused() {
        let e = lead(json!({"email": 42})).unwrap_err();
        assert_eq!(e.field.as_deref(), Some("email"));
        assert!(e.reason.contains("expected a string, got a number"));
        let e = lead(json!({"email": "a@ex.com", "tags": [1]})).unwrap_err();
        assert_eq!(e.field.as_deref(), Some("tags"));
        let e = lead(json!({"email": "a@ex.com", "fields": [1]})).unwrap_err();
        assert_eq!(e.field.as_deref(), Some("fields"));
        let e = lead(json!({"email": "a@ex.com", "extra": {"a": 1}})).unwrap_err();
        assert_eq!(e.field.as_deref(), Some("extra"));
        let e = lead(json!({"email": "a@ex.com", "fields": {"x": [1]}})).unwrap_err();
        assert_eq!(e.field.as_deref(), Some("x"));
    }

    #[test]
    fn json_keys_that_collide_after_normalising_are_refused() {
        let e = lead(json!({"email": "a@ex.com", "Email": "b@ex.com"})).unwrap_err();
        assert!(e.reason.contains("both mean `email`"), "{}", e.reason);
        let e =
            lead(json!({"email": "a@ex.com", "plan": "a", "fields": {"Plan": "b"}})).unwrap_err();
        assert!(e.reason.contains("both at the top level and in `fields`"));
    }

    #[test]
    fn a_json_value_that_is_not_an_object_is_refused() {
        let e = lead(json!(["a@ex.com"])).unwrap_err();
        assert_eq!(e.field, None);
        assert_eq!(e.reason, "expected a JSON object, got an array");
    }

    #[test]
    fn single_line_fields_refuse_line_breaks_and_nul_but_custom_fields_keep_lines() {
        let e = lead(json!({"email": "a@ex.com", "company": "Acme\nBcc: x"})).unwrap_err();
        assert_eq!(e.field.as_deref(), Some("company"));
        assert!(e.reason.contains("line break"));
        let e = lead(json!({"email": "a@ex.com", "lost_reason": "no\u{0}pe"})).unwrap_err();
        assert!(e.reason.contains("NUL"));
        let e = lead(json!({"email": "a@ex.com", "notes": "a\u{0}b"})).unwrap_err();
        assert_eq!(e.field.as_deref(), Some("notes"));
        let e = lead(json!({"email": "a@ex.com", "title": "CEO\u{1b}[31m"})).unwrap_err();
        assert!(e.reason.contains("control character"));
        let l = lead(json!({"email": "a@ex.com", "notes": "line 1\nline 2"})).unwrap();
        assert_eq!(l.fields["notes"], "line 1\nline 2");
    }

    #[test]
    fn a_row_with_several_problems_reports_one() {
        let e = lead(json!({"email": "nope", "owner_email": "bad", "timezone": "Mars/Olympus"}))
            .unwrap_err();
        assert!(e.field.is_some());
    }

    #[test]
    fn duplicates_are_folded_into_the_first_with_later_values_winning() {
        let mut a = parsed(2, "ann@ex.com");
        a.lead.first_name = Some("Ann".into());
        a.lead.company = Some("Old Co".into());
        a.lead.tags = vec!["vip".into(), "emea".into()];
        a.lead.fields.insert("plan".into(), "basic".into());
        a.lead.fields.insert("seats".into(), "3".into());
        let b = parsed(3, "bob@ex.com");
        let mut c = parsed(4, "ANN@ex.com");
        c.lead.company = Some("New Co".into());
        c.lead.tags = vec!["EMEA".into(), "webinar".into()];
        c.lead.fields.insert("plan".into(), "pro".into());
        let (leads, merged) = merge_duplicates(vec![a, b, c]);
        assert_eq!(merged, 1);
        assert_eq!(leads.len(), 2);
        let ann = &leads[0];
        assert_eq!(ann.line, 2);
        assert_eq!(ann.lead.first_name.as_deref(), Some("Ann"));
        assert_eq!(ann.lead.company.as_deref(), Some("New Co"));
        assert_eq!(ann.lead.tags, vec!["vip", "emea", "webinar"]);
        assert_eq!(ann.lead.fields["plan"], "pro");
        assert_eq!(ann.lead.fields["seats"], "3");
        assert_eq!(leads[1].line, 3);
    }

    #[test]
    fn nothing_to_merge_leaves_leads_untouched() {
        let input = vec![parsed(2, "a@ex.com"), parsed(3, "b@ex.com")];
        let (leads, merged) = merge_duplicates(input.clone());
        assert_eq!((leads, merged), (input, 0));
    }

    #[test]
    fn an_unknown_extension_is_refused_naming_the_file() {
        let err = parse_path(Path::new("leads.xlsx"), Tz::UTC).unwrap_err();
        assert!(matches!(err, IngestError::UnknownExtension { .. }));
        assert!(err.to_string().starts_with("leads.xlsx: unknown file type"));
    }

    #[test]
    fn a_missing_file_is_a_read_error_naming_it() {
        let err = parse_path(Path::new("/nonexistent/leads.csv"), Tz::UTC).unwrap_err();
        assert!(matches!(err, IngestError::Read { .. }));
        assert!(err.to_string().contains("/nonexistent/leads.csv"));
    }

    fn fixture(name: &str) -> std::path::PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/leads")
            .join(name)
    }

    #[test]
    fn the_crm_export_fixture_parses_with_its_bad_rows_reported() {
        let p = parse_path_at(&fixture("crm_export.csv"), paris(), now()).unwrap();
        assert_eq!(p.leads.len(), 9, "{:#?}", p.rejected);
        assert_eq!(p.merged, 2);
        assert_eq!(p.rejected.len(), 2);
        let lines: Vec<usize> = p.rejected.iter().map(|e| e.line).collect();
        assert_eq!(lines, vec![9, 13]);
        assert_eq!(p.rejected[0].field.as_deref(), Some("email"));
        assert_eq!(p.rejected[1].field.as_deref(), Some("timezone"));
        let acme = p
            .leads
            .iter()
            .find(|l| l.lead.email.as_ref().unwrap().as_str() == "jordan.reyes@acmelogistics.com")
            .unwrap();
        assert_eq!(acme.lead.company.as_deref(), Some("Acme Logistics, Inc."));
        assert_eq!(acme.line, 2);
        assert_eq!(
            acme.lead.tags,
            vec!["enterprise", "emea", "webinar", "q3-promo"]
        );
        assert_eq!(acme.lead.title.as_deref(), Some("VP Operations"));
        assert!(p.rejected[0].source.ends_with("crm_export.csv"));
    }

    #[test]
    fn the_jsonl_fixture_parses_with_its_bad_lines_reported() {
        let p = parse_path_at(&fixture("leads.jsonl"), paris(), now()).unwrap();
        assert_eq!(p.leads.len(), 4, "{:#?}", p.rejected);
        assert_eq!(p.merged, 1);
        assert_eq!(p.rejected.len(), 1);
        assert_eq!(p.rejected[0].line, 5);
    }
}
