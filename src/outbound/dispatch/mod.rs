//! Dispatch: claimed deliveries are rendered, composed, sent and recorded in batches.
//! Claims are leases committed before anything is sent; rendering runs on blocking
//! threads while the previous batch is on the wire. A batch is sent in waves no larger than
//! the transport's connections: each wave is marked started just before it is sent, in the
//! same write (one transaction, one commit) that records the previous wave's outcomes
//! (retried until written, [`recording`]), so a crash can only write off what was on the wire.
//!
//! The transport's circuit breaker ([`pause`](super::pause)) is asked before each claim:
//! while the transport is paused nothing is claimed but, when its time comes, a one-delivery
//! probe. A send that failed because of the transport itself (a [`TransportFault`]) is
//! deferred to the next probe without counting an attempt; a batch claimed before the pause
//! is deferred the same way without being sent.
//!
//! [`TransportFault`]: crate::transport::TransportFault

use std::collections::HashMap;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use futures::StreamExt;
use futures::stream::FuturesUnordered;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tracing::Instrument as _;

mod outcome;

use outcome::{failure, next_step};

use crate::app::{Loaded, lock};
use crate::config::CallStep;
use crate::domain::lead::Lead;
use crate::outbound::recording::{self, Recorder};
use crate::outbound::shutdown::Shutdown;
use crate::store::{ClaimedDelivery, DeferReason, Outcome, RecordedOutcome, Store, StoreError};
use crate::transport::breaker::Admit;
use crate::transport::limits::durable::{self, Reserved};
use crate::transport::limits::provider_throttle_until;
use crate::transport::{OutgoingEmail, Transport};

/// Batches being rendered or sent at once (one more is claimed while one is on the wire).
const PIPELINE: usize = 3;

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DispatchReport {
    pub sent: usize,
    pub retried: usize,
    pub failed: usize,
    pub unknown: usize,
    pub deferred: usize,
    /// Call steps handed to their owner as tasks (nothing sent to the lead).
    pub call_tasks: usize,
}

impl DispatchReport {
    fn add(&mut self, outcomes: &[RecordedOutcome]) {
        let m = crate::metrics::get();
        for o in outcomes {
            let (mine, global) = match o.outcome {
                Outcome::CallTask { .. } => {
                    self.call_tasks += 1;
                    continue;
                }
                Outcome::Sent { .. } => (&mut self.sent, &m.sent),
                Outcome::Retry { .. } => (&mut self.retried, &m.retried),
                Outcome::Deferred { .. } => (&mut self.deferred, &m.deferred),
                Outcome::Failed { .. } => (&mut self.failed, &m.failed),
                Outcome::Unknown { .. } => (&mut self.unknown, &m.unknown),
            };
            *mine += 1;
            crate::metrics::Metrics::add(global, 1);
        }
    }
}

/// Sends everything due at `now`, batch after batch, until nothing due is left or `stop`
/// is cancelled (batches in flight then finish, without a deadline).
pub async fn send_due<S: Store>(
    store: &S,
    loaded: &Arc<Loaded>,
    transport: &Transport,
    now: DateTime<Utc>,
    stop: &CancellationToken,
) -> Result<DispatchReport, StoreError> {
    let shutdown = Shutdown::without_deadline(stop.clone());
    send_due_until(store, loaded, transport, now, &shutdown).await
}

/// What every batch of a pass shares: the store, the transport, the recorder, the stop
/// and the lanes (see [`Lanes`]).
struct Ctx<'a, S> {
    store: &'a S,
    loaded: &'a Arc<Loaded>,
    transport: &'a Transport,
    recorder: Recorder<'a>,
    shutdown: &'a Shutdown,
    lanes: Lanes,
}

/// How many batches send at once, and how big their waves are. A batch holds a lane from
/// its first wave's start until its last wave's outcomes are written, and has at most one
/// wave started and unrecorded, so at most `lanes × wave` deliveries ever are: never more
/// than the connections times `scheduler.wave_depth`, all that a crash can write off.
///
/// Where the store writes two batches at once ([`QueueStore::WAVE_LANES`], PostgreSQL) and
/// the depth is 2 or more, there are two lanes of half the depth each: while one batch
/// writes its wave's outcomes (and the start of its next wave), the other's wave is on the
/// wire, so the connections do not wait for the database. Otherwise one lane.
///
/// [`QueueStore::WAVE_LANES`]: crate::store::QueueStore::WAVE_LANES
struct Lanes {
    permits: Semaphore,
    wave: usize,
}

