//! The README cannot drift from the binary: its five-minute walkthrough is run here, command by
//! command, and what each command prints must be what the README shows.
//!
//! The walkthrough is the section `## A five-minute walkthrough` of README.md. In it, every
//! ```` ```console ```` block is a shell session: a line starting with `$ ` is a command (a line
//! ending in `\` continues it, and a here-document `<<EOF` takes the lines up to its `EOF`), and
//! the lines after it, up to the next command, are what it prints on stdout. Logs and the counts
//! that `list` commands add go to stderr and are not compared.
//!
//! The commands run as one bash script (so shell variables and files carry over from one command
//! to the next, as in a reader's terminal) in a temporary copy of `config/`, `templates/`,
//! `examples/` and `tests/fixtures/inbound/`, so nothing in the repository changes; `rewarm` is
//! the binary cargo built for this test. The README fixes the clock of every command with
//! `--now`, so this test never reads the wall clock and passes at any hour.
//!
//! Normalised before comparing, because they must vary and nothing else does:
//! - the temporary folder's path (becomes `.`);
//! - signed tokens (`KEYID.SEALED.TAG`, in Message-IDs, Reply-To addresses and links): each run
//!   starts a new database, which generates a new signing key, so the same token never comes
//!   out twice;
//! - trailing spaces at the ends of lines and blank lines at the end of an output.
//!
//! Standalone on purpose: its helpers are its own, small, and about the README only.

use std::fmt::Write as _;
use std::path::Path;
use std::process::Command;

const WALKTHROUGH: &str = "## A five-minute walkthrough";

use crate::support::bin::repo;

fn readme() -> String {
    std::fs::read_to_string(repo().join("README.md")).expect("README.md is readable")
}

/// The text of the README section that starts with `heading`, up to the next `## ` heading.
fn section<'a>(readme: &'a str, heading: &str) -> &'a str {
    let start = readme
        .find(&format!("\n{heading}\n"))
        .unwrap_or_else(|| panic!("README.md has no section `{heading}`"));
    let body = &readme[start + 1..];
    let end = body[heading.len()..]
        .find("\n## ")
        .map_or(body.len(), |i| i + heading.len() + 1);
    &body[..end]
}

/// The fenced blocks of `text` whose info string is `lang`, each as its lines.
fn fenced_blocks<'a>(text: &'a str, lang: &str) -> Vec<Vec<&'a str>> {
    let mut blocks = Vec::new();
    let mut current: Option<Vec<&str>> = None;
    for line in text.lines() {
        match current.as_mut() {
            None if line.trim_end() == format!("```{lang}") => current = Some(Vec::new()),
            None => {}
            Some(_) if line.trim_end() == "```" => blocks.extend(current.take()),
            Some(block) => block.push(line),
        }
    }
    assert!(current.is_none(), "a ```{lang} block is not closed");
    blocks
}

/// One command of the walkthrough and what the README says it prints.
#[derive(Debug)]
struct Step {
    command: String,
    expected: Vec<String>,
}

/// The here-document terminator a command line opens (`<<EOF`, `<<'EOF'`), if any.
fn heredoc_end(line: &str) -> Option<String> {
    let rest = &line[line.find("<<")? + 2..];
    let rest = rest.trim_start_matches('-').trim_start();
    let word: String = rest
        .trim_start_matches(['\'', '"'])
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
        .collect();
    (!word.is_empty()).then_some(word)
}

fn parse_session(block: &[&str]) -> Vec<Step> {
    let mut steps: Vec<Step> = Vec::new();
    let mut lines = block.iter();
    while let Some(line) = lines.next() {
        let Some(first) = line.strip_prefix("$ ") else {
            let step = steps
                .last_mut()
                .unwrap_or_else(|| panic!("output before any command in a console block: {line}"));
            step.expected.push((*line).to_string());
            continue;
        };
        let mut command = first.to_string();
        let mut last = first;
        while last.ends_with('\\') {
            last = lines.next().expect("a continued command goes on");
            command.push('\n');
            command.push_str(last);
        }
        if let Some(end) = heredoc_end(&command) {
            for body in lines.by_ref() {
                command.push('\n');
                command.push_str(body);
                if body.trim_end() == end {
                    break;
                }
            }
        }
        steps.push(Step {
            command,
            expected: Vec::new(),
        });
    }
    steps
}

fn walkthrough_steps() -> Vec<Step> {
    let text = readme();
    fenced_blocks(section(&text, WALKTHROUGH), "console")
        .iter()
        .flat_map(|block| parse_session(block))
        .collect()
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("create a folder in the temporary copy");
    for entry in std::fs::read_dir(from).expect("read a folder of the repository") {
        let entry = entry.expect("a folder entry");
        let target = to.join(entry.file_name());
        if entry.file_type().expect("a file type").is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).expect("copy a file");
        }
    }
}

