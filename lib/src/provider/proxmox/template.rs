//! `blockhost-build-template` on Proxmox VE. The image is built (or kept) on
//! this host by the same builder and store as libvirt's, then published to
//! the cluster as the VM `proxmox.template_vmid` in upstream's shape
//! (build-template.sh): uploaded to a storage of `proxmox.node` that takes
//! `import` content (`proxmox.iso_storage` is enabled for it when none does),
//! imported as `scsi0` of a new VM on `proxmox.storage`,
//! converted to a template, and the uploaded file removed.
//!
//! The VMID is replaced only when it holds a VM this builder made (another
//! version, or one left half-made by an interrupted build) or, with
//! `--force`, any template (upstream's). A VM that is not a template and not
//! ours is never touched. A publish that fails removes what it made.

use super::client::{segment, Client, Upload};
use super::config::ProxmoxConfig;
use super::placement;
use crate::provider::module::OpenContext;
use crate::provider::recovery;
use crate::provider::template_store::{self, build_options};
use crate::provider::{ErrorCode, ProviderError, TemplateBuild, TemplateOptions};
use serde_json::Value;
use template_builder::{Accelerator, BootMode, Firmware, Template};

/// The template VM's name.
pub const TEMPLATE_NAME: &str = "blockhost-template";
/// How the template VM's description names the version it holds.
const MARKER: &str = "blockhost-template version=";
/// The storage types that keep files, and so can take images to import.
const FILE_STORAGES: [&str; 5] = ["dir", "nfs", "cifs", "cephfs", "btrfs"];

pub fn build_template(ctx: &OpenContext, options: &TemplateOptions, progress: &mut dyn FnMut(&str)) -> Result<TemplateBuild, ProviderError> {
    let config = ProxmoxConfig::load(ctx.paths, ctx.config).map_err(|e| ProviderError::new(ErrorCode::InvalidSpec, e.to_string()))?;
    let client = config.client()?;
    let publisher = Publisher { client: &client, config: &config };
    // Before a build of minutes: the cluster must be able to take its result.
    publisher.target(progress)?;
    let store = template_store::store(ctx.paths, Accelerator::detect(ctx.paths.root()));
    let outcome = store.build(&build_options(options), progress)?;
    let template = store.current()?.ok_or_else(|| ProviderError::new(ErrorCode::Internal, "the template store has no current version after a build"))?;
    let published = publisher.publish(&template, options.force, progress)?;
    Ok(TemplateBuild { path: outcome.path, built: outcome.built || published })
}

/// Where the template VM is made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub node: String,
    /// Takes `import` content: the uploaded image goes there.
    pub import_storage: String,
}

/// What holds the template's VMID now.
#[derive(Debug, Clone)]
struct Occupant {
    node: String,
    name: String,
    is_template: bool,
    /// The version in the description of a VM this builder made.
    version: Option<String>,
}

pub struct Publisher<'a> {
    pub client: &'a Client,
    pub config: &'a ProxmoxConfig,
}

