//! SendGrid's v3 Mail Send API: `POST {base}/v3/mail/send` with `Authorization: Bearer KEY`
//! and a JSON body (`personalizations`, `from`, `reply_to`, `subject`, `content`, `headers`).
//! `202 Accepted` means SendGrid took the message.
//!
//! SendGrid takes fields, not raw MIME: they are read back from the composed message; the
//! headers SendGrid does not build itself (Message-ID, List-Unsubscribe,
//! List-Unsubscribe-Post, …) go in `headers`, and the delivery id in `custom_args`
//! (`rewarm_delivery_id`) so event webhooks can be matched.
//!
//! SendGrid has no batch call for *different* messages (a request's personalizations share
//! one body), and every rewarm message is rendered for its lead: so one call per message,
//! `concurrency` at once.
//!
//! # What each answer means
//!
//! | answer                                                       | outcome                        |
//! |--------------------------------------------------------------|--------------------------------|
//! | 200 / 202                                                    | `Ok`                           |
//! | 400 about a recipient field (`personalizations.N.to…`)       | `Permanent`, hard bounce       |
//! | 400 about `from` / `reply_to` (our sender)                   | `Transient`, configuration     |
//! | 400, anything else; 413 (too large)                          | `Permanent` (this message)     |
//! | 401 (bad key), 403 (unverified sender, permissions), 404 and other answers | `Transient`, configuration |
//! | 429, 5xx                                                     | `Transient`                    |

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use reqwest::header::{ACCEPT, CONTENT_TYPE};
use serde::{Deserialize, Serialize};

use super::http_common::{self, HARD_BOUNCE, Mailbox, Reply, SetupError};
use super::{OutgoingEmail, SendError, SendOutcome};
use crate::secret::Secret;

const PROVIDER: &str = "sendgrid";

/// SendGrid's API (`https://api.eu.sendgrid.com` for EU-pinned subusers).
pub const DEFAULT_BASE_URL: &str = "https://api.sendgrid.com";

/// Headers SendGrid refuses in `headers` (it builds them itself).
const RESERVED: &[&str] = &[
    "x-sg-id",
    "x-sg-eid",
    "received",
    "dkim-signature",
    "content-type",
    "content-transfer-encoding",
    "to",
    "from",
    "subject",
    "reply-to",
    "cc",
    "bcc",
];

/// How to reach SendGrid.
#[derive(Debug, Clone)]
pub struct SendGridSettings {
    pub base_url: String,
    pub api_key: Secret,
    /// API calls in flight at once.
    pub concurrency: usize,
    /// Limit on one API call (connecting gets at most half of it, and at most 10 s).
    pub timeout: Duration,
}

impl SendGridSettings {
    /// The defaults: SendGrid's API, 8 calls at once, 30 s.
    pub fn new(api_key: Secret) -> SendGridSettings {
        SendGridSettings {
            base_url: DEFAULT_BASE_URL.to_string(),
            api_key,
            concurrency: 8,
            timeout: Duration::from_secs(30),
        }
    }
}

/// Sends through SendGrid; cheap to share (`&self`).
pub struct SendGridTransport {
    inner: Arc<Inner>,
}

struct Inner {
    settings: SendGridSettings,
    url: String,
    client: reqwest::Client,
}

impl fmt::Debug for SendGridTransport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SendGridTransport")
            .field("settings", &self.inner.settings)
            .finish_non_exhaustive()
    }
}

impl SendGridTransport {
    /// Checks the settings and builds the HTTP client; nothing is sent.
    pub fn new(settings: SendGridSettings) -> Result<SendGridTransport, SetupError> {
        let base = http_common::base_url(PROVIDER, &settings.base_url)?;
        let key = settings.api_key.expose().trim();
        if key.is_empty()
            || reqwest::header::HeaderValue::from_str(&format!("Bearer {key}")).is_err()
        {
            return Err(SetupError {
                provider: PROVIDER,
                message: "the API key is empty or has characters a header cannot carry".to_string(),
            });
        }
        let client = http_common::build_client(PROVIDER, settings.timeout)?;
        Ok(SendGridTransport {
            inner: Arc::new(Inner {
                settings,
                url: format!("{base}/v3/mail/send"),
                client,
            }),
        })
    }

