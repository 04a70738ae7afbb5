//! Sending limits through the real pipeline (SMTP to a capturing server, SQLite, a
//! controllable clock): nothing goes over a limit, deferred work goes out later, nothing is
//! dropped. And DKIM: every message carries a signature over the headers that matter.

use crate::support;

use std::path::Path;
use std::sync::Arc;

use chrono::{DateTime, TimeZone, Utc};
use rewarm::app::{Loaded, build_transport};
use rewarm::domain::email::EmailAddress;
use rewarm::domain::lead::NewLead;
use rewarm::store::prelude::*;
use rewarm::store::sqlite::SqliteStore;
use support::bin::dir_with_templates;
use support::config::TestConfig;
use support::smtp_server::TestSmtpServer;
use tokio_util::sync::CancellationToken;

/// SMTP to the test server (2 connections), one email per lead, any time; `extra` is TOML
/// tables of its own (limits, DKIM), written after the rest.
fn config(dir: &Path, port: u16, extra: &str) -> String {
    let config = TestConfig::new(&format!("sqlite://{}", dir.join("r.db").display()))
        .templates_dir(&dir.join("templates"))
        .smtp(port, 2)
        .campaign_key("checkin", "max_touches", "1")
        .any_time("checkin")
        .toml();
    format!("{config}\n{extra}")
}
async fn setup(
    extra: &str,
    leads: &[&str],
) -> (
    tempfile::TempDir,
    TestSmtpServer,
    SqliteStore,
    Arc<Loaded>,
    DateTime<Utc>,
) {
    let dir = dir_with_templates();
    let server = TestSmtpServer::start().await;
    let settings =
        rewarm::config::Settings::from_toml(&config(dir.path(), server.port(), extra), "test.toml")
            .unwrap();
    let store = SqliteStore::connect(&format!("sqlite://{}", dir.path().join("r.db").display()))
        .await
        .unwrap();
    store.migrate().await.unwrap();
    let now = Utc.with_ymd_and_hms(2026, 6, 1, 12, 0, 0).unwrap();
    let new: Vec<NewLead> = leads
        .iter()
        .map(|e| NewLead {
            email: Some(EmailAddress::parse(e).unwrap()),
            first_name: Some("Pat".into()),
            lost_at: Some(now - chrono::Duration::days(200)),
            ..Default::default()
        })
        .collect();
    store.upsert_leads(&new, "test", now).await.unwrap();
    let loaded = Arc::new(Loaded::with_settings(settings).unwrap());
    (dir, server, store, loaded, now)
}

#[tokio::test]
async fn a_daily_cap_defers_the_rest_to_the_next_day_and_drops_nothing() {
    let leads: Vec<String> = (0..5).map(|i| format!("lead{i}@example.com")).collect();
    let refs: Vec<&str> = leads.iter().map(String::as_str).collect();
    let (_dir, server, store, loaded, now) =
        setup("[transport.limits]\ndaily_cap = 3\n", &refs).await;
    let transport = build_transport(&loaded.settings).unwrap();
    let stop = CancellationToken::new();

    let first = rewarm::outbound::scheduler::pass(&store, &loaded, &transport, now, true, &stop)
        .await
        .unwrap();
    assert_eq!((first.sent, first.deferred), (3, 2), "{first:?}");
    assert_eq!(server.count(), 3);
    // An hour later the cap still holds.
    let later = rewarm::outbound::scheduler::pass(
        &store,
        &loaded,
        &transport,
        now + chrono::Duration::hours(1),
        false,
        &stop,
    )
    .await
    .unwrap();
    assert_eq!(later.sent, 0, "{later:?}");
    assert_eq!(server.count(), 3);
    // A day later the window has rolled: the two deferred go out, once each.
    for hours in [25, 26, 30] {
        rewarm::outbound::scheduler::pass(
            &store,
            &loaded,
            &transport,
            now + chrono::Duration::hours(hours),
            false,
            &stop,
        )
        .await
        .unwrap();
    }
    assert_eq!(server.count(), 5);
    let mut recipients: Vec<String> = server
        .messages()
        .iter()
        .flat_map(|m| m.rcpt_to.clone())
        .collect();
    recipients.sort();
    recipients.dedup();
    assert_eq!(recipients.len(), 5, "every lead got exactly one email");
    // The deferral did not use up an attempt.
    let timeline = store
        .timeline(
            store
                .lead_by_email(&EmailAddress::parse(&recipients[4]).unwrap())
                .await
                .unwrap()
                .unwrap()
                .id,
        )
        .await
        .unwrap();
    let sent = timeline
        .iter()
        .find(|e| e.kind == "sent")
        .expect("sent event");
    assert_eq!(sent.detail["attempt"], 1);
}

#[tokio::test]
async fn a_per_domain_rate_never_sends_more_than_allowed_at_once() {
    let leads: Vec<String> = (0..6)
        .map(|i| format!("lead{i}@slow.example"))
        .chain((0..2).map(|i| format!("x{i}@fast.example")))
        .collect();
    let refs: Vec<&str> = leads.iter().map(String::as_str).collect();
    let extra = "[transport.limits]\n[[transport.limits.domain]]\ndomains = [\"slow.example\"]\nper_second = 0.001\nburst = 2\nconcurrency = 2\n";
    let (_dir, server, store, loaded, now) = setup(extra, &refs).await;
    let transport = build_transport(&loaded.settings).unwrap();
    let stop = CancellationToken::new();
    let report = rewarm::outbound::scheduler::pass(&store, &loaded, &transport, now, true, &stop)
        .await
        .unwrap();
    let slow = server
        .messages()
        .iter()
        .filter(|m| m.rcpt_to.iter().any(|r| r.ends_with("@slow.example")))
        .count();
    let fast = server
        .messages()
        .iter()
        .filter(|m| m.rcpt_to.iter().any(|r| r.ends_with("@fast.example")))
        .count();
    assert_eq!((slow, fast), (2, 2), "{report:?}");
    assert_eq!(report.deferred, 4);
    let pending = store.pending_deliveries().await.unwrap();
    assert_eq!(pending.len(), 4, "deferred, not dropped");
    assert!(pending.iter().all(|p| p.due_at > now));
}