impl Publisher<'_> {
    /// The configured node, online, with `proxmox.storage` taking VM disks
    /// and a storage that takes images to import (`proxmox.iso_storage`
    /// first). A fresh install's `local` takes ISOs but not imports: the ISO
    /// storage, when it is a file storage, is enabled for them, as
    /// `pvesm set --content` would.
    pub fn target(&self, progress: &mut dyn FnMut(&str)) -> Result<Target, ProviderError> {
        let node = self.config.node.as_str();
        let nodes = self.client.get("/nodes", &[])?;
        let online = nodes.as_array().into_iter().flatten().any(|n| n["node"] == node && n["status"] == "online");
        if !online {
            return Err(ProviderError::new(ErrorCode::Unavailable, format!("Proxmox VE node {node} (proxmox.node), where the template is made, is not online")));
        }
        let storages = self.storages(node)?;
        let disks = self.config.storage.as_str();
        if !storages.iter().any(|s| s["storage"] == disks && takes(s, "images")) {
            return Err(ProviderError::new(
                ErrorCode::InvalidSpec,
                format!("storage {disks} (proxmox.storage) is not available for VM disks (content images) on node {node}"),
            ));
        }
        let iso = self.config.iso_storage.as_str();
        let preferred = storages.iter().find(|s| s["storage"] == iso);
        let import = preferred.filter(|s| takes(s, "import")).or_else(|| storages.iter().find(|s| takes(s, "import")));
        if let Some(storage) = import.and_then(|s| s["storage"].as_str()) {
            return Ok(Target { node: node.to_string(), import_storage: storage.to_string() });
        }
        let now = preferred.map(content).unwrap_or_default();
        let with_import = if now.is_empty() { "import".to_string() } else { format!("{now},import") };
        let hint = format!("enable it on a file storage, e.g. `pvesm set {iso} --content {with_import}`");
        let file_storage = preferred.is_some_and(|s| FILE_STORAGES.iter().any(|t| s["plugintype"] == *t));
        if !file_storage {
            return Err(ProviderError::new(
                ErrorCode::InvalidSpec,
                format!("no storage of node {node} takes disk images to import (content import), which the template upload needs, and {iso} (proxmox.iso_storage) is no file storage that could; {hint}"),
            ));
        }
        let path = format!("/storage/{}", segment(iso));
        let enabled = self.client.put(&path, &[("content", with_import.as_str())]).map(drop);
        recovery::resolve(enabled, || Ok(self.storages(node)?.iter().any(|s| s["storage"] == iso && takes(s, "import")).then_some(())))
            .map_err(|e| ProviderError::new(e.code, format!("enabling disk images to import (content import) on storage {iso} for the template upload: {}; {hint}", e.message)))?;
        progress(&format!("Storage {iso} now also takes disk images to import (content {with_import}), for the template upload"));
        Ok(Target { node: node.to_string(), import_storage: iso.to_string() })
    }

    /// The storages of `node` that are available.
    fn storages(&self, node: &str) -> Result<Vec<Value>, ProviderError> {
        Ok(placement::storages(self.client)?.into_iter().filter(|s| s["node"] == node && s["status"] == "available").collect())
    }

    /// Makes `template` the cluster's template VM unless it already is;
    /// returns whether a VM was made.
    pub fn publish(&self, template: &Template, force: bool, progress: &mut dyn FnMut(&str)) -> Result<bool, ProviderError> {
        let version = &template.manifest.version;
        let shape = VmShape::of(template)?;
        let target = self.target(progress)?;
        let vmid = self.config.template_vmid;
        match self.occupant(vmid)? {
            None => {}
            Some(vm) if vm.is_template && vm.version.as_ref() == Some(version) && !force => {
                progress(&format!("Template VM {vmid} on {} holds version {version}: kept", vm.node));
                return Ok(false);
            }
            Some(vm) if vm.version.is_none() && !vm.is_template => {
                return Err(ProviderError::new(
                    ErrorCode::Conflict,
                    format!("VMID {vmid} (proxmox.template_vmid) holds VM {} on node {}, which is not a template; set proxmox.template_vmid to a free VMID", vm.name, vm.node),
                ));
            }
            Some(vm) if vm.version.is_none() && !force => {
                progress(&format!("Template VM {vmid} ({}) on {} was not made by this builder: kept; --force replaces it with version {version}", vm.name, vm.node));
                return Ok(false);
            }
            Some(vm) => self.replace(vmid, &vm, progress)?,
        }
        self.make(template, &shape, &target, progress)?;
        progress(&format!("Template VM {vmid} on {} holds version {version}", target.node));
        Ok(true)
    }

    fn occupant(&self, vmid: u32) -> Result<Option<Occupant>, ProviderError> {
        let listed = self.client.get("/cluster/resources", &[("type", "vm")])?;
        let Some(entry) = listed.as_array().into_iter().flatten().find(|r| r["vmid"].as_u64() == Some(u64::from(vmid))) else { return Ok(None) };
        let node = entry["node"].as_str().unwrap_or_default().to_string();
        let config = self.client.get(&format!("/nodes/{}/qemu/{vmid}/config", segment(&node)), &[])?;
        let version = config["description"].as_str().and_then(marked_version);
        Ok(Some(Occupant {
            node,
            name: entry["name"].as_str().unwrap_or_default().to_string(),
            is_template: entry["template"].as_u64() == Some(1) || config["template"].as_u64() == Some(1),
            version,
        }))
    }

    fn replace(&self, vmid: u32, vm: &Occupant, progress: &mut dyn FnMut(&str)) -> Result<(), ProviderError> {
        let what = match (&vm.version, vm.is_template) {
            (Some(v), true) => format!("template VM {vmid} (version {v})"),
            (Some(_), false) => format!("the half-made template VM {vmid} of an interrupted build"),
            (None, _) => format!("template VM {vmid} ({})", vm.name),
        };
        progress(&format!("Removing {what}"));
        self.delete_vm(&vm.node, vmid).map_err(|e| {
            let hint = if vm.is_template { "; VMs that are linked clones of it keep it in use: set proxmox.template_vmid to a free VMID to make the new template beside it" } else { "" };
            ProviderError::new(e.code, format!("removing {what} failed: {}{hint}", e.message))
        })
    }

    fn make(&self, template: &Template, shape: &VmShape, target: &Target, progress: &mut dyn FnMut(&str)) -> Result<(), ProviderError> {
        let vmid = self.config.template_vmid;
        let file = format!("{TEMPLATE_NAME}-{}.qcow2", template.manifest.version);
        let volid = format!("{}:import/{file}", target.import_storage);
        self.remove_volume(target, &volid)?;
        progress(&format!("Uploading the template image to {} on node {}", target.import_storage, target.node));
        let made = self
            .upload(template, target, &file, &volid)
            .and_then(|()| {
                progress(&format!("Importing it as template VM {vmid}"));
                self.create_vm(template, shape, target, &volid)
            })
            .and_then(|()| self.convert(target, vmid));
        let removed = self.remove_volume(target, &volid);
        match made {
            Ok(()) => {
                if let Err(e) = removed {
                    progress(&format!("The uploaded image {volid} stays: {}", e.message));
                }
                Ok(())
            }
            Err(failure) => Err(self.undo(vmid, &volid, removed.err(), failure)),
        }
    }

    fn upload(&self, template: &Template, target: &Target, file: &str, volid: &str) -> Result<(), ProviderError> {
        let image = template.image_path();
        let unreadable = |e: std::io::Error| ProviderError::new(ErrorCode::Internal, format!("{}: {e}; rebuild it: blockhost-build-template --force", image.display()));
        let mut reader = std::fs::File::open(&image).map_err(unreadable)?;
        let len = reader.metadata().map_err(unreadable)?.len();
        let upload = Upload { name: file, content: "import", reader: &mut reader, len, sha256: Some(&template.manifest.image_sha256) };
        let sent = self.client.upload(&target.node, &target.import_storage, upload);
        recovery::resolve(sent, || Ok(self.volume_size(target, volid)?.filter(|size| *size == len).map(drop)))
    }

    fn create_vm(&self, template: &Template, shape: &VmShape, target: &Target, volid: &str) -> Result<(), ProviderError> {
        let vmid = self.config.template_vmid;
        let params = shape.create_params(vmid, &template.manifest.version, &self.config.storage, volid, &self.config.bridge);
        let pairs: Vec<(&str, &str)> = params.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let created = self.client.run_task("POST", &format!("/nodes/{}/qemu", segment(&target.node)), &pairs);
        recovery::resolve(created, || {
            let config = self.client.get(&format!("/nodes/{}/qemu/{vmid}/config", segment(&target.node)), &[])?;
            let imported = config["scsi0"].as_str().is_some_and(|d| !d.contains("import-from="));
            let ours = config["description"].as_str().and_then(marked_version).as_ref() == Some(&template.manifest.version);
            Ok((ours && imported && config["lock"].is_null()).then_some(()))
        })
    }

    fn convert(&self, target: &Target, vmid: u32) -> Result<(), ProviderError> {
        let base = format!("/nodes/{}/qemu/{vmid}", segment(&target.node));
        let converted = self.client.run_task("POST", &format!("{base}/template"), &[]);
        recovery::resolve(converted, || Ok((self.client.get(&format!("{base}/config"), &[])?["template"].as_u64() == Some(1)).then_some(())))
    }

    /// Removes what a failed publish made: its VM (only one this builder
    /// marked) and the uploaded image; says what is left when that fails.
    fn undo(&self, vmid: u32, volid: &str, upload_left: Option<ProviderError>, failure: ProviderError) -> ProviderError {
        let code = if failure.code == ErrorCode::Ambiguous { ErrorCode::Unavailable } else { failure.code };
        let vm_left = match self.occupant(vmid) {
            Ok(Some(vm)) if vm.version.is_some() => self.delete_vm(&vm.node, vmid).err(),
            Ok(_) => None,
            Err(e) => Some(e),
        };
        let mut left = Vec::new();
        if let Some(e) = vm_left {
            left.push(format!("the half-made VM {vmid} could not be removed ({}); the next blockhost-build-template replaces it", e.message));
        }
        if let Some(e) = upload_left {
            left.push(format!("the uploaded image {volid} could not be removed ({})", e.message));
        }
        if left.is_empty() {
            ProviderError::new(code, format!("{}; nothing was left behind", failure.message))
        } else {
            ProviderError::new(ErrorCode::Internal, format!("{}; {}", failure.message, left.join("; ")))
        }
    }

    /// Deletes a VM with its disks; one already gone is success.
    fn delete_vm(&self, node: &str, vmid: u32) -> Result<(), ProviderError> {
        let path = format!("/nodes/{}/qemu/{vmid}", segment(node));
        let deleted = self.client.run_task("DELETE", &path, &[("purge", "1"), ("destroy-unreferenced-disks", "1")]);
        match deleted {
            Err(e) if matches!(e.code, ErrorCode::NotFound | ErrorCode::Ambiguous) => match self.occupant(vmid)? {
                None => Ok(()),
                Some(_) => Err(e),
            },
            other => other,
        }
    }

    /// The size of an image to import on the target, when it is there.
    fn volume_size(&self, target: &Target, volid: &str) -> Result<Option<u64>, ProviderError> {
        let path = format!("/nodes/{}/storage/{}/content", segment(&target.node), segment(&target.import_storage));
        let listed = self.client.get(&path, &[("content", "import")])?;
        Ok(listed.as_array().into_iter().flatten().find(|v| v["volid"] == volid).map(|v| v["size"].as_u64().unwrap_or(0)))
    }

    /// Deletes an uploaded image; one that is not there is success.
    fn remove_volume(&self, target: &Target, volid: &str) -> Result<(), ProviderError> {
        if self.volume_size(target, volid)?.is_none() {
            return Ok(());
        }
        let path = format!("/nodes/{}/storage/{}/content/{}", segment(&target.node), segment(&target.import_storage), segment(volid));
        match self.client.run_task("DELETE", &path, &[]) {
            Err(e) if matches!(e.code, ErrorCode::NotFound | ErrorCode::Ambiguous) && self.volume_size(target, volid)?.is_none() => Ok(()),
            other => other,
        }
    }
}

