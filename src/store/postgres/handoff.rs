//! Hand-offs on PostgreSQL: stale ones, reassignments and the digest's reads, with the
//! statements both databases share (`store/handoff.rs`).

use serde_json::json;

use super::*;
use crate::store::handoff::*;

impl HandoffStore for PgStore {
    handoff_methods!();
}
