//! Scheduler: one pass enrols matching leads, repairs enrolments left without a next
//! step, and hands everything due to dispatch. `pass(now)` is all the daemon loop calls,
//! so tests and `run --once --now T` drive exactly the daemon's logic.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};

use chrono::{DateTime, Utc};
use futures::StreamExt as _;
use futures::stream::FuturesOrdered;
use tokio_util::sync::CancellationToken;
use tracing::Instrument as _;

use crate::app::Loaded;
use crate::config::Settings;
use crate::domain::calendar::Place;
use crate::domain::lead::{Lead, LeadState};
use crate::domain::segment::first_match;
use crate::domain::unmatched::{rules_fingerprint, starts_matching_at};
use crate::outbound::dispatch::{self, DispatchReport};
use crate::outbound::shutdown::Shutdown;
use crate::store::{NewEnrolment, NextStep, Store, StoreError, UnmatchedLead};
use crate::transport::Transport;

/// What one pass did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct PassReport {
    pub enrolled: usize,
    /// Claims whose lease expired after their send started: written off (`unknown`).
    pub expired: usize,
    /// Claims whose lease expired before their send started: due again (left out of the
    /// JSON when none).
    #[serde(skip_serializing_if = "is_zero")]
    pub released: usize,
    pub resumed: usize,
    pub sent: usize,
    pub retried: usize,
    pub failed: usize,
    pub unknown: usize,
    pub deferred: usize,
    /// Call steps handed to the lead's owner as tasks (left out of the JSON when none).
    #[serde(skip_serializing_if = "is_zero")]
    pub call_tasks: usize,
}

fn is_zero(n: &usize) -> bool {
    *n == 0
}

const PAGE: usize = 1000;

/// Numbers the passes of this process, so every log line says which pass it belongs to.
static PASSES: AtomicU64 = AtomicU64::new(0);

/// One pass at `now`, inside a `pass` span (pass id, worker, `now`); dispatch opens a `batch`
/// span per batch inside it. `stop` ends claiming; batches in flight finish, however long.
pub async fn pass<S: Store>(
    store: &S,
    loaded: &std::sync::Arc<Loaded>,
    transport: &Transport,
    now: DateTime<Utc>,
    repair: bool,
    stop: &CancellationToken,
) -> Result<PassReport, StoreError> {
    let shutdown = Shutdown::without_deadline(stop.clone());
    pass_until(store, loaded, transport, now, repair, &shutdown).await
}

/// [`pass`] with a shutdown deadline (`scheduler.shutdown_grace`, see
/// [`crate::outbound::shutdown`]): what the daemon and `run --once` run.
pub async fn pass_until<S: Store>(
    store: &S,
    loaded: &std::sync::Arc<Loaded>,
    transport: &Transport,
    now: DateTime<Utc>,
    repair: bool,
    shutdown: &Shutdown,
) -> Result<PassReport, StoreError> {
    let id = PASSES.fetch_add(1, Ordering::Relaxed) + 1;
    let worker = &loaded.settings.scheduler.worker_id;
    let span = tracing::info_span!("pass", id, %worker, %now);
    run_pass(store, loaded, transport, now, repair, shutdown)
        .instrument(span)
        .await
}

async fn run_pass<S: Store>(
    store: &S,
    loaded: &std::sync::Arc<Loaded>,
    transport: &Transport,
    now: DateTime<Utc>,
    repair: bool,
    shutdown: &Shutdown,
) -> Result<PassReport, StoreError> {
    let expired = store.expire_leases(now).await?;
    if expired.written_off > 0 {
        tracing::warn!(
            written_off = expired.written_off,
            "Leases expired after their send started: written off as unknown (not resent)"
        );
    }
    let mut report = PassReport {
        expired: expired.written_off,
        released: expired.released,
        ..Default::default()
    };
    if repair || report.expired > 0 {
        report.resumed = resume_stalled(store, loaded, now).await?;
    }
    recheck(store, now).await?;
    flow_on(store, loaded, now).await?;
    crate::outbound::replan::changed::reevaluate(store, loaded, now).await?;
    report.enrolled = enrol(store, loaded, now).await?;
    // Paused campaigns and leads hold what was scheduled since (see `store::hold`), before
    // the lateness policy looks at what waits.
    store.hold_new(now).await?;
    crate::outbound::late::skip_late(store, loaded, now).await?;
    let DispatchReport {
        sent,
        retried,
        failed,
        unknown,
        deferred,
        call_tasks,
    } = dispatch::send_due_until(store, loaded, transport, now, shutdown).await?;
    Ok(PassReport {
        sent,
        retried,
        failed,
        unknown,
        deferred,
        call_tasks,
        ..report
    })
}

