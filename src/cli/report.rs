//! `rewarm report`: what the campaigns did — a funnel per campaign, segment, owner or month,
//! and how long after the loss leads came back (`domain::report` says what is counted).

use std::path::Path;
use std::process::ExitCode;

use anyhow::Context as _;
use chrono::{DateTime, Utc};

use super::{parse_now, with_store};
use crate::config::Settings;
use crate::domain::report::{GroupBy, assemble};
use crate::store::{ReportQuery, ReportStore, Store};

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
    let counts = with_store!(&settings.database_url, |store| {
        store.migrate().await?;
        store
            .report_counts(&query)
            .await
            .context("Failed to compute the report")?
    });
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
    Ok(ExitCode::SUCCESS)
}