impl Lanes {
    fn new(connections: usize, depth: usize, store_lanes: usize) -> Self {
        let lanes = store_lanes.clamp(1, depth.max(1));
        Self {
            permits: Semaphore::new(lanes),
            wave: connections * (depth / lanes).max(1),
        }
    }
}

/// [`send_due`] with a shutdown deadline: after `shutdown.stop` nothing is claimed; after
/// `shutdown.abort` the batches in flight stop sending (see [`crate::outbound::shutdown`]).
///
/// Each batch goes out in waves of at most [`Transport::in_flight_limit`] deliveries times
/// `scheduler.wave_depth` (1 by default), on permits shared by all batches in flight: a wave
/// is marked started just before it is handed to the connections, and its outcomes are
/// recorded before the batch's next wave starts. So at any moment at most `wave_depth`
/// deliveries per connection are started and unrecorded — all that a crash can write off.
pub async fn send_due_until<S: Store>(
    store: &S,
    loaded: &Arc<Loaded>,
    transport: &Transport,
    now: DateTime<Utc>,
    shutdown: &Shutdown,
) -> Result<DispatchReport, StoreError> {
    let sched = &loaded.settings.scheduler;
    let ctx = Ctx {
        store,
        loaded,
        transport,
        recorder: Recorder::new(&sched.worker_id, shutdown),
        shutdown,
        lanes: Lanes::new(transport.in_flight_limit(), sched.wave_depth, S::WAVE_LANES),
    };
    let mut report = DispatchReport::default();
    let mut in_flight = FuturesUnordered::new();
    let mut exhausted = false;
    let mut failure = None;
    // A batch claimed late in a long pass still gets its full lease: `now` plus the real time
    // the pass has taken. (Outcomes are recorded at `now`, so `--now T` stays exact.)
    let started = std::time::Instant::now();
    let clock = || now + chrono::Duration::from_std(started.elapsed()).unwrap_or_default();
    loop {
        // On shutdown (or a failed claim) no new batch is claimed; batches in flight finish
        // and are recorded.
        while !exhausted
            && failure.is_none()
            && !shutdown.stop.is_cancelled()
            && in_flight.len() < PIPELINE
        {
            let (size, probe) = match loaded.gate.admit(clock()) {
                Admit::All => (sched.batch_size, false),
                Admit::Probe => (1, true),
                // Paused: nothing is claimed; batches in flight finish.
                Admit::Paused { .. } => break,
            };
            // The batches in flight are polled while the claim waits for the database: one
            // of them may be inside a SQLite write transaction (recording its outcomes), and
            // left unpolled it would hold the single writer the claim waits for (`database
            // is locked` after the busy timeout).
            let claimed = {
                let claiming = claim(store, sched, now, clock() + sched.lease, size);
                tokio::pin!(claiming);
                loop {
                    tokio::select! {
                        claimed = &mut claiming => break claimed,
                        Some(done) = in_flight.next(), if !in_flight.is_empty() => {
                            let done: Result<Vec<RecordedOutcome>, StoreError> = done;
                            match done {
                                Ok(outcomes) => report.add(&outcomes),
                                Err(e) => failure = Some(e),
                            }
                        }
                    }
                }
            };
            let (batch, leads) = match claimed {
                Ok(claimed) => claimed,
                Err(e) => {
                    if probe {
                        loaded.gate.probe_unused();
                    }
                    recording::storage_failed(&e, clock());
                    failure = Some(e);
                    break;
                }
            };
            exhausted = batch.len() < size;
            if batch.is_empty() {
                if probe {
                    loaded.gate.probe_unused();
                }
                break;
            }
            // Every log line about this batch says which worker, how big, where it starts (and,
            // through the enclosing `pass` span, which pass).
            let span = tracing::info_span!("batch", worker = %sched.worker_id, size = batch.len(), first_delivery = batch[0].id, probe);
            let sending = Sending {
                now,
                started,
                probe,
            };
            in_flight.push(process(&ctx, batch, leads, sending).instrument(span));
        }
        let Some(done) = in_flight.next().await else {
            break;
        };
        match done {
            Ok(outcomes) => report.add(&outcomes),
            Err(e) => failure = Some(e),
        }
    }
    // `status` reads the breaker's state from the database (written only when it changed).
    if let Err(e) = loaded.gate.persist(store, &sched.worker_id).await {
        tracing::warn!(error = %e, "Could not record the transport's state for `status`");
    }
    if report != DispatchReport::default() {
        tracing::info!(
            sent = report.sent,
            retried = report.retried,
            failed = report.failed,
            unknown = report.unknown,
            "Dispatched due deliveries"
        );
    }
    match failure {
        Some(e) => Err(e),
        None => Ok(report),
    }
}

