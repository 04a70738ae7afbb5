//! What the limiter's tests share: a fixed start, batches, settings, and a driver that runs
//! a queue to completion checking that every delivery is answered exactly once.

use std::collections::HashMap;
use std::time::Duration;

use chrono::{DateTime, TimeDelta, TimeZone, Utc};

use super::{Admission, DomainLimit, LimitSettings, Limiter};
use crate::transport::{SendError, SmtpReply};

pub fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2025, 3, 3, 9, 0, 0).unwrap()
}

pub fn secs(s: f64) -> TimeDelta {
    TimeDelta::milliseconds((s * 1000.0).round() as i64)
}

pub fn batch(ids: std::ops::Range<i64>, domain: &str) -> Vec<(i64, String)> {
    ids.map(|i| (i, domain.to_string())).collect()
}

pub fn unlimited_domains() -> DomainLimit {
    DomainLimit {
        per_second: 1e6,
        burst: 1_000_000,
        concurrency: 1_000_000,
        daily_cap: None,
    }
}

pub fn transport_only(per_second: Option<f64>, burst: Option<u32>) -> LimitSettings {
    LimitSettings {
        per_second,
        burst,
        default_domain: unlimited_domains(),
        ..LimitSettings::default()
    }
}

/// Every id of the batch is answered exactly once, and deferrals are later than now.
pub fn check_complete(batch: &[(i64, String)], a: &Admission, now: DateTime<Utc>) {
    let mut seen: Vec<i64> = a
        .admitted
        .iter()
        .copied()
        .chain(a.deferred.iter().map(|(id, _)| *id))
        .collect();
    seen.sort();
    let mut want: Vec<i64> = batch.iter().map(|(id, _)| *id).collect();
    want.sort();
    assert_eq!(
        seen, want,
        "every delivery is admitted or deferred, exactly once"
    );
    for (id, at) in &a.deferred {
        assert!(*at > now, "delivery {id} deferred to {at}, not after {now}");
    }
}

/// Runs a queue to completion: each tick admits what is due, records it as sent, and
/// requeues the deferred at their time. Returns every admission time.
pub fn drain(
    limiter: &mut Limiter,
    mut queue: Vec<(i64, String, DateTime<Utc>)>,
    tick: TimeDelta,
    until: DateTime<Utc>,
) -> Vec<(i64, DateTime<Utc>)> {
    let mut now = t0();
    let mut sent = Vec::new();
    while !queue.is_empty() && now <= until {
        let due: Vec<(i64, String)> = queue
            .iter()
            .filter(|(_, _, at)| *at <= now)
            .map(|(id, d, _)| (*id, d.clone()))
            .collect();
        if !due.is_empty() {
            let a = limiter.admit(now, &due);
            check_complete(&due, &a, now);
            for id in &a.admitted {
                sent.push((*id, now));
                assert_eq!(limiter.record(now, &(*id, Ok(()))), None);
            }
            let deferred: HashMap<i64, DateTime<Utc>> = a.deferred.iter().copied().collect();
            queue.retain(|(id, _, _)| !a.admitted.contains(id));
            for (id, _, at) in queue.iter_mut() {
                if let Some(when) = deferred.get(id) {
                    *at = *when;
                }
            }
        }
        now += tick;
    }
    assert!(
        queue.is_empty(),
        "{} deliveries never went out",
        queue.len()
    );
    sent
}

pub fn gmail_settings() -> LimitSettings {
    LimitSettings {
        domains: HashMap::from([(
            "gmail.com".to_string(),
            DomainLimit {
                per_second: 8.0,
                burst: 8,
                concurrency: 8,
                daily_cap: None,
            },
        )]),
        recovery_interval: Duration::from_secs(60),
        recovery_fraction: 0.25,
        ..LimitSettings::default()
    }
}

/// A refusal as the SMTP transport reports it (`{stage} refused: {code} {text}`, the reply as
/// fields): `Transient` for 4xx, `Permanent` for 5xx.
pub fn smtp_refusal(stage: &str, code: u16, text: &str) -> SendError {
    let message = format!("{stage} refused: {code} {text}");
    let error = if code >= 500 {
        SendError::permanent(message)
    } else {
        SendError::transient(message)
    };
    error.with_smtp_reply(SmtpReply::new(code, text))
}

/// A "try later" answer as an API transport reports it (the status and `Retry-After` as fields).
pub fn http_error(text: &str, status: u16, retry_after_secs: Option<u64>) -> SendError {
    SendError::transient(text).with_http_status(status, retry_after_secs.map(Duration::from_secs))
}
