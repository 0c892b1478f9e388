//! Fixtures shared by the template tests: fake template versions, a tiny real
//! `.deb`, and ports nobody listens on.
#![allow(dead_code)] // each test crate uses its own subset

pub mod guest_boot;

use template_builder::{Accelerator, BootMode, BootProfile, Firmware, StoreLayout, TemplateManifest, TemplateStore};
use std::path::{Path, PathBuf};
use std::process::Command;

pub const PROBE_PACKAGE: &str = "blockhost-template-probe";

/// Builds `blockhost-template-probe_<version>_all.deb` in `dir` with dpkg-deb:
/// one file, `/usr/share/blockhost-template-probe/marker`, no dependencies.
pub fn build_probe_deb(dir: &Path, version: &str) -> PathBuf {
    let work = tempfile::tempdir().unwrap();
    let tree = work.path().join("pkg");
    std::fs::create_dir_all(tree.join("DEBIAN")).unwrap();
    std::fs::create_dir_all(tree.join("usr/share").join(PROBE_PACKAGE)).unwrap();
    std::fs::write(
        tree.join("DEBIAN/control"),
        format!(
            "Package: {PROBE_PACKAGE}\nVersion: {version}\nArchitecture: all\nMaintainer: BlockHost tests <tests@invalid>\n\
             Description: marks a template built by the tests\n"
        ),
    )
    .unwrap();
    std::fs::write(tree.join("usr/share").join(PROBE_PACKAGE).join("marker"), format!("probe {version}\n")).unwrap();
    let deb = dir.join(format!("{PROBE_PACKAGE}_{version}_all.deb"));
    let status = Command::new("dpkg-deb").args(["--root-owner-group", "--build"]).arg(&tree).arg(&deb).output().unwrap();
    assert!(status.status.success(), "dpkg-deb: {}", String::from_utf8_lossy(&status.stderr));
    deb
}

pub fn sha256_of(path: &Path) -> String {
    let out = Command::new("sha256sum").arg(path).output().unwrap();
    String::from_utf8_lossy(&out.stdout).split_whitespace().next().unwrap().to_string()
}

/// A loopback port with no listener (bound, noted, closed).
pub fn closed_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

pub fn manifest(version: &str, digest: &str) -> TemplateManifest {
    TemplateManifest {
        version: version.into(),
        source: "debootstrap".into(),
        suite: "bookworm".into(),
        mirror: Some("http://deb.debian.org/debian".into()),
        image: "disk.qcow2".into(),
        image_sha256: String::new(),
        boot: BootProfile { mode: BootMode::Disk { firmware: Firmware::Bios }, machine: "pc".into(), cdrom_bus: "ide".into() },
        packages: Vec::new(),
        built_at: "2025-01-01T00:00:00+00:00".into(),
        inputs_digest: digest.into(),
    }
}

/// A version directory whose image file holds `content` (not a real image).
pub fn fake_version(templates: &Path, version: &str, content: &str) -> PathBuf {
    fake_version_with_digest(templates, version, content, "digest-of-a-fake")
}

pub fn fake_version_with_digest(templates: &Path, version: &str, content: &str, digest: &str) -> PathBuf {
    let dir = templates.join(version);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("disk.qcow2"), content).unwrap();
    std::fs::write(dir.join("template.json"), serde_json::to_vec_pretty(&manifest(version, digest)).unwrap()).unwrap();
    dir
}

/// A version directory with a real (empty, 64 MiB virtual) qcow2 image.
pub fn real_version(templates: &Path, version: &str) -> PathBuf {
    let dir = fake_version(templates, version, "");
    let image = dir.join("disk.qcow2");
    std::fs::remove_file(&image).unwrap();
    qemu_img(&["create", "-q", "-f", "qcow2", image.to_str().unwrap(), "64M"]);
    dir
}

/// A VM disk in `vms` backed by `backing` (as the create verb makes them).
pub fn overlay(vms: &Path, name: &str, backing: &Path) -> PathBuf {
    std::fs::create_dir_all(vms).unwrap();
    let disk = vms.join(format!("{name}.qcow2"));
    qemu_img(&["create", "-q", "-f", "qcow2", "-F", "qcow2", "-b", backing.to_str().unwrap(), disk.to_str().unwrap()]);
    disk
}

pub fn qemu_img(args: &[&str]) {
    let out = Command::new("qemu-img").args(args).output().unwrap();
    assert!(out.status.success(), "qemu-img {args:?}: {}", String::from_utf8_lossy(&out.stderr));
}

pub fn make_current(templates: &Path, version: &str) {
    let link = templates.join("current");
    let _ = std::fs::remove_file(&link);
    std::os::unix::fs::symlink(version, link).unwrap();
}

/// The store's places under a scratch root, where the provisioner puts them on a host.
pub fn layout(root: &Path) -> StoreLayout {
    let state = root.join("var/lib/blockhost");
    StoreLayout {
        templates: state.join("templates"),
        packages: state.join("template-packages"),
        vms: state.join("vms"),
        create_marker: root.join("run/blockhost/provisioning.lock"),
    }
}

/// The template store of a root, with the accelerator this host can run.
pub fn store_at(root: &Path) -> TemplateStore {
    TemplateStore::new(layout(root), Accelerator::detect(Path::new("/")))
}
