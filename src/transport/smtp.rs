//! SMTP transport: our own pool of lettre SMTP connections.
//!
//! lettre speaks SMTP; we own the sockets and the pool. lettre's pooled `AsyncSmtpTransport`
//! never sets `TCP_NODELAY`, so every message waited for a delayed ACK (~23 msg/s per
//! connection). Here each connection is a `tokio::net::TcpStream` with `set_nodelay(true)`
//! handed to [`AsyncSmtpConnection::connect_with_transport`].
//!
//! # What each outcome means (this is what keeps "no step twice" true)
//!
//! | what happened                                              | outcome                      |
//! |------------------------------------------------------------|------------------------------|
//! | connect / greeting / EHLO / STARTTLS / AUTH failed         | `Transient` (never left)     |
//! | 4xx reply to MAIL, RCPT, DATA or to the end of data        | `Transient`                  |
//! | 5xx reply                                                  | `Permanent` (code and text)  |
//! | 530/535 (authentication required/failed: our session, not the message) | `Transient`      |
//! | 421 (server closing) before the body                       | retried on a new connection, as below |
//! | connection lost or timed out *before* the message body     | retried on a new connection in the same batch (at most [`MAX_ATTEMPTS`] times), then `Transient` |
//! | connection lost, timed out or garbled *while or after* the body was sent | `Unknown` (never retried) |
//!
//! A server cannot accept a message before it has received the final `.` of its data, so a
//! conversation that breaks before the body is sent cannot have delivered it: retrying it is
//! safe. Once the body is on the wire, only the server's reply tells; without one the outcome
//! is unknown.
//!
//! A connection that cannot be opened (connect, greeting, EHLO, STARTTLS, AUTH) leaves its share
//! of the queue to the other connections; whatever no connection could take is `Transient`.

use std::collections::VecDeque;
use std::fmt;
use std::io;
use std::pin::Pin;
use std::str::FromStr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use lettre::Address;
use lettre::address::Envelope;
use lettre::transport::smtp::Error as SmtpError;
use lettre::transport::smtp::authentication::{Credentials, Mechanism};
#[allow(deprecated)]
use lettre::transport::smtp::client::AsyncNetworkStream;
use lettre::transport::smtp::client::{AsyncSmtpConnection, AsyncTokioStream, TlsParameters};
use lettre::transport::smtp::commands::{Data, Mail, Rcpt, Rset};
use lettre::transport::smtp::extension::{ClientId, Extension, MailBodyParameter, MailParameter};
use tokio::net::TcpStream;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

use super::{OutgoingEmail, SendError, SendOutcome};
use crate::secret::Secret;

/// How often a message whose connection broke before its body was sent is tried again on a
/// new connection within one batch before it is reported `Transient`.
pub const MAX_ATTEMPTS: u32 = 3;

/// A connection idle for longer than this is checked with NOOP before it is used again.
const IDLE_CHECK_AFTER: Duration = Duration::from_secs(30);

/// How the connection is secured.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TlsMode {
    /// Plain text (a local relay).
    None,
    /// Plain connection upgraded with STARTTLS (submission, port 587); fails if not offered.
    StartTls,
    /// Implicit TLS from the first byte (smtps, port 465).
    Tls,
}

impl FromStr for TlsMode {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "none" => Ok(TlsMode::None),
            "starttls" => Ok(TlsMode::StartTls),
            "tls" => Ok(TlsMode::Tls),
            _ => Err(format!(
                "unknown SMTP TLS mode `{s}`: expected one of `none`, `starttls`, `tls`"
            )),
        }
    }
}

impl fmt::Display for TlsMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            TlsMode::None => "none",
            TlsMode::StartTls => "starttls",
            TlsMode::Tls => "tls",
        })
    }
}

/// Where and how to reach the SMTP server.
#[derive(Debug, Clone)]
pub struct SmtpSettings {
    pub host: String,
    pub port: u16,
    pub tls: TlsMode,
    pub username: Option<String>,
    pub password: Option<Secret>,
    /// Connections used concurrently (at least 1).
    pub pool_size: usize,
    /// Limit on connecting and on each command (and on sending a body and reading its reply).
    pub timeout: Duration,
    /// The EHLO name; default: the machine's hostname.
    pub hello_name: Option<String>,
}

