//! The corpus: real-shaped human replies in tests/fixtures/intent/ (several languages and
//! mail clients, top- and bottom-posted, HTML-only, one-word, mixed), each with its expected
//! intent, referrals and named moment in `expected.json`. Prints a confusion matrix; requires
//! ≥ 95 % of intents right, no `interested` reply read as `later` or `not_interested`, and
//! every referral and named moment exactly right.

use std::collections::BTreeMap;
use std::path::PathBuf;

use super::super::{Intent, intent_of};
use crate::domain::reply::Classification;
use crate::inbound::classify::classify;
use crate::inbound::parse::parse;

#[derive(serde::Deserialize)]
struct Expected {
    file: String,
    intent: String,
    #[serde(default)]
    referrals: Vec<super::super::Referral>,
    when: Option<String>,
}

fn folder() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/intent")
}

#[test]
fn the_corpus_is_read_right() {
    let manifest = std::fs::read_to_string(folder().join("expected.json")).expect("manifest");
    let cases: Vec<Expected> = serde_json::from_str(&manifest).expect("manifest JSON");
    assert!(
        cases.len() >= 60,
        "only {} replies in the corpus",
        cases.len()
    );
    let mut matrix: BTreeMap<(Intent, Intent), usize> = BTreeMap::new();
    let mut problems = Vec::new();
    let mut right = 0;
    for case in &cases {
        let raw = std::fs::read(folder().join(&case.file)).expect("fixture");
        let p = parse(&raw).unwrap_or_else(|e| panic!("{}: {e}", case.file));
        assert_eq!(classify(&p), Classification::HumanReply, "{}", case.file);
        let expected = Intent::parse(&case.intent).expect("a known intent");
        let from = p.from.clone().unwrap_or_default();
        let received = p.sent_on.expect("a Date header");
        let v = intent_of(&p.text, received, &[from.as_str()], &Vec::new());
        *matrix.entry((expected, v.intent)).or_default() += 1;
        if v.intent == expected {
            right += 1;
        } else {
            problems.push(format!(
                "{}: expected {expected}, got {} ({}, {:?}) from {:?}",
                case.file, v.intent, v.rule, v.evidence, p.text
            ));
        }
        if v.referrals != case.referrals {
            problems.push(format!(
                "{}: referrals {:?}, expected {:?}",
                case.file, v.referrals, case.referrals
            ));
        }
        let when = v.when.as_ref().map(|w| w.date.to_string());
        if case.when.is_some() && when != case.when {
            problems.push(format!(
                "{}: when {when:?}, expected {:?}",
                case.file, case.when
            ));
        }
    }
    print_matrix(&matrix);
    let share = right as f64 / cases.len() as f64;
    println!("{right} of {} right ({:.1} %)", cases.len(), share * 100.0);
    for p in &problems {
        println!("  {p}");
    }
    let hidden: usize = [Intent::Later, Intent::NotInterested]
        .iter()
        .map(|got| {
            matrix
                .get(&(Intent::Interested, *got))
                .copied()
                .unwrap_or(0)
        })
        .sum();
    assert_eq!(hidden, 0, "interested replies read as later/not_interested");
    assert!(share >= 0.95, "only {:.1} % right", share * 100.0);
    let extraction: Vec<&String> = problems
        .iter()
        .filter(|p| p.contains(": referrals") || p.contains(": when"))
        .collect();
    assert!(extraction.is_empty(), "{extraction:#?}");
}

fn print_matrix(matrix: &BTreeMap<(Intent, Intent), usize>) {
    let short = |i: Intent| &i.as_str()[..i.as_str().len().min(8)];
    print!("{:>16} |", "expected \\ got");
    for got in Intent::ALL {
        print!(" {:>8}", short(got));
    }
    println!();
    for expected in Intent::ALL {
        print!("{:>16} |", expected.as_str());
        for got in Intent::ALL {
            let n = matrix.get(&(expected, got)).copied().unwrap_or(0);
            print!(
                " {:>8}",
                if n == 0 {
                    ".".to_string()
                } else {
                    n.to_string()
                }
            );
        }
        println!();
    }
}
