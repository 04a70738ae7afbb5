//! Postmark's HTTP API: `POST {base}/email` for one message, `POST {base}/email/batch` for up
//! to 500 (and 50 MB) at once, authenticated with the `X-Postmark-Server-Token` header.
//!
//! Postmark takes fields, not raw MIME: From, To, Subject, TextBody and HtmlBody are read back
//! from the composed message, and the headers Postmark does not build itself (Message-ID,
//! List-Unsubscribe, List-Unsubscribe-Post, …) go in `Headers`, with `X-PM-KeepID: true`: without
//! it Postmark replaces our Message-ID with its own (`…@mtasv.net`) and replies no longer
//! reference ours. The delivery id and our signed token travel in `Metadata`
//! (`rewarm_delivery_id`, `rewarm_token`), and the `MessageID` of Postmark's answer is kept as
//! the provider's id, so webhooks (bounces, spam complaints) can be matched. Cold and
//! marketing mail belongs on a *broadcast* message stream (`message_stream`); turn on "manage
//! unsubscribes on your own" for it, or Postmark adds its own List-Unsubscribe.
//!
//! # What each answer means
//!
//! | answer                                                   | outcome                           |
//! |----------------------------------------------------------|-----------------------------------|
//! | 200, ErrorCode 0                                         | `Ok`                              |
//! | ErrorCode 406 (inactive recipient: hard bounce, complaint, suppressed) | `Permanent`, hard bounce |
//! | ErrorCode 300 about the To/Cc/Bcc address                | `Permanent`, hard bounce          |
//! | ErrorCode 300 about From/Reply-To/the sender signature   | `Transient`, account fault: the transport pauses |
//! | ErrorCode 300, anything else (e.g. no body)              | `Permanent` (not the address)     |
//! | HTTP 401 / ErrorCode 10 (bad token), 400/401/405/412/413 (sender signature, account) | `Transient`, account fault: the transport pauses |
//! | ErrorCode 402/403/409/410 (request format)                | `Transient`, configuration problem |
//! | HTTP 429 / ErrorCode 429, HTTP 5xx, ErrorCode 100 (maintenance) | `Transient`, the breaker pauses the transport |
//! | batch answered 200 but this message's result missing     | `Unknown`                         |
//! | a whole batch refused (non-200)                          | `Transient` for every message — never `Permanent`, whatever the code |
//!
//! A problem of our own (token, sender signature, account) is `Transient` with the
//! [`TransportFault::Account`] fault: the circuit breaker pauses the transport, no delivery
//! burns an attempt or suppresses its address; fix the configuration and the probes resume.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use reqwest::header::{ACCEPT, CONTENT_TYPE, HeaderValue};
use serde::{Deserialize, Serialize};

use super::client::{self, Accepted, Api, Reply, SetupError};
use super::mime;
use crate::secret::Secret;
use crate::transport::{OutgoingEmail, ProviderIds, SendError, SendOutcome, TransportFault};

const PROVIDER: &str = "postmark";

/// The header that tells Postmark to keep our Message-ID.
const KEEP_ID: &str = "X-PM-KeepID";

/// Postmark's API.
pub const DEFAULT_BASE_URL: &str = "https://api.postmarkapp.com";
/// Messages per batch call (Postmark's limit).
pub const MAX_BATCH: usize = 500;
/// Postmark takes up to 50 MB per batch call; stay a little below it.
const MAX_BATCH_BYTES: usize = 45 * 1024 * 1024;

/// How to reach Postmark.
#[derive(Debug, Clone)]
pub struct PostmarkSettings {
    /// `https://api.postmarkapp.com` (a local server in tests).
    pub base_url: String,
    /// The server API token.
    pub server_token: Secret,
    /// The message stream; `None` uses the server's default transactional stream
    /// (`outbound`). Postmark wants bulk/cold mail on a broadcast stream.
    pub message_stream: Option<String>,
    /// Messages per batch call, 1..=500.
    pub batch_size: usize,
    /// API calls in flight at once.
    pub concurrency: usize,
    /// Limit on one API call (connecting gets at most half of it, and at most 10 s).
    pub timeout: Duration,
}

