//! What the HTTP API transports (Postmark, SendGrid, Mailgun) share: one reqwest client setup
//! (ring as the only rustls crypto provider), the `Api` endpoint each posts to, how a
//! failed request or a refusing answer becomes a typed [`SendError`] (the HTTP status and
//! `Retry-After` as fields), and bounded concurrency.
//!
//! # What a failed HTTP exchange means
//!
//! | what happened                                        | outcome                          |
//! |------------------------------------------------------|----------------------------------|
//! | the request could not be built                       | `Transient` (nothing left)       |
//! | DNS, TCP connect or TLS handshake failed             | `Transient` (nothing left)       |
//! | the connection broke or timed out once the request was on its way, or the answer was unreadable | `Unknown` (never retried) |
//! | an HTTP status came back                             | the provider's mapping decides; `standard_outcome` holds what they share |
//!
//! A message the provider took comes back with the id the provider gave it ([`Accepted`]):
//! Postmark's `MessageID`, SendGrid's `X-Message-Id` header, Mailgun's `id`. Dispatch stores it
//! on the delivery, so the provider's events (bounces, complaints) find their delivery. Each
//! message also carries our own signed reference in the provider's custom fields
//! ([`tracking_args`]), for events that come without the provider's id.
//!
//! How long a provider asks us to wait is read from `Retry-After` (seconds) or, failing that,
//! SendGrid's `X-RateLimit-Reset` (epoch seconds, measured against the answer's own `Date`
//! so that neither clock skew nor our clock matters).
//!
//! Redirects are not followed: a provider's send endpoint never redirects, and following one
//! with a POST could send the message somewhere else.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::sync::Once;
use std::time::Duration;

use futures::StreamExt;
use reqwest::StatusCode;

use crate::transport::{OutgoingEmail, ProviderIds, SendError, SendOutcome, TransportFault};

/// A message the provider took, with the id it gave it (when its answer said).
pub(crate) type Accepted = Result<Option<String>, SendError>;

/// The custom field (Postmark `Metadata`, SendGrid `custom_args`, Mailgun `v:` variable)
/// carrying the delivery id, for people reading the provider's dashboard.
pub const DELIVERY_ID_ARG: &str = "rewarm_delivery_id";
/// The custom field carrying our signed reference to the delivery: the token of its
/// Message-ID (a signed `Reply` token naming the delivery). Events are matched by this, never
/// by the bare delivery id, which anyone could write.
pub const TOKEN_ARG: &str = "rewarm_token";

/// The custom fields every API message carries: the delivery id and, when the Message-ID is
/// ours (`TOKEN@domain`), its signed token.
pub(crate) fn tracking_args(email: &OutgoingEmail) -> BTreeMap<&'static str, String> {
    let mut args = BTreeMap::from([(DELIVERY_ID_ARG, email.delivery_id.to_string())]);
    if let Some((token, _)) = email.message_id.trim_matches(['<', '>']).split_once('@')
        && !token.is_empty()
    {
        args.insert(TOKEN_ARG, token.to_string());
    }
    args
}

/// Words for people in the text of a recipient refusal. Suppression does not read them: it
/// reads [`SendError::is_hard_bounce`], which the field set with them decides.
const HARD_BOUNCE_NOTE: &str = "[hard bounce]";

/// Installs ring as the process-wide rustls crypto provider (once). reqwest is built with
/// `rustls-no-provider`, so a client cannot be built before a provider is installed; if the
/// application already installed one, that one stays.
pub fn ensure_crypto_provider() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let _ = rustls::crypto::ring::default_provider().install_default();
    });
}

/// Why an API transport could not be set up (bad base URL, TLS setup failure).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{provider}: {message}")]
pub struct SetupError {
    pub provider: &'static str,
    pub message: String,
}

impl SetupError {
    pub(crate) fn new(provider: &'static str, message: impl Into<String>) -> SetupError {
        SetupError {
            provider,
            message: message.into(),
        }
    }
}

/// One provider's API: its name (the start of every error text), its base URL and the HTTP
/// client that posts to it.
pub(crate) struct Api {
    pub provider: &'static str,
    base_url: String,
    client: reqwest::Client,
}

