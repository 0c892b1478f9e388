//! Nothing waits forever: the VM database lock wait is bounded, told and
//! interruptible; a provisioning lock whose PID now belongs to an unrelated
//! process is stale; `--cloud-init-content` reads only a bounded regular file.

mod common;
use common::{Root, WALLET};
use std::io::{BufRead, BufReader, Read};
use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// A Python process holding `<db>.lock` the way blockhost-common's writers do.
struct Holder(Child);

impl Holder {
    fn lock(db: &Path) -> Self {
        let script = "import fcntl, sys, time\nf = open(sys.argv[1], 'a')\nfcntl.flock(f, fcntl.LOCK_EX)\nprint('locked', flush=True)\ntime.sleep(120)";
        let mut lock = db.as_os_str().to_owned();
        lock.push(".lock");
        std::fs::create_dir_all(db.parent().unwrap()).unwrap();
        let mut child = Command::new("python3").args(["-c", script]).arg(lock).stdout(Stdio::piped()).spawn().unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
        assert_eq!(line, "locked\n");
        Self(child)
    }

    fn pid(&self) -> u32 {
        self.0.id()
    }
}

impl Drop for Holder {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Waits for `child` at most `limit`; kills it and fails when it takes longer.
fn wait_at_most(child: &mut Child, limit: Duration, what: &str) -> ExitStatus {
    let started = Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        if started.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{what} still running after {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Stderr lines of `child` as they come.
fn stderr_lines(child: &mut Child) -> mpsc::Receiver<String> {
    let (tx, rx) = mpsc::channel();
    let stderr = BufReader::new(child.stderr.take().unwrap());
    std::thread::spawn(move || {
        for line in stderr.lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    rx
}

/// Reads lines until one starts with `prefix`; fails after `limit`.
fn expect_line(lines: &mpsc::Receiver<String>, prefix: &str, limit: Duration) -> String {
    let deadline = Instant::now() + limit;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match lines.recv_timeout(left) {
            Ok(line) if line.starts_with(prefix) => return line,
            Ok(_) => {}
            Err(_) => panic!("no line starting with {prefix:?} within {limit:?}"),
        }
    }
}

fn python_available() -> bool {
    testkit::require(testkit::on_path("python3"), "a Python writer holds the database lock")
}

#[test]
fn the_database_lock_wait_is_bounded_and_names_its_holder() {
    if !python_available() {
        return;
    }
    let root = Root::new();
    root.create("vm1");
    let before = root.db_text();
    let holder = Holder::lock(&root.db_path());
    let mut child = root
        .std_cmd("blockhost-vm-destroy")
        .arg("vm1")
        .env("BLOCKHOST_DB_LOCK_TIMEOUT", "2")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let lines = stderr_lines(&mut child);
    let status = wait_at_most(&mut child, Duration::from_secs(10), "destroy waiting for the lock");
    let stderr: String = lines.iter().map(|l| l + "\n").collect();
    assert_eq!(status.code(), Some(1), "{stderr}");
    let lines: Vec<&str> = stderr.lines().collect();
    let lock = format!("{}.lock", root.db_path().display());
    assert_eq!(lines.len(), 2, "{stderr}");
    assert!(lines[0].starts_with(&format!("Waiting for the VM database lock {lock}, held by PID {} (", holder.pid())), "{stderr}");
    assert!(lines[1].starts_with(&format!("blockhost-vm-destroy: {lock}: the VM database is locked by PID {} (", holder.pid())), "{stderr}");
    assert!(lines[1].ends_with("and was not released within 2 s (db.yaml db_lock_timeout_seconds, or BLOCKHOST_DB_LOCK_TIMEOUT)"), "{stderr}");
    assert_eq!(root.db_text(), before);
    drop(holder);
}

#[test]
fn a_signal_while_waiting_for_the_database_ends_the_verb_promptly_with_nothing_changed() {
    if !python_available() {
        return;
    }
    let root = Root::new();
    root.create("vm1");
    let before = root.db_text();
    let _holder = Holder::lock(&root.db_path());
    for (bin, args, signal) in [
        ("blockhost-vm-create", &["vm2", "--owner-wallet", WALLET, "--apply"][..], "TERM"),
        ("blockhost-vm-create", &["vm2", "--owner-wallet", WALLET, "--apply"][..], "INT"),
        ("blockhost-vm-destroy", &["vm1"][..], "TERM"),
    ] {
        let mut child = root.std_cmd(bin).args(args).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
        let lines = stderr_lines(&mut child);
        expect_line(&lines, "Waiting for the VM database lock", Duration::from_secs(15));
        assert!(Command::new("kill").arg(format!("-{signal}")).arg(child.id().to_string()).status().unwrap().success());
        let signalled = Instant::now();
        let status = wait_at_most(&mut child, Duration::from_secs(5), bin);
        assert!(signalled.elapsed() < Duration::from_secs(2), "{bin} took {:?}", signalled.elapsed());
        let number = if signal == "TERM" { 15 } else { 2 };
        let ended_by_signal = status.code() == Some(128 + number) || status.signal() == Some(number);
        assert!(ended_by_signal, "{bin} SIG{signal}: {status}");
        if bin == "blockhost-vm-create" {
            assert_eq!(status.code(), Some(128 + number));
            let mut stdout = String::new();
            child.stdout.take().unwrap().read_to_string(&mut stdout).unwrap();
            assert_eq!(stdout, format!("{{\"status\": \"error\", \"error\": \"interrupted by signal {number}\"}}\n"));
        }
        assert_eq!(root.db_text(), before, "{bin} changed the database");
        assert!(!root.mock_dir().join("domains/vm2.json").exists());
    }
}

#[test]
fn a_provisioning_lock_of_an_unrelated_live_process_is_stale() {
    let root = Root::new();
    let marker = root.path("run/blockhost/provisioning.lock");
    let mut unrelated = Command::new("sleep").arg("120").spawn().unwrap();
    let pid = unrelated.id();
    let stale = format!("stale provisioning lock (PID {pid} is running but is not a provisioning process: ");

    root.write("run/blockhost/provisioning.lock", &pid.to_string());
    let gc = root.run("blockhost-vm-gc", &["--execute"]);
    assert_eq!(gc.code, 0, "{}", gc.stderr);
    assert!(gc.stderr.contains(&format!("warning: cleared {stale}")), "{}", gc.stderr);
    assert!(!marker.exists(), "gc clears the marker");

    root.write("run/blockhost/provisioning.lock", &pid.to_string());
    let create = root.run("blockhost-vm-create", &["vm1", "--owner-wallet", WALLET, "--apply"]);
    assert_eq!(create.code, 0, "{}", create.stderr);
    assert!(create.stderr.contains(&format!("warning: taking over {stale}")), "{}", create.stderr);
    assert!(!marker.exists(), "the create's marker goes with it");
    unrelated.kill().unwrap();
    unrelated.wait().unwrap();
}

#[test]
fn cloud_init_content_must_be_a_bounded_regular_file() {
    let root = Root::new();
    let fifo = root.path("user-data.fifo");
    assert!(Command::new("mkfifo").arg(&fifo).status().unwrap().success());
    let big = root.path("big.yaml");
    std::fs::write(&big, vec![b'#'; 1024 * 1024 + 1]).unwrap();
    let cases = [
        (fifo.clone(), "cloud-init content must be a regular file, not a FIFO".to_string()),
        ("/dev/null".into(), "cloud-init content must be a regular file, not a character device".into()),
        (root.path("etc"), "cloud-init content must be a regular file, not a directory".into()),
        (big.clone(), "cloud-init content is larger than the limit of 1048576 bytes (1 MiB)".into()),
    ];
    for (path, message) in cases {
        let mut child = root
            .std_cmd("blockhost-vm-create")
            .args(["vm1", "--owner-wallet", WALLET, "--apply", "--cloud-init-content"])
            .arg(&path)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let lines = stderr_lines(&mut child);
        let status = wait_at_most(&mut child, Duration::from_secs(10), "create with special cloud-init content");
        let stderr: String = lines.iter().map(|l| l + "\n").collect();
        assert_eq!(status.code(), Some(1), "{}: {stderr}", path.display());
        assert_eq!(stderr, format!("blockhost-vm-create: {}: {message}\n", path.display()));
        assert!(!root.db_path().exists(), "nothing was reserved");
    }
}
