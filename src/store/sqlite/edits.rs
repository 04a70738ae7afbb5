//! Campaign edits on SQLite: campaign versions, `plan`'s counts, re-plans and the lateness
//! policy, with the statements both databases share (`store/edits.rs`).

use std::collections::BTreeMap;

use serde_json::json;

use super::*;
use crate::store::edits::*;

impl EditStore for SqliteStore {
    edit_methods!();
}
