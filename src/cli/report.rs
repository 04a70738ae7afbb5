//! `rewarm report`: what the campaigns did — a funnel per campaign, segment, owner or month,
//! and how long after the loss leads came back (`domain::report` says what is counted).

use std::path::Path;
use std::process::ExitCode;

use anyhow::Context as _;
use chrono::{DateTime, Utc};

use super::{parse_now, with_store};
use crate::config::Settings;
use crate::domain::report::{GroupBy, STAGES, assemble};
use crate::store::{ReportCounts, ReportQuery, ReportStore, Store};

#[derive(Debug, clap::Args)]
pub struct ReportArgs {
    /// Enrolments from this time (RFC 3339 or a date; default: all).
    #[arg(long, value_parser = parse_now)]
    pub since: Option<DateTime<Utc>>,
    /// … until this time, exclusive (default: `--now`, else now).
    #[arg(long, value_parser = parse_now)]
    pub until: Option<DateTime<Utc>>,
    /// One row per campaign, segment, owner or month of enrolment.
    #[arg(long, value_enum, default_value = "campaign")]
    pub by: GroupBy,
    /// Print JSON.
    #[arg(long, conflicts_with = "csv")]
    pub json: bool,
    /// Print CSV.
    #[arg(long)]
    pub csv: bool,
    /// Also recompute the figures from the event log alone and compare: any difference is
    /// listed and the command fails (exit 1). Slower: it reads every event in the range.
    #[arg(long)]
    pub verify: bool,
    /// First recompute every enrolment's kept stages from the event log (one transaction),
    /// e.g. after `--verify` found a difference.
    #[arg(long)]
    pub rebuild: bool,
}

pub async fn report(
    config: &Path,
    args: ReportArgs,
    now: DateTime<Utc>,
) -> anyhow::Result<ExitCode> {
    let settings = Settings::load(config)?;
    let until = args.until.unwrap_or(now);
    if let Some(since) = args.since.filter(|s| *s >= until) {
        anyhow::bail!("--since {since} is not before --until {until}: the report would be empty");
    }
    let query = ReportQuery {
        since: args.since,
        until,
        by: args.by,
    };
    let (counts, recomputed) = with_store!(&settings.database_url, |store| {
        store.migrate().await?;
        if args.rebuild {
            let n = store
                .rebuild_report_stages()
                .await
                .context("Failed to recompute the report's stages")?;
            eprintln!("recomputed the report's stages of {n} enrolments from the event log");
        }
        let counts = store
            .report_counts(&query)
            .await
            .context("Failed to compute the report")?;
        let recomputed = if args.verify {
            Some(
                store
                    .report_counts_from_events(&query)
                    .await
                    .context("Failed to recompute the report from the event log")?,
            )
        } else {
            None
        };
        (counts, recomputed)
    });
    let differences = recomputed
        .as_ref()
        .map(|r| differences(&counts, r))
        .unwrap_or_default();
    let report = assemble(
        args.since,
        until,
        args.by,
        counts.funnels,
        counts.days,
        counts.intents,
    );
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else if args.csv {
        print!("{}", report.csv());
    } else {
        print!("{}", report.text());
    }
    if recomputed.is_none() {
        return Ok(ExitCode::SUCCESS);
    }
    if differences.is_empty() {
        eprintln!("verified: the event log gives the same figures");
        return Ok(ExitCode::SUCCESS);
    }
    eprintln!(
        "error: the event log gives other figures ({} differences; `rewarm report --rebuild` recomputes the kept stages):",
        differences.len()
    );
    for line in &differences {
        eprintln!("  {line}");
    }
    Ok(ExitCode::from(1))
}

/// Each figure that differs between the kept stages (`kept`) and the event log (`log`), as
/// "group: figure kept N, event log M", in order.
pub(crate) fn differences(kept: &ReportCounts, log: &ReportCounts) -> Vec<String> {
    use std::collections::BTreeMap;
    let mut figures: BTreeMap<String, (i64, i64)> = BTreeMap::new();
    let mut put = |key: String, n: i64, side: usize| {
        let entry = figures.entry(key).or_default();
        if side == 0 {
            entry.0 += n
        } else {
            entry.1 += n
        }
    };
    for (side, counts) in [kept, log].into_iter().enumerate() {
        for (group, stages) in &counts.funnels {
            for (stage, n) in STAGES.iter().zip(stages) {
                put(format!("{group}: {stage}"), *n, side);
            }
        }
        for (group, days, n) in &counts.days {
            put(
                format!("{group}: re-warmed {days} days after the loss"),
                *n,
                side,
            );
        }
        for (group, intent, n) in &counts.intents {
            put(format!("{group}: replies {intent}"), *n, side);
        }
    }
    figures
        .into_iter()
        .filter(|(_, (a, b))| a != b)
        .map(|(key, (a, b))| format!("{key}: kept {a}, event log {b}"))
        .collect()
}
