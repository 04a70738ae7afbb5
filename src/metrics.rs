//! Process-wide counters for `/metrics` (Prometheus text format): cheap atomics bumped by
//! dispatch, notification delivery, the IMAP poll and the HTTP handlers, rendered on scrape. Queue depth is read from the store
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

/// Providers and event kinds counted by `rewarm_provider_events_total{provider=…,kind=…}`.
pub const EVENT_PROVIDERS: [&str; 3] = ["postmark", "sendgrid", "mailgun"];
pub const EVENT_KINDS: [&str; 6] = [
    "hard_bounce",
    "soft_bounce",
    "complaint",
    "unsubscribe",
    "delivered",
    "other",
];

/// Notification kinds counted by `rewarm_notifications_total{kind=…}`; any other is `other`.
pub const NOTIFICATION_KINDS: [&str; 4] = ["owner_email", "digest", "webhook", "other"];

/// What became of one notification attempt, as recorded in the outbox.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NotificationOutcome {
    /// The receiver accepted it (2xx, or the transport took the email).
    Delivered,
    /// A transient failure; tried again later.
    Retried,
    /// Failed for good (refused, bad payload, too many attempts).
    Failed,
}

impl NotificationOutcome {
    pub const ALL: [NotificationOutcome; 3] = [Self::Delivered, Self::Retried, Self::Failed];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Delivered => "delivered",
            Self::Retried => "retried",
            Self::Failed => "failed",
        }
    }
}

/// What one poll of the reply mailbox came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImapPollOutcome {
    /// Every new message was handled.
    Ok,
    /// A message could not be processed: the poll stopped at it, the next poll tries again.
    Stopped,
    /// Connect, login, an IMAP command or the store failed.
    Failed,
}

impl ImapPollOutcome {
    pub const ALL: [ImapPollOutcome; 3] = [Self::Ok, Self::Stopped, Self::Failed];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Ok => "ok",
            Self::Stopped => "stopped",
            Self::Failed => "failed",
        }
    }
}