/// Out-of-scope leads whose re-check date has passed go back to nurture (`recycle`, reason
/// `recheck`): the cadence they were on resumes, or segments enrol them again. Returns how
/// many were recycled.
pub async fn recheck<S: Store>(store: &S, now: DateTime<Utc>) -> Result<usize, StoreError> {
    let mut total = 0;
    // Bounded like the repairs: a lead that could not be recycled must not spin the pass.
    for _ in 0..100 {
        let due = store.recheck_due(now, PAGE).await?;
        let full = due.len() == PAGE;
        for id in due {
            if store.recycle(id, "recheck", now, now).await?.is_some() {
                total += 1;
            }
        }
        if !full {
            break;
        }
    }
    if total > 0 {
        tracing::info!(
            recycled = total,
            "Out-of-scope leads whose re-check date passed are back in nurture"
        );
    }
    Ok(total)
}

/// Leads that completed a campaign naming a `then` enter that campaign (a new round of it
/// if it is the same one), their first email of it due per its cadence counted from `now`.
/// Returns how many moved on.
pub async fn flow_on<S: Store>(
    store: &S,
    loaded: &Loaded,
    now: DateTime<Utc>,
) -> Result<usize, StoreError> {
    let settings = &loaded.settings;
    let mut total = 0;
    for (name, campaign) in &settings.campaigns {
        let Some(next) = campaign
            .then
            .as_ref()
            .and_then(|t| settings.campaigns.get(t))
        else {
            continue;
        };
        // Bounded: a page that moves nobody on (raced by another daemon) ends the loop.
        for _ in 0..100 {
            let done = store.completed_in(name, PAGE).await?;
            let ids: Vec<i64> = done.iter().map(|(id, _)| *id).collect();
            let leads: HashMap<i64, Lead> = store
                .leads_by_ids(&ids)
                .await?
                .into_iter()
                .map(|l| (l.id, l))
                .collect();
            let entries: Vec<NewEnrolment> = done
                .iter()
                .filter_map(|(id, segment)| {
                    let lead = leads.get(id)?;
                    let place = lead.place(settings.default_tz);
                    Some(NewEnrolment {
                        lead_id: *id,
                        campaign: next.name.clone(),
                        segment: segment.clone(),
                        first_due: next.cadence.first_due(now, now, place),
                        template: next.template_for(0).to_string(),
                    })
                })
                .collect();
            let via = format!("then:{name}");
            let moved = store
                .enter_campaign(&entries, &[LeadState::Completed], &via, None, now)
                .await?;
            total += moved.len();
            if done.len() < PAGE || moved.is_empty() {
                break;
            }
        }
    }
    if total > 0 {
        tracing::info!(
            moved = total,
            "Leads that completed a campaign went on to its `then`"
        );
    }
    Ok(total)
}

/// Enrols every `new` lead that a segment matches at `now`, page by page (the store's
/// `ENROL_PAGE` leads at a time), writing the enrolments once the store's `ENROL_WRITE` have
/// gathered (and at the end).
///
/// A lead no segment matches is marked with the moment it could start matching
/// (`domain::unmatched`) and not read again before then: an idle tick costs two index probes
/// however many leads match nothing. Marks go when the lead changes (the store's trigger),
/// when the segments change ([`forget_marks_if_rules_changed`]), or when their moment comes.
pub async fn enrol<S: Store>(
    store: &S,
    loaded: &Loaded,
    now: DateTime<Utc>,
) -> Result<usize, StoreError> {
    enrol_in_pages(store, loaded, now, S::ENROL_PAGE, S::ENROL_WRITE).await
}

