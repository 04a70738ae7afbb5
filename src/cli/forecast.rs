//! `rewarm forecast [--days 30] [--now T] [--leads]`.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::ExitCode;

use anyhow::Context as _;
use chrono::{DateTime, Utc};

use super::with_store;
use crate::config::Settings;
use crate::outbound::forecast::plan;
use crate::store::Store;

#[derive(Debug, clap::Args)]
pub struct ForecastArgs {
    /// How many days ahead.
    #[arg(long, default_value_t = 30)]
    pub days: u32,
    /// One line per email (time, lead, campaign, step) instead of totals per day.
    #[arg(long)]
    pub leads: bool,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

pub async fn forecast(
    config: &Path,
    args: ForecastArgs,
    now: DateTime<Utc>,
) -> anyhow::Result<ExitCode> {
    let settings = Settings::load(config)?;
    let until = now + chrono::Duration::days(args.days.into());
    let planned = with_store!(&settings.database_url, |store| {
        store.migrate().await?;
        plan(&store, &settings, now, until)
            .await
            .context("Failed to compute the forecast")?
    });
    if args.json && args.leads {
        println!("{}", serde_json::to_string_pretty(&planned)?);
        return Ok(ExitCode::SUCCESS);
    }
    if args.leads {
        println!(
            "{:<22} {:<26} {:<32} {:<20} {:>4}  template",
            "when (UTC)", "lead local time", "lead", "campaign", "step"
        );
        for p in &planned {
            println!(
                "{:<22} {:<26} {:<32} {:<20} {:>4}  {}",
                p.at.format("%Y-%m-%d %H:%M"),
                p.local,
                p.email,
                p.campaign,
                p.step,
                if p.kind == "call" {
                    "call task (no email)"
                } else {
                    &p.template
                }
            );
        }
        let calls = planned.iter().filter(|p| p.kind == "call").count();
        println!(
            "{} email(s) and {calls} call task(s) in the next {} day(s)",
            planned.len() - calls,
            args.days
        );
        return Ok(ExitCode::SUCCESS);
    }
    // Per UTC day and campaign.
    let mut per_day: BTreeMap<(String, String), (usize, usize)> = BTreeMap::new();
    for p in &planned {
        let counts = per_day
            .entry((p.at.format("%Y-%m-%d").to_string(), p.campaign.clone()))
            .or_default();
        if p.kind == "call" {
            counts.1 += 1;
        } else {
            counts.0 += 1;
        }
    }
    if args.json {
        let rows: Vec<_> = per_day
            .iter()
            .map(|((day, campaign), (n, calls))| {
                let mut row = serde_json::json!({"day": day, "campaign": campaign, "emails": n});
                if *calls > 0 {
                    row["calls"] = serde_json::json!(calls);
                }
                row
            })
            .collect();
        println!("{}", serde_json::to_string_pretty(&rows)?);
        return Ok(ExitCode::SUCCESS);
    }
    println!(
        "{:<12} {:<24} {:>6} {:>6}",
        "day (UTC)", "campaign", "emails", "calls"
    );
    for ((day, campaign), (n, calls)) in &per_day {
        println!("{day:<12} {campaign:<24} {n:>6} {calls:>6}");
    }
    let calls = planned.iter().filter(|p| p.kind == "call").count();
    println!(
        "{} email(s) and {calls} call task(s) in the next {} day(s) from {}",
        planned.len() - calls,
        args.days,
        now.format("%Y-%m-%d %H:%M UTC")
    );
    Ok(ExitCode::SUCCESS)
}
