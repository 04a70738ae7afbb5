//! Import quality, end to end with the binary on fixture files (tests/fixtures/import/): a
//! CRM's headers mapped by `[import.columns]`, a misspelt header reported with its
//! suggestion, a role address skipped and a disposable one warned about by policy, two reps
//! claiming one lead decided by `import.owner_conflict` and named, and `--dry-run` printing
//! what an import would do (counts, segment per new lead) without writing anything — on
//! SQLite and PostgreSQL.

use std::path::PathBuf;
use std::process::Output;

use serde_json::Value;

use crate::support::bin;
use crate::support::config::TestConfig;
use crate::support::db::{TestDatabase, with_postgres};

const NOW: &str = "2026-03-02T10:00:00Z";

fn fixture(name: &str) -> String {
    format!(
        "{}/tests/fixtures/import/{name}",
        env!("CARGO_MANIFEST_DIR")
    )
}

struct Deploy {
    dir: tempfile::TempDir,
    config: PathBuf,
}

impl Deploy {
    fn new(url: &str) -> Deploy {
        let dir = bin::dir_with_templates();
        let config = TestConfig::bare(url)
            .set_str("", "default_timezone", "UTC")
            .templates_dir(&dir.path().join("templates"))
            .segment("budget", "checkin")
            .set("segments", "lost_reason", "\"budget\"")
            .segment("all", "checkin")
            .campaign("checkin", "90d", "30d")
            .set("import", "role_addresses", "\"skip\"")
            .set("import", "owner_conflict", "\"latest_lost_at\"")
            .set("import.columns", "\"Lost Date\"", "\"lost_at\"")
            .write(&dir.path().join("rewarm.toml"));
        Deploy { dir, config }
    }

    fn rewarm(&self, args: &[&str]) -> Output {
        bin::command()
            .arg("--config")
            .arg(&self.config)
            .args(args)
            .args(["--now", NOW])
            .env_remove("RUST_LOG")
            .env_remove("REWARM_CONFIG")
            .current_dir(self.dir.path())
            .output()
            .expect("run the rewarm binary")
    }

    fn lead(&self, email: &str) -> Option<Value> {
        let out = self.rewarm(&["leads", "show", email, "--json"]);
        out.status
            .success()
            .then(|| serde_json::from_slice(&out.stdout).expect("JSON"))
    }
}

fn text(out: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        bin::stderr_of(out),
    )
}

