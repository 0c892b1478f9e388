//! The contract, byte for byte: stdout, stderr and exit codes of every verb on
//! the mock backend in a scratch root.

mod common;
use common::{set_record_field, Root, WALLET};
use serde_json::{json, Value};

fn result_json(vm: &str, ip: &str, ipv6: &str, vmid: Value, nft: Value, user: &str) -> String {
    provisioner::host::pyjson::dumps(&json!({
        "status": "ok", "vm_name": vm, "ip": ip, "ipv6": ipv6, "vmid": vmid, "nft_token_id": nft, "username": user
    }))
}

fn days_ago(days: i64) -> Value {
    json!(provisioner::host::timestamp::format(&(chrono_now() - chrono::Duration::days(days))))
}

fn chrono_now() -> provisioner::host::timestamp::Timestamp {
    provisioner::host::timestamp::now()
}

#[test]
fn create_prints_the_sentinel_line_then_the_bare_json() {
    let root = Root::new();
    let run = root.run("blockhost-vm-create", &["vm1", "--owner-wallet", WALLET, "--apply"]);
    let json = result_json("vm1", "10.20.0.10", "2001:db8:7::3", json!("vm1"), Value::Null, "admin");
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(run.stdout, format!("BLOCKHOST_RESULT: {json}\n{json}\n"));
    assert!(run.stderr.contains("VM vm1 created"));
    let record = &root.db()["vms"]["vm1"];
    let keys: Vec<&str> = record.as_object().unwrap().keys().map(String::as_str).collect();
    assert_eq!(
        keys,
        ["vm_name", "vmid", "ip_address", "ipv6_address", "expires_at", "owner", "status", "created_at", "purpose", "wallet_address", "username", "network_mode"]
    );
    assert_eq!(record["owner"], WALLET);
    assert_eq!(record["wallet_address"], WALLET);
    assert_eq!(record["network_mode"], "broker");
    assert_eq!(record["vmid"], 0);
    let created = provisioner::host::timestamp::parse(record["created_at"].as_str().unwrap()).unwrap();
    let expires = provisioner::host::timestamp::parse(record["expires_at"].as_str().unwrap()).unwrap();
    assert_eq!(expires - created, chrono::Duration::days(30));
    assert_eq!(root.db()["allocated_ips"], json!(["10.20.0.10"]));
    assert_eq!(root.db()["allocated_ipv6"], json!(["2001:db8:7::3"]));
    assert!(!root.db_text().ends_with('\n'), "no trailing newline, like json.dump");
    assert!(!root.path("run/blockhost/provisioning.lock").exists());
}

#[test]
fn dry_run_reports_and_allocates_nothing() {
    let root = Root::new();
    root.create("vm1");
    let before = root.db_text();
    let run = root.run("blockhost-vm-create", &["vm2", "--owner-wallet", WALLET]);
    let json = result_json("vm2", "10.20.0.11", "2001:db8:7::4", json!("vm2"), Value::Null, "admin");
    assert_eq!((run.code, run.stdout), (0, format!("BLOCKHOST_RESULT: {json}\n{json}\n")));
    assert!(run.stderr.contains("Dry run"));
    assert_eq!(root.db_text(), before);
    assert!(!root.mock_dir().join("domains/vm2.json").exists());
}

#[test]
fn create_options_legacy_flags_and_numeric_vmids() {
    let root = Root::new();
    root.write("etc/blockhost/db.yaml", "ip_pool: {network: 10.9.0.0/16, start: 10.9.1.1, end: 10.9.1.9, gateway: 10.9.0.1}\nvmid_range: {start: 100, end: 199}\n");
    let run = root.run(
        "blockhost-vm-create",
        &["vm1", "--owner-wallet", WALLET, "--apply", "--nft-token-id", "42", "--username", "bob", "--expiry-days", "5",
          "--cpu", "2", "--memory", "1024", "--disk", "10", "--no-mint", "--skip-mint", "--user-signature", "0xsig", "--public-secret", "libpam-web3:x:1"],
    );
    let json = result_json("vm1", "10.9.1.1", "2001:db8:7::3", json!(100), json!(42), "bob");
    assert_eq!((run.code, run.stdout), (0, format!("BLOCKHOST_RESULT: {json}\n{json}\n")), "{}", run.stderr);
    let db = root.db();
    assert_eq!((db["vms"]["vm1"]["vmid"].clone(), db["next_vmid"].clone()), (json!(100), json!(101)));
    assert_eq!(db["vms"]["vm1"]["username"], "bob");
    let run = root.run("blockhost-vm-create", &["vm2", "--owner-wallet", WALLET, "--apply", "--nft-token-id", "ab12_cd"]);
    let json = result_json("vm2", "10.9.1.2", "2001:db8:7::4", json!(101), json!("ab12_cd"), "admin");
    assert_eq!(run.stdout, format!("BLOCKHOST_RESULT: {json}\n{json}\n"));
}