    pub fn settings(&self) -> &SendGridSettings {
        &self.inner.settings
    }

    /// Sends every message (one call each, `concurrency` at once). One outcome per message,
    /// in the batch's order.
    ///
    /// Let it finish: dropping the future abandons calls in flight, whose messages may have
    /// been accepted.
    pub async fn send_batch(&self, batch: Vec<OutgoingEmail>) -> Vec<SendOutcome> {
        let inner = &self.inner;
        http_common::run_bounded(batch, inner.settings.concurrency, |email| async move {
            let outcome = inner.send_one(&email).await;
            if let Err(e) = &outcome {
                tracing::debug!(delivery_id = email.delivery_id, error = %e, "sendgrid did not take the message");
            }
            vec![(email.delivery_id, outcome)]
        })
        .await
    }
}

impl Inner {
    async fn send_one(&self, email: &OutgoingEmail) -> Result<(), SendError> {
        let body = payload(email)?;
        let request = self
            .client
            .post(&self.url)
            .bearer_auth(self.settings.api_key.expose().trim())
            .header(ACCEPT, "application/json")
            .header(CONTENT_TYPE, "application/json")
            .body(body);
        let reply = http_common::execute(PROVIDER, request).await?;
        outcome(&reply)
    }
}

#[derive(Debug, Serialize)]
struct Address<'a> {
    email: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    name: Option<&'a str>,
}

impl<'a> From<&'a Mailbox> for Address<'a> {
    fn from(m: &'a Mailbox) -> Self {
        Address {
            email: &m.email,
            name: m.name.as_deref().filter(|n| !n.trim().is_empty()),
        }
    }
}

#[derive(Debug, Serialize)]
struct Personalization<'a> {
    to: Vec<Address<'a>>,
    custom_args: BTreeMap<&'static str, String>,
}

#[derive(Debug, Serialize)]
struct Content<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    value: &'a str,
}

#[derive(Debug, Serialize)]
struct Mail<'a> {
    personalizations: Vec<Personalization<'a>>,
    from: Address<'a>,
    #[serde(skip_serializing_if = "Option::is_none")]
    reply_to: Option<Address<'a>>,
    subject: &'a str,
    content: Vec<Content<'a>>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    headers: BTreeMap<&'a str, &'a str>,
}

/// The JSON for one message, or why it cannot be sent.
fn payload(email: &OutgoingEmail) -> Result<Vec<u8>, SendError> {
    let f = http_common::fields_of(PROVIDER, email)?;
    // SendGrid wants text/plain first, then text/html.
    let mut content = Vec::new();
    if let Some(text) = f.text.as_deref() {
        content.push(Content {
            kind: "text/plain",
            value: text,
        });
    }
    if let Some(html) = f.html.as_deref() {
        content.push(Content {
            kind: "text/html",
            value: html,
        });
    }
    let mut headers = BTreeMap::new();
    for (name, value) in &f.headers {
        if RESERVED.contains(&name.to_ascii_lowercase().as_str()) {
            continue;
        }
        headers.entry(name.as_str()).or_insert(value.as_str());
    }
    let mail = Mail {
        personalizations: vec![Personalization {
            to: vec![Address::from(&f.to)],
            custom_args: BTreeMap::from([("rewarm_delivery_id", email.delivery_id.to_string())]),
        }],
        from: Address::from(&f.from),
        reply_to: f.reply_to.as_ref().map(Address::from),
        subject: &f.subject,
        content,
        headers,
    };
    serde_json::to_vec(&mail)
        .map_err(|e| SendError::Permanent(format!("{PROVIDER}: cannot encode the message: {e}")))
}

#[derive(Debug, Default, Deserialize)]
struct ErrorBody {
    #[serde(default)]
    errors: Vec<ErrorItem>,
}

#[derive(Debug, Default, Deserialize)]
struct ErrorItem {
    #[serde(default)]
    message: Option<String>,
    #[serde(default)]
    field: Option<String>,
}

