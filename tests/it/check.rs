//! `rewarm check` on the bundled examples and on broken configs: every problem is named
//! with its file and key, and the exit code says whether anything is wrong.

use std::path::Path;
use std::process::Command;

use crate::support::bin::{dir_with_templates, repo, rewarm, stderr_of};
use crate::support::config::TestConfig;

/// A temp folder with the repo's templates and `config` written as `test.toml`.
fn with_config(config: &str) -> tempfile::TempDir {
    let dir = dir_with_templates();
    std::fs::write(dir.path().join("test.toml"), config).unwrap();
    dir
}

/// The smallest configuration check accepts; each test below breaks one thing in it.
fn good() -> String {
    TestConfig::new("sqlite://check.db").toml()
}

#[test]
fn the_bundled_example_config_and_templates_pass_check() {
    for config in ["config/example.toml", "config/rewarm.toml"] {
        let out = rewarm(&repo(), &["--config", config, "check", "--offline"]);
        assert!(out.status.success(), "{config}: {}", stderr_of(&out));
        assert!(String::from_utf8_lossy(&out.stdout).contains("ok"));
    }
}

/// The secrets `config/rewarm.toml` names: every `…_env = "NAME"` outside comments.
fn shipped_secrets() -> Vec<String> {
    let config = std::fs::read_to_string(repo().join("config/rewarm.toml")).unwrap();
    let mut names = Vec::new();
    for line in config.lines() {
        let code = line.split('#').next().unwrap_or("");
        for (i, _) in code.match_indices("_env = \"") {
            let rest = &code[i + "_env = \"".len()..];
            names.push(rest.split('"').next().unwrap().to_string());
        }
    }
    names
}

#[test]
fn check_reports_every_secret_the_config_names_and_nobody_set_and_passes_once_they_are() {
    let secrets = shipped_secrets();
    assert!(secrets.len() >= 9, "{secrets:?}");
    let mut command = crate::support::bin::command();
    command
        .current_dir(repo())
        .args(["--config", "config/rewarm.toml", "check"]);
    for name in &secrets {
        command.env_remove(name);
    }
    command.env_remove("CREDENTIALS_DIRECTORY");
    let out = command.output().unwrap();
    assert!(
        !out.status.success(),
        "check must fail with every secret missing"
    );
    let err = stderr_of(&out);
    for name in &secrets {
        assert!(
            err.contains(&format!("the secret `{name}` is not set")),
            "{name}:\n{err}"
        );
    }
    assert!(
        err.contains("`transport.smtp.password_env`"),
        "names the key: {err}"
    );
    assert!(err.contains("--offline"), "{err}");

    // As systemd credentials (a folder of files), every one set: ok.
    let credentials = tempfile::tempdir().unwrap();
    for name in &secrets {
        std::fs::write(
            credentials.path().join(name),
            "a-secret-of-at-least-32-bytes-0123456789",
        )
        .unwrap();
    }
    let mut command = crate::support::bin::command();
    command
        .current_dir(repo())
        .args(["--config", "config/rewarm.toml", "check"])
        .env("CREDENTIALS_DIRECTORY", credentials.path());
    for name in &secrets {
        command.env_remove(name);
    }
    let out = command.output().unwrap();
    assert!(out.status.success(), "{}", stderr_of(&out));
}

#[test]
fn the_systemd_unit_loads_every_secret_the_shipped_config_names() {
    let unit = std::fs::read_to_string(repo().join("systemd/rewarm.service")).unwrap();
    let operations = std::fs::read_to_string(repo().join("docs/operations.md")).unwrap();
    for name in shipped_secrets() {
        assert!(
            unit.lines()
                .any(|l| l.starts_with(&format!("LoadCredential={name}:"))),
            "systemd/rewarm.service has no LoadCredential={name}:…"
        );
        assert!(
            operations.contains(&name),
            "docs/operations.md does not create {name}"
        );
    }
}

