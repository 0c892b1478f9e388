//! The published Proxmox VE API schema (a copy of `pve-api-9.1-subset.json`)
//! and the checks every request must pass before the model sees it: the path
//! and method exist, and every parameter is defined, present when required,
//! of its type and inside its enum, range, length, pattern and format.

use crate::formats;
use serde_json::{Map, Value};
use std::collections::BTreeMap;

/// A path's placeholder values by name.
type PathParams = Vec<(String, String)>;

const PUBLISHED: &str = include_str!("../schema/pve-api-9.1-subset.json");

/// Why a request was refused, answered as PVE does: 501 for an unknown path
/// or method, 400 with one message per offending parameter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub status: u16,
    pub message: String,
    pub errors: BTreeMap<String, String>,
}

impl Refusal {
    fn not_implemented(method: &str, path: &str) -> Self {
        Self { status: 501, message: format!("Method '{method} {path}' not implemented"), errors: BTreeMap::new() }
    }

    fn parameters(errors: BTreeMap<String, String>) -> Self {
        Self { status: 400, message: "Parameter verification failed.".into(), errors }
    }
}

/// A request's path template and method entry, with its placeholders' values.
pub struct Route<'s> {
    pub template: &'s str,
    pub entry: &'s Value,
    path_params: PathParams,
}

/// A request that passed the schema: its path template, its method's entry,
/// and its parameters (path and query/body merged) as typed JSON values.
#[derive(Debug)]
pub struct Checked<'s> {
    pub template: &'s str,
    pub method: &'s Value,
    pub params: Map<String, Value>,
}

pub struct Schema {
    paths: Map<String, Value>,
}

impl Schema {
    pub fn published() -> Self {
        match serde_json::from_str(PUBLISHED) {
            Ok(Value::Object(paths)) => Self { paths },
            _ => unreachable!("the bundled schema is a JSON object"),
        }
    }

    /// The path template and method entry a request names: 501 when the
    /// schema has neither (checked before authentication, as PVE does).
    pub fn resolve<'s>(&'s self, method: &str, path: &str) -> Result<Route<'s>, Refusal> {
        let (template, path_params) = self.route(path).ok_or_else(|| Refusal::not_implemented(method, path))?;
        let entry = self.paths[template].get(method).ok_or_else(|| Refusal::not_implemented(method, path))?;
        Ok(Route { template, entry, path_params })
    }

    /// The parameters (path placeholders and `given`) against the method's entry.
    pub fn check<'s>(&self, route: Route<'s>, given: &[(String, String)]) -> Result<Checked<'s>, Refusal> {
        let Route { template, entry, path_params } = route;
        let empty = Map::new();
        let properties = entry["params"].get("properties").and_then(Value::as_object).unwrap_or(&empty);
        let mut errors = BTreeMap::new();
        let mut raw: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for (name, value) in path_params.into_iter().chain(given.iter().cloned()) {
            raw.entry(name).or_default().push(value);
        }
        let mut params = Map::new();
        for (name, values) in &raw {
            let Some(spec) = property(properties, name) else {
                errors.insert(name.clone(), "property is not defined in schema and the schema does not allow additional properties".into());
                continue;
            };
            match check_values(spec, values) {
                Ok(value) => {
                    params.insert(name.clone(), value);
                }
                Err(message) => {
                    errors.insert(name.clone(), message);
                }
            }
        }
        for (name, spec) in properties {
            if !is_optional(spec) && !name.ends_with("[n]") && !raw.contains_key(name) {
                errors.insert(name.clone(), "property is missing and it is not optional".into());
            }
        }
        if errors.is_empty() {
            Ok(Checked { template, method: entry, params })
        } else {
            Err(Refusal::parameters(errors))
        }
    }

    pub fn entry(&self, template: &str, method: &str) -> Option<&Value> {
        self.paths.get(template)?.get(method)
    }

    /// The template a concrete path matches, preferring literal segments over
    /// placeholders, with the placeholders' (percent-decoded) values.
    fn route(&self, path: &str) -> Option<(&str, PathParams)> {
        let segments: Vec<&str> = path.trim_end_matches('/').split('/').collect();
        let mut best: Option<(usize, &str, PathParams)> = None;
        for template in self.paths.keys() {
            let parts: Vec<&str> = template.split('/').collect();
            if parts.len() != segments.len() {
                continue;
            }
            let mut literal = 0;
            let mut bound = Vec::new();
            let matched = parts.iter().zip(&segments).all(|(part, seg)| {
                if let Some(name) = part.strip_prefix('{').and_then(|p| p.strip_suffix('}')) {
                    bound.push((name.to_string(), crate::http::percent_decode(seg)));
                    !seg.is_empty()
                } else {
                    literal += 1;
                    part == seg
                }
            });
            if matched && best.as_ref().is_none_or(|(l, _, _)| literal > *l) {
                best = Some((literal, template.as_str(), bound));
            }
        }
        best.map(|(_, template, bound)| (template, bound))
    }
}

