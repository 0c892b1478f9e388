//! Making a VM: a clone of the template on the node that holds its seed, then
//! one config change (CPU, memory, the seed as a cdrom, the NIC, tags, the
//! guest agent), a disk resize and the firewall's IP filter. The VMID is the one the VM database
//! reserved, refused as a conflict when the cluster already uses it. A config
//! change or resize whose answer is lost is read back, and taken when the VM
//! shows it. A VM
//! that cannot be finished is destroyed again, so a failed spawn leaves
//! neither a VM nor its VMID behind.

use super::client::{segment, value_text, Client};
use super::firewall;
use super::placement::{self, Template};
use super::routes;
use super::seed::StagedSeed;
use super::vms::{CloneRequest, Cluster, Located};
use crate::host::config::VmidRange;
use crate::provider::{recovery, ErrorCode, ProviderError, VmSpec};

/// The tag every VM this backend makes carries.
pub const TAG: &str = "blockhost";

pub struct Spawn<'a> {
    pub client: &'a Client,
    pub template: Template,
    pub storage: &'a str,
    pub bridge: &'a str,
    /// Where a VMID is picked when the spec brings none.
    pub vmid_range: VmidRange,
}

impl Spawn<'_> {
    pub fn run(&self, spec: &VmSpec, seed: &StagedSeed) -> Result<Located, ProviderError> {
        let cluster = Cluster::new(self.client);
        let vmid = self.vmid(&cluster, spec)?;
        let full_clone_storage = placement::full_clone_storage(self.client, &self.template, &seed.node, self.storage)?;
        let request = CloneRequest {
            template_vmid: self.template.vmid,
            vmid,
            name: &spec.name,
            node: &seed.node,
            full_clone_storage: full_clone_storage.as_deref(),
        };
        let vm = cluster.clone_template(&request)?;
        match self.configure(&vm, spec, seed) {
            Ok(()) => cluster.find(&spec.name)?.ok_or_else(|| ProviderError::new(ErrorCode::Internal, format!("VM {} vanished after it was configured", spec.name))),
            Err(e) => Err(self.undo(&cluster, &spec.name, vmid, e)),
        }
    }

    /// The reserved VMID, when no other VM of the cluster has it; else the
    /// first free one of the range.
    fn vmid(&self, cluster: &Cluster, spec: &VmSpec) -> Result<u32, ProviderError> {
        let Some(vmid) = spec.vmid else { return cluster.free_vmid(self.vmid_range, &|_| false) };
        if let Some(other) = cluster.list()?.into_iter().find(|vm| vm.vmid == vmid) {
            return Err(ProviderError::new(
                ErrorCode::Conflict,
                format!("VMID {vmid} reserved for {} is already used by VM {} on node {}", spec.name, other.info.name, other.node),
            ));
        }
        if cluster.node_of(vmid)?.is_some() {
            return Err(ProviderError::new(ErrorCode::Conflict, format!("VMID {vmid} reserved for {} is already used by a template", spec.name)));
        }
        Ok(vmid)
    }

    fn configure(&self, vm: &Located, spec: &VmSpec, seed: &StagedSeed) -> Result<(), ProviderError> {
        let base = format!("/nodes/{}/qemu/{}", segment(&vm.node), vm.vmid);
        let config = self.client.get(&format!("{base}/config"), &[])?;
        // The template's own cloud-init drive would be a second NoCloud source.
        let drop: Vec<&str> = config
            .as_object()
            .into_iter()
            .flatten()
            .filter(|(key, value)| key.as_str() != "ide2" && value.as_str().is_some_and(|v| v.contains("cloudinit")))
            .map(|(key, _)| key.as_str())
            .collect();
        let (cores, memory) = (spec.vcpus.to_string(), spec.memory_mib.to_string());
        let cdrom = format!("{},media=cdrom", seed.volid);
        let bridge = spec.nic.as_ref().map_or(self.bridge, |n| n.bridge.as_str());
        let net = match &spec.nic {
            Some(nic) => format!("virtio={},bridge={bridge},firewall=1", nic.mac.to_uppercase()),
            None => format!("virtio,bridge={bridge}"),
        };
        let delete = drop.join(",");
        let ipconfig = spec.nic.as_ref().map(routes::ipconfig);
        let mut params = vec![("cores", cores.as_str()), ("memory", memory.as_str()), ("ide2", cdrom.as_str()), ("net0", net.as_str()), ("tags", TAG), ("agent", "enabled=1")];
        // Not read by the guest (its network comes from the seed): where the host route's address is kept, as upstream's VMs keep it.
        params.extend(ipconfig.as_deref().map(|ip| ("ipconfig0", ip)));
        if !delete.is_empty() {
            params.push(("delete", delete.as_str()));
        }
        let changed = self.client.run_task("POST", &format!("{base}/config"), &params);
        recovery::resolve(changed, || {
            let config = self.client.get(&format!("{base}/config"), &[])?;
            let set = params.iter().filter(|(key, _)| *key != "delete").all(|(key, value)| value_text(&config[*key]) == *value);
            Ok((set && drop.iter().all(|key| config[*key].is_null())).then_some(()))
        })?;
        let slot = self.template.disk_slot;
        let current = config[slot].as_str().and_then(disk_gib).unwrap_or(0);
        if spec.disk_gib > current {
            let size = format!("{}G", spec.disk_gib);
            let resized = self.client.run_task("PUT", &format!("{base}/resize"), &[("disk", slot), ("size", size.as_str())]);
            recovery::resolve(resized, || {
                let config = self.client.get(&format!("{base}/config"), &[])?;
                Ok(config[slot].as_str().and_then(disk_gib).is_some_and(|gib| gib >= spec.disk_gib).then_some(()))
            })?;
        }
        if let Some(nic) = &spec.nic {
            firewall::protect(self.client, &base, nic).map_err(|e| ProviderError::new(e.code, format!("VM firewall (IP filter) of {}: {}", spec.name, e.message)))?;
        }
        Ok(())
    }

    /// Destroys the half-made VM and says what failed; when it cannot be
    /// destroyed, the error is not ambiguous (a read-back would take the
    /// half-made VM for a made one) and names what is left.
    fn undo(&self, cluster: &Cluster, name: &str, vmid: u32, failure: ProviderError) -> ProviderError {
        let code = if failure.code == ErrorCode::Ambiguous { ErrorCode::Unavailable } else { failure.code };
        match cluster.destroy(name) {
            Ok(()) => ProviderError::new(code, format!("{}; VM {vmid} was removed again", failure.message)),
            Err(e) => ProviderError::new(ErrorCode::Internal, format!("{}; removing the half-made VM {vmid} failed: {}", failure.message, e.message)),
        }
    }
}

/// Whole GiB of a disk's `size=` (`3G`, `2048M`, `1T`); smaller units round down.
fn disk_gib(disk: &str) -> Option<u64> {
    let size = disk.split(',').find_map(|p| p.strip_prefix("size="))?;
    let (number, unit) = size.split_at(size.len().saturating_sub(1));
    let n: u64 = number.parse().ok()?;
    match unit {
        "T" => Some(n << 10),
        "G" => Some(n),
        "M" => Some(n >> 10),
        "K" => Some(n >> 20),
        _ => size.parse::<u64>().ok().map(|b| b >> 30),
    }
}

#[cfg(test)]
mod tests {
    use super::disk_gib;

    #[test]
    fn disk_sizes_in_whole_gib() {
        assert_eq!(disk_gib("local-lvm:vm-100-disk-0,size=3G"), Some(3));
        assert_eq!(disk_gib("local-lvm:vm-100-disk-0,iothread=1,size=2048M"), Some(2));
        assert_eq!(disk_gib("ceph:vm-100-disk-0,size=1T"), Some(1024));
        assert_eq!(disk_gib("local-lvm:vm-100-disk-0"), None);
    }
}
