//! A small, real SMTP server for tests: it speaks the protocol (greeting, EHLO/HELO, MAIL,
//! RCPT, DATA with dot-unstuffing, RSET, NOOP, QUIT, optional AUTH PLAIN), captures every
//! accepted message, and can be told to refuse recipients or to drop a connection mid-message —
//! or to misbehave as a whole: answer every greeting with a refusal (`421` at greeting), refuse
//! every AUTH (`535`), stall every transaction at RCPT TO, or stop listening so connections
//! are refused, and recover on command.
//!
//! Use it as `crate::support::smtp_server`, or from outside the test binary (benches/) as
//! `#[path = "../tests/it/support/smtp_server.rs"] mod smtp_server;`. It stops when dropped.

use std::collections::{HashMap, HashSet};
use std::io;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader, BufWriter};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::{AbortHandle, JoinHandle};

/// One message the server accepted (answered 250 to its end of data).
#[derive(Debug, Clone)]
pub struct CapturedMessage {
    /// The MAIL FROM address, without angle brackets ("" for the null sender).
    pub mail_from: String,
    /// The RCPT TO addresses, without angle brackets.
    pub rcpt_to: Vec<String>,
    /// The message as received: dot-unstuffed, up to and including the CRLF before the final ".".
    pub data: Vec<u8>,
    /// Only read in the `{:?}` of a failing assertion.
    #[allow(dead_code)]
    pub received_at: Instant,
}

#[derive(Default)]
struct Shared {
    messages: Mutex<Vec<CapturedMessage>>,
    /// Lowercased address → full reply line for RCPT TO.
    rejects: Mutex<HashMap<String, String>>,
    /// 1-based message numbers (counted over all connections) after whose data to hang up.
    drop_after: Mutex<HashSet<usize>>,
    data_received: AtomicUsize,
    /// Ends of data read with the next MAIL FROM already behind them (one write from the
    /// client: PIPELINING's group that the message content opens).
    mail_after_data: AtomicUsize,
    /// When set, EHLO does not offer PIPELINING, and every command (or end of data) read with
    /// more of the client's bytes already behind it is counted: a client that did not wait.
    no_pipelining: std::sync::atomic::AtomicBool,
    unsynchronised: AtomicUsize,
    connections: AtomicUsize,
    quits: AtomicUsize,
    /// The expected AUTH PLAIN initial response (base64), when authentication is required.
    auth_plain: Mutex<Option<String>>,
    /// When set, every new connection is greeted with this line (e.g. "421 4.3.2 …") and closed.
    refuse_greeting: Mutex<Option<String>>,
    /// When set, every AUTH is answered 535 whatever the credentials.
    refuse_auth: std::sync::atomic::AtomicBool,
    /// When set, every RCPT TO is read and left unanswered until released (a relay stalling
    /// mid-transaction); how many were held.
    stall_rcpt: std::sync::atomic::AtomicBool,
    stalled_rcpts: AtomicUsize,
    /// Greetings answered with a refusal, AUTHs refused on command.
    refused_greetings: AtomicUsize,
    refused_auths: AtomicUsize,
    tasks: Mutex<Vec<AbortHandle>>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// A capturing SMTP server on 127.0.0.1 (random port).
pub struct TestSmtpServer {
    port: u16,
    shared: Arc<Shared>,
    /// None while the server is not listening (`stop_listening`).
    accept: Mutex<Option<JoinHandle<()>>>,
}

impl TestSmtpServer {
    pub async fn start() -> TestSmtpServer {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the test SMTP server");
        let port = listener.local_addr().expect("local address").port();
        let shared = Arc::new(Shared::default());
        let accept = tokio::spawn(accept_loop(listener, Arc::clone(&shared)));
        TestSmtpServer {
            port,
            shared,
            accept: Mutex::new(Some(accept)),
        }
    }

