use crate::host::{self, backend_vm, Host};
use provisioner::provider::PowerState;
use provisioner::verbs::gc::{self, GcOptions, Item, ItemResult};
use provisioner::verbs::{power, VerbError};
use serde_json::{json, Value};
use std::time::Duration;

fn options(execute: bool) -> GcOptions {
    GcOptions { execute, suspend_only: false, destroy_only: false, grace_days: None, stop_timeout: Duration::from_secs(5) }
}

fn run(h: &Host, options: &GcOptions) -> gc::Report {
    gc::run(&h.session(), options, &mut host::quiet()).unwrap()
}

fn set(h: &Host, name: &str, key: &str, value: &str) {
    h.edit_db(|db| db["vms"][name][key] = json!(value));
}

fn suspend_at(h: &Host, name: &str, days_ago: i64) {
    h.edit_db(|db| {
        db["vms"][name]["status"] = json!("suspended");
        db["vms"][name]["suspended_at"] = json!(host::days_ago(days_ago));
    });
}

fn names(items: &[Item]) -> Vec<&str> {
    items.iter().map(|i| i.name.as_str()).collect()
}

#[test]
fn a_dry_run_reports_and_changes_nothing() {
    let h = Host::new();
    for name in ["expired", "current", "old"] {
        h.create(name);
    }
    let expiry = host::days_ago(1);
    set(&h, "expired", "expires_at", &expiry);
    suspend_at(&h, "old", 8);
    let before = h.db();
    let report = run(&h, &options(false));
    assert_eq!(h.db(), before, "a dry run writes nothing");
    assert!(!report.execute);
    assert_eq!(report.grace_days, 7);
    assert!(report.lost.is_empty());
    let suspend = report.suspend.clone().unwrap();
    assert_eq!(suspend, [Item { name: "expired".into(), reason: format!("expired {expiry}"), result: ItemResult::WouldDo }]);
    let destroy = report.destroy.clone().unwrap();
    assert_eq!(names(&destroy), ["old"]);
    assert!(destroy[0].reason.starts_with("suspended "));
    assert_eq!((report.processed(), report.errors()), (2, 0));
    assert_eq!(backend_vm(&h.session(), "expired").unwrap().state, PowerState::Running);
    assert!(backend_vm(&h.session(), "old").is_some());
}

#[test]
fn execute_suspends_expired_vms_and_destroys_those_past_the_grace() {
    let h = Host::new();
    for name in ["expired", "current", "old", "recent"] {
        h.create(name);
    }
    set(&h, "expired", "expires_at", &host::days_ago(1));
    suspend_at(&h, "old", 8);
    suspend_at(&h, "recent", 6);
    let before = chrono::Utc::now();
    let report = run(&h, &options(true));
    assert_eq!(report.suspend.as_ref().unwrap()[0].result, ItemResult::Done(None));
    assert_eq!(names(report.suspend.as_ref().unwrap()), ["expired"]);
    assert_eq!(names(report.destroy.as_ref().unwrap()), ["old"]);
    assert_eq!(report.destroy.as_ref().unwrap()[0].result, ItemResult::Done(None));
    assert_eq!((report.processed(), report.errors()), (2, 0));

    assert_eq!(h.field("expired", "status").as_deref(), Some("suspended"));
    let at = host::parse_time(&h.field("expired", "suspended_at").unwrap());
    assert!(at >= before - chrono::Duration::seconds(1));
    assert!(backend_vm(&h.session(), "expired").unwrap().state.is_off());
    assert_eq!(h.field("old", "status").as_deref(), Some("destroyed"));
    assert_eq!(backend_vm(&h.session(), "old"), None);
    assert_eq!(h.field("recent", "status").as_deref(), Some("suspended"), "within the grace period");
    assert!(backend_vm(&h.session(), "recent").is_some());
    assert_eq!(h.field("current", "status").as_deref(), Some("active"));
    let mut ips = h.allocated_ips();
    ips.sort();
    assert_eq!(ips, ["10.0.0.10", "10.0.0.11", "10.0.0.13"], "old's address is released");
    // A second run finds nothing more to do.
    let again = run(&h, &options(true));
    assert_eq!((again.suspend.unwrap().len(), again.destroy.unwrap().len()), (0, 0));
}

