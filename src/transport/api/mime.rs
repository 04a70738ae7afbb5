//! Reading our own messages back: just enough MIME for the providers that take fields
//! instead of raw MIME (Postmark, SendGrid). They need From, To, Reply-To, Subject, the text
//! and HTML parts and the extra headers such as `List-Unsubscribe`; the message is one we
//! composed (lettre's output), so this reader only has to be right about what lettre writes.

use std::borrow::Cow;

use base64::Engine as _;

use crate::transport::{OutgoingEmail, SendError};

/// An address with its optional display name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mailbox {
    pub name: Option<String>,
    pub email: String,
}

impl Mailbox {
    /// `"Name" <email>` (the name always quoted, so commas and other specials are safe), or the
    /// bare address.
    pub fn to_header_form(&self) -> String {
        match &self.name {
            Some(name) if !name.trim().is_empty() => {
                let escaped = name.replace('\\', "\\\\").replace('"', "\\\"");
                format!("\"{escaped}\" <{}>", self.email)
            }
            _ => self.email.clone(),
        }
    }
}

/// The parts of a message a field-based API needs.
#[derive(Debug, Clone, Default)]
pub struct ParsedMessage {
    pub from: Option<Mailbox>,
    pub to: Option<Mailbox>,
    pub reply_to: Option<Mailbox>,
    /// Decoded (RFC 2047 words become text).
    pub subject: String,
    pub text: Option<String>,
    pub html: Option<String>,
    /// Every other top-level header, unfolded, value as written (e.g. Message-ID,
    /// List-Unsubscribe, List-Unsubscribe-Post): the ones the API does not build itself.
    pub extra_headers: Vec<(String, String)>,
}

/// A message as the field-based APIs want it: sender, recipient (always the envelope
/// recipient, with the display name of the To header when that header names the same
/// address), and the rest of [`ParsedMessage`].
#[derive(Debug, Clone)]
pub(crate) struct Fields {
    pub from: Mailbox,
    pub to: Mailbox,
    pub reply_to: Option<Mailbox>,
    pub subject: String,
    pub text: Option<String>,
    pub html: Option<String>,
    pub headers: Vec<(String, String)>,
}

/// Reads `email` for a field-based API. A message we cannot read back is a bug on our side
/// that retrying will not fix: `Permanent`, without blaming the address.
pub(crate) fn fields_of(
    provider: &'static str,
    email: &OutgoingEmail,
) -> Result<Fields, SendError> {
    let parsed = parse_message(&email.bytes).map_err(|e| {
        SendError::permanent(format!("{provider}: cannot read the composed message: {e}"))
    })?;
    let envelope_to = email.envelope_to.trim().to_string();
    if envelope_to.is_empty() {
        return Err(SendError::permanent(format!(
            "{provider}: the message has no recipient"
        )));
    }
    let to_name = parsed
        .to
        .filter(|m| m.email.eq_ignore_ascii_case(&envelope_to))
        .and_then(|m| m.name);
    let from = parsed.from.unwrap_or_else(|| Mailbox {
        name: None,
        email: email.envelope_from.trim().to_string(),
    });
    Ok(Fields {
        from,
        to: Mailbox {
            name: to_name,
            email: envelope_to,
        },
        reply_to: parsed.reply_to,
        subject: parsed.subject,
        text: parsed.text,
        html: parsed.html,
        headers: parsed.extra_headers,
    })
}

/// Headers a field-based API builds itself (or that would be wrong once it rebuilds the
/// message: our DKIM signature would no longer verify); they are not passed as custom headers.
const BUILT_BY_PROVIDER: &[&str] = &[
    "from",
    "to",
    "cc",
    "bcc",
    "subject",
    "reply-to",
    "date",
    "sender",
    "mime-version",
    "content-type",
    "content-transfer-encoding",
    "content-disposition",
    "content-id",
    "dkim-signature",
    "received",
    "return-path",
];

