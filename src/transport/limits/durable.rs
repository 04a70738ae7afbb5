//! The daily caps in the database: a batch's sends are reserved in one atomic step before
//! anything is sent ([`admit`]), the places of sends that certainly did not leave are given
//! back when their outcomes are known ([`Reserved::settle`]), and the window's usage is read
//! for `status` and `/metrics` ([`usage`], [`render_metrics`]). The arithmetic is `caps`.
//!
//! One reservation per batch (three statements in one short transaction), none per lead.
//! Each runs as a task of its own: a batch's future is polled only now and then (between
//! other batches' recordings), and a transaction left waiting on it would hold SQLite's
//! single writer from the very recording it waits for.
//! What cannot go is deferred with the time its place frees up: not written off, not failed,
//! no attempt counted. If the database cannot be asked, nothing of the batch is sent: it is
//! deferred by [`UNREACHABLE_DEFER`] (a cap is never guessed).

use std::collections::{BTreeSet, HashMap, HashSet};
use std::fmt::Write as _;
use std::sync::{Mutex, MutexGuard};

use chrono::{DateTime, TimeDelta, Utc};
use serde::Serialize;

use super::caps::{self, TRANSPORT_KEY};
use super::{LimitSettings, Limiter, domain_of};
use crate::store::{SendCount, SendCountStore, StoreError};
use crate::transport::{OutgoingEmail, SendOutcome};

/// How long a batch waits when its sends could not be reserved (the database is away).
pub const UNREACHABLE_DEFER: TimeDelta = TimeDelta::seconds(30);

/// How many of the busiest domains `status` lists.
pub const BUSIEST: usize = 10;

/// A store the reservations can run on as tasks of their own.
pub trait Counters: SendCountStore + Clone + Send + Sync + 'static {}
impl<S: SendCountStore + Clone + Send + Sync + 'static> Counters for S {}

/// Runs a store call as a task of its own (see the module docs).
async fn detached<T: Send + 'static>(
    call: impl Future<Output = Result<T, StoreError>> + Send + 'static,
) -> Result<T, String> {
    match tokio::spawn(call).await {
        Ok(result) => result.map_err(|e| e.to_string()),
        Err(e) => Err(format!("the store call did not finish: {e}")),
    }
}

fn lock(limiter: &Mutex<Limiter>) -> MutexGuard<'_, Limiter> {
    limiter
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// What a batch reserved: per admitted delivery, the buckets it was counted in.
#[derive(Debug, Default)]
pub struct Reserved {
    taken: HashMap<i64, [SendCount; 2]>,
}

impl Reserved {
    /// Gives back the places of sends that certainly did not leave (a transient failure: it
    /// is counted again when it is tried again). An `unknown` outcome stays counted. If the
    /// database cannot be reached they stay counted too: a cap may be undershot, never passed.
    pub async fn settle<S: Counters>(&self, store: &S, results: &[SendOutcome]) {
        let failed = results
            .iter()
            .filter(|(_, r)| r.as_ref().is_err_and(|e| e.is_transient()))
            .map(|(id, _)| *id);
        self.give_back(store, failed).await;
    }

    /// Gives back the places of deliveries that were admitted but never handed to the
    /// transport: another worker holds them (`mark_started` left them out), or they were
    /// deferred before their wave (the transport paused, the shutdown deadline passed).
    /// Without this a reserved place of a send that never happened stays counted and the
    /// cap is undershot.
    pub async fn unsent<S: Counters>(&self, store: &S, ids: impl IntoIterator<Item = i64>) {
        self.give_back(store, ids).await;
    }

    async fn give_back<S: Counters>(&self, store: &S, ids: impl IntoIterator<Item = i64>) {
        let back: Vec<SendCount> = ids
            .into_iter()
            .filter_map(|id| self.taken.get(&id))
            .flat_map(|counts| counts.iter().cloned())
            .collect();
        if back.is_empty() {
            return;
        }
        let store = store.clone();
        let released =
            detached(async move { store.release_sends(&back).await.map(|_| back.len()) });
        if let Err(e) = released.await {
            tracing::warn!(error = %e, "Could not give back the daily-cap places of sends that did not leave; they stay counted");
        }
    }
}