impl fmt::Debug for Api {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Api")
            .field("provider", &self.provider)
            .field("base_url", &self.base_url)
            .finish_non_exhaustive()
    }
}

impl Api {
    /// Checks the base URL and builds the client; `timeout` bounds one call.
    pub fn new(
        provider: &'static str,
        base_url: &str,
        timeout: Duration,
    ) -> Result<Api, SetupError> {
        Ok(Api {
            provider,
            base_url: checked_base_url(provider, base_url)?,
            client: build_client(provider, timeout)?,
        })
    }

    /// A POST to `path` (which starts with `/`) under the base URL.
    pub fn post(&self, path: &str) -> reqwest::RequestBuilder {
        self.client.post(format!("{}{path}", self.base_url))
    }

    /// Sends a request and reads the answer; a failure is classified as in the module docs.
    pub async fn execute(&self, request: reqwest::RequestBuilder) -> Result<Reply, SendError> {
        let response = match request.send().await {
            Ok(r) => r,
            Err(e) => return Err(request_error(self.provider, &e)),
        };
        let status = response.status();
        let headers = response.headers().clone();
        let retry_after = retry_after_of(&headers);
        let body = response.text().await.map_err(|e| error_chain(&e));
        Ok(Reply {
            status,
            body,
            retry_after,
            headers,
        })
    }

    /// Sends each message with its own call, `concurrency` at once; one outcome per message,
    /// in the batch's order. For the providers that take one message per call.
    pub async fn send_each<F, Fut>(
        &self,
        batch: Vec<OutgoingEmail>,
        concurrency: usize,
        send: F,
    ) -> (Vec<SendOutcome>, ProviderIds)
    where
        F: Fn(OutgoingEmail) -> Fut,
        Fut: Future<Output = Accepted>,
    {
        let accepted = run_bounded(batch, concurrency, |email| {
            let id = email.delivery_id;
            let call = send(email);
            async move {
                let outcome = call.await;
                self.log_failure(id, &outcome);
                vec![(id, outcome)]
            }
        })
        .await;
        split_accepted(accepted)
    }

    pub fn log_failure<T>(&self, id: i64, outcome: &Result<T, SendError>) {
        if let Err(e) = outcome {
            tracing::debug!(provider = self.provider, delivery_id = id, error = %e, "The provider did not take the message");
        }
    }
}

/// The HTTP client every API transport uses: `timeout` bounds a whole exchange, connecting
/// gets at most half of it, and at most 10 s (so a connect that times out is reported as
/// such — `Transient` — rather than as a whole exchange that timed out, which is `Unknown`).
fn build_client(provider: &'static str, timeout: Duration) -> Result<reqwest::Client, SetupError> {
    ensure_crypto_provider();
    let timeout = timeout.max(Duration::from_millis(100));
    reqwest::Client::builder()
        .user_agent(concat!("rewarm/", env!("CARGO_PKG_VERSION")))
        .timeout(timeout)
        .connect_timeout((timeout / 2).min(Duration::from_secs(10)))
        .redirect(reqwest::redirect::Policy::none())
        .pool_idle_timeout(Duration::from_secs(30))
        .tcp_nodelay(true)
        .build()
        .map_err(|e| {
            SetupError::new(
                provider,
                format!("cannot build the HTTP client: {}", error_chain(&e)),
            )
        })
}

/// Checks and normalises a configured base URL (no trailing slash).
fn checked_base_url(provider: &'static str, raw: &str) -> Result<String, SetupError> {
    let trimmed = raw.trim().trim_end_matches('/');
    let url = reqwest::Url::parse(trimmed)
        .map_err(|e| SetupError::new(provider, format!("base URL `{raw}` is not a URL: {e}")))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(SetupError::new(
            provider,
            format!(
                "base URL `{raw}` must start with https:// (or http:// for a local test server)"
            ),
        ));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(SetupError::new(
            provider,
            format!("base URL `{raw}` must not have a query or fragment"),
        ));
    }
    Ok(trimmed.to_string())
}

