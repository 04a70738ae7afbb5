//! Only hot leads reach sales, through the real binary: the daemon (`rewarm run --now T`)
//! sends each lead an email with three tracked links through a real SMTP server; a scripted
//! link scanner fetches every link of every email within seconds of delivery — a GET of each,
//! a HEAD, a prefetch and a repeat — and nobody is re-warmed, although two counted clicks
//! would be enough here (`rewarm_score = 20`). Later (the daemon started again two days on)
//! a person clicks two links a few seconds apart: the lead is re-warmed, `leads show` says
//! which clicks made it, and the owner's email names them. A late scanner (past the grace
//! period) fetching all links of an email at once is one machine signal: its score stays 0.
//! On SQLite and on PostgreSQL.

use crate::support;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_json::Value;
use support::bin;
use support::config::TestConfig;
use support::daemon::Daemon;
use support::db::{TestDatabase, with_postgres};
use support::smtp_server::{CapturedMessage, TestSmtpServer};

const START: &str = "2026-03-02T10:00:00Z";
const OWNER: &str = "maria.chen@acme.test";
const LINKS: [&str; 3] = [
    "https://acme.example/pricing",
    "https://acme.example/case-study",
    "https://acme.example/book-a-call",
];
const LEADS: [&str; 4] = [
    "ann@alpha.example",
    "bob@beta.example",
    "cem@gamma.example",
    "dee@delta.example",
];

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

