//! The template store through its public API, in a temporary root: which
//! template is current (versioned or upstream's single file), and which
//! versions VM disks still use, read from real qcow2 overlays.

mod template_support;

use std::path::{Path, PathBuf};
use template_builder::{BootMode, Firmware, TemplateError, TemplateStore};
use template_support::*;

struct Host {
    _root: tempfile::TempDir,
    store: TemplateStore,
    templates: PathBuf,
    vms: PathBuf,
    run: PathBuf,
}

fn host() -> Host {
    let root = tempfile::tempdir().unwrap();
    let layout = layout(root.path());
    std::fs::create_dir_all(&layout.templates).unwrap();
    let run = layout.create_marker.parent().unwrap().to_path_buf();
    Host { store: store_at(root.path()), templates: layout.templates, vms: layout.vms, run, _root: root }
}

fn names(dirs: &[PathBuf]) -> Vec<String> {
    dirs.iter().map(|d| d.file_name().unwrap().to_string_lossy().into_owned()).collect()
}

#[test]
fn no_template_at_all() {
    let h = host();
    assert_eq!(h.store.current().unwrap(), None);
    assert!(h.store.unused().unwrap().is_empty());
}

#[test]
fn upstream_single_file_is_a_legacy_disk_boot_template() {
    let h = host();
    std::fs::write(h.templates.join("blockhost-base.qcow2"), "qcow2").unwrap();
    let legacy = h.store.current().unwrap().unwrap();
    assert_eq!(legacy.image_path(), h.templates.join("blockhost-base.qcow2"));
    assert_eq!(legacy.manifest.source, "legacy");
    assert_eq!(legacy.manifest.boot.mode, BootMode::Disk { firmware: Firmware::Bios });
    assert_eq!((legacy.manifest.boot.machine.as_str(), legacy.manifest.boot.cdrom_bus.as_str()), ("q35", "sata"));
    assert!(legacy.manifest.built_at.ends_with("+00:00"));

    // A versioned template, once current, wins over it.
    let dir = fake_version(&h.templates, "bookworm-20260101T000000Z", "new");
    make_current(&h.templates, "bookworm-20260101T000000Z");
    let current = h.store.current().unwrap().unwrap();
    assert_eq!(current.dir, dir);
    assert_eq!(current.image_path(), dir.join("disk.qcow2"));
    assert_eq!(current.manifest.version, "bookworm-20260101T000000Z");
}

#[test]
fn a_broken_current_link_is_an_error_not_a_fallback() {
    let h = host();
    std::fs::write(h.templates.join("blockhost-base.qcow2"), "qcow2").unwrap();
    make_current(&h.templates, "bookworm-gone");
    let err = h.store.current().unwrap_err();
    assert!(matches!(err, TemplateError::Corrupt { .. }), "{err}");
    assert!(err.to_string().contains("current template is unusable"), "{err}");
}

#[test]
fn versions_used_by_vm_disks_are_kept() {
    let h = host();
    let v1 = real_version(&h.templates, "bookworm-20260101T000000Z");
    let v2 = real_version(&h.templates, "bookworm-20260201T000000Z");
    let v3 = real_version(&h.templates, "bookworm-20260301T000000Z");
    let v4 = real_version(&h.templates, "bookworm-20260401T000000Z");
    make_current(&h.templates, "bookworm-20260401T000000Z");
    // Not a version: hidden, or without a manifest.
    std::fs::create_dir_all(h.templates.join(".cache")).unwrap();
    std::fs::create_dir_all(h.templates.join("notes")).unwrap();

    overlay(&h.vms, "vm-a", &v1.join("disk.qcow2"));
    // A disk backed by a snapshot that is backed by v2: the whole chain counts.
    let snapshots = h.vms.join("snapshots");
    std::fs::create_dir_all(&snapshots).unwrap();
    let snap = overlay(&snapshots, "vm-b-snap", &v2.join("disk.qcow2"));
    overlay(&h.vms, "vm-b", &snap);
    std::fs::write(h.vms.join("vm-a-cidata.iso"), "not a disk").unwrap();

    assert_eq!(names(&h.store.unused().unwrap()), ["bookworm-20260301T000000Z"]);
    let mut lines = Vec::new();
    let removed = h.store.prune(&mut |l: &str| lines.push(l.to_string())).unwrap();
    assert_eq!(removed, std::slice::from_ref(&v3));
    assert!(!v3.exists() && v1.exists() && v2.exists() && v4.exists());
    assert_eq!(lines, [format!("Removed unused template {}", v3.display())]);
    assert!(h.store.unused().unwrap().is_empty());
}

#[test]
fn a_relative_backing_name_is_resolved_from_the_disk() {
    let h = host();
    let v1 = real_version(&h.templates, "bookworm-20260101T000000Z");
    real_version(&h.templates, "bookworm-20260201T000000Z");
    make_current(&h.templates, "bookworm-20260201T000000Z");
    std::fs::create_dir_all(&h.vms).unwrap();
    let disk = h.vms.join("vm-rel.qcow2");
    qemu_img(&[
        "create", "-q", "-f", "qcow2", "-F", "qcow2", "-b",
        "../templates/bookworm-20260101T000000Z/disk.qcow2",
        disk.to_str().unwrap(),
    ]);
    assert!(v1.exists());
    assert!(h.store.unused().unwrap().is_empty());
}

#[test]
fn an_unreadable_vm_disk_stops_pruning() {
    let h = host();
    real_version(&h.templates, "bookworm-20260101T000000Z");
    std::fs::create_dir_all(&h.vms).unwrap();
    std::fs::write(h.vms.join("vm-x.qcow2"), vec![0u8; 4096]).unwrap();
    let err = h.store.prune(&mut |_| {}).unwrap_err();
    assert!(err.to_string().contains("not a qcow2 image"), "{err}");
    assert!(h.templates.join("bookworm-20260101T000000Z").exists());
}

#[test]
fn no_pruning_while_a_create_runs() {
    let h = host();
    let v1 = real_version(&h.templates, "bookworm-20260101T000000Z");
    std::fs::create_dir_all(&h.run).unwrap();
    std::fs::write(h.run.join("provisioning.lock"), std::process::id().to_string()).unwrap();
    let mut lines = Vec::new();
    assert!(h.store.prune(&mut |l: &str| lines.push(l.to_string())).unwrap().is_empty());
    assert!(v1.exists());
    assert_eq!(lines, ["Not pruning templates: a VM create is in progress"]);

    // A marker left by a dead process does not block it.
    let mut child = std::process::Command::new("true").spawn().unwrap();
    let dead = child.id();
    child.wait().unwrap();
    std::fs::write(h.run.join("provisioning.lock"), dead.to_string()).unwrap();
    assert_eq!(h.store.prune(&mut |_| {}).unwrap(), [v1]);
}

#[test]
fn the_current_version_is_never_unused() {
    let h = host();
    fake_version(&h.templates, "bookworm-20260101T000000Z", "x");
    make_current(&h.templates, "bookworm-20260101T000000Z");
    assert!(h.store.unused().unwrap().is_empty());
    assert!(h.store.prune(&mut |_| {}).unwrap().is_empty());
    assert!(Path::new(&h.templates.join("bookworm-20260101T000000Z")).is_dir());
}