#[test]
fn create_rejects_a_known_name_in_any_status() {
    let root = Root::new();
    root.create("vm1");
    let expect = |status: &str| {
        let run = root.run("blockhost-vm-create", &["vm1", "--owner-wallet", WALLET, "--apply"]);
        let msg = format!("VM vm1 already exists in the database (status: {status})");
        assert_eq!(run.code, 1);
        assert_eq!(run.stdout, format!("{{\"status\": \"error\", \"error\": \"{msg}\"}}\n"));
        assert_eq!(run.stderr, format!("blockhost-vm-create: {msg}\n"));
    };
    expect("active");
    assert_eq!(root.run("blockhost-vm-destroy", &["vm1"]).code, 0);
    expect("destroyed");
}

#[test]
fn status_words() {
    let root = Root::new();
    let status = |name: &str| {
        let run = root.run("blockhost-vm-status", &[name]);
        assert_eq!(run.code, 0);
        run.stdout
    };
    assert_eq!(status("never-created"), "destroyed\n");
    assert_eq!(status("bad/name"), "unknown\n");
    root.create("vm1");
    assert_eq!(status("vm1"), "active\n");
    assert_eq!(root.run("blockhost-vm-stop", &["vm1"]).stdout, "VM stopped: vm1\n");
    assert_eq!(status("vm1"), "suspended\n");
    root.run("blockhost-vm-destroy", &["vm1"]);
    assert_eq!(status("vm1"), "destroyed\n");
    let run = root.run("blockhost-vm-status", &[]);
    assert_eq!((run.code, run.stdout.as_str()), (0, "unknown\n"));
}

#[test]
fn list_table_and_json() {
    let root = Root::new();
    assert_eq!(root.run("blockhost-vm-list", &[]).stdout, "NAME\tSTATUS\tIP\tCREATED\n");
    assert_eq!(root.run("blockhost-vm-list", &["--format", "json"]).stdout, "[]\n");
    root.create("vm1");
    root.create("vm2");
    root.run("blockhost-vm-kill", &["vm2"]);
    let today = chrono_now().format("%Y-%m-%d").to_string();
    let run = root.run("blockhost-vm-list", &[]);
    assert_eq!(run.stdout, format!("NAME\tSTATUS\tIP\tCREATED\nvm1\tactive\t10.20.0.10\t{today}\nvm2\tsuspended\t10.20.0.11\t{today}\n"));
    let run = root.run("blockhost-vm-list", &["--format", "json"]);
    assert_eq!(
        run.stdout,
        format!("[{{\"name\": \"vm1\", \"status\": \"active\", \"ip\": \"10.20.0.10\", \"created\": \"{today}\"}}, {{\"name\": \"vm2\", \"status\": \"suspended\", \"ip\": \"10.20.0.11\", \"created\": \"{today}\"}}]\n")
    );
    assert_eq!(root.run("blockhost-vm-list", &["--json"]).stdout, run.stdout);
}

