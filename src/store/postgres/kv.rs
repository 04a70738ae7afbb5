//! Small named values and generated secrets on PostgreSQL: "insert unless there, then read"
//! needs no lock, as the INSERT waits for a racing insert of the same key to commit.

use super::*;

impl KvStore for PgStore {
    common_kv_methods!();

    async fn kv_set_if_absent(&self, key: &str, value: &str) -> Result<String, StoreError> {
        // Two statements, no lock: the INSERT waits for a racing insert of the same key to
        // commit, and the SELECT (a new snapshot under READ COMMITTED) then sees the winner.
        let mut conn = self.pool.acquire().await?;
        sqlx::query(sql::KV_INSERT_IF_ABSENT)
            .bind(key)
            .bind(value)
            .bind(Time(Utc::now()))
            .execute(&mut *conn)
            .await?;
        Ok(sqlx::query_scalar(sql::KV_GET)
            .bind(key)
            .fetch_one(&mut *conn)
            .await?)
    }

    async fn secret(
        &self,
        name: &str,
        generate: impl FnOnce() -> String + Send,
    ) -> Result<String, StoreError> {
        let existing: Option<String> = sqlx::query_scalar(sql::SECRET_GET)
            .bind(name)
            .fetch_optional(&self.pool)
            .await?;
        if let Some(value) = existing {
            return Ok(value);
        }
        let value = generate();
        // Another daemon may store one at the same moment: the INSERT then waits for it and
        // does nothing, and the SELECT (a new snapshot) returns the value stored first.
        let mut tx = self.pool.begin().await?;
        sqlx::query(sql::SECRET_INSERT_IF_ABSENT)
            .bind(name)
            .bind(&value)
            .bind(Time(Utc::now()))
            .execute(&mut *tx)
            .await?;
        let stored: String = sqlx::query_scalar(sql::SECRET_GET)
            .bind(name)
            .fetch_one(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(stored)
    }
}
