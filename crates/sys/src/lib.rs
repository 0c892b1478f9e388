//! Process-level system calls shared by the library and the template builder,
//! through `rustix`'s safe wrappers. The one `unsafe` outside the libvirt FFI
//! lives here: std makes registering a fork-to-exec hook unsafe whatever the hook does.

use rustix::process::{self, Pid, Signal};
use std::os::unix::process::CommandExt;
use std::process::Command;

/// `kill(pid, 0)`: success or EPERM both mean the process exists.
pub fn pid_exists(pid: u32) -> bool {
    let Some(pid) = i32::try_from(pid).ok().and_then(Pid::from_raw) else { return false };
    matches!(process::test_kill_process(pid), Ok(()) | Err(rustix::io::Errno::PERM))
}

/// Makes the child get SIGKILL when this process dies, so a killed build
/// leaves no debootstrap or QEMU behind.
pub fn die_with_parent(cmd: &mut Command) {
    // SAFETY: the hook makes one prctl system call (async-signal-safe), allocates
    // nothing and touches only the child's own state.
    unsafe {
        cmd.pre_exec(|| Ok(process::set_parent_process_death_signal(Some(Signal::KILL))?));
    }
}

/// This machine's host name (`uname -n`), without a domain part.
pub fn host_name() -> Option<String> {
    let uname = rustix::system::uname();
    let name = uname.nodename().to_string_lossy();
    name.split('.').next().filter(|n| !n.is_empty()).map(str::to_string)
}

/// Kills this process with SIGKILL, as an operator's `kill -9` would.
pub fn kill_self() {
    let _ = process::kill_process(process::getpid(), Signal::KILL);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pid_exists_for_this_process_and_not_for_pid_zero_or_a_reaped_child() {
        assert!(pid_exists(std::process::id()));
        assert!(!pid_exists(0));
        assert!(!pid_exists(u32::MAX));
        let mut child = Command::new("true").spawn().unwrap();
        let pid = child.id();
        child.wait().unwrap();
        assert!(!pid_exists(pid));
    }

    #[test]
    fn a_child_set_to_die_with_its_parent_still_runs() {
        let mut cmd = Command::new("sh");
        cmd.args(["-c", "exit 7"]);
        die_with_parent(&mut cmd);
        assert_eq!(cmd.status().unwrap().code(), Some(7));
    }
}
