//! The last bulk metrics sample, shared by the `blockhost-vm-metrics <vm>`
//! processes of a watchdog cycle so that they need neither libvirt nor a
//! connection: `<state>/metrics/shared.json`, each running VM's output line
//! with the host process that ran it when it was measured.
//!
//! A VM's line answers only while the sample is at most the configured age
//! (db.yaml `metrics_max_age_seconds`, counted from when the bulk call
//! returned) and its process is provably the same one (PID and start time):
//! a VM stopped, killed, destroyed or restarted since is asked again, so no
//! call reports a VM running that is not, or another VM's figures. A sample
//! older than [`REFRESH_AFTER`] is retaken in the background by one process
//! at a time (held [`REFRESH_LOCK`]). It is a cache: written without fsync,
//! a missing or unreadable file answers nothing.

use crate::host::atomic::write_atomic_unsynced;
use crate::host::paths::HostPaths;
use crate::host::process::ProcessId;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fs::File;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

const FILE_NAME: &str = "shared.json";
/// Held by the process retaking the sample; others find it taken and leave it.
pub const REFRESH_LOCK: &str = "refresh.lock";
/// Age from which a sample is retaken, well inside the watchdog's 2 s period.
pub const REFRESH_AFTER: Duration = Duration::from_secs(1);

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Entry {
    pid: u32,
    start_ticks: u64,
    /// The line `blockhost-vm-metrics <vm>` prints, as it printed it.
    output: String,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct SharedSample {
    /// Seconds since the epoch when the bulk call returned.
    taken_at: f64,
    vms: BTreeMap<String, Entry>,
}

/// Where the shared sample lives, whatever the backend.
pub fn dir(paths: &HostPaths) -> PathBuf {
    paths.state_dir().join("metrics")
}

impl SharedSample {
    pub fn new(taken_at: f64) -> Self {
        Self { taken_at, vms: BTreeMap::new() }
    }

    pub fn insert(&mut self, vm: &str, process: ProcessId, output: String) {
        self.vms.insert(vm.to_string(), Entry { pid: process.pid, start_ticks: process.start_ticks, output });
    }

    pub fn is_empty(&self) -> bool {
        self.vms.is_empty()
    }

    pub fn load(dir: &Path) -> Option<Self> {
        serde_json::from_slice(&std::fs::read(dir.join(FILE_NAME)).ok()?).ok()
    }

    pub fn save(&self, dir: &Path) -> std::io::Result<()> {
        crate::host::shared_dir::create(dir)?;
        let text = serde_json::to_vec(self).map_err(std::io::Error::other)?;
        write_atomic_unsynced(&dir.join(FILE_NAME), &text, 0o640)
    }

    /// The VM's line, when the sample is at most `max_age` old at `now` and
    /// the process that ran the VM then still runs it.
    pub fn answer(&self, vm: &str, max_age: Duration, now: f64) -> Option<&str> {
        let age = now - self.taken_at;
        if !(0.0..=max_age.as_secs_f64()).contains(&age) {
            return None;
        }
        let entry = self.vms.get(vm)?;
        ProcessId { pid: entry.pid, start_ticks: entry.start_ticks }.is_verified_alive().then_some(entry.output.as_str())
    }

    pub fn is_due(&self, now: f64) -> bool {
        now - self.taken_at >= REFRESH_AFTER.as_secs_f64() || now < self.taken_at
    }

    /// [`refresh_due`] for this sample, already loaded from `dir`.
    pub fn refresh_due(&self, dir: &Path, now: f64) -> bool {
        self.is_due(now) && !refresh_running(dir)
    }
}

/// Whether the sample in `dir` should be retaken now: missing or old, and
/// no other process is retaking it.
pub fn refresh_due(dir: &Path, now: f64) -> bool {
    SharedSample::load(dir).map_or(!refresh_running(dir), |sample| sample.refresh_due(dir, now))
}

fn refresh_running(dir: &Path) -> bool {
    File::open(dir.join(REFRESH_LOCK)).is_ok_and(|f| matches!(f.try_lock_shared(), Err(std::fs::TryLockError::WouldBlock)))
}

/// The lock of the one process retaking the sample, or `None` when another
/// holds it. The lock file is opened read-only, so a file root created
/// serves the unprivileged user too.
pub fn refresh_lock(dir: &Path) -> Option<File> {
    let path = dir.join(REFRESH_LOCK);
    let file = match File::open(&path) {
        Ok(file) => file,
        Err(_) => {
            crate::host::shared_dir::create(dir).ok()?;
            std::fs::OpenOptions::new().create(true).truncate(false).write(true).mode(0o660).open(&path).ok()?
        }
    };
    file.try_lock().ok()?;
    Some(file)
}

#[cfg(test)]
mod tests {
    use super::*;

    const AGE: Duration = Duration::from_secs(5);

    fn sample_of(process: ProcessId) -> SharedSample {
        let mut sample = SharedSample::new(1000.0);
        sample.insert("vm-a", process, r#"{"state": "running"}"#.into());
        sample
    }

    #[test]
    fn answers_while_fresh_and_the_same_process_runs_the_vm() {
        let dir = tempfile::tempdir().unwrap();
        sample_of(ProcessId::current()).save(dir.path()).unwrap();
        let sample = SharedSample::load(dir.path()).unwrap();
        assert_eq!(sample.answer("vm-a", AGE, 1004.9), Some(r#"{"state": "running"}"#));
        assert_eq!(sample.answer("vm-a", AGE, 1005.1), None, "older than the window");
        assert_eq!(sample.answer("vm-a", AGE, 999.0), None, "taken in the future: the clock moved");
        assert_eq!(sample.answer("vm-b", AGE, 1001.0), None, "not in the sample");
        assert_eq!(sample.answer("vm-a", Duration::ZERO, 1000.5), None, "a window of 0 never answers");
    }

    #[test]
    fn a_vm_whose_process_ended_or_changed_is_not_answered() {
        let mut child = std::process::Command::new("sleep").arg("30").spawn().unwrap();
        let process = ProcessId::of(child.id()).unwrap();
        let sample = sample_of(process);
        assert!(sample.answer("vm-a", AGE, 1001.0).is_some());
        let restarted = sample_of(ProcessId { start_ticks: process.start_ticks + 1, ..process });
        assert_eq!(restarted.answer("vm-a", AGE, 1001.0), None, "the PID now runs another process");
        child.kill().unwrap();
        child.wait().unwrap();
        assert_eq!(sample.answer("vm-a", AGE, 1001.0), None);
    }

    #[test]
    fn missing_or_corrupt_files_answer_nothing_and_are_due() {
        let dir = tempfile::tempdir().unwrap();
        assert!(SharedSample::load(dir.path()).is_none());
        assert!(refresh_due(dir.path(), 1000.0));
        std::fs::write(dir.path().join(FILE_NAME), "{not json").unwrap();
        assert!(SharedSample::load(dir.path()).is_none());
    }

    #[test]
    fn one_process_at_a_time_retakes_an_old_sample() {
        let dir = tempfile::tempdir().unwrap();
        sample_of(ProcessId::current()).save(dir.path()).unwrap();
        assert!(!refresh_due(dir.path(), 1000.5));
        assert!(refresh_due(dir.path(), 1001.0));
        let held = refresh_lock(dir.path()).unwrap();
        assert!(!refresh_due(dir.path(), 1001.0), "another process is retaking it");
        assert!(refresh_lock(dir.path()).is_none());
        drop(held);
        assert!(refresh_due(dir.path(), 1001.0));
    }
}
