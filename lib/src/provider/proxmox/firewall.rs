//! Port security where Proxmox VE offers it: the VM firewall's IP filter, so
//! that a VM sends only from its own addresses (it cannot take over another
//! VM's IP, nor spoof ARP or NDP for it), with both traffic policies ACCEPT so
//! that the VM is reachable as it is without a firewall. PVE enforces it only
//! where the cluster's firewall is on (datacenter and node options); a Linux
//! bridge port cannot be isolated through the API, which upstream's
//! `bridge-port-isolate` did on the local node.

use super::client::{value_text, Client};
use crate::provider::{recovery, NicSpec, ProviderError};
use serde_json::Value;

/// The IP set PVE's `ipfilter` option reads for `net0`.
pub const IPSET: &str = "ipfilter-net0";
const OPTIONS: [(&str, &str); 4] = [("enable", "1"), ("ipfilter", "1"), ("policy_in", "ACCEPT"), ("policy_out", "ACCEPT")];

/// Lets `net0` of the VM at `base` (`/nodes/<node>/qemu/<vmid>`) send only
/// from the NIC's addresses. Idempotent: what is in place is kept, and a
/// change whose answer is lost is read back.
pub fn protect(client: &Client, base: &str, nic: &NicSpec) -> Result<(), ProviderError> {
    let sets = format!("{base}/firewall/ipset");
    if !names(&client.get(&sets, &[])?, "name").iter().any(|n| n == IPSET) {
        let created = client.post(&sets, &[("name", IPSET)]).map(drop);
        recovery::resolve(created, || Ok(names(&client.get(&sets, &[])?, "name").iter().any(|n| n == IPSET).then_some(())))?;
    }
    let set = format!("{sets}/{IPSET}");
    let mut addresses = vec![nic.ipv4.to_string()];
    addresses.extend(nic.ipv6.map(|v6| v6.to_string()));
    for address in addresses {
        let listed = |client: &Client| -> Result<bool, ProviderError> { Ok(names(&client.get(&set, &[])?, "cidr").contains(&address)) };
        if listed(client)? {
            continue;
        }
        let added = client.post(&set, &[("cidr", address.as_str())]).map(drop);
        recovery::resolve(added, || Ok(listed(client)?.then_some(())))?;
    }
    let options = format!("{base}/firewall/options");
    let changed = client.put(&options, &OPTIONS).map(drop);
    recovery::resolve(changed, || {
        let now = client.get(&options, &[])?;
        Ok(OPTIONS.iter().all(|(key, value)| value_text(&now[*key]) == *value).then_some(()))
    })
}

fn names(listed: &Value, key: &str) -> Vec<String> {
    listed.as_array().into_iter().flatten().filter_map(|e| e[key].as_str().map(str::to_string)).collect()
}
