//! CSV from CRM exports: a header row, then one lead per record.
//!
//! Headers are matched case-insensitively (`First Name` → `first_name`, `E-mail` → `email`);
//! unknown columns become custom fields. A UTF-8 BOM is ignored, quoted cells may hold commas,
//! quotes and line breaks, CRLF and LF both work, and blank lines are skipped. The delimiter is
//! a comma, unless the header row has none and uses `;` or tabs instead (European Excel, TSV).

use std::collections::HashMap;
use std::io::Read;

use ::csv::ByteRecord;
use chrono::{DateTime, Utc};
use chrono_tz::Tz;

use crate::domain::lead::NewLead;

use super::headers::ColumnMap;
use super::rows::{CsvRows, RowRules};
use super::{
    Column, Ctx, Field, IngestError, Parsed, RowBuilder, RowError, finish_parsed, normalise_key,
};

/// Parses a CSV export. Bad rows go to [`Parsed::rejected`]; only whole-file problems (cannot
/// read, not UTF-8 / UTF-16 header, no `email` column) are errors.
pub fn parse_csv<R: Read>(source: &str, reader: R, default_tz: Tz) -> Result<Parsed, IngestError> {
    parse_csv_at(source, reader, default_tz, Utc::now())
}

/// [`parse_csv`] with an explicit "now" (for `--now` and tests).
pub fn parse_csv_at<R: Read>(
    source: &str,
    reader: R,
    default_tz: Tz,
    now: DateTime<Utc>,
) -> Result<Parsed, IngestError> {
    parse_csv_limited(
        source,
        reader,
        default_tz,
        now,
        super::DEFAULT_MAX_FIELD_LENGTH,
    )
}

/// [`parse_csv_at`] with the longest value a field may hold, in characters.
pub fn parse_csv_limited<R: Read>(
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
    let rows = CsvRows::open(source, reader, &rules, &ColumnMap::default())?;
    let rows = rows.collect::<Result<Vec<_>, _>>()?;
    Ok(finish_parsed(rows))
}

/// Comma, unless the first line has no comma but has `;` or a tab.
pub(super) fn sniff_delimiter(data: &[u8]) -> u8 {
    let first_line = data.split(|&b| b == b'\n').next().unwrap_or(&[]);
    let has = |d: u8| first_line.contains(&d);
    if has(b',') {
        b','
    } else if has(b'\t') {
        b'\t'
    } else if has(b';') {
        b';'
    } else {
        b','
    }
}

/// A record with no text in any cell (`,,,` lines that spreadsheets leave behind).
pub(super) fn is_blank(record: &ByteRecord) -> bool {
    record.iter().all(|cell| cell.trim_ascii().is_empty())
}

/// The 1-based line the record's first cell is on, given the bytes from where the reader
/// stood when the record began and that position's line: csv reports where it stood, which is
/// before any blank lines it skipped; step over those.
pub(super) fn record_line(from_start: &[u8], start_line: usize) -> usize {
    let mut line = start_line;
    for &b in from_start {
        match b {
            b'\n' => line = line.saturating_add(1),
            b'\r' => {}
            _ => break,
        }
    }
    line
}

/// The header row as columns, in order (`[import.columns]` applied), and the names as
/// written. Empty headers become `column_N`; two headers that mean the same column, or no
/// `email` column, are whole-file errors.
pub(super) fn header_columns(
    source: &str,
    line: usize,
    record: &ByteRecord,
    map: &ColumnMap,
) -> Result<(Vec<Column>, Vec<String>), IngestError> {
    let mut written = Vec::with_capacity(record.len());
    for cell in record {
        let name = std::str::from_utf8(cell).map_err(|_| IngestError::HeaderNotUtf8 {
            file: source.to_string(),
            line,
        })?;
        written.push(name.trim().to_string());
    }
    let names: Vec<String> = written
        .iter()
        .map(|n| map.target(n).map_or_else(|| n.clone(), str::to_string))
        .collect();
    let mut columns = Vec::with_capacity(names.len());
    let mut seen: HashMap<String, usize> = HashMap::new();
    for (i, name) in names.iter().enumerate() {
        let mut key = normalise_key(name);
        if key.is_empty() {
            key = format!("column_{}", i + 1);
        }
        let column = Column::for_key(&key);
        if let Some(&first) = seen.get(column.name()) {
            return Err(IngestError::DuplicateColumn {
                file: source.to_string(),
                line,
                first: names.get(first).cloned().unwrap_or_default(),
                second: name.clone(),
                key: column.name().to_string(),
            });
        }
        seen.insert(column.name().to_string(), i);
        columns.push(column);
    }
    if !columns.contains(&Column::Known(Field::Email)) {
        return Err(IngestError::MissingEmailColumn {
            file: source.to_string(),
            columns: names.into_iter().filter(|n| !n.is_empty()).collect(),
        });
    }
    Ok((columns, written))
}

