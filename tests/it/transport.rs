//! The transports over real TCP against a real (test) SMTP server, and into a real folder.

use crate::support;

use std::collections::HashMap;
use std::time::{Duration, Instant};

use lettre::message::header::ContentType;
use rewarm::secret::Secret;
use rewarm::transport::file::FileTransport;
use rewarm::transport::limits::{Throttle, throttle_of};
use rewarm::transport::smtp::{SmtpPool, SmtpSettings, TlsMode};
use rewarm::transport::{OutgoingEmail, SendError, SendOutcome};
use support::smtp_server::TestSmtpServer;

fn settings(port: u16, pool_size: usize) -> SmtpSettings {
    SmtpSettings {
        host: "127.0.0.1".to_string(),
        port,
        tls: TlsMode::None,
        username: None,
        password: None,
        pool_size,
        timeout: Duration::from_secs(5),
        hello_name: Some("rewarm.test".to_string()),
    }
}

/// A real message built by lettre, as the renderer would hand it over.
fn email(i: i64) -> OutgoingEmail {
    email_with_filler(i, 0)
}

/// Like [`email`], with about `filler` more bytes of text in the body.
fn email_with_filler(i: i64, filler: usize) -> OutgoingEmail {
    let filler_text =
        "We would love to show you what changed since we last spoke.\r\n".repeat(filler / 61);
    let message_id = format!("{i}.step1@rewarm.test");
    let to = format!("lead{i}@example.org");
    let message = lettre::Message::builder()
        .message_id(Some(format!("<{message_id}>")))
        .from("Sam from Acme <sam@acme.test>".parse().unwrap())
        .to(to.parse().unwrap())
        .subject(format!("Still looking for a CRM, lead {i}?"))
        .header(ContentType::TEXT_PLAIN)
        .body(format!(
            "Hi lead {i},\r\n\r\nWe spoke last spring about your pipeline.\r\n.\r\n..a line that starts with dots\r\n\r\n{filler_text}Sam\r\n"
        ))
        .unwrap();
    OutgoingEmail {
        delivery_id: i,
        envelope_from: "bounces@acme.test".to_string(),
        envelope_to: to,
        message_id,
        bytes: message.formatted(),
    }
}

fn batch(range: std::ops::Range<i64>) -> Vec<OutgoingEmail> {
    range.map(email).collect()
}

fn outcome_map(outcomes: Vec<SendOutcome>) -> HashMap<i64, Result<(), SendError>> {
    let n = outcomes.len();
    let map: HashMap<_, _> = outcomes.into_iter().collect();
    assert_eq!(map.len(), n, "one outcome per delivery");
    map
}

