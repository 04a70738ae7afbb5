//! Transports carry finished messages to the world: SMTP (our own pool of lettre connections),
//! an email provider's HTTP API (Postmark, SendGrid, Mailgun) or a folder of `.eml` files.
//! Each send answers per message, and a failure says whether trying again can help
//! (transient), cannot (permanent), or whether we cannot know if the message left (unknown —
//! never retried, so no step goes out twice).
//!
//! [`limits`] decides how many messages may go now (per-transport rate and rolling 24-hour
//! cap, per-recipient-domain rate and concurrency that slow down when a domain pushes back);
//! it is pure and clock-injected, and what it holds back is deferred, never dropped.

pub mod file;
pub mod http_common;
pub mod limits;
pub mod mailgun;
pub mod postmark;
pub mod sendgrid;
pub mod smtp;

/// One complete RFC 5322 message ready to go, tied to the delivery it fulfils.
#[derive(Debug, Clone)]
pub struct OutgoingEmail {
    pub delivery_id: i64,
    /// SMTP envelope sender (MAIL FROM).
    pub envelope_from: String,
    /// SMTP envelope recipient (RCPT TO).
    pub envelope_to: String,
    /// The Message-ID header value, without angle brackets.
    pub message_id: String,
    /// The whole message: headers, blank line, body, CRLF line ends.
    pub bytes: Vec<u8>,
}

/// Why a message was not sent.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SendError {
    /// Nothing was delivered and a later attempt may work (4xx reply, connection refused).
    #[error("transient: {0}")]
    Transient(String),
    /// The peer refused the message for good (5xx reply, bad recipient).
    #[error("permanent: {0}")]
    Permanent(String),
    /// The conversation broke after the message may have been accepted: never retried.
    #[error("unknown outcome: {0}")]
    Unknown(String),
}

impl SendError {
    pub fn is_transient(&self) -> bool {
        matches!(self, SendError::Transient(_))
    }

    pub fn is_permanent(&self) -> bool {
        matches!(self, SendError::Permanent(_))
    }

    /// A permanent refusal of the recipient address itself — the provider knows it as
    /// bounced/inactive or invalid, or an SMTP server answered 5xx to RCPT TO — which should
    /// suppress the address. Other permanent failures (a message too large, a payload the
    /// provider refuses) fail the delivery without blaming the address.
    pub fn is_hard_bounce(&self) -> bool {
        match self {
            SendError::Permanent(text) => {
                text.contains(http_common::HARD_BOUNCE) || text.starts_with("RCPT TO refused: 5")
            }
            _ => false,
        }
    }
}

/// The outcome of one message of a batch.
pub type SendOutcome = (i64, Result<(), SendError>);

/// The configured transport.
pub enum Transport {
    Smtp(smtp::SmtpPool),
    File(file::FileTransport),
    Postmark(postmark::PostmarkTransport),
    SendGrid(sendgrid::SendGridTransport),
    Mailgun(mailgun::MailgunTransport),
}

impl Transport {
    /// Sends a batch, with the transport's own concurrency; one outcome per message, in any order.
    pub async fn send_batch(&self, batch: Vec<OutgoingEmail>) -> Vec<SendOutcome> {
        match self {
            Transport::Smtp(pool) => pool.send_batch(batch).await,
            Transport::File(file) => file.send_batch(batch).await,
            Transport::Postmark(api) => api.send_batch(batch).await,
            Transport::SendGrid(api) => api.send_batch(batch).await,
            Transport::Mailgun(api) => api.send_batch(batch).await,
        }
    }

    pub fn kind(&self) -> &'static str {
        match self {
            Transport::Smtp(_) => "smtp",
            Transport::File(_) => "file",
            Transport::Postmark(_) => "postmark",
            Transport::SendGrid(_) => "sendgrid",
            Transport::Mailgun(_) => "mailgun",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hard_bounces_are_marked_permanent_recipient_refusals() {
        assert!(
            SendError::Permanent("RCPT TO refused: 550 5.1.1 no such user".into()).is_hard_bounce()
        );
        assert!(
            SendError::Permanent(format!(
                "postmark: ErrorCode 406 {} inactive",
                http_common::HARD_BOUNCE
            ))
            .is_hard_bounce()
        );
        assert!(
            !SendError::Permanent("end of data refused: 554 5.7.1 spam".into()).is_hard_bounce()
        );
        assert!(!SendError::Permanent("sendgrid: HTTP 413 too large".into()).is_hard_bounce());
        assert!(!SendError::Transient("RCPT TO refused: 450 4.2.0 busy".into()).is_hard_bounce());
        assert!(!SendError::Unknown(http_common::HARD_BOUNCE.into()).is_hard_bounce());
    }
}
