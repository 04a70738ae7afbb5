//! One SMTP session: opening it over our own `TCP_NODELAY` socket (greeting, EHLO,
//! STARTTLS or implicit TLS, AUTH), keeping it idle in the pool and checking it before reuse,
//! and one message's conversation on it (MAIL FROM, RCPT TO, DATA, body) with what each
//! failure means (`reply`).

use std::str::FromStr;
use std::time::{Duration, Instant};

use lettre::Address;
use lettre::address::Envelope;
use lettre::transport::smtp::authentication::Mechanism;
#[allow(deprecated)]
use lettre::transport::smtp::client::AsyncNetworkStream;
use lettre::transport::smtp::client::{AsyncSmtpConnection, AsyncTokioStream};
use lettre::transport::smtp::commands::{Data, Mail, Rcpt, Rset};
use lettre::transport::smtp::extension::{Extension, MailBodyParameter, MailParameter};
use tokio::net::TcpStream;

use super::reply::{Stage, Verdict, session_error, step};
use super::tls::ImplicitTls;
use super::{IDLE_CHECK_AFTER, Inner, TlsMode, lock};
use crate::transport::{OutgoingEmail, SendError, TransportFault};

/// What became of one message on one connection.
pub(super) enum Step {
    /// Outcome known; the connection is still good.
    Done(Result<(), SendError>),
    /// Outcome known (or unknown); the connection must be dropped, for the reason given.
    DoneDrop(Result<(), SendError>, String),
    /// The connection broke before the message body was sent: the message did not leave.
    /// The error (`Transient`) says why.
    NotSent(SendError),
}

/// One live SMTP session.
pub(super) struct Conn {
    pub(super) smtp: AsyncSmtpConnection,
    pub(super) id: u64,
    pub(super) last_used: Instant,
    /// Taken from the idle list and not yet proven alive by a command: if it turns out dead
    /// (the server closed it while idle), that is not the message's fault.
    pub(super) reused_unproven: bool,
}

impl Inner {
    /// An idle connection (checked if it has been idle long), or a new one.
    pub(super) async fn checkout(&self) -> Result<Conn, SendError> {
        loop {
            let Some(mut conn) = lock(&self.idle).pop() else {
                break;
            };
            if conn.smtp.has_broken() {
                continue;
            }
            if conn.last_used.elapsed() > IDLE_CHECK_AFTER {
                let alive = tokio::time::timeout(self.settings.timeout, conn.smtp.test_connected())
                    .await
                    .unwrap_or(false);
                if !alive {
                    tracing::debug!(connection = conn.id, "idle SMTP connection is gone");
                    continue;
                }
            }
            tracing::debug!(connection = conn.id, "reusing SMTP connection");
            conn.reused_unproven = true;
            return Ok(conn);
        }
        self.connect().await
    }

    pub(super) fn checkin(&self, conn: Conn) {
        if conn.smtp.has_broken() {
            return;
        }
        let mut idle = lock(&self.idle);
        if idle.len() < self.settings.pool_size.max(1) {
            idle.push(conn);
        }
    }

    /// Dials, greets, says EHLO, upgrades with STARTTLS and authenticates.
    async fn connect(&self) -> Result<Conn, SendError> {
        let s = &self.settings;
        let server = format!("{}:{}", s.host, s.port);
        let result = tokio::time::timeout(s.timeout, self.open())
            .await
            .unwrap_or_else(|_| {
                Err(
                    SendError::transient(format!("no answer within {:?}", s.timeout))
                        .with_transport_fault(TransportFault::Unreachable),
                )
            });
        match result {
            Ok(smtp) => {
                let id = next_connection_id();
                tracing::debug!(connection = id, %server, tls = %s.tls, "SMTP connection opened");
                Ok(Conn {
                    smtp,
                    id,
                    last_used: Instant::now(),
                    reused_unproven: false,
                })
            }
            Err(e) => {
                let e =
                    e.map_message(|m| format!("cannot open an SMTP session with {server}: {m}"));
                tracing::warn!(error = %e.message(), "SMTP connection failed");
                Err(e)
            }
        }
    }

