//! The HTTP side cannot take the daemon down (issue 9, part 5). A daemon limited to the usual
//! 1,024 file descriptors (soft and hard, as a shell's `ulimit -n 1024` sets them) gets more
//! idle connections than it has descriptors, plus connections that send their headers one
//! byte at a time: `/healthz` still answers within a second, every time, and sending goes on
//! — every due email reaches the (real, test) SMTP server while the flood holds.

use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::support::bin::{dir_with_templates, rewarm, stdout_of};
use crate::support::config::TestConfig;
use crate::support::daemon::Daemon;
use crate::support::smtp_server::TestSmtpServer;

/// Nearly five times the daemon's 1,024 descriptors (the figure).
const IDLE: usize = 5_000;
const SLOW: usize = 200;
const LEADS: usize = 60;

fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind :0");
    listener.local_addr().expect("address").port()
}

/// `GET /healthz` on a new connection; how long the answer took, or None if it did not
/// come within 1 s.
async fn healthz(port: u16) -> Option<Duration> {
    let started = Instant::now();
    let exchange = async {
        let mut s = TcpStream::connect(("127.0.0.1", port)).await.ok()?;
        s.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            .await
            .ok()?;
        let mut answer = Vec::new();
        s.read_to_end(&mut answer).await.ok()?;
        String::from_utf8_lossy(&answer)
            .starts_with("HTTP/1.1 200")
            .then_some(())
    };
    tokio::time::timeout(Duration::from_secs(1), exchange)
        .await
        .ok()
        .flatten()
        .map(|()| started.elapsed())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_and_slow_header_floods_leave_healthz_answering_within_a_second_and_sending_on() {
    // This test process holds every flood connection: let it.
    rewarm::fds::raise_limit();
    let server = TestSmtpServer::start().await;
    let dir = dir_with_templates();
    let database_url = format!("sqlite://{}", dir.path().join("rewarm.db").display());
    let port = free_port();
    let config = TestConfig::new(&database_url)
        .templates_dir(&dir.path().join("templates"))
        .campaign("checkin", "1d", "30d")
        .any_time("checkin")
        .smtp(server.port(), 2)
        .set_str("scheduler", "tick", "1s")
        .set("scheduler", "batch_size", "5")
        .set_str("http", "listen", &format!("127.0.0.1:{port}"))
        .set_str("http", "header_timeout", "30s")
        .write(&dir.path().join("rewarm.toml"));
    let config = config.to_str().expect("UTF-8").to_string();
    // Half the leads before the flood, half during it.
    let import = |range: std::ops::Range<usize>, file: &str| {
        let mut csv = String::from("email,first_name,lost_at\n");
        for i in range {
            csv.push_str(&format!("flood{i}@example.org,F{i},2025-06-01\n"));
        }
        std::fs::write(dir.path().join(file), csv).expect("leads");
        stdout_of(&rewarm(
            dir.path(),
            &[
                "--config",
                &config,
                "leads",
                "import",
                file,
                "--now",
                "2026-03-02T10:00:00Z",
            ],
        ));
    };
    import(0..LEADS / 2, "before.csv");

    // The usual default limit, soft and hard: the daemon cannot raise it.
    let mut command = std::process::Command::new("sh");
    command
        .current_dir(dir.path())
        .args(["-c", "ulimit -n 1024 && exec \"$0\" \"$@\""])
        .arg(env!("CARGO_BIN_EXE_rewarm"))
        .args(["--config", &config, "run", "--now", "2026-03-02T10:00:00Z"])
        .env_remove("RUST_LOG");
    let mut daemon = Daemon::spawn(command, dir.path().join("daemon.log"));
    let deadline = Instant::now() + Duration::from_secs(20);
    while healthz(port).await.is_none() {
        daemon.assert_alive();
        assert!(
            Instant::now() < deadline,
            "the daemon never answered:\n{}",
            daemon.log()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // The flood: idle connections that say nothing, and connections that send a request's
    // head one byte every 200 ms (never finishing it within the test).
    let mut idle = Vec::with_capacity(IDLE);
    for _ in 0..IDLE {
        if let Ok(s) = TcpStream::connect(("127.0.0.1", port)).await {
            idle.push(s);
        }
    }
    let slow_header = b"GET /healthz HTTP/1.1\r\nHost: slow.example\r\nX-Padding: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
    let mut slow = Vec::new();
    for _ in 0..SLOW {
        if let Ok(s) = TcpStream::connect(("127.0.0.1", port)).await {
            slow.push(tokio::spawn(async move {
                let mut s = s;
                for byte in slow_header.iter() {
                    if s.write_all(&[*byte]).await.is_err() {
                        return;
                    }
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
            }));
        }
    }
    assert!(
        idle.len() >= 1_000,
        "the test opened {} idle connections",
        idle.len()
    );
    assert!(
        server
            .wait_for_count(LEADS / 2, Duration::from_secs(20))
            .await,
        "the first half was not sent:\n{}",
        daemon.log_tail()
    );
    let sent_before = server.count();
    // New leads while the flood holds: the daemon must enrol and send them.
    import(LEADS / 2..LEADS, "during.csv");

    // While the flood holds: /healthz every 250 ms, each within a second.
    let mut worst = Duration::ZERO;
    let mut probes = 0;
    let flood_until = Instant::now() + Duration::from_secs(6);
    while Instant::now() < flood_until || server.count() < LEADS {
        daemon.assert_alive();
        let took = healthz(port).await;
        let took = took.unwrap_or_else(|| {
            panic!(
                "/healthz did not answer within 1 s during the flood:\n{}",
                daemon.log_tail()
            )
        });
        worst = worst.max(took);
        probes += 1;
        assert!(
            Instant::now() < flood_until + Duration::from_secs(30),
            "sending stalled during the flood: {} of {LEADS} sent:\n{}",
            server.count(),
            daemon.log_tail()
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    eprintln!(
        "http flood: {} idle + {} slow-header connections; {probes} /healthz probes, slowest {worst:?}; {} emails sent during the flood",
        idle.len(),
        slow.len(),
        server.count() - sent_before
    );
    assert_eq!(server.count(), LEADS, "each lead once");
    assert!(
        server.count() > sent_before,
        "sending went on during the flood"
    );
    let log = daemon.log();
    assert!(!log.contains("Too many open files"), "{log}");
    assert!(
        log.contains("HTTP connection cap reached"),
        "the cap engaged: {log}"
    );
    assert!(
        !log.contains("Transport paused"),
        "sending never failed: {log}"
    );
    drop(idle);
    for task in slow {
        task.abort();
    }
    let exit = daemon.terminate(Duration::from_secs(15)).await;
    assert!(exit.success(), "{}", daemon.log());
}
