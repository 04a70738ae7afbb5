//! `rewarm leads import FILE --dry-run`, and what every import says about its file's quality
//! (header suggestions, role and disposable addresses, owner conflicts; see
//! `ingest::checked`).
//!
//! A dry run reads the file exactly like an import (same mapping, rules and forgotten
//! addresses), compares each lead with the one already stored (the merge an import would
//! do, a chunk at a time: the chunk's known leads and suppressed addresses in one read each,
//! as the import reads them), and prints the counts, the segment each new lead would enter
//! (a count per segment and a sample), and writes nothing.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::ExitCode;

use anyhow::Context as _;
use chrono::{DateTime, Utc};

use crate::config::Settings;
use crate::domain::lead::{Lead, LeadState, NewLead};
use crate::ingest::IngestError;
use crate::ingest::chunks::{Chunk, Chunks, Note, Scan, Totals};
use crate::ingest::rows::RowRules;
use crate::store::{Store, preview_import};

/// How many new leads a dry run lists by name.
const SAMPLE: usize = 10;

/// What a new lead with no segment yet is counted under.
pub const NO_SEGMENT: &str = "(no segment yet)";
/// What a new lead on the suppression list is counted under.
pub const SUPPRESSED: &str = "(suppressed)";

/// Prints what an import says beside writing (warnings, skipped rows, owner conflicts; to
/// stderr, or as log lines when `quiet`, i.e. inside the daemon).
pub fn report_notes(notes: &[Note], quiet: bool) {
    for (what, line) in notes {
        if quiet {
            tracing::warn!("Import {what}: {line}");
        } else {
            eprintln!("{what}: {line}");
        }
    }
}

/// The first pass of an import or a dry run: every row checked, bad rows reported
/// (`rejected file:line: …`), header suggestions reported.
pub fn first_pass(
    settings: &Settings,
    file: &Path,
    now: DateTime<Utc>,
    quiet: bool,
) -> anyhow::Result<(Scan, RowRules)> {
    let rules = RowRules {
        default_tz: settings.default_tz,
        now,
        max_len: settings.max_field_length,
    };
    let scan = crate::ingest::chunks::scan(file, &rules, &settings.import, |error| {
        eprintln!("rejected {error}");
    })?;
    let warnings: Vec<Note> = scan
        .header_warnings
        .iter()
        .map(|w| ("warning", w.clone()))
        .collect();
    report_notes(&warnings, quiet);
    Ok((scan, rules))
}

/// The second pass on its own thread: chunks arrive on the channel (two at most wait), the
/// counts when it is over.
pub fn second_pass(
    chunks: Chunks,
) -> (
    tokio::sync::mpsc::Receiver<Result<Chunk, IngestError>>,
    tokio::task::JoinHandle<Totals>,
) {
    // One chunk read ahead while one is written (a chunk is 20,000 leads on SQLite; two ahead
    // held ~10 MiB more at 1M leads for no speed).
    let (tx, rx) = tokio::sync::mpsc::channel(1);
    let pass = tokio::task::spawn_blocking(move || {
        let mut chunks = chunks;
        for chunk in chunks.by_ref() {
            if tx.blocking_send(chunk).is_err() {
                break;
            }
        }
        chunks.totals()
    });
    (rx, pass)
}

/// The summary's `, skipped …` part (empty when nothing was skipped).
pub fn skipped_note(forgotten: usize, by_policy: usize) -> String {
    let mut parts = Vec::new();
    if forgotten > 0 {
        parts.push(format!("{forgotten} forgotten"));
    }
    if by_policy > 0 {
        parts.push(format!("{by_policy} by policy"));
    }
    if parts.is_empty() {
        String::new()
    } else {
        format!(", skipped {}", parts.join(" and "))
    }
}

/// A new lead as the store would hold it (for segment matching).
fn as_stored(new: &NewLead, now: DateTime<Utc>) -> Option<Lead> {
    Some(Lead {
        id: 0,
        email: new.email.clone()?,
        first_name: new.first_name.clone(),
        last_name: new.last_name.clone(),
        company: new.company.clone(),
        title: new.title.clone(),
        owner_email: new.owner_email.as_ref().map(ToString::to_string),
        owner_name: new.owner_name.clone(),
        lost_reason: new.lost_reason.clone(),
        lost_at: new.lost_at,
        timezone: new.timezone,
        tags: new.tags.clone(),
        fields: new.fields.clone(),
        state: LeadState::New,
        created_at: now,
        updated_at: now,
    })
}

