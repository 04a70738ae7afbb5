//! Forecast: what the daemon will send, and at which pass, if nothing changes (no reply, no
//! bounce, no new lead, no config edit). It replays the daemon's passes in memory with the
//! daemon's own functions — segments and enrolment ([`enrolment_for`]), the cadence, the
//! send windows, call steps, `then`, and the transport's limiter (daily cap, rates, domain
//! budgets) — see [`sim`] for the rules and [`qualify`] for leads that will match a segment
//! later (`min_age`). It reads, never writes.
//!
//! Streaming, to stay small at a million leads: the database hands over only the pending
//! deliveries due before the horizon, in claim order, row by row, and the leads in `new`
//! row by row; the simulation holds only what it scheduled itself inside the horizon; the
//! caller gets each email as it is decided (totals per day, or one line per email).
//!
//! [`enrolment_for`]: crate::outbound::scheduler::enrolment_for

mod qualify;
pub mod sim;
#[cfg(test)]
mod testing;

use std::sync::Arc;

use chrono::{DateTime, TimeDelta, Utc};
use chrono_tz::Tz;

use self::sim::{Grid, Sim};
pub use self::sim::{Kind, Work};
use crate::config::Settings;
use crate::domain::calendar::Place;
use crate::domain::lead::Lead;
use crate::store::forecast::reason_filter;
use crate::store::{ForecastDelivery, ForecastStore, Store, StoreError};
use crate::transport::limits::domain_of;

/// One email (or call task) the daemon will do, if nothing changes.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Planned {
    /// The pass that sends it (passes every `scheduler.tick` from the forecast's `now`).
    pub at: DateTime<Utc>,
    /// `at` in the lead's own zone.
    pub local: String,
    pub email: String,
    pub campaign: String,
    /// 1 = the first email.
    pub step: u32,
    pub template: String,
    /// `email`, or `call`: a call step sends the lead nothing; its owner gets a call task.
    pub kind: &'static str,
}

impl Planned {
    pub fn new(work: &Work, at: DateTime<Utc>, kind: Kind) -> Planned {
        Planned {
            at,
            local: at
                .with_timezone(&work.place.tz)
                .format("%Y-%m-%d %H:%M %Z")
                .to_string(),
            email: work
                .email
                .as_deref()
                .map_or_else(String::new, String::clone),
            campaign: work.campaign.to_string(),
            step: work.step + 1,
            template: work.template.to_string(),
            kind: match kind {
                Kind::Email => "email",
                Kind::Call => "call",
            },
        }
    }
}

/// The daemon's tick as the forecast's pass interval (at least a millisecond).
pub fn tick_of(settings: &Settings) -> TimeDelta {
    TimeDelta::from_std(settings.scheduler.tick)
        .unwrap_or(TimeDelta::seconds(1))
        .max(TimeDelta::milliseconds(1))
}

/// Replays the daemon's passes from `now` (its first pass) every `tick` until `until`
/// (exclusive). `out` hears of every email and call task, in pass order, with the pass
/// that does it. `with_emails`: whether `Work::email` is filled (for per-lead output).
pub async fn simulate<S, O>(
    store: &S,
    settings: &Settings,
    grid: Grid,
    with_emails: bool,
    out: O,
) -> Result<(), StoreError>
where
    S: Store + ForecastStore,
    O: FnMut(&Work, DateTime<Utc>, Kind) + Send,
{
    if grid.pass_for(grid.start).is_none() {
        // No pass before the horizon (`--days 0`): nothing to read.
        return Ok(());
    }
    let mut sim = Sim::new(settings, grid, out);
    // What the daily caps already counted in the last 24 hours (every daemon's sends).
    if let Some(limits) = &settings.limits {
        let keys = crate::transport::limits::durable::budgeted(limits);
        let from = crate::transport::limits::caps::window_start(grid.start);
        sim.seed_counts(store.send_buckets(from, &keys).await?);
    }
    let mut make = Maker {
        with_emails,
        with_domains: sim.needs_domains(),
        default_tz: settings.default_tz,
    };
    // Leads that completed a campaign with a `then`: they enter it at the first pass.
    for (name, campaign) in &settings.campaigns {
        let Some(then) = campaign.then.as_deref() else {
            continue;
        };
        let done = store.completed_in(name, i64::MAX as usize).await?;
        let ids: Vec<i64> = done.iter().map(|(id, _)| *id).collect();
        for lead in store.leads_by_ids(&ids).await? {
            let work = make.lead(&mut sim, &lead, name, 0, "");
            sim.completed(work, then);
        }
    }
    // Leads waiting in `new`: enrolled at the first pass a segment takes them (read only if
    // their loss reason lets a segment take them).
    let reasons = reason_filter(&settings.segments);
    store
        .new_leads(&reasons, |lead| {
            if let Some((_, e)) = qualify::enrolment_pass(settings, &lead, &sim.grid()) {
                let mut work = make.lead(&mut sim, &lead, &e.campaign, 0, &e.template);
                work.due = e.first_due;
                sim.schedule(work);
            }
        })
        .await?;
    // What is scheduled, in claim order.
    let addresses = make.with_emails || make.with_domains;
    store
        .pending_before(grid.until, addresses, |d| {
            let work = make.stored(&mut sim, d);
            sim.feed(work);
        })
        .await?;
    sim.finish();
    Ok(())
}

/// Builds the simulation's work items, keeping only what the output and the limiter need.
struct Maker {
    with_emails: bool,
    with_domains: bool,
    default_tz: Tz,
}

impl Maker {
    fn lead<O: FnMut(&Work, DateTime<Utc>, Kind)>(
        &mut self,
        sim: &mut Sim<'_, O>,
        lead: &Lead,
        campaign: &str,
        step: u32,
        template: &str,
    ) -> Work {
        Work {
            due: DateTime::<Utc>::MIN_UTC,
            id: 0,
            lead_id: lead.id,
            place: lead.place(self.default_tz),
            email: self
                .with_emails
                .then(|| Arc::new(lead.email.as_str().to_string())),
            domain: self
                .with_domains
                .then(|| sim.domain(&domain_of(lead.email.as_str()))),
            campaign: sim.name(campaign),
            step,
            template: sim.name(template),
        }
    }

    fn stored<O: FnMut(&Work, DateTime<Utc>, Kind)>(
        &mut self,
        sim: &mut Sim<'_, O>,
        d: ForecastDelivery,
    ) -> Work {
        let place = Place::stored(d.timezone.as_deref(), d.country.as_deref(), self.default_tz);
        Work {
            due: d.due_at,
            id: d.id,
            lead_id: d.lead_id,
            place,
            domain: self.with_domains.then(|| sim.domain(&domain_of(&d.email))),
            email: self.with_emails.then(|| Arc::new(d.email)),
            campaign: sim.name(&d.campaign),
            step: d.step,
            template: sim.name(&d.template),
        }
    }
}

/// The pass grid of a forecast from `now` over `days`, with the daemon's tick.
pub fn grid(settings: &Settings, now: DateTime<Utc>, until: DateTime<Utc>) -> Grid {
    Grid {
        start: now,
        tick: tick_of(settings),
        until,
    }
}
