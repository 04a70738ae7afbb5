//! Email providers' HTTP APIs: [`postmark`] (batches of up to 500, fields), [`sendgrid`] (one
//! call per message, fields) and [`mailgun`] (one call per message, raw MIME).
//!
//! Each provider's file holds only what is its own: its settings, its request and what its
//! answers mean (a table in its module docs). What they share is in [`client`] — the HTTP
//! client, the endpoint, the errors a failed call or a refusing answer becomes (with the HTTP
//! status, `Retry-After` and "recipient refused" as fields of the typed
//! [`SendError`](super::SendError)), bounded concurrency — and in [`mime`], which reads our
//! composed messages back into the fields Postmark and SendGrid want.
//!
//! A problem on our side (key, sender identity, account, sandbox domain, base URL) is always
//! `Transient` and marked [`TransportFault::Account`](super::TransportFault): the circuit
//! breaker pauses the transport (`status`, `/readyz` and `/metrics` say why), no delivery
//! burns an attempt or suppresses its address; fix the configuration and the probes resume.

pub mod client;
pub mod mailgun;
pub mod mime;
pub mod postmark;
pub mod sendgrid;

pub use client::SetupError;
