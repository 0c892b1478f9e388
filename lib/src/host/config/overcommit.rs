//! db.yaml `overcommit`: how far a create may promise VMs more than the host
//! has. Each ratio scales what the host has against what the VMs may take:
//! `cpu` the host's CPUs against every running VM's vCPUs, `memory` its free
//! and total memory against the running VMs' memory, `disk` the free space of
//! the VMs' file system against what their thin disks may still grow by.

use super::lookup;
use serde_json::Value;

pub const KEY: &str = "overcommit";

/// The ratios; the defaults share CPUs, never promise memory the host does
/// not have, and let thin disks add up to twice the free space.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Overcommit {
    pub cpu: f64,
    pub memory: f64,
    pub disk: f64,
}

impl Default for Overcommit {
    fn default() -> Self {
        Self { cpu: 4.0, memory: 1.0, disk: 2.0 }
    }
}

impl Overcommit {
    /// Reads the section; the error is the dotted key and what is wrong with it.
    pub fn from_doc(doc: &Value) -> Result<Self, (String, String)> {
        let defaults = Self::default();
        let ratio = |name: &str, default: f64| -> Result<f64, (String, String)> {
            let key = format!("{KEY}.{name}");
            match lookup(doc, &key) {
                None => Ok(default),
                Some(v) => v.as_f64().filter(|r| (0.1..=100.0).contains(r)).ok_or_else(|| (key, "must be a number from 0.1 to 100".to_string())),
            }
        };
        match lookup(doc, KEY) {
            Some(v) if !v.is_object() => Err((KEY.to_string(), "not a mapping (keys cpu, memory, disk)".to_string())),
            _ => Ok(Self { cpu: ratio("cpu", defaults.cpu)?, memory: ratio("memory", defaults.memory)?, disk: ratio("disk", defaults.disk)? }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn absent_keys_take_the_defaults() {
        assert_eq!(Overcommit::from_doc(&json!({})), Ok(Overcommit::default()));
        assert_eq!(Overcommit::from_doc(&json!({"overcommit": {"memory": 1.5}})), Ok(Overcommit { memory: 1.5, ..Overcommit::default() }));
        assert_eq!(Overcommit::from_doc(&json!({"overcommit": {"cpu": 8}})), Ok(Overcommit { cpu: 8.0, ..Overcommit::default() }));
    }

    #[test]
    fn a_bad_ratio_names_its_key() {
        for (doc, key) in [
            (json!({"overcommit": {"disk": 0}}), "overcommit.disk"),
            (json!({"overcommit": {"cpu": "lots"}}), "overcommit.cpu"),
            (json!({"overcommit": 2}), "overcommit"),
        ] {
            assert_eq!(Overcommit::from_doc(&doc).map_err(|(k, _)| k), Err(key.to_string()));
        }
    }
}
