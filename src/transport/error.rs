//! Why a message was not sent: a typed error that callers branch on.
//!
//! Its [`ErrorKind`] follows lettre's SMTP error (`is_transient()` for 4xx, `is_permanent()`
//! for 5xx) plus one kind of our own: *transient* — nothing was delivered and a later attempt
//! may work; *permanent* — the peer refused the message for good; *unknown* — the
//! conversation broke after the message may have been accepted, so it is never retried (no
//! step goes out twice).
//!
//! Beside its kind and its text, an error carries what the peer said, as fields: the SMTP
//! reply code and enhanced status code, the HTTP status and `Retry-After`, and whether the
//! recipient address itself was refused. The sending limits
//! ([`throttle_of`](super::limits::throttle_of)) and suppression
//! ([`SendError::is_hard_bounce`]) read these fields, never the text. The text is for people
//! (logs, the `last_error` column) and says the same things in words.
//!
//! A failure of the *transport itself* (the relay refused the connection, answered 421 at its
//! greeting, refused our credentials, TLS failed, we ran out of file descriptors, the
//! provider's API answered 5xx or 429) carries a [`TransportFault`]: it says nothing about
//! the message or its recipient, so it never counts against the delivery — the circuit
//! breaker ([`breaker`](super::breaker)) pauses the transport instead.

use std::fmt;
use std::time::Duration;

/// Whether trying again can help.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// Nothing was delivered and a later attempt may work (4xx reply, connection refused).
    Transient,
    /// The peer refused the message for good (5xx reply, bad recipient).
    Permanent,
    /// The conversation broke after the message may have been accepted: never retried.
    Unknown,
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ErrorKind::Transient => "transient",
            ErrorKind::Permanent => "permanent",
            ErrorKind::Unknown => "unknown outcome",
        })
    }
}

/// An RFC 3463 enhanced status code (`class.subject.detail`, e.g. `4.7.0`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EnhancedStatus {
    /// 2 (success), 4 (persistent transient failure) or 5 (permanent failure).
    pub class: u8,
    /// What the status is about, e.g. 1 addressing, 7 security or policy.
    pub subject: u16,
    pub detail: u16,
}

impl EnhancedStatus {
    /// Reads `4.7.0`; anything else (another class, missing or over-long parts) is `None`.
    pub fn parse(token: &str) -> Option<EnhancedStatus> {
        let mut parts = token.split('.');
        let (class, subject, detail) = (parts.next()?, parts.next()?, parts.next()?);
        let number = |s: &str, max_len: usize| {
            (!s.is_empty() && s.len() <= max_len && s.bytes().all(|b| b.is_ascii_digit()))
                .then(|| s.parse::<u16>().ok())
                .flatten()
        };
        let class = match number(class, 1)? {
            c @ (2 | 4 | 5) => c as u8,
            _ => return None,
        };
        if parts.next().is_some() {
            return None;
        }
        Some(EnhancedStatus {
            class,
            subject: number(subject, 3)?,
            detail: number(detail, 3)?,
        })
    }
}

impl fmt::Display for EnhancedStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}.{}", self.class, self.subject, self.detail)
    }
}

/// What an SMTP server answered: the reply code and, when the text starts with one, the
/// enhanced status code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SmtpReply {
    pub code: u16,
    pub enhanced: Option<EnhancedStatus>,
}

impl SmtpReply {
    /// A reply from its code and text (servers put the enhanced status first, RFC 2034).
    pub fn new(code: u16, text: &str) -> SmtpReply {
        SmtpReply {
            code,
            enhanced: text
                .split_whitespace()
                .next()
                .and_then(EnhancedStatus::parse),
        }
    }
}

/// A failure of the whole transport rather than of one message or recipient: every message
/// would have failed the same way. Read by the circuit breaker; the label names it in
/// `/metrics`, `/readyz` and `status`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum TransportFault {
    /// The server could not be reached: connection refused, no route, no answer in time.
    Unreachable,
    /// The server refused the session at its greeting or EHLO (e.g. `421` at greeting).
    Greeting,
    /// Our credentials were refused (SMTP 530/535).
    Auth,
    /// TLS could not be set up (handshake, certificate, STARTTLS not offered).
    Tls,
    /// No file descriptor left to open a connection (EMFILE/ENFILE).
    FdExhausted,
    /// Connections kept breaking before any message body was sent.
    ConnectionLost,
    /// The provider's API answered 5xx ("try later").
    ProviderError,
    /// The provider's API answered 429 ("too many requests").
    ProviderThrottled,
    /// The provider refused our account or key (HTTP 401/403): a configuration problem.
    Account,
}

