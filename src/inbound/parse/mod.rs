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
//! One file per part of the job:
//!
//! - [`headers`]: header fields, message ids and addresses (recipients, free text);
//! - [`body`]: the text bodies, and the new text without quoted history and signature;
//! - [`report`]: standard delivery-status (RFC 3464) and feedback (ARF) reports;
//! - [`shape`]: what makes a message look like a bounce (sender, subject and body families in
//!   several languages, a returned copy, status codes);
//! - [`bounce`]: non-standard bounce notices (qmail, Exim, Postfix, Sendmail, Exchange,
//!   GroupWise, Notes, SMTP32, vendors' daemons …) read into a report;
//! - [`status`]: SMTP status codes and the wording of temporary and permanent failures;
//! - [`return_date`]: the return date an out-of-office reply states;
//! - [`fold`]: text folded for matching phrases across languages (also used by classification).
//!
//! Pure code, no I/O (not even the clock: the caller says which day a dateless message came).
//! Nothing here panics on any input: every heuristic scan is bounded, and the third-party MIME
//! parser runs under `catch_unwind`, so a bug in it costs one message rather than the daemon
//! (or a replay of a whole mailbox export).

mod body;
mod bounce;
pub(crate) mod fold;
mod headers;
#[cfg(test)]
mod props;
mod report;
mod return_date;
mod shape;
mod status;

use std::panic::{AssertUnwindSafe, catch_unwind};

use chrono::NaiveDate;
use mail_parser::MessageParser;

pub use body::strip_quoted;
pub(crate) use headers::is_mail_system;
pub use report::{DsnRecipient, Failure, OriginalHeaders, Report};
pub use return_date::{return_date, stated_return_date};
pub use shape::BounceShape;
pub(crate) use status::text_failure;

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
    /// What about the message says bounce (sender, subject, wording, returned copy …),
    /// whether or not it was read as a delivery report.
    pub shape: BounceShape,
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
    let (headers, recipients) = headers::top_level_headers(&msg);
    if headers.is_empty() {
        return Err(ParseError::NotAMessage);
    }
    let from = msg
        .from()
        .and_then(headers::first_address)
        .or_else(|| msg.sender().and_then(headers::first_address))
        .or_else(|| {
            headers::header_value(&headers, "from")
                .and_then(|v| headers::extract_addresses(v).into_iter().next())
        });
    let body = body::body_text(&msg);

    let mut parsed = ParsedInbound {
        message_id: headers::header_value(&headers, "message-id")
            .and_then(|v| headers::ids_in(v).into_iter().next()),
        in_reply_to: headers::all_ids(&headers, "in-reply-to"),
        references: headers::all_ids(&headers, "references"),
        from,
        recipients,
        subject: msg
            .subject()
            .map(|s| s.trim().to_string())
            .unwrap_or_default(),
        text: strip_quoted(&body),
        headers,
        report: None,
        shape: BounceShape::default(),
        sent_on: msg
            .date()
            .and_then(|d| NaiveDate::from_ymd_opt(d.year.into(), d.month.into(), d.day.into())),
    };
    let (has_copy, attached) = bounce::attached_copy(&msg);
    parsed.shape = shape::bounce_shape(&parsed, &body, has_copy);
    parsed.report = report::standard_report(&msg)
        .or_else(|| bounce::nonstandard_bounce(&parsed, &body, attached));
    Ok(parsed)
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
/// A test message written with `\n` line ends, as the CRLF it has on the wire.
#[cfg(test)]
pub(crate) fn crlf(text: &str) -> Vec<u8> {
    text.replace('\n', "\r\n").into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

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
