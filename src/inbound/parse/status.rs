//! Status codes and failure wording: enhanced status codes (`5.1.1`) and SMTP reply codes
//! (`550`) found in free text, and whether a mail system's words say a failure is temporary or
//! permanent.

use super::report::Failure;

/// SMTP reply codes that mean a failure (a bare three-digit number is not enough).
const SMTP_FAILURE_CODES: &[&str] = &[
    "421", "450", "451", "452", "454", "471", "500", "501", "502", "503", "504", "521", "530",
    "535", "541", "550", "551", "552", "553", "554", "556", "557",
];

/// The first failure status in `text`: an enhanced status code (`5.1.1`, `4.2.2`) if there is
/// one, else an SMTP failure reply code written as its class (`550` → `5.0.0`). Returns the
/// byte position and the status.
pub(super) fn find_status(text: &str) -> Option<(usize, String)> {
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

pub(super) fn status_failure(status: &str) -> Option<Failure> {
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
        "warning message only",
        "this is a warning",
        "has been delayed",
        "will keep trying",
        "wird weiterhin versucht",
        "noch nicht zugestellt",
        "retry queue",
        "try again later",
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
        "permanent fatal",
        "will not be delivered",
        "will not try to redeliver",
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
        "user is unknown",
        "user not found",
        "unknown recipient",
        "not recognized",
        "not listed in domino directory",
        "not specify a valid notes mail file",
        "invalid final delivery userid",
        "unknown host",
        "host unknown",
        "host not found",
        "unrouteable address",
        "no such recipient",
        "no such address",
        "mailbox has been disabled",
        "was not found",
    ];
    const TEMPORARY_HINTS: &[&str] = &[
        "mailbox full",
        "mailbox is full",
        "over quota",
        "quota exceeded",
        "exceeded storage",
        "exceeds allowed size",
        "mail file is full",
        "mailbox over quota",
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
#[cfg(test)]
mod tests {
    use super::*;
    use crate::inbound::parse::fold::fold;

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
}