/// [`enrol`], reading `page` leads at a time and writing at most `write` enrolments at once
/// (a test crosses both with a few leads). The write enrols only leads still `new` (one that
/// left that state since its page was read is left alone), and nothing of a gathered lead is
/// written before it: a crash before the write only means the lead is read again.
///
/// The next write's leads are read and judged while the writes before it run (a read
/// connection beside the writers; their leads all come after the written ones, whose rows
/// only those writes change): at 1M leads on SQLite, reading was a fifth of the pass. Each
/// write runs as its own task, so judging a page never holds up a write's statements. Up to
/// the store's `ENROL_LANES` writes run at once, each with its own leads; at most that many
/// writes' enrolments are held, and the ones gathering.
///
/// A pass that fails (a read, or a write) returns at once; a write already running finishes
/// on its own (its task is not cancelled), which is safe: each write is one transaction
/// that enrols only leads still `new`.
///
/// The first write is one page and each next one at most twice as many pages, up to `write`
/// enrolments: the writer starts after one page instead of a whole write's worth (at 1M
/// leads on SQLite it sat idle for the first ~2 s), and as a write takes about as long as
/// reading and judging twice its leads there, the next one is gathered when it is free.
pub async fn enrol_in_pages<S: Store>(
    store: &S,
    loaded: &Loaded,
    now: DateTime<Utc>,
    page: usize,
    write: usize,
) -> Result<usize, StoreError> {
    let settings = &loaded.settings;
    forget_marks_if_rules_changed(store, settings).await?;
    store.wake_unmatched(now).await?;
    let lanes = S::ENROL_LANES.max(1);
    let mut written = Written::default();
    let mut pages = Pages {
        after: 0,
        page,
        done: false,
    };
    let mut gathered = Gathered::default();
    let (mut read, mut ramp) = (0, 1_usize);
    let mut writes = FuturesOrdered::new();
    loop {
        let due = gathered.len() >= write || read >= ramp || pages.done;
        if !gathered.is_empty() && due {
            while writes.len() >= lanes {
                if let Some(n) = writes.next().await {
                    written.count(store, joined(n)?).await?;
                }
            }
            let write = write_gathered(store.clone(), std::mem::take(&mut gathered), now);
            writes.push_back(tokio::spawn(write.in_current_span()));
            (read, ramp) = (0, ramp.saturating_mul(2));
            continue;
        }
        if pages.done {
            break;
        }
        let next = pages.next(store, settings, now, &mut gathered);
        tokio::pin!(next);
        loop {
            tokio::select! {
                page = &mut next => break page?,
                Some(n) = writes.next() => written.count(store, joined(n)?).await?,
            }
        }
        read += 1;
    }
    while let Some(n) = writes.next().await {
        written.count(store, joined(n)?).await?;
    }
    written.finish(store).await?;
    Ok(written.enrolled)
}

/// One write: the enrolments and the marks of the unmatched leads ([`Store::enrol_and_mark`]);
/// returns how many were enrolled.
async fn write_gathered<S: Store>(
    store: S,
    gathered: Gathered,
    now: DateTime<Utc>,
) -> Result<usize, StoreError> {
    store
        .enrol_and_mark(&gathered.enrolments, &gathered.unmatched, now)
        .await
}

/// A write's (or a refresh's) task outcome; a task that panicked panics the pass, as it did
/// in place.
fn joined<T>(
    outcome: Result<Result<T, StoreError>, tokio::task::JoinError>,
) -> Result<T, StoreError> {
    match outcome {
        Ok(written) => written,
        Err(e) => match e.try_into_panic() {
            Ok(panic) => std::panic::resume_unwind(panic),
            Err(e) => Err(sqlx::Error::Protocol(format!(
                "a task of the enrolment pass stopped: {e}"
            ))
            .into()),
        },
    }
}

/// The leads a pass has yet to read: those after `after`, `page` at a time, none once `done`.
struct Pages {
    after: i64,
    page: usize,
    done: bool,
}

/// The enrolments of the leads one write covers, and the leads among them no segment matches.
#[derive(Default)]
struct Gathered {
    enrolments: Vec<NewEnrolment>,
    unmatched: Vec<UnmatchedLead>,
}

impl Gathered {
    /// The larger of the two: what bounds a write.
    fn len(&self) -> usize {
        self.enrolments.len().max(self.unmatched.len())
    }

    fn is_empty(&self) -> bool {
        self.enrolments.is_empty() && self.unmatched.is_empty()
    }
}

impl Pages {
    /// Reads and judges the next page into `gathered`.
    async fn next<S: Store>(
        &mut self,
        store: &S,
        settings: &Settings,
        now: DateTime<Utc>,
        gathered: &mut Gathered,
    ) -> Result<(), StoreError> {
        let leads = store.leads_to_examine(self.after, self.page).await?;
        self.done = leads.len() < self.page;
        let Some(last) = leads.last() else {
            return Ok(());
        };
        self.after = last.id;
        for lead in &leads {
            match enrolment_for(settings, lead, now, now) {
                Some(enrolment) => gathered.enrolments.push(enrolment),
                None => gathered.unmatched.push(UnmatchedLead {
                    lead_id: lead.id,
                    until: starts_matching_at(&settings.segments, lead, now, settings.default_tz),
                    seen: lead.updated_at,
                }),
            }
        }
        Ok(())
    }
}