    /// Greets every new connection with `line` (e.g. "421 4.3.2 Service not available") and
    /// closes it, until [`recover`](Self::recover).
    pub fn refuse_greetings(&self, line: &str) {
        *lock(&self.shared.refuse_greeting) = Some(line.to_string());
    }

    /// Answers every AUTH with 535, until [`recover`](Self::recover).
    pub fn refuse_auth(&self) {
        self.shared.refuse_auth.store(true, Ordering::SeqCst);
    }

    /// Closes the listening socket: new connections are refused (open ones are closed too),
    /// until [`recover`](Self::recover) listens again on the same port.
    pub fn stop_listening(&self) {
        if let Some(accept) = lock(&self.accept).take() {
            accept.abort();
        }
        self.kick_all_connections();
    }

    /// Stops offering PIPELINING to new sessions (EHLO without it) and counts the commands a
    /// client sends before the reply to the one before ([`unsynchronised`](Self::unsynchronised)).
    pub fn without_pipelining(&self) {
        self.shared.no_pipelining.store(true, Ordering::SeqCst);
    }

    /// Commands (and ends of data) that arrived with more of the client's bytes behind them
    /// while PIPELINING was not offered.
    pub fn unsynchronised(&self) -> usize {
        self.shared.unsynchronised.load(Ordering::SeqCst)
    }

    /// Leaves every RCPT TO unanswered (the transaction stalls after MAIL FROM) until
    /// [`release_rcpt`](Self::release_rcpt) or [`recover`](Self::recover).
    pub fn stall_rcpt(&self) {
        self.shared.stall_rcpt.store(true, Ordering::SeqCst);
    }

    /// Answers the stalled RCPTs and stalls no more.
    pub fn release_rcpt(&self) {
        self.shared.stall_rcpt.store(false, Ordering::SeqCst);
    }

    /// RCPT TO commands held unanswered so far.
    pub fn stalled_rcpts(&self) -> usize {
        self.shared.stalled_rcpts.load(Ordering::SeqCst)
    }

    /// Back to normal: greets, authenticates and listens again.
    pub async fn recover(&self) {
        self.release_rcpt();
        *lock(&self.shared.refuse_greeting) = None;
        self.shared.refuse_auth.store(false, Ordering::SeqCst);
        if lock(&self.accept).is_some() {
            return;
        }
        // The aborted accept task drops its listener shortly after; retry until the port is free.
        let listener = loop {
            match TcpListener::bind(("127.0.0.1", self.port)).await {
                Ok(l) => break l,
                Err(_) => tokio::time::sleep(Duration::from_millis(20)).await,
            }
        };
        let accept = tokio::spawn(accept_loop(listener, Arc::clone(&self.shared)));
        *lock(&self.accept) = Some(accept);
    }

