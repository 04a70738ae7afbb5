//! The lead's local wall clock and where daylight-saving time makes it ambiguous: a local
//! reading that does not exist (the spring-forward gap) or happens twice (the fall-back
//! repeat). Every other part of the cadence code turns local readings into instants here, so
//! the DST rules in the module docs of [`super`] hold everywhere.

use chrono::{DateTime, LocalResult, NaiveDateTime, Offset, TimeDelta, TimeZone, Timelike, Utc};
use chrono_tz::Tz;

/// The wall-clock reading of `t` in `tz`; `None` only at the edges of chrono's range (where
/// `DateTime::naive_local` would panic).
pub(super) fn local_naive(t: DateTime<Utc>, tz: Tz) -> Option<NaiveDateTime> {
    let offset = tz.offset_from_utc_datetime(&t.naive_utc()).fix();
    t.naive_utc().checked_add_offset(offset)
}

/// The instants a wall-clock reading denotes in `tz`, earliest first: one normally, two inside
/// a fall-back repeat, and for a reading inside a spring-forward gap the first instant after
/// the gap.
pub(super) fn instants(naive: NaiveDateTime, tz: Tz) -> [Option<DateTime<Utc>>; 2] {
    match tz.from_local_datetime(&naive) {
        LocalResult::Single(t) => [Some(t.to_utc()), None],
        LocalResult::Ambiguous(a, b) => {
            let (a, b) = (a.to_utc(), b.to_utc());
            [Some(a.min(b)), Some(a.max(b))]
        }
        LocalResult::None => [end_of_gap(naive, tz), None],
    }
}

/// The one instant we use for a wall-clock reading: the earliest, or the end of the gap.
pub(super) fn earliest_instant(naive: NaiveDateTime, tz: Tz) -> Option<DateTime<Utc>> {
    instants(naive, tz)[0]
}

/// The first instant after the spring-forward gap that contains `naive`.
pub(super) fn end_of_gap(naive: NaiveDateTime, tz: Tz) -> Option<DateTime<Utc>> {
    if let Some(end) = chrono_tz::GapInfo::new(&naive, &tz).and_then(|gap| gap.end) {
        return Some(end.to_utc());
    }
    // GapInfo gives up when the reading after the gap is itself ambiguous or at the edge of the
    // zone data. Walk forward minute by minute instead (real gaps last at most a day).
    let mut minute = naive.with_second(0)?.with_nanosecond(0)?;
    for _ in 0..26 * 60 {
        minute = minute.checked_add_signed(TimeDelta::minutes(1))?;
        match tz.from_local_datetime(&minute) {
            LocalResult::Single(t) => return Some(t.to_utc()),
            LocalResult::Ambiguous(a, b) => return Some(a.min(b).to_utc()),
            LocalResult::None => {}
        }
    }
    None
}

/// UTC offset of `tz` at the given Unix second.
pub(super) fn offset_seconds_at(unix_seconds: i64, tz: Tz) -> Option<i32> {
    let t = DateTime::from_timestamp(unix_seconds, 0)?;
    Some(
        tz.offset_from_utc_datetime(&t.naive_utc())
            .fix()
            .local_minus_utc(),
    )
}

/// The instants in `(from, to]` at which `tz` sets its clocks back, in order. Offsets are
/// compared a day apart and each change is pinned down to the second by bisection (zones never
/// change twice within a day).
pub(super) fn clock_setbacks(from: DateTime<Utc>, to: DateTime<Utc>, tz: Tz) -> Vec<DateTime<Utc>> {
    let mut setbacks = Vec::new();
    let end = to.timestamp();
    let mut a = from.timestamp();
    while a < end {
        let b = a.saturating_add(86_400).min(end);
        if let (Some(before), Some(after)) = (offset_seconds_at(a, tz), offset_seconds_at(b, tz))
            && after < before
        {
            let (mut lo, mut hi) = (a, b);
            while hi - lo > 1 {
                let mid = lo + (hi - lo) / 2;
                if offset_seconds_at(mid, tz) == Some(before) {
                    lo = mid;
                } else {
                    hi = mid;
                }
            }
            setbacks.extend(DateTime::from_timestamp(hi, 0));
        }
        a = b;
    }
    setbacks
}