/// A pool of SMTP connections; cheap to share (`&self` everywhere).
pub struct SmtpPool {
    inner: Arc<Inner>,
}

struct Inner {
    settings: SmtpSettings,
    hello: ClientId,
    credentials: Option<Credentials>,
    /// Built once; `Err` holds why it could not be built (every dial then fails).
    tls_parameters: Option<Result<TlsParameters, String>>,
    /// One permit per connection in use, shared by concurrent batches.
    permits: Arc<Semaphore>,
    idle: Mutex<Vec<Conn>>,
}

/// One live SMTP session.
struct Conn {
    smtp: AsyncSmtpConnection,
    id: u64,
    last_used: Instant,
    /// Taken from the idle list and not yet proven alive by a command: if it turns out dead
    /// (the server closed it while idle), that is not the message's fault.
    reused_unproven: bool,
}

impl SmtpPool {
    /// Builds the pool; no connection is made until the first send.
    pub fn new(settings: SmtpSettings) -> SmtpPool {
        let pool_size = settings.pool_size.max(1);
        let hello = match &settings.hello_name {
            Some(name) if !name.trim().is_empty() => ClientId::Domain(name.trim().to_string()),
            _ => ClientId::default(),
        };
        let credentials = match (&settings.username, &settings.password) {
            (Some(user), Some(password)) => Some(Credentials::new(
                user.clone(),
                password.expose().to_string(),
            )),
            _ => None,
        };
        let tls_parameters = match settings.tls {
            TlsMode::None => None,
            TlsMode::StartTls | TlsMode::Tls => Some(
                TlsParameters::new(settings.host.clone())
                    .map_err(|e| format!("cannot set up TLS for {}: {e}", settings.host)),
            ),
        };
        SmtpPool {
            inner: Arc::new(Inner {
                settings,
                hello,
                credentials,
                tls_parameters,
                permits: Arc::new(Semaphore::new(pool_size)),
                idle: Mutex::new(Vec::new()),
            }),
        }
    }

    pub fn settings(&self) -> &SmtpSettings {
        &self.inner.settings
    }

    /// Sends every message of the batch over up to `pool_size` connections at once (a shared
    /// queue: a slow connection does not hold the others back). One outcome per message, in
    /// the order of the batch.
    ///
    /// Let it finish: dropping the future aborts the conversations in flight, and their
    /// outcomes (possibly sent) are lost with it. Shutdown should drain, then call [`close`].
    ///
    /// [`close`]: SmtpPool::close
    pub async fn send_batch(&self, batch: Vec<OutgoingEmail>) -> Vec<SendOutcome> {
        if batch.is_empty() {
            return Vec::new();
        }
        let ids: Vec<i64> = batch.iter().map(|m| m.delivery_id).collect();
        let workers = self.inner.settings.pool_size.max(1).min(batch.len());
        let state = Arc::new(BatchState {
            queue: Mutex::new(
                batch
                    .into_iter()
                    .enumerate()
                    .map(|(index, email)| Job {
                        index,
                        email,
                        attempts: 0,
                    })
                    .collect(),
            ),
            outcomes: Mutex::new(vec![None; ids.len()]),
            last_connect_error: Mutex::new(None),
        });

        let mut tasks = JoinSet::new();
        for _ in 0..workers {
            tasks.spawn(worker(Arc::clone(&self.inner), Arc::clone(&state)));
        }
        while let Some(joined) = tasks.join_next().await {
            if let Err(e) = joined {
                tracing::warn!(error = %e, "an SMTP sending task ended abnormally");
            }
        }

        // Whatever is still queued never left: no connection could take it.
        let unsent: Vec<usize> = lock(&state.queue).iter().map(|j| j.index).collect();
        let connect_error = lock(&state.last_connect_error)
            .clone()
            .unwrap_or_else(|| "no SMTP connection available".to_string());
        let mut outcomes = std::mem::take(&mut *lock(&state.outcomes));
        for index in unsent {
            if let Some(slot) = outcomes.get_mut(index) {
                *slot = Some(Err(SendError::Transient(format!(
                    "not sent: {connect_error}"
                ))));
            }
        }
        ids.into_iter()
            .zip(outcomes)
            .map(|(id, outcome)| {
                // Taken by a task that died mid-conversation: it may have left.
                let outcome = outcome.unwrap_or_else(|| {
                    Err(SendError::Unknown(
                        "the sending task ended during the conversation".to_string(),
                    ))
                });
                (id, outcome)
            })
            .collect()
    }

