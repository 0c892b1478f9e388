//! The parsed `vms.json` document and blockhost-common's `vm_db` semantics on it.
//! Unknown top-level keys, unknown record keys and key order are preserved.

use super::DbError;
use crate::host::pyjson;
use crate::host::timestamp::{self, Timestamp};
use chrono::Duration;
use serde_json::{json, Map, Value};

#[derive(Debug, Clone, PartialEq)]
pub struct Document {
    root: Map<String, Value>,
}

/// Arguments of `register_vm`, in the order blockhost-common writes the record.
#[derive(Debug, Clone)]
pub struct Registration {
    pub name: String,
    pub vmid: u64,
    pub ip: String,
    pub ipv6: Option<String>,
    pub owner: String,
    pub expiry_days: u32,
    pub purpose: String,
    pub wallet_address: Option<String>,
    pub username: Option<String>,
    pub network_mode: String,
}

/// A read-only view of one VM record.
#[derive(Debug, Clone, Copy)]
pub struct VmRecord<'a> {
    pub name: &'a str,
    fields: &'a Map<String, Value>,
}

impl<'a> VmRecord<'a> {
    pub fn str(&self, key: &str) -> Option<&'a str> {
        self.fields.get(key).and_then(Value::as_str)
    }
    pub fn status(&self) -> &'a str {
        self.str("status").unwrap_or("unknown")
    }
    pub fn ip(&self) -> &'a str {
        self.str("ip_address").unwrap_or("")
    }
    pub fn ipv6(&self) -> &'a str {
        self.str("ipv6_address").unwrap_or("")
    }
    pub fn created_at(&self) -> &'a str {
        self.str("created_at").unwrap_or("")
    }
    pub fn time(&self, key: &str) -> Option<Timestamp> {
        self.str(key).and_then(timestamp::parse)
    }
    pub fn username(&self) -> Option<&'a str> {
        self.str("username").filter(|u| !u.is_empty())
    }
    pub fn fields(&self) -> &'a Map<String, Value> {
        self.fields
    }
}

impl Document {
    pub fn initial(next_vmid: u64) -> Self {
        let root = json!({"vms": {}, "next_vmid": next_vmid, "allocated_ips": [], "allocated_ipv6": []});
        let Value::Object(root) = root else { unreachable!("literal object") };
        Self { root }
    }

    /// Parses and checks the shape every reader relies on; anything else is corrupt.
    pub fn parse(text: &str) -> Result<Self, String> {
        if text.trim().is_empty() {
            return Err("the file is empty".into());
        }
        let value = pyjson::loads(text).map_err(|e| e.to_string())?;
        let Value::Object(root) = value else { return Err("the top level is not an object".into()) };
        match root.get("vms") {
            None => {}
            Some(Value::Object(vms)) => {
                if let Some((name, _)) = vms.iter().find(|(_, v)| !v.is_object()) {
                    return Err(format!("record {name:?} is not an object"));
                }
            }
            Some(_) => return Err("\"vms\" is not an object".into()),
        }
        for key in ["allocated_ips", "allocated_ipv6"] {
            match root.get(key) {
                None => {}
                Some(Value::Array(items)) if items.iter().all(Value::is_string) => {}
                Some(_) => return Err(format!("{key:?} is not a list of strings")),
            }
        }
        if root.get("next_vmid").is_some_and(|v| !v.is_u64()) {
            return Err("\"next_vmid\" is not a non-negative integer".into());
        }
        Ok(Self { root })
    }

    /// `json.dump(..., indent=2)` as blockhost-common writes it (no trailing newline).
    pub fn to_json(&self) -> String {
        pyjson::dumps_indent2(&Value::Object(self.root.clone()))
    }

    pub(super) fn root_mut(&mut self) -> &mut Map<String, Value> {
        &mut self.root
    }

    pub(super) fn root(&self) -> &Map<String, Value> {
        &self.root
    }