/// What SendGrid's answer means for the message.
fn outcome(reply: &Reply) -> Result<(), SendError> {
    let status = reply.status.as_u16();
    match status {
        200..=299 => Ok(()),
        400 => {
            let errors = serde_json::from_str::<ErrorBody>(reply.body_text())
                .unwrap_or_default()
                .errors;
            let fields: Vec<String> = errors
                .iter()
                .filter_map(|e| e.field.as_deref().map(str::to_ascii_lowercase))
                .collect();
            let about_recipient = fields.iter().any(|f| {
                f.starts_with("personalizations")
                    && (f.contains(".to") || f.contains(".cc") || f.contains(".bcc"))
            });
            let about_sender = fields
                .iter()
                .any(|f| f.starts_with("from") || f.starts_with("reply_to"));
            let detail = if errors.is_empty() {
                reply.body_excerpt()
            } else {
                errors
                    .iter()
                    .map(|e| {
                        format!(
                            "{}{}",
                            e.field
                                .as_deref()
                                .map(|f| format!("{f}: "))
                                .unwrap_or_default(),
                            e.message.as_deref().unwrap_or("")
                        )
                    })
                    .collect::<Vec<_>>()
                    .join("; ")
            };
            if about_sender && !about_recipient {
                Err(SendError::Transient(format!(
                    "{PROVIDER}: HTTP 400 — configuration problem (sender), not the recipient's: {detail}"
                )))
            } else if about_recipient {
                Err(SendError::Permanent(format!(
                    "{PROVIDER}: HTTP 400 recipient refused {HARD_BOUNCE}: {detail}"
                )))
            } else {
                Err(SendError::Permanent(format!(
                    "{PROVIDER}: HTTP 400 message refused: {detail}"
                )))
            }
        }
        413 => Err(SendError::Permanent(format!(
            "{PROVIDER}: HTTP 413 message too large: {}",
            reply.body_excerpt()
        ))),
        401 => Err(http_common::config_problem(
            PROVIDER,
            reply,
            "the API key is wrong or revoked",
        )),
        403 => Err(http_common::config_problem(
            PROVIDER,
            reply,
            "forbidden: the sender identity is not verified or the key lacks the mail.send permission",
        )),
        429 | 500..=599 => Err(http_common::try_later(PROVIDER, reply)),
        _ => Err(http_common::config_problem(
            PROVIDER,
            reply,
            "unexpected answer (check the base URL)",
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::StatusCode;

    fn reply(status: u16, body: &str) -> Reply {
        Reply {
            status: StatusCode::from_u16(status).unwrap(),
            body: Ok(body.to_string()),
            retry_after: Some(7),
        }
    }

    #[test]
    fn accepted_is_ok() {
        assert_eq!(outcome(&reply(202, "")), Ok(()));
    }

    #[test]
    fn a_400_is_permanent_and_a_hard_bounce_only_when_about_the_recipient() {
        let e = outcome(&reply(
            400,
            r#"{"errors":[{"message":"Does not contain a valid address.","field":"personalizations.0.to.0.email","help":null}]}"#,
        ))
        .unwrap_err();
        assert!(e.is_permanent() && e.is_hard_bounce(), "{e}");
        assert!(
            e.to_string().contains("personalizations.0.to.0.email"),
            "{e}"
        );
        let e = outcome(&reply(
            400,
            r#"{"errors":[{"message":"The content value must be a string at least one character in length.","field":"content.0.value"}]}"#,
        ))
        .unwrap_err();
        assert!(e.is_permanent() && !e.is_hard_bounce(), "{e}");
        let e = outcome(&reply(
            400,
            r#"{"errors":[{"message":"The from email does not contain a valid address.","field":"from.email"}]}"#,
        ))
        .unwrap_err();
        assert!(e.is_transient(), "{e}");
    }

    #[test]
    fn throttling_server_errors_and_our_configuration_are_transient() {
        let e = outcome(&reply(
            429,
            r#"{"errors":[{"message":"too many requests"}]}"#,
        ))
        .unwrap_err();
        assert!(
            e.is_transient() && e.to_string().contains("retry after 7s"),
            "{e}"
        );
        for status in [500, 502, 503, 401, 403, 404] {
            assert!(
                outcome(&reply(status, "")).unwrap_err().is_transient(),
                "{status}"
            );
        }
        assert!(outcome(&reply(413, "")).unwrap_err().is_permanent());
    }
}