    async fn open(&self) -> Result<AsyncSmtpConnection, SendError> {
        let s = &self.settings;
        let tls = match &self.tls_parameters {
            None => None,
            Some(Ok(p)) => Some(p.clone()),
            Some(Err(e)) => {
                return Err(
                    SendError::transient(e.clone()).with_transport_fault(TransportFault::Tls)
                );
            }
        };
        // Every failure to open a session is the transport's, not a message's.
        let io = |what: &str, e: std::io::Error| {
            SendError::transient(format!("{what}: {e}"))
                .with_transport_fault(TransportFault::of_io(&e))
        };
        let tcp = TcpStream::connect((s.host.as_str(), s.port))
            .await
            .map_err(|e| io("connect", e))?;
        tcp.set_nodelay(true)
            .map_err(|e| io("set TCP_NODELAY", e))?;

        let stream: Box<dyn AsyncTokioStream> = match (s.tls, tls.clone()) {
            (TlsMode::Tls, Some(params)) => {
                #[allow(deprecated)]
                let mut tls_stream = AsyncNetworkStream::use_existing_tokio1(Box::new(tcp));
                tls_stream.upgrade_tls(params).await.map_err(|e| {
                    session_error("TLS handshake", &e).with_transport_fault(TransportFault::Tls)
                })?;
                Box::new(ImplicitTls(tls_stream))
            }
            _ => Box::new(tcp),
        };
        let mut smtp = AsyncSmtpConnection::connect_with_transport(stream, &self.hello)
            .await
            .map_err(|e| {
                session_error("greeting/EHLO", &e).with_transport_fault(TransportFault::Greeting)
            })?;
        if let (TlsMode::StartTls, Some(params)) = (s.tls, tls) {
            if !smtp.server_info().supports_feature(Extension::StartTls) {
                return Err(SendError::transient("the server does not offer STARTTLS")
                    .with_transport_fault(TransportFault::Tls));
            }
            smtp.starttls(params, &self.hello).await.map_err(|e| {
                session_error("STARTTLS", &e).with_transport_fault(TransportFault::Tls)
            })?;
        }
        if let Some(credentials) = &self.credentials {
            smtp.auth(&[Mechanism::Plain, Mechanism::Login], credentials)
                .await
                .map_err(|e| {
                    session_error("AUTH", &e).with_transport_fault(TransportFault::Auth)
                })?;
        }
        Ok(smtp)
    }

    /// One message's conversation: MAIL FROM, RCPT TO, DATA, body.
    pub(super) async fn send_one(&self, conn: &mut Conn, email: &OutgoingEmail) -> Step {
        let envelope = match envelope_of(email) {
            Ok(e) => e,
            Err(e) => return Step::Done(Err(e)),
        };
        let params = match mail_parameters(&conn.smtp, email) {
            Ok(p) => p,
            Err(e) => return Step::Done(Err(e)),
        };
        let timeout = self.settings.timeout;
        let smtp = &mut conn.smtp;
        if let Err(verdict) = before_body(smtp, &envelope, params, timeout).await {
            return match verdict {
                Verdict::Refused(e) => {
                    // Close the half-open transaction so the session can carry the next one.
                    match tokio::time::timeout(timeout, smtp.command(Rset)).await {
                        Ok(Ok(_)) => Step::Done(Err(e)),
                        _ => Step::DoneDrop(Err(e), "RSET failed".to_string()),
                    }
                }
                Verdict::RefusedDrop(e) => {
                    let why = e.to_string();
                    Step::DoneDrop(Err(e), why)
                }
                Verdict::NotSent(e) => Step::NotSent(e),
                Verdict::Unknown(e) => {
                    let why = e.message().to_string();
                    Step::DoneDrop(Err(e), why)
                }
            };
        }

        // SMTP carries lines: the CRLF before the final "." ends the last line. lettre always
        // appends "\r\n.\r\n", so hand it the message without its own final CRLF, or the
        // recipient would get an extra empty line.
        let body = email
            .bytes
            .strip_suffix(b"\r\n")
            .unwrap_or(email.bytes.as_slice());
        match step(Stage::EndOfData, timeout, smtp.message(body)).await {
            Ok(_) => Step::Done(Ok(())),
            Err(Verdict::Refused(e)) => Step::Done(Err(e)),
            Err(Verdict::RefusedDrop(e)) => {
                let why = e.to_string();
                Step::DoneDrop(Err(e), why)
            }
            Err(Verdict::Unknown(e)) => {
                let why = e.message().to_string();
                Step::DoneDrop(Err(e), why)
            }
            // `classify` says "unknown", never "not sent", once the body is on the wire.
            Err(Verdict::NotSent(e)) => {
                let why = e.message().to_string();
                Step::DoneDrop(Err(SendError::unknown(why.clone())), why)
            }
        }
    }
}

