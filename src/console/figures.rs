//! The overview's figures, each from the code that owns its rule: the funnels and the
//! loss-to-re-warm histogram are `rewarm report`'s (`ReportStore::report_counts` +
//! `domain::report::assemble`), the next 30 days are `rewarm forecast`'s simulation
//! (`outbound::forecast::simulate`), the transport state is what `rewarm status` reads.
//! Only the sends per day and the suppressions of the last 30 days are counted here (one
//! aggregate statement each). All of it is computed in the background (`cache`).

use std::collections::BTreeMap;
use std::time::Instant;

use chrono::{DateTime, Duration, NaiveDate, Utc};

use super::cache::Stamped;
use crate::config::Settings;
use crate::domain::report::{GroupBy, Report, assemble};
use crate::outbound::forecast::{Kind, grid, simulate};
use crate::store::{ReportQuery, Store, StoreError};

/// Days shown back and ahead.
pub const DAYS: i64 = 30;

/// The report's figures and the last 30 days' sending.
#[derive(Debug)]
pub struct Figures {
    pub by_campaign: Report,
    pub by_segment: Report,
    /// Emails sent per UTC day, the last [`DAYS`] days (today included), every day listed.
    pub sent_per_day: Vec<(NaiveDate, i64)>,
    /// Addresses suppressed in the last [`DAYS`] days, per reason.
    pub suppressed: BTreeMap<String, i64>,
}

/// `rewarm report --by BY --until NOW`, as the CLI assembles it.
pub async fn report<S: Store>(
    store: &S,
    by: GroupBy,
    now: DateTime<Utc>,
) -> Result<Report, StoreError> {
    let query = ReportQuery {
        since: None,
        until: now,
        by,
    };
    let counts = store.report_counts(&query).await?;
    Ok(assemble(
        None,
        now,
        by,
        counts.funnels,
        counts.days,
        counts.intents,
    ))
}

/// The first UTC day of the last [`DAYS`] days.
fn first_day(now: DateTime<Utc>) -> NaiveDate {
    now.date_naive() - Duration::days(DAYS - 1)
}

pub async fn figures<S: Store>(
    store: &S,
    now: DateTime<Utc>,
) -> Result<Stamped<Figures>, StoreError> {
    let started = Instant::now();
    let by_campaign = report(store, GroupBy::Campaign, now).await?;
    let by_segment = report(store, GroupBy::Segment, now).await?;
    let since = first_day(now).and_time(chrono::NaiveTime::MIN).and_utc();
    let counted: BTreeMap<i64, i64> = store.sends_per_day(since).await?.into_iter().collect();
    let sent_per_day = days_from(first_day(now))
        .map(|day| {
            let number = (day - DateTime::<Utc>::UNIX_EPOCH.date_naive()).num_days();
            (day, counted.get(&number).copied().unwrap_or(0))
        })
        .collect();
    let suppressed = store.suppressed_since(since).await?.into_iter().collect();
    Ok(Stamped {
        value: Figures {
            by_campaign,
            by_segment,
            sent_per_day,
            suppressed,
        },
        as_of: now,
        took: started.elapsed(),
    })
}

/// [`DAYS`] days from `first`.
fn days_from(first: NaiveDate) -> impl Iterator<Item = NaiveDate> {
    (0..DAYS).map(move |i| first + Duration::days(i))
}

/// Emails the daemon will send per UTC day over the next [`DAYS`] days (today first), by
/// `rewarm forecast`'s simulation.
pub async fn forecast<S: Store>(
    store: &S,
    settings: &Settings,
    now: DateTime<Utc>,
) -> Result<Stamped<Vec<(NaiveDate, i64)>>, StoreError> {
    let started = Instant::now();
    let until = now + Duration::days(DAYS);
    let mut per_day: BTreeMap<NaiveDate, i64> = BTreeMap::new();
    simulate(
        store,
        settings,
        grid(settings, now, until),
        false,
        |_, at, kind| {
            if kind == Kind::Email {
                *per_day.entry(at.date_naive()).or_insert(0) += 1;
            }
        },
    )
    .await?;
    let value = days_from(now.date_naive())
        .map(|day| (day, per_day.get(&day).copied().unwrap_or(0)))
        .collect();
    Ok(Stamped {
        value,
        as_of: now,
        took: started.elapsed(),
    })
}

/// A rate, in per cent, and whether it is under the bulk senders' limit.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Rate {
    pub name: &'static str,
    pub count: i64,
    pub percent: f64,
    /// The limit in per cent (None: no published limit).
    pub limit: Option<f64>,
    pub over: bool,
    pub note: &'static str,
}

/// Hard bounces, complaints and unsubscribes of the last 30 days against the emails sent
/// in them. Limits: complaints under 0.3 % (Gmail's and Yahoo's bulk-sender rule, 2024;
/// 0.1 % is their aim), hard bounces under 2 % (the usual provider threshold).
pub fn rates(f: &Figures) -> Vec<Rate> {
    let sent: i64 = f.sent_per_day.iter().map(|(_, n)| n).sum();
    let count = |reason: &str| f.suppressed.get(reason).copied().unwrap_or(0);
    let rate = |name, n: i64, limit: Option<f64>, note| {
        let percent = if sent > 0 {
            n as f64 * 100.0 / sent as f64
        } else {
            0.0
        };
        Rate {
            name,
            count: n,
            percent: (percent * 100.0).round() / 100.0,
            limit,
            over: limit.is_some_and(|l| percent >= l),
            note,
        }
    };
    vec![
        rate(
            "complaints",
            count("complaint"),
            Some(0.3),
            "Gmail and Yahoo require under 0.3 % (aim under 0.1 %)",
        ),
        rate(
            "hard bounces",
            count("hard_bounce"),
            Some(2.0),
            "providers start throttling around 2 %",
        ),
        rate(
            "unsubscribes",
            count("unsubscribed"),
            None,
            "no published limit; a rise means the emails miss",
        ),
    ]
}
