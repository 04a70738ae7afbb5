//! The console's tables on SQLite: the same statements as the other backend (`store/console.rs`).

use super::*;
use crate::store::console::*;
use crate::store::dialect::Detail;

/// Emails sent per UTC day since $1 (day = days since 1970-01-01).
pub(super) const SENDS_PER_DAY: &str = "SELECT sent_at / 86400000 AS day, count(*) FROM deliveries
     WHERE sent_at >= $1 AND state = 'sent' GROUP BY day ORDER BY day";

impl ConsoleStore for SqliteStore {
    console_methods!();
}
