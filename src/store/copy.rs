//! The tables `db copy` moves, described once (`tables!` below): which tables, in which
//! order, and what a row of each holds (`…Record`, one field per column). Everything else is
//! generated from that description: the `Table` and `Rows` enums, each table's column list
//! with the kind of each column (integer, text, time, JSON, bytes: read off the field's Rust
//! type), the export `SELECT` (the same on both databases), the exchange format the imports
//! expand in SQL, and reading a row back. A backend adds only how its SQL expands one column
//! of a batch (`sqlite/copy.rs`, `postgres/copy.rs`).
//!
//! The exchange format is one JSON array of objects, a key per column: time stamps as
//! integer milliseconds since the epoch, JSON columns as JSON values, bytes
//! (`inbound.raw`) as lower-case hex (SQLite's `unhex`, PostgreSQL's `decode(…, 'hex')`).

use chrono::{DateTime, Utc};
use serde_json::{Map, Value, json};
use sqlx::{ColumnIndex, Decode, Row, Type};

use super::StoreError;
use super::dialect::{Detail, Time};

/// How a column's values travel between the databases.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Int,
    Text,
    Time,
    Json,
    Bytes,
}

/// One column of a table `db copy` moves.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Column {
    pub name: &'static str,
    pub kind: Kind,
}

/// A record field's value in the exchange format, and back (None: not that kind of value).
pub(crate) trait Exchange: Sized {
    const KIND: Kind;
    fn to_exchange(&self) -> Value;
    fn from_exchange(v: &Value) -> Option<Self>;
}

impl Exchange for i64 {
    const KIND: Kind = Kind::Int;
    fn to_exchange(&self) -> Value {
        json!(self)
    }
    fn from_exchange(v: &Value) -> Option<Self> {
        v.as_i64()
    }
}

impl Exchange for String {
    const KIND: Kind = Kind::Text;
    fn to_exchange(&self) -> Value {
        json!(self)
    }
    fn from_exchange(v: &Value) -> Option<Self> {
        v.as_str().map(str::to_string)
    }
}

impl Exchange for DateTime<Utc> {
    const KIND: Kind = Kind::Time;
    fn to_exchange(&self) -> Value {
        json!(self.timestamp_millis())
    }
    fn from_exchange(v: &Value) -> Option<Self> {
        DateTime::from_timestamp_millis(v.as_i64()?)
    }
}

impl Exchange for Value {
    const KIND: Kind = Kind::Json;
    fn to_exchange(&self) -> Value {
        self.clone()
    }
    fn from_exchange(v: &Value) -> Option<Self> {
        Some(v.clone())
    }
}

impl Exchange for Vec<u8> {
    const KIND: Kind = Kind::Bytes;
    fn to_exchange(&self) -> Value {
        json!(crate::hex::encode(self))
    }
    fn from_exchange(v: &Value) -> Option<Self> {
        let hex = v.as_str()?;
        if hex.len() % 2 != 0 {
            return None;
        }
        (0..hex.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(hex.get(i..i + 2)?, 16).ok())
            .collect()
    }
}

/// A nullable column: `null` in the exchange format.
impl<T: Exchange> Exchange for Option<T> {
    const KIND: Kind = T::KIND;
    fn to_exchange(&self) -> Value {
        self.as_ref().map_or(Value::Null, T::to_exchange)
    }
    fn from_exchange(v: &Value) -> Option<Self> {
        if v.is_null() {
            Some(None)
        } else {
            T::from_exchange(v).map(Some)
        }
    }
}

