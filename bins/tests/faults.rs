//! Injected backend faults (the mock's `BLOCKHOST_MOCK_*` knobs): failed and
//! killed create steps, a dead guest agent, ambiguous writes, an unreachable
//! hypervisor, SIGTERM during a create, and VMs drifting behind our back.

mod common;
use common::{bin_path, root_with_due_vms, run_with_knobs as run, Root, WALLET};
use serde_json::{json, Value};
use std::io::{BufRead, BufReader, Read};
use std::os::unix::process::ExitStatusExt;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

const STEPS: [&str; 6] = ["reserve", "bootstrap", "spawn", "start", "wait_agent", "register"];

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// A root holding one VM `base` (10.20.0.10, 2001:db8:7::3), so vms.json exists.
fn base_root() -> Root {
    let root = Root::new();
    let result = root.create("base");
    assert_eq!((result["ip"].as_str(), result["ipv6"].as_str()), (Some("10.20.0.10"), Some("2001:db8:7::3")));
    root
}

fn create(root: &Root, name: &str, knobs: &[(&str, &str)]) -> Output {
    run(root, "blockhost-vm-create", &[name, "--owner-wallet", WALLET, "--apply"], knobs)
}

fn result_json(out: &Output) -> Value {
    let stdout = text(&out.stdout);
    serde_json::from_str(stdout.lines().last().expect("a result line")).expect("result JSON")
}

/// The contract's error line as printed on stdout (Python `json.dumps` spacing).
fn error_line(message: &str) -> String {
    format!("{{\"status\": \"error\", \"error\": {}}}\n", serde_json::to_string(message).unwrap())
}

fn domain(root: &Root, name: &str) -> std::path::PathBuf {
    root.mock_dir().join("domains").join(format!("{name}.json"))
}

fn seeds(root: &Root, name: &str) -> std::path::PathBuf {
    root.mock_dir().join("seeds").join(name)
}

fn has_pending(root: &Root, name: &str) -> bool {
    root.db().get("pending_creates").and_then(|p| p.get(name)).is_some()
}

fn lock_file(root: &Root) -> std::path::PathBuf {
    root.path("run/blockhost/provisioning.lock")
}

fn allocated(root: &Root, key: &str) -> Vec<String> {
    root.db()[key].as_array().unwrap().iter().map(|v| v.as_str().unwrap().to_string()).collect()
}

/// Nothing of `name` anywhere: no record, no pending entry, no backend VM, no
/// staged seed, only `base`'s addresses allocated, no provisioning lock.
fn assert_no_trace(root: &Root, name: &str) {
    let db = root.db();
    assert!(db["vms"].get(name).is_none(), "{name} has a record: {}", root.db_text());
    assert!(db.get("pending_creates").is_none(), "pending entry left: {}", root.db_text());
    assert!(!domain(root, name).exists(), "{name} has a domain file");
    assert!(!seeds(root, name).exists(), "{name} has a seed directory");
    assert_eq!(allocated(root, "allocated_ips"), ["10.20.0.10"]);
    assert_eq!(allocated(root, "allocated_ipv6"), ["2001:db8:7::3"]);
    assert!(!lock_file(root).exists(), "provisioning lock left");
}