/// The outcomes of a batch and the ids the provider gave the messages it took.
pub(crate) fn split_accepted(accepted: Vec<(i64, Accepted)>) -> (Vec<SendOutcome>, ProviderIds) {
    let mut ids = HashMap::new();
    let outcomes = accepted
        .into_iter()
        .map(|(delivery, outcome)| {
            let outcome = outcome.map(|provider_id| {
                if let Some(p) = provider_id.filter(|p| !p.trim().is_empty()) {
                    ids.insert(delivery, p.trim().to_string());
                }
            });
            (delivery, outcome)
        })
        .collect();
    (outcomes, ids)
}

/// How long the answer asks us to wait, in seconds: `Retry-After` (seconds), else
/// `X-RateLimit-Reset` (epoch seconds, SendGrid) minus the answer's `Date` (at least 1 s).
pub(crate) fn retry_after_of(headers: &reqwest::header::HeaderMap) -> Option<u64> {
    let text = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    if let Some(secs) = text("retry-after").and_then(|v| v.trim().parse::<u64>().ok()) {
        return Some(secs);
    }
    let reset = text("x-ratelimit-reset")?.trim().parse::<i64>().ok()?;
    let date = chrono::DateTime::parse_from_rfc2822(text("date")?.trim()).ok()?;
    Some((reset - date.timestamp()).clamp(1, 24 * 60 * 60) as u64)
}

/// An HTTP answer from a provider.
#[derive(Debug)]
pub(crate) struct Reply {
    pub status: StatusCode,
    /// The body, or why it could not be read.
    pub body: Result<String, String>,
    /// How long the provider asked us to wait, in seconds ([`retry_after_of`]).
    pub retry_after: Option<u64>,
    pub headers: reqwest::header::HeaderMap,
}

impl Reply {
    pub fn body_text(&self) -> &str {
        match &self.body {
            Ok(b) => b.as_str(),
            Err(_) => "",
        }
    }

    /// The body shortened for an error message.
    pub fn body_excerpt(&self) -> String {
        match &self.body {
            Ok(b) => excerpt(b, 300),
            Err(e) => format!("(body unreadable: {e})"),
        }
    }

    /// `error` with this answer's status and `Retry-After` as its fields.
    fn attach(&self, error: SendError) -> SendError {
        error.with_http_status(
            self.status.as_u16(),
            self.retry_after.map(Duration::from_secs),
        )
    }
}

#[cfg(test)]
impl Reply {
    /// An answer as a provider gives it, for the providers' unit tests.
    pub fn canned(status: u16, body: &str) -> Reply {
        Reply {
            status: StatusCode::from_u16(status).expect("a valid HTTP status in a test"),
            body: Ok(body.to_string()),
            retry_after: None,
            headers: reqwest::header::HeaderMap::new(),
        }
    }
}

/// A reqwest error as a send outcome: nothing left if the request was never built or the
/// connection never opened; otherwise the provider may have the message.
fn request_error(provider: &'static str, e: &reqwest::Error) -> SendError {
    let detail = error_chain(e);
    if e.is_builder() {
        SendError::transient(format!("{provider}: cannot build the request: {detail}"))
    } else if e.is_connect() {
        SendError::transient(format!("{provider}: cannot connect: {detail}"))
            .with_transport_fault(io_fault(e))
    } else {
        SendError::unknown(format!(
            "{provider}: the exchange broke off after the request was sent ({detail}); the provider may have accepted the message"
        ))
    }
}

/// A connection failure's fault: out of file descriptors, or the provider unreachable.
fn io_fault(e: &reqwest::Error) -> TransportFault {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(s) = source {
        if let Some(io) = s.downcast_ref::<std::io::Error>() {
            return TransportFault::of_io(io);
        }
        source = s.source();
    }
    TransportFault::Unreachable
}

/// What an answer means when the provider's own rules (its 400s, its error codes) left it
/// open: 2xx `Ok`; 429 and 5xx try later; anything else is a problem on our side, explained
/// by the `hints` entry for its status, or as an unexpected answer.
pub(crate) fn standard_outcome(
    provider: &'static str,
    reply: &Reply,
    hints: &[(u16, &str)],
) -> Result<(), SendError> {
    let status = reply.status.as_u16();
    match status {
        200..=299 => Ok(()),
        429 | 500..=599 => Err(try_later(provider, reply)),
        _ => {
            let hint = hints
                .iter()
                .find(|(s, _)| *s == status)
                .map_or("unexpected answer (check the base URL)", |(_, h)| *h);
            Err(config_problem(provider, reply, hint))
        }
    }
}

