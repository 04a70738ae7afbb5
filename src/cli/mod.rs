//! The command line: one file per command group. Every command takes `--config FILE`.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use chrono::{DateTime, Utc};
use clap::{Parser, Subcommand};

use crate::store::StoreError;
use crate::store::sqlite::SqliteStore;

mod campaigns;
mod check;
mod console;
pub mod db;
mod explain;
mod forecast;
mod import_dry_run;
pub mod inbound;
pub mod leads;
mod lifecycle;
mod owners;
mod plan;
mod preview;
mod privacy;
mod reassign;
mod report;
mod run;
mod status;
mod suppress;

#[derive(Debug, Parser)]
#[command(
    name = "rewarm",
    version,
    about = "Brings failed sales leads back to life: timed re-engagement emails, replies, hand-back to sales."
)]
pub struct Cli {
    /// The config file (TOML); `REWARM__SECTION__KEY` environment variables override it.
    #[arg(
        long,
        short,
        global = true,
        default_value = "config/rewarm.toml",
        env = "REWARM_CONFIG"
    )]
    pub config: PathBuf,
    /// Act as if the clock stood at this time (RFC 3339 like 2026-03-02T09:00:00Z, or a date,
    /// midnight UTC): for dry runs, tests and walkthroughs. Every command takes it; the daemon's
    /// clock starts there and runs on, `run --once` and the other commands stand still at it.
    #[arg(long, global = true, value_parser = parse_now)]
    pub now: Option<DateTime<Utc>>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the daemon: enrol, claim what is due, render, send, record — every tick.
    Run(run::RunArgs),
    /// Validate the config and the templates, and that every secret it names is set
    /// (`--offline`: not the secrets); non-zero exit on any error.
    Check(check::CheckArgs),
    /// What this config would do to the leads in flight, compared with the campaigns the
    /// daemon applied: steps cancelled, re-timed, re-templated, leads moved or parked.
    Plan(plan::PlanArgs),
    /// Show a step's email for a lead exactly as it would be sent.
    Preview(preview::PreviewArgs),
    /// What will be sent when, per day and campaign (or per lead), without sending.
    Forecast(forecast::ForecastArgs),
    /// Import leads, show a lead's timeline.
    #[command(subcommand)]
    Leads(leads::LeadsCommand),
    /// Leads per state and campaign, deliveries sent and failed today.
    Status(status::StatusArgs),
    /// What the campaigns did: enrolled → emailed → replied → re-warmed → won, per campaign,
    /// segment, owner or month, and the time from loss to re-warm.
    Report(report::ReportArgs),
    /// Apply database migrations (the daemon also applies them at start).
    Migrate,
    /// Database tools: copy a whole deployment from one database to another.
    #[command(subcommand)]
    Db(db::DbCommand),
    /// The global suppression list: addresses and whole domains that are never emailed.
    #[command(subcommand)]
    Suppress(suppress::SuppressCommand),
    /// Inbound mail: replay saved messages; list and show the ones kept (matched or not).
    #[command(subcommand)]
    Inbound(inbound::InboundCommand),
    /// Pause and resume whole campaigns (their waiting emails are held, not dropped).
    #[command(subcommand)]
    Campaigns(campaigns::CampaignsCommand),
    /// A lead's story in plain words: segment, campaign, next email and why then, what
    /// stopped it and what would bring it back.
    Explain(explain::ExplainArgs),
    /// The web console's users: invite someone with a role (emails a sign-in link).
    #[command(subcommand)]
    Console(console::ConsoleCommand),
}

pub fn main() -> ExitCode {
    quiet_on_closed_stdout();
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(dispatch(cli)) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e}");
            for cause in e.chain().skip(1) {
                eprintln!("  caused by: {cause}");
            }
            ExitCode::FAILURE
        }
    }
}

/// `rewarm leads rewarmed | head` must end quietly when `head` has read enough: `println!`
/// panics on a closed stdout (Rust ignores SIGPIPE, so the write fails with EPIPE). That one
/// panic ends the process like SIGPIPE would for any Unix tool, silently; every other panic
/// is reported as usual. Sockets are not stdout: the daemon's connections are unaffected.
fn quiet_on_closed_stdout() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let message = info
            .payload()
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| info.payload().downcast_ref::<&str>().copied())
            .unwrap_or("");
        if message.starts_with("failed printing to stdout") && message.contains("Broken pipe") {
            std::process::exit(141); // 128 + SIGPIPE, what a shell reports for `yes | head`
        }
        default(info);
    }));
}

