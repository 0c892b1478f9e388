//! Where a new VM goes and how its disk is made. A clone can only leave the
//! template's node when the template's disk is on shared storage; then the
//! online node with the VM's bridge up and the most free memory is chosen. A linked clone (a thin
//! child of the template's disk) is made when the template's disk is on the
//! configured storage and that storage can make one (LVM-thin, ZFS, Ceph
//! RBD) from the target node; otherwise a full copy onto the configured
//! storage.

use super::client::{segment, Client};
use super::vms::Cluster;
use crate::provider::{ErrorCode, ProviderError};
use serde_json::Value;

/// Storage types whose snapshots make linked clones.
const LINKED_CLONE_TYPES: [&str; 3] = ["lvmthin", "zfspool", "rbd"];

/// The slots a boot disk can be in, in the order they are looked at.
const DISK_SLOTS: [&str; 4] = ["scsi0", "virtio0", "sata0", "ide0"];

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template {
    pub vmid: u32,
    pub node: String,
    /// The storage of the template's boot disk.
    pub storage: String,
    pub disk_slot: &'static str,
}

/// The template VM: where it is and where its disk is.
pub fn template(client: &Client, vmid: u32) -> Result<Template, ProviderError> {
    let node = Cluster::new(client)
        .node_of(vmid)?
        .ok_or_else(|| ProviderError::new(ErrorCode::NotFound, format!("template VM {vmid} not found in the cluster (proxmox.template_vmid)")))?;
    let config = client.get(&format!("/nodes/{}/qemu/{vmid}/config", segment(&node)), &[])?;
    let (disk_slot, volume) = boot_disk(&config).ok_or_else(|| ProviderError::new(ErrorCode::InvalidSpec, format!("template VM {vmid} has no disk in {}", DISK_SLOTS.join(", "))))?;
    let storage = volume.split(':').next().unwrap_or_default().to_string();
    Ok(Template { vmid, node, storage, disk_slot })
}

/// The first disk slot holding a disk (not a cdrom), with its volume.
pub fn boot_disk(config: &Value) -> Option<(&'static str, String)> {
    DISK_SLOTS.iter().find_map(|slot| {
        let value = config[*slot].as_str()?;
        (!value.contains("media=cdrom")).then(|| (*slot, value.split(',').next().unwrap_or_default().to_string()))
    })
}

/// The node a new VM (and its seed) goes to: one whose `bridge` is up.
pub fn node_for_new_vm(client: &Client, template: &Template, bridge: &str) -> Result<String, ProviderError> {
    let storages = storages(client)?;
    match storage_entry(&storages, &template.node, &template.storage) {
        Some(entry) if entry["shared"].as_u64() == Some(1) => Cluster::new(client).place(&|node| has_bridge(client, node, bridge)).and_then(|node| {
            node.ok_or_else(|| ProviderError::new(ErrorCode::InvalidSpec, format!("no online Proxmox VE node has bridge {bridge} up; create it on one, or set `bridge` in db.yaml")))
        }),
        _ if has_bridge(client, &template.node, bridge)? => Ok(template.node.clone()),
        _ => Err(ProviderError::new(
            ErrorCode::InvalidSpec,
            format!(
                "bridge {bridge} is not up on node {}, where VMs of template {} go (its disk is not on shared storage); create it there, or set `bridge` in db.yaml",
                template.node, template.vmid
            ),
        )),
    }
}

/// Whether `node` has `bridge` (a Linux or OVS bridge) up.
fn has_bridge(client: &Client, node: &str, bridge: &str) -> Result<bool, ProviderError> {
    let listed = client.get(&format!("/nodes/{}/network", segment(node)), &[("type", "any_bridge")])?;
    let up = |i: &Value| i["active"].as_u64() == Some(1) || i["active"].as_bool() == Some(true);
    Ok(listed.as_array().into_iter().flatten().any(|i| i["iface"] == bridge && up(i)))
}

/// `None` for a linked clone, else the storage of the full copy.
pub fn full_clone_storage(client: &Client, template: &Template, node: &str, storage: &str) -> Result<Option<String>, ProviderError> {
    let storages = storages(client)?;
    let linked = template.storage == storage
        && storage_entry(&storages, node, storage).is_some_and(|e| {
            let reachable = node == template.node || e["shared"].as_u64() == Some(1);
            reachable && LINKED_CLONE_TYPES.iter().any(|t| e["plugintype"] == *t)
        });
    Ok((!linked).then(|| storage.to_string()))
}

/// Every storage of every node, in one listing.
pub fn storages(client: &Client) -> Result<Vec<Value>, ProviderError> {
    let answer = client.get("/cluster/resources", &[("type", "storage")])?;
    Ok(answer.as_array().cloned().unwrap_or_default())
}

fn storage_entry<'s>(storages: &'s [Value], node: &str, storage: &str) -> Option<&'s Value> {
    storages.iter().find(|e| e["node"] == node && e["storage"] == storage)
}