/// MAIL FROM, RCPT TO and DATA: everything before the body, which cannot deliver anything.
async fn before_body(
    smtp: &mut AsyncSmtpConnection,
    envelope: &Envelope,
    params: Vec<MailParameter>,
    timeout: Duration,
) -> Result<(), Verdict> {
    step(
        Stage::MailFrom,
        timeout,
        smtp.command(Mail::new(envelope.from().cloned(), params)),
    )
    .await?;
    for to in envelope.to() {
        step(
            Stage::RcptTo,
            timeout,
            smtp.command(Rcpt::new(to.clone(), vec![])),
        )
        .await?;
    }
    step(Stage::Data, timeout, smtp.command(Data)).await?;
    Ok(())
}

/// The MAIL FROM parameters a message needs (SMTPUTF8, 8BITMIME); a message that needs one
/// the server does not offer cannot go through it (`Permanent`).
fn mail_parameters(
    smtp: &AsyncSmtpConnection,
    email: &OutgoingEmail,
) -> Result<Vec<MailParameter>, SendError> {
    let info = smtp.server_info();
    let mut params = Vec::new();
    if !email.envelope_from.is_ascii() || !email.envelope_to.is_ascii() {
        if !info.supports_feature(Extension::SmtpUtfEight) {
            return Err(SendError::permanent(
                "the envelope has non-ASCII addresses but the server does not offer SMTPUTF8",
            ));
        }
        params.push(MailParameter::SmtpUtfEight);
    }
    if !email.bytes.is_ascii() {
        if !info.supports_feature(Extension::EightBitMime) {
            return Err(SendError::permanent(
                "the message has 8-bit content but the server does not offer 8BITMIME",
            ));
        }
        params.push(MailParameter::Body(MailBodyParameter::EightBitMime));
    }
    Ok(params)
}

/// The SMTP envelope of a message; a malformed address is a permanent failure.
fn envelope_of(email: &OutgoingEmail) -> Result<Envelope, SendError> {
    let from = email.envelope_from.trim();
    let from =
        if from.is_empty() || from == "<>" {
            None // the null reverse-path
        } else {
            Some(Address::from_str(from).map_err(|e| {
                SendError::permanent(format!("invalid envelope sender `{from}`: {e}"))
            })?)
        };
    let to = email.envelope_to.trim();
    let to = Address::from_str(to)
        .map_err(|e| SendError::permanent(format!("invalid envelope recipient `{to}`: {e}")))?;
    Envelope::new(from, vec![to])
        .map_err(|e| SendError::permanent(format!("invalid envelope: {e}")))
}

fn next_connection_id() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(1);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn malformed_envelope_addresses_are_permanent() {
        let mut email = OutgoingEmail {
            delivery_id: 1,
            envelope_from: "sales@example.com".into(),
            envelope_to: "not an address".into(),
            message_id: "m1@example.com".into(),
            bytes: b"Subject: x\r\n\r\nhi\r\n".to_vec(),
        };
        assert!(matches!(envelope_of(&email), Err(e) if e.is_permanent()));
        email.envelope_to = "lead@example.org".into();
        let envelope = envelope_of(&email).unwrap();
        assert_eq!(envelope.to().len(), 1);
        email.envelope_from = String::new();
        assert!(envelope_of(&email).unwrap().from().is_none());
    }
}
