//! The VM database (`vms.json`), byte-compatible with blockhost-common and shared
//! with its Python and TypeScript readers and writers.
//!
//! Every mutation follows common's lock-file protocol: an exclusive `flock` on
//! `<db_file>.lock` held across the whole read-modify-write, the new content
//! written to a temp file in the same directory, fsynced and renamed over.
//! Waiting for that lock is bounded (see `lock_wait`).
//! Reads need no lock because writes are atomic renames.

mod document;
mod lock_wait;
mod migrate;
mod pending;

pub use document::{Document, Registration, VmRecord};
pub use lock_wait::{LockWait, DEFAULT_TIMEOUT as DEFAULT_LOCK_TIMEOUT};
pub use migrate::{migrate, Migration, UPSTREAM_DB_FILE};
pub use pending::PendingCreate;

use crate::host::atomic::{open_lock_file, write_atomic};
use crate::host::io_words::io_words;
use crate::host::shared_dir;
use std::path::{Path, PathBuf};

/// Group-readable (the `blockhost` group shares it), never world-readable.
const DB_MODE: u32 = 0o640;

#[derive(Debug, thiserror::Error)]
pub enum DbError {
    #[error("{path}: {}", io_words(.1), path = .0.display())]
    Io(PathBuf, std::io::Error),
    #[error("{path}: corrupt VM database ({1}); it was left untouched", path = .0.display())]
    Corrupt(PathBuf, String),
    #[error("VM {0} not found in the database")]
    UnknownVm(String),
    #[error("VM {0} has been destroyed; its record stays destroyed")]
    Destroyed(String),
    #[error("VM {0} already exists in the database (status: {1})")]
    AlreadyExists(String, String),
    #[error("VM {0} would share its hostname with VM {1} (names that differ only in case)")]
    CaseConflict(String, String),
    #[error("VM {0} is being created by another process (PID {1})")]
    CreateInProgress(String, u32),
    #[error("{path}: the VM database is locked by {2} and was not released within {1} s (db.yaml db_lock_timeout_seconds, or BLOCKHOST_DB_LOCK_TIMEOUT)", path = .0.display())]
    LockTimeout(PathBuf, f64, String),
    #[error("interrupted by signal {0}")]
    Interrupted(i32),
    /// Every value of a pool is taken: which pool, its range, and the db.yaml key that sets it.
    #[error("the {pool} pool {range} is exhausted (every one is taken); widen it with `{key}.start`/`{key}.end` in db.yaml")]
    PoolExhausted { pool: &'static str, range: String, key: &'static str },
}

#[derive(Debug, Clone)]
pub struct VmDatabase {
    path: PathBuf,
    next_vmid_start: u64,
    lock_wait: LockWait,
}

impl VmDatabase {
    /// `next_vmid_start` seeds `next_vmid` when the file is first created
    /// (the VMID range start, or 0 without one, as blockhost-common does).
    pub fn new(path: impl Into<PathBuf>, next_vmid_start: u64) -> Self {
        Self { path: path.into(), next_vmid_start, lock_wait: LockWait::default() }
    }

    /// How long and how an update waits for another writer's lock.
    pub fn with_lock_wait(self, lock_wait: LockWait) -> Self {
        Self { lock_wait, ..self }
    }

    /// Where the line naming a holder that keeps the lock goes.
    pub fn set_lock_notice(&mut self, notice: fn(&str)) {
        self.lock_wait.notice = notice;
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn lock_path(&self) -> PathBuf {
        let mut name = self.path.as_os_str().to_os_string();
        name.push(".lock");
        PathBuf::from(name)
    }

    /// The current content; a missing file reads as an empty database.
    pub fn read(&self) -> Result<Document, DbError> {
        match std::fs::read_to_string(&self.path) {
            Ok(text) => Document::parse(&text).map_err(|why| DbError::Corrupt(self.path.clone(), why)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Document::initial(self.next_vmid_start)),
            Err(e) => Err(DbError::Io(self.path.clone(), e)),
        }
    }

    /// Runs `mutate` under the exclusive lock and commits its changes atomically.
    /// Nothing is written when `mutate` fails or changes nothing.
    pub fn update<T>(&self, mutate: impl FnOnce(&mut Document) -> Result<T, DbError>) -> Result<T, DbError> {
        let io = |e| DbError::Io(self.path.clone(), e);
        if let Some(dir) = self.path.parent() {
            shared_dir::create(dir).map_err(io)?;
        }
        let lock = open_lock_file(&self.lock_path()).map_err(|e| DbError::Io(self.lock_path(), e))?;
        self.lock_wait.lock(&lock, &self.lock_path())?;
        let exists = self.path.exists();
        let mut doc = self.read()?;
        let before = doc.clone();
        let out = mutate(&mut doc)?;
        if !exists || doc != before {
            write_atomic(&self.path, doc.to_json().as_bytes(), DB_MODE).map_err(io)?;
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::MetadataExt;

    #[test]
    fn a_missing_database_reads_as_empty_and_an_unreadable_one_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let db = VmDatabase::new(dir.path().join("vms.json"), 100);
        assert_eq!(db.read().unwrap(), Document::initial(100));
        std::fs::create_dir(dir.path().join("vms.json")).unwrap();
        assert!(matches!(db.read(), Err(DbError::Io(..))), "a directory in its place is not an empty database");
    }

    #[test]
    fn update_waits_for_a_held_lock_as_configured() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("vms.json");
        let wait = LockWait { timeout: std::time::Duration::from_millis(300), ..LockWait::default() };
        let mut db = VmDatabase::new(&path, 0).with_lock_wait(wait);
        static NOTICES: std::sync::Mutex<Vec<String>> = std::sync::Mutex::new(Vec::new());
        db.set_lock_notice(|line| NOTICES.lock().unwrap().push(line.to_string()));
        // flock conflicts between two opens of the file, even in one process.
        let holder = crate::host::atomic::open_lock_file(&db.lock_path()).unwrap();
        holder.lock().unwrap();
        let started = std::time::Instant::now();
        let err = db.update(|_| Ok(())).unwrap_err();
        assert!(matches!(err, DbError::LockTimeout(..)), "{err}");
        assert!(started.elapsed() < std::time::Duration::from_secs(10), "the configured bound, not the default: {:?}", started.elapsed());
        assert_eq!(NOTICES.lock().unwrap().len(), 1, "the configured notice named the holder");
        assert!(!path.exists(), "nothing written");
    }

    #[test]
    fn update_locks_next_to_the_file_and_writes_only_what_changed() {
        let dir = tempfile::tempdir().unwrap();
        let db = VmDatabase::new(dir.path().join("vms.json"), 0);
        db.update(|_| Ok(())).unwrap();
        assert_eq!(db.read().unwrap(), Document::initial(0), "a missing file is created even without a change");
        assert!(dir.path().join("vms.json.lock").is_file());
        let inode = || std::fs::metadata(dir.path().join("vms.json")).unwrap().ino();
        let before = inode();
        db.update(|_| Ok(())).unwrap();
        assert_eq!(inode(), before, "nothing changed, nothing rewritten");
        db.update(|doc| {
            doc.set_next_vmid(7);
            Ok(())
        })
        .unwrap();
        assert_ne!(inode(), before, "a change is committed by an atomic rename");
        assert_eq!(db.read().unwrap().next_vmid(), 7);
    }
}
