//! `rewarm leads reassign --from OLD --to NEW [--name "New Name"] [--dry-run]`: a rep left,
//! every lead of theirs moves to another owner in one transaction (`Store::reassign`), one
//! `reassigned` event per lead. `rewarm leads owner-back EMAIL`: an owner marked gone (a
//! notification to them bounced) is back (`notify::owners::clear_gone`).

use std::process::ExitCode;

use chrono::{DateTime, Utc};

use crate::domain::email::EmailAddress;
use crate::store::Store;

pub async fn reassign<S: Store>(
    store: &S,
    from: &str,
    to: &str,
    name: Option<&str>,
    dry_run: bool,
    now: DateTime<Utc>,
) -> anyhow::Result<ExitCode> {
    let old = EmailAddress::parse(from)
        .map_err(|e| anyhow::anyhow!("--from `{from}` is not an email address: {e}"))?;
    let new = EmailAddress::parse(to)
        .map_err(|e| anyhow::anyhow!("--to `{to}` is not an email address: {e}"))?;
    if old == new {
        anyhow::bail!("--from and --to are the same owner ({old})");
    }
    let name = name.map(str::trim).filter(|n| !n.is_empty());
    let shown = name.map(|n| format!(" ({n})")).unwrap_or_default();
    let gone = crate::notify::owners::gone_among(store, [new.to_string()]).await?;
    if let Some(g) = gone.get(new.as_str()) {
        eprintln!(
            "warning: {new} is marked gone (a notification to them bounced on {}); their notifications go to notify.fallback_email until `rewarm leads owner-back {new}`",
            g.since.format("%Y-%m-%d")
        );
    }
    if dry_run {
        let n = store.count_owned(old.as_str()).await?;
        println!(
            "would reassign {n} lead(s) from {old} to {new}{shown} (dry run: nothing changed)"
        );
        return Ok(ExitCode::SUCCESS);
    }
    let reason = format!("reassigned from {old} to {new}");
    let done = store
        .reassign(old.as_str(), new.as_str(), name, &reason, now)
        .await?;
    println!(
        "reassigned {} lead(s) from {old} to {new}{shown}",
        done.leads
    );
    if done.leads == 0 {
        eprintln!("warning: {old} owns no lead");
    }
    Ok(ExitCode::SUCCESS)
}

/// Clears an owner's "gone" mark; exit 1 (nothing changed) if they are not marked gone.
pub async fn owner_back<S: Store>(
    store: &S,
    email: &str,
    by: &str,
    now: DateTime<Utc>,
) -> anyhow::Result<ExitCode> {
    let owner = EmailAddress::parse(email)
        .map_err(|e| anyhow::anyhow!("`{email}` is not an email address: {e}"))?;
    match crate::notify::owners::clear_gone(store, owner.as_str(), by, now).await? {
        Some(mark) => {
            println!(
                "{owner} is back: marked gone since {} ({}); their notifications go to them again",
                mark.since.format("%Y-%m-%d %H:%M UTC"),
                crate::notify::owners::describe(&mark.evidence)
            );
            Ok(ExitCode::SUCCESS)
        }
        None => {
            eprintln!("error: {owner} is not marked gone; nothing changed");
            Ok(ExitCode::FAILURE)
        }
    }
}
