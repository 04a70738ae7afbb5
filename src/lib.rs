//! # rewarm
//!
//! Brings failed sales leads back to life: keeps recycled leads, emails them on per-segment
//! cadences written in config files, and records every step.
//!
//! ```text
//!  CSV / JSONL ──▶ ingest ──▶ store ◀── config (segments, campaigns) + templates
//!                               │
//!           scheduler (enrol matching leads, claim what is due, in batches, as leases)
//!                               │
//!             render (Tera) ──▶ compose (RFC 5322) ──▶ transport (SMTP pool | file)
//!                               │                                   │
//!                        record outcome (one transaction per batch) ◀┘
//! ```
//!
//! - [`domain`]: pure rules (addresses, lead states, segment matching, cadence maths); no I/O.
//! - [`ingest`]: leads in from CSV and JSON Lines, with line-numbered errors.
//! - [`config`]: typed, validated settings; [`app`]: config + templates + transport wiring.
//! - [`store`]: the `Store` trait and the delivery state machine; one module per database.
//! - [`scheduler`]: one pass (expire leases, resume, enrol, dispatch); [`dispatch`]: claim →
//!   render → send → record in batches; [`render`] and [`compose`]: templates → message.
//! - [`transport`]: our SMTP connection pool and the `.eml` file transport.
//! - [`forecast`]: what will be sent when; [`cli`]: the `rewarm` command line.

pub mod app;
pub mod cli;
pub mod config;
pub mod daemon;
pub mod domain;
pub mod hex;
pub mod http;
pub mod inbound;
pub mod ingest;
pub mod metrics;
pub mod notify;
pub mod outbound;
pub mod rewarm;
pub mod secret;
pub mod store;
pub mod tokens;
pub mod transport;

// Old paths kept for the integration tests and benches (`rewarm::scheduler::pass`,
// `rewarm::dispatch::send_due`) while tests/ is being restructured; src/ uses the real paths.
#[doc(hidden)]
pub use outbound::{dispatch, scheduler};
