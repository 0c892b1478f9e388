//! The executables are fronts over libblockhost_cli.so: none links a backend
//! library, each answers --version without the library, a missing library
//! is one line and exit 1, and `blockhost-vm-metrics <vm>` answers from the
//! shared sample without it.

mod common;

use common::{bin_path, Root, BINARIES};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

fn needed(exe: &Path) -> String {
    let out = Command::new("readelf").arg("-d").arg(exe).output().expect("readelf (binutils) runs");
    assert!(out.status.success(), "readelf -d {}", exe.display());
    String::from_utf8_lossy(&out.stdout).lines().filter(|l| l.contains("(NEEDED)")).collect::<Vec<_>>().join("\n")
}

#[test]
fn no_executable_links_a_backend_library() {
    for exe in BINARIES {
        let libraries = needed(&bin_path(exe));
        assert!(libraries.contains("libc.so.6"), "{exe}: {libraries}");
        assert!(!libraries.contains("libvirt"), "{exe} links libvirt itself:\n{libraries}");
    }
}

/// A copy of executable `exe` in a directory of its own, with no library beside it.
fn lonely_copy(dir: &Path, exe: &str) -> PathBuf {
    let copy = dir.join(exe);
    std::fs::copy(bin_path(exe), &copy).unwrap();
    copy
}

/// Runs a freshly written executable. A child that another test thread
/// forked while the copy was open for writing holds that descriptor until it
/// execs, and the kernel refuses to run the file meanwhile (ETXTBSY): a
/// moment later it runs.
fn output(cmd: &mut Command) -> Output {
    for _ in 0..100 {
        match cmd.output() {
            Err(e) if e.kind() == std::io::ErrorKind::ExecutableFileBusy => std::thread::sleep(Duration::from_millis(20)),
            other => return other.unwrap(),
        }
    }
    panic!("{cmd:?} stayed busy for 2 s");
}

#[test]
fn without_the_library_version_and_help_work_and_a_verb_says_what_is_missing() {
    let root = Root::new();
    let dir = tempfile::tempdir().unwrap();
    let list = lonely_copy(dir.path(), "blockhost-vm-list");
    let version = root.std_cmd("blockhost-vm-list").arg("--version").output().unwrap();
    let lonely_version = output(Command::new(&list).arg("--version"));
    assert_eq!((lonely_version.status.code(), &lonely_version.stdout), (Some(0), &version.stdout));
    let out = output(&mut mock_cmd(&list, &root));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(out.stdout.is_empty());
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    let expected = format!("blockhost-vm-list: cannot load {}/../lib/blockhost-provisioner/libblockhost_cli.so: ", dir.path().display());
    assert!(stderr.starts_with(&expected) && stderr.trim_end().ends_with("; reinstall the package"), "{stderr}");
}

/// `exe` on the mock in `root`, with nothing else from this environment.
fn mock_cmd(exe: &Path, root: &Root) -> Command {
    let mut cmd = Command::new(exe);
    cmd.env_clear().env("PATH", std::env::var_os("PATH").unwrap_or_default());
    cmd.env("BLOCKHOST_ROOT", root.path("")).env("BLOCKHOST_PROVIDER", "mock");
    cmd
}

fn taken_at(root: &Root) -> Option<f64> {
    let text = std::fs::read_to_string(root.path("var/lib/blockhost/metrics/shared.json")).ok()?;
    serde_json::from_str::<serde_json::Value>(&text).ok()?["taken_at"].as_f64()
}

#[test]
fn metrics_of_a_vm_comes_from_the_shared_sample_without_the_library_and_an_old_one_is_retaken() {
    let root = Root::new();
    root.create("a");
    let mut qemu = Command::new("sleep").arg("60").spawn().unwrap();
    let pid = qemu.id().to_string();
    let with_knobs = |exe: &Path, args: &[&str]| {
        output(mock_cmd(exe, &root).args(args).env("BLOCKHOST_MOCK_QEMU_PID", &pid))
    };
    let all = with_knobs(&bin_path("blockhost-vm-metrics"), &["--all"]);
    assert_eq!(all.status.code(), Some(0));
    let all: serde_json::Value = serde_json::from_slice(&all.stdout).unwrap();
    let first = taken_at(&root).expect("the bulk call wrote the shared sample");

    let dir = tempfile::tempdir().unwrap();
    let lonely = lonely_copy(dir.path(), "blockhost-vm-metrics");
    let out = with_knobs(&lonely, &["a"]);
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let line = String::from_utf8(out.stdout).unwrap();
    assert_eq!(line, format!("{}\n", provisioner::host::pyjson::dumps(&all["a"])), "the bulk call's figures, byte for byte");
    assert!(out.stderr.is_empty());

    std::thread::sleep(Duration::from_millis(1100));
    let out = with_knobs(&bin_path("blockhost-vm-metrics"), &["a"]);
    assert_eq!(String::from_utf8(out.stdout).unwrap(), line, "still answered from the sample");
    let deadline = Instant::now() + Duration::from_secs(10);
    while taken_at(&root) == Some(first) {
        assert!(Instant::now() < deadline, "the sample, older than a second, was not retaken in the background");
        std::thread::sleep(Duration::from_millis(20));
    }

    qemu.kill().unwrap();
    qemu.wait().unwrap();
    let out = with_knobs(&lonely, &["a"]);
    assert_eq!(out.status.code(), Some(1), "its process ended: the backend must be asked, and the library is missing");
}
