//! The integration tests: one binary, one module per area, helpers in `support/`.
//!
//! One binary links once (17 did before) and shares its helpers without `#[path]` tricks.
//! Run one area with a filter on its module: `cargo test --test it store::`.

mod support;

mod api_transports;
mod check;
mod hostile_input;
mod http;
mod imap;
mod inbound;
mod inbound_corpus;
mod limits_and_dkim;
mod notify;
mod pipeline;
mod postgres_scale_out;
mod readme;
mod reply_end_to_end;
mod store;
mod suppression;
mod transport;
mod webhooks;
