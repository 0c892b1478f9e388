//! A host root for the libvirt provider: db.yaml naming the connection and a
//! current template whose image is a real, empty qcow2.

use provisioner::host::paths::HostPaths;
use std::process::Command;

pub fn write(paths: &HostPaths, uri: &str, bridge: &str) {
    write_config(paths, uri, bridge);
    let version = paths.state_dir().join("templates/bookworm-test");
    std::fs::create_dir_all(&version).unwrap();
    let status = Command::new("qemu-img").args(["create", "-q", "-f", "qcow2"]).arg(version.join("disk.qcow2")).arg("1G").status().unwrap();
    assert!(status.success(), "qemu-img create");
    for file in ["vmlinuz", "initrd.img"] {
        std::fs::write(version.join(file), b"").unwrap();
    }
    let manifest = serde_json::json!({
        "version": "bookworm-test",
        "source": "debootstrap",
        "suite": "bookworm",
        "mirror": null,
        "image": "disk.qcow2",
        "image_sha256": "",
        "boot": {"mode": {"kind": "direct-kernel", "kernel": "vmlinuz", "initrd": "initrd.img", "cmdline": "root=/dev/vda"}, "machine": "pc", "cdrom_bus": "ide"},
        "packages": [],
        "built_at": "2026-11-23T00:00:00.000000+00:00",
        "inputs_digest": "",
    });
    std::fs::write(version.join("template.json"), manifest.to_string()).unwrap();
    std::os::unix::fs::symlink("bookworm-test", paths.state_dir().join("templates/current")).unwrap();
}

/// db.yaml naming the connection and the bridge.
pub fn write_config(paths: &HostPaths, uri: &str, bridge: &str) {
    std::fs::create_dir_all(paths.config_dir()).unwrap();
    std::fs::create_dir_all(paths.state_dir()).unwrap();
    std::fs::write(
        paths.config_file("db.yaml"),
        format!("db_file: /var/lib/blockhost/vms.json\nbridge: {bridge}\nip_pool: {{network: 10.0.0.0/24, start: 10, end: 50, gateway: 10.0.0.1}}\nlibvirt: {{uri: '{uri}', accelerator: tcg}}\n"),
    )
    .unwrap();
}
