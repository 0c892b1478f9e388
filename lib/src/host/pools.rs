//! Address and VMID allocation over the VM database document. Callers run these
//! inside `VmDatabase::update`, so allocation and recording are one atomic step
//! and no address is handed out twice, also across processes.

use crate::host::config::{BrokerAllocation, Ipv4Pool, Ipv6Bounds, VmidRange};
use crate::host::vmdb::{DbError, Document};
use std::collections::HashSet;
use std::net::{Ipv4Addr, Ipv6Addr};

/// Addresses in use: the allocation lists plus those of live records (a record
/// written by an older tool may be missing from the lists).
fn taken(doc: &Document, list: &str, record_key: &str) -> HashSet<String> {
    let mut taken: HashSet<String> = doc.allocated(list).into_iter().map(str::to_string).collect();
    for record in doc.vms().filter(|r| r.status() != "destroyed") {
        if let Some(addr) = record.str(record_key).filter(|a| !a.is_empty()) {
            taken.insert(addr.to_string());
        }
    }
    taken
}

/// The first free IPv4 address of the pool, never the network, broadcast or
/// gateway address, honouring the pool's real prefix length.
pub fn next_ipv4(doc: &Document, pool: &Ipv4Pool) -> Result<Ipv4Addr, DbError> {
    let taken = taken(doc, "allocated_ips", "ip_address");
    let mask = u32::MAX << (32 - pool.prefix_len);
    let network = u32::from(pool.network);
    let broadcast = network | !mask;
    (u32::from(pool.first)..=u32::from(pool.last))
        .filter(|n| *n != network && *n != broadcast)
        .map(Ipv4Addr::from)
        .filter(|ip| Some(*ip) != pool.gateway)
        .find(|ip| !taken.contains(&ip.to_string()))
        .ok_or_else(|| DbError::PoolExhausted { pool: "IPv4", range: format!("{}-{}", pool.first, pool.last), key: "ip_pool" })
}

/// The first free IPv6 address at `network + i` for i in the pool bounds. The
/// network address, `::1` (the bridge gateway) and `::2` (the host) are never used.
pub fn next_ipv6(doc: &Document, broker: &BrokerAllocation, bounds: &Ipv6Bounds) -> Result<Ipv6Addr, DbError> {
    let taken = taken(doc, "allocated_ipv6", "ipv6_address");
    let size = 1u128.checked_shl(u32::from(128 - broker.prefix_len)).unwrap_or(u128::MAX);
    let base = u128::from(broker.network);
    let (first, last) = (bounds.start.max(3), bounds.end.min(size - 1));
    (first..=last).map(|i| Ipv6Addr::from(base + i)).find(|ip| !taken.contains(&ip.to_string())).ok_or_else(|| {
        let range = format!("{}-{} of {}/{}", Ipv6Addr::from(base + first), Ipv6Addr::from(base + last), broker.network, broker.prefix_len);
        DbError::PoolExhausted { pool: "IPv6", range, key: "ipv6_pool" }
    })
}

