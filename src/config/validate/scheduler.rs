//! `[scheduler]`: how often a pass runs, batch size, leases and retries.

use crate::config::raw::RawScheduler;
use crate::config::{
    Problems, SchedulerSettings, chrono_duration, default_worker_id, std_duration,
};

/// The most deliveries per connection a wave may start before its outcomes are recorded.
const MAX_WAVE_DEPTH: usize = 64;

pub(super) fn scheduler(sched: RawScheduler, p: &mut Problems) -> SchedulerSettings {
    let tick = std_duration(&sched.tick).unwrap_or_else(|e| {
        p.err("scheduler.tick", e);
        std::time::Duration::from_secs(30)
    });
    let lease = chrono_duration(&sched.lease).unwrap_or_else(|e| {
        p.err("scheduler.lease", e);
        chrono::Duration::minutes(10)
    });
    let retry_base = chrono_duration(&sched.retry_base).unwrap_or_else(|e| {
        p.err("scheduler.retry_base", e);
        chrono::Duration::minutes(1)
    });
    let shutdown_grace = std_duration(&sched.shutdown_grace).unwrap_or_else(|e| {
        p.err("scheduler.shutdown_grace", e);
        std::time::Duration::from_secs(20)
    });
    if sched.batch_size == 0 {
        p.err("scheduler.batch_size", "must be at least 1".into());
    }
    if sched.max_attempts == 0 {
        p.err("scheduler.max_attempts", "must be at least 1".into());
    }
    if !(1..=MAX_WAVE_DEPTH).contains(&sched.wave_depth) {
        p.err(
            "scheduler.wave_depth",
            format!("must be between 1 and {MAX_WAVE_DEPTH}"),
        );
    }
    let worker_id = sched.worker_id.unwrap_or_else(default_worker_id);
    SchedulerSettings {
        tick,
        batch_size: sched.batch_size.max(1),
        lease,
        max_attempts: sched.max_attempts.max(1),
        retry_base,
        worker_id,
        shutdown_grace,
        wave_depth: sched.wave_depth.clamp(1, MAX_WAVE_DEPTH),
    }
}