fn content(storage: &Value) -> String {
    storage["content"].as_str().unwrap_or_default().to_string()
}

fn takes(storage: &Value, kind: &str) -> bool {
    content(storage).split(',').any(|c| c == kind)
}

/// The version a description marks, when this builder wrote it.
fn marked_version(description: &str) -> Option<String> {
    let rest = &description[description.find(MARKER)? + MARKER.len()..];
    let version: String = rest.chars().take_while(|c| !c.is_whitespace()).collect();
    (!version.is_empty()).then_some(version)
}

/// What the template's boot profile asks of the VM.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VmShape {
    pub q35: bool,
    pub uefi: bool,
}

impl VmShape {
    /// A template that boots from its disk; direct kernel boot needs QEMU
    /// arguments that only root@pam may set through the API.
    pub fn of(template: &Template) -> Result<Self, ProviderError> {
        let boot = &template.manifest.boot;
        match boot.mode {
            BootMode::Disk { firmware } => Ok(Self { q35: boot.machine == "q35", uefi: firmware == Firmware::Uefi }),
            BootMode::DirectKernel { .. } => Err(ProviderError::new(
                ErrorCode::InvalidSpec,
                format!("template version {} boots its kernel directly, which a Proxmox VE template cannot; build a new one: blockhost-build-template --force", template.manifest.version),
            )),
        }
    }