/// Claims up to `size` due deliveries and reads their leads.
async fn claim<S: Store>(
    store: &S,
    sched: &crate::config::SchedulerSettings,
    now: DateTime<Utc>,
    lease_until: DateTime<Utc>,
    size: usize,
) -> Result<(Vec<ClaimedDelivery>, Vec<Lead>), StoreError> {
    let batch = store
        .claim_due(now, &sched.worker_id, lease_until, size)
        .await?;
    if batch.is_empty() {
        return Ok((batch, Vec::new()));
    }
    let leads = store
        .leads_by_ids(&batch.iter().map(|d| d.lead_id).collect::<Vec<_>>())
        .await?;
    Ok((batch, leads))
}

/// When a batch is sent: the pass's `now`, when the pass started (real time), and whether
/// the batch is the breaker's probe.
#[derive(Clone, Copy)]
struct Sending {
    now: DateTime<Utc>,
    started: std::time::Instant,
    probe: bool,
}

impl Sending {
    /// Rate limits count real time: the pass's `now` plus how long the pass has run.
    fn wall(&self) -> DateTime<Utc> {
        self.now + chrono::Duration::from_std(self.started.elapsed()).unwrap_or_default()
    }
}

/// Gives a probe back to the breaker when its batch is done, whatever became of it (a
/// probe that never reached the transport — rendering failed, outside the send window — must
/// not leave the breaker waiting for it).
struct ProbeDone<'a>(Option<&'a crate::outbound::pause::TransportGate>);

impl Drop for ProbeDone<'_> {
    fn drop(&mut self) {
        if let Some(gate) = self.0 {
            gate.probe_unused();
        }
    }
}

/// A claimed batch, rendered: the lead of each delivery, and each delivery by id.
struct Prepared {
    batch: HashMap<i64, ClaimedDelivery>,
    leads: HashMap<i64, Lead>,
    message_ids: HashMap<i64, String>,
}