/// A Transient error for a status that says "slow down" (429) or "try later" (5xx), with the
/// status and `Retry-After` as fields (what [`throttle_of`] reads).
///
/// [`throttle_of`]: crate::transport::limits::throttle_of
pub(crate) fn try_later(provider: &'static str, reply: &Reply) -> SendError {
    let code = reply.status.as_u16();
    let (what, fault) = if code == 429 {
        (
            "rate limited by the provider",
            TransportFault::ProviderThrottled,
        )
    } else {
        ("provider unavailable", TransportFault::ProviderError)
    };
    let after = reply
        .retry_after
        .map(|s| format!(" (retry after {s}s)"))
        .unwrap_or_default();
    reply.attach(
        SendError::transient(format!(
            "{provider}: HTTP {code} {what}{after}: {}",
            reply.body_excerpt()
        ))
        .with_transport_fault(fault),
    )
}

/// A Transient error for a problem on our side (bad key, unverified sender, suspended
/// account, sandbox domain, wrong base URL): every message would fail the same way, so it is a
/// [`TransportFault::Account`] — the breaker pauses the transport, no delivery loses an
/// attempt, and the retries go once the configuration is fixed. The lead is not to blame.
pub(crate) fn config_problem(provider: &'static str, reply: &Reply, hint: &str) -> SendError {
    reply.attach(account_problem(format!(
        "{provider}: HTTP {} — configuration or account problem, not the recipient's: {hint}: {}",
        reply.status.as_u16(),
        reply.body_excerpt()
    )))
}

/// A Transient error that pauses the transport: our account, key or sender identity.
pub(crate) fn account_problem(message: String) -> SendError {
    SendError::transient(message).with_transport_fault(TransportFault::Account)
}

/// Whom a provider's "bad request" (HTTP 400) is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Blame {
    /// The recipient address: a hard bounce.
    Recipient,
    /// Our sender (From, Reply-To): our configuration, `Transient`.
    Sender,
    /// Something else in this message: `Permanent`, the address is not to blame.
    Message,
}

/// The error for an HTTP 400 about `blame`, `detail` saying what the provider said.
pub(crate) fn bad_request(
    provider: &'static str,
    reply: &Reply,
    blame: Blame,
    detail: &str,
) -> SendError {
    let status = reply.status.as_u16();
    reply.attach(match blame {
        Blame::Recipient => recipient_refused(format!(
            "{provider}: HTTP {status} recipient refused"
        ), detail),
        Blame::Sender => account_problem(format!(
            "{provider}: HTTP {status} — configuration problem (sender), not the recipient's: {detail}"
        )),
        Blame::Message => {
            SendError::permanent(format!("{provider}: HTTP {status} message refused: {detail}"))
        }
    })
}

/// A Permanent refusal of the recipient address itself (a hard bounce): `what` says which
/// answer, `detail` what the provider said.
pub(crate) fn recipient_refused(what: String, detail: &str) -> SendError {
    SendError::permanent(format!("{what} {HARD_BOUNCE_NOTE}: {detail}")).with_recipient_refused()
}

/// HTTP 413: this message is too large for the provider, for good.
pub(crate) fn too_large(provider: &'static str, reply: &Reply) -> SendError {
    reply.attach(SendError::permanent(format!(
        "{provider}: HTTP 413 message too large: {}",
        reply.body_excerpt()
    )))
}

/// The error and its sources on one line.
pub(crate) fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let text = s.to_string();
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        source = s.source();
    }
    out
}

pub(crate) fn excerpt(s: &str, max: usize) -> String {
    let s = s.trim();
    if s.chars().count() <= max {
        return s.to_string();
    }
    let cut: String = s.chars().take(max).collect();
    format!("{cut}…")
}

