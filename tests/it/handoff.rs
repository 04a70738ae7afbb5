//! Hand-offs to sales after a re-warm, end to end with the binary (`run --once --now T`,
//! `inbound replay`, `leads …`) and a real SMTP server, on SQLite and PostgreSQL: a stale
//! re-warm gets one reminder, then one escalation, at the right simulated times; `leads
//! reassign` moves an owner's leads with events; a hard bounce on a notification to an owner
//! routes their later notifications to the fallback address, and `leads owners` and the
//! fallback's digest list that owner as gone; the digest covers exactly its
//! week; a call step sends the lead nothing and its owner one task.

use std::path::PathBuf;
use std::process::Output;

use serde_json::Value;

use crate::support::bin;
use crate::support::config::TestConfig;
use crate::support::db::{TestDatabase, with_postgres};
use crate::support::smtp_server::TestSmtpServer;

const OWNER: &str = "rita@acme.example";
const MANAGER: &str = "manager@acme.example";
/// A Monday; the leads were lost 100 days before, so their first email is due at once.
const T0: &str = "2026-03-02T10:00:00Z";

/// A deployment in a temporary folder: its config (SMTP to a test server, `notify`
/// fallback), the repository's templates, a database.
struct Deploy {
    dir: tempfile::TempDir,
    config: PathBuf,
    smtp: TestSmtpServer,
}

impl Deploy {
    async fn new(url: &str, configure: impl FnOnce(TestConfig) -> TestConfig) -> Deploy {
        let dir = bin::dir_with_templates();
        let smtp = TestSmtpServer::start().await;
        let config = TestConfig::new(url)
            .templates_dir(&dir.path().join("templates"))
            .smtp(smtp.port(), 1)
            .any_time("checkin")
            .set_str("notify", "fallback_email", MANAGER);
        let config = configure(config).write(&dir.path().join("rewarm.toml"));
        Deploy { dir, config, smtp }
    }

    fn rewarm(&self, args: &[&str]) -> Output {
        bin::command()
            .arg("--config")
            .arg(&self.config)
            .args(args)
            .env_remove("RUST_LOG")
            .env_remove("REWARM_CONFIG")
            .current_dir(self.dir.path())
            .output()
            .expect("run the rewarm binary")
    }

