//! `rewarm leads forget EMAIL [--yes]` and `rewarm leads export EMAIL`: a person's right to
//! erasure and to a copy of their data (see docs/compliance.md, and `store/privacy.rs` for
//! what is erased where).
//!
//! Forgetting cannot be undone: without `--yes` the command only says what it would erase
//! (rows per table) and changes nothing, like `suppress add` for a broad domain.

use std::process::ExitCode;

use anyhow::Context as _;
use chrono::{DateTime, Utc};
use serde_json::json;

use crate::domain::email::EmailAddress;
use crate::domain::privacy::placeholder_email;
use crate::store::Store;

/// The keyed hash of `email` under this database's pepper (created on first use).
async fn hash_of<S: Store>(store: &S, email: &EmailAddress) -> anyhow::Result<String> {
    crate::outbound::actions::forgotten_hash(store, email)
        .await
        .context("Failed to read the key of forgotten addresses")
}

/// `leads forget`.
pub async fn forget<S: Store>(
    store: &S,
    email: &str,
    by: &str,
    yes: bool,
    now: DateTime<Utc>,
) -> anyhow::Result<ExitCode> {
    let email = EmailAddress::parse(email)?;
    let hash = hash_of(store, &email).await?;
    let lead = store.lead_by_email(&email).await?;
    let already = store.forgotten_hashes().await?.contains(&hash);
    let rows = store
        .personal_rows(&email, lead.as_ref().map(|l| l.id))
        .await
        .context("Failed to look for the address's data")?;
    if lead.is_none() && rows.mentions.is_empty() && already {
        println!("{email} is already forgotten: nothing is held about it");
        return Ok(ExitCode::SUCCESS);
    }
    if !yes {
        let what = match &lead {
            Some(l) => format!("lead {} ({})", l.id, l.state.as_str()),
            None => "no lead, only mentions".to_string(),
        };
        let counts: Vec<String> = rows
            .counts()
            .iter()
            .map(|(t, n)| format!("{t} {n}"))
            .collect();
        eprintln!(
            "would forget {email}: {what}; rows holding its data: {}",
            if counts.is_empty() {
                "none".to_string()
            } else {
                counts.join(", ")
            }
        );
        eprintln!("nothing was changed: this cannot be undone; run again with --yes to erase it");
        return Ok(ExitCode::FAILURE);
    }
    let report = store
        .forget(&email, &hash, by, now)
        .await
        .with_context(|| format!("Failed to forget {email}; nothing was changed"))?;
    match report.lead_id {
        Some(id) => println!(
            "forgot {email}: lead {id} ({} → suppressed) is now {}; erased events {}, inbound messages {}, notifications {}, suppression entries {}; rows scrubbed {}",
            report.from.map_or("-", |s| s.as_str()),
            placeholder_email(id),
            report.events,
            report.inbound,
            report.notifications,
            report.suppressions,
            report.rows_scrubbed
        ),
        None => println!(
            "forgot {email} (no lead): suppression entries {}, rows scrubbed {}",
            report.suppressions, report.rows_scrubbed
        ),
    }
    println!("a hashed entry keeps it from being imported or emailed again");
    Ok(ExitCode::SUCCESS)
}

/// `leads export`: everything held about the address, as one JSON document.
pub async fn export<S: Store>(store: &S, email: &str) -> anyhow::Result<ExitCode> {
    let email = EmailAddress::parse(email)?;
    let lead = store.lead_by_email(&email).await?;
    let forgotten = match store.forgotten_hashes().await? {
        hashes if hashes.is_empty() => false,
        hashes => hashes.contains(&hash_of(store, &email).await?),
    };
    let (lifecycle, timeline, score) = match &lead {
        Some(l) => (
            store.lead_lifecycle(l.id).await?,
            store.timeline(l.id).await?,
            Some(store.score(l.id).await?),
        ),
        None => (None, Vec::new(), None),
    };
    let suppression = store.suppression_for(&email).await?;
    let rows = store
        .personal_rows(&email, lead.as_ref().map(|l| l.id))
        .await
        .context("Failed to read the address's data")?;
    let doc = json!({
        "email": email.as_str(),
        "forgotten": forgotten,
        "lead": lead,
        "lifecycle": lifecycle,
        "score": score,
        "suppression": suppression,
        "timeline": timeline,
        "rows": rows.by_lead,
        "mentions": rows.mentions,
    });
    println!("{}", serde_json::to_string_pretty(&doc)?);
    if lead.is_none() && rows.mentions.is_empty() {
        eprintln!("nothing is held about {email}");
    }
    Ok(ExitCode::SUCCESS)
}
