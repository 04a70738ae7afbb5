//! `rewarm inbound explain FILE.eml`: which rule decided a message's classification and, for
//! a person's reply, its intent — the phrase, the named moment, the referrals — and the effect
//! `[intents]` gives it. Reads the file and the config only; changes nothing.

use std::io::Write as _;
use std::path::Path;
use std::process::ExitCode;

use anyhow::Context as _;
use chrono::{DateTime, Utc};

use crate::app::Loaded;
use crate::domain::reply::Classification;
use crate::inbound::classify::verdict;
use crate::inbound::parse::parse;
use crate::inbound::process::read_intent;

pub fn explain(loaded: &Loaded, file: &Path, now: DateTime<Utc>) -> anyhow::Result<ExitCode> {
    let raw = std::fs::read(file).with_context(|| format!("Failed to read {}", file.display()))?;
    let p = parse(&raw).with_context(|| format!("{} is not a mail message", file.display()))?;
    let mut out = String::new();
    let v = verdict(&p);
    out.push_str(&format!("file:            {}\n", file.display()));
    out.push_str(&format!(
        "classification:  {} (rule: {})\n",
        v.classification, v.reason
    ));
    if v.classification == Classification::HumanReply {
        let i = read_intent(loaded, &p, now);
        out.push_str(&format!("intent:          {}\n", i.intent));
        out.push_str(&format!("  rule:          {}\n", i.rule));
        match &i.evidence {
            Some((phrase, lang)) => {
                out.push_str(&format!("  phrase:        \"{phrase}\" ({lang})\n"))
            }
            None => out.push_str("  phrase:        - (none matched)\n"),
        }
        if let Some(w) = &i.when {
            out.push_str(&format!("  when:          {} (\"{}\")\n", w.date, w.phrase));
        }
        for r in &i.referrals {
            out.push_str(&format!(
                "  referral:      {} <{}>\n",
                r.name.as_deref().unwrap_or("(no name)"),
                r.email.as_deref().unwrap_or("no address")
            ));
        }
        let effect = loaded.settings.intents.effect(i.intent, None);
        out.push_str(&format!(
            "effect:          {effect} (per [intents]; a segment's `intents` table can differ)\n"
        ));
        out.push_str("text read (quoted history and signature removed):\n");
        for line in p.text.lines() {
            out.push_str(&format!("  | {line}\n"));
        }
    }
    let mut stdout = std::io::stdout().lock();
    match stdout
        .write_all(out.as_bytes())
        .and_then(|()| stdout.flush())
    {
        Ok(()) => Ok(ExitCode::SUCCESS),
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(ExitCode::SUCCESS),
        Err(e) => Err(e).context("Failed to write to stdout"),
    }
}