async fn csv_import_is_judged_and_dry_run_writes_nothing(url: String) {
    let d = Deploy::new(&url);
    let csv = fixture("crm.csv");

    let dry = d.rewarm(&["leads", "import", &csv, "--dry-run"]);
    let (out, err) = text(&dry);
    assert_eq!(
        dry.status.code(),
        Some(3),
        "a bad row: exit 3\n{out}\n{err}"
    );
    assert!(
        out.contains("(dry run, nothing written): would insert 4, update 0, leave 0 unchanged; merged 1 duplicate row(s), rejected 1, skipped 1 by policy"),
        "{out}"
    );
    for segment in ["budget", "all"] {
        assert!(out.contains(&format!("  {segment:<24} 2\n")), "{out}");
    }
    assert!(out.contains("ann@initech.example → budget"), "{out}");
    assert!(out.contains("cy@hooli.example → all"), "{out}");
    assert!(
        err.contains("column `Ownr Name` is not a lead field")
            && err.contains("did you mean `owner_name`"),
        "{err}"
    );
    assert!(
        err.contains("crm.csv:3: info@globex.example: a role address, not a person (skipped"),
        "{err}"
    );
    assert!(
        err.contains("crm.csv:4: dan@mailinator.com: a disposable address (imported"),
        "{err}"
    );
    assert!(
        err.contains("cy@hooli.example: rows disagree on the owner (line 5 rita@acme.example, line 6 tom@acme.example); kept tom@acme.example (import.owner_conflict = \"latest_lost_at\")"),
        "{err}"
    );
    assert!(err.contains("rejected "), "{err}");
    assert!(
        d.lead("ann@initech.example").is_none(),
        "a dry run writes nothing"
    );

    let real = d.rewarm(&["leads", "import", &csv]);
    let (out, err) = text(&real);
    assert_eq!(real.status.code(), Some(3), "{out}\n{err}");
    assert!(
        out.contains("inserted 4, updated 0, unchanged 0, merged 1 duplicate row(s), rejected 1, skipped 1 by policy"),
        "{out}"
    );
    let ann = d.lead("ann@initech.example").expect("imported");
    assert_eq!(
        ann["lead"]["lost_at"], "2026-01-10T00:00:00Z",
        "mapped header"
    );
    assert_eq!(ann["lead"]["fields"]["ownr_name"], "Rita");
    assert!(ann["lead"]["fields"].get("lost_date").is_none());
    let cy = d.lead("cy@hooli.example").expect("imported");
    assert_eq!(cy["lead"]["owner_email"], "tom@acme.example");
    assert!(
        d.lead("info@globex.example").is_none(),
        "role address skipped"
    );
    assert!(
        d.lead("dan@mailinator.com").is_some(),
        "disposable: warned only"
    );

    let again = d.rewarm(&["leads", "import", &csv, "--dry-run"]);
    let (out, _) = text(&again);
    assert!(
        out.contains("would insert 0, update 0, leave 4 unchanged"),
        "{out}"
    );

    // A second file: one lead changed, one as imported, a new one on a suppressed domain and
    // a new one. The dry run (a chunk's known leads and suppressed addresses read in one go)
    // counts what the import then does.
    let blocked = d.rewarm(&["suppress", "add", "@blocked.example"]);
    assert!(blocked.status.success(), "{:?}", text(&blocked));
    let more = d.dir.path().join("more.csv");
    std::fs::write(
        &more,
        "Email,First Name,Company,Lost Reason,Lost Date,Owner Email,Ownr Name\n\
         ann@initech.example,Ann,Initech Labs,budget,2026-01-10,rita@acme.example,Rita\n\
         eve@umbrella.example,Eve,Umbrella,budget,2026-01-15,tom@acme.example,Tom\n\
         zed@blocked.example,Zed,Blocked,budget,2026-01-20,tom@acme.example,Tom\n\
         amy@new.example,Amy,New,budget,2026-01-21,tom@acme.example,Tom\n",
    )
    .expect("write more.csv");
    let more = more.to_str().expect("a UTF-8 path");
    let dry = d.rewarm(&["leads", "import", more, "--dry-run"]);
    let (out, err) = text(&dry);
    assert!(dry.status.success(), "{out}\n{err}");
    assert!(
        out.contains("would insert 2, update 1, leave 1 unchanged"),
        "{out}"
    );
    assert!(out.contains("  (suppressed)             1\n"), "{out}");
    assert!(out.contains("  budget                   1\n"), "{out}");
    assert!(out.contains("zed@blocked.example → (suppressed)"), "{out}");
    assert!(out.contains("amy@new.example → budget"), "{out}");
    assert!(
        d.lead("amy@new.example").is_none(),
        "a dry run writes nothing"
    );
    let real = d.rewarm(&["leads", "import", more]);
    let (out, err) = text(&real);
    assert!(real.status.success(), "{out}\n{err}");
    assert!(out.contains("inserted 2, updated 1, unchanged 1"), "{out}");
    let zed = d.lead("zed@blocked.example").expect("imported");
    assert_eq!(zed["lead"]["state"], "suppressed");
    let ann = d.lead("ann@initech.example").expect("kept");
    assert_eq!(ann["lead"]["company"], "Initech Labs");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crm_csv_is_mapped_judged_and_previewed_without_writing_on_sqlite() {
    let db = TestDatabase::sqlite();
    csv_import_is_judged_and_dry_run_writes_nothing(db.url().to_string()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crm_csv_is_mapped_judged_and_previewed_without_writing_on_postgres() {
    with_postgres(
        "a_crm_csv_is_mapped_judged_and_previewed_without_writing_on_postgres",
        csv_import_is_judged_and_dry_run_writes_nothing,
    )
    .await;
}

#[test]
fn json_lines_keys_are_mapped_and_judged_like_csv_headers() {
    let db = TestDatabase::sqlite();
    let d = Deploy::new(db.url());
    let out = d.rewarm(&["leads", "import", &fixture("crm.jsonl")]);
    let (stdout, err) = text(&out);
    assert!(out.status.success(), "{stdout}\n{err}");
    assert!(
        stdout.contains("inserted 2, updated 0, unchanged 0, merged 0 duplicate row(s), rejected 0, skipped 1 by policy"),
        "{stdout}"
    );
    assert!(
        err.contains("key `Frist Name` is not a lead field") && err.contains("`first_name`"),
        "{err}"
    );
    assert!(
        err.contains("crm.jsonl:2: noreply@initech.example: a role address"),
        "{err}"
    );
    let fay = d.lead("fay@initech.example").expect("imported");
    assert_eq!(fay["lead"]["lost_at"], "2026-01-10T00:00:00Z");
}

#[test]
fn a_bad_import_setting_is_a_config_error_naming_its_key() {
    let db = TestDatabase::sqlite();
    let dir = bin::dir_with_templates();
    let config = TestConfig::new(db.url())
        .templates_dir(&dir.path().join("templates"))
        .set("import", "role_addresses", "\"drop\"")
        .set("import", "owner_conflict", "\"newest\"")
        .set("import.columns", "\"E-mail\"", "\"email\"")
        .write(&dir.path().join("rewarm.toml"));
    let out = bin::command()
        .arg("--config")
        .arg(&config)
        .args(["check", "--offline"])
        .env_remove("REWARM_CONFIG")
        .output()
        .expect("run");
    assert!(!out.status.success());
    let err = bin::stderr_of(&out);
    for key in [
        "import.role_addresses",
        "import.owner_conflict",
        "import.columns",
    ] {
        assert!(err.contains(key), "{key} in {err}");
    }
}
