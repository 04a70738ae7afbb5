//! Personal data on SQLite (`leads forget`, `leads export`): the steps are shared
//! (`store/privacy.rs`); here is how SQLite lists its columns (`sqlite_master` and
//! `pragma_table_info`), searches a cell (`instr` on the lower-cased text), and turns a row
//! into JSON (`json_object`, JSON text kept as JSON, bytes as text).

use std::collections::BTreeSet;

use super::*;
use crate::domain::privacy::{Needles, PLACEHOLDER_DOMAIN, placeholder_email, redact_detail};
use crate::store::dialect::Detail;
use crate::store::privacy::*;

/// (table, column, declared type) of every table, columns in order.
const SCHEMA_SQL: &str =
    "SELECT m.name, p.name, upper(p.type) FROM sqlite_master m JOIN pragma_table_info(m.name) p
     WHERE m.type = 'table' ORDER BY m.name, p.cid";

/// By SQLite's type affinity rules: numbers and times hold nothing to erase.
fn cell_kind(ty: &str) -> Option<CellKind> {
    if ["INT", "REAL", "FLOA", "DOUB", "NUM", "BOOL"]
        .iter()
        .any(|n| ty.contains(n))
    {
        None
    } else if ty.contains("BLOB") {
        Some(CellKind::Bytes)
    } else {
        Some(CellKind::Text)
    }
}

fn contains_sql(column: &str, _kind: CellKind) -> String {
    format!("instr(lower(CAST({} AS TEXT)), $1) > 0", ident(column))
}

fn read_sql(column: &str, kind: CellKind) -> String {
    match kind {
        CellKind::Bytes => format!("CAST({} AS BLOB)", ident(column)),
        CellKind::Text | CellKind::Json => format!("CAST({} AS TEXT)", ident(column)),
    }
}

fn write_param(_kind: CellKind) -> &'static str {
    "$2"
}

/// The row as a JSON object: JSON text (an object or array) as JSON, bytes as text.
fn row_json_sql(table: &SchemaTable) -> String {
    let pairs: Vec<String> = table
        .columns
        .iter()
        .map(|(name, kind)| {
            let c = ident(name);
            let value = match kind {
                Some(CellKind::Bytes) => format!("CAST({c} AS TEXT)"),
                Some(_) => format!(
                    "CASE WHEN json_valid({c}) AND substr({c}, 1, 1) IN ('{{', '[') THEN json({c}) ELSE {c} END"
                ),
                None => c,
            };
            format!("'{}', {value}", name.replace('\'', "''"))
        })
        .collect();
    format!("json_object({})", pairs.join(", "))
}

privacy_steps!(sqlx::SqliteConnection);

impl PrivacyStore for SqliteStore {
    privacy_methods!();
}
