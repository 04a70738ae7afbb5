//! The forecast's reads on SQLite (see `store::forecast`).

use futures::TryStreamExt as _;

use super::*;
use crate::store::forecast::{
    COUNT_PENDING_BEFORE, ForecastDelivery, ForecastRow, ForecastStore, forecast_pending_select,
    forecast_store_methods,
};

const PENDING_BEFORE: &str =
    forecast_pending_select!("substr(l.email, length(rtrim(l.email, replace(l.email, '@', ''))))");
const PENDING_BEFORE_UNLISTED: &str = forecast_pending_select!(unlisted);

const NEW_LEADS: &str = at_domain!(
    "SELECT id, email, first_name, last_name, company, title, owner_email, owner_name, lost_reason, lost_at, timezone, tags, fields, state, created_at, updated_at
     FROM leads WHERE state = 'new'
       AND NOT EXISTS (SELECT 1 FROM suppressions s WHERE s.address IN (leads.email, ",
    "leads.email",
    "))"
);
/// ASCII case-insensitive, like the segments' comparison (no escape character).
const LIKE: &str = "lost_reason LIKE $1";

impl ForecastStore for SqliteStore {
    forecast_store_methods!();
}
