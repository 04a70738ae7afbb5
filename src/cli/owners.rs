//! `rewarm leads owners [--gone] [--json]`: every owner of a lead and every owner marked gone
//! (a notification to them hard-bounced, `notify::owners`), each with their leads per state,
//! their stale re-warms (re-warmed, no feedback for `notify.remind_after` or longer) and, if
//! they are gone, since when and why — with the command that hands their leads over. The
//! leads without an owner come last. Read only: one aggregate over the leads, the stale
//! hand-offs (indexed) and the gone marks (`kv_state`).

use std::collections::BTreeMap;
use std::process::ExitCode;

use chrono::{DateTime, Utc};
use serde_json::{Value, json};

use crate::config::Settings;
use crate::domain::lead::LeadState;
use crate::notify::owners::{GoneOwner, all_gone, describe};
use crate::store::{OwnerCount, Store};

/// One owner (None: the leads without an owner) as `leads owners` shows them.
#[derive(Debug, Default, PartialEq)]
pub struct OwnerRow {
    pub owner: Option<String>,
    /// Leads per state, in [`LeadState::ALL`] order (states with none left out).
    pub states: Vec<(String, i64)>,
    /// Re-warmed leads with no feedback for `notify.remind_after` or longer.
    pub stale: i64,
    /// Of those, escalated to `notify.fallback_email`.
    pub escalated: i64,
    pub gone: Option<GoneOwner>,
}

impl OwnerRow {
    pub fn leads(&self) -> i64 {
        self.states.iter().map(|(_, n)| n).sum()
    }
}

/// Merges the counts, the stale hand-offs (owner, escalated) and the gone marks into one row
/// per owner, by address, the leads without an owner last. Owners are lower-cased; an empty
/// owner is no owner.
pub fn owner_rows(
    counts: Vec<OwnerCount>,
    stale: &[(Option<String>, bool)],
    gone: Vec<(String, GoneOwner)>,
) -> Vec<OwnerRow> {
    let key = |o: Option<&str>| {
        o.map(|o| o.trim().to_ascii_lowercase())
            .filter(|o| !o.is_empty())
    };
    // `Some` sorts after `None`: flip so the unowned row comes last.
    let mut rows: BTreeMap<(bool, Option<String>), OwnerRow> = BTreeMap::new();
    fn row(
        rows: &mut BTreeMap<(bool, Option<String>), OwnerRow>,
        owner: Option<String>,
    ) -> &mut OwnerRow {
        rows.entry((owner.is_none(), owner.clone()))
            .or_insert_with(|| OwnerRow {
                owner,
                ..OwnerRow::default()
            })
    }
    let mut per_state: BTreeMap<Option<String>, BTreeMap<String, i64>> = BTreeMap::new();
    for c in counts {
        *per_state
            .entry(key(c.owner.as_deref()))
            .or_default()
            .entry(c.state)
            .or_default() += c.n;
    }
    for (owner, states) in per_state {
        let r = row(&mut rows, owner);
        let order = |s: &str| {
            LeadState::ALL
                .iter()
                .position(|l| l.as_str() == s)
                .unwrap_or(usize::MAX)
        };
        let mut states: Vec<(String, i64)> = states.into_iter().collect();
        states.sort_by_key(|(s, _)| (order(s), s.clone()));
        r.states = states;
    }
    for (owner, escalated) in stale {
        let r = row(&mut rows, key(owner.as_deref()));
        r.stale += 1;
        r.escalated += i64::from(*escalated);
    }
    for (owner, mark) in gone {
        row(&mut rows, key(Some(&owner))).gone = Some(mark);
    }
    rows.into_values().collect()
}

