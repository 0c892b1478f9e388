//! The reader: the JSON Python's `json.load` accepts (RFC 8259 plus `NaN`,
//! `Infinity`, `-Infinity` and lone surrogate escapes), into a
//! `serde_json::Value` in which every value that would not be written back
//! exactly as read is kept raw (see the module above).

use super::{python_float_repr, write_char, write_unit, RAW};
use serde_json::{Map, Number, Value};

/// Deeper nesting than any BlockHost file has; bounds the reader's recursion.
const MAX_DEPTH: usize = 200;

/// Where the text is not JSON, and what was found there, for an operator.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}, column {column}: {what}")]
pub struct ParseError {
    pub line: usize,
    pub column: usize,
    pub what: String,
}

/// Parses one JSON document (surrounding whitespace allowed).
pub fn loads(text: &str) -> Result<Value, ParseError> {
    let mut reader = Reader { text, pos: 0, depth: 0 };
    reader.skip_ws();
    let value = reader.value()?;
    reader.skip_ws();
    if reader.pos < text.len() {
        return Err(reader.error("unexpected text after the end of the JSON document"));
    }
    Ok(value)
}

/// A piece of a decoded string: a character, or a surrogate without its pair.
enum Unit {
    Char(char),
    LoneSurrogate(u16),
}

struct Reader<'a> {
    text: &'a str,
    pos: usize,
    depth: usize,
}