    /// Greetings refused and AUTHs refused on command so far.
    pub fn refusals(&self) -> (usize, usize) {
        (
            self.shared.refused_greetings.load(Ordering::SeqCst),
            self.shared.refused_auths.load(Ordering::SeqCst),
        )
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// Snapshot of every message accepted so far.
    pub fn messages(&self) -> Vec<CapturedMessage> {
        lock(&self.shared.messages).clone()
    }

    /// How many messages' end of data arrived with the next MAIL FROM in the same read.
    pub fn mail_after_data(&self) -> usize {
        self.shared.mail_after_data.load(Ordering::SeqCst)
    }

    pub fn count(&self) -> usize {
        lock(&self.shared.messages).len()
    }

    /// Make RCPT TO for this address answer with `reply` (e.g. "450 4.2.0 mailbox busy",
    /// "550 5.1.1 no such user").
    pub fn reject_recipient(&self, address: &str, reply: &str) {
        lock(&self.shared.rejects).insert(address.to_ascii_lowercase(), reply.to_string());
    }

    /// Drop the TCP connection (without answering) after receiving the DATA of the n-th
    /// message overall (1-based, counted over all connections), to simulate a crash
    /// mid-conversation. That message is not captured.
    pub fn drop_connection_after_data(&self, nth: usize) {
        lock(&self.shared.drop_after).insert(nth);
    }

    /// Require `AUTH PLAIN` with these credentials before MAIL (EHLO then offers AUTH PLAIN).
    pub fn require_auth(&self, username: &str, password: &str) {
        let token = base64(format!("\0{username}\0{password}").as_bytes());
        *lock(&self.shared.auth_plain) = Some(token);
    }

    /// Closes every open connection at once (as a server restarting or timing out idle
    /// clients would), without a word.
    pub fn kick_all_connections(&self) {
        for task in lock(&self.shared.tasks).drain(..) {
            task.abort();
        }
    }

    pub fn connections_accepted(&self) -> usize {
        self.shared.connections.load(Ordering::SeqCst)
    }

    /// How many QUIT commands were received.
    pub fn quits_received(&self) -> usize {
        self.shared.quits.load(Ordering::SeqCst)
    }

    /// Waits until at least `n` messages were accepted; false on timeout.
    pub async fn wait_for_count(&self, n: usize, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        while self.count() < n {
            if Instant::now() >= deadline {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        true
    }
}

impl Drop for TestSmtpServer {
    fn drop(&mut self) {
        if let Some(accept) = lock(&self.accept).take() {
            accept.abort();
        }
        self.kick_all_connections();
    }
}

async fn accept_loop(listener: TcpListener, shared: Arc<Shared>) {
    loop {
        match listener.accept().await {
            Ok((stream, _)) => {
                let _ = stream.set_nodelay(true);
                shared.connections.fetch_add(1, Ordering::SeqCst);
                let task = tokio::spawn(serve(stream, Arc::clone(&shared)));
                let mut tasks = lock(&shared.tasks);
                tasks.retain(|t| !t.is_finished());
                tasks.push(task.abort_handle());
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(5)).await,
        }
    }
}

/// Serves one connection; a returned error just ends it.
async fn serve(stream: TcpStream, shared: Arc<Shared>) -> io::Result<()> {
    let (reader, writer) = stream.into_split();
    let mut reader = BufReader::with_capacity(64 * 1024, reader);
    let mut writer = BufWriter::with_capacity(16 * 1024, writer);
    let mut session = Session::default();
    let mut line = Vec::with_capacity(1024);

    let refusal = lock(&shared.refuse_greeting).clone();
    if let Some(refusal) = refusal {
        shared.refused_greetings.fetch_add(1, Ordering::SeqCst);
        return reply(&mut writer, &refusal).await;
    }
    reply(&mut writer, "220 rewarm-test ESMTP ready").await?;
    loop {
        line.clear();
        if reader.read_until(b'\n', &mut line).await? == 0 {
            return Ok(());
        }
        let no_pipelining = shared.no_pipelining.load(Ordering::SeqCst);
        if no_pipelining && !reader.buffer().is_empty() {
            shared.unsynchronised.fetch_add(1, Ordering::SeqCst);
        }
        let text = String::from_utf8_lossy(&line);
        let text = text.trim_end_matches(['\r', '\n']);
        let (verb, arg) = match text.split_once(' ') {
            Some((v, a)) => (v.to_ascii_uppercase(), a.trim().to_string()),
            None => (text.to_ascii_uppercase(), String::new()),
        };
        match verb.as_str() {
            "EHLO" => {
                session.greeted = true;
                session.reset();
                let mut lines = vec![
                    "rewarm-test greets you".to_string(),
                    "PIPELINING".to_string(),
                    "8BITMIME".to_string(),
                    "SIZE 52428800".to_string(),
                ];
                if no_pipelining {
                    lines.retain(|l| l != "PIPELINING");
                }
                if lock(&shared.auth_plain).is_some() {
                    lines.push("AUTH PLAIN".to_string());
                }
                let last = lines.len() - 1;
                let mut out = String::new();
                for (i, l) in lines.iter().enumerate() {
                    let sep = if i == last { ' ' } else { '-' };
                    out.push_str(&format!("250{sep}{l}\r\n"));
                }
                writer.write_all(out.as_bytes()).await?;
                writer.flush().await?;
            }
            "HELO" => {
                session.greeted = true;
                session.reset();
                reply(&mut writer, "250 rewarm-test").await?;
            }
            "AUTH" => {
                let expected = lock(&shared.auth_plain).clone();
                let mut parts = arg.split_whitespace();
                let mechanism = parts.next().unwrap_or("").to_ascii_uppercase();
                let initial = parts.next().map(str::to_string);
                match expected {
                    None => {
                        reply(&mut writer, "503 5.5.1 Error: authentication not enabled").await?
                    }
                    Some(_) if session.authenticated => {
                        reply(&mut writer, "503 5.5.1 Error: already authenticated").await?
                    }
                    Some(_) if mechanism != "PLAIN" => {
                        reply(&mut writer, "504 5.5.4 Unrecognized authentication type").await?
                    }
                    Some(expected) => {
                        let given = match initial {
                            Some(given) => given,
                            None => {
                                reply(&mut writer, "334 ").await?;
                                line.clear();
                                if reader.read_until(b'\n', &mut line).await? == 0 {
                                    return Ok(());
                                }
                                String::from_utf8_lossy(&line).trim().to_string()
                            }
                        };
                        if shared.refuse_auth.load(Ordering::SeqCst) {
                            shared.refused_auths.fetch_add(1, Ordering::SeqCst);
                            reply(&mut writer, "535 5.7.8 Authentication credentials invalid")
                                .await?;
                        } else if given == expected {
                            session.authenticated = true;
                            reply(&mut writer, "235 2.7.0 Authentication successful").await?;
                        } else {
                            reply(&mut writer, "535 5.7.8 Authentication credentials invalid")
                                .await?;
                        }
                    }
                }
            }
            "MAIL" => {
                let Some(path) = strip_prefix_ci(&arg, "FROM:") else {
                    reply(&mut writer, "501 5.5.4 Syntax: MAIL FROM:<address>").await?;
                    continue;
                };
                if !session.greeted {
                    reply(&mut writer, "503 5.5.1 Error: send HELO/EHLO first").await?;
                } else if session.mail_from.is_some() {
                    reply(&mut writer, "503 5.5.1 Error: nested MAIL command").await?;
                } else if lock(&shared.auth_plain).is_some() && !session.authenticated {
                    reply(&mut writer, "530 5.7.0 Authentication required").await?;
                } else {
                    match angle_address(path) {
                        Some(address) => {
                            session.mail_from = Some(address);
                            reply(&mut writer, "250 2.1.0 Ok").await?;
                        }
                        None => reply(&mut writer, "501 5.1.7 Bad sender address syntax").await?,
                    }
                }
            }
            "RCPT" => {
                let Some(path) = strip_prefix_ci(&arg, "TO:") else {
                    reply(&mut writer, "501 5.5.4 Syntax: RCPT TO:<address>").await?;
                    continue;
                };
                if session.mail_from.is_none() {
                    reply(&mut writer, "503 5.5.1 Error: need MAIL command").await?;
                    continue;
                }
                if shared.stall_rcpt.load(Ordering::SeqCst) {
                    shared.stalled_rcpts.fetch_add(1, Ordering::SeqCst);
                    while shared.stall_rcpt.load(Ordering::SeqCst) {
                        tokio::time::sleep(Duration::from_millis(20)).await;
                    }
                }
                match angle_address(path) {
                    Some(address) if !address.is_empty() => {
                        let rejection = lock(&shared.rejects)
                            .get(&address.to_ascii_lowercase())
                            .cloned();
                        match rejection {
                            Some(answer) => reply(&mut writer, &answer).await?,
                            None => {
                                session.rcpt_to.push(address);
                                reply(&mut writer, "250 2.1.5 Ok").await?;
                            }
                        }
                    }
                    _ => reply(&mut writer, "501 5.1.3 Bad recipient address syntax").await?,
                }
            }
            "DATA" => {
                if session.mail_from.is_none() {
                    reply(&mut writer, "503 5.5.1 Error: need MAIL command").await?;
                    continue;
                }
                if session.rcpt_to.is_empty() {
                    reply(&mut writer, "554 5.5.1 Error: no valid recipients").await?;
                    continue;
                }
                reply(&mut writer, "354 End data with <CR><LF>.<CR><LF>").await?;
                let mut data = Vec::with_capacity(8 * 1024);
                loop {
                    line.clear();
                    if reader.read_until(b'\n', &mut line).await? == 0 {
                        return Ok(()); // the client went away mid-data: nothing accepted
                    }
                    if line == b".\r\n" {
                        if no_pipelining && !reader.buffer().is_empty() {
                            shared.unsynchronised.fetch_add(1, Ordering::SeqCst);
                        }
                        if reader.buffer().len() >= 10
                            && reader.buffer()[..10].eq_ignore_ascii_case(b"MAIL FROM:")
                        {
                            shared.mail_after_data.fetch_add(1, Ordering::SeqCst);
                        }
                        break;
                    }
                    let unstuffed = if line.first() == Some(&b'.') {
                        &line[1..]
                    } else {
                        &line[..]
                    };
                    data.extend_from_slice(unstuffed);
                }
                let nth = shared.data_received.fetch_add(1, Ordering::SeqCst) + 1;
                if lock(&shared.drop_after).contains(&nth) {
                    return Ok(()); // hang up without answering
                }
                let message = CapturedMessage {
                    mail_from: session.mail_from.take().unwrap_or_default(),
                    rcpt_to: std::mem::take(&mut session.rcpt_to),
                    data,
                    received_at: Instant::now(),
                };
                lock(&shared.messages).push(message);
                reply(&mut writer, &format!("250 2.0.0 Ok: queued as {nth}")).await?;
            }
            "RSET" => {
                session.reset();
                reply(&mut writer, "250 2.0.0 Ok").await?;
            }
            "NOOP" => reply(&mut writer, "250 2.0.0 Ok").await?,
            "QUIT" => {
                shared.quits.fetch_add(1, Ordering::SeqCst);
                reply(&mut writer, "221 2.0.0 Bye").await?;
                return Ok(());
            }
            _ => reply(&mut writer, "500 5.5.2 Error: command not recognized").await?,
        }
    }
}

#[derive(Default)]
struct Session {
    greeted: bool,
    authenticated: bool,
    mail_from: Option<String>,
    rcpt_to: Vec<String>,
}

impl Session {
    fn reset(&mut self) {
        self.mail_from = None;
        self.rcpt_to.clear();
    }
}

async fn reply<W: AsyncWriteExt + Unpin>(writer: &mut W, line: &str) -> io::Result<()> {
    writer.write_all(line.as_bytes()).await?;
    writer.write_all(b"\r\n").await?;
    writer.flush().await
}

fn strip_prefix_ci<'a>(s: &'a str, prefix: &str) -> Option<&'a str> {
    let head = s.get(..prefix.len())?;
    head.eq_ignore_ascii_case(prefix)
        .then(|| s[prefix.len()..].trim_start())
}

/// "<a@b> BODY=8BITMIME" → "a@b"; "<>" → "".
fn angle_address(path: &str) -> Option<String> {
    let rest = path.trim().strip_prefix('<')?;
    let end = rest.find('>')?;
    Some(rest[..end].to_string())
}

fn base64(input: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(input.len().div_ceil(3) * 4);
    for chunk in input.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        out.push(ALPHABET[(n >> 18) as usize & 63] as char);
        out.push(ALPHABET[(n >> 12) as usize & 63] as char);
        out.push(if chunk.len() > 1 {
            ALPHABET[(n >> 6) as usize & 63] as char
        } else {
            '='
        });
        out.push(if chunk.len() > 2 {
            ALPHABET[n as usize & 63] as char
        } else {
            '='
        });
    }
    out
}