/// What a dry run would do: counts, and the segment of each new lead.
#[derive(Default)]
struct Tally {
    inserted: usize,
    updated: usize,
    unchanged: usize,
    per_segment: BTreeMap<String, usize>,
    sample: Vec<String>,
}

impl Tally {
    /// Adds what importing `leads` (a chunk) would do: read in one go per chunk
    /// ([`preview_import`]), never a query per lead.
    async fn add<S: Store>(
        &mut self,
        store: &S,
        settings: &Settings,
        leads: &[NewLead],
        now: DateTime<Utc>,
    ) -> anyhow::Result<()> {
        let preview = preview_import(store, leads).await?;
        self.updated += preview.summary.updated;
        self.unchanged += preview.summary.unchanged;
        self.inserted += preview.summary.inserted;
        for (new, suppressed) in &preview.new {
            let segment = if *suppressed {
                SUPPRESSED.to_string()
            } else {
                as_stored(new, now)
                    .and_then(|lead| {
                        crate::domain::segment::first_match(
                            &settings.segments,
                            &lead,
                            now,
                            settings.default_tz,
                        )
                    })
                    .map_or(NO_SEGMENT.to_string(), |s| s.name.clone())
            };
            if self.sample.len() < SAMPLE {
                let email = new.email.as_ref().map_or("", |e| e.as_str());
                self.sample.push(format!("  {email} → {segment}"));
            }
            *self.per_segment.entry(segment).or_insert(0) += 1;
        }
        Ok(())
    }
}

/// `leads import --dry-run`.
pub async fn dry_run<S: Store>(
    store: &S,
    settings: &Settings,
    file: &Path,
    strict: bool,
    now: DateTime<Utc>,
) -> anyhow::Result<ExitCode> {
    let (scan, rules) = first_pass(settings, file, now, false)?;
    let rejected = scan.rejected;
    let forgotten = crate::store::Forgotten::load(store)
        .await
        .context("Failed to read the forgotten addresses")?;
    let chunks = scan.chunks(&rules, &settings.import, super::leads::CHUNK)?;
    let (mut rx, pass) = second_pass(chunks);
    let mut tally = Tally::default();
    let mut forgotten_count = 0;
    while let Some(chunk) = rx.recv().await {
        let chunk = chunk?;
        report_notes(&chunk.notes, false);
        let (leads, left_out) = forgotten.split(chunk.leads);
        for email in &left_out {
            eprintln!("skipped {email}: forgotten (`leads forget`), never imported again");
        }
        forgotten_count += left_out.len();
        tally.add(store, settings, &leads, now).await?;
    }
    let totals = pass.await.context("the dry run's reading thread failed")?;
    let source = file.display();
    let refused = if strict && rejected > 0 {
        " (--strict: with these bad rows nothing would be imported)"
    } else {
        ""
    };
    println!(
        "{source} (dry run, nothing written): would insert {}, update {}, leave {} unchanged; merged {} duplicate row(s), rejected {rejected}{}{refused}",
        tally.inserted,
        tally.updated,
        tally.unchanged,
        totals.merged,
        skipped_note(forgotten_count, totals.skipped)
    );
    if !tally.per_segment.is_empty() {
        println!("new leads by segment:");
        for (segment, n) in &tally.per_segment {
            println!("  {segment:<24} {n}");
        }
        println!("sample of new leads:");
        for line in &tally.sample {
            println!("{line}");
        }
    }
    Ok(if rejected == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(3)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_skipped_note_names_only_what_was_skipped() {
        assert_eq!(skipped_note(0, 0), "");
        assert_eq!(skipped_note(1, 0), ", skipped 1 forgotten");
        assert_eq!(skipped_note(0, 2), ", skipped 2 by policy");
        assert_eq!(skipped_note(1, 2), ", skipped 1 forgotten and 2 by policy");
    }
}
