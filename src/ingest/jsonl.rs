//! JSON lines: one JSON object per line, with the same keys and rules as a CSV row (see
//! [`super::lead_from_json`]). Blank lines are skipped; a line that is not JSON, not an object,
//! or not UTF-8 is a [`RowError`] with its line number.

use std::io::BufRead;

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use serde_json::Value;

use super::headers::ColumnMap;
use super::rows::{JsonlRows, RowRules};
use super::{Ctx, IngestError, Parsed, RowError, finish_parsed};

/// Parses JSON lines. Bad lines go to [`Parsed::rejected`]; only a read failure (or a UTF-16
/// file) is an error.
pub fn parse_jsonl<R: BufRead>(
    source: &str,
    reader: R,
    default_tz: Tz,
) -> Result<Parsed, IngestError> {
    parse_jsonl_at(source, reader, default_tz, Utc::now())
}

/// [`parse_jsonl`] with an explicit "now" (for `--now` and tests).
pub fn parse_jsonl_at<R: BufRead>(
    source: &str,
    reader: R,
    default_tz: Tz,
    now: DateTime<Utc>,
) -> Result<Parsed, IngestError> {
    parse_jsonl_limited(
        source,
        reader,
        default_tz,
        now,
        super::DEFAULT_MAX_FIELD_LENGTH,
    )
}

/// [`parse_jsonl_at`] with the longest value a field may hold, in characters.
pub fn parse_jsonl_limited<R: BufRead>(
    source: &str,
    reader: R,
    default_tz: Tz,
    now: DateTime<Utc>,
    max_len: usize,
) -> Result<Parsed, IngestError> {
    let rules = RowRules {
        default_tz,
        now,
        max_len,
    };
    let rows = JsonlRows::new(source, reader, &rules, &ColumnMap::default());
    let rows = rows.collect::<Result<Vec<_>, _>>()?;
    Ok(finish_parsed(rows))
}

/// One line as JSON: `None` when blank, else the value or why not.
pub(super) fn read_value(
    ctx: &Ctx<'_>,
    line: usize,
    bytes: &[u8],
) -> Option<Result<Value, RowError>> {
    let Ok(text) = std::str::from_utf8(bytes) else {
        return Some(Err(ctx.error(
            line,
            None,
            "the line is not valid UTF-8 text (save or export the file as UTF-8)",
        )));
    };
    let text = text.trim();
    if text.is_empty() {
        return None;
    }
    match serde_json::from_str(text) {
        Ok(value) => Some(Ok(value)),
        Err(e) => Some(Err(ctx.error(line, None, json_error(&e)))),
    }
}

