//! The IMAP poller against a real Dovecot (started per test on a free loopback port, see
//! tests/it/support/dovecot.rs): messages are APPENDed over IMAP, `ImapPoller::poll_once` hands
//! them out, the state lives in a real SQLite store. Without `dovecot` installed every test
//! prints SKIPPED and passes, and fails under `CI=true` (`.ci/run` installs dovecot-imapd).

use crate::support;

use std::sync::{Arc, Mutex};

use rewarm::inbound::imap::{ImapPoller, PROCESSED_KEYWORD};
use rewarm::store::prelude::*;
use rewarm::store::sqlite::SqliteStore;
use support::config::pipeline_fixture;
use support::dovecot::Dovecot;

/// A realistic reply, CRLF line ends (what IMAP hands back byte for byte).
fn message(n: usize) -> Vec<u8> {
    format!(
        "Return-Path: <lead{n}@example.org>\r\n\
         From: Lead {n} <lead{n}@example.org>\r\n\
         To: Claire <reply@acme.test>\r\n\
         Subject: Re: Checking in ({n})\r\n\
         Date: Mon, 23 Nov 2026 10:0{n}:00 +0000\r\n\
         Message-ID: <reply-{n}@example.org>\r\n\
         MIME-Version: 1.0\r\n\
         Content-Type: text/plain; charset=utf-8\r\n\
         \r\n\
         Hi Claire,\r\n\
         this is reply number {n}. Let's talk.\r\n"
    )
    .into_bytes()
}

async fn store() -> (tempfile::TempDir, SqliteStore) {
    let dir = tempfile::tempdir().expect("tempdir");
    let url = format!("sqlite://{}", dir.path().join("rewarm.db").display());
    let store = SqliteStore::connect(&url).await.expect("open the database");
    store.migrate().await.expect("migrate");
    (dir, store)
}

type Seen = Arc<Mutex<Vec<(Vec<u8>, String)>>>;

/// A handler that records what it got and accepts everything.
fn recorder(
    seen: &Seen,
) -> impl FnMut(Vec<u8>, String) -> std::future::Ready<anyhow::Result<()>> + use<> {
    let seen = seen.clone();
    move |raw, key| {
        seen.lock().unwrap().push((raw, key));
        std::future::ready(Ok(()))
    }
}

fn keys(seen: &Seen) -> Vec<String> {
    seen.lock()
        .unwrap()
        .iter()
        .map(|(_, k)| k.clone())
        .collect()
}

fn raws(seen: &Seen) -> Vec<Vec<u8>> {
    seen.lock()
        .unwrap()
        .iter()
        .map(|(r, _)| r.clone())
        .collect()
}

