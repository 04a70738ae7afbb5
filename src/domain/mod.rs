//! Pure types and rules: no I/O here.

pub mod cadence;
pub mod clock;
pub mod email;
pub mod lead;
pub mod lifecycle;
pub mod reply;
pub mod report;
pub mod segment;
pub mod signal;
