//! Process-wide counters for `/metrics` (Prometheus text format): cheap atomics bumped by
//! dispatch and the HTTP handlers, rendered on scrape. Queue depth is read from the store
//! at scrape time, not kept here.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};

/// Upper bounds (seconds) of the send latency histogram buckets.
const LATENCY_BUCKETS: [f64; 10] = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0];

/// Reply classes counted by `rewarm_replies_total{class=…}`.
pub const REPLY_CLASSES: [&str; 7] = [
    "human_reply",
    "auto_reply",
    "hard_bounce",
    "soft_bounce",
    "complaint",
    "unsubscribe",
    "other",
];

pub struct Metrics {
    pub sent: AtomicU64,
    pub failed: AtomicU64,
    pub retried: AtomicU64,
    pub deferred: AtomicU64,
    pub unknown: AtomicU64,
    pub suppressed: AtomicU64,
    pub unsubscribes: AtomicU64,
    pub clicks: AtomicU64,
    pub replies: [AtomicU64; 7],
    latency_buckets: [AtomicU64; 10],
    latency_count: AtomicU64,
    /// Sum of latencies in microseconds.
    latency_sum_us: AtomicU64,
}

static METRICS: Metrics = Metrics::new();

/// The process's metrics.
pub fn get() -> &'static Metrics {
    &METRICS
}

impl Metrics {
    const fn new() -> Self {
        const Z: AtomicU64 = AtomicU64::new(0);
        Self {
            sent: Z,
            failed: Z,
            retried: Z,
            deferred: Z,
            unknown: Z,
            suppressed: Z,
            unsubscribes: Z,
            clicks: Z,
            replies: [Z; 7],
            latency_buckets: [Z; 10],
            latency_count: Z,
            latency_sum_us: Z,
        }
    }

    pub fn add(counter: &AtomicU64, n: usize) {
        counter.fetch_add(n as u64, Ordering::Relaxed);
    }

    pub fn reply(&self, class: &str) {
        if let Some(i) = REPLY_CLASSES.iter().position(|c| *c == class) {
            self.replies[i].fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Records how long one batch's sends took, spread over its messages.
    pub fn observe_send_latency(&self, seconds: f64, messages: usize) {
        for (i, bound) in LATENCY_BUCKETS.iter().enumerate() {
            if seconds <= *bound {
                self.latency_buckets[i].fetch_add(messages as u64, Ordering::Relaxed);
            }
        }
        self.latency_count
            .fetch_add(messages as u64, Ordering::Relaxed);
        self.latency_sum_us
            .fetch_add((seconds * 1e6) as u64 * messages as u64, Ordering::Relaxed);
    }

    /// The Prometheus exposition, with the queue depth read by the caller.
    pub fn render(&self, queue_depth: i64) -> String {
        let mut out = String::new();
        let counter = |out: &mut String, name: &str, help: &str, v: &AtomicU64| {
            let _ = writeln!(
                out,
                "# HELP {name} {help}\n# TYPE {name} counter\n{name} {}",
                v.load(Ordering::Relaxed)
            );
        };
        counter(
            &mut out,
            "rewarm_sent_total",
            "Emails accepted by the transport.",
            &self.sent,
        );
        counter(
            &mut out,
            "rewarm_failed_total",
            "Deliveries failed for good.",
            &self.failed,
        );
        counter(
            &mut out,
            "rewarm_retried_total",
            "Transient failures scheduled for a retry.",
            &self.retried,
        );
        counter(
            &mut out,
            "rewarm_deferred_total",
            "Deliveries put back (send window, rate limits).",
            &self.deferred,
        );
        counter(
            &mut out,
            "rewarm_unknown_total",
            "Deliveries whose outcome is unknown (never resent).",
            &self.unknown,
        );
        counter(
            &mut out,
            "rewarm_suppressed_total",
            "Addresses put on the suppression list.",
            &self.suppressed,
        );
        counter(
            &mut out,
            "rewarm_unsubscribes_total",
            "One-click unsubscribes received.",
            &self.unsubscribes,
        );
        counter(
            &mut out,
            "rewarm_clicks_total",
            "Tracked link clicks.",
            &self.clicks,
        );
        let _ = writeln!(
            out,
            "# HELP rewarm_replies_total Inbound messages by classification.\n# TYPE rewarm_replies_total counter"
        );
        for (class, v) in REPLY_CLASSES.iter().zip(&self.replies) {
            let _ = writeln!(
                out,
                "rewarm_replies_total{{class=\"{class}\"}} {}",
                v.load(Ordering::Relaxed)
            );
        }
        let _ = writeln!(
            out,
            "# HELP rewarm_queue_depth Deliveries due now and not yet sent.\n# TYPE rewarm_queue_depth gauge\nrewarm_queue_depth {queue_depth}"
        );
        let _ = writeln!(
            out,
            "# HELP rewarm_send_latency_seconds Time to hand a message to the transport.\n# TYPE rewarm_send_latency_seconds histogram"
        );
        for (bound, v) in LATENCY_BUCKETS.iter().zip(&self.latency_buckets) {
            let _ = writeln!(
                out,
                "rewarm_send_latency_seconds_bucket{{le=\"{bound}\"}} {}",
                v.load(Ordering::Relaxed)
            );
        }
        let count = self.latency_count.load(Ordering::Relaxed);
        let _ = writeln!(
            out,
            "rewarm_send_latency_seconds_bucket{{le=\"+Inf\"}} {count}"
        );
        let _ = writeln!(
            out,
            "rewarm_send_latency_seconds_sum {}",
            self.latency_sum_us.load(Ordering::Relaxed) as f64 / 1e6
        );
        let _ = writeln!(out, "rewarm_send_latency_seconds_count {count}");
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_exposition_has_every_family_and_cumulative_buckets() {
        let m = Metrics::new();
        Metrics::add(&m.sent, 3);
        m.reply("auto_reply");
        m.observe_send_latency(0.02, 4);
        let text = m.render(7);
        assert!(text.contains("rewarm_sent_total 3"));
        assert!(text.contains("rewarm_replies_total{class=\"auto_reply\"} 1"));
        assert!(text.contains("rewarm_queue_depth 7"));
        assert!(text.contains("rewarm_send_latency_seconds_bucket{le=\"0.01\"} 0"));
        assert!(text.contains("rewarm_send_latency_seconds_bucket{le=\"0.025\"} 4"));
        assert!(text.contains("rewarm_send_latency_seconds_bucket{le=\"+Inf\"} 4"));
        assert!(text.contains("rewarm_send_latency_seconds_count 4"));
    }
}
