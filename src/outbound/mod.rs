//! Outbound: everything between a lead in the store and a message on the wire, in pipeline
//! order.
//!
//! - [`scheduler`]: one send pass — expire leases, resume, enrol matching leads, hand what is
//!   due to dispatch. The daemon loop and `run --once` call only `scheduler::pass`.
//! - [`dispatch`]: claim due deliveries as leases → render → send → record, in batches; each
//!   batch goes out in waves no larger than the transport's connections, each wave marked
//!   started just before it is sent.
//! - [`recording`]: outcomes kept in memory and written with retries until the database
//!   takes them; storage faults reported to [`health`](crate::health).
//! - [`shutdown`]: stop claiming, the grace deadline, aborting what is left.
//! - [`pause`]: the transport's circuit breaker as dispatch uses it (pauses a transport that
//!   fails as a whole, without costing any delivery an attempt).
//! - [`render`]: a step's Tera templates filled with a lead's data.
//! - [`compose`]: a rendered email becomes an RFC 5322 message (unsubscribe headers,
//!   Message-ID); [`links`] rewrites its links for click tracking; [`body`] encodes each part
//!   for the wire, [`mime`] writes the message.
//! - [`forecast`]: what will be sent when, by the same cadence code; it never writes.
//! - [`replan`]: campaign edits applied by rule at start-up and on SIGHUP, and `plan`.
//! - [`late`]: the lateness policy's `skip` (a step reached too late is skipped).
//! - [`recycle`]: bringing a lead back to nurture (`leads recycle`, sales' "not now").
//! - [`explain`]: a lead's story in words (`explain`, `leads show`), from the same rules.
//!
//! Each pass also returns out-of-scope leads whose re-check date passed to nurture and moves
//! leads that completed a campaign on to its `then` (`scheduler::recheck`, `flow_on`).

pub mod actions;
pub mod body;
pub mod compose;
pub mod dispatch;
pub mod explain;
pub mod forecast;
pub mod late;
pub mod links;
pub mod mime;
pub mod pause;
pub mod preview;
pub mod recording;
pub mod recycle;
pub mod render;
pub mod replan;
pub mod scheduler;
pub mod shutdown;
pub mod story;
pub mod suppression;
