//! Inbound mail and engagement on PostgreSQL: what a reply, a bounce or a click does to its
//! lead, in one transaction (under the write lock) with the message it came from.

use serde_json::json;

use super::*;

impl InboundStore for PgStore {
    common_inbound_methods!();
}
