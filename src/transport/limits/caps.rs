//! The daily caps and per-domain budgets: pure window arithmetic (no I/O, no clock). Their
//! state lives in the database (`store::SendCountStore`), so a cap of N means N in any
//! rolling 24 hours across restarts and across daemons sharing one database; `durable.rs`
//! does the I/O.
//!
//! Sends are counted per **key** — [`TRANSPORT_KEY`] for the whole transport, else the
//! recipient domain (an alias's target) — in one-minute buckets. A send counts from its
//! reservation until 24 hours after the **end** of its minute ([`leaves_at`]): the window
//! is at most a minute longer than 24 hours, never shorter, so no 24-hour span ever holds
//! more than the cap. Domains without a budget are counted in hour buckets, for `status` only.

use std::collections::HashMap;

use chrono::{DateTime, TimeDelta, Utc};

use super::settings::LimitSettings;
use crate::store::{SendBucket, SendCount};

/// The key of the transport-wide cap (no domain is `*`).
pub const TRANSPORT_KEY: &str = "*";

/// Minutes in the rolling window.
pub const WINDOW_MINUTES: i64 = 24 * 60;

/// The bucket width (minutes) of a domain counted for `status` only.
pub const STATUS_WIDTH: i64 = 60;

/// The minute (since the Unix epoch) `t` falls in.
pub fn minute_of(t: DateTime<Utc>) -> i64 {
    t.timestamp().div_euclid(60)
}

/// The first minute whose sends still count at `now`.
pub fn window_start(now: DateTime<Utc>) -> i64 {
    minute_of(now) - WINDOW_MINUTES
}

/// When the sends counted in `minute` leave the window: 24 hours after the minute ends.
pub fn leaves_at(minute: i64) -> DateTime<Utc> {
    DateTime::from_timestamp((minute + WINDOW_MINUTES + 1) * 60, 0)
        .unwrap_or(DateTime::<Utc>::MAX_UTC)
}

/// The cap of `key` (the transport's, or its domain's budget), if any.
pub fn cap_of(settings: &LimitSettings, key: &str) -> Option<u64> {
    if key == TRANSPORT_KEY {
        settings.daily_cap
    } else {
        settings.domain_limit(key).daily_cap
    }
}

/// Which deliveries of a batch fit under the caps, given the window totals read.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Plan {
    /// Indexes into the batch, in order.
    pub admitted: Vec<usize>,
    /// Indexes into the batch with the capped keys that held each back.
    pub blocked: Vec<(usize, Vec<String>)>,
}

/// Walks the batch (`keys[i]`: the domain key of delivery `i`) in order: a delivery goes if
/// the transport and its domain each have a place left (`used` plus what this batch took,
/// under the cap); one that goes takes a place in both.
pub fn plan(keys: &[String], settings: &LimitSettings, used: &HashMap<String, i64>) -> Plan {
    let mut taken: HashMap<&str, i64> = HashMap::new();
    let mut out = Plan::default();
    let has_room = |key: &str, taken: &HashMap<&str, i64>| match cap_of(settings, key) {
        None => true,
        Some(cap) => {
            let now = used.get(key).copied().unwrap_or(0) + taken.get(key).copied().unwrap_or(0);
            now < i64::try_from(cap).unwrap_or(i64::MAX)
        }
    };
    for (i, domain) in keys.iter().enumerate() {
        let mut full = Vec::new();
        for key in [TRANSPORT_KEY, domain.as_str()] {
            if !has_room(key, &taken) {
                full.push(key.to_string());
            }
        }
        if full.is_empty() {
            *taken.entry(TRANSPORT_KEY).or_default() += 1;
            *taken.entry(domain.as_str()).or_default() += 1;
            out.admitted.push(i);
        } else {
            out.blocked.push((i, full));
        }
    }
    out
}

