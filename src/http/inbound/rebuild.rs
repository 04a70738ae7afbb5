//! A message rebuilt from a provider's parsed fields (for providers that post parsed mail
//! rather than the raw message), so it takes the same path as raw mail.

use super::bare_id;

/// Headers we write ourselves when rebuilding a message (the provider's copies are skipped).
const OWN_HEADERS: [&str; 8] = [
    "from",
    "to",
    "subject",
    "message-id",
    "date",
    "content-type",
    "content-transfer-encoding",
    "mime-version",
];

/// The value of header `name` (any case) among a provider's `(name, value)` list.
pub(super) fn header_in(headers: &[(String, String)], name: &str) -> Option<String> {
    headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.clone())
}

/// The parts a rebuilt message is written from.
pub(super) struct Synth {
    pub(super) from: String,
    pub(super) to: String,
    pub(super) subject: String,
    pub(super) message_id: String,
    pub(super) date: String,
    pub(super) extra: Vec<(String, String)>,
    pub(super) text: String,
    pub(super) html: String,
}

/// Writes an RFC 5322 message (UTF-8, 8bit) from parsed parts.
pub(super) fn synthesize(m: Synth) -> Vec<u8> {
    // A header value must stay on its line: CR and LF become spaces.
    let clean = |v: &str| v.replace(['\r', '\n'], " ");
    let mut out = String::new();
    let mut put = |name: &str, value: &str| {
        if !value.trim().is_empty() {
            out.push_str(&format!("{}: {}\r\n", clean(name), clean(value)));
        }
    };
    put("From", &m.from);
    put("To", &m.to);
    put("Subject", &m.subject);
    let id = bare_id(&m.message_id);
    if !id.is_empty() {
        put("Message-ID", &format!("<{id}>"));
    }
    put("Date", &m.date);
    for (name, value) in &m.extra {
        let valid = !name.is_empty() && name.bytes().all(|b| b.is_ascii_graphic() && b != b':');
        if valid && !OWN_HEADERS.contains(&name.to_ascii_lowercase().as_str()) {
            put(name, value);
        }
    }
    put("MIME-Version", "1.0");
    let crlf = |body: &str| body.replace("\r\n", "\n").replace('\n', "\r\n");
    if !m.html.trim().is_empty() && !m.text.trim().is_empty() {
        let boundary = format!("=_rewarm_{}", &crate::hex::sha256(m.text.as_bytes())[..16]);
        put(
            "Content-Type",
            &format!("multipart/alternative; boundary=\"{boundary}\""),
        );
        out.push_str("\r\n");
        for (kind, body) in [("plain", &m.text), ("html", &m.html)] {
            out.push_str(&format!(
                "--{boundary}\r\nContent-Type: text/{kind}; charset=utf-8\r\n\
                 Content-Transfer-Encoding: 8bit\r\n\r\n{}\r\n",
                crlf(body)
            ));
        }
        out.push_str(&format!("--{boundary}--\r\n"));
    } else {
        let (kind, body) = if m.text.trim().is_empty() && !m.html.trim().is_empty() {
            ("html", &m.html)
        } else {
            ("plain", &m.text)
        };
        put("Content-Type", &format!("text/{kind}; charset=utf-8"));
        put("Content-Transfer-Encoding", "8bit");
        out.push_str("\r\n");
        out.push_str(&crlf(body));
        out.push_str("\r\n");
    }
    out.into_bytes()
}