/// Admits what may go now: first the pace kept in the process (rates, concurrency, a
/// provider's pause), then the daily caps, reserved in the database for the whole batch at
/// once. Returns the messages to send, the deferred deliveries with their `not_before`, and
/// the reservation to [`settle`](Reserved::settle) once the sends are done.
pub async fn admit<S: Counters>(
    store: &S,
    limiter: &Mutex<Limiter>,
    now: DateTime<Utc>,
    emails: Vec<OutgoingEmail>,
) -> (Vec<OutgoingEmail>, Vec<(i64, DateTime<Utc>)>, Reserved) {
    let (paced, mut deferred, settings) = {
        let mut l = lock(limiter);
        let (go, held) = l.admit_emails(now, emails);
        (go, held, l.settings().clone())
    };
    if paced.is_empty() {
        return (paced, deferred, Reserved::default());
    }
    let keys: Vec<String> = paced
        .iter()
        .map(|m| settings.domain_key(&domain_of(&m.envelope_to)))
        .collect();
    let capped: Vec<String> = std::iter::once(TRANSPORT_KEY)
        .chain(keys.iter().map(String::as_str))
        .filter(|k| caps::cap_of(&settings, k).is_some())
        .collect::<BTreeSet<&str>>()
        .into_iter()
        .map(str::to_string)
        .collect();
    let (at, from) = (caps::minute_of(now), caps::window_start(now));
    let reserved = {
        let (store, keys, settings) = (store.clone(), keys.clone(), settings.clone());
        detached(async move {
            store
                .reserve_sends(from, &capped, |used| {
                    let plan = caps::plan(&keys, &settings, used);
                    caps::increments(&keys, &plan, &settings, at)
                })
                .await
        })
    };
    let used = match reserved.await {
        Ok(used) => used,
        Err(e) => {
            tracing::warn!(error = %e, batch = paced.len(), "Could not reserve the batch's sends under the daily caps; it waits");
            let mut l = lock(limiter);
            for m in &paced {
                l.release(m.delivery_id);
                deferred.push((m.delivery_id, now + UNREACHABLE_DEFER));
            }
            return (Vec::new(), deferred, Reserved::default());
        }
    };
    let plan = caps::plan(&keys, &settings, &used);
    let mut reservation = Reserved::default();
    for &i in &plan.admitted {
        let (minute, width) = caps::bucket(&settings, &keys[i], at);
        let one = |key: &str, minute, width| SendCount {
            key: key.to_string(),
            minute,
            width,
            sent: 1,
        };
        reservation.taken.insert(
            paced[i].delivery_id,
            [one(TRANSPORT_KEY, at, 1), one(&keys[i], minute, width)],
        );
    }
    if !plan.blocked.is_empty() {
        deferred.extend(held_back(store, limiter, &settings, &plan, &paced, now).await);
    }
    let admitted: HashSet<usize> = plan.admitted.into_iter().collect();
    let go = paced
        .into_iter()
        .enumerate()
        .filter(|(i, _)| admitted.contains(i))
        .map(|(_, m)| m)
        .collect();
    (go, deferred, reservation)
}

/// The deliveries the caps held back, each with the time its place frees up (read from the
/// window's buckets; if they cannot be read, a minute from now: admission checks again).
async fn held_back<S: Counters>(
    store: &S,
    limiter: &Mutex<Limiter>,
    settings: &LimitSettings,
    plan: &caps::Plan,
    paced: &[OutgoingEmail],
    now: DateTime<Utc>,
) -> Vec<(i64, DateTime<Utc>)> {
    let full: Vec<String> = plan
        .blocked
        .iter()
        .flat_map(|(_, keys)| keys.iter().cloned())
        .collect::<BTreeSet<String>>()
        .into_iter()
        .collect();
    let store = store.clone();
    let from = caps::window_start(now);
    let buckets = detached(async move { store.send_buckets(from, &full).await })
        .await
        .unwrap_or_else(|e| {
            tracing::warn!(error = %e, "Could not read the daily caps' window; deferring by a minute");
            Vec::new()
        });
    let min = now + super::gcra::delta(settings.min_defer);
    let times = caps::defer_times(plan, settings, &buckets, now);
    let mut l = lock(limiter);
    times
        .into_iter()
        .map(|(i, at)| {
            l.release(paced[i].delivery_id);
            (paced[i].delivery_id, at.max(min))
        })
        .collect()
}