#[test]
fn power_verbs_are_idempotent() {
    let root = Root::new();
    root.create("vm1");
    let out = |bin: &str| {
        let run = root.run(bin, &["vm1"]);
        assert_eq!(run.code, 0, "{bin}: {}", run.stderr);
        run.stdout
    };
    assert_eq!(out("blockhost-vm-start"), "VM already running: vm1\n");
    assert_eq!(out("blockhost-vm-stop"), "VM stopped: vm1\n");
    assert_eq!(out("blockhost-vm-stop"), "VM already stopped: vm1\n");
    assert_eq!(out("blockhost-vm-kill"), "VM already stopped: vm1\n");
    assert_eq!(out("blockhost-vm-start"), "VM started: vm1\n");
    assert_eq!(out("blockhost-vm-kill"), "VM killed: vm1\n");
    for bin in ["blockhost-vm-start", "blockhost-vm-stop", "blockhost-vm-kill"] {
        let run = root.run(bin, &["nope"]);
        assert_eq!((run.code, run.stdout.as_str()), (1, ""));
        assert_eq!(run.stderr, format!("{bin}: VM nope not found\n"));
    }
}

#[test]
fn stop_reports_failure_when_the_guest_ignores_acpi() {
    let root = Root::new();
    root.create("vm1");
    let run = root.cmd("blockhost-vm-stop").args(["vm1", "--timeout", "1"]).env("BLOCKHOST_MOCK_ACPI", "ignore").output().unwrap();
    assert_eq!(run.status.code(), Some(1));
    assert_eq!(
        String::from_utf8_lossy(&run.stderr),
        "blockhost-vm-stop: VM vm1 did not shut down within 1 s and is still running (blockhost-vm-kill forces it off)\n"
    );
    let status = root.cmd("blockhost-vm-status").arg("vm1").env("BLOCKHOST_MOCK_ACPI", "ignore").output().unwrap();
    assert_eq!(String::from_utf8_lossy(&status.stdout), "active\n", "never silently forced off");
}

#[test]
fn destroy_is_idempotent_and_removes_everything() {
    let root = Root::new();
    root.create("vm1");
    assert!(root.mock_dir().join("seeds/vm1/cidata.iso").exists());
    for _ in 0..2 {
        let run = root.run("blockhost-vm-destroy", &["vm1"]);
        assert_eq!((run.code, run.stdout.as_str()), (0, "VM destroyed: vm1\n"));
    }
    let db = root.db();
    assert_eq!(db["vms"]["vm1"]["status"], "destroyed");
    assert!(db["vms"]["vm1"]["destroyed_at"].is_string());
    assert_eq!((db["allocated_ips"].clone(), db["allocated_ipv6"].clone()), (json!([]), json!([])));
    assert!(!root.mock_dir().join("domains/vm1.json").exists());
    assert!(!root.mock_dir().join("seeds/vm1").exists());
    assert!(!samples(&root).contains_key("vm1"), "its metrics sample is forgotten");
    assert_eq!(root.run("blockhost-vm-destroy", &["never-there"]).stdout, "VM destroyed: never-there\n");
}

#[test]
fn gc_suspends_then_destroys_after_grace() {
    let root = Root::new();
    root.create("vm1");
    root.create("vm2");
    set_record_field(&root, "vm1", "expires_at", json!("2026-01-01T00:00:00+00:00"));
    let run = root.run("blockhost-vm-gc", &[]);
    assert_eq!(
        (run.code, run.stdout.as_str()),
        (0, "VM garbage collection: dry run, grace period 7 days\nSuspend: 1 candidate\n  vm1: would suspend (expired 2026-01-01T00:00:00+00:00)\nDestroy: 0 candidates\nWould process: 1\n")
    );
    assert_eq!(root.db()["vms"]["vm1"]["status"], "active", "dry run changes nothing");
    let run = root.run("blockhost-vm-gc", &["--execute", "--suspend-only"]);
    assert_eq!(
        run.stdout,
        "VM garbage collection: execute, grace period 7 days\nSuspend: 1 candidate\n  vm1: suspended (expired 2026-01-01T00:00:00+00:00)\nDestroy: skipped (--suspend-only)\nProcessed: 1, errors: 0\n"
    );
    assert_eq!(root.db()["vms"]["vm1"]["status"], "suspended");
    assert_eq!(root.run("blockhost-vm-status", &["vm1"]).stdout, "suspended\n");
    set_record_field(&root, "vm1", "suspended_at", days_ago(8));
    let suspended_at = root.db()["vms"]["vm1"]["suspended_at"].as_str().unwrap().to_string();
    let run = root.run("blockhost-vm-gc", &["--execute", "--destroy-only", "--grace-days", "9"]);
    assert_eq!(run.stdout, "VM garbage collection: execute, grace period 9 days\nSuspend: skipped (--destroy-only)\nDestroy: 0 candidates\nProcessed: 0, errors: 0\n");
    let run = root.run("blockhost-vm-gc", &["--execute"]);
    assert_eq!(
        run.stdout,
        format!("VM garbage collection: execute, grace period 7 days\nSuspend: 0 candidates\nDestroy: 1 candidate\n  vm1: destroyed (suspended {suspended_at})\nProcessed: 1, errors: 0\n")
    );
    assert_eq!(root.db()["vms"]["vm1"]["status"], "destroyed");
    assert_eq!(root.db()["vms"]["vm2"]["status"], "active");
}

