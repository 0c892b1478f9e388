//! Reading a config file's text into a document, with errors an operator can
//! act on: the file, the line and column, and what is wrong in plain words,
//! never a parser library's internals. Every config document is a mapping.

use super::ConfigError;
use serde_json::Value;
use std::path::Path;

pub fn parse_yaml(path: &Path, text: &str) -> Result<Value, ConfigError> {
    if text.trim().is_empty() {
        return Err(ConfigError::Empty(path.to_path_buf()));
    }
    let doc = serde_saphyr::from_str(text).map_err(|e| ConfigError::Parse(path.to_path_buf(), "YAML", yaml_message(&e)))?;
    mapping(path, "YAML", doc, "a mapping of `key: value` lines")
}

pub fn parse_json(path: &Path, text: &str) -> Result<Value, ConfigError> {
    if text.trim().is_empty() {
        return Err(ConfigError::Empty(path.to_path_buf()));
    }
    let doc = crate::host::pyjson::loads(text).map_err(|e| ConfigError::Parse(path.to_path_buf(), "JSON", e.to_string()))?;
    mapping(path, "JSON", doc, "an object ({\"key\": value, ...})")
}

fn mapping(path: &Path, format: &'static str, doc: Value, expected: &str) -> Result<Value, ConfigError> {
    let found = match &doc {
        Value::Object(_) => return Ok(doc),
        Value::Null => "nothing (null)",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
    };
    Err(ConfigError::Parse(path.to_path_buf(), format, format!("the top level must be {expected}, not {found}")))
}

/// `line L, column C: what is wrong`, in words that do not assume the reader
/// knows the YAML library.
fn yaml_message(error: &serde_saphyr::Error) -> String {
    use serde_saphyr::Error as E;
    let mut inner = error;
    while let E::AliasError { error, .. } | E::WithSnippet { error, .. } = inner {
        inner = error;
    }
    let what = match inner {
        E::DuplicateMappingKey { key: Some(key), .. } => format!("the key {key:?} appears twice"),
        E::DuplicateMappingKey { .. } => "a key appears twice".to_string(),
        E::Budget { .. } => "the document is too large (anchors and aliases expand to too many values)".to_string(),
        E::MultipleDocuments { .. } => "more than one document (a second `---` line)".to_string(),
        E::Eof { .. } => "the file ends in the middle of a value".to_string(),
        _ => {
            // The library's one-line summary, without its `error: line X column Y: ` prefix.
            let text = error.to_string();
            let first = text.lines().next().unwrap_or("");
            let summary = first.strip_prefix("error: ").unwrap_or(first);
            let summary = summary.split_once(": ").filter(|(at, _)| at.starts_with("line ")).map_or(summary, |(_, s)| s);
            if summary.contains("mapping values are not allowed") {
                "unexpected `:` here (check the indentation, or quote a value that contains `: `)".to_string()
            } else {
                summary.to_string()
            }
        }
    };
    match error.location() {
        Some(at) => format!("line {}, column {}: {what}", at.line(), at.column()),
        None => what,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn yaml_error(text: &str) -> String {
        parse_yaml(Path::new("/etc/blockhost/db.yaml"), text).unwrap_err().to_string()
    }

    #[test]
    fn yaml_errors_name_the_line_and_the_problem_in_plain_words() {
        let cases = [
            ("a: 1\na: 2\n", "/etc/blockhost/db.yaml: not valid YAML: line 2, column 1: the key \"a\" appears twice"),
            ("a: [1, 2\n", "/etc/blockhost/db.yaml: not valid YAML: line 1, column 4: unclosed bracket '['"),
            ("a: 1\n  b: 2\n", "/etc/blockhost/db.yaml: not valid YAML: line 2, column 4: unexpected `:` here (check the indentation, or quote a value that contains `: `)"),
            ("---\na: 1\n---\nb: 2\n", "/etc/blockhost/db.yaml: not valid YAML: line 4, column 1: more than one document (a second `---` line)"),
            ("- a\n", "/etc/blockhost/db.yaml: not valid YAML: the top level must be a mapping of `key: value` lines, not a list"),
            ("just text\n", "/etc/blockhost/db.yaml: not valid YAML: the top level must be a mapping of `key: value` lines, not a string"),
        ];
        for (text, expected) in cases {
            assert_eq!(yaml_error(text), expected, "{text:?}");
        }
        let bomb: String = std::iter::once("a: &a [x, x, x, x, x, x, x, x, x]\n".to_string())
            .chain((b'b'..=b'z').map(|c| {
                let (name, prev) = (c as char, (c - 1) as char);
                format!("{name}: &{name} [{}]\n", vec![format!("*{prev}"); 9].join(", "))
            }))
            .collect();
        let message = yaml_error(&bomb);
        assert!(message.contains("too large") && !message.contains("Nodes") && !message.contains('\n'), "{message}");
    }

    #[test]
    fn json_of_the_wrong_shape_is_an_error_naming_what_was_expected() {
        let path = Path::new("/etc/blockhost/broker-allocation.json");
        for (text, found) in [("\"2001:db8::/64\"", "a string"), ("42", "a number"), ("[]", "a list"), ("null", "nothing (null)")] {
            assert_eq!(
                parse_json(path, text).unwrap_err().to_string(),
                format!("/etc/blockhost/broker-allocation.json: not valid JSON: the top level must be an object ({{\"key\": value, ...}}), not {found}")
            );
        }
        assert_eq!(
            parse_json(path, "{\"prefix\": }").unwrap_err().to_string(),
            "/etc/blockhost/broker-allocation.json: not valid JSON: line 1, column 12: expected a value (an object, list, string, number, true, false or null)"
        );
    }
}
