//! The daemon's passes replayed in memory: pure, clock-free, and calling the functions the
//! scheduler and dispatch call (`Cadence::first_due` / `next_due` / `next_slot` — the send
//! window and closed days —, `Campaign::template_for` / `call_for`, and the transport's
//! [`Limiter`]).
//!
//! Passes run on a grid: `start`, `start + tick`, `start + 2·tick`, … (the daemon's first pass
//! is at `start`, then one every `scheduler.tick`). A pass at `p` does what
//! `scheduler::pass` does, in its order:
//! 1. leads that completed a campaign with a `then` at the previous pass enter that campaign,
//!    first email due at `first_due(p, p)` (`flow_on`);
//! 2. leads that a segment matches at `p` are enrolled (precomputed by [`super::qualify`]);
//! 3. every delivery due at or before `p` is claimed in `(due_at, id)` order, `batch_size`
//!    at a time; outside the lead's window or on a closed day it is deferred to `next_slot(p)`; a call step
//!    becomes a call task; the emails of a batch go through the limiter at `p + EPS` (what
//!    it holds is deferred to the limiter's `not_before`), and each one sent schedules the
//!    next step at `next_due(step + 1, p)`.
//!
//! Items are fed in `(due_at, id)` order from the database ([`Sim::feed`]) and merged with
//! what the simulation itself scheduled (a heap): only the steps scheduled inside the horizon
//! and the current batch are held in memory, never the whole queue.

use std::cmp::{Ordering, Reverse};
use std::collections::{BTreeMap, BinaryHeap, HashMap};
use std::sync::Arc;

use crate::domain::calendar::Place;
use chrono::{DateTime, TimeDelta, Utc};

use crate::config::Settings;
use crate::transport::limits::Limiter;
use crate::transport::limits::caps::MemoryCounts;

/// How far into a pass the limiter sees a batch: dispatch admits at the pass's `now` plus
/// the real time the pass has run (a few milliseconds), never exactly at `now`.
pub const EPS: TimeDelta = TimeDelta::milliseconds(1);

/// Ids given to deliveries the simulation creates: after every id the database holds, in
/// the order the daemon would insert them.
const FIRST_NEW_ID: i64 = 1 << 60;

/// A name or an address many work items share: one pointer wide (an `Arc<str>` is two).
/// The simulation can hold a million items at once (every email its lead's send window
/// defers, until that slot's pass), so each pointer counts: 104 bytes an item with `Arc<str>`
/// names, 80 with these (a forecast of 699,062 emails all deferred: 146 → 127 MiB).
pub type Shared = Arc<String>;

/// One delivery waiting to be claimed.
#[derive(Debug, Clone)]
pub struct Work {
    pub due: DateTime<Utc>,
    /// The delivery's id (or the simulation's own, after every stored one).
    pub id: i64,
    pub lead_id: i64,
    /// The lead's zone and the country whose holidays apply.
    pub place: Place,
    /// The lead's address, when the output names leads.
    pub email: Option<Shared>,
    /// The recipient's domain, when a limiter needs it (as the limiter takes it).
    pub domain: Option<Arc<str>>,
    pub campaign: Shared,
    /// 0 = the first email.
    pub step: u32,
    pub template: Shared,
}

/// What happens at a pass to a piece of work.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Email,
    /// A call step: its owner gets a task, the lead no email.
    Call,
}

/// The pass grid.
#[derive(Debug, Clone, Copy)]
pub struct Grid {
    pub start: DateTime<Utc>,
    pub tick: TimeDelta,
    pub until: DateTime<Utc>,
}

impl Grid {
    /// The first pass at or after `t` (None past chrono's range).
    pub fn at_or_after(&self, t: DateTime<Utc>) -> Option<DateTime<Utc>> {
        if t <= self.start {
            return Some(self.start);
        }
        let tick = self.tick.num_microseconds()?.max(1);
        let diff = (t - self.start).num_microseconds()?;
        let n = diff / tick + i64::from(diff % tick != 0);
        self.start
            .checked_add_signed(TimeDelta::microseconds(n.checked_mul(tick)?))
    }

    /// The pass at which work due at `t` is claimed, if it is before the horizon.
    pub fn pass_for(&self, t: DateTime<Utc>) -> Option<DateTime<Utc>> {
        self.at_or_after(t).filter(|p| *p < self.until)
    }
}