async fn poll(poller: &ImapPoller, store: &SqliteStore, seen: &Seen, server: &Dovecot) -> usize {
    match poller.poll_once(store, recorder(seen)).await {
        Ok(n) => n,
        Err(e) => panic!("poll_once: {e:#}\n{}", server.logs()),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_appended_messages_are_handled_once_each_and_moved_to_the_processed_mailbox() {
    let Some(server) = Dovecot::start().await else {
        return;
    };
    let (_dir, store) = store().await;
    for n in 1..=3 {
        server.append("INBOX", &message(n)).await;
    }
    let uidvalidity = server.uidvalidity("INBOX").await;
    let poller = ImapPoller::new(
        server.settings("INBOX", Some("Processed")),
        server.password(),
    );

    let seen: Seen = Default::default();
    assert_eq!(poll(&poller, &store, &seen, &server).await, 3);
    assert_eq!(raws(&seen), (1..=3).map(message).collect::<Vec<_>>());
    assert_eq!(
        keys(&seen),
        (1..=3)
            .map(|uid| format!("imap:127.0.0.1:INBOX:{uidvalidity}:{uid}"))
            .collect::<Vec<_>>()
    );

    // Moved: INBOX is empty, Processed holds the three, unchanged.
    assert!(server.messages("INBOX").await.is_empty());
    let processed = server.messages("Processed").await;
    assert_eq!(
        processed.iter().map(|m| m.raw.clone()).collect::<Vec<_>>(),
        (1..=3).map(message).collect::<Vec<_>>()
    );

    // The state is in the store.
    assert_eq!(
        store.kv_get("imap:127.0.0.1:INBOX:last_uid").await.unwrap(),
        Some("3".to_string())
    );
    assert_eq!(
        store
            .kv_get("imap:127.0.0.1:INBOX:uidvalidity")
            .await
            .unwrap(),
        Some(uidvalidity.to_string())
    );

    // A second poll finds nothing.
    assert_eq!(poll(&poller, &store, &seen, &server).await, 0);
    assert_eq!(seen.lock().unwrap().len(), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_processed_mailbox_messages_are_flagged_and_a_restart_reads_nothing_twice() {
    let Some(server) = Dovecot::start().await else {
        return;
    };
    let (_dir, store) = store().await;
    for n in 1..=3 {
        server.append("INBOX", &message(n)).await;
    }
    let seen: Seen = Default::default();
    {
        let poller = ImapPoller::new(server.settings("INBOX", None), server.password());
        assert_eq!(poll(&poller, &store, &seen, &server).await, 3);
        assert_eq!(poll(&poller, &store, &seen, &server).await, 0);
    }
    // Flagged \Seen and $rewarm, still in INBOX.
    let inbox = server.messages("INBOX").await;
    assert_eq!(inbox.len(), 3, "{inbox:?}");
    for m in &inbox {
        assert!(m.seen, "not \\Seen: {m:?}");
        assert!(
            m.keywords.iter().any(|k| k == PROCESSED_KEYWORD),
            "no {PROCESSED_KEYWORD}: {m:?}"
        );
    }

    // "Restart": a new poller on the same store reads nothing.
    let poller = ImapPoller::new(server.settings("INBOX", None), server.password());
    assert_eq!(poll(&poller, &store, &seen, &server).await, 0);

    // One more arrives: exactly that one.
    server.append("INBOX", &message(4)).await;
    let poller = ImapPoller::new(server.settings("INBOX", None), server.password());
    assert_eq!(poll(&poller, &store, &seen, &server).await, 1);
    assert_eq!(raws(&seen), (1..=4).map(message).collect::<Vec<_>>());
    let keys = keys(&seen);
    let distinct: std::collections::BTreeSet<_> = keys.iter().collect();
    assert_eq!(distinct.len(), 4, "{keys:?}");
    assert_eq!(poll(&poller, &store, &seen, &server).await, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_handler_error_stops_the_poll_there_and_the_next_poll_resumes_without_skipping_or_repeating()
 {
    let Some(server) = Dovecot::start().await else {
        return;
    };
    let (_dir, store) = store().await;
    for n in 1..=3 {
        server.append("INBOX", &message(n)).await;
    }
    let poller = ImapPoller::new(server.settings("INBOX", Some("Done")), server.password());

    let seen: Seen = Default::default();
    let attempts = Arc::new(Mutex::new(Vec::<Vec<u8>>::new()));
    let failing = {
        let seen = seen.clone();
        let attempts = attempts.clone();
        move |raw: Vec<u8>, key: String| {
            attempts.lock().unwrap().push(raw.clone());
            let fail = raw == message(2);
            if !fail {
                seen.lock().unwrap().push((raw, key));
            }
            async move {
                if fail {
                    anyhow::bail!("the database is down")
                }
                Ok(())
            }
        }
    };
    let handled = poller
        .poll_once(&store, failing)
        .await
        .unwrap_or_else(|e| panic!("poll_once: {e:#}\n{}", server.logs()));
    assert_eq!(handled, 1);
    // It stopped at the failing message: the third was not even offered.
    assert_eq!(*attempts.lock().unwrap(), vec![message(1), message(2)]);
    assert_eq!(raws(&seen), vec![message(1)]);
    assert_eq!(
        store.kv_get("imap:127.0.0.1:INBOX:last_uid").await.unwrap(),
        Some("1".to_string())
    );
    // The failed one and the one after it are still in INBOX.
    let inbox = server.messages("INBOX").await;
    assert_eq!(
        inbox.iter().map(|m| m.raw.clone()).collect::<Vec<_>>(),
        vec![message(2), message(3)]
    );

    // The next poll handles 2 and 3, nothing twice.
    assert_eq!(poll(&poller, &store, &seen, &server).await, 2);
    assert_eq!(raws(&seen), (1..=3).map(message).collect::<Vec<_>>());
    let keys = keys(&seen);
    let distinct: std::collections::BTreeSet<_> = keys.iter().collect();
    assert_eq!(distinct.len(), 3, "{keys:?}");
    assert!(server.messages("INBOX").await.is_empty());
    assert_eq!(server.messages("Done").await.len(), 3);
    assert_eq!(poll(&poller, &store, &seen, &server).await, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_uidvalidity_starts_over_from_uid_1_without_error() {
    let Some(server) = Dovecot::start().await else {
        return;
    };
    let (_dir, store) = store().await;
    for n in 1..=2 {
        server.append("Replies", &message(n)).await;
    }
    let old_validity = server.uidvalidity("Replies").await;
    let poller = ImapPoller::new(server.settings("Replies", None), server.password());
    let seen: Seen = Default::default();
    assert_eq!(poll(&poller, &store, &seen, &server).await, 2);
    assert_eq!(
        store
            .kv_get("imap:127.0.0.1:Replies:last_uid")
            .await
            .unwrap(),
        Some("2".to_string())
    );

    // The mailbox is deleted and recreated (a restore, a migration…): a new UIDVALIDITY, and
    // the new message gets UID 1 again — below the stored last UID.
    server.recreate("Replies").await;
    // Dovecot derives UIDVALIDITY from the clock in seconds: make sure it differs.
    let mut new_validity = server.uidvalidity("Replies").await;
    while new_validity == old_validity {
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
        server.recreate("Replies").await;
        new_validity = server.uidvalidity("Replies").await;
    }
    server.append("Replies", &message(3)).await;
    assert_eq!(server.messages("Replies").await[0].uid, 1);

    let poller = ImapPoller::new(server.settings("Replies", None), server.password());
    assert_eq!(poll(&poller, &store, &seen, &server).await, 1);
    assert_eq!(raws(&seen), (1..=3).map(message).collect::<Vec<_>>());
    assert_eq!(
        keys(&seen)[2],
        format!("imap:127.0.0.1:Replies:{new_validity}:1")
    );
    assert_eq!(
        store
            .kv_get("imap:127.0.0.1:Replies:uidvalidity")
            .await
            .unwrap(),
        Some(new_validity.to_string())
    );
    assert_eq!(
        store
            .kv_get("imap:127.0.0.1:Replies:last_uid")
            .await
            .unwrap(),
        Some("1".to_string())
    );
    assert_eq!(poll(&poller, &store, &seen, &server).await, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_password_is_an_error_and_changes_nothing() {
    let Some(server) = Dovecot::start().await else {
        return;
    };
    let (_dir, store) = store().await;
    server.append("INBOX", &message(1)).await;
    let poller = ImapPoller::new(
        server.settings("INBOX", None),
        rewarm::secret::Secret::new("Not-The-Pass-7f3a9c"),
    );
    let seen: Seen = Default::default();
    let err = poller
        .poll_once(&store, recorder(&seen))
        .await
        .expect_err("a wrong password must fail");
    assert!(format!("{err:#}").contains("login"), "{err:#}");
    assert!(
        !format!("{err:?}").contains("Not-The-Pass-7f3a9c"),
        "the password leaked: {err:?}"
    );
    assert!(seen.lock().unwrap().is_empty());
    assert_eq!(
        store.kv_get("imap:127.0.0.1:INBOX:last_uid").await.unwrap(),
        None
    );
}

/// The end to end: a real pass sends the first step (SMTP to a capturing server), the
/// lead answers it (a reply with In-Reply-To the sent Message-ID, APPENDed to the mailbox), the
/// poller hands it to the shared inbound path, the lead is re-warmed; polling again, or a
/// restarted poller, changes nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reply_to_a_sent_email_polled_over_imap_rewarms_the_lead_once() {
    use chrono::{DateTime, Utc};
    use rewarm::app::{Loaded, build_transport};
    use rewarm::config::Settings;
    use rewarm::domain::email::EmailAddress;
    use rewarm::domain::lead::{LeadState, NewLead};
    use rewarm::inbound::process::{InboundMessage, process};

    let Some(server) = Dovecot::start().await else {
        return;
    };
    let smtp = support::smtp_server::TestSmtpServer::start().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let database_url = format!("sqlite://{}", dir.path().join("rewarm.db").display());
    let text = pipeline_fixture(&database_url, smtp.port());
    let settings = Settings::from_toml(&text, "pipeline.toml").unwrap_or_else(|e| panic!("{e}"));
    let transport = build_transport(&settings).expect("transport");
    let store = SqliteStore::connect(&database_url).await.expect("db");
    store.migrate().await.expect("migrate");
    let loaded = Arc::new(
        Loaded::with_store(settings, &store)
            .await
            .unwrap_or_else(|e| panic!("{e:#}")),
    );

    let at = |s: &str| DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc);
    let now = at("2026-03-03T10:00:00Z"); // a Tuesday, 11:00 in Berlin
    let email = EmailAddress::parse("fay@example.org").expect("address");
    store
        .upsert_leads(
            &[NewLead {
                email: Some(email.clone()),
                first_name: Some("Fay".into()),
                last_name: Some("Fine".into()),
                company: Some("Fine KG".into()),
                lost_reason: Some("no_budget".into()),
                lost_at: Some(at("2025-05-01T10:00:00Z")),
                timezone: Some(chrono_tz::Europe::Berlin),
                fields: [("industry".to_string(), "logistics".to_string())].into(),
                ..NewLead::default()
            }],
            "test",
            now,
        )
        .await
        .expect("upsert");
    let report = rewarm::outbound::scheduler::pass(
        &store,
        &loaded,
        &transport,
        now,
        true,
        &tokio_util::sync::CancellationToken::new(),
    )
    .await
    .expect("pass");
    assert_eq!(report.sent, 1, "{report:?}");
    let sent = smtp.messages();
    assert_eq!(sent.len(), 1);
    let sent_text = String::from_utf8_lossy(&sent[0].data).to_string();
    let header = |name: &str| {
        sent_text
            .lines()
            .take_while(|l| !l.is_empty())
            .find(|l| l.to_ascii_lowercase().starts_with(&format!("{name}:")))
            .map(|l| l[name.len() + 1..].trim().to_string())
            .unwrap_or_else(|| panic!("no {name} in\n{sent_text}"))
    };
    let message_id = header("message-id");
    let subject = header("subject");
    let from = header("from");

    let reply = format!(
        "From: Fay Fine <fay@example.org>\r\n\
         To: {from}\r\n\
         Subject: Re: {subject}\r\n\
         Date: Wed, 04 Mar 2026 09:12:00 +0100\r\n\
         Message-ID: <CAF-reply-1@mail.example.org>\r\n\
         In-Reply-To: {message_id}\r\n\
         References: {message_id}\r\n\
         MIME-Version: 1.0\r\n\
         Content-Type: text/plain; charset=utf-8\r\n\
         \r\n\
         Hi Claire,\r\n\
         good timing - we have budget again. Can we talk on Friday?\r\n\
         \r\n\
         Fay\r\n"
    );
    server.append("INBOX", reply.as_bytes()).await;

    let received_at = at("2026-03-04T08:15:00Z");
    let handler = || {
        let store = store.clone();
        let loaded = loaded.clone();
        move |raw: Vec<u8>, dedupe_key: String| {
            let store = store.clone();
            let loaded = loaded.clone();
            async move {
                let msg = InboundMessage {
                    raw,
                    source: "imap".into(),
                    dedupe_key,
                    received_at,
                };
                process(&store, &loaded, &msg, received_at, false)
                    .await
                    .map(|_| ())
            }
        }
    };
    let poller = ImapPoller::new(
        server.settings("INBOX", Some("Processed")),
        server.password(),
    );
    let handled = poller
        .poll_once(&store, handler())
        .await
        .unwrap_or_else(|e| panic!("poll_once: {e:#}\n{}", server.logs()));
    assert_eq!(handled, 1);
    let lead = store
        .lead_by_email(&email)
        .await
        .expect("lead")
        .expect("the lead");
    assert_eq!(lead.state, LeadState::Rewarmed);
    let timeline = store.timeline(lead.id).await.expect("timeline").len();
    assert!(timeline > 1);

    // Polling again, and a restarted poller, change nothing.
    assert_eq!(poller.poll_once(&store, handler()).await.expect("poll"), 0);
    let restarted = ImapPoller::new(
        server.settings("INBOX", Some("Processed")),
        server.password(),
    );
    assert_eq!(
        restarted.poll_once(&store, handler()).await.expect("poll"),
        0
    );
    let lead = store
        .lead_by_email(&email)
        .await
        .expect("lead")
        .expect("the lead");
    assert_eq!(lead.state, LeadState::Rewarmed);
    assert_eq!(
        store.timeline(lead.id).await.expect("timeline").len(),
        timeline
    );
    assert_eq!(server.messages("Processed").await.len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn over_tls_with_the_servers_certificate_as_ca_file_a_poll_reads_and_moves_a_message() {
    let Some(server) = Dovecot::start_tls().await else {
        return;
    };
    let (_dir, store) = store().await;
    server.append("INBOX", &message(1)).await;
    let uidvalidity = server.uidvalidity("INBOX").await;
    let settings = server.tls_settings("INBOX", Some("Processed"), Some(&server.cert_path()));
    let poller = ImapPoller::new(settings, server.password());

    let seen: Seen = Default::default();
    assert_eq!(poll(&poller, &store, &seen, &server).await, 1);
    assert_eq!(raws(&seen), vec![message(1)]);
    assert_eq!(
        keys(&seen),
        vec![format!("imap:127.0.0.1:INBOX:{uidvalidity}:1")]
    );
    assert!(server.messages("INBOX").await.is_empty());
    let processed = server.messages("Processed").await;
    assert_eq!(
        processed.iter().map(|m| m.raw.clone()).collect::<Vec<_>>(),
        vec![message(1)]
    );
    assert_eq!(
        store.kv_get("imap:127.0.0.1:INBOX:last_uid").await.unwrap(),
        Some("1".to_string())
    );
    // The session really was TLS: Dovecot logs the login with its TLS marker.
    let logs = server.logs();
    assert!(
        logs.lines()
            .any(|l| l.contains("Login: user=<tester>") && l.contains("TLS")),
        "no TLS login in the Dovecot log:\n{logs}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn over_tls_without_ca_file_a_self_signed_server_is_refused_as_untrusted_and_nothing_is_read()
{
    let Some(server) = Dovecot::start_tls().await else {
        return;
    };
    let (_dir, store) = store().await;
    server.append("INBOX", &message(1)).await;
    let poller = ImapPoller::new(
        server.tls_settings("INBOX", Some("Processed"), None),
        server.password(),
    );
    let seen: Seen = Default::default();
    let err = poller
        .poll_once(&store, recorder(&seen))
        .await
        .expect_err("a certificate no root signed must be refused");
    let text = format!("{err:#}");
    assert!(text.contains("certificate is not trusted"), "{text}");
    assert!(text.contains("inbound.imap.ca_file"), "{text}");
    assert!(seen.lock().unwrap().is_empty());
    assert_eq!(
        store.kv_get("imap:127.0.0.1:INBOX:last_uid").await.unwrap(),
        None
    );
    assert_eq!(server.messages("INBOX").await.len(), 1);
}

#[test]
fn a_ca_file_that_is_missing_or_not_pem_is_a_config_error_naming_the_key_and_the_path() {
    use rewarm::config::Settings;

    let dir = tempfile::tempdir().expect("tempdir");
    let not_pem = dir.path().join("ca.der");
    std::fs::write(&not_pem, b"\x30\x82\x01\x0a not a PEM file").expect("write");
    let missing = dir.path().join("missing.pem");
    let base = pipeline_fixture("sqlite://unused.db", 2525);
    for path in [&not_pem, &missing] {
        let text = format!(
            "{base}\n[inbound.imap]\nhost = \"imap.acme.example\"\nusername = \"r\"\n\
             password_env = \"REWARM_IMAP_PASSWORD\"\nca_file = \"{}\"\n",
            path.display()
        );
        let errors = Settings::from_toml(&text, "test.toml")
            .expect_err("a bad ca_file must not load")
            .0;
        let [e] = errors.as_slice() else {
            panic!("one error expected: {errors:?}");
        };
        assert_eq!(e.key, "inbound.imap.ca_file", "{e}");
        assert!(e.message.contains(&path.display().to_string()), "{e}");
    }
}
