//! Whole tables on SQLite, for `rewarm db copy`: the statements come from the table
//! description (`store/copy.rs`); SQLite spells how a batch element's column is read.

use sqlx::AssertSqlSafe;

use super::*;
use crate::store::copy::{Column, Kind};

/// A column of a `json_each` batch element: `->` keeps JSON as JSON text, `->>` gives SQL
/// values; bytes travel as hex.
fn batch_value(c: &Column) -> String {
    match c.kind {
        Kind::Json => format!("j.value->'{}'", c.name),
        Kind::Bytes => format!("unhex(j.value->>'{}')", c.name),
        Kind::Int | Kind::Text | Kind::Time => format!("j.value->>'{}'", c.name),
    }
}

impl CopyStore for SqliteStore {
    common_copy_methods!();

    async fn import_rows(&self, rows: &Rows) -> Result<usize, StoreError> {
        if rows.is_empty() {
            return Ok(0);
        }
        let insert = rows.table().import_sql(batch_value, "FROM json_each($1) j");
        let mut tx = self.write().await?;
        let n = sqlx::query(AssertSqlSafe(insert))
            .bind(rows.to_json())
            .execute(&mut *tx)
            .await?
            .rows_affected();
        tx.commit().await?;
        Ok(n as usize)
    }

    async fn refresh_statistics(&self) -> Result<(), StoreError> {
        Ok(())
    }

    async fn delete_all_rows(&self) -> Result<(), StoreError> {
        let mut tx = self.write().await?;
        for sql in sql::DELETE_ALL {
            sqlx::query(sql).execute(&mut *tx).await?;
        }
        tx.commit().await?;
        Ok(())
    }
}