/// A campaign of one email with three tracked links; a lead re-warms on 20 points, which
/// is two clicks; clicks on two links less than 2 s apart are a burst.
fn write_setup(dir: &Path, database_url: &str, smtp_port: u16, http_port: u16) -> PathBuf {
    let templates = dir.join("templates");
    bin::copy_dir(&bin::repo().join("templates"), &templates);
    let links = templates.join("links");
    std::fs::create_dir_all(&links).expect("create the template folder");
    std::fs::write(links.join("subject.txt"), "Three things for you").expect("subject");
    std::fs::write(
        links.join("text.txt"),
        format!(
            "Hi {{{{ lead.first_name }}}},\n\nPrices: {}\nA case study: {}\nOr book a call: {}\n\n{{% include \"_footer.txt\" %}}\n",
            LINKS[0], LINKS[1], LINKS[2]
        ),
    )
    .expect("text");
    let leads: String = LEADS
        .iter()
        .map(|e| format!("{e},Lee,no_budget,2025-06-01,{OWNER}\n"))
        .collect();
    std::fs::write(
        dir.join("leads.csv"),
        format!("Email,First Name,Lost Reason,Lost At,Owner Email\n{leads}"),
    )
    .expect("leads.csv");
    TestConfig::bare(database_url)
        .timezone("UTC")
        .templates_dir(&templates)
        .log(Some("text"), "info")
        .smtp(smtp_port, 1)
        .set_str("transport.smtp", "timeout", "5s")
        .set_str("scheduler", "tick", "1s")
        .set_str("http", "listen", &format!("127.0.0.1:{http_port}"))
        .set_str(
            "http",
            "public_url",
            &format!("http://127.0.0.1:{http_port}"),
        )
        .set("notify", "owner_email", "true")
        .segment("all", "links")
        .set("segments", "rewarm_score", "20")
        .set_str("scoring", "click_burst", "2s")
        .campaign("links", "90d", "30d")
        .campaign_key("links", "max_touches", "1")
        .campaign_key("links", "templates", r#"["links"]"#)
        .campaign_key("links", "track_clicks", "true")
        .any_time("links")
        .write(&dir.join("rewarm.toml"))
}

fn rewarm_ok(config: &Path, args: &[&str]) -> String {
    let out = bin::command()
        .arg("--config")
        .arg(config)
        .args(args)
        .output()
        .expect("run rewarm");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "rewarm {args:?}: {}\n{stdout}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

fn start_daemon(config: &Path, log: PathBuf, now: &str) -> Daemon {
    let mut command = bin::command();
    command
        .arg("--config")
        .arg(config)
        .args(["run", "--now", now])
        .env_remove("RUST_LOG");
    Daemon::spawn(command, log)
}

async fn wait_until(what: &str, daemon: &mut Daemon, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !done() {
        daemon.assert_alive();
        assert!(
            Instant::now() < deadline,
            "timed out waiting for {what}:\n{}",
            daemon.log()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The tracked links (`…/c/…`) of a message's text.
fn tracked_links(message: &CapturedMessage, base: &str) -> Vec<String> {
    let parsed = mail_parser::MessageParser::default()
        .parse(&message.data)
        .expect("a parsable message");
    let text = parsed.body_text(0).expect("a text part").into_owned();
    text.split_whitespace()
        .filter(|w| w.starts_with(&format!("{base}/c/")))
        .map(str::to_string)
        .collect()
}

/// `leads show EMAIL --json`.
fn show(config: &Path, email: &str) -> Value {
    let out = rewarm_ok(config, &["leads", "show", email, "--json"]);
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"))
}

fn events<'a>(shown: &'a Value, kind: &str) -> Vec<&'a Value> {
    shown["timeline"]
        .as_array()
        .expect("a timeline")
        .iter()
        .filter(|e| e["kind"] == kind)
        .collect()
}

/// The sum of a lead's engagement points.
fn points(shown: &Value) -> i64 {
    events(shown, "engaged")
        .iter()
        .map(|e| e["detail"]["points"].as_i64().unwrap_or(0))
        .sum()
}

/// The scanner: for every link at once, a GET, a HEAD, a GET with a prefetch header and a
/// second GET.
async fn scan(client: &reqwest::Client, links: &[String]) {
    let mut requests = Vec::new();
    for link in links {
        requests.push(client.get(link).send());
        requests.push(client.head(link).send());
        requests.push(client.get(link).header("Sec-Purpose", "prefetch").send());
        requests.push(client.get(link).send());
    }
    for response in futures::future::join_all(requests).await {
        let response = response.expect("the daemon answers");
        assert_eq!(response.status(), reqwest::StatusCode::SEE_OTHER);
    }
}

async fn scanners_rewarm_nobody_and_a_person_does(database_url: &str) {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let smtp = TestSmtpServer::start().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let http_port = free_port();
    let base = format!("http://127.0.0.1:{http_port}");
    let config = write_setup(dir.path(), database_url, smtp.port(), http_port);
    rewarm_ok(
        &config,
        &[
            "leads",
            "import",
            &dir.path().join("leads.csv").display().to_string(),
            "--now",
            START,
        ],
    );
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("a client");

    // Day 0: the emails go out; the scanner fetches every link of each as it arrives.
    let mut daemon = start_daemon(&config, dir.path().join("day0.log"), START);
    wait_until("four emails", &mut daemon, || smtp.count() >= LEADS.len()).await;
    let scanned = Instant::now();
    for message in smtp.messages() {
        let links = tracked_links(&message, &base);
        assert_eq!(links.len(), 3, "{}", String::from_utf8_lossy(&message.data));
        scan(&client, &links).await;
    }
    assert!(
        scanned.elapsed() < Duration::from_secs(5),
        "the scan took {:?}",
        scanned.elapsed()
    );
    daemon.terminate(Duration::from_secs(20)).await;
    for lead in LEADS {
        let shown = show(&config, lead);
        assert_eq!(shown["lead"]["state"], "completed", "{lead}: {shown:#}");
        assert_eq!(events(&shown, "clicked").len(), 12, "{lead}");
        assert!(events(&shown, "rewarmed").is_empty(), "{lead}");
        assert_eq!(points(&shown), 0, "{lead}");
    }
    assert_eq!(smtp.count(), LEADS.len(), "nobody told sales of anything");

    // Day 2: a late scanner fetches every link of Bob's email at once: one machine.
    let day2 = "2026-03-04T09:00:00Z";
    let mut daemon = start_daemon(&config, dir.path().join("day2.log"), day2);
    wait_until("the HTTP side", &mut daemon, || {
        std::net::TcpStream::connect(("127.0.0.1", http_port)).is_ok()
    })
    .await;
    let messages = smtp.messages();
    let to = |lead: &str| {
        messages
            .iter()
            .find(|m| m.rcpt_to == [lead])
            .expect("the lead's email")
            .clone()
    };
    let bob_links = tracked_links(&to(LEADS[1]), &base);
    let gets: Vec<_> = bob_links.iter().map(|l| client.get(l).send()).collect();
    for r in futures::future::join_all(gets).await {
        assert_eq!(
            r.expect("answered").status(),
            reqwest::StatusCode::SEE_OTHER
        );
    }
    // A person opens Ann's email, clicks one link, reads, then clicks another.
    let ann_links = tracked_links(&to(LEADS[0]), &base);
    let response = client.get(&ann_links[1]).send().await.expect("answered");
    assert_eq!(response.headers()["location"], LINKS[1]);
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let response = client.get(&ann_links[2]).send().await.expect("answered");
    assert_eq!(response.headers()["location"], LINKS[2]);
    let deadline = Instant::now() + Duration::from_secs(30);
    while smtp.count() <= LEADS.len() {
        daemon.assert_alive();
        assert!(
            Instant::now() < deadline,
            "no owner's email; Ann: {:#}\n{}",
            show(&config, LEADS[0]),
            daemon.log()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    daemon.terminate(Duration::from_secs(20)).await;

    let ann = show(&config, LEADS[0]);
    assert_eq!(ann["lead"]["state"], "rewarmed");
    let rewarmed = events(&ann, "rewarmed");
    assert_eq!(rewarmed.len(), 1);
    assert_eq!(rewarmed[0]["detail"]["reason"], "score");
    let signals = rewarmed[0]["detail"]["signals"]
        .as_array()
        .expect("signals");
    assert_eq!(signals.len(), 2);
    assert_eq!(signals[0]["kind"], "click");
    assert_eq!(signals[0]["url"], LINKS[2]);
    assert_eq!(signals[1]["url"], LINKS[1]);
    let text = rewarm_ok(&config, &["leads", "show", LEADS[0], "--now", day2]);
    for link in &LINKS[1..] {
        assert!(
            text.contains(&format!(
                "made of: 2026-03-04 09:00 UTC click +10 (10 now) {link}"
            )),
            "{text}"
        );
    }
    let bob = show(&config, LEADS[1]);
    assert_eq!(bob["lead"]["state"], "completed");
    assert_eq!(points(&bob), 0, "{bob:#}");
    let signals: Vec<&str> = events(&bob, "clicked")
        .iter()
        .filter_map(|e| e["detail"]["signal"].as_str())
        .collect();
    assert_eq!(
        signals.iter().filter(|s| **s == "burst").count(),
        2,
        "{signals:?}"
    );
    for lead in &LEADS[2..] {
        assert_eq!(show(&config, lead)["lead"]["state"], "completed");
    }
    let messages = smtp.messages();
    let owner: Vec<_> = messages.iter().filter(|m| m.rcpt_to == [OWNER]).collect();
    assert_eq!(owner.len(), 1, "one hand-off, Ann's");
    let parsed = mail_parser::MessageParser::default()
        .parse(&owner[0].data)
        .expect("parsable");
    let body = parsed.body_text(0).expect("text").into_owned();
    assert!(body.contains("What made it"), "{body}");
    assert!(body.contains(LINKS[1]) && body.contains(LINKS[2]), "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_scanner_fetching_every_link_rewarms_nobody_and_a_persons_click_does_on_sqlite() {
    let db = TestDatabase::sqlite();
    scanners_rewarm_nobody_and_a_person_does(db.url()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_scanner_fetching_every_link_rewarms_nobody_and_a_persons_click_does_on_postgres() {
    with_postgres("hot_leads", |url| async move {
        scanners_rewarm_nobody_and_a_person_does(&url).await;
    })
    .await;
}
