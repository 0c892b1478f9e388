//! Soak: creates, destroys, gcs and resumes, many of them SIGKILLed at a point
//! chosen from what they have done, while another component (a Python writer
//! following blockhost-common's lock-file protocol, tests/soak/vmdb_writer.py)
//! keeps rewriting the same database. Afterwards, and after one gc: the database
//! parses, no committed record is lost, every live record has its VM and every
//! VM its record, every allocated address belongs to a live record, the create
//! journal is empty, and none of the writer's updates was lost.
//! Kills are placed by progress lines and by the mock's state, never by sleeps.

mod common;
use common::{Root, WALLET};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader, Write};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

const ROUNDS: usize = 120;
/// Whatever the machine, the soak ends by then (and fails if it has not).
const BOUND: Duration = Duration::from_secs(60);
const WRITER: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/soak/vmdb_writer.py");

/// SplitMix64: the same schedule on every run.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        (z ^ (z >> 31)) % n
    }

    fn pick<'a>(&mut self, names: &'a [String]) -> Option<&'a String> {
        (!names.is_empty()).then(|| &names[self.below(names.len() as u64) as usize])
    }
}

fn db(root: &Root) -> Value {
    let text = std::fs::read_to_string(root.db_path()).unwrap();
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("vms.json does not parse: {e}\n{text}"))
}

fn names_with_status(db: &Value, status: &str) -> Vec<String> {
    db["vms"].as_object().unwrap().iter().filter(|(_, r)| r["status"] == status).map(|(n, _)| n.clone()).collect()
}

fn domain(root: &Root, name: &str) -> Option<Value> {
    let text = std::fs::read_to_string(root.mock_dir().join("domains").join(format!("{name}.json"))).ok()?;
    serde_json::from_str(&text).ok()
}

/// Changes the database under its lock, as any other component may.
fn locked_edit(root: &Root, edit: impl FnOnce(&mut Value)) {
    let mut lock_path = root.db_path().into_os_string();
    lock_path.push(".lock");
    let lock = std::fs::OpenOptions::new().create(true).append(true).open(&lock_path).unwrap();
    lock.lock().unwrap();
    let mut value = db(root);
    edit(&mut value);
    let tmp = root.mock_dir().join("soak-edit.tmp");
    let mut file = std::fs::File::create(&tmp).unwrap();
    file.write_all(serde_json::to_string_pretty(&value).unwrap().as_bytes()).unwrap();
    file.sync_all().unwrap();
    std::fs::rename(&tmp, root.db_path()).unwrap();
}