#[test]
fn the_grace_period_comes_from_the_option_then_db_yaml() {
    let h = Host::with_db_yaml(&format!("{}gc_grace_days: 2\n", host::DB_YAML));
    h.create("s");
    suspend_at(&h, "s", 3);
    let report = run(&h, &options(false));
    assert_eq!(report.grace_days, 2);
    assert_eq!(names(report.destroy.as_ref().unwrap()), ["s"]);
    let report = run(&h, &GcOptions { grace_days: Some(4), ..options(false) });
    assert_eq!(report.grace_days, 4);
    assert!(report.destroy.unwrap().is_empty());
}

#[test]
fn a_guest_that_ignores_shutdown_is_forced_off() {
    let h = Host::new();
    h.create("stubborn");
    h.create("off");
    set(&h, "stubborn", "expires_at", &host::days_ago(1));
    set(&h, "off", "expires_at", &host::days_ago(1));
    power::kill(&h.session(), "off").unwrap();
    h.knobs("acpi: ignore\n");
    let report = run(&h, &GcOptions { stop_timeout: Duration::from_millis(300), ..options(true) });
    let suspend = report.suspend.unwrap();
    let by_name = |n: &str| suspend.iter().find(|i| i.name == n).unwrap().result.clone();
    assert!(matches!(by_name("stubborn"), ItemResult::Done(Some(ref note)) if note.starts_with("forced off after")), "{suspend:?}");
    assert_eq!(by_name("off"), ItemResult::Done(Some("was already stopped".into())));
    assert!(backend_vm(&h.session(), "stubborn").unwrap().state.is_off());
    assert_eq!(h.field("stubborn", "status").as_deref(), Some("suspended"));
    assert_eq!(h.field("off", "status").as_deref(), Some("suspended"));
}

#[test]
fn a_long_graceful_stop_is_told_every_interval_with_the_time_waited_and_the_bound() {
    let h = Host::new();
    h.create("slow");
    set(&h, "slow", "expires_at", &host::days_ago(1));
    h.knobs("shutdown_delay_ms: 700\n");
    let mut session = h.session();
    session.notice_every = Duration::from_millis(200);
    let mut lines = Vec::new();
    gc::run(&session, &options(true), &mut |l: &str| lines.push(l.to_string())).unwrap();
    let told: Vec<&String> = lines.iter().filter(|l| l.starts_with("Still waiting for slow to shut down: ")).collect();
    assert!((2..=4).contains(&told.len()), "about one line per 200 ms of a 700 ms wait: {lines:?}");
    assert!(told.iter().all(|l| l.ends_with(" s of 5 s")), "{told:?}");
    assert_eq!(h.field("slow", "status").as_deref(), Some("suspended"));
}

#[test]
fn one_failing_vm_does_not_stop_the_others() {
    let h = Host::new();
    h.create("a");
    h.create("b");
    set(&h, "a", "expires_at", &host::days_ago(1));
    set(&h, "b", "expires_at", &host::days_ago(1));
    h.knobs("acpi: ignore\nambiguous: power_off:lost\n");
    let report = run(&h, &GcOptions { stop_timeout: Duration::from_millis(200), suspend_only: true, ..options(true) });
    assert_eq!(report.destroy, None);
    let suspend = report.suspend.as_ref().unwrap();
    assert_eq!(names(suspend), ["a", "b"]);
    assert!(suspend.iter().all(|i| matches!(i.result, ItemResult::Failed(ref m) if m.contains("forcing off failed too"))), "{suspend:?}");
    assert_eq!((report.processed(), report.errors()), (0, 2));
    assert_eq!(h.field("a", "status").as_deref(), Some("active"), "not suspended when it could not be stopped");
}

#[test]
fn phases_can_be_chosen_but_not_both_skipped() {
    let h = Host::new();
    h.create("e");
    set(&h, "e", "expires_at", &host::days_ago(1));
    let err = gc::run(&h.session(), &GcOptions { suspend_only: true, destroy_only: true, ..options(true) }, &mut host::quiet()).unwrap_err();
    assert!(matches!(err, VerbError::Usage(_)));
    let report = run(&h, &GcOptions { destroy_only: true, ..options(true) });
    assert_eq!(report.suspend, None);
    assert_eq!(h.field("e", "status").as_deref(), Some("active"));
    let report = run(&h, &GcOptions { suspend_only: true, ..options(true) });
    assert_eq!(report.destroy, None);
    assert_eq!(h.field("e", "status").as_deref(), Some("suspended"));
}

