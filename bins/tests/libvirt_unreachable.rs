//! The libvirt backend with libvirtd out of reach (its socket absent): status
//! says `unknown`, list and gc never take a VM for destroyed, nothing changes.

mod common;
use common::{root_with_due_vms, Root};
use serde_json::Value;

/// The VMs of `root_with_due_vms`, recorded by the mock, then the root switched to a libvirt whose
/// daemon socket does not exist.
fn root_with_unreachable_libvirt() -> Root {
    let root = root_with_due_vms();
    std::fs::copy(root.db_path(), root.path("var/lib/blockhost/vms.json")).unwrap();
    root.remove("var/lib/blockhost/mock");
    let socket = root.path("run/libvirt/no-daemon-here.sock");
    let db_yaml = std::fs::read_to_string(root.path("etc/blockhost/db.yaml")).unwrap();
    root.write("etc/blockhost/db.yaml", &format!("{db_yaml}libvirt:\n  uri: 'qemu:///system?socket={}'\n", socket.display()));
    root
}

fn run(root: &Root, bin: &str, args: &[&str]) -> (i32, String, String) {
    let out = root.std_cmd(bin).env("BLOCKHOST_PROVIDER", "libvirt").args(args).output().unwrap();
    (out.status.code().unwrap_or(-1), String::from_utf8_lossy(&out.stdout).into_owned(), String::from_utf8_lossy(&out.stderr).into_owned())
}

#[test]
fn an_unreachable_libvirtd_is_never_mistaken_for_destroyed_vms() {
    let root = root_with_unreachable_libvirt();
    let before = root.snapshot();

    for name in ["up", "expired", "overdue", "neverheardof"] {
        let (code, stdout, stderr) = run(&root, "blockhost-vm-status", &[name]);
        assert_eq!((code, stdout.as_str()), (0, "unknown\n"), "{name}: {stderr}");
        assert!(stderr.contains("cannot connect to libvirt"), "{name}: {stderr}");
    }

    let (code, stdout, stderr) = run(&root, "blockhost-vm-list", &["--json"]);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(
        stderr,
        format!("warning: the status of every VM not destroyed is unknown: cannot connect to libvirt at qemu:///system?socket={socket} (db.yaml libvirt.uri): Failed to connect socket to '{socket}': No such file or directory; is libvirtd running? start it: systemctl start libvirtd\n", socket = root.path("run/libvirt/no-daemon-here.sock").display())
    );
    let rows: Value = serde_json::from_str(&stdout).unwrap();
    let statuses: Vec<(&str, &str)> =
        rows.as_array().unwrap().iter().map(|r| (r["name"].as_str().unwrap(), r["status"].as_str().unwrap())).collect();
    assert_eq!(statuses, [("up", "unknown"), ("expired", "unknown"), ("overdue", "unknown")]);

    let (code, stdout, _) = run(&root, "blockhost-vm-gc", &["--execute"]);
    assert_eq!(code, 1, "{stdout}");
    assert!(stdout.contains("  expired: FAILED (expired 2020-01-01T00:00:00+00:00)"), "{stdout}");
    assert!(stdout.contains("Processed: 0, errors: 2"), "{stdout}");

    let (code, stdout, stderr) = run(&root, "blockhost-vm-destroy", &["up"]);
    assert_eq!((code, stdout.as_str()), (1, ""));
    assert_eq!(stderr.lines().count(), 1, "{stderr}");

    assert!(root.snapshot() == before, "nothing may change while libvirtd is unreachable");
    let db: Value = serde_json::from_slice(&std::fs::read(root.path("var/lib/blockhost/vms.json")).unwrap()).unwrap();
    assert_eq!(db["vms"]["up"]["status"], "active");
    assert_eq!(db["vms"]["expired"]["status"], "active");
}
