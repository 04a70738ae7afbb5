#![allow(dead_code)]
//! Helpers shared by the integration tests.

pub mod dovecot;
pub mod http_app;
pub mod recording_http;
pub mod smtp_server;
