//! What is wrong with the daemon right now, shared by whoever notices and whoever tells.
//!
//! A part of the daemon that stops working for a reason outside any one lead — the transport
//! (paused by its circuit breaker, `transport::breaker`), the storage (disk full, database
//! gone) — sets a [`Fault`] for its [`Component`] here when the state changes, and clears it
//! when the part works again. `/readyz`, `/metrics` and the daemon's log read it; it is
//! process-wide ([`global`]) so any part can set it without plumbing.
//!
//! Readiness: a storage fault makes `/readyz` answer 503 (the daemon cannot do its work); a
//! paused transport does not (unsubscribe links, webhooks and the API still work, and taking
//! the daemon out of a load balancer would break them) — `/readyz` answers 200 and names the
//! pause on a `transport:` line, and `/metrics` shows `rewarm_transport_paused`.

use std::collections::BTreeMap;
use std::sync::{Mutex, MutexGuard, OnceLock};

use chrono::{DateTime, Utc};

/// A part of the daemon that can be out of order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Component {
    /// Sending: the transport is paused by its circuit breaker.
    Transport,
    /// The database: it cannot be read or written.
    Storage,
}

impl Component {
    pub fn as_str(self) -> &'static str {
        match self {
            Component::Transport => "transport",
            Component::Storage => "storage",
        }
    }

    /// Whether a fault here makes `/readyz` answer 503.
    pub fn blocks_readiness(self) -> bool {
        match self {
            Component::Transport => false,
            Component::Storage => true,
        }
    }
}

/// Why a component is out of order, and since when.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Fault {
    /// A short stable label (`auth`, `greeting`, `disk_full`, …) for metrics.
    pub reason: String,
    /// For people: what the last error said.
    pub detail: String,
    pub since: DateTime<Utc>,
    /// When the component tries again (the next probe), if it knows.
    pub next_try: Option<DateTime<Utc>>,
}

/// The current faults, one per component at most.
#[derive(Debug, Default)]
pub struct Health {
    faults: Mutex<BTreeMap<Component, Fault>>,
}

impl Health {
    pub fn new() -> Health {
        Health::default()
    }

    fn lock(&self) -> MutexGuard<'_, BTreeMap<Component, Fault>> {
        // Every critical section is one insert, remove or clone: the map stays consistent.
        self.faults
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Sets (or replaces) the fault of `component`.
    pub fn set(&self, component: Component, fault: Fault) {
        self.lock().insert(component, fault);
    }

    /// Clears the fault of `component`; returns it if there was one.
    pub fn clear(&self, component: Component) -> Option<Fault> {
        self.lock().remove(&component)
    }

    pub fn fault(&self, component: Component) -> Option<Fault> {
        self.lock().get(&component).cloned()
    }

    /// Every current fault, by component.
    pub fn faults(&self) -> Vec<(Component, Fault)> {
        self.lock().iter().map(|(c, f)| (*c, f.clone())).collect()
    }

    /// Whether `/readyz` should answer 200: no fault that blocks readiness.
    pub fn ready(&self) -> bool {
        self.lock().keys().all(|c| !c.blocks_readiness())
    }
}

/// The process's health state.
pub fn global() -> &'static Health {
    static HEALTH: OnceLock<Health> = OnceLock::new();
    HEALTH.get_or_init(Health::new)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fault(reason: &str) -> Fault {
        Fault {
            reason: reason.into(),
            detail: format!("{reason} happened"),
            since: DateTime::parse_from_rfc3339("2026-03-02T09:00:00Z")
                .unwrap()
                .with_timezone(&Utc),
            next_try: None,
        }
    }

    #[test]
    fn a_paused_transport_keeps_the_daemon_ready_and_a_storage_fault_does_not() {
        let h = Health::new();
        assert!(h.ready());
        h.set(Component::Transport, fault("auth"));
        assert!(h.ready());
        assert_eq!(h.fault(Component::Transport).unwrap().reason, "auth");
        h.set(Component::Storage, fault("disk_full"));
        assert!(!h.ready());
        assert_eq!(h.faults().len(), 2);
        assert_eq!(h.clear(Component::Storage).unwrap().reason, "disk_full");
        assert!(h.ready());
        assert!(h.clear(Component::Storage).is_none());
    }

    #[test]
    fn a_new_fault_replaces_the_old_one_of_its_component() {
        let h = Health::new();
        h.set(Component::Transport, fault("greeting"));
        h.set(Component::Transport, fault("auth"));
        let faults = h.faults();
        assert_eq!(faults.len(), 1);
        assert_eq!(faults[0].1.reason, "auth");
    }
}