/// Runs `send` over `items` with at most `concurrency` at once; the outcomes come back in the
/// order of `items` (each call returns the outcomes of its item).
pub(crate) async fn run_bounded<T, O, F, Fut>(items: Vec<T>, concurrency: usize, send: F) -> Vec<O>
where
    F: Fn(T) -> Fut,
    Fut: Future<Output = Vec<O>>,
{
    let mut indexed: Vec<(usize, Vec<O>)> =
        futures::stream::iter(items.into_iter().enumerate().map(|(i, item)| {
            let fut = send(item);
            async move { (i, fut.await) }
        }))
        .buffer_unordered(concurrency.max(1))
        .collect()
        .await;
    indexed.sort_by_key(|(i, _)| *i);
    indexed.into_iter().flat_map(|(_, o)| o).collect()
}

/// Splits items into chunks of at most `max_count` items and at most `max_bytes` (an item
/// larger than `max_bytes` gets a chunk of its own), keeping their order.
pub(crate) fn chunks<T>(
    items: Vec<T>,
    max_count: usize,
    max_bytes: usize,
    size_of: impl Fn(&T) -> usize,
) -> Vec<Vec<T>> {
    let max_count = max_count.max(1);
    let mut out = Vec::new();
    let mut current = Vec::new();
    let mut bytes = 0usize;
    for item in items {
        let size = size_of(&item);
        if !current.is_empty() && (current.len() >= max_count || bytes + size > max_bytes) {
            out.push(std::mem::take(&mut current));
            bytes = 0;
        }
        bytes += size;
        current.push(item);
    }
    if !current.is_empty() {
        out.push(current);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_reads_seconds_else_the_rate_limit_reset_against_the_answers_date() {
        let headers = |pairs: &[(&'static str, &str)]| {
            let mut h = reqwest::header::HeaderMap::new();
            for (k, v) in pairs {
                h.insert(*k, v.parse().unwrap());
            }
            h
        };
        assert_eq!(retry_after_of(&headers(&[("retry-after", "7")])), Some(7));
        let date = "Mon, 02 Mar 2026 10:00:00 GMT";
        let reset = chrono::DateTime::parse_from_rfc2822(date)
            .unwrap()
            .timestamp()
            + 42;
        let h = headers(&[("x-ratelimit-reset", &reset.to_string()), ("date", date)]);
        assert_eq!(retry_after_of(&h), Some(42));
        // A reset already past still waits a second; no date, no guess.
        let h = headers(&[("x-ratelimit-reset", "1000"), ("date", date)]);
        assert_eq!(retry_after_of(&h), Some(1));
        assert_eq!(
            retry_after_of(&headers(&[("x-ratelimit-reset", "1000")])),
            None
        );
        assert_eq!(retry_after_of(&headers(&[])), None);
    }

    #[test]
    fn tracking_args_carry_the_signed_token_of_our_message_id() {
        let mut email = OutgoingEmail {
            delivery_id: 9,
            envelope_from: String::new(),
            envelope_to: String::new(),
            message_id: "k1.SEALED.TAG@mail.acme.test".into(),
            bytes: Vec::new(),
        };
        let args = tracking_args(&email);
        assert_eq!(args[DELIVERY_ID_ARG], "9");
        assert_eq!(args[TOKEN_ARG], "k1.SEALED.TAG");
        email.message_id = "no-at-sign".into();
        assert!(!tracking_args(&email).contains_key(TOKEN_ARG));
    }

    #[test]
    fn chunks_respect_count_and_size() {
        let email = |i: i64, size: usize| OutgoingEmail {
            delivery_id: i,
            envelope_from: String::new(),
            envelope_to: String::new(),
            message_id: String::new(),
            bytes: vec![b'x'; size],
        };
        let batch: Vec<_> = (0..7).map(|i| email(i, 10)).collect();
        let sizes: Vec<usize> = chunks(batch, 3, 1000, |m: &OutgoingEmail| m.bytes.len())
            .iter()
            .map(|c| c.len())
            .collect();
        assert_eq!(sizes, vec![3, 3, 1]);
        let batch = vec![email(1, 60), email(2, 60), email(3, 200), email(4, 10)];
        let ids: Vec<Vec<i64>> = chunks(batch, 500, 100, |m: &OutgoingEmail| m.bytes.len())
            .iter()
            .map(|c| c.iter().map(|m| m.delivery_id).collect())
            .collect();
        assert_eq!(ids, vec![vec![1], vec![2], vec![3], vec![4]]);
    }
}
