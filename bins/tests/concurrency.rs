//! Many verbs at once against one root: every create gets its own addresses,
//! no mutation of the VM database is lost, and a name is created at most once.

mod common;
use common::{set_record_field, Root, WALLET};
use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader};
use std::process::{Child, ChildStderr, Command, Output, Stdio};

/// A root whose IPv4 pool is 10.30.0.<start>..=10.30.0.<end> (gateway .1) and whose
/// broker IPv6 prefix is a /112 with a wide enough pool.
fn pool_root(start: u8, end: u8) -> Root {
    let root = Root::new();
    root.write(
        "etc/blockhost/db.yaml",
        &format!(
            "db_file: /var/lib/blockhost/vms.json\nip_pool:\n  network: 10.30.0.0/24\n  start: 10.30.0.{start}\n  end: 10.30.0.{end}\n  gateway: 10.30.0.1\nipv6_pool:\n  start: 2\n  end: 1000\ngc_grace_days: 7\ndefault_expiry_days: 30\nbridge: br0\n"
        ),
    );
    root.write("etc/blockhost/broker-allocation.json", r#"{"prefix": "2001:db8:30::/112", "dns_zone": "vm.example.net"}"#);
    root
}

/// One executable in `root` on the mock backend, no knobs, output captured.
fn command(root: &Root, bin: &str) -> Command {
    let mut cmd = root.std_cmd(bin);
    cmd.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped());
    cmd
}

fn spawn_create(root: &Root, name: &str) -> Child {
    command(root, "blockhost-vm-create").args([name, "--owner-wallet", WALLET, "--apply"]).spawn().expect("spawn create")
}

