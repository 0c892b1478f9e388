use crate::host::{self, backend_vm, Host};
use provisioner::verbs::recover;
use serde_json::{json, Value};

fn journal(pid: u32, ip: &str) -> Value {
    json!({"pid": pid, "pid_start_ticks": 1, "started_at": host::days_ago(0), "ip_address": ip, "ipv6_address": "", "vmid": 0})
}

#[test]
fn dead_creates_are_undone_and_live_ones_kept() {
    let h = Host::new();
    h.create("dead1");
    h.create("dead2");
    h.create("live");
    let dead = testkit::dead_pid();
    let me = std::process::id();
    h.edit_db(|db| {
        let vms = db["vms"].as_object_mut().unwrap();
        for name in ["dead1", "dead2", "live"] {
            vms.shift_remove(name);
        }
        db["pending_creates"] = json!({
            "dead1": journal(dead, "10.0.0.10"),
            "dead2": journal(dead, "10.0.0.11"),
            "live": {"pid": me, "pid_start_ticks": 0, "started_at": host::days_ago(0), "ip_address": "10.0.0.12", "ipv6_address": "", "vmid": 0},
        });
    });
    let mut lines = Vec::new();
    let undone = recover::stale_creates(&h.session(), &mut |l: &str| lines.push(l.to_string())).unwrap();
    assert_eq!(undone, 2);
    assert_eq!(lines.len(), 2, "{lines:?}");
    assert_eq!(backend_vm(&h.session(), "dead1"), None);
    assert_eq!(backend_vm(&h.session(), "dead2"), None);
    assert!(backend_vm(&h.session(), "live").is_some());
    assert_eq!(h.pending().as_object().unwrap().keys().collect::<Vec<_>>(), ["live"]);
    assert_eq!(h.allocated_ips(), ["10.0.0.12"]);
}

#[test]
fn an_undo_that_fails_is_reported_and_kept_for_later() {
    let h = Host::new();
    h.create("dead");
    let dead = testkit::dead_pid();
    h.edit_db(|db| {
        db["vms"].as_object_mut().unwrap().shift_remove("dead");
        db["pending_creates"] = json!({"dead": journal(dead, "10.0.0.10")});
    });
    h.knobs("ambiguous: terminate:lost\n");
    let mut lines = Vec::new();
    assert_eq!(recover::stale_creates(&h.session(), &mut |l: &str| lines.push(l.to_string())).unwrap(), 0);
    assert!(lines.iter().any(|l| l.starts_with("warning: could not undo the create of dead")), "{lines:?}");
    assert!(h.pending().get("dead").is_some());
    assert_eq!(h.allocated_ips(), ["10.0.0.10"]);
    h.knobs("");
    assert_eq!(recover::stale_creates(&h.session(), &mut host::quiet()).unwrap(), 1);
    assert_eq!(h.pending(), Value::Null);
    assert_eq!(h.allocated_ips(), Vec::<String>::new());
}

#[test]
fn a_name_with_a_record_keeps_its_vm_and_addresses() {
    let h = Host::new();
    h.create("owned");
    let dead = testkit::dead_pid();
    h.edit_db(|db| db["pending_creates"] = json!({"owned": journal(dead, "10.0.0.10")}));
    assert_eq!(recover::stale_creates(&h.session(), &mut host::quiet()).unwrap(), 1);
    assert!(backend_vm(&h.session(), "owned").is_some(), "the record's VM is kept");
    assert_eq!(h.allocated_ips(), ["10.0.0.10"], "the record's address is kept");
    assert_eq!(h.pending(), Value::Null);
}

#[test]
fn undo_leaves_a_newer_entry_of_the_same_name() {
    let h = Host::new();
    h.create("n");
    let dead = testkit::dead_pid();
    let me = std::process::id();
    h.edit_db(|db| {
        db["vms"].as_object_mut().unwrap().shift_remove("n");
        db["pending_creates"] = json!({"n": {"pid": me, "pid_start_ticks": 0, "started_at": host::days_ago(0), "ip_address": "10.0.0.10", "ipv6_address": "", "vmid": 0}});
    });
    // The entry an older, dead create would have had: same name, another owner.
    let stale = provisioner::host::vmdb::PendingCreate {
        name: "n".into(),
        owner: provisioner::host::process::ProcessId { pid: dead, start_ticks: 1 },
        ip: "10.0.0.10".into(),
        ipv6: None,
        vmid: 0,
        started_at: host::days_ago(0),
    };
    recover::undo(&h.session(), &stale).unwrap();
    assert!(h.pending().get("n").is_some(), "the live create's entry stays");
    assert_eq!(h.allocated_ips(), ["10.0.0.10"]);
}
