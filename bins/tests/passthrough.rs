//! Values of the VM database that other components own pass through byte for
//! byte: whatever Python's `json.dump(..., indent=2)` wrote is read, and written
//! back exactly, around the changes a verb makes.

mod common;
use common::{Root, WALLET};
use std::process::Command;

/// Python writes a database whose record `kept` and top-level key `custom`
/// hold every kind of value serde_json alone would lose or refuse.
const WRITE_FIXTURE: &str = r#"
import json, sys
odd = {
    "big": 2**70, "small": -2**63 - 1, "u64max": 2**64 - 1, "huge": [2**64, -(2**64)],
    "floats": [0.1, 1e-7, 1e16, 5e-324, 1.7976931348623157e308, 123456789.123456789, -0.0, 2.5],
    "nan": float("nan"), "inf": float("inf"), "ninf": float("-inf"),
    "lone": "\ud800x", "low": "a\udc00", "pair": "\U0001F600", "del": "\x7f", "nul": "\x00lead",
    "\udc00key": {"nested": [None, True, "é"]},
}
record = {"vm_name": "kept", "vmid": 0, "ip_address": "10.20.0.10", "ipv6_address": "", "status": "active",
          "created_at": "2026-01-01T00:00:00+00:00", "expires_at": "2099-01-01T00:00:00+00:00"}
record.update(odd)
db = {"vms": {"kept": record}, "next_vmid": 0, "allocated_ips": ["10.20.0.10"], "allocated_ipv6": [], "custom": odd}
with open(sys.argv[1], "w") as f:
    json.dump(db, f, indent=2)
"#;

/// Python reads the database back and writes it again as it is, then without
/// what a create of `new` added (separated by a NUL byte).
const REDUMP: &str = r#"
import json, sys
with open(sys.argv[1]) as f:
    db = json.load(f)
sys.stdout.write(json.dumps(db, indent=2) + "\0")
new = db["vms"].pop("new")
db["allocated_ips"].remove(new["ip_address"])
db["allocated_ipv6"].remove(new["ipv6_address"])
sys.stdout.write(json.dumps(db, indent=2))
"#;

fn python(script: &str, path: &std::path::Path) -> String {
    let out = Command::new("python3").arg("-c").arg(script).arg(path).output().expect("python3 runs");
    assert!(out.status.success(), "python3: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn what_python_wrote_is_written_back_byte_for_byte() {
    if !testkit::require(testkit::on_path("python3"), "python3 writes the fixture") {
        return;
    }
    let root = Root::new();
    std::fs::create_dir_all(root.mock_dir()).unwrap();
    python(WRITE_FIXTURE, &root.db_path());
    let written = std::fs::read(root.db_path()).unwrap();

    let list = root.run("blockhost-vm-list", &[]);
    assert_eq!(list.code, 0, "the database is read, not refused: {}", list.stderr);
    let ghost = root.run("blockhost-vm-destroy", &["ghost"]);
    assert_eq!(ghost.code, 0, "{}", ghost.stderr);
    assert_eq!(std::fs::read(root.db_path()).unwrap(), written, "a verb that changes nothing writes nothing");

    let create = root.run("blockhost-vm-create", &["new", "--owner-wallet", WALLET, "--apply"]);
    assert_eq!(create.code, 0, "{}", create.stderr);
    let after = std::fs::read_to_string(root.db_path()).unwrap();
    let redumped = python(REDUMP, &root.db_path());
    let (as_is, without_new) = redumped.split_once('\0').unwrap();
    assert_eq!(after, as_is, "written exactly as Python writes the same data");
    assert_eq!(without_new.as_bytes(), written, "everything but the new record is unchanged");
}