    /// Says QUIT on every idle connection (on shutdown). Connections in use are left alone.
    pub async fn close(&self) {
        let idle = std::mem::take(&mut *lock(&self.inner.idle));
        let timeout = self.inner.settings.timeout;
        for mut conn in idle {
            let _ = tokio::time::timeout(timeout, conn.smtp.quit()).await;
            tracing::debug!(connection = conn.id, "SMTP connection closed");
        }
    }
}

impl fmt::Debug for SmtpPool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SmtpPool")
            .field("settings", &self.inner.settings)
            .finish_non_exhaustive()
    }
}

struct Job {
    index: usize,
    email: OutgoingEmail,
    attempts: u32,
}

struct BatchState {
    queue: Mutex<VecDeque<Job>>,
    outcomes: Mutex<Vec<Option<Result<(), SendError>>>>,
    last_connect_error: Mutex<Option<String>>,
}

impl BatchState {
    fn record(&self, index: usize, outcome: Result<(), SendError>) {
        if let Some(slot) = lock(&self.outcomes).get_mut(index) {
            *slot = Some(outcome);
        }
    }
}

/// Locks a std mutex, ignoring poisoning (the data stay consistent: every critical section
/// here is a single push/pop/assignment).
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// One connection's share of a batch: takes messages from the shared queue until it is empty.
async fn worker(inner: Arc<Inner>, state: Arc<BatchState>) {
    // The semaphore is never closed, so acquiring only fails if it were; then send nothing
    // (the queued messages are reported Transient).
    let Ok(_permit) = Arc::clone(&inner.permits).acquire_owned().await else {
        return;
    };
    let mut conn: Option<Conn> = None;
    loop {
        if lock(&state.queue).is_empty() {
            break;
        }
        let mut c = match conn.take() {
            Some(c) => c,
            None => match inner.checkout().await {
                Ok(c) => c,
                Err(e) => {
                    // Leave the queue to the other connections; what nobody can take is
                    // reported Transient with this error.
                    *lock(&state.last_connect_error) = Some(e);
                    break;
                }
            },
        };
        let Some(mut job) = lock(&state.queue).pop_front() else {
            conn = Some(c);
            break;
        };
        match inner.send_one(&mut c, &job.email).await {
            Step::Done(outcome) => {
                state.record(job.index, outcome);
                c.last_used = Instant::now();
                c.reused_unproven = false;
                conn = Some(c);
            }
            Step::DoneDrop(outcome, why) => {
                tracing::warn!(connection = c.id, reason = %why, "SMTP connection dropped");
                state.record(job.index, outcome);
            }
            Step::NotSent(why) => {
                if c.reused_unproven {
                    tracing::debug!(
                        connection = c.id,
                        reason = %why,
                        "idle SMTP connection was closed by the server; using a new one"
                    );
                } else {
                    tracing::warn!(
                        connection = c.id,
                        reason = %why,
                        "SMTP connection lost before a message was sent; trying it on a new connection"
                    );
                }
                // A stale idle connection does not count against the message (there are at
                // most `pool_size` of them, each dropped once).
                if !c.reused_unproven {
                    job.attempts += 1;
                }
                if job.attempts >= MAX_ATTEMPTS {
                    state.record(
                        job.index,
                        Err(SendError::Transient(format!(
                            "connection lost {} times before the message was sent: {why}",
                            job.attempts
                        ))),
                    );
                } else {
                    lock(&state.queue).push_front(job);
                }
            }
        }
    }
    if let Some(c) = conn {
        inner.checkin(c);
    }
}

/// What became of one message on one connection.
enum Step {
    /// Outcome known; the connection is still good.
    Done(Result<(), SendError>),
    /// Outcome known (or Unknown); the connection must be dropped.
    DoneDrop(Result<(), SendError>, String),
    /// The connection broke before the message body was sent: the message did not leave.
    NotSent(String),
}

/// Where in a message's conversation a reply or failure came.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stage {
    MailFrom,
    RcptTo,
    Data,
    /// The body and its final `.` were (being) sent.
    EndOfData,
}