#[test]
fn records_whose_vm_is_lost_are_destroyed_on_execute() {
    let h = Host::new();
    h.create("lost");
    h.create("here");
    h.edit_db(|db| db["vms"]["weird name"] = json!({"vm_name": "weird name", "status": "active", "ip_address": ""}));
    h.knobs("drift: vanish:lost\n");
    let report = run(&h, &options(false));
    assert_eq!(report.lost, [Item { name: "lost".into(), reason: "active, VM gone from the backend".into(), result: ItemResult::WouldDo }]);
    assert_eq!(h.field("lost", "status").as_deref(), Some("active"));
    let report = run(&h, &options(true));
    assert_eq!(report.lost[0].result, ItemResult::Done(None));
    assert_eq!(h.field("lost", "status").as_deref(), Some("destroyed"));
    assert_eq!(h.allocated_ips(), ["10.0.0.11"]);
    assert_eq!(h.field("here", "status").as_deref(), Some("active"));
    assert!(run(&h, &options(true)).lost.is_empty());
}

#[test]
fn an_unreachable_backend_looks_for_no_lost_records() {
    let h = Host::new();
    h.create("a");
    h.knobs("unreachable: true\n");
    let mut lines = Vec::new();
    let report = gc::run(&h.session(), &options(true), &mut |l: &str| lines.push(l.to_string())).unwrap();
    assert!(report.lost.is_empty());
    assert!(lines.iter().any(|l| l.contains("cannot list the backend")), "{lines:?}");
    assert!(!lines.iter().any(|l| l.starts_with("Removed")), "nothing to sweep, nothing said: {lines:?}");
    assert_eq!(h.field("a", "status").as_deref(), Some("active"));
}

#[test]
fn execute_undoes_dead_creates_clears_a_dead_lock_and_sweeps_temp_files() {
    let h = Host::new();
    h.create("ghost");
    let dead = testkit::dead_pid();
    h.edit_db(|db| {
        db["vms"].as_object_mut().unwrap().shift_remove("ghost");
        db["pending_creates"] = json!({"ghost": {"pid": dead, "pid_start_ticks": 1, "started_at": host::days_ago(0), "ip_address": "10.0.0.10", "ipv6_address": "", "vmid": 0}});
    });
    let temps = [h.mock_dir().join(format!(".vms.json.{dead}.0.tmp")), h.mock_dir().join(format!("metrics/.a.json.{dead}.3.tmp"))];
    std::fs::create_dir_all(h.mock_dir().join("metrics")).unwrap();
    let marker = h.paths.run_dir().join("provisioning.lock");
    std::fs::write(&marker, dead.to_string()).unwrap();
    for temp in &temps {
        std::fs::write(temp, "{}").unwrap();
    }
    let before = h.db();
    run(&h, &options(false));
    assert_eq!(h.db(), before, "a dry run undoes nothing");
    assert!(temps.iter().all(|t| t.exists()) && marker.exists(), "a dry run removes nothing");
    let mut lines = Vec::new();
    gc::run(&h.session(), &options(true), &mut |l: &str| lines.push(l.to_string())).unwrap();
    assert_eq!(h.pending(), Value::Null);
    assert_eq!(h.allocated_ips(), Vec::<String>::new());
    assert_eq!(backend_vm(&h.session(), "ghost"), None);
    assert!(lines.iter().any(|l| l.contains("Undoing the interrupted create of ghost")), "{lines:?}");
    assert!(temps.iter().all(|t| !t.exists()), "the killed writers' temp files are swept");
    assert!(lines.iter().any(|l| l == "Removed 2 temp file(s) left by killed writers"), "{lines:?}");
    assert!(!marker.exists(), "the dead process's provisioning lock is cleared");
    assert!(lines.iter().any(|l| l.starts_with("warning: ")), "{lines:?}");
}

#[test]
fn a_record_destroyed_while_suspending_stays_destroyed() {
    let h = Host::new();
    h.create("v");
    set(&h, "v", "expires_at", &host::days_ago(1));
    // The VM is gone from the backend, so the lost phase destroys it first.
    h.knobs("drift: vanish:v\n");
    let report = run(&h, &options(true));
    assert_eq!(names(&report.lost), ["v"]);
    assert!(report.suspend.unwrap().is_empty(), "a destroyed record is not suspended");
    assert_eq!(h.field("v", "status").as_deref(), Some("destroyed"));
}
