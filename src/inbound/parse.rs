//! One inbound message, parsed into what matching and classification need.
//!
//! [`parse`] takes raw RFC 5322 bytes (from IMAP, a provider webhook or a `.eml` file) and
//! returns a [`ParsedInbound`]: the ids and addresses that tie the message to one of our
//! deliveries, the *new* text its sender wrote (quoted history and signature stripped), the
//! content of a delivery or feedback report — a standard `multipart/report`, or one of the
//! common non-standard bounces synthesized into the same shape — and the day it was written.
//! What an out-of-office reply says about its sender's return is read after classification
//! ([`stated_return_date`]): only auto-replies are searched for one.
//!
//! Pure code, no I/O (not even the clock: the caller says which day a dateless message came). Nothing here panics on any input: every heuristic scan is bounded, and
//! the third-party MIME parser runs under `catch_unwind`, so a bug in it costs one message
//! rather than the daemon (or a replay of a whole mailbox export).

use std::panic::{AssertUnwindSafe, catch_unwind};

use chrono::{Datelike, Days, NaiveDate};
use mail_parser::{
    Address, HeaderValue, Message, MessageParser, MessagePart, MimeHeaders, PartType,
};

use crate::domain::reply::Classification;

/// An inbound message, reduced to what matching and classification need.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ParsedInbound {
    /// The message's own Message-ID, without `<>`.
    pub message_id: Option<String>,
    /// In-Reply-To ids, without `<>` (ours look like `k1.PAYLOAD.TAG@our.domain`).
    pub in_reply_to: Vec<String>,
    /// References ids, without `<>`.
    pub references: Vec<String>,
    /// The sender's address (From, else Sender), lower-cased.
    pub from: Option<String>,
    /// To, Cc, Delivered-To, X-Original-To and Envelope-To addresses, in order, without
    /// duplicates: where `reply+TOKEN@…` and `bounce+TOKEN@…` show up. Domains are
    /// lower-cased, local parts kept as written (tokens are case-sensitive).
    pub recipients: Vec<String>,
    /// The decoded Subject, or empty.
    pub subject: String,
    /// What the sender wrote this time: the plain-text body (or the HTML body turned to
    /// text) without `>`-quoted lines, "On … wrote:" attributions and the history after them,
    /// Outlook's original-message blocks, and the signature after `-- `.
    pub text: String,
    /// Every top-level header field, names lower-cased, values unfolded.
    pub headers: Vec<(String, String)>,
    /// A delivery-status or feedback report, standard or synthesized from a known
    /// non-standard bounce.
    pub report: Option<Report>,
    /// The calendar day of the Date header, as the sender wrote it (in the sender's zone):
    /// what an auto-reply's "back on Monday" counts from.
    pub sent_on: Option<NaiveDate>,
}

impl ParsedInbound {
    /// The first value of header `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// Whether header `name` is present at all (case-insensitive).
    pub fn has_header(&self, name: &str) -> bool {
        self.header(name).is_some()
    }
}

/// What a `multipart/report` (RFC 6522) carries, or what we read out of a non-standard bounce.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Report {
    /// `report-type=delivery-status` (RFC 3464): one entry per recipient the report is about.
    Delivery(Vec<DsnRecipient>, OriginalHeaders),
    /// `report-type=feedback-report` (ARF, RFC 5965): a recipient complained.
    Feedback(OriginalHeaders),
}

/// The per-recipient fields of a delivery status notification.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DsnRecipient {
    /// `Final-Recipient`, address only, lower-cased.
    pub final_recipient: Option<String>,
    /// `Original-Recipient`, address only, lower-cased.
    pub original_recipient: Option<String>,
    /// `Action`, lower-cased: failed, delayed, delivered, relayed, expanded.
    pub action: Option<String>,
    /// `Status`, the enhanced status code (`5.1.1`); an SMTP reply code found in a
    /// non-standard bounce is written as its class (`550` → `5.0.0`).
    pub status: Option<String>,
    /// `Diagnostic-Code` without its type (`smtp;`), or the line of a non-standard bounce
    /// that carries the status.
    pub diagnostic: Option<String>,
}

/// Whether a delivery failed for good or may still succeed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    /// 5.x.x, or `Action: failed` without a status: the address does not take mail.
    Permanent,
    /// 4.x.x or `Action: delayed`: try again later.
    Transient,
}

impl DsnRecipient {
    /// What this recipient's entry says about the delivery: `None` when it was delivered
    /// (or the entry says nothing we can read).
    pub fn failure(&self) -> Option<Failure> {
        let action = self.action.as_deref().unwrap_or("");
        if action == "delayed" {
            return Some(Failure::Transient);
        }
        if matches!(action, "delivered" | "relayed" | "expanded") {
            return None;
        }
        if let Some(class) = self.status.as_deref().and_then(|s| s.trim().chars().next()) {
            match class {
                '5' => return Some(Failure::Permanent),
                '4' => return Some(Failure::Transient),
                '2' => return None,
                _ => {}
            }
        }
        if let Some((_, status)) = self.diagnostic.as_deref().and_then(find_status) {
            return status_failure(&status);
        }
        (action == "failed").then_some(Failure::Permanent)
    }
}

/// Headers of the original message enclosed in a report (`message/rfc822` or
/// `text/rfc822-headers`), for tying the report to one of our deliveries.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OriginalHeaders {
    /// The original Message-ID, without `<>`.
    pub message_id: Option<String>,
    /// The original To addresses, lower-cased; for ARF, also the report's `Original-Rcpt-To`.
    pub to: Vec<String>,
}

/// Why bytes could not be read as a message at all.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    #[error("the message is empty")]
    Empty,
    #[error("the input is not an email message (no header fields found)")]
    NotAMessage,
    #[error("the message could not be parsed (the MIME parser failed on it)")]
    Unparsable,
}

/// How much of a body the heuristics (bounce wording, recipients, statuses) look at: a
/// notice says what matters near its top, and bounded scans keep huge inputs cheap.
const SCAN_LIMIT: usize = 64 * 1024;
/// How many characters of an auto-reply are searched for a return date.
const DATE_SCAN_LIMIT: usize = 8 * 1024;
/// At most this many failed recipients are read out of a non-standard bounce.
const MAX_BOUNCE_RECIPIENTS: usize = 50;
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

/// Parses one raw message. Fails only when there is no message at all.
pub fn parse(raw: &[u8]) -> Result<ParsedInbound, ParseError> {
    if raw.iter().all(u8::is_ascii_whitespace) {
        return Err(ParseError::Empty);
    }
    let raw = skip_mbox_separator(raw);
    // mail-parser is fuzzed and documented not to panic, but it holds debug assertions and
    // indexing we do not control; one odd message must not take a whole poll down.
    catch_unwind(AssertUnwindSafe(|| parse_message(raw))).unwrap_or(Err(ParseError::Unparsable))
}

fn parse_message(raw: &[u8]) -> Result<ParsedInbound, ParseError> {
    let msg = MessageParser::default()
        .parse(raw)
        .ok_or(ParseError::NotAMessage)?;
    let (headers, recipients) = top_level_headers(&msg);
    if headers.is_empty() {
        return Err(ParseError::NotAMessage);
    }
    let from = msg
        .from()
        .and_then(first_address)
        .or_else(|| msg.sender().and_then(first_address))
        .or_else(|| {
            header_value(&headers, "from").and_then(|v| extract_addresses(v).into_iter().next())
        });
    let body = body_text(&msg);

    let mut parsed = ParsedInbound {
        message_id: header_value(&headers, "message-id").and_then(|v| ids_in(v).into_iter().next()),
        in_reply_to: all_ids(&headers, "in-reply-to"),
        references: all_ids(&headers, "references"),
        from,
        recipients,
        subject: msg
            .subject()
            .map(|s| s.trim().to_string())
            .unwrap_or_default(),
        text: strip_quoted(&body),
        headers,
        report: None,
        sent_on: msg
            .date()
            .and_then(|d| NaiveDate::from_ymd_opt(d.year.into(), d.month.into(), d.day.into())),
    };
    parsed.report = standard_report(&msg).or_else(|| nonstandard_bounce(&msg, &parsed, &body));
    Ok(parsed)
}

/// The top-level header fields (names lower-cased, values unfolded, encoded words decoded)
/// and the recipient addresses among them. mail-parser takes any first line for a header, so
/// names that are not RFC 5322 field names are dropped: with none left, it is no message.
fn top_level_headers(msg: &Message<'_>) -> (Vec<(String, String)>, Vec<String>) {
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

/// An mbox export starts each message with a `From sender date` line that is not a header.
fn skip_mbox_separator(raw: &[u8]) -> &[u8] {
    if raw.starts_with(b"From ")
        && let Some(end) = raw.iter().position(|&b| b == b'\n')
    {
        return &raw[end + 1..];
    }
    raw
}

// ---------------------------------------------------------------------------------------------
// Headers, addresses, ids

fn header_value<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.as_str())
}