/// Reads and prints the owners (`--gone`: only those marked gone).
pub async fn owners<S: Store>(
    store: &S,
    settings: &Settings,
    gone_only: bool,
    json: bool,
    now: DateTime<Utc>,
) -> anyhow::Result<ExitCode> {
    let counts = store.owner_counts().await?;
    let stale = stale_owners(store, settings, now).await?;
    let gone = all_gone(store).await?;
    let rows: Vec<OwnerRow> = owner_rows(counts, &stale, gone)
        .into_iter()
        .filter(|r| !gone_only || r.gone.is_some())
        .collect();
    for r in &rows {
        if json {
            println!("{}", row_json(r));
        } else {
            for line in row_text(r) {
                println!("{line}");
            }
        }
    }
    if !json {
        let owners = rows.iter().filter(|r| r.owner.is_some()).count();
        let gone = rows.iter().filter(|r| r.gone.is_some()).count();
        let unowned = rows
            .iter()
            .find(|r| r.owner.is_none())
            .map_or(0, OwnerRow::leads);
        if gone_only {
            eprintln!("{gone} owner(s) marked gone");
        } else {
            eprintln!("{owners} owner(s), {gone} marked gone; {unowned} lead(s) without an owner");
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// The owner of each stale hand-off at `now` and whether it was escalated.
async fn stale_owners<S: Store>(
    store: &S,
    settings: &Settings,
    now: DateTime<Utc>,
) -> anyhow::Result<Vec<(Option<String>, bool)>> {
    let cutoff = settings.notify.chase.cutoff(now);
    let mut out = Vec::new();
    let mut after = 0;
    loop {
        let page = store.stale_handoffs(cutoff, after, 1000).await?;
        let Some(last) = page.last() else { break };
        after = last.lead_id;
        let ids: Vec<i64> = page.iter().map(|s| s.lead_id).collect();
        let owners: BTreeMap<i64, Option<String>> = store
            .leads_by_ids(&ids)
            .await?
            .into_iter()
            .map(|l| (l.id, l.owner_email))
            .collect();
        for s in &page {
            let owner = owners.get(&s.lead_id).cloned().flatten();
            out.push((owner, s.done.escalated));
        }
        if page.len() < 1000 {
            break;
        }
    }
    Ok(out)
}

fn row_text(r: &OwnerRow) -> Vec<String> {
    let states: Vec<String> = r.states.iter().map(|(s, n)| format!("{s} {n}")).collect();
    let who = r.owner.as_deref().unwrap_or("(no owner)");
    let mut head = format!("{who}: {} lead(s)", r.leads());
    if !states.is_empty() {
        head.push_str(&format!(" ({})", states.join(", ")));
    }
    if r.stale > 0 {
        head.push_str(&format!("; {} stale re-warm(s)", r.stale));
        if r.escalated > 0 {
            head.push_str(&format!(", {} escalated", r.escalated));
        }
    }
    let mut out = vec![head];
    if let (Some(owner), Some(g)) = (&r.owner, &r.gone) {
        out.push(format!(
            "  GONE since {} ({}): notifications go to notify.fallback_email",
            g.since.format("%Y-%m-%d %H:%M UTC"),
            describe(&g.evidence)
        ));
        if r.leads() > 0 {
            out.push(format!(
                "  hand their leads over: rewarm leads reassign --from {owner} --to NEW_OWNER"
            ));
        }
        out.push(format!("  back after all: rewarm leads owner-back {owner}"));
    }
    out
}

fn row_json(r: &OwnerRow) -> Value {
    let states: serde_json::Map<String, Value> = r
        .states
        .iter()
        .map(|(s, n)| (s.clone(), json!(n)))
        .collect();
    json!({
        "owner": r.owner,
        "leads": r.leads(),
        "states": states,
        "stale": r.stale,
        "escalated": r.escalated,
        "gone": r.gone.as_ref().map(|g| json!({
            "since": g.since,
            "why": describe(&g.evidence),
            "evidence": g.evidence,
        })),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn count(owner: Option<&str>, state: &str, n: i64) -> OwnerCount {
        OwnerCount {
            owner: owner.map(str::to_string),
            state: state.into(),
            n,
        }
    }

    #[test]
    fn rows_merge_counts_stale_and_gone_marks_with_the_unowned_last() {
        let since = Utc.with_ymd_and_hms(2026, 3, 2, 10, 0, 0).unwrap();
        let mark = GoneOwner {
            since,
            evidence: json!({"notification_id": 12, "refused_at": "RCPT"}),
        };
        let rows = owner_rows(
            vec![
                count(None, "nurturing", 2),
                count(Some("rita@acme.example"), "rewarmed", 1),
                count(Some("rita@acme.example"), "nurturing", 3),
                count(Some(""), "new", 1),
                count(Some("sam@acme.example"), "won", 1),
            ],
            &[(Some("Rita@acme.example".into()), true)],
            vec![
                ("rita@acme.example".into(), mark.clone()),
                ("zoe@acme.example".into(), mark.clone()),
            ],
        );
        let owners: Vec<Option<&str>> = rows.iter().map(|r| r.owner.as_deref()).collect();
        assert_eq!(
            owners,
            [
                Some("rita@acme.example"),
                Some("sam@acme.example"),
                Some("zoe@acme.example"),
                None
            ]
        );
        let rita = &rows[0];
        assert_eq!(
            rita.states,
            [("nurturing".to_string(), 3), ("rewarmed".to_string(), 1)]
        );
        assert_eq!((rita.leads(), rita.stale, rita.escalated), (4, 1, 1));
        assert_eq!(
            row_text(rita),
            [
                "rita@acme.example: 4 lead(s) (nurturing 3, rewarmed 1); 1 stale re-warm(s), 1 escalated",
                "  GONE since 2026-03-02 10:00 UTC (notification 12 refused while sending): notifications go to notify.fallback_email",
                "  hand their leads over: rewarm leads reassign --from rita@acme.example --to NEW_OWNER",
                "  back after all: rewarm leads owner-back rita@acme.example",
            ]
        );
        // A gone owner with no lead left: no hand-over line.
        assert_eq!(row_text(&rows[2]).len(), 3);
        assert_eq!(rows[3].leads(), 3, "an empty owner counts as none");
        assert_eq!(
            row_text(&rows[3]),
            ["(no owner): 3 lead(s) (new 1, nurturing 2)"]
        );
        let j = row_json(rita);
        assert_eq!(j["states"]["nurturing"], 3);
        assert_eq!(j["gone"]["why"], "notification 12 refused while sending");
    }
}