/// Replaces every signed token `KEYID.SEALED.TAG` (key id 1-16 letters or digits, then 18 and
/// 22 characters of URL-safe base64: see src/tokens.rs) with `KEYID.SEALED.TAG`.
fn normalise_tokens(text: &str) -> String {
    fn is_b64(c: char) -> bool {
        c.is_ascii_alphanumeric() || c == '_' || c == '-'
    }
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while !rest.is_empty() {
        let word_len = rest
            .find(|c: char| !(is_b64(c) || c == '.'))
            .unwrap_or(rest.len());
        if word_len == 0 {
            let c = rest.chars().next().expect("rest is not empty");
            out.push(c);
            rest = &rest[c.len_utf8()..];
            continue;
        }
        let parts: Vec<&str> = rest[..word_len].split('.').collect();
        for (i, part) in parts.iter().enumerate() {
            if i > 0 {
                out.push('.');
            }
            let is_token_at = |j: usize| {
                parts.get(j).is_some_and(|k| {
                    (1..=16).contains(&k.len()) && k.chars().all(|c| c.is_ascii_alphanumeric())
                }) && parts
                    .get(j + 1)
                    .is_some_and(|s| s.len() == 18 && s.chars().all(is_b64))
                    && parts
                        .get(j + 2)
                        .is_some_and(|t| t.len() == 22 && t.chars().all(is_b64))
            };
            if (i >= 1 && is_token_at(i - 1)) || (i >= 2 && is_token_at(i - 2)) {
                out.push_str(if i >= 1 && is_token_at(i - 1) {
                    "SEALED"
                } else {
                    "TAG"
                });
            } else {
                out.push_str(part);
            }
        }
        rest = &rest[word_len..];
    }
    out
}

fn normalise(text: &str, temp: &Path) -> Vec<String> {
    let text = text.replace(&format!("{}/", temp.display()), "");
    let text = text.replace(&temp.display().to_string(), ".");
    let mut lines: Vec<String> = normalise_tokens(&text)
        .lines()
        .map(|l| l.trim_end().to_string())
        .collect();
    while lines.last().is_some_and(|l| l.is_empty()) {
        lines.pop();
    }
    lines
}

