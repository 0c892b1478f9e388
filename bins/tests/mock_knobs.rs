//! Every knob of the mock backend with a valid value, checked by its effect
//! on what the executables report and on the mock's own state (the knobs
//! without a test elsewhere: faults.rs covers fail_step, crash_step, agent,
//! agent_delay_ms, unreachable, most of ambiguous and named drift).

mod common;
use common::{run_with_knobs as run, Root, WALLET};
use std::process::Output;
use std::time::{Duration, Instant};

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn status(root: &Root, name: &str) -> String {
    stdout(&run(root, "blockhost-vm-status", &[name], &[])).trim().to_string()
}

#[test]
fn latency_delays_every_call() {
    let root = Root::new();
    root.create("vm1");
    let started = Instant::now();
    let out = run(&root, "blockhost-vm-status", &["vm1"], &[("LATENCY_MS", "400")]);
    assert!(started.elapsed() >= Duration::from_millis(400), "{:?}", started.elapsed());
    assert_eq!(stdout(&out), "active\n");
}

#[test]
fn error_rate_one_fails_every_call_and_nothing_is_made() {
    let root = Root::new();
    root.create("vm1");
    let before = root.db_text();
    let out = run(&root, "blockhost-vm-status", &["vm1"], &[("ERROR_RATE", "1")]);
    assert_eq!((out.status.code(), stdout(&out).as_str()), (Some(0), "unknown\n"));
    assert_eq!(stderr(&out), "blockhost-vm-status: mock: injected transient failure in get\n");
    let out = run(&root, "blockhost-vm-create", &["vm2", "--owner-wallet", WALLET, "--apply"], &[("ERROR_RATE", "1")]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert_eq!(stdout(&out), "{\"status\": \"error\", \"error\": \"mock: injected transient failure in get\"}\n");
    assert_eq!(root.db_text(), before, "a failed create changes nothing");
    assert!(!root.mock_dir().join("domains/vm2.json").exists());
    assert_eq!(status(&root, "vm1"), "active", "the failures were injected, not real");
}

#[test]
fn error_rate_and_seed_make_a_repeatable_schedule() {
    let root = Root::new();
    root.create("vm1");
    let outcomes = |seed: &str| -> Vec<String> {
        (0..8).map(|_| stdout(&run(&root, "blockhost-vm-status", &["vm1"], &[("ERROR_RATE", "0.5"), ("SEED", seed)]))).collect()
    };
    let first = outcomes("7");
    assert_eq!(outcomes("7"), first, "the same seed fails the same calls");
    let all: Vec<String> = (1..=6).map(|s| stdout(&run(&root, "blockhost-vm-status", &["vm1"], &[("ERROR_RATE", "0.5"), ("SEED", &s.to_string())]))).collect();
    assert!(all.iter().any(|o| o == "active\n") && all.iter().any(|o| o == "unknown\n"), "a rate of 0.5 fails some seeds, not all: {all:?}");
}

#[test]
fn drift_pause_and_start_change_the_vm_behind_our_back() {
    let root = Root::new();
    root.create("vm1");
    assert_eq!(stdout(&run(&root, "blockhost-vm-kill", &["vm1"], &[])), "VM killed: vm1\n");
    assert_eq!(stdout(&run(&root, "blockhost-vm-status", &["vm1"], &[("DRIFT", "start:vm1")])), "active\n");
    assert_eq!(status(&root, "vm1"), "active", "the drift is persisted in the mock's state");
    assert_eq!(stdout(&run(&root, "blockhost-vm-status", &["vm1"], &[("DRIFT", "pause:vm1")])), "suspended\n");
    let domain = std::fs::read_to_string(root.mock_dir().join("domains/vm1.json")).unwrap();
    assert!(domain.contains("\"paused\""), "{domain}");
}

#[test]
fn drift_rate_one_stops_or_removes_a_vm_on_listing() {
    let root = Root::new();
    root.create("vm1");
    root.create("vm2");
    let rows = stdout(&run(&root, "blockhost-vm-list", &[], &[("DRIFT_RATE", "1")]));
    assert_eq!(rows.lines().count(), 3, "{rows}");
    let active = rows.lines().filter(|l| l.contains("\tactive\t")).count();
    assert_eq!(active, 1, "exactly one VM drifted: {rows}");
    let domains = ["vm1", "vm2"].iter().filter(|n| root.mock_dir().join(format!("domains/{n}.json")).exists()).count();
    let drifted_by_stopping = rows.lines().any(|l| l.contains("\tsuspended\t"));
    assert_eq!(domains, if drifted_by_stopping { 2 } else { 1 }, "{rows}");
}

#[test]
fn ambiguous_shutdown_and_power_off_are_settled_by_reading_back() {
    let root = Root::new();
    root.create("vm1");
    let out = run(&root, "blockhost-vm-stop", &["vm1"], &[("AMBIGUOUS", "shutdown")]);
    assert_eq!((out.status.code(), stdout(&out).as_str()), (Some(0), "VM stopped: vm1\n"), "{}", stderr(&out));
    assert_eq!(status(&root, "vm1"), "suspended");
    run(&root, "blockhost-vm-start", &["vm1"], &[]);

    let out = run(&root, "blockhost-vm-kill", &["vm1"], &[("AMBIGUOUS", "power_off:lost")]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        stderr(&out),
        "blockhost-vm-kill: mock: power_off timed out (injected, not performed); reading the state back did not confirm the change\n"
    );
    assert_eq!(status(&root, "vm1"), "active", "a lost power-off left the VM running");
    let out = run(&root, "blockhost-vm-kill", &["vm1"], &[("AMBIGUOUS", "power_off")]);
    assert_eq!((out.status.code(), stdout(&out).as_str()), (Some(0), "VM killed: vm1\n"));
    assert_eq!(status(&root, "vm1"), "suspended");

    let out = run(&root, "blockhost-vm-stop", &["vm1"], &[]);
    assert_eq!(stdout(&out), "VM already stopped: vm1\n");
    run(&root, "blockhost-vm-start", &["vm1"], &[]);
    let out = run(&root, "blockhost-vm-stop", &["vm1", "--timeout", "1"], &[("AMBIGUOUS", "shutdown:lost")]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("did not shut down within 1 s"), "{}", stderr(&out));
    assert_eq!(status(&root, "vm1"), "active");
}

#[test]
fn shutdown_delay_is_waited_for() {
    let root = Root::new();
    root.create("vm1");
    let started = Instant::now();
    let out = run(&root, "blockhost-vm-stop", &["vm1", "--timeout", "30"], &[("SHUTDOWN_DELAY_MS", "700")]);
    assert!(started.elapsed() >= Duration::from_millis(700), "returned before the guest powered off: {:?}", started.elapsed());
    assert_eq!((out.status.code(), stdout(&out).as_str()), (Some(0), "VM stopped: vm1\n"), "{}", stderr(&out));
    assert_eq!(status(&root, "vm1"), "suspended");
}

#[test]
fn destroy_after_a_crashed_create_removes_what_it_made() {
    let root = Root::new();
    root.create("base");
    let out = run(&root, "blockhost-vm-create", &["half", "--owner-wallet", WALLET, "--apply"], &[("CRASH_STEP", "start")]);
    assert_eq!(out.status.code(), None, "killed itself");
    assert!(root.mock_dir().join("domains/half.json").exists() && root.db_text().contains("\"pending_creates\""));
    let out = run(&root, "blockhost-vm-destroy", &["half"], &[]);
    assert_eq!((out.status.code(), stdout(&out).as_str()), (Some(0), "VM destroyed: half\n"), "{}", stderr(&out));
    assert!(!root.mock_dir().join("domains/half.json").exists(), "domain removed");
    assert!(!root.mock_dir().join("seeds/half").exists(), "seed removed");
    let db = root.db();
    assert!(db.get("pending_creates").is_none(), "journal entry removed: {db}");
    assert!(db["vms"].get("half").is_none(), "no record was ever committed: {db}");
    assert_eq!(db["allocated_ips"], serde_json::json!(["10.20.0.10"]), "its address is free again");
    assert_eq!(root.create("again")["ip"], "10.20.0.11");
}