#[test]
fn resume_never_moves_expiry_backwards() {
    let root = Root::new();
    root.create("vm1");
    let run = root.run("blockhost-vm-resume", &["vm1"]);
    assert_eq!((run.code, run.stderr.as_str()), (1, "blockhost-vm-resume: VM vm1 is not suspended (status: active)\n"));
    set_record_field(&root, "vm1", "expires_at", json!("2026-01-01T00:00:00+00:00"));
    root.run("blockhost-vm-gc", &["--execute"]);
    // The engine extends first (the expiry is in the future again), then resumes without --extend-days.
    set_record_field(&root, "vm1", "expires_at", json!("2099-05-01T00:00:00+00:00"));
    let run = root.run("blockhost-vm-resume", &["vm1", "--dry-run"]);
    assert_eq!(run.stdout, "Would resume vm1 (expires 2099-05-01T00:00:00+00:00)\n");
    assert_eq!(root.db()["vms"]["vm1"]["status"], "suspended");
    let run = root.run("blockhost-vm-resume", &["vm1"]);
    assert_eq!((run.code, run.stdout.as_str()), (0, "VM resumed: vm1 (expires 2099-05-01T00:00:00+00:00)\n"));
    let record = &root.db()["vms"]["vm1"];
    assert_eq!((record["status"].as_str(), record["expires_at"].as_str()), (Some("active"), Some("2099-05-01T00:00:00+00:00")));
    assert!(record.get("suspended_at").is_none());
    assert_eq!(root.run("blockhost-vm-status", &["vm1"]).stdout, "active\n");
    root.run("blockhost-vm-gc", &["--execute"]);
    set_record_field(&root, "vm1", "status", json!("suspended"));
    let run = root.run("blockhost-vm-resume", &["vm1", "--extend-days", "10"]);
    assert_eq!(run.stdout, "VM resumed: vm1 (expires 2099-05-11T00:00:00+00:00)\n");
}

#[test]
fn metrics_object_single_and_batch() {
    let root = Root::new();
    root.create("vm1");
    root.create("vm2");
    let run = root.run("blockhost-vm-metrics", &["vm1"]);
    assert_eq!(run.code, 0);
    assert_eq!(run.stdout.lines().count(), 1);
    let m: serde_json::Map<String, Value> = serde_json::from_str(&run.stdout).unwrap();
    let keys: Vec<&str> = m.keys().map(String::as_str).collect();
    assert_eq!(
        keys,
        ["cpu_percent", "cpu_count", "memory_used_mb", "memory_total_mb", "disk_used_mb", "disk_total_mb", "disk_read_iops", "disk_write_iops",
         "disk_read_bytes_sec", "disk_write_bytes_sec", "net_rx_bytes_sec", "net_tx_bytes_sec", "net_connections", "guest_agent_responsive", "uptime_seconds", "state"]
    );
    assert!(m["cpu_percent"].is_f64());
    for key in &keys[1..13] {
        assert!(m[*key].is_i64() || m[*key].is_u64(), "{key} must be an integer");
    }
    assert_eq!((m["cpu_count"].clone(), m["memory_total_mb"].clone(), m["state"].clone()), (json!(1), json!(2048), json!("running")));
    std::thread::sleep(std::time::Duration::from_millis(700));
    let m: Value = serde_json::from_str(&root.run("blockhost-vm-metrics", &["vm1"]).stdout).unwrap();
    assert!(m["cpu_percent"].as_f64().unwrap() > 0.0, "live CPU after a second sample: {m}");
    root.run("blockhost-vm-kill", &["vm2"]);
    let all: serde_json::Map<String, Value> = serde_json::from_str(&root.run("blockhost-vm-metrics", &["--all"]).stdout).unwrap();
    assert_eq!(all.keys().collect::<Vec<_>>(), ["vm1", "vm2"]);
    assert_eq!(all["vm2"]["state"], "stopped");
    let run = root.run("blockhost-vm-metrics", &["nope"]);
    assert_eq!((run.code, run.stdout.as_str(), run.stderr.as_str()), (1, "", "blockhost-vm-metrics: VM nope not found\n"));
}

