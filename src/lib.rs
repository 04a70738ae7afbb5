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
//! - [`domain`]: pure rules (addresses, lead states, segment matching, cadence maths, what a
//!   reply is); no I/O.
//! - [`ingest`]: leads in from CSV and JSON Lines, with line-numbered errors.
//! - [`config`]: typed, validated settings; [`app`]: config + templates + transport wiring.
//! - [`store`]: the `Store` trait and the delivery state machine; one module per database.
//! - [`scheduler`]: one pass (expire leases, resume, enrol, dispatch); [`dispatch`]: claim →
//!   render → send → record in batches; [`render`] and [`compose`]: templates → message.
//! - [`transport`]: our SMTP connection pool and the `.eml` file transport.
//! - [`inbound`]: replies, bounces and complaints coming back (IMAP, provider webhooks,
//!   `inbound replay`), one path: parse → match → classify → effect → record.
//! - [`notify`]: sales is told — the notification outbox drained (owner email, signed webhook,
//!   weekly digest).
//! - [`http`]: unsubscribe, click tracking, health, metrics, the leads API, inbound webhooks.
//! - [`forecast`]: what will be sent when; [`cli`]: the `rewarm` command line.

pub mod app;
pub mod cli;
pub mod compose;
pub mod config;
pub mod daemon;
pub mod dispatch;
pub mod domain;
pub mod forecast;
pub mod hex;
pub mod http;
pub mod inbound;
pub mod ingest;
pub mod links;
pub mod metrics;
pub mod notify;
pub mod render;
pub mod scheduler;
pub mod secret;
pub mod store;
pub mod tokens;
pub mod transport;