impl Stage {
    fn name(self) -> &'static str {
        match self {
            Stage::MailFrom => "MAIL FROM",
            Stage::RcptTo => "RCPT TO",
            Stage::Data => "DATA",
            Stage::EndOfData => "end of data",
        }
    }
}

/// What to do after a command failed.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Verdict {
    /// A negative reply about this message; the session can go on (after RSET if needed).
    Refused(SendError),
    /// A negative reply, and the session is over (421): message refused, drop the connection.
    RefusedDrop(SendError),
    /// The connection broke before the body: retry the message on another connection.
    NotSent(String),
    /// The connection broke once the body was on the wire.
    Unknown(String),
}

/// Pure classification of a failed step. `reply` is the server's negative reply (code and
/// text) when there was one; `None` means no readable reply (I/O error, EOF, timeout, garbage).
fn classify(stage: Stage, reply: Option<(u16, &str)>, failure: &str) -> Verdict {
    match reply {
        Some((code, text)) => {
            let detail = format!("{} refused: {code} {text}", stage.name());
            match code {
                // The server is closing the session. Before the body this says nothing about
                // the message: try it on a new connection. After the body it is a refusal.
                421 if stage != Stage::EndOfData => Verdict::NotSent(detail),
                421 => Verdict::RefusedDrop(SendError::Transient(detail)),
                // "Authentication required/failed" is about our session, not the message.
                530 | 535 => Verdict::Refused(SendError::Transient(detail)),
                400..=499 => Verdict::Refused(SendError::Transient(detail)),
                500..=599 => Verdict::Refused(SendError::Permanent(detail)),
                // A "negative" reply with a code outside 4xx/5xx cannot come from lettre;
                // treat it like no reply at all.
                _ => no_reply(stage, &detail),
            }
        }
        None => no_reply(stage, &format!("{}: {failure}", stage.name())),
    }
}

fn no_reply(stage: Stage, detail: &str) -> Verdict {
    if stage == Stage::EndOfData {
        Verdict::Unknown(format!(
            "{detail} (the server may have accepted the message)"
        ))
    } else {
        Verdict::NotSent(detail.to_string())
    }
}

/// The reply code and text of a lettre error, if it carries a reply.
fn reply_of(error: &SmtpError) -> Option<(u16, String)> {
    let code = u16::from(error.status()?);
    let text = std::error::Error::source(error)
        .map(|s| s.to_string())
        .unwrap_or_default();
    Some((code, text))
}

/// Runs one SMTP step under the timeout, as a classified failure.
async fn step<T>(
    stage: Stage,
    timeout: Duration,
    fut: impl Future<Output = Result<T, SmtpError>>,
) -> Result<T, Verdict> {
    match tokio::time::timeout(timeout, fut).await {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => {
            let reply = reply_of(&e);
            Err(classify(
                stage,
                reply.as_ref().map(|(c, t)| (*c, t.as_str())),
                &e.to_string(),
            ))
        }
        Err(_) => Err(classify(
            stage,
            None,
            &format!("no reply within {timeout:?}"),
        )),
    }
}

