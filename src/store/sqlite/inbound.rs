//! Inbound mail and engagement on SQLite: what a reply, a bounce or a click does to its lead,
//! in one transaction with the message it came from.

use serde_json::json;

use super::*;

impl InboundStore for SqliteStore {
    common_inbound_methods!();
}
