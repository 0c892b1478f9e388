//! Publishing the template to Proxmox VE (the step of `blockhost-build-template`
//! after the image is built on this host) against the three-node stand-in:
//! the template VM in upstream's shape, made once and kept while current,
//! replaced for a new version or a half-made one, an upstream template kept
//! unless forced, a VM that is not a template never touched, and a failure or
//! a lost answer at each step leaving neither a VM nor an uploaded image.
#![cfg(feature = "proxmox")]

#[path = "support/pve_host.rs"]
mod pve_host;

use provisioner::host::config::DbConfig;
use provisioner::host::paths::HostPaths;
use provisioner::provider::proxmox::template::{Publisher, VmShape, TEMPLATE_NAME};
use provisioner::provider::proxmox::{Client, ProxmoxConfig, Upload};
use provisioner::provider::{ErrorCode, ProviderError};
use sha2::{Digest, Sha256};
use std::time::Duration;
use template_builder::Template;

/// The template VMID db.yaml names (pve_host writes 9001).
const VMID: u32 = 9001;
/// The virtual size of the fake images.
const IMAGE_GIB: u64 = 2;

struct Host {
    guard: pve_host::StandInGuard,
    config: ProxmoxConfig,
    client: Client,
    root: tempfile::TempDir,
}

impl Host {
    /// The stand-in's own (upstream) template at `standin_template`, and
    /// `local` taking images to import when `import` is set.
    fn new(standin_template: u32, import: bool) -> Self {
        let root = tempfile::tempdir().unwrap();
        let paths = HostPaths::with_root(root.path());
        let options = pve_host::Options { template_vmid: standin_template, ..pve_host::Options::default() };
        let guard = pve_host::write(&paths, "vmbr0", options);
        let config = ProxmoxConfig::load(&paths, &DbConfig::load(&paths, true).unwrap()).unwrap();
        let client = config.client().unwrap();
        if import {
            client.put("/storage/local", &[("content", "backup,iso,vztmpl,import")]).unwrap();
        }
        Self { guard, config, client, root }
    }

    fn publisher(&self) -> Publisher<'_> {
        Publisher { client: &self.client, config: &self.config }
    }

    fn publish(&self, template: &Template, force: bool) -> Result<(bool, Vec<String>), ProviderError> {
        let mut lines = Vec::new();
        let made = self.publisher().publish(template, force, &mut |line: &str| lines.push(line.to_string()))?;
        Ok((made, lines))
    }

    /// A template version in the local store's layout, its image a qcow2 header.
    fn template(&self, version: &str) -> Template {
        self.template_with(version, r#"{"kind": "disk", "firmware": "bios"}"#, None)
    }

    fn template_with(&self, version: &str, boot_mode: &str, sha256: Option<&str>) -> Template {
        let dir = self.root.path().join("templates").join(version);
        std::fs::create_dir_all(&dir).unwrap();
        let image = qcow2_header(IMAGE_GIB << 30, version);
        std::fs::write(dir.join("disk.qcow2"), &image).unwrap();
        let digest: String = Sha256::digest(&image).iter().map(|b| format!("{b:02x}")).collect();
        let manifest = format!(
            r#"{{"version": "{version}", "source": "debootstrap", "suite": "bookworm", "mirror": null, "image": "disk.qcow2",
            "image_sha256": "{}", "boot": {{"mode": {boot_mode}, "machine": "pc", "cdrom_bus": "ide"}},
            "packages": [], "built_at": "2026-12-02T05:00:00+00:00", "inputs_digest": "x"}}"#,
            sha256.unwrap_or(&digest)
        );
        std::fs::write(dir.join("template.json"), manifest).unwrap();
        Template::load(&dir).unwrap()
    }

    fn standin(&self) -> &pve_standin::StandIn {
        &self.guard.0
    }

    fn config_of(&self, vmid: u32) -> Option<(String, Vec<(String, String)>)> {
        self.standin().vm(vmid)
    }

    fn value(&self, vmid: u32, key: &str) -> String {
        let (_, config) = self.config_of(vmid).unwrap_or_else(|| panic!("VM {vmid} exists"));
        config.into_iter().find(|(k, _)| k == key).map(|(_, v)| v).unwrap_or_default()
    }

    fn uploads(&self) -> Vec<(String, String)> {
        self.standin().volumes().into_iter().filter(|(_, volid)| volid.contains(":import/")).collect()
    }
}

