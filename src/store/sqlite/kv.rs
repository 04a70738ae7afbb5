//! Small named values and generated secrets on SQLite: the single writer makes "insert unless
//! there, then read" atomic.

use super::*;

impl KvStore for SqliteStore {
    common_kv_methods!();

    async fn kv_set_if_absent(&self, key: &str, value: &str) -> Result<String, StoreError> {
        let mut tx = self.write().await?;
        sqlx::query(sql::KV_INSERT_IF_ABSENT)
            .bind(key)
            .bind(value)
            .bind(Time(Utc::now()))
            .execute(&mut *tx)
            .await?;
        let stored: String = sqlx::query_scalar(sql::KV_GET)
            .bind(key)
            .fetch_one(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(stored)
    }

    async fn secret(
        &self,
        name: &str,
        generate: impl FnOnce() -> String + Send,
    ) -> Result<String, StoreError> {
        if let Some(value) = sqlx::query_scalar::<_, String>(sql::SECRET_GET)
            .bind(name)
            .fetch_optional(&self.pool)
            .await?
        {
            return Ok(value);
        }
        let value = generate();
        let mut tx = self.write().await?;
        // Another process may have stored one meanwhile: the first one stored wins.
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