pub(super) fn read_row(
    ctx: &Ctx<'_>,
    line: usize,
    columns: &[Column],
    record: &ByteRecord,
) -> Result<NewLead, RowError> {
    if record.len() != columns.len() {
        return Err(ctx.error(
            line,
            None,
            format!(
                "the row has {} cells but the header has {} columns",
                record.len(),
                columns.len()
            ),
        ));
    }
    let mut row = RowBuilder::new(ctx, line);
    for (column, cell) in columns.iter().zip(record.iter()) {
        let text = std::str::from_utf8(cell).map_err(|_| {
            ctx.error(
                line,
                Some(column.name()),
                "is not valid UTF-8 text (save or export the file as UTF-8)",
            )
        })?;
        row.text(column, text)?;
    }
    row.finish()
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 6, 1, 12, 0, 0).unwrap()
    }

    fn paris() -> Tz {
        "Europe/Paris".parse().unwrap()
    }

    fn parse(text: &str) -> Parsed {
        parse_bytes(text.as_bytes())
    }

    fn parse_bytes(bytes: &[u8]) -> Parsed {
        parse_csv_at("leads.csv", bytes, paris(), now()).unwrap()
    }

    fn parse_err(text: &str) -> IngestError {
        parse_csv_at("leads.csv", text.as_bytes(), paris(), now()).unwrap_err()
    }

    fn only_lead(p: &Parsed) -> &NewLead {
        assert!(p.rejected.is_empty(), "{:#?}", p.rejected);
        assert_eq!(p.leads.len(), 1, "{:#?}", p.leads);
        &p.leads[0].lead
    }

    fn only_error(p: &Parsed) -> &RowError {
        assert!(p.leads.is_empty(), "{:#?}", p.leads);
        assert_eq!(p.rejected.len(), 1, "{:#?}", p.rejected);
        &p.rejected[0]
    }

    fn emails(p: &Parsed) -> Vec<&str> {
        p.leads
            .iter()
            .map(|l| l.lead.email.as_ref().map_or("", |e| e.as_str()))
            .collect()
    }

    #[test]
    fn a_simple_row_becomes_a_lead() {
        let p = parse(
            "email,first_name,last_name,company,title,owner_email,owner_name,lost_reason,lost_at,timezone,tags\n\
             ann@ex.com,Ann,Lee,Acme,CTO,rep@ours.com,Sam Rep,budget,2026-03-01,America/New_York,vip;emea\n",
        );
        let l = only_lead(&p);
        assert_eq!(l.email.as_ref().unwrap().as_str(), "ann@ex.com");
        assert_eq!(l.first_name.as_deref(), Some("Ann"));
        assert_eq!(l.last_name.as_deref(), Some("Lee"));
        assert_eq!(l.company.as_deref(), Some("Acme"));
        assert_eq!(l.title.as_deref(), Some("CTO"));
        assert_eq!(l.owner_email.as_ref().unwrap().as_str(), "rep@ours.com");
        assert_eq!(l.owner_name.as_deref(), Some("Sam Rep"));
        assert_eq!(l.lost_reason.as_deref(), Some("budget"));
        assert_eq!(l.timezone, Some("America/New_York".parse().unwrap()));
        assert_eq!(l.tags, vec!["vip", "emea"]);
        assert!(l.fields.is_empty());
        assert_eq!(p.leads[0].line, 2);
        assert_eq!(p.merged, 0);
    }

    #[test]
    fn a_utf8_bom_is_ignored() {
        let p = parse("\u{feff}Email,Company\nann@ex.com,Acme\n");
        assert_eq!(only_lead(&p).company.as_deref(), Some("Acme"));
    }

    #[test]
    fn a_utf16_file_is_refused_clearly() {
        let err = parse_csv_at("leads.csv", &b"\xFF\xFEe\0m\0"[..], paris(), now()).unwrap_err();
        assert!(matches!(err, IngestError::Utf16 { .. }));
        assert!(err.to_string().contains("leads.csv is UTF-16"));
    }

    #[test]
    fn quoted_cells_may_hold_commas() {
        let p = parse("email,company\nann@ex.com,\"Acme, Inc.\"\n");
        assert_eq!(only_lead(&p).company.as_deref(), Some("Acme, Inc."));
    }

    #[test]
    fn quoted_cells_may_hold_doubled_quotes() {
        let p = parse("email,company\nann@ex.com,\"The \"\"Best\"\" Co\"\n");
        assert_eq!(only_lead(&p).company.as_deref(), Some("The \"Best\" Co"));
    }

    #[test]
    fn a_multi_line_custom_cell_is_kept_and_later_line_numbers_stay_right() {
        let p = parse(
            "email,notes,company\n\
             ann@ex.com,\"first line\nsecond line\nthird line\",Acme\n\
             bob@ex.com,ok,Bob Co\n\
             not-an-email,x,y\n",
        );
        assert_eq!(p.leads.len(), 2);
        assert_eq!(
            p.leads[0].lead.fields["notes"],
            "first line\nsecond line\nthird line"
        );
        assert_eq!(p.leads[1].line, 5);
        assert_eq!(p.rejected.len(), 1);
        assert_eq!(p.rejected[0].line, 6);
        assert_eq!(p.rejected[0].field.as_deref(), Some("email"));
    }

    #[test]
    fn a_line_break_inside_a_single_line_field_is_refused() {
        let p = parse("email,company\nann@ex.com,\"Acme\nBcc: evil@x.com\"\nbob@ex.com,Bob Co\n");
        let e = &p.rejected[0];
        assert_eq!((e.line, e.field.as_deref()), (2, Some("company")));
        assert!(e.reason.contains("line break"), "{}", e.reason);
        assert_eq!(p.leads.len(), 1);
        assert_eq!(p.leads[0].line, 4);
    }

    #[test]
    fn a_nul_byte_is_refused() {
        let p = parse("email,first_name,plan\nann@ex.com,A\0nn,pro\nbob@ex.com,Bob,x\0y\n");
        assert_eq!(p.rejected.len(), 2);
        assert_eq!(p.rejected[0].field.as_deref(), Some("first_name"));
        assert_eq!(p.rejected[1].field.as_deref(), Some("plan"));
        assert!(p.rejected[0].reason.contains("NUL"));
    }

    #[test]
    fn crlf_line_ends_work() {
        let p = parse("email,first_name\r\nann@ex.com,Ann\r\nbob@ex.com,Bob\r\nbad,Bad\r\n");
        assert_eq!(emails(&p), vec!["ann@ex.com", "bob@ex.com"]);
        assert_eq!(p.leads[1].lead.first_name.as_deref(), Some("Bob"));
        assert_eq!(p.leads[1].line, 3);
        assert_eq!(p.rejected[0].line, 4);
    }

    #[test]
    fn crlf_inside_a_quoted_cell_keeps_line_numbers_right() {
        let p = parse("email,notes\r\nann@ex.com,\"a\r\nb\"\r\nbad,x\r\n");
        assert_eq!(p.leads[0].lead.fields["notes"], "a\r\nb");
        assert_eq!(p.rejected[0].line, 4);
    }

    #[test]
    fn a_file_without_a_final_line_end_keeps_its_last_row() {
        let p = parse("email\nann@ex.com\nbob@ex.com");
        assert_eq!(emails(&p), vec!["ann@ex.com", "bob@ex.com"]);
    }

    #[test]
    fn blank_lines_are_skipped_and_do_not_shift_line_numbers() {
        let p = parse("\n\nemail,first_name\n\nann@ex.com,Ann\n\r\n,\n  , \nbad,Bad\n\n");
        assert_eq!(emails(&p), vec!["ann@ex.com"]);
        assert_eq!(p.leads[0].line, 5);
        assert_eq!(p.rejected.len(), 1);
        assert_eq!(p.rejected[0].line, 9);
    }

    #[test]
    fn crm_header_variants_are_recognised() {
        let p = parse(
            "EMAIL,First Name,LAST-NAME, Company ,Owner Email,Lost Reason,Lost At,Time Zone,Tags\n\
             Ann@Ex.com,Ann,Lee,Acme,rep@ours.com,budget,2026-03-01,UTC,a\n",
        );
        let l = only_lead(&p);
        assert_eq!(l.email.as_ref().unwrap().as_str(), "ann@ex.com");
        assert_eq!(l.first_name.as_deref(), Some("Ann"));
        assert_eq!(l.last_name.as_deref(), Some("Lee"));
        assert_eq!(l.company.as_deref(), Some("Acme"));
        assert_eq!(l.owner_email.as_ref().unwrap().as_str(), "rep@ours.com");
        assert_eq!(l.lost_reason.as_deref(), Some("budget"));
        assert_eq!(l.timezone, Some(Tz::UTC));
        assert!(l.lost_at.is_some());
        assert!(l.fields.is_empty(), "{:?}", l.fields);
    }

    #[test]
    fn e_mail_and_email_address_headers_mean_email() {
        for header in ["E-mail", "Email Address", "e-mail address", "email"] {
            let p = parse(&format!("{header},company\nann@ex.com,Acme\n"));
            assert_eq!(emails(&p), vec!["ann@ex.com"], "{header}");
        }
    }

    #[test]
    fn a_missing_email_column_is_a_file_error_naming_the_columns_found() {
        let err = parse_err("First Name,Company\nAnn,Acme\n");
        assert!(matches!(err, IngestError::MissingEmailColumn { .. }));
        let msg = err.to_string();
        assert!(msg.starts_with("leads.csv: no `email` column"), "{msg}");
        assert!(msg.contains("`First Name`, `Company`"), "{msg}");
    }

    #[test]
    fn two_headers_meaning_the_same_column_are_a_file_error() {
        let err = parse_err("Email,E-mail\na@ex.com,b@ex.com\n");
        assert!(matches!(err, IngestError::DuplicateColumn { .. }));
        assert!(
            err.to_string()
                .contains("`Email` and `E-mail` both mean `email`")
        );
    }

    #[test]
    fn an_empty_file_is_a_file_error() {
        for text in ["", "\n\n", "\u{feff}"] {
            assert!(
                matches!(parse_err(text), IngestError::Empty { .. }),
                "{text:?}"
            );
        }
    }

    #[test]
    fn a_file_with_only_a_header_has_no_leads() {
        let p = parse("email,first_name,company\n");
        assert_eq!(p, Parsed::default());
        let p = parse("email,first_name,company");
        assert_eq!(p, Parsed::default());
    }

    #[test]
    fn a_missing_email_cell_is_a_row_error() {
        let p = parse("first_name,email,company\nAnn,,Acme\nBob,   ,Bob Co\n");
        assert_eq!(p.rejected.len(), 2);
        for (e, line) in p.rejected.iter().zip([2, 3]) {
            assert_eq!(e.line, line);
            assert_eq!(e.field.as_deref(), Some("email"));
            assert_eq!(e.reason, "missing email");
        }
        assert_eq!(
            p.rejected[0].to_string(),
            "leads.csv:2: field `email`: missing email"
        );
    }

    #[test]
    fn an_invalid_email_is_a_row_error_quoting_it() {
        let p = parse("email,company\nann at ex.com,Acme\n");
        let e = only_error(&p);
        assert_eq!(e.field.as_deref(), Some("email"));
        assert!(e.reason.contains("`ann at ex.com`"), "{}", e.reason);
    }

    #[test]
    fn an_invalid_owner_email_is_a_row_error() {
        let p = parse("email,owner_email\nann@ex.com,sam@localhost\n");
        let e = only_error(&p);
        assert_eq!(e.field.as_deref(), Some("owner_email"));
        assert!(e.reason.contains("`sam@localhost`"), "{}", e.reason);
    }

    #[test]
    fn a_date_only_lost_at_is_midnight_in_the_leads_own_zone() {
        let p = parse("email,lost_at,timezone\nann@ex.com,2026-03-01,Asia/Tokyo\n");
        assert_eq!(
            only_lead(&p).lost_at,
            Some(Utc.with_ymd_and_hms(2026, 2, 28, 15, 0, 0).unwrap())
        );
    }

    #[test]
    fn a_date_only_lost_at_without_a_zone_uses_the_default_zone() {
        let p = parse("email,lost_at,timezone\nann@ex.com,2026-03-01,\n");
        assert_eq!(
            only_lead(&p).lost_at,
            Some(Utc.with_ymd_and_hms(2026, 2, 28, 23, 0, 0).unwrap())
        );
        let p = parse_csv_at(
            "x.csv",
            &b"email,lost_at\nann@ex.com,2026-03-01\n"[..],
            Tz::UTC,
            now(),
        )
        .unwrap();
        assert_eq!(
            only_lead(&p).lost_at,
            Some(Utc.with_ymd_and_hms(2026, 3, 1, 0, 0, 0).unwrap())
        );
    }

    #[test]
    fn a_local_date_time_lost_at_is_in_the_leads_zone() {
        let p = parse("email,lost_at,timezone\nann@ex.com,2026-03-01 09:15,America/New_York\n");
        assert_eq!(
            only_lead(&p).lost_at,
            Some(Utc.with_ymd_and_hms(2026, 3, 1, 14, 15, 0).unwrap())
        );
    }

    #[test]
    fn an_rfc3339_lost_at_with_an_offset_is_exact_whatever_the_zone() {
        let p = parse(
            "email,lost_at,timezone\n\
             ann@ex.com,2026-03-01T09:00:00+02:00,Asia/Tokyo\n\
             bob@ex.com,2026-03-01T09:00:00Z,\n",
        );
        assert_eq!(
            p.leads[0].lead.lost_at,
            Some(Utc.with_ymd_and_hms(2026, 3, 1, 7, 0, 0).unwrap())
        );
        assert_eq!(
            p.leads[1].lead.lost_at,
            Some(Utc.with_ymd_and_hms(2026, 3, 1, 9, 0, 0).unwrap())
        );
    }

    #[test]
    fn a_bad_date_is_a_row_error_naming_the_formats() {
        let p = parse("email,lost_at\nann@ex.com,31/02/2026\n");
        assert_eq!(
            only_error(&p).to_string(),
            "leads.csv:2: field `lost_at`: `31/02/2026` is not a date (expected YYYY-MM-DD or RFC 3339 like 2026-03-01T09:00:00Z)"
        );
    }

    #[test]
    fn a_lost_at_in_the_future_is_a_row_error() {
        let p = parse("email,lost_at\nann@ex.com,2026-06-03\nbob@ex.com,2026-06-02\n");
        let e = &p.rejected[0];
        assert_eq!((e.line, e.field.as_deref()), (2, Some("lost_at")));
        assert!(e.reason.contains("in the future"), "{}", e.reason);
        assert_eq!(emails(&p), vec!["bob@ex.com"]);
    }

    #[test]
    fn the_real_clock_is_used_for_the_future_check_by_default() {
        let p = parse_csv(
            "x.csv",
            &b"email,lost_at\nann@ex.com,2999-01-01\n"[..],
            Tz::UTC,
        )
        .unwrap();
        assert!(p.rejected[0].reason.contains("in the future"));
    }

    #[test]
    fn an_unknown_time_zone_is_a_row_error() {
        let p = parse("email,timezone\nann@ex.com,Mars/Olympus\n");
        let e = only_error(&p);
        assert_eq!(e.field.as_deref(), Some("timezone"));
        assert!(
            e.reason.starts_with("unknown time zone `Mars/Olympus`"),
            "{}",
            e.reason
        );
    }

    #[test]
    fn tags_are_trimmed_with_empties_and_duplicates_dropped() {
        let p = parse("email,tags\nann@ex.com,\" vip ;; emea, webinar ,vip;EMEA ;\"\n");
        assert_eq!(only_lead(&p).tags, vec!["vip", "emea", "webinar"]);
    }

    #[test]
    fn custom_fields_are_kept_and_empty_ones_omitted() {
        let p = parse(
            "email,Plan,Seat Count,Industry,\n\
             ann@ex.com, pro ,25,,\n",
        );
        let l = only_lead(&p);
        let fields: Vec<(&str, &str)> = l
            .fields
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        assert_eq!(fields, vec![("plan", "pro"), ("seat_count", "25")]);
    }

    #[test]
    fn a_cell_under_an_empty_header_is_kept_as_a_numbered_field() {
        let p = parse("email,,plan\nann@ex.com,orphan,pro\n");
        assert_eq!(only_lead(&p).fields["column_2"], "orphan");
    }

    #[test]
    fn duplicate_emails_in_different_case_are_merged() {
        let p = parse(
            "email,first_name,company,tags,plan,seats\n\
             Ann@Ex.com,Ann,Old Co,vip;emea,basic,3\n\
             bob@ex.com,Bob,Bob Co,,,\n\
             ANN@EX.COM,,New Co,EMEA;webinar,pro,\n",
        );
        assert!(p.rejected.is_empty());
        assert_eq!(p.merged, 1);
        assert_eq!(emails(&p), vec!["ann@ex.com", "bob@ex.com"]);
        let ann = &p.leads[0];
        assert_eq!(ann.line, 2);
        assert_eq!(ann.lead.first_name.as_deref(), Some("Ann"));
        assert_eq!(ann.lead.company.as_deref(), Some("New Co"));
        assert_eq!(ann.lead.tags, vec!["vip", "emea", "webinar"]);
        assert_eq!(ann.lead.fields["plan"], "pro");
        assert_eq!(ann.lead.fields["seats"], "3");
    }

    #[test]
    fn a_bad_row_is_not_merged_into_a_good_one() {
        let p = parse("email,timezone,company\nann@ex.com,UTC,Acme\nANN@ex.com,Nowhere,Evil\n");
        assert_eq!(p.merged, 0);
        assert_eq!(p.leads[0].lead.company.as_deref(), Some("Acme"));
        assert_eq!(p.rejected.len(), 1);
    }

    #[test]
    fn ragged_rows_are_row_errors_not_panics() {
        let p = parse(
            "email,first_name,company\n\
             ann@ex.com,Ann\n\
             bob@ex.com,Bob,Bob Co,extra\n\
             cat@ex.com,Cat,Cat Co\n",
        );
        assert_eq!(emails(&p), vec!["cat@ex.com"]);
        assert_eq!(p.rejected.len(), 2);
        assert_eq!(p.rejected[0].line, 2);
        assert_eq!(p.rejected[0].field, None);
        assert_eq!(
            p.rejected[0].reason,
            "the row has 2 cells but the header has 3 columns"
        );
        assert_eq!(p.rejected[1].line, 3);
        assert!(p.rejected[1].reason.contains("has 4 cells"));
    }

    #[test]
    fn an_unterminated_quote_is_reported_not_a_panic() {
        let p = parse("email,company\nann@ex.com,\"Acme\nbob@ex.com,Bob\n");
        assert!(p.leads.is_empty());
        assert_eq!(p.rejected.len(), 1);
        assert_eq!(p.rejected[0].line, 2);
    }

    #[test]
    fn a_row_that_is_not_utf8_is_a_row_error_and_the_rest_is_kept() {
        let p = parse_bytes(
            b"email,company\nann@ex.com,Soci\xe9t\xe9 G\xe9n\xe9rale\nbob@ex.com,Bob\n",
        );
        assert_eq!(emails(&p), vec!["bob@ex.com"]);
        let e = &p.rejected[0];
        assert_eq!((e.line, e.field.as_deref()), (2, Some("company")));
        assert!(e.reason.contains("not valid UTF-8"), "{}", e.reason);
    }

    #[test]
    fn a_header_that_is_not_utf8_is_a_file_error() {
        let err = parse_csv_at(
            "leads.csv",
            &b"email,soci\xe9t\xe9\nann@ex.com,x\n"[..],
            paris(),
            now(),
        )
        .unwrap_err();
        assert!(matches!(err, IngestError::HeaderNotUtf8 { line: 1, .. }));
        assert!(err.to_string().contains("save or export the file as UTF-8"));
    }

    #[test]
    fn semicolon_and_tab_separated_exports_are_read() {
        let p = parse("email;company;tags\nann@ex.com;Acme, Inc.;\"a;b\"\n");
        let l = only_lead(&p);
        assert_eq!(l.company.as_deref(), Some("Acme, Inc."));
        assert_eq!(l.tags, vec!["a", "b"]);
        let p = parse("email\tcompany\nann@ex.com\tAcme\n");
        assert_eq!(only_lead(&p).company.as_deref(), Some("Acme"));
    }

    #[test]
    fn a_row_with_several_problems_reports_the_first() {
        let p = parse("owner_email,email,timezone\nbad,also bad,Mars/Olympus\n");
        assert_eq!(only_error(&p).field.as_deref(), Some("owner_email"));
    }

    #[test]
    fn nothing_is_kept_from_a_bad_row() {
        let p = parse("email,company,timezone\nann@ex.com,Acme,Nowhere/Land\n");
        assert!(p.leads.is_empty());
        assert_eq!(p.rejected.len(), 1);
    }

    #[test]
    fn hostile_input_never_panics() {
        let inputs: [&[u8]; 8] = [
            b"\"",
            b"email\n\"",
            b"email\n\"\"\"\n",
            b"email,\xff\xfe\n",
            b"email\n\0\0\0\n",
            b"\xEF\xBB\xBF",
            b"email,a\n,,,,,,,,\n\"a\"b\"c,\n",
            b"email,lost_at\na@ex.com,+262143-12-31\na@ex.com,-262143-01-01\n",
        ];
        for input in inputs {
            let _ = parse_csv_at("x.csv", input, paris(), now());
        }
    }
}
