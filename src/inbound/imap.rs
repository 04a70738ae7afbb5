//! The IMAP reply-mailbox poller: connects (implicit TLS, or plain TCP for loopback tests),
//! logs in, selects the reply mailbox and hands every message it has not handled yet to the
//! inbound path, in UID order. Over TLS the server certificate must chain to the built-in
//! Mozilla roots or to a CA from `inbound.imap.ca_file`.
//!
//! Nothing is read twice or skipped across restarts:
//! - the mailbox's UIDVALIDITY and the last handled UID are kept in the store
//!   (`imap:{host}:{mailbox}:uidvalidity` and `imap:{host}:{mailbox}:last_uid`);
//! - `last_uid` is advanced (and persisted) only after the handler returned `Ok` for that
//!   message, so a crash or a handler error leaves the message to the next poll;
//! - when UIDVALIDITY changed (the mailbox was recreated or rebuilt), the poller logs a warning
//!   and starts over from UID 1 — the dedupe keys the handler gets make re-reading harmless;
//! - a handled message is then moved to `processed_mailbox` (UID MOVE, or COPY + `\Deleted` +
//!   EXPUNGE where MOVE is missing) or, without one, flagged `\Seen` and `$rewarm`. Messages that
//!   already carry `$rewarm` are never handed out again, even after a UIDVALIDITY change.
//!
//! Messages are fetched with `BODY.PEEK[]` (fetching does not mark them read) in batches of
//! [`BATCH_SIZE`], so a large backlog is not held in memory at once.

use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, anyhow};
use async_imap::types::{Flag, Mailbox};
use async_imap::{Client, Session};
use futures::TryStreamExt;
use tokio::net::TcpStream;

use crate::config::ImapSettings;
use crate::secret::Secret;
use crate::store::Store;

/// How many messages one `UID FETCH` asks for.
pub const BATCH_SIZE: usize = 20;

/// The keyword a handled message gets when there is no `processed_mailbox`.
pub const PROCESSED_KEYWORD: &str = "$rewarm";

/// Upper bound on each network step (connect, TLS, login, one IMAP command).
const IO_TIMEOUT: Duration = Duration::from_secs(60);

/// Polls one IMAP mailbox; see the module docs.
pub struct ImapPoller {
    settings: ImapSettings,
    password: Secret,
}

impl std::fmt::Debug for ImapPoller {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ImapPoller")
            .field("host", &self.settings.host)
            .field("port", &self.settings.port)
            .field("tls", &self.settings.tls)
            .field("ca_file", &self.settings.ca_file)
            .field("username", &self.settings.username)
            .field("mailbox", &self.settings.mailbox)
            .field("password", &self.password)
            .finish()
    }
}

/// What an IMAP session runs over: plain TCP or TLS.
trait ImapStream:
    tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + std::fmt::Debug + Send
{
}

impl<T> ImapStream for T where
    T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + std::fmt::Debug + Send
{
}

/// Runs one network step with [`IO_TIMEOUT`].
async fn io<T, E>(what: &str, fut: impl Future<Output = Result<T, E>>) -> anyhow::Result<T>
where
    E: std::error::Error + Send + Sync + 'static,
{
    match tokio::time::timeout(IO_TIMEOUT, fut).await {
        Ok(result) => result.with_context(|| format!("IMAP {what}")),
        Err(_) => Err(anyhow!("IMAP {what}: no answer within {IO_TIMEOUT:?}")),
    }
}

impl ImapPoller {
    pub fn new(settings: ImapSettings, password: Secret) -> Self {
        Self { settings, password }
    }

    pub fn settings(&self) -> &ImapSettings {
        &self.settings
    }

    /// The store key for this mailbox's `what` (`uidvalidity` or `last_uid`).
    pub fn state_key(&self, what: &str) -> String {
        format!(
            "imap:{}:{}:{what}",
            self.settings.host, self.settings.mailbox
        )
    }

    /// The dedupe key handed to the handler with a message.
    pub fn dedupe_key(&self, uidvalidity: u32, uid: u32) -> String {
        format!(
            "imap:{}:{}:{uidvalidity}:{uid}",
            self.settings.host, self.settings.mailbox
        )
    }

