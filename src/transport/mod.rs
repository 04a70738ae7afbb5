//! Transports carry finished messages to the world: [`smtp`] (our own pool of lettre
//! connections), an email provider's HTTP API ([`api`]: Postmark, SendGrid, Mailgun) or a
//! folder of `.eml` files ([`file`](mod@file)). Each send answers per message, and a failure is a typed
//! [`SendError`] that says whether trying again can help (transient), cannot (permanent), or
//! whether we cannot know if the message left (unknown — never retried, so no step goes out
//! twice), and carries what the peer said as fields (SMTP reply and enhanced status, HTTP
//! status and `Retry-After`, whether the recipient was refused).
//!
//! [`limits`] decides how many messages may go now (per-transport rate, per-recipient-domain
//! rate and concurrency that slow down when a domain pushes back, and the rolling 24-hour
//! caps and domain budgets, kept in the database and shared by every daemon); it is
//! clock-injected, and what it holds back is deferred, never dropped. It tells
//! a throttle from a failure by the error's fields, as suppression tells a hard bounce.

pub mod api;
pub mod breaker;
mod error;
pub mod file;
pub mod limits;
pub mod smtp;

pub use error::{EnhancedStatus, ErrorKind, SendError, SmtpReply, TransportFault};

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

/// The outcome of one message of a batch.
pub type SendOutcome = (i64, Result<(), SendError>);

/// The ids an email provider gave the messages it took, by delivery id (Postmark
/// `MessageID`, SendGrid `X-Message-Id`, Mailgun `id`); empty for SMTP and file.
pub type ProviderIds = std::collections::HashMap<i64, String>;

/// The configured transport.
pub enum Transport {
    Smtp(smtp::SmtpPool),
    File(file::FileTransport),
    Postmark(api::postmark::PostmarkTransport),
    SendGrid(api::sendgrid::SendGridTransport),
    Mailgun(api::mailgun::MailgunTransport),
}

impl Transport {
    /// Sends a batch, with the transport's own concurrency; one outcome per message, in any order.
    pub async fn send_batch(&self, batch: Vec<OutgoingEmail>) -> Vec<SendOutcome> {
        self.send_tracked(batch).await.0
    }

    /// Like [`Transport::send_batch`], with the ids the provider gave the messages it took.
    pub async fn send_tracked(&self, batch: Vec<OutgoingEmail>) -> (Vec<SendOutcome>, ProviderIds) {
        match self {
            Transport::Smtp(pool) => (pool.send_batch(batch).await, ProviderIds::new()),
            Transport::File(file) => (file.send_batch(batch).await, ProviderIds::new()),
            Transport::Postmark(api) => api.send_tracked(batch).await,
            Transport::SendGrid(api) => api.send_tracked(batch).await,
            Transport::Mailgun(api) => api.send_tracked(batch).await,
        }
    }

    /// How many messages can be in a conversation (an SMTP transaction, an API call) at
    /// once: the pool's connections, the API's concurrent calls (times the messages one
    /// Postmark batch call carries). Dispatch starts at most this many deliveries at a time,
    /// which bounds what a crash can leave `unknown`.
    pub fn in_flight_limit(&self) -> usize {
        let n = match self {
            Transport::Smtp(pool) => pool.settings().pool_size,
            // Local files: nothing is on a wire; a small wave keeps the same bound.
            Transport::File(_) => 8,
            Transport::Postmark(api) => {
                let s = api.settings();
                s.concurrency * s.batch_size.clamp(1, api::postmark::MAX_BATCH)
            }
            Transport::SendGrid(api) => api.settings().concurrency,
            Transport::Mailgun(api) => api.settings().concurrency,
        };
        n.max(1)
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
