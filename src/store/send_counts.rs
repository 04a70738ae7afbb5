//! Sends counted per limit key and time bucket: the durable state of the daily caps and
//! per-domain budgets (`transport::limits::caps` decides; this only counts). A row is the
//! sends of one key (`*` for the transport, else a recipient domain) in one bucket
//! `[minute, minute + width)`, minutes since the Unix epoch; a bucket is in the window of
//! `from` (the first minute still counted) when `minute + width > from`.
//!
//! Reserving is atomic across daemons: on SQLite the single writer (`BEGIN IMMEDIATE`), on
//! PostgreSQL a transaction-scoped advisory lock of its own (not the import lock), held for
//! three short statements; nothing is held across the network.

use std::collections::HashMap;
use std::future::Future;

use super::StoreError;

/// Window totals of the keys asked for, and the busiest other keys with theirs.
pub type SendTotals = (HashMap<String, i64>, Vec<(String, i64)>);

/// Sends to add to (or, negative, take back from) one bucket of one key.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SendCount {
    pub key: String,
    pub minute: i64,
    /// The bucket's length in minutes.
    pub width: i64,
    pub sent: i64,
}

/// The sends of one key in one bucket of the window, as read back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SendBucket {
    pub key: String,
    pub minute: i64,
    pub width: i64,
    pub sent: i64,
}

/// See the module docs.
pub trait SendCountStore {
    /// In one transaction holding the counters' lock: reads the window totals of `keys`
    /// (buckets with `minute + width > from`), asks `plan` what to add given them, adds it
    /// (each count to its key and bucket), forgets buckets long out of any window, and
    /// returns the totals it read (keys without sends are absent). `plan` is pure: the
    /// caller runs it again on the returned totals to learn what was decided.
    fn reserve_sends<F>(
        &self,
        from: i64,
        keys: &[String],
        plan: F,
    ) -> impl Future<Output = Result<HashMap<String, i64>, StoreError>> + Send
    where
        F: FnOnce(&HashMap<String, i64>) -> Vec<SendCount> + Send;

    /// Takes back sends that certainly did not leave (never below zero); one statement.
    fn release_sends(
        &self,
        counts: &[SendCount],
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// The buckets of `keys` in the window of `from`, by key then minute.
    fn send_buckets(
        &self,
        from: i64,
        keys: &[String],
    ) -> impl Future<Output = Result<Vec<SendBucket>, StoreError>> + Send;

    /// The window totals of `keys` (absent: none), and the `busiest` keys other than `*` by
    /// their totals (largest first, then by name).
    fn send_totals(
        &self,
        from: i64,
        keys: &[String],
        busiest: usize,
    ) -> impl Future<Output = Result<SendTotals, StoreError>> + Send;
}

/// Adds up counts of the same key and bucket (a statement may name each row once).
pub(crate) fn merged(counts: &[SendCount]) -> Vec<SendCount> {
    let mut sums: HashMap<(&str, i64, i64), i64> = HashMap::new();
    for c in counts {
        *sums.entry((&c.key, c.minute, c.width)).or_default() += c.sent;
    }
    let mut out: Vec<SendCount> = sums
        .into_iter()
        .filter(|(_, n)| *n != 0)
        .map(|((key, minute, width), sent)| SendCount {
            key: key.to_string(),
            minute,
            width,
            sent,
        })
        .collect();
    // A fixed order: rows are locked in the same order by every writer.
    out.sort_by(|a, b| (&a.key, a.minute, a.width).cmp(&(&b.key, b.minute, b.width)));
    out
}

/// Buckets this far before the window are deleted when sends are reserved (an hour of
/// slack keeps `status`'s hourly buckets whole).
pub(crate) const PRUNE_BEFORE: i64 = 120;