impl TransportFault {
    /// A short stable label (`auth`, `greeting`, …) for metrics and machine-readable output.
    pub fn label(self) -> &'static str {
        match self {
            TransportFault::Unreachable => "unreachable",
            TransportFault::Greeting => "greeting",
            TransportFault::Auth => "auth",
            TransportFault::Tls => "tls",
            TransportFault::FdExhausted => "fd_exhausted",
            TransportFault::ConnectionLost => "connection_lost",
            TransportFault::ProviderError => "provider_5xx",
            TransportFault::ProviderThrottled => "provider_429",
            TransportFault::Account => "account",
        }
    }

    /// Every fault, for documentation and exhaustive tests.
    pub const ALL: [TransportFault; 9] = [
        TransportFault::Unreachable,
        TransportFault::Greeting,
        TransportFault::Auth,
        TransportFault::Tls,
        TransportFault::FdExhausted,
        TransportFault::ConnectionLost,
        TransportFault::ProviderError,
        TransportFault::ProviderThrottled,
        TransportFault::Account,
    ];

    /// What a socket error means for the transport: no descriptor left, or unreachable.
    pub fn of_io(error: &std::io::Error) -> TransportFault {
        // EMFILE (24) and ENFILE (23) on Linux and the BSDs: the process or the system is out
        // of file descriptors.
        match error.raw_os_error() {
            Some(23 | 24) => TransportFault::FdExhausted,
            _ => TransportFault::Unreachable,
        }
    }
}

impl fmt::Display for TransportFault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.label())
    }
}

/// Why a message was not sent. `Display` prints the kind and the text (`transient: …`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{kind}: {message}")]
pub struct SendError {
    kind: ErrorKind,
    message: String,
    smtp_reply: Option<SmtpReply>,
    http_status: Option<u16>,
    retry_after: Option<Duration>,
    recipient_refused: bool,
    transport_fault: Option<TransportFault>,
}

impl SendError {
    fn new(kind: ErrorKind, message: impl Into<String>) -> SendError {
        SendError {
            kind,
            message: message.into(),
            smtp_reply: None,
            http_status: None,
            retry_after: None,
            recipient_refused: false,
            transport_fault: None,
        }
    }

    /// Nothing was delivered; a later attempt may work.
    pub fn transient(message: impl Into<String>) -> SendError {
        SendError::new(ErrorKind::Transient, message)
    }

    /// Refused for good.
    pub fn permanent(message: impl Into<String>) -> SendError {
        SendError::new(ErrorKind::Permanent, message)
    }

    /// The message may have been accepted: never retried.
    pub fn unknown(message: impl Into<String>) -> SendError {
        SendError::new(ErrorKind::Unknown, message)
    }

    /// The SMTP server's reply that caused it, if any.
    pub fn with_smtp_reply(mut self, reply: impl Into<Option<SmtpReply>>) -> SendError {
        self.smtp_reply = reply.into();
        self
    }

    /// The provider's HTTP status, and its `Retry-After` when it gave one.
    pub fn with_http_status(mut self, status: u16, retry_after: Option<Duration>) -> SendError {
        self.http_status = Some(status);
        self.retry_after = retry_after;
        self
    }

    /// The peer refused the recipient address itself (not the message, not our sender).
    pub fn with_recipient_refused(mut self) -> SendError {
        self.recipient_refused = true;
        self
    }

    /// The transport itself failed (not this message): the breaker pauses the transport and
    /// the delivery keeps its attempts. Only meaningful on a `Transient` error.
    pub fn with_transport_fault(mut self, fault: TransportFault) -> SendError {
        self.transport_fault = Some(fault);
        self
    }

    /// The same error with its text rewritten (e.g. prefixed with where it happened).
    pub fn map_message(mut self, f: impl FnOnce(String) -> String) -> SendError {
        self.message = f(self.message);
        self
    }

    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    /// The text, without the kind (what `last_error` records).
    pub fn message(&self) -> &str {
        &self.message
    }

    pub fn into_message(self) -> String {
        self.message
    }

    pub fn smtp_reply(&self) -> Option<SmtpReply> {
        self.smtp_reply
    }

    pub fn http_status(&self) -> Option<u16> {
        self.http_status
    }

    /// How long the provider asked us to wait (HTTP `Retry-After`, in seconds).
    pub fn retry_after(&self) -> Option<Duration> {
        self.retry_after
    }

    /// Whether the peer refused the recipient address itself.
    pub fn recipient_refused(&self) -> bool {
        self.recipient_refused
    }