/// One limit's use of its rolling 24 hours.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CapUsage {
    /// `*` for the transport, else the recipient domain.
    pub key: String,
    /// Sends counted in the window (by every daemon on this database).
    pub used: i64,
    pub cap: Option<u64>,
}

/// The daily caps' state, as `status` shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Usage {
    pub transport: CapUsage,
    /// Domains with a budget of their own, and the busiest domains, by use.
    pub domains: Vec<CapUsage>,
}

/// The window's usage at `now`: the transport, every domain with a budget of its own, and
/// the `busiest` domains.
pub async fn usage<S: SendCountStore>(
    store: &S,
    settings: &LimitSettings,
    now: DateTime<Utc>,
    busiest: usize,
) -> Result<Usage, StoreError> {
    let budgeted = budgeted(settings);
    let (totals, top) = store
        .send_totals(caps::window_start(now), &budgeted, busiest)
        .await?;
    let entry = |key: &str, used: i64| CapUsage {
        key: key.to_string(),
        used,
        cap: caps::cap_of(settings, key),
    };
    let mut domains: Vec<CapUsage> = budgeted
        .iter()
        .filter(|k| *k != TRANSPORT_KEY)
        .map(|k| entry(k, totals.get(k).copied().unwrap_or(0)))
        .collect();
    for (key, used) in top {
        if !domains.iter().any(|d| d.key == key) {
            domains.push(entry(&key, used));
        }
    }
    domains.sort_by(|a, b| b.used.cmp(&a.used).then_with(|| a.key.cmp(&b.key)));
    Ok(Usage {
        transport: entry(
            TRANSPORT_KEY,
            totals.get(TRANSPORT_KEY).copied().unwrap_or(0),
        ),
        domains,
    })
}

/// The transport's key and every domain with a budget of its own (sorted).
/// The transport's key and every domain with a daily budget of its own.
pub fn budgeted(settings: &LimitSettings) -> Vec<String> {
    let mut keys: Vec<String> = settings
        .domains
        .iter()
        .filter(|(_, d)| d.daily_cap.is_some())
        .map(|(k, _)| k.clone())
        .collect();
    keys.sort();
    keys.insert(0, TRANSPORT_KEY.to_string());
    keys
}

/// `/metrics` lines: `rewarm_daily_cap_used` and `rewarm_daily_cap` for the transport and each
/// domain with a budget of its own (nothing without `[transport.limits]`). Two indexed reads.
pub async fn render_metrics<S: SendCountStore>(
    store: &S,
    settings: Option<&LimitSettings>,
    now: DateTime<Utc>,
) -> Result<String, StoreError> {
    let Some(settings) = settings else {
        return Ok(String::new());
    };
    let usage = usage(store, settings, now, 0).await?;
    let label = |u: &CapUsage| {
        if u.key == TRANSPORT_KEY {
            "limit=\"transport\"".to_string()
        } else {
            format!(
                "limit=\"domain\",domain=\"{}\"",
                u.key.replace(['"', '\\', '\n'], "_")
            )
        }
    };
    let all: Vec<&CapUsage> = std::iter::once(&usage.transport)
        .chain(&usage.domains)
        .collect();
    let mut out = String::from(
        "# HELP rewarm_daily_cap_used Sends counted in the rolling 24 hours by every daemon on this database.\n# TYPE rewarm_daily_cap_used gauge\n",
    );
    for u in &all {
        let _ = writeln!(out, "rewarm_daily_cap_used{{{}}} {}", label(u), u.used);
    }
    out.push_str("# HELP rewarm_daily_cap The configured cap of the rolling 24 hours.\n# TYPE rewarm_daily_cap gauge\n");
    for u in all.iter().filter(|u| u.cap.is_some()) {
        let _ = writeln!(
            out,
            "rewarm_daily_cap{{{}}} {}",
            label(u),
            u.cap.unwrap_or(0)
        );
    }
    Ok(out)
}
