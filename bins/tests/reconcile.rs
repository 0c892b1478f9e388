//! `blockhost-vm-gc --reconcile` after a simulated host restart on the mock backend
//! (its `reboot:<vm>` drift: the VM off and its host route gone; `start:<vm>`
//! after it: autostarted by the hypervisor): exact lines and exit codes, a
//! second run that changes nothing and says so, the bounds, and the verb
//! in-process with its typed outcomes.

mod common;
use common::{run_with_knobs, set_record_field, Root};
use provisioner::host::paths::HostPaths;
use provisioner::verbs::reconcile::{self, Bounds, Power, VmResult};
use provisioner::provider::PowerState;
use provisioner::verbs::Session;
use std::time::{Duration, Instant};

/// Active `vm1` and `vm2`, suspended `vm3` (off), destroyed `vm4`.
fn root() -> Root {
    let root = Root::new();
    for name in ["vm1", "vm2", "vm3", "vm4"] {
        root.create(name);
    }
    assert_eq!(root.run("blockhost-vm-kill", &["vm3"]).code, 0);
    set_record_field(&root, "vm3", "status", serde_json::json!("suspended"));
    set_record_field(&root, "vm3", "suspended_at", serde_json::json!("2026-01-01T00:00:00+00:00"));
    assert_eq!(root.run("blockhost-vm-destroy", &["vm4"]).code, 0);
    root
}

fn ipv6(root: &Root, vm: &str) -> String {
    let v6 = root.db()["vms"][vm]["ipv6_address"].as_str().unwrap_or_default().to_string();
    assert!(!v6.is_empty(), "{vm} has an IPv6 address");
    v6
}

/// The host restarted: every VM off and without its route; libvirt autostarted `vm2` and `vm3`.
const REBOOT: &str = "reboot:vm1, reboot:vm2, reboot:vm3, start:vm2, start:vm3";

fn run(root: &Root, args: &[&str], knobs: &[(&str, &str)]) -> (i32, String, String) {
    let args: Vec<&str> = std::iter::once("--reconcile").chain(args.iter().copied()).collect();
    let out = run_with_knobs(root, "blockhost-vm-gc", &args, knobs);
    (out.status.code().unwrap_or(-1), String::from_utf8(out.stdout).unwrap(), String::from_utf8(out.stderr).unwrap())
}

/// The backend's power state of `vm`, read in-process (no knobs: no drift).
fn power(root: &Root, vm: &str) -> Option<PowerState> {
    let session = Session::open(HostPaths::with_root(root.dir.path()), true, false).unwrap();
    session.backend.get(vm).unwrap().map(|v| v.state)
}

#[test]
fn a_restarted_host_is_reconciled_and_a_second_run_changes_nothing() {
    let root = root();
    let v6 = ipv6(&root, "vm2");
    let (code, stdout, stderr) = run(&root, &[], &[("DRIFT", REBOOT)]);
    assert_eq!(
        stdout,
        format!(
            "vm1: active, started\n\
             vm2: active, running, restored host route {v6}/128\n\
             vm3: suspended, stopped\n\
             vm4: destroyed, not present, nothing to do\n\
             Reconciled 4 VM(s): 3 changed, 1 unchanged, 0 failed\n"
        )
    );
    assert_eq!((code, stderr.as_str()), (0, ""));
    let states: Vec<_> = ["vm1", "vm2", "vm3", "vm4"].iter().map(|vm| power(&root, vm)).collect();
    assert_eq!(states, [Some(PowerState::Running), Some(PowerState::Running), Some(PowerState::ShutOff), None]);

    let db_before = root.db_text();
    let (code, stdout, stderr) = run(&root, &[], &[]);
    assert_eq!(
        stdout,
        "vm1: active, running, nothing to do\n\
         vm2: active, running, nothing to do\n\
         vm3: suspended, off, nothing to do\n\
         vm4: destroyed, not present, nothing to do\n\
         Reconciled 4 VM(s): 0 changed, 4 unchanged, 0 failed\n"
    );
    assert_eq!((code, stderr.as_str()), (0, ""));
    assert_eq!(root.db_text(), db_before, "reconcile only reads the database");
}

#[test]
fn an_empty_database_is_reconciled() {
    let root = Root::new();
    let (code, stdout, stderr) = run(&root, &[], &[]);
    assert_eq!((code, stdout.as_str(), stderr.as_str()), (0, "Reconciled 0 VM(s): 0 changed, 0 unchanged, 0 failed\n", ""));
}