impl Reader<'_> {
    fn error(&self, what: &str) -> ParseError {
        let before = &self.text[..self.pos];
        let line = before.matches('\n').count() + 1;
        let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
        ParseError { line, column, what: what.to_string() }
    }

    fn peek(&self) -> Option<u8> {
        self.text.as_bytes().get(self.pos).copied()
    }

    fn skip_ws(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b'\n' | b'\r')) {
            self.pos += 1;
        }
    }

    fn expect(&mut self, byte: u8, what: &str) -> Result<(), ParseError> {
        self.skip_ws();
        if self.peek() == Some(byte) {
            self.pos += 1;
            Ok(())
        } else {
            Err(self.error(what))
        }
    }

    fn value(&mut self) -> Result<Value, ParseError> {
        match self.peek() {
            None => Err(self.error("the text ends where a value was expected")),
            Some(b'{') => self.nested(Self::object),
            Some(b'[') => self.nested(Self::array),
            Some(b'"') => self.string(),
            Some(b'-' | b'0'..=b'9') if !self.text[self.pos..].starts_with("-Infinity") => self.number(),
            Some(_) => self.literal(),
        }
    }

    fn nested(&mut self, parse: fn(&mut Self) -> Result<Value, ParseError>) -> Result<Value, ParseError> {
        if self.depth == MAX_DEPTH {
            return Err(self.error(&format!("nested deeper than {MAX_DEPTH} levels")));
        }
        self.depth += 1;
        self.pos += 1;
        let value = parse(self);
        self.depth -= 1;
        value
    }

    fn literal(&mut self) -> Result<Value, ParseError> {
        let rest = &self.text[self.pos..];
        let found = [("true", Value::Bool(true)), ("false", Value::Bool(false)), ("null", Value::Null)]
            .into_iter()
            .find(|(word, _)| rest.starts_with(word));
        if let Some((word, value)) = found {
            self.pos += word.len();
            return Ok(value);
        }
        // Python writes these for non-finite floats; kept raw, written back as read.
        if let Some(word) = ["NaN", "Infinity", "-Infinity"].into_iter().find(|w| rest.starts_with(w)) {
            self.pos += word.len();
            return Ok(Value::String(format!("{RAW}{word}")));
        }
        Err(self.error("expected a value (an object, list, string, number, true, false or null)"))
    }

    fn digits(&mut self) -> usize {
        let start = self.pos;
        while matches!(self.peek(), Some(b'0'..=b'9')) {
            self.pos += 1;
        }
        self.pos - start
    }

    fn number(&mut self) -> Result<Value, ParseError> {
        let start = self.pos;
        if self.peek() == Some(b'-') {
            self.pos += 1;
        }
        match self.peek() {
            Some(b'0') => self.pos += 1,
            Some(b'1'..=b'9') => {
                self.digits();
            }
            _ => return Err(self.error("expected a digit")),
        }
        let mut integer = true;
        if self.peek() == Some(b'.') {
            self.pos += 1;
            if self.digits() == 0 {
                return Err(self.error("expected a digit after the decimal point"));
            }
            integer = false;
        }
        if matches!(self.peek(), Some(b'e' | b'E')) {
            self.pos += 1;
            if matches!(self.peek(), Some(b'+' | b'-')) {
                self.pos += 1;
            }
            if self.digits() == 0 {
                return Err(self.error("expected a digit in the exponent"));
            }
            integer = false;
        }
        let token = &self.text[start..self.pos];
        Ok(exact_number(token, integer).map_or_else(|| Value::String(format!("{RAW}{token}")), Value::Number))
    }

    fn string(&mut self) -> Result<Value, ParseError> {
        self.pos += 1;
        let units = self.string_units()?;
        let plain = units.iter().all(|u| matches!(u, Unit::Char(_))) && !matches!(units.first(), Some(Unit::Char(RAW)));
        let mut out = String::new();
        if plain {
            out.extend(units.iter().filter_map(|u| match u {
                Unit::Char(c) => Some(*c),
                Unit::LoneSurrogate(_) => None,
            }));
        } else {
            // Not representable as a Rust string (or would read as raw): kept as Python writes it.
            out.push(RAW);
            out.push('"');
            for unit in &units {
                match unit {
                    Unit::Char(c) => write_char(&mut out, *c),
                    Unit::LoneSurrogate(s) => write_unit(&mut out, *s),
                }
            }
            out.push('"');
        }
        Ok(Value::String(out))
    }

    fn string_units(&mut self) -> Result<Vec<Unit>, ParseError> {
        let mut units = Vec::new();
        loop {
            let Some(c) = self.text[self.pos..].chars().next() else {
                return Err(self.error("the text ends inside a string"));
            };
            match c {
                '"' => {
                    self.pos += 1;
                    return Ok(units);
                }
                '\\' => {
                    self.pos += 1;
                    self.escape(&mut units)?;
                }
                c if (c as u32) < 0x20 => return Err(self.error("control character inside a string (must be escaped)")),
                c => {
                    self.pos += c.len_utf8();
                    units.push(Unit::Char(c));
                }
            }
        }
    }

    fn escape(&mut self, units: &mut Vec<Unit>) -> Result<(), ParseError> {
        let simple = match self.peek() {
            Some(b'"') => '"',
            Some(b'\\') => '\\',
            Some(b'/') => '/',
            Some(b'b') => '\u{08}',
            Some(b'f') => '\u{0c}',
            Some(b'n') => '\n',
            Some(b'r') => '\r',
            Some(b't') => '\t',
            Some(b'u') => {
                self.pos += 1;
                let unit = self.hex4()?;
                units.push(self.code_point(unit));
                return Ok(());
            }
            _ => return Err(self.error("invalid escape in a string")),
        };
        self.pos += 1;
        units.push(Unit::Char(simple));
        Ok(())
    }

    /// A `\uXXXX` unit, joined with a following low surrogate escape when it is a high one.
    fn code_point(&mut self, unit: u16) -> Unit {
        if (0xd800..0xdc00).contains(&unit) && self.text[self.pos..].starts_with("\\u") {
            let save = self.pos;
            self.pos += 2;
            match self.hex4() {
                Ok(low) if (0xdc00..0xe000).contains(&low) => {
                    let c = 0x10000 + ((u32::from(unit) - 0xd800) << 10) + (u32::from(low) - 0xdc00);
                    return Unit::Char(char::from_u32(c).expect("a surrogate pair is a valid code point"));
                }
                _ => self.pos = save,
            }
        }
        char::from_u32(u32::from(unit)).map_or(Unit::LoneSurrogate(unit), Unit::Char)
    }

    fn hex4(&mut self) -> Result<u16, ParseError> {
        let hex = self.text.get(self.pos..self.pos + 4).filter(|h| h.bytes().all(|b| b.is_ascii_hexdigit()));
        let unit = hex.and_then(|h| u16::from_str_radix(h, 16).ok()).ok_or_else(|| self.error("invalid \\u escape"))?;
        self.pos += 4;
        Ok(unit)
    }

    fn array(&mut self) -> Result<Value, ParseError> {
        let mut items = Vec::new();
        self.skip_ws();
        if self.peek() == Some(b']') {
            self.pos += 1;
            return Ok(Value::Array(items));
        }
        loop {
            self.skip_ws();
            items.push(self.value()?);
            self.skip_ws();
            match self.peek() {
                Some(b',') => self.pos += 1,
                Some(b']') => {
                    self.pos += 1;
                    return Ok(Value::Array(items));
                }
                _ => return Err(self.error("expected ',' or ']' after a list item")),
            }
        }
    }

    fn object(&mut self) -> Result<Value, ParseError> {
        let mut map = Map::new();
        self.skip_ws();
        if self.peek() == Some(b'}') {
            self.pos += 1;
            return Ok(Value::Object(map));
        }
        loop {
            self.skip_ws();
            if self.peek() != Some(b'"') {
                return Err(self.error("expected a key in double quotes"));
            }
            let Value::String(key) = self.string()? else { unreachable!("string() returns a string") };
            self.expect(b':', "expected ':' after a key")?;
            self.skip_ws();
            // A repeated key keeps its first position and takes the last value, as in Python.
            map.insert(key, self.value()?);
            self.skip_ws();
            match self.peek() {
                Some(b',') => self.pos += 1,
                Some(b'}') => {
                    self.pos += 1;
                    return Ok(Value::Object(map));
                }
                _ => return Err(self.error("expected ',' or '}' after a value")),
            }
        }
    }
}