/// What a pass has enrolled so far, how many of those when it last refreshed the planner's
/// statistics, and that refresh while it runs.
///
/// The first refresh is waited for: until then the tables' statistics may be those of empty
/// tables, which no write should be planned with. Each later one runs beside the pass, one
/// at a time: its `ANALYZE` (~0.5 s at 100k leads on PostgreSQL) held up the reading of the
/// next pages and the start of the next writes, a sixth of a 100k pass, while the writes it
/// helps are planned as well on statistics half their size. The last one, at the `end`, is
/// waited for again: the send pass claims next. A pass that fails leaves a refresh running
/// to finish on its own (it only reads).
#[derive(Default)]
struct Written {
    enrolled: usize,
    refreshed: usize,
    refreshing: Option<tokio::task::JoinHandle<Result<(), StoreError>>>,
}

impl Written {
    /// Counts a write's `enrolled` leads, then refreshes the statistics when [`refresh_due`]
    /// says so and no refresh is running.
    async fn count<S: Store>(&mut self, store: &S, enrolled: usize) -> Result<(), StoreError> {
        self.enrolled += enrolled;
        if self.refreshing.as_ref().is_some_and(|r| r.is_finished()) {
            self.settle().await?;
        }
        if self.refreshing.is_some() || !refresh_due(self.enrolled, self.refreshed, false) {
            return Ok(());
        }
        if self.refreshed == 0 {
            store.refresh_enrolment_statistics().await?;
        } else {
            let store = store.clone();
            let refresh = async move { store.refresh_enrolment_statistics().await };
            self.refreshing = Some(tokio::spawn(refresh.in_current_span()));
        }
        self.refreshed = self.enrolled;
        Ok(())
    }

    /// Every write is done: waits for a refresh still running, then the last refresh, if
    /// [`refresh_due`] says so.
    async fn finish<S: Store>(&mut self, store: &S) -> Result<(), StoreError> {
        self.settle().await?;
        if refresh_due(self.enrolled, self.refreshed, true) {
            store.refresh_enrolment_statistics().await?;
            self.refreshed = self.enrolled;
        }
        Ok(())
    }

    /// Waits for the refresh running, if any, and returns its outcome.
    async fn settle(&mut self) -> Result<(), StoreError> {
        match self.refreshing.take() {
            Some(refresh) => joined(refresh.await),
            None => Ok(()),
        }
    }
}

/// Enrolments in one pass from which the store refreshes its planner's statistics
/// ([`crate::store::QueueStore::refresh_enrolment_statistics`]): below it, the tables changed
/// too little to mislead a plan (and autovacuum catches up).
pub const REFRESH_STATISTICS_AFTER: usize = 1_000;

/// Whether the pass refreshes the statistics now, having enrolled `enrolled` leads, `refreshed`
/// of them by its last refresh: once `REFRESH_STATISTICS_AFTER` are enrolled, again each time
/// the count has doubled (so the later writes' statements — the enrolments' triggers look up
/// each new enrolment's lead — are planned for tables their size: on statistics of empty
/// tables PostgreSQL scanned every enrolment once per new one, and 100k leads took 144 s), and
/// at the `end` if anything was enrolled since (the send pass claims next). At most ~20
/// refreshes however large the pass.
fn refresh_due(enrolled: usize, refreshed: usize, end: bool) -> bool {
    enrolled >= REFRESH_STATISTICS_AFTER
        && if end {
            enrolled > refreshed
        } else {
            enrolled >= 2 * refreshed
        }
}

/// The store key holding the fingerprint of the rules unmatched leads were judged by.
const RULES_KEY: &str = "enrol.rules_fingerprint";

/// Unmarks every unmatched lead when the segments (or the campaigns they name, or the
/// default zone) differ from those the marks were made under, then records the new rules.
async fn forget_marks_if_rules_changed<S: Store>(
    store: &S,
    settings: &Settings,
) -> Result<(), StoreError> {
    let campaigns: Vec<&str> = settings.campaigns.keys().map(String::as_str).collect();
    let fingerprint = rules_fingerprint(&settings.segments, &campaigns, settings.default_tz);
    if store.kv_get(RULES_KEY).await?.as_deref() == Some(fingerprint.as_str()) {
        return Ok(());
    }
    let forgotten = store.forget_unmatched().await?;
    store.kv_set(RULES_KEY, &fingerprint).await?;
    if forgotten > 0 {
        tracing::info!(
            leads = forgotten,
            "The segments changed: leads no segment matched are examined again"
        );
    }
    Ok(())
}

