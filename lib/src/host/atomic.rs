//! Crash-safe file replacement and lock files shared with BlockHost's Python code.

use crate::host::shared_dir;
use std::fs::File;
use std::io::Write;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};

/// Replaces `path` with `bytes`: temp file in the same directory, given mode,
/// the group of the file it replaces kept when possible, fsync, rename over,
/// fsync of the directory. Readers see the old or the new content, never a mix.
pub fn write_atomic(path: &Path, bytes: &[u8], mode: u32) -> std::io::Result<()> {
    replace(path, bytes, mode, Durability::Synced)
}

/// [`write_atomic`] without the two fsyncs, for caches: readers still see the
/// old or the new content, but a crash may lose the new one (or leave an empty
/// file, which a cache reads as absent).
pub fn write_atomic_unsynced(path: &Path, bytes: &[u8], mode: u32) -> std::io::Result<()> {
    replace(path, bytes, mode, Durability::Unsynced)
}

#[derive(Clone, Copy, PartialEq)]
enum Durability {
    Synced,
    Unsynced,
}

fn replace(path: &Path, bytes: &[u8], mode: u32, durability: Durability) -> std::io::Result<()> {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let dir = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let file_name = path.file_name().ok_or_else(|| std::io::Error::other("path has no file name"))?;
    let tmp = dir.join(format!(
        ".{}.{}.{}.tmp",
        file_name.to_string_lossy(),
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    ));
    let result = (|| {
        let mut file = std::fs::OpenOptions::new().write(true).create_new(true).open(&tmp)?;
        file.set_permissions(std::fs::Permissions::from_mode(mode))?;
        // The group of the file replaced, else of the directory (`blockhost` on a real
        // host), so the other users of a shared file keep reading it. Best effort.
        let gid = std::fs::metadata(path).ok().map(|old| old.gid()).or_else(|| shared_dir::group_of(dir));
        if let Some(gid) = gid.filter(|gid| Some(*gid) != file.metadata().ok().map(|m| m.gid())) {
            let _ = std::os::unix::fs::fchown(&file, None, Some(gid));
        }
        file.write_all(bytes)?;
        if durability == Durability::Synced {
            file.sync_all()?;
        }
        std::fs::rename(&tmp, path)?;
        match durability {
            Durability::Synced => File::open(dir)?.sync_all(),
            Durability::Unsynced => Ok(()),
        }
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

/// Removes the temp files that `write_atomic` left in `dir` when its process was
/// killed (the writer's PID is part of the name and no longer runs). Returns how many.
pub fn sweep_stale_temps(dir: &Path) -> usize {
    let Ok(entries) = std::fs::read_dir(dir) else { return 0 };
    let mut removed = 0;
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(stem) = name.to_str().filter(|n| n.starts_with('.')).and_then(|n| n.strip_suffix(".tmp")) else { continue };
        let mut parts = stem.rsplitn(3, '.');
        let (_counter, pid) = (parts.next(), parts.next().and_then(|p| p.parse::<u32>().ok()));
        if let Some(pid) = pid {
            if !crate::host::process::pid_exists(pid) && std::fs::remove_file(entry.path()).is_ok() {
                removed += 1;
            }
        }
    }
    removed
}

/// Opens (creating if needed) a lock file read-only, so any user who can read it
/// can `flock` it: a lock file created by root must not lock out the `blockhost` user.
/// A new one gets mode 0660 and the group of its directory (Python's writers open
/// it for appending, so the group needs write too).
pub fn open_lock_file(path: &Path) -> std::io::Result<File> {
    use rustix::fs::{Mode, OFlags};
    let open = |flags: OFlags| -> std::io::Result<File> {
        Ok(File::from(rustix::fs::open(path, flags | OFlags::RDONLY | OFlags::CLOEXEC, Mode::from_raw_mode(0o660))?))
    };
    match open(OFlags::CREATE | OFlags::EXCL) {
        Ok(file) => {
            // The umask may have removed group bits; group members must be able to lock.
            let _ = file.set_permissions(std::fs::Permissions::from_mode(0o660));
            if let Some(gid) = path.parent().and_then(shared_dir::group_of) {
                let _ = std::os::unix::fs::fchown(&file, None, Some(gid));
            }
            Ok(file)
        }
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => open(OFlags::empty()),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replaces_content_with_mode_and_leaves_no_temp() {
        for write in [write_atomic, write_atomic_unsynced] {
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("f.json");
            write(&path, b"one", 0o640).unwrap();
            write(&path, b"two", 0o660).unwrap();
            assert_eq!(std::fs::read(&path).unwrap(), b"two");
            assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o660);
            assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
        }
    }

    #[test]
    fn a_failed_replacement_keeps_the_old_content_and_no_temp() {
        for write in [write_atomic, write_atomic_unsynced] {
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("f.json");
            write(&path, b"one", 0o640).unwrap();
            std::fs::create_dir(dir.path().join("d")).unwrap();
            assert!(write(&dir.path().join("d"), b"two", 0o640).is_err(), "a directory cannot be renamed over");
            assert_eq!(std::fs::read(&path).unwrap(), b"one");
            assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 2);
        }
    }

    #[test]
    fn sweeps_only_temps_of_dead_writers() {
        let dir = tempfile::tempdir().unwrap();
        let dead = testkit::dead_pid();
        let stale = dir.path().join(format!(".vms.json.{dead}.3.tmp"));
        let live = dir.path().join(format!(".vms.json.{}.0.tmp", std::process::id()));
        for path in [&stale, &live, &dir.path().join("vms.json")] {
            std::fs::write(path, "x").unwrap();
        }
        assert_eq!(sweep_stale_temps(dir.path()), 1);
        assert!(!stale.exists() && live.exists() && dir.path().join("vms.json").exists());
    }

    #[test]
    fn lock_file_is_group_readable_and_lockable_read_only() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.lock");
        let a = open_lock_file(&path).unwrap();
        assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o660);
        a.lock().unwrap();
        let b = open_lock_file(&path).unwrap();
        assert!(b.try_lock().is_err());
        a.unlock().unwrap();
        b.try_lock().unwrap();
    }
}
