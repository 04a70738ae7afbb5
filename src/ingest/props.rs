//! Property tests of the readers: no bytes make the CSV or JSON Lines reader panic, and
//! whatever rows they accept carry a valid email and respect the field length limit; every
//! other row is a rejection with its line. Few cases per property (CI stays fast).

use chrono::{DateTime, Utc};
use proptest::prelude::*;

use super::csv::parse_csv_limited;
use super::jsonl::parse_jsonl_limited;
use super::{Parsed, lead_from_json_limited};

fn now() -> DateTime<Utc> {
    DateTime::from_timestamp(1_772_445_600, 0).unwrap_or_default() // 2026-03-02 10:00 UTC
}

/// A cell: anything, or something close to a real value (quotes, separators, line breaks,
/// non-ASCII, dates, zones).
fn cell() -> impl Strategy<Value = String> {
    prop_oneof![
        ".{0,30}",
        "[a-z.+\"]{1,12}@[a-z]{1,8}\\.[a-z]{2,3}",
        "\"[^\"]{0,10}\"",
        "[0-9]{4}-[0-9]{2}-[0-9]{2}",
        Just("Europe/Paris".to_string()),
        Just("a;b;c".to_string()),
        Just("line\nbreak".to_string()),
        Just("comma, inside".to_string()),
    ]
}

/// A CSV text: a header among the known columns (and a custom one) and some rows of cells,
/// quoted or not.
fn csv_text() -> impl Strategy<Value = String> {
    let header = proptest::sample::subsequence(
        vec![
            "email",
            "first_name",
            "company",
            "lost_at",
            "timezone",
            "tags",
            "owner_email",
            "note",
        ],
        1..8,
    );
    (
        header,
        proptest::collection::vec(proptest::collection::vec(cell(), 0..9), 0..8),
        any::<bool>(),
    )
        .prop_map(|(header, rows, quote)| {
            let mut out = header.join(",");
            out.push('\n');
            for row in rows {
                let cells: Vec<String> = row
                    .iter()
                    .map(|c| {
                        if quote {
                            format!("\"{}\"", c.replace('"', "\"\""))
                        } else {
                            c.clone()
                        }
                    })
                    .collect();
                out.push_str(&cells.join(","));
                out.push('\n');
            }
            out
        })
}

/// Every accepted lead has an email and no field longer than `max` characters.
fn check(parsed: &Parsed, max: usize) -> Result<(), TestCaseError> {
    for p in &parsed.leads {
        prop_assert!(p.lead.email.is_some());
        for v in [&p.lead.first_name, &p.lead.company, &p.lead.lost_reason]
            .into_iter()
            .flatten()
        {
            prop_assert!(v.chars().count() <= max, "{v:?} over {max}");
        }
        for v in p.lead.fields.values() {
            prop_assert!(v.chars().count() <= max);
        }
    }
    for r in &parsed.rejected {
        prop_assert!(r.line >= 1, "a rejection names its line: {r}");
        prop_assert!(!r.reason.is_empty());
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn no_bytes_make_the_csv_reader_panic(bytes in proptest::collection::vec(any::<u8>(), 0..400)) {
        if let Ok(parsed) = parse_csv_limited("p.csv", bytes.as_slice(), chrono_tz::UTC, now(), 20) {
            check(&parsed, 20)?;
        }
    }

    #[test]
    fn csv_like_text_is_read_into_leads_and_line_numbered_rejections(text in csv_text(), max in 1usize..40) {
        if let Ok(parsed) = parse_csv_limited("p.csv", text.as_bytes(), chrono_tz::Europe::Paris, now(), max) {
            check(&parsed, max)?;
        }
    }

    #[test]
    fn no_bytes_make_the_jsonl_reader_panic(bytes in proptest::collection::vec(any::<u8>(), 0..400)) {
        if let Ok(parsed) = parse_jsonl_limited("p.jsonl", bytes.as_slice(), chrono_tz::UTC, now(), 20) {
            check(&parsed, 20)?;
        }
    }

    #[test]
    fn json_objects_of_any_shape_are_a_lead_or_an_error(
        keys in proptest::collection::vec(prop_oneof![Just("email".to_string()), Just("tags".to_string()), Just("fields".to_string()), Just("lost_at".to_string()), "[a-z_]{1,8}"], 0..6),
        values in proptest::collection::vec(prop_oneof![
            cell().prop_map(serde_json::Value::String),
            any::<i64>().prop_map(serde_json::Value::from),
            any::<bool>().prop_map(serde_json::Value::Bool),
            Just(serde_json::Value::Null),
            proptest::collection::vec(cell(), 0..3).prop_map(|v| serde_json::json!(v)),
            (cell(), cell()).prop_map(|(k, v)| serde_json::json!({ k: v })),
        ], 0..6),
    ) {
        let object: serde_json::Map<String, serde_json::Value> = keys.into_iter().zip(values).collect();
        let value = serde_json::Value::Object(object);
        if let Ok(lead) = lead_from_json_limited("api", 0, &value, chrono_tz::UTC, now(), 30) {
            prop_assert!(lead.email.is_some());
        }
        // Not an object at all: an error, never a panic.
        let _ = lead_from_json_limited("api", 0, &serde_json::json!([value]), chrono_tz::UTC, now(), 30);
    }
}