    /// The transport-wide failure this is, if any (only for `Transient` errors: a message
    /// that may have left, or was refused for good, is about the message).
    pub fn transport_fault(&self) -> Option<TransportFault> {
        self.transport_fault.filter(|_| self.is_transient())
    }

    pub fn is_transient(&self) -> bool {
        self.kind == ErrorKind::Transient
    }

    pub fn is_permanent(&self) -> bool {
        self.kind == ErrorKind::Permanent
    }

    pub fn is_unknown(&self) -> bool {
        self.kind == ErrorKind::Unknown
    }

    /// A permanent refusal of the recipient address itself — the provider knows it as
    /// bounced/inactive or invalid, or an SMTP server answered 5xx to RCPT TO — which should
    /// suppress the address. Other permanent failures (a message too large, a payload the
    /// provider refuses) fail the delivery without blaming the address.
    pub fn is_hard_bounce(&self) -> bool {
        self.is_permanent() && self.recipient_refused
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hard_bounces_are_permanent_recipient_refusals() {
        let rcpt = SmtpReply::new(550, "5.1.1 no such user");
        assert!(
            SendError::permanent("RCPT TO refused: 550 5.1.1 no such user")
                .with_smtp_reply(rcpt)
                .with_recipient_refused()
                .is_hard_bounce()
        );
        assert!(
            !SendError::permanent("end of data refused: 554 5.7.1 spam")
                .with_smtp_reply(SmtpReply::new(554, "5.7.1 spam"))
                .is_hard_bounce()
        );
        assert!(
            !SendError::permanent("sendgrid: HTTP 413 too large")
                .with_http_status(413, None)
                .is_hard_bounce()
        );
        assert!(
            !SendError::transient("RCPT TO refused: 450 4.2.0 busy")
                .with_recipient_refused()
                .is_hard_bounce()
        );
        assert!(
            !SendError::unknown("x")
                .with_recipient_refused()
                .is_hard_bounce()
        );
    }

    #[test]
    fn only_transient_errors_are_transport_faults() {
        let e = SendError::transient("connect: refused")
            .with_transport_fault(TransportFault::Unreachable);
        assert_eq!(e.transport_fault(), Some(TransportFault::Unreachable));
        assert_eq!(SendError::transient("x").transport_fault(), None);
        for e in [SendError::permanent("x"), SendError::unknown("x")] {
            assert_eq!(
                e.with_transport_fault(TransportFault::Auth)
                    .transport_fault(),
                None
            );
        }
        let labels: std::collections::BTreeSet<_> =
            TransportFault::ALL.iter().map(|f| f.label()).collect();
        assert_eq!(
            labels.len(),
            TransportFault::ALL.len(),
            "labels are distinct"
        );
    }

    #[test]
    fn socket_errors_tell_descriptor_exhaustion_from_unreachable() {
        let emfile = std::io::Error::from_raw_os_error(24);
        assert_eq!(TransportFault::of_io(&emfile), TransportFault::FdExhausted);
        let enfile = std::io::Error::from_raw_os_error(23);
        assert_eq!(TransportFault::of_io(&enfile), TransportFault::FdExhausted);
        let refused = std::io::Error::from(std::io::ErrorKind::ConnectionRefused);
        assert_eq!(TransportFault::of_io(&refused), TransportFault::Unreachable);
    }

    #[test]
    fn the_text_says_the_kind_and_what_happened() {
        assert_eq!(
            SendError::transient("connect: refused").to_string(),
            "transient: connect: refused"
        );
        assert_eq!(SendError::permanent("x").to_string(), "permanent: x");
        assert_eq!(
            SendError::unknown("broke off").to_string(),
            "unknown outcome: broke off"
        );
        let e = SendError::transient("greeting").map_message(|m| format!("not sent: {m}"));
        assert_eq!(e.message(), "not sent: greeting");
        assert!(e.is_transient());
    }

    #[test]
    fn enhanced_status_codes_are_read_from_the_start_of_the_reply_text() {
        assert_eq!(
            SmtpReply::new(450, "4.7.1 greylisted").enhanced,
            Some(EnhancedStatus {
                class: 4,
                subject: 7,
                detail: 1
            })
        );
        assert_eq!(
            SmtpReply::new(451, "temporary local problem").enhanced,
            None
        );
        assert_eq!(SmtpReply::new(421, "").enhanced, None);
        for bad in [
            "4.7", "3.1.1", "4.7.1.2", "44.7.1", "4.7.x", "4..1", "4.1234.1",
        ] {
            assert_eq!(EnhancedStatus::parse(bad), None, "{bad}");
        }
        assert_eq!(
            EnhancedStatus::parse("5.1.10").unwrap().to_string(),
            "5.1.10"
        );
    }
}