impl PostmarkSettings {
    /// The defaults: Postmark's API, default stream, batches of 500, 4 calls at once, 30 s.
    pub fn new(server_token: Secret) -> PostmarkSettings {
        PostmarkSettings {
            base_url: DEFAULT_BASE_URL.to_string(),
            server_token,
            message_stream: None,
            batch_size: MAX_BATCH,
            concurrency: 4,
            timeout: Duration::from_secs(30),
        }
    }
}

/// Sends through Postmark; share it by reference (`&self`).
#[derive(Debug)]
pub struct PostmarkTransport {
    settings: PostmarkSettings,
    token: HeaderValue,
    api: Api,
}

impl PostmarkTransport {
    /// Checks the settings and builds the HTTP client; nothing is sent.
    pub fn new(settings: PostmarkSettings) -> Result<PostmarkTransport, SetupError> {
        let mut token =
            HeaderValue::from_str(settings.server_token.expose().trim()).map_err(|_| {
                SetupError::new(
                    PROVIDER,
                    "the server token has characters a header cannot carry",
                )
            })?;
        token.set_sensitive(true);
        if settings.server_token.expose().trim().is_empty() {
            return Err(SetupError::new(PROVIDER, "the server token is empty"));
        }
        let api = Api::new(PROVIDER, &settings.base_url, settings.timeout)?;
        Ok(PostmarkTransport {
            settings,
            token,
            api,
        })
    }

    pub fn settings(&self) -> &PostmarkSettings {
        &self.settings
    }

    /// Sends the batch: groups of up to `batch_size` go to `/email/batch` (a group of one to
    /// `/email`), `concurrency` calls at once. One outcome per message, in the batch's order.
    ///
    /// Let it finish: dropping the future abandons calls in flight, whose messages may have
    /// been accepted.
    pub async fn send_batch(&self, batch: Vec<OutgoingEmail>) -> Vec<SendOutcome> {
        self.send_tracked(batch).await.0
    }

    /// Like `send_batch`, with the `MessageID` Postmark gave each message it took.
    pub async fn send_tracked(&self, batch: Vec<OutgoingEmail>) -> (Vec<SendOutcome>, ProviderIds) {
        let mut outcomes: Vec<(i64, Accepted)> = Vec::new();
        let mut ready: Vec<(i64, Vec<u8>)> = Vec::with_capacity(batch.len());
        let stream = self.settings.message_stream.as_deref();
        for email in &batch {
            match payload(email, stream) {
                Ok(json) => ready.push((email.delivery_id, json)),
                Err(e) => outcomes.push((email.delivery_id, Err(e))),
            }
        }
        let batch_size = self.settings.batch_size.clamp(1, MAX_BATCH);
        let groups = client::chunks(ready, batch_size, MAX_BATCH_BYTES, |(_, json)| {
            json.len() + 1
        });
        let sent = client::run_bounded(groups, self.settings.concurrency, |group| async move {
            if group.len() == 1 {
                self.send_single(group).await
            } else {
                self.send_group(group).await
            }
        })
        .await;
        outcomes.extend(sent);
        // Back in the order of the batch.
        let order: HashMap<i64, usize> = batch
            .iter()
            .enumerate()
            .map(|(i, m)| (m.delivery_id, i))
            .collect();
        outcomes.sort_by_key(|(id, _)| order.get(id).copied().unwrap_or(usize::MAX));
        client::split_accepted(outcomes)
    }

    fn request(&self, path: &str, body: Vec<u8>) -> reqwest::RequestBuilder {
        self.api
            .post(path)
            .header(ACCEPT, "application/json")
            .header(CONTENT_TYPE, "application/json")
            .header("X-Postmark-Server-Token", self.token.clone())
            .body(body)
    }

    async fn send_single(&self, mut group: Vec<(i64, Vec<u8>)>) -> Vec<(i64, Accepted)> {
        let Some((id, json)) = group.pop() else {
            return Vec::new();
        };
        let outcome = match self.api.execute(self.request("/email", json)).await {
            Ok(reply) => single_outcome(&reply),
            Err(e) => Err(e),
        };
        self.api.log_failure(id, &outcome);
        vec![(id, outcome)]
    }

