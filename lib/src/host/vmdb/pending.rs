//! The create journal: a create in progress is recorded in the database itself,
//! atomically with its address allocation, under the top-level key
//! `pending_creates` (other BlockHost components preserve unknown top-level keys).
//! A create that dies is found by a later create or gc and undone.

use super::{DbError, Document};
use crate::host::process::ProcessId;
use serde_json::{json, Map, Value};

const KEY: &str = "pending_creates";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingCreate {
    pub name: String,
    pub owner: ProcessId,
    pub ip: String,
    pub ipv6: Option<String>,
    pub vmid: u64,
    pub started_at: String,
}

impl PendingCreate {
    fn to_value(&self) -> Value {
        json!({
            "pid": self.owner.pid,
            "pid_start_ticks": self.owner.start_ticks,
            "started_at": self.started_at,
            "ip_address": self.ip,
            "ipv6_address": self.ipv6.clone().unwrap_or_default(),
            "vmid": self.vmid,
        })
    }

    fn from_value(name: &str, v: &Value) -> Self {
        let u = |k| v.get(k).and_then(Value::as_u64).unwrap_or(0);
        let s = |k| v.get(k).and_then(Value::as_str).unwrap_or("").to_string();
        let ipv6 = s("ipv6_address");
        Self {
            name: name.to_string(),
            owner: ProcessId { pid: u32::try_from(u("pid")).unwrap_or(0), start_ticks: u("pid_start_ticks") },
            ip: s("ip_address"),
            ipv6: (!ipv6.is_empty()).then_some(ipv6),
            vmid: u("vmid"),
            started_at: s("started_at"),
        }
    }
}

impl Document {
    fn pending_map(&self) -> Option<&Map<String, Value>> {
        self.root().get(KEY).and_then(Value::as_object)
    }

    pub fn pending(&self, name: &str) -> Option<PendingCreate> {
        self.pending_map()?.get(name).map(|v| PendingCreate::from_value(name, v))
    }

    pub fn pending_all(&self) -> Vec<PendingCreate> {
        self.pending_map().into_iter().flatten().map(|(n, v)| PendingCreate::from_value(n, v)).collect()
    }

    /// Records a create in progress and marks its addresses allocated.
    pub fn add_pending(&mut self, entry: &PendingCreate) -> Result<(), DbError> {
        if let Some(existing) = self.pending(&entry.name) {
            return Err(DbError::CreateInProgress(entry.name.clone(), existing.owner.pid));
        }
        self.add_allocated("allocated_ips", &entry.ip);
        if let Some(v6) = &entry.ipv6 {
            self.add_allocated("allocated_ipv6", v6);
        }
        let map = self.root_mut().entry(KEY).or_insert_with(|| Value::Object(Map::new()));
        if !map.is_object() {
            *map = Value::Object(Map::new());
        }
        map.as_object_mut().expect("just ensured").insert(entry.name.clone(), entry.to_value());
        Ok(())
    }

    /// Ends a create: the entry goes; its addresses are released unless `keep_addresses`
    /// (the create committed and a record now owns them). An address a record
    /// holds is never released: the journal only undoes what its create made.
    pub fn finish_pending(&mut self, name: &str, keep_addresses: bool) {
        let Some(entry) = self.pending(name) else { return };
        if !keep_addresses {
            for (key, address) in [("allocated_ips", Some(&entry.ip)), ("allocated_ipv6", entry.ipv6.as_ref())] {
                if let Some(address) = address.filter(|a| !self.held_by_record(a)) {
                    self.remove_allocated(key, address);
                }
            }
        }
        let root = self.root_mut();
        if let Some(map) = root.get_mut(KEY).and_then(Value::as_object_mut) {
            map.shift_remove(name);
            if map.is_empty() {
                root.shift_remove(KEY);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(name: &str) -> PendingCreate {
        PendingCreate {
            name: name.into(),
            owner: ProcessId { pid: 42, start_ticks: 7 },
            ip: "10.0.0.9".into(),
            ipv6: Some("fd00::3".into()),
            vmid: 0,
            started_at: "2026-01-01T00:00:00+00:00".into(),
        }
    }

    #[test]
    fn creates_under_way_are_journalled_side_by_side() {
        let mut doc = Document::initial(0);
        doc.add_pending(&entry("a")).unwrap();
        doc.add_pending(&PendingCreate { ip: "10.0.0.10".into(), ipv6: None, ..entry("b") }).unwrap();
        assert_eq!(doc.pending("a"), Some(entry("a")), "the second entry keeps the first");
        assert_eq!(doc.pending_all().len(), 2);
    }

    #[test]
    fn pending_round_trip_and_release() {
        let mut doc = Document::initial(0);
        doc.add_pending(&entry("a")).unwrap();
        assert!(matches!(doc.add_pending(&entry("a")), Err(DbError::CreateInProgress(_, 42))));
        let reparsed = Document::parse(&doc.to_json()).unwrap();
        assert_eq!(reparsed.pending("a"), Some(entry("a")));
        assert_eq!(doc.allocated("allocated_ips"), ["10.0.0.9"]);
        doc.finish_pending("a", false);
        assert!(doc.allocated("allocated_ips").is_empty());
        assert!(doc.allocated("allocated_ipv6").is_empty());
        assert_eq!(doc, Document::initial(0));
    }

    #[test]
    fn undoing_an_entry_never_releases_a_records_addresses() {
        let mut doc = Document::initial(0);
        let reg = crate::host::vmdb::Registration {
            name: "a".into(),
            vmid: 0,
            ip: "10.0.0.9".into(),
            ipv6: Some("fd00::3".into()),
            owner: String::new(),
            expiry_days: 1,
            purpose: String::new(),
            wallet_address: None,
            username: None,
            network_mode: "broker".into(),
        };
        doc.register_vm(&reg, crate::host::timestamp::now()).unwrap();
        doc.add_pending(&entry("a")).unwrap();
        doc.finish_pending("a", false);
        assert!(doc.pending_all().is_empty());
        assert_eq!(doc.allocated("allocated_ips"), ["10.0.0.9"]);
        assert_eq!(doc.allocated("allocated_ipv6"), ["fd00::3"]);
    }

    #[test]
    fn committed_create_keeps_its_addresses() {
        let mut doc = Document::initial(0);
        doc.add_pending(&entry("a")).unwrap();
        doc.finish_pending("a", true);
        assert_eq!(doc.allocated("allocated_ips"), ["10.0.0.9"]);
        assert!(doc.pending_all().is_empty());
    }
}
