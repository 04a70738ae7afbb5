//! Mailgun's raw-MIME API: `POST {base}/v3/{domain}/messages.mime`, HTTP basic auth
//! `api:KEY`, a multipart/form-data body with `to` (the envelope recipient) and `message` (the
//! composed message, byte for byte, as a file part). The message goes out exactly as composed
//! (our Message-ID, List-Unsubscribe and DKIM signature included); the delivery id and our
//! signed token are attached as the variables `v:rewarm_delivery_id` and `v:rewarm_token`
//! (events carry them as `user-variables`), and the `id` of Mailgun's answer — our
//! Message-ID, in angle brackets — is kept as the provider's id.
//!
//! Mailgun's batch sending shares one body among recipients, and every rewarm message is
//! rendered for its lead: so one call per message, `concurrency` at once.
//!
//! # What each answer means
//!
//! | answer                                                   | outcome                          |
//! |----------------------------------------------------------|----------------------------------|
//! | 200                                                      | `Ok`                             |
//! | 400 "'to' parameter is not a valid address"              | `Permanent`, hard bounce         |
//! | 400/403 from a sandbox domain ("authorized recipients"), "not allowed to send" | `Transient`, account fault (the transport pauses) — never a suppression |
//! | 400, anything else; 413 (too large)                      | `Permanent` (this message)       |
//! | 401 (bad key), 402, 403 (domain disabled, sandbox recipient not authorised), 404 (unknown domain, wrong base URL) and other answers | `Transient`, account fault: the transport pauses |
//! | 429, 5xx                                                 | `Transient`                      |

use std::time::Duration;

use reqwest::header::ACCEPT;
use reqwest::multipart::{Form, Part};
use serde::Deserialize;

use super::client::{self, Accepted, Api, Blame, Reply, SetupError};
use crate::secret::Secret;
use crate::transport::{OutgoingEmail, ProviderIds, SendError, SendOutcome};

const PROVIDER: &str = "mailgun";

/// Mailgun's US API; EU domains use `https://api.eu.mailgun.net`.
pub const DEFAULT_BASE_URL: &str = "https://api.mailgun.net";

/// How to reach Mailgun.
#[derive(Debug, Clone)]
pub struct MailgunSettings {
    pub base_url: String,
    pub api_key: Secret,
    /// The sending domain as set up in Mailgun (e.g. `mg.example.com`).
    pub domain: String,
    /// API calls in flight at once.
    pub concurrency: usize,
    /// Limit on one API call (connecting gets at most half of it, and at most 10 s).
    pub timeout: Duration,
}

impl MailgunSettings {
    /// The defaults: Mailgun's US API, 8 calls at once, 30 s.
    pub fn new(api_key: Secret, domain: impl Into<String>) -> MailgunSettings {
        MailgunSettings {
            base_url: DEFAULT_BASE_URL.to_string(),
            api_key,
            domain: domain.into(),
            concurrency: 8,
            timeout: Duration::from_secs(30),
        }
    }
}

/// Sends through Mailgun; share it by reference (`&self`).
#[derive(Debug)]
pub struct MailgunTransport {
    settings: MailgunSettings,
    /// `/v3/{domain}/messages.mime`.
    path: String,
    api: Api,
}

impl MailgunTransport {
    /// Checks the settings and builds the HTTP client; nothing is sent.
    pub fn new(settings: MailgunSettings) -> Result<MailgunTransport, SetupError> {
        let domain = settings.domain.trim();
        if domain.is_empty()
            || !domain
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '-')
        {
            return Err(SetupError::new(
                PROVIDER,
                format!("`{domain}` is not a sending domain (e.g. mg.example.com)"),
            ));
        }
        if settings.api_key.expose().trim().is_empty() {
            return Err(SetupError::new(PROVIDER, "the API key is empty"));
        }
        let api = Api::new(PROVIDER, &settings.base_url, settings.timeout)?;
        Ok(MailgunTransport {
            path: format!("/v3/{domain}/messages.mime"),
            settings,
            api,
        })
    }

    pub fn settings(&self) -> &MailgunSettings {
        &self.settings
    }

    /// Sends every message as raw MIME with its own call (`concurrency` at once); one outcome
    /// per message, in the batch's order. Let it finish: calls abandoned in flight may have
    /// been accepted.
    pub async fn send_batch(&self, batch: Vec<OutgoingEmail>) -> Vec<SendOutcome> {
        self.send_tracked(batch).await.0
    }

    /// Like `send_batch`, with the `id` Mailgun gave each message it took.
    pub async fn send_tracked(&self, batch: Vec<OutgoingEmail>) -> (Vec<SendOutcome>, ProviderIds) {
        self.api
            .send_each(batch, self.settings.concurrency, |email| {
                self.send_one(email)
            })
            .await
    }

    async fn send_one(&self, email: OutgoingEmail) -> Accepted {
        let to = email.envelope_to.trim().to_string();
        if to.is_empty() {
            return Err(SendError::permanent(format!(
                "{PROVIDER}: the message has no recipient"
            )));
        }
        let args = client::tracking_args(&email);
        let message = Part::bytes(email.bytes)
            .file_name("message.mime")
            .mime_str("message/rfc822")
            .map_err(|e| {
                SendError::transient(format!("{PROVIDER}: cannot build the request: {e}"))
            })?;
        let mut form = Form::new().text("to", to);
        for (name, value) in args {
            form = form.text(format!("v:{name}"), value);
        }
        let form = form.part("message", message);
        let request = self
            .api
            .post(&self.path)
            .basic_auth("api", Some(self.settings.api_key.expose().trim()))
            .header(ACCEPT, "application/json")
            .multipart(form);
        let reply = self.api.execute(request).await?;
        outcome(&reply)?;
        Ok(serde_json::from_str::<Answer>(reply.body_text())
            .ok()
            .and_then(|a| a.id)
            .map(|id| id.trim().trim_matches(['<', '>']).to_string()))
    }
}

