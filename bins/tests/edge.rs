//! The edge every executable shares, checked on each of them: the exit code of
//! a usage error (2; create 1 with the error JSON; status 0 printing `unknown`)
//! with one `<prog>: <message>` line; a reader that closed stdout or stderr
//! changes no exit code and causes no panic; SIGTERM and SIGINT end the work
//! with 128 + signal as a shell sees it (create catches them, undoes what it
//! did and exits so itself; the others end by the signal).

mod common;
use common::{set_record_field, Root, BINARIES, WALLET};
use std::os::unix::process::ExitStatusExt;
use std::process::{Command, ExitStatus, Output, Stdio};
use std::time::{Duration, Instant};

/// One executable's runs, in a root with the active VMs `vm1`, `off` and `gone`
/// and the suspended VM `vm2` (see `root`).
struct Case {
    bin: &'static str,
    /// A run that does its work (exit 0).
    works: &'static [&'static str],
    /// A run that is still at work for a while (mock knobs), to be signalled;
    /// `None`: the executable has nothing to wait for (detect only looks around).
    slow: Option<(&'static [&'static str], (&'static str, &'static str))>,
}

const LATENCY: (&str, &str) = ("BLOCKHOST_MOCK_LATENCY_MS", "20000");

fn cases() -> Vec<Case> {
    let case = |bin, works, slow| Case { bin, works, slow };
    vec![
        case(
            "blockhost-vm-create",
            &["vm9", "--owner-wallet", WALLET],
            Some((&["vm9", "--owner-wallet", WALLET, "--apply"][..], ("BLOCKHOST_MOCK_AGENT_DELAY_MS", "120000"))),
        ),
        case("blockhost-vm-destroy", &["gone"], Some((&["gone"], LATENCY))),
        case("blockhost-vm-start", &["vm1"], Some((&["vm1"], LATENCY))),
        case("blockhost-vm-stop", &["off"], Some((&["off"], LATENCY))),
        case("blockhost-vm-kill", &["off"], Some((&["off"], LATENCY))),
        case("blockhost-vm-status", &["vm1"], Some((&["vm1"], LATENCY))),
        case("blockhost-vm-list", &[], Some((&[], LATENCY))),
        case("blockhost-vm-metrics", &["vm1"], Some((&["vm1"], LATENCY))),
        case("blockhost-vm-throttle", &["vm1", "--cpu-shares", "512"], Some((&["vm1", "--cpu-shares", "512"], LATENCY))),
        case("blockhost-vm-gc", &[], Some((&["--execute"], LATENCY))),
        case("blockhost-vm-gc", &["--reconcile"], Some((&["--reconcile"], LATENCY))),
        case("blockhost-vm-resume", &["vm2", "--dry-run"], Some((&["vm2"], LATENCY))),
        case("blockhost-vm-update-gecos", &["vm1", WALLET, "--nft-id", "1"], Some((&["vm1", WALLET, "--nft-id", "1"], LATENCY))),
        case("blockhost-vm-guest-exec", &["vm1", "echo", "hi"], Some((&["vm1", "true"], LATENCY))),
        case("blockhost-build-template", &[], Some((&[], LATENCY))),
        case("blockhost-provisioner-detect", &[], None),
    ]
}

#[test]
fn the_table_covers_every_executable() {
    let mut listed: Vec<&str> = cases().iter().map(|c| c.bin).collect();
    listed.dedup();
    assert_eq!(listed, BINARIES);
}

fn root() -> Root {
    let root = Root::new();
    for name in ["vm1", "vm2", "off", "gone"] {
        root.create(name);
    }
    assert_eq!(root.run("blockhost-vm-kill", &["vm2"]).code, 0);
    set_record_field(&root, "vm2", "status", serde_json::json!("suspended"));
    set_record_field(&root, "vm2", "suspended_at", serde_json::json!("2026-01-01T00:00:00+00:00"));
    root
}

fn usage_exit(bin: &str) -> i32 {
    match bin {
        "blockhost-vm-create" => 1,
        "blockhost-vm-status" => 0,
        _ => 2,
    }
}

/// How a run's stdout and stderr are connected.
#[derive(Debug, Clone, Copy)]
enum Ends {
    /// Both read to the end.
    Read,
    /// stdout's reader is gone.
    ClosedStdout,
    /// stderr's reader is gone.
    ClosedStderr,
    /// Both readers are gone.
    BothClosed,
}

/// A pipe whose reader is already gone: a write to it fails with EPIPE.
fn closed_pipe() -> Stdio {
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    writer.into()
}

