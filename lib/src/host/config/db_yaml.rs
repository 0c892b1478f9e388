//! `/etc/blockhost/db.yaml` with blockhost-common's normalization rules (facts §1.6, §2.1).

use super::overcommit::Overcommit;
use super::typos::{typos, Typo};
use super::{lookup, parse_yaml, read_optional, ConfigError};
use crate::host::paths::HostPaths;
use serde_json::Value;
use std::net::Ipv4Addr;
use crate::host::vmdb::DEFAULT_LOCK_TIMEOUT;
use std::path::{Path, PathBuf};
use std::time::Duration;

pub const DEFAULT_DB_FILE: &str = "/var/lib/blockhost/vms.json";

/// The largest VMID Proxmox VE accepts; every VMID and `next_vmid` stays below
/// it, so counting never overflows.
pub const MAX_VMID: u64 = 999_999_999;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ipv4Pool {
    pub network: Ipv4Addr,
    pub prefix_len: u8,
    pub first: Ipv4Addr,
    pub last: Ipv4Addr,
    pub gateway: Option<Ipv4Addr>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ipv6Bounds {
    pub start: u128,
    pub end: u128,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VmidRange {
    pub start: u64,
    pub end: u64,
}

#[derive(Debug, Clone)]
pub struct DbConfig {
    /// The file this came from; `None` when db.yaml is absent and defaults apply.
    pub source: Option<PathBuf>,
    /// `db_file` as configured (a host path, mapped under the root by the caller).
    pub db_file: String,
    pub ip_pool: Ipv4Pool,
    pub ipv6_pool: Ipv6Bounds,
    pub vmid_range: Option<VmidRange>,
    pub gc_grace_days: u32,
    pub default_expiry_days: u32,
    pub bridge: String,
    /// Bound of the wait for the VM database lock: `db_lock_timeout_seconds`
    /// (1-300, default 20), overridden by `BLOCKHOST_DB_LOCK_TIMEOUT`.
    pub db_lock_timeout: Duration,
    /// `overcommit`: how far a create may promise VMs more than the host has.
    pub overcommit: Overcommit,
    /// `metrics_max_age_seconds` (0-60, default 5): how old a shared bulk
    /// metrics sample may be and still answer `metrics <vm>`; 0 asks the backend every time.
    pub metrics_max_age: Duration,
    /// Unknown keys that look like typos of ours (told as warnings, else ignored).
    pub typos: Vec<Typo>,
    /// The whole document, for provider-specific keys.
    pub raw: Value,
}

impl DbConfig {
    /// Loads db.yaml. A missing file is an error only when `required`.
    pub fn load(paths: &HostPaths, required: bool) -> Result<Self, ConfigError> {
        let path = paths.config_file("db.yaml");
        match read_optional(&path)? {
            Some(text) => Self::parse(&path, &text),
            None if required => Err(ConfigError::Missing(path)),
            None => Self::from_value(&path, Value::Object(Default::default()), None),
        }
    }

    pub fn parse(path: &Path, text: &str) -> Result<Self, ConfigError> {
        let doc = parse_yaml(path, text)?;
        Self::from_value(path, doc, Some(path.to_path_buf()))
    }

    fn from_value(path: &Path, doc: Value, source: Option<PathBuf>) -> Result<Self, ConfigError> {
        let key_err = |key: &str, msg: String| ConfigError::Key(path.to_path_buf(), key.to_string(), msg);
        let db_file = match lookup(&doc, "db_file") {
            None => DEFAULT_DB_FILE.to_string(),
            Some(Value::String(s)) if !s.trim().is_empty() => s.trim().to_string(),
            Some(_) => return Err(key_err("db_file", "must be a non-empty path".into())),
        };
        let ip_pool = ipv4_pool(&doc).map_err(|(k, m)| key_err(&k, m))?;
        let ipv6_pool = Ipv6Bounds {
            start: uint(&doc, "ipv6_pool.start", 2).map_err(|m| key_err("ipv6_pool.start", m))? as u128,
            end: uint(&doc, "ipv6_pool.end", 254).map_err(|m| key_err("ipv6_pool.end", m))? as u128,
        };
        if ipv6_pool.start > ipv6_pool.end {
            return Err(key_err("ipv6_pool", "start is greater than end".into()));
        }
        let range_key = if lookup(&doc, "vmid_range").is_some() { "vmid_range" } else { "vmid_pool" };
        let vmid_range = match lookup(&doc, range_key) {
            None => None,
            Some(_) => {
                let start = uint(&doc, &format!("{range_key}.start"), 100).map_err(|m| key_err(range_key, m))?;
                let end = uint(&doc, &format!("{range_key}.end"), 999_999).map_err(|m| key_err(range_key, m))?;
                if start > end {
                    return Err(key_err(range_key, "start is greater than end".into()));
                }
                if end > MAX_VMID {
                    return Err(key_err(range_key, format!("end must be at most {MAX_VMID} (the largest VMID), got {end}")));
                }
                Some(VmidRange { start, end })
            }
        };
        let days = |key: &str, default: u64| -> Result<u32, ConfigError> {
            let v = uint(&doc, key, default).map_err(|m| key_err(key, m))?;
            u32::try_from(v).ok().filter(|d| *d <= 36_500).ok_or_else(|| key_err(key, "must be at most 36500".into()))
        };
        let gc_grace_days = days("gc_grace_days", 7)?;
        let default_expiry_days = days("default_expiry_days", 30)?;
        if default_expiry_days == 0 {
            return Err(key_err("default_expiry_days", "must be at least 1".into()));
        }
        let bridge = match lookup(&doc, "bridge") {
            None => "br0".to_string(),
            Some(Value::String(s)) if valid_ifname(s) => s.clone(),
            Some(_) => return Err(key_err("bridge", "must be a network interface name".into())),
        };
        let db_lock_timeout = lock_timeout(&doc).map_err(|m| key_err(LOCK_TIMEOUT_KEY, m))?;
        let overcommit = Overcommit::from_doc(&doc).map_err(|(k, m)| key_err(&k, m))?;
        let metrics_max_age = match uint(&doc, METRICS_MAX_AGE_KEY, 5) {
            Ok(secs) if secs <= 60 => Duration::from_secs(secs),
            Ok(secs) => return Err(key_err(METRICS_MAX_AGE_KEY, format!("must be at most 60 seconds, got {secs}"))),
            Err(m) => return Err(key_err(METRICS_MAX_AGE_KEY, m)),
        };
        let typos = typos(&doc);
        Ok(Self {
            source,
            db_file,
            ip_pool,
            ipv6_pool,
            vmid_range,
            gc_grace_days,
            default_expiry_days,
            bridge,
            db_lock_timeout,
            overcommit,
            metrics_max_age,
            typos,
            raw: doc,
        })
    }
}

const LOCK_TIMEOUT_KEY: &str = "db_lock_timeout_seconds";
const METRICS_MAX_AGE_KEY: &str = "metrics_max_age_seconds";
pub const LOCK_TIMEOUT_ENV: &str = "BLOCKHOST_DB_LOCK_TIMEOUT";

/// The environment's value when set, else db.yaml's, else the default.
fn lock_timeout(doc: &Value) -> Result<Duration, String> {
    let secs = match std::env::var(LOCK_TIMEOUT_ENV) {
        Ok(text) => text.trim().parse().map_err(|_| format!("{LOCK_TIMEOUT_ENV}={text:?} is not a number of seconds"))?,
        Err(_) => uint(doc, LOCK_TIMEOUT_KEY, DEFAULT_LOCK_TIMEOUT.as_secs())?,
    };
    if (1..=300).contains(&secs) {
        Ok(Duration::from_secs(secs))
    } else {
        Err(format!("must be between 1 and 300 seconds, got {secs}"))
    }
}

fn valid_ifname(s: &str) -> bool {
    (1..=15).contains(&s.len()) && !s.starts_with('-') && s.bytes().all(|b| b.is_ascii_alphanumeric() || b"_.-".contains(&b))
}

/// An unsigned integer given as a YAML int or a numeric string.
fn uint(doc: &Value, key: &str, default: u64) -> Result<u64, String> {
    match lookup(doc, key) {
        None => Ok(default),
        Some(Value::Number(n)) => n.as_u64().ok_or_else(|| format!("must be a non-negative integer, got {n}")),
        Some(Value::String(s)) => s.trim().parse().map_err(|_| format!("must be a non-negative integer, got {s:?}")),
        Some(other) => Err(format!("must be a non-negative integer, got {other}")),
    }
}

fn ipv4_pool(doc: &Value) -> Result<Ipv4Pool, (String, String)> {
    let err = |k: &str, m: String| (k.to_string(), m);
    let network_text = match lookup(doc, "ip_pool.network") {
        None => "192.168.122.0/24".to_string(),
        Some(Value::String(s)) => s.trim().to_string(),
        Some(other) => return Err(err("ip_pool.network", format!("must be an IPv4 network like 10.0.0.0/24, got {other}"))),
    };
    let (addr, len) = network_text
        .split_once('/')
        .and_then(|(a, l)| Some((a.parse::<Ipv4Addr>().ok()?, l.parse::<u8>().ok().filter(|l| (8..=30).contains(l))?)))
        .ok_or_else(|| err("ip_pool.network", format!("must be an IPv4 network with a prefix length 8-30, got {network_text:?}")))?;
    let mask = u32::MAX << (32 - len);
    let network = Ipv4Addr::from(u32::from(addr) & mask);
    let broadcast = u32::from(network) | !mask;
    let bound = |key: &str, default: u32| -> Result<Ipv4Addr, (String, String)> {
        let full = format!("ip_pool.{key}");
        let ip = match lookup(doc, &full) {
            None => Ipv4Addr::from(u32::from(network) + default),
            Some(Value::Number(n)) => n
                .as_u64()
                .and_then(|o| u32::try_from(o).ok())
                .and_then(|o| u32::from(network).checked_add(o))
                .map(Ipv4Addr::from)
                .ok_or_else(|| err(&full, format!("offset {n} is out of range")))?,
            Some(Value::String(s)) => {
                let s = s.trim();
                match (s.parse::<Ipv4Addr>(), s.parse::<u32>()) {
                    (Ok(ip), _) => ip,
                    (_, Ok(o)) => Ipv4Addr::from(u32::from(network).saturating_add(o)),
                    _ => return Err(err(&full, format!("must be an IPv4 address or a host number, got {s:?}"))),
                }
            }
            Some(other) => return Err(err(&full, format!("must be an IPv4 address or a host number, got {other}"))),
        };
        let n = u32::from(ip);
        if n <= u32::from(network) || n >= broadcast {
            return Err(err(&full, format!("{ip} is not a usable host address of {network}/{len}")));
        }
        Ok(ip)
    };
    let first = bound("start", 200.min(broadcast - u32::from(network) - 1))?;
    let last = bound("end", 250.min(broadcast - u32::from(network) - 1))?;
    if first > last {
        return Err(err("ip_pool", format!("start {first} is after end {last}")));
    }
    let gateway = match lookup(doc, "ip_pool.gateway") {
        None => None,
        Some(Value::String(s)) if s.trim().is_empty() => None,
        Some(Value::String(s)) => Some(
            s.trim().parse::<Ipv4Addr>().map_err(|_| err("ip_pool.gateway", format!("must be an IPv4 address, got {s:?}")))?,
        ),
        Some(other) => return Err(err("ip_pool.gateway", format!("must be an IPv4 address, got {other}"))),
    };
    Ok(Ipv4Pool { network, prefix_len: len, first, last, gateway })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<DbConfig, ConfigError> {
        DbConfig::parse(Path::new("/etc/blockhost/db.yaml"), text)
    }

    #[test]
    fn defaults_when_keys_absent() {
        let c = parse("bridge: br0\n").unwrap();
        assert_eq!(c.db_file, DEFAULT_DB_FILE);
        assert_eq!(c.ip_pool.network, Ipv4Addr::new(192, 168, 122, 0));
        assert_eq!(c.ip_pool.first, Ipv4Addr::new(192, 168, 122, 200));
        assert_eq!(c.ip_pool.last, Ipv4Addr::new(192, 168, 122, 250));
        assert_eq!(c.ipv6_pool, Ipv6Bounds { start: 2, end: 254 });
        assert_eq!((c.gc_grace_days, c.default_expiry_days), (7, 30));
        assert!(c.vmid_range.is_none());
        assert_eq!(c.metrics_max_age, Duration::from_secs(5));
    }

    #[test]
    fn metrics_max_age_is_0_to_60_seconds() {
        assert_eq!(parse("metrics_max_age_seconds: 0\n").unwrap().metrics_max_age, Duration::ZERO);
        assert_eq!(parse("metrics_max_age_seconds: 60\n").unwrap().metrics_max_age, Duration::from_secs(60));
        let err = parse("metrics_max_age_seconds: 61\n").unwrap_err().to_string();
        assert!(err.contains("metrics_max_age_seconds") && err.contains("at most 60"), "{err}");
        assert!(parse("metrics_max_age_seconds: soon\n").is_err());
    }

    #[test]
    fn pool_bounds_as_full_addresses_or_numbers() {
        let c = parse("ip_pool:\n  network: 10.1.0.0/16\n  start: 10.1.2.10\n  end: \"20\"\n  gateway: 10.1.0.1\n");
        assert!(c.is_err(), "end before start");
        let c = parse("ip_pool:\n  network: 10.1.0.0/16\n  start: 10.1.2.10\n  end: 10.1.2.20\n  gateway: 10.1.0.1\n").unwrap();
        assert_eq!(c.ip_pool.first, Ipv4Addr::new(10, 1, 2, 10));
        assert_eq!(c.ip_pool.prefix_len, 16);
        let c = parse("ip_pool: {network: 192.168.5.0/24, start: 2, end: \"254\"}\n").unwrap();
        assert_eq!(c.ip_pool.first, Ipv4Addr::new(192, 168, 5, 2));
        assert_eq!(c.ip_pool.last, Ipv4Addr::new(192, 168, 5, 254));
    }

    #[test]
    fn vmid_pool_alias() {
        let c = parse("vmid_pool: {start: 100, end: 200}\n").unwrap();
        assert_eq!(c.vmid_range, Some(VmidRange { start: 100, end: 200 }));
    }

    #[test]
    fn errors_name_file_and_key() {
        let cases = [
            ("", "file is empty"),
            ("- a\n- b\n", "the top level must be a mapping"),
            ("ip_pool: {network: nonsense}\n", "key 'ip_pool.network'"),
            ("ip_pool: {network: 10.0.0.0/24, start: 10.0.1.5}\n", "key 'ip_pool.start'"),
            ("ip_pool: {network: 10.0.0.0/24, start: 0}\n", "key 'ip_pool.start'"),
            ("ip_pool: {network: 10.0.0.0/24, end: 255}\n", "key 'ip_pool.end'"),
            ("gc_grace_days: -1\n", "key 'gc_grace_days'"),
            ("gc_grace_days: abc\n", "key 'gc_grace_days'"),
            ("bridge: 'br0; rm -rf /'\n", "key 'bridge'"),
            ("db_file: ''\n", "key 'db_file'"),
            ("vmid_range: {start: 18446744073709551614, end: 18446744073709551615}\n", "key 'vmid_range': end must be at most 999999999"),
            ("key: [unclosed\n", "not valid YAML"),
        ];
        for (text, expected) in cases {
            let msg = parse(text).unwrap_err().to_string();
            assert!(msg.starts_with("/etc/blockhost/db.yaml: "), "{msg}");
            assert!(msg.contains(expected), "{text:?} -> {msg}");
            assert!(!msg.contains('\n'), "{msg}");
        }
    }
}