#[test]
fn the_bundled_example_loads_with_its_templates() {
    std::env::set_current_dir(repo()).unwrap();
    let loaded = rewarm::app::Loaded::load(Path::new("config/example.toml")).unwrap();
    assert_eq!(loaded.settings.campaigns.len(), 4);
    // No dead end: every campaign goes on to the evergreen long-tail, which loops.
    for campaign in loaded.settings.campaigns.values() {
        assert_eq!(
            campaign.then.as_deref(),
            Some("evergreen"),
            "{}",
            campaign.name
        );
    }
    for campaign in loaded.settings.campaigns.values() {
        for t in &campaign.templates {
            assert!(loaded.templates.has(t), "template {t} of {}", campaign.name);
        }
    }
}

#[test]
fn the_default_campaign_is_three_lines() {
    let dir = with_config(&good());
    let out = rewarm(dir.path(), &["--config", "test.toml", "check"]);
    assert!(out.status.success(), "{}", stderr_of(&out));
}

fn assert_check_fails(config: &str, expected: &[&str]) {
    let dir = with_config(config);
    let out = rewarm(dir.path(), &["--config", "test.toml", "check"]);
    assert!(!out.status.success(), "check should fail for:\n{config}");
    let err = stderr_of(&out);
    assert!(err.contains("test.toml"), "names the file: {err}");
    for e in expected {
        assert!(err.contains(e), "expected `{e}` in:\n{err}");
    }
}

#[test]
fn an_unknown_template_is_named_with_its_campaign_key() {
    assert_check_fails(
        &good().replace(
            "every = \"30d\"",
            "every = \"30d\"\ntemplates = [\"checkin\", \"no_such_template\"]",
        ),
        &["campaigns.checkin.templates", "no_such_template"],
    );
}

#[test]
fn a_bad_cron_expression_is_named_with_its_key() {
    assert_check_fails(
        &good().replace("every = \"30d\"", "cron = \"0 25 * * *\""),
        &["campaigns.checkin.cron", "0 25 * * *"],
    );
}

#[test]
fn a_bad_duration_is_named_with_its_key() {
    assert_check_fails(
        &good().replace("first_after = \"90d\"", "first_after = \"ninety days\""),
        &["campaigns.checkin.first_after", "ninety days"],
    );
}

#[test]
fn an_unknown_time_zone_is_named() {
    assert_check_fails(
        &format!("default_timezone = \"Europe/Atlantis\"\n{}", good()),
        &["default_timezone", "Europe/Atlantis"],
    );
}

#[test]
fn a_segment_pointing_at_a_missing_campaign_is_named() {
    assert_check_fails(
        &good().replace("campaign = \"checkin\"", "campaign = \"recycle\""),
        &["segments[0].campaign", "recycle"],
    );
}

#[test]
fn a_bad_send_window_is_named() {
    assert_check_fails(
        &good().replace(
            "every = \"30d\"",
            "every = \"30d\"\nsend_window = { days = \"Mon-Funday\", hours = \"09:00-17:00\" }",
        ),
        &["campaigns.checkin.send_window", "Mon-Funday"],
    );
}

#[test]
fn an_unknown_key_is_refused_rather_than_ignored() {
    assert_check_fails(
        &good().replace("every = \"30d\"", "every = \"30d\"\nmax_touch = 3"),
        &["max_touch"],
    );
}

#[test]
fn a_template_using_a_variable_leads_do_not_have_fails_check() {
    let dir = with_config(&good());
    std::fs::write(
        dir.path().join("templates/checkin/subject.txt"),
        "Hello {{ lead.nickname }}",
    )
    .unwrap();
    let out = rewarm(dir.path(), &["--config", "test.toml", "check"]);
    assert!(!out.status.success());
    let err = stderr_of(&out);
    assert!(
        err.contains("checkin/subject.txt") && err.contains("nickname"),
        "{err}"
    );
}

