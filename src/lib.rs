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
//!  IMAP / webhooks ──▶ inbound (parse, match, classify) ──▶ effect (state change, score)
//!                                                              └──▶ notify (sales)
//! ```
//!
//! The tree follows that pipeline:
//!
//! | module | what it holds |
//! |---|---|
//! | [`daemon`] | the daemon loop (one send pass per tick), its side tasks (reply mailbox, telling sales), signals, systemd watchdog |
//! | [`cli`] | the `rewarm` command line: argument parsing and printing only |
//! | [`config`] | `Settings` + `load` + the error collector; `raw` file shapes and defaults; one validator per section |
//! | [`domain`] | pure rules, no I/O: email, lead states, segment, clock, reply (`Classification`), `cadence/{span, window, cron, crontab, dst}` |
//! | [`ingest`] | leads in from CSV and JSON Lines, with line-numbered errors |
//! | [`outbound`] | `scheduler` (one pass), `dispatch` (claim → render → send → record in batches), `render`, `compose`, `links`, `forecast` |
//! | [`inbound`] | replies and bounces: `process`, `matching`, `imap`, `classify`, `effect` (the state change a reply makes), `parse/` |
//! | [`notify`] | telling sales: outbox, owner email, webhook, digest |
//! | [`http`] | unsubscribe, click, api, health, metrics, `inbound/` (one file per provider's webhook) |
//! | [`console`] | the web console under `/console/` (off unless `[console] enabled`): sign-in by emailed link, sessions, roles, pages |
//! | [`transport`] | typed `SendError` (with `TransportFault`), the circuit `breaker`, our SMTP pool, the `.eml` file transport, limits, `api/` (client, postmark, sendgrid, mailgun) |
//! | [`store`] | the `Store` trait by area and the delivery state machine; shared SQL; `sqlite/` and `postgres/` with one file per concern |
//!
//! Beside them: [`app`] (config + templates + transport wiring), [`tokens`] (signed links),
//! [`secret`] (values that print as `[redacted]`), [`metrics`] (Prometheus counters),
//! [`health`] (what is out of order now — a paused transport, a storage fault — for
//! `/readyz` and `/metrics`), [`fds`] (the file descriptor limit and the reserve for
//! sending), [`hex`].

pub mod app;
pub mod cli;
pub mod config;
pub mod console;
pub mod daemon;
pub mod domain;
pub mod fds;
pub mod health;
pub mod hex;
pub mod http;
pub mod inbound;
pub mod ingest;
pub mod metrics;
pub mod notify;
pub mod outbound;
pub mod secret;
pub mod store;
pub mod tokens;
pub mod transport;