fn run(mut cmd: Command, ends: Ends) -> Output {
    let (stdout_closed, stderr_closed) = match ends {
        Ends::Read => (false, false),
        Ends::ClosedStdout => (true, false),
        Ends::ClosedStderr => (false, true),
        Ends::BothClosed => (true, true),
    };
    if stdout_closed {
        cmd.stdout(closed_pipe());
    }
    if stderr_closed {
        cmd.stderr(closed_pipe());
    }
    cmd.stdin(Stdio::null()).output().unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn assert_no_panic(label: &str, out: &Output) {
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    for bad in ["panicked", "RUST_BACKTRACE", "thread 'main'"] {
        assert!(!stderr.contains(bad) && !stdout.contains(bad), "{label}: {stderr}");
    }
    assert_ne!(out.status.code(), Some(101), "{label}: {stderr}");
    assert_eq!(out.status.signal(), None, "{label}: ended by a signal (SIGPIPE?)");
}

#[test]
fn a_usage_error_is_one_line_and_the_executables_usage_code() {
    let root = Root::new();
    for case in cases() {
        let bin = case.bin;
        let mut cmd = root.std_cmd(bin);
        cmd.arg("--no-such-flag");
        let out = run(cmd, Ends::Read);
        assert_no_panic(bin, &out);
        assert_eq!(out.status.code(), Some(usage_exit(bin)), "{bin}");
        let message = "unexpected argument '--no-such-flag' found";
        assert_eq!(text(&out.stderr), format!("{bin}: {message}\n"), "{bin}");
        let stdout = match bin {
            "blockhost-vm-create" => format!("{{\"status\": \"error\", \"error\": \"{message}\"}}\n"),
            "blockhost-vm-status" => "unknown\n".to_string(),
            _ => String::new(),
        };
        assert_eq!(text(&out.stdout), stdout, "{bin}");
    }
}

#[test]
fn a_usage_error_keeps_its_code_when_nobody_reads() {
    let root = Root::new();
    for case in cases() {
        for ends in [Ends::ClosedStdout, Ends::ClosedStderr, Ends::BothClosed] {
            let mut cmd = root.std_cmd(case.bin);
            cmd.arg("--no-such-flag");
            let out = run(cmd, ends);
            let label = format!("{} {ends:?}", case.bin);
            assert_no_panic(&label, &out);
            assert_eq!(out.status.code(), Some(usage_exit(case.bin)), "{label}");
        }
    }
}

#[test]
fn help_and_version_exit_0_when_nobody_reads() {
    let root = Root::new();
    for case in cases() {
        for flag in ["--help", "--version"] {
            let mut cmd = root.std_cmd(case.bin);
            cmd.arg(flag);
            let out = run(cmd, Ends::BothClosed);
            let label = format!("{} {flag}", case.bin);
            assert_no_panic(&label, &out);
            assert_eq!(out.status.code(), Some(0), "{label}");
        }
    }
}

#[test]
fn work_done_keeps_its_exit_code_when_stdout_or_stderr_is_closed() {
    for ends in [Ends::Read, Ends::ClosedStdout, Ends::ClosedStderr, Ends::BothClosed] {
        // A fresh root per way of reading: the runs change it (destroy, stop, …).
        let root = root();
        for case in cases() {
            let mut cmd = root.std_cmd(case.bin);
            cmd.args(case.works);
            let out = run(cmd, ends);
            let label = format!("{} {:?} {ends:?}", case.bin, case.works);
            assert_no_panic(&label, &out);
            assert_eq!(out.status.code(), Some(0), "{label}: {}", text(&out.stderr));
        }
        assert_eq!(root.db()["vms"]["gone"]["status"], "destroyed", "{ends:?}: the work was done");
    }
}

#[test]
fn a_failure_keeps_its_exit_code_when_stdout_or_stderr_is_closed() {
    let root = root();
    for case in cases() {
        for ends in [Ends::Read, Ends::ClosedStdout, Ends::ClosedStderr, Ends::BothClosed] {
            let mut cmd = root.std_cmd(case.bin);
            cmd.args(case.works).env("BLOCKHOST_PROVIDER", "bogus");
            let out = run(cmd, ends);
            let label = format!("{} {ends:?}", case.bin);
            assert_no_panic(&label, &out);
            let code = if case.bin == "blockhost-vm-status" { 0 } else { 1 };
            assert_eq!(out.status.code(), Some(code), "{label}");
            if let Ends::Read = ends {
                let stderr = text(&out.stderr);
                assert!(stderr.starts_with(&format!("{}: unknown provider \"bogus\"", case.bin)), "{label}: {stderr}");
            }
        }
    }
}

/// Waits for `child`, killing it after `limit`.
fn wait_at_most(child: &mut std::process::Child, limit: Duration, label: &str) -> ExitStatus {
    let start = Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        if start.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{label}: still running after {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn a_signal_ends_the_work_with_128_plus_the_signal() {
    for case in cases() {
        let Some((args, (knob, value))) = case.slow else { continue };
        let root = root();
        for (signal, number) in [("TERM", 15), ("INT", 2)] {
            let label = format!("{} {args:?} SIG{signal}", case.bin);
            let mut child = root
                .std_cmd(case.bin)
                .args(args)
                .env(knob, value)
                .stdin(Stdio::null())
                .stdout(Stdio::piped())
                .stderr(Stdio::null())
                .spawn()
                .unwrap();
            std::thread::sleep(Duration::from_millis(700));
            assert!(child.try_wait().unwrap().is_none(), "{label}: ended before the signal");
            assert!(Command::new("kill").arg(format!("-{signal}")).arg(child.id().to_string()).status().unwrap().success());
            let status = wait_at_most(&mut child, Duration::from_secs(10), &label);
            let mut stdout = String::new();
            std::io::Read::read_to_string(&mut child.stdout.take().unwrap(), &mut stdout).unwrap();
            if case.bin == "blockhost-vm-create" {
                assert_eq!(status.code(), Some(128 + number), "{label}");
                assert_eq!(stdout, format!("{{\"status\": \"error\", \"error\": \"interrupted by signal {number}\"}}\n"));
                assert!(root.db()["vms"].get("vm9").is_none(), "{label}: the create was undone");
            } else {
                assert_eq!(status.signal(), Some(number), "{label}: {status}");
                assert_eq!(stdout, "", "{label}");
            }
        }
    }
}