fn assert_clean_failure(out: &Output, code: i32, message: &str) {
    assert_eq!(out.status.code(), Some(code), "stderr: {}", text(&out.stderr));
    assert_eq!(text(&out.stdout), error_line(message));
    let stderr = text(&out.stderr);
    assert_eq!(stderr.lines().last(), Some(format!("blockhost-vm-create: {message}").as_str()), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
}

fn fail_at(step: &str) {
    let root = base_root();
    let before = root.db_text();
    let out = create(&root, "victim", &[("FAIL_STEP", step)]);
    assert_clean_failure(&out, 1, &format!("mock: injected failure at create step {step}"));
    assert_no_trace(&root, "victim");
    assert_eq!(root.db_text(), before, "the database must be byte-identical after a failed create at {step}");
    // The name is free for a later create, which gets the address the failed one had.
    let again = create(&root, "victim", &[]);
    assert!(again.status.success(), "{}", text(&again.stderr));
    assert_eq!(result_json(&again)["ip"], "10.20.0.11");
}

#[test]
fn fail_at_reserve() {
    fail_at("reserve");
}

#[test]
fn fail_at_bootstrap() {
    fail_at("bootstrap");
}

#[test]
fn fail_at_spawn() {
    fail_at("spawn");
}

#[test]
fn fail_at_start() {
    fail_at("start");
}

#[test]
fn fail_at_wait_agent() {
    fail_at("wait_agent");
}

#[test]
fn fail_at_register() {
    fail_at("register");
}

/// Kills a create of `crashed` at `step`; checks it died by SIGKILL leaving its journal entry.
fn crash_at(root: &Root, step: &str) {
    let out = create(root, "crashed", &[("CRASH_STEP", step)]);
    assert_eq!(out.status.signal(), Some(9), "{step}: {:?} {}", out.status, text(&out.stderr));
    assert!(out.stdout.is_empty() || !text(&out.stdout).contains("\"ok\""), "{step}");
    // Everything from the reservation on is journalled; a kill before it leaves nothing.
    assert_eq!(has_pending(root, "crashed"), step != "reserve", "{step}: {}", root.db_text());
    let staged = !matches!(step, "reserve" | "bootstrap");
    assert_eq!(seeds(root, "crashed").exists(), staged, "{step}: seed directory");
    let defined = matches!(step, "start" | "wait_agent" | "register");
    assert_eq!(domain(root, "crashed").exists(), defined, "{step}: domain file");
}

fn crash_then_create(step: &str) {
    let root = base_root();
    crash_at(&root, step);
    let next = create(&root, "next", &[]);
    assert!(next.status.success(), "{step}: {}", text(&next.stderr));
    let result = result_json(&next);
    assert_eq!(result["ip"], "10.20.0.11", "{step}: the crashed create's address is free again");
    assert_eq!(result["ipv6"], "2001:db8:7::4", "{step}");
    let db = root.db();
    assert!(db["vms"].get("crashed").is_none(), "{step}");
    assert!(db.get("pending_creates").is_none(), "{step}: {}", root.db_text());
    assert!(!domain(&root, "crashed").exists(), "{step}");
    assert!(!seeds(&root, "crashed").exists(), "{step}");
    assert_eq!(allocated(&root, "allocated_ips"), ["10.20.0.10", "10.20.0.11"], "{step}");
    assert!(!lock_file(&root).exists(), "{step}");
    let reuse = create(&root, "crashed", &[]);
    assert!(reuse.status.success(), "{step}: the name is usable again: {}", text(&reuse.stderr));
    assert_eq!(result_json(&reuse)["ip"], "10.20.0.12");
}

fn crash_then_gc(step: &str) {
    let root = base_root();
    crash_at(&root, step);
    let gc = run(&root, "blockhost-vm-gc", &["--execute"], &[]);
    assert_eq!(gc.status.code(), Some(0), "{step}: {}{}", text(&gc.stdout), text(&gc.stderr));
    assert_no_trace(&root, "crashed");
    let reuse = create(&root, "crashed", &[]);
    assert!(reuse.status.success(), "{step}: {}", text(&reuse.stderr));
    assert_eq!(result_json(&reuse)["ip"], "10.20.0.11", "{step}: lowest free address");
    assert_eq!(result_json(&reuse)["ipv6"], "2001:db8:7::4", "{step}");
}

#[test]
fn crash_at_each_step_is_undone_by_the_next_create() {
    for step in STEPS {
        crash_then_create(step);
    }
}

#[test]
fn crash_at_each_step_is_undone_by_gc() {
    for step in STEPS {
        crash_then_gc(step);
    }
}

#[test]
fn dead_guest_agent_fails_within_the_timeout_and_leaves_nothing() {
    let root = Root::new();
    let yaml = std::fs::read_to_string(root.path("etc/blockhost/db.yaml")).unwrap();
    root.write("etc/blockhost/db.yaml", &format!("{yaml}agent_timeout_seconds: 1\n"));
    root.create("base");
    let before = root.db_text();
    let started = Instant::now();
    let out = create(&root, "mute", &[("AGENT", "dead")]);
    let elapsed = started.elapsed();
    // Generous upper bound (a loaded machine), exact lower one: it did wait.
    assert!(elapsed < Duration::from_secs(15), "took {elapsed:?}");
    assert!(elapsed >= Duration::from_millis(900), "gave up too early: {elapsed:?}");
    assert_eq!(out.status.code(), Some(1));
    let error = result_json(&out);
    assert_eq!(error["status"], "error");
    assert_eq!(
        error["error"],
        "the guest agent of mute did not answer within 1 s (db.yaml agent_timeout_seconds); this backend keeps no console log of the guest"
    );
    assert!(text(&out.stderr).lines().last().unwrap().contains("guest agent"));
    assert_no_trace(&root, "mute");
    assert_eq!(root.db_text(), before);
}

#[test]
fn ambiguous_spawn_that_acted_is_confirmed_by_read_back() {
    let root = base_root();
    let out = create(&root, "maybe", &[("AMBIGUOUS", "spawn")]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let result = result_json(&out);
    assert_eq!(result["status"], "ok");
    assert_eq!(result["ip"], "10.20.0.11");
    assert_eq!(root.db()["vms"]["maybe"]["status"], "active");
    assert!(domain(&root, "maybe").exists());
    let status = run(&root, "blockhost-vm-status", &["maybe"], &[]);
    assert_eq!(text(&status.stdout), "active\n");
}

#[test]
fn ambiguous_spawn_that_was_lost_fails_and_leaves_nothing() {
    let root = base_root();
    let before = root.db_text();
    let out = create(&root, "lost", &[("AMBIGUOUS", "spawn:lost")]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    let error = result_json(&out);
    assert_eq!(error["status"], "error");
    let message = error["error"].as_str().unwrap();
    assert!(message.contains("spawn timed out") && message.contains("did not confirm"), "{message}");
    assert_no_trace(&root, "lost");
    assert_eq!(root.db_text(), before);
}

#[test]
fn failed_rollback_is_left_journalled_and_undone_by_gc() {
    let root = base_root();
    let before = root.db_text();
    let out = create(&root, "stuck", &[("AMBIGUOUS", "start:lost,terminate:lost")]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    let message = result_json(&out)["error"].as_str().unwrap().to_string();
    assert!(message.starts_with("mock: start timed out (injected, not performed)"), "{message}");
    assert!(message.contains("; cleanup also failed: mock: terminate timed out"), "{message}");
    assert!(message.ends_with("(left for the next create or gc to undo)"), "{message}");
    assert!(has_pending(&root, "stuck"), "the create stays journalled: {}", root.db_text());
    assert!(domain(&root, "stuck").exists());
    assert_eq!(allocated(&root, "allocated_ips"), ["10.20.0.10", "10.20.0.11"]);
    let gc = run(&root, "blockhost-vm-gc", &["--execute"], &[]);
    assert_eq!(gc.status.code(), Some(0), "{}", text(&gc.stderr));
    assert!(text(&gc.stderr).contains("Undoing the interrupted create of stuck"), "{}", text(&gc.stderr));
    assert_no_trace(&root, "stuck");
    assert_eq!(root.db_text(), before);
}

#[test]
fn lost_spawn_and_lost_terminate_leave_no_staged_bootstrap() {
    let root = base_root();
    let before = root.db_text();
    let out = create(&root, "ghost", &[("AMBIGUOUS", "spawn:lost,terminate:lost")]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    let gc = run(&root, "blockhost-vm-gc", &["--execute"], &[]);
    assert_eq!(gc.status.code(), Some(0));
    assert_eq!(root.db_text(), before);
    assert_no_trace(&root, "ghost");
}

#[test]
fn ambiguous_terminate_on_destroy_is_confirmed_by_read_back() {
    let root = base_root();
    let out = run(&root, "blockhost-vm-destroy", &["base"], &[("AMBIGUOUS", "terminate")]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "VM destroyed: base\n");
    let db = root.db();
    assert_eq!(db["vms"]["base"]["status"], "destroyed");
    assert!(db["vms"]["base"]["destroyed_at"].is_string());
    assert_eq!(db["allocated_ips"], json!([]));
    assert!(!domain(&root, "base").exists());
}

#[test]
fn unreachable_hypervisor_is_never_mistaken_for_a_destroyed_vm() {
    let root = root_with_due_vms();
    let before = root.snapshot();
    let down = [("UNREACHABLE", "true")];

    for name in ["up", "expired", "overdue", "neverheardof"] {
        let out = run(&root, "blockhost-vm-status", &[name], &down);
        assert_eq!(out.status.code(), Some(0), "{name}");
        assert_eq!(text(&out.stdout), "unknown\n", "{name}");
    }

    let list = run(&root, "blockhost-vm-list", &["--json"], &down);
    assert_eq!(list.status.code(), Some(0), "{}", text(&list.stderr));
    let rows: Value = serde_json::from_slice(&list.stdout).unwrap();
    let statuses: Vec<(&str, &str)> =
        rows.as_array().unwrap().iter().map(|r| (r["name"].as_str().unwrap(), r["status"].as_str().unwrap())).collect();
    assert_eq!(statuses, [("up", "unknown"), ("expired", "unknown"), ("overdue", "unknown")]);

    let gc = run(&root, "blockhost-vm-gc", &["--execute"], &down);
    assert_eq!(gc.status.code(), Some(1), "{}{}", text(&gc.stdout), text(&gc.stderr));
    let report = text(&gc.stdout);
    assert!(report.contains("  expired: FAILED (expired 2020-01-01T00:00:00+00:00)"), "{report}");
    assert!(report.contains("  overdue: FAILED (suspended 2020-01-01T00:00:00+00:00)"), "{report}");
    assert!(report.contains("Processed: 0, errors: 2"), "{report}");

    let destroy = run(&root, "blockhost-vm-destroy", &["up"], &down);
    assert_eq!(destroy.status.code(), Some(1));
    assert_eq!(text(&destroy.stdout), "");
    assert_eq!(text(&destroy.stderr).lines().count(), 1, "{}", text(&destroy.stderr));

    assert!(root.snapshot() == before, "nothing may change while the hypervisor is unreachable");
    let db = root.db();
    assert_eq!(db["vms"]["up"]["status"], "active");
    assert_eq!(db["vms"]["expired"]["status"], "active");
    assert_eq!(db["vms"]["overdue"]["status"], "suspended");
}

#[test]
fn sigterm_while_waiting_for_the_agent_rolls_back_and_exits_143() {
    let root = base_root();
    let before = root.db_text();
    let mut cmd = Command::new(bin_path("blockhost-vm-create"));
    cmd.args(["slow", "--owner-wallet", WALLET, "--apply"])
        .env("BLOCKHOST_ROOT", root.dir.path())
        .env("BLOCKHOST_PROVIDER", "mock")
        .env("BLOCKHOST_MOCK_AGENT_DELAY_MS", "120000")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (key, _) in std::env::vars() {
        if key.starts_with("BLOCKHOST_MOCK_") && key != "BLOCKHOST_MOCK_AGENT_DELAY_MS" {
            cmd.env_remove(key);
        }
    }
    let mut child = cmd.spawn().unwrap();
    let mut stderr = BufReader::new(child.stderr.take().unwrap());
    let mut seen = String::new();
    loop {
        let mut line = String::new();
        assert!(stderr.read_line(&mut line).unwrap() > 0, "create ended before waiting for the agent: {seen}");
        seen.push_str(&line);
        if line.starts_with("Waiting up to") {
            break;
        }
    }
    assert!(has_pending(&root, "slow"), "the create is under way");
    std::thread::sleep(Duration::from_millis(300));
    let killed = Instant::now();
    let kill = Command::new("kill").args(["-TERM", &child.id().to_string()]).status().unwrap();
    assert!(kill.success());
    let mut rest = String::new();
    stderr.read_to_string(&mut rest).unwrap();
    let mut stdout = String::new();
    child.stdout.take().unwrap().read_to_string(&mut stdout).unwrap();
    let status = child.wait().unwrap();
    // Far from the agent's 120 s: it stopped on the signal, not when the wait ended.
    assert!(killed.elapsed() < Duration::from_secs(30), "did not stop promptly: {:?}", killed.elapsed());
    assert_eq!(status.code(), Some(143), "{seen}{rest}");
    assert_eq!(stdout, error_line("interrupted by signal 15"));
    assert_eq!(rest.lines().last(), Some("blockhost-vm-create: interrupted by signal 15"), "{rest}");
    assert_no_trace(&root, "slow");
    assert_eq!(root.db_text(), before);
}

#[test]
fn vanished_vm_reads_as_destroyed_but_its_record_stays() {
    let root = base_root();
    root.create("other");
    let drift = [("DRIFT", "vanish:base")];
    let status = run(&root, "blockhost-vm-status", &["base"], &drift);
    assert_eq!((status.status.code(), text(&status.stdout)), (Some(0), "destroyed\n".to_string()));
    let list = run(&root, "blockhost-vm-list", &["--json"], &drift);
    let rows: Value = serde_json::from_slice(&list.stdout).unwrap();
    assert_eq!(rows[0]["name"], "base");
    assert_eq!(rows[0]["status"], "destroyed");
    assert_eq!(rows[1]["status"], "active");
    assert_eq!(root.db()["vms"]["base"]["status"], "active", "the database is not rewritten by a read");
    assert!(!domain(&root, "base").exists());
}

#[test]
fn stopped_vm_reads_as_suspended() {
    let root = base_root();
    let status = run(&root, "blockhost-vm-status", &["base"], &[("DRIFT", "stop:base")]);
    assert_eq!((status.status.code(), text(&status.stdout)), (Some(0), "suspended\n".to_string()));
    let list = run(&root, "blockhost-vm-list", &["--json"], &[]);
    let rows: Value = serde_json::from_slice(&list.stdout).unwrap();
    assert_eq!(rows[0]["status"], "suspended");
    assert_eq!(root.db()["vms"]["base"]["status"], "active");
}

#[test]
fn a_closed_stderr_never_turns_an_interrupted_create_into_a_panic() {
    let root = base_root();
    let mut cmd = root.std_cmd("blockhost-vm-create");
    cmd.args(["deaf", "--owner-wallet", WALLET, "--apply"])
        .env("BLOCKHOST_MOCK_AGENT_DELAY_MS", "120000")
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    let mut stderr = BufReader::new(child.stderr.take().unwrap());
    let mut line = String::new();
    while !line.starts_with("Waiting up to") {
        line.clear();
        assert!(stderr.read_line(&mut line).unwrap() > 0, "create ended early");
    }
    drop(stderr);
    let kill = Command::new("kill").args(["-TERM", &child.id().to_string()]).status().unwrap();
    assert!(kill.success());
    assert_eq!(child.wait().unwrap().code(), Some(143), "rollback messages to a closed pipe are dropped, not fatal");
    assert_no_trace(&root, "deaf");
}
