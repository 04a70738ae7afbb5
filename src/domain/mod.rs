//! Pure types and rules: no I/O here.

pub mod cadence;
pub mod calendar;
pub mod clock;
pub mod email;
pub mod handoff;
pub mod intent;
pub mod lead;
pub mod lifecycle;
pub mod privacy;
pub mod reply;
pub mod report;
pub mod segment;
pub mod signal;
pub mod unmatched;