/// The enrolment of `lead` in its segment's campaign (None if no segment matches it at
/// `now`), its first email due at the first allowed slot after the campaign's `first_after`
/// and not before `not_before`.
pub fn enrolment_for(
    settings: &Settings,
    lead: &Lead,
    now: DateTime<Utc>,
    not_before: DateTime<Utc>,
) -> Option<NewEnrolment> {
    let segment = first_match(&settings.segments, lead, now, settings.default_tz)?;
    let campaign = settings.campaigns.get(&segment.campaign)?;
    let anchor = lead.lost_at.unwrap_or(lead.created_at);
    Some(NewEnrolment {
        lead_id: lead.id,
        campaign: campaign.name.clone(),
        segment: segment.name.clone(),
        first_due: campaign.cadence.first_due(
            anchor,
            now.max(not_before),
            lead.place(settings.default_tz),
        ),
        template: campaign.template_for(0).to_string(),
    })
}

/// Gives enrolments left without a scheduled step (after a crash, an unknown outcome) their
/// next step, or completes them.
pub async fn resume_stalled<S: Store>(
    store: &S,
    loaded: &Loaded,
    now: DateTime<Utc>,
) -> Result<usize, StoreError> {
    resume(store, loaded, now, None).await
}

/// [`resume_stalled`] for the enrolments of `campaign` left with nothing pending by a config
/// edit (its cancelled steps: not found by the pass's repair, which starts from `unknown`).
pub async fn resume_stalled_in<S: Store>(
    store: &S,
    loaded: &Loaded,
    now: DateTime<Utc>,
    campaign: &str,
) -> Result<usize, StoreError> {
    resume(store, loaded, now, Some(campaign)).await
}

async fn resume<S: Store>(
    store: &S,
    loaded: &Loaded,
    now: DateTime<Utc>,
    campaign: Option<&str>,
) -> Result<usize, StoreError> {
    let settings = &loaded.settings;
    let mut total = 0;
    // Bounded: an enrolment that cannot be resumed (its next row exists already) must not spin.
    for _ in 0..100 {
        let stalled = match campaign {
            Some(c) => store.stalled_in(c, PAGE).await?,
            None => store.stalled_enrolments(PAGE).await?,
        };
        if stalled.is_empty() {
            return Ok(total);
        }
        let ids: Vec<i64> = stalled.iter().map(|s| s.lead_id).collect();
        let places: HashMap<i64, Place> = store
            .leads_by_ids(&ids)
            .await?
            .into_iter()
            .map(|l| (l.id, l.place(settings.default_tz)))
            .collect();
        let resumed: Vec<_> = stalled
            .into_iter()
            .map(|s| {
                let next = settings.campaigns.get(&s.campaign).and_then(|c| {
                    let place = places
                        .get(&s.lead_id)
                        .copied()
                        .unwrap_or_else(|| settings.default_tz.into());
                    let step = s.last_step + 1;
                    c.cadence
                        .next_due(step, s.last_at, place)
                        .map(|due| NextStep {
                            step,
                            due_at: c.cadence.next_slot(due.max(now), place),
                            template: c.template_for(step).to_string(),
                        })
                });
                (s, next)
            })
            .collect();
        total += resumed.len();
        let full = resumed.len() == PAGE;
        store.resume_enrolments(&resumed, now).await?;
        if !full {
            return Ok(total);
        }
    }
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statistics_are_refreshed_past_the_threshold_each_time_the_pass_doubles_and_at_its_end() {
        let n = REFRESH_STATISTICS_AFTER;
        // (enrolled, refreshed, end) → due
        let cases = [
            (0, 0, false, false),
            (0, 0, true, false),
            (n - 1, 0, false, false),
            (n - 1, 0, true, false),
            (n, 0, false, true),
            (n, 0, true, true),
            (n + 1, n, false, false),
            (2 * n - 1, n, false, false),
            (2 * n, n, false, true),
            (2 * n + 1, n, true, true),
            (2 * n, 2 * n, true, false),
            (5_000, 4_000, false, false),
            (8_000, 4_000, false, true),
            (1_000_000, 524_288, false, false),
            (1_000_000, 524_288, true, true),
        ];
        for (enrolled, refreshed, end, due) in cases {
            assert_eq!(
                refresh_due(enrolled, refreshed, end),
                due,
                "enrolled {enrolled}, refreshed at {refreshed}, end {end}"
            );
        }
    }
}
