//! Bounce notices without a `message/delivery-status` part — qmail, Yahoo, Exim, Postfix and
//! Sendmail plain text, Exchange legacy and its translations, GroupWise, Lotus Notes, SMTP32,
//! vendors' daemons, plain "Failed Recipients" lists (what makes one is in `shape`) — read into
//! the same [`Report::Delivery`] a standard report gives: which recipients failed, with which
//! status, and the original's Message-ID from an attached or inline copy.

use mail_parser::Message;

use super::ParsedInbound;
use super::body::is_separator;
use super::fold::fold;
use super::headers::{extract_addresses, is_mail_system, push_unique_all};
use super::report::{
    DsnRecipient, Enclosed, Failure, Report, content_type_of, enclosed_in_part, enclosed_in_text,
};
use super::status::{find_status, status_failure, text_failure};

/// How much of a body the heuristics (bounce wording, recipients, statuses) look at: a
/// notice says what matters near its top, and bounded scans keep huge inputs cheap.
const SCAN_LIMIT: usize = 64 * 1024;
/// At most this many failed recipients are read out of a non-standard bounce.
const MAX_BOUNCE_RECIPIENTS: usize = 50;

/// The copy of a message a bounce returns as an attached part (`message/rfc822`,
/// `message/global` or `text/rfc822-headers`): whether there is one, and its headers where
/// they can be read.
pub(super) fn attached_copy(msg: &Message<'_>) -> (bool, Option<Enclosed>) {
    let mut parts = msg.parts.iter().skip(1).filter(|part| {
        matches!(
            content_type_of(part)
                .as_ref()
                .map(|(t, s)| (t.as_str(), s.as_str())),
            Some(("message", "rfc822" | "global") | ("text", "rfc822-headers"))
        )
    });
    match parts.next() {
        None => (false, None),
        Some(first) => (
            true,
            enclosed_in_part(first).or_else(|| parts.find_map(enclosed_in_part)),
        ),
    }
}

/// Reads a bounce notice that has no `message/delivery-status` part into a
/// [`Report::Delivery`]: failed recipients from `X-Failed-Recipients` or the notice's text,
/// a status per recipient when one is given (enhanced `5.1.1`, or an SMTP code `550`), and
/// the original's Message-ID from the attached copy (`attached`) or an inline one. A failure
/// the notice gives no status or wording for is permanent: the message was not delivered and
/// will not be; a notice that only says delivery is delayed or retried is temporary, and one
/// that reports a success names no failure.
pub(super) fn nonstandard_bounce(
    p: &ParsedInbound,
    body: &str,
    attached: Option<Enclosed>,
) -> Option<Report> {
    if !p.shape.is_notice() {
        return None;
    }
    let head: String = body.chars().take(SCAN_LIMIT).collect();
    let (human, copy) = split_at_original_copy(&head);
    let enclosed = attached
        .or_else(|| copy.and_then(enclosed_in_text))
        .unwrap_or_default();

    let mut addresses = failed_addresses(p, enclosed.from.as_deref(), human);
    if addresses.is_empty() {
        // GroupWise and others name the recipient by its local part only: the returned
        // copy says whom it was sent to.
        addresses = enclosed.headers.to.clone();
        addresses.truncate(MAX_BOUNCE_RECIPIENTS);
    }
    let folded = fold(human);
    let overall = if reports_success(&folded) {
        None
    } else {
        Some(text_failure(&folded).unwrap_or(Failure::Permanent))
    };
    let notice = Notice {
        text: human,
        lower: human.to_lowercase(),
        overall,
    };
    let recipients = if addresses.is_empty() {
        vec![notice.entry(None)]
    } else {
        addresses
            .into_iter()
            .map(|a| notice.entry(Some(a)))
            .collect()
    };
    Some(Report::Delivery(recipients, enclosed.headers))
}

/// Whether a (folded) notice reports a delivery that worked (a relay or success
/// notification), not a failure.
fn reports_success(folded: &str) -> bool {
    const SUCCESS: &[&str] = &[
        "successfully relayed",
        "delivered successfully",
        "was successfully delivered",
        "has been delivered to the following",
        "delivery to the following recipients succeeded",
        "delivery to these recipients or groups is complete",
        "your message has been delivered",
    ];
    SUCCESS.iter().any(|s| folded.contains(s))
}

/// The failed recipients of a notice: those of `X-Failed-Recipients`, else the addresses in
/// its human-readable part (`human`) that are not the notice's own (its recipients, its
/// sender, the original's sender `original_from`) nor a mail system's; at most
/// [`MAX_BOUNCE_RECIPIENTS`].
fn failed_addresses(p: &ParsedInbound, original_from: Option<&str>, human: &str) -> Vec<String> {
    let mut not_recipients: Vec<&str> = p.recipients.iter().map(String::as_str).collect();
    not_recipients.extend(p.from.as_deref());
    not_recipients.extend(original_from);
    let mut addresses = p
        .header("x-failed-recipients")
        .map(extract_addresses)
        .unwrap_or_default();
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
                "return-path:",
            ]
            .iter()
            .any(|h| label.starts_with(h))
                || label.contains("mail from:")
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
    addresses
}

/// The human-readable part of a bounce notice, as the per-recipient entries read it.
struct Notice<'a> {
    text: &'a str,
    /// `text` lower-cased (addresses are found in it lower-cased).
    lower: String,
    /// What the notice's wording says about every failure, where a recipient has no status.
    overall: Option<Failure>,
}

impl Notice<'_> {
    /// The report entry of one failed recipient (None: the notice names none). Its status is
    /// the one nearest after the address's first mention, else the first in the notice; its
    /// action follows that status, else the notice's wording.
    fn entry(&self, address: Option<String>) -> DsnRecipient {
        let human = self.text;
        let window = address
            .as_deref()
            .and_then(|a| self.lower.find(a))
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
        let failure = status.as_deref().and_then(status_failure).or(self.overall);
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
    }
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
        // A copy's header lines start at the margin; an indented one is the notice quoting.
        let at_margin = !line.starts_with([' ', '\t']);
        if at_margin && HEADER_LINES.iter().any(|h| label.starts_with(h)) {
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
#[cfg(test)]
mod tests {
    use super::*;
    use crate::inbound::parse::{crlf, parse};

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
}
