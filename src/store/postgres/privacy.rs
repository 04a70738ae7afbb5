//! Personal data on PostgreSQL (`leads forget`, `leads export`): the steps are shared
//! (`store/privacy.rs`); here is how PostgreSQL lists its columns (`information_schema`, the
//! current schema's base tables), searches a cell (`strpos` on the lower-cased text, `jsonb`
//! as text, `bytea` escaped), writes JSON back (`::jsonb`) and turns a row into JSON
//! (`to_jsonb`, bytes escaped as text).

use std::collections::BTreeSet;

use super::*;
use crate::domain::privacy::{Needles, PLACEHOLDER_DOMAIN, placeholder_email, redact_detail};
use crate::store::dialect::Detail;
use crate::store::privacy::*;

/// (table, column, data type) of every base table of the current schema, columns in order.
const SCHEMA_SQL: &str = "SELECT c.table_name::text, c.column_name::text, c.data_type::text
     FROM information_schema.columns c
     JOIN information_schema.tables t ON t.table_schema = c.table_schema AND t.table_name = c.table_name
     WHERE c.table_schema = current_schema() AND t.table_type = 'BASE TABLE'
     ORDER BY c.table_name, c.ordinal_position";

fn cell_kind(ty: &str) -> Option<CellKind> {
    match ty {
        "text" | "character varying" | "character" => Some(CellKind::Text),
        "jsonb" | "json" => Some(CellKind::Json),
        "bytea" => Some(CellKind::Bytes),
        _ => None,
    }
}

fn contains_sql(column: &str, kind: CellKind) -> String {
    let c = ident(column);
    match kind {
        CellKind::Text => format!("strpos(lower({c}), $1) > 0"),
        CellKind::Json => format!("strpos(lower({c}::text), $1) > 0"),
        CellKind::Bytes => format!("strpos(lower(encode({c}, 'escape')), $1) > 0"),
    }
}

fn read_sql(column: &str, kind: CellKind) -> String {
    match kind {
        CellKind::Json => format!("{}::text", ident(column)),
        CellKind::Text | CellKind::Bytes => ident(column),
    }
}

fn write_param(kind: CellKind) -> &'static str {
    match kind {
        CellKind::Json => "$2::jsonb",
        CellKind::Text | CellKind::Bytes => "$2",
    }
}

/// The row as a JSON object (`to_jsonb` of the whole row), bytes as escaped text.
fn row_json_sql(table: &SchemaTable) -> String {
    let t = ident(&table.name);
    let bytes: Vec<String> = table
        .columns
        .iter()
        .filter(|(_, k)| *k == Some(CellKind::Bytes))
        .map(|(name, _)| {
            format!(
                "jsonb_build_object('{}', encode({t}.{}, 'escape'))",
                name.replace('\'', "''"),
                ident(name)
            )
        })
        .collect();
    let mut expr = format!("to_jsonb({t})");
    for b in bytes {
        expr = format!("({expr} || {b})");
    }
    format!("{expr}::text")
}

privacy_steps!(sqlx::PgConnection);

impl PrivacyStore for PgStore {
    privacy_methods!();
}