/// Renders, composes and sends one claimed batch, wave by wave, recording each wave's
/// outcomes before the next starts; returns every outcome recorded.
async fn process<S: Store>(
    ctx: &Ctx<'_, S>,
    batch: Vec<ClaimedDelivery>,
    leads: Vec<Lead>,
    sending: Sending,
) -> Result<Vec<RecordedOutcome>, StoreError> {
    let loaded = ctx.loaded;
    let now = sending.now;
    let _probe_done = ProbeDone(sending.probe.then_some(&loaded.gate));
    let leads: HashMap<i64, Lead> = leads.into_iter().map(|l| (l.id, l)).collect();
    // Rendering is CPU work: it runs on a blocking thread while other batches are on the wire.
    let prepared = {
        let (loaded, batch) = (Arc::clone(loaded), batch.clone());
        tokio::task::spawn_blocking(move || {
            let out = prepare(&loaded, &batch, &leads, now);
            (out, leads)
        })
        .await
    };
    let ((outgoing, mut outcomes), leads) = match prepared {
        Ok(prepared) => prepared,
        // Only a panic inside rendering gets here; the batch stays claimed, never started:
        // its lease expires and it is due again.
        Err(e) => {
            tracing::error!(error = %e, "Rendering a batch panicked; its deliveries are due again when their lease expires");
            return Ok(Vec::new());
        }
    };
    let prepared = Prepared {
        message_ids: outgoing
            .iter()
            .map(|m| (m.delivery_id, m.message_id.clone()))
            .collect(),
        batch: batch.into_iter().map(|d| (d.id, d)).collect(),
        leads,
    };
    let (outgoing, reserved) = hold_back(
        ctx.store,
        loaded,
        &prepared,
        outgoing,
        &mut outcomes,
        sending,
    )
    .await;
    // What needs no send is recorded at once: those rows are free again.
    ctx.recorder.record(ctx.store, &outcomes, now).await?;
    // One write between two waves: the outcomes of the wave just sent and the start of the
    // next. The batch's lane is held from the first wave's start until the last wave's
    // outcomes are written, so at most the connections × `scheduler.wave_depth` deliveries
    // (one per connection by default) are ever started and unrecorded ([`Lanes`]).
    let mut unrecorded: Vec<RecordedOutcome> = Vec::new();
    let mut permits = None;
    let mut queue = outgoing.into_iter().peekable();
    while queue.peek().is_some() {
        let wave: Vec<OutgoingEmail> = queue.by_ref().take(ctx.lanes.wave).collect();
        // The breaker paused the transport during an earlier wave: the rest waits for the
        // probe, no attempt counted.
        if !sending.probe && loaded.gate.is_paused() {
            let due_at = loaded.gate.resume_at(sending.wall());
            let messages = wave.into_iter().chain(queue.by_ref());
            let rest = defer_all(&prepared, messages, due_at, DeferReason::TransportPaused);
            give_back(ctx, reserved.as_ref(), &rest).await;
            unrecorded.extend(rest);
            break;
        }
        if permits.is_none() {
            permits = tokio::select! {
                permits = ctx.lanes.permits.acquire() => permits.ok(),
                _ = ctx.shutdown.abort.cancelled() => None,
            };
        }
        if permits.is_none() || ctx.shutdown.abort.is_cancelled() {
            // The deadline passed before these were started: due again, nothing sent.
            let messages = wave.into_iter().chain(queue.by_ref());
            let rest = defer_all(&prepared, messages, now, DeferReason::Shutdown);
            give_back(ctx, reserved.as_ref(), &rest).await;
            unrecorded.extend(rest);
            break;
        }
        let sent = send_wave(
            ctx,
            &prepared,
            wave,
            sending,
            reserved.as_ref(),
            &unrecorded,
        )
        .await?;
        outcomes.append(&mut unrecorded);
        unrecorded = sent;
    }
    ctx.recorder.record(ctx.store, &unrecorded, now).await?;
    drop(permits);
    outcomes.append(&mut unrecorded);
    Ok(outcomes)
}

/// What the breaker and the limits hold back of a rendered batch (deferred, no attempt
/// counted, added to `outcomes`); returns what may be sent, and the daily-cap places it
/// reserved.
async fn hold_back<S: Store>(
    store: &S,
    loaded: &Loaded,
    prepared: &Prepared,
    outgoing: Vec<OutgoingEmail>,
    outcomes: &mut Vec<RecordedOutcome>,
    sending: Sending,
) -> (Vec<OutgoingEmail>, Option<Reserved>) {
    let mut defer = |id: i64, due_at, reason| {
        if let Some(d) = prepared.batch.get(&id) {
            outcomes.push(RecordedOutcome {
                delivery: d.clone(),
                outcome: Outcome::Deferred { due_at, reason },
            });
        }
    };
    // The transport was paused while this batch was being claimed or rendered: send
    // nothing, defer everything to the next probe (no attempt counts).
    if !sending.probe && loaded.gate.is_paused() {
        let due_at = loaded.gate.resume_at(sending.wall());
        for message in outgoing {
            defer(message.delivery_id, due_at, DeferReason::TransportPaused);
        }
        return (Vec::new(), None);
    }
    // Over a limit, work is deferred (never dropped) and the attempt does not count; the
    // daily caps are reserved in the database, shared by every daemon.
    match &loaded.limiter {
        Some(limiter) => {
            let (admitted, held, reserved) =
                durable::admit(store, limiter, sending.wall(), outgoing).await;
            for (id, due_at) in held {
                defer(id, due_at, DeferReason::RateLimit);
            }
            (admitted, Some(reserved))
        }
        None => (outgoing, None),
    }
}

