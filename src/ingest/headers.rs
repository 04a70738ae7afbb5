//! CRM headers: `[import.columns]` maps a CRM's own column names (`"Lost Date" = "lost_at"`)
//! onto lead fields, for CSV headers and JSON Lines keys alike; and a header that is not a
//! known field but is close to one (edit distance) is reported with the suggestion, because
//! it would otherwise silently become a custom field.
//!
//! The mapping rewrites the header row (or each line's keys) before the parser reads it, so
//! the parser, its line numbers and its errors are unchanged.

use std::borrow::Cow;
use std::collections::BTreeMap;

use super::fields::{Field, normalise_key};

/// Every key the parser understands (canonical names and their aliases), normalised.
pub const KNOWN_KEYS: &[&str] = &[
    "email",
    "e_mail",
    "email_address",
    "e_mail_address",
    "first_name",
    "firstname",
    "last_name",
    "lastname",
    "company",
    "title",
    "owner_email",
    "owner_name",
    "lost_reason",
    "lost_at",
    "timezone",
    "time_zone",
    "tags",
];

/// `[import.columns]`, keys and targets normalised like headers.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ColumnMap {
    map: BTreeMap<String, String>,
}

impl ColumnMap {
    /// From the config's table: header as written → field (or custom field) name. Err names
    /// each entry that cannot work.
    pub fn new(raw: &BTreeMap<String, String>) -> Result<ColumnMap, Vec<String>> {
        let mut map = BTreeMap::new();
        let mut errors = Vec::new();
        for (header, target) in raw {
            let (from, to) = (normalise_key(header), normalise_key(target));
            if from.is_empty() || to.is_empty() {
                errors.push(format!(
                    "`{header}` = `{target}`: both sides must name a column"
                ));
                continue;
            }
            if Field::from_key(&from).is_some() {
                errors.push(format!(
                    "`{header}` already means `{from}`: map only headers rewarm does not know"
                ));
                continue;
            }
            map.insert(from, to);
        }
        if errors.is_empty() {
            Ok(ColumnMap { map })
        } else {
            Err(errors)
        }
    }

    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    /// The field a header (as written) is mapped to, if it is.
    pub fn target(&self, header: &str) -> Option<&str> {
        self.map.get(&normalise_key(header)).map(String::as_str)
    }
}

/// Levenshtein distance between two strings, by characters.
pub fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut diagonal = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let above = row[j + 1];
            row[j + 1] = if ca == *cb {
                diagonal
            } else {
                1 + diagonal.min(above).min(row[j])
            };
            diagonal = above;
        }
    }
    row[b.len()]
}

/// The known field an unknown normalised key probably means: the canonical name of the
/// closest known key within 2 edits (1 for keys of 4 characters or fewer), if any.
pub fn suggestion(key: &str) -> Option<&'static str> {
    if Field::from_key(key).is_some() {
        return None;
    }
    let allowed = if key.chars().count() <= 4 { 1 } else { 2 };
    KNOWN_KEYS
        .iter()
        .map(|k| (edit_distance(key, k), *k))
        .filter(|(d, _)| *d <= allowed)
        .min()
        .and_then(|(_, k)| Field::from_key(k))
        .map(Field::name)
}

/// A warning for each header (as written) that is neither known nor mapped but close to a
/// known field.
pub fn header_warnings(headers: &[String], map: &ColumnMap) -> Vec<String> {
    headers
        .iter()
        .filter(|h| map.target(h).is_none())
        .filter_map(|h| {
            let key = normalise_key(h);
            suggestion(&key).map(|field| {
                format!(
                    "column `{h}` is not a lead field (kept as custom field `{key}`): did you mean `{field}`? Map it with [import.columns] \"{h}\" = \"{field}\""
                )
            })
        })
        .collect()
}