/// The metrics cache: one map VM → previous sample.
fn samples(root: &Root) -> serde_json::Map<String, Value> {
    std::fs::read_to_string(root.mock_dir().join("metrics/samples.json")).map_or_else(|_| Default::default(), |t| serde_json::from_str(&t).unwrap())
}

#[test]
fn concurrent_metrics_of_single_vms_keep_every_sample() {
    let root = Root::new();
    let names: Vec<String> = (0..20).map(|i| format!("c{i}")).collect();
    for name in &names {
        root.create(name);
    }
    let children: Vec<_> =
        names.iter().map(|name| root.std_cmd("blockhost-vm-metrics").arg(name).stdout(std::process::Stdio::null()).spawn().unwrap()).collect();
    for mut child in children {
        assert!(child.wait().unwrap().success());
    }
    let mut cached: Vec<String> = samples(&root).keys().cloned().collect();
    cached.sort_by_key(|n| n[1..].parse::<u32>().unwrap());
    assert_eq!(cached, names, "each VM's sample survives the others' writes (breaks without the lock)");
}

#[test]
fn throttle_lines() {
    let root = Root::new();
    root.create("vm1");
    let run = root.run(
        "blockhost-vm-throttle",
        &["vm1", "--cpu-shares", "512", "--cpu-quota", "50", "--bandwidth-in", "1000", "--bandwidth-out", "0", "--iops-read", "200", "--iops-write", "0"],
    );
    assert_eq!(
        (run.code, run.stdout.as_str()),
        (0, "CPU shares set to 512\nCPU quota set to 50%\nBandwidth inbound set to 1000 kbps\nBandwidth outbound limit removed (unlimited)\nIOPS read set to 200\nIOPS write limit removed (unlimited)\n")
    );
    let run = root.run("blockhost-vm-throttle", &["vm1", "--reset"]);
    assert_eq!(
        run.stdout,
        "CPU shares set to 1024\nCPU quota limit removed (unlimited)\nBandwidth inbound limit removed (unlimited)\nBandwidth outbound limit removed (unlimited)\nIOPS read limit removed (unlimited)\nIOPS write limit removed (unlimited)\n"
    );
    let run = root.run("blockhost-vm-throttle", &["vm1", "--cpu-quota", "101"]);
    assert_eq!((run.code, run.stdout.as_str(), run.stderr.as_str()), (1, "", "blockhost-vm-throttle: invalid --cpu-quota 101: must be between 1 and 100\n"));
}

#[test]
fn update_gecos_and_guest_exec() {
    let root = Root::new();
    root.create("vm1");
    let run = root.run("blockhost-vm-guest-exec", &["vm1", "getent", "passwd", "admin"]);
    assert_eq!((run.code, run.stdout), (0, format!("admin:x:1000:1000:wallet={WALLET}:/home/admin:/bin/bash\n")));
    let run = root.run("blockhost-vm-update-gecos", &["vm1", WALLET, "--nft-id", "42"]);
    assert_eq!((run.code, run.stdout.as_str()), (0, ""));
    assert_eq!(run.stderr, format!("GECOS of admin on vm1 set to wallet={WALLET},nft=42\n"));
    let run = root.run("blockhost-vm-guest-exec", &["vm1", "getent passwd admin"]);
    assert_eq!(run.stdout, format!("admin:x:1000:1000:wallet={WALLET},nft=42:/home/admin:/bin/bash\n"));
    let run = root.run("blockhost-vm-guest-exec", &["vm1", "echo", "hello", "world"]);
    assert_eq!((run.code, run.stdout.as_str(), run.stderr.as_str()), (0, "hello world\n", ""));
    assert_eq!(root.run("blockhost-vm-guest-exec", &["vm1", "exit", "7"]).code, 7);
    let run = root.run("blockhost-vm-guest-exec", &["vm1", "frobnicate", "-x"]);
    assert_eq!((run.code, run.stderr.as_str()), (127, "sh: 1: frobnicate: not found\n"));
    root.run("blockhost-vm-kill", &["vm1"]);
    let run = root.run("blockhost-vm-guest-exec", &["vm1", "true"]);
    assert_eq!((run.code, run.stderr.as_str()), (1, "blockhost-vm-guest-exec: VM vm1 is not running\n"));
    let run = root.run("blockhost-vm-update-gecos", &["vm1", WALLET, "--nft-id", "43"]);
    assert_eq!(run.code, 1);
}

