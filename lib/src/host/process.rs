//! Process identity for lock and journal ownership: a PID plus its start time, so a
//! recycled PID is not mistaken for the process that wrote an entry.

use std::collections::HashMap;
use std::fs;
pub use sys::pid_exists;

pub use crate::model::ProcessId;

impl ProcessId {
    pub fn current() -> Self {
        let pid = std::process::id();
        Self { pid, start_ticks: start_ticks(pid).unwrap_or(0) }
    }

    /// The running process `pid`, when its start time can be read.
    pub fn of(pid: u32) -> Option<Self> {
        Some(Self { pid, start_ticks: start_ticks(pid)? })
    }

    /// Alive and provably the same incarnation: its start time is known and
    /// still reads the same (an unreadable `/proc/<pid>/stat` proves nothing).
    pub fn is_verified_alive(&self) -> bool {
        self.start_ticks != 0 && start_ticks(self.pid) == Some(self.start_ticks)
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

/// Every readable process whose command line has `flag` followed by a value,
/// keyed by that value (QEMU's `-uuid <uuid>`), from one pass over `/proc`.
pub fn by_argument(flag: &str) -> HashMap<String, ProcessId> {
    let Ok(entries) = fs::read_dir("/proc") else { return HashMap::new() };
    let mut found = HashMap::new();
    for pid in entries.flatten().filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok()) {
        let Ok(raw) = fs::read(format!("/proc/{pid}/cmdline")) else { continue };
        let mut args = raw.split(|b| *b == 0);
        let value = args.by_ref().position(|a| a == flag.as_bytes()).and_then(|_| args.next());
        let Some(value) = value.and_then(|v| std::str::from_utf8(v).ok()) else { continue };
        if let Some(process) = ProcessId::of(pid) {
            found.insert(value.to_string(), process);
        }
    }
    found
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
        assert!(me.is_verified_alive());
        assert!(!other.is_verified_alive());
        assert!(!ProcessId { start_ticks: 0, ..me }.is_verified_alive(), "an unknown start time proves nothing");
    }

    #[test]
    fn processes_are_found_by_the_value_after_a_flag() {
        let tag = format!("probe-{}", std::process::id());
        // `; :` keeps the shell from replacing itself with sleep, which would drop the arguments.
        let mut child = std::process::Command::new("sh").args(["-c", "sleep 30; :", "-uuid", &tag]).spawn().unwrap();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        let found = loop {
            if let Some(found) = by_argument("-uuid").remove(&tag) {
                break found;
            }
            assert!(std::time::Instant::now() < deadline, "no process with -uuid {tag}");
            std::thread::sleep(std::time::Duration::from_millis(10));
        };
        assert_eq!(found.pid, child.id());
        assert!(found.is_verified_alive());
        child.kill().unwrap();
        child.wait().unwrap();
        assert!(!found.is_verified_alive());
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
