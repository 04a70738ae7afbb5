//! Checking stand-ins for the email providers' send APIs, as responders for a
//! [`RecordingServer`]: each refuses what the real provider refuses — a wrong or missing key
//! (401), a body that does not parse, a missing required field — with the provider's own
//! answer, and otherwise accepts the message and gives it an id the way the provider does
//! (Postmark `MessageID` in the JSON, SendGrid `X-Message-Id` header, Mailgun `id`).
//!
//! The ids are derived from the request (`pm-{request}-{index}`, `sg-{request}`, the message's
//! own Message-ID for Mailgun), so a test can tell which message got which.

use serde_json::{Value, json};

use super::recording_http::{RecordedRequest, RecordingServer, ScriptedResponse, parse_multipart};

/// Postmark: `POST /email` or `/email/batch`, `X-Postmark-Server-Token`, JSON with `From`,
/// `To`, `Subject` and a body; ErrorCode 10 (401), 402 (invalid JSON, 422), 300 (422).
pub fn postmark(server: &RecordingServer, token: &'static str) {
    server.respond_with(move |r| postmark_answer(r, token));
}

fn postmark_answer(r: &RecordedRequest, token: &str) -> ScriptedResponse {
    let error = |status: u16, code: i64, message: &str| {
        ScriptedResponse::json(status, json!({"ErrorCode": code, "Message": message}))
    };
    if r.method != "POST" || !(r.path == "/email" || r.path == "/email/batch") {
        return ScriptedResponse::status(404);
    }
    if r.header("x-postmark-server-token") != Some(token) {
        return error(401, 10, "Bad or missing Server API token.");
    }
    if !r
        .header("content-type")
        .unwrap_or_default()
        .starts_with("application/json")
    {
        return error(415, 0, "Content-Type must be application/json.");
    }
    let Ok(body) = serde_json::from_slice::<Value>(&r.body) else {
        return error(422, 402, "Received invalid JSON input.");
    };
    let check = |m: &Value| -> Result<(), String> {
        for field in ["From", "To", "Subject"] {
            if m.get(field)
                .and_then(Value::as_str)
                .is_none_or(str::is_empty)
            {
                return Err(format!("Invalid email request: '{field}' is required."));
            }
        }
        if m.get("TextBody").is_none() && m.get("HtmlBody").is_none() {
            return Err("Provide either email TextBody or HtmlBody or both.".into());
        }
        Ok(())
    };
    let result = |i: usize, m: &Value| match check(m) {
        Ok(()) => json!({"To": m["To"], "SubmittedAt": "2026-03-02T10:00:00Z",
                         "MessageID": format!("pm-{}-{i}", r.number), "ErrorCode": 0, "Message": "OK"}),
        Err(e) => json!({"ErrorCode": 300, "Message": e}),
    };
    match (r.path.as_str(), &body) {
        ("/email/batch", Value::Array(all)) => ScriptedResponse::json(
            200,
            Value::Array(all.iter().enumerate().map(|(i, m)| result(i, m)).collect()),
        ),
        ("/email", m @ Value::Object(_)) => match check(m) {
            Ok(()) => ScriptedResponse::json(200, result(0, m)),
            Err(e) => error(422, 300, &e),
        },
        _ => error(422, 402, "Received invalid JSON input."),
    }
}

/// SendGrid: `POST /v3/mail/send`, `Authorization: Bearer KEY`, JSON with
/// `personalizations[].to`, `from.email`, `subject`, `content`; 401 / 400 with `errors`; 202
/// with `X-Message-Id`.
pub fn sendgrid(server: &RecordingServer, key: &'static str) {
    server.respond_with(move |r| sendgrid_answer(r, key));
}

fn sendgrid_answer(r: &RecordedRequest, key: &str) -> ScriptedResponse {
    let errors = |status: u16, field: Option<&str>, message: &str| {
        ScriptedResponse::json(
            status,
            json!({"errors": [{"message": message, "field": field, "help": null}]}),
        )
    };
    if r.method != "POST" || r.path != "/v3/mail/send" {
        return ScriptedResponse::status(404);
    }
    if r.header("authorization") != Some(&format!("Bearer {key}")) {
        return errors(
            401,
            None,
            "The provided authorization grant is invalid, expired, or revoked",
        );
    }
    let Ok(body) = serde_json::from_slice::<Value>(&r.body) else {
        return errors(400, None, "Bad Request");
    };
    let to = body
        .pointer("/personalizations/0/to/0/email")
        .and_then(Value::as_str);
    if to.is_none_or(|t| !t.contains('@')) {
        return errors(
            400,
            Some("personalizations.0.to.0.email"),
            "Does not contain a valid address.",
        );
    }
    if body
        .pointer("/from/email")
        .and_then(Value::as_str)
        .is_none()
    {
        return errors(
            400,
            Some("from.email"),
            "The from email does not contain a valid address.",
        );
    }
    if body
        .get("subject")
        .and_then(Value::as_str)
        .is_none_or(str::is_empty)
    {
        return errors(400, Some("subject"), "The subject is required.");
    }
    if body
        .get("content")
        .and_then(Value::as_array)
        .is_none_or(Vec::is_empty)
    {
        return errors(
            400,
            Some("content"),
            "Unless a valid template_id is provided, the content parameter is required.",
        );
    }
    ScriptedResponse::status(202).with_header("x-message-id", &format!("sg-{}", r.number))
}

/// Mailgun: `POST /v3/{domain}/messages.mime`, basic auth `api:KEY`, multipart with `to` and
/// `message`; 401 "Forbidden", 400 `'to' parameter is missing`; 200 with the message's own
/// Message-ID as `id`.
pub fn mailgun(server: &RecordingServer, key: &'static str, domain: &'static str) {
    server.respond_with(move |r| mailgun_answer(r, key, domain));
}

fn mailgun_answer(r: &RecordedRequest, key: &str, domain: &str) -> ScriptedResponse {
    use base64::Engine as _;
    if r.method != "POST" || r.path != format!("/v3/{domain}/messages.mime") {
        return ScriptedResponse::json(404, json!({"message": "Domain not found"}));
    }
    let expected = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("api:{key}"))
    );
    if r.header("authorization") != Some(expected.as_str()) {
        return ScriptedResponse::status(401).with_body("Forbidden");
    }
    let Ok(parts) = parse_multipart(r.header("content-type").unwrap_or_default(), &r.body) else {
        return ScriptedResponse::json(400, json!({"message": "Bad request"}));
    };
    let part = |name: &str| parts.iter().find(|p| p.name == name);
    if part("to").is_none_or(|p| p.data.is_empty()) {
        return ScriptedResponse::json(400, json!({"message": "'to' parameter is missing"}));
    }
    let Some(message) = part("message") else {
        return ScriptedResponse::json(400, json!({"message": "'message' parameter is missing"}));
    };
    let text = String::from_utf8_lossy(&message.data);
    let id = text
        .lines()
        .find_map(|l| {
            let (name, value) = l.split_once(':')?;
            name.eq_ignore_ascii_case("message-id")
                .then(|| value.trim().to_string())
        })
        .unwrap_or_else(|| format!("<mg-{}@{domain}>", r.number));
    ScriptedResponse::json(200, json!({"id": id, "message": "Queued. Thank you."}))
}