    /// One poll: connect, log in, select the mailbox, hand each new message to `handle`
    /// (raw RFC 5322 bytes and a dedupe key) in UID order, persist the last handled UID after
    /// each `Ok`, then move or flag the message; log out.
    ///
    /// An `Err` from `handle` stops the poll at that message (it is logged as a warning and
    /// retried by the next poll; nothing after it is skipped) and the poll returns `Ok` with the
    /// number handled before it. Connection, login, IMAP and store errors return `Err`.
    /// Returns how many messages `handle` accepted.
    pub async fn poll_once<S: Store, F, Fut>(
        &self,
        store: &S,
        mut handle: F,
    ) -> anyhow::Result<usize>
    where
        F: FnMut(Vec<u8>, String) -> Fut,
        Fut: Future<Output = anyhow::Result<()>>,
    {
        let s = &self.settings;
        let tcp = io("connect", TcpStream::connect((s.host.as_str(), s.port)))
            .await
            .with_context(|| format!("connecting to {}:{}", s.host, s.port))?;
        let _ = tcp.set_nodelay(true);
        if s.tls {
            let connector = tokio_rustls::TlsConnector::from(Arc::new(self.tls_config()?));
            let name = rustls::pki_types::ServerName::try_from(s.host.clone())
                .with_context(|| format!("`{}` is not a valid TLS server name", s.host))?;
            let stream = io("TLS handshake", connector.connect(name, tcp))
                .await
                .map_err(|e| self.explain_untrusted(e))
                .with_context(|| format!("TLS to {}:{}", s.host, s.port))?;
            self.session(stream, store, &mut handle).await
        } else {
            self.session(tcp, store, &mut handle).await
        }
    }

    /// The TLS client config: the built-in Mozilla roots plus the certificates of `ca_file`.
    fn tls_config(&self) -> anyhow::Result<rustls::ClientConfig> {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let mut roots = rustls::RootCertStore::empty();
        roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
        if let Some(ca) = &self.settings.ca_file {
            for cert in ca.certs() {
                roots.add(cert.clone()).with_context(|| {
                    format!(
                        "inbound.imap.ca_file `{}`: a certificate is not a usable trust anchor",
                        ca.path().display()
                    )
                })?;
            }
        }
        Ok(rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .context("TLS protocol versions")?
        .with_root_certificates(roots)
        .with_no_client_auth())
    }

    /// Says in words what a rejected server certificate means for the operator; other
    /// handshake errors pass through unchanged.
    fn explain_untrusted(&self, e: anyhow::Error) -> anyhow::Error {
        let rejected = e
            .chain()
            .filter_map(|c| c.downcast_ref::<std::io::Error>())
            .filter_map(|io| io.get_ref()?.downcast_ref::<rustls::Error>())
            .any(|r| matches!(r, rustls::Error::InvalidCertificate(_)));
        if !rejected {
            return e;
        }
        let trusted = match &self.settings.ca_file {
            Some(ca) => format!(
                "one of the built-in Mozilla roots or a CA in inbound.imap.ca_file `{}`",
                ca.path().display()
            ),
            None => "one of the built-in Mozilla roots (set inbound.imap.ca_file for a private CA)"
                .into(),
        };
        e.context(format!(
            "the server's certificate is not trusted: it must be valid for `{}`, current, and signed by {trusted}",
            self.settings.host
        ))
    }

    async fn session<T, S, F, Fut>(
        &self,
        stream: T,
        store: &S,
        handle: &mut F,
    ) -> anyhow::Result<usize>
    where
        T: ImapStream,
        S: Store,
        F: FnMut(Vec<u8>, String) -> Fut,
        Fut: Future<Output = anyhow::Result<()>>,
    {
        let mut client = Client::new(stream);
        io("greeting", client.read_response())
            .await?
            .ok_or_else(|| anyhow!("IMAP server closed the connection before its greeting"))?;
        let login = tokio::time::timeout(
            IO_TIMEOUT,
            client.login(&self.settings.username, self.password.expose()),
        )
        .await
        .map_err(|_| anyhow!("IMAP login: no answer within {IO_TIMEOUT:?}"))?;
        let mut session = login.map_err(|(e, _client)| {
            anyhow::Error::new(e).context(format!(
                "IMAP login as `{}` on {}",
                self.settings.username, self.settings.host
            ))
        })?;
        let result = self.poll_session(&mut session, store, handle).await;
        if let Err(e) = io("logout", session.logout()).await {
            tracing::debug!(error = %format!("{e:#}"), "IMAP logout failed");
        }
        result
    }