/// CSV bytes with the header row's mapped names replaced (same line, same delimiter), and
/// the header names as written. Bytes the parser would refuse (UTF-16, a header that is not
/// UTF-8) are returned unchanged.
pub fn remap_csv<'a>(data: &'a [u8], map: &ColumnMap) -> (Cow<'a, [u8]>, Vec<String>) {
    let body = data.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(data);
    let bom = data.len() - body.len();
    let first_line = body.split(|&b| b == b'\n').next().unwrap_or(&[]);
    let delimiter = if first_line.contains(&b',') {
        b','
    } else if first_line.contains(&b'\t') {
        b'\t'
    } else if first_line.contains(&b';') {
        b';'
    } else {
        b','
    };
    // The header: the first line with more than delimiters and blanks on it.
    let mut start = 0;
    let (line_start, line_end) = loop {
        let end = body[start..]
            .iter()
            .position(|&b| b == b'\n')
            .map_or(body.len(), |p| start + p);
        let line = &body[start..end];
        let content_end = if line.ends_with(b"\r") { end - 1 } else { end };
        if line
            .iter()
            .any(|&b| !b.is_ascii_whitespace() && b != delimiter)
        {
            break (start, content_end);
        }
        if end >= body.len() {
            return (Cow::Borrowed(data), Vec::new());
        }
        start = end + 1;
    };
    let Ok(header) = std::str::from_utf8(&body[line_start..line_end]) else {
        return (Cow::Borrowed(data), Vec::new());
    };
    let mut reader = ::csv::ReaderBuilder::new()
        .has_headers(false)
        .delimiter(delimiter)
        .from_reader(header.as_bytes());
    let Some(Ok(record)) = reader.records().next() else {
        return (Cow::Borrowed(data), Vec::new());
    };
    let names: Vec<String> = record.iter().map(|c| c.trim().to_string()).collect();
    if map.is_empty() || names.iter().all(|n| map.target(n).is_none()) {
        return (Cow::Borrowed(data), names);
    }
    let mapped: Vec<&str> = names
        .iter()
        .map(|n| map.target(n).unwrap_or(n.as_str()))
        .collect();
    let mut writer = ::csv::WriterBuilder::new()
        .delimiter(delimiter)
        .terminator(::csv::Terminator::Any(b'\n'))
        .from_writer(Vec::new());
    if writer.write_record(&mapped).is_err() {
        return (Cow::Borrowed(data), names);
    }
    let Ok(mut line) = writer.into_inner() else {
        return (Cow::Borrowed(data), names);
    };
    line.pop(); // the terminator: the original line end stays
    let mut out = Vec::with_capacity(data.len() + 16);
    out.extend_from_slice(&data[..bom + line_start]);
    out.extend_from_slice(&line);
    out.extend_from_slice(&data[bom + line_end..]);
    (Cow::Owned(out), names)
}

