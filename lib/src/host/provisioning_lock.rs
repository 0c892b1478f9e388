//! `/run/blockhost/provisioning.lock`: engine reconcilers skip a cycle while it
//! exists. Upstream made it exclusive, serializing every create; here it is a
//! shared marker. Each running create registers a holder file under
//! `provisioning.d/` (name `<pid>-<start ticks>`); the marker exists while any
//! holder lives and contains the decimal PID of one of them (no newline), as the
//! Python provisioners write it. All changes happen under an flock on
//! `provisioning.d/.guard`; holders of dead processes are pruned, and a marker
//! whose PID is not a live holder (its process died, or the PID now belongs to
//! an unrelated process) is stale: taken over or cleared with a warning.

use crate::host::atomic::{open_lock_file, write_atomic};
use crate::host::process::ProcessId;
use crate::host::shared_dir;
use std::fs::File;
use std::path::{Path, PathBuf};

pub const LOCK_FILE: &str = "provisioning.lock";
const HOLDERS_DIR: &str = "provisioning.d";

#[derive(Debug)]
pub struct ProvisioningLock {
    run_dir: PathBuf,
    me: ProcessId,
}

struct Guarded {
    run_dir: PathBuf,
    _guard: File,
}

impl Guarded {
    fn take(run_dir: &Path) -> std::io::Result<Self> {
        let holders = run_dir.join(HOLDERS_DIR);
        shared_dir::create(&holders)?;
        shared_dir::repair(&holders);
        let guard = open_lock_file(&holders.join(".guard"))?;
        guard.lock()?;
        Ok(Self { run_dir: run_dir.to_path_buf(), _guard: guard })
    }

    fn holder_path(&self, who: &ProcessId) -> PathBuf {
        self.run_dir.join(HOLDERS_DIR).join(format!("{}-{}", who.pid, who.start_ticks))
    }

    /// Live holders, after removing the files of dead ones.
    fn live_holders(&self) -> Vec<ProcessId> {
        let Ok(entries) = std::fs::read_dir(self.run_dir.join(HOLDERS_DIR)) else { return Vec::new() };
        let mut live = Vec::new();
        for entry in entries.filter_map(Result::ok) {
            let name = entry.file_name();
            let Some((pid, ticks)) = name.to_str().and_then(|n| n.split_once('-')) else { continue };
            let (Ok(pid), Ok(start_ticks)) = (pid.parse(), ticks.parse()) else { continue };
            let holder = ProcessId { pid, start_ticks };
            if holder.is_alive() {
                live.push(holder);
            } else {
                let _ = std::fs::remove_file(entry.path());
            }
        }
        live.sort_by_key(|h| h.pid);
        live
    }

    fn marker(&self) -> PathBuf {
        self.run_dir.join(LOCK_FILE)
    }

    /// The PID in the marker, `Some(None)` if it is unparsable, `None` if absent.
    fn marker_pid(&self) -> Option<Option<u32>> {
        let text = std::fs::read_to_string(self.marker()).ok()?;
        Some(text.trim().parse().ok())
    }

    /// A warning about a marker that no live holder owns, `None` when the marker
    /// is absent or owned by one of `live`.
    fn stale_marker(&self, live: &[ProcessId]) -> Option<String> {
        let why = match self.marker_pid()? {
            Some(pid) if live.iter().any(|h| h.pid == pid) => return None,
            Some(pid) if crate::host::process::pid_exists(pid) => {
                let command = crate::host::process::command_line(pid).unwrap_or_else(|| "unknown command".into());
                format!("PID {pid} is running but is not a provisioning process: {command}")
            }
            Some(pid) => format!("PID {pid}"),
            None => "unreadable".to_string(),
        };
        Some(format!("stale provisioning lock ({why})"))
    }

    fn write_marker(&self, pid: u32) -> std::io::Result<()> {
        write_atomic(&self.marker(), pid.to_string().as_bytes(), 0o644)
    }
}