/// What the admitted deliveries add, at minute `at`: the transport and every domain (a
/// budgeted one per minute, the others per hour, for `status`).
pub fn increments(
    keys: &[String],
    plan: &Plan,
    settings: &LimitSettings,
    at: i64,
) -> Vec<SendCount> {
    let mut counts: Vec<SendCount> = Vec::with_capacity(plan.admitted.len() + 1);
    if !plan.admitted.is_empty() {
        counts.push(SendCount {
            key: TRANSPORT_KEY.to_string(),
            minute: at,
            width: 1,
            sent: plan.admitted.len() as i64,
        });
    }
    let mut per_domain: HashMap<&str, i64> = HashMap::new();
    for &i in &plan.admitted {
        *per_domain.entry(keys[i].as_str()).or_default() += 1;
    }
    for (domain, sent) in per_domain {
        let (minute, width) = bucket(settings, domain, at);
        counts.push(SendCount {
            key: domain.to_string(),
            minute,
            width,
            sent,
        });
    }
    counts
}

/// The bucket (first minute, width) a send to `key` at minute `at` is counted in.
pub fn bucket(settings: &LimitSettings, key: &str, at: i64) -> (i64, i64) {
    if cap_of(settings, key).is_some() || key == TRANSPORT_KEY {
        (at, 1)
    } else {
        (at - at.rem_euclid(STATUS_WIDTH), STATUS_WIDTH)
    }
}

/// When the `waiting`-th delivery (0-based) held back by a full key may go: once enough of
/// the window's sends (`buckets`, oldest first, including this batch's) have left it that
/// `total + waiting + 1 ≤ cap`. More waiting than the window holds: a full window later.
pub fn free_at(
    buckets: &[(i64, i64)],
    cap: u64,
    waiting: u64,
    now: DateTime<Utc>,
) -> DateTime<Utc> {
    let total: i64 = buckets.iter().map(|(_, n)| n.max(&0)).sum();
    let cap = i64::try_from(cap).unwrap_or(i64::MAX);
    let need = total.saturating_add(waiting as i64 + 1).saturating_sub(cap);
    if need <= 0 {
        return now;
    }
    let mut left = 0i64;
    for (minute, sent) in buckets {
        left += sent.max(&0);
        if left >= need {
            return leaves_at(*minute).max(now);
        }
    }
    leaves_at(minute_of(now))
}

/// When each blocked delivery may go: per full key, its place in that key's line.
pub fn defer_times(
    plan: &Plan,
    settings: &LimitSettings,
    buckets: &[SendBucket],
    now: DateTime<Utc>,
) -> Vec<(usize, DateTime<Utc>)> {
    let mut by_key: HashMap<&str, Vec<(i64, i64)>> = HashMap::new();
    for b in buckets {
        by_key
            .entry(b.key.as_str())
            .or_default()
            .push((b.minute, b.sent));
    }
    let mut waiting: HashMap<&str, u64> = HashMap::new();
    let mut out = Vec::with_capacity(plan.blocked.len());
    for (index, keys) in &plan.blocked {
        let mut at = now + TimeDelta::minutes(1);
        for key in keys {
            let Some(cap) = cap_of(settings, key) else {
                continue;
            };
            let line = waiting.entry(key.as_str()).or_default();
            let window = by_key.get(key.as_str()).map(Vec::as_slice).unwrap_or(&[]);
            at = at.max(free_at(window, cap, *line, now));
            *line += 1;
        }
        out.push((*index, at));
    }
    out
}

/// The daily caps' counters kept in memory the way `send_counts` keeps them in the database:
/// `forecast`'s replay of [`super::durable::admit`] (reserve, then defer what did not fit to
/// when its place frees up), with the same functions.
#[derive(Debug, Clone, Default)]
pub struct MemoryCounts {
    /// Per capped key: (minute, width, sent), oldest first.
    buckets: HashMap<String, Vec<(i64, i64, i64)>>,
}