/// Times as the database keeps them (to the millisecond).
pub fn stored(t: DateTime<Utc>) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(t.timestamp_millis()).unwrap_or(t)
}

struct Queued(Work);

impl Queued {
    fn key(&self) -> (DateTime<Utc>, i64) {
        (self.0.due, self.0.id)
    }
}
impl PartialEq for Queued {
    fn eq(&self, other: &Self) -> bool {
        self.key() == other.key()
    }
}
impl Eq for Queued {}
impl PartialOrd for Queued {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Queued {
    fn cmp(&self, other: &Self) -> Ordering {
        self.key().cmp(&other.key())
    }
}

/// A lead whose campaign ended, entering the campaign's `then` at a pass.
struct Flow {
    work: Work,
    then: Shared,
}

/// The simulation. `out` hears of every email and call task, at the pass that does it.
pub struct Sim<'a, O: FnMut(&Work, DateTime<Utc>, Kind)> {
    settings: &'a Settings,
    grid: Grid,
    heap: BinaryHeap<Reverse<Queued>>,
    flows: BTreeMap<DateTime<Utc>, Vec<Flow>>,
    limiter: Option<Limiter>,
    /// The daily caps' counters (`send_counts`), kept in memory.
    counts: MemoryCounts,
    next_id: i64,
    /// The pass the database stream is filling, if any.
    current: Option<DateTime<Utc>>,
    batch: Vec<Work>,
    names: HashMap<String, Shared>,
    domains: HashMap<String, Arc<str>>,
    out: O,
}

impl<'a, O: FnMut(&Work, DateTime<Utc>, Kind)> Sim<'a, O> {
    pub fn new(settings: &'a Settings, grid: Grid, out: O) -> Self {
        Sim {
            settings,
            grid,
            heap: BinaryHeap::new(),
            flows: BTreeMap::new(),
            limiter: settings.limits.clone().map(Limiter::new),
            counts: MemoryCounts::default(),
            next_id: FIRST_NEW_ID,
            current: None,
            batch: Vec::new(),
            names: HashMap::new(),
            domains: HashMap::new(),
            out,
        }
    }

    pub fn grid(&self) -> Grid {
        self.grid
    }

    /// Starts the daily caps' counters from what the database counted (`send_counts`).
    pub fn seed_counts(&mut self, buckets: Vec<crate::store::SendBucket>) {
        self.counts = MemoryCounts::from_buckets(buckets);
    }

    /// Whether sends need the recipient's domain (a limiter is configured).
    pub fn needs_domains(&self) -> bool {
        self.limiter.is_some()
    }

    /// One shared copy of a campaign's or template's name.
    pub fn name(&mut self, s: &str) -> Shared {
        if let Some(n) = self.names.get(s) {
            return Arc::clone(n);
        }
        let n = Arc::new(s.to_string());
        self.names.insert(s.to_string(), Arc::clone(&n));
        n
    }

    /// One shared copy of a recipient's domain.
    pub fn domain(&mut self, s: &str) -> Arc<str> {
        if let Some(n) = self.domains.get(s) {
            return Arc::clone(n);
        }
        let n: Arc<str> = Arc::from(s);
        self.domains.insert(s.to_string(), Arc::clone(&n));
        n
    }

    fn new_id(&mut self) -> i64 {
        self.next_id += 1;
        self.next_id
    }

    /// A delivery the simulation creates (an enrolment's first step, a next step), kept only
    /// if it can be claimed before the horizon.
    pub fn schedule(&mut self, mut work: Work) {
        work.due = stored(work.due);
        if self.grid.pass_for(work.due).is_some() {
            work.id = self.new_id();
            self.heap.push(Reverse(Queued(work)));
        }
    }

    /// A lead that completed `from` before the first pass: it enters `then` at the first pass.
    pub fn completed(&mut self, work: Work, then: &str) {
        let then = self.name(then);
        self.flows
            .entry(self.grid.start)
            .or_default()
            .push(Flow { work, then });
    }

    /// A stored delivery, in `(due_at, id)` order.
    pub fn feed(&mut self, work: Work) {
        let Some(p) = self.grid.pass_for(work.due) else {
            return;
        };
        loop {
            match self.current {
                Some(c) if c == p => break,
                Some(c) => {
                    self.finish_pass(c);
                    self.current = None;
                }
                None => match self.next_pass() {
                    Some(h) if h < p => self.run_pass(h),
                    _ => {
                        self.begin_pass(p);
                        self.current = Some(p);
                    }
                },
            }
        }
        self.claim_queued(p, Some((work.due, work.id)));
        self.claim(p, work);
    }