#[derive(Debug, Default, Deserialize)]
struct Answer {
    #[serde(default)]
    message: String,
    #[serde(default)]
    id: Option<String>,
}

/// A sandbox domain's "add the address to authorized recipients", or an account that may not
/// send: our configuration, never the recipient's address.
fn account_refusal(message: &str) -> bool {
    let lower = message.to_ascii_lowercase();
    [
        "authorized recipient",
        "sandbox",
        "not allowed to send",
        "free accounts",
        "upgrade",
    ]
    .iter()
    .any(|w| lower.contains(w))
}

/// What Mailgun's answer means for the message.
fn outcome(reply: &Reply) -> Result<(), SendError> {
    const ACCOUNT: &str = "the account or domain may not send (disabled, unpaid, or a sandbox domain with an unauthorised recipient)";
    match reply.status.as_u16() {
        400 | 403 if account_refusal(reply.body_text()) => Err(client::config_problem(
            PROVIDER,
            reply,
            "the account or domain may not send to this address (a sandbox domain sends only to its authorized recipients; add a real sending domain)",
        )),
        400 => {
            let message = serde_json::from_str::<Answer>(reply.body_text())
                .map(|a| a.message)
                .unwrap_or_else(|_| reply.body_excerpt());
            let lower = message.to_ascii_lowercase();
            let about_to = lower.contains("'to'") || lower.contains("to parameter");
            let blame = if about_to && lower.contains("not a valid address") {
                Blame::Recipient
            } else {
                Blame::Message
            };
            Err(client::bad_request(PROVIDER, reply, blame, &message))
        }
        413 => Err(client::too_large(PROVIDER, reply)),
        _ => client::standard_outcome(
            PROVIDER,
            reply,
            &[
                (401, "the API key is wrong (basic auth user `api`)"),
                (402, ACCOUNT),
                (403, ACCOUNT),
                (
                    404,
                    "unknown sending domain or wrong base URL (EU domains use https://api.eu.mailgun.net)",
                ),
            ],
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reply(status: u16, body: &str) -> Reply {
        Reply::canned(status, body)
    }

    #[test]
    fn answers_map_to_outcomes() {
        assert_eq!(
            outcome(&reply(
                200,
                r#"{"id":"<x@mg>","message":"Queued. Thank you."}"#
            )),
            Ok(())
        );
        let e = outcome(&reply(
            400,
            r#"{"message":"'to' parameter is not a valid address. please check documentation"}"#,
        ))
        .unwrap_err();
        assert!(e.is_permanent() && e.is_hard_bounce(), "{e}");
        let e = outcome(&reply(400, r#"{"message":"Message is invalid"}"#)).unwrap_err();
        assert!(e.is_permanent() && !e.is_hard_bounce(), "{e}");
        for status in [400, 403] {
            let e = outcome(&reply(
                status,
                r#"{"message":"Domain sandbox123.mailgun.org is not allowed to send: Free accounts are for test purposes only. Please upgrade or add the address to authorized recipients in Account Settings."}"#,
            ))
            .unwrap_err();
            assert!(e.is_transient() && !e.is_hard_bounce(), "{status}: {e}");
            assert!(e.to_string().contains("configuration"), "{e}");
            assert_eq!(
                e.transport_fault(),
                Some(crate::transport::TransportFault::Account)
            );
        }
        let e = outcome(&reply(400, r#"{"message":"'to' parameter is missing"}"#)).unwrap_err();
        assert!(!e.is_hard_bounce(), "{e}");
        for status in [401, 402, 403, 404, 429, 500, 503] {
            assert!(
                outcome(&reply(status, "")).unwrap_err().is_transient(),
                "{status}"
            );
        }
    }
}
