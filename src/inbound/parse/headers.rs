//! Header fields, message ids and addresses: the top-level headers (unfolded, decoded), the
//! recipients where our `reply+`/`bounce+` tokens come back, ids without their brackets, and
//! addresses found in free text.

use mail_parser::{Address, HeaderValue, Message};

/// At most this many addresses are collected from one text or as a message's recipients
/// (a real message has far fewer; the cap keeps de-duplication cheap on hostile input).
const MAX_ADDRESSES: usize = 500;

/// Headers whose addresses are recipients of the message (where our reply+/bounce+ tokens
/// come back).
const RECIPIENT_HEADERS: &[&str] = &[
    "to",
    "cc",
    "delivered-to",
    "x-original-to",
    "envelope-to",
    "x-envelope-to",
];

/// The top-level header fields (names lower-cased, values unfolded, encoded words decoded)
/// and the recipient addresses among them. mail-parser takes any first line for a header, so
/// names that are not RFC 5322 field names are dropped: with none left, it is no message.
pub(super) fn top_level_headers(msg: &Message<'_>) -> (Vec<(String, String)>, Vec<String>) {
    let is_field_name =
        |name: &str| !name.is_empty() && name.bytes().all(|b| b.is_ascii_graphic() && b != b':');
    let top = msg
        .parts
        .first()
        .map(|p| p.headers.as_slice())
        .unwrap_or_default();
    let mut headers = Vec::with_capacity(top.len());
    let mut recipients = Vec::new();
    for header in top.iter().filter(|h| is_field_name(h.name.as_str())) {
        let name = header.name.as_str().to_ascii_lowercase();
        let raw_value = msg
            .raw_message
            .get(header.offset_start as usize..header.offset_end as usize)
            .map(String::from_utf8_lossy)
            .unwrap_or_default();
        let mut value = unfold(&raw_value);
        if value.contains("=?")
            && let HeaderValue::Text(decoded) = &header.value
        {
            value = decoded.to_string();
        }
        if RECIPIENT_HEADERS.contains(&name.as_str()) {
            match &header.value {
                HeaderValue::Address(address) => {
                    let found = address.iter().filter_map(|a| a.address.as_deref());
                    push_unique_all(&mut recipients, found.filter_map(recipient_case).collect())
                }
                _ => push_unique_all(&mut recipients, scan_addresses(&value)),
            }
        }
        headers.push((name, value));
    }
    (headers, recipients)
}

pub(super) fn header_value<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.as_str())
}

pub(super) fn all_ids(headers: &[(String, String)], name: &str) -> Vec<String> {
    let mut ids = Vec::new();
    for (_, value) in headers.iter().filter(|(n, _)| n == name) {
        push_unique_all(&mut ids, ids_in(value));
    }
    ids
}

/// Message ids in a header value: what is between `<` and `>`, or else the bare tokens that
/// contain an `@` (some mailers drop the brackets).
pub(super) fn ids_in(value: &str) -> Vec<String> {
    let mut ids = Vec::new();
    let mut rest = value;
    while let Some(open) = rest.find('<') {
        let after = &rest[open + 1..];
        let Some(close) = after.find('>') else { break };
        let id = after[..close].trim();
        if !id.is_empty() && !ids.iter().any(|i| i == id) {
            ids.push(id.to_string());
        }
        rest = &after[close + 1..];
    }
    if ids.is_empty() {
        for token in value.split(|c: char| c.is_whitespace() || c == ',') {
            let token = token.trim_matches(|c| c == '<' || c == '>');
            if token.contains('@') && !ids.iter().any(|i| i == token) {
                ids.push(token.to_string());
            }
        }
    }
    ids
}