    /// No more stored deliveries: runs every pass left before the horizon.
    pub fn finish(&mut self) {
        if let Some(c) = self.current.take() {
            self.finish_pass(c);
        }
        while let Some(p) = self.next_pass() {
            self.run_pass(p);
        }
    }

    /// The next pass at which something happens, before the horizon.
    fn next_pass(&self) -> Option<DateTime<Utc>> {
        let queued = self
            .heap
            .peek()
            .and_then(|Reverse(q)| self.grid.pass_for(q.0.due));
        let flow = self.flows.keys().next().copied();
        match (queued, flow) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
        .filter(|p| *p < self.grid.until)
    }

    fn run_pass(&mut self, p: DateTime<Utc>) {
        self.begin_pass(p);
        self.finish_pass(p);
    }

    /// `flow_on`: leads whose campaign ended at the previous pass enter its `then`.
    fn begin_pass(&mut self, p: DateTime<Utc>) {
        // Flows are only ever set at passes (never skipped): everything before `p` is done.
        let due: Vec<DateTime<Utc>> = self.flows.range(..=p).map(|(k, _)| *k).collect();
        for key in due {
            for flow in self.flows.remove(&key).unwrap_or_default() {
                let Some(next) = self.settings.campaigns.get(&*flow.then) else {
                    continue;
                };
                let template = self.name(next.template_for(0));
                self.schedule(Work {
                    due: next.cadence.first_due(p, p, flow.work.place),
                    campaign: Arc::clone(&flow.then),
                    step: 0,
                    template,
                    ..flow.work
                });
            }
        }
    }

    fn finish_pass(&mut self, p: DateTime<Utc>) {
        self.claim_queued(p, None);
        self.dispatch(p);
    }

    /// Claims the simulation's own work due at `p`, up to (not including) `before`.
    fn claim_queued(&mut self, p: DateTime<Utc>, before: Option<(DateTime<Utc>, i64)>) {
        while let Some(Reverse(top)) = self.heap.peek() {
            if top.0.due > p || before.is_some_and(|b| top.key() >= b) {
                break;
            }
            let Some(Reverse(Queued(work))) = self.heap.pop() else {
                break;
            };
            self.claim(p, work);
        }
    }

    fn claim(&mut self, p: DateTime<Utc>, work: Work) {
        self.batch.push(work);
        if self.batch.len() >= self.settings.scheduler.batch_size.max(1) {
            self.dispatch(p);
        }
    }

    /// One claimed batch at pass `p`, as `dispatch::process` treats it.
    fn dispatch(&mut self, p: DateTime<Utc>) {
        let batch = std::mem::take(&mut self.batch);
        let mut emails = Vec::with_capacity(batch.len());
        for work in batch {
            let Some(campaign) = self.settings.campaigns.get(&*work.campaign) else {
                // The daemon fails it ("no longer configured"): nothing is sent.
                continue;
            };
            // Outside the window or on a closed day: deferred to the next open slot.
            let due = campaign.cadence.next_slot(p, work.place);
            if due != p {
                self.requeue(work, due);
            } else if campaign.call_for(work.step).is_some() {
                (self.out)(&work, p, Kind::Call);
                self.next_step(work, p);
            } else {
                emails.push(work);
            }
        }
        let Some(limiter) = self.limiter.as_mut() else {
            for work in emails {
                (self.out)(&work, p, Kind::Email);
                self.next_step(work, p);
            }
            return;
        };
        let at = p + EPS;
        let keys: Vec<(i64, Arc<str>)> = emails
            .iter()
            .map(|w| (w.id, w.domain.clone().unwrap_or_else(|| Arc::from(""))))
            .collect();
        let admission = limiter.admit(at, &keys);
        let mut held: BTreeMap<i64, DateTime<Utc>> = admission.deferred.into_iter().collect();
        // The daily caps, reserved as dispatch reserves them in the database.
        let settings = limiter.settings().clone();
        let paced: Vec<i64> = admission.admitted;
        let domains: BTreeMap<i64, String> = keys
            .iter()
            .map(|(id, d)| (*id, settings.domain_key(d)))
            .collect();
        let cap_keys: Vec<String> = paced
            .iter()
            .map(|id| domains.get(id).cloned().unwrap_or_default())
            .collect();
        let (admitted, blocked) = self.counts.admit(&settings, &cap_keys, at);
        let min = at + TimeDelta::from_std(settings.min_defer).unwrap_or(TimeDelta::zero());
        for (i, free) in blocked {
            limiter.release(paced[i]);
            held.insert(paced[i], free.max(min));
        }
        for i in admitted {
            limiter.record(at, &(paced[i], Ok(())));
        }
        for work in emails {
            match held.get(&work.id) {
                Some(due) => self.requeue(work, *due),
                None => {
                    (self.out)(&work, p, Kind::Email);
                    self.next_step(work, p);
                }
            }
        }
    }