fn header_value<'a>(data: &'a [u8], name: &str) -> Option<&'a str> {
    let text = std::str::from_utf8(data).ok()?;
    let head = text.split("\r\n\r\n").next()?;
    head.split("\r\n").find_map(|line| {
        let (n, v) = line.split_once(':')?;
        n.eq_ignore_ascii_case(name).then(|| v.trim())
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_of_500_messages_over_a_pool_of_4_connections_all_arrive_exactly_once_intact() {
    let server = TestSmtpServer::start().await;
    let pool = SmtpPool::new(settings(server.port(), 4));
    let sent = batch(0..500);

    let outcomes = outcome_map(pool.send_batch(sent.clone()).await);

    assert_eq!(outcomes.len(), 500);
    assert!(outcomes.values().all(|o| o.is_ok()), "{outcomes:?}");
    let received = server.messages();
    assert_eq!(received.len(), 500);
    let mut by_id = HashMap::new();
    for m in &received {
        let id = header_value(&m.data, "Message-ID").expect("a Message-ID header");
        assert!(by_id.insert(id.to_string(), m).is_none(), "{id} twice");
    }
    for e in &sent {
        let m = by_id[&format!("<{}>", e.message_id)];
        assert_eq!(m.mail_from, e.envelope_from);
        assert_eq!(m.rcpt_to, vec![e.envelope_to.clone()]);
        assert_eq!(m.data, e.bytes, "bytes of {}", e.message_id);
    }
    assert!(server.connections_accepted() <= 4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_connections_are_reused_across_batches() {
    let server = TestSmtpServer::start().await;
    let pool = SmtpPool::new(settings(server.port(), 4));

    let first = outcome_map(pool.send_batch(batch(0..200)).await);
    assert!(first.values().all(|o| o.is_ok()));
    let opened = server.connections_accepted();
    assert!((1..=4).contains(&opened), "{opened}");

    for round in 1..4 {
        let start = round * 200;
        let outcomes = outcome_map(pool.send_batch(batch(start..start + 200)).await);
        assert!(outcomes.values().all(|o| o.is_ok()));
    }
    assert_eq!(server.connections_accepted(), opened);
    assert_eq!(server.count(), 800);

    pool.close().await;
    assert!(
        wait_until(|| server.quits_received() == opened).await,
        "close() says QUIT on each idle connection"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_4xx_on_rcpt_is_transient_for_that_message_only_and_a_5xx_permanent_with_the_servers_text()
 {
    let server = TestSmtpServer::start().await;
    server.reject_recipient("lead3@example.org", "450 4.2.0 mailbox busy");
    server.reject_recipient("lead7@example.org", "550 5.1.1 no such user");
    let pool = SmtpPool::new(settings(server.port(), 2));

    let outcomes = outcome_map(pool.send_batch(batch(0..20)).await);

    match &outcomes[&3] {
        Err(e) if e.is_transient() => {
            assert!(e.message().contains("450 4.2.0 mailbox busy"), "{e}");
            assert_eq!(e.smtp_reply().map(|r| r.code), Some(450));
        }
        other => panic!("lead 3: {other:?}"),
    }
    match &outcomes[&7] {
        Err(e) if e.is_permanent() => {
            assert!(e.message().contains("550 5.1.1 no such user"), "{e}");
            assert!(
                e.is_hard_bounce(),
                "a 5xx to RCPT TO refuses the address: {e}"
            );
        }
        other => panic!("lead 7: {other:?}"),
    }
    for (id, outcome) in &outcomes {
        if *id != 3 && *id != 7 {
            assert_eq!(outcome, &Ok(()), "lead {id}");
        }
    }
    let received = server.messages();
    assert_eq!(received.len(), 18);
    assert!(
        received
            .iter()
            .all(|m| m.rcpt_to != ["lead3@example.org"] && m.rcpt_to != ["lead7@example.org"])
    );
    // The refusals did not cost a connection (RSET, not reconnect).
    assert!(server.connections_accepted() <= 2);
}

/// With PIPELINING, a message's MAIL FROM, RCPT TO and DATA go out in the same write as the
/// previous message's body and final "." (RFC 2920: the content may open a group): one round
/// trip per message. Every message still arrives once, intact, in order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_message_after_the_first_goes_out_with_the_previous_body_on_one_connection() {
    let server = TestSmtpServer::start().await;
    let pool = SmtpPool::new(settings(server.port(), 1));
    let sent = batch(0..20);

    let outcomes = pool.send_batch(sent.clone()).await;

    assert!(outcomes.iter().all(|(_, o)| o.is_ok()), "{outcomes:?}");
    let received = server.messages();
    assert_eq!(received.len(), 20);
    for (m, e) in received.iter().zip(&sent) {
        assert_eq!(m.rcpt_to, vec![e.envelope_to.clone()]);
        assert_eq!(m.data, e.bytes, "bytes of {}", e.message_id);
    }
    // The last body has no message after it.
    assert_eq!(server.mail_after_data(), 19);
    assert_eq!(server.connections_accepted(), 1);
}

/// A server that does not offer PIPELINING gets one command at a time, each after the reply
/// to the one before; the body and its final "." still go out as one write (which is allowed:
/// they are one "command", the message content). A refused recipient costs its message only.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_pipelining_each_command_waits_for_its_reply_and_every_message_arrives() {
    let server = TestSmtpServer::start().await;
    server.without_pipelining();
    server.reject_recipient("lead5@example.org", "550 5.1.1 no such user");
    let pool = SmtpPool::new(settings(server.port(), 1));
    let sent = batch(0..20);

    let outcomes = outcome_map(pool.send_batch(sent.clone()).await);

    assert!(
        matches!(&outcomes[&5], Err(e) if e.is_permanent() && e.message().contains("550 5.1.1")),
        "{:?}",
        outcomes[&5]
    );
    assert_eq!(outcomes.values().filter(|o| o.is_ok()).count(), 19);
    let received = server.messages();
    let expected: Vec<&OutgoingEmail> = sent.iter().filter(|e| e.delivery_id != 5).collect();
    assert_eq!(received.len(), expected.len());
    for (m, e) in received.iter().zip(expected) {
        assert_eq!(m.rcpt_to, vec![e.envelope_to.clone()]);
        assert_eq!(m.data, e.bytes, "bytes of {}", e.message_id);
    }
    assert_eq!(server.unsynchronised(), 0);
    assert_eq!(server.mail_after_data(), 0);
    assert_eq!(server.connections_accepted(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_dropped_after_data_gives_unknown_for_that_message_and_the_rest_arrive_on_a_new_connection()
 {
    let server = TestSmtpServer::start().await;
    server.drop_connection_after_data(5);
    let pool = SmtpPool::new(settings(server.port(), 1));

    let outcomes = outcome_map(pool.send_batch(batch(0..20)).await);

    // One connection sends in order: the 5th message is delivery 4.
    assert!(
        matches!(&outcomes[&4], Err(e) if e.is_unknown()),
        "{:?}",
        outcomes[&4]
    );
    for (id, outcome) in &outcomes {
        if *id != 4 {
            assert_eq!(outcome, &Ok(()), "delivery {id}");
        }
    }
    assert_eq!(server.count(), 19);
    assert_eq!(server.connections_accepted(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_several_connections_a_drop_after_data_costs_exactly_one_unknown_and_nothing_twice() {
    let server = TestSmtpServer::start().await;
    server.drop_connection_after_data(40);
    let pool = SmtpPool::new(settings(server.port(), 4));

    let outcomes = outcome_map(pool.send_batch(batch(0..200)).await);

    let unknown: Vec<_> = outcomes
        .iter()
        .filter(|(_, o)| matches!(o, Err(e) if e.is_unknown()))
        .collect();
    assert_eq!(unknown.len(), 1, "{unknown:?}");
    assert_eq!(outcomes.values().filter(|o| o.is_ok()).count(), 199);
    let received = server.messages();
    assert_eq!(received.len(), 199);
    let mut seen = std::collections::HashSet::new();
    assert!(received.iter().all(|m| seen.insert(m.rcpt_to.clone())));
    assert!(!seen.contains(&vec![format!("lead{}@example.org", unknown[0].0)]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_closed_by_the_server_while_idle_are_replaced_without_losing_a_message() {
    let server = TestSmtpServer::start().await;
    let pool = SmtpPool::new(settings(server.port(), 3));
    let first = outcome_map(pool.send_batch(batch(0..30)).await);
    assert!(first.values().all(|o| o.is_ok()));
    let opened = server.connections_accepted();

    server.kick_all_connections();
    tokio::time::sleep(Duration::from_millis(50)).await;
    let second = outcome_map(pool.send_batch(batch(30..60)).await);

    assert!(second.values().all(|o| o.is_ok()), "{second:?}");
    assert_eq!(server.count(), 60);
    assert!(server.connections_accepted() > opened);
}

#[tokio::test]
async fn nothing_listening_on_the_port_makes_every_message_transient() {
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let pool = SmtpPool::new(settings(port, 4));

    let outcomes = outcome_map(pool.send_batch(batch(0..10)).await);

    assert_eq!(outcomes.len(), 10);
    for (id, outcome) in outcomes {
        assert!(
            matches!(&outcome, Err(e) if e.is_transient() && e.message().contains("connect")),
            "delivery {id}: {outcome:?}"
        );
    }
}

#[tokio::test]
async fn a_server_that_greets_with_421_makes_every_message_transient_and_its_reply_a_domain_throttle()
 {
    // A server that answers every connection "421 4.7.0 too many connections" and hangs up.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            use tokio::io::AsyncWriteExt;
            let _ = socket
                .write_all(b"421 4.7.0 too many connections, try later\r\n")
                .await;
        }
    });
    let pool = SmtpPool::new(settings(port, 2));

    let outcomes = outcome_map(pool.send_batch(batch(0..4)).await);

    for (id, outcome) in outcomes {
        let e = outcome.as_ref().unwrap_err();
        assert!(
            e.is_transient() && e.message().contains("greeting/EHLO"),
            "delivery {id}: {e}"
        );
        let reply = e.smtp_reply().expect("the greeting's reply is kept");
        assert_eq!(reply.code, 421, "{e}");
        assert_eq!(
            reply.enhanced.map(|s| s.to_string()).as_deref(),
            Some("4.7.0")
        );
        assert_eq!(throttle_of(e), Some(Throttle::Domain), "{e}");
    }
}

#[tokio::test]
async fn starttls_demanded_but_not_offered_sends_nothing_and_every_message_is_transient() {
    let server = TestSmtpServer::start().await;
    let mut s = settings(server.port(), 2);
    s.tls = TlsMode::StartTls;
    let pool = SmtpPool::new(s);

    let outcomes = outcome_map(pool.send_batch(batch(0..5)).await);

    for (id, outcome) in outcomes {
        assert!(
            matches!(&outcome, Err(e) if e.is_transient() && e.message().contains("STARTTLS")),
            "delivery {id}: {outcome:?}"
        );
    }
    assert_eq!(server.count(), 0);
}

#[tokio::test]
async fn implicit_tls_against_a_plain_server_fails_the_handshake_and_every_message_is_transient() {
    let server = TestSmtpServer::start().await;
    let mut s = settings(server.port(), 2);
    s.tls = TlsMode::Tls;
    s.host = "localhost".to_string();
    let pool = SmtpPool::new(s);

    let outcomes = outcome_map(pool.send_batch(batch(0..5)).await);

    for (id, outcome) in outcomes {
        assert!(
            matches!(&outcome, Err(e) if e.is_transient() && e.message().contains("TLS")),
            "delivery {id}: {outcome:?}"
        );
    }
    assert_eq!(server.count(), 0);
}

#[tokio::test]
async fn auth_plain_with_the_right_password_sends_and_with_a_wrong_one_everything_is_transient() {
    let server = TestSmtpServer::start().await;
    server.require_auth("rewarm", "s3cret");

    let mut good = settings(server.port(), 2);
    good.username = Some("rewarm".to_string());
    good.password = Some(Secret::new("s3cret"));
    let outcomes = outcome_map(SmtpPool::new(good).send_batch(batch(0..10)).await);
    assert!(outcomes.values().all(|o| o.is_ok()), "{outcomes:?}");
    assert_eq!(server.count(), 10);

    let mut bad = settings(server.port(), 2);
    bad.username = Some("rewarm".to_string());
    bad.password = Some(Secret::new("wrong"));
    let outcomes = outcome_map(SmtpPool::new(bad).send_batch(batch(10..20)).await);
    for (id, outcome) in outcomes {
        assert!(
            matches!(&outcome, Err(e) if e.is_transient() && e.message().contains("AUTH")),
            "delivery {id}: {outcome:?}"
        );
    }
    assert_eq!(server.count(), 10);
}

#[tokio::test]
async fn raw_bytes_with_dot_lines_and_8bit_text_arrive_byte_for_byte() {
    let server = TestSmtpServer::start().await;
    let pool = SmtpPool::new(settings(server.port(), 1));
    let bytes = "From: sam@acme.test\r\nTo: lead@example.org\r\nSubject: =?utf-8?q?Gr=C3=BC=C3=9Fe?=\r\nMessage-ID: <raw@rewarm.test>\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n.\r\n..\r\nGrüße aus Köln\r\n.\r\nend\r\n"
        .as_bytes()
        .to_vec();
    let e = OutgoingEmail {
        delivery_id: 1,
        envelope_from: String::new(), // the null sender
        envelope_to: "lead@example.org".to_string(),
        message_id: "raw@rewarm.test".to_string(),
        bytes: bytes.clone(),
    };

    let outcomes = pool.send_batch(vec![e]).await;

    assert_eq!(outcomes, vec![(1, Ok(()))]);
    let received = server.messages();
    assert_eq!(received[0].data, bytes);
    assert_eq!(received[0].mail_from, "");
}

#[tokio::test]
async fn an_empty_batch_opens_no_connection() {
    let server = TestSmtpServer::start().await;
    let pool = SmtpPool::new(settings(server.port(), 4));
    assert!(pool.send_batch(Vec::new()).await.is_empty());
    assert_eq!(server.connections_accepted(), 0);
}

/// Not a benchmark: prints a rough figure (run with `-- --nocapture`); asserts only delivery.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn throughput_is_printed_for_one_and_for_eight_connections() {
    let server = TestSmtpServer::start().await;
    let mut total = 0;
    for pool_size in [1, 8] {
        let pool = SmtpPool::new(settings(server.port(), pool_size));
        // Warm up (connect) so the figure is about sending.
        pool.send_batch(batch(0..pool_size as i64)).await;
        total += pool_size;
        let n = 3000;
        let messages: Vec<_> = (0..n).map(|i| email_with_filler(i, 5000)).collect();
        let size = messages[0].bytes.len();
        let started = Instant::now();
        let outcomes = pool.send_batch(messages).await;
        let elapsed = started.elapsed();
        total += n as usize;
        assert!(outcomes.iter().all(|(_, o)| o.is_ok()));
        println!(
            "smtp pool of {pool_size}: {n} messages of ~{size} bytes in {elapsed:.2?} = {:.0} msg/s",
            n as f64 / elapsed.as_secs_f64()
        );
    }
    assert_eq!(server.count(), total);
}

async fn wait_until(mut condition: impl FnMut() -> bool) -> bool {
    for _ in 0..200 {
        if condition() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    false
}

// ---------------------------------------------------------------------------------------------
// file transport

fn parse_headers(data: &[u8]) -> Vec<(String, String)> {
    let text = std::str::from_utf8(data).expect("utf-8");
    let (head, _body) = text
        .split_once("\r\n\r\n")
        .expect("a blank line after the headers");
    let mut headers: Vec<(String, String)> = Vec::new();
    for line in head.split("\r\n") {
        if line.starts_with([' ', '\t']) {
            headers
                .last_mut()
                .expect("a folded line follows a header")
                .1 += line;
        } else {
            let (name, value) = line.split_once(':').expect("Name: value");
            assert!(
                !name.is_empty() && !name.contains(' '),
                "header name {name:?}"
            );
            headers.push((name.to_string(), value.trim().to_string()));
        }
    }
    headers
}

#[tokio::test]
async fn the_file_transport_writes_one_parseable_eml_per_message_with_the_input_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let outbox = dir.path().join("outbox");
    let transport = FileTransport::new(&outbox);
    assert_eq!(transport.outbox(), outbox.as_path());
    let sent = batch(0..25);

    let outcomes = outcome_map(transport.send_batch(sent.clone()).await);

    assert!(outcomes.values().all(|o| o.is_ok()));
    let mut files: Vec<_> = std::fs::read_dir(&outbox)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    assert_eq!(files.len(), 25, "{files:?}");
    assert!(files.iter().all(|f| f.extension().unwrap() == "eml"));
    for e in &sent {
        let path = outbox.join(format!("{}.eml", e.message_id));
        let data = std::fs::read(&path).unwrap();
        assert_eq!(data, e.bytes);
        let headers = parse_headers(&data);
        let message_id = headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case("Message-ID"))
            .map(|(_, v)| v.as_str());
        assert_eq!(message_id, Some(format!("<{}>", e.message_id).as_str()));
        assert!(headers.iter().any(|(n, _)| n == "Subject"));
    }
}

#[tokio::test]
async fn the_file_transport_overwrites_a_message_sent_twice_instead_of_duplicating_it() {
    let dir = tempfile::tempdir().unwrap();
    let transport = FileTransport::new(dir.path());
    let mut e = email(1);
    e.message_id = "same/id with spaces@rewarm.test".to_string();

    transport.send_batch(vec![e.clone()]).await;
    let mut again = e.clone();
    again.bytes = email(2).bytes;
    let outcomes = transport.send_batch(vec![again.clone()]).await;

    assert_eq!(outcomes, vec![(1, Ok(()))]);
    let files: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert_eq!(
        files,
        vec!["same_id_with_spaces@rewarm.test.eml".to_string()]
    );
    assert_eq!(
        std::fs::read(dir.path().join(&files[0])).unwrap(),
        again.bytes
    );
}

#[tokio::test]
async fn the_file_transport_reports_an_unwritable_outbox_as_transient() {
    let dir = tempfile::tempdir().unwrap();
    let blocker = dir.path().join("not-a-folder");
    std::fs::write(&blocker, b"x").unwrap();
    let transport = FileTransport::new(blocker.join("outbox"));

    let outcomes = transport.send_batch(batch(0..3)).await;

    assert_eq!(outcomes.len(), 3);
    assert!(
        outcomes
            .iter()
            .all(|(_, o)| matches!(o, Err(e) if e.is_transient()))
    );
}