impl MemoryCounts {
    /// Counters holding `buckets` (read from `send_counts`).
    pub fn from_buckets(buckets: Vec<SendBucket>) -> Self {
        let mut counts = Self::default();
        for b in buckets {
            counts
                .buckets
                .entry(b.key)
                .or_default()
                .push((b.minute, b.width, b.sent));
        }
        counts
    }

    /// Reserves what fits of a batch (recipient `keys`, as [`LimitSettings::domain_key`]
    /// gives them) at `now`: the indexes admitted, and each one held back with the time its
    /// place frees up.
    pub fn admit(
        &mut self,
        settings: &LimitSettings,
        keys: &[String],
        now: DateTime<Utc>,
    ) -> (Vec<usize>, Vec<(usize, DateTime<Utc>)>) {
        let (at, from) = (minute_of(now), window_start(now));
        let in_window =
            |&(minute, width, _): &(i64, i64, i64)| minute > from - 60 && minute + width > from;
        for list in self.buckets.values_mut() {
            list.retain(in_window);
        }
        let used: HashMap<String, i64> = self
            .buckets
            .iter()
            .map(|(k, list)| (k.clone(), list.iter().map(|b| b.2).sum()))
            .collect();
        let plan = plan(keys, settings, &used);
        for c in increments(keys, &plan, settings, at) {
            if cap_of(settings, &c.key).is_none() {
                continue;
            }
            let list = self.buckets.entry(c.key).or_default();
            match list.iter_mut().find(|b| b.0 == c.minute && b.1 == c.width) {
                Some(b) => b.2 += c.sent,
                None => list.push((c.minute, c.width, c.sent)),
            }
        }
        if plan.blocked.is_empty() {
            return (plan.admitted, Vec::new());
        }
        let mut window: Vec<SendBucket> = self
            .buckets
            .iter()
            .flat_map(|(key, list)| {
                list.iter().map(|&(minute, width, sent)| SendBucket {
                    key: key.clone(),
                    minute,
                    width,
                    sent,
                })
            })
            .collect();
        window.sort_by(|a, b| (&a.key, a.minute).cmp(&(&b.key, b.minute)));
        let held = defer_times(&plan, settings, &window, now);
        (plan.admitted, held)
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;
    use crate::transport::limits::DomainLimit;

    fn t(h: u32, m: u32, s: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 3, 2, h, m, s).unwrap()
    }

    fn capped(transport: Option<u64>, gmail: Option<u64>) -> LimitSettings {
        let mut s = LimitSettings {
            daily_cap: transport,
            ..LimitSettings::default()
        };
        s.domains.insert(
            "gmail.com".into(),
            DomainLimit {
                daily_cap: gmail,
                ..DomainLimit::default()
            },
        );
        s
    }

    fn keys(domains: &[&str]) -> Vec<String> {
        domains.iter().map(|d| d.to_string()).collect()
    }

    #[test]
    fn memory_counts_admit_as_the_database_would_and_free_places_a_day_later() {
        let settings = capped(Some(3), Some(1));
        let mut counts = MemoryCounts::default();
        let (admitted, held) = counts.admit(
            &settings,
            &keys(&["gmail.com", "gmail.com", "a.org"]),
            t(9, 0, 0),
        );
        assert_eq!(admitted, vec![0, 2]);
        // The second gmail.com waits for the first one's place: 24 h after the end of its minute.
        assert_eq!(held, vec![(1, leaves_at(minute_of(t(9, 0, 0))))]);
        let (admitted, held) = counts.admit(&settings, &keys(&["a.org", "b.org"]), t(10, 0, 0));
        assert_eq!(admitted, vec![0], "the transport's third place");
        assert_eq!(held.len(), 1);
        assert!(held[0].1 > t(9, 0, 0) + TimeDelta::hours(24), "{held:?}");
        // A day later every place is free again; the counters seeded from stored buckets agree.
        let later = t(9, 0, 0) + TimeDelta::hours(24) + TimeDelta::minutes(2);
        let (admitted, _) = counts.admit(&settings, &keys(&["gmail.com"]), later);
        assert_eq!(admitted, vec![0]);
        let seeded = MemoryCounts::from_buckets(vec![SendBucket {
            key: TRANSPORT_KEY.into(),
            minute: minute_of(t(9, 0, 0)),
            width: 1,
            sent: 3,
        }]);
        let (admitted, held) = seeded
            .clone()
            .admit(&settings, &keys(&["a.org"]), t(12, 0, 0));
        assert!(admitted.is_empty() && held.len() == 1, "{held:?}");
    }