    async fn poll_session<T, S, F, Fut>(
        &self,
        session: &mut Session<T>,
        store: &S,
        handle: &mut F,
    ) -> anyhow::Result<usize>
    where
        T: ImapStream,
        S: Store,
        F: FnMut(Vec<u8>, String) -> Fut,
        Fut: Future<Output = anyhow::Result<()>>,
    {
        let s = &self.settings;
        let mailbox = io("SELECT", session.select(&s.mailbox))
            .await
            .with_context(|| format!("selecting mailbox `{}`", s.mailbox))?;
        let uidvalidity = mailbox
            .uid_validity
            .ok_or_else(|| anyhow!("mailbox `{}` has no UIDVALIDITY", s.mailbox))?;
        let last_uid_key = self.state_key("last_uid");
        let mut last_uid = self.resume_after(store, uidvalidity).await?;
        // Decide how handled messages are marked before handling any.
        let mark = self.mark(session, &mailbox).await?;

        let query = format!(
            "UID {}:* NOT KEYWORD {PROCESSED_KEYWORD}",
            last_uid.saturating_add(1)
        );
        let mut uids: Vec<u32> = io("UID SEARCH", session.uid_search(&query))
            .await?
            .into_iter()
            .filter(|&uid| uid > last_uid) // `n:*` also matches the highest UID when it is < n
            .collect();
        uids.sort_unstable();
        if !uids.is_empty() {
            tracing::debug!(mailbox = %s.mailbox, count = uids.len(), "IMAP: new messages");
        }

        let mut handled = 0usize;
        for batch in uids.chunks(BATCH_SIZE) {
            let mut bodies = fetch(session, batch).await?;
            for &uid in batch {
                let Some(raw) = bodies.remove(&uid) else {
                    // Expunged by someone else between SEARCH and FETCH: nothing left to read.
                    tracing::debug!(uid, "IMAP message vanished before it was fetched");
                    continue;
                };
                let key = self.dedupe_key(uidvalidity, uid);
                if let Err(e) = handle(raw, key).await {
                    tracing::warn!(
                        mailbox = %s.mailbox,
                        uid,
                        error = %format!("{e:#}"),
                        "handling an IMAP message failed; it is retried on the next poll"
                    );
                    return Ok(handled);
                }
                handled += 1;
                last_uid = uid;
                store.kv_set(&last_uid_key, &last_uid.to_string()).await?;
                mark.apply(session, uid).await?;
            }
        }
        Ok(handled)
    }

    /// The last UID handled in this mailbox, 0 to read it from the start: when its
    /// UIDVALIDITY is not the one stored, the stored UID means nothing and is reset.
    async fn resume_after<S: Store>(&self, store: &S, uidvalidity: u32) -> anyhow::Result<u32> {
        let s = &self.settings;
        let validity_key = self.state_key("uidvalidity");
        let last_uid_key = self.state_key("last_uid");
        let stored_validity = store
            .kv_get(&validity_key)
            .await?
            .and_then(|v| v.trim().parse::<u32>().ok());
        if stored_validity == Some(uidvalidity) {
            return Ok(store
                .kv_get(&last_uid_key)
                .await?
                .and_then(|v| v.trim().parse::<u32>().ok())
                .unwrap_or(0));
        }
        if let Some(old) = stored_validity {
            tracing::warn!(
                host = %s.host,
                mailbox = %s.mailbox,
                old_uidvalidity = old,
                new_uidvalidity = uidvalidity,
                "IMAP UIDVALIDITY changed: reading the mailbox again from UID 1"
            );
        }
        // last_uid first: a crash in between leaves the old validity, which forces this again.
        store.kv_set(&last_uid_key, "0").await?;
        store
            .kv_set(&validity_key, &uidvalidity.to_string())
            .await?;
        Ok(0)
    }