impl Inner {
    /// An idle connection (checked if it has been idle long), or a new one.
    async fn checkout(&self) -> Result<Conn, String> {
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

    fn checkin(&self, conn: Conn) {
        if conn.smtp.has_broken() {
            return;
        }
        let mut idle = lock(&self.idle);
        if idle.len() < self.settings.pool_size.max(1) {
            idle.push(conn);
        }
    }

    /// Dials, greets, says EHLO, upgrades with STARTTLS and authenticates.
    async fn connect(&self) -> Result<Conn, String> {
        let s = &self.settings;
        let server = format!("{}:{}", s.host, s.port);
        let result = tokio::time::timeout(s.timeout, self.open())
            .await
            .unwrap_or_else(|_| Err(format!("no answer within {:?}", s.timeout)));
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
                let e = format!("cannot open an SMTP session with {server}: {e}");
                tracing::warn!(error = %e, "SMTP connection failed");
                Err(e)
            }
        }
    }

    async fn open(&self) -> Result<AsyncSmtpConnection, String> {
        let s = &self.settings;
        let tls = match &self.tls_parameters {
            None => None,
            Some(Ok(p)) => Some(p.clone()),
            Some(Err(e)) => return Err(e.clone()),
        };
        let tcp = TcpStream::connect((s.host.as_str(), s.port))
            .await
            .map_err(|e| format!("connect: {e}"))?;
        tcp.set_nodelay(true)
            .map_err(|e| format!("set TCP_NODELAY: {e}"))?;

        let stream: Box<dyn AsyncTokioStream> = match (s.tls, tls.clone()) {
            (TlsMode::Tls, Some(params)) => {
                #[allow(deprecated)]
                let mut tls_stream = AsyncNetworkStream::use_existing_tokio1(Box::new(tcp));
                tls_stream
                    .upgrade_tls(params)
                    .await
                    .map_err(|e| format!("TLS handshake: {e}"))?;
                Box::new(ImplicitTls(tls_stream))
            }
            _ => Box::new(tcp),
        };
        let mut smtp = AsyncSmtpConnection::connect_with_transport(stream, &self.hello)
            .await
            .map_err(|e| format!("greeting/EHLO: {e}"))?;
        if let (TlsMode::StartTls, Some(params)) = (s.tls, tls) {
            if !smtp.server_info().supports_feature(Extension::StartTls) {
                return Err("the server does not offer STARTTLS".to_string());
            }
            smtp.starttls(params, &self.hello)
                .await
                .map_err(|e| format!("STARTTLS: {e}"))?;
        }
        if let Some(credentials) = &self.credentials {
            smtp.auth(&[Mechanism::Plain, Mechanism::Login], credentials)
                .await
                .map_err(|e| format!("AUTH: {e}"))?;
        }
        Ok(smtp)
    }

    /// One message's conversation: MAIL FROM, RCPT TO, DATA, body.
    async fn send_one(&self, conn: &mut Conn, email: &OutgoingEmail) -> Step {
        let envelope = match envelope_of(email) {
            Ok(e) => e,
            Err(e) => return Step::Done(Err(e)),
        };
        let info = conn.smtp.server_info();
        let mut params = Vec::new();
        if !email.envelope_from.is_ascii() || !email.envelope_to.is_ascii() {
            if !info.supports_feature(Extension::SmtpUtfEight) {
                return Step::Done(Err(SendError::Permanent(
                    "the envelope has non-ASCII addresses but the server does not offer SMTPUTF8"
                        .to_string(),
                )));
            }
            params.push(MailParameter::SmtpUtfEight);
        }
        if !email.bytes.is_ascii() {
            if !info.supports_feature(Extension::EightBitMime) {
                return Step::Done(Err(SendError::Permanent(
                    "the message has 8-bit content but the server does not offer 8BITMIME"
                        .to_string(),
                )));
            }
            params.push(MailParameter::Body(MailBodyParameter::EightBitMime));
        }

        let timeout = self.settings.timeout;
        let smtp = &mut conn.smtp;
        let before_body = async {
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
            Ok::<(), Verdict>(())
        }
        .await;
        if let Err(verdict) = before_body {
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
                Verdict::NotSent(why) => Step::NotSent(why),
                Verdict::Unknown(why) => Step::DoneDrop(Err(SendError::Unknown(why.clone())), why),
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
            Err(Verdict::Unknown(why)) | Err(Verdict::NotSent(why)) => {
                Step::DoneDrop(Err(SendError::Unknown(why.clone())), why)
            }
        }
    }
}

/// The SMTP envelope of a message; a malformed address is a permanent failure.
fn envelope_of(email: &OutgoingEmail) -> Result<Envelope, SendError> {
    let from = email.envelope_from.trim();
    let from =
        if from.is_empty() || from == "<>" {
            None // the null reverse-path
        } else {
            Some(Address::from_str(from).map_err(|e| {
                SendError::Permanent(format!("invalid envelope sender `{from}`: {e}"))
            })?)
        };
    let to = email.envelope_to.trim();
    let to = Address::from_str(to)
        .map_err(|e| SendError::Permanent(format!("invalid envelope recipient `{to}`: {e}")))?;
    Envelope::new(from, vec![to])
        .map_err(|e| SendError::Permanent(format!("invalid envelope: {e}")))
}

fn next_connection_id() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(1);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

/// An implicit-TLS stream (lettre's rustls stream over our own `TCP_NODELAY` socket),
/// presented to lettre as a plain tokio stream so that the greeting is read over TLS.
#[allow(deprecated)]
#[derive(Debug)]
struct ImplicitTls(AsyncNetworkStream);

