//! Delivery and feedback reports: the shape a bounce or complaint is read into ([`Report`]),
//! and the standard `multipart/report` (RFC 6522) parts that fill it — `message/delivery-status`
//! (RFC 3464), `message/feedback-report` (ARF, RFC 5965) and the enclosed original's headers.

use mail_parser::{Message, MessageParser, MessagePart, MimeHeaders, PartType};

use super::headers::{addresses_of, extract_addresses, first_address, push_unique_all};
use super::status::{find_status, status_failure};

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

pub(super) fn content_type_of(part: &MessagePart<'_>) -> Option<(String, String)> {
    let ct = part.content_type()?;
    Some((
        ct.c_type.to_ascii_lowercase(),
        ct.c_subtype.as_deref().unwrap_or("").to_ascii_lowercase(),
    ))
}

pub(super) fn standard_report(msg: &Message<'_>) -> Option<Report> {
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
pub(super) fn parse_dsn(text: &str) -> Vec<DsnRecipient> {
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
pub(super) struct Enclosed {
    pub(super) headers: OriginalHeaders,
    pub(super) from: Option<String>,
}

pub(super) fn enclosed_in_part(part: &MessagePart<'_>) -> Option<Enclosed> {
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
pub(super) fn enclosed_in_text(text: &str) -> Option<Enclosed> {
    let text = text.trim_start_matches(['\r', '\n', ' ', '\t']);
    let parsed = MessageParser::default().parse_headers(text.as_bytes())?;
    let enclosed = enclosed_in_message(&parsed)?;
    (enclosed.headers.message_id.is_some() || !enclosed.headers.to.is_empty()).then_some(enclosed)
}
#[cfg(test)]
mod tests {
    use super::*;

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
}