#[tokio::test]
async fn every_message_is_dkim_signed_over_the_headers_that_matter() {
    let Ok(out) = std::process::Command::new("openssl")
        .args(["genrsa", "-traditional", "2048"])
        .output()
    else {
        support::skip("openssl is not installed (needed to make a test DKIM key)");
        return;
    };
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let pem = String::from_utf8(out.stdout).unwrap();
    assert!(pem.contains("BEGIN RSA PRIVATE KEY"));
    // SAFETY of set_var: std serialises it with the environment reads of std (and of every
    // `Command` spawn) in this binary; only this test reads the variable.
    unsafe { std::env::set_var("REWARM_TEST_DKIM_KEY", &pem) };
    let extra = "[dkim]\ndomain = \"acme.example\"\nselector = \"rw1\"\nkey_env = \"REWARM_TEST_DKIM_KEY\"\n";
    let (_dir, server, store, loaded, now) = setup(extra, &["dk@example.com"]).await;
    let transport = build_transport(&loaded.settings).unwrap();
    rewarm::outbound::scheduler::pass(
        &store,
        &loaded,
        &transport,
        now,
        true,
        &CancellationToken::new(),
    )
    .await
    .unwrap();
    let messages = server.messages();
    assert_eq!(messages.len(), 1);
    let text = String::from_utf8_lossy(&messages[0].data).into_owned();
    let head = text
        .split("\r\n\r\n")
        .next()
        .unwrap()
        .replace("\r\n ", " ")
        .replace("\r\n\t", " ");
    let sig = head
        .lines()
        .find(|l| l.to_ascii_lowercase().starts_with("dkim-signature:"))
        .expect("a DKIM-Signature header");
    assert!(
        sig.contains("d=acme.example") && sig.contains("s=rw1") && sig.contains("a=rsa-sha256"),
        "{sig}"
    );
    let h = sig
        .split("h=")
        .nth(1)
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_ascii_lowercase()
        .replace(' ', "");
    for header in [
        "from",
        "subject",
        "date",
        "message-id",
        "list-unsubscribe",
        "list-unsubscribe-post",
    ] {
        assert!(
            h.split(':').any(|x| x == header),
            "{header} not signed: h={h}"
        );
    }
    verify_with_dkimpy(&pem, &messages[0].data);
}

/// An independent verifier: dkimpy (Debian's `python3-dkim`, installed by `.ci/run`) checks
/// the signature against the public key, served as the selector's DNS TXT record.
fn verify_with_dkimpy(private_pem: &str, message: &[u8]) {
    use std::io::Write as _;
    use std::process::{Command, Stdio};
    let python = "/usr/bin/python3";
    let has_dkimpy = Command::new(python)
        .args(["-c", "import dkim"])
        .status()
        .is_ok_and(|s| s.success());
    if !has_dkimpy {
        support::skip("the dkimpy check: python3-dkim is not installed (.ci/run installs it)");
        return;
    }
    let mut openssl = Command::new("openssl")
        .args(["rsa", "-pubout", "-outform", "DER"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("openssl");
    openssl
        .stdin
        .take()
        .unwrap()
        .write_all(private_pem.as_bytes())
        .unwrap();
    let der = openssl.wait_with_output().expect("openssl rsa -pubout");
    assert!(
        der.status.success(),
        "{}",
        String::from_utf8_lossy(&der.stderr)
    );
    use base64::Engine as _;
    let public = base64::engine::general_purpose::STANDARD.encode(&der.stdout);
    let dir = tempfile::tempdir().unwrap();
    let eml = dir.path().join("signed.eml");
    std::fs::write(&eml, message).unwrap();
    let script = r#"
import sys, dkim
message = open(sys.argv[1], "rb").read()
record = ("v=DKIM1; k=rsa; p=" + sys.argv[2]).encode()
def dns(name, timeout=5):
    assert name == b"rw1._domainkey.acme.example." or name == "rw1._domainkey.acme.example.", name
    return record
sys.exit(0 if dkim.verify(message, dnsfunc=dns) else 1)
"#;
    let out = Command::new(python)
        .args(["-c", script])
        .arg(&eml)
        .arg(&public)
        .output()
        .expect("python3");
    assert!(
        out.status.success(),
        "dkimpy rejects the signature: {}\n{}",
        String::from_utf8_lossy(&out.stderr),
        String::from_utf8_lossy(message)
    );
    // A changed subject breaks it: the verifier really checks.
    let tampered = String::from_utf8_lossy(message).replacen("Subject: ", "Subject: Re: ", 1);
    std::fs::write(&eml, tampered).unwrap();
    let out = Command::new(python)
        .args(["-c", script])
        .arg(&eml)
        .arg(&public)
        .output()
        .expect("python3");
    assert!(!out.status.success(), "a tampered message verified");
}
