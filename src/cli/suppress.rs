//! `rewarm suppress add|remove|list|import`: the global suppression list.
//!
//! An entry is an address (`ann@example.com`) or a whole domain (`@example.com`); nothing is
//! ever sent to a listed address or to any address at a listed domain, whatever the campaign.
//! Adding an entry suppresses the matching leads at once (their scheduled emails are
//! cancelled); a domain entry that would reach more than `compliance.confirm_domain_over`
//! leads needs `--yes`. Removing one brings nobody back unless asked: `remove --restore`
//! puts the leads that entry suppressed back where they were (cadence and all).

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context as _;
use chrono::{DateTime, Utc};

use super::with_store;
use crate::config::Settings;
use crate::outbound::suppression::evidence;
use crate::store::{Store, Suppression, SuppressionReason, SuppressionStore};

#[derive(Debug, clap::Subcommand)]
pub enum SuppressCommand {
    /// Put addresses or whole domains (`@example.com`) on the list; matching leads are
    /// suppressed at once and their scheduled emails cancelled.
    Add {
        /// Email addresses or `@domain`s.
        #[arg(required = true, value_name = "ADDRESS")]
        addresses: Vec<String>,
        /// Why (manual, unsubscribed, hard_bounce, complaint).
        #[arg(long, default_value = "manual", value_parser = parse_reason)]
        reason: SuppressionReason,
        /// A note kept with the entry (who asked, ticket number…).
        #[arg(long)]
        note: Option<String>,
        /// Add even an entry that reaches more leads than `compliance.confirm_domain_over`.
        #[arg(long, visible_alias = "force")]
        yes: bool,
    },
    /// Take an address or `@domain` off the list. Leads already suppressed stay suppressed,
    /// unless `--restore`.
    Remove {
        #[arg(value_name = "ADDRESS")]
        address: String,
        /// Also put the leads this entry suppressed back where they were (their cadence
        /// resumes), unless another entry still lists them.
        #[arg(long)]
        restore: bool,
    },
    /// Every entry, oldest first.
    List {
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Add every address of a file: one address or `@domain` per line (blank lines and
    /// `#` comments skipped), or a CSV with an `email` column. Any bad line: nothing is added.
    Import {
        file: PathBuf,
        /// Why (manual, unsubscribed, hard_bounce, complaint).
        #[arg(long, default_value = "manual", value_parser = parse_reason)]
        reason: SuppressionReason,
        /// A note kept with every entry.
        #[arg(long)]
        note: Option<String>,
        /// Add even an entry that reaches more leads than `compliance.confirm_domain_over`.
        #[arg(long, visible_alias = "force")]
        yes: bool,
    },
}

fn parse_reason(s: &str) -> Result<SuppressionReason, String> {
    SuppressionReason::parse(s).ok_or_else(|| {
        let all: Vec<&str> = SuppressionReason::ALL.iter().map(|r| r.as_str()).collect();
        format!("unknown reason `{s}` (use one of: {})", all.join(", "))
    })
}

pub async fn suppress(
    config: &Path,
    cmd: SuppressCommand,
    now: DateTime<Utc>,
) -> anyhow::Result<ExitCode> {
    let settings = Settings::load(config)?;
    // Everything is validated before the database is opened: a bad address changes nothing.
    let (entries, remove) = match &cmd {
        SuppressCommand::Add {
            addresses,
            reason,
            note,
            ..
        } => (
            addresses_to_add(addresses, *reason, note.as_deref(), now)?,
            None,
        ),
        SuppressCommand::Import {
            file, reason, note, ..
        } => (read_file(file, *reason, note.as_deref(), now)?, None),
        SuppressCommand::Remove { address, .. } => {
            let address = Suppression::normalise_address(address)
                .map_err(|e| anyhow::anyhow!("{e} (use an email address or @domain.tld)"))?;
            (Vec::new(), Some(address))
        }
        SuppressCommand::List { .. } => (Vec::new(), None),
    };
    with_store!(&settings.database_url, |store| {
        store.migrate().await?;
        match cmd {
            SuppressCommand::Add { .. } | SuppressCommand::Import { .. } => {
                let confirmed = matches!(
                    cmd,
                    SuppressCommand::Add { yes: true, .. }
                        | SuppressCommand::Import { yes: true, .. }
                );
                if !confirmed
                    && !broad_entries_confirmed(
                        &store,
                        &entries,
                        settings.compliance.confirm_domain_over,
                    )
                    .await?
                {
                    return Ok(ExitCode::FAILURE);
                }
                let distinct = entries
                    .iter()
                    .map(|e| e.address.as_str())
                    .collect::<std::collections::BTreeSet<_>>()
                    .len();
                let added = store
                    .suppress(&entries, now)
                    .await
                    .context("Failed to update the suppression list")?;
                println!(
                    "{added} added, {} already on the suppression list",
                    distinct - added
                );
                Ok(ExitCode::SUCCESS)
            }
            SuppressCommand::Remove { restore: true, .. } => {
                let address = remove.unwrap_or_default();
                let restored = store
                    .unsuppress_and_restore(&address, now)
                    .await
                    .context("Failed to update the suppression list")?;
                let Some(r) = restored else {
                    eprintln!("error: {address} is not on the suppression list");
                    return Ok(ExitCode::FAILURE);
                };
                println!(
                    "removed {address} from the suppression list; restored {} lead(s) ({} email(s) scheduled again); {} stay suppressed by another entry",
                    r.restored, r.resumed_deliveries, r.still_suppressed
                );
                Ok(ExitCode::SUCCESS)
            }
            SuppressCommand::Remove { .. } => {
                let address = remove.unwrap_or_default();
                if store
                    .unsuppress(&address)
                    .await
                    .context("Failed to update the suppression list")?
                {
                    println!(
                        "removed {address} from the suppression list (leads already suppressed stay suppressed; `--restore` brings them back)"
                    );
                    Ok(ExitCode::SUCCESS)
                } else {
                    eprintln!("error: {address} is not on the suppression list");
                    Ok(ExitCode::FAILURE)
                }
            }
            SuppressCommand::List { json } => {
                let list = store
                    .suppressions()
                    .await
                    .context("Failed to read the suppression list")?;
                print_list(&list, json)?;
                Ok(ExitCode::SUCCESS)
            }
        }
    })
}

/// False (after saying why) if an entry would suppress more than `over` leads: a typo in
/// `@domain` must not silence a whole company unasked.
async fn broad_entries_confirmed<S: Store>(
    store: &S,
    entries: &[Suppression],
    over: i64,
) -> anyhow::Result<bool> {
    let broad: Vec<String> = crate::outbound::suppression::too_broad(store, entries, over)
        .await
        .context("Failed to count the leads an entry reaches")?
        .into_iter()
        .map(|(address, n)| format!("{address} would suppress {n} leads"))
        .collect();
    for b in &broad {
        eprintln!("warning: {b} (more than compliance.confirm_domain_over = {over})");
    }
    if broad.is_empty() {
        return Ok(true);
    }
    eprintln!("nothing was added: run again with --yes to add it anyway");
    Ok(false)
}

/// The command line's addresses as entries; none at all if one is bad (each bad one is
/// printed).
fn addresses_to_add(
    addresses: &[String],
    reason: SuppressionReason,
    note: Option<&str>,
    now: DateTime<Utc>,
) -> anyhow::Result<Vec<Suppression>> {
    let mut entries = Vec::new();
    let mut bad = Vec::new();
    for raw in addresses {
        match Suppression::normalise_address(raw) {
            Ok(address) => entries.push(Suppression {
                address,
                reason,
                evidence: evidence("cli", note, None, None),
                created_at: now,
            }),
            Err(e) => bad.push(format!("{e}")),
        }
    }
    if !bad.is_empty() {
        for e in &bad {
            eprintln!("rejected {e}");
        }
        anyhow::bail!(
            "{} bad address(es); nothing was added (use an email address or @domain.tld)",
            bad.len()
        );
    }
    Ok(entries)
}

/// `suppress list`: JSON, or a table with a count.
fn print_list(list: &[Suppression], json: bool) -> anyhow::Result<()> {
    if json {
        println!("{}", serde_json::to_string_pretty(list)?);
    } else if list.is_empty() {
        println!("the suppression list is empty");
    } else {
        println!(
            "{:<40} {:<13} {:<20} evidence",
            "address", "reason", "since"
        );
        for s in list {
            println!(
                "{:<40} {:<13} {:<20} {}",
                s.address,
                s.reason.as_str(),
                s.created_at.format("%Y-%m-%d %H:%M UTC"),
                s.evidence
            );
        }
        println!(
            "{} entr{}",
            list.len(),
            if list.len() == 1 { "y" } else { "ies" }
        );
    }
    Ok(())
}

/// The entries of an import file; every bad line is reported (`FILE:LINE: reason`) and then
/// the whole file is refused.
fn read_file(
    file: &Path,
    reason: SuppressionReason,
    note: Option<&str>,
    now: chrono::DateTime<Utc>,
) -> anyhow::Result<Vec<Suppression>> {
    let text = std::fs::read_to_string(file)
        .with_context(|| format!("Failed to read {}", file.display()))?;
    let text = text.strip_prefix('\u{feff}').unwrap_or(&text);
    // (line number, raw value)
    let mut values: Vec<(u64, String)> = Vec::new();
    let mut bad: Vec<String> = Vec::new();
    let first = text
        .lines()
        .find(|l| !l.trim().is_empty() && !l.trim_start().starts_with('#'))
        .unwrap_or("");
    let header: Vec<String> = csv::ReaderBuilder::new()
        .has_headers(false)
        .from_reader(first.as_bytes())
        .records()
        .next()
        .and_then(Result::ok)
        .map(|r| r.iter().map(|h| h.trim().to_ascii_lowercase()).collect())
        .unwrap_or_default();
    if let Some(column) = header.iter().position(|h| h == "email") {
        let mut reader = csv::ReaderBuilder::new()
            .flexible(true)
            .comment(Some(b'#'))
            .from_reader(text.as_bytes());
        for record in reader.records() {
            match record {
                Ok(record) => {
                    let line = record.position().map(|p| p.line()).unwrap_or(0);
                    if record.iter().all(|f| f.trim().is_empty()) {
                        continue;
                    }
                    values.push((line, record.get(column).unwrap_or("").to_string()));
                }
                Err(e) => {
                    let line = e.position().map(|p| p.line()).unwrap_or(0);
                    bad.push(format!("{}:{line}: {e}", file.display()));
                }
            }
        }
    } else {
        for (i, line) in text.lines().enumerate() {
            let trimmed = line.trim();
            if trimmed.is_empty() || trimmed.starts_with('#') {
                continue;
            }
            values.push((i as u64 + 1, trimmed.to_string()));
        }
    }
    let mut entries = Vec::new();
    for (line, raw) in values {
        match Suppression::normalise_address(&raw) {
            Ok(address) => entries.push(Suppression {
                address,
                reason,
                evidence: evidence("import", note, None, Some((file, line))),
                created_at: now,
            }),
            Err(e) => bad.push(format!("{}:{line}: {e}", file.display())),
        }
    }
    if !bad.is_empty() {
        for e in &bad {
            eprintln!("rejected {e}");
        }
        anyhow::bail!(
            "{}: {} bad line(s); nothing was added",
            file.display(),
            bad.len()
        );
    }
    if entries.is_empty() {
        anyhow::bail!("{}: no addresses found", file.display());
    }
    Ok(entries)
}