#[test]
fn a_template_using_a_custom_field_no_imported_lead_has_fails_check() {
    let dir = with_config(&good());
    std::fs::write(
        dir.path().join("templates/checkin/subject.txt"),
        "About {{ lead.fields.industry }}",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("leads.csv"),
        "email,first_name,region\nann@example.com,Ann,EMEA\n",
    )
    .unwrap();
    let import = rewarm(
        dir.path(),
        &["--config", "test.toml", "leads", "import", "leads.csv"],
    );
    assert!(import.status.success(), "{}", stderr_of(&import));
    let out = rewarm(dir.path(), &["--config", "test.toml", "check"]);
    assert!(!out.status.success());
    let err = stderr_of(&out);
    assert!(err.contains("industry"), "{err}");
}

#[test]
fn the_systemd_unit_passes_systemd_analyze_verify() {
    let Ok(probe) = Command::new("systemd-analyze").arg("--version").output() else {
        // CI's machines have systemd: a skip there would hide a broken unit.
        crate::support::skip("systemd-analyze is not installed");
        return;
    };
    assert!(probe.status.success());
    // verify insists that ExecStart's binary exists: point it at the one cargo just built.
    let unit = std::fs::read_to_string(repo().join("systemd/rewarm.service"))
        .unwrap()
        .replace("/usr/local/bin/rewarm", env!("CARGO_BIN_EXE_rewarm"));
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("rewarm.service");
    std::fs::write(&path, unit).unwrap();
    let out = Command::new("systemd-analyze")
        .arg("verify")
        .arg(&path)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr_of(&out));
    assert!(
        stderr_of(&out).trim().is_empty(),
        "warnings: {}",
        stderr_of(&out)
    );
}

#[test]
fn a_zero_rhythm_is_refused() {
    assert_check_fails(
        &good().replace("every = \"30d\"", "every = \"0d\""),
        &["campaigns.checkin.every", "longer than zero"],
    );
}

#[test]
fn a_template_without_the_unsubscribe_link_fails_check() {
    let dir = with_config(&good());
    std::fs::write(
        dir.path().join("templates/_footer.txt"),
        "--\n{{ postal_address }}\n",
    )
    .unwrap();
    let out = rewarm(dir.path(), &["--config", "test.toml", "check"]);
    assert!(!out.status.success());
    let err = stderr_of(&out);
    assert!(
        err.contains("campaigns.checkin.templates")
            && err.contains("checkin/text.txt")
            && err.contains("unsubscribe"),
        "{err}"
    );
}

#[test]
fn a_template_without_the_postal_address_fails_check() {
    let dir = with_config(&good());
    std::fs::write(
        dir.path().join("templates/_footer.html"),
        "<a href=\"{{ unsubscribe_url }}\">unsubscribe</a>",
    )
    .unwrap();
    let out = rewarm(dir.path(), &["--config", "test.toml", "check"]);
    assert!(!out.status.success());
    let err = stderr_of(&out);
    assert!(
        err.contains("checkin/html.html") && err.contains("postal address"),
        "{err}"
    );
}

#[test]
fn a_missing_postal_address_is_named() {
    assert_check_fails(
        &good().replace(
            "postal_address = \"Acme Inc., 1 Example Street, 75001 Paris, France\"",
            "",
        ),
        &["compliance.postal_address"],
    );
}

#[test]
fn an_unknown_engagement_kind_is_named() {
    assert_check_fails(
        &format!("{}\n[scoring.points]\nclik = 5\n", good()),
        &["scoring.points.clik", "unknown engagement kind", "click"],
    );
}

#[test]
fn a_wave_depth_out_of_range_is_named_with_its_key() {
    for depth in ["0", "65"] {
        let config = TestConfig::new("sqlite://check.db")
            .set("scheduler", "wave_depth", depth)
            .toml();
        assert_check_fails(&config, &["scheduler.wave_depth", "between 1 and 64"]);
    }
}