    fn vms_mut(&mut self) -> &mut Map<String, Value> {
        let vms = self.root.entry("vms").or_insert_with(|| Value::Object(Map::new()));
        vms.as_object_mut().expect("checked at parse time")
    }

    fn record_mut(&mut self, name: &str) -> Result<&mut Map<String, Value>, DbError> {
        self.vms_mut()
            .get_mut(name)
            .and_then(Value::as_object_mut)
            .ok_or_else(|| DbError::UnknownVm(name.to_string()))
    }

    pub fn vm(&self, name: &str) -> Option<VmRecord<'_>> {
        let (name, fields) = self.root.get("vms")?.as_object()?.get_key_value(name)?;
        Some(VmRecord { name, fields: fields.as_object()? })
    }

    /// All records in insertion order.
    pub fn vms(&self) -> impl Iterator<Item = VmRecord<'_>> {
        self.root
            .get("vms")
            .and_then(Value::as_object)
            .into_iter()
            .flat_map(|vms| vms.iter())
            .filter_map(|(name, v)| Some(VmRecord { name, fields: v.as_object()? }))
    }

    pub fn next_vmid(&self) -> u64 {
        self.root.get("next_vmid").and_then(Value::as_u64).unwrap_or(0)
    }

    pub(crate) fn set_next_vmid(&mut self, value: u64) {
        self.root.insert("next_vmid".into(), json!(value));
    }

    pub fn allocated(&self, key: &str) -> Vec<&str> {
        self.root.get(key).and_then(Value::as_array).into_iter().flatten().filter_map(Value::as_str).collect()
    }

    pub(super) fn add_allocated(&mut self, key: &str, address: &str) {
        let list = self.root.entry(key).or_insert_with(|| Value::Array(Vec::new()));
        let list = list.as_array_mut().expect("checked at parse time");
        if !list.iter().any(|v| v.as_str() == Some(address)) {
            list.push(json!(address));
        }
    }

    pub(super) fn remove_allocated(&mut self, key: &str, address: &str) {
        if let Some(list) = self.root.get_mut(key).and_then(Value::as_array_mut) {
            list.retain(|v| v.as_str() != Some(address));
        }
    }

    /// True when a record that is not destroyed holds `address` (IPv4 or IPv6).
    pub(super) fn held_by_record(&self, address: &str) -> bool {
        self.vms().any(|r| r.status() != "destroyed" && (r.ip() == address || r.ipv6() == address))
    }

    /// Releases a record's addresses from the allocation lists.
    fn release_addresses_of(&mut self, name: &str) {
        let Some(record) = self.vm(name) else { return };
        let (ip, ipv6) = (record.ip().to_string(), record.ipv6().to_string());
        if !ip.is_empty() {
            self.remove_allocated("allocated_ips", &ip);
        }
        if !ipv6.is_empty() {
            self.remove_allocated("allocated_ipv6", &ipv6);
        }
    }

    /// `register_vm`: rejects a name present in any status, including destroyed.
    pub fn register_vm(&mut self, reg: &Registration, now: Timestamp) -> Result<(), DbError> {
        if let Some(existing) = self.vm(&reg.name) {
            return Err(DbError::AlreadyExists(reg.name.clone(), existing.status().to_string()));
        }
        let expires = now + Duration::days(i64::from(reg.expiry_days));
        let record = json!({
            "vm_name": reg.name,
            "vmid": reg.vmid,
            "ip_address": reg.ip,
            "ipv6_address": reg.ipv6.clone().unwrap_or_default(),
            "expires_at": timestamp::format(&expires),
            "owner": reg.owner,
            "status": "active",
            "created_at": timestamp::format(&now),
            "purpose": reg.purpose,
            "wallet_address": reg.wallet_address,
            "username": reg.username,
            "network_mode": reg.network_mode,
        });
        self.add_allocated("allocated_ips", &reg.ip);
        if let Some(v6) = reg.ipv6.as_deref().filter(|v| !v.is_empty()) {
            self.add_allocated("allocated_ipv6", v6);
        }
        if reg.vmid >= self.next_vmid() && reg.vmid > 0 {
            self.set_next_vmid(reg.vmid + 1);
        }
        self.vms_mut().insert(reg.name.clone(), record);
        Ok(())
    }

    /// A record that may change state: known and not destroyed (a destroyed
    /// record stays destroyed whatever raced with its destroy).
    fn live_record_mut(&mut self, name: &str) -> Result<&mut Map<String, Value>, DbError> {
        let record = self.record_mut(name)?;
        if record.get("status").and_then(Value::as_str) == Some("destroyed") {
            return Err(DbError::Destroyed(name.to_string()));
        }
        Ok(record)
    }

    pub fn mark_suspended(&mut self, name: &str, now: Timestamp) -> Result<(), DbError> {
        let record = self.live_record_mut(name)?;
        record.insert("status".into(), json!("suspended"));
        record.insert("suspended_at".into(), json!(timestamp::format(&now)));
        Ok(())
    }

    /// `mark_active`: drops `suspended_at`, optionally sets a new expiry.
    pub fn mark_active(&mut self, name: &str, new_expiry: Option<Timestamp>) -> Result<(), DbError> {
        let record = self.live_record_mut(name)?;
        record.insert("status".into(), json!("active"));
        record.shift_remove("suspended_at");
        if let Some(expiry) = new_expiry {
            record.insert("expires_at".into(), json!(timestamp::format(&expiry)));
        }
        Ok(())
    }

    /// `mark_destroyed`: keeps the record, releases its addresses.
    pub fn mark_destroyed(&mut self, name: &str, now: Timestamp) -> Result<(), DbError> {
        self.record_mut(name)?;
        self.release_addresses_of(name);
        let record = self.record_mut(name)?;
        record.insert("status".into(), json!("destroyed"));
        record.insert("destroyed_at".into(), json!(timestamp::format(&now)));
        Ok(())
    }

    /// `mark_destroyed` unless the record is already destroyed or gone: what a
    /// destroy commits, however often it is repeated.
    pub fn settle_destroyed(&mut self, name: &str, now: Timestamp) -> Result<(), DbError> {
        match self.vm(name) {
            Some(record) if record.status() != "destroyed" => self.mark_destroyed(name, now),
            _ => Ok(()),
        }
    }

    /// Active VMs whose expiry has passed.
    pub fn vms_to_suspend(&self, now: Timestamp) -> Vec<String> {
        self.vms()
            .filter(|r| r.status() == "active" && r.time("expires_at").is_some_and(|t| now > t))
            .map(|r| r.name.to_string())
            .collect()
    }

    /// Suspended VMs whose `suspended_at` + grace has passed.
    pub fn vms_to_destroy(&self, grace_days: u32, now: Timestamp) -> Vec<String> {
        let grace = Duration::days(i64::from(grace_days));
        self.vms()
            .filter(|r| r.status() == "suspended" && r.time("suspended_at").is_some_and(|t| now > t + grace))
            .map(|r| r.name.to_string())
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn reg(name: &str, ip: &str) -> Registration {
        Registration {
            name: name.into(),
            vmid: 0,
            ip: ip.into(),
            ipv6: None,
            owner: "0xabc".into(),
            expiry_days: 30,
            purpose: String::new(),
            wallet_address: Some("0xabc".into()),
            username: Some("admin".into()),
            network_mode: "broker".into(),
        }
    }

    fn t0() -> Timestamp {
        chrono::Utc.with_ymd_and_hms(2026, 2, 9, 12, 0, 0).unwrap()
    }

    #[test]
    fn register_writes_common_key_order() {
        let mut doc = Document::initial(0);
        doc.register_vm(&reg("vm1", "10.0.0.5"), t0()).unwrap();
        let keys: Vec<_> = doc.vm("vm1").unwrap().fields().keys().cloned().collect();
        assert_eq!(
            keys,
            [
                "vm_name", "vmid", "ip_address", "ipv6_address", "expires_at", "owner", "status", "created_at",
                "purpose", "wallet_address", "username", "network_mode"
            ]
        );
        let r = doc.vm("vm1").unwrap();
        assert_eq!(r.str("expires_at"), Some("2026-03-11T12:00:00+00:00"));
        assert_eq!(r.ipv6(), "");
        assert_eq!(doc.allocated("allocated_ips"), ["10.0.0.5"]);
        let err = doc.register_vm(&reg("vm1", "10.0.0.6"), t0()).unwrap_err();
        assert!(matches!(err, DbError::AlreadyExists(_, s) if s == "active"));
    }

    #[test]
    fn lifecycle_and_candidates() {
        let mut doc = Document::initial(0);
        doc.register_vm(&reg("vm1", "10.0.0.5"), t0()).unwrap();
        let later = t0() + Duration::days(31);
        assert_eq!(doc.vms_to_suspend(later), ["vm1"]);
        doc.mark_suspended("vm1", later).unwrap();
        assert!(doc.vms_to_suspend(later).is_empty());
        assert!(doc.vms_to_destroy(7, later + Duration::days(7)).is_empty());
        assert_eq!(doc.vms_to_destroy(7, later + Duration::days(8)), ["vm1"]);
        doc.mark_active("vm1", None).unwrap();
        assert!(doc.vm("vm1").unwrap().str("suspended_at").is_none());
        doc.mark_destroyed("vm1", later).unwrap();
        assert_eq!(doc.vm("vm1").unwrap().status(), "destroyed");
        assert!(doc.allocated("allocated_ips").is_empty());
        let err = doc.register_vm(&reg("vm1", "10.0.0.5"), t0()).unwrap_err();
        assert!(matches!(err, DbError::AlreadyExists(_, s) if s == "destroyed"));
        assert!(matches!(doc.mark_suspended("nope", t0()), Err(DbError::UnknownVm(_))));
    }

    #[test]
    fn a_destroyed_record_is_never_resurrected() {
        let mut doc = Document::initial(0);
        doc.register_vm(&reg("vm1", "10.0.0.5"), t0()).unwrap();
        doc.mark_destroyed("vm1", t0()).unwrap();
        let before = doc.clone();
        assert!(matches!(doc.mark_suspended("vm1", t0()), Err(DbError::Destroyed(_))));
        assert!(matches!(doc.mark_active("vm1", Some(t0())), Err(DbError::Destroyed(_))));
        assert_eq!(doc, before);
    }

    #[test]
    fn unknown_keys_and_order_survive_a_round_trip() {
        let text = "{\n  \"reserved_nft_tokens\": {\"1\": {\"vm_name\": \"x\"}},\n  \"vms\": {\n    \"b\": {\"zz\": 1, \"vm_name\": \"b\", \"status\": \"active\", \"beacon_name\": \"\\u00e9\"},\n    \"a\": {\"vm_name\": \"a\", \"status\": \"suspended\"}\n  },\n  \"next_vmid\": 7,\n  \"allocated_ips\": [],\n  \"allocated_ipv6\": [],\n  \"custom\": [1.5, null]\n}";
        let doc = Document::parse(text).unwrap();
        let reparsed = Document::parse(&doc.to_json()).unwrap();
        assert_eq!(doc, reparsed);
        let names: Vec<_> = doc.vms().map(|r| r.name).collect();
        assert_eq!(names, ["b", "a"]);
        assert!(doc.to_json().starts_with("{\n  \"reserved_nft_tokens\": {\n    \"1\": {\n"));
        assert!(doc.to_json().contains("\"beacon_name\": \"\\u00e9\""));
    }

    #[test]
    fn corrupt_shapes_are_rejected() {
        for bad in ["", "   ", "{", "[]", "{\"vms\": []}", "{\"vms\": {\"a\": 1}}", "{\"allocated_ips\": [1]}", "{\"next_vmid\": -1}"] {
            assert!(Document::parse(bad).is_err(), "{bad:?}");
        }
    }
}