/// A qcow2 header (magic, version 3, the virtual size at byte 24) and a tail
/// that makes each version's image differ.
fn qcow2_header(virtual_size: u64, tail: &str) -> Vec<u8> {
    let mut image = vec![0u8; 4096];
    image[..4].copy_from_slice(b"QFI\xfb");
    image[4..8].copy_from_slice(&3u32.to_be_bytes());
    image[20..24].copy_from_slice(&16u32.to_be_bytes());
    image[24..32].copy_from_slice(&virtual_size.to_be_bytes());
    image.extend_from_slice(tail.as_bytes());
    image
}

#[test]
fn a_fresh_cluster_gets_the_template_in_upstreams_shape_once() {
    let host = Host::new(9500, true);
    let v1 = host.template("bookworm-20261202T050000Z");
    let (made, lines) = host.publish(&v1, false).unwrap();
    assert!(made, "{lines:?}");
    let (node, _) = host.config_of(VMID).unwrap();
    assert_eq!(node, "pve1");
    let expected = [
        ("name", TEMPLATE_NAME.to_string()),
        ("template", "1".into()),
        ("description", "blockhost-template version=bookworm-20261202T050000Z".into()),
        ("memory", "512".into()),
        ("cores", "1".into()),
        ("ostype", "l26".into()),
        ("scsihw", "virtio-scsi-pci".into()),
        ("scsi0", format!("local-lvm:base-{VMID}-disk-0,size={IMAGE_GIB}G")),
        ("boot", "order=scsi0".into()),
        ("net0", "virtio,bridge=vmbr0".into()),
        ("agent", "enabled=1".into()),
        ("serial0", "socket".into()),
        ("vga", "serial0".into()),
    ];
    for (key, value) in expected {
        assert_eq!(host.value(VMID, key), value, "{key}");
    }
    assert_eq!(host.uploads(), vec![], "the uploaded image is removed");

    let (made, lines) = host.publish(&v1, false).unwrap();
    assert!(!made);
    assert_eq!(lines.last().unwrap(), &format!("Template VM {VMID} on pve1 holds version bookworm-20261202T050000Z: kept"));

    // VMs are linked clones of it, as of upstream's template.
    let clone = [("newid", "150"), ("name", "vm-a"), ("full", "0")];
    host.client.run_task("POST", &format!("/nodes/pve1/qemu/{VMID}/clone"), &clone).unwrap();
    assert!(host.value(150, "scsi0").starts_with("local-lvm:vm-150-disk-0"));
}

#[test]
fn a_new_version_replaces_ours() {
    let host = Host::new(9500, true);
    host.publish(&host.template("v1"), false).unwrap();
    let (made, lines) = host.publish(&host.template("v2"), false).unwrap();
    assert!(made);
    assert!(lines.contains(&format!("Removing template VM {VMID} (version v1)")), "{lines:?}");
    assert_eq!(host.value(VMID, "description"), "blockhost-template version=v2");
    assert_eq!(host.value(VMID, "template"), "1");
}

#[test]
fn an_upstream_template_is_kept_unless_forced() {
    let host = Host::new(VMID, true);
    let v1 = host.template("v1");
    let (made, lines) = host.publish(&v1, false).unwrap();
    assert!(!made);
    assert_eq!(
        lines.last().unwrap(),
        &format!("Template VM {VMID} (debian-12-web3-template) on pve1 was not made by this builder: kept; --force replaces it with version v1")
    );
    assert_eq!(host.value(VMID, "name"), "debian-12-web3-template");
    let (made, _) = host.publish(&v1, true).unwrap();
    assert!(made);
    assert_eq!(host.value(VMID, "name"), TEMPLATE_NAME);
}