fn all_ids(headers: &[(String, String)], name: &str) -> Vec<String> {
    let mut ids = Vec::new();
    for (_, value) in headers.iter().filter(|(n, _)| n == name) {
        push_unique_all(&mut ids, ids_in(value));
    }
    ids
}

/// Message ids in a header value: what is between `<` and `>`, or else the bare tokens that
/// contain an `@` (some mailers drop the brackets).
fn ids_in(value: &str) -> Vec<String> {
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

fn first_address(address: &Address<'_>) -> Option<String> {
    addresses_of(address).into_iter().next()
}

fn addresses_of(address: &Address<'_>) -> Vec<String> {
    address
        .iter()
        .filter_map(|a| a.address.as_deref())
        .map(|a| a.trim().to_lowercase())
        .filter(|a| a.contains('@'))
        .collect()
}

/// Appends the items `into` does not hold yet, up to [`MAX_ADDRESSES`] in all.
fn push_unique_all(into: &mut Vec<String>, items: Vec<String>) {
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
pub(crate) fn extract_addresses(text: &str) -> Vec<String> {
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

/// Whether an address belongs to a mail system rather than a person (bounces come from these).
pub(crate) fn is_mail_system(address: &str) -> bool {
    let local = address.split('@').next().unwrap_or("").to_ascii_lowercase();
    matches!(
        local.as_str(),
        "mailer-daemon"
            | "mailerdaemon"
            | "mail-daemon"
            | "maildaemon"
            | "postmaster"
            | "mail.delivery.system"
    ) || local.starts_with("mailer-daemon")
        || local.starts_with("microsoftexchange")
}

// ---------------------------------------------------------------------------------------------
// Body text and quoted history

/// The message's plain-text bodies (HTML turned to text where there is no plain part),
/// joined, with `\n` line ends and no-break spaces made plain.
fn body_text(msg: &Message<'_>) -> String {
    let mut out = String::new();
    for i in 0..msg.text_body_count() {
        if let Some(text) = msg.body_text(i) {
            if !out.is_empty() {
                out.push('\n');
            }
            out.push_str(&text);
        }
    }
    out.replace("\r\n", "\n")
        .replace(['\r'], "\n")
        .replace('\u{a0}', " ")
}

/// The new text of a reply: drops `>`-quoted lines, the attribution line that introduces
/// them ("On … wrote:", "Le … a écrit :", "Am … schrieb …:", "El … escribió:",
/// "Op … schreef …:"), and everything from a signature delimiter (`-- `), an
/// original-message separator, or an Outlook header block ("From: … Sent: …") on.
///
/// An attribution followed by `>` lines only drops those lines, so a bottom-posted or
/// interleaved answer keeps what was written between the quotes; one followed by unquoted
/// history cuts the rest.
pub fn strip_quoted(text: &str) -> String {
    let lines: Vec<&str> = text.lines().collect();
    let mut kept: Vec<&str> = Vec::new();
    let mut i = 0;
    while let Some(&raw_line) = lines.get(i) {
        let line = raw_line.trim_end();
        let trimmed = line.trim_start();
        if trimmed.starts_with('>') {
            i += 1;
            continue;
        }
        if line == "--" || raw_line.trim_end_matches('\r') == "-- " {
            break;
        }
        if is_separator(trimmed) || is_outlook_header_block(&lines, i) {
            break;
        }
        if let Some(span) = attribution_span(&lines, i) {
            let next = lines.iter().skip(i + span).find(|l| !l.trim().is_empty());
            if next.is_some_and(|l| l.trim_start().starts_with('>')) {
                i += span;
                continue;
            }
            break;
        }
        kept.push(line);
        i += 1;
    }
    let is_filler = |l: &&str| {
        let t = l.trim();
        t.is_empty()
            || t.chars()
                .all(|c| c == '_' || c == '-' || c == '=' || c == '*')
    };
    while kept.last().is_some_and(is_filler) {
        kept.pop();
    }
    let start = kept
        .iter()
        .position(|l| !l.trim().is_empty())
        .unwrap_or(kept.len());
    kept[start..].join("\n")
}

/// "-----Original Message-----" and its translations, forwarded-message markers, and the
/// lines that introduce a bounced message's copy.
fn is_separator(trimmed: &str) -> bool {
    if trimmed.len() > 120 {
        return false;
    }
    let folded = fold(trimmed);
    let dashed = folded.starts_with("---") || folded.starts_with("___");
    const MARKERS: &[&str] = &[
        "original message",
        "ursprungliche nachricht",
        "original-nachricht",
        "urspr. nachricht",
        "message d'origine",
        "message original",
        "mensaje original",
        "oorspronkelijk bericht",
        "origineel bericht",
        "forwarded message",
        "weitergeleitete nachricht",
        "message transfere",
        "mensaje reenviado",
        "doorgestuurd bericht",
    ];
    (dashed && MARKERS.iter().any(|m| folded.contains(m)))
        || folded.starts_with("begin forwarded message")
        || folded.contains("this is a copy of the message")
        || folded.contains("below this line is a copy of the message")
        || folded.starts_with("original message headers")
}

/// An Outlook-style block: a "From:" line followed within four lines by a "Sent:"/"Date:"
/// line (or their German, French, Spanish, Dutch forms).
fn is_outlook_header_block(lines: &[&str], i: usize) -> bool {
    fn label(line: &str) -> String {
        let start: String = line
            .trim()
            .trim_start_matches('*')
            .chars()
            .take(24)
            .collect();
        fold(&start)
    }
    const FROM: &[&str] = &["from:", "von:", "de :", "de:", "van:"];
    const SENT: &[&str] = &[
        "sent:",
        "date:",
        "gesendet:",
        "datum:",
        "envoye :",
        "envoye:",
        "date :",
        "enviado:",
        "enviado el:",
        "fecha:",
        "verzonden:",
        "verstuurd:",
    ];
    let Some(first) = lines.get(i) else {
        return false;
    };
    let first = label(first);
    if !FROM.iter().any(|f| first.starts_with(f)) {
        return false;
    }
    lines
        .iter()
        .skip(i + 1)
        .take(4)
        .any(|l| SENT.iter().any(|s| label(l).starts_with(s)))
}

/// How many lines (1 to 3, for wrapped ones) the attribution starting at line `i` spans.
fn attribution_span(lines: &[&str], i: usize) -> Option<usize> {
    let first = lines.get(i)?.trim();
    if first.is_empty() || first.len() > 300 {
        return None;
    }
    let mut joined = String::new();
    for span in 1..=3 {
        let line = lines.get(i + span - 1)?.trim();
        if line.is_empty() || line.starts_with('>') || joined.len() > 300 {
            return None;
        }
        if !joined.is_empty() {
            joined.push(' ');
        }
        joined.push_str(line);
        if is_attribution(&joined) {
            return Some(span);
        }
        // Only a line that opens like an attribution may wrap onto the next.
        let f = fold(first);
        if !["on ", "le ", "am ", "el ", "op "]
            .iter()
            .any(|o| f.starts_with(o))
        {
            return None;
        }
    }
    None
}

fn is_attribution(line: &str) -> bool {
    let f = fold(line);
    let f = f.trim_end();
    let ends_colon = f.ends_with(':');
    (f.starts_with("on ") && f.ends_with("wrote:"))
        || (f.starts_with("le ") && (f.ends_with("a ecrit :") || f.ends_with("a ecrit:")))
        || (f.starts_with("am ") && f.contains("schrieb") && ends_colon)
        || (f.starts_with("el ") && f.contains("escribio") && ends_colon)
        || (f.starts_with("op ") && f.contains("schreef") && ends_colon)
        || ((f.ends_with(" wrote:") || f.ends_with(" schrieb:") || f.ends_with(" escribio:"))
            && (f.contains('@') || f.chars().any(|c| c.is_ascii_digit())))
}

// ---------------------------------------------------------------------------------------------
// Standard reports (RFC 6522 multipart/report)

fn content_type_of(part: &MessagePart<'_>) -> Option<(String, String)> {
    let ct = part.content_type()?;
    Some((
        ct.c_type.to_ascii_lowercase(),
        ct.c_subtype.as_deref().unwrap_or("").to_ascii_lowercase(),
    ))
}

fn standard_report(msg: &Message<'_>) -> Option<Report> {
    let mut report_type: Option<String> = None;
    let mut recipients: Option<Vec<DsnRecipient>> = None;
    let mut feedback: Option<Vec<(String, String)>> = None;
    let mut original: Option<Enclosed> = None;
    for part in &msg.parts {
        let Some((ctype, subtype)) = content_type_of(part) else {
            continue;
        };
        match (ctype.as_str(), subtype.as_str()) {
            ("multipart", "report") if report_type.is_none() => {
                report_type = part
                    .content_type()
                    .and_then(|ct| ct.attribute("report-type"))
                    .map(str::to_ascii_lowercase);
            }
            ("message", "delivery-status" | "global-delivery-status") if recipients.is_none() => {
                recipients = Some(parse_dsn(&String::from_utf8_lossy(part.contents())));
            }
            ("message", "feedback-report") if feedback.is_none() => {
                let fields = field_blocks(&String::from_utf8_lossy(part.contents()));
                feedback = Some(fields.into_iter().flatten().collect());
            }
            ("message", "rfc822" | "global")
            | ("text" | "message", "rfc822-headers" | "global-headers")
                if original.is_none() =>
            {
                original = enclosed_in_part(part);
            }
            _ => {}
        }
    }
    let report_type = report_type.unwrap_or_default();
    if feedback.is_some() || report_type == "feedback-report" {
        let mut headers = original.map(|o| o.headers).unwrap_or_default();
        for (name, value) in feedback.unwrap_or_default() {
            if name == "original-rcpt-to" {
                push_unique_all(&mut headers.to, extract_addresses(&value));
            }
        }
        return Some(Report::Feedback(headers));
    }
    if recipients.is_some() || report_type == "delivery-status" {
        let headers = original.map(|o| o.headers).unwrap_or_default();
        return Some(Report::Delivery(recipients.unwrap_or_default(), headers));
    }
    None
}

/// The RFC 3464 per-recipient groups of a `message/delivery-status` body.
pub(crate) fn parse_dsn(text: &str) -> Vec<DsnRecipient> {
    field_blocks(text)
        .into_iter()
        .filter(|block| {
            block.iter().any(|(n, _)| {
                matches!(
                    n.as_str(),
                    "final-recipient" | "original-recipient" | "action"
                )
            })
        })
        .map(|block| {
            let get = |name: &str| {
                block
                    .iter()
                    .find(|(n, _)| n == name)
                    .map(|(_, v)| v.trim())
                    .filter(|v| !v.is_empty())
            };
            DsnRecipient {
                final_recipient: get("final-recipient").and_then(typed_address),
                original_recipient: get("original-recipient").and_then(typed_address),
                action: get("action")
                    .and_then(|v| v.split_whitespace().next())
                    .map(str::to_ascii_lowercase),
                status: get("status")
                    .and_then(|v| v.split_whitespace().next())
                    .map(str::to_string),
                diagnostic: get("diagnostic-code").map(|v| untyped(v).to_string()),
            }
        })
        .collect()
}

/// Groups of `Name: value` fields separated by blank lines, with continuation lines joined.
fn field_blocks(text: &str) -> Vec<Vec<(String, String)>> {
    let mut blocks = Vec::new();
    let mut current: Vec<(String, String)> = Vec::new();
    for line in text.lines() {
        if line.trim().is_empty() {
            if !current.is_empty() {
                blocks.push(std::mem::take(&mut current));
            }
        } else if line.starts_with([' ', '\t']) {
            if let Some((_, value)) = current.last_mut() {
                value.push(' ');
                value.push_str(line.trim());
            }
        } else if let Some((name, value)) = line.split_once(':') {
            current.push((name.trim().to_ascii_lowercase(), value.trim().to_string()));
        }
    }
    if !current.is_empty() {
        blocks.push(current);
    }
    blocks
}

/// `rfc822; <Bob@Example.org>` → `bob@example.org`.
fn typed_address(value: &str) -> Option<String> {
    let bare = untyped(value);
    extract_addresses(bare).into_iter().next().or_else(|| {
        let bare = bare.trim_matches(|c: char| c == '<' || c == '>' || c.is_whitespace());
        (!bare.is_empty()).then(|| bare.to_lowercase())
    })
}

/// Drops an RFC 3464 type prefix (`rfc822;`, `smtp;`, `X-Postfix;`).
fn untyped(value: &str) -> &str {
    match value.split_once(';') {
        Some((kind, rest))
            if !kind.trim().is_empty() && !kind.trim().contains(char::is_whitespace) =>
        {
            rest.trim()
        }
        _ => value.trim(),
    }
}

/// The headers of a message enclosed in a report or bounce, plus its sender (which a
/// non-standard bounce's text must not mistake for a failed recipient).
#[derive(Default)]
struct Enclosed {
    headers: OriginalHeaders,
    from: Option<String>,
}

fn enclosed_in_part(part: &MessagePart<'_>) -> Option<Enclosed> {
    match &part.body {
        PartType::Message(inner) => enclosed_in_message(inner),
        PartType::Text(text) | PartType::Html(text) => enclosed_in_text(text),
        PartType::Binary(bytes) | PartType::InlineBinary(bytes) => {
            enclosed_in_text(&String::from_utf8_lossy(bytes))
        }
        PartType::Multipart(_) => None,
    }
}

fn enclosed_in_message(inner: &Message<'_>) -> Option<Enclosed> {
    // The accessors index the first part; a message without one has nothing to tell.
    inner.parts.first()?;
    Some(Enclosed {
        headers: OriginalHeaders {
            message_id: inner
                .message_id()
                .map(|id| id.trim().trim_matches(|c| c == '<' || c == '>').to_string())
                .filter(|id| !id.is_empty()),
            to: inner.to().map(addresses_of).unwrap_or_default(),
        },
        from: inner.from().and_then(first_address),
    })
}

/// Reads header fields from text (`text/rfc822-headers`, or a bounce's inline copy).
fn enclosed_in_text(text: &str) -> Option<Enclosed> {
    let text = text.trim_start_matches(['\r', '\n', ' ', '\t']);
    let parsed = MessageParser::default().parse_headers(text.as_bytes())?;
    let enclosed = enclosed_in_message(&parsed)?;
    (enclosed.headers.message_id.is_some() || !enclosed.headers.to.is_empty()).then_some(enclosed)
}

// ---------------------------------------------------------------------------------------------
// Non-standard bounces (Exim, Postfix, Gmail and Exchange notices without a report part)

/// Subjects of bounce notices (folded, matched anywhere).
const BOUNCE_SUBJECTS: &[&str] = &[
    "undelivered mail returned to sender",
    "mail delivery failed",
    "delivery status notification",
    "undeliverable",
    "undelivered mail",
    "returned mail",
    "delivery failure",
    "failure notice",
    "delivery has failed",
    "could not send message",
    "delayed mail",
    "delivery delayed",
    "message delayed",
    "nicht zustellbar",
    "unzustellbar",
    "non remis",
    "no se puede entregar",
    "onbestelbaar",
    "kan niet worden bezorgd",
];

/// Wording of bounce notices (folded, matched anywhere in the first part of the body).
const BOUNCE_BODIES: &[&str] = &[
    "this message was created automatically by mail delivery software",
    "delivery has failed to these recipients",
    "could not be delivered to one or more",
    "i'm sorry to have to inform you that your message could not",
    "this is the mail system at host",
    "delivery to the following recipient failed",
    "delivery to the following recipients failed",
    "your message wasn't delivered",
    "your message was not delivered",
    "your message couldn't be delivered",
    "your message could not be delivered",
    "the following address(es) failed",
    "the following addresses had permanent",
    "there was a temporary problem delivering your message",
    "has not yet been delivered",
    "delivery incomplete",
    "message could not be delivered",
    "unable to deliver your message",
    "the email account that you tried to reach does not exist",
    "your message did not reach some or all of the intended recipients",
];

/// Reads a bounce notice that has no `message/delivery-status` part into a
/// [`Report::Delivery`]: failed recipients from `X-Failed-Recipients` or the notice's text,
/// a status per recipient when one is given (enhanced `5.1.1`, or an SMTP code `550`), and
/// the original's Message-ID from an attached or inline copy.
fn nonstandard_bounce(msg: &Message<'_>, p: &ParsedInbound, body: &str) -> Option<Report> {
    let failed_header = p.header("x-failed-recipients");
    let subject = fold(&p.subject);
    let head: String = body.chars().take(SCAN_LIMIT).collect();
    let folded_head = fold(&head);
    let from_system = p.from.as_deref().is_some_and(is_mail_system)
        || p.header("return-path").is_some_and(|v| v.trim() == "<>");
    let subject_says = BOUNCE_SUBJECTS.iter().any(|s| subject.contains(s));
    let body_says = BOUNCE_BODIES.iter().any(|s| folded_head.contains(s));
    let forwarded = ["fw:", "fwd:", "wg:", "tr:", "re:", "aw:"]
        .iter()
        .any(|prefix| subject.starts_with(prefix));
    let is_bounce = failed_header.is_some()
        || (from_system && (subject_says || body_says))
        || (!forwarded && subject_says && body_says);
    if !is_bounce {
        return None;
    }

    let (human, copy) = split_at_original_copy(&head);
    let enclosed = msg
        .parts
        .iter()
        .skip(1)
        .filter(|part| {
            matches!(
                content_type_of(part)
                    .as_ref()
                    .map(|(t, s)| (t.as_str(), s.as_str())),
                Some(("message", "rfc822" | "global") | ("text", "rfc822-headers"))
            )
        })
        .find_map(enclosed_in_part)
        .or_else(|| copy.and_then(enclosed_in_text))
        .unwrap_or_default();

    let mut not_recipients: Vec<&str> = p.recipients.iter().map(String::as_str).collect();
    not_recipients.extend(p.from.as_deref());
    not_recipients.extend(enclosed.from.as_deref());
    let mut addresses = failed_header.map(extract_addresses).unwrap_or_default();
    if addresses.is_empty() {
        for line in human.lines() {
            let label = fold(line.trim_start());
            if [
                "message-id:",
                "in-reply-to:",
                "references:",
                "from:",
                "reply-to:",
                "sender:",
            ]
            .iter()
            .any(|h| label.starts_with(h))
            {
                continue;
            }
            let found = extract_addresses(line)
                .into_iter()
                .filter(|a| !is_mail_system(a) && !not_recipients.contains(&a.as_str()))
                .collect();
            push_unique_all(&mut addresses, found);
        }
    }
    addresses.truncate(MAX_BOUNCE_RECIPIENTS);

    let human_lower = human.to_lowercase();
    let overall = text_failure(&fold(human));
    let entry = |address: Option<String>| {
        // The status nearest after the address's first mention, else the first in the notice.
        let window = address
            .as_deref()
            .and_then(|a| human_lower.find(a))
            .map(|at| {
                human
                    .get(..at)
                    .and_then(|t| t.rfind('\n'))
                    .map_or(0, |p| p + 1)
            })
            .and_then(|line_start| human.get(line_start..))
            .map(|rest| rest.chars().take(1500).collect::<String>());
        let found = window
            .as_deref()
            .and_then(find_status)
            .map(|(at, status)| (status, line_at(window.as_deref().unwrap_or(""), at)))
            .or_else(|| find_status(human).map(|(at, status)| (status, line_at(human, at))));
        let (status, diagnostic) = match found {
            Some((status, line)) => (Some(status), Some(line)),
            None => (None, None),
        };
        let failure = status.as_deref().and_then(status_failure).or(overall);
        DsnRecipient {
            final_recipient: address,
            original_recipient: None,
            action: failure.map(|f| match f {
                Failure::Permanent => "failed".to_string(),
                Failure::Transient => "delayed".to_string(),
            }),
            status,
            diagnostic,
        }
    };
    let recipients = if addresses.is_empty() {
        vec![entry(None)]
    } else {
        addresses.into_iter().map(|a| entry(Some(a))).collect()
    };
    Some(Report::Delivery(recipients, enclosed.headers))
}

/// Splits a bounce notice into its human-readable part and the copy of the original message
/// (after "This is a copy of the message", "Original message headers:", or the first
/// header-looking line such as `Received:`).
fn split_at_original_copy(text: &str) -> (&str, Option<&str>) {
    const HEADER_LINES: &[&str] = &[
        "received:",
        "return-path:",
        "dkim-signature:",
        "message-id:",
        "x-original-to:",
    ];
    let mut offset = 0;
    for line in text.split_inclusive('\n') {
        let trimmed = line.trim();
        let label = fold(trimmed);
        if is_separator(trimmed) {
            return (&text[..offset], text.get(offset + line.len()..));
        }
        if HEADER_LINES.iter().any(|h| label.starts_with(h)) {
            return (&text[..offset], text.get(offset..));
        }
        offset += line.len();
    }
    (text, None)
}

/// The trimmed line of `text` around byte `at`, at most 300 characters.
fn line_at(text: &str, at: usize) -> String {
    let start = text
        .get(..at)
        .and_then(|t| t.rfind('\n'))
        .map_or(0, |p| p + 1);
    let end = text
        .get(at..)
        .and_then(|t| t.find('\n'))
        .map_or(text.len(), |p| at + p);
    text.get(start..end)
        .unwrap_or("")
        .trim()
        .chars()
        .take(300)
        .collect()
}

// ---------------------------------------------------------------------------------------------
// Status codes and failure wording

/// SMTP reply codes that mean a failure (a bare three-digit number is not enough).
const SMTP_FAILURE_CODES: &[&str] = &[
    "421", "450", "451", "452", "454", "471", "500", "501", "502", "503", "504", "521", "530",
    "535", "541", "550", "551", "552", "553", "554", "556", "557",
];

/// The first failure status in `text`: an enhanced status code (`5.1.1`, `4.2.2`) if there is
/// one, else an SMTP failure reply code written as its class (`550` → `5.0.0`). Returns the
/// byte position and the status.
pub(crate) fn find_status(text: &str) -> Option<(usize, String)> {
    find_enhanced_status(text).or_else(|| find_smtp_code(text))
}

fn find_enhanced_status(text: &str) -> Option<(usize, String)> {
    let b = text.as_bytes();
    let digits_at = |from: usize| {
        b.iter()
            .skip(from)
            .take(4)
            .take_while(|c| c.is_ascii_digit())
            .count()
    };
    for i in 0..b.len() {
        if !matches!(b[i], b'4' | b'5') {
            continue;
        }
        if i > 0 && (b[i - 1].is_ascii_alphanumeric() || b[i - 1] == b'.') {
            continue;
        }
        if b.get(i + 1) != Some(&b'.') {
            continue;
        }
        let n1 = digits_at(i + 2);
        if !(1..=3).contains(&n1) || b.get(i + 2 + n1) != Some(&b'.') {
            continue;
        }
        let n2 = digits_at(i + 3 + n1);
        if !(1..=3).contains(&n2) {
            continue;
        }
        let end = i + 3 + n1 + n2;
        let next = b.get(end);
        if next.is_some_and(u8::is_ascii_alphanumeric)
            || (next == Some(&b'.') && b.get(end + 1).is_some_and(u8::is_ascii_digit))
        {
            continue;
        }
        return text.get(i..end).map(|s| (i, s.to_string()));
    }
    None
}

fn find_smtp_code(text: &str) -> Option<(usize, String)> {
    let b = text.as_bytes();
    for i in 0..b.len().saturating_sub(2) {
        if !matches!(b[i], b'4' | b'5')
            || (i > 0 && (b[i - 1].is_ascii_alphanumeric() || b[i - 1] == b'.'))
        {
            continue;
        }
        let Some(code) = text.get(i..i + 3) else {
            continue;
        };
        if !SMTP_FAILURE_CODES.contains(&code) {
            continue;
        }
        match b.get(i + 3) {
            None | Some(b' ' | b'-' | b'\t' | b'\r' | b'\n' | b'\'' | b'"' | b')' | b',') => {
                return Some((i, format!("{}.0.0", &code[..1])));
            }
            _ => {}
        }
    }
    None
}

fn status_failure(status: &str) -> Option<Failure> {
    match status.trim().chars().next() {
        Some('5') => Some(Failure::Permanent),
        Some('4') => Some(Failure::Transient),
        _ => None,
    }
}

/// What a mail system's wording says about a failure (`folded` as by [`fold`]): clearly
/// temporary wins (a warning that delivery is still being retried), then clearly permanent,
/// then the weaker hints of either.
pub(crate) fn text_failure(folded: &str) -> Option<Failure> {
    const TEMPORARY: &[&str] = &[
        "this is a temporary",
        "temporary error",
        "temporary failure",
        "temporary problem",
        "temporarily",
        "will retry",
        "will be retried",
        "still being retried",
        "will continue to try",
        "delivery attempts will continue",
        "has not yet been delivered",
        "not yet been delivered",
        "warning only",
        "delivery incomplete",
        "still in the queue",
        "delivery delayed",
    ];
    const PERMANENT: &[&str] = &[
        "permanent error",
        "permanent failure",
        "permanent fatal error",
        "failed permanently",
        "permanently failed",
        "this is a permanent",
        "permanently rejected",
    ];
    const PERMANENT_HINTS: &[&str] = &[
        "user unknown",
        "unknown user",
        "no such user",
        "does not exist",
        "doesn't exist",
        "address rejected",
        "recipient not found",
        "recipient address rejected",
        "mailbox unavailable",
        "mailbox not found",
        "address couldn't be found",
        "address could not be found",
        "couldn't be found",
        "invalid recipient",
        "account has been disabled",
        "no longer in use",
        "delivery has failed",
    ];
    const TEMPORARY_HINTS: &[&str] = &[
        "mailbox full",
        "mailbox is full",
        "over quota",
        "quota exceeded",
        "exceeded storage",
        "try again later",
        "delayed",
        "deferred",
    ];
    let says = |phrases: &[&str]| phrases.iter().any(|p| folded.contains(p));
    if says(TEMPORARY) {
        Some(Failure::Transient)
    } else if says(PERMANENT) || says(PERMANENT_HINTS) {
        Some(Failure::Permanent)
    } else if says(TEMPORARY_HINTS) {
        Some(Failure::Transient)
    } else {
        None
    }
}

// ---------------------------------------------------------------------------------------------
// Return dates of out-of-office replies

/// The date an auto-reply says its sender is back ([`return_date`] over its subject and new
/// text), counted from the day it was written: its Date header, else `received_on` (a dateless
/// auto-reply was surely written about when it arrived). None for anything but an auto-reply:
/// only those announce an absence, and a person's "back on Monday" postpones nothing.
pub fn stated_return_date(
    p: &ParsedInbound,
    classification: Classification,
    received_on: NaiveDate,
) -> Option<NaiveDate> {
    if classification != Classification::AutoReply {
        return None;
    }
    let reference = p.sent_on.unwrap_or(received_on);
    return_date(&format!("{}\n{}", p.subject, p.text), reference)
}

/// The return date an out-of-office text states, best effort: dates written as ISO
/// (`2027-03-12`), numerically (`12.03.2027`, `12/03/2027`, `3/12/27`, `12.03.`) or with
/// month names in English, German, French, Spanish or Dutch (`12 March 2027`,
/// `March 12th`, `12. März`, `le 12 mars`, `12 de marzo de 2027`, `12 maart`). A year left
/// out is the next one that puts the date on or after `reference` (the message's date);
/// `03/12` style dates that could be either way round take the reading nearest after it.
/// Of the dates found (ignoring ones before `reference` or more than 400 days after it),
/// those near "back", "until", "zurück", "bis", "retour", "jusqu'au", "hasta", "terug", "tot"
/// … are preferred, and the latest of them is the return date.
pub fn return_date(text: &str, reference: NaiveDate) -> Option<NaiveDate> {
    let head: String = text.chars().take(DATE_SCAN_LIMIT).collect();
    let chars: Vec<char> = fold(&head).chars().collect();
    let tokens = tokenize(&chars);
    let earliest = reference.checked_sub_days(Days::new(1))?;
    let latest = reference.checked_add_days(Days::new(400))?;
    let mut near_keyword: Vec<NaiveDate> = Vec::new();
    let mut elsewhere: Vec<NaiveDate> = Vec::new();
    // A keyword belongs to the nearest date after it, not to every date in reach.
    let mut previous_end = 0;
    let mut i = 0;
    while i < tokens.len() {
        let Some((date, len)) = date_at(&tokens, i, reference) else {
            i += 1;
            continue;
        };
        let start = tokens[i].start;
        let end = tokens[i + len - 1].end;
        let from = start.saturating_sub(45).max(previous_end);
        previous_end = end;
        if (earliest..=latest).contains(&date) {
            if keyword_near(&chars, from, start, end) {
                near_keyword.push(date);
            } else {
                elsewhere.push(date);
            }
        }
        i += len;
    }
    near_keyword
        .into_iter()
        .max()
        .or_else(|| elsewhere.into_iter().max())
}

#[derive(Debug, Clone, PartialEq)]
enum Kind {
    /// A number and how many digits it was written with.
    Num(u32, usize),
    Word(String),
    Punct(char),
}

#[derive(Debug, Clone)]
struct Token {
    kind: Kind,
    /// Char positions in the folded text.
    start: usize,
    end: usize,
}

fn tokenize(chars: &[char]) -> Vec<Token> {
    let mut tokens = Vec::new();
    let mut i = 0;
    while let Some(&c) = chars.get(i) {
        let start = i;
        if c.is_ascii_digit() {
            let mut value: u32 = 0;
            while let Some(d) = chars.get(i).and_then(|c| c.to_digit(10)) {
                value = value.saturating_mul(10).saturating_add(d);
                i += 1;
            }
            tokens.push(Token {
                kind: Kind::Num(value, i - start),
                start,
                end: i,
            });
        } else if c.is_alphabetic() {
            while chars.get(i).is_some_and(|c| c.is_alphabetic()) {
                i += 1;
            }
            let word: String = chars[start..i].iter().collect();
            tokens.push(Token {
                kind: Kind::Word(word),
                start,
                end: i,
            });
        } else {
            i += 1;
            if !c.is_whitespace() {
                tokens.push(Token {
                    kind: Kind::Punct(c),
                    start,
                    end: i,
                });
            }
        }
    }
    tokens
}

fn month_number(word: &str) -> Option<u32> {
    const MONTHS: [&[&str]; 12] = [
        &[
            "january", "jan", "januar", "janner", "janvier", "janv", "enero", "ene", "januari",
        ],
        &[
            "february", "feb", "februar", "fevrier", "fevr", "fev", "febrero", "februari",
        ],
        &[
            "march", "mar", "marz", "maerz", "mars", "marzo", "maart", "mrt",
        ],
        &["april", "apr", "avril", "avr", "abril", "abr"],
        &["may", "mai", "mayo", "mei"],
        &["june", "jun", "juni", "juin", "junio"],
        &["july", "jul", "juli", "juillet", "juil", "julio"],
        &["august", "aug", "aout", "agosto", "augustus"],
        &[
            "september",
            "sep",
            "sept",
            "septembre",
            "septiembre",
            "setiembre",
        ],
        &["october", "oct", "oktober", "okt", "octobre", "octubre"],
        &["november", "nov", "novembre", "noviembre"],
        &[
            "december",
            "dec",
            "dezember",
            "dez",
            "decembre",
            "diciembre",
            "dic",
        ],
    ];
    MONTHS
        .iter()
        .position(|names| names.contains(&word))
        .and_then(|i| u32::try_from(i + 1).ok())
}

const ORDINALS: &[&str] = &["st", "nd", "rd", "th", "er", "e", "eme", "o", "ro", "de"];

/// A date starting at token `i`, and how many tokens it spans.
fn date_at(tokens: &[Token], i: usize, reference: NaiveDate) -> Option<(NaiveDate, usize)> {
    let tok = |k: usize| tokens.get(i + k);
    let kind = |k: usize| tok(k).map(|t| &t.kind);
    let adjacent = |k: usize| match (tok(k), tok(k + 1)) {
        (Some(a), Some(b)) => a.end == b.start,
        _ => false,
    };
    let num = |k: usize, digits: std::ops::RangeInclusive<usize>| match kind(k) {
        Some(Kind::Num(v, d)) if digits.contains(d) => Some(*v),
        _ => None,
    };
    let punct = |k: usize| match kind(k) {
        Some(Kind::Punct(c)) => Some(*c),
        _ => None,
    };
    let word = |k: usize| match kind(k) {
        Some(Kind::Word(w)) => Some(w.as_str()),
        _ => None,
    };

    // 2027-03-12
    if let (Some(y), Some(sep)) = (num(0, 4..=4), punct(1))
        && matches!(sep, '-' | '/' | '.')
        && (0..4).all(adjacent)
        && punct(3) == Some(sep)
        && let (Some(m), Some(d)) = (num(2, 1..=2), num(4, 1..=2))
    {
        return NaiveDate::from_ymd_opt(i32::try_from(y).ok()?, m, d).map(|date| (date, 5));
    }

    // 12.03.2027, 12/03/2027, 3/12/27
    if let (Some(a), Some(sep)) = (num(0, 1..=2), punct(1))
        && matches!(sep, '.' | '/' | '-')
        && let Some(b) = num(2, 1..=2)
        && adjacent(0)
        && adjacent(1)
    {
        let continues = |k: usize| {
            adjacent(k - 1) && punct(k) == Some(sep) && adjacent(k) && num(k + 1, 1..=9).is_some()
        };
        if punct(3) == Some(sep)
            && adjacent(2)
            && adjacent(3)
            && let Some(y) = num(4, 2..=2).map(|y| y + 2000).or_else(|| num(4, 4..=4))
            && !continues(5)
        {
            let y = i32::try_from(y).ok()?;
            let date = if sep == '.' {
                NaiveDate::from_ymd_opt(y, b, a)
            } else {
                either_way_round(a, b, y, reference)
            }?;
            return Some((date, 5));
        }
        // 12.03. (German, year left out)
        if sep == '.'
            && punct(3) == Some('.')
            && adjacent(2)
            && !(adjacent(3) && num(4, 1..=9).is_some())
        {
            return with_year(b, a, reference).map(|date| (date, 4));
        }
    }

    // 12 March 2027, 12th of March, 12. März, 1er mars, 12 de marzo de 2027
    if let Some(d) = num(0, 1..=2) {
        let mut k = 1;
        if adjacent(0) && word(k).is_some_and(|w| ORDINALS.contains(&w) && w != "de") {
            k += 1;
        }
        if punct(k) == Some('.') {
            k += 1;
        }
        if word(k).is_some_and(|w| w == "de" || w == "of") {
            k += 1;
        }
        if let Some(m) = word(k).and_then(month_number) {
            k += 1;
            if punct(k) == Some('.') {
                k += 1;
            }
            let year_at = if word(k) == Some("de") || punct(k) == Some(',') {
                k + 1
            } else {
                k
            };
            let date = match num(year_at, 4..=4) {
                Some(y) => NaiveDate::from_ymd_opt(i32::try_from(y).ok()?, m, d)
                    .map(|date| (date, year_at + 1)),
                None => with_year(m, d, reference).map(|date| (date, k)),
            };
            if date.is_some() {
                return date;
            }
        }
    }

    // March 12, 2027 · Mar. 12th · March 12
    if let Some(m) = word(0).and_then(month_number) {
        let mut k = 1;
        if punct(k) == Some('.') {
            k += 1;
        }
        if let Some(d) = num(k, 1..=2)
            && !(adjacent(k)
                && matches!(punct(k + 1), Some(':' | '/' | '.' | '-'))
                && num(k + 2, 1..=4).is_some())
        {
            let day_at = k;
            k += 1;
            if adjacent(day_at) && word(k).is_some_and(|w| ORDINALS.contains(&w)) {
                k += 1;
            }
            let year_at = if punct(k) == Some(',') { k + 1 } else { k };
            return match num(year_at, 4..=4) {
                Some(y) => NaiveDate::from_ymd_opt(i32::try_from(y).ok()?, m, d)
                    .map(|date| (date, year_at + 1)),
                None => with_year(m, d, reference).map(|date| (date, k)),
            };
        }
    }
    None
}

/// A month and day without a year: the first such date not more than a week before
/// `reference`.
fn with_year(month: u32, day: u32, reference: NaiveDate) -> Option<NaiveDate> {
    let floor = reference.checked_sub_days(Days::new(7))?;
    (0..=4)
        .filter_map(|offset| NaiveDate::from_ymd_opt(reference.year() + offset, month, day))
        .find(|date| *date >= floor)
}

/// `a/b/y` where either could be the day: the valid reading nearest on or after `reference`,
/// else the day-first one.
fn either_way_round(a: u32, b: u32, year: i32, reference: NaiveDate) -> Option<NaiveDate> {
    let day_first = NaiveDate::from_ymd_opt(year, b, a);
    let month_first = NaiveDate::from_ymd_opt(year, a, b);
    match (day_first, month_first) {
        (Some(x), Some(y)) => {
            let ahead = |d: NaiveDate| (d >= reference).then(|| d - reference);
            match (ahead(x), ahead(y)) {
                (Some(dx), Some(dy)) if dy < dx => Some(y),
                (None, Some(_)) => Some(y),
                _ => Some(x),
            }
        }
        (x, y) => x.or(y),
    }
}

/// Whether words that announce a return or an end of absence stand just before the date
/// ("back on", "until", "bis zum", "jusqu'au", "hasta el", "tot en met"), or "again" words
/// just after it ("ab 12.03. wieder im Büro").
fn keyword_near(chars: &[char], from: usize, start: usize, end: usize) -> bool {
    const BEFORE: &[&str] = &[
        "back",
        "return",
        "until",
        "till",
        "zuruck",
        "wieder",
        "bis",
        "retour",
        "jusqu",
        "des le",
        "a partir du",
        "regres",
        "vuelta",
        "volver",
        "hasta",
        "a partir del",
        "terug",
        "weer",
        "tot en met",
        "t/m",
        "tot ",
        "vanaf",
        "ab dem",
        "ab ",
        "erreichbar",
        "disponible",
        "bereikbaar",
        "available",
        "reachable",
    ];
    const AFTER: &[&str] = &[
        "wieder",
        "back",
        "zuruck",
        "de retour",
        "terug",
        "weer",
        "de vuelta",
        "again",
    ];
    let before: String = chars[from.min(start)..start].iter().collect();
    let after: String = chars[end.min(chars.len())..(end + 30).min(chars.len())]
        .iter()
        .collect();
    BEFORE.iter().any(|k| before.contains(k)) || AFTER.iter().any(|k| after.contains(k))
}

// ---------------------------------------------------------------------------------------------
// Text folding for phrase matching

/// Lower-cases and strips the diacritics of Latin letters (é → e, ü → u, ß → ss), turns
/// typographic apostrophes, dashes and odd spaces plain, so phrases can be matched in one
/// spelling across English, German, French, Spanish and Dutch.
pub(crate) fn fold(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars().flat_map(char::to_lowercase) {
        match c {
            'à' | 'á' | 'â' | 'ã' | 'ä' | 'å' => out.push('a'),
            'æ' => out.push_str("ae"),
            'ç' => out.push('c'),
            'è' | 'é' | 'ê' | 'ë' => out.push('e'),
            'ì' | 'í' | 'î' | 'ï' => out.push('i'),
            'ñ' => out.push('n'),
            'ò' | 'ó' | 'ô' | 'õ' | 'ö' | 'ø' => out.push('o'),
            'œ' => out.push_str("oe"),
            'ù' | 'ú' | 'û' | 'ü' => out.push('u'),
            'ý' | 'ÿ' => out.push('y'),
            'ß' => out.push_str("ss"),
            '\u{2018}' | '\u{2019}' | '\u{201b}' | '\u{2032}' | '`' | '\u{b4}' => out.push('\''),
            '\u{2010}' | '\u{2011}' | '\u{2012}' | '\u{2013}' | '\u{2014}' => out.push('-'),
            '\u{a0}' | '\u{2007}' | '\u{202f}' | '\t' => out.push(' '),
            other => out.push(other),
        }
    }
    out
}

/// Whether `phrase` occurs in `folded` as whole words (no letter or digit just before or
/// after it). Both sides must already be folded.
pub(crate) fn contains_phrase(folded: &str, phrase: &str) -> bool {
    phrase_positions(folded, phrase).next().is_some()
}

/// Byte positions where `phrase` occurs in `folded` as whole words.
pub(crate) fn phrase_positions<'a>(
    folded: &'a str,
    phrase: &'a str,
) -> impl Iterator<Item = usize> + 'a {
    folded.match_indices(phrase).filter_map(move |(at, _)| {
        let before_ok = folded[..at]
            .chars()
            .next_back()
            .is_none_or(|c| !c.is_alphanumeric() || !phrase.starts_with(char::is_alphanumeric));
        let after_ok = folded[at + phrase.len()..]
            .chars()
            .next()
            .is_none_or(|c| !c.is_alphanumeric() || !phrase.ends_with(char::is_alphanumeric));
        (before_ok && after_ok).then_some(at)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn date(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
    }

    fn crlf(text: &str) -> Vec<u8> {
        text.replace('\n', "\r\n").into_bytes()
    }

    #[test]
    fn quote_stripping_keeps_only_what_was_written_this_time() {
        let cases: &[(&str, &str, &str)] = &[
            (
                "gmail attribution on one line",
                "Yes, call me.\n\nOn Tue, Mar 3, 2026 at 10:00 AM Acme <sales@acme.example> wrote:\n> Hello Ann\n> unsubscribe here\n",
                "Yes, call me.",
            ),
            (
                "gmail attribution wrapped over two lines",
                "Sounds good\n\nOn Tue, Mar 3, 2026 at 10:00 AM Acme Sales <\nsales@acme.example> wrote:\n\n> Hello\n",
                "Sounds good",
            ),
            (
                "apple mail",
                "Thursday works.\n\nSent from my iPhone\n\n> On 3 Mar 2026, at 10:15, Acme Sales <sales@acme.example> wrote:\n> \n> Hi\n",
                "Thursday works.\n\nSent from my iPhone",
            ),
            (
                "french",
                "Oui, merci.\n\nLe mar. 3 mars 2026 à 10:00, Acme <sales@acme.example> a écrit :\n> Bonjour\n",
                "Oui, merci.",
            ),
            (
                "german",
                "Gerne.\n\nAm Di., 3. März 2026 um 10:00 Uhr schrieb Acme <sales@acme.example>:\n> Hallo\n",
                "Gerne.",
            ),
            (
                "spanish",
                "Claro.\n\nEl mar, 3 mar 2026 a las 10:00, Acme (<sales@acme.example>) escribió:\n> Hola\n",
                "Claro.",
            ),
            (
                "dutch",
                "Prima.\n\nOp di 3 mrt. 2026 om 10:00 schreef Acme <sales@acme.example>:\n> Hallo\n",
                "Prima.",
            ),
            (
                "outlook block with underscores",
                "Please send the price list.\n\n________________________________\nFrom: Acme Sales <sales@acme.example>\nSent: Tuesday, March 3, 2026 10:00 AM\nTo: Bob\nSubject: Hello\n\nHello Bob, unsubscribe: https://x\n",
                "Please send the price list.",
            ),
            (
                "outlook original message separator",
                "Later this year.\n-----Original Message-----\nFrom: sales@acme.example\nunsubscribe\n",
                "Later this year.",
            ),
            (
                "german outlook block",
                "Danke.\n\nVon: Acme Sales <sales@acme.example>\nGesendet: Dienstag, 3. März 2026 10:00\nAn: Bob\n",
                "Danke.",
            ),
            (
                "bold outlook labels",
                "Ok.\n\n*From:* Acme <sales@acme.example>\n*Sent:* Tuesday\n",
                "Ok.",
            ),
            (
                "signature",
                "Call me Monday.\n\n-- \nAnn Example\nHead of Sales\n",
                "Call me Monday.",
            ),
            (
                "interleaved answers keep what is between the quotes",
                "On Tue, Mar 3, 2026 at 10:00 AM Acme <sales@acme.example> wrote:\n> Would Tuesday work?\nYes.\n> Shall we invite your CTO?\nNo, just me.\n",
                "Yes.\nNo, just me.",
            ),
            (
                "bare quoted lines",
                "Fine by me.\n> earlier text\n>> older text\n",
                "Fine by me.",
            ),
            (
                "attribution followed by unquoted history cuts the rest",
                "Thanks!\nOn Mon, Mar 2, 2026, Acme <sales@acme.example> wrote:\nHello there\nunsubscribe\n",
                "Thanks!",
            ),
            (
                "nothing to strip",
                "Just text\nover two lines",
                "Just text\nover two lines",
            ),
            (
                "a line that merely starts with 'On' stays",
                "On Monday I am free.\nSee you.",
                "On Monday I am free.\nSee you.",
            ),
        ];
        for (name, input, expected) in cases {
            assert_eq!(strip_quoted(input), *expected, "{name}");
        }
    }

    #[test]
    fn return_dates_are_read_in_every_supported_form() {
        let reference = date("2027-03-01");
        let cases: &[(&str, &str)] = &[
            ("I will be back on 12 March 2027.", "2027-03-12"),
            ("I will return on March 12.", "2027-03-12"),
            ("I'm out of the office until March 12th, 2027", "2027-03-12"),
            ("Back on Mar. 12", "2027-03-12"),
            ("returning 2027-03-12", "2027-03-12"),
            ("Ich bin ab dem 12.03.2027 wieder im Büro.", "2027-03-12"),
            ("Ich bin zurück am 12.3.27.", "2027-03-12"),
            ("Ich bin bis zum 12. März nicht erreichbar.", "2027-03-12"),
            ("Ab 12.03. bin ich wieder da.", "2027-03-12"),
            ("Je serai de retour le 12/03/2027.", "2027-03-12"),
            ("Je suis absente jusqu'au 12 mars inclus.", "2027-03-12"),
            ("De retour le 1er avril.", "2027-04-01"),
            ("Estaré de vuelta el 12 de marzo de 2027.", "2027-03-12"),
            ("Regreso el 12/03/2027.", "2027-03-12"),
            ("Ik ben terug op 12 maart 2027.", "2027-03-12"),
            ("Afwezig t/m 12-03-2027.", "2027-03-12"),
            ("I am away from 1 March to 12 March.", "2027-03-12"),
            (
                "Back on 3/12/2027 (US style, nearest reading).",
                "2027-03-12",
            ),
            ("Back on 25/03/2027 (day first, unambiguous).", "2027-03-25"),
            (
                "Back on 03/25/2027 (month first, unambiguous).",
                "2027-03-25",
            ),
            (
                "I am out from 2 March, back 12 March; call 555-0100 or see v1.2.3.",
                "2027-03-12",
            ),
        ];
        for (text, expected) in cases {
            assert_eq!(return_date(text, reference), Some(date(expected)), "{text}");
        }
    }

    #[test]
    fn return_dates_roll_into_next_year_and_ignore_noise() {
        let december = date("2026-12-20");
        assert_eq!(
            return_date("Back on 5 January.", december),
            Some(date("2027-01-05"))
        );
        assert_eq!(
            return_date("Back on January 5th", december),
            Some(date("2027-01-05"))
        );
        let reference = date("2027-03-01");
        let none: &[&str] = &[
            "I am out of the office with limited access to email.",
            "Back soon, call +1 555 0100.",
            "Version 10.2.3 released; meeting at 10:30.",
            "Back on 12 March 2019.",
            "Back on 2031-01-01.",
            "",
        ];
        for text in none {
            assert_eq!(return_date(text, reference), None, "{text}");
        }
    }

    #[test]
    fn keyword_dates_win_over_other_dates() {
        let reference = date("2027-03-01");
        let text = "Out of office until 12 March. Our conference on 20 March 2027 is open.";
        assert_eq!(return_date(text, reference), Some(date("2027-03-12")));
    }

    #[test]
    fn status_codes_are_found_with_word_boundaries() {
        let cases: &[(&str, Option<&str>)] = &[
            ("550 5.1.1 <bob@example.org>: user unknown", Some("5.1.1")),
            ("said: 452 4.2.2 mailbox full", Some("4.2.2")),
            (
                "Remote Server returned '550 5.1.10 RESOLVER.ADR.RecipientNotFound'",
                Some("5.1.10"),
            ),
            ("host 203.0.113.5 said: 550 no such user", Some("5.0.0")),
            ("SMTP error: 421 try later", Some("4.0.0")),
            ("dns 4.2.2.2 is fine; nothing else", None),
            ("version 5.1.1.1 and 25.1.1", None),
            ("call 555 0100 at 10:45", None),
            ("2.0.0 Ok: queued", None),
            ("", None),
        ];
        for (text, expected) in cases {
            assert_eq!(
                find_status(text).map(|(_, s)| s),
                expected.map(str::to_string),
                "{text}"
            );
        }
    }

    #[test]
    fn dsn_fields_are_read_per_recipient() {
        let text = "Reporting-MTA: dns; mx.example.net\nArrival-Date: Tue, 3 Mar 2026\n\n\
            Final-Recipient: rfc822; Bob@Example.org\nOriginal-Recipient: rfc822;bob@example.org\n\
            Action: failed\nStatus: 5.1.1 (bad mailbox)\nDiagnostic-Code: smtp; 550 5.1.1 <bob@example.org>:\n  User unknown\n\n\
            Final-Recipient: rfc822; <cy@example.net>\nAction: delayed\nStatus: 4.4.1\n";
        let recipients = parse_dsn(text);
        assert_eq!(recipients.len(), 2);
        assert_eq!(
            recipients[0],
            DsnRecipient {
                final_recipient: Some("bob@example.org".into()),
                original_recipient: Some("bob@example.org".into()),
                action: Some("failed".into()),
                status: Some("5.1.1".into()),
                diagnostic: Some("550 5.1.1 <bob@example.org>: User unknown".into()),
            }
        );
        assert_eq!(recipients[0].failure(), Some(Failure::Permanent));
        assert_eq!(
            recipients[1].final_recipient.as_deref(),
            Some("cy@example.net")
        );
        assert_eq!(recipients[1].failure(), Some(Failure::Transient));
    }

    #[test]
    fn recipient_failure_follows_action_status_and_diagnostic() {
        let entry =
            |action: Option<&str>, status: Option<&str>, diagnostic: Option<&str>| DsnRecipient {
                action: action.map(str::to_string),
                status: status.map(str::to_string),
                diagnostic: diagnostic.map(str::to_string),
                ..DsnRecipient::default()
            };
        let cases = [
            (
                entry(Some("failed"), Some("5.1.1"), None),
                Some(Failure::Permanent),
            ),
            (
                entry(Some("failed"), Some("4.4.7"), None),
                Some(Failure::Transient),
            ),
            (
                entry(Some("delayed"), Some("4.2.2"), None),
                Some(Failure::Transient),
            ),
            (entry(Some("delayed"), None, None), Some(Failure::Transient)),
            (entry(Some("delivered"), Some("2.0.0"), None), None),
            (entry(Some("relayed"), None, None), None),
            (
                entry(Some("failed"), None, Some("550 user unknown")),
                Some(Failure::Permanent),
            ),
            (entry(Some("failed"), None, None), Some(Failure::Permanent)),
            (
                entry(None, None, Some("452 4.2.2 over quota")),
                Some(Failure::Transient),
            ),
            (entry(None, None, None), None),
        ];
        for (i, (recipient, expected)) in cases.iter().enumerate() {
            assert_eq!(recipient.failure(), *expected, "case {i}: {recipient:?}");
        }
    }

    #[test]
    fn failure_wording_prefers_clear_temporary_then_clear_permanent() {
        let cases: &[(&str, Option<Failure>)] = &[
            (
                "This is a permanent error. The following address(es) failed",
                Some(Failure::Permanent),
            ),
            (
                "THIS IS A WARNING ONLY. YOU DO NOT NEED TO RESEND",
                Some(Failure::Transient),
            ),
            (
                "There was a temporary problem delivering your message",
                Some(Failure::Transient),
            ),
            (
                "Recipient address rejected: User unknown",
                Some(Failure::Permanent),
            ),
            ("the recipient's mailbox is full", Some(Failure::Transient)),
            ("Here is your weekly digest", None),
        ];
        for (text, expected) in cases {
            assert_eq!(text_failure(&fold(text)), *expected, "{text}");
        }
    }

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
    fn folding_and_phrases_match_across_spellings() {
        assert_eq!(
            fold("Réponse AUTOMATIQUE – Straße ’"),
            "reponse automatique - strasse '"
        );
        assert!(contains_phrase("please unsubscribe me.", "unsubscribe"));
        assert!(!contains_phrase("resubscribed", "subscribe"));
        assert!(contains_phrase("rework: ok", "rework:"));
        assert!(!contains_phrase("", "x"));
    }

    #[test]
    fn headers_ids_and_recipients_are_read() {
        let raw = crlf(
            "Delivered-To: reply+k1.TOKEN.tag@Reply.Acme.Example\n\
             From: \"Ann Example\" <Ann@Example.com>\n\
             To: Acme Sales <reply+k1.TOKEN.tag@reply.acme.example>\n\
             Cc: Bob <bob@example.org>\n\
             Subject: =?UTF-8?Q?Re:_Caf=C3=A9?=\n\
             Message-ID: <CAF1@mail.gmail.com>\n\
             In-Reply-To: <k1.AQ.x@acme.example>\n\
             References: <k0.AQ.y@acme.example>\n <k1.AQ.x@acme.example>\n\
             X-Autoreply-Test: folded\n  value\n\
             \n\
             Yes please.\n",
        );
        let p = parse(&raw).unwrap();
        assert_eq!(p.message_id.as_deref(), Some("CAF1@mail.gmail.com"));
        assert_eq!(p.in_reply_to, ["k1.AQ.x@acme.example"]);
        assert_eq!(
            p.references,
            ["k0.AQ.y@acme.example", "k1.AQ.x@acme.example"]
        );
        assert_eq!(p.from.as_deref(), Some("ann@example.com"));
        assert_eq!(
            p.recipients,
            ["reply+k1.TOKEN.tag@reply.acme.example", "bob@example.org"]
        );
        assert_eq!(p.subject, "Re: Café");
        assert_eq!(p.header("X-AUTOREPLY-TEST"), Some("folded value"));
        assert_eq!(p.text, "Yes please.");
        assert_eq!(p.report, None);
        assert_eq!(p.sent_on, None);
    }

    #[test]
    fn empty_and_non_messages_are_errors() {
        assert_eq!(parse(b""), Err(ParseError::Empty));
        assert_eq!(parse(b" \r\n\t"), Err(ParseError::Empty));
        assert!(parse(b"\x00\x01\x02 not a message").is_err());
    }

    #[test]
    fn mbox_separator_line_is_skipped() {
        let raw = crlf(
            "From ann@example.com Tue Mar  3 10:00:00 2026\nFrom: ann@example.com\nSubject: hi\n\nhello\n",
        );
        let p = parse(&raw).unwrap();
        assert_eq!(p.from.as_deref(), Some("ann@example.com"));
        assert_eq!(p.subject, "hi");
    }

    #[test]
    fn html_only_bodies_become_text() {
        let raw = crlf(
            "From: ann@example.com\nSubject: Re: hi\nContent-Type: text/html; charset=utf-8\n\n\
             <html><body><p>Yes,&nbsp;let&#39;s talk.</p></body></html>\n",
        );
        let p = parse(&raw).unwrap();
        assert!(p.text.contains("let's talk"), "{:?}", p.text);
    }

    #[test]
    fn nonstandard_bounce_is_synthesized_from_text_and_inline_copy() {
        let raw = crlf(
            "From: Mail Delivery System <Mailer-Daemon@mx.example.net>\n\
             To: bounce+k1.T.t@bounce.acme.example\n\
             Subject: Mail delivery failed: returning message to sender\n\n\
             This message was created automatically by mail delivery software.\n\n\
             A message that you sent could not be delivered to one or more of its\n\
             recipients. This is a permanent error. The following address(es) failed:\n\n\
             \x20 bob@example.org\n\
             \x20   SMTP error from remote mail server after RCPT TO:<bob@example.org>:\n\
             \x20   550 5.1.1 <bob@example.org>: Recipient address rejected: User unknown\n\n\
             ------ This is a copy of the message, including all the headers. ------\n\n\
             Return-path: <bounce+k1.T.t@bounce.acme.example>\n\
             Message-ID: <k1.AQ.x@acme.example>\n\
             From: Acme <sales@acme.example>\n\
             To: bob@example.org\n\
             Subject: Hello\n\n\
             Hello Bob\n",
        );
        let p = parse(&raw).unwrap();
        let Some(Report::Delivery(recipients, original)) = &p.report else {
            panic!("no report: {p:?}")
        };
        assert_eq!(recipients.len(), 1);
        assert_eq!(
            recipients[0].final_recipient.as_deref(),
            Some("bob@example.org")
        );
        assert_eq!(recipients[0].status.as_deref(), Some("5.1.1"));
        assert_eq!(recipients[0].action.as_deref(), Some("failed"));
        assert_eq!(original.message_id.as_deref(), Some("k1.AQ.x@acme.example"));
        assert_eq!(original.to, ["bob@example.org"]);
    }

    #[test]
    fn a_person_writing_about_delivery_is_not_a_bounce() {
        let raw = crlf(
            "From: ann@example.com\nSubject: Re: your offer\n\n\
             Your message could not be delivered to one or more of my colleagues, it seems.\n",
        );
        assert_eq!(parse(&raw).unwrap().report, None);
    }

    #[test]
    fn garbage_truncated_and_huge_inputs_never_panic() {
        let mut inputs: Vec<Vec<u8>> = vec![
            b"From:".to_vec(),
            b"Content-Type: multipart/report; boundary=x\r\n\r\n--x\r\nContent-Type: message/delivery-status\r\n\r\nAction".to_vec(),
            b"Content-Type: message/rfc822\r\n\r\nContent-Type: message/rfc822\r\n\r\n".to_vec(),
            b"Subject: =?UTF-8?B?////?=\r\n\r\n\xff\xfe\xfd".to_vec(),
            (0..=255u8).collect(),
            "From: a@b.c\n\n@".repeat(1000).into_bytes(),
            format!("From: a@b.c\nSubject: x\n\n{}", "@a.b".repeat(50_000)).into_bytes(),
            format!("From: a@b.c\nAuto-Submitted: auto-replied\n\n{}", "12.03.2027 5.1.1 ".repeat(20_000)).into_bytes(),
            format!("From: a@b.c\n\n{}", "> On x wrote:\n".repeat(20_000)).into_bytes(),
        ];
        let nested = "Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Type: message/rfc822\r\n\r\n";
        inputs.push(nested.repeat(200).into_bytes());
        const ALPHABET: &[u8] = b"From: <>@.\r\n:;=?-5.1.1 Content-Type multipart/report boundary";
        let mut state: u32 = 7;
        for _ in 0..200 {
            let len = (state % 300) as usize;
            let bytes: Vec<u8> = (0..len)
                .map(|_| {
                    state = state.wrapping_mul(1_103_515_245).wrapping_add(12_345);
                    ALPHABET[(state >> 16) as usize % ALPHABET.len()]
                })
                .collect();
            inputs.push(bytes);
        }
        for input in &inputs {
            let _ = parse(input);
            for cut in [1, input.len() / 2, input.len().saturating_sub(1)] {
                let _ = parse(&input[..cut.min(input.len())]);
            }
        }
    }
}