    async fn send_group(&self, group: Vec<(i64, Vec<u8>)>) -> Vec<(i64, Accepted)> {
        let ids: Vec<i64> = group.iter().map(|(id, _)| *id).collect();
        let mut body =
            Vec::with_capacity(group.iter().map(|(_, j)| j.len() + 1).sum::<usize>() + 2);
        body.push(b'[');
        for (i, (_, json)) in group.into_iter().enumerate() {
            if i > 0 {
                body.push(b',');
            }
            body.extend_from_slice(&json);
        }
        body.push(b']');
        let outcomes = match self.api.execute(self.request("/email/batch", body)).await {
            Ok(reply) => batch_outcomes(&ids, &reply),
            Err(e) => ids.iter().map(|id| (*id, Err(e.clone()))).collect(),
        };
        for (id, outcome) in &outcomes {
            self.api.log_failure(*id, outcome);
        }
        outcomes
    }
}

/// One message as Postmark's JSON.
#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
struct Message<'a> {
    from: String,
    to: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    reply_to: Option<String>,
    subject: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    text_body: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    html_body: Option<&'a str>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    headers: Vec<Header<'a>>,
    metadata: BTreeMap<&'static str, String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    message_stream: Option<&'a str>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
struct Header<'a> {
    name: &'a str,
    value: &'a str,
}

/// The JSON for one message, or why it cannot be sent.
fn payload(email: &OutgoingEmail, stream: Option<&str>) -> Result<Vec<u8>, SendError> {
    let f = mime::fields_of(PROVIDER, email)?;
    let message = Message {
        from: f.from.to_header_form(),
        to: f.to.to_header_form(),
        reply_to: f.reply_to.as_ref().map(|m| m.to_header_form()),
        subject: &f.subject,
        text_body: f.text.as_deref(),
        html_body: f.html.as_deref(),
        headers: f
            .headers
            .iter()
            .filter(|(name, _)| !name.eq_ignore_ascii_case(KEEP_ID))
            .map(|(name, value)| Header { name, value })
            .chain([Header {
                name: KEEP_ID,
                value: "true",
            }])
            .collect(),
        metadata: client::tracking_args(email),
        message_stream: stream.filter(|s| !s.trim().is_empty()),
    };
    serde_json::to_vec(&message)
        .map_err(|e| SendError::permanent(format!("{PROVIDER}: cannot encode the message: {e}")))
}

/// Postmark's answer body (a single result, an error, or one entry of a batch answer).
#[derive(Debug, Deserialize)]
struct ApiResult {
    #[serde(rename = "ErrorCode", default)]
    error_code: i64,
    #[serde(rename = "Message", default)]
    message: String,
    #[serde(rename = "MessageID", default)]
    message_id: Option<String>,
}

impl ApiResult {
    /// What this result says about its message: accepted with Postmark's `MessageID`, or why not.
    fn accepted(self) -> Accepted {
        classify_code(self.error_code, &self.message).map(|()| self.message_id)
    }
}

/// What a Postmark ErrorCode means for the message it is about.
fn classify_code(code: i64, message: &str) -> Result<(), SendError> {
    let text = |what: &str| format!("{PROVIDER}: ErrorCode {code} {what}: {message}");
    let config = |what: &str| Err(SendError::transient(text(what)));
    // Our token, sender signature or account: every message would fail alike.
    let account = |what: &str| Err(client::account_problem(text(what)));
    match code {
        0 => Ok(()),
        406 => Err(client::recipient_refused(
            format!("{PROVIDER}: ErrorCode {code} inactive recipient"),
            message,
        )),
        300 => Err(invalid_request(message)),
        // Postmark's way of saying HTTP 429 inside an answer: a throttle, read as one.
        429 => Err(SendError::transient(format!(
            "{PROVIDER}: HTTP 429 rate limited by the provider: ErrorCode 429: {message}"
        ))
        .with_http_status(429, None)
        .with_transport_fault(TransportFault::ProviderThrottled)),
        100 => Err(SendError::transient(text("maintenance"))
            .with_transport_fault(TransportFault::ProviderError)),
        10 => account(
            "bad or missing server token — configuration problem: check the Postmark server token",
        ),
        400 | 401 | 405 | 412 | 413 => account(
            "sender signature or account problem — configuration problem, not the recipient's",
        ),
        _ => config("request refused — configuration or format problem, not the recipient's"),
    }
}