#[test]
fn a_vm_that_is_not_a_template_is_never_touched() {
    let host = Host::new(9500, true);
    let clone = [("newid", "9001"), ("name", "customer"), ("full", "1"), ("storage", "local-lvm")];
    host.client.run_task("POST", "/nodes/pve1/qemu/9500/clone", &clone).unwrap();
    for force in [false, true] {
        let e = host.publish(&host.template("v1"), force).unwrap_err();
        assert_eq!(e.code, ErrorCode::Conflict);
        assert_eq!(
            e.message,
            "VMID 9001 (proxmox.template_vmid) holds VM customer on node pve1, which is not a template; set proxmox.template_vmid to a free VMID"
        );
    }
    assert_eq!(host.value(VMID, "name"), "customer");
    assert_eq!(host.uploads(), vec![]);
}

#[test]
fn a_fresh_installs_iso_storage_is_enabled_for_the_image_upload() {
    let host = Host::new(9500, false);
    let (made, lines) = host.publish(&host.template("v1"), false).unwrap();
    assert!(made);
    assert!(lines.contains(&"Storage local now also takes disk images to import (content backup,iso,vztmpl,import), for the template upload".to_string()), "{lines:?}");
    let storages = host.client.get("/cluster/resources", &[("type", "storage")]).unwrap();
    let local = storages.as_array().unwrap().iter().find(|s| s["storage"] == "local" && s["node"] == "pve2").unwrap();
    assert_eq!(local["content"], "backup,iso,vztmpl,import", "a cluster-wide setting");
    assert_eq!(host.uploads(), vec![]);
}

#[test]
fn enabling_imports_whose_answer_is_lost_is_read_back() {
    let host = Host::new(9500, false);
    host.standin().faults(|f| {
        f.hang_after_acting = Some(Duration::from_secs(3));
        f.only_path = Some("/storage/local".into());
    });
    let (made, _) = host.publish(&host.template("v1"), false).unwrap();
    assert!(made);
    assert_eq!(host.standin().hangs(), 1, "the storage change was the step that lost its answer");
}

#[test]
fn without_a_file_storage_to_enable_nothing_is_made_and_the_fix_is_named() {
    let mut host = Host::new(9500, false);
    host.config.iso_storage = "local-lvm".into();
    let e = host.publish(&host.template("v1"), false).unwrap_err();
    assert_eq!(e.code, ErrorCode::InvalidSpec);
    assert_eq!(
        e.message,
        "no storage of node pve1 takes disk images to import (content import), which the template upload needs, and local-lvm (proxmox.iso_storage) \
         is no file storage that could; enable it on a file storage, e.g. `pvesm set local-lvm --content images,rootdir,import`"
    );
    assert_eq!(host.config_of(VMID), None);
}

#[test]
fn a_template_that_boots_its_kernel_directly_is_refused() {
    let host = Host::new(9500, true);
    let direct = r#"{"kind": "direct-kernel", "kernel": "vmlinuz", "initrd": "initrd.img", "cmdline": "root=/dev/vda"}"#;
    let e = host.publish(&host.template_with("old", direct, None), false).unwrap_err();
    assert_eq!(e.code, ErrorCode::InvalidSpec);
    assert!(e.message.ends_with("build a new one: blockhost-build-template --force"), "{}", e.message);
    assert_eq!(host.config_of(VMID), None);
}