fn spawn(root: &Root, bin: &str, args: &[&str]) -> (Child, mpsc::Receiver<String>) {
    let mut child = root.std_cmd(bin).args(args).stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::piped()).spawn().unwrap();
    let (tx, rx) = mpsc::channel();
    let stderr = BufReader::new(child.stderr.take().unwrap());
    std::thread::spawn(move || {
        for line in stderr.lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    (child, rx)
}

/// Waits for a stderr line starting with `marker`; false when the process ended first.
fn reached(lines: &mpsc::Receiver<String>, marker: &str) -> bool {
    lines.iter().any(|line| line.starts_with(marker))
}

/// Polls `state` until it holds or `child` has exited; true when it held.
fn state_reached(child: &mut Child, state: impl Fn() -> bool) -> bool {
    loop {
        if state() {
            return true;
        }
        if child.try_wait().unwrap().is_some() {
            return false;
        }
        std::thread::yield_now();
    }
}

fn kill(mut child: Child) {
    let _ = child.kill();
    child.wait().unwrap();
}

fn finish(mut child: Child, what: &str) {
    let status = child.wait().unwrap();
    assert!(status.success(), "{what}: {status}");
}

/// Progress lines of a create, in order; a create killed after the last one has committed.
const CREATE_MARKERS: [&str; 5] = ["Reserved ", "Bootstrap staged", "VM ", "Waiting up to", "Guest agent answered"];

#[test]
fn interleaved_killed_verbs_and_a_python_writer_leave_a_consistent_host() {
    if !testkit::require(testkit::on_path("python3"), "the concurrent writer is a Python script") {
        return;
    }
    let started = Instant::now();
    let root = Root::new();
    let mut committed: BTreeSet<String> = BTreeSet::new();
    root.create("seed");
    committed.insert("seed".into());

    let stop = root.path("stop-writer");
    let writer = Command::new("python3").arg(WRITER).arg(root.db_path()).arg(&stop).stdout(Stdio::piped()).spawn().unwrap();

    let mut rng = Rng(0x50A4_2026);
    let mut kinds: BTreeMap<&str, usize> = BTreeMap::new();
    for round in 0..ROUNDS {
        assert!(started.elapsed() < BOUND, "soak exceeded {BOUND:?} at round {round}");
        let now = db(&root);
        let active = names_with_status(&now, "active");
        let suspended = names_with_status(&now, "suspended");
        match rng.below(8) {
            0..=2 => {
                let name = format!("c{round:02}");
                let marker = CREATE_MARKERS[rng.below(CREATE_MARKERS.len() as u64) as usize];
                let (child, lines) = spawn(&root, "blockhost-vm-create", &[&name, "--owner-wallet", WALLET, "--apply"]);
                assert!(reached(&lines, marker), "create {name} ended before {marker:?}");
                kill(child);
                *kinds.entry("create killed").or_default() += 1;
                if db(&root)["vms"].get(&name).is_some() {
                    committed.insert(name);
                }
            }
            3 => {
                let name = format!("c{round:02}");
                let (child, _) = spawn(&root, "blockhost-vm-create", &[&name, "--owner-wallet", WALLET, "--apply"]);
                finish(child, &format!("create {name}"));
                committed.insert(name);
                *kinds.entry("create").or_default() += 1;
            }
            4 => {
                let Some(name) = rng.pick(&active).cloned() else { continue };
                let (mut child, _) = spawn(&root, "blockhost-vm-destroy", &[&name]);
                // Killed once its VM is gone: between terminating and recording, or just after.
                state_reached(&mut child, || domain(&root, &name).is_none());
                kill(child);
                *kinds.entry("destroy killed").or_default() += 1;
            }
            5 => {
                // An active VM expires; gc suspends it (killed half of the time once it has stopped the VM).
                let Some(name) = rng.pick(&active).cloned() else { continue };
                locked_edit(&root, |db| db["vms"][&name]["expires_at"] = "2020-01-01T00:00:00+00:00".into());
                let (mut child, _) = spawn(&root, "blockhost-vm-gc", &["--execute", "--suspend-only", "--stop-timeout", "5"]);
                if rng.below(2) == 0 {
                    state_reached(&mut child, || domain(&root, &name).is_none_or(|d| d["power"] != "running"));
                    kill(child);
                    *kinds.entry("gc killed").or_default() += 1;
                } else {
                    finish(child, "gc");
                    *kinds.entry("gc").or_default() += 1;
                }
            }
            6 => {
                let Some(name) = rng.pick(&suspended).cloned() else { continue };
                let (mut child, _) = spawn(&root, "blockhost-vm-resume", &[&name]);
                // Killed once its VM runs again: before or after the record says active.
                state_reached(&mut child, || domain(&root, &name).is_some_and(|d| d["power"] == "running"));
                kill(child);
                *kinds.entry("resume killed").or_default() += 1;
            }
            _ => {
                let (child, _) = spawn(&root, "blockhost-vm-gc", &["--execute"]);
                finish(child, "gc");
                *kinds.entry("gc").or_default() += 1;
            }
        }
    }
    std::fs::write(&stop, "").unwrap();
    let out = writer.wait_with_output().unwrap();
    assert!(out.status.success(), "the Python writer saw a lost update: {out:?}");
    let writes: u64 = String::from_utf8(out.stdout).unwrap().trim().parse().unwrap();
    eprintln!("rounds: {kinds:?}; the Python writer made {writes} updates");
    assert!(kinds.get("create killed").copied().unwrap_or(0) >= 8 && writes >= 10, "too little happened: {kinds:?}, {writes}");

    let gc = root.run("blockhost-vm-gc", &["--execute"]);
    assert_eq!(gc.code, 0, "gc: {}{}", gc.stdout, gc.stderr);
    let db = db(&root);
    assert_eq!(db["soak_writer_count"], writes, "an update of the Python writer was lost");
    assert!(db.get("pending_creates").is_none(), "journal entries left after gc: {}", db["pending_creates"]);
    let vms = db["vms"].as_object().unwrap();
    for name in &committed {
        assert!(vms.contains_key(name), "committed record {name} lost");
    }
    let live: BTreeSet<&String> = vms.iter().filter(|(_, r)| r["status"] != "destroyed").map(|(n, _)| n).collect();
    let domains: BTreeSet<String> = std::fs::read_dir(root.mock_dir().join("domains"))
        .unwrap()
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.strip_suffix(".json").map(str::to_string))
        .filter(|n| !n.starts_with('.'))
        .collect();
    assert_eq!(live, domains.iter().collect(), "live records and VMs differ");
    for (key, field) in [("allocated_ips", "ip_address"), ("allocated_ipv6", "ipv6_address")] {
        let allocated: Vec<&str> = db[key].as_array().unwrap().iter().map(|v| v.as_str().unwrap()).collect();
        let held: BTreeSet<&str> = live.iter().map(|n| vms[n.as_str()][field].as_str().unwrap()).collect();
        assert_eq!(allocated.iter().copied().collect::<BTreeSet<_>>(), held, "{key}: addresses held by nothing");
        assert_eq!(allocated.len(), held.len(), "{key} has duplicates");
    }
    assert!(started.elapsed() < BOUND, "soak took {:?}", started.elapsed());
}
