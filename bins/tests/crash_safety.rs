//! Writers killed with SIGKILL never leave the VM database missing, torn or
//! without a committed record, and gc cleans up after them. Half the creates
//! kill themselves at a chosen step (the mock's `crash_step`), so kills land
//! inside creates however loaded the machine is; the other writers are killed
//! after a pseudo-random delay, anywhere, including mid-write.

mod common;
use common::{Root, WALLET};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;
use provisioner::provider::CreateStep;

const ITERATIONS: usize = 400;
/// Every this many iterations a create runs to completion and its record is committed.
const KEEP_EVERY: usize = 6;

/// SplitMix64: the same schedule of kills on every run.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// A pool far larger than the number of creates, for IPv4 and IPv6 alike.
fn big_root() -> Root {
    let root = Root::new();
    root.write(
        "etc/blockhost/db.yaml",
        "db_file: /var/lib/blockhost/vms.json\nip_pool:\n  network: 10.40.0.0/16\n  start: 10.40.0.10\n  end: 10.40.3.250\n  gateway: 10.40.0.1\nipv6_pool:\n  start: 2\n  end: 4000\ngc_grace_days: 7\ndefault_expiry_days: 30\nbridge: br0\n",
    );
    root.write("etc/blockhost/broker-allocation.json", r#"{"prefix": "2001:db8:40::/112"}"#);
    root
}

fn command(root: &Root, bin: &str) -> Command {
    let mut cmd = root.std_cmd(bin);
    cmd.stdin(Stdio::null());
    cmd
}

fn create_args(name: &str) -> Vec<String> {
    vec![name.to_string(), "--owner-wallet".into(), WALLET.into(), "--apply".into()]
}

/// The database as it is on disk right now: present (once it has been), non-empty,
/// JSON with a `vms` object, holding every committed record unchanged.
fn check_db(root: &Root, committed: &BTreeMap<String, String>, seen: &mut bool, context: &str) {
    let path = root.db_path();
    if !*seen {
        *seen = path.exists();
        if !*seen {
            assert!(committed.is_empty(), "{context}: vms.json missing with committed records");
            return;
        }
    }
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{context}: vms.json unreadable: {e}"));
    assert!(!text.trim().is_empty(), "{context}: vms.json is empty");
    let db: Value = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{context}: vms.json does not parse: {e}\n{text}"));
    let vms = db.get("vms").and_then(Value::as_object).unwrap_or_else(|| panic!("{context}: no vms object"));
    for (name, ip) in committed {
        let record = vms.get(name).unwrap_or_else(|| panic!("{context}: committed record {name} lost"));
        assert_eq!(record["ip_address"], ip.as_str(), "{context}: record {name} changed");
    }
    // The mock's own per-VM state is written atomically too.
    for entry in std::fs::read_dir(root.mock_dir().join("domains")).into_iter().flatten().flatten() {
        let file = entry.file_name().to_string_lossy().into_owned();
        if file.ends_with(".json") && !file.starts_with('.') {
            let text = std::fs::read_to_string(entry.path()).unwrap();
            assert!(serde_json::from_str::<Value>(&text).is_ok(), "{context}: torn domain file {file}");
        }
    }
}

fn strings(db: &Value, key: &str) -> Vec<String> {
    db[key].as_array().into_iter().flatten().map(|v| v.as_str().unwrap().to_string()).collect()
}

/// Names of entries in `dir` (not hidden), with `suffix` stripped and required.
fn entries(dir: &Path, suffix: &str) -> Vec<String> {
    std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| e.file_name().to_str().map(str::to_string))
        .filter(|n| !n.starts_with('.'))
        .filter_map(|n| n.strip_suffix(suffix).map(str::to_string))
        .collect()
}