/// Runs the steps as one bash script in `dir`; returns each step's stdout and exit status, and
/// the script's stderr.
fn run_session(dir: &Path, steps: &[Step]) -> (Vec<(String, i32)>, String) {
    let mut script = String::from("set -u\n");
    let binary = env!("CARGO_BIN_EXE_rewarm");
    writeln!(script, "rewarm() {{ '{binary}' \"$@\"; }}").expect("write to a String");
    for (i, step) in steps.iter().enumerate() {
        writeln!(
            script,
            "{}\n__rc=$?; printf '\\n@@readme-step %d %d@@\\n' {i} \"$__rc\"",
            step.command
        )
        .expect("write to a String");
    }
    let mut command = Command::new("bash");
    command
        .arg("-c")
        .arg(&script)
        .current_dir(dir)
        .env("LC_ALL", "C")
        .env_remove("REWARM_CONFIG")
        .env_remove("RUST_LOG");
    // A developer's own REWARM__… overrides must not change what the example prints.
    for (name, _) in std::env::vars_os() {
        if name.to_string_lossy().starts_with("REWARM__") {
            command.env_remove(name);
        }
    }
    let output = command.output().expect("bash runs");
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let mut results = Vec::new();
    let mut rest = stdout.as_str();
    while let Some(at) = rest.find("\n@@readme-step ") {
        let tail = &rest[at + "\n@@readme-step ".len()..];
        let close = tail.find("@@\n").expect("a step marker is closed");
        let mut fields = tail[..close].split(' ');
        let index: usize = fields
            .next()
            .and_then(|f| f.parse().ok())
            .expect("a step index");
        let status: i32 = fields
            .next()
            .and_then(|f| f.parse().ok())
            .expect("a step status");
        assert_eq!(index, results.len(), "steps print in order");
        results.push((rest[..at].to_string(), status));
        rest = &tail[close + "@@\n".len()..];
    }
    (
        results,
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[test]
fn the_five_minute_walkthrough_prints_what_the_readme_shows() {
    let steps = walkthrough_steps();
    assert!(
        steps.len() >= 10,
        "the walkthrough has {} commands; did its heading or its ```console blocks change?",
        steps.len()
    );
    let temp = tempfile::tempdir().expect("a temporary folder");
    let dir = temp.path();
    for folder in ["config", "templates", "examples", "tests/fixtures/inbound"] {
        copy_dir(&repo().join(folder), &dir.join(folder));
    }
    let (results, stderr) = run_session(dir, &steps);
    assert_eq!(
        results.len(),
        steps.len(),
        "the session stopped early; its stderr:\n{stderr}"
    );
    for (step, (stdout, status)) in steps.iter().zip(&results) {
        assert_eq!(
            *status, 0,
            "`{}` exited with {status}; the session's stderr:\n{stderr}",
            step.command
        );
        let shown = normalise(&step.expected.join("\n"), dir);
        let printed = normalise(stdout, dir);
        assert_eq!(
            printed, shown,
            "`{}` printed (left) something else than README.md shows (right)",
            step.command
        );
    }
}

#[test]
fn every_walkthrough_command_names_the_example_config_and_a_fixed_clock() {
    for step in walkthrough_steps() {
        for line in step.command.lines() {
            let Some(at) = line.find("rewarm ") else {
                continue;
            };
            let args = &line[at..];
            assert!(
                args.starts_with("rewarm --config config/example.toml --now "),
                "`{line}`: a walkthrough command names its config (else it reads the \
                 production config/rewarm.toml) and its clock (else its output depends on the hour)"
            );
        }
    }
}

#[test]
fn the_readme_starts_with_the_two_commands_and_its_test_command_is_the_one_ci_runs() {
    let text = readme();
    let first_heading = text.find("\n## ").expect("README.md has sections");
    assert!(
        text[first_heading..].starts_with("\n## The two commands\n"),
        "the first section of README.md is `## The two commands`"
    );
    let block = fenced_blocks(section(&text, "## The two commands"), "sh")
        .into_iter()
        .next()
        .expect("`The two commands` opens with a ```sh block");
    let commands: Vec<&str> = block
        .iter()
        .map(|l| l.trim())
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .collect();
    assert_eq!(
        commands,
        [
            "cargo run -- --config config/example.toml run --import examples/leads.csv",
            "cargo test --locked",
        ],
        "the two commands: the daemon on the bundled example, then the whole suite"
    );
    let ci = std::fs::read_to_string(repo().join(".ci/run")).expect(".ci/run is readable");
    assert!(
        ci.lines().any(|l| l.trim() == commands[1]),
        ".ci/run runs the README's test command `{}`",
        commands[1]
    );
}

#[test]
fn the_readme_stays_under_twelve_kilobytes() {
    let size = readme().len();
    assert!(
        size <= 12 * 1024,
        "README.md is {size} bytes; move detail to docs/ (issue 8: README under ~12 KB)"
    );
}

#[test]
fn every_relative_link_in_the_readme_and_docs_points_at_a_file_that_exists() {
    let mut pages = vec![repo().join("README.md")];
    for entry in std::fs::read_dir(repo().join("docs")).expect("docs/ exists") {
        let path = entry.expect("a docs/ entry").path();
        if path.extension().is_some_and(|e| e == "md") {
            pages.push(path);
        }
    }
    let mut broken = Vec::new();
    for page in &pages {
        let text = std::fs::read_to_string(page).expect("a page is readable");
        let mut rest = text.as_str();
        while let Some(at) = rest.find("](") {
            let tail = &rest[at + 2..];
            let end = tail.find(')').unwrap_or(tail.len());
            let target = &tail[..end];
            rest = &tail[end..];
            if target.contains("://") || target.starts_with('#') || target.starts_with("mailto:") {
                continue;
            }
            let file = target.split('#').next().unwrap_or(target);
            let base = page.parent().expect("a page has a folder");
            if !base.join(file).exists() {
                broken.push(format!("{}: {target}", page.display()));
            }
        }
    }
    assert!(
        broken.is_empty(),
        "links to missing files:\n{}",
        broken.join("\n")
    );
}

#[test]
fn tokens_are_normalised_and_nothing_else_is() {
    assert_eq!(
        normalise_tokens(
            "reply+db1.hwsTFpF4Yaq62Hkdcw.9D4FNOS4Yr5YzgsZtCpkuA@reply.acme.example \
             /u/k1.AQAAAAAAAAABAAAAAA.vTOeytN_QsytBxo6GSYJog sent 4"
        ),
        "reply+db1.SEALED.TAG@reply.acme.example /u/k1.SEALED.TAG sent 4"
    );
    assert_eq!(
        normalise_tokens("notify-1-1796126400@acme.example.eml 2026-12-01T12:00:00Z"),
        "notify-1-1796126400@acme.example.eml 2026-12-01T12:00:00Z"
    );
}
