//! `rewarm leads import FILE --dry-run`, and what every import says about its file's quality
//! (header suggestions, role and disposable addresses, owner conflicts; see
//! `ingest::checked`).
//!
//! A dry run reads the file exactly like an import (same mapping, rules and forgotten
//! addresses), compares each lead with the one already stored (the merge an import would
//! do), and prints the counts, the segment each new lead would enter (a count per segment
//! and a sample), and writes nothing.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::ExitCode;

use anyhow::Context as _;
use chrono::{DateTime, Utc};

use crate::config::Settings;
use crate::domain::lead::{Lead, LeadState, NewLead};
use crate::ingest::Parsed;
use crate::ingest::checked::Checked;
use crate::store::Store;

/// How many new leads a dry run lists by name.
const SAMPLE: usize = 10;

/// What a new lead with no segment yet is counted under.
pub const NO_SEGMENT: &str = "(no segment yet)";
/// What a new lead on the suppression list is counted under.
pub const SUPPRESSED: &str = "(suppressed)";

/// Prints the checks' warnings, skipped rows and owner conflicts (to stderr; as log lines
/// when `quiet`, i.e. inside the daemon); returns the parsed file and how many rows a
/// policy skipped.
pub fn report_checks(checked: Checked, quiet: bool) -> (Parsed, usize) {
    let lines = checked
        .warnings
        .iter()
        .map(|w| ("warning", w))
        .chain(checked.skipped.iter().map(|s| ("skipped", s)))
        .chain(
            checked
                .owner_conflicts
                .iter()
                .map(|c| ("owner conflict", c)),
        );
    for (what, line) in lines {
        if quiet {
            tracing::warn!("Import {what}: {line}");
        } else {
            eprintln!("{what}: {line}");
        }
    }
    (checked.parsed, checked.skipped.len())
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

/// `leads import --dry-run`.
pub async fn dry_run<S: Store>(
    store: &S,
    settings: &Settings,
    file: &Path,
    strict: bool,
    now: DateTime<Utc>,
) -> anyhow::Result<ExitCode> {
    let checked = crate::ingest::checked::parse_checked(
        file,
        settings.default_tz,
        now,
        settings.max_field_length,
        &settings.import,
    )?;
    let (parsed, by_policy) = report_checks(checked, false);
    for error in &parsed.rejected {
        eprintln!("rejected {error}");
    }
    let leads: Vec<NewLead> = parsed.leads.into_iter().map(|p| p.lead).collect();
    let (leads, forgotten) = crate::store::without_forgotten(store, leads)
        .await
        .context("Failed to read the forgotten addresses")?;
    for email in &forgotten {
        eprintln!("skipped {email}: forgotten (`leads forget`), never imported again");
    }
    let (mut inserted, mut updated, mut unchanged) = (0, 0, 0);
    let mut per_segment: BTreeMap<String, usize> = BTreeMap::new();
    let mut sample = Vec::new();
    for new in &leads {
        let Some(email) = &new.email else { continue };
        match store.lead_by_email(email).await? {
            Some(old) => {
                if crate::store::merge_lead(&old, new).1.is_empty() {
                    unchanged += 1;
                } else {
                    updated += 1;
                }
            }
            None => {
                inserted += 1;
                let segment = if store.suppression_for(email).await?.is_some() {
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
                if sample.len() < SAMPLE {
                    sample.push(format!("  {email} → {segment}"));
                }
                *per_segment.entry(segment).or_insert(0) += 1;
            }
        }
    }
    let source = file.display();
    let refused = if strict && !parsed.rejected.is_empty() {
        " (--strict: with these bad rows nothing would be imported)"
    } else {
        ""
    };
    println!(
        "{source} (dry run, nothing written): would insert {inserted}, update {updated}, leave {unchanged} unchanged; merged {} duplicate row(s), rejected {}{}{refused}",
        parsed.merged,
        parsed.rejected.len(),
        skipped_note(forgotten.len(), by_policy)
    );
    if !per_segment.is_empty() {
        println!("new leads by segment:");
        for (segment, n) in &per_segment {
            println!("  {segment:<24} {n}");
        }
        println!("sample of new leads:");
        for line in &sample {
            println!("{line}");
        }
    }
    Ok(if parsed.rejected.is_empty() {
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
