//! Test support shared by the workspace's suites: skips that the test runner
//! counts as skipped, never as passed, and small process helpers.
//!
//! libtest has no run-time skip: a test that returns early is reported as
//! passed. A test that cannot run here calls [`skip`] (the condition is
//! outside the project's control, e.g. a provider that does not declare a
//! capability) or [`require`] (the project's own scripts can provide the
//! condition: a tool, root, a service). Both write `<test>\t<reason>` to the
//! file named by `BLOCKHOST_TEST_SKIPS`, which `scripts/test.sh` sets and
//! reads for its closing summary. Under `CI=true`, a failed [`require`]
//! fails the test instead: CI installs what the tests need.

use std::io::Write;

const SKIP_LOG: &str = "BLOCKHOST_TEST_SKIPS";

/// Records that the calling test skipped, and why. The caller returns.
pub fn skip(reason: &str) {
    let test = std::thread::current().name().unwrap_or("<unnamed>").to_string();
    eprintln!("skipped {test}: {reason}");
    let Some(log) = std::env::var_os(SKIP_LOG) else { return };
    let line = format!("{test}\t{}\n", reason.replace(['\t', '\n'], " "));
    // One short O_APPEND write per skip keeps lines whole across test processes.
    let written = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&log)
        .and_then(|mut file| file.write_all(line.as_bytes()));
    if let Err(e) = written {
        panic!("cannot record the skip in {}: {e}", std::path::Path::new(&log).display());
    }
}

/// True when `condition` holds. Otherwise the test is skipped with `reason`,
/// or fails under `CI=true`, where the scripts must have provided it.
pub fn require(condition: bool, reason: &str) -> bool {
    if condition {
        return true;
    }
    if in_ci() {
        panic!("{reason} (CI=true: the project's scripts must provide this, so it may not be skipped)");
    }
    skip(reason);
    false
}

/// True when `program` is found on PATH.
pub fn on_path(program: &str) -> bool {
    std::env::var_os("PATH")
        .is_some_and(|path| std::env::split_paths(&path).any(|dir| dir.join(program).is_file()))
}

/// True when the tests run as root.
pub fn is_root() -> bool {
    use std::os::unix::fs::MetadataExt;
    // /proc/self belongs to the process's effective user.
    std::fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0)
}

/// The PID of a process that has exited and been reaped: no process has it
/// now (until the kernel hands it out again, far later).
pub fn dead_pid() -> u32 {
    let mut child = std::process::Command::new("true").spawn().expect("run true");
    let pid = child.id();
    child.wait().expect("reap true");
    pid
}

fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true")
}