/// Gives back the daily-cap places reserved for `deferred` (deliveries deferred before
/// their wave was sent): they did not leave, so they must not count against the cap.
async fn give_back<S: Store>(
    ctx: &Ctx<'_, S>,
    reserved: Option<&Reserved>,
    deferred: &[RecordedOutcome],
) {
    if let Some(reserved) = reserved {
        reserved
            .unsent(ctx.store, deferred.iter().map(|o| o.delivery.id))
            .await;
    }
}

/// Deliveries that were never started, deferred to `due_at` (the stop's deadline passed:
/// due again at once; the transport was paused: at the next probe), no attempt counted.
fn defer_all(
    prepared: &Prepared,
    messages: impl Iterator<Item = OutgoingEmail>,
    due_at: DateTime<Utc>,
    reason: DeferReason,
) -> Vec<RecordedOutcome> {
    messages
        .filter_map(|m| prepared.batch.get(&m.delivery_id))
        .map(|d| RecordedOutcome {
            delivery: d.clone(),
            outcome: Outcome::Deferred { due_at, reason },
        })
        .collect()
}

/// One wave: records the previous wave's outcomes (`previous`) and marks this wave's
/// deliveries started in one write, sends them (abandoned at the shutdown deadline:
/// `unknown`), and returns their outcomes, not yet recorded. A delivery this worker no longer
/// holds (its lease expired and another took it) is not sent and gets no outcome.
async fn send_wave<S: Store>(
    ctx: &Ctx<'_, S>,
    prepared: &Prepared,
    wave: Vec<OutgoingEmail>,
    sending: Sending,
    reserved: Option<&Reserved>,
    previous: &[RecordedOutcome],
) -> Result<Vec<RecordedOutcome>, StoreError> {
    let (loaded, now) = (ctx.loaded, sending.now);
    let ids: Vec<i64> = wave.iter().map(|m| m.delivery_id).collect();
    let started = ctx
        .recorder
        .record_and_start(ctx.store, previous, &ids, now, sending.wall())
        .await?;
    let (wave, not_ours): (Vec<OutgoingEmail>, Vec<OutgoingEmail>) = wave
        .into_iter()
        .partition(|m| started.contains(&m.delivery_id));
    // Not ours any more: never sent here, so their daily-cap places go back.
    if let Some(reserved) = reserved.filter(|_| !not_ours.is_empty()) {
        reserved
            .unsent(ctx.store, not_ours.iter().map(|m| m.delivery_id))
            .await;
    }
    let (count, send_started) = (wave.len(), std::time::Instant::now());
    let sent = tokio::select! {
        sent = ctx.transport.send_tracked(wave) => Some(sent),
        _ = ctx.shutdown.abort.cancelled() => None,
    };
    let Some((results, mut provider_ids)) = sent else {
        // Abandoned mid-conversation at the deadline: these may have left.
        tracing::warn!(
            deliveries = started.len(),
            "Shutdown deadline: sends abandoned mid-conversation are recorded unknown"
        );
        return Ok(started
            .iter()
            .filter_map(|id| prepared.batch.get(id))
            .map(|d| RecordedOutcome {
                delivery: d.clone(),
                outcome: Outcome::Unknown {
                    error: "the shutdown deadline passed during the conversation".into(),
                    next: next_step(loaded, d, prepared.leads.get(&d.lead_id), now),
                },
            })
            .collect());
    };
    if let Some(reserved) = reserved {
        reserved.settle(ctx.store, &results).await;
    }
    if count > 0 {
        crate::metrics::get()
            .observe_send_latency(send_started.elapsed().as_secs_f64() / count as f64, count);
    }
    let mut outcomes = Vec::with_capacity(results.len());
    for (delivery_id, result) in results {
        let wall = sending.wall();
        loaded.gate.observe(wall, &result);
        // A provider's "slow down" waits for its `Retry-After` / `X-RateLimit-Reset` even
        // without `[transport.limits]`.
        let throttled = match &loaded.limiter {
            Some(l) => lock(l).record(wall, &(delivery_id, result.clone())),
            None => result
                .as_ref()
                .err()
                .and_then(|e| provider_throttle_until(e, wall)),
        };
        let Some(delivery) = prepared.batch.get(&delivery_id) else {
            continue;
        };
        let message_id = prepared
            .message_ids
            .get(&delivery_id)
            .cloned()
            .unwrap_or_default();
        let lead = prepared.leads.get(&delivery.lead_id);
        let outcome = match result {
            Ok(()) => Outcome::Sent {
                message_id,
                provider_id: provider_ids.remove(&delivery_id),
                next: next_step(loaded, delivery, lead, now),
            },
            Err(error) => {
                // The transport failed as a whole: due again at the next probe (or when the
                // provider said, if later).
                let paused_until = error
                    .transport_fault()
                    .map(|_| loaded.gate.resume_at(wall).max(throttled.unwrap_or(now)));
                failure(
                    loaded,
                    delivery,
                    lead,
                    error,
                    paused_until.or(throttled),
                    now,
                )
                .paused_if(paused_until)
            }
        };
        outcomes.push(RecordedOutcome {
            delivery: delivery.clone(),
            outcome,
        });
    }
    Ok(outcomes)
}

