//! The form bodies providers post: `application/x-www-form-urlencoded` and
//! `multipart/form-data`, split into (name, bytes) fields in order.

use axum::http::{HeaderMap, header};

/// The fields of an `application/x-www-form-urlencoded` or `multipart/form-data` body, in
/// order; None when the content type is neither or the body does not parse.
pub(super) fn fields(headers: &HeaderMap, body: &[u8]) -> Option<Vec<(String, Vec<u8>)>> {
    let content_type = headers.get(header::CONTENT_TYPE)?.to_str().ok()?;
    let lower = content_type.to_ascii_lowercase();
    if lower.starts_with("application/x-www-form-urlencoded") {
        Some(urlencoded(body))
    } else if lower.starts_with("multipart/form-data") {
        let boundary = content_type.split(';').find_map(|p| {
            let (k, v) = p.trim().split_once('=')?;
            k.trim()
                .eq_ignore_ascii_case("boundary")
                .then(|| v.trim().trim_matches('"').to_string())
        })?;
        multipart(body, &boundary)
    } else {
        None
    }
}

pub(super) fn urlencoded(body: &[u8]) -> Vec<(String, Vec<u8>)> {
    body.split(|b| *b == b'&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let (k, v) = match pair.iter().position(|b| *b == b'=') {
                Some(i) => (&pair[..i], &pair[i + 1..]),
                None => (pair, &[][..]),
            };
            (
                String::from_utf8_lossy(&percent_decode(k)).into_owned(),
                percent_decode(v),
            )
        })
        .collect()
}

fn percent_decode(s: &[u8]) -> Vec<u8> {
    let digit = |b: u8| (b as char).to_digit(16).map(|d| d as u8);
    let mut out = Vec::with_capacity(s.len());
    let mut i = 0;
    while i < s.len() {
        match s[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < s.len() => match (digit(s[i + 1]), digit(s[i + 2])) {
                (Some(h), Some(l)) => {
                    out.push(h * 16 + l);
                    i += 2;
                }
                _ => out.push(b'%'),
            },
            b => out.push(b),
        }
        i += 1;
    }
    out
}

/// Splits a multipart/form-data body into (name, data); files are kept as data too.
fn multipart(body: &[u8], boundary: &str) -> Option<Vec<(String, Vec<u8>)>> {
    let delimiter = format!("--{boundary}");
    let delimiter = delimiter.as_bytes();
    let mut fields = Vec::new();
    let mut rest = &body[find(body, delimiter)? + delimiter.len()..];
    loop {
        if rest.starts_with(b"--") {
            return Some(fields);
        }
        // Skip the line end after the delimiter.
        let after = rest.iter().position(|b| *b == b'\n')? + 1;
        rest = &rest[after..];
        let next = find(rest, delimiter)?;
        let mut part = &rest[..next];
        // The CRLF before the delimiter belongs to the delimiter.
        if part.ends_with(b"\r\n") {
            part = &part[..part.len() - 2];
        } else if part.ends_with(b"\n") {
            part = &part[..part.len() - 1];
        }
        let (head, data) = match find(part, b"\r\n\r\n") {
            Some(i) => (&part[..i], &part[i + 4..]),
            None => {
                let i = find(part, b"\n\n")?;
                (&part[..i], &part[i + 2..])
            }
        };
        let head = String::from_utf8_lossy(head);
        let name = head.lines().find_map(|line| {
            let (k, v) = line.split_once(':')?;
            if !k.trim().eq_ignore_ascii_case("content-disposition") {
                return None;
            }
            v.split(';').find_map(|p| {
                let (k, v) = p.trim().split_once('=')?;
                (k.trim() == "name").then(|| v.trim().trim_matches('"').to_string())
            })
        });
        if let Some(name) = name {
            fields.push((name, data.to_vec()));
        }
        rest = &rest[next + delimiter.len()..];
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    if needle.is_empty() || haystack.len() < needle.len() {
        return None;
    }
    haystack.windows(needle.len()).position(|w| w == needle)
}
#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn multipart_and_urlencoded_forms_split_into_fields() {
        let body = b"--XX\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\none\r\n--XX\r\n\
Content-Disposition: form-data; name=\"email\"\r\n\r\nFrom: x@y.z\r\n\r\nhi\r\n--XX--\r\n";
        let fields = multipart(body, "XX").unwrap();
        assert_eq!(fields[0], ("a".into(), b"one".to_vec()));
        assert_eq!(
            fields[1],
            ("email".into(), b"From: x@y.z\r\n\r\nhi".to_vec())
        );
        let fields = urlencoded(b"a=1+2&b=%3Cx%40y%3E&c");
        assert_eq!(fields[0].1, b"1 2");
        assert_eq!(fields[1].1, b"<x@y>");
        assert_eq!(fields[2].1, b"");
    }
}