/// Reads From, To, Reply-To, Subject, the first text/plain and text/html parts and the other
/// headers from a message we composed (lettre's output: CRLF lines, UTF-8, 7bit,
/// quoted-printable or base64 bodies, RFC 2047 encoded words in headers).
pub fn parse_message(bytes: &[u8]) -> Result<ParsedMessage, String> {
    let (headers, body) = split_head(bytes);
    if headers.is_empty() {
        return Err("the message has no headers".to_string());
    }
    let mut parsed = ParsedMessage::default();
    for (name, value) in &headers {
        let lower = name.to_ascii_lowercase();
        match lower.as_str() {
            "from" if parsed.from.is_none() => parsed.from = parse_mailbox(value),
            "to" if parsed.to.is_none() => parsed.to = parse_mailbox(value),
            "reply-to" if parsed.reply_to.is_none() => parsed.reply_to = parse_mailbox(value),
            "subject" => parsed.subject = decode_words(value.trim()),
            _ => {}
        }
        if !BUILT_BY_PROVIDER.contains(&lower.as_str()) {
            parsed
                .extra_headers
                .push((name.clone(), value.trim().to_string()));
        }
    }
    collect_bodies(&headers, body, &mut parsed, 0);
    if parsed.text.is_none() && parsed.html.is_none() {
        return Err("the message has neither a text/plain nor a text/html part".to_string());
    }
    Ok(parsed)
}

/// The header fields (unfolded) and the body of a message or MIME part.
fn split_head(bytes: &[u8]) -> (Vec<(String, String)>, &[u8]) {
    // The head ends at the first empty line (CRLF CRLF, or LF LF for LF-only input).
    let (head, body) = match find(bytes, b"\r\n\r\n") {
        Some(i) => (&bytes[..i], &bytes[i + 4..]),
        None => match find(bytes, b"\n\n") {
            Some(i) => (&bytes[..i], &bytes[i + 2..]),
            None => (bytes, &bytes[bytes.len()..]),
        },
    };
    let head = String::from_utf8_lossy(head);
    let mut fields: Vec<(String, String)> = Vec::new();
    for line in head.split('\n') {
        let line = line.strip_suffix('\r').unwrap_or(line);
        if line.starts_with([' ', '\t']) {
            // A folded continuation: unfolding removes only the line break.
            if let Some((_, value)) = fields.last_mut() {
                value.push_str(line);
            }
            continue;
        }
        if let Some((name, value)) = line.split_once(':') {
            let name = name.trim();
            if !name.is_empty() && !name.contains(' ') {
                fields.push((name.to_string(), value.to_string()));
            }
        }
    }
    (fields, body)
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.trim())
}

/// A Content-Type value: the lowercased `type/subtype` and its parameters (names lowercased,
/// quotes removed).
fn content_type(value: &str) -> (String, Vec<(String, String)>) {
    let mut parts = split_params(value).into_iter();
    let mime = parts
        .next()
        .map(|s| s.trim().to_ascii_lowercase())
        .unwrap_or_default();
    let params = parts
        .filter_map(|p| {
            let (k, v) = p.split_once('=')?;
            let v = v.trim();
            let v = v
                .strip_prefix('"')
                .and_then(|v| v.strip_suffix('"'))
                .map(|v| v.replace("\\\"", "\"").replace("\\\\", "\\"))
                .unwrap_or_else(|| v.to_string());
            Some((k.trim().to_ascii_lowercase(), v))
        })
        .collect();
    (mime, params)
}

/// Splits on `;` outside double quotes.
fn split_params(value: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut current = String::new();
    let mut quoted = false;
    let mut escaped = false;
    for c in value.chars() {
        if escaped {
            current.push(c);
            escaped = false;
            continue;
        }
        match c {
            '\\' if quoted => {
                current.push(c);
                escaped = true;
            }
            '"' => {
                quoted = !quoted;
                current.push(c);
            }
            ';' if !quoted => out.push(std::mem::take(&mut current)),
            _ => current.push(c),
        }
    }
    out.push(current);
    out
}

fn param<'a>(params: &'a [(String, String)], name: &str) -> Option<&'a str> {
    params
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

/// Walks a part: the first inline text/plain and text/html parts win.
fn collect_bodies(headers: &[(String, String)], body: &[u8], out: &mut ParsedMessage, depth: u32) {
    if depth > 8 {
        return;
    }
    let (mime, params) = header(headers, "content-type")
        .map(content_type)
        .unwrap_or_else(|| ("text/plain".to_string(), Vec::new()));
    let attachment = header(headers, "content-disposition")
        .map(|d| d.trim().to_ascii_lowercase().starts_with("attachment"))
        .unwrap_or(false);
    if let Some(boundary) = mime
        .starts_with("multipart/")
        .then(|| param(&params, "boundary"))
        .flatten()
    {
        for part in multipart_parts(body, boundary) {
            let (part_headers, part_body) = split_head(part);
            collect_bodies(&part_headers, part_body, out, depth + 1);
        }
        return;
    }
    if attachment {
        return;
    }
    let slot = match mime.as_str() {
        "text/plain" => &mut out.text,
        "text/html" => &mut out.html,
        _ => return,
    };
    if slot.is_some() {
        return;
    }
    // A message's last line break ends the message (lettre adds it after a single part's
    // body, as SMTP needs), not the text; inside a multipart it belongs to the delimiter.
    let body = if depth == 0 {
        body.strip_suffix(b"\r\n")
            .or_else(|| body.strip_suffix(b"\n"))
            .unwrap_or(body)
    } else {
        body
    };
    let encoding = header(headers, "content-transfer-encoding")
        .map(|e| e.trim().to_ascii_lowercase())
        .unwrap_or_default();
    let decoded: Cow<'_, [u8]> = match encoding.as_str() {
        "base64" => Cow::Owned(decode_base64_lenient(body)),
        "quoted-printable" => Cow::Owned(decode_quoted_printable(body)),
        _ => Cow::Borrowed(body),
    };
    *slot = Some(decode_charset(&decoded, param(&params, "charset")));
}

