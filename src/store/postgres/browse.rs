//! The console's reads on PostgreSQL (`store/browse.rs`): a prefix compares bytes
//! (`COLLATE "C"`, as the indexes of migration 0016 do) whatever the database's collation;
//! a tag is found by the GIN index on the lower-cased tags.

use super::*;
use crate::store::browse::*;

const SEARCH: SearchDialect = SearchDialect {
    prefixed: [
        "(email COLLATE \"C\")",
        "(lower(first_name) COLLATE \"C\")",
        "(lower(last_name) COLLATE \"C\")",
        "(lower(company) COLLATE \"C\")",
    ],
    lower: str::to_lowercase,
    tag: "lower(tags::text)::jsonb @> jsonb_build_array({}::text)",
};

impl BrowseStore for PgStore {
    browse_methods!(SEARCH);
}

impl PgStore {
    /// The plan of the search `q`, one line per node (`Index Scan using …`), for the test
    /// that holds it to indexes: a `Seq Scan on leads` would read every lead.
    pub async fn search_plan(&self, q: &LeadSearch) -> Result<Vec<String>, StoreError> {
        let (sql, params) = search_sql(q, &SEARCH);
        let mut query = sqlx::query_as::<_, (String,)>(sqlx::AssertSqlSafe(format!(
            "EXPLAIN (COSTS OFF) {sql}"
        )));
        for p in params {
            query = match p {
                Param::Text(t) => query.bind(t),
                Param::Int(i) => query.bind(i),
            };
        }
        let rows = query.fetch_all(&self.pool).await?;
        Ok(rows.into_iter().map(|(line,)| line).collect())
    }
}
