//! Leads in: CRM exports (CSV) and JSON lines, validated row by row.
//!
//! Both formats share one set of rules (see [`lead_from_json`] and the column list in
//! [`Field`]): a bad row becomes a [`RowError`] with its file and line, never a panic and never
//! a silent drop; a file we cannot read at all becomes an [`IngestError`]. Rows with the same
//! normalised email are folded into the first one ([`merge_duplicates`]).

pub mod checked;
pub mod chunks;
pub mod csv;
mod fields;
pub mod headers;
mod json;
pub mod jsonl;
mod merge;
pub mod owners;
#[cfg(test)]
mod props;
pub mod quality;
pub mod rows;

use std::fmt;
use std::path::Path;

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use serde_json::Value;

use crate::domain::lead::NewLead;
use fields::*;
use json::*;
pub use merge::merge_duplicates;

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
    #[error(
        "{file} changed while it was being imported (it is read twice: checked, then written); import it again once it is complete"
    )]
    Changed { file: String },
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
    /// Emails whose rows name different owners, with every row's claim (before folding;
    /// `checked` applies `import.owner_conflict` to them).
    pub owner_claims: Vec<(crate::domain::email::EmailAddress, Vec<quality::OwnerClaim>)>,
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

/// The longest value a lead's field may hold, in characters, unless configured
/// (`ingest.max_field_length`).
pub const DEFAULT_MAX_FIELD_LENGTH: usize = 1_000;

/// [`parse_path`] with an explicit "now" (for `--now` and tests).
pub fn parse_path_at(
    path: &Path,
    default_tz: Tz,
    now: DateTime<Utc>,
) -> Result<Parsed, IngestError> {
    parse_path_limited(path, default_tz, now, DEFAULT_MAX_FIELD_LENGTH)
}

/// [`parse_path_at`] with the longest value a field may hold, in characters.
pub fn parse_path_limited(
    path: &Path,
    default_tz: Tz,
    now: DateTime<Utc>,
    max_len: usize,
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
        FileKind::Csv => csv::parse_csv_limited(&file, handle, default_tz, now, max_len),
        FileKind::Jsonl => jsonl::parse_jsonl_limited(
            &file,
            std::io::BufReader::new(handle),
            default_tz,
            now,
            max_len,
        ),
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
    lead_from_json_limited(
        source,
        line,
        value,
        default_tz,
        now,
        DEFAULT_MAX_FIELD_LENGTH,
    )
}

/// [`lead_from_json_at`] with the longest value a field may hold, in characters.
pub fn lead_from_json_limited(
    source: &str,
    line: usize,
    value: &Value,
    default_tz: Tz,
    now: DateTime<Utc>,
    max_len: usize,
) -> Result<NewLead, RowError> {
    let ctx = Ctx {
        source,
        default_tz,
        now,
        max_len,
    };
    json_lead(&ctx, line, value)
}

/// Sorts rows into leads and rejections, then folds duplicates.
pub(crate) fn finish_parsed(rows: Vec<Result<ParsedLead, RowError>>) -> Parsed {
    let mut leads = Vec::new();
    let mut rejected = Vec::new();
    for row in rows {
        match row {
            Ok(lead) => leads.push(lead),
            Err(error) => rejected.push(error),
        }
    }
    let owner_claims = owners::conflicting_claims(&leads);
    let (leads, merged) = merge_duplicates(leads);
    Parsed {
        leads,
        rejected,
        merged,
        owner_claims,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::email::EmailAddress;
    use chrono::TimeZone;
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