#[test]
fn an_image_that_does_not_match_its_checksum_is_refused_by_the_cluster() {
    let host = Host::new(9500, true);
    let wrong = "0".repeat(64);
    let e = host.publish(&host.template_with("v1", r#"{"kind": "disk", "firmware": "bios"}"#, Some(&wrong)), false).unwrap_err();
    assert!(e.message.contains("checksum mismatch"), "{}", e.message);
    assert_eq!(host.config_of(VMID), None);
    assert_eq!(host.uploads(), vec![]);
}

#[test]
fn a_failing_step_leaves_neither_vm_nor_image() {
    for step in ["/upload", "/nodes/pve1/qemu", "/template"] {
        let host = Host::new(9500, true);
        host.standin().faults(|f| {
            f.failing_tasks = Some("stand-in: failed midway".into());
            f.only_path = Some(step.into());
        });
        let e = host.publish(&host.template("v1"), false).unwrap_err();
        assert!(e.message.contains("failed midway") && e.message.ends_with("nothing was left behind"), "{step}: {}", e.message);
        assert_eq!(host.config_of(VMID), None, "{step}");
        assert_eq!(host.uploads(), vec![], "{step}");
    }
}

#[test]
fn a_lost_answer_at_each_step_is_read_back_and_never_doubles() {
    for step in ["/upload", "/nodes/pve1/qemu", "/template"] {
        let host = Host::new(9500, true);
        host.standin().faults(|f| {
            f.hang_after_acting = Some(Duration::from_secs(3));
            f.only_path = Some(step.into());
        });
        let (made, _) = host.publish(&host.template("v1"), false).unwrap_or_else(|e| panic!("{step}: {e:?}"));
        assert!(made);
        assert_eq!(host.standin().hangs(), 1, "{step}: the fault met its step");
        assert_eq!(host.value(VMID, "template"), "1", "{step}");
        assert_eq!(host.uploads(), vec![], "{step}");
    }
}

#[test]
fn a_server_error_at_each_step_leaves_neither_vm_nor_image() {
    for step in ["/upload", "/nodes/pve1/qemu", "/template"] {
        let host = Host::new(9500, true);
        host.standin().faults(|f| {
            f.server_error = Some(("POST", 503));
            f.only_path = Some(step.into());
        });
        let e = host.publish(&host.template("v1"), false).unwrap_err();
        assert!(e.message.contains("HTTP 503"), "{step}: {}", e.message);
        assert_eq!(host.config_of(VMID), None, "{step}");
        assert_eq!(host.uploads(), vec![], "{step}");
    }
}

#[test]
fn a_half_made_template_of_an_interrupted_build_is_replaced_with_its_upload() {
    let host = Host::new(9500, true);
    let v1 = host.template("v1");
    // What a build killed after the import and before the conversion leaves.
    let image = std::fs::read(v1.image_path()).unwrap();
    let file = format!("{TEMPLATE_NAME}-v1.qcow2");
    let upload = Upload { name: &file, content: "import", reader: &mut &image[..], len: image.len() as u64, sha256: None };
    host.client.upload("pve1", "local", upload).unwrap();
    let params = VmShape { q35: false, uefi: false }.create_params(VMID, "v1", "local-lvm", &format!("local:import/{file}"), "vmbr0");
    let pairs: Vec<(&str, &str)> = params.iter().map(|(k, v)| (*k, v.as_str())).collect();
    host.client.run_task("POST", "/nodes/pve1/qemu", &pairs).unwrap();
    assert_eq!(host.value(VMID, "template"), "");

    let (made, lines) = host.publish(&v1, false).unwrap();
    assert!(made);
    assert!(lines.contains(&format!("Removing the half-made template VM {VMID} of an interrupted build")), "{lines:?}");
    assert_eq!(host.value(VMID, "template"), "1");
    assert_eq!(host.uploads(), vec![]);
}

#[test]
fn the_target_is_the_configured_node_online() {
    let host = Host::new(9500, true);
    host.standin().faults(|f| {
        f.down_nodes.insert("pve1".into());
    });
    let e = host.publisher().target(&mut |_| {}).unwrap_err();
    assert_eq!(e.code, ErrorCode::Unavailable);
    assert_eq!(e.message, "Proxmox VE node pve1 (proxmox.node), where the template is made, is not online");
}
