//! Input limits and validation at the door (issue 9, part 9): the real binary imports files and
//! the real HTTP API takes leads, and both refuse, with a clear error naming row and field, a
//! value longer than `ingest.max_field_length` and an address no transport could send; a
//! `javascript:` URL in a lead's data never reaches an `href` of the email.

use serde_json::json;

use crate::support::bin::{dir_with_templates, rewarm, stderr_of, stdout_of};
use crate::support::config::TestConfig;
use crate::support::http_app::HttpApp;

const NOW: &str = "2026-03-02T10:00:00Z";

fn import(dir: &std::path::Path, file: &str, body: &str) -> (String, String) {
    std::fs::write(dir.join(file), body).expect("write the import");
    let out = rewarm(
        dir,
        &[
            "--config",
            "rewarm.toml",
            "--now",
            NOW,
            "leads",
            "import",
            file,
        ],
    );
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    (stdout, stderr_of(&out))
}

fn show(dir: &std::path::Path, email: &str) -> serde_json::Value {
    let out = rewarm(
        dir,
        &[
            "--config",
            "rewarm.toml",
            "--now",
            NOW,
            "leads",
            "show",
            email,
            "--json",
        ],
    );
    serde_json::from_str(&stdout_of(&out)).expect("leads show --json")
}

#[test]
fn an_overlong_field_and_an_unsendable_address_are_refused_at_import_naming_row_and_field() {
    let dir = dir_with_templates();
    TestConfig::new("sqlite://rewarm.db")
        .templates_dir(&dir.path().join("templates"))
        .write(&dir.path().join("rewarm.toml"));
    let huge = "A".repeat(1_000_000);
    let csv = format!(
        "email,first_name,company\nok@example.com,Ok,Acme\nhuge@example.com,{huge},Acme\n\"\"\"quoted,comma\"\"@example.com\",Q,Acme\nfine@example.com,Fine,{}\n",
        "B".repeat(1_000)
    );
    let (_, stderr) = import(dir.path(), "leads.csv", &csv);
    assert!(
        stderr.contains("leads.csv:3: field `first_name`"),
        "{stderr}"
    );
    assert!(stderr.contains("first_name"), "names the field: {stderr}");
    assert!(stderr.contains("longer than 1000 characters"), "{stderr}");
    assert!(stderr.contains("ingest.max_field_length"), "{stderr}");
    assert!(stderr.contains("leads.csv:4: field `email`"), "{stderr}");
    assert!(stderr.contains("quoted"), "{stderr}");
    assert!(
        !stderr.contains(&"A".repeat(200)),
        "the huge value is not echoed back"
    );
    // The good rows went in (1,000 characters exactly is allowed); the bad ones did not.
    assert_eq!(
        show(dir.path(), "ok@example.com")["lead"]["first_name"],
        "Ok"
    );
    assert_eq!(
        show(dir.path(), "fine@example.com")["lead"]["company"]
            .as_str()
            .map(str::len),
        Some(1_000)
    );
    let out = rewarm(
        dir.path(),
        &[
            "--config",
            "rewarm.toml",
            "leads",
            "show",
            "huge@example.com",
        ],
    );
    assert!(!out.status.success(), "the overlong row was not imported");

    // JSON Lines, and a configured (smaller) limit.
    TestConfig::new("sqlite://rewarm.db")
        .templates_dir(&dir.path().join("templates"))
        .set("ingest", "max_field_length", "10")
        .write(&dir.path().join("rewarm.toml"));
    let jsonl = concat!(
        "{\"email\": \"short@example.com\", \"company\": \"Initech\"}\n",
        "{\"email\": \"long@example.com\", \"company\": \"Initech Corporation\"}\n",
        "{\"email\": \"custom@example.com\", \"fields\": {\"note\": \"far more than ten\"}}\n",
    );
    let (_, stderr) = import(dir.path(), "more.jsonl", jsonl);
    assert!(stderr.contains("more.jsonl:2: field `company`"), "{stderr}");
    assert!(stderr.contains("longer than 10 characters"), "{stderr}");
    assert!(stderr.contains("more.jsonl:3: field `note`"), "{stderr}");
    assert_eq!(
        show(dir.path(), "short@example.com")["lead"]["company"],
        "Initech"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_api_refuses_the_same_overlong_fields_and_unsendable_addresses() {
    let app = HttpApp::spawn_with(Some(crate::support::http_app::API_TOKEN)).await;
    let (status, answer) = app
        .post_leads(&json!([
            {"email": "ok@example.com", "first_name": "Ok"},
            {"email": "huge@example.com", "first_name": "A".repeat(5_000)},
            {"email": "\"quoted,comma\"@example.com", "first_name": "Q"},
            {"email": "a..b@example.com"},
        ]))
        .await;
    assert_eq!(status.as_u16(), 422, "{answer}");
    let text = answer.to_string();
    assert!(
        text.contains("first_name") && text.contains("longer than 1000 characters"),
        "{text}"
    );
    assert!(text.contains("quoted"), "{text}");
    assert!(text.contains("a..b@example.com"), "{text}");
    assert!(app.find_lead("huge@example.com").await.is_none());
    assert!(
        app.find_lead("\"quoted,comma\"@example.com")
            .await
            .is_none()
    );
}

#[test]
fn a_javascript_url_from_a_lead_field_never_reaches_an_href() {
    let dir = dir_with_templates();
    let templates = dir.path().join("templates");
    let html = std::fs::read_to_string(templates.join("checkin/html.html")).expect("html template");
    std::fs::write(
        templates.join("checkin/html.html"),
        format!(
            "<p><a href=\"{{{{ lead.fields.website }}}}\">your site</a> <a href=\"https://acme.example/pricing\">pricing</a></p>\n{html}"
        ),
    )
    .expect("write the template");
    TestConfig::new("sqlite://rewarm.db")
        .templates_dir(&templates)
        .any_time("checkin")
        .write(&dir.path().join("rewarm.toml"));
    let (_, stderr) = import(
        dir.path(),
        "leads.csv",
        "email,first_name,lost_at,website\nevil@example.com,Eve,2025-06-01,javascript:alert(document.cookie)\ngood@example.com,Gus,2025-06-01,https://gus.example/\n",
    );
    assert!(!stderr.contains("rejected"), "{stderr}");
    // The raw message, its quoted-printable soft line breaks and `=3D` undone.
    let preview = |email: &str| {
        stdout_of(&rewarm(
            dir.path(),
            &[
                "--config",
                "rewarm.toml",
                "--now",
                NOW,
                "preview",
                "--lead",
                email,
                "--raw",
            ],
        ))
        .replace("=\r\n", "")
        .replace("=\n", "")
        .replace("=3D", "=")
    };
    let evil = preview("evil@example.com");
    assert!(!evil.to_ascii_lowercase().contains("javascript:"), "{evil}");
    assert!(evil.contains("<a href=\"#\">your site</a>"), "{evil}");
    assert!(
        evil.contains("acme.example/pricing"),
        "other links stay: {evil}"
    );
    let good = preview("good@example.com");
    // (Tera's autoescape writes `/` as `&#x2F;`: the same URL to a mail reader.)
    assert!(
        good.contains("<a href=\"https:&#x2F;&#x2F;gus.example&#x2F;\">your site</a>"),
        "an http(s) link from a lead stays: {good}"
    );
}