    /// `POST /nodes/{node}/qemu` for the template VM, as upstream's
    /// `qm create` + `qm set` make it, with the image imported as `scsi0`.
    pub fn create_params(&self, vmid: u32, version: &str, storage: &str, image: &str, bridge: &str) -> Vec<(&'static str, String)> {
        let mut params = vec![
            ("vmid", vmid.to_string()),
            ("name", TEMPLATE_NAME.to_string()),
            ("description", format!("{MARKER}{version}")),
            ("memory", "512".to_string()),
            ("cores", "1".to_string()),
            ("ostype", "l26".to_string()),
            ("scsihw", "virtio-scsi-pci".to_string()),
            ("scsi0", format!("{storage}:0,import-from={image}")),
            ("boot", "order=scsi0".to_string()),
            ("net0", format!("virtio,bridge={bridge}")),
            ("agent", "enabled=1".to_string()),
            ("serial0", "socket".to_string()),
            ("vga", "serial0".to_string()),
        ];
        if self.q35 {
            params.push(("machine", "q35".to_string()));
        }
        if self.uefi {
            params.push(("bios", "ovmf".to_string()));
            params.push(("efidisk0", format!("{storage}:1,efitype=4m")));
        }
        params
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_description_marks_the_version() {
        assert_eq!(marked_version("blockhost-template version=bookworm-20261202T050000Z"), Some("bookworm-20261202T050000Z".into()));
        assert_eq!(marked_version("notes\nblockhost-template version=v1\n"), Some("v1".into()));
        assert_eq!(marked_version("debian-12-web3-template"), None);
        assert_eq!(marked_version("blockhost-template version="), None);
    }

    #[test]
    fn the_boot_profile_shapes_the_vm() {
        let bios = VmShape { q35: false, uefi: false }.create_params(9001, "v1", "local-lvm", "local:import/x.qcow2", "vmbr0");
        let keys: Vec<&str> = bios.iter().map(|(k, _)| *k).collect();
        assert!(!keys.contains(&"machine") && !keys.contains(&"bios") && !keys.contains(&"efidisk0"));
        assert!(bios.contains(&("scsi0", "local-lvm:0,import-from=local:import/x.qcow2".into())));
        let uefi = VmShape { q35: true, uefi: true }.create_params(9001, "v1", "ceph", "local:import/x.qcow2", "vmbr1");
        assert!(uefi.contains(&("machine", "q35".into())) && uefi.contains(&("bios", "ovmf".into())));
        assert!(uefi.contains(&("efidisk0", "ceph:1,efitype=4m".into())) && uefi.contains(&("net0", "virtio,bridge=vmbr1".into())));
    }
}