/// The description: per table its `Table` variant, SQL name and record (fields in column
/// order). Generates `Table`, the records, `Rows` and the conversions.
macro_rules! tables {
    ($(
        $(#[$meta:meta])*
        $variant:ident $name:literal $record:ident {
            $( $(#[$fmeta:meta])* $field:ident : $ty:ty ),* $(,)?
        }
    )*) => {
        /// The tables `db copy` moves — every table a deployment's state lives in — in an
        /// order that respects their references.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
        #[serde(rename_all = "snake_case")]
        pub enum Table { $($variant),* }

        impl Table {
            /// Parents before children (inbound messages point at leads and deliveries,
            /// notifications at leads).
            pub const ALL: [Table; 13] = [$(Table::$variant),*];

            pub fn as_str(self) -> &'static str {
                match self { $(Table::$variant => $name),* }
            }

            /// The table's columns, in order.
            pub(crate) fn columns(self) -> &'static [Column] {
                match self {
                    $(Table::$variant => &[$(Column {
                        name: stringify!($field),
                        kind: <$ty as Exchange>::KIND,
                    }),*]),*
                }
            }
        }

        $(
            $(#[$meta])*
            #[derive(Clone, PartialEq)]
            pub struct $record { $( $(#[$fmeta])* pub $field: $ty ),* }
        )*

        /// A page of one table's rows.
        #[derive(Debug, Clone, PartialEq)]
        pub enum Rows { $($variant(Vec<$record>)),* }

        impl Rows {
            pub fn table(&self) -> Table {
                match self { $(Rows::$variant(_) => Table::$variant),* }
            }

            pub fn len(&self) -> usize {
                match self { $(Rows::$variant(r) => r.len()),* }
            }

            /// The id of the last row (pages are by id), if any.
            pub fn last_id(&self) -> Option<i64> {
                match self { $(Rows::$variant(r) => r.last().map(|r| r.id)),* }
            }

            /// The rows in the exchange format (see the module docs).
            pub(crate) fn to_json(&self) -> Value {
                match self {
                    $(Rows::$variant(rows) => Value::Array(rows.iter().map(|r| {
                        let mut o = Map::new();
                        $( o.insert(stringify!($field).to_string(), r.$field.to_exchange()); )*
                        Value::Object(o)
                    }).collect()),)*
                }
            }

            /// Rows of `table` from the exchange format; Err names what did not fit.
            pub(crate) fn from_json(table: Table, items: &[Map<String, Value>]) -> Result<Rows, String> {
                Ok(match table {
                    $(Table::$variant => Rows::$variant(items.iter().map(|o| {
                        Ok($record { $(
                            $field: Exchange::from_exchange(o.get(stringify!($field)).unwrap_or(&Value::Null))
                                .ok_or_else(|| format!("{}: unreadable {} in {:?}", $name, stringify!($field), o.get("id")))?,
                        )* })
                    }).collect::<Result<_, String>>()?),)*
                })
            }
        }
    };
}

tables! {
    /// A `leads` row as stored (nothing re-validated: `db copy` moves data, it does not judge it).
    #[derive(Debug)]
    Leads "leads" LeadRecord {
        id: i64,
        email: String,
        first_name: Option<String>,
        last_name: Option<String>,
        company: Option<String>,
        title: Option<String>,
        owner_email: Option<String>,
        owner_name: Option<String>,
        lost_reason: Option<String>,
        lost_at: Option<DateTime<Utc>>,
        timezone: Option<String>,
        /// A JSON array of strings.
        tags: Value,
        /// A JSON object of strings.
        fields: Value,
        state: String,
        created_at: DateTime<Utc>,
        updated_at: DateTime<Utc>,
        scope_reason: Option<String>,
        recheck_at: Option<DateTime<Utc>>,
        paused_from: Option<String>,
        /// When a `new` lead no segment matched could start matching (`store/unmatched.rs`):
        /// copied, so the copy does not examine every such lead again at its first tick.
        unmatched_until: Option<DateTime<Utc>>,
        /// The hash of what an import merged into the lead (migration 0017): copied, so the
        /// copy's first re-import of an unchanged file reads no lead.
        import_hash: Option<i64>,
    }

    /// An `enrolments` row as stored.
    #[derive(Debug)]
    Enrolments "enrolments" EnrolmentRecord {
        id: i64,
        lead_id: i64,
        campaign: String,
        segment: String,
        state: String,
        enrolled_at: DateTime<Utc>,
        ended_at: Option<DateTime<Utc>>,
        cycle: i64,
        /// The campaign version followed (NULL: the campaign's current one).
        version: Option<String>,
    }

    /// A `deliveries` row as stored (leases included).
    #[derive(Debug)]
    Deliveries "deliveries" DeliveryRecord {
        id: i64,
        lead_id: i64,
        enrolment_id: i64,
        campaign: String,
        step: i64,
        template: String,
        state: String,
        due_at: DateTime<Utc>,
        attempts: i64,
        claimed_by: Option<String>,
        lease_until: Option<DateTime<Utc>>,
        message_id: Option<String>,
        sent_at: Option<DateTime<Utc>>,
        last_error: Option<String>,
        updated_at: DateTime<Utc>,
        cycle: i64,
        /// The id the email provider gave the message (API transports).
        provider_message_id: Option<String>,
        /// When its send started (set just before the SMTP transaction or API call).
        started_at: Option<DateTime<Utc>>,
    }

    /// An `events` row as stored.
    #[derive(Debug)]
    Events "events" EventRecord {
        id: i64,
        lead_id: i64,
        at: DateTime<Utc>,
        kind: String,
        detail: Value,
        /// The delivery an outcome's event is about (`sent`, `delivery_retry`, …).
        delivery_id: Option<i64>,
    }

    /// A `suppressions` row as stored.
    #[derive(Debug)]
    Suppressions "suppressions" SuppressionRecord {
        id: i64,
        address: String,
        reason: String,
        evidence: Value,
        created_at: DateTime<Utc>,
    }

    /// A `secrets` row as stored. Its `Debug` output leaves the value out.
    Secrets "secrets" SecretRecord {
        id: i64,
        name: String,
        value: String,
        created_at: DateTime<Utc>,
    }

    /// An `inbound` row as stored (matched or not, `raw` included).
    #[derive(Debug)]
    Inbound "inbound" InboundMessageRecord {
        id: i64,
        dedupe_key: String,
        source: String,
        received_at: DateTime<Utc>,
        message_id: Option<String>,
        from_address: Option<String>,
        subject: Option<String>,
        classification: String,
        lead_id: Option<i64>,
        delivery_id: Option<i64>,
        matched_by: Option<String>,
        text: Option<String>,
        raw: Vec<u8>,
        /// A JSON object.
        effects: Value,
        created_at: DateTime<Utc>,
        /// When a person reviewed it unmatched (console: "belongs to lead X" or "ignore").
        reviewed_at: Option<DateTime<Utc>>,
        reviewed_by: Option<String>,
    }

    /// A `notifications` row as stored (leases included).
    #[derive(Debug)]
    Notifications "notifications" NotificationRecord {
        id: i64,
        idempotency_key: String,
        kind: String,
        lead_id: Option<i64>,
        payload: Value,
        state: String,
        attempts: i64,
        next_at: DateTime<Utc>,
        claimed_by: Option<String>,
        lease_until: Option<DateTime<Utc>>,
        last_error: Option<String>,
        created_at: DateTime<Utc>,
        sent_at: Option<DateTime<Utc>>,
    }

    /// A `kv_state` row as stored (e.g. the IMAP mailbox's UIDVALIDITY and last UID: without
    /// them a copied deployment would read its mailbox again).
    #[derive(Debug)]
    KvState "kv_state" KvRecord {
        id: i64,
        key: String,
        value: String,
        updated_at: DateTime<Utc>,
    }

    /// A `forgotten` row as stored: the keyed hash of a forgotten address (`leads forget`).
    #[derive(Debug)]
    Forgotten "forgotten" ForgottenRecord {
        id: i64,
        hash: String,
        reason: String,
        created_at: DateTime<Utc>,
    }

    /// A `campaign_versions` row as stored (the campaign definitions the daemon applied).
    #[derive(Debug)]
    CampaignVersions "campaign_versions" CampaignVersionRecord {
        id: i64,
        campaign: String,
        version: String,
        /// The normalised definition (JSON object).
        definition: Value,
        applied_at: DateTime<Utc>,
    }

    #[derive(Debug)]
    ConsoleUsers "console_users" ConsoleUserRecord {
        id: i64,
        email: String,
        role: String,
        invited_by: String,
        created_at: DateTime<Utc>,
    }

    #[derive(Debug)]
    ConsoleEvents "console_events" ConsoleEventRecord {
        id: i64,
        at: DateTime<Utc>,
        actor: String,
        kind: String,
        detail: Value,
    }
}

impl std::fmt::Debug for SecretRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SecretRecord")
            .field("id", &self.id)
            .field("name", &self.name)
            .field("value", &"[redacted]")
            .field("created_at", &self.created_at)
            .finish()
    }
}

impl Table {
    /// The table named `name` (as `as_str` spells it).
    pub fn parse(name: &str) -> Option<Table> {
        Table::ALL.into_iter().find(|t| t.as_str() == name)
    }

    /// A page of the table's rows by id: `id > $1`, at most `$2`. The same on both databases.
    pub(crate) fn export_sql(self) -> String {
        let names: Vec<&str> = self.columns().iter().map(|c| c.name).collect();
        format!(
            "SELECT {} FROM {self} WHERE id > $1 ORDER BY id LIMIT $2",
            names.join(", ")
        )
    }

    /// `INSERT INTO <table> (<every column>) SELECT <each column of a batch element>
    /// <from>`, a column's value spelled by the backend's `value`.
    pub(crate) fn import_sql(self, value: impl Fn(&Column) -> String, from: &str) -> String {
        let names: Vec<&str> = self.columns().iter().map(|c| c.name).collect();
        let values: Vec<String> = self.columns().iter().map(value).collect();
        format!(
            "INSERT INTO {self} ({}) SELECT {} {from}",
            names.join(", "),
            values.join(", ")
        )
    }
}

impl std::fmt::Display for Table {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Rows {
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Rows of `table` as the database returned them (`Table::export_sql`), on either
    /// database. JSON columns are read as events' details always were on SQLite: text that is
    /// not JSON is kept as a JSON string (`db copy` moves data, it does not judge it).
    pub(crate) fn from_db<R>(table: Table, rows: &[R]) -> Result<Rows, StoreError>
    where
        R: Row,
        usize: ColumnIndex<R>,
        Option<i64>: for<'r> Decode<'r, R::Database> + Type<R::Database>,
        Option<String>: for<'r> Decode<'r, R::Database> + Type<R::Database>,
        Option<Time>: for<'r> Decode<'r, R::Database> + Type<R::Database>,
        Option<Detail>: for<'r> Decode<'r, R::Database> + Type<R::Database>,
        Option<Vec<u8>>: for<'r> Decode<'r, R::Database> + Type<R::Database>,
    {
        let items = rows
            .iter()
            .map(|row| {
                let mut o = Map::new();
                for (i, c) in table.columns().iter().enumerate() {
                    let v = match c.kind {
                        Kind::Int => json!(row.try_get::<Option<i64>, _>(i)?),
                        Kind::Text => json!(row.try_get::<Option<String>, _>(i)?),
                        Kind::Time => json!(
                            row.try_get::<Option<Time>, _>(i)?
                                .map(|t| t.0.timestamp_millis())
                        ),
                        Kind::Json => row
                            .try_get::<Option<Detail>, _>(i)?
                            .map_or(Value::Null, |d| d.0),
                        Kind::Bytes => row
                            .try_get::<Option<Vec<u8>>, _>(i)?
                            .map_or(Value::Null, |b| b.to_exchange()),
                    };
                    o.insert(c.name.to_string(), v);
                }
                Ok(o)
            })
            .collect::<Result<Vec<_>, sqlx::Error>>()?;
        Rows::from_json(table, &items).map_err(|reason| StoreError::Corrupt {
            table: table.as_str(),
            id: items
                .first()
                .and_then(|o| o.get("id"))
                .and_then(Value::as_i64)
                .unwrap_or(0),
            reason,
        })
    }
}
