//! JSON text exactly as Python's `json.dumps` writes it (ensure_ascii on), so files
//! and outputs shared with the Python and TypeScript parts of BlockHost are
//! byte-compatible: `dumps` uses the default separators `", "` and `": "`,
//! `dumps_indent2` matches `indent=2` (as blockhost-common writes `vms.json`).
//!
//! [`loads`] reads everything Python's `json` module writes, including what
//! `serde_json::Value` cannot hold: integers beyond 64 bits, `NaN` and
//! `Infinity`, strings with lone surrogates. Such a value is kept as a *raw*
//! string: [`RAW`] followed by its JSON text as Python writes it, which the
//! writers emit verbatim, so it is written back exactly as read. No string we
//! make starts with NUL (none can come from argv, the environment or a file name).

mod read;

pub use read::{loads, ParseError};

use serde_json::Value;

/// First character of a raw value (see the module documentation).
pub const RAW: char = '\0';

pub fn dumps(value: &Value) -> String {
    let mut out = String::new();
    write_value(&mut out, value, None, 0);
    out
}

pub fn dumps_indent2(value: &Value) -> String {
    let mut out = String::new();
    write_value(&mut out, value, Some(2), 0);
    out
}

fn write_value(out: &mut String, value: &Value, indent: Option<usize>, depth: usize) {
    match value {
        Value::Null => out.push_str("null"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Number(n) => match n.as_f64() {
            Some(f) if n.is_f64() => out.push_str(&python_float_repr(f)),
            _ => out.push_str(&n.to_string()),
        },
        Value::String(s) => write_string(out, s),
        Value::Array(items) => {
            if items.is_empty() {
                out.push_str("[]");
                return;
            }
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                separator(out, i, indent, depth + 1);
                write_value(out, item, indent, depth + 1);
            }
            closing(out, indent, depth);
            out.push(']');
        }
        Value::Object(map) => {
            if map.is_empty() {
                out.push_str("{}");
                return;
            }
            out.push('{');
            for (i, (key, item)) in map.iter().enumerate() {
                separator(out, i, indent, depth + 1);
                write_string(out, key);
                out.push_str(": ");
                write_value(out, item, indent, depth + 1);
            }
            closing(out, indent, depth);
            out.push('}');
        }
    }
}

fn separator(out: &mut String, index: usize, indent: Option<usize>, depth: usize) {
    match indent {
        None if index > 0 => out.push_str(", "),
        None => {}
        Some(width) => {
            if index > 0 {
                out.push(',');
            }
            out.push('\n');
            out.push_str(&" ".repeat(width * depth));
        }
    }
}

fn closing(out: &mut String, indent: Option<usize>, depth: usize) {
    if let Some(width) = indent {
        out.push('\n');
        out.push_str(&" ".repeat(width * depth));
    }
}

fn write_string(out: &mut String, s: &str) {
    if let Some(raw) = s.strip_prefix(RAW) {
        out.push_str(raw);
        return;
    }
    out.push('"');
    for c in s.chars() {
        write_char(out, c);
    }
    out.push('"');
}

/// One character of a string, escaped as Python's `ensure_ascii` does.
fn write_char(out: &mut String, c: char) {
    match c {
        '"' => out.push_str("\\\""),
        '\\' => out.push_str("\\\\"),
        '\n' => out.push_str("\\n"),
        '\r' => out.push_str("\\r"),
        '\t' => out.push_str("\\t"),
        '\u{08}' => out.push_str("\\b"),
        '\u{0c}' => out.push_str("\\f"),
        c if !(' '..='~').contains(&c) => {
            let mut units = [0u16; 2];
            for unit in c.encode_utf16(&mut units) {
                write_unit(out, *unit);
            }
        }
        c => out.push(c),
    }
}

/// A UTF-16 code unit as a `\uXXXX` escape.
fn write_unit(out: &mut String, unit: u16) {
    out.push_str(&format!("\\u{unit:04x}"));
}

/// Python's `repr(float)`: shortest round-trip digits, positional notation for
/// decimal exponents in [-4, 16), scientific (`1e+16`, `1.5e-05`) otherwise.
fn python_float_repr(f: f64) -> String {
    if f.is_nan() {
        return "NaN".into();
    }
    if f.is_infinite() {
        return if f > 0.0 { "Infinity".into() } else { "-Infinity".into() };
    }
    let sci = format!("{f:e}");
    let (mantissa, exp) = sci.split_once('e').expect("LowerExp always has an exponent");
    let exp: i32 = exp.parse().expect("LowerExp exponent is an integer");
    if (-4..16).contains(&exp) {
        let plain = format!("{f}");
        if plain.contains('.') { plain } else { format!("{plain}.0") }
    } else {
        let sign = if exp < 0 { '-' } else { '+' };
        format!("{mantissa}e{sign}{:02}", exp.abs())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn default_separators_match_python() {
        let v = json!({"status": "ok", "ipv6": "", "vmid": 100, "nft_token_id": null, "l": [1, 2]});
        assert_eq!(
            dumps(&v),
            r#"{"status": "ok", "ipv6": "", "vmid": 100, "nft_token_id": null, "l": [1, 2]}"#
        );
    }

    #[test]
    fn indent2_matches_python() {
        let v = json!({"vms": {}, "next_vmid": 0, "allocated_ips": ["10.0.0.2"], "allocated_ipv6": []});
        let expected = "{\n  \"vms\": {},\n  \"next_vmid\": 0,\n  \"allocated_ips\": [\n    \"10.0.0.2\"\n  ],\n  \"allocated_ipv6\": []\n}";
        assert_eq!(dumps_indent2(&v), expected);
    }

    #[test]
    fn strings_are_ascii_escaped_like_python() {
        let v = json!("é\u{1F600}\"\\\n\u{1}\u{7f}~");
        assert_eq!(dumps(&v), r#""\u00e9\ud83d\ude00\"\\\n\u0001\u007f~""#);
    }

    #[test]
    fn floats_use_python_repr() {
        assert_eq!(python_float_repr(0.0), "0.0");
        assert_eq!(python_float_repr(12.5), "12.5");
        assert_eq!(python_float_repr(100.0), "100.0");
        assert_eq!(python_float_repr(1e16), "1e+16");
        assert_eq!(python_float_repr(1.5e-5), "1.5e-05");
        assert_eq!(python_float_repr(0.0001), "0.0001");
        assert_eq!(python_float_repr(-3.25), "-3.25");
        assert_eq!(dumps(&json!({"cpu_percent": 3.0})), r#"{"cpu_percent": 3.0}"#);
    }
}
