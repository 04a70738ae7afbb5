//! `calendars` (`.ics` files) and `[[blackouts]]`: the company-wide closed days, added to
//! each campaign's [`DayRules`](crate::domain::calendar::DayRules) next to its own
//! `skip_holidays` and `business_days_only`.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use crate::config::raw::RawBlackout;
use crate::config::{Campaign, Problems};
use crate::domain::calendar::{Blackout, CalendarDays, ics};

pub(super) fn calendar(
    files: Vec<PathBuf>,
    raw: Vec<RawBlackout>,
    campaigns: &mut BTreeMap<String, Campaign>,
    p: &mut Problems,
) {
    let days = Arc::new(calendar_files(&files, p));
    // Blackouts per campaign: those without `campaigns` apply to all.
    let mut per_campaign: BTreeMap<&str, Vec<Blackout>> = BTreeMap::new();
    for (i, b) in raw.iter().enumerate() {
        let key = |k: &str| format!("blackouts[{}].{k}", i + 1);
        let name = b
            .name
            .clone()
            .unwrap_or_else(|| format!("{} to {}", b.from, b.to));
        let blackout = match Blackout::parse(&name, &b.from, &b.to) {
            Ok(blackout) => blackout,
            Err(e) => {
                p.err(&key("from"), e);
                continue;
            }
        };
        for c in b.campaigns.iter().flatten() {
            if !campaigns.contains_key(c) {
                p.err(&key("campaigns"), format!("campaign `{c}` is not defined"));
            }
        }
        for name in campaigns.keys() {
            if b.campaigns.as_ref().is_none_or(|only| only.contains(name)) {
                per_campaign.entry(name).or_default().push(blackout.clone());
            }
        }
    }
    let per_campaign: BTreeMap<String, Arc<Vec<Blackout>>> = per_campaign
        .into_iter()
        .map(|(name, list)| (name.to_string(), Arc::new(list)))
        .collect();
    for (name, campaign) in campaigns.iter_mut() {
        campaign.cadence.days.calendar = days.clone();
        if let Some(list) = per_campaign.get(name) {
            campaign.cadence.days.blackouts = list.clone();
        }
    }
}

/// Every day of every `.ics` file; a file that cannot be read or parsed is a problem at
/// `calendars[N]` quoting the file and line.
fn calendar_files(files: &[PathBuf], p: &mut Problems) -> CalendarDays {
    let mut all = CalendarDays::new();
    for (i, path) in files.iter().enumerate() {
        let key = format!("calendars[{}]", i + 1);
        let shown = path.display().to_string();
        let text = match std::fs::read_to_string(path) {
            Ok(text) => text,
            Err(e) => {
                p.err(&key, format!("cannot read {shown}: {e}"));
                continue;
            }
        };
        match ics::parse(&shown, &text) {
            Ok(days) => {
                for (day, what) in days {
                    all.entry(day).or_insert(what);
                }
            }
            Err(e) => p.err(&key, e.to_string()),
        }
    }
    all
}
