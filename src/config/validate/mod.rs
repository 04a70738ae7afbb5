//! Validation: the raw file shapes become [`Settings`], one validator per section. Every
//! validator notes each problem it finds in [`Problems`] with the key at fault and carries on
//! with a placeholder value, so one run reports every mistake in the file, not just the first.

mod calendar;
mod campaigns;
mod console;
mod http;
mod import;
mod inbound;
mod intents;
mod notify;
mod scheduler;
mod segments;
mod sender;
mod transport;

use std::path::PathBuf;
use std::str::FromStr;

use chrono_tz::Tz;

use super::raw::{RawConfig, RawLog};
use super::{ConfigErrors, LogFormat, LogSettings, Problems, Settings};

/// Validates every section, in file order; all problems or the settings.
pub(super) fn settings(raw: RawConfig, file: String) -> Result<Settings, ConfigErrors> {
    let mut problems = Problems::new(&file);
    let p = &mut problems;
    let default_tz = time_zone(&raw.default_timezone, p);
    database_url(&raw.database_url, p);
    let log = log(raw.log, p);
    let sender = sender::sender(raw.sender, p);
    let (transport, mut limits, breaker) = transport::transport(raw.transport, p);
    let scheduler = scheduler::scheduler(raw.scheduler, p);
    if let Some(limits) = &mut limits {
        limits.pass_interval = scheduler.tick;
    }
    let http = http::http(raw.http, p);
    let console = console::console(raw.console, p);
    let max_field_length = raw
        .ingest
        .max_field_length
        .unwrap_or(crate::ingest::DEFAULT_MAX_FIELD_LENGTH);
    if max_field_length == 0 {
        p.err("ingest.max_field_length", "must be at least 1".into());
    }
    let import = import::import(raw.import, p);
    let compliance = sender::compliance(raw.compliance, p);
    let token_keys = sender::token_keys(raw.tokens, p);
    let dkim = raw.dkim.map(|d| sender::dkim(d, p));
    let inbound = inbound::inbound(raw.inbound, p);
    let scoring = inbound::scoring(raw.scoring, p);
    let notify = notify::notify(raw.notify, p);
    let intents = intents::intents(raw.intents, p);
    let mut campaigns = campaigns::campaigns(raw.campaigns, p);
    calendar::calendar(raw.calendars, raw.blackouts, &mut campaigns, p);
    let segments = segments::segments(raw.segments, &campaigns, p);
    problems.into_result()?;
    Ok(Settings {
        file: PathBuf::from(file),
        database_url: raw.database_url,
        default_tz,
        templates_dir: raw.templates_dir,
        log,
        sender,
        transport,
        limits,
        breaker,
        scheduler,
        http,
        console,
        max_field_length: max_field_length.max(1),
        import,
        compliance,
        token_keys,
        dkim,
        inbound,
        scoring,
        notify,
        intents,
        segments,
        campaigns,
    })
}

fn time_zone(name: &str, p: &mut Problems) -> Tz {
    Tz::from_str(name).unwrap_or_else(|_| {
        p.err(
            "default_timezone",
            format!(
                "unknown time zone `{}` (use an IANA name like Europe/Paris)",
                name
            ),
        );
        Tz::UTC
    })
}

fn database_url(url: &str, p: &mut Problems) {
    if !(url.starts_with("sqlite:")
        || url.starts_with("postgres:")
        || url.starts_with("postgresql:"))
    {
        p.err(
            "database_url",
            format!("`{}` is neither sqlite://… nor postgres://…", url),
        );
    }
}

fn log(raw: RawLog, p: &mut Problems) -> LogSettings {
    LogSettings {
        format: match raw.format.as_str() {
            "text" => LogFormat::Text,
            "json" => LogFormat::Json,
            other => {
                p.err(
                    "log.format",
                    format!("`{other}` is not a log format (text or json)"),
                );
                LogFormat::Text
            }
        },
        level: raw.level,
    }
}
