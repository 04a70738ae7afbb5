//! `rewarm status`: leads per state and campaign, deliveries today, whether the transport
//! is paused (as the daemon last recorded it), and the daily caps' use of their rolling 24
//! hours (as every daemon on the database counted it).

use std::path::Path;
use std::process::ExitCode;

use anyhow::Context as _;
use chrono::{DateTime, Utc};

use super::with_store;
use crate::config::Settings;
use crate::outbound::pause::{TransportHealth, read_health};
use crate::store::{QueueStore as _, Store};
use crate::transport::limits::durable::{self, CapUsage, Usage};

#[derive(Debug, clap::Args)]
pub struct StatusArgs {
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
}

pub async fn status(
    config: &Path,
    args: StatusArgs,
    now: DateTime<Utc>,
) -> anyhow::Result<ExitCode> {
    let settings = Settings::load(config)?;
    let since = now
        .date_naive()
        .and_hms_opt(0, 0, 0)
        .map(|t| t.and_utc())
        .unwrap_or(now);
    let (report, transport, limits, unknown, paused) =
        with_store!(&settings.database_url, |store| {
            store.migrate().await?;
            let report = store
                .status(since, now)
                .await
                .context("Failed to read the status")?;
            let transport = read_health(&store)
                .await
                .context("Failed to read the transport's state")?;
            let limits = match &settings.limits {
                Some(limits) => Some(
                    durable::usage(&store, limits, now, durable::BUSIEST)
                        .await
                        .context("Failed to read the daily caps' use")?,
                ),
                None => None,
            };
            let unknown = store
                .unknown_deliveries(UNKNOWN_LISTED)
                .await
                .context("Failed to list the deliveries written off")?;
            let paused = crate::store::HoldStore::paused_campaigns(&store)
                .await
                .context("Failed to read the paused campaigns")?;
            (report, transport, limits, unknown, paused)
        });
    if args.json {
        let mut json = serde_json::to_value(&report)?;
        json["transport"] = serde_json::to_value(&transport)?;
        json["limits"] = serde_json::to_value(&limits)?;
        json["unknown_deliveries"] = serde_json::to_value(&unknown)?;
        json["paused_campaigns"] = serde_json::to_value(&paused)?;
        println!("{}", serde_json::to_string_pretty(&json)?);
        return Ok(ExitCode::SUCCESS);
    }
    print_transport(transport.as_ref());
    if let Some(limits) = &limits {
        print_limits(limits);
    }
    println!("leads:");
    for (state, n) in &report.leads_by_state {
        // The states sales sets (won, out of scope, paused) are listed once they are used;
        // `--json` always has every state.
        if *n == 0 && matches!(state.as_str(), "won" | "out_of_scope" | "paused") {
            continue;
        }
        println!("  {state:<12} {n}");
    }
    println!("campaigns (enrolments):");
    for (campaign, states) in &report.enrolments {
        let parts: Vec<String> = states.iter().map(|(s, n)| format!("{s} {n}")).collect();
        println!("  {campaign:<24} {}", parts.join(", "));
    }
    for p in &paused {
        println!(
            "  {:<24} PAUSED since {} by {} (`rewarm campaigns resume {}`)",
            p.name,
            p.paused_at.format("%Y-%m-%d %H:%M UTC"),
            p.paused_by,
            p.name
        );
    }
    println!(
        "deliveries today (since {}):",
        since.format("%Y-%m-%d 00:00 UTC")
    );
    println!(
        "  sent {}   failed {}   unknown {}",
        report.sent_since, report.failed_since, report.unknown_since
    );
    println!("  due now and not yet sent: {}", report.due_now);
    print_unknown(&unknown, report.deliveries_by_state.get("unknown").copied());
    let classes: Vec<String> = report
        .inbound_since
        .iter()
        .map(|(c, n)| format!("{c} {n}"))
        .collect();
    println!(
        "inbound today: {}",
        if classes.is_empty() {
            "none".to_string()
        } else {
            classes.join(", ")
        }
    );
    println!(
        "  unmatched, kept for review (rewarm inbound list --unmatched): {}",
        report.inbound_unmatched
    );
    let outbox = |state: &str| {
        report
            .notifications_by_state
            .get(state)
            .copied()
            .unwrap_or(0)
    };
    println!(
        "notifications to sales: pending {}   sent {}   failed {}",
        outbox("pending") + outbox("claimed"),
        outbox("sent"),
        outbox("failed")
    );
    Ok(ExitCode::SUCCESS)
}

/// How many deliveries written off `status` lists (the newest first).
const UNKNOWN_LISTED: usize = 1000;

/// Every delivery `unknown` (never resent): whose, which step, since when.
fn print_unknown(unknown: &[crate::store::UnknownDelivery], total: Option<i64>) {
    if unknown.is_empty() {
        return;
    }
    println!("unknown (may or may not have been sent; never resent), newest first:");
    for u in unknown {
        println!(
            "  {}  {} step {} of {}",
            u.at.format("%Y-%m-%d %H:%M:%S UTC"),
            u.email,
            u.step,
            u.campaign
        );
    }
    let total = total.unwrap_or(0);
    if total > unknown.len() as i64 {
        println!(
            "  … and {} older (rewarm status --json, or rewarm leads show EMAIL)",
            total - unknown.len() as i64
        );
    }
}

/// `transport: PAUSED since … (auth): …; next probe at …` while the daemon last recorded
/// its transport paused; nothing otherwise (`--json` always has a `transport` field).
fn print_transport(health: Option<&TransportHealth>) {
    match health {
        Some(h) if h.paused => {
            let at =
                |t: Option<chrono::DateTime<Utc>>| t.map(|t| t.to_rfc3339()).unwrap_or_default();
            println!(
                "transport: PAUSED since {} ({}): {}; next probe at {} (worker {}; deliveries keep their attempts)",
                at(h.since),
                h.reason.as_deref().unwrap_or("?"),
                h.detail.as_deref().unwrap_or(""),
                at(h.next_probe),
                h.worker
            );
        }
        _ => {}
    }
}

/// The daily caps: the transport's use of its rolling 24 hours against its cap, then the
/// domains with a budget and the busiest ones.
fn print_limits(usage: &Usage) {
    let of = |u: &CapUsage| match u.cap {
        Some(cap) if u.used >= cap as i64 => format!("{} of {cap} (full)", u.used),
        Some(cap) => format!("{} of {cap}", u.used),
        None => u.used.to_string(),
    };
    println!("sending limits (rolling 24 h, every daemon on this database):");
    let sent = format!("{} sent", usage.transport.used);
    println!(
        "  transport: {}",
        of(&usage.transport).replacen(&usage.transport.used.to_string(), &sent, 1)
    );
    if !usage.domains.is_empty() {
        let domains: Vec<String> = usage
            .domains
            .iter()
            .map(|d| format!("{} {}", d.key, of(d)))
            .collect();
        println!("  domains: {}", domains.join(", "));
    }
}