/// The parts of a multipart body (between `--boundary` lines, up to `--boundary--`); the line
/// break before each delimiter belongs to the delimiter.
fn multipart_parts<'a>(body: &'a [u8], boundary: &str) -> Vec<&'a [u8]> {
    let delimiter = format!("--{boundary}");
    let delimiter = delimiter.as_bytes();
    // Positions of delimiter lines: at the very start or right after a LF.
    let mut marks = Vec::new();
    let mut i = 0;
    while i + delimiter.len() <= body.len() {
        let at_line_start = i == 0 || body[i - 1] == b'\n';
        if at_line_start && body[i..].starts_with(delimiter) {
            let after = &body[i + delimiter.len()..];
            let closing = after.starts_with(b"--");
            // The rest of the delimiter line (transport padding) up to and including LF.
            let line_end = after
                .iter()
                .position(|&b| b == b'\n')
                .map(|p| i + delimiter.len() + p + 1)
                .unwrap_or(body.len());
            // Where the previous part ends: before the CRLF (or LF) that precedes this line.
            let mut end = i;
            if end > 0 && body[end - 1] == b'\n' {
                end -= 1;
                if end > 0 && body[end - 1] == b'\r' {
                    end -= 1;
                }
            }
            marks.push((end, line_end, closing));
            if closing {
                break;
            }
            i = line_end;
            continue;
        }
        i += 1;
    }
    marks
        .windows(2)
        .filter(|w| !w[0].2)
        .map(|w| &body[w[0].1..w[1].0.max(w[0].1)])
        .collect()
}

fn decode_charset(bytes: &[u8], charset: Option<&str>) -> String {
    match charset.map(|c| c.trim().to_ascii_lowercase()) {
        Some(c) if c == "iso-8859-1" || c == "latin1" || c == "iso_8859-1" => {
            bytes.iter().map(|&b| b as char).collect()
        }
        _ => String::from_utf8_lossy(bytes).into_owned(),
    }
}

fn decode_base64_lenient(data: &[u8]) -> Vec<u8> {
    let clean: Vec<u8> = data
        .iter()
        .copied()
        .filter(|b| !b.is_ascii_whitespace())
        .collect();
    let engine = base64::engine::GeneralPurpose::new(
        &base64::alphabet::STANDARD,
        base64::engine::GeneralPurposeConfig::new()
            .with_decode_padding_mode(base64::engine::DecodePaddingMode::Indifferent)
            .with_decode_allow_trailing_bits(true),
    );
    engine.decode(&clean).unwrap_or(clean)
}

