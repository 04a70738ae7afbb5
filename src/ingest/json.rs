//! One JSON object → a lead: the shape JSON Lines rows and the HTTP API's lead bodies share.

use std::collections::{HashMap, HashSet};

use serde_json::Value;

use super::RowError;
use super::fields::*;
use crate::domain::lead::NewLead;

pub(super) fn json_kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// A custom field's JSON value as text: `None` for null, an error for arrays and objects.
pub(super) fn json_scalar(value: &Value) -> Result<Option<String>, String> {
    match value {
        Value::Null => Ok(None),
        Value::String(s) => Ok(Some(s.clone())),
        Value::Number(n) => Ok(Some(n.to_string())),
        Value::Bool(b) => Ok(Some(b.to_string())),
        Value::Array(_) | Value::Object(_) => Err(format!(
            "expected a string, number or boolean, got {}",
            json_kind(value)
        )),
    }
}

pub(super) fn json_lead(ctx: &Ctx<'_>, line: usize, value: &Value) -> Result<NewLead, RowError> {
    let Value::Object(map) = value else {
        return Err(ctx.error(
            line,
            None,
            format!("expected a JSON object, got {}", json_kind(value)),
        ));
    };
    let mut row = RowBuilder::new(ctx, line);
    let mut seen: HashMap<String, &str> = HashMap::new();
    let mut fields_object = None;
    for (raw_key, value) in map {
        let key = normalise_key(raw_key);
        if key.is_empty() {
            return Err(ctx.error(line, None, "a key is empty"));
        }
        if let Some(first) = seen.insert(key.clone(), raw_key) {
            return Err(ctx.error(
                line,
                Some(&key),
                format!("keys `{first}` and `{raw_key}` both mean `{key}` (keys ignore case)"),
            ));
        }
        if key == "fields" {
            match value {
                Value::Object(inner) => fields_object = Some(inner),
                Value::Null => {}
                other => {
                    return Err(ctx.error(
                        line,
                        Some("fields"),
                        format!("expected an object, got {}", json_kind(other)),
                    ));
                }
            }
            continue;
        }
        let column = Column::for_key(&key);
        match (&column, value) {
            (_, Value::String(s)) => row.text(&column, s)?,
            (Column::Known(Field::Tags), Value::Array(items)) => {
                let mut tags = Vec::with_capacity(items.len());
                for item in items {
                    match item {
                        Value::String(s) => tags.push(s.as_str()),
                        other => {
                            return Err(ctx.error(
                                line,
                                Some("tags"),
                                format!("expected strings, got {}", json_kind(other)),
                            ));
                        }
                    }
                }
                row.tags(tags)?;
            }
            (Column::Known(_), Value::Null) => row.text(&column, "")?,
            (Column::Known(field), other) => {
                let expected = if *field == Field::Tags {
                    "a string or an array of strings"
                } else {
                    "a string"
                };
                return Err(ctx.error(
                    line,
                    Some(field.name()),
                    format!("expected {expected}, got {}", json_kind(other)),
                ));
            }
            (Column::Custom(name), other) => {
                let text = json_scalar(other).map_err(|r| ctx.error(line, Some(name), r))?;
                if let Some(text) = text {
                    row.custom(name, &text)?;
                }
            }
        }
    }
    if let Some(inner) = fields_object {
        custom_fields(ctx, line, &mut row, inner, &seen)?;
    }
    row.finish()
}

/// The `fields` object's entries as custom fields: each key once, and none that is also given
/// at the top level (`seen`).
fn custom_fields(
    ctx: &Ctx<'_>,
    line: usize,
    row: &mut RowBuilder<'_, '_>,
    inner: &serde_json::Map<String, Value>,
    seen: &HashMap<String, &str>,
) -> Result<(), RowError> {
    let mut seen_inner: HashSet<String> = HashSet::new();
    for (raw_key, value) in inner {
        let key = normalise_key(raw_key);
        if key.is_empty() {
            return Err(ctx.error(line, Some("fields"), "a key is empty"));
        }
        if !seen_inner.insert(key.clone()) {
            return Err(ctx.error(
                line,
                Some(&key),
                format!("`fields` names `{key}` twice (keys ignore case)"),
            ));
        }
        if seen.contains_key(&key) {
            return Err(ctx.error(
                line,
                Some(&key),
                format!("`{key}` is given both at the top level and in `fields`"),
            ));
        }
        let text = json_scalar(value).map_err(|r| ctx.error(line, Some(&key), r))?;
        if let Some(text) = text {
            row.custom(&key, &text)?;
        }
    }
    Ok(())
}
