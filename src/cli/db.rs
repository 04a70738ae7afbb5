//! `rewarm db copy --from URL --to URL [--force]`: moves a deployment's whole state from one
//! database to another (typically SQLite → PostgreSQL when one machine is not enough).
//!
//! Every table is copied page by page with its ids (so timelines, enrolments and deliveries
//! keep pointing at the same rows): leads, enrolments, deliveries, events, the suppression
//! list, the stored secrets (a generated token signing key must move with the data, or the
//! unsubscribe links in emails already sent would stop working), the inbound messages
//! (matched or not, raw bytes included), the notification outbox (pending notifications to
//! sales must not be lost) and the daemon's small named values (`kv_state`: without the IMAP
//! mailbox's UIDVALIDITY and last UID the copy would read the mailbox again). On PostgreSQL
//! the id sequences are advanced past the copied rows. Afterwards the rows per table are
//! counted on both sides and must match. A target that already holds data is refused unless
//! `--force`, which empties it first.
//! Stop the daemons writing to the source while copying: a write during the copy shows up
//! as a count mismatch, and the copy must then be run again (with `--force`).

use std::collections::BTreeMap;
use std::process::ExitCode;

use anyhow::Context as _;

use super::{redact_url, with_store};
use crate::store::{Store, Table};

#[derive(Debug, clap::Subcommand)]
pub enum DbCommand {
    /// Copy a deployment's whole state (ids kept) from one database to another: leads,
    /// enrolments, deliveries, events, suppressions, secrets, inbound messages, the
    /// notification outbox and the daemon's kv state (IMAP position, digest's last run);
    /// then check the row counts per table. E.g. --from sqlite://rewarm.db --to postgres://…
    Copy(CopyArgs),
}

#[derive(Debug, clap::Args)]
pub struct CopyArgs {
    /// The database to read (sqlite://FILE or postgres://…); migrated first if needed.
    #[arg(long)]
    pub from: String,
    /// The database to write (sqlite://FILE or postgres://…); migrated first if needed.
    #[arg(long)]
    pub to: String,
    /// Copy even if the target already holds data: its rows are DELETED first.
    #[arg(long)]
    pub force: bool,
}

/// Rows read and written per transaction.
const PAGE: usize = 5000;

pub async fn db(cmd: DbCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        DbCommand::Copy(args) => {
            if args.from == args.to {
                anyhow::bail!(
                    "--from and --to are the same database ({})",
                    redact_url(&args.from)
                );
            }
            let (from_name, to_name) = (redact_url(&args.from), redact_url(&args.to));
            // Opening a SQLite URL creates a missing file: a typo must not become an empty
            // source whose "copy" matches every count.
            if let Some(file) = crate::store::sqlite::identity::sqlite_file(&args.from)
                && !crate::store::sqlite::identity::holds_database(&file)
            {
                anyhow::bail!(
                    "the source database {from_name} does not exist (or is an empty file): nothing to copy"
                );
            }
            let outcome = with_store!(&args.from, |from| with_store!(&args.to, |to| copy(
                &from, &to, args.force, true
            )
            .await))?;
            println!("{:<14} {:>10} {:>10}", "table", "source", "target");
            for (table, (source, target)) in &outcome.counts {
                println!(
                    "{:<14} {source:>10} {target:>10}{}",
                    table.as_str(),
                    if source == target { "" } else { "   MISMATCH" }
                );
            }
            if !outcome.matches() {
                eprintln!(
                    "error: the row counts differ: was something writing to {from_name} during the copy? Stop the daemons and run the copy again with --force."
                );
                return Ok(ExitCode::FAILURE);
            }
            println!("copied {from_name} to {to_name}: every table's row count matches");
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// What a copy did: rows per table in the source and in the target, counted afterwards.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CopyOutcome {
    pub copied: BTreeMap<Table, usize>,
    pub counts: BTreeMap<Table, (i64, i64)>,
}

impl CopyOutcome {
    pub fn matches(&self) -> bool {
        self.counts
            .values()
            .all(|(source, target)| source == target)
    }
}

/// Copies every table from `from` to `to` (both migrated first), ids kept. Refuses a
/// non-empty target unless `force`, in which case the target's rows are deleted first.
pub async fn copy<A: Store, B: Store>(
    from: &A,
    to: &B,
    force: bool,
    progress: bool,
) -> anyhow::Result<CopyOutcome> {
    from.migrate()
        .await
        .context("Failed to migrate the source database")?;
    to.migrate()
        .await
        .context("Failed to migrate the target database")?;
    let source_counts = from
        .table_counts()
        .await
        .context("Failed to count the source's rows")?;
    let total: i64 = source_counts.values().sum();
    // Migrating gives every database its id (a `kv_state` row): empty means nothing else.
    let data: i64 = source_counts
        .iter()
        .filter(|(t, _)| **t != Table::KvState)
        .map(|(_, n)| n)
        .sum();
    if data == 0 {
        anyhow::bail!(
            "the source database is empty: nothing to copy (is --from the right database?)"
        );
    }
    let before = to
        .table_counts()
        .await
        .context("Failed to count the target's rows")?;
    if before.values().any(|n| *n > 0) {
        let held = before
            .iter()
            .filter(|(_, n)| **n > 0)
            .map(|(t, n)| format!("{n} {t}"))
            .collect::<Vec<_>>()
            .join(", ");
        if !force {
            anyhow::bail!(
                "the target database is not empty ({held}); refusing to write into it (--force deletes its rows first)"
            );
        }
        tracing::warn!(%held, "Deleting the target's rows (--force)");
        to.delete_all_rows()
            .await
            .context("Failed to empty the target database")?;
    }
    let bar = if progress && total > PAGE as i64 {
        indicatif::ProgressBar::new(u64::try_from(total).unwrap_or(0))
    } else {
        indicatif::ProgressBar::hidden()
    };
    let mut copied = BTreeMap::new();
    // Parents before children, so every reference points at a row already copied.
    for table in Table::ALL {
        let mut after = 0;
        let mut n = 0;
        loop {
            let rows = from
                .export_rows(table, after, PAGE)
                .await
                .with_context(|| format!("Failed to read {table}"))?;
            let Some(last) = rows.last_id() else { break };
            after = last;
            n += to
                .import_rows(&rows)
                .await
                .with_context(|| format!("Failed to write {table} (rows up to id {last})"))?;
            bar.inc(rows.len() as u64);
            if rows.len() < PAGE {
                break;
            }
        }
        copied.insert(table, n);
    }
    bar.finish_and_clear();
    to.refresh_statistics()
        .await
        .context("Failed to refresh the target's planner statistics (ANALYZE)")?;
    let source = from
        .table_counts()
        .await
        .context("Failed to count the source's rows")?;
    let target = to
        .table_counts()
        .await
        .context("Failed to count the target's rows")?;
    let counts = Table::ALL
        .into_iter()
        .map(|t| {
            (
                t,
                (
                    source.get(&t).copied().unwrap_or(0),
                    target.get(&t).copied().unwrap_or(0),
                ),
            )
        })
        .collect();
    Ok(CopyOutcome { copied, counts })
}