    #[test]
    fn a_send_counts_until_24_hours_after_the_end_of_its_minute() {
        for sent in [t(10, 0, 0), t(10, 0, 30), t(10, 0, 59)] {
            let m = minute_of(sent);
            assert_eq!(leaves_at(m), t(10, 1, 0) + TimeDelta::hours(24));
            // Still counted one second before, no longer at that moment.
            let before = leaves_at(m) - TimeDelta::seconds(1);
            assert!(m >= window_start(before), "{sent}: counted at {before}");
            assert!(
                m < window_start(leaves_at(m)),
                "{sent}: gone at {}",
                leaves_at(m)
            );
            // Never shorter than 24 hours from the send itself.
            assert!(leaves_at(m) - sent >= TimeDelta::hours(24));
            assert!(leaves_at(m) - sent <= TimeDelta::hours(24) + TimeDelta::minutes(1));
        }
        // Before the epoch too (div_euclid, not truncation).
        let old = Utc.with_ymd_and_hms(1969, 12, 31, 23, 59, 30).unwrap();
        assert_eq!(minute_of(old), -1);
    }

    #[test]
    fn the_plan_admits_in_order_until_either_cap_is_full() {
        let s = capped(Some(5), Some(2));
        let batch = keys(&[
            "gmail.com",
            "a.test",
            "gmail.com",
            "gmail.com",
            "b.test",
            "a.test",
            "c.test",
        ]);
        let used = HashMap::from([("*".to_string(), 1), ("gmail.com".to_string(), 0)]);
        let p = plan(&batch, &s, &used);
        assert_eq!(p.admitted, vec![0, 1, 2, 4]);
        assert_eq!(
            p.blocked,
            vec![
                (3, vec!["gmail.com".to_string()]),
                (5, vec!["*".to_string()]),
                (6, vec!["*".to_string()]),
            ]
        );
        // Nothing configured: everything goes; a full transport holds everything back.
        assert_eq!(
            plan(&batch, &LimitSettings::default(), &HashMap::new())
                .admitted
                .len(),
            7
        );
        let full = HashMap::from([("*".to_string(), 5)]);
        assert!(plan(&batch, &s, &full).admitted.is_empty());
        // Over the cap (a cap lowered by a reload): nothing, never a negative count.
        let over = HashMap::from([("gmail.com".to_string(), 9)]);
        let p = plan(&keys(&["gmail.com", "x.test"]), &s, &over);
        assert_eq!(p.admitted, vec![1]);
    }

    #[test]
    fn a_default_domain_budget_is_each_domains_own_and_aliases_share_one() {
        let mut s = LimitSettings::default();
        s.default_domain.daily_cap = Some(1);
        let p = plan(&keys(&["a.test", "b.test", "a.test"]), &s, &HashMap::new());
        assert_eq!(p.admitted, vec![0, 1]);
        // hotmail.com shares outlook.com's limit, and so its budget.
        s.aliases.insert("hotmail.com".into(), "outlook.com".into());
        let aliased = vec![s.domain_key("Hotmail.COM."), s.domain_key("outlook.com")];
        assert_eq!(aliased, keys(&["outlook.com", "outlook.com"]));
        assert_eq!(plan(&aliased, &s, &HashMap::new()).admitted, vec![0]);
        let s = capped(None, None);
        assert_eq!(cap_of(&s, "gmail.com"), None);
        assert_eq!(cap_of(&s, "*"), None);
    }

