//! The host route of a VM's IPv6 address (`<v6>/128` on its bridge), through
//! the root agent, for the backends whose VMs sit on a bridge of this host.
//! Routes do not survive a host reboot, so every start re-adds it, and
//! boot-time reconciliation restores it for a VM that was started without
//! us; terminate removes it. On start and terminate a failure is a warning,
//! as upstream: the VM itself is intact, and the operator can re-run start
//! once the root agent is back. Reconciliation reports it as the VM's failure.

use crate::host::root_agent::RootAgent;
use crate::provider::{ErrorCode, ProviderError};
use serde_json::json;
use std::net::Ipv6Addr;

/// The kernel's IPv6 routing table, readable without privileges.
const IPV6_ROUTES: &str = "/proc/net/ipv6_route";

/// A VM's address and the bridge of this host it is routed through.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostRoute {
    pub ipv6: Ipv6Addr,
    pub bridge: String,
}

/// The root agent actions that add and remove a host route (`ip -6 route
/// replace|del <address> dev <dev>`): the libvirt package ships its own,
/// Proxmox VE uses blockhost-common's.
pub struct RouteActions {
    pub add: &'static str,
    pub del: &'static str,
}

fn request(agent: &RootAgent, action: &str, name: &str, route: &HostRoute) {
    let HostRoute { ipv6, bridge } = route;
    if let Err(e) = agent.call(action, json!({ "address": format!("{ipv6}/128"), "dev": bridge })) {
        use std::io::Write as _;
        let _ = writeln!(std::io::stderr(), "warning: host route of {name} ({ipv6} via {bridge}): {e}");
    }
}

pub fn add(agent: &RootAgent, actions: &RouteActions, name: &str, route: &HostRoute) {
    request(agent, actions.add, name, route);
}

pub fn remove(agent: &RootAgent, actions: &RouteActions, name: &str, route: &HostRoute) {
    request(agent, actions.del, name, route);
}

/// Adds the VM's host route unless the kernel already has it; returns what
/// was added. A failure to add it is the caller's error, not a warning.
pub fn restore(agent: &RootAgent, actions: &RouteActions, name: &str, route: &HostRoute) -> Result<Vec<String>, ProviderError> {
    let HostRoute { ipv6, bridge } = route;
    // An unreadable table (no /proc) is treated as a missing route: adding is idempotent.
    let table = std::fs::read_to_string(IPV6_ROUTES).unwrap_or_default();
    if has_host_route(&table, *ipv6, bridge) {
        return Ok(Vec::new());
    }
    agent
        .call(actions.add, json!({ "address": format!("{ipv6}/128"), "dev": bridge }))
        .map_err(|e| ProviderError::new(ErrorCode::Unavailable, format!("host route of {name} ({ipv6}/128 via {bridge}): {e}")))?;
    Ok(vec![format!("host route {ipv6}/128 via {bridge}")])
}

/// Whether `/proc/net/ipv6_route`'s text has `<ipv6>/128` on `dev`. Each line:
/// destination (32 hex digits), prefix length (hex), source, its length, next
/// hop, metric, reference count, use, flags, device.
fn has_host_route(table: &str, ipv6: Ipv6Addr, dev: &str) -> bool {
    let destination: String = ipv6.octets().iter().map(|b| format!("{b:02x}")).collect();
    table.lines().any(|line| {
        let fields: Vec<&str> = line.split_whitespace().collect();
        fields.len() == 10 && fields[0].eq_ignore_ascii_case(&destination) && fields[1] == "80" && fields[9] == dev
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const TABLE: &str = "\
20010db8000000000000000000000005 80 00000000000000000000000000000000 00 00000000000000000000000000000000 00000400 00000001 00000000 00000001     br0
20010db8000000000000000000000000 40 00000000000000000000000000000000 00 00000000000000000000000000000000 00000100 00000001 00000000 00000001     br0
20010db8000000000000000000000007 80 00000000000000000000000000000000 00 00000000000000000000000000000000 00000400 00000001 00000000 00000001  virbr0
";

    #[test]
    fn a_host_route_is_found_by_address_length_and_device() {
        let v6 = |s: &str| s.parse::<Ipv6Addr>().unwrap();
        assert!(has_host_route(TABLE, v6("2001:db8::5"), "br0"));
        assert!(!has_host_route(TABLE, v6("2001:db8::5"), "virbr0"), "another device");
        assert!(!has_host_route(TABLE, v6("2001:db8::"), "br0"), "a /64 is not the host route");
        assert!(!has_host_route(TABLE, v6("2001:db8::6"), "br0"), "another address");
        assert!(has_host_route(TABLE, v6("2001:db8::7"), "virbr0"));
        assert!(!has_host_route("", v6("2001:db8::5"), "br0"));
    }
}
