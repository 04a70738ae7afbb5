//! `rewarm forecast [--days 30] [--now T] [--leads] [--json]`: printing only; the forecast
//! itself is [`crate::outbound::forecast`]. Lines are printed as the simulation decides
//! them (nothing is collected first), totals per day are kept per (day, campaign).

use std::collections::BTreeMap;
use std::io::Write as _;
use std::path::Path;
use std::process::ExitCode;

use anyhow::Context as _;
use chrono::{DateTime, NaiveDate, Utc};

use super::with_store;
use crate::config::Settings;
use crate::outbound::forecast::sim::Shared;
use crate::outbound::forecast::{Kind, Planned, Work, grid, simulate};
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
    let grid = grid(&settings, now, until);
    let mut printer = Printer::new(&args);
    with_store!(&settings.database_url, |store| {
        store.migrate().await?;
        simulate(&store, &settings, grid, args.leads, |work, at, kind| {
            printer.planned(work, at, kind)
        })
        .await
        .context("Failed to compute the forecast")?
    });
    printer.finish(&args, now)?;
    Ok(ExitCode::SUCCESS)
}

/// Prints each planned email as it comes (`--leads`), or counts it per day and campaign.
struct Printer {
    out: std::io::BufWriter<std::io::Stdout>,
    leads: bool,
    json: bool,
    emails: usize,
    calls: usize,
    /// Emails and calls by UTC day and campaign (the day formatted only when printed: at a
    /// million emails, formatting it for each one was 3 % of the forecast).
    per_day: BTreeMap<(NaiveDate, Shared), (usize, usize)>,
    error: Option<std::io::Error>,
}

impl Printer {
    fn new(args: &ForecastArgs) -> Printer {
        let mut p = Printer {
            out: std::io::BufWriter::new(std::io::stdout()),
            leads: args.leads,
            json: args.json,
            emails: 0,
            calls: 0,
            per_day: BTreeMap::new(),
            error: None,
        };
        if p.leads && p.json {
            p.write(format_args!("["));
        } else if p.leads {
            p.write(format_args!(
                "{:<22} {:<26} {:<32} {:<20} {:>4}  template\n",
                "when (UTC)", "lead local time", "lead", "campaign", "step"
            ));
        }
        p
    }

    fn write(&mut self, args: std::fmt::Arguments<'_>) {
        if self.error.is_none()
            && let Err(e) = self.out.write_fmt(args)
        {
            self.error = Some(e);
        }
    }

    fn planned(&mut self, work: &Work, at: DateTime<Utc>, kind: Kind) {
        let first = self.emails + self.calls == 0;
        match kind {
            Kind::Email => self.emails += 1,
            Kind::Call => self.calls += 1,
        }
        if !self.leads {
            let counts = self
                .per_day
                .entry((at.date_naive(), work.campaign.clone()))
                .or_default();
            match kind {
                Kind::Email => counts.0 += 1,
                Kind::Call => counts.1 += 1,
            }
            return;
        }
        let p = Planned::new(work, at, kind);
        if self.json {
            let line = serde_json::to_string(&p).unwrap_or_default();
            let sep = if first { "\n  " } else { ",\n  " };
            self.write(format_args!("{sep}{line}"));
            return;
        }
        let template = if p.kind == "call" {
            "call task (no email)"
        } else {
            &p.template
        };
        self.write(format_args!(
            "{:<22} {:<26} {:<32} {:<20} {:>4}  {}\n",
            p.at.format("%Y-%m-%d %H:%M"),
            p.local,
            p.email,
            p.campaign,
            p.step,
            template
        ));
    }

    fn finish(mut self, args: &ForecastArgs, now: DateTime<Utc>) -> anyhow::Result<()> {
        let (emails, calls, days) = (self.emails, self.calls, args.days);
        match (self.leads, self.json) {
            (true, true) => {
                let end = if emails + calls == 0 { "]\n" } else { "\n]\n" };
                self.write(format_args!("{end}"));
            }
            (true, false) => self.write(format_args!(
                "{emails} email(s) and {calls} call task(s) in the next {days} day(s)\n"
            )),
            (false, true) => {
                let rows: Vec<_> = self
                    .per_day
                    .iter()
                    .map(|((day, campaign), (n, calls))| {
                        let day = day.format("%Y-%m-%d").to_string();
                        let mut row =
                            serde_json::json!({"day": day, "campaign": campaign.as_str(), "emails": n});
                        if *calls > 0 {
                            row["calls"] = serde_json::json!(calls);
                        }
                        row
                    })
                    .collect();
                let text = serde_json::to_string_pretty(&rows)?;
                self.write(format_args!("{text}\n"));
            }
            (false, false) => {
                let mut text = format!(
                    "{:<12} {:<24} {:>6} {:>6}\n",
                    "day (UTC)", "campaign", "emails", "calls"
                );
                for ((day, campaign), (n, c)) in &self.per_day {
                    let day = day.format("%Y-%m-%d").to_string();
                    text.push_str(&format!("{day:<12} {campaign:<24} {n:>6} {c:>6}\n"));
                }
                text.push_str(&format!(
                    "{emails} email(s) and {calls} call task(s) in the next {days} day(s) from {}\n",
                    now.format("%Y-%m-%d %H:%M UTC")
                ));
                self.write(format_args!("{text}"));
            }
        }
        if self.error.is_none()
            && let Err(e) = self.out.flush()
        {
            self.error = Some(e);
        }
        match self.error {
            Some(e) => Err(e).context("Failed to print the forecast"),
            None => Ok(()),
        }
    }
}
