//! The console's reads on SQLite (`store/browse.rs`): a prefix is a plain range (text
//! compares bytes), a tag is found in `lead_tags` (migration 0016 keeps it by trigger).

use super::*;
use crate::store::browse::*;

const SEARCH: SearchDialect = SearchDialect {
    prefixed: [
        "email",
        "lower(first_name)",
        "lower(last_name)",
        "lower(company)",
    ],
    lower: str::to_ascii_lowercase,
    tag: "id IN (SELECT lead_id FROM lead_tags WHERE tag = {})",
};

impl BrowseStore for SqliteStore {
    browse_methods!(SEARCH);
}

impl SqliteStore {
    /// The plan of the search `q`, one line per step (`SEARCH leads USING INDEX …`), for
    /// the test that holds it to indexes: a `SCAN leads` would read every lead.
    pub async fn search_plan(&self, q: &LeadSearch) -> Result<Vec<String>, StoreError> {
        let (sql, params) = search_sql(q, &SEARCH);
        let mut query = sqlx::query_as::<_, (i64, i64, i64, String)>(sqlx::AssertSqlSafe(format!(
            "EXPLAIN QUERY PLAN {sql}"
        )));
        for p in params {
            query = match p {
                Param::Text(t) => query.bind(t),
                Param::Int(i) => query.bind(i),
            };
        }
        let rows = query.fetch_all(&self.pool).await?;
        Ok(rows.into_iter().map(|(_, _, _, detail)| detail).collect())
    }
}
