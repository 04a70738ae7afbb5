//! The transport's circuit breaker as dispatch uses it: one per process, kept across
//! reloads, telling the world when the transport is paused or works again.
//!
//! [`TransportGate`] wraps the pure [`Breaker`] (`transport::breaker`) with what a state
//! change must do, once per change: a log line (WARN when paused, with the reason; INFO when
//! resumed, with how long), the shared health state (`/readyz`, `/metrics`) and, through
//! [`TransportGate::persist`], the `transport.health` value in the database that `rewarm
//! status` prints.

use std::sync::{Arc, Mutex, MutexGuard};

use chrono::{DateTime, Utc};

use crate::health::{self, Component, Fault};
use crate::store::{KvStore, StoreError};
use crate::transport::SendError;
use crate::transport::breaker::{Admit, Breaker, BreakerSettings, Change, Pause};

/// The `kv_state` key holding the last published transport state (JSON).
pub const HEALTH_KEY: &str = "transport.health";

/// The transport state as `status` reads it from the database.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct TransportHealth {
    pub paused: bool,
    /// The fault's label (`auth`, `greeting`, …) while paused.
    pub reason: Option<String>,
    pub detail: Option<String>,
    pub since: Option<DateTime<Utc>>,
    pub next_probe: Option<DateTime<Utc>>,
    /// The daemon that wrote it.
    pub worker: String,
}

/// The breaker, shared by every batch of the process.
#[derive(Clone)]
pub struct TransportGate {
    inner: Arc<Mutex<GateState>>,
}

struct GateState {
    breaker: Breaker,
    /// What was last written to the database (None: nothing yet by this process).
    persisted: Option<TransportHealth>,
}

impl TransportGate {
    pub fn new(settings: BreakerSettings) -> TransportGate {
        TransportGate {
            inner: Arc::new(Mutex::new(GateState {
                breaker: Breaker::new(settings),
                persisted: None,
            })),
        }
    }

    fn lock(&self) -> MutexGuard<'_, GateState> {
        // Each critical section is a single breaker call: the state stays consistent.
        self.inner
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    pub fn update_settings(&self, settings: BreakerSettings) {
        self.lock().breaker.update_settings(settings);
    }

    pub fn admit(&self, now: DateTime<Utc>) -> Admit {
        self.lock().breaker.admit(now)
    }

    pub fn probe_unused(&self) {
        self.lock().breaker.probe_unused();
    }

    pub fn is_paused(&self) -> bool {
        self.lock().breaker.is_paused()
    }

    /// When a delivery stopped by the transport at `now` is due again.
    pub fn resume_at(&self, now: DateTime<Utc>) -> DateTime<Utc> {
        self.lock().breaker.resume_at(now)
    }

    /// Feeds one send outcome to the breaker and tells of a change.
    pub fn observe(&self, now: DateTime<Utc>, result: &Result<(), SendError>) {
        let (change, pause) = {
            let mut state = self.lock();
            let change = state.breaker.observe(now, result);
            (change, state.breaker.pause().cloned())
        };
        match (change, pause) {
            (Some(change), _) => publish(&change),
            // Still paused: keep the reason and the next probe time shown up to date.
            (None, Some(p)) => health::global().set(Component::Transport, fault_of(&p)),
            (None, None) => {}
        }
    }

    /// The state as `status` shows it.
    pub fn health(&self, worker: &str) -> TransportHealth {
        let state = self.lock();
        match state.breaker.pause() {
            Some(p) => TransportHealth {
                paused: true,
                reason: Some(p.fault.label().to_string()),
                detail: Some(p.detail.clone()),
                since: Some(p.since),
                next_probe: Some(p.next_probe),
                worker: worker.to_string(),
            },
            None => TransportHealth {
                paused: false,
                reason: None,
                detail: None,
                since: None,
                next_probe: None,
                worker: worker.to_string(),
            },
        }
    }

    /// Writes the state to the database if it changed since the last write (paused or not,
    /// and why; the next probe time alone is not a change).
    pub async fn persist<S: KvStore>(&self, store: &S, worker: &str) -> Result<(), StoreError> {
        let now = self.health(worker);
        let same = |a: &TransportHealth, b: &TransportHealth| {
            a.paused == b.paused && a.reason == b.reason && a.since == b.since
        };
        if self
            .lock()
            .persisted
            .as_ref()
            .is_some_and(|p| same(p, &now))
        {
            return Ok(());
        }
        // First time in this process and sending: write only to clear a pause recorded
        // before (by a daemon that stopped while paused), not on every start.
        if !now.paused && self.lock().persisted.is_none() {
            let recorded = read_health(store).await?;
            if !recorded.is_some_and(|r| r.paused) {
                self.lock().persisted = Some(now);
                return Ok(());
            }
        }
        let json = serde_json::to_string(&now).unwrap_or_default();
        store.kv_set(HEALTH_KEY, &json).await?;
        self.lock().persisted = Some(now);
        Ok(())
    }
}

/// Logs a change once and sets the shared health state.
fn publish(change: &Change) {
    match change {
        Change::Paused(p) => {
            tracing::warn!(
                reason = p.fault.label(),
                detail = %p.detail,
                next_probe = %p.next_probe,
                "Transport paused: it fails as a whole; nothing is sent until a probe gets through (deliveries keep their attempts)"
            );
            crate::metrics::Metrics::add(&crate::metrics::get().transport_pauses, 1);
            health::global().set(Component::Transport, fault_of(p));
        }
        Change::Resumed { fault, paused_for } => {
            tracing::info!(
                reason = fault.label(),
                paused_for_seconds = paused_for.num_seconds(),
                "Transport resumed: a probe got through"
            );
            health::global().clear(Component::Transport);
        }
    }
}

fn fault_of(p: &Pause) -> Fault {
    Fault {
        reason: p.fault.label().to_string(),
        detail: p.detail.clone(),
        since: p.since,
        next_try: Some(p.next_probe),
    }
}

/// Reads what the daemon last wrote (for `status`).
pub async fn read_health<S: KvStore>(store: &S) -> Result<Option<TransportHealth>, StoreError> {
    Ok(store
        .kv_get(HEALTH_KEY)
        .await?
        .and_then(|json| serde_json::from_str(&json).ok()))
}
