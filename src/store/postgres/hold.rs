//! Held work on PostgreSQL: paused campaigns and the deliveries they and paused
//! leads hold, with the statements both databases share (`store/hold.rs`).

use serde_json::json;

use super::*;
use crate::store::hold::*;

impl HoldStore for PgStore {
    hold_methods!();
}
