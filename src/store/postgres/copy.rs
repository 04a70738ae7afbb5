//! Whole tables on PostgreSQL, for `rewarm db copy`: the statements come from the table
//! description (`store/copy.rs`); PostgreSQL spells how a batch element's column is read
//! (with its cast), and advances the id sequence past the copied ids.

use sqlx::AssertSqlSafe;

use super::*;
use crate::store::copy::{Column, Kind};

/// A column of a `jsonb_array_elements` batch element, cast to the column's type; times
/// arrive as integer milliseconds (`rewarm_ms`), bytes as hex.
fn batch_value(c: &Column) -> String {
    let name = c.name;
    match c.kind {
        Kind::Int => format!("(v->>'{name}')::bigint"),
        Kind::Text => format!("v->>'{name}'"),
        Kind::Time => format!("rewarm_ms((v->>'{name}')::bigint)"),
        Kind::Json => format!("v->'{name}'"),
        Kind::Bytes => format!("decode(v->>'{name}', 'hex')"),
    }
}

impl CopyStore for PgStore {
    common_copy_methods!();

    async fn import_rows(&self, rows: &Rows) -> Result<usize, StoreError> {
        if rows.is_empty() {
            return Ok(0);
        }
        let table = rows.table();
        let insert = table.import_sql(batch_value, "FROM jsonb_array_elements($1) AS j(v)");
        // Ids were given explicitly: the next row the daemon inserts must come after them.
        let advance = format!(
            "SELECT setval(pg_get_serial_sequence('{table}', 'id'), (SELECT coalesce(max(id), 0) + 1 FROM {table}), false)"
        );
        let mut tx = self.pool.begin().await?;
        let n = sqlx::query(AssertSqlSafe(insert))
            .bind(rows.to_json())
            .execute(&mut *tx)
            .await?
            .rows_affected();
        sqlx::query(AssertSqlSafe(advance))
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(n as usize)
    }

    async fn refresh_statistics(&self) -> Result<(), StoreError> {
        sqlx::query("ANALYZE").execute(&self.pool).await?;
        Ok(())
    }

    async fn delete_all_rows(&self) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await?;
        for sql in sql::DELETE_ALL {
            sqlx::query(sql).execute(&mut *tx).await?;
        }
        tx.commit().await?;
        Ok(())
    }
}
