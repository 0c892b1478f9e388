//! The IPv6 host route of a VM on Proxmox VE, as upstream keeps it: `<v6>/128`
//! on the VM's bridge through blockhost-common's root agent actions, when this
//! host has that bridge (it is then a node of the cluster, on the VMs'
//! segment); a BlockHost host without it leaves routing to the cluster's
//! network. The address is the VM config's `ipconfig0` `ip6=` (spawn writes
//! it; upstream's VMs carry it from their cloud-init settings), the bridge is
//! `net0`'s.

use crate::host::paths::HostPaths;
use crate::provider::host_route::{HostRoute, RouteActions};
use crate::provider::NicSpec;
use serde_json::Value;

pub const ACTIONS: RouteActions = RouteActions { add: "ip6-route-add", del: "ip6-route-del" };

/// `ipconfig0` for a NIC: `ip=A/len[,gw=G][,ip6=V/128[,gw6=G6]]`.
pub fn ipconfig(nic: &NicSpec) -> String {
    let mut parts = vec![format!("ip={}/{}", nic.ipv4, nic.ipv4_prefix_len)];
    parts.extend(nic.gateway.map(|gw| format!("gw={gw}")));
    if let Some(ipv6) = nic.ipv6 {
        parts.push(format!("ip6={ipv6}/128"));
        parts.extend(nic.ipv6_gateway.map(|gw| format!("gw6={gw}")));
    }
    parts.join(",")
}

/// The VM's host route from its config: when it has an IPv6 address and
/// this host has its bridge.
pub fn of_config(paths: &HostPaths, config: &Value) -> Option<HostRoute> {
    let option = |key: &str, name: &str| -> Option<String> {
        config[key].as_str()?.split(',').find_map(|p| p.strip_prefix(name)?.strip_prefix('=').map(str::to_string))
    };
    let ipv6 = option("ipconfig0", "ip6")?.split('/').next()?.parse().ok()?;
    let bridge = option("net0", "bridge")?;
    paths.host("/sys/class/net").join(&bridge).exists().then_some(HostRoute { ipv6, bridge })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn nic(ipv6: bool) -> NicSpec {
        NicSpec {
            bridge: "vmbr0".into(),
            ipv4: "10.0.0.5".parse().unwrap(),
            ipv4_prefix_len: 24,
            gateway: Some("10.0.0.1".parse().unwrap()),
            ipv6: ipv6.then(|| "2001:db8::5".parse().unwrap()),
            ipv6_gateway: ipv6.then(|| "2001:db8::1".parse().unwrap()),
            mac: "52:54:00:00:00:05".into(),
        }
    }

    #[test]
    fn ipconfig_carries_both_families() {
        assert_eq!(ipconfig(&nic(true)), "ip=10.0.0.5/24,gw=10.0.0.1,ip6=2001:db8::5/128,gw6=2001:db8::1");
        assert_eq!(ipconfig(&nic(false)), "ip=10.0.0.5/24,gw=10.0.0.1");
    }

    #[test]
    fn the_route_needs_an_address_and_the_bridge_on_this_host() {
        let root = tempfile::tempdir().unwrap();
        let paths = HostPaths::with_root(root.path());
        let upstream = json!({"ipconfig0": "ip=10.0.0.5/24,gw=10.0.0.1,ip6=2001:db8::7/120,gw6=2001:db8::1", "net0": "virtio=BC:24:11:00:00:01,bridge=vmbr0,firewall=0"});
        assert_eq!(of_config(&paths, &upstream), None, "no vmbr0 here");
        std::fs::create_dir_all(root.path().join("sys/class/net/vmbr0")).unwrap();
        assert_eq!(of_config(&paths, &upstream), Some(HostRoute { ipv6: "2001:db8::7".parse().unwrap(), bridge: "vmbr0".into() }));
        assert_eq!(of_config(&paths, &json!({"ipconfig0": "ip=10.0.0.5/24", "net0": "virtio,bridge=vmbr0"})), None, "no IPv6");
        assert_eq!(of_config(&paths, &json!({"ipconfig0": "ip6=auto", "net0": "virtio,bridge=vmbr0"})), None, "SLAAC: no address of ours");
        assert_eq!(of_config(&paths, &json!({"ipconfig0": "ip6=2001:db8::7/128", "net0": "virtio,bridge=vmbr1"})), None, "a bridge this host lacks");
    }
}