async fn dispatch(cli: Cli) -> anyhow::Result<ExitCode> {
    // One-shot commands read the time once: `--now`, or the wall clock.
    let now = cli.now.unwrap_or_else(Utc::now);
    if !matches!(cli.command, Command::Run(_)) {
        crate::store::sqlite::read_as_one_shot();
    }
    match cli.command {
        Command::Run(args) => run::run(&cli.config, args, cli.now).await,
        Command::Check(args) => check::check(&cli.config, args, now).await,
        Command::Plan(args) => plan::run(&cli.config, args, now).await,
        Command::Preview(args) => preview::preview(&cli.config, args, now).await,
        Command::Forecast(args) => forecast::forecast(&cli.config, args, now).await,
        Command::Leads(cmd) => leads::leads(&cli.config, cmd, now).await,
        Command::Status(args) => status::status(&cli.config, args, now).await,
        Command::Report(args) => report::report(&cli.config, args, now).await,
        Command::Migrate => {
            let settings = crate::config::Settings::load(&cli.config)?;
            with_store!(&settings.database_url, |store| {
                crate::store::Store::migrate(&store).await
            })?;
            println!(
                "migrations applied to {}",
                redact_url(&settings.database_url)
            );
            Ok(ExitCode::SUCCESS)
        }
        Command::Db(cmd) => db::db(cmd).await,
        Command::Suppress(cmd) => suppress::suppress(&cli.config, cmd, now).await,
        Command::Inbound(cmd) => inbound::inbound(&cli.config, cmd, now).await,
        Command::Campaigns(cmd) => campaigns::campaigns(&cli.config, cmd, now).await,
        Command::Explain(args) => explain::run(&cli.config, args, now).await,
        Command::Console(cmd) => console::console(&cli.config, cmd, now).await,
    }
}

/// Opens the store named by `url` and runs `body` with it (generic over the backend).
#[macro_export]
macro_rules! with_store {
    ($url:expr, |$store:ident| $body:expr) => {{
        let url: &str = $url;
        if url.starts_with("sqlite:") {
            $crate::cli::with_store!(@open $crate::store::sqlite::SqliteStore, url, |$store| $body)
        } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
            $crate::cli::with_store!(@open $crate::store::postgres::PgStore, url, |$store| $body)
        } else {
            return Err(anyhow::Error::from(
                $crate::store::StoreError::UnsupportedUrl(url.to_string()),
            ));
        }
    }};
    // One backend: open, run the body, close (see `close_store`).
    (@open $backend:path, $url:ident, |$store:ident| $body:expr) => {{
        let $store = <$backend>::connect($url).await.with_context(|| {
            format!(
                "Failed to open the database {}",
                $crate::cli::redact_url($url)
            )
        })?;
        let closing = $store.clone();
        let result = $body;
        $crate::cli::close_store(closing.close()).await;
        result
    }};
}
pub(crate) use with_store;

/// Closes the store when a command is done (`with_store!`): SQLite's last connection out
/// checkpoints the WAL and removes it, so the next command opens a clean file instead of
/// first reading back what this one wrote (after a 100k send pass, 135 MB: `status` took
/// 0.32 s instead of 0.08 s). Bounded: a connection still held somewhere never keeps the
/// process from exiting (SQLite then recovers the WAL on the next open, as after a crash).
pub async fn close_store(close: impl std::future::Future<Output = ()>) {
    if tokio::time::timeout(std::time::Duration::from_secs(30), close)
        .await
        .is_err()
    {
        tracing::warn!("The database did not close within 30 s; its next opening recovers its log");
    }
}

/// `url` with its password (if any) replaced by `[redacted]`, for messages and logs:
/// `postgres://rewarm:secret@db/rewarm` → `postgres://rewarm:[redacted]@db/rewarm`.
pub fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(authority_end);
    match authority.rsplit_once('@') {
        Some((userinfo, host)) => match userinfo.split_once(':') {
            Some((user, _password)) => format!("{scheme}://{user}:[redacted]@{host}{tail}"),
            None => url.to_string(),
        },
        None => url.to_string(),
    }
}

/// Opens and migrates the SQLite store (used where only SQLite applies).
#[allow(dead_code)]
pub(crate) async fn open_sqlite(url: &str) -> Result<SqliteStore, StoreError> {
    let store = SqliteStore::connect(url).await?;
    crate::store::Store::migrate(&store).await?;
    Ok(store)
}

/// Parses `--now` values: RFC 3339 (`2026-03-02T09:00:00Z`) or a date (`2026-03-02`, midnight UTC).
pub fn parse_now(s: &str) -> Result<DateTime<Utc>, String> {
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Ok(t.with_timezone(&Utc));
    }
    chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d")
        .ok()
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .map(|t| t.and_utc())
        .ok_or_else(|| format!("`{s}` is not a time: use RFC 3339 like 2026-03-02T09:00:00Z or a date like 2026-03-02"))
}

/// Starts logging per the config (`RUST_LOG` wins over `log.level`).
pub fn init_logging(settings: &crate::config::Settings) {
    use tracing_subscriber::EnvFilter;
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(&settings.log.level));
    use std::io::IsTerminal as _;
    // Colours only on a terminal: journald, files and pipes get plain text.
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr);
    let _ = match settings.log.format {
        crate::config::LogFormat::Json => builder.json().try_init(),
        crate::config::LogFormat::Text => builder.try_init(),
    };
}