    /// Deferred: the same row, due again later.
    fn requeue(&mut self, mut work: Work, due: DateTime<Utc>) {
        work.due = stored(due);
        if self.grid.pass_for(work.due).is_some() {
            self.heap.push(Reverse(Queued(work)));
        }
    }

    /// The step after `work`, sent at pass `p` (dispatch's `next_step`), or the campaign's end.
    fn next_step(&mut self, work: Work, p: DateTime<Utc>) {
        let Some(campaign) = self.settings.campaigns.get(&*work.campaign) else {
            return;
        };
        let step = work.step + 1;
        match campaign.cadence.next_due(step, p, work.place) {
            Some(due) => {
                let template = self.name(campaign.template_for(step));
                self.schedule(Work {
                    due,
                    step,
                    template,
                    ..work
                });
            }
            None => {
                // Completed at `p`; `flow_on` at the next pass moves it to `then`.
                if let Some(then) = campaign.then.as_deref()
                    && let Some(next) = p.checked_add_signed(self.grid.tick)
                    && next < self.grid.until
                {
                    let then = self.name(then);
                    self.flows
                        .entry(next)
                        .or_default()
                        .push(Flow { work, then });
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::super::testing::settings;
    use super::*;

    /// Thursday 3 December 2026, at `h`:`m` UTC.
    fn t(d: u32, h: u32, m: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 12, d, h, m, 0).unwrap()
    }

    fn grid(start: DateTime<Utc>, tick_min: i64, days: i64) -> Grid {
        Grid {
            start,
            tick: TimeDelta::minutes(tick_min),
            until: start + TimeDelta::days(days),
        }
    }

    fn work(id: i64, due: DateTime<Utc>, campaign: &str, step: u32) -> Work {
        Work {
            due,
            id,
            lead_id: id,
            place: chrono_tz::UTC.into(),
            email: Some(Arc::new(format!("lead{id}@acme.test"))),
            domain: Some(Arc::from("acme.test")),
            campaign: Arc::new(campaign.to_string()),
            step,
            template: Arc::new("t".to_string()),
        }
    }

    type Log = Vec<(i64, u32, DateTime<Utc>, Kind)>;

    /// Runs the simulation over stored `items` (in claim order); returns (lead, step, pass, kind).
    fn run(
        s: &Settings,
        g: Grid,
        items: Vec<Work>,
        before: impl FnOnce(&mut Sim<'_, &mut dyn FnMut(&Work, DateTime<Utc>, Kind)>),
    ) -> Log {
        let mut log = Vec::new();
        let mut out = |w: &Work, at: DateTime<Utc>, k: Kind| log.push((w.lead_id, w.step, at, k));
        let mut sim = Sim::new(s, g, &mut out as &mut dyn FnMut(&Work, DateTime<Utc>, Kind));
        before(&mut sim);
        for w in items {
            sim.feed(w);
        }
        sim.finish();
        drop(sim);
        log
    }

    const WEEKLY: &str = r#"
[campaigns.c]
first_after = "0d"
every = "7d"
max_touches = 3
templates = ["t"]
send_window = { days = "Mon-Fri", hours = "09:00-17:00" }
"#;

    #[test]
    fn the_grid_rounds_up_to_the_next_pass() {
        let g = grid(t(3, 9, 0), 30, 10);
        assert_eq!(g.at_or_after(t(1, 0, 0)), Some(t(3, 9, 0)));
        assert_eq!(g.at_or_after(t(3, 9, 0)), Some(t(3, 9, 0)));
        assert_eq!(g.at_or_after(t(3, 9, 1)), Some(t(3, 9, 30)));
        assert_eq!(g.at_or_after(t(3, 9, 30)), Some(t(3, 9, 30)));
        assert_eq!(g.at_or_after(t(3, 10, 0) + EPS), Some(t(3, 10, 30)));
        assert_eq!(g.pass_for(t(13, 9, 0)), None, "the horizon is exclusive");
        assert_eq!(
            g.pass_for(t(13, 8, 59)),
            None,
            "its pass would be at the horizon"
        );
        assert_eq!(g.pass_for(t(13, 8, 30)), Some(t(13, 8, 30)));
    }

    #[test]
    fn each_step_goes_at_the_first_pass_in_its_window_and_the_next_counts_from_that_pass() {
        let s = settings(WEEKLY);
        // Due Thursday 3 Dec 07:10, before the window: the 09:00 pass sends it; 7 days later
        // (Thursday 10th 09:00) the next; then Thursday 17th 09:00.
        let log = run(
            &s,
            grid(t(3, 6, 0), 60, 30),
            vec![work(1, t(3, 7, 10), "c", 0)],
            |_| {},
        );
        let at: Vec<_> = log.iter().map(|(_, step, at, _)| (*step, *at)).collect();
        assert_eq!(
            at,
            vec![(0, t(3, 9, 0)), (1, t(10, 9, 0)), (2, t(17, 9, 0))]
        );
        // A 25-minute grid from 06:00: the first pass in the window is 09:20; the next step is
        // due on the 10th at 09:20, and the first pass at or after it is 09:40 (06:00 + 412 ×
        // 25 min); the third is due on the 17th at 09:40 and goes at 10:00 (816 × 25 min).
        let log = run(
            &s,
            grid(t(3, 6, 0), 25, 30),
            vec![work(1, t(3, 7, 10), "c", 0)],
            |_| {},
        );
        let at: Vec<_> = log.iter().map(|(_, _, at, _)| *at).collect();
        assert_eq!(at, vec![t(3, 9, 20), t(10, 9, 40), t(17, 10, 0)]);
    }

    #[test]
    fn a_step_due_in_the_weekend_waits_for_monday() {
        let s = settings(WEEKLY);
        let log = run(
            &s,
            grid(t(5, 0, 0), 60, 3),
            vec![work(1, t(5, 12, 0), "c", 0)],
            |_| {},
        );
        assert_eq!(log, vec![(1, 0, t(7, 9, 0), Kind::Email)]);
    }

    #[test]
    fn nothing_is_claimed_at_or_after_the_horizon() {
        let s = settings(WEEKLY);
        let log = run(
            &s,
            grid(t(3, 9, 0), 60, 7),
            vec![work(1, t(3, 9, 0), "c", 0)],
            |_| {},
        );
        assert_eq!(
            log.len(),
            1,
            "the second step (10 Dec 09:00) is exactly at the horizon"
        );
        let log = run(
            &s,
            grid(t(3, 9, 0), 60, 8),
            vec![work(1, t(3, 9, 0), "c", 0)],
            |_| {},
        );
        assert_eq!(log.len(), 2);
    }

    #[test]
    fn a_daily_cap_defers_the_rest_to_the_first_pass_after_24_hours_in_claim_order() {
        let s = settings(&format!("{WEEKLY}\n[transport.limits]\ndaily_cap = 2\n"));
        let items = (1..=3).map(|i| work(i, t(3, 9, 0), "c", 0)).collect();
        let log = run(&s, grid(t(3, 9, 0), 60, 3), items, |_| {});
        assert_eq!(
            log,
            vec![
                (1, 0, t(3, 9, 0), Kind::Email),
                (2, 0, t(3, 9, 0), Kind::Email),
                // The window frees at 09:00:00.001 on the 4th: the 10:00 pass.
                (3, 0, t(4, 10, 0), Kind::Email),
            ]
        );
    }

    #[test]
    fn what_the_simulation_scheduled_is_claimed_with_the_stored_rows_in_due_order() {
        // Lead 9's step 2 (scheduled by the simulation, due 10 Dec 09:00) comes before lead 1's
        // stored row due 10 Dec 09:30: under a cap of one a day, lead 9 goes first.
        let s = settings(&format!("{WEEKLY}\n[transport.limits]\ndaily_cap = 1\n"));
        let items = vec![work(9, t(3, 9, 0), "c", 0), work(1, t(10, 9, 30), "c", 0)];
        let log = run(&s, grid(t(3, 9, 0), 60, 9), items, |_| {});
        let order: Vec<_> = log
            .iter()
            .map(|(lead, step, at, _)| (*lead, *step, *at))
            .collect();
        assert_eq!(
            order,
            vec![
                (9, 0, t(3, 9, 0)),
                (9, 1, t(10, 9, 0)),
                (1, 0, t(11, 10, 0))
            ]
        );
    }

    #[test]
    fn a_batch_is_claimed_batch_size_at_a_time_and_the_cap_is_shared_by_all_batches() {
        let s = settings(&format!(
            "{WEEKLY}\n[scheduler]\nbatch_size = 2\n[transport.limits]\ndaily_cap = 3\n"
        ));
        let items = (1..=5).map(|i| work(i, t(3, 9, 0), "c", 0)).collect();
        let log = run(&s, grid(t(3, 9, 0), 60, 2), items, |_| {});
        let first: Vec<_> = log
            .iter()
            .filter(|e| e.2 == t(3, 9, 0))
            .map(|e| e.0)
            .collect();
        assert_eq!(first, vec![1, 2, 3]);
        let later: Vec<_> = log
            .iter()
            .filter(|e| e.2 > t(3, 9, 0))
            .map(|e| (e.0, e.2))
            .collect();
        assert_eq!(later, vec![(4, t(4, 10, 0)), (5, t(4, 10, 0))]);
    }

    #[test]
    fn a_completed_campaign_hands_over_to_its_then_at_the_next_pass() {
        let s = settings(
            r#"
[campaigns.once]
first_after = "0d"
every = "7d"
max_touches = 1
templates = ["t"]
then = "long"
[campaigns.long]
first_after = "0d"
every = "30d"
max_touches = 2
templates = ["u"]
"#,
        );
        let log = run(
            &s,
            grid(t(3, 9, 0), 60, 40),
            vec![work(1, t(3, 9, 0), "once", 0)],
            |_| {},
        );
        let at: Vec<_> = log.iter().map(|(_, step, at, _)| (*step, *at)).collect();
        // `first_due(p, p)` with first_after 0: due at the pass after completion, so sent there;
        // 30 days later is Saturday 2 January: the default window (Mon-Fri 09-17) says Monday.
        let monday = Utc.with_ymd_and_hms(2027, 1, 4, 9, 0, 0).unwrap();
        assert_eq!(at, vec![(0, t(3, 9, 0)), (0, t(3, 10, 0)), (1, monday)]);
    }

    #[test]
    fn a_lead_that_had_completed_before_the_first_pass_starts_its_then_at_once() {
        let s = settings(
            r#"
[campaigns.once]
first_after = "1d"
every = "7d"
max_touches = 1
templates = ["t"]
then = "once"
"#,
        );
        let log = run(&s, grid(t(3, 9, 0), 60, 3), vec![], |sim| {
            sim.completed(work(4, t(1, 0, 0), "once", 0), "once")
        });
        // A new round of `once`, first email a day after the first pass.
        assert_eq!(log, vec![(4, 0, t(4, 9, 0), Kind::Email)]);
    }

    #[test]
    fn a_call_step_is_a_task_not_an_email_and_the_cadence_goes_on() {
        let s = settings(
            r#"
[campaigns.c]
first_after = "0d"
every = "7d"
max_touches = 2
steps = [{ kind = "call", note = "ring" }, { template = "t" }]
"#,
        );
        let log = run(
            &s,
            grid(t(3, 9, 0), 60, 10),
            vec![work(1, t(3, 9, 0), "c", 0)],
            |_| {},
        );
        let kinds: Vec<_> = log.iter().map(|e| e.3).collect();
        assert_eq!(kinds, vec![Kind::Call, Kind::Email]);
    }

    #[test]
    fn a_row_of_a_campaign_no_longer_configured_sends_nothing() {
        let s = settings(WEEKLY);
        let log = run(
            &s,
            grid(t(3, 9, 0), 60, 10),
            vec![work(1, t(3, 9, 0), "gone", 0)],
            |_| {},
        );
        assert!(log.is_empty());
    }

    #[test]
    fn a_work_item_is_no_larger_than_80_bytes() {
        // The simulation may hold a million of them (see `Shared`).
        assert!(
            std::mem::size_of::<Work>() <= 80,
            "{}",
            std::mem::size_of::<Work>()
        );
    }

    #[test]
    fn stored_times_keep_milliseconds_only() {
        let at = t(3, 9, 0) + TimeDelta::microseconds(1_500);
        assert_eq!(stored(at), t(3, 9, 0) + TimeDelta::milliseconds(1));
    }
}
