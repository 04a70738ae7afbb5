//! How values travel to and from each database, where the two really differ, so that the
//! same Rust value binds and decodes on both and a statement's Rust side can be written once.
//!
//! - **Time stamps** ([`Time`]): SQLite keeps integer milliseconds since the epoch;
//!   PostgreSQL keeps `timestamptz`, truncated to the millisecond on the way in, so both
//!   backends return exactly the same values.
//! - **JSON**: `serde_json::Value` already binds and decodes on both (TEXT on SQLite, `jsonb`
//!   on PostgreSQL). [`Detail`] is an event's detail, read leniently on SQLite as the
//!   timeline always has: text that is not JSON stays a string.
//!
//! Batches are JSON arrays with times as integer milliseconds on both databases (see
//! `shared.rs`); only the SQL that expands them differs.

use chrono::{DateTime, Utc};
use serde_json::Value;
use sqlx::encode::IsNull;
use sqlx::error::BoxDynError;
use sqlx::postgres::{PgArgumentBuffer, PgTypeInfo, PgValueRef};
use sqlx::sqlite::{SqliteArgumentsBuffer, SqliteTypeInfo, SqliteValueRef};
use sqlx::{Decode, Encode, Postgres, Sqlite, Type};

/// A time stamp as a column holds it: integer milliseconds (SQLite) or `timestamptz`
/// (PostgreSQL), always to the millisecond.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Time(pub DateTime<Utc>);

impl Time {
    /// Kept to the millisecond, as on SQLite.
    fn truncated(self) -> DateTime<Utc> {
        DateTime::from_timestamp_millis(self.0.timestamp_millis()).unwrap_or(self.0)
    }
}

impl Type<Sqlite> for Time {
    fn type_info() -> SqliteTypeInfo {
        <i64 as Type<Sqlite>>::type_info()
    }

    fn compatible(ty: &SqliteTypeInfo) -> bool {
        <i64 as Type<Sqlite>>::compatible(ty)
    }
}

impl<'q> Encode<'q, Sqlite> for Time {
    fn encode_by_ref(&self, buf: &mut SqliteArgumentsBuffer) -> Result<IsNull, BoxDynError> {
        <i64 as Encode<'q, Sqlite>>::encode(self.0.timestamp_millis(), buf)
    }
}

impl<'r> Decode<'r, Sqlite> for Time {
    fn decode(value: SqliteValueRef<'r>) -> Result<Self, BoxDynError> {
        let ms = <i64 as Decode<'r, Sqlite>>::decode(value)?;
        DateTime::from_timestamp_millis(ms)
            .map(Time)
            .ok_or_else(|| format!("time stamp {ms} out of range").into())
    }
}

impl Type<Postgres> for Time {
    fn type_info() -> PgTypeInfo {
        <DateTime<Utc> as Type<Postgres>>::type_info()
    }

    fn compatible(ty: &PgTypeInfo) -> bool {
        <DateTime<Utc> as Type<Postgres>>::compatible(ty)
    }
}

impl<'q> Encode<'q, Postgres> for Time {
    fn encode_by_ref(&self, buf: &mut PgArgumentBuffer) -> Result<IsNull, BoxDynError> {
        <DateTime<Utc> as Encode<'q, Postgres>>::encode(self.truncated(), buf)
    }

    fn size_hint(&self) -> usize {
        std::mem::size_of::<i64>()
    }
}

impl<'r> Decode<'r, Postgres> for Time {
    fn decode(value: PgValueRef<'r>) -> Result<Self, BoxDynError> {
        <DateTime<Utc> as Decode<'r, Postgres>>::decode(value).map(Time)
    }
}

/// An event's `detail`: JSON; on SQLite, text that is not JSON is read as a JSON string.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Detail(pub Value);

impl Type<Sqlite> for Detail {
    fn type_info() -> SqliteTypeInfo {
        <String as Type<Sqlite>>::type_info()
    }

    fn compatible(ty: &SqliteTypeInfo) -> bool {
        <String as Type<Sqlite>>::compatible(ty)
    }
}

impl<'r> Decode<'r, Sqlite> for Detail {
    fn decode(value: SqliteValueRef<'r>) -> Result<Self, BoxDynError> {
        let text = <String as Decode<'r, Sqlite>>::decode(value)?;
        Ok(Detail(
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        ))
    }
}

impl Type<Postgres> for Detail {
    fn type_info() -> PgTypeInfo {
        <Value as Type<Postgres>>::type_info()
    }

    fn compatible(ty: &PgTypeInfo) -> bool {
        <Value as Type<Postgres>>::compatible(ty)
    }
}

impl<'r> Decode<'r, Postgres> for Detail {
    fn decode(value: PgValueRef<'r>) -> Result<Self, BoxDynError> {
        <Value as Decode<'r, Postgres>>::decode(value).map(Detail)
    }
}