impl tokio::io::AsyncRead for ImplicitTls {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let unfilled = buf.initialize_unfilled();
        match futures::io::AsyncRead::poll_read(Pin::new(&mut self.0), cx, unfilled) {
            Poll::Ready(Ok(n)) => {
                buf.advance(n);
                Poll::Ready(Ok(()))
            }
            Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
            Poll::Pending => Poll::Pending,
        }
    }
}

impl tokio::io::AsyncWrite for ImplicitTls {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        futures::io::AsyncWrite::poll_write(Pin::new(&mut self.0), cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        futures::io::AsyncWrite::poll_flush(Pin::new(&mut self.0), cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        futures::io::AsyncWrite::poll_close(Pin::new(&mut self.0), cx)
    }
}

impl AsyncTokioStream for ImplicitTls {
    fn peer_addr(&self) -> io::Result<std::net::SocketAddr> {
        self.0.peer_addr()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tls_modes_parse_case_insensitively() {
        assert_eq!("none".parse::<TlsMode>(), Ok(TlsMode::None));
        assert_eq!("STARTTLS".parse::<TlsMode>(), Ok(TlsMode::StartTls));
        assert_eq!(" tls ".parse::<TlsMode>(), Ok(TlsMode::Tls));
        for mode in [TlsMode::None, TlsMode::StartTls, TlsMode::Tls] {
            assert_eq!(mode.to_string().parse::<TlsMode>(), Ok(mode));
        }
    }

    #[test]
    fn an_unknown_tls_mode_lists_the_allowed_values() {
        let err = "ssl".parse::<TlsMode>().unwrap_err();
        assert!(err.contains("`ssl`"), "{err}");
        for allowed in ["none", "starttls", "tls"] {
            assert!(err.contains(allowed), "{err}");
        }
    }

    #[test]
    fn a_4xx_reply_is_transient_and_a_5xx_permanent_with_the_servers_text() {
        for stage in [
            Stage::MailFrom,
            Stage::RcptTo,
            Stage::Data,
            Stage::EndOfData,
        ] {
            match classify(stage, Some((450, "4.2.0 mailbox busy")), "x") {
                Verdict::Refused(SendError::Transient(t)) => {
                    assert!(t.contains("450 4.2.0 mailbox busy"), "{t}")
                }
                other => panic!("{stage:?}: {other:?}"),
            }
            match classify(stage, Some((550, "5.1.1 no such user")), "x") {
                Verdict::Refused(SendError::Permanent(t)) => {
                    assert!(t.contains("550 5.1.1 no such user"), "{t}")
                }
                other => panic!("{stage:?}: {other:?}"),
            }
        }
    }

    #[test]
    fn a_broken_conversation_before_the_body_is_retried_and_after_it_is_unknown() {
        for stage in [Stage::MailFrom, Stage::RcptTo, Stage::Data] {
            assert!(matches!(
                classify(stage, None, "network error"),
                Verdict::NotSent(_)
            ));
        }
        assert!(matches!(
            classify(Stage::EndOfData, None, "incomplete response"),
            Verdict::Unknown(_)
        ));
    }

    #[test]
    fn a_421_closing_reply_retries_before_the_body_and_is_transient_after_it() {
        assert!(matches!(
            classify(Stage::MailFrom, Some((421, "4.3.2 shutting down")), "x"),
            Verdict::NotSent(_)
        ));
        assert!(matches!(
            classify(Stage::EndOfData, Some((421, "4.3.2 shutting down")), "x"),
            Verdict::RefusedDrop(SendError::Transient(_))
        ));
    }

    #[test]
    fn authentication_required_is_not_blamed_on_the_message() {
        assert!(matches!(
            classify(
                Stage::MailFrom,
                Some((530, "5.7.0 Authentication required")),
                "x"
            ),
            Verdict::Refused(SendError::Transient(_))
        ));
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
        assert!(matches!(envelope_of(&email), Err(SendError::Permanent(_))));
        email.envelope_to = "lead@example.org".into();
        let envelope = envelope_of(&email).unwrap();
        assert_eq!(envelope.to().len(), 1);
        email.envelope_from = String::new();
        assert!(envelope_of(&email).unwrap().from().is_none());
    }
}