fn hex(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// Quoted-printable (RFC 2045): `=XX` bytes, `=` at the end of a line joins it to the next.
fn decode_quoted_printable(data: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(data.len());
    let mut i = 0;
    while i < data.len() {
        let b = data[i];
        if b == b'=' {
            let rest = &data[i + 1..];
            if rest.starts_with(b"\r\n") {
                i += 3;
                continue;
            }
            if rest.starts_with(b"\n") {
                i += 2;
                continue;
            }
            if let (Some(&h), Some(&l)) = (rest.first(), rest.get(1))
                && let (Some(h), Some(l)) = (hex(h), hex(l))
            {
                out.push(h * 16 + l);
                i += 3;
                continue;
            }
            // A lone "=" that is not an escape: keep it (robustness, RFC 2045 6.7 note 1).
            // Trailing whitespace before a soft break ("=  \r\n") is also padding.
            let ws = rest
                .iter()
                .take_while(|&&c| c == b' ' || c == b'\t')
                .count();
            if rest[ws..].starts_with(b"\r\n") {
                i += 1 + ws + 2;
                continue;
            }
            out.push(b);
            i += 1;
            continue;
        }
        out.push(b);
        i += 1;
    }
    out
}

/// Decodes RFC 2047 encoded words (`=?charset?B|Q?text?=`); whitespace between two adjacent
/// encoded words is dropped, as the RFC says.
pub fn decode_words(value: &str) -> String {
    let mut out = String::new();
    let mut rest = value;
    let mut pending_ws = String::new();
    let mut last_was_word = false;
    while !rest.is_empty() {
        if let Some(start) = rest.find("=?") {
            let (before, from) = rest.split_at(start);
            if let Some((decoded, len)) = decode_one_word(from) {
                if !before.is_empty() {
                    if before.trim().is_empty() && last_was_word {
                        // Whitespace between encoded words: dropped.
                    } else {
                        out.push_str(&pending_ws);
                        out.push_str(before);
                    }
                }
                pending_ws.clear();
                out.push_str(&decoded);
                rest = &from[len..];
                last_was_word = true;
                continue;
            }
            // Not a valid word: keep "=?" literally and go on after it.
            out.push_str(&pending_ws);
            pending_ws.clear();
            out.push_str(before);
            out.push_str("=?");
            rest = &from[2..];
            last_was_word = false;
            continue;
        }
        out.push_str(rest);
        break;
    }
    out
}

/// One encoded word at the start of `s`: the decoded text and how many bytes it took.
fn decode_one_word(s: &str) -> Option<(String, usize)> {
    let inner = s.strip_prefix("=?")?;
    let q1 = inner.find('?')?;
    let charset = &inner[..q1];
    let after_charset = &inner[q1 + 1..];
    let q2 = after_charset.find('?')?;
    let encoding = &after_charset[..q2];
    let text_start = &after_charset[q2 + 1..];
    let end = text_start.find("?=")?;
    let text = &text_start[..end];
    if text.contains(' ') || encoding.len() != 1 {
        return None;
    }
    // RFC 2231 language suffix: "utf-8*en".
    let charset = charset.split('*').next().unwrap_or(charset);
    let bytes = match encoding.to_ascii_uppercase().as_str() {
        "B" => decode_base64_lenient(text.as_bytes()),
        "Q" => {
            let underscores = text.replace('_', " ");
            decode_quoted_printable(underscores.as_bytes())
        }
        _ => return None,
    };
    let consumed = 2 + q1 + 1 + q2 + 1 + end + 2;
    Some((decode_charset(&bytes, Some(charset)), consumed))
}

/// The first mailbox of an address header: `Name <addr>`, `"Quoted, Name" <addr>`,
/// `=?utf-8?b?…?= <addr>` or a bare `addr`.
pub fn parse_mailbox(value: &str) -> Option<Mailbox> {
    let value = value.trim();
    // Find the first '<' outside quotes; its '>' closes the address.
    let mut quoted = false;
    let mut escaped = false;
    let mut open = None;
    for (i, c) in value.char_indices() {
        if escaped {
            escaped = false;
            continue;
        }
        match c {
            '\\' if quoted => escaped = true,
            '"' => quoted = !quoted,
            '<' if !quoted => {
                open = Some(i);
                break;
            }
            ',' if !quoted => break, // a list: only the first mailbox, and it has no angle form
            _ => {}
        }
    }
    match open {
        Some(open) => {
            let close = value[open..].find('>')? + open;
            let email = value[open + 1..close].trim().to_string();
            if email.is_empty() {
                return None;
            }
            let raw_name = value[..open].trim();
            let name = if let Some(q) = raw_name.strip_prefix('"').and_then(|s| s.strip_suffix('"'))
            {
                let mut unescaped = String::new();
                let mut esc = false;
                for c in q.chars() {
                    if esc {
                        unescaped.push(c);
                        esc = false;
                    } else if c == '\\' {
                        esc = true;
                    } else {
                        unescaped.push(c);
                    }
                }
                decode_words(&unescaped)
            } else {
                decode_words(raw_name)
            };
            let name = name.trim().to_string();
            Some(Mailbox {
                name: (!name.is_empty()).then_some(name),
                email,
            })
        }
        None => {
            let first = value.split(',').next()?.trim();
            // Drop a trailing comment: "addr (Name)".
            let email = first.split_whitespace().next()?.to_string();
            email.contains('@').then_some(Mailbox { name: None, email })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use lettre::message::header::{ContentType, MessageId};
    use lettre::message::{Mailbox as LettreMailbox, MultiPart, SinglePart};

    fn lettre_message(name: &str, subject: &str, text: &str, html: Option<&str>) -> Vec<u8> {
        let to = LettreMailbox::new(Some(name.to_string()), "lead@example.org".parse().unwrap());
        let builder = lettre::Message::builder()
            .from("Sam from Acme <sam@acme.test>".parse().unwrap())
            .reply_to("Sales <sales@acme.test>".parse().unwrap())
            .to(to)
            .subject(subject)
            .header(MessageId::from("<m1@acme.test>".to_string()));
        let message = match html {
            Some(html) => builder
                .multipart(MultiPart::alternative_plain_html(
                    text.to_string(),
                    html.to_string(),
                ))
                .unwrap(),
            None => builder
                .singlepart(
                    SinglePart::builder()
                        .header(ContentType::TEXT_PLAIN)
                        .body(text.to_string()),
                )
                .unwrap(),
        };
        message.formatted()
    }

    #[test]
    fn reads_back_a_plain_lettre_message() {
        let bytes = lettre_message("Ada Lovelace", "Still looking?", "Hi Ada,\r\nbye\r\n", None);
        let p = parse_message(&bytes).unwrap();
        assert_eq!(
            p.from,
            Some(Mailbox {
                name: Some("Sam from Acme".into()),
                email: "sam@acme.test".into()
            })
        );
        assert_eq!(p.to.as_ref().unwrap().email, "lead@example.org");
        assert_eq!(p.to.as_ref().unwrap().name.as_deref(), Some("Ada Lovelace"));
        assert_eq!(p.reply_to.as_ref().unwrap().email, "sales@acme.test");
        assert_eq!(p.subject, "Still looking?");
        assert_eq!(p.text.as_deref(), Some("Hi Ada,\r\nbye\r\n"));
        assert!(p.html.is_none());
        assert!(
            p.extra_headers
                .iter()
                .any(|(n, v)| n.eq_ignore_ascii_case("message-id") && v == "<m1@acme.test>")
        );
        assert!(
            !p.extra_headers
                .iter()
                .any(|(n, _)| n.eq_ignore_ascii_case("from") || n.eq_ignore_ascii_case("date"))
        );
    }

    #[test]
    fn reads_back_non_ascii_names_subjects_and_both_parts() {
        let long_text = "Grüße — ünïcödé text, a long line ".repeat(20);
        let html = "<p>Grüße &amp; <b>bonjour</b> — ok</p>".repeat(5);
        let bytes = lettre_message(
            "Zoë \"Z\" Müller, PhD",
            "Ça va? Ünïcödé subject that is long enough to be folded over several lines",
            &long_text,
            Some(&html),
        );
        let p = parse_message(&bytes).unwrap();
        assert_eq!(
            p.subject,
            "Ça va? Ünïcödé subject that is long enough to be folded over several lines"
        );
        assert_eq!(
            p.to.as_ref().unwrap().name.as_deref(),
            Some("Zoë \"Z\" Müller, PhD")
        );
        assert_eq!(p.text.as_deref(), Some(long_text.as_str()));
        assert_eq!(p.html.as_deref(), Some(html.as_str()));
    }

    #[test]
    fn quoted_printable_and_base64_bodies_decode() {
        assert_eq!(
            decode_quoted_printable(b"caf=C3=A9 =\r\nsoft break=3D"),
            "café soft break=".as_bytes()
        );
        assert_eq!(decode_base64_lenient(b"aGVs\r\nbG8="), b"hello");
        assert_eq!(
            decode_words("=?utf-8?q?caf=C3=A9_au_lait?="),
            "café au lait"
        );
        assert_eq!(
            decode_words("=?utf-8?b?w4dh?= =?utf-8?b?IHZh?= plain"),
            "Ça va plain"
        );
        assert_eq!(decode_words("no words =? here"), "no words =? here");
    }

    #[test]
    fn mailboxes_parse_and_format() {
        assert_eq!(
            parse_mailbox("\"Doe, John\" <j@x.test>").unwrap(),
            Mailbox {
                name: Some("Doe, John".into()),
                email: "j@x.test".into()
            }
        );
        assert_eq!(
            parse_mailbox(" j@x.test ").unwrap(),
            Mailbox {
                name: None,
                email: "j@x.test".into()
            }
        );
        assert_eq!(
            Mailbox {
                name: Some("Doe, \"J\"".into()),
                email: "j@x.test".into()
            }
            .to_header_form(),
            "\"Doe, \\\"J\\\"\" <j@x.test>"
        );
        assert!(parse_mailbox("undisclosed-recipients:;").is_none());
    }
}