    /// How handled messages are marked: moved to `processed_mailbox` (created if missing),
    /// else flagged, with the `$rewarm` keyword when the selected mailbox accepts keywords.
    async fn mark<T>(&self, session: &mut Session<T>, mailbox: &Mailbox) -> anyhow::Result<Mark>
    where
        T: ImapStream,
    {
        let caps = io("CAPABILITY", session.capabilities()).await?;
        let Some(target) = &self.settings.processed_mailbox else {
            return Ok(Mark::Flag {
                keyword: mailbox.permanent_flags.contains(&Flag::MayCreate)
                    || mailbox
                        .permanent_flags
                        .iter()
                        .any(|f| matches!(f, Flag::Custom(k) if k == PROCESSED_KEYWORD)),
            });
        };
        // Create it if missing; "already exists" is the common answer.
        if let Err(e) = io("CREATE", session.create(target)).await {
            tracing::debug!(mailbox = %target, error = %format!("{e:#}"), "IMAP CREATE");
        }
        let exists = io("LIST", async {
            let names: Vec<_> = session
                .list(None, Some(target))
                .await?
                .try_collect()
                .await?;
            Ok::<_, async_imap::error::Error>(!names.is_empty())
        })
        .await?;
        if !exists {
            anyhow::bail!("processed_mailbox `{target}` does not exist and cannot be created");
        }
        Ok(Mark::Move {
            target: target.clone(),
            has_move: caps.has_str("MOVE"),
            has_uidplus: caps.has_str("UIDPLUS"),
        })
    }
}

/// The raw messages of `uids` (`BODY.PEEK[]`: reading does not mark them `\Seen`), by UID.
async fn fetch<T>(session: &mut Session<T>, uids: &[u32]) -> anyhow::Result<HashMap<u32, Vec<u8>>>
where
    T: ImapStream,
{
    let set = uids
        .iter()
        .map(u32::to_string)
        .collect::<Vec<_>>()
        .join(",");
    io("UID FETCH", async {
        let fetches: Vec<_> = session
            .uid_fetch(&set, "(UID BODY.PEEK[])")
            .await?
            .try_collect()
            .await?;
        Ok::<_, async_imap::error::Error>(
            fetches
                .iter()
                .filter_map(|f| Some((f.uid?, f.body()?.to_vec())))
                .collect(),
        )
    })
    .await
}

/// What happens to a handled message.
enum Mark {
    Move {
        target: String,
        has_move: bool,
        has_uidplus: bool,
    },
    /// `\Seen`, plus `$rewarm` when the mailbox accepts keywords.
    Flag { keyword: bool },
}

impl Mark {
    async fn apply<T>(&self, session: &mut Session<T>, uid: u32) -> anyhow::Result<()>
    where
        T: ImapStream,
    {
        let set = uid.to_string();
        match self {
            Mark::Move {
                target,
                has_move: true,
                ..
            } => io("UID MOVE", session.uid_mv(&set, target)).await,
            Mark::Move {
                target,
                has_move: false,
                has_uidplus,
            } => {
                io("UID COPY", session.uid_copy(&set, target)).await?;
                io("UID STORE", async {
                    session
                        .uid_store(&set, "+FLAGS.SILENT (\\Deleted)")
                        .await?
                        .try_collect::<Vec<_>>()
                        .await
                })
                .await?;
                if *has_uidplus {
                    io("UID EXPUNGE", async {
                        session
                            .uid_expunge(&set)
                            .await?
                            .try_collect::<Vec<_>>()
                            .await
                    })
                    .await?;
                } else {
                    io("EXPUNGE", async {
                        session.expunge().await?.try_collect::<Vec<_>>().await
                    })
                    .await?;
                }
                Ok(())
            }
            Mark::Flag { keyword } => {
                let flags = if *keyword {
                    format!("+FLAGS.SILENT (\\Seen {PROCESSED_KEYWORD})")
                } else {
                    "+FLAGS.SILENT (\\Seen)".to_string()
                };
                io("UID STORE", async {
                    session
                        .uid_store(&set, &flags)
                        .await?
                        .try_collect::<Vec<_>>()
                        .await
                })
                .await?;
                Ok(())
            }
        }
    }
}
