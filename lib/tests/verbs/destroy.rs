use crate::host::{self, backend_vm, Host};
use provisioner::host::vmdb::DbError;
use provisioner::provider::ErrorCode;
use provisioner::verbs::{destroy, metrics, VerbError};
use serde_json::{json, Value};

#[test]
fn destroy_removes_the_vm_and_its_files_and_keeps_a_destroyed_record() {
    let h = Host::new();
    h.create("d1");
    h.create("d2");
    metrics::one(&h.session(), "d1").unwrap();
    assert!(h.has_sample("d1"), "metrics cached a sample");
    let before = chrono::Utc::now();
    destroy::run(&h.session(), "d1").unwrap();
    assert_eq!(backend_vm(&h.session(), "d1"), None);
    assert!(h.domain("d1").is_none() && !h.seed_dir("d1").exists(), "the mock's files of d1 are gone");
    assert!(!h.has_sample("d1"), "the metrics cache of d1 is gone");
    assert_eq!(h.field("d1", "status").as_deref(), Some("destroyed"));
    let at = host::parse_time(&h.field("d1", "destroyed_at").unwrap());
    assert!(at >= before - chrono::Duration::seconds(1) && at <= chrono::Utc::now());
    assert_eq!(h.field("d1", "ip_address").as_deref(), Some("10.0.0.10"), "the record keeps its history");
    assert_eq!(h.allocated_ips(), ["10.0.0.11"], "d1's address is released, d2's kept");
    assert!(backend_vm(&h.session(), "d2").is_some(), "the other VM is untouched");
    assert_eq!(h.field("d2", "status").as_deref(), Some("active"));
}

#[test]
fn destroy_is_idempotent() {
    let h = Host::new();
    h.create("twice");
    destroy::run(&h.session(), "twice").unwrap();
    let first = h.record("twice").unwrap();
    destroy::run(&h.session(), "twice").unwrap();
    assert_eq!(h.record("twice").unwrap(), first, "a repeated destroy changes nothing");
    // A name nobody knows is already destroyed.
    destroy::run(&h.session(), "never-was").unwrap();
    assert_eq!(h.record("never-was"), None);
}

#[test]
fn destroy_refuses_invalid_names() {
    let h = Host::new();
    assert!(matches!(destroy::run(&h.session(), "../etc"), Err(VerbError::Invalid(_))));
}

#[test]
fn destroy_after_a_timed_out_terminate_that_happened_succeeds() {
    let h = Host::new();
    h.create("amb");
    h.knobs("ambiguous: terminate\n");
    destroy::run(&h.session(), "amb").unwrap();
    assert_eq!(backend_vm(&h.session(), "amb"), None);
    assert_eq!(h.field("amb", "status").as_deref(), Some("destroyed"));
}

#[test]
fn a_destroy_that_cannot_reach_the_backend_changes_no_record() {
    let h = Host::new();
    h.create("keep");
    h.knobs("ambiguous: terminate:lost\n");
    let err = destroy::run(&h.session(), "keep").unwrap_err();
    assert!(matches!(err, VerbError::Provider(ref e) if e.code == ErrorCode::Ambiguous), "{err:?}");
    assert_eq!(h.field("keep", "status").as_deref(), Some("active"));
    assert_eq!(h.allocated_ips(), ["10.0.0.10"]);
    h.knobs("unreachable: true\n");
    let err = destroy::run(&h.session(), "keep").unwrap_err();
    assert!(matches!(err, VerbError::Provider(ref e) if e.code == ErrorCode::Unavailable), "{err:?}");
    assert_eq!(h.field("keep", "status").as_deref(), Some("active"));
    h.knobs("");
    assert!(backend_vm(&h.session(), "keep").is_some());
}

#[test]
fn destroy_refuses_a_create_under_way_and_undoes_a_dead_one() {
    let h = Host::new();
    h.create("busy");
    let me = std::process::id();
    let entry = |pid: u32, ip: &str| json!({"pid": pid, "pid_start_ticks": 0, "started_at": host::days_ago(0), "ip_address": ip, "ipv6_address": "", "vmid": 0});
    h.edit_db(|db| {
        db["vms"].as_object_mut().unwrap().shift_remove("busy");
        db["pending_creates"] = json!({"busy": entry(me, "10.0.0.10")});
    });
    let err = destroy::run(&h.session(), "busy").unwrap_err();
    assert!(matches!(err, VerbError::Db(DbError::CreateInProgress(ref n, pid)) if n == "busy" && pid == me), "{err:?}");
    assert!(backend_vm(&h.session(), "busy").is_some(), "a create under way keeps its VM");
    let dead = testkit::dead_pid();
    h.edit_db(|db| db["pending_creates"] = json!({"busy": entry(dead, "10.0.0.10")}));
    destroy::run(&h.session(), "busy").unwrap();
    assert_eq!(backend_vm(&h.session(), "busy"), None);
    assert_eq!(h.pending(), Value::Null);
    assert_eq!(h.allocated_ips(), Vec::<String>::new());
}
