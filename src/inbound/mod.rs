//! Inbound: replies, auto-replies, bounces and complaints come back (IMAP, provider
//! webhooks, `rewarm inbound replay`) and act on their lead, all through one path,
//! [`process`]:
//!
//! ```text
//!  raw bytes ──▶ parse ──▶ matching ──▶ classify ──▶ effect ──▶ Store::record_inbound
//!               (what it   (which lead)  (what it is)  (what it does,
//!                says)                                 notifications)
//! ```
//!
//! - [`parse`]: the message read into what the next steps need (pure);
//! - [`matching`]: which lead and delivery it is about (asks the store);
//! - [`classify`]: human reply, auto-reply, bounce, complaint, unsubscribe or other (pure; the
//!   [`Classification`](crate::domain::reply::Classification) type itself is in `domain`);
//! - [`effect`]: what that does to the lead, and the notifications a re-warm sends (pure);
//! - [`process`]: the steps in order, recorded in one transaction;
//! - [`review`]: a person assigns an unmatched message to a lead (the same steps) or ignores it;
//! - [`imap`]: the reply-mailbox poller that feeds it (the webhooks are in `http::inbound`);
//! - [`events`]: email providers' events (bounces, complaints, deliveries posted to
//!   `http::events`), matched to their delivery and given the effect of the equivalent report.
//!
//! Dependencies run one way: `process` uses the others; `matching` and `classify` read what
//! `parse` gives; `parse` and `effect` use nothing else here (the classification comes from
//! `domain::reply`, which depends on none of them).

pub mod classify;
pub mod effect;
pub mod events;
pub mod imap;
pub mod intent;
pub mod matching;
pub mod parse;
pub mod process;
pub mod review;