/// ErrorCode 300 ("invalid email request"): about our sender (configuration), about the
/// recipient (a hard bounce), or about something else in the message.
fn invalid_request(message: &str) -> SendError {
    let lower = message.to_ascii_lowercase();
    let about_us = [
        "'from'",
        "from address",
        "reply-to",
        "'replyto'",
        "replyto",
        "sender signature",
        "sender",
    ]
    .iter()
    .any(|w| lower.contains(w));
    let about_recipient = ["'to'", "'cc'", "'bcc'", "recipient", "to address"]
        .iter()
        .any(|w| lower.contains(w));
    let head = format!("{PROVIDER}: ErrorCode 300");
    if about_us {
        client::account_problem(format!(
            "{head} invalid email request — configuration problem (sender), not the recipient's: {message}"
        ))
    } else if about_recipient {
        client::recipient_refused(format!("{head} invalid email request (recipient)"), message)
    } else {
        SendError::permanent(format!("{head} invalid email request: {message}"))
    }
}

/// The outcome of `POST /email`.
fn single_outcome(reply: &Reply) -> Accepted {
    let parsed = || serde_json::from_str::<ApiResult>(reply.body_text()).ok();
    match reply.status.as_u16() {
        200..=299 => match parsed() {
            Some(r) => r.accepted(),
            // Accepted: a 2xx says so even if its body cannot be read.
            None => Ok(None),
        },
        422 => match parsed() {
            Some(r) if r.error_code != 0 => r.accepted(),
            _ => Err(client::config_problem(
                PROVIDER,
                reply,
                "request refused without a readable ErrorCode",
            )),
        },
        _ => client::standard_outcome(
            PROVIDER,
            reply,
            &[(401, "bad or missing server token (X-Postmark-Server-Token)")],
        )
        .map(|()| None),
    }
}