/// Renders and composes every delivery of the batch; those that cannot be rendered fail
/// with the reason (the cadence goes on), the others are ready to send.
fn prepare(
    loaded: &Loaded,
    batch: &[ClaimedDelivery],
    leads: &HashMap<i64, Lead>,
    now: DateTime<Utc>,
) -> (Vec<OutgoingEmail>, Vec<RecordedOutcome>) {
    let settings = &loaded.settings;
    let composer = loaded.composer();
    let mut ready = Vec::with_capacity(batch.len());
    let mut failed = Vec::new();
    for delivery in batch {
        let lead = leads.get(&delivery.lead_id);
        // A delivery claimed late (the daemon was down, a retry came due at night) still
        // waits for the lead's send window.
        if let (Some(lead), Some(campaign)) = (lead, settings.campaigns.get(&delivery.campaign)) {
            let place = lead.place(settings.default_tz);
            let due_at = campaign.cadence.next_slot(now, place);
            if due_at != now {
                let reason = if campaign.cadence.window.contains(now, place.tz) {
                    DeferReason::ClosedDay
                } else {
                    DeferReason::SendWindow
                };
                failed.push(RecordedOutcome {
                    delivery: delivery.clone(),
                    outcome: Outcome::Deferred { due_at, reason },
                });
                continue;
            }
        }
        // A call step: no email; the owner gets a task (recorded with the outcome).
        if let (Some(lead), Some(campaign)) = (lead, settings.campaigns.get(&delivery.campaign))
            && let Some(call) = campaign.call_for(delivery.step)
        {
            failed.push(call_task(loaded, delivery, lead, call, now));
            continue;
        }
        let built = match (lead, settings.campaigns.get(&delivery.campaign)) {
            (Some(lead), Some(campaign)) => composer
                .build(
                    lead,
                    campaign,
                    &delivery.template,
                    delivery.step,
                    delivery.id,
                    now,
                )
                .map(|(_, m)| m),
            (None, _) => Err("lead not found".to_string()),
            (_, None) => Err(format!(
                "campaign `{}` is no longer configured",
                delivery.campaign
            )),
        };
        match built {
            Ok(message) => ready.push(message),
            Err(error) => {
                tracing::warn!(delivery = delivery.id, template = %delivery.template, %error, "Delivery failed before sending");
                failed.push(RecordedOutcome {
                    delivery: delivery.clone(),
                    outcome: Outcome::Failed {
                        error,
                        next: next_step(loaded, delivery, lead, now),
                        suppress: false,
                    },
                });
            }
        }
    }
    (ready, failed)
}

/// The outcome of a call step: the call task's notifications, its event, the next step.
fn call_task(
    loaded: &Loaded,
    delivery: &ClaimedDelivery,
    lead: &Lead,
    call: &CallStep,
    now: DateTime<Utc>,
) -> RecordedOutcome {
    let notifications = crate::notify::call_task_notifications(
        &loaded.settings.notify,
        lead,
        delivery.id,
        &delivery.campaign,
        delivery.step + 1,
        call,
    );
    let to = notifications
        .iter()
        .find_map(|n| n.payload["to"].as_str().map(str::to_string));
    RecordedOutcome {
        delivery: delivery.clone(),
        outcome: Outcome::CallTask {
            detail: serde_json::json!({"campaign": delivery.campaign, "step": delivery.step + 1,
                                       "note": call.note, "owner": lead.owner_email, "to": to}),
            notifications,
            next: next_step(loaded, delivery, Some(lead), now),
        },
    }
}
