//! Held work on SQLite: paused campaigns and the deliveries they and paused
//! leads hold, with the statements both databases share (`store/hold.rs`).

use serde_json::json;

use super::*;
use crate::store::hold::*;

impl HoldStore for SqliteStore {
    hold_methods!();
}
