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
use lettre::transport::smtp::commands::{Data, Ehlo, Mail, Rcpt, Rset};
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
    /// The server offers PIPELINING (RFC 2920): MAIL FROM, RCPT TO and DATA go out in one
    /// write, with the previous message's body (one round trip per message instead of four),
    /// and their replies are read in order.
    pub(super) pipelining: bool,
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
            Ok((smtp, pipelining)) => {
                let id = next_connection_id();
                tracing::debug!(connection = id, %server, tls = %s.tls, pipelining, "SMTP connection opened");
                Ok(Conn {
                    smtp,
                    id,
                    last_used: Instant::now(),
                    reused_unproven: false,
                    pipelining,
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

    /// The session, and whether it offers PIPELINING.
    async fn open(&self) -> Result<(AsyncSmtpConnection, bool), SendError> {
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
        let pipelining = offers_pipelining(&mut smtp, &self.hello).await?;
        if let Some(credentials) = &self.credentials {
            smtp.auth(&[Mechanism::Plain, Mechanism::Login], credentials)
                .await
                .map_err(|e| {
                    session_error("AUTH", &e).with_transport_fault(TransportFault::Auth)
                })?;
        }
        Ok((smtp, pipelining))
    }

    /// One message's conversation: MAIL FROM, RCPT TO, DATA, body. `written`: its MAIL FROM,
    /// RCPT TO and DATA already went out after the previous message's body (only their
    /// replies are read). With PIPELINING, `next`'s commands go out after this body, in the
    /// same write (RFC 2920: the message content may open a group, DATA closes it): one
    /// write and one round trip per message instead of two. The second value says whether
    /// they did; nothing of `next` can be delivered before its own body.
    pub(super) async fn send_one(
        &self,
        conn: &mut Conn,
        email: &OutgoingEmail,
        written: bool,
        next: Option<&OutgoingEmail>,
    ) -> (Step, bool) {
        let timeout = self.settings.timeout;
        let envelope_sent = if written {
            // Built from this message with the previous body (an `OutgoingEmail` has one
            // recipient): only their replies are left to read.
            before_body_pipelined(&mut conn.smtp, None, 1, timeout).await
        } else {
            let envelope = match envelope_of(email) {
                Ok(e) => e,
                Err(e) => return (Step::Done(Err(e)), false),
            };
            let params = match mail_parameters(&conn.smtp, email) {
                Ok(p) => p,
                Err(e) => return (Step::Done(Err(e)), false),
            };
            if conn.pipelining {
                let commands = envelope_commands(&envelope, params);
                let recipients = envelope.to().len();
                before_body_pipelined(&mut conn.smtp, Some(commands), recipients, timeout).await
            } else {
                before_body(&mut conn.smtp, &envelope, params, timeout).await
            }
        };
        let smtp = &mut conn.smtp;
        if let Err(verdict) = envelope_sent {
            let step = match verdict {
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
            return (step, false);
        }

        // SMTP carries lines: the CRLF before the final "." ends the last line. lettre always
        // appends "\r\n.\r\n", so hand it the message without its own final CRLF, or the
        // recipient would get an extra empty line.
        let body = email
            .bytes
            .strip_suffix(b"\r\n")
            .unwrap_or(email.bytes.as_slice());
        // The body and its final "." go out in one write (lettre's `message` writes them in
        // two), followed by the next message's commands when they can be.
        let ahead = next
            .filter(|_| conn.pipelining)
            .and_then(|next| Some((envelope_of(next).ok()?, mail_parameters(smtp, next).ok()?)))
            .map(|(envelope, params)| envelope_commands(&envelope, params));
        let (sent, ahead) = match data_with_end(body) {
            Some(mut data) => {
                let ahead = ahead.map(|commands| data.push_str(&commands)).is_some();
                (
                    step(Stage::EndOfData, timeout, smtp.command(data)).await,
                    ahead,
                )
            }
            None => (
                step(Stage::EndOfData, timeout, smtp.message(body)).await,
                false,
            ),
        };
        let step = match sent {
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
        };
        (step, ahead)
    }
}

/// MAIL FROM, each RCPT TO and DATA, as one pipelined group.
fn envelope_commands(envelope: &Envelope, params: Vec<MailParameter>) -> String {
    let mut commands = Mail::new(envelope.from().cloned(), params).to_string();
    for to in envelope.to() {
        commands.push_str(&Rcpt::new(to.clone(), vec![]).to_string());
    }
    commands.push_str(&Data.to_string());
    commands
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

/// [`before_body`] pipelined (RFC 2920): MAIL FROM, each RCPT TO and DATA in one write
/// (`commands`; `None` when they already went out with the previous message's body), then
/// their replies in order, each read under the timeout and classified at its own stage. The
/// first failure is the verdict; the replies after it are still read, so the session stays in
/// step for RSET. A server that answers DATA with 354 after refusing an earlier command is
/// waiting for a body: the connection is dropped (nothing was sent, nothing can be delivered).
async fn before_body_pipelined(
    smtp: &mut AsyncSmtpConnection,
    commands: Option<String>,
    recipients: usize,
    timeout: Duration,
) -> Result<(), Verdict> {
    let first = match commands {
        Some(commands) => step(Stage::MailFrom, timeout, smtp.command(commands)).await,
        None => step(Stage::MailFrom, timeout, smtp.read_response()).await,
    };
    let mut first_failure = first.err();
    let stages = std::iter::repeat_n(Stage::RcptTo, recipients).chain([Stage::Data]);
    for stage in stages {
        // A broken conversation has no more replies to read.
        if matches!(
            first_failure,
            Some(Verdict::NotSent(_) | Verdict::Unknown(_) | Verdict::RefusedDrop(_))
        ) {
            break;
        }
        match step(stage, timeout, smtp.read_response()).await {
            Ok(_) if stage == Stage::Data => {
                if let Some(Verdict::Refused(e)) = first_failure {
                    return Err(Verdict::RefusedDrop(e));
                }
            }
            Ok(_) => {}
            Err(verdict) => {
                let broke = !matches!(verdict, Verdict::Refused(_));
                match &first_failure {
                    None => first_failure = Some(verdict),
                    // Refused earlier, and now the conversation broke: keep the refusal, drop
                    // the connection.
                    Some(Verdict::Refused(e)) if broke => {
                        return Err(Verdict::RefusedDrop(e.clone()));
                    }
                    Some(_) => {}
                }
            }
        }
    }
    match first_failure {
        Some(verdict) => Err(verdict),
        None => Ok(()),
    }
}

/// Whether the server offers PIPELINING, from a second EHLO (lettre keeps only the
/// extensions it knows; a repeated EHLO is allowed and resets nothing we rely on). A negative
/// reply means no; a conversation that breaks here means the session cannot be opened.
async fn offers_pipelining(
    smtp: &mut AsyncSmtpConnection,
    hello: &lettre::transport::smtp::extension::ClientId,
) -> Result<bool, SendError> {
    match smtp.command(Ehlo::new(hello.clone())).await {
        Ok(response) => Ok(response.message().any(|line| {
            line.split_whitespace()
                .next()
                .is_some_and(|word| word.eq_ignore_ascii_case("PIPELINING"))
        })),
        Err(e) if e.status().is_some() => Ok(false),
        Err(e) => Err(session_error("EHLO", &e).with_transport_fault(TransportFault::Greeting)),
    }
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

/// The DATA section for `body` (a message without its final CRLF) as one string: every line
/// that starts with "." gets another (RFC 5321 4.5.2, as lettre's codec does: at the start and
/// after each CRLF), then CRLF "." CRLF. `None` when the body is not UTF-8 (then lettre's
/// `message` writes the bytes).
fn data_with_end(body: &[u8]) -> Option<String> {
    let body = std::str::from_utf8(body).ok()?;
    let mut data = String::with_capacity(body.len() + 16);
    let mut rest = body;
    if rest.starts_with('.') {
        data.push('.');
    }
    while let Some(at) = rest.find("\r\n.") {
        data.push_str(&rest[..at + 3]);
        data.push('.');
        rest = &rest[at + 3..];
    }
    data.push_str(rest);
    data.push_str("\r\n.\r\n");
    Some(data)
}

fn next_connection_id() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(1);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What lettre's `message` writes for `body`: its codec's transparency, then the end.
    fn lettre_data(body: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        let mut line_start = true;
        let mut after_cr = false;
        for &b in body {
            out.push(b);
            if b == b'.' && line_start {
                out.push(b'.');
            }
            line_start = b == b'\n' && after_cr;
            after_cr = b == b'\r';
        }
        out.extend_from_slice(b"\r\n.\r\n");
        out
    }

    #[test]
    fn data_doubles_each_leading_dot_and_ends_with_a_dot_line() {
        let cases: [&[u8]; 12] = [
            b"",
            b".",
            b"..",
            b"Subject: x\r\n\r\nhi",
            b".starts with a dot",
            b"a\r\n.b\r\n..c\r\n.",
            b"a\r\n.\r\n.\r\nb",
            b"a\n.b",
            b"a\r.b",
            b"a.b.\r\n x .",
            b"\r\n.",
            "caf\u{e9}\r\n.\u{e9}".as_bytes(),
        ];
        for body in cases {
            let data = data_with_end(body).expect("UTF-8");
            assert_eq!(
                data.as_bytes(),
                lettre_data(body).as_slice(),
                "{:?}",
                String::from_utf8_lossy(body)
            );
        }
        assert_eq!(data_with_end(b"a\r\n.b").unwrap(), "a\r\n..b\r\n.\r\n");
        assert!(data_with_end(&[0xff, b'.']).is_none());
    }

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
