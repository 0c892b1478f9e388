//! The schema's `format` and `pattern` checks that are practical to model:
//! the named formats a provisioner's requests carry, and property strings
//! (`key=value,...` whose keys the schema lists). Named formats not listed
//! here are accepted as plain strings.

use serde_json::{Map, Value};
use std::net::{Ipv4Addr, Ipv6Addr};

/// Whether `value` matches a schema pattern as a whole. A pattern this regex
/// engine cannot compile is not enforced.
pub fn matches_pattern(pattern: &str, value: &str) -> bool {
    match regex_lite::Regex::new(&format!("^(?:{pattern})$")) {
        Ok(re) => re.is_match(value),
        Err(_) => true,
    }
}

pub fn check_named(name: &str, value: &str) -> Result<(), String> {
    let ok = match name {
        "pve-node" => is_dns_label(value),
        "dns-name" => !value.is_empty() && value.split('.').all(is_dns_label),
        "pve-storage-id" | "pve-poolid" => matches_pattern(r"[a-zA-Z][a-zA-Z0-9\-_.]*[a-zA-Z0-9]", value),
        "pve-configid" => matches_pattern(r"[a-zA-Z][a-zA-Z0-9_\-]*", value),
        "pve-configid-list" => value.split([',', ';', ' ']).filter(|s| !s.is_empty()).all(|s| check_named("pve-configid", s).is_ok()),
        "pve-tag-list" => value.split([',', ';', ' ']).filter(|s| !s.is_empty()).all(|t| matches_pattern(r"[a-z0-9_][a-z0-9_\-+.]*", t)),
        "ipv4" => value.parse::<Ipv4Addr>().is_ok(),
        "ipv6" => value.parse::<Ipv6Addr>().is_ok(),
        "CIDR" => is_cidr(value),
        "IPorCIDRorAlias" => {
            value.parse::<std::net::IpAddr>().is_ok() || is_cidr(value) || matches_pattern(r"(?:(?:dc|guest)/)?[A-Za-z][A-Za-z0-9\-_]+", value)
        }
        _ => true,
    };
    if ok {
        Ok(())
    } else {
        Err(format!("value does not look like a valid {name}"))
    }
}

fn is_dns_label(label: &str) -> bool {
    matches_pattern(r"[a-zA-Z0-9]([a-zA-Z0-9\-]*[a-zA-Z0-9])?", label)
}

fn is_cidr(value: &str) -> bool {
    let Some((addr, len)) = value.split_once('/') else { return false };
    match (addr.parse::<Ipv4Addr>(), addr.parse::<Ipv6Addr>(), len.parse::<u8>()) {
        (Ok(_), _, Ok(l)) => l <= 32,
        (_, Ok(_), Ok(l)) => l <= 128,
        _ => false,
    }
}

/// A property string: comma-separated `key=value` pairs, one bare value
/// allowed for the key marked `default_key`; every key defined by the format,
/// given once, its value checked like a parameter's.
pub fn check_property_string(keys: &Map<String, Value>, value: &str) -> Result<(), String> {
    let default_key = keys.iter().find(|(_, spec)| spec.get("default_key").is_some_and(|d| d == 1)).map(|(k, _)| k.as_str());
    let mut seen = Vec::new();
    for part in value.split(',').filter(|p| !p.is_empty()) {
        let (key, sub) = match part.split_once('=') {
            Some((key, sub)) => (key, sub),
            None => match default_key {
                Some(key) => (key, part),
                None => return Err(format!("invalid format - value without key, but schema does not define a default key: '{part}'")),
            },
        };
        let spec = keys.get(key).ok_or_else(|| format!("invalid format - property '{key}' is not defined in the format"))?;
        if seen.contains(&key) {
            return Err(format!("invalid format - duplicate key in comma-separated list property: {key}"));
        }
        seen.push(key);
        crate::schema::check_scalar(spec, sub).map_err(|e| format!("invalid format - {key}: {e}"))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn named_formats() {
        assert!(check_named("pve-node", "pve1").is_ok());
        assert!(check_named("pve-node", "pve_1").is_err());
        assert!(check_named("dns-name", "vm-1.example").is_ok());
        assert!(check_named("dns-name", "vm 1").is_err());
        assert!(check_named("pve-configid-list", "bps_rd,iops_wr").is_ok());
        assert!(check_named("pve-configid-list", "bad!").is_err());
        assert!(check_named("pve-tag-list", "blockhost;owner-admin").is_ok());
        assert!(check_named("pve-tag-list", "Upper").is_err());
        assert!(check_named("something-unmodelled", "anything").is_ok());
    }
}