/// Joins a folded header value onto one line.
fn unfold(raw: &str) -> String {
    raw.split('\n')
        .map(str::trim)
        .filter(|piece| !piece.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

pub(super) fn first_address(address: &Address<'_>) -> Option<String> {
    addresses_of(address).into_iter().next()
}

pub(super) fn addresses_of(address: &Address<'_>) -> Vec<String> {
    address
        .iter()
        .filter_map(|a| a.address.as_deref())
        .map(|a| a.trim().to_lowercase())
        .filter(|a| a.contains('@'))
        .collect()
}

/// Appends the items `into` does not hold yet, up to [`MAX_ADDRESSES`] in all.
pub(super) fn push_unique_all(into: &mut Vec<String>, items: Vec<String>) {
    for item in items {
        if into.len() >= MAX_ADDRESSES {
            break;
        }
        if !into.contains(&item) {
            into.push(item);
        }
    }
}

/// A recipient address as matching needs it: the domain lower-cased, the local part as
/// written — our `reply+TOKEN` and `bounce+TOKEN` tokens are case-sensitive base64url.
fn recipient_case(address: &str) -> Option<String> {
    let (local, domain) = address.trim().rsplit_once('@')?;
    (!local.is_empty() && !domain.is_empty()).then(|| format!("{local}@{}", domain.to_lowercase()))
}

/// Addresses (`local@domain.tld`) anywhere in free text, lower-cased, in order, without
/// duplicates.
pub(super) fn extract_addresses(text: &str) -> Vec<String> {
    let mut found: Vec<String> = Vec::new();
    push_unique_all(
        &mut found,
        scan_addresses(text)
            .iter()
            .map(|a| a.to_lowercase())
            .collect(),
    );
    found
}

/// Addresses (`local@domain.tld`) anywhere in free text, in order, without duplicates, the
/// domain lower-cased and the local part as written. Deliberately simple (no quoted local
/// parts); every scan is bounded so a pathological input stays linear.
fn scan_addresses(text: &str) -> Vec<String> {
    fn local_char(c: char) -> bool {
        c.is_alphanumeric() || matches!(c, '.' | '_' | '%' | '+' | '-' | '=')
    }
    fn domain_char(c: char) -> bool {
        c.is_alphanumeric() || matches!(c, '.' | '-')
    }
    let chars: Vec<char> = text.chars().collect();
    let mut found: Vec<String> = Vec::new();
    for (at, _) in chars.iter().enumerate().filter(|(_, c)| **c == '@') {
        let mut start = at;
        while start > 0 && at - start < 64 && chars.get(start - 1).copied().is_some_and(local_char)
        {
            start -= 1;
        }
        let mut end = at + 1;
        while end < chars.len()
            && end - at < 255
            && chars.get(end).copied().is_some_and(domain_char)
        {
            end += 1;
        }
        let local: String = chars[start..at].iter().collect();
        let domain: String = chars[at + 1..end].iter().collect();
        let local = local.trim_start_matches('.');
        let domain = domain.trim_end_matches(['.', '-']);
        if local.is_empty() || !domain.contains('.') || domain.starts_with('.') {
            continue;
        }
        let address = format!("{local}@{}", domain.to_lowercase());
        if !found.contains(&address) {
            found.push(address);
            if found.len() == MAX_ADDRESSES {
                break;
            }
        }
    }
    found
}

/// Whether an address belongs to a mail system rather than a person (bounces come from
/// these): `MAILER-DAEMON`, `postmaster`, and the daemons of particular products (MDaemon,
/// Mercury's `MAISER`, GroupWise's `gwia`, `E500_SMTP_Mail_Service` …), with any `-`, `_` or
/// `.` in the local part ignored.
pub(crate) fn is_mail_system(address: &str) -> bool {
    let local: String = address
        .split('@')
        .next()
        .unwrap_or("")
        .chars()
        .filter(|c| !matches!(c, '-' | '_' | '.'))
        .flat_map(char::to_lowercase)
        .collect();
    matches!(
        local.as_str(),
        "mailerdaemon"
            | "maildaemon"
            | "mailer"
            | "postmaster"
            | "maildeliverysystem"
            | "maildeliverysubsystem"
            | "mdaemon"
            | "maiser"
            | "gwia"
            | "mailrouter"
            | "bounce"
            | "bounces"
            | "smtp"
    ) || local.starts_with("mailerdaemon")
        || local.starts_with("microsoftexchange")
        || local.ends_with("smtpmailservice")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_are_found_in_free_text() {
        let cases: &[(&str, &[&str])] = &[
            (
                "\"Ann\" <Ann@Example.com>, bob@example.org",
                &["ann@example.com", "bob@example.org"],
            ),
            ("RCPT TO:<bob@example.org>: 550", &["bob@example.org"]),
            (
                "rfc822;reply+k1.AQAA-x_y@reply.acme.example.",
                &["reply+k1.aqaa-x_y@reply.acme.example"],
            ),
            ("no address @ here, nor user@localhost", &[]),
            ("@@@@", &[]),
        ];
        for (text, expected) in cases {
            assert_eq!(extract_addresses(text), *expected, "{text}");
        }
    }

    #[test]
    fn message_ids_come_without_brackets() {
        let cases: &[(&str, &[&str])] = &[
            ("<k1.AQ.x@acme.example>", &["k1.AQ.x@acme.example"]),
            ("<a@x> <b@y>\t<a@x>", &["a@x", "b@y"]),
            ("k1.AQ.x@acme.example", &["k1.AQ.x@acme.example"]),
            ("", &[]),
        ];
        for (value, expected) in cases {
            assert_eq!(ids_in(value), *expected, "{value}");
        }
    }

    #[test]
    fn mail_system_addresses() {
        for a in [
            "MAILER-DAEMON@mx.example.net",
            "mailer_daemon@example.org",
            "Mailer-Daemon@cpanel.example.net",
            "postmaster@example.org",
            "Postmaster@mail.example.org",
            "mail.delivery.system@example.org",
            "E500_SMTP_Mail_Service@example.org",
            "MDaemon@mail.example.com",
            "MAISER@mail.example.net",
            "MicrosoftExchange329e71ec88ae4615bbc36ab6ce41109e@example.net",
            "bounce@barracuda.example.com",
        ] {
            assert!(is_mail_system(a), "{a}");
        }
        for a in [
            "ann@example.com",
            "post.master.ann@example.com",
            "daemon.fan@example.org",
            "sales@acme.example",
            "bounce+k1.x@bounce.acme.example",
        ] {
            assert!(!is_mail_system(a), "{a}");
        }
    }
}