/// The next VMID of the range; advances `next_vmid`.
pub fn allocate_vmid(doc: &mut Document, range: &VmidRange) -> Result<u64, DbError> {
    let used: HashSet<u64> = doc.vms().filter_map(|r| r.fields().get("vmid").and_then(|v| v.as_u64())).collect();
    let used_pending: HashSet<u64> = doc.pending_all().into_iter().map(|p| p.vmid).collect();
    let vmid = (doc.next_vmid().max(range.start)..=range.end)
        .find(|v| !used.contains(v) && !used_pending.contains(v))
        .ok_or_else(|| DbError::PoolExhausted { pool: "VMID", range: format!("{}-{}", range.start, range.end), key: "vmid_range" })?;
    doc.set_next_vmid(vmid + 1);
    Ok(vmid)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::host::process::ProcessId;
    use crate::host::vmdb::PendingCreate;

    fn pool(net: [u8; 4], len: u8, first: [u8; 4], last: [u8; 4], gw: Option<[u8; 4]>) -> Ipv4Pool {
        Ipv4Pool { network: net.into(), prefix_len: len, first: first.into(), last: last.into(), gateway: gw.map(Into::into) }
    }

    fn reserve(doc: &mut Document, name: &str, ip: Ipv4Addr, ipv6: Option<Ipv6Addr>) {
        doc.add_pending(&PendingCreate {
            name: name.into(),
            owner: ProcessId { pid: 1, start_ticks: 0 },
            ip: ip.to_string(),
            ipv6: ipv6.map(|v| v.to_string()),
            vmid: 0,
            started_at: String::new(),
        })
        .unwrap();
    }

    #[test]
    fn ipv4_skips_gateway_and_taken_and_exhausts() {
        let p = pool([10, 0, 0, 0], 29, [10, 0, 0, 1], [10, 0, 0, 3], Some([10, 0, 0, 2]));
        let mut doc = Document::initial(0);
        let a = next_ipv4(&doc, &p).unwrap();
        assert_eq!(a, Ipv4Addr::new(10, 0, 0, 1));
        reserve(&mut doc, "a", a, None);
        assert_eq!(next_ipv4(&doc, &p).unwrap(), Ipv4Addr::new(10, 0, 0, 3));
        reserve(&mut doc, "b", Ipv4Addr::new(10, 0, 0, 3), None);
        assert_eq!(
            next_ipv4(&doc, &p).unwrap_err().to_string(),
            "the IPv4 pool 10.0.0.1-10.0.0.3 is exhausted (every one is taken); widen it with `ip_pool.start`/`ip_pool.end` in db.yaml"
        );
    }

    #[test]
    fn ipv4_never_hands_out_the_network_or_broadcast_address() {
        // The range covers the whole /29, network (.0) and broadcast (.7) included.
        let p = pool([10, 0, 0, 0], 29, [10, 0, 0, 0], [10, 0, 0, 7], Some([10, 0, 0, 1]));
        let mut doc = Document::initial(0);
        let mut got = Vec::new();
        while let Ok(ip) = next_ipv4(&doc, &p) {
            reserve(&mut doc, &format!("vm{}", got.len()), ip, None);
            got.push(ip.to_string());
            assert!(got.len() <= 8, "handed out more addresses than the /29 has: {got:?}");
        }
        assert_eq!(got, ["10.0.0.2", "10.0.0.3", "10.0.0.4", "10.0.0.5", "10.0.0.6"]);
    }

    #[test]
    fn ipv4_counts_live_records_missing_from_the_list_and_frees_destroyed_ones() {
        let p = pool([10, 0, 0, 0], 24, [10, 0, 0, 10], [10, 0, 0, 12], None);
        let doc = Document::parse(
            r#"{"vms": {
                "old": {"vm_name": "old", "ip_address": "10.0.0.10", "status": "active"},
                "gone": {"vm_name": "gone", "ip_address": "10.0.0.11", "status": "destroyed"}
            }, "allocated_ips": [], "allocated_ipv6": []}"#,
        )
        .unwrap();
        assert_eq!(next_ipv4(&doc, &p).unwrap(), Ipv4Addr::new(10, 0, 0, 11));
    }

    #[test]
    fn ipv4_honours_wider_prefixes() {
        let p = pool([172, 16, 0, 0], 16, [172, 16, 0, 255], [172, 16, 1, 1], None);
        let mut doc = Document::initial(0);
        let mut got = Vec::new();
        for i in 0..3 {
            let ip = next_ipv4(&doc, &p).unwrap();
            reserve(&mut doc, &format!("vm{i}"), ip, None);
            got.push(ip.to_string());
        }
        assert_eq!(got, ["172.16.0.255", "172.16.1.0", "172.16.1.1"]);
    }

    #[test]
    fn ipv6_from_the_broker_prefix() {
        let broker = BrokerAllocation { network: "2001:db8::".parse().unwrap(), prefix_len: 120, dns_zone: None };
        let mut doc = Document::initial(0);
        let bounds = Ipv6Bounds { start: 2, end: 254 };
        let first = next_ipv6(&doc, &broker, &bounds).unwrap();
        assert_eq!(first.to_string(), "2001:db8::3");
        reserve(&mut doc, "a", Ipv4Addr::new(10, 0, 0, 1), Some(first));
        assert_eq!(next_ipv6(&doc, &broker, &bounds).unwrap().to_string(), "2001:db8::4");
        let tiny = Ipv6Bounds { start: 3, end: 3 };
        assert!(next_ipv6(&doc, &broker, &tiny).is_err());
        let beyond = Ipv6Bounds { start: 300, end: 400 };
        assert!(next_ipv6(&doc, &broker, &beyond).is_err(), "bounds past a /120 are clipped");
    }

    #[test]
    fn ipv6_never_leaves_the_prefix() {
        // A /126 holds indexes 0..=3; 0, 1 and 2 are never used, so only ::3 is left.
        let broker = BrokerAllocation { network: "2001:db8::".parse().unwrap(), prefix_len: 126, dns_zone: None };
        let mut doc = Document::initial(0);
        let bounds = Ipv6Bounds { start: 2, end: 254 };
        let only = next_ipv6(&doc, &broker, &bounds).unwrap();
        assert_eq!(only.to_string(), "2001:db8::3");
        reserve(&mut doc, "a", Ipv4Addr::new(10, 0, 0, 1), Some(only));
        assert_eq!(
            next_ipv6(&doc, &broker, &bounds).unwrap_err().to_string(),
            "the IPv6 pool 2001:db8::3-2001:db8::3 of 2001:db8::/126 is exhausted (every one is taken); widen it with `ipv6_pool.start`/`ipv6_pool.end` in db.yaml"
        );
    }

    #[test]
    fn vmids_skip_those_of_records_and_of_creates_under_way() {
        let mut doc = Document::parse(r#"{"vms": {"old": {"vm_name": "old", "vmid": 100, "status": "active"}}, "next_vmid": 100}"#).unwrap();
        let range = VmidRange { start: 100, end: 200 };
        assert_eq!(allocate_vmid(&mut doc, &range).unwrap(), 101, "100 belongs to a record");
        doc.set_next_vmid(100);
        doc.add_pending(&PendingCreate {
            name: "new".into(),
            owner: ProcessId { pid: 1, start_ticks: 0 },
            ip: "10.0.0.9".into(),
            ipv6: None,
            vmid: 101,
            started_at: String::new(),
        })
        .unwrap();
        assert_eq!(allocate_vmid(&mut doc, &range).unwrap(), 102, "101 is being created");
    }

    #[test]
    fn vmids_advance_and_exhaust() {
        let mut doc = Document::initial(0);
        let range = VmidRange { start: 100, end: 101 };
        assert_eq!(allocate_vmid(&mut doc, &range).unwrap(), 100);
        assert_eq!(allocate_vmid(&mut doc, &range).unwrap(), 101);
        assert_eq!(
            allocate_vmid(&mut doc, &range).unwrap_err().to_string(),
            "the VMID pool 100-101 is exhausted (every one is taken); widen it with `vmid_range.start`/`vmid_range.end` in db.yaml"
        );
    }
}
