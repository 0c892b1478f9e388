//! The host route of a VM's IPv6 address, through the root agent. Routes do
//! not survive a host reboot, so every start re-adds it; terminate removes it.
//! A failure is a warning, as upstream: the VM itself is intact, and the
//! operator can re-run start once the root agent is back.

use super::vm_files::VmRecord;
use crate::host::root_agent::RootAgent;
use serde_json::json;

const ADD: &str = "libvirt-ip6-route-add";
const DEL: &str = "libvirt-ip6-route-del";

fn request(agent: &RootAgent, action: &str, name: &str, record: &VmRecord) {
    let (Some(ipv6), Some(bridge)) = (record.ipv6, record.bridge.as_deref()) else { return };
    if let Err(e) = agent.call(action, json!({ "address": format!("{ipv6}/128"), "dev": bridge })) {
        use std::io::Write as _;
        let _ = writeln!(std::io::stderr(), "warning: host route of {name} ({ipv6} via {bridge}): {e}");
    }
}

pub fn add(agent: &RootAgent, name: &str, record: &VmRecord) {
    request(agent, ADD, name, record);
}

pub fn remove(agent: &RootAgent, name: &str, record: &VmRecord) {
    request(agent, DEL, name, record);
}