/// The outcomes of `POST /email/batch` for the messages `ids`, in order. Postmark answers 200
/// with one result per message, in the order sent; a non-200 answer refuses the whole call.
fn batch_outcomes(ids: &[i64], reply: &Reply) -> Vec<(i64, Accepted)> {
    let status = reply.status.as_u16();
    if (200..=299).contains(&status) {
        let results: Option<Vec<ApiResult>> = serde_json::from_str(reply.body_text()).ok();
        let mut results = results.unwrap_or_default().into_iter();
        return ids
            .iter()
            .map(|id| {
                let outcome = match results.next() {
                    Some(r) => r.accepted(),
                    None => Err(SendError::unknown(format!(
                        "{PROVIDER}: the batch was accepted (HTTP {status}) but its answer for this message is missing or unreadable; it may have been sent"
                    ))),
                };
                (*id, outcome)
            })
            .collect();
    }
    // The whole call was refused: nothing was sent, and no single message is to blame.
    let retry_after = reply.retry_after.map(Duration::from_secs);
    let outcome = match single_outcome(reply) {
        Err(e) if e.is_permanent() => Err(SendError::transient(format!(
            "{} (the whole batch call was refused)",
            e.message()
        ))
        .with_http_status(status, retry_after)),
        Ok(_) => Err(SendError::transient(format!(
            "{PROVIDER}: the batch call was refused: HTTP {status}"
        ))
        .with_http_status(status, retry_after)),
        other => other,
    };
    ids.iter().map(|id| (*id, outcome.clone())).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reply(status: u16, body: &str) -> Reply {
        Reply::canned(status, body)
    }

    #[test]
    fn inactive_recipients_and_invalid_to_addresses_are_hard_bounces() {
        let e = single_outcome(&reply(
            422,
            r#"{"ErrorCode":406,"Message":"You tried to send to recipient(s) that have been marked as inactive."}"#,
        ))
        .unwrap_err();
        assert!(e.is_permanent() && e.is_hard_bounce(), "{e}");
        let e = single_outcome(&reply(
            422,
            r#"{"ErrorCode":300,"Message":"Invalid 'To' address: 'not-an-address'."}"#,
        ))
        .unwrap_err();
        assert!(e.is_hard_bounce(), "{e}");
    }

    #[test]
    fn our_own_misconfiguration_is_transient() {
        for body in [
            r#"{"ErrorCode":300,"Message":"Invalid 'From' address: 'x@y' is not a verified sender signature."}"#,
            r#"{"ErrorCode":400,"Message":"Sender signature not found"}"#,
            r#"{"ErrorCode":412,"Message":"Account is pending"}"#,
            r#"{"ErrorCode":402,"Message":"Invalid JSON"}"#,
        ] {
            let e = single_outcome(&reply(422, body)).unwrap_err();
            assert!(e.is_transient(), "{body}: {e}");
            assert!(e.to_string().contains("configuration"), "{e}");
        }
        let e = single_outcome(&reply(
            401,
            r#"{"ErrorCode":10,"Message":"Bad or missing Server API token."}"#,
        ))
        .unwrap_err();
        assert!(e.is_transient() && e.to_string().contains("token"), "{e}");
        // Token, sender signature, account: the transport pauses (no attempt burnt).
        for body in [
            r#"{"ErrorCode":10,"Message":"Bad or missing Server API token."}"#,
            r#"{"ErrorCode":412,"Message":"Account is pending"}"#,
            r#"{"ErrorCode":300,"Message":"Invalid 'From' address: not a verified sender signature."}"#,
        ] {
            let e = single_outcome(&reply(422, body)).unwrap_err();
            assert_eq!(e.transport_fault(), Some(TransportFault::Account), "{body}");
        }
        let e = single_outcome(&reply(422, r#"{"ErrorCode":429,"Message":"slow"}"#)).unwrap_err();
        assert_eq!(e.transport_fault(), Some(TransportFault::ProviderThrottled));
    }

    #[test]
    fn other_invalid_requests_are_permanent_without_blaming_the_address() {
        let e = single_outcome(&reply(
            422,
            r#"{"ErrorCode":300,"Message":"Provide either email TextBody or HtmlBody or both."}"#,
        ))
        .unwrap_err();
        assert!(e.is_permanent() && !e.is_hard_bounce(), "{e}");
    }

    #[test]
    fn rate_limits_and_server_errors_are_transient() {
        for status in [429, 500, 503] {
            let e = single_outcome(&reply(status, "")).unwrap_err();
            assert!(e.is_transient(), "{status}: {e}");
            assert!(e.to_string().contains(&format!("HTTP {status}")), "{e}");
        }
        assert_eq!(
            single_outcome(&reply(
                200,
                r#"{"To":"a@b.test","MessageID":"x","ErrorCode":0,"Message":"OK"}"#
            )),
            Ok(Some("x".to_string()))
        );
    }

    #[test]
    fn batch_results_map_per_message_and_missing_results_are_unknown() {
        let r = reply(
            200,
            r#"[{"ErrorCode":0,"Message":"OK","MessageID":"pm-1"},{"ErrorCode":406,"Message":"inactive"}]"#,
        );
        let out = batch_outcomes(&[1, 2, 3], &r);
        assert_eq!(out[0], (1, Ok(Some("pm-1".to_string()))));
        assert!(matches!(&out[1], (2, Err(e)) if e.is_hard_bounce()));
        assert!(matches!(&out[2], (3, Err(e)) if e.is_unknown()));
    }

    #[test]
    fn a_refused_batch_call_is_never_permanent() {
        let out = batch_outcomes(
            &[1, 2],
            &reply(422, r#"{"ErrorCode":300,"Message":"Invalid 'To' address"}"#),
        );
        assert!(
            out.iter()
                .all(|(_, o)| matches!(o, Err(e) if e.is_transient()))
        );
        let out = batch_outcomes(&[1, 2], &reply(500, "oops"));
        assert!(
            out.iter()
                .all(|(_, o)| matches!(o, Err(e) if e.is_transient()))
        );
    }
}
