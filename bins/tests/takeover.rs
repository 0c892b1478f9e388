//! `blockhost-vm-gc --migrate-upstream-db` as the package's postinst runs it:
//! upstream's `vm-db.json` (shaped exactly as upstream writes it) moved into
//! the configured database byte for byte, once; nothing moved when db.yaml
//! names the old file itself; nothing changed when it cannot take the lock.

mod common;

use common::Root;

const UPSTREAM: &str = include_str!("../../lib/tests/fixtures/upstream/vm-db.json");
/// What upstream's libvirt wizard writes to db.yaml.
const UPSTREAM_DB_YAML: &str = "db_file: /var/lib/blockhost/vm-db.json\nstorage_pool: blockhost\nstorage_path: /var/lib/blockhost/vms\nbridge: br0\ngc_grace_days: 7\nip_pool:\n  network: 192.168.122.0/24\n  start: 2\n  end: 254\n  gateway: 192.168.122.1\n";
const MIGRATE: &str = "--migrate-upstream-db";

#[test]
fn the_old_database_moves_once_byte_for_byte() {
    let root = Root::bare();
    root.write("etc/blockhost/db.yaml", &UPSTREAM_DB_YAML.replace("vm-db.json", "vms.json"));
    root.write("var/lib/blockhost/vm-db.json", UPSTREAM);
    let state = root.path("var/lib/blockhost");
    let first = root.run("blockhost-vm-gc", &[MIGRATE]);
    assert_eq!((first.code, first.stderr.as_str()), (0, ""));
    assert_eq!(
        first.stdout,
        format!(
            "Migrated 3 VM record(s) from {s}/vm-db.json to {s}/vms.json (0 already there); the old file is now {s}/vm-db.json.migrated\n",
            s = state.display()
        )
    );
    assert_eq!(std::fs::read_to_string(state.join("vms.json")).unwrap(), UPSTREAM);
    assert_eq!(std::fs::read_to_string(state.join("vm-db.json.migrated")).unwrap(), UPSTREAM);
    assert!(!state.join("vm-db.json").exists());

    let second = root.run("blockhost-vm-gc", &[MIGRATE]);
    assert_eq!((second.code, second.stdout.clone()), (0, format!("Nothing to migrate: no {}/vm-db.json\n", state.display())));
    assert_eq!(std::fs::read_to_string(state.join("vms.json")).unwrap(), UPSTREAM, "the second run changed nothing");
}

#[test]
fn a_record_in_both_keeps_the_configured_one_and_says_so() {
    let root = Root::bare();
    root.write("etc/blockhost/db.yaml", &UPSTREAM_DB_YAML.replace("vm-db.json", "vms.json"));
    root.write("var/lib/blockhost/vm-db.json", UPSTREAM);
    root.write("var/lib/blockhost/vms.json", r#"{"vms": {"blockhost-001": {"vm_name": "blockhost-001", "status": "suspended"}}, "next_vmid": 0, "allocated_ips": [], "allocated_ipv6": []}"#);
    let state = root.path("var/lib/blockhost");
    let run = root.run("blockhost-vm-gc", &[MIGRATE]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(
        run.stderr,
        format!("blockhost-001 is in both files: the record in {s}/vms.json is kept (the other stays in {s}/vm-db.json.migrated)\n", s = state.display())
    );
    assert!(run.stdout.starts_with("Migrated 2 VM record(s) from "), "{}", run.stdout);
    let db: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(state.join("vms.json")).unwrap()).unwrap();
    let names: Vec<_> = db["vms"].as_object().unwrap().keys().cloned().collect();
    assert_eq!(names, ["blockhost-001", "blockhost-002", "blockhost-003"]);
    assert_eq!(db["vms"]["blockhost-001"]["status"], "suspended");
}

#[test]
fn upstreams_own_db_yaml_needs_no_move() {
    let root = Root::bare();
    root.write("etc/blockhost/db.yaml", UPSTREAM_DB_YAML);
    root.write("var/lib/blockhost/vm-db.json", UPSTREAM);
    let run = root.run("blockhost-vm-gc", &[MIGRATE]);
    let old = root.path("var/lib/blockhost/vm-db.json");
    assert_eq!((run.code, run.stdout), (0, format!("Nothing to migrate: db.yaml names {} itself\n", old.display())));
    assert_eq!(std::fs::read_to_string(&old).unwrap(), UPSTREAM);
    assert!(!root.path("var/lib/blockhost/vms.json").exists());
}

#[test]
fn a_held_lock_changes_nothing_and_fails() {
    let root = Root::bare();
    root.write("etc/blockhost/db.yaml", &format!("{}db_lock_timeout_seconds: 1\n", UPSTREAM_DB_YAML.replace("vm-db.json", "vms.json")));
    root.write("var/lib/blockhost/vm-db.json", UPSTREAM);
    root.write("var/lib/blockhost/vm-db.json.lock", "");
    let holder = std::fs::File::open(root.path("var/lib/blockhost/vm-db.json.lock")).unwrap();
    holder.lock().unwrap();
    let run = root.run("blockhost-vm-gc", &[MIGRATE]);
    assert_eq!((run.code, run.stdout.as_str()), (1, ""), "{}", run.stderr);
    assert!(run.stderr.contains("vm-db.json.lock"), "{}", run.stderr);
    assert_eq!(std::fs::read_to_string(root.path("var/lib/blockhost/vm-db.json")).unwrap(), UPSTREAM);
    assert!(!root.path("var/lib/blockhost/vms.json").exists());
}

#[test]
fn the_mode_takes_no_gc_options() {
    let root = Root::bare();
    let run = root.run("blockhost-vm-gc", &[MIGRATE, "--execute"]);
    assert_eq!(run.code, 2, "{}", run.stderr);
}