/// One JSON line with its mapped keys renamed; anything that is not a JSON object is
/// returned unchanged (the parser reports it). Also returns the line's keys as written.
pub fn remap_json_line<'a>(line: &'a str, map: &ColumnMap) -> (Cow<'a, str>, Vec<String>) {
    let Ok(serde_json::Value::Object(object)) = serde_json::from_str::<serde_json::Value>(line)
    else {
        return (Cow::Borrowed(line), Vec::new());
    };
    let keys: Vec<String> = object.keys().cloned().collect();
    if keys.iter().all(|k| map.target(k).is_none()) {
        return (Cow::Borrowed(line), keys);
    }
    let renamed: serde_json::Map<String, serde_json::Value> = object
        .into_iter()
        .map(|(k, v)| (map.target(&k).map_or(k, str::to_string), v))
        .collect();
    let ending = &line[line.trim_end().len()..];
    (
        Cow::Owned(format!("{}{ending}", serde_json::Value::Object(renamed))),
        keys,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(pairs: &[(&str, &str)]) -> ColumnMap {
        let raw = pairs
            .iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect();
        ColumnMap::new(&raw).expect("a valid map")
    }

    #[test]
    fn every_known_key_is_one_the_parser_knows() {
        for k in KNOWN_KEYS {
            assert!(Field::from_key(k).is_some(), "{k}");
        }
    }

    #[test]
    fn distances_are_levenshtein() {
        for (a, b, d) in [
            ("", "", 0),
            ("abc", "", 3),
            ("kitten", "sitting", 3),
            ("lost_date", "lost_at", 2),
            ("emial", "email", 2),
            ("title", "tittle", 1),
            ("zoë", "zoe", 1),
        ] {
            assert_eq!(edit_distance(a, b), d, "{a} / {b}");
            assert_eq!(edit_distance(b, a), d, "{b} / {a}");
        }
    }

    #[test]
    fn close_headers_get_the_field_they_probably_mean() {
        for (key, want) in [
            ("lost_date", Some("lost_at")),
            ("emial", Some("email")),
            ("e_mial", Some("email")),
            ("first_nme", Some("first_name")),
            ("frstname", Some("first_name")),
            ("tag", Some("tags")),
            ("time_zon", Some("timezone")),
            ("owner_mail", Some("owner_email")),
            ("lost_reasons", Some("lost_reason")),
            ("email", None),
            ("crm_id", None),
            ("plan", None),
            ("region", None),
            ("industry", None),
        ] {
            assert_eq!(suggestion(key), want, "{key}");
        }
    }

    #[test]
    fn a_map_refuses_empty_sides_and_known_headers() {
        let raw: BTreeMap<String, String> = [
            ("Lost Date".to_string(), "lost_at".to_string()),
            ("".to_string(), "lost_at".to_string()),
            ("E-mail".to_string(), "email".to_string()),
        ]
        .into();
        let errors = ColumnMap::new(&raw).expect_err("two bad entries");
        assert_eq!(errors.len(), 2, "{errors:?}");
        assert!(errors.iter().any(|e| e.contains("already means `e_mail`")));
    }

    #[test]
    fn headers_map_by_their_normalised_name() {
        let m = map(&[("Lost Date", "Lost At"), ("Account Owner", "owner_email")]);
        assert_eq!(m.target("lost date"), Some("lost_at"));
        assert_eq!(m.target(" LOST-DATE "), Some("lost_at"));
        assert_eq!(m.target("account_owner"), Some("owner_email"));
        assert_eq!(m.target("Lost Reason"), None);
    }

    #[test]
    fn unmapped_close_headers_warn_with_the_mapping_to_add() {
        let m = map(&[("Lost Date", "lost_at")]);
        let headers = ["Email", "Lost Date", "Frist Name", "Region"].map(String::from);
        let warnings = header_warnings(&headers, &m);
        assert_eq!(warnings.len(), 1, "{warnings:?}");
        assert!(
            warnings[0].contains("`Frist Name`") && warnings[0].contains("`first_name`"),
            "{}",
            warnings[0]
        );
    }

    #[test]
    fn a_csv_header_is_rewritten_in_place_keeping_the_rest() {
        let m = map(&[("Lost Date", "lost_at")]);
        let data = b"\xEF\xBB\xBFEmail;\"Lost Date\";Note\r\nann@x.com;2026-01-01;\"a;b\"\r\n";
        let (out, names) = remap_csv(data, &m);
        assert_eq!(names, ["Email", "Lost Date", "Note"]);
        assert_eq!(
            out.as_ref(),
            b"\xEF\xBB\xBFEmail;lost_at;Note\r\nann@x.com;2026-01-01;\"a;b\"\r\n"
        );
        // Blank lines before the header stay (line numbers hold).
        let (out, _) = remap_csv(b",,\n\nEmail,Lost Date\nann@x.com,2026-01-01\n", &m);
        assert_eq!(out.as_ref(), b",,\n\nEmail,lost_at\nann@x.com,2026-01-01\n");
    }

    #[test]
    fn a_csv_with_nothing_mapped_is_not_copied() {
        let m = map(&[("Lost Date", "lost_at")]);
        let data = b"email,lost_at\nann@x.com,2026-01-01\n";
        assert!(matches!(remap_csv(data, &m).0, Cow::Borrowed(_)));
        assert!(matches!(remap_csv(b"", &m).0, Cow::Borrowed(_)));
        assert!(matches!(remap_csv(b",,\n\n", &m).0, Cow::Borrowed(_)));
        assert!(matches!(remap_csv(b"\xff\xfe,x\n", &m).0, Cow::Borrowed(_)));
    }

    #[test]
    fn json_lines_keys_are_renamed_and_other_lines_kept() {
        let m = map(&[("Lost Date", "lost_at")]);
        let (out, keys) = remap_json_line(
            "{\"email\":\"a@x.com\",\"Lost Date\":\"2026-01-01\"}\r\n",
            &m,
        );
        assert_eq!(
            out,
            "{\"email\":\"a@x.com\",\"lost_at\":\"2026-01-01\"}\r\n"
        );
        let mut keys = keys;
        keys.sort();
        assert_eq!(keys, ["Lost Date", "email"]);
        for line in ["not json\n", "[1,2]\n", "{\"email\":\"a@x.com\"}\n"] {
            assert!(
                matches!(remap_json_line(line, &m).0, Cow::Borrowed(_)),
                "{line}"
            );
        }
    }
}