pub struct Metrics {
    pub sent: AtomicU64,
    pub failed: AtomicU64,
    pub retried: AtomicU64,
    pub deferred: AtomicU64,
    pub unknown: AtomicU64,
    /// Times the transport's circuit breaker paused it.
    pub transport_pauses: AtomicU64,
    pub suppressed: AtomicU64,
    pub unsubscribes: AtomicU64,
    pub clicks: AtomicU64,
    pub replies: [AtomicU64; 7],
    /// By [`NOTIFICATION_KINDS`], then [`NotificationOutcome::ALL`].
    notifications: [[AtomicU64; 3]; 4],
    /// By [`ImapPollOutcome::ALL`].
    imap_polls: [AtomicU64; 3],
    /// By [`EVENT_PROVIDERS`], then [`EVENT_KINDS`].
    provider_events: [[AtomicU64; 6]; 3],
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
        // A const, not a static: each use (and each element of `[Z; N]`) is a fresh atomic,
        // which is exactly what a new set of counters needs.
        #[allow(clippy::declare_interior_mutable_const)]
        const Z: AtomicU64 = AtomicU64::new(0);
        Self {
            sent: Z,
            failed: Z,
            retried: Z,
            deferred: Z,
            unknown: Z,
            transport_pauses: Z,
            suppressed: Z,
            unsubscribes: Z,
            clicks: Z,
            replies: [Z; 7],
            notifications: [const { [Z; 3] }; 4],
            imap_polls: [Z; 3],
            provider_events: [const { [Z; 6] }; 3],
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

    /// Counts one new provider event (a webhook's bounce, complaint, delivery, …).
    pub fn provider_event(&self, provider: &str, kind: &str) {
        let p = EVENT_PROVIDERS.iter().position(|c| *c == provider);
        let k = EVENT_KINDS.iter().position(|c| *c == kind);
        if let (Some(p), Some(k)) = (p, k) {
            self.provider_events[p][k].fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Counts one recorded notification outcome.
    pub fn notification(&self, kind: &str, outcome: NotificationOutcome) {
        let k = NOTIFICATION_KINDS
            .iter()
            .position(|c| *c == kind)
            .unwrap_or(NOTIFICATION_KINDS.len() - 1);
        self.notifications[k][outcome as usize].fetch_add(1, Ordering::Relaxed);
    }

    /// Counts one poll of the reply mailbox.
    pub fn imap_poll(&self, outcome: ImapPollOutcome) {
        self.imap_polls[outcome as usize].fetch_add(1, Ordering::Relaxed);
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
        counter(
            &mut out,
            "rewarm_transport_pauses_total",
            "Times the transport's circuit breaker paused it (transport-wide failures).",
            &self.transport_pauses,
        );
        self.render_labelled(&mut out);
        let _ = writeln!(
            out,
            "# HELP rewarm_queue_depth Deliveries due now and not yet sent.\n# TYPE rewarm_queue_depth gauge\nrewarm_queue_depth {queue_depth}"
        );
        self.render_latency(&mut out);
        out
    }

    /// The gauges read from the shared health state: `rewarm_transport_paused{reason}` (1
    /// while the circuit breaker holds the transport, the reason its fault's label; 0 with
    /// `reason=""` otherwise) and `rewarm_ready` (what `/readyz` answers: 1 = 200).
    pub fn render_health(health: &crate::health::Health) -> String {
        let mut out = String::new();
        let (paused, reason) = match health.fault(crate::health::Component::Transport) {
            Some(f) => (1, f.reason),
            None => (0, String::new()),
        };
        let _ = writeln!(
            out,
            "# HELP rewarm_transport_paused 1 while the transport is paused by its circuit breaker; `reason` says why.\n# TYPE rewarm_transport_paused gauge\nrewarm_transport_paused{{reason=\"{reason}\"}} {paused}"
        );
        let _ = writeln!(
            out,
            "# HELP rewarm_ready 1 while /readyz answers 200.\n# TYPE rewarm_ready gauge\nrewarm_ready {}",
            u8::from(health.ready())
        );
        out
    }

    /// The counters with labels: replies by class, notifications by kind and outcome, IMAP
    /// polls by outcome.
    fn render_labelled(&self, out: &mut String) {
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
            "# HELP rewarm_notifications_total Notifications to sales by kind and outcome.\n# TYPE rewarm_notifications_total counter"
        );
        for (kind, row) in NOTIFICATION_KINDS.iter().zip(&self.notifications) {
            for (outcome, v) in NotificationOutcome::ALL.iter().zip(row) {
                let _ = writeln!(
                    out,
                    "rewarm_notifications_total{{kind=\"{kind}\",outcome=\"{}\"}} {}",
                    outcome.as_str(),
                    v.load(Ordering::Relaxed)
                );
            }
        }
        let _ = writeln!(
            out,
            "# HELP rewarm_imap_polls_total Polls of the reply mailbox by outcome.\n# TYPE rewarm_imap_polls_total counter"
        );
        for (outcome, v) in ImapPollOutcome::ALL.iter().zip(&self.imap_polls) {
            let _ = writeln!(
                out,
                "rewarm_imap_polls_total{{outcome=\"{}\"}} {}",
                outcome.as_str(),
                v.load(Ordering::Relaxed)
            );
        }
        let _ = writeln!(
            out,
            "# HELP rewarm_provider_events_total Email providers' events (webhooks) by provider and kind.\n# TYPE rewarm_provider_events_total counter"
        );
        for (provider, row) in EVENT_PROVIDERS.iter().zip(&self.provider_events) {
            for (kind, v) in EVENT_KINDS.iter().zip(row) {
                let _ = writeln!(
                    out,
                    "rewarm_provider_events_total{{provider=\"{provider}\",kind=\"{kind}\"}} {}",
                    v.load(Ordering::Relaxed)
                );
            }
        }
    }

    /// The send-latency histogram.
    fn render_latency(&self, out: &mut String) {
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

    #[test]
    fn notifications_are_counted_by_kind_and_outcome_unknown_kinds_as_other() {
        let m = Metrics::new();
        m.notification("webhook", NotificationOutcome::Delivered);
        m.notification("webhook", NotificationOutcome::Delivered);
        m.notification("owner_email", NotificationOutcome::Retried);
        m.notification("digest", NotificationOutcome::Failed);
        m.notification("carrier_pigeon", NotificationOutcome::Failed);
        let text = m.render(0);
        assert!(text.contains("# TYPE rewarm_notifications_total counter"));
        for line in [
            "rewarm_notifications_total{kind=\"webhook\",outcome=\"delivered\"} 2",
            "rewarm_notifications_total{kind=\"webhook\",outcome=\"retried\"} 0",
            "rewarm_notifications_total{kind=\"owner_email\",outcome=\"retried\"} 1",
            "rewarm_notifications_total{kind=\"digest\",outcome=\"failed\"} 1",
            "rewarm_notifications_total{kind=\"other\",outcome=\"failed\"} 1",
        ] {
            assert!(text.lines().any(|l| l == line), "no `{line}` in:\n{text}");
        }
        // Every kind × outcome is exposed, zeros included, so rates start at the first scrape.
        let series = text
            .lines()
            .filter(|l| l.starts_with("rewarm_notifications_total{"))
            .count();
        assert_eq!(
            series,
            NOTIFICATION_KINDS.len() * NotificationOutcome::ALL.len()
        );
    }

    #[test]
    fn the_transport_pause_is_a_gauge_with_its_reason() {
        use crate::health::{Component, Fault, Health};
        let h = Health::new();
        let text = Metrics::render_health(&h);
        assert!(
            text.lines()
                .any(|l| l == "rewarm_transport_paused{reason=\"\"} 0"),
            "{text}"
        );
        assert!(text.lines().any(|l| l == "rewarm_ready 1"), "{text}");
        h.set(
            Component::Transport,
            Fault {
                reason: "auth".into(),
                detail: "AUTH: 535".into(),
                since: chrono::DateTime::UNIX_EPOCH,
                next_try: None,
            },
        );
        let text = Metrics::render_health(&h);
        assert!(
            text.lines()
                .any(|l| l == "rewarm_transport_paused{reason=\"auth\"} 1"),
            "{text}"
        );
        assert!(
            text.lines().any(|l| l == "rewarm_ready 1"),
            "a pause keeps /readyz at 200"
        );
    }

    #[test]
    fn imap_polls_are_counted_by_outcome() {
        let m = Metrics::new();
        m.imap_poll(ImapPollOutcome::Ok);
        m.imap_poll(ImapPollOutcome::Ok);
        m.imap_poll(ImapPollOutcome::Failed);
        let text = m.render(0);
        assert!(text.contains("# TYPE rewarm_imap_polls_total counter"));
        for line in [
            "rewarm_imap_polls_total{outcome=\"ok\"} 2",
            "rewarm_imap_polls_total{outcome=\"stopped\"} 0",
            "rewarm_imap_polls_total{outcome=\"failed\"} 1",
        ] {
            assert!(text.lines().any(|l| l == line), "no `{line}` in:\n{text}");
        }
    }
}
