//! Inbound: replies, auto-replies, bounces and complaints come back (IMAP, provider
//! webhooks, `rewarm inbound replay`), are parsed, matched to a lead and classified, and act
//! on it (see `process`).

pub mod classify;
pub mod effect;
pub mod imap;
pub mod matching;
pub mod parse;
pub mod process;
