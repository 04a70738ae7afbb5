//! Campaign edits through the real binary (`rewarm run --once --now T`, a capturing SMTP
//! server): a lead is mid-way through a campaign, the config is edited, `plan` says what the
//! edit will do, then the next run applies it by rule — a lowered `max_touches` cancels the
//! steps past it, a removed template gives way to the one the config now names, a changed
//! `every` moves the step already scheduled, a removed campaign moves its leads to the
//! campaign their segment names (or parks them `paused`). And the lateness policies.

use crate::support;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use support::bin::{self, repo};
use support::config::TestConfig;
use support::daemon::Daemon;
use support::db::TestDatabase;
use support::smtp_server::TestSmtpServer;

const ANA: &str = "ana@nubes.example";
const BEN: &str = "ben@quiet.example";
const T0: &str = "2026-03-02T10:00:00Z";

/// Two segments by loss reason (`no_budget` → `sa`, `went_quiet` → `sq`), both on campaign
/// `a` unless changed; `a`: first email at once, then every 7 days, 3 touches, two templates.
fn base(db: &str, smtp_port: u16) -> TestConfig {
    TestConfig::bare(db)
        .timezone("UTC")
        .templates_dir(&repo().join("tests/fixtures/pipeline/templates"))
        .smtp(smtp_port, 1)
        .set_str("transport.smtp", "timeout", "5s")
        .segment("sa", "a")
        .set("segments", "lost_reason", r#"["no_budget"]"#)
        .segment("sq", "a")
        .set("segments", "lost_reason", r#"["went_quiet"]"#)
        .campaign("a", "0d", "7d")
        .campaign_key("a", "max_touches", "3")
        .campaign_key("a", "templates", r#"["recycle_first", "recycle_next"]"#)
        .any_time("a")
}

fn run(config: &Path, now: &str, args: &[&str]) -> String {
    let out = bin::command()
        .arg("--config")
        .arg(config)
        .args(["--now", now])
        .args(args)
        .env_remove("RUST_LOG")
        .output()
        .expect("run rewarm");
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    );
    assert!(out.status.success(), "rewarm {args:?}: {stdout}\n{stderr}");
    stdout
}

fn import(dir: &Path, config: &Path, rows: &[(&str, &str)]) {
    let csv = dir.join("leads.csv");
    let mut text = String::from("email,first_name,company,lost_reason,lost_at,industry\n");
    for (email, reason) in rows {
        text.push_str(&format!(
            "{email},Fay,Fine KG,{reason},2026-01-01,logistics\n"
        ));
    }
    std::fs::write(&csv, text).unwrap();
    run(config, T0, &["leads", "import", csv.to_str().unwrap()]);
}

fn show(config: &Path, now: &str, email: &str) -> (String, Vec<serde_json::Value>) {
    let shown: serde_json::Value =
        serde_json::from_str(&run(config, now, &["leads", "show", email, "--json"])).unwrap();
    let state = shown["lead"]["state"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    (
        state,
        shown["timeline"].as_array().cloned().unwrap_or_default(),
    )
}

fn events<'a>(timeline: &'a [serde_json::Value], kind: &str) -> Vec<&'a serde_json::Value> {
    timeline.iter().filter(|e| e["kind"] == kind).collect()
}

fn subject(message: &support::smtp_server::CapturedMessage) -> String {
    let data = String::from_utf8_lossy(&message.data);
    data.lines()
        .find_map(|l| l.strip_prefix("Subject: "))
        .unwrap_or_default()
        .to_string()
}

struct Setup {
    dir: tempfile::TempDir,
    db: TestDatabase,
    smtp: TestSmtpServer,
    before: PathBuf,
}

/// `base` written as the config, the leads imported, the first pass at T0 (step 1 out).
async fn started(db: TestDatabase, leads: &[(&str, &str)]) -> Setup {
    let dir = tempfile::tempdir().unwrap();
    let smtp = TestSmtpServer::start().await;
    let before = base(db.url(), smtp.port()).write(&dir.path().join("before.toml"));
    import(dir.path(), &before, leads);
    run(&before, T0, &["run", "--once"]);
    assert_eq!(smtp.count(), leads.len(), "step 1 for every lead");
    Setup {
        dir,
        db,
        smtp,
        before,
    }
}

async fn lowering_max_touches_cancels_the_steps_past_it(db: TestDatabase) {
    let s = started(db, &[(ANA, "no_budget")]).await;
    let after = base(s.db.url(), s.smtp.port())
        .campaign_key("a", "max_touches", "1")
        .write(&s.dir.path().join("after.toml"));
    let plan = run(&after, "2026-03-02T11:00:00Z", &["plan"]);
    assert!(plan.contains("campaign a: changed ("), "{plan}");
    assert!(plan.contains("  max_touches 3 → 1\n"), "{plan}");
    assert!(
        plan.contains("  cancelled: 1 waiting step(s) (step 2: 1)\n"),
        "{plan}"
    );
    assert!(
        plan.ends_with(
            "summary: 1 cancelled, 0 re-templated, 0 rescheduled, 0 moved, 0 parked, 0 enrolling\n"
        ),
        "{plan}"
    );
    let json: serde_json::Value =
        serde_json::from_str(&run(&after, "2026-03-02T11:00:00Z", &["plan", "--json"])).unwrap();
    assert_eq!(json["summary"]["cancelled"], 1);
    // `check` warns before anything is applied.
    let out = bin::command()
        .arg("--config")
        .arg(&after)
        .args(["--now", "2026-03-02T11:00:00Z", "check", "--offline"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(
            "warning: plan: campaign `a`: 1 waiting step(s) will be cancelled (max_touches 3 → 1)"
        ),
        "{stderr}"
    );
    // Applied at start-up: nothing more is sent, ever.
    for now in [
        "2026-03-02T11:00:00Z",
        "2026-03-09T10:01:00Z",
        "2026-04-30T10:00:00Z",
    ] {
        run(&after, now, &["run", "--once"]);
    }
    assert_eq!(s.smtp.count(), 1);
    let (state, timeline) = show(&after, "2026-04-30T10:00:00Z", ANA);
    assert_eq!(state, "completed");
    let cancelled = events(&timeline, "cancelled");
    assert_eq!(cancelled.len(), 1, "{timeline:?}");
    assert_eq!(cancelled[0]["detail"]["reason"], "config change");
    assert_eq!(cancelled[0]["detail"]["step"], 2);
    // Applied: the plan has nothing left to do.
    let plan = run(&after, "2026-04-30T10:00:00Z", &["plan"]);
    assert!(plan.starts_with("campaign a: unchanged ("), "{plan}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lowered_max_touches_sends_no_step_past_it_and_plan_said_so() {
    lowering_max_touches_cancels_the_steps_past_it(TestDatabase::sqlite()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lowered_max_touches_sends_no_step_past_it_on_postgres() {
    if let Some(db) = TestDatabase::postgres("a_lowered_max_touches_on_postgres").await {
        lowering_max_touches_cancels_the_steps_past_it(db).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_removed_template_gives_way_to_the_one_the_config_now_names() {
    removing_a_template(TestDatabase::sqlite()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_removed_template_gives_way_on_postgres() {
    if let Some(db) = TestDatabase::postgres("a_removed_template_gives_way").await {
        removing_a_template(db).await;
    }
}

async fn removing_a_template(db: TestDatabase) {
    let s = started(db, &[(ANA, "no_budget")]).await;
    let after = base(s.db.url(), s.smtp.port())
        .campaign_key("a", "templates", r#"["recycle_first"]"#)
        .write(&s.dir.path().join("after.toml"));
    let plan = run(&after, "2026-03-02T11:00:00Z", &["plan"]);
    assert!(
        plan.contains("  templates [recycle_first, recycle_next] → [recycle_first]\n"),
        "{plan}"
    );
    assert!(
        plan.contains("  re-templated: step 2: recycle_next → recycle_first: 1\n"),
        "{plan}"
    );
    run(&after, "2026-03-09T10:01:00Z", &["run", "--once"]);
    let messages = s.smtp.messages();
    assert_eq!(messages.len(), 2);
    assert_eq!(
        subject(&messages[1]),
        subject(&messages[0]),
        "recycle_first again"
    );
    let (_, timeline) = show(&after, "2026-03-09T10:01:00Z", ANA);
    let sent = events(&timeline, "sent");
    assert_eq!(sent[1]["detail"]["template"], "recycle_first");
    assert_eq!(sent[1]["detail"]["step"], 2);
    let _ = &s.before;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_shorter_every_moves_the_step_already_scheduled() {
    changing_every(TestDatabase::sqlite()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_shorter_every_moves_the_step_already_scheduled_on_postgres() {
    if let Some(db) = TestDatabase::postgres("a_shorter_every_moves_the_step").await {
        changing_every(db).await;
    }
}

async fn changing_every(db: TestDatabase) {
    let s = started(db, &[(ANA, "no_budget")]).await;
    let slow = base(s.db.url(), s.smtp.port())
        .campaign("a", "0d", "30d")
        .write(&s.dir.path().join("slow.toml"));
    // Applied first: step 2 is due 30 days after step 1.
    run(&slow, "2026-03-02T10:30:00Z", &["run", "--once"]);
    let fast = base(s.db.url(), s.smtp.port()).write(&s.dir.path().join("fast.toml"));
    let plan = run(&fast, "2026-03-02T11:00:00Z", &["plan"]);
    assert!(plan.contains("  every 30d → 7d\n"), "{plan}");
    assert!(
        plan.contains("  rescheduled: 1 scheduled step(s) re-timed from the new cadence\n    ana@nubes.example step 2: 2026-04-01 10:00 UTC → 2026-03-09 10:00 UTC\n"),
        "{plan}"
    );
    run(&fast, "2026-03-09T09:59:00Z", &["run", "--once"]);
    assert_eq!(s.smtp.count(), 1, "not before its new time");
    run(&fast, "2026-03-09T10:01:00Z", &["run", "--once"]);
    assert_eq!(s.smtp.count(), 2, "step 2 a week after step 1");
    let (_, timeline) = show(&fast, "2026-03-09T10:01:00Z", ANA);
    // Twice re-timed: 7d → 30d (the slow config), then 30d → 7d.
    let moved = events(&timeline, "rescheduled");
    assert_eq!(moved.len(), 2, "{timeline:?}");
    assert_eq!(moved[1]["detail"]["from"], "2026-04-01T10:00:00+00:00");
    assert_eq!(moved[1]["detail"]["to"], "2026-03-09T10:00:00+00:00");
    assert_eq!(moved[1]["detail"]["reason"], "config change");
}

async fn removing_a_campaign_moves_its_leads(db: TestDatabase) {
    let s = started(db, &[(ANA, "no_budget"), (BEN, "went_quiet")]).await;
    // `a` is gone: segment `sa` now names `b`; no segment takes `went_quiet` any more.
    let dir = s.dir.path();
    let after = TestConfig::bare(s.db.url())
        .timezone("UTC")
        .templates_dir(&repo().join("tests/fixtures/pipeline/templates"))
        .smtp(s.smtp.port(), 1)
        .segment("sa", "b")
        .set("segments", "lost_reason", r#"["no_budget"]"#)
        .campaign("b", "0d", "14d")
        .campaign_key("b", "max_touches", "4")
        .campaign_key(
            "b",
            "templates",
            r#"["competitor_checkin", "recycle_first", "recycle_next"]"#,
        )
        .any_time("b")
        .write(&dir.join("after.toml"));
    let plan = run(&after, "2026-03-02T11:00:00Z", &["plan"]);
    assert!(
        plan.contains("campaign a: removed, 2 lead(s) in it\n"),
        "{plan}"
    );
    assert!(
        plan.contains("  moved: 1 lead(s) of segment sa → campaign b (segment sa)\n"),
        "{plan}"
    );
    assert!(plan.contains("  parked (paused): 1 lead(s)\n"), "{plan}");
    assert!(plan.contains("campaign b: new ("), "{plan}");
    run(&after, "2026-03-02T11:00:00Z", &["run", "--once"]);
    // Ana continues in `b` at step 2 (her history: one email), due 14 days after step 1.
    let (state, timeline) = show(&after, "2026-03-02T11:00:00Z", ANA);
    assert_eq!(state, "nurturing");
    let enrolled = events(&timeline, "enrolled");
    assert_eq!(enrolled.len(), 2, "{timeline:?}");
    let moved = &enrolled[1]["detail"];
    assert_eq!(moved["campaign"], "b");
    assert_eq!(moved["from_campaign"], "a");
    assert_eq!(moved["via"], "config change");
    assert_eq!(moved["step"], 2);
    assert_eq!(moved["first_due"], "2026-03-16T10:00:00+00:00");
    assert_eq!(events(&timeline, "sent").len(), 1, "her history stays");
    assert_eq!(
        events(&timeline, "cancelled")[0]["detail"]["reason"],
        "config change"
    );
    // Ben is parked, with the reason; never completed, never failed.
    let (state, timeline) = show(&after, "2026-03-02T11:00:00Z", BEN);
    assert_eq!(state, "paused");
    let paused = events(&timeline, "paused");
    assert_eq!(paused[0]["detail"]["by"], "config");
    assert!(
        paused[0]["detail"]["reason"]
            .as_str()
            .unwrap()
            .contains("campaign `a` was removed"),
        "{paused:?}"
    );
    assert!(events(&timeline, "failed").is_empty());
    // Two weeks on, Ana gets `b`'s second template.
    run(&after, "2026-03-16T10:01:00Z", &["run", "--once"]);
    let messages = s.smtp.messages();
    assert_eq!(messages.len(), 3);
    assert_eq!(messages[2].rcpt_to, [ANA]);
    assert_eq!(
        subject(&messages[2]),
        subject(&messages[0]),
        "`b`'s step 2: recycle_first"
    );
    let _ = &s.before;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_removed_campaign_moves_its_leads_to_their_segments_campaign_keeping_history() {
    removing_a_campaign_moves_its_leads(TestDatabase::sqlite()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_removed_campaign_moves_its_leads_on_postgres() {
    if let Some(db) = TestDatabase::postgres("a_removed_campaign_moves_its_leads").await {
        removing_a_campaign_moves_its_leads(db).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn late_steps_are_sent_skipped_or_shift_the_cadence_per_campaign() {
    lateness(TestDatabase::sqlite()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn late_steps_follow_their_campaigns_policy_on_postgres() {
    if let Some(db) = TestDatabase::postgres("late_steps_follow_their_policy").await {
        lateness(db).await;
    }
}

async fn lateness(db: TestDatabase) {
    let dir = tempfile::tempdir().unwrap();
    let smtp = TestSmtpServer::start().await;
    let mut config = TestConfig::bare(db.url())
        .timezone("UTC")
        .templates_dir(&repo().join("tests/fixtures/pipeline/templates"))
        .smtp(smtp.port(), 1)
        .set_str("transport.smtp", "timeout", "5s");
    let leads = [
        ("send@late.example", "send"),
        ("skip@late.example", "skip"),
        ("shift@late.example", "shift"),
    ];
    for (_, policy) in leads {
        config = config
            .segment(policy, policy)
            .set("segments", "lost_reason", format!("[\"{policy}\"]"))
            .campaign(policy, "0d", "7d")
            .campaign_key(policy, "max_touches", "3")
            .campaign_key(policy, "templates", r#"["recycle_first", "recycle_next"]"#)
            .campaign_key(policy, "late_after", "\"2d\"")
            .campaign_key(policy, "late", format!("\"{policy}\""))
            .any_time(policy);
    }
    let config = config.write(&dir.path().join("rewarm.toml"));
    import(dir.path(), &config, &leads);
    run(&config, T0, &["run", "--once"]);
    assert_eq!(smtp.count(), 3);
    // The daemon was down: step 2 (due 03-09) is reached four days late.
    run(&config, "2026-03-13T10:00:00Z", &["run", "--once"]);
    let to = |n: usize| {
        smtp.messages()[n..]
            .iter()
            .map(|m| m.rcpt_to[0].clone())
            .collect::<Vec<_>>()
    };
    let mut late = to(3);
    late.sort();
    assert_eq!(late, ["send@late.example", "shift@late.example"]);
    let (_, timeline) = show(&config, "2026-03-13T10:00:00Z", "skip@late.example");
    let skipped = events(&timeline, "skipped");
    assert_eq!(skipped.len(), 1, "{timeline:?}");
    assert_eq!(skipped[0]["detail"]["step"], 2);
    assert_eq!(skipped[0]["detail"]["reason"], "late");
    assert_eq!(skipped[0]["detail"]["late_by_seconds"], 4 * 86_400);
    // `send` and `skip` keep the calendar (step 3 on 03-16); `shift` moved it (03-20).
    run(&config, "2026-03-16T10:01:00Z", &["run", "--once"]);
    let mut on_plan = to(5);
    on_plan.sort();
    assert_eq!(on_plan, ["send@late.example", "skip@late.example"]);
    run(&config, "2026-03-20T09:59:00Z", &["run", "--once"]);
    assert_eq!(smtp.count(), 7);
    run(&config, "2026-03-20T10:01:00Z", &["run", "--once"]);
    assert_eq!(to(7), ["shift@late.example"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_applies_an_edit_and_logs_what_plan_foresaw() {
    let s = started(TestDatabase::sqlite(), &[(ANA, "no_budget")]).await;
    let daemon_config = |max: &str| {
        base(s.db.url(), s.smtp.port())
            .campaign_key("a", "max_touches", max)
            .set_str("scheduler", "tick", "1s")
            .set_str("http", "listen", "127.0.0.1:0")
    };
    let config = daemon_config("3").write(&s.dir.path().join("daemon.toml"));
    let mut cmd = bin::command();
    cmd.args([
        "--config",
        config.to_str().unwrap(),
        "--now",
        "2026-03-02T11:00:00Z",
        "run",
    ])
    .env_remove("RUST_LOG");
    let mut daemon = Daemon::spawn(cmd, s.dir.path().join("daemon.log"));
    wait_for(&mut daemon, "rewarm is running").await;
    daemon_config("1").write(&config);
    let status = std::process::Command::new("kill")
        .args(["-HUP", &daemon.pid().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    wait_for(&mut daemon, "Configuration reloaded").await;
    let log = daemon.log();
    let applied = log
        .lines()
        .find(|l| l.contains("Campaign edits applied"))
        .unwrap_or_else(|| panic!("no summary:\n{log}"));
    assert!(
        applied.contains(
            "plan=1 cancelled, 0 re-templated, 0 rescheduled, 0 moved, 0 parked, 0 enrolling"
        ),
        "{applied}"
    );
    assert!(applied.contains("cancelled=1"), "{applied}");
    daemon.terminate(Duration::from_secs(20)).await;
    let (state, timeline) = show(&config, "2026-03-02T11:00:00Z", ANA);
    assert_eq!(state, "completed");
    assert_eq!(events(&timeline, "cancelled").len(), 1);
    assert_eq!(s.smtp.count(), 1);
}

async fn wait_for(daemon: &mut Daemon, needle: &str) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !daemon.log().contains(needle) {
        daemon.assert_alive();
        assert!(
            Instant::now() < deadline,
            "no `{needle}`:\n{}",
            daemon.log()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lead_whose_data_changed_moves_if_not_emailed_or_if_its_segment_says_move() {
    let dir = tempfile::tempdir().unwrap();
    let db = TestDatabase::sqlite();
    let smtp = TestSmtpServer::start().await;
    let config = TestConfig::bare(db.url())
        .timezone("UTC")
        .templates_dir(&repo().join("tests/fixtures/pipeline/templates"))
        .smtp(smtp.port(), 1)
        .segment("sa", "a")
        .set("segments", "lost_reason", r#"["no_budget"]"#)
        .segment("sm", "a")
        .set("segments", "lost_reason", r#"["moving"]"#)
        .set("segments", "on_change", r#""move""#)
        .segment("sq", "b")
        .set("segments", "lost_reason", r#"["went_quiet"]"#)
        .campaign("a", "30d", "7d")
        .campaign_key("a", "templates", r#"["recycle_first", "recycle_next"]"#)
        .any_time("a")
        .campaign("b", "0d", "7d")
        .campaign_key(
            "b",
            "templates",
            r#"["competitor_checkin", "recycle_first"]"#,
        )
        .any_time("b")
        .write(&dir.path().join("rewarm.toml"));
    let csv = dir.path().join("leads.csv");
    let header = "email,first_name,company,lost_reason,lost_at,industry\n";
    std::fs::write(
        &csv,
        format!("{header}ana@x.example,Ana,X,no_budget,2026-01-01,saas\ncarl@x.example,Carl,X,no_budget,2026-02-20,saas\ndan@x.example,Dan,X,moving,2026-01-01,saas\n"),
    )
    .unwrap();
    run(&config, T0, &["leads", "import", csv.to_str().unwrap()]);
    run(&config, T0, &["run", "--once"]);
    assert_eq!(
        smtp.count(),
        2,
        "Ana and Dan; Carl's first email is due on 03-22"
    );
    // The CRM says all three went quiet now.
    std::fs::write(
        &csv,
        format!("{header}ana@x.example,Ana,X,went_quiet,2026-01-01,saas\ncarl@x.example,Carl,X,went_quiet,2026-02-20,saas\ndan@x.example,Dan,X,went_quiet,2026-01-01,saas\n"),
    )
    .unwrap();
    run(
        &config,
        "2026-03-02T11:00:00Z",
        &["leads", "import", csv.to_str().unwrap()],
    );
    run(&config, "2026-03-02T11:00:00Z", &["run", "--once"]);
    // Carl (never emailed) moved and got `b`'s first email at once.
    let messages = smtp.messages();
    assert_eq!(messages.len(), 3);
    assert_eq!(messages[2].rcpt_to, ["carl@x.example"]);
    let moved = |email: &str| {
        let (_, timeline) = show(&config, "2026-03-02T11:00:00Z", email);
        events(&timeline, "enrolled")
            .iter()
            .filter(|e| e["detail"]["via"] == "lead data changed")
            .map(|e| (e["detail"]["campaign"].clone(), e["detail"]["step"].clone()))
            .collect::<Vec<_>>()
    };
    assert_eq!(
        moved("carl@x.example"),
        [(serde_json::json!("b"), serde_json::json!(1))]
    );
    // Dan (emailed, segment `sm` says move) continues in `b` at step 2; Ana (emailed,
    // default `stay`) stays in `a`.
    assert_eq!(
        moved("dan@x.example"),
        [(serde_json::json!("b"), serde_json::json!(2))]
    );
    assert!(moved("ana@x.example").is_empty());
    // Looked at once: another pass moves nobody again.
    run(&config, "2026-03-02T11:05:00Z", &["run", "--once"]);
    assert_eq!(moved("dan@x.example").len(), 1);
    run(&config, "2026-03-09T10:01:00Z", &["run", "--once"]);
    let late: Vec<_> = smtp.messages()[3..]
        .iter()
        .map(|m| m.rcpt_to[0].clone())
        .collect();
    assert!(late.contains(&"dan@x.example".to_string()), "{late:?}");
    assert!(late.contains(&"ana@x.example".to_string()), "{late:?}");
}

/// `plan` counts the `new` leads a segment would take as the next pass enrols them: a loss
/// reason no segment lists is not counted (nor read), a suppressed address is not counted.
async fn plan_counts_the_new_leads_the_next_pass_enrols(db: TestDatabase) {
    let dir = tempfile::tempdir().unwrap();
    let smtp = TestSmtpServer::start().await;
    let config = base(db.url(), smtp.port()).write(&dir.path().join("config.toml"));
    let (cy, dee) = ("cy@rival.example", "dee@gone.example");
    import(
        dir.path(),
        &config,
        &[
            (ANA, "no_budget"),
            (BEN, "went_quiet"),
            (cy, "chose_competitor"),
            (dee, "no_budget"),
        ],
    );
    run(&config, T0, &["suppress", "add", "@gone.example"]);
    let plan = run(&config, T0, &["plan"]);
    assert!(
        plan.contains("enrol: 1 new lead(s) → segment sa (campaign a)\n"),
        "{plan}"
    );
    assert!(
        plan.contains("enrol: 1 new lead(s) → segment sq (campaign a)\n"),
        "{plan}"
    );
    assert!(plan.ends_with(", 2 enrolling\n"), "{plan}");
    run(&config, T0, &["run", "--once"]);
    assert_eq!(
        smtp.count(),
        2,
        "the pass enrols (and emails) what plan counted"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plan_counts_the_new_leads_the_next_pass_enrols_on_sqlite() {
    plan_counts_the_new_leads_the_next_pass_enrols(TestDatabase::sqlite()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plan_counts_the_new_leads_the_next_pass_enrols_on_postgres() {
    if let Some(db) = TestDatabase::postgres("plan_counts_new_leads_on_postgres").await {
        plan_counts_the_new_leads_the_next_pass_enrols(db).await;
    }
}
