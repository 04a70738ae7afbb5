//! SMTP transport: our own pool of lettre SMTP connections.
//!
//! lettre speaks SMTP; we own the sockets and the pool. lettre's pooled `AsyncSmtpTransport`
//! never sets `TCP_NODELAY`, so every message waited for a delayed ACK (~23 msg/s per
//! connection). Here each connection is a `tokio::net::TcpStream` with `set_nodelay(true)`
//! handed to [`AsyncSmtpConnection::connect_with_transport`](
//! lettre::transport::smtp::client::AsyncSmtpConnection::connect_with_transport).
//!
//! # What each outcome means (this is what keeps "no step twice" true)
//!
//! | what happened                                              | outcome                      |
//! |------------------------------------------------------------|------------------------------|
//! | connect / greeting / EHLO / STARTTLS / AUTH failed         | `Transient` (never left)     |
//! | 4xx reply to MAIL, RCPT, DATA or to the end of data        | `Transient`                  |
//! | 5xx reply                                                  | `Permanent` (code and text)  |
//! | 530/535 (authentication required/failed: our session, not the message) | `Transient`, transport fault |
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
//!
//! Failures of the session rather than of a message — it could not be opened (refused,
//! unreachable, EMFILE, TLS, greeting/EHLO, AUTH), a 530/535 to MAIL FROM, connections lost
//! [`MAX_ATTEMPTS`] times before the body — carry a [`TransportFault`]: dispatch defers
//! those deliveries without counting an attempt and the circuit breaker pauses the transport.
//!
//! Every failure is a typed [`SendError`] that carries the server's reply code and enhanced
//! status as fields (also from the greeting, EHLO or AUTH of a session that could not be
//! opened: a `421 4.7.0` there is a domain pushing back); a 5xx to RCPT TO is marked
//! "recipient refused", a hard bounce.
//!
//! This file holds the pool and the shared queue a batch is sent from; `session` opens a
//! connection and runs one message's conversation, `reply` says what a failed step means,
//! `tls` wraps implicit TLS around our own socket.

mod reply;
mod session;
mod tls;

use std::collections::VecDeque;
use std::fmt;
use std::str::FromStr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::TlsParameters;
use lettre::transport::smtp::extension::ClientId;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

use self::session::{Conn, Step};
use super::{OutgoingEmail, SendError, SendOutcome, TransportFault};
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
        // The last connection error says why, with the server's reply (a 421 there is the
        // domain pushing back, which the limits read).
        let not_sent = lock(&state.last_connect_error)
            .clone()
            .unwrap_or_else(|| {
                SendError::transient("no SMTP connection available")
                    .with_transport_fault(TransportFault::Unreachable)
            })
            .map_message(|m| format!("not sent: {m}"));
        let mut outcomes = std::mem::take(&mut *lock(&state.outcomes));
        for index in unsent {
            if let Some(slot) = outcomes.get_mut(index) {
                *slot = Some(Err(not_sent.clone()));
            }
        }
        ids.into_iter()
            .zip(outcomes)
            .map(|(id, outcome)| {
                // Taken by a task that died mid-conversation: it may have left.
                let outcome = outcome.unwrap_or_else(|| {
                    Err(SendError::unknown(
                        "the sending task ended during the conversation",
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
    /// Why the last connection could not be opened (a `Transient` error).
    last_connect_error: Mutex<Option<SendError>>,
}

impl BatchState {
    fn record(&self, index: usize, outcome: Result<(), SendError>) {
        if let Some(slot) = lock(&self.outcomes).get_mut(index) {
            *slot = Some(outcome);
        }
    }

    /// `job`'s connection broke before its body was sent: back to the queue for another
    /// connection, or `Transient` after [`MAX_ATTEMPTS`] (keeping the server's reply, if
    /// any, as the error's fields).
    fn not_sent(&self, conn: &Conn, mut job: Job, why: SendError) {
        if conn.reused_unproven {
            tracing::debug!(
                connection = conn.id,
                reason = %why.message(),
                "idle SMTP connection was closed by the server; using a new one"
            );
        } else {
            tracing::warn!(
                connection = conn.id,
                reason = %why.message(),
                "SMTP connection lost before a message was sent; trying it on a new connection"
            );
        }
        // A stale idle connection does not count against the message (there are at
        // most `pool_size` of them, each dropped once).
        if !conn.reused_unproven {
            job.attempts += 1;
        }
        if job.attempts >= MAX_ATTEMPTS {
            let attempts = job.attempts;
            // Connections that keep breaking before any body is sent are the transport's
            // fault, not the message's.
            let error = why
                .map_message(|why| {
                    format!("connection lost {attempts} times before the message was sent: {why}")
                })
                .with_transport_fault(TransportFault::ConnectionLost);
            self.record(job.index, Err(error));
        } else {
            lock(&self.queue).push_front(job);
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
/// With PIPELINING it takes the next message with the current one, so that the next one's
/// MAIL FROM, RCPT TO and DATA go out with the current body ([`Inner::send_one`]); if the
/// connection is lost, or they could not go out, the next message goes back to the queue
/// (nothing of it was sent) without counting an attempt.
async fn worker(inner: Arc<Inner>, state: Arc<BatchState>) {
    // The semaphore is never closed, so acquiring only fails if it were; then send nothing
    // (the queued messages are reported Transient).
    let Ok(_permit) = Arc::clone(&inner.permits).acquire_owned().await else {
        return;
    };
    let mut conn: Option<Conn> = None;
    // Taken with the previous message: its commands are already on `conn`, which is kept.
    let mut ahead: Option<Job> = None;
    loop {
        if ahead.is_none() && lock(&state.queue).is_empty() {
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
        let (job, written) = match ahead.take() {
            Some(job) => (job, true),
            None => match lock(&state.queue).pop_front() {
                Some(job) => (job, false),
                None => {
                    conn = Some(c);
                    break;
                }
            },
        };
        let next = if c.pipelining {
            lock(&state.queue).pop_front()
        } else {
            None
        };
        let (step, next_written) = inner
            .send_one(&mut c, &job.email, written, next.as_ref().map(|j| &j.email))
            .await;
        let kept = match step {
            Step::Done(outcome) => {
                state.record(job.index, outcome);
                c.last_used = Instant::now();
                c.reused_unproven = false;
                conn = Some(c);
                true
            }
            Step::DoneDrop(outcome, why) => {
                tracing::warn!(connection = c.id, reason = %why, "SMTP connection dropped");
                state.record(job.index, outcome);
                false
            }
            Step::NotSent(why) => {
                state.not_sent(&c, job, why);
                false
            }
        };
        match next {
            Some(next) if kept && next_written => ahead = Some(next),
            Some(next) => lock(&state.queue).push_front(next),
            None => {}
        }
    }
    if let Some(c) = conn {
        inner.checkin(c);
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
}