    fn ok(&self, args: &[&str]) -> String {
        let out = self.rewarm(args);
        assert!(
            out.status.success(),
            "rewarm {args:?} failed ({}):\n{}\n{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    fn run_once(&self, now: &str) -> Value {
        let out = self.ok(&["run", "--once", "--now", now]);
        let line = out.lines().last().expect("a report line");
        serde_json::from_str(line).unwrap_or_else(|e| panic!("report {line:?}: {e}"))
    }

    /// Imports leads `(email, owner)` lost 100 days before T0.
    fn import(&self, leads: &[(&str, &str)]) {
        let mut csv = String::from("email,first_name,owner_email,lost_at\n");
        for (email, owner) in leads {
            let first = email.split('@').next().unwrap_or("x");
            csv.push_str(&format!("{email},{first},{owner},2025-11-22T10:00:00Z\n"));
        }
        let file = self.dir.path().join("leads.csv");
        std::fs::write(&file, csv).expect("write leads");
        self.ok(&[
            "leads",
            "import",
            file.to_str().expect("a path"),
            "--now",
            T0,
        ]);
    }

    /// The messages the SMTP server took for `to`, as text (soft line breaks joined).
    fn mail_to(&self, to: &str) -> Vec<String> {
        self.smtp
            .messages()
            .iter()
            .filter(|m| m.rcpt_to.iter().any(|r| r.eq_ignore_ascii_case(to)))
            .map(|m| String::from_utf8_lossy(&m.data).replace("=\r\n", ""))
            .collect()
    }

    /// [`Deploy::mail_to`] without the weekly digests.
    fn notices_to(&self, to: &str) -> Vec<String> {
        self.mail_to(to)
            .into_iter()
            .filter(|m| !m.contains("Weekly leads digest"))
            .collect()
    }

    /// A reply from `lead` to the first email it got, through `inbound replay` at `now`.
    fn reply(&self, lead: &str, now: &str) {
        let first = self
            .mail_to(lead)
            .into_iter()
            .next()
            .expect("an email to the lead");
        let id = header(&first, "message-id").expect("a Message-ID");
        let raw = format!(
            "From: {lead}\r\nTo: hello@acme.example\r\nSubject: Re: checking in\r\n\
             Message-ID: <reply-{lead}>\r\nIn-Reply-To: {id}\r\n\
             Date: Mon, 2 Mar 2026 10:30:00 +0000\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n\
             Happy to talk again, the budget freeze is over. Can we meet next week?\r\n"
        );
        let file = self.dir.path().join(format!("reply-{lead}.eml"));
        std::fs::write(&file, raw).expect("write the reply");
        let out = self.ok(&[
            "inbound",
            "replay",
            file.to_str().expect("a path"),
            "--now",
            now,
        ]);
        assert!(out.contains("human_reply"), "{out}");
    }

    fn timeline(&self, lead: &str) -> Value {
        let out = self.ok(&["leads", "show", lead, "--json"]);
        serde_json::from_str(&out).unwrap_or_else(|e| panic!("leads show --json: {e}:\n{out}"))
    }

    /// How many events of `kind` the lead's timeline has.
    fn events(&self, lead: &str, kind: &str) -> usize {
        self.timeline(lead)["timeline"]
            .as_array()
            .expect("a timeline")
            .iter()
            .filter(|e| e["kind"] == kind)
            .count()
    }
}

/// The value of a header (first match, case-insensitive) of a message's text.
fn header(text: &str, name: &str) -> Option<String> {
    text.lines()
        .take_while(|l| !l.is_empty())
        .find(|l| {
            l.split_once(':')
                .is_some_and(|(k, _)| k.eq_ignore_ascii_case(name))
        })
        .and_then(|l| l.split_once(':'))
        .map(|(_, v)| v.trim().to_string())
}

fn subjects(mails: &[String]) -> Vec<String> {
    mails
        .iter()
        .map(|m| header(m, "subject").unwrap_or_default())
        .collect()
}

async fn on_both<F, Fut>(name: &str, body: F)
where
    F: Fn(String) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let sqlite = TestDatabase::sqlite();
    body(sqlite.url().to_string()).await;
    with_postgres(name, body).await;
}

// ── Stale hand-offs ─────────────────────────────────────────────────────────────────────

