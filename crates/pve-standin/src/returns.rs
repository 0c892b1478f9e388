//! Checks that an answer has the shape the schema's `returns` gives: its
//! type, and for objects every non-optional property present and every listed
//! property of its type. The stand-in records any mismatch as its own fault.

use crate::schema::is_optional;
use serde_json::Value;

pub fn check(spec: &Value, data: &Value, at: &str) -> Result<(), String> {
    let Some(kind) = spec.get("type").and_then(Value::as_str) else { return Ok(()) };
    let ok = match kind {
        "null" => data.is_null(),
        "string" => data.is_string(),
        "integer" => data.is_i64() || data.is_u64(),
        "number" => data.is_number(),
        "boolean" => data.is_boolean() || data.as_u64().is_some_and(|n| n <= 1),
        "array" => data.is_array(),
        "object" => data.is_object(),
        _ => true,
    };
    // PVE answers `null` for an optional result and for "no task started".
    if !ok && !data.is_null() {
        return Err(format!("{at}: expected {kind}, got {data}"));
    }
    match data {
        Value::Array(items) => {
            if let Some(item_spec) = spec.get("items") {
                for (i, item) in items.iter().enumerate() {
                    check(item_spec, item, &format!("{at}[{i}]"))?;
                }
            }
        }
        Value::Object(fields) => {
            if let Some(props) = spec.get("properties").and_then(Value::as_object) {
                for (name, prop) in props {
                    match fields.get(name) {
                        Some(value) => check(prop, value, &format!("{at}.{name}"))?,
                        None if !is_optional(prop) => return Err(format!("{at}.{name}: missing")),
                        None => {}
                    }
                }
            }
        }
        _ => {}
    }
    Ok(())
}
