//! `rewarm suppress add|remove|list|import` end to end with the real binary, then `run --once`
//! passes that send nothing to suppressed addresses and domains while the other leads get
//! their emails (file transport: every message is an .eml file in a temporary outbox).

use std::path::{Path, PathBuf};
use std::process::Output;

use rewarm::domain::email::EmailAddress;
use rewarm::domain::lead::LeadState;
use rewarm::store::prelude::*;
use rewarm::store::sqlite::SqliteStore;

use crate::support::bin;

/// A temporary deployment: the example config pointed at a database and an outbox in a
/// temporary folder, and the repository's templates.
struct Deployment {
    dir: tempfile::TempDir,
    config: PathBuf,
    database_url: String,
}

impl Deployment {
    fn new() -> Deployment {
        let dir = tempfile::tempdir().expect("temp dir");
        let root = env!("CARGO_MANIFEST_DIR");
        let database_url = format!("sqlite://{}", dir.path().join("rewarm.db").display());
        let example = std::fs::read_to_string(format!("{root}/config/example.toml"))
            .expect("read config/example.toml");
        let mut replaced = [false; 3];
        let config_text: String = example
            .lines()
            .map(|line| {
                let key = line.split('=').next().unwrap_or("").trim();
                match key {
                    "database_url" => {
                        replaced[0] = true;
                        format!("database_url = {database_url:?}")
                    }
                    "templates_dir" => {
                        replaced[1] = true;
                        format!("templates_dir = {:?}", format!("{root}/templates"))
                    }
                    "outbox" => {
                        replaced[2] = true;
                        format!(
                            "outbox = {:?}",
                            dir.path().join("outbox").display().to_string()
                        )
                    }
                    _ => line.to_string(),
                }
            })
            .collect::<Vec<_>>()
            .join("\n");
        assert_eq!(
            replaced, [true; 3],
            "config/example.toml no longer has database_url, templates_dir and outbox lines"
        );
        assert!(
            config_text.contains(r#"kind = "file""#),
            "the example config uses the file transport"
        );
        let config = dir.path().join("rewarm.toml");
        std::fs::write(&config, config_text).expect("write the config");
        Deployment {
            dir,
            config,
            database_url,
        }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn write(&self, name: &str, text: &str) -> PathBuf {
        let path = self.path(name);
        std::fs::write(&path, text).expect("write a file");
        path
    }

    /// Runs `rewarm --config CONFIG ARGS…`.
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

    /// Runs it and expects success; returns stdout.
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

    /// Runs it and expects failure; returns stderr.
    fn fails(&self, args: &[&str]) -> String {
        let out = self.rewarm(args);
        assert!(
            !out.status.success(),
            "rewarm {args:?} should have failed:\n{}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stderr).into_owned()
    }

    fn listed(&self) -> Vec<serde_json::Value> {
        let text = self.ok(&["suppress", "list", "--json"]);
        serde_json::from_str::<Vec<serde_json::Value>>(&text)
            .unwrap_or_else(|e| panic!("suppress list --json: {e}:\n{text}"))
    }

    fn addresses(&self) -> Vec<String> {
        self.listed()
            .iter()
            .map(|e| e["address"].as_str().expect("address").to_string())
            .collect()
    }

    /// `run --once --now NOW`; its JSON report.
    fn run_once(&self, now: &str, extra: &[&str]) -> serde_json::Value {
        let mut args = vec!["run", "--once", "--now", now];
        args.extend_from_slice(extra);
        let out = self.ok(&args);
        let line = out.lines().last().expect("a report line");
        serde_json::from_str(line).unwrap_or_else(|e| panic!("report {line:?}: {e}"))
    }

    /// The `To:` address of every message in the outbox.
    fn recipients(&self) -> Vec<String> {
        let outbox = self.path("outbox");
        let Ok(entries) = std::fs::read_dir(&outbox) else {
            return Vec::new();
        };
        let mut to = Vec::new();
        for entry in entries {
            let path = entry.expect("outbox entry").path();
            if path.extension().and_then(|e| e.to_str()) != Some("eml") {
                continue;
            }
            to.push(recipient(&path));
        }
        to.sort();
        to
    }

    async fn store(&self) -> SqliteStore {
        SqliteStore::connect(&self.database_url)
            .await
            .expect("open the database")
    }
}

/// The address in a message's `To:` header (`Name <addr>` or `addr`), lower-cased.
fn recipient(path: &Path) -> String {
    let text = std::fs::read_to_string(path).expect("read a message");
    let header = text
        .lines()
        .take_while(|l| !l.is_empty())
        .find(|l| l.to_ascii_lowercase().starts_with("to:"))
        .unwrap_or_else(|| panic!("{}: no To header", path.display()));
    let value = header[3..].trim();
    let address = match (value.rfind('<'), value.rfind('>')) {
        (Some(a), Some(b)) if a < b => &value[a + 1..b],
        _ => value,
    };
    address.trim().to_ascii_lowercase()
}

/// Lost on 1 December 2025 and "went quiet": the example's `checkin` campaign (first email 90
/// days after the loss, then every 30 days, no send window).
const LEADS: &str = "\
email,first_name,last_name,company,lost_reason,lost_at,timezone
ann@keep.example,Ann,Archer,Keep Ltd,went_quiet,2025-12-01,Europe/Paris
bob@blocked.example,Bob,Brown,Blocked Inc,went_quiet,2025-12-01,Europe/Paris
cat@keep.example,Cat,Cole,Keep Ltd,went_quiet,2025-12-01,Europe/Paris
dan@keep.example,Dan,Dale,Keep Ltd,went_quiet,2025-12-01,Europe/Paris
eve@other.example,Eve,East,Other GmbH,went_quiet,2025-12-01,Europe/Paris
fay@sub.blocked.example,Fay,Fox,Sub Blocked,went_quiet,2025-12-01,Europe/Paris
";

#[test]
fn add_rejects_bad_addresses_and_adds_nothing() {
    let d = Deployment::new();
    let err = d.fails(&[
        "suppress",
        "add",
        "good@keep.example",
        "not-an-address",
        "@nodot",
    ]);
    assert!(err.contains("not-an-address"), "{err}");
    assert!(err.contains("@nodot"), "{err}");
    assert!(err.contains("nothing was added"), "{err}");
    assert!(d.addresses().is_empty(), "nothing half-applied");
    let err = d.fails(&["suppress", "add", "x@keep.example", "--reason", "annoyed"]);
    assert!(err.contains("annoyed"), "{err}");
    assert!(d.ok(&["suppress", "list"]).contains("empty"));
}

#[test]
fn import_reports_bad_lines_by_number_and_applies_nothing_until_the_file_is_clean() {
    let d = Deployment::new();
    let list = d.write(
        "list.txt",
        "# unsubscribed by email\ncat@keep.example\n\nnot an address\n@Blocked.Example\nx@localhost\n",
    );
    let list_arg = list.to_str().expect("utf-8 path");
    let err = d.fails(&["suppress", "import", list_arg]);
    assert!(err.contains("list.txt:4:"), "line 4 is reported: {err}");
    assert!(err.contains("list.txt:6:"), "line 6 is reported: {err}");
    assert!(
        !err.contains("list.txt:2:") && !err.contains("list.txt:5:"),
        "{err}"
    );
    assert!(err.contains("2 bad line(s); nothing was added"), "{err}");
    assert!(d.addresses().is_empty(), "nothing half-applied");

    // Fixed: both entries, normalised, with the file and line as evidence.
    std::fs::write(
        &list,
        "# unsubscribed by email\ncat@keep.example\n\n@Blocked.Example\n",
    )
    .expect("rewrite");
    let out = d.ok(&[
        "suppress",
        "import",
        list_arg,
        "--reason",
        "unsubscribed",
        "--note",
        "helpdesk",
    ]);
    assert!(out.contains("2 added, 0 already"), "{out}");
    let listed = d.listed();
    assert_eq!(listed.len(), 2);
    assert_eq!(listed[0]["address"], "cat@keep.example");
    assert_eq!(listed[0]["reason"], "unsubscribed");
    assert_eq!(listed[0]["evidence"]["line"], 2);
    assert_eq!(listed[0]["evidence"]["note"], "helpdesk");
    assert_eq!(listed[1]["address"], "@blocked.example");
    assert_eq!(listed[1]["evidence"]["line"], 4);

    // A CSV with an `email` column: a bad row is reported with its line, then fixed.
    let csv = d.write(
        "export.csv",
        "name,email,comment\nDan,dan@keep.example,asked\nNobody,,no address\nCat,CAT@keep.example,again\n",
    );
    let csv_arg = csv.to_str().expect("utf-8 path");
    let err = d.fails(&["suppress", "import", csv_arg]);
    assert!(err.contains("export.csv:3:"), "{err}");
    assert_eq!(d.addresses().len(), 2, "nothing half-applied");
    std::fs::write(
        &csv,
        "name,email,comment\nDan,dan@keep.example,asked\nCat,CAT@keep.example,again\n",
    )
    .expect("rewrite");
    let out = d.ok(&["suppress", "import", csv_arg]);
    assert!(out.contains("1 added, 1 already"), "{out}");
    let listed = d.listed();
    assert_eq!(listed.len(), 3);
    assert_eq!(listed[0]["reason"], "unsubscribed", "the first entry stays");
    assert_eq!(listed[2]["address"], "dan@keep.example");
    assert_eq!(listed[2]["reason"], "manual");
    assert_eq!(listed[2]["evidence"]["line"], 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pass_sends_nothing_to_suppressed_addresses_and_domains_and_everyone_else_gets_their_email()
 {
    let d = Deployment::new();
    // The domain and Eve by hand; Eve taken off again; Cat from a file.
    let out = d.ok(&[
        "suppress",
        "add",
        "@blocked.example",
        "EVE@other.example",
        "--reason",
        "complaint",
        "--note",
        "abuse desk ticket 42",
    ]);
    assert!(out.contains("2 added"), "{out}");
    let list = d.write("list.txt", "cat@keep.example\n");
    d.ok(&[
        "suppress",
        "import",
        list.to_str().expect("utf-8 path"),
        "--reason",
        "unsubscribed",
    ]);
    let out = d.ok(&["suppress", "remove", "eve@other.example"]);
    assert!(out.contains("removed eve@other.example"), "{out}");
    let err = d.fails(&["suppress", "remove", "eve@other.example"]);
    assert!(err.contains("not on the suppression list"), "{err}");
    assert_eq!(d.addresses(), ["@blocked.example", "cat@keep.example"]);
    let text = d.ok(&["suppress", "list"]);
    assert!(
        text.contains("@blocked.example") && text.contains("complaint"),
        "{text}"
    );
    assert!(text.contains("abuse desk ticket 42"), "{text}");

    // 10 March 2026: everyone's first step is due (1 December + 90 days).
    let leads = d.write("leads.csv", LEADS);
    let report = d.run_once(
        "2026-03-10T10:00:00Z",
        &["--import", leads.to_str().expect("utf-8 path")],
    );
    assert_eq!(report["sent"], 4, "{report}");
    assert_eq!(
        d.recipients(),
        [
            "ann@keep.example",
            "dan@keep.example",
            "eve@other.example",
            "fay@sub.blocked.example"
        ],
        "nothing to the listed address or domain (a subdomain is another domain)"
    );

    let store = d.store().await;
    for (address, state) in [
        ("ann@keep.example", LeadState::Nurturing),
        ("bob@blocked.example", LeadState::Suppressed),
        ("cat@keep.example", LeadState::Suppressed),
        ("dan@keep.example", LeadState::Nurturing),
        ("eve@other.example", LeadState::Nurturing),
    ] {
        let lead = store
            .lead_by_email(&EmailAddress::parse(address).expect("address"))
            .await
            .expect("read")
            .unwrap_or_else(|| panic!("{address} imported"));
        assert_eq!(lead.state, state, "{address}");
    }
    let bob = store
        .lead_by_email(&EmailAddress::parse("bob@blocked.example").expect("address"))
        .await
        .expect("read")
        .expect("bob");
    let timeline = store.timeline(bob.id).await.expect("timeline");
    assert_eq!(timeline[0].kind, "imported");
    assert_eq!(timeline[0].detail["state"], "suppressed");
    assert_eq!(timeline[0].detail["address"], "@blocked.example");
    assert_eq!(timeline[0].detail["reason"], "complaint");
    assert!(
        timeline
            .iter()
            .all(|e| e.kind != "sent" && e.kind != "enrolled")
    );
    drop(store);

    // Ann unsubscribes after her first email; the others' second steps go out 30 days later.
    d.ok(&[
        "suppress",
        "add",
        "ann@keep.example",
        "--reason",
        "unsubscribed",
    ]);
    let report = d.run_once("2026-04-10T10:00:00Z", &[]);
    let recipients = d.recipients();
    assert!(
        !recipients
            .iter()
            .any(|r| r == "bob@blocked.example" || r == "cat@keep.example"),
        "{recipients:?}"
    );
    assert_eq!(
        recipients
            .iter()
            .filter(|r| *r == "ann@keep.example")
            .count(),
        1,
        "Ann got her first email only: {recipients:?}"
    );
    assert_eq!(report["sent"], 3, "{report}");
    assert_eq!(recipients.len(), 7, "{recipients:?}");
    let store = d.store().await;
    let ann = store
        .lead_by_email(&EmailAddress::parse("ann@keep.example").expect("address"))
        .await
        .expect("read")
        .expect("ann");
    assert_eq!(ann.state, LeadState::Suppressed);
    let last = store.timeline(ann.id).await.expect("timeline");
    let suppressed: Vec<_> = last.iter().filter(|e| e.kind == "suppressed").collect();
    assert_eq!(suppressed.len(), 1);
    assert_eq!(suppressed[0].detail["reason"], "unsubscribed");
    assert_eq!(suppressed[0].detail["from"], "nurturing");
}

/// A mistaken domain entry asks for `--yes`, `check` warns of it, and `suppress remove
/// --restore` brings its leads back: their cadence resumes where the entry stopped it, and
/// a lead listed by another entry stays suppressed.
#[tokio::test]
async fn a_mistaken_domain_entry_asks_first_and_remove_restore_brings_its_leads_back() {
    let d = Deployment::new();
    let text = std::fs::read_to_string(&d.config).expect("config");
    let text = text.replacen(
        "[compliance]\n",
        "[compliance]\nconfirm_domain_over = 1\n",
        1,
    );
    std::fs::write(&d.config, text).expect("config");
    let leads = d.write("leads.csv", LEADS);
    let report = d.run_once(
        "2026-03-10T10:00:00Z",
        &["--import", leads.to_str().expect("utf-8 path")],
    );
    assert_eq!(report["sent"], 6, "{report}");

    // A typo'd domain would silence three leads of Keep Ltd: refused without --yes.
    let err = d.fails(&["suppress", "add", "@keep.example"]);
    assert!(
        err.contains("@keep.example would suppress 3 leads") && err.contains("--yes"),
        "{err}"
    );
    assert!(d.addresses().is_empty());
    d.ok(&[
        "suppress",
        "add",
        "@keep.example",
        "--yes",
        "--now",
        "2026-03-11T10:00:00Z",
    ]);
    d.ok(&[
        "suppress",
        "add",
        "dan@keep.example",
        "--reason",
        "unsubscribed",
    ]);
    let check = d.rewarm(&["check"]);
    let warned = String::from_utf8_lossy(&check.stderr);
    assert!(
        warned.contains("@keep.example suppresses 3 leads")
            && warned.contains("suppress remove @keep.example --restore"),
        "{warned}"
    );
    // A month on: nothing to Keep Ltd.
    let report = d.run_once("2026-04-10T10:00:00Z", &[]);
    assert_eq!(report["sent"], 3, "{report}");
    let keep = d
        .recipients()
        .into_iter()
        .filter(|r| r.ends_with("@keep.example"))
        .count();
    assert_eq!(keep, 3, "only their first emails");

    let out = d.ok(&[
        "suppress",
        "remove",
        "@keep.example",
        "--restore",
        "--now",
        "2026-04-15T10:00:00Z",
    ]);
    assert!(
        out.contains(
            "restored 2 lead(s) (2 email(s) scheduled again); 1 stay suppressed by another entry"
        ),
        "{out}"
    );
    let store = d.store().await;
    for (address, state) in [
        ("ann@keep.example", LeadState::Nurturing),
        ("cat@keep.example", LeadState::Nurturing),
        ("dan@keep.example", LeadState::Suppressed),
    ] {
        let lead = store
            .lead_by_email(&EmailAddress::parse(address).expect("address"))
            .await
            .expect("read")
            .expect("imported");
        assert_eq!(lead.state, state, "{address}");
        let timeline = store.timeline(lead.id).await.expect("timeline");
        let restored: Vec<_> = timeline.iter().filter(|e| e.kind == "restored").collect();
        if state == LeadState::Nurturing {
            assert_eq!(restored.len(), 1, "{address}");
            assert_eq!(restored[0].detail["from"], "suppressed");
            assert_eq!(restored[0].detail["to"], "nurturing");
            assert_eq!(restored[0].detail["address"], "@keep.example");
        } else {
            assert!(restored.is_empty(), "{address}");
        }
    }
    drop(store);
    // The cadence resumes: their second email goes out on the next pass.
    let report = d.run_once("2026-04-15T10:00:00Z", &[]);
    assert_eq!(report["sent"], 2, "{report}");
    let recipients = d.recipients();
    for address in ["ann@keep.example", "cat@keep.example"] {
        assert_eq!(
            recipients.iter().filter(|r| *r == address).count(),
            2,
            "{recipients:?}"
        );
    }
    assert_eq!(
        recipients
            .iter()
            .filter(|r| *r == "dan@keep.example")
            .count(),
        1
    );
    let err = d.fails(&["suppress", "remove", "@keep.example", "--restore"]);
    assert!(err.contains("not on the suppression list"), "{err}");
}