/// Starts every child first, then waits for all of them (outputs are small enough for the pipes).
fn run_all(children: Vec<(String, Child)>) -> Vec<(String, Output)> {
    children.into_iter().map(|(name, child)| (name, child.wait_with_output().expect("wait"))).collect()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// The result JSON: the last stdout line.
fn last_json(out: &Output) -> Value {
    let stdout = text(&out.stdout);
    let line = stdout.lines().last().unwrap_or_else(|| panic!("no stdout; stderr: {}", text(&out.stderr)));
    serde_json::from_str(line).unwrap_or_else(|e| panic!("{line:?}: {e}"))
}

fn names(prefix: &str, n: usize) -> Vec<String> {
    (0..n).map(|i| format!("{prefix}{i:02}")).collect()
}

fn create_all(root: &Root, names: &[String]) -> Vec<(String, Output)> {
    run_all(names.iter().map(|n| (n.clone(), spawn_create(root, n))).collect())
}

fn str_list(db: &Value, key: &str) -> Vec<String> {
    db[key].as_array().unwrap_or_else(|| panic!("{key} is a list")).iter().map(|v| v.as_str().unwrap().to_string()).collect()
}

fn domain_exists(root: &Root, name: &str) -> bool {
    root.mock_dir().join("domains").join(format!("{name}.json")).exists()
}

fn lock_file_gone(root: &Root) -> bool {
    !root.path("run/blockhost/provisioning.lock").exists()
}

/// Creates `names` concurrently, asserting every one succeeds; returns name -> (ip, ipv6).
fn create_all_ok(root: &Root, names: &[String]) -> BTreeMap<String, (String, String)> {
    let mut addresses = BTreeMap::new();
    for (name, out) in create_all(root, names) {
        assert_eq!(out.status.code(), Some(0), "create {name}: {}", text(&out.stderr));
        let result = last_json(&out);
        assert_eq!(result["status"], "ok", "{name}");
        assert_eq!(result["vm_name"], name.as_str());
        let ip = result["ip"].as_str().unwrap().to_string();
        let ipv6 = result["ipv6"].as_str().unwrap().to_string();
        addresses.insert(name, (ip, ipv6));
    }
    addresses
}

#[test]
fn fifty_concurrent_creates_get_distinct_addresses() {
    let root = pool_root(10, 250);
    let names = names("con", 50);
    let addresses = create_all_ok(&root, &names);
    let ips: BTreeSet<&String> = addresses.values().map(|(ip, _)| ip).collect();
    let ipv6s: BTreeSet<&String> = addresses.values().map(|(_, v6)| v6).collect();
    assert_eq!(ips.len(), 50, "distinct IPv4 addresses: {addresses:?}");
    assert_eq!(ipv6s.len(), 50, "distinct IPv6 addresses: {addresses:?}");
    // The lowest 50 addresses of the pool, whatever the order of the creates.
    let expected_ips: BTreeSet<String> = (10..60).map(|i| format!("10.30.0.{i}")).collect();
    assert_eq!(ips.into_iter().cloned().collect::<BTreeSet<_>>(), expected_ips);

    let db = root.db();
    let vms = db["vms"].as_object().expect("vms object");
    assert_eq!(vms.len(), 50);
    for (name, (ip, ipv6)) in &addresses {
        let record = &vms[name.as_str()];
        assert_eq!(record["ip_address"], ip.as_str(), "{name}");
        assert_eq!(record["ipv6_address"], ipv6.as_str(), "{name}");
        assert_eq!(record["status"], "active", "{name}");
        assert!(domain_exists(&root, name), "{name}");
    }
    let allocated = str_list(&db, "allocated_ips");
    assert_eq!(allocated.len(), 50, "no duplicates: {allocated:?}");
    assert_eq!(allocated.iter().collect::<BTreeSet<_>>(), addresses.values().map(|(ip, _)| ip).collect());
    let allocated6 = str_list(&db, "allocated_ipv6");
    assert_eq!(allocated6.len(), 50, "no duplicates: {allocated6:?}");
    assert_eq!(allocated6.iter().collect::<BTreeSet<_>>(), addresses.values().map(|(_, v6)| v6).collect());
    assert!(db.get("pending_creates").is_none(), "{}", root.db_text());
    assert!(lock_file_gone(&root));
}

#[test]
fn exhausted_pool_fails_cleanly_under_contention() {
    let root = pool_root(10, 29);
    let names = names("ex", 30);
    let outputs = create_all(&root, &names);
    let mut winners = BTreeMap::new();
    let mut losers = Vec::new();
    for (name, out) in outputs {
        match out.status.code() {
            Some(0) => {
                let result = last_json(&out);
                winners.insert(name, result["ip"].as_str().unwrap().to_string());
            }
            Some(1) => {
                assert_eq!(
                    text(&out.stdout),
                    "{\"status\": \"error\", \"error\": \"the IPv4 pool 10.30.0.10-10.30.0.29 is exhausted (every one is taken); widen it with `ip_pool.start`/`ip_pool.end` in db.yaml\"}\n",
                    "{name}"
                );
                losers.push(name);
            }
            other => panic!("create {name}: exit {other:?}: {}", text(&out.stderr)),
        }
    }
    assert_eq!(winners.len(), 20, "winners: {winners:?}");
    assert_eq!(losers.len(), 10);
    let ips: BTreeSet<&String> = winners.values().collect();
    assert_eq!(ips.len(), 20, "an address was given twice: {winners:?}");
    let pool: BTreeSet<String> = (10..30).map(|i| format!("10.30.0.{i}")).collect();
    assert_eq!(ips.into_iter().cloned().collect::<BTreeSet<_>>(), pool);

    let db = root.db();
    assert_eq!(db["vms"].as_object().unwrap().len(), 20);
    assert_eq!(str_list(&db, "allocated_ips").len(), 20);
    assert_eq!(str_list(&db, "allocated_ipv6").len(), 20);
    assert!(db.get("pending_creates").is_none(), "{}", root.db_text());
    for name in &losers {
        assert!(db["vms"].get(name.as_str()).is_none(), "{name} has a record");
        assert!(!domain_exists(&root, name), "{name} has a domain");
        assert!(!root.mock_dir().join("seeds").join(name).exists(), "{name} has a seed dir");
    }
    assert!(lock_file_gone(&root));
}

#[test]
fn fifty_concurrent_destroys_lose_no_update() {
    let root = pool_root(10, 250);
    let names = names("gone", 50);
    create_all_ok(&root, &names);
    let children: Vec<(String, Child)> = names
        .iter()
        .map(|n| (n.clone(), command(&root, "blockhost-vm-destroy").arg(n).spawn().expect("spawn destroy")))
        .collect();
    for (name, out) in run_all(children) {
        assert_eq!(out.status.code(), Some(0), "destroy {name}: {}", text(&out.stderr));
        assert_eq!(text(&out.stdout), format!("VM destroyed: {name}\n"));
    }
    let db = root.db();
    let vms = db["vms"].as_object().unwrap();
    assert_eq!(vms.len(), 50);
    for name in &names {
        let record = &vms[name.as_str()];
        assert_eq!(record["status"], "destroyed", "{name}: {record}");
        assert!(record["destroyed_at"].as_str().is_some_and(|t| !t.is_empty()), "{name}: {record}");
        assert!(!domain_exists(&root, name), "{name}");
    }
    assert_eq!(db["allocated_ips"], json!([]));
    assert_eq!(db["allocated_ipv6"], json!([]));
    assert!(db.get("pending_creates").is_none());
}

#[test]
fn concurrent_destroys_and_resumes_of_different_records_all_land() {
    let root = pool_root(10, 250);
    let names = names("mix", 40);
    create_all_ok(&root, &names);
    let (to_destroy, to_resume) = names.split_at(20);
    // Suspend the second half: powered off in the backend, marked in the database.
    for name in to_resume {
        let out = command(&root, "blockhost-vm-kill").arg(name).output().unwrap();
        assert!(out.status.success(), "kill {name}: {}", text(&out.stderr));
        set_record_field(&root, name, "status", json!("suspended"));
        set_record_field(&root, name, "suspended_at", json!("2020-01-01T00:00:00+00:00"));
    }
    let mut children = Vec::new();
    for (a, b) in to_destroy.iter().zip(to_resume) {
        children.push((a.clone(), command(&root, "blockhost-vm-destroy").arg(a).spawn().unwrap()));
        children.push((b.clone(), command(&root, "blockhost-vm-resume").arg(b).spawn().unwrap()));
    }
    for (name, out) in run_all(children) {
        assert_eq!(out.status.code(), Some(0), "{name}: {}", text(&out.stderr));
    }
    let db = root.db();
    for name in to_destroy {
        assert_eq!(db["vms"][name.as_str()]["status"], "destroyed", "{name}");
    }
    let mut live_ips = BTreeSet::new();
    for name in to_resume {
        let record = &db["vms"][name.as_str()];
        assert_eq!(record["status"], "active", "{name}: {record}");
        assert!(record.get("suspended_at").is_none(), "{name}: {record}");
        live_ips.insert(record["ip_address"].as_str().unwrap().to_string());
        let status = command(&root, "blockhost-vm-status").arg(name).output().unwrap();
        assert_eq!(text(&status.stdout), "active\n", "{name}");
    }
    assert_eq!(str_list(&db, "allocated_ips").into_iter().collect::<BTreeSet<_>>(), live_ips);
    assert_eq!(str_list(&db, "allocated_ipv6").len(), 20);
}

#[test]
fn concurrent_creates_of_the_same_name_yield_one_vm() {
    let root = pool_root(10, 250);
    let names = names("twin", 10);
    let mut children = Vec::new();
    for name in &names {
        children.push((name.clone(), spawn_create(&root, name)));
        children.push((name.clone(), spawn_create(&root, name)));
    }
    let mut by_name: BTreeMap<String, Vec<Output>> = BTreeMap::new();
    for (name, out) in run_all(children) {
        by_name.entry(name).or_default().push(out);
    }
    let db = root.db();
    let mut winner_ips = BTreeSet::new();
    for (name, outs) in &by_name {
        let ok: Vec<&Output> = outs.iter().filter(|o| o.status.code() == Some(0)).collect();
        let failed: Vec<&Output> = outs.iter().filter(|o| o.status.code() != Some(0)).collect();
        assert_eq!(ok.len(), 1, "{name}: exactly one create succeeds");
        assert_eq!(failed.len(), 1, "{name}");
        assert_eq!(failed[0].status.code(), Some(1), "{name}");
        let error = last_json(failed[0]);
        assert_eq!(error["status"], "error");
        let message = error["error"].as_str().unwrap();
        assert!(
            message.contains(name.as_str()) && (message.contains("already exists") || message.contains("being created")),
            "{name}: {message}"
        );
        let result = last_json(ok[0]);
        let record = &db["vms"][name.as_str()];
        assert_eq!(record["ip_address"], result["ip"], "{name}");
        assert_eq!(record["status"], "active");
        assert!(domain_exists(&root, name));
        winner_ips.insert(result["ip"].as_str().unwrap().to_string());
    }
    assert_eq!(db["vms"].as_object().unwrap().len(), names.len());
    assert_eq!(str_list(&db, "allocated_ips").into_iter().collect::<BTreeSet<_>>(), winner_ips);
    assert_eq!(str_list(&db, "allocated_ips").len(), names.len());
    assert!(db.get("pending_creates").is_none());
    assert!(lock_file_gone(&root));
}

/// A create whose guest agent answers after `delay_ms`; returns once it is waiting for it.
fn spawn_waiting_create(root: &Root, name: &str, delay_ms: u64) -> (Child, BufReader<ChildStderr>) {
    let mut child = command(root, "blockhost-vm-create")
        .args([name, "--owner-wallet", WALLET, "--apply"])
        .env("BLOCKHOST_MOCK_AGENT_DELAY_MS", delay_ms.to_string())
        .spawn()
        .unwrap();
    let mut stderr = BufReader::new(child.stderr.take().unwrap());
    let mut line = String::new();
    while !line.starts_with("Waiting up to") {
        line.clear();
        assert!(stderr.read_line(&mut line).unwrap() > 0, "{name} ended before waiting for its agent");
    }
    (child, stderr)
}

fn marker(root: &Root) -> Option<String> {
    std::fs::read_to_string(root.path("run/blockhost/provisioning.lock")).ok()
}

#[test]
fn provisioning_lock_exists_while_any_create_runs() {
    let root = pool_root(10, 250);
    assert_eq!(marker(&root), None);
    let (mut first, _first_err) = spawn_waiting_create(&root, "first", 1500);
    assert_eq!(marker(&root), Some(first.id().to_string()));
    let (mut second, _second_err) = spawn_waiting_create(&root, "second", 3000);
    assert_eq!(marker(&root), Some(first.id().to_string()), "a live owner keeps the marker");
    assert!(first.wait().unwrap().success());
    assert_eq!(marker(&root), Some(second.id().to_string()), "handed over to the create still running");
    assert!(second.wait().unwrap().success());
    assert_eq!(marker(&root), None);
    assert!(root.path("run/blockhost/provisioning.d").read_dir().unwrap().all(|e| e.unwrap().file_name() == ".guard"));
}
