//! `rewarm leads import FILE`, `rewarm leads show EMAIL`, `rewarm leads rewarmed`,
//! `rewarm leads recycle EMAIL`, `rewarm leads reassign` and `owner-back` (in `reassign.rs`),
//! `rewarm leads owners` (in `owners.rs`), and the
//! lifecycle commands (`won`, `out-of-scope`, `working`, `pause`, `resume`; in `lifecycle.rs`).

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context as _;
use chrono::{DateTime, Utc};

use super::lifecycle;
use super::with_store;
use crate::config::Settings;
use crate::domain::email::EmailAddress;
use crate::domain::lifecycle::Transition;
use crate::outbound::recycle::Recycled;
use crate::store::{Store, UpsertSummary};

#[derive(Debug, clap::Subcommand)]
pub enum LeadsCommand {
    /// Import leads from a CRM export (CSV) or JSON Lines; upsert by normalised email.
    Import {
        /// The file (.csv, .jsonl).
        file: PathBuf,
        /// Reject the whole file if any row is bad.
        #[arg(long)]
        strict: bool,
        /// Print what the import would do (inserted, updated, unchanged, rejected, skipped;
        /// the segment each new lead would enter), write nothing.
        #[arg(long)]
        dry_run: bool,
    },
    /// A lead's data and timeline: imported, enrolled, every email, every state change.
    Show {
        email: String,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Leads re-warmed (by a reply or their score) recently, newest first.
    Rewarmed {
        /// How far back ("7d", "2w", "3mo", "12h").
        #[arg(long, default_value = "7d")]
        since: String,
        /// Only leads of this owner (email, case-insensitive).
        #[arg(long)]
        owner: Option<String>,
        /// One JSON object per line instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Brings a lead back to nurture, its history intact (completed, re-warmed, won, out of
    /// scope, paused; suppressed once no entry covers it): the cadence it was on resumes
    /// where it stopped, not before `--after`, or it enters `--campaign` (or, with nothing to
    /// resume, a new round of its segment's campaign).
    Recycle {
        email: String,
        #[arg(long)]
        reason: String,
        /// Wait this long before the next email ("90d"; default: now).
        #[arg(long)]
        after: Option<String>,
        /// Enter this campaign (a new round if the lead was in it before) instead of
        /// resuming the cadence that was stopped.
        #[arg(long)]
        campaign: Option<String>,
    },
    /// Moves every lead of one owner to another (a rep left), one `reassigned` event per lead.
    Reassign {
        /// The owner who left (email, case-insensitive).
        #[arg(long)]
        from: String,
        /// The new owner (email).
        #[arg(long)]
        to: String,
        /// The new owner's name (default: none).
        #[arg(long)]
        name: Option<String>,
        /// Print how many leads would move, change nothing.
        #[arg(long)]
        dry_run: bool,
    },
    /// Every owner of a lead and every owner marked gone: leads per state, stale re-warms,
    /// since when and why an owner is gone; the leads without an owner last.
    Owners {
        /// Only the owners marked gone (a notification to them hard-bounced).
        #[arg(long)]
        gone: bool,
        /// One JSON object per line instead of text.
        #[arg(long)]
        json: bool,
    },
    /// An owner marked gone (a notification to them hard-bounced) is back: their
    /// notifications go to them again, not to `notify.fallback_email`.
    OwnerBack {
        /// The owner (email, case-insensitive).
        email: String,
        /// Who says so (kept with the record).
        #[arg(long, default_value = "cli")]
        by: String,
    },
    /// Sales closed it: everything stops (waiting emails cancelled, enrolments stopped).
    Won {
        email: String,
        /// Who says so (recorded on the event).
        #[arg(long, default_value = "cli")]
        by: String,
    },
    /// Not a fit: everything stops; with `--recheck-after` the daemon returns the lead to
    /// nurture at that time (event `recycled`, reason `recheck`).
    OutOfScope {
        email: String,
        /// Why (recorded on the lead and its event).
        #[arg(long)]
        reason: String,
        /// A span ("6mo", "12mo", "90d") or a date (2027-06-01, RFC 3339).
        #[arg(long)]
        recheck_after: Option<String>,
        #[arg(long, default_value = "cli")]
        by: String,
    },
    /// Sales is on it: the lead is handed to sales (re-warmed; its cadence stops).
    Working {
        email: String,
        #[arg(long, default_value = "cli")]
        by: String,
    },
    /// Hold everything: scheduled emails stay scheduled but are not sent until `resume`.
    Pause {
        email: String,
        #[arg(long, default_value = "cli")]
        by: String,
    },
    /// Continue a paused lead where it was (held emails that came due go out next pass).
    Resume {
        email: String,
        #[arg(long, default_value = "cli")]
        by: String,
    },
    /// Erase a person's data everywhere (right to erasure), keeping only a hashed entry so
    /// they are never imported or emailed again. Without `--yes`: says what it would erase.
    Forget {
        email: String,
        /// Erase it (this cannot be undone).
        #[arg(long, visible_alias = "force")]
        yes: bool,
        /// Who asked (recorded on the `forgotten` event).
        #[arg(long, default_value = "cli")]
        by: String,
    },
    /// Print everything held about a person as JSON (right of access): the lead, its
    /// timeline, and every row of every table about it.
    Export { email: String },
}

/// `now` minus a span ("7d", "3mo", "12h").
pub fn span_before(span: &str, now: DateTime<Utc>) -> anyhow::Result<DateTime<Utc>> {
    use crate::domain::cadence::Span;
    let span = Span::parse(span)?;
    let t = match span {
        Span::Fixed(d) => now.checked_sub_signed(d),
        Span::Days(n) => now.checked_sub_signed(chrono::Duration::days(i64::from(n))),
        Span::Months(n) => now.checked_sub_months(chrono::Months::new(n)),
    };
    t.context("the span reaches before the calendar starts")
}

/// Leads read per statement by `leads import --dry-run`; a file of fewer than five times this
/// many rows imports without a progress bar. (An import writes `LeadStore::IMPORT_CHUNK` per
/// transaction.)
pub(super) const CHUNK: usize = 5000;

pub struct ImportOutcome {
    pub summary: UpsertSummary,
    pub merged: usize,
    pub rejected: usize,
}

pub async fn leads(
    config: &Path,
    cmd: LeadsCommand,
    now: DateTime<Utc>,
) -> anyhow::Result<ExitCode> {
    let settings = Settings::load(config)?;
    with_store!(&settings.database_url, |store| {
        store.migrate().await?;
        match cmd {
            LeadsCommand::Import {
                file,
                strict,
                dry_run: true,
            } => super::import_dry_run::dry_run(&store, &settings, &file, strict, now).await,
            LeadsCommand::Import { file, strict, .. } => {
                let outcome = import_file(&store, &settings, &file, strict, now, false).await?;
                // 3 = imported, but some rows were rejected (scripts can tell).
                Ok(if outcome.rejected > 0 {
                    ExitCode::from(3)
                } else {
                    ExitCode::SUCCESS
                })
            }
            LeadsCommand::Show { email, json } => show(&store, &settings, &email, json, now).await,
            LeadsCommand::Rewarmed { since, owner, json } => {
                let since = span_before(&since, now)?;
                rewarmed(&store, since, owner.as_deref(), json).await
            }
            LeadsCommand::Recycle {
                email,
                reason,
                after,
                campaign,
            } => {
                let (after, campaign) = (after.as_deref(), campaign.as_deref());
                recycle(&store, &settings, &email, &reason, after, campaign, now).await
            }
            LeadsCommand::Reassign {
                from,
                to,
                name,
                dry_run,
            } => super::reassign::reassign(&store, &from, &to, name.as_deref(), dry_run, now).await,
            LeadsCommand::Owners { gone, json } => {
                super::owners::owners(&store, &settings, gone, json, now).await
            }
            LeadsCommand::OwnerBack { email, by } => {
                super::reassign::owner_back(&store, &email, &by, now).await
            }
            LeadsCommand::Won { email, by } => {
                lifecycle::apply(&store, &settings, &email, Transition::Won, &by, now).await
            }
            LeadsCommand::OutOfScope {
                email,
                reason,
                recheck_after,
                by,
            } => {
                let recheck_at = recheck_after
                    .as_deref()
                    .map(|r| lifecycle::recheck_at(r, now, settings.default_tz))
                    .transpose()?;
                let t = Transition::OutOfScope { reason, recheck_at };
                lifecycle::apply(&store, &settings, &email, t, &by, now).await
            }
            LeadsCommand::Working { email, by } => {
                lifecycle::apply(&store, &settings, &email, Transition::Working, &by, now).await
            }
            LeadsCommand::Pause { email, by } => {
                lifecycle::apply(&store, &settings, &email, Transition::Pause, &by, now).await
            }
            LeadsCommand::Resume { email, by } => {
                lifecycle::apply(&store, &settings, &email, Transition::Resume, &by, now).await
            }
            LeadsCommand::Forget { email, yes, by } => {
                super::privacy::forget(&store, &email, &by, yes, now).await
            }
            LeadsCommand::Export { email } => super::privacy::export(&store, &email).await,
        }
    })
}

/// Reads `file` twice (`ingest::chunks`): first checks every row and reports the bad ones
/// (file:line: field: reason) — with `strict`, one bad row rejects the whole file and
/// nothing is written — then upserts the leads in chunks of `S::IMPORT_CHUNK`, one transaction
/// each, with a progress bar. The second pass runs on its own thread while the database
/// writes.
pub async fn import_file<S: Store>(
    store: &S,
    settings: &Settings,
    file: &Path,
    strict: bool,
    now: DateTime<Utc>,
    quiet: bool,
) -> anyhow::Result<ImportOutcome> {
    let (scan, rules) = super::import_dry_run::first_pass(settings, file, now, quiet)?;
    let rejected = scan.rejected;
    if strict && rejected > 0 {
        anyhow::bail!(
            "{}: {rejected} bad row(s); nothing was imported (--strict)",
            file.display()
        );
    }
    let bar = if quiet || scan.accepted + rejected < 5 * CHUNK {
        indicatif::ProgressBar::hidden()
    } else {
        indicatif::ProgressBar::new((scan.accepted + rejected) as u64)
    };
    let forgotten = crate::store::Forgotten::load(store)
        .await
        .context("Failed to read the forgotten addresses")?;
    let chunks = scan.chunks(&rules, &settings.import, S::IMPORT_CHUNK)?;
    let (mut rx, pass) = super::import_dry_run::second_pass(chunks);
    let source = file.display().to_string();
    let mut summary = UpsertSummary::default();
    let mut forgotten_count = 0;
    while let Some(chunk) = rx.recv().await {
        let chunk = chunk?;
        super::import_dry_run::report_notes(&chunk.notes, quiet);
        let (leads, left_out) = forgotten.split(chunk.leads);
        for email in &left_out {
            eprintln!("skipped {email}: forgotten (`leads forget`), never imported again");
        }
        forgotten_count += left_out.len();
        let s = store
            .upsert_leads(&leads, &source, now)
            .await
            .with_context(|| format!("Failed to write leads from {source}"))?;
        summary.inserted += s.inserted;
        summary.updated += s.updated;
        summary.unchanged += s.unchanged;
        bar.inc(chunk.rows as u64);
    }
    let totals = pass.await.context("the import's reading thread failed")?;
    bar.finish_and_clear();
    if !quiet {
        let skipped = super::import_dry_run::skipped_note(forgotten_count, totals.skipped);
        println!(
            "{source}: inserted {}, updated {}, unchanged {}, merged {} duplicate row(s), rejected {rejected}{skipped}",
            summary.inserted, summary.updated, summary.unchanged, totals.merged,
        );
    }
    Ok(ImportOutcome {
        summary,
        merged: totals.merged,
        rejected,
    })
}

async fn show<S: Store>(
    store: &S,
    settings: &Settings,
    email: &str,
    json: bool,
    now: DateTime<Utc>,
) -> anyhow::Result<ExitCode> {
    let email = EmailAddress::parse(email)?;
    let Some(lead) = store.lead_by_email(&email).await? else {
        eprintln!("no lead with email {email}");
        return Ok(ExitCode::FAILURE);
    };
    let timeline = store.timeline(lead.id).await?;
    if json {
        let lifecycle = store.lead_lifecycle(lead.id).await?.unwrap_or_default();
        println!(
            "{}",
            serde_json::to_string_pretty(
                &serde_json::json!({"lead": lead, "lifecycle": lifecycle, "timeline": timeline})
            )?
        );
        return Ok(ExitCode::SUCCESS);
    }
    let tz = lead.zone_or(settings.default_tz);
    let opt = |v: &Option<String>| v.clone().unwrap_or_else(|| "-".into());
    println!("{} ({})", lead.email, lead.state.as_str());
    println!(
        "  name: {} {}   company: {}   title: {}",
        opt(&lead.first_name),
        opt(&lead.last_name),
        opt(&lead.company),
        opt(&lead.title)
    );
    println!(
        "  owner: {} <{}>",
        opt(&lead.owner_name),
        opt(&lead.owner_email)
    );
    println!(
        "  lost: {} on {}   time zone: {}",
        opt(&lead.lost_reason),
        lead.lost_at
            .map(|t| t.with_timezone(&tz).format("%Y-%m-%d").to_string())
            .unwrap_or_else(|| "-".into()),
        tz.name()
    );
    if let Some(held) = store.lead_lifecycle(lead.id).await? {
        if let Some(reason) = &held.scope_reason {
            let recheck = held.recheck_at.map_or_else(
                || "no re-check date".to_string(),
                |t| format!("re-check {}", t.with_timezone(&tz).format("%Y-%m-%d")),
            );
            println!("  out of scope: {reason} ({recheck})");
        }
        if let Some(from) = held.paused_from {
            println!("  paused (resumes as {})", from.as_str());
        }
    }
    if !lead.tags.is_empty() {
        println!("  tags: {}", lead.tags.join(", "));
    }
    for (k, v) in &lead.fields {
        println!("  {k}: {v}");
    }
    show_cadence(store, settings, &lead, &timeline, now).await?;
    println!("timeline:");
    for event in timeline {
        let detail = match &event.detail {
            serde_json::Value::Object(map) => map
                .iter()
                // A score's signals get a line each, below.
                .filter(|(k, _)| k.as_str() != "signals")
                .map(|(k, v)| match v {
                    serde_json::Value::String(s) => format!("{k}={s}"),
                    other => format!("{k}={other}"),
                })
                .collect::<Vec<_>>()
                .join(" "),
            other => other.to_string(),
        };
        println!(
            "  {}  {:<18} {detail}",
            event.at.format("%Y-%m-%d %H:%M:%SZ"),
            event.kind
        );
        for line in crate::domain::signal::describe(&event.detail["signals"]) {
            println!("{:<26}made of: {line}", "");
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `leads show`'s cadence lines: score, current step, the next email (or why none), and
/// every step with its outcome (cancelled ones included), as `explain` words them.
async fn show_cadence<S: Store>(
    store: &S,
    settings: &Settings,
    lead: &crate::domain::lead::Lead,
    timeline: &[crate::store::Event],
    now: DateTime<Utc>,
) -> anyhow::Result<()> {
    use crate::outbound::explain;
    let deliveries = store.lead_deliveries(lead.id).await?;
    let paused = store.paused_campaigns().await?;
    let facts = explain::Facts {
        settings,
        lead,
        lifecycle: store.lead_lifecycle(lead.id).await?.unwrap_or_default(),
        deliveries: &deliveries,
        timeline,
        paused: &paused,
        score: store.score(lead.id).await?,
        suppressed: None,
        versions: explain::Versions::default(),
        now,
    };
    let current = facts.waiting().or(deliveries.last()).map_or_else(
        || "none".to_string(),
        |d| {
            format!(
                "{} step {} of {}",
                d.campaign,
                d.step + 1,
                settings
                    .campaigns
                    .get(&d.campaign)
                    .map_or(0, |c| c.cadence.max_touches)
            )
        },
    );
    println!("  score: {}   current step: {current}", facts.score);
    if let Some(next) = explain::next(&facts).first() {
        println!("  {next}");
    }
    if !deliveries.is_empty() {
        println!("steps:");
        for line in explain::steps(&facts) {
            println!("  {line}");
        }
    }
    Ok(())
}

/// Prints the leads re-warmed since `since` (text table, or JSON lines).
pub async fn rewarmed<S: Store>(
    store: &S,
    since: DateTime<Utc>,
    owner: Option<&str>,
    json: bool,
) -> anyhow::Result<ExitCode> {
    let leads = store.leads_rewarmed(since, owner).await?;
    for (lead, at) in &leads {
        if json {
            println!("{}", serde_json::json!({"rewarmed_at": at, "lead": lead}));
        } else {
            let name = [lead.first_name.as_deref(), lead.last_name.as_deref()]
                .into_iter()
                .flatten()
                .collect::<Vec<_>>()
                .join(" ");
            println!(
                "{}  {}  {}  {}  owner: {}",
                at.format("%Y-%m-%d %H:%M"),
                lead.email,
                if name.is_empty() { "-" } else { &name },
                lead.company.as_deref().unwrap_or("-"),
                lead.owner_email.as_deref().unwrap_or("-"),
            );
        }
    }
    if !json {
        eprintln!(
            "{} lead(s) re-warmed since {}",
            leads.len(),
            since.format("%Y-%m-%d %H:%M UTC")
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// Brings a lead back to nurture (see `outbound::recycle`).
pub async fn recycle<S: Store>(
    store: &S,
    settings: &Settings,
    email: &str,
    reason: &str,
    after: Option<&str>,
    campaign: Option<&str>,
    now: DateTime<Utc>,
) -> anyhow::Result<ExitCode> {
    let email = EmailAddress::parse(email)?;
    let lead = store
        .lead_by_email(&email)
        .await?
        .with_context(|| format!("no lead {email}"))?;
    let resume_at = match after {
        Some(a) => {
            crate::domain::cadence::Span::parse(a)?.after(now, lead.zone_or(settings.default_tz))
        }
        None => now,
    };
    let done = crate::outbound::recycle::bring_back(
        store, settings, &lead, reason, resume_at, campaign, now,
    )
    .await
    .with_context(|| format!("Failed to recycle {email}"))?;
    match done {
        Recycled::Back {
            from,
            to,
            campaign,
            next,
        } => {
            let into = campaign.map(|c| format!(" into {c}")).unwrap_or_default();
            println!(
                "{email}: {} → {}{into} (next email not before {})",
                from.as_str(),
                to.as_str(),
                next.format("%Y-%m-%d %H:%M UTC")
            );
            Ok(ExitCode::SUCCESS)
        }
        Recycled::Refused(why) => {
            eprintln!("error: {why}");
            Ok(ExitCode::FAILURE)
        }
    }
}
