//! SendGrid's v3 Mail Send API: `POST {base}/v3/mail/send` with `Authorization: Bearer KEY`
//! and a JSON body (`personalizations`, `from`, `reply_to`, `subject`, `content`, `headers`).
//! `202 Accepted` means SendGrid took the message.
//!
//! SendGrid takes fields, not raw MIME: they are read back from the composed message; the
//! headers SendGrid does not build itself (Message-ID, List-Unsubscribe,
//! List-Unsubscribe-Post, …) go in `headers`, and the delivery id and our signed token in
//! `custom_args` (`rewarm_delivery_id`, `rewarm_token`) so event webhooks can be matched. The
//! `X-Message-Id` header of the 202 is the id SendGrid gives the message (its events'
//! `sg_message_id` starts with it). SendGrid keeps the Message-ID we put in `headers`.
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
//! | 400 about `from` / `reply_to` (our sender)                   | `Transient`, account fault: the transport pauses |
//! | 400, anything else; 413 (too large)                          | `Permanent` (this message)     |
//! | 401 (bad key), 403 (unverified sender, permissions, suspended), 404 and other answers | `Transient`, account fault: the transport pauses |
//! | 429 (`Retry-After` or `X-RateLimit-Reset`), 5xx              | `Transient`                    |

use std::collections::BTreeMap;
use std::time::Duration;

use reqwest::header::{ACCEPT, CONTENT_TYPE};
use serde::{Deserialize, Serialize};

use super::client::{self, Accepted, Api, Blame, Reply, SetupError};
use super::mime::{self, Mailbox};
use crate::secret::Secret;
use crate::transport::{OutgoingEmail, ProviderIds, SendError, SendOutcome};

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

/// Sends through SendGrid; share it by reference (`&self`).
#[derive(Debug)]
pub struct SendGridTransport {
    settings: SendGridSettings,
    api: Api,
}

impl SendGridTransport {
    /// Checks the settings and builds the HTTP client; nothing is sent.
    pub fn new(settings: SendGridSettings) -> Result<SendGridTransport, SetupError> {
        let key = settings.api_key.expose().trim();
        if key.is_empty()
            || reqwest::header::HeaderValue::from_str(&format!("Bearer {key}")).is_err()
        {
            return Err(SetupError::new(
                PROVIDER,
                "the API key is empty or has characters a header cannot carry",
            ));
        }
        let api = Api::new(PROVIDER, &settings.base_url, settings.timeout)?;
        Ok(SendGridTransport { settings, api })
    }

    pub fn settings(&self) -> &SendGridSettings {
        &self.settings
    }

    /// Sends every message with its own call to `/v3/mail/send` (`concurrency` at once); one
    /// outcome per message, in the batch's order. Let it finish: calls abandoned in flight
    /// may have been accepted.
    pub async fn send_batch(&self, batch: Vec<OutgoingEmail>) -> Vec<SendOutcome> {
        self.send_tracked(batch).await.0
    }

    /// Like `send_batch`, with the `X-Message-Id` SendGrid gave each message it took.
    pub async fn send_tracked(&self, batch: Vec<OutgoingEmail>) -> (Vec<SendOutcome>, ProviderIds) {
        self.api
            .send_each(batch, self.settings.concurrency, |email| {
                self.send_one(email)
            })
            .await
    }

    async fn send_one(&self, email: OutgoingEmail) -> Accepted {
        let body = payload(&email)?;
        let request = self
            .api
            .post("/v3/mail/send")
            .bearer_auth(self.settings.api_key.expose().trim())
            .header(ACCEPT, "application/json")
            .header(CONTENT_TYPE, "application/json")
            .body(body);
        let reply = self.api.execute(request).await?;
        outcome(&reply)?;
        Ok(reply
            .headers
            .get("x-message-id")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string))
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
    let f = mime::fields_of(PROVIDER, email)?;
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
            custom_args: client::tracking_args(email),
        }],
        from: Address::from(&f.from),
        reply_to: f.reply_to.as_ref().map(Address::from),
        subject: &f.subject,
        content,
        headers,
    };
    serde_json::to_vec(&mail)
        .map_err(|e| SendError::permanent(format!("{PROVIDER}: cannot encode the message: {e}")))
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
    match reply.status.as_u16() {
        400 => Err(bad_request(reply)),
        413 => Err(client::too_large(PROVIDER, reply)),
        _ => client::standard_outcome(
            PROVIDER,
            reply,
            &[
                (401, "the API key is wrong or revoked"),
                (
                    403,
                    "forbidden: the sender identity is not verified or the key lacks the mail.send permission",
                ),
            ],
        ),
    }
}

/// A 400: SendGrid names the fields it refused; a recipient field is a hard bounce, our
/// sender alone is our configuration, anything else refuses this message.
fn bad_request(reply: &Reply) -> SendError {
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
                let field = e.field.as_deref().map(|f| format!("{f}: "));
                format!(
                    "{}{}",
                    field.unwrap_or_default(),
                    e.message.as_deref().unwrap_or("")
                )
            })
            .collect::<Vec<_>>()
            .join("; ")
    };
    let blame = if about_recipient {
        Blame::Recipient
    } else if about_sender {
        Blame::Sender
    } else {
        Blame::Message
    };
    client::bad_request(PROVIDER, reply, blame, &detail)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reply(status: u16, body: &str) -> Reply {
        Reply {
            retry_after: Some(7),
            ..Reply::canned(status, body)
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