/// The number, when writing it back gives `token` again; `None` means keep it raw.
fn exact_number(token: &str, integer: bool) -> Option<Number> {
    if integer {
        let number = match token.parse::<u64>() {
            Ok(n) => Number::from(n),
            Err(_) => Number::from(token.parse::<i64>().ok()?),
        };
        return (number.to_string() == token).then_some(number);
    }
    let float = token.parse::<f64>().ok().filter(|f| f.is_finite())?;
    (python_float_repr(float) == token).then_some(Number::from_f64(float)?)
}

#[cfg(test)]
mod tests {
    use super::super::dumps_indent2;
    use super::*;

    fn round_trip(text: &str) -> String {
        dumps_indent2(&loads(text).unwrap())
    }

    #[test]
    fn what_serde_cannot_hold_is_written_back_as_read() {
        for text in [
            "1180591620717411303424",
            "-9223372036854775809",
            "18446744073709551615",
            "-9223372036854775808",
            "NaN",
            "Infinity",
            "-Infinity",
            "0.1",
            "1e+16",
            "5e-324",
            "1.7976931348623157e+308",
            "\"\\ud800\"",
            "\"a\\udc00b\\ud83d\"",
            "\"\\ud83d\\ude00\"",
            "\"\\u0000lead\"",
            "{\n  \"\\ud800\": [\n    NaN\n  ]\n}",
        ] {
            assert_eq!(round_trip(text), text, "{text}");
        }
    }

    #[test]
    fn values_read_normally_stay_ordinary_values() {
        let v = loads(" {\"a\": [1, -2, 2.5, \"\\u00e9\\/\", true, null], \"a\": 3} ").unwrap();
        assert_eq!(v, serde_json::json!({"a": 3}));
        assert_eq!(loads("[1, 2.5, \"é\"]").unwrap(), serde_json::json!([1, 2.5, "é"]));
    }

    #[test]
    fn errors_name_line_column_and_what_is_wrong() {
        let cases = [
            ("{\n  \"a\": 1\n  \"b\": 2\n}", "line 3, column 3: expected ',' or '}' after a value"),
            ("", "line 1, column 1: the text ends where a value was expected"),
            ("[1,]", "line 1, column 4: expected a value (an object, list, string, number, true, false or null)"),
            ("{\"a\" 1}", "line 1, column 6: expected ':' after a key"),
            ("\"abc", "line 1, column 5: the text ends inside a string"),
            ("1 2", "line 1, column 3: unexpected text after the end of the JSON document"),
            ("01", "line 1, column 2: unexpected text after the end of the JSON document"),
            ("\"\\x\"", "line 1, column 3: invalid escape in a string"),
            ("-", "line 1, column 2: expected a digit"),
        ];
        for (text, message) in cases {
            assert_eq!(loads(text).unwrap_err().to_string(), message, "{text:?}");
        }
        let deep = "[".repeat(MAX_DEPTH + 1);
        assert!(loads(&deep).unwrap_err().what.starts_with("nested deeper"));
    }
}