    #[test]
    fn increments_count_the_transport_and_every_domain_in_their_buckets() {
        let s = capped(Some(10), Some(10));
        let batch = keys(&["gmail.com", "a.test", "gmail.com"]);
        let p = plan(&batch, &s, &HashMap::new());
        let at = minute_of(t(10, 17, 5));
        let mut inc = increments(&batch, &p, &s, at);
        inc.sort_by(|a, b| a.key.cmp(&b.key));
        let hour = minute_of(t(10, 0, 0));
        assert_eq!(
            inc,
            vec![
                SendCount {
                    key: "*".into(),
                    minute: at,
                    width: 1,
                    sent: 3
                },
                SendCount {
                    key: "a.test".into(),
                    minute: hour,
                    width: 60,
                    sent: 1
                },
                SendCount {
                    key: "gmail.com".into(),
                    minute: at,
                    width: 1,
                    sent: 2
                },
            ]
        );
        assert!(increments(&batch, &Plan::default(), &s, at).is_empty());
    }

    #[test]
    fn a_full_window_frees_a_place_as_each_old_send_leaves() {
        let now = t(12, 0, 0);
        let m = |h, min| minute_of(t(h, min, 0));
        // Cap 5: 2 sent at 01:00, 1 at 03:30, 2 at 11:59 — full.
        let buckets = [(m(1, 0), 2), (m(3, 30), 1), (m(11, 59), 2)];
        let next_day = |h, min| t(h, min, 0) + TimeDelta::hours(24) + TimeDelta::minutes(1);
        assert_eq!(free_at(&buckets, 5, 0, now), next_day(1, 0));
        assert_eq!(free_at(&buckets, 5, 1, now), next_day(1, 0));
        assert_eq!(free_at(&buckets, 5, 2, now), next_day(3, 30));
        assert_eq!(free_at(&buckets, 5, 3, now), next_day(11, 59));
        assert_eq!(free_at(&buckets, 5, 4, now), next_day(11, 59));
        // More waiting than the window holds: a full window from now.
        assert_eq!(free_at(&buckets, 5, 5, now), next_day(12, 0));
        // Room left (cap 7): now.
        assert_eq!(free_at(&buckets, 7, 1, now), now);
        assert_eq!(free_at(&buckets, 7, 2, now), next_day(1, 0));
        // An empty window with a cap of 0 places (a lowered cap): a window later.
        assert_eq!(free_at(&[], 0, 0, now), next_day(12, 0));
    }

    #[test]
    fn deferrals_wait_for_every_full_key_in_line() {
        let s = capped(Some(3), Some(1));
        let now = t(12, 0, 0);
        let at = minute_of(now);
        let batch = keys(&["gmail.com", "gmail.com", "a.test", "a.test", "gmail.com"]);
        let used = HashMap::from([("*".to_string(), 1)]);
        let p = plan(&batch, &s, &used);
        assert_eq!(p.admitted, vec![0, 2]);
        let earlier = minute_of(t(9, 0, 0));
        let buckets = vec![
            SendBucket {
                key: "*".into(),
                minute: earlier,
                width: 1,
                sent: 1,
            },
            SendBucket {
                key: "*".into(),
                minute: at,
                width: 1,
                sent: 2,
            },
            SendBucket {
                key: "gmail.com".into(),
                minute: at,
                width: 1,
                sent: 1,
            },
        ];
        let times: HashMap<usize, DateTime<Utc>> =
            defer_times(&p, &s, &buckets, now).into_iter().collect();
        let day = TimeDelta::hours(24) + TimeDelta::minutes(1);
        // #1: gmail full (its send now leaves tomorrow 12:01).
        assert_eq!(times[&1], t(12, 0, 0) + day);
        // #3: the transport is full; first in its line: the 09:00 send leaves.
        assert_eq!(times[&3], t(9, 0, 0) + day);
        // #4: gmail and the transport both full; second in the transport's line.
        assert_eq!(times[&4], t(12, 0, 0) + day);
        assert!(times.values().all(|at| *at > now));
    }
}