#[test]
fn update_gecos_uses_the_recorded_username() {
    let root = Root::new();
    root.run("blockhost-vm-create", &["vm1", "--owner-wallet", WALLET, "--apply", "--username", "bob"]);
    let run = root.run("blockhost-vm-update-gecos", &["vm1", WALLET, "--nft-id", "ab12"]);
    assert_eq!(run.stderr, format!("GECOS of bob on vm1 set to wallet={WALLET},nft=ab12\n"));
    assert!(root.run("blockhost-vm-guest-exec", &["vm1", "getent passwd bob"]).stdout.contains(",nft=ab12:"));
}

#[test]
fn build_template_versions_and_keeps() {
    let root = Root::new();
    let first = root.run("blockhost-build-template", &[]);
    assert_eq!(first.code, 0);
    let path = first.stdout.strip_prefix("Template built successfully: ").unwrap().trim_end().to_string();
    assert!(std::path::Path::new(&path).join("manifest.json").is_file());
    assert!(first.stderr.contains("[1/3]"));
    let kept = root.run("blockhost-build-template", &[]);
    // Callers parse this line whether the template was built or kept.
    assert_eq!(kept.stdout, format!("Template built successfully: {path}\n"));
    assert!(kept.stderr.contains("up to date"), "{}", kept.stderr);
    let forced = root.run("blockhost-build-template", &["--force"]);
    let new_path = forced.stdout.strip_prefix("Template built successfully: ").unwrap().trim_end();
    assert_ne!(new_path, path);
    assert!(std::path::Path::new(&path).is_dir(), "the old version stays");
}

/// On a terminal (a pty made by script(1)) the build draws a live bar, redrawn
/// in place and cleared at the end; on a pipe it prints its plain step lines.
#[test]
fn build_template_draws_a_live_bar_on_a_terminal_and_plain_lines_elsewhere() {
    let root = Root::new();
    let plain = root.run("blockhost-build-template", &[]);
    assert!(plain.stderr.starts_with("[1/3] ") && !plain.stderr.contains('\r'), "{}", plain.stderr);
    let build = root.std_cmd("blockhost-build-template");
    let mut on_a_terminal = std::process::Command::new("script");
    on_a_terminal.args(["-qec", &format!("{} --force", build.get_program().to_string_lossy()), "/dev/null"]);
    for (key, value) in build.get_envs() {
        match value {
            Some(value) => on_a_terminal.env(key, value),
            None => on_a_terminal.env_remove(key),
        };
    }
    let out = on_a_terminal.output().unwrap();
    let shown = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{shown}");
    assert!(shown.contains("\r\x1b[2K") && shown.contains(" 1/3 Writing template manifest"), "a bar redrawn in place: {shown:?}");
    assert!(shown.contains("[3/3] Switching the current template"), "the steps stay above it: {shown:?}");
}

#[test]
fn detect_is_exit_code_only() {
    let root = Root::new();
    let run = root.run("blockhost-provisioner-detect", &[]);
    assert_eq!((run.code, run.stdout.as_str(), run.stderr.as_str()), (0, "", ""));
    let run = root.cmd("blockhost-provisioner-detect").env_remove("BLOCKHOST_PROVIDER").output().unwrap();
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert_eq!((run.status.code(), run.stdout.is_empty(), stderr.lines().count()), (Some(1), true, 1), "{stderr}");
    assert!(stderr.starts_with("blockhost-provisioner-detect: "), "says why: {stderr}");
}
