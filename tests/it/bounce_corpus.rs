//! The bounce corpus (`tests/fixtures/bounces/`): bounce notices in the formats of many mail
//! systems — RFC 3464 reports, qmail, Yahoo, Exim, Postfix and Sendmail plain text, AOL,
//! Exchange legacy, localized Exchange and others, GroupWise, Lotus Notes, SMTP32, vendors'
//! daemons and "simple" plain-text notices — each with its expected class and failed
//! recipients in `expected.tsv`, run through the library's parse + classify. The table test
//! prints the share right per family, and requires 95 % right overall and no bounce read as a
//! person's reply.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use rewarm::inbound::classify::{Classification, classify};
use rewarm::inbound::parse::{ParsedInbound, Report, parse};

fn corpus_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/bounces")
}

/// One row of expected.tsv.
struct Expected {
    file: String,
    family: String,
    class: Classification,
    recipients: Vec<String>,
}

fn expected() -> Vec<Expected> {
    let tsv = std::fs::read_to_string(corpus_dir().join("expected.tsv")).expect("expected.tsv");
    tsv.lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
        .map(|line| {
            let f: Vec<&str> = line.split('\t').collect();
            assert_eq!(f.len(), 4, "expected.tsv line {line:?} needs 4 fields");
            let class = Classification::parse(f[2])
                .unwrap_or_else(|| panic!("{}: unknown classification {:?}", f[0], f[2]));
            assert!(
                matches!(
                    class,
                    Classification::HardBounce | Classification::SoftBounce
                ),
                "{}: the bounce corpus holds bounces only",
                f[0]
            );
            let mut recipients: Vec<String> = f[3].split(',').map(str::to_string).collect();
            recipients.sort();
            Expected {
                file: f[0].to_string(),
                family: f[1].to_string(),
                class,
                recipients,
            }
        })
        .collect()
}

fn parsed(file: &str) -> ParsedInbound {
    let path = corpus_dir().join(file);
    let raw = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    parse(&raw).unwrap_or_else(|e| panic!("{file}: {e}"))
}

/// The failed recipients a message's report names (those with a failure), else the returned
/// original's To — what matching looks the leads up by; sorted.
fn failed_recipients(p: &ParsedInbound) -> Vec<String> {
    let mut out = match &p.report {
        Some(Report::Delivery(recipients, original)) => {
            let named: Vec<String> = recipients
                .iter()
                .filter(|r| r.failure().is_some())
                .filter_map(|r| r.final_recipient.clone())
                .collect();
            if named.is_empty() {
                original.to.clone()
            } else {
                named
            }
        }
        _ => Vec::new(),
    };
    out.sort();
    out.dedup();
    out
}

#[test]
fn bounces_of_every_family_are_recognised_with_their_recipients() {
    let rows = expected();
    assert!(rows.len() >= 80, "the corpus has {} bounces", rows.len());
    // family → (right, total)
    let mut per_family: BTreeMap<&str, (usize, usize)> = BTreeMap::new();
    let mut wrong = Vec::new();
    let mut human = Vec::new();
    for row in &rows {
        let p = parsed(&row.file);
        let got = classify(&p);
        let recipients = failed_recipients(&p);
        let right = got == row.class && recipients == row.recipients;
        let entry = per_family.entry(row.family.as_str()).or_default();
        entry.1 += 1;
        if right {
            entry.0 += 1;
        } else {
            wrong.push(format!(
                "{}: expected {} {:?}, got {got} {recipients:?}",
                row.file, row.class, row.recipients
            ));
        }
        if got == Classification::HumanReply {
            human.push(row.file.clone());
        }
    }
    let right: usize = per_family.values().map(|(r, _)| r).sum();
    println!("bounce corpus: share right per family");
    for (family, (r, n)) in &per_family {
        println!(
            "  {family:<16} {r:>3}/{n:<3} {:>5.1} %",
            100.0 * *r as f64 / *n as f64
        );
    }
    let share = 100.0 * right as f64 / rows.len() as f64;
    println!(
        "  {:<16} {right:>3}/{:<3} {share:>5.1} %",
        "all",
        rows.len()
    );
    for w in &wrong {
        println!("  wrong: {w}");
    }
    assert!(human.is_empty(), "bounces read as human replies: {human:?}");
    assert!(
        share >= 95.0,
        "only {share:.1} % right:\n{}",
        wrong.join("\n")
    );
}

#[test]
fn every_bounce_file_is_listed_once_and_uses_crlf_line_ends() {
    let mut listed: Vec<String> = expected().into_iter().map(|e| e.file).collect();
    listed.sort();
    let before = listed.len();
    listed.dedup();
    assert_eq!(listed.len(), before, "a file is listed twice");
    let mut on_disk: Vec<String> = std::fs::read_dir(corpus_dir())
        .expect("the corpus folder")
        .map(|e| {
            e.expect("an entry")
                .file_name()
                .to_string_lossy()
                .into_owned()
        })
        .filter(|n| n.ends_with(".eml"))
        .collect();
    on_disk.sort();
    assert_eq!(listed, on_disk);
    for file in &on_disk {
        let raw = std::fs::read(corpus_dir().join(file)).expect("readable");
        let bare_lf = raw
            .windows(2)
            .filter(|w| w[1] == b'\n' && w[0] != b'\r')
            .count();
        assert_eq!(bare_lf, 0, "{file} has bare LF line ends");
    }
}

#[test]
fn every_family_has_a_hard_and_most_a_soft_bounce() {
    let rows = expected();
    let mut families: BTreeMap<&str, (usize, usize)> = BTreeMap::new();
    for row in &rows {
        let e = families.entry(row.family.as_str()).or_default();
        match row.class {
            Classification::HardBounce => e.0 += 1,
            _ => e.1 += 1,
        }
    }
    assert!(families.len() >= 12, "{families:?}");
    assert!(families.values().all(|(hard, _)| *hard > 0), "{families:?}");
    let with_soft = families.values().filter(|(_, soft)| *soft > 0).count();
    assert!(with_soft * 3 >= families.len() * 2, "{families:?}");
    let multi = rows.iter().filter(|r| r.recipients.len() > 1).count();
    assert!(multi >= 5, "{multi} bounces name several recipients");
}