/// `serde_json`'s message without its "at line 1 column N" (the line is ours to tell).
fn json_error(e: &serde_json::Error) -> String {
    let message = e.to_string();
    let suffix = format!(" at line {} column {}", e.line(), e.column());
    let message = message.strip_suffix(&suffix).unwrap_or(&message);
    format!("not valid JSON: {message} (column {})", e.column())
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 6, 1, 12, 0, 0).unwrap()
    }

    fn parse(text: &str) -> Parsed {
        parse_jsonl_at("leads.jsonl", text.as_bytes(), Tz::UTC, now()).unwrap()
    }

    fn emails(p: &Parsed) -> Vec<&str> {
        p.leads
            .iter()
            .map(|l| l.lead.email.as_ref().map_or("", |e| e.as_str()))
            .collect()
    }

    #[test]
    fn each_line_is_one_lead() {
        let p = parse(
            "{\"email\":\"ann@ex.com\",\"first_name\":\"Ann\"}\n\
             {\"Email\":\"bob@ex.com\",\"Company\":\"Bob Co\"}\n",
        );
        assert!(p.rejected.is_empty());
        assert_eq!(emails(&p), vec!["ann@ex.com", "bob@ex.com"]);
        assert_eq!(p.leads[1].line, 2);
        assert_eq!(p.leads[1].lead.company.as_deref(), Some("Bob Co"));
    }

    #[test]
    fn tags_may_be_an_array_of_strings() {
        let p = parse("{\"email\":\"a@ex.com\",\"tags\":[\" vip \",\"\",\"emea\",\"VIP\"]}\n");
        assert_eq!(p.leads[0].lead.tags, vec!["vip", "emea"]);
    }

    #[test]
    fn tags_may_be_a_semicolon_separated_string() {
        let p = parse("{\"email\":\"a@ex.com\",\"tags\":\"vip; emea;;\"}\n");
        assert_eq!(p.leads[0].lead.tags, vec!["vip", "emea"]);
    }

    #[test]
    fn a_fields_object_gives_custom_fields_as_text() {
        let p = parse(
            "{\"email\":\"a@ex.com\",\"fields\":{\"plan\":\"pro\",\"seats\":25,\"trial\":false,\"gone\":null,\"blank\":\" \"}}\n",
        );
        let fields = &p.leads[0].lead.fields;
        assert_eq!(fields.len(), 3, "{fields:?}");
        assert_eq!(fields["plan"], "pro");
        assert_eq!(fields["seats"], "25");
        assert_eq!(fields["trial"], "false");
    }

    #[test]
    fn extra_top_level_keys_become_custom_fields() {
        let p = parse("{\"email\":\"a@ex.com\",\"Deal Size\":1200,\"region\":\"EMEA\"}\n");
        let fields = &p.leads[0].lead.fields;
        assert_eq!(fields["deal_size"], "1200");
        assert_eq!(fields["region"], "EMEA");
    }

    #[test]
    fn a_line_that_is_not_json_is_a_row_error_with_its_line() {
        let p = parse(
            "{\"email\":\"a@ex.com\"}\n{\"email\": \"b@ex.com\",\n{\"email\":\"c@ex.com\"}\n",
        );
        assert_eq!(emails(&p), vec!["a@ex.com", "c@ex.com"]);
        assert_eq!(p.rejected.len(), 1);
        let e = &p.rejected[0];
        assert_eq!((e.line, e.field.as_deref()), (2, None));
        assert!(e.reason.starts_with("not valid JSON: "), "{}", e.reason);
        assert!(!e.reason.contains("at line"), "{}", e.reason);
        assert!(e.to_string().starts_with("leads.jsonl:2: not valid JSON"));
    }

    #[test]
    fn a_line_that_is_not_an_object_is_a_row_error() {
        let p = parse("[\"a@ex.com\"]\n\"a@ex.com\"\n42\nnull\n");
        let lines: Vec<usize> = p.rejected.iter().map(|e| e.line).collect();
        assert_eq!(lines, vec![1, 2, 3, 4]);
        assert_eq!(p.rejected[0].reason, "expected a JSON object, got an array");
        assert_eq!(p.rejected[3].reason, "expected a JSON object, got null");
    }

    #[test]
    fn blank_lines_are_skipped_but_counted() {
        let p = parse("\n  \n{\"email\":\"a@ex.com\"}\r\n\r\n\n{\"email\":\"nope\"}\n\n");
        assert_eq!(p.leads[0].line, 3);
        assert_eq!(p.rejected[0].line, 6);
    }

    #[test]
    fn an_empty_input_has_no_leads() {
        assert_eq!(parse(""), Parsed::default());
        assert_eq!(parse("\n\n"), Parsed::default());
    }

    #[test]
    fn a_bom_on_the_first_line_is_ignored() {
        let p = parse("\u{feff}{\"email\":\"a@ex.com\"}\n");
        assert_eq!(emails(&p), vec!["a@ex.com"]);
    }

    #[test]
    fn a_line_that_is_not_utf8_is_a_row_error() {
        let p = parse_jsonl_at(
            "x.jsonl",
            &b"{\"email\":\"a@ex.com\",\"company\":\"Soci\xe9t\xe9\"}\n{\"email\":\"b@ex.com\"}\n"
                [..],
            Tz::UTC,
            now(),
        )
        .unwrap();
        assert_eq!(emails(&p), vec!["b@ex.com"]);
        assert_eq!(p.rejected[0].line, 1);
        assert!(p.rejected[0].reason.contains("not valid UTF-8"));
    }

    #[test]
    fn row_rules_are_the_csv_ones() {
        let p = parse(
            "{\"first_name\":\"Ann\"}\n\
             {\"email\":\"a@ex.com\",\"owner_email\":\"rep@\"}\n\
             {\"email\":\"a@ex.com\",\"timezone\":\"Mars/Olympus\"}\n\
             {\"email\":\"a@ex.com\",\"lost_at\":\"31/02/2026\"}\n\
             {\"email\":\"a@ex.com\",\"lost_at\":\"2027-01-01\"}\n\
             {\"email\":\"a@ex.com\",\"lost_at\":20260301}\n",
        );
        assert!(p.leads.is_empty());
        let fields: Vec<Option<&str>> = p.rejected.iter().map(|e| e.field.as_deref()).collect();
        assert_eq!(
            fields,
            vec![
                Some("email"),
                Some("owner_email"),
                Some("timezone"),
                Some("lost_at"),
                Some("lost_at"),
                Some("lost_at")
            ]
        );
        assert_eq!(p.rejected[0].reason, "missing email");
    }

    #[test]
    fn a_date_only_lost_at_uses_the_leads_zone_then_the_default() {
        let p = parse(
            "{\"email\":\"a@ex.com\",\"lost_at\":\"2026-03-01\",\"timezone\":\"Europe/Paris\"}\n\
             {\"email\":\"b@ex.com\",\"lost_at\":\"2026-03-01\"}\n",
        );
        assert_eq!(
            p.leads[0].lead.lost_at,
            Some(Utc.with_ymd_and_hms(2026, 2, 28, 23, 0, 0).unwrap())
        );
        assert_eq!(
            p.leads[1].lead.lost_at,
            Some(Utc.with_ymd_and_hms(2026, 3, 1, 0, 0, 0).unwrap())
        );
    }

    #[test]
    fn duplicate_emails_across_lines_are_merged() {
        let p = parse(
            "{\"email\":\"Ann@ex.com\",\"tags\":[\"a\"],\"company\":\"Old\"}\n\
             {\"email\":\"ann@EX.com\",\"tags\":[\"b\",\"A\"],\"company\":\"New\",\"title\":null}\n",
        );
        assert_eq!(p.merged, 1);
        assert_eq!(p.leads.len(), 1);
        let l = &p.leads[0].lead;
        assert_eq!(l.company.as_deref(), Some("New"));
        assert_eq!(l.tags, vec!["a", "b"]);
    }

    #[test]
    fn hostile_input_never_panics() {
        let deep = format!("{}{}", "[".repeat(10_000), "]".repeat(10_000));
        let inputs = [
            "{".to_string(),
            "}".to_string(),
            "\u{0}".to_string(),
            deep,
            "{\"email\":\"a@ex.com\",\"lost_at\":\"+262143-12-31T23:59:59-23:59\"}".to_string(),
            "{\"\":1}".to_string(),
            "{\"fields\":{\"\":1},\"email\":\"a@ex.com\"}".to_string(),
        ];
        for input in inputs {
            let _ = parse_jsonl_at("x.jsonl", input.as_bytes(), Tz::UTC, now());
        }
    }
}
