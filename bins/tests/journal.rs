//! The create journal and the repairs of gc never destroy what was committed,
//! and never leave a committed record holding an address for a VM that is gone.

mod common;
use common::Root;
use serde_json::{json, Value};

fn write_db(root: &Root, db: &Value) {
    std::fs::write(root.db_path(), serde_json::to_string_pretty(db).unwrap()).unwrap();
}

fn domain_exists(root: &Root, name: &str) -> bool {
    root.mock_dir().join("domains").join(format!("{name}.json")).exists()
}

fn allocated(db: &Value, key: &str) -> Vec<String> {
    db[key].as_array().unwrap().iter().map(|v| v.as_str().unwrap().to_string()).collect()
}

#[test]
fn a_stale_journal_entry_named_like_a_committed_vm_leaves_that_vm_alone() {
    let root = Root::new();
    let created = root.create("live");
    let (ip, ipv6) = (created["ip"].as_str().unwrap(), created["ipv6"].as_str().unwrap());
    let mut db = root.db();
    db["pending_creates"] = json!({"live": {
        "pid": testkit::dead_pid(), "pid_start_ticks": 1, "started_at": "2026-01-01T00:00:00+00:00",
        "ip_address": ip, "ipv6_address": ipv6, "vmid": 0
    }});
    write_db(&root, &db);

    let gc = root.run("blockhost-vm-gc", &["--execute"]);
    assert_eq!(gc.code, 0, "{}{}", gc.stdout, gc.stderr);
    let db = root.db();
    assert!(db.get("pending_creates").is_none(), "the stale entry goes");
    assert!(domain_exists(&root, "live"), "the committed VM was terminated");
    assert_eq!(db["vms"]["live"]["status"], "active");
    assert_eq!(allocated(&db, "allocated_ips"), [ip]);
    assert_eq!(allocated(&db, "allocated_ipv6"), [ipv6]);
}

#[test]
fn a_destroy_killed_after_terminating_is_repaired_by_gc() {
    let root = Root::new();
    root.create("keep");
    let gone = root.create("gone");
    // What a destroy killed between terminating the VM and marking the record leaves.
    std::fs::remove_file(root.mock_dir().join("domains/gone.json")).unwrap();

    let dry = root.run("blockhost-vm-gc", &[]);
    assert_eq!(dry.code, 0, "{}", dry.stderr);
    assert!(dry.stdout.contains("Lost: 1 candidate\n  gone: would destroy (active, VM gone from the backend)\n"), "{}", dry.stdout);
    assert_eq!(root.db()["vms"]["gone"]["status"], "active", "a dry run changes nothing");

    let gc = root.run("blockhost-vm-gc", &["--execute"]);
    assert_eq!(gc.code, 0, "{}{}", gc.stdout, gc.stderr);
    assert!(gc.stdout.contains("  gone: destroyed (active, VM gone from the backend)\n"), "{}", gc.stdout);
    let db = root.db();
    assert_eq!(db["vms"]["gone"]["status"], "destroyed");
    assert!(db["vms"]["gone"]["destroyed_at"].is_string());
    assert!(!allocated(&db, "allocated_ips").contains(&gone["ip"].as_str().unwrap().to_string()));
    assert!(!allocated(&db, "allocated_ipv6").contains(&gone["ipv6"].as_str().unwrap().to_string()));
    assert_eq!(db["vms"]["keep"]["status"], "active");
    assert!(domain_exists(&root, "keep"));

    let again = root.run("blockhost-vm-gc", &["--execute"]);
    assert!(!again.stdout.contains("Lost"), "repaired once: {}", again.stdout);
}
