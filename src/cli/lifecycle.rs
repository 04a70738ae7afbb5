//! `rewarm leads won|out-of-scope|working|pause|resume EMAIL`: what sales (or an operator)
//! says about a lead, applied through `LeadStore::set_lifecycle` (see `domain::lifecycle` for
//! which state may go where).

use std::process::ExitCode;

use anyhow::Context as _;
use chrono::{DateTime, NaiveDate, Utc};
use chrono_tz::Tz;

use crate::config::Settings;
use crate::domain::cadence::Span;
use crate::domain::email::EmailAddress;
use crate::domain::lifecycle::Transition;
use crate::store::{LifecycleChange, Store};

/// Applies `transition` to the lead with `email`, on behalf of `by`; prints what happened.
/// Exit 0 when applied or already there, 1 when refused or unknown.
pub async fn apply<S: Store>(
    store: &S,
    settings: &Settings,
    email: &str,
    transition: Transition,
    by: &str,
    now: DateTime<Utc>,
) -> anyhow::Result<ExitCode> {
    let email = EmailAddress::parse(email)?;
    let lead = store
        .lead_by_email(&email)
        .await?
        .with_context(|| format!("no lead {email}"))?;
    let change =
        crate::outbound::actions::apply_transition(store, settings, &lead, &transition, by, now)
            .await
            .with_context(|| {
                format!("Failed to record `{}` for {email}", transition.event_kind())
            })?;
    match change {
        LifecycleChange::Applied { from, to } => {
            let extra = match &transition {
                Transition::OutOfScope {
                    reason,
                    recheck_at: Some(at),
                } => format!(
                    " ({reason}; back to nurture after {})",
                    at.format("%Y-%m-%d %H:%M UTC")
                ),
                Transition::OutOfScope { reason, .. } => format!(" ({reason}; no re-check date)"),
                _ => String::new(),
            };
            println!("{email}: {} → {}{extra}", from.as_str(), to.as_str());
            Ok(ExitCode::SUCCESS)
        }
        LifecycleChange::Already { state } => {
            println!("{email}: already {} (nothing changed)", state.as_str());
            Ok(ExitCode::SUCCESS)
        }
        LifecycleChange::Refused { from, why } => {
            eprintln!(
                "error: {email} is {}: cannot record `{}`: {why}",
                from.as_str(),
                transition.event_kind()
            );
            Ok(ExitCode::FAILURE)
        }
        LifecycleChange::NoSuchLead => {
            eprintln!("error: no lead {email}");
            Ok(ExitCode::FAILURE)
        }
    }
}

/// `--recheck-after`: a span from `now` in the lead's zone ("6mo", "90d", "1y" as "12mo") or a
/// date (`2027-06-01`, midnight UTC, or RFC 3339). Spans under a day are refused: "12m" is
/// twelve minutes, almost certainly meant as months.
pub fn recheck_at(input: &str, now: DateTime<Utc>, tz: Tz) -> anyhow::Result<DateTime<Utc>> {
    let input = input.trim();
    if let Ok(t) = DateTime::parse_from_rfc3339(input) {
        return Ok(t.with_timezone(&Utc));
    }
    if let Ok(d) = NaiveDate::parse_from_str(input, "%Y-%m-%d") {
        return Ok(d.and_hms_opt(0, 0, 0).unwrap_or_default().and_utc());
    }
    let span = Span::parse(input).map_err(|e| {
        anyhow::anyhow!("--recheck-after `{input}`: {e} (or a date like 2027-06-01)")
    })?;
    if let Span::Fixed(d) = span
        && d < chrono::TimeDelta::days(1)
    {
        anyhow::bail!(
            "--recheck-after `{input}` is less than a day (m = minutes); write months as `mo` (e.g. 12mo) or give a date"
        );
    }
    Ok(span.after(now, tz))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    #[test]
    fn recheck_after_takes_months_days_and_dates() {
        let now = t("2026-03-15T10:00:00Z");
        assert_eq!(
            recheck_at("12mo", now, Tz::UTC).unwrap(),
            t("2027-03-15T10:00:00Z")
        );
        assert_eq!(
            recheck_at("90d", now, Tz::UTC).unwrap(),
            t("2026-06-13T10:00:00Z")
        );
        assert_eq!(
            recheck_at("2027-01-02", now, Tz::UTC).unwrap(),
            t("2027-01-02T00:00:00Z")
        );
        assert_eq!(
            recheck_at("2027-01-02T09:30:00+01:00", now, Tz::UTC).unwrap(),
            t("2027-01-02T08:30:00Z")
        );
    }

    #[test]
    fn recheck_after_refuses_minutes_and_nonsense_with_the_input_named() {
        let now = t("2026-03-15T10:00:00Z");
        let e = recheck_at("12m", now, Tz::UTC).unwrap_err().to_string();
        assert!(e.contains("`12m`") && e.contains("mo"), "{e}");
        let e = recheck_at("soon", now, Tz::UTC).unwrap_err().to_string();
        assert!(e.contains("`soon`"), "{e}");
    }
}