impl ProvisioningLock {
    /// Registers this process as provisioning. Returns warnings to show the operator.
    pub fn acquire(run_dir: &Path) -> std::io::Result<(Self, Vec<String>)> {
        let me = ProcessId::current();
        let guarded = Guarded::take(run_dir)?;
        std::fs::write(guarded.holder_path(&me), me.pid.to_string())?;
        let live = guarded.live_holders();
        let mut warnings = Vec::new();
        let owned = matches!(guarded.marker_pid(), Some(Some(pid)) if live.iter().any(|h| h.pid == pid));
        if !owned {
            if let Some(stale) = guarded.stale_marker(&live) {
                warnings.push(format!("taking over {stale}"));
            }
            let owner = live.first().map_or(me.pid, |h| h.pid);
            guarded.write_marker(owner)?;
        }
        Ok((Self { run_dir: run_dir.to_path_buf(), me }, warnings))
    }
}

/// Released when dropped, also on an error path.
impl Drop for ProvisioningLock {
    fn drop(&mut self) {
        let _ = release(&self.run_dir, Some(&self.me));
    }
}

/// Removes `me` (if any) and dead holders; removes the marker when no holder
/// is left, or points it at a live holder. Also what gc runs to clear a lock
/// left by a killed create. Returns a warning when the marker it replaced or
/// removed was not `me`'s and no live holder's.
pub fn release(run_dir: &Path, me: Option<&ProcessId>) -> std::io::Result<Option<String>> {
    if !run_dir.join(HOLDERS_DIR).exists() && !run_dir.join(LOCK_FILE).exists() {
        return Ok(None);
    }
    let guarded = Guarded::take(run_dir)?;
    if let Some(me) = me {
        let _ = std::fs::remove_file(guarded.holder_path(me));
    }
    let live = guarded.live_holders();
    let mine = matches!(guarded.marker_pid(), Some(Some(pid)) if Some(pid) == me.map(|m| m.pid));
    let warning = if mine { None } else { guarded.stale_marker(&live).map(|stale| format!("cleared {stale}")) };
    let owned = matches!(guarded.marker_pid(), Some(Some(pid)) if live.iter().any(|h| h.pid == pid));
    match live.first() {
        None => match std::fs::remove_file(guarded.marker()) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e),
            _ => {}
        },
        Some(next) if !owned => guarded.write_marker(next.pid)?,
        Some(_) => {}
    }
    Ok(warning)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn marker_exists_while_held_and_contains_a_pid() {
        let dir = tempfile::tempdir().unwrap();
        let run = dir.path().join("run/blockhost");
        let (lock, warnings) = ProvisioningLock::acquire(&run).unwrap();
        assert!(warnings.is_empty());
        assert_eq!(std::fs::read_to_string(run.join(LOCK_FILE)).unwrap(), std::process::id().to_string());
        drop(lock);
        assert!(!run.join(LOCK_FILE).exists());
    }

    #[test]
    fn shared_between_holders_in_one_process() {
        let dir = tempfile::tempdir().unwrap();
        let (a, _) = ProvisioningLock::acquire(dir.path()).unwrap();
        let (b, _) = ProvisioningLock::acquire(dir.path()).unwrap();
        drop(a);
        // Same PID: the holder file is shared, so the marker goes with the first release.
        drop(b);
        assert!(!dir.path().join(LOCK_FILE).exists());
    }

    #[test]
    fn stale_marker_is_taken_over_with_a_warning() {
        let dir = tempfile::tempdir().unwrap();
        let dead = testkit::dead_pid();
        std::fs::write(dir.path().join(LOCK_FILE), dead.to_string()).unwrap();
        let (lock, warnings) = ProvisioningLock::acquire(dir.path()).unwrap();
        assert_eq!(warnings, [format!("taking over stale provisioning lock (PID {dead})")]);
        assert_eq!(std::fs::read_to_string(dir.path().join(LOCK_FILE)).unwrap(), std::process::id().to_string());
        drop(lock);
        std::fs::write(dir.path().join(LOCK_FILE), "garbage").unwrap();
        let (_lock, warnings) = ProvisioningLock::acquire(dir.path()).unwrap();
        assert_eq!(warnings, ["taking over stale provisioning lock (unreadable)"]);
    }

    #[test]
    fn a_marker_of_a_live_pid_that_is_no_holder_is_stale() {
        let dir = tempfile::tempdir().unwrap();
        let mut unrelated = std::process::Command::new("sleep").arg("30").spawn().unwrap();
        std::fs::write(dir.path().join(LOCK_FILE), unrelated.id().to_string()).unwrap();
        let (_lock, warnings) = ProvisioningLock::acquire(dir.path()).unwrap();
        unrelated.kill().unwrap();
        unrelated.wait().unwrap();
        assert_eq!(warnings.len(), 1, "{warnings:?}");
        // What follows is its command line, when /proc lets it be read.
        assert!(warnings[0].starts_with(&format!("taking over stale provisioning lock (PID {} is running but is not a provisioning process: ", unrelated.id())), "{warnings:?}");
    }

    #[test]
    fn release_on_a_host_without_a_lock_creates_nothing() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(release(dir.path(), None).unwrap(), None);
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    }

    #[test]
    fn release_prunes_dead_holders_even_without_a_marker() {
        let dir = tempfile::tempdir().unwrap();
        let holders = dir.path().join(HOLDERS_DIR);
        std::fs::create_dir_all(&holders).unwrap();
        let dead = testkit::dead_pid();
        std::fs::write(holders.join(format!("{dead}-1")), dead.to_string()).unwrap();
        assert_eq!(release(dir.path(), None).unwrap(), None);
        assert!(!holders.join(format!("{dead}-1")).exists(), "the dead holder was pruned");
        assert!(!dir.path().join(LOCK_FILE).exists());
        std::fs::create_dir(dir.path().join(LOCK_FILE)).unwrap();
        assert!(release(dir.path(), None).is_err(), "a marker that cannot be removed is an error, not ignored");
    }

    #[test]
    fn release_points_a_stale_marker_at_a_live_holder() {
        let dir = tempfile::tempdir().unwrap();
        let (_lock, _) = ProvisioningLock::acquire(dir.path()).unwrap();
        let dead = testkit::dead_pid();
        std::fs::write(dir.path().join(LOCK_FILE), dead.to_string()).unwrap();
        assert_eq!(release(dir.path(), None).unwrap(), Some(format!("cleared stale provisioning lock (PID {dead})")));
        assert_eq!(std::fs::read_to_string(dir.path().join(LOCK_FILE)).unwrap(), std::process::id().to_string());
    }

    #[test]
    fn gc_leaves_the_lock_of_a_live_create_alone() {
        let dir = tempfile::tempdir().unwrap();
        let (_lock, _) = ProvisioningLock::acquire(dir.path()).unwrap();
        assert_eq!(release(dir.path(), None).unwrap(), None, "no warning: the marker's PID is a live holder");
        assert_eq!(std::fs::read_to_string(dir.path().join(LOCK_FILE)).unwrap(), std::process::id().to_string());
    }

    #[test]
    fn release_clears_a_lock_left_by_a_killed_create() {
        let dir = tempfile::tempdir().unwrap();
        let dead = ProcessId { pid: testkit::dead_pid(), start_ticks: 1 };
        std::fs::create_dir_all(dir.path().join(HOLDERS_DIR)).unwrap();
        std::fs::write(dir.path().join(HOLDERS_DIR).join(format!("{}-1", dead.pid)), "").unwrap();
        std::fs::write(dir.path().join(LOCK_FILE), dead.pid.to_string()).unwrap();
        release(dir.path(), None).unwrap();
        assert!(!dir.path().join(LOCK_FILE).exists());
        assert_eq!(std::fs::read_dir(dir.path().join(HOLDERS_DIR)).unwrap().count(), 1, "only the guard remains");
    }
}
