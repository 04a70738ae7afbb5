//! The integration tests: one binary, one module per area, helpers in `support/`.
//!
//! One binary links once (17 did before) and shares its helpers without `#[path]` tricks.
//! Run one area with a filter on its module: `cargo test --test it store::`.

// Some tests put secrets in the process environment (`std::env::set_var`, unsafe since
// edition 2024); the library itself has no unsafe code (`unsafe_code = "deny"` in Cargo.toml).
#![allow(unsafe_code)]

mod support;

mod api_transports;
mod bounce_corpus;
mod bounce_replay;
mod browse_store;
mod bulk_triggers;
mod calendar;
mod campaign_edits;
mod caps_durable;
mod check;
mod checkpoints;
mod console_auth;
mod console_browser;
mod console_pages;
mod console_review;
mod delivery_key;
mod enrol_lanes;
mod explain;
mod faults_kill;
mod faults_repair;
mod faults_shutdown;
mod faults_storage;
mod feedback_loop;
mod forecast_exact;
mod forecast_holidays;
mod forecast_reads;
mod handoff;
mod hostile_input;
mod hot_leads;
mod http;
mod http_flood;
mod imap;
mod import_quality;
mod import_stream;
mod inbound;
mod inbound_corpus;
mod input_limits;
mod intent;
mod intent_segments;
mod lifecycle_store;
mod limits_and_dkim;
mod notify;
mod owner_back;
mod page_room;
mod pause;
mod pipeline;
mod planner_stats;
mod postgres_scale_out;
mod privacy;
mod provider_events;
mod readme;
mod reply_end_to_end;
mod report;
mod report_stages;
mod scale;
mod sent_events;
mod shutdown;
mod state_plans;
mod store;
mod store_loop;
mod suppression;
mod then_campaign;
mod transport;
mod transport_breaker;
mod webhook_relay;
mod webhooks;