/// A parameter's schema entry; `net0` is defined as `net[n]`.
fn property<'p>(properties: &'p Map<String, Value>, name: &str) -> Option<&'p Value> {
    if let Some(spec) = properties.get(name) {
        return Some(spec);
    }
    let stem = name.trim_end_matches(|c: char| c.is_ascii_digit());
    if stem.len() < name.len() {
        return properties.get(&format!("{stem}[n]"));
    }
    None
}

pub fn is_optional(spec: &Value) -> bool {
    spec.get("optional").is_some_and(|o| o.as_u64() == Some(1) || o.as_bool() == Some(true))
}

fn check_values(spec: &Value, values: &[String]) -> Result<Value, String> {
    if spec["type"] == "array" {
        let items = &spec["items"];
        return values.iter().map(|v| check_scalar(items, v)).collect::<Result<Vec<_>, _>>().map(Value::Array);
    }
    match values {
        [value] => check_scalar(spec, value),
        _ => Err("parameter given more than once".into()),
    }
}

/// Checks one value against a scalar schema entry (also used for the keys of
/// property strings) and returns it typed.
pub fn check_scalar(spec: &Value, value: &str) -> Result<Value, String> {
    let typed = match spec["type"].as_str().unwrap_or("string") {
        "integer" => value
            .parse::<i64>()
            .ok()
            .filter(|_| value.bytes().all(|b| b.is_ascii_digit() || b == b'-'))
            .map(Value::from)
            .ok_or_else(|| format!("type check ('integer') failed - got '{value}'"))?,
        "number" => value
            .parse::<f64>()
            .ok()
            .filter(|n| n.is_finite())
            .map(Value::from)
            .ok_or_else(|| format!("type check ('number') failed - got '{value}'"))?,
        // PVE also takes true/yes/on; the stand-in insists on the canonical
        // 0|1 so that the client never depends on the lenient spellings.
        "boolean" => match value {
            "0" => Value::from(0),
            "1" => Value::from(1),
            _ => return Err(format!("type check ('boolean') failed - got '{value}'")),
        },
        _ => Value::String(value.to_string()),
    };
    if let Some(n) = typed.as_f64().filter(|_| !typed.is_string()) {
        if let Some(min) = bound(spec, "minimum").filter(|m| n < *m) {
            return Err(format!("value must have a minimum value of {min}"));
        }
        if let Some(max) = bound(spec, "maximum").filter(|m| n > *m) {
            return Err(format!("value must have a maximum value of {max}"));
        }
    }
    if let Some(options) = spec.get("enum").and_then(Value::as_array) {
        if !options.iter().any(|o| o.as_str() == Some(value)) {
            let listed: Vec<&str> = options.iter().filter_map(Value::as_str).collect();
            return Err(format!("value '{value}' does not have a value in the enumeration '{}'", listed.join(", ")));
        }
    }
    if typed.is_string() {
        if let Some(max) = spec.get("maxLength").and_then(as_number).filter(|m| value.chars().count() as f64 > *m) {
            return Err(format!("value may only be {max} characters long"));
        }
        if let Some(pattern) = spec.get("pattern").and_then(Value::as_str) {
            if !formats::matches_pattern(pattern, value) {
                return Err(format!("value does not match the regex pattern '{pattern}'"));
            }
        }
        match spec.get("format") {
            Some(Value::String(name)) => formats::check_named(name, value)?,
            Some(Value::Object(keys)) => formats::check_property_string(keys, value)?,
            _ => {}
        }
    }
    Ok(typed)
}

/// Schema bounds appear both as numbers and as numeric strings.
fn as_number(v: &Value) -> Option<f64> {
    v.as_f64().or_else(|| v.as_str().and_then(|s| s.parse().ok()))
}

fn bound(spec: &Value, key: &str) -> Option<f64> {
    spec.get(key).and_then(as_number)
}