async fn stale_rewarm_is_reminded_then_escalated(url: String) {
    const LEAD: &str = "dana@globex.example";
    // Tom's lead is re-warmed too, and Tom says he is on it: his is never chased.
    const ANSWERED: &str = "ann@initech.example";
    const TOM: &str = "tom@acme.example";
    let d = Deploy::new(&url, |c| c).await;
    d.import(&[(LEAD, OWNER), (ANSWERED, TOM)]);
    d.run_once(T0);
    assert_eq!(d.mail_to(LEAD).len(), 1, "the first email");
    d.reply(LEAD, "2026-03-02T11:00:00Z");
    d.reply(ANSWERED, "2026-03-02T11:00:00Z");
    d.run_once("2026-03-02T11:00:00Z");
    assert_eq!(
        subjects(&d.mail_to(OWNER)),
        ["Re-warmed: dana replied (interested)"]
    );
    d.ok(&[
        "leads",
        "working",
        ANSWERED,
        "--by",
        TOM,
        "--now",
        "2026-03-04T09:00:00Z",
    ]);

    // A day before the reminder: nothing.
    d.run_once("2026-03-08T11:00:00Z");
    assert_eq!(d.mail_to(OWNER).len(), 1);
    assert_eq!(d.events(LEAD, "reminded"), 0);
    // 7 days after the re-warm: one reminder to the owner, once however often the daemon ticks.
    for now in [
        "2026-03-09T11:00:01Z",
        "2026-03-09T11:20:00Z",
        "2026-03-12T09:00:00Z",
    ] {
        d.run_once(now);
    }
    let owner = d.mail_to(OWNER);
    assert_eq!(owner.len(), 2, "{:?}", subjects(&owner));
    assert!(
        owner[1].contains("Reminder: dana is waiting"),
        "{}",
        owner[1]
    );
    assert!(owner[1].contains(LEAD), "{}", owner[1]);
    assert!(
        owner[1].contains("/feedback/"),
        "one-click links: {}",
        owner[1]
    );
    assert_eq!(d.events(LEAD, "reminded"), 1);
    assert!(d.mail_to(MANAGER).is_empty());

    // 14 days after: escalated to the fallback address, once; the owner gets nothing more.
    d.run_once("2026-03-16T10:59:00Z");
    assert!(d.mail_to(MANAGER).is_empty(), "not before 14 days");
    for now in [
        "2026-03-16T11:00:01Z",
        "2026-03-16T12:00:00Z",
        "2026-03-20T12:00:00Z",
    ] {
        d.run_once(now);
    }
    let manager = d.mail_to(MANAGER);
    assert_eq!(manager.len(), 1, "{:?}", subjects(&manager));
    assert!(
        manager[0].contains("Stale lead: dana") && manager[0].contains(OWNER),
        "{}",
        manager[0]
    );
    assert_eq!(d.events(LEAD, "escalated"), 1);
    assert_eq!(d.mail_to(OWNER).len(), 2);
    // The lead sales answered for was neither reminded nor escalated.
    assert_eq!(d.mail_to(TOM).len(), 1, "{:?}", subjects(&d.mail_to(TOM)));
    assert_eq!(
        d.events(ANSWERED, "reminded") + d.events(ANSWERED, "escalated"),
        0
    );
    // Without `stale_returns_to_nurture` it stays re-warmed, waiting for a person.
    assert_eq!(d.timeline(LEAD)["lead"]["state"], "rewarmed");
    assert_eq!(d.mail_to(LEAD).len(), 1, "nothing more to the lead");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stale_rewarm_gets_one_reminder_then_one_escalation_at_their_times() {
    on_both(
        "a_stale_rewarm_gets_one_reminder_then_one_escalation_at_their_times",
        stale_rewarm_is_reminded_then_escalated,
    )
    .await;
}

async fn escalated_lead_returns_to_nurture(url: String) {
    const LEAD: &str = "ed@globex.example";
    let d = Deploy::new(&url, |c| {
        c.set_str("notify", "remind_after", "2d")
            .set_str("notify", "escalate_after", "5d")
            .set("notify", "stale_returns_to_nurture", "true")
    })
    .await;
    d.import(&[(LEAD, OWNER)]);
    d.run_once(T0);
    d.reply(LEAD, "2026-03-02T11:00:00Z");
    d.run_once("2026-03-02T11:00:00Z");
    d.run_once("2026-03-04T11:00:00Z");
    assert_eq!(d.events(LEAD, "reminded"), 1);
    d.run_once("2026-03-07T11:00:00Z");
    assert_eq!(d.events(LEAD, "escalated"), 1);
    assert_eq!(d.events(LEAD, "recycled"), 1);
    assert_eq!(d.timeline(LEAD)["lead"]["state"], "nurturing");
    let manager = d.mail_to(MANAGER);
    assert_eq!(manager.len(), 1);
    assert!(
        manager[0].contains("goes back to nurture"),
        "{}",
        manager[0]
    );
    // Its cadence resumes: the next email (30 days after the first) goes out.
    d.run_once("2026-04-02T10:00:00Z");
    assert_eq!(d.mail_to(LEAD).len(), 2);
    assert_eq!(d.events(LEAD, "escalated"), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_escalated_lead_returns_to_nurture_when_configured() {
    on_both(
        "an_escalated_lead_returns_to_nurture_when_configured",
        escalated_lead_returns_to_nurture,
    )
    .await;
}

// ── Reassign ────────────────────────────────────────────────────────────────────────────

async fn reassign_moves_an_owners_leads(url: String) {
    let d = Deploy::new(&url, |c| c).await;
    d.import(&[
        ("a@globex.example", OWNER),
        ("b@globex.example", "RITA@acme.example"),
        ("c@initech.example", OWNER),
        ("z@initech.example", "tom@acme.example"),
    ]);
    let dry = d.ok(&[
        "leads",
        "reassign",
        "--from",
        OWNER,
        "--to",
        "sam@acme.example",
        "--dry-run",
        "--now",
        T0,
    ]);
    assert!(dry.contains("would reassign 3 lead(s)"), "{dry}");
    assert_eq!(d.events("a@globex.example", "reassigned"), 0);
    let out = d.ok(&[
        "leads",
        "reassign",
        "--from",
        "Rita@Acme.example",
        "--to",
        "sam@acme.example",
        "--name",
        "Sam Lee",
        "--now",
        "2026-03-03T09:00:00Z",
    ]);
    assert!(
        out.contains("reassigned 3 lead(s) from rita@acme.example to sam@acme.example (Sam Lee)"),
        "{out}"
    );
    for lead in ["a@globex.example", "b@globex.example", "c@initech.example"] {
        let t = d.timeline(lead);
        assert_eq!(t["lead"]["owner_email"], "sam@acme.example", "{t}");
        assert_eq!(t["lead"]["owner_name"], "Sam Lee", "{t}");
        let events: Vec<&Value> = t["timeline"]
            .as_array()
            .expect("a timeline")
            .iter()
            .filter(|e| e["kind"] == "reassigned")
            .collect();
        assert_eq!(events.len(), 1, "{t}");
        assert_eq!(events[0]["detail"]["from"], OWNER);
        assert_eq!(events[0]["detail"]["to"], "sam@acme.example");
        assert_eq!(events[0]["at"], "2026-03-03T09:00:00Z");
    }
    let z = d.timeline("z@initech.example");
    assert_eq!(z["lead"]["owner_email"], "tom@acme.example");
    assert_eq!(d.events("z@initech.example", "reassigned"), 0);
    // Again: the old owner has nothing left.
    let again = d.ok(&[
        "leads",
        "reassign",
        "--from",
        OWNER,
        "--to",
        "sam@acme.example",
        "--now",
        T0,
    ]);
    assert!(again.contains("reassigned 0 lead(s)"), "{again}");
    // Bad input is refused with what was wrong, and changes nothing.
    let bad = d.rewarm(&[
        "leads",
        "reassign",
        "--from",
        "rita-at-acme",
        "--to",
        "sam@acme.example",
    ]);
    assert!(!bad.status.success());
    let err = String::from_utf8_lossy(&bad.stderr);
    assert!(
        err.contains("--from `rita-at-acme` is not an email address"),
        "{err}"
    );
    let same = d.rewarm(&[
        "leads",
        "reassign",
        "--from",
        "sam@acme.example",
        "--to",
        "SAM@acme.example",
    ]);
    assert!(!same.status.success());
    assert_eq!(d.events("a@globex.example", "reassigned"), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reassign_moves_every_lead_of_an_owner_with_an_event_each() {
    on_both(
        "reassign_moves_every_lead_of_an_owner_with_an_event_each",
        reassign_moves_an_owners_leads,
    )
    .await;
}

// ── An owner who left ───────────────────────────────────────────────────────────────────

/// A Postfix DSN: the notification `message_id` to `recipient` bounced for good.
fn owner_dsn(recipient: &str, message_id: &str) -> String {
    let fixture = bin::repo().join("tests/fixtures/inbound/postfix_dsn_hard.eml");
    std::fs::read_to_string(fixture)
        .expect("read the DSN fixture")
        .replace("gina@example.com", recipient)
        .replace("<k1.AQAAAAAAAAAzAAAAAA.Xc7Vb0Nm@acme.example>", message_id)
}

async fn owner_hard_bounce_routes_to_fallback(url: String) {
    const FIRST: &str = "fay@globex.example";
    const SECOND: &str = "gus@globex.example";
    const ORPHAN: &str = "nobody@initech.example";
    let d = Deploy::new(&url, |c| c.set_str("notify", "digest_cron", "0 8 * * MON")).await;
    d.import(&[(FIRST, OWNER), (SECOND, OWNER), (ORPHAN, "")]);
    d.run_once(T0);
    d.reply(FIRST, "2026-03-02T11:00:00Z");
    d.run_once("2026-03-02T11:00:00Z");
    let told = d.notices_to(OWNER);
    assert_eq!(told.len(), 1);
    let id = header(&told[0], "message-id").expect("the notification's Message-ID");
    assert!(id.starts_with("<notify-"), "{id}");

    // The owner's mailbox is gone: the DSN about that notification comes back.
    let dsn = d.dir.path().join("dsn.eml");
    std::fs::write(&dsn, owner_dsn(OWNER, &id)).expect("write the DSN");
    let out = d.ok(&[
        "inbound",
        "replay",
        dsn.to_str().expect("a path"),
        "--now",
        "2026-03-02T12:00:00Z",
    ]);
    assert!(out.contains("hard_bounce"), "{out}");

    // The next re-warm of one of their leads goes to the fallback address, saying why.
    d.reply(SECOND, "2026-03-03T10:00:00Z");
    d.run_once("2026-03-03T10:00:00Z");
    assert_eq!(
        d.notices_to(OWNER).len(),
        1,
        "nothing more to the gone owner"
    );
    let manager = d.notices_to(MANAGER);
    assert_eq!(manager.len(), 1, "{:?}", subjects(&manager));
    assert!(
        manager[0].contains("Re-warmed: gus replied"),
        "{}",
        manager[0]
    );
    assert!(
        manager[0].contains(&format!("Sent to you instead of {OWNER}, who has left")),
        "{}",
        manager[0]
    );
    // So does the owner's weekly digest, and it says so.
    d.run_once("2026-03-09T08:30:00Z");
    let manager = d.mail_to(MANAGER);
    let digest = manager
        .iter()
        .find(|m| m.contains("Weekly leads digest") && m.contains(&format!("instead of {OWNER}")))
        .unwrap_or_else(|| panic!("no digest to the fallback: {:?}", subjects(&manager)));
    assert!(
        digest.contains(FIRST) && digest.contains(SECOND),
        "{digest}"
    );
    // The fallback's own digest lists the gone owner and the lead without an owner.
    let own = manager
        .iter()
        .rfind(|m| m.contains("Weekly leads digest") && !m.contains("instead of"))
        .unwrap_or_else(|| panic!("no own digest to the fallback: {:?}", subjects(&manager)));
    assert!(
        own.contains("No owner (1)") && own.contains(ORPHAN),
        "{own}"
    );
    assert!(
        own.contains("Owners gone (1)")
            && own.contains(&format!(
            "- {OWNER}: gone since 2026-03-02 (notification "
        )) && own.contains(&format!(
            "bounced (a delivery report)), 2 lead(s): rewarm leads reassign --from {OWNER} --to NEW_OWNER"
        )),
        "{own}"
    );
    // The owner got the digest of the week before the bounce and the first notice, nothing after.
    assert_eq!(
        d.mail_to(OWNER).len(),
        2,
        "{:?}",
        subjects(&d.mail_to(OWNER))
    );
    owners_lists_the_gone_owner(&d);
}

/// `leads owners` after the bounce: the owner with their leads, stale re-warms and gone
/// mark, the lead without an owner; `--gone` only the gone owner, also once they own nothing.
fn owners_lists_the_gone_owner(d: &Deploy) {
    const LATER: &str = "2026-03-10T12:00:00Z";
    let out = d.rewarm(&["leads", "owners", "--now", LATER]);
    assert!(out.status.success(), "{out:?}");
    let text = String::from_utf8_lossy(&out.stdout);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 5, "{text}");
    assert_eq!(
        lines[0],
        format!("{OWNER}: 2 lead(s) (rewarmed 2); 2 stale re-warm(s)")
    );
    assert!(
        lines[1].starts_with("  GONE since 2026-03-02 12:00 UTC (notification ")
            && lines[1].ends_with(
                " bounced (a delivery report)): notifications go to notify.fallback_email"
            ),
        "{text}"
    );
    assert_eq!(
        lines[2],
        format!("  hand their leads over: rewarm leads reassign --from {OWNER} --to NEW_OWNER")
    );
    assert_eq!(
        lines[3],
        format!("  back after all: rewarm leads owner-back {OWNER}")
    );
    assert_eq!(lines[4], "(no owner): 1 lead(s) (nurturing 1)");
    assert!(
        String::from_utf8_lossy(&out.stderr)
            .contains("1 owner(s), 1 marked gone; 1 lead(s) without an owner"),
        "{out:?}"
    );
    d.ok(&[
        "leads",
        "reassign",
        "--from",
        OWNER,
        "--to",
        "sam@acme.example",
        "--now",
        LATER,
    ]);
    let gone = d.ok(&["leads", "owners", "--gone", "--json", "--now", LATER]);
    let rows: Vec<Value> = gone
        .lines()
        .map(|l| serde_json::from_str(l).expect("a JSON line"))
        .collect();
    assert_eq!(rows.len(), 1, "{gone}");
    assert_eq!(rows[0]["owner"], OWNER);
    assert_eq!(rows[0]["leads"], 0);
    assert_eq!(rows[0]["gone"]["since"], "2026-03-02T12:00:00Z");
    assert_eq!(rows[0]["gone"]["evidence"]["report"], "delivery-status");
    let all = d.ok(&["leads", "owners", "--json", "--now", LATER]);
    let sam: Value = all
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).expect("a JSON line"))
        .find(|r| r["owner"] == "sam@acme.example")
        .unwrap_or_else(|| panic!("no row for the new owner: {all}"));
    assert_eq!(sam["states"]["rewarmed"], 2);
    assert_eq!(sam["stale"], 2);
    assert!(sam["gone"].is_null());
    assert!(
        all.contains("\"owner\":null"),
        "the leads without an owner: {all}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hard_bounce_on_a_notification_routes_the_owners_next_ones_to_the_fallback() {
    on_both(
        "a_hard_bounce_on_a_notification_routes_the_owners_next_ones_to_the_fallback",
        owner_hard_bounce_routes_to_fallback,
    )
    .await;
}

// ── The digest's week ───────────────────────────────────────────────────────────────────

async fn digest_covers_exactly_its_week(url: String) {
    const INSIDE: &str = "ines@globex.example";
    const AFTER: &str = "otto@globex.example";
    const ORPHAN: &str = "nobody@initech.example";
    const MARKED: &str = "mark@globex.example";
    let d = Deploy::new(&url, |c| c.set_str("notify", "digest_cron", "0 8 * * MON")).await;
    d.import(&[
        (INSIDE, OWNER),
        (AFTER, OWNER),
        (ORPHAN, ""),
        (MARKED, OWNER),
    ]);
    d.run_once(T0);
    // Re-warmed and marked won by its owner inside the week.
    d.reply(MARKED, "2026-03-03T10:00:00Z");
    d.ok(&[
        "leads",
        "won",
        MARKED,
        "--by",
        OWNER,
        "--now",
        "2026-03-05T10:00:00Z",
    ]);
    // Inside the week of 2026-03-02 08:00 to 2026-03-09 08:00…
    d.reply(INSIDE, "2026-03-04T10:00:00Z");
    d.run_once("2026-03-04T10:00:00Z");
    // …and one minute after its end.
    d.reply(AFTER, "2026-03-09T08:01:00Z");
    d.run_once("2026-03-09T09:00:00Z");
    let digests: Vec<String> = d
        .mail_to(OWNER)
        .into_iter()
        .filter(|m| m.contains("Weekly leads digest"))
        .collect();
    let digest = digests
        .iter()
        .find(|m| m.contains("2026-03-09 08:00"))
        .unwrap_or_else(|| panic!("no digest for the week to 2026-03-09: {digests:?}"));
    assert!(
        digest.contains("the week from 2026-03-02 08:00 UTC to 2026-03-09 08:00 UTC"),
        "{digest}"
    );
    assert!(digest.contains("Re-warmed (2)"), "{digest}");
    assert!(digest.contains(INSIDE), "{digest}");
    assert!(digest.contains("/feedback/"), "one-click links: {digest}");
    assert!(
        digest.contains("Marked (1):")
            && digest.contains(&format!("- mark <{MARKED}>: won (2026-03-05)")),
        "{digest}"
    );
    assert!(
        !digest.contains(AFTER),
        "an event after the week's end: {digest}"
    );
    // The lead without an owner is listed for the fallback address.
    let manager = d.mail_to(MANAGER);
    let theirs = manager
        .iter()
        .find(|m| m.contains("Weekly leads digest") && m.contains("2026-03-09 08:00"))
        .unwrap_or_else(|| panic!("no digest to the fallback: {:?}", subjects(&manager)));
    assert!(
        theirs.contains("No owner (1)") && theirs.contains(ORPHAN),
        "{theirs}"
    );
    // The next week's digest lists the later re-warm, and the first one as stale.
    d.run_once("2026-03-16T08:05:00Z");
    let next = d
        .mail_to(OWNER)
        .into_iter()
        .find(|m| m.contains("Weekly leads digest") && m.contains("to 2026-03-16 08:00"))
        .expect("the next week's digest");
    assert!(
        next.contains("Re-warmed (1)") && next.contains(AFTER),
        "{next}"
    );
    assert!(
        next.contains("Stale (1)") && next.contains(INSIDE),
        "{next}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_digest_covers_exactly_its_week_per_owner() {
    on_both(
        "the_digest_covers_exactly_its_week_per_owner",
        digest_covers_exactly_its_week,
    )
    .await;
}

// ── Call tasks ──────────────────────────────────────────────────────────────────────────

async fn call_step_tasks_the_owner_once(url: String) {
    const LEAD: &str = "carl@globex.example";
    let d = Deploy::new(&url, |c| {
        c.campaign_key(
            "checkin",
            "steps",
            r#"[{ kind = "call", note = "Ask whether the budget is back" }, { template = "checkin" }]"#,
        )
        .set("campaigns.checkin", "max_touches", "2")
    })
    .await;
    d.import(&[(LEAD, OWNER)]);
    let forecast = d.ok(&["forecast", "--leads", "--json", "--days", "60", "--now", T0]);
    let planned: Vec<Value> = serde_json::from_str(&forecast).expect("forecast JSON");
    assert_eq!(planned.len(), 2, "{forecast}");
    assert_eq!(planned[0]["kind"], "call", "{forecast}");
    assert_eq!(planned[1]["kind"], "email", "{forecast}");
    assert_eq!(planned[1]["at"], "2026-04-01T10:00:00Z", "{forecast}");
    let report = d.run_once(T0);
    assert_eq!(report["call_tasks"], 1, "{report}");
    assert_eq!(report["sent"], 0, "{report}");
    assert!(
        d.mail_to(LEAD).is_empty(),
        "a call step emails the lead nothing"
    );
    let owner = d.mail_to(OWNER);
    assert_eq!(owner.len(), 1);
    assert!(owner[0].contains("Call task: carl"), "{}", owner[0]);
    assert!(
        owner[0].contains("Ask whether the budget is back"),
        "{}",
        owner[0]
    );
    assert!(owner[0].contains("Timeline"), "{}", owner[0]);
    assert!(
        owner[0].contains("/feedback/"),
        "one-click links: {}",
        owner[0]
    );
    // Never twice.
    d.run_once(T0);
    d.run_once("2026-03-02T12:00:00Z");
    assert_eq!(d.mail_to(OWNER).len(), 1);
    assert_eq!(d.events(LEAD, "call_task"), 1);
    let status: Value =
        serde_json::from_str(&d.ok(&["status", "--json", "--now", T0])).expect("status JSON");
    assert_eq!(status["deliveries_by_state"]["tasked"], 1, "{status}");
    // The next step is an email, 30 days later.
    d.run_once("2026-04-01T10:00:00Z");
    assert_eq!(d.mail_to(LEAD).len(), 1);
    assert_eq!(d.mail_to(OWNER).len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_step_sends_the_lead_nothing_and_its_owner_one_task() {
    on_both(
        "a_call_step_sends_the_lead_nothing_and_its_owner_one_task",
        call_step_tasks_the_owner_once,
    )
    .await;
}
