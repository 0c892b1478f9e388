//! The previous metrics sample of every VM, from which the next call computes
//! rates: one file `<dir>/samples.json`, a map VM name → sample (each sample
//! with the keys of the upstream provisioner's per-VM cache), read once and
//! written once per call.
//!
//! Concurrent calls (the watchdog runs one per VM, several at once) update it
//! under an exclusive `flock` on the directory itself, so none loses another's
//! sample and no lock file is left for the package's purge to miss. It is a
//! cache: writes are not synced, a lock not had within [`LOCK_WAIT`] only
//! skips the save, and a missing or corrupt file reads as empty; each costs
//! the next call its rates, nothing else.
//!
//! Per-VM files `<dir>/<vm>.json` of earlier versions and of the upstream
//! provisioner are not read (that costs one sample of rates after an upgrade,
//! as a lost cache does); [`remove`] still deletes a destroyed VM's one.

use crate::host::atomic::write_atomic_unsynced;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// How long a call waits for the others' read-modify-writes (well under a
/// millisecond each, but a loaded host deschedules holders: 20 calls at once
/// at a load of 10 on 2 cores lost samples with 200 ms) before giving up saving.
pub const LOCK_WAIT: Duration = Duration::from_secs(1);
const LOCK_RETRY: Duration = Duration::from_millis(2);
const FILE_NAME: &str = "samples.json";

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Sample {
    pub timestamp: f64,
    pub cpu_time_ns: u64,
    pub blk_rd_reqs: u64,
    pub blk_wr_reqs: u64,
    pub blk_rd_bytes: u64,
    pub blk_wr_bytes: u64,
    pub net_rx: u64,
    pub net_tx: u64,
}

/// The samples of all VMs, locked for this call's update when the lock could
/// be had (dropping it releases the lock).
pub struct Samples {
    dir: PathBuf,
    lock: Option<File>,
    samples: BTreeMap<String, Sample>,
    changed: bool,
}

impl Samples {
    /// Locks (within [`LOCK_WAIT`]) and reads the samples of `dir`.
    pub fn open(dir: &Path) -> Self {
        let lock = lock(dir);
        let samples = std::fs::read_to_string(dir.join(FILE_NAME)).ok().and_then(|text| serde_json::from_str(&text).ok()).unwrap_or_default();
        Self { dir: dir.to_path_buf(), lock, samples, changed: false }
    }

    pub fn get(&self, vm: &str) -> Option<&Sample> {
        self.samples.get(vm)
    }

    pub fn insert(&mut self, vm: &str, sample: Sample) {
        self.samples.insert(vm.to_string(), sample);
        self.changed = true;
    }

    fn remove(&mut self, vm: &str) {
        self.changed |= self.samples.remove(vm).is_some();
    }

    /// Writes the samples back when they changed and the lock is held.
    pub fn save(self) -> std::io::Result<()> {
        if !self.changed || self.lock.is_none() {
            return Ok(());
        }
        let text = serde_json::to_string(&self.samples).map_err(std::io::Error::other)?;
        write_atomic_unsynced(&self.dir.join(FILE_NAME), text.as_bytes(), 0o640)
    }
}

/// An exclusive lock on `dir` (created shared if missing), or `None` when it
/// cannot be had within [`LOCK_WAIT`].
fn lock(dir: &Path) -> Option<File> {
    crate::host::shared_dir::create(dir).ok()?;
    let file = File::open(dir).ok()?;
    let started = Instant::now();
    loop {
        match file.try_lock() {
            Ok(()) => return Some(file),
            Err(std::fs::TryLockError::WouldBlock) if started.elapsed() < LOCK_WAIT => std::thread::sleep(LOCK_RETRY),
            Err(_) => return None,
        }
    }
}

/// Forgets a destroyed VM's sample, and deletes its per-VM file of an earlier
/// version or of the upstream provisioner. Best effort, like every write of
/// the cache.
pub fn remove(dir: &Path, vm: &str) {
    let _ = std::fs::remove_file(dir.join(format!("{vm}.json")));
    if dir.join(FILE_NAME).exists() {
        let mut samples = Samples::open(dir);
        samples.remove(vm);
        let _ = samples.save();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(timestamp: f64) -> Sample {
        Sample { timestamp, cpu_time_ns: 1, blk_rd_reqs: 2, blk_wr_reqs: 3, blk_rd_bytes: 4, blk_wr_bytes: 5, net_rx: 6, net_tx: 7 }
    }

    #[test]
    fn samples_of_all_vms_live_in_one_file_with_the_upstream_keys() {
        let dir = tempfile::tempdir().unwrap();
        let mut samples = Samples::open(dir.path());
        samples.insert("a", sample(1.0));
        samples.insert("b", sample(2.0));
        samples.save().unwrap();
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
        let text = std::fs::read_to_string(dir.path().join("samples.json")).unwrap();
        assert_eq!(
            text,
            r#"{"a":{"timestamp":1.0,"cpu_time_ns":1,"blk_rd_reqs":2,"blk_wr_reqs":3,"blk_rd_bytes":4,"blk_wr_bytes":5,"net_rx":6,"net_tx":7},"b":{"timestamp":2.0,"cpu_time_ns":1,"blk_rd_reqs":2,"blk_wr_reqs":3,"blk_rd_bytes":4,"blk_wr_bytes":5,"net_rx":6,"net_tx":7}}"#
        );
        assert_eq!(Samples::open(dir.path()).get("b"), Some(&sample(2.0)));
    }

    #[test]
    fn a_corrupt_file_reads_as_empty() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("samples.json"), "{not json").unwrap();
        assert_eq!(Samples::open(dir.path()).get("a"), None);
    }

    #[test]
    fn a_call_that_cannot_lock_in_time_reads_but_does_not_save() {
        let dir = tempfile::tempdir().unwrap();
        let mut first = Samples::open(dir.path());
        first.insert("a", sample(1.0));
        let started = Instant::now();
        let mut second = Samples::open(dir.path());
        assert!(started.elapsed() >= LOCK_WAIT && started.elapsed() < LOCK_WAIT * 5, "{:?}", started.elapsed());
        second.insert("b", sample(2.0));
        second.save().unwrap();
        first.save().unwrap();
        let after = Samples::open(dir.path());
        assert_eq!((after.get("a"), after.get("b")), (Some(&sample(1.0)), None));
    }

    #[test]
    fn remove_forgets_one_vm_and_its_old_per_vm_file() {
        let dir = tempfile::tempdir().unwrap();
        let mut samples = Samples::open(dir.path());
        samples.insert("a", sample(1.0));
        samples.insert("b", sample(2.0));
        samples.save().unwrap();
        std::fs::write(dir.path().join("a.json"), "{}").unwrap();
        remove(dir.path(), "a");
        let after = Samples::open(dir.path());
        assert_eq!((after.get("a"), after.get("b")), (None, Some(&sample(2.0))));
        assert!(!dir.path().join("a.json").exists());
        remove(dir.path(), "never-there");
    }
}