#[test]
fn a_vm_that_cannot_be_reconciled_fails_alone_with_exit_1() {
    let root = root();
    let (code, stdout, stderr) = run(&root, &[], &[("DRIFT", "vanish:vm1, pause:vm2, start:vm3")]);
    assert_eq!(
        stdout,
        "vm1: active, FAILED: not present in the backend (blockhost-vm-gc --execute destroys its record)\n\
         vm2: active, FAILED: is paused, neither running nor off; left as it is\n\
         vm3: suspended, stopped\n\
         vm4: destroyed, not present, nothing to do\n\
         Reconciled 4 VM(s): 1 changed, 1 unchanged, 2 failed\n"
    );
    assert_eq!((code, stderr.as_str()), (1, ""));
}

#[test]
fn a_running_destroyed_vm_is_forced_off() {
    let root = Root::new();
    root.create("vm1");
    set_record_field(&root, "vm1", "status", serde_json::json!("destroyed"));
    let (code, stdout, _) = run(&root, &[], &[]);
    assert_eq!(
        (code, stdout.as_str()),
        (0, "vm1: destroyed, forced off\nReconciled 1 VM(s): 1 changed, 0 unchanged, 0 failed\n")
    );
    assert_eq!(power(&root, "vm1"), Some(PowerState::ShutOff));
}

#[test]
fn a_guest_ignoring_shutdown_is_forced_off_within_its_bound() {
    let root = root();
    let started = Instant::now();
    let (code, stdout, _) = run(&root, &["--vm-timeout", "2"], &[("DRIFT", "start:vm3"), ("ACPI", "ignore")]);
    assert!(started.elapsed() < Duration::from_secs(10), "took {:?}", started.elapsed());
    assert_eq!(code, 0, "{stdout}");
    assert!(stdout.contains("\nvm3: suspended, forced off\n"), "{stdout}");
    assert_eq!(power(&root, "vm3"), Some(PowerState::ShutOff));
}

#[test]
fn vms_not_reached_within_the_overall_bound_fail_untouched() {
    let root = root();
    let started = Instant::now();
    let (code, stdout, _) = run(&root, &["--timeout", "1"], &[("DRIFT", REBOOT), ("LATENCY_MS", "700")]);
    assert!(started.elapsed() < Duration::from_secs(20), "took {:?}", started.elapsed());
    assert_eq!(code, 1, "{stdout}");
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 5, "{stdout}");
    assert_eq!(lines[2], "vm3: suspended, FAILED: not reached: the overall bound of 1 s had passed");
    assert_eq!(lines[3], "vm4: destroyed, FAILED: not reached: the overall bound of 1 s had passed");
    assert_eq!(power(&root, "vm3"), Some(PowerState::Running), "vm3 was not touched");
}

#[test]
fn bounds_of_zero_are_usage_errors() {
    let root = Root::new();
    for args in [["--vm-timeout", "0"], ["--timeout", "0"]] {
        let (code, stdout, stderr) = run(&root, &args, &[]);
        assert_eq!((code, stdout.as_str()), (2, ""), "{args:?}");
        assert!(stderr.starts_with("blockhost-vm-gc: "), "{stderr}");
    }
}

#[test]
fn in_process_the_verb_returns_each_vms_typed_outcome() {
    let root = root();
    root.write("var/lib/blockhost/mock/knobs.yaml", &format!("drift: {REBOOT}\n"));
    let session = Session::open(HostPaths::with_root(root.dir.path()), true, false).unwrap();
    let outcomes = reconcile::run(&session, Bounds::default()).unwrap();
    let v6 = ipv6(&root, "vm2");
    let got: Vec<(&str, &str, &VmResult)> = outcomes.iter().map(|o| (o.name.as_str(), o.status.as_str(), &o.result)).collect();
    let done = |power, restored: Vec<String>| VmResult::Reconciled { power, restored };
    assert_eq!(
        got,
        [
            ("vm1", "active", &done(Power::Started, vec![])),
            ("vm2", "active", &done(Power::WasRunning, vec![format!("host route {v6}/128")])),
            ("vm3", "suspended", &done(Power::Stopped, vec![])),
            ("vm4", "destroyed", &done(Power::Absent, vec![])),
        ]
    );
    assert_eq!(outcomes.iter().map(|o| o.changed()).collect::<Vec<_>>(), [true, true, true, false]);
    root.remove("var/lib/blockhost/mock/knobs.yaml");
    let session = Session::open(HostPaths::with_root(root.dir.path()), true, false).unwrap();
    let again = reconcile::run(&session, Bounds::default()).unwrap();
    assert!(again.iter().all(|o| !o.changed() && !o.failed()), "{again:?}");
}
