//! Process identity for lock and journal ownership: a PID plus its start time, so a
//! recycled PID is not mistaken for the process that wrote an entry.

use std::fs;
pub use sys::pid_exists;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProcessId {
    pub pid: u32,
    /// Start time in clock ticks since boot (field 22 of `/proc/<pid>/stat`), 0 if unknown.
    pub start_ticks: u64,
}

impl ProcessId {
    pub fn current() -> Self {
        let pid = std::process::id();
        Self { pid, start_ticks: start_ticks(pid).unwrap_or(0) }
    }

    /// Alive and, when both start times are known, the same incarnation.
    pub fn is_alive(&self) -> bool {
        if !pid_exists(self.pid) {
            return false;
        }
        match (self.start_ticks, start_ticks(self.pid)) {
            (0, _) | (_, None) => true,
            (expected, Some(actual)) => expected == actual,
        }
    }
}

/// The command line of a running process, arguments joined by spaces and
/// control characters shown as `?`, at most 200 characters; `None` when unreadable.
pub fn command_line(pid: u32) -> Option<String> {
    let raw = fs::read(format!("/proc/{pid}/cmdline")).ok().filter(|r| !r.is_empty())?;
    let text = String::from_utf8_lossy(&raw);
    let line: String = text
        .trim_end_matches('\0')
        .chars()
        .map(|c| if c == '\0' { ' ' } else if c.is_control() { '?' } else { c })
        .take(200)
        .collect();
    Some(line)
}

fn start_ticks(pid: u32) -> Option<u64> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) may contain spaces and parentheses: skip past its last ')'.
    let rest = &stat[stat.rfind(')')? + 1..];
    rest.split_whitespace().nth(19)?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn current_process_is_alive() {
        let me = ProcessId::current();
        assert!(me.start_ticks > 0);
        assert!(me.is_alive());
    }

    #[test]
    fn recycled_pid_is_not_alive() {
        let me = ProcessId::current();
        let other = ProcessId { start_ticks: me.start_ticks + 1, ..me };
        assert!(!other.is_alive());
    }

    #[test]
    fn command_line_of_a_running_process() {
        let mut child = std::process::Command::new("sleep").arg("30").spawn().unwrap();
        // Until the child has executed `sleep`, its command line is still ours.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        while command_line(child.id()).as_deref() != Some("sleep 30") {
            assert!(std::time::Instant::now() < deadline, "{:?}", command_line(child.id()));
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        child.kill().unwrap();
        child.wait().unwrap();
        assert_eq!(command_line(child.id()), None);
    }

    #[test]
    fn exited_child_is_not_alive() {
        let pid = testkit::dead_pid();
        assert!(!pid_exists(pid) || start_ticks(pid).is_none());
        assert!(!pid_exists(0));
    }
}
