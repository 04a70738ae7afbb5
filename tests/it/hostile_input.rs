//! Lead data can never inject headers or markup: hostile fields go through import → render →
//! send (file transport), and the message is read back by a parser of our own that knows
//! nothing of how it was built.

use crate::support::bin::rewarm;
use crate::support::config::TestConfig;

/// The file transport into `outbox/`, one campaign `hello` due at once at any hour.
fn config() -> String {
    TestConfig::bare("sqlite://hostile.db")
        .timezone("UTC")
        .set_str(
            "compliance",
            "postal_address",
            "Acme Inc., 1 Example Street, Paris",
        )
        .file_transport("outbox")
        .segment("all", "hello")
        .campaign("hello", "0d", "30d")
        .any_time("hello")
        // Long values must still fold into valid headers: allow them past the default 1,000.
        .set("ingest", "max_field_length", "20000")
        .toml()
}

/// Headers of a message as (name, unfolded value), and the body.
fn parse(message: &[u8]) -> (Vec<(String, String)>, String) {
    let text = String::from_utf8_lossy(message).into_owned();
    let (head, body) = text
        .split_once("\r\n\r\n")
        .expect("a blank line between headers and body");
    for line in head.split("\r\n") {
        assert!(
            line.len() <= 998,
            "a header line longer than 998 octets: {} …",
            &line[..80]
        );
        assert!(line.is_ascii(), "a non-ASCII header line: {line}");
    }
    let mut headers: Vec<(String, String)> = Vec::new();
    for line in head.split("\r\n") {
        if line.starts_with(' ') || line.starts_with('\t') {
            let last = headers
                .last_mut()
                .expect("a continuation line after a header");
            last.1.push_str(line);
        } else {
            let (name, value) = line.split_once(':').expect("every header line has a name");
            headers.push((name.to_ascii_lowercase(), value.trim().to_string()));
        }
    }
    (headers, body.to_string())
}

/// The decoded text/html part of a multipart body (quoted-printable or 7/8-bit).
fn html_part(body: &str) -> String {
    let start = body.find("Content-Type: text/html").expect("an HTML part");
    let part = &body[start..];
    let (head, rest) = part.split_once("\r\n\r\n").expect("part headers");
    let content = rest.split("\r\n--").next().unwrap_or(rest);
    if !head.to_ascii_lowercase().contains("quoted-printable") {
        return content.to_string();
    }
    let joined = content.replace("=\r\n", "");
    let bytes = joined.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'='
            && i + 2 < bytes.len()
            && let Ok(b) = u8::from_str_radix(&joined[i + 1..i + 3], 16)
        {
            out.push(b);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[test]
fn hostile_lead_fields_cannot_add_headers_or_markup() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    std::fs::write(root.join("rewarm.toml"), config()).unwrap();
    std::fs::create_dir_all(root.join("templates/hello")).unwrap();
    std::fs::write(
        root.join("templates/hello/subject.txt"),
        "News for {{ lead.company }} {{ lead.fields.note }}",
    )
    .unwrap();
    std::fs::write(
        root.join("templates/hello/text.txt"),
        "Hi {{ lead.first_name }} {{ lead.last_name }} of {{ lead.company }}\n{{ postal_address }}\n{{ unsubscribe_url }}\n",
    )
    .unwrap();
    std::fs::write(
        root.join("templates/hello/html.html"),
        "<p>Hi {{ lead.first_name }} of {{ lead.company }}</p><p>{{ postal_address }} <a href=\"{{ unsubscribe_url }}\">unsubscribe</a></p>",
    )
    .unwrap();
    let long = "x".repeat(10_000);
    let csv = format!(
        "email,first_name,last_name,company,note\n\
         \"inject@example.com\",\"Ann\r\nBcc: victim@evil.example\",Smith,Acme,ok\n\
         script@example.com,Bob,Lee,\"<script>alert(1)</script>\",\"line one\u{2028}Bcc: y@evil.example\r\nBcc: x@evil.example\"\n\
         long@example.com,Cy,Long,{long},\"{long}\"\n"
    );
    std::fs::write(root.join("leads.csv"), csv).unwrap();

    let import = rewarm(
        root,
        &["--config", "rewarm.toml", "leads", "import", "leads.csv"],
    );
    let stderr = String::from_utf8_lossy(&import.stderr);
    // A line break in a name is refused at the door, with its line number.
    assert!(stderr.contains("leads.csv:2"), "{stderr}");
    assert_eq!(
        import.status.code(),
        Some(3),
        "imported with one row rejected: {stderr}"
    );

    let run = rewarm(
        root,
        &[
            "--config",
            "rewarm.toml",
            "run",
            "--once",
            "--now",
            "2099-03-02T10:00:00Z",
        ],
    );
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let mut messages: Vec<_> = std::fs::read_dir(root.join("outbox"))
        .unwrap()
        .map(|e| std::fs::read(e.unwrap().path()).unwrap())
        .collect();
    messages.sort();
    assert_eq!(messages.len(), 2, "the two accepted leads got their email");
    for message in &messages {
        let (headers, body) = parse(message);
        for name in [
            "from",
            "to",
            "subject",
            "date",
            "message-id",
            "list-unsubscribe",
            "list-unsubscribe-post",
        ] {
            assert_eq!(
                headers.iter().filter(|(n, _)| n == name).count(),
                1,
                "exactly one {name}: {headers:?}"
            );
        }
        assert!(
            !headers.iter().any(|(n, _)| n == "bcc" || n == "cc"),
            "no injected recipient header: {headers:?}"
        );
        let html = html_part(&body);
        assert!(
            !html.contains("<script>"),
            "lead markup is escaped in HTML: {html}"
        );
        if html.contains("alert(1)") {
            assert!(html.contains("&lt;script&gt;"), "escaped as text: {html}");
        }
    }
}