#[test]
fn sigkilled_writers_never_corrupt_or_lose_committed_records() {
    let root = big_root();
    let mut rng = Rng(0x5EED_2026);
    let mut committed: BTreeMap<String, String> = BTreeMap::new();
    let mut destroy_targets: BTreeSet<String> = BTreeSet::new();
    let mut seen = false;
    let mut killed_running = 0;
    let mut pending_after_kill = 0;

    for i in 0..ITERATIONS {
        if i % KEEP_EVERY == KEEP_EVERY - 1 {
            let name = format!("keep{i:03}");
            let out = command(&root, "blockhost-vm-create").args(create_args(&name)).output().unwrap();
            assert!(out.status.success(), "iteration {i}: create {name}: {}", String::from_utf8_lossy(&out.stderr));
            let stdout = String::from_utf8(out.stdout).unwrap();
            let result: Value = serde_json::from_str(stdout.lines().last().unwrap()).unwrap();
            committed.insert(name, result["ip"].as_str().unwrap().to_string());
            check_db(&root, &committed, &mut seen, &format!("iteration {i} (committed)"));
            continue;
        }
        // Mostly creates; some destroys and throttles of committed VMs.
        let roll = rng.below(10);
        let mut crash_step = None;
        let (bin, args, what) = match committed.keys().nth(rng.below(committed.len().max(1) as u64) as usize) {
            Some(target) if roll == 0 => {
                destroy_targets.insert(target.clone());
                ("blockhost-vm-destroy", vec![target.clone()], format!("destroy {target}"))
            }
            Some(target) if roll == 1 => {
                let shares = (100 + rng.below(900)).to_string();
                ("blockhost-vm-throttle", vec![target.clone(), "--cpu-shares".into(), shares], format!("throttle {target}"))
            }
            _ => {
                let name = format!("kill{i:03}");
                if rng.below(2) == 0 {
                    crash_step = Some(CreateStep::ALL[rng.below(CreateStep::ALL.len() as u64) as usize].as_str());
                }
                ("blockhost-vm-create", create_args(&name), format!("create {name}"))
            }
        };
        let mut cmd = command(&root, bin);
        cmd.args(&args).env("BLOCKHOST_MOCK_LATENCY_MS", "1").stdout(Stdio::null()).stderr(Stdio::null());
        let status = if let Some(step) = crash_step {
            cmd.env("BLOCKHOST_MOCK_CRASH_STEP", step).status().unwrap()
        } else {
            let mut child = cmd.spawn().unwrap();
            // Up to 40 ms: anywhere from start-up to a write of the database.
            std::thread::sleep(Duration::from_millis(rng.below(40)));
            child.kill().expect("SIGKILL");
            child.wait().unwrap()
        };
        if let Some(step) = crash_step {
            assert_eq!(status.code(), None, "iteration {i}: {what} was to kill itself at {step}: {status}");
        }
        if status.code().is_none() {
            killed_running += 1;
        }
        check_db(&root, &committed, &mut seen, &format!("iteration {i} ({what} killed, {status})"));
        if root.db_text().contains("\"pending_creates\"") {
            pending_after_kill += 1;
        }
    }
    eprintln!("killed while running: {killed_running}, kills after which a create was journalled: {pending_after_kill}");
    assert!(killed_running >= ITERATIONS / 4, "too few writers were killed while running: {killed_running}");
    assert!(pending_after_kill >= 10, "too few kills landed inside a create: {pending_after_kill}");

    let gc = command(&root, "blockhost-vm-gc").arg("--execute").output().unwrap();
    assert_eq!(gc.status.code(), Some(0), "gc: {}{}", String::from_utf8_lossy(&gc.stdout), String::from_utf8_lossy(&gc.stderr));
    check_db(&root, &committed, &mut seen, "after gc");

    let db = root.db();
    assert!(db.get("pending_creates").is_none(), "pending creates left after gc: {}", db["pending_creates"]);
    let vms = db["vms"].as_object().unwrap();
    let live = |name: &str| vms.get(name).is_some_and(|r| r["status"] != "destroyed");
    let live_ips: BTreeSet<String> =
        vms.values().filter(|r| r["status"] != "destroyed").map(|r| r["ip_address"].as_str().unwrap().to_string()).collect();
    let live_ipv6s: BTreeSet<String> =
        vms.values().filter(|r| r["status"] != "destroyed").map(|r| r["ipv6_address"].as_str().unwrap().to_string()).collect();
    for (key, owned) in [("allocated_ips", &live_ips), ("allocated_ipv6", &live_ipv6s)] {
        let list = strings(&db, key);
        let set: BTreeSet<String> = list.iter().cloned().collect();
        assert_eq!(set.len(), list.len(), "{key} has duplicates: {list:?}");
        assert_eq!(&set, owned, "{key} must be exactly the addresses of live records");
    }
    for name in entries(&root.mock_dir().join("domains"), ".json") {
        assert!(live(&name), "domain {name} has no live record");
    }
    for name in entries(&root.mock_dir().join("seeds"), "") {
        assert!(live(&name), "seed dir {name} has no live record");
    }
    for name in committed.keys().filter(|n| !destroy_targets.contains(*n)) {
        assert_eq!(vms[name.as_str()]["status"], "active", "{name}");
        assert!(root.mock_dir().join("domains").join(format!("{name}.json")).exists(), "{name} lost its VM");
    }
    assert!(!root.path("run/blockhost/provisioning.lock").exists(), "provisioning lock left after gc");

    // gc (and the mock on opening) sweep the temp files of writers killed mid-write.
    let litter = [root.mock_dir(), root.mock_dir().join("domains")]
        .iter()
        .flat_map(|d| std::fs::read_dir(d).into_iter().flatten().flatten())
        .filter(|e| e.file_name().to_string_lossy().ends_with(".tmp"))
        .count();
    assert_eq!(litter, 0, "temporary files left by killed writers");

    // Still fully usable: a fresh create gets an address nobody holds.
    let out = command(&root, "blockhost-vm-create").args(create_args("after")).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let stdout = String::from_utf8(out.stdout).unwrap();
    let result: Value = serde_json::from_str(stdout.lines().last().unwrap()).unwrap();
    assert!(!live_ips.contains(result["ip"].as_str().unwrap()));
}
