//! Where a VM's host-side files live, and the small record of the facts that
//! start and terminate need after the create that knew them has exited.

use crate::host::atomic::write_atomic;
use crate::host::paths::HostPaths;
use crate::provider::host_route::HostRoute;
use crate::provider::{ErrorCode, ProviderError};
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

pub struct VmFiles {
    /// qcow2 overlay on the template image.
    pub overlay: PathBuf,
    /// The [`VmRecord`], written at spawn and removed last by terminate.
    pub record: PathBuf,
    pub console_log: PathBuf,
    /// NoCloud documents and `cidata.iso`.
    pub seed_dir: PathBuf,
    pub seed_iso: PathBuf,
    /// What only the upstream Python provisioner left: its older seed image
    /// (`cloud-init/<name>.img`) and the domain XML it writes before defining
    /// and deletes after (`vms/<name>.xml`, left by a create that died between).
    pub upstream_extras: [PathBuf; 2],
}

impl VmFiles {
    pub fn new(paths: &HostPaths, name: &str) -> Self {
        let vms = vms_dir(paths);
        let seed_dir = paths.state_dir().join("cloud-init").join(name);
        Self {
            overlay: vms.join(format!("{name}.qcow2")),
            record: vms.join(format!("{name}.json")),
            console_log: vms.join(format!("{name}.console.log")),
            seed_iso: seed_dir.join("cidata.iso"),
            upstream_extras: [paths.state_dir().join("cloud-init").join(format!("{name}.img")), vms.join(format!("{name}.xml"))],
            seed_dir,
        }
    }
}

pub fn vms_dir(paths: &HostPaths) -> PathBuf {
    paths.state_dir().join("vms")
}

impl VmFiles {
    /// Everything terminate removes and leftovers reports, the record last.
    pub fn all(&self) -> Vec<&PathBuf> {
        let mut all = vec![&self.overlay, &self.seed_dir, &self.console_log];
        all.extend(&self.upstream_extras);
        all.push(&self.record);
        all
    }
}

/// Of a domain's disk sources, those that are this VM's own files on this
/// host: `vms/<name>.*`, `cloud-init/<name>.*` or under `cloud-init/<name>/`;
/// never a template or another VM's file. An upstream domain names its overlay
/// and seed there, as ours do.
pub fn per_vm_disks(paths: &HostPaths, name: &str, disk_files: &[String]) -> Vec<PathBuf> {
    let vms = vms_dir(paths);
    let seeds = paths.state_dir().join("cloud-init");
    let own_name = |p: &std::path::Path| p.file_name().and_then(|f| f.to_str()).is_some_and(|f| f.strip_prefix(name).is_some_and(|rest| rest.starts_with('.')));
    disk_files
        .iter()
        .map(PathBuf::from)
        .filter(|p| !p.components().any(|c| matches!(c, std::path::Component::ParentDir)))
        .filter(|p| match p.parent() {
            Some(dir) if dir == vms || dir == seeds => own_name(p),
            Some(dir) => dir == seeds.join(name),
            None => false,
        })
        .collect()
}

/// What a VM was created with, beyond its domain definition.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VmRecord {
    pub bridge: Option<String>,
    /// The VM's IPv6 address, routed on the host through `bridge`.
    pub ipv6: Option<std::net::Ipv6Addr>,
    pub mac: Option<String>,
    /// The template version directory the overlay is backed by.
    pub template: PathBuf,
}

impl VmRecord {
    /// The host route of the VM's IPv6 address, when it has one.
    pub fn route(&self) -> Option<HostRoute> {
        Some(HostRoute { ipv6: self.ipv6?, bridge: self.bridge.clone()? })
    }

    pub fn load(path: &std::path::Path) -> Result<Option<Self>, ProviderError> {
        match std::fs::read(path) {
            Ok(bytes) => serde_json::from_slice(&bytes)
                .map(Some)
                .map_err(|e| ProviderError::new(ErrorCode::Internal, format!("{}: {e}", path.display()))),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(ProviderError::new(ErrorCode::Internal, format!("{}: {e}", path.display()))),
        }
    }

    pub fn save(&self, path: &std::path::Path) -> Result<(), ProviderError> {
        let text = serde_json::to_vec_pretty(self).map_err(|e| ProviderError::new(ErrorCode::Internal, e.to_string()))?;
        write_atomic(path, &text, 0o640).map_err(|e| ProviderError::new(ErrorCode::Internal, format!("{}: {e}", path.display())))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layout_and_record_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let paths = HostPaths::with_root(dir.path());
        let files = VmFiles::new(&paths, "vm-1");
        assert!(files.overlay.ends_with("var/lib/blockhost/vms/vm-1.qcow2"));
        assert!(files.seed_iso.ends_with("var/lib/blockhost/cloud-init/vm-1/cidata.iso"));
        assert_eq!(VmRecord::load(&files.record).unwrap(), None);
        std::fs::create_dir_all(vms_dir(&paths)).unwrap();
        let record = VmRecord {
            bridge: Some("br0".into()),
            ipv6: Some("2001:db8::3".parse().unwrap()),
            mac: Some("52:54:00:01:02:03".into()),
            template: "/t/v1".into(),
        };
        record.save(&files.record).unwrap();
        assert_eq!(VmRecord::load(&files.record).unwrap(), Some(record));
        std::fs::write(&files.record, "{").unwrap();
        assert_eq!(VmRecord::load(&files.record).unwrap_err().code, ErrorCode::Internal);
    }

    #[test]
    fn upstream_files_are_known_and_only_own_disks_are_per_vm() {
        let paths = HostPaths::with_root("/r");
        let files = VmFiles::new(&paths, "vm-1");
        let all: Vec<_> = files.all().into_iter().map(|p| p.display().to_string()).collect();
        assert!(all.contains(&"/r/var/lib/blockhost/cloud-init/vm-1.img".to_string()), "{all:?}");
        assert!(all.contains(&"/r/var/lib/blockhost/vms/vm-1.xml".to_string()), "{all:?}");
        assert_eq!(all.last().unwrap(), "/r/var/lib/blockhost/vms/vm-1.json", "the record goes last");
        let disks: Vec<String> = [
            "/r/var/lib/blockhost/vms/vm-1.qcow2",
            "/r/var/lib/blockhost/cloud-init/vm-1/cidata.iso",
            "/r/var/lib/blockhost/cloud-init/vm-1.img",
            "/r/var/lib/blockhost/vms/vm-10.qcow2",
            "/r/var/lib/blockhost/cloud-init/vm-2/cidata.iso",
            "/r/var/lib/blockhost/templates/blockhost-base.qcow2",
            "/r/var/lib/blockhost/vms/../templates/vm-1.qcow2",
        ]
        .map(String::from)
        .into();
        let own: Vec<_> = per_vm_disks(&paths, "vm-1", &disks).into_iter().map(|p| p.display().to_string()).collect();
        assert_eq!(own, disks[..3]);
    }
}
