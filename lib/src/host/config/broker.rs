//! `/etc/blockhost/broker-allocation.json` (optional): the IPv6 prefix VMs get
//! addresses from, and the DNS zone for per-VM signing hostnames.

use super::{lookup, parse_json, read_optional, ConfigError};
use crate::host::paths::HostPaths;
use std::net::Ipv6Addr;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BrokerAllocation {
    pub network: Ipv6Addr,
    pub prefix_len: u8,
    pub dns_zone: Option<String>,
}

impl BrokerAllocation {
    /// `Ok(None)` when the file is absent or has no `prefix` (no IPv6 for VMs).
    pub fn load(paths: &HostPaths) -> Result<Option<Self>, ConfigError> {
        let path = paths.config_file("broker-allocation.json");
        let Some(text) = read_optional(&path)? else { return Ok(None) };
        let doc = parse_json(&path, &text)?;
        let key_err = |key: &str, msg: String| ConfigError::Key(path.clone(), key.into(), msg);
        let prefix = match lookup(&doc, "prefix") {
            None => return Ok(None),
            Some(serde_json::Value::String(s)) if s.trim().is_empty() => return Ok(None),
            Some(serde_json::Value::String(s)) => s.trim().to_string(),
            Some(other) => return Err(key_err("prefix", format!("must be an IPv6 prefix, got {other}"))),
        };
        let (addr, len) = prefix
            .split_once('/')
            .and_then(|(a, l)| Some((a.parse::<Ipv6Addr>().ok()?, l.parse::<u8>().ok().filter(|l| (48..=124).contains(l))?)))
            .ok_or_else(|| key_err("prefix", format!("must be an IPv6 prefix with a length of 48-124, got {prefix:?}")))?;
        let mask = u128::MAX << (128 - len);
        let dns_zone = match lookup(&doc, "dns_zone") {
            Some(serde_json::Value::String(z)) if valid_zone(z) => Some(z.trim_end_matches('.').to_ascii_lowercase()),
            Some(serde_json::Value::String(z)) if z.is_empty() => None,
            None => None,
            Some(other) => return Err(key_err("dns_zone", format!("must be a DNS zone name, got {other}"))),
        };
        Ok(Some(Self { network: Ipv6Addr::from(u128::from(addr) & mask), prefix_len: len, dns_zone }))
    }

    /// The in-guest IPv6 gateway: the prefix's network address + 1 (the bridge's address).
    pub fn gateway(&self) -> Ipv6Addr {
        Ipv6Addr::from(u128::from(self.network) + 1)
    }
}

fn valid_zone(zone: &str) -> bool {
    let zone = zone.trim_end_matches('.');
    !zone.is_empty()
        && zone.len() <= 253
        && zone.split('.').all(|label| {
            (1..=63).contains(&label.len())
                && !label.starts_with('-')
                && label.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        })
}
