//! One build at a time, in its own staging directory `templates/.build-<pid>`;
//! what a killed build left behind (its staging directory, a half-made
//! `current` link, a partial download) is removed by the next one.

use super::error::TemplateError;
use super::tree::remove_tree;
use std::fs::File;
use std::path::{Path, PathBuf};
use sys::pid_exists;

const LOCK_FILE: &str = ".build.lock";
const STAGING_PREFIX: &str = ".build-";
const LINK_PREFIX: &str = ".current-";
pub const CACHE_DIR: &str = ".cache";
/// Suffix of a download in progress: `<name>.part-<pid>`.
pub const PARTIAL_SUFFIX: &str = ".part-";

/// The exclusive build lock (flock on `templates/.build.lock`), released on drop.
pub struct BuildLock {
    _file: File,
}

impl BuildLock {
    pub fn acquire(templates: &Path) -> Result<Self, TemplateError> {
        let path = templates.join(LOCK_FILE);
        let file = File::options().append(true).create(true).open(&path).map_err(TemplateError::io(&path))?;
        match file.try_lock() {
            Ok(()) => Ok(Self { _file: file }),
            Err(std::fs::TryLockError::WouldBlock) => Err(TemplateError::Busy(path)),
            Err(std::fs::TryLockError::Error(e)) => Err(TemplateError::io(path)(e)),
        }
    }
}

pub fn staging_dir(templates: &Path) -> PathBuf {
    templates.join(format!("{STAGING_PREFIX}{}", std::process::id()))
}

/// Removes the leftovers of builds whose process is gone; returns what it removed.
pub fn sweep(templates: &Path) -> Result<Vec<PathBuf>, TemplateError> {
    let mut removed = sweep_dir(templates, |name| {
        name.strip_prefix(STAGING_PREFIX).or_else(|| name.strip_prefix(LINK_PREFIX))
    })?;
    removed.extend(sweep_dir(&templates.join(CACHE_DIR), |name| name.rsplit_once(PARTIAL_SUFFIX).map(|(_, pid)| pid))?);
    Ok(removed)
}

fn sweep_dir(dir: &Path, pid_of: impl Fn(&str) -> Option<&str>) -> Result<Vec<PathBuf>, TemplateError> {
    let entries = super::tree::entries(dir)?;
    let mut removed = Vec::new();
    for entry in entries {
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some(pid) = pid_of(&name).and_then(|p| p.parse::<u32>().ok()) else { continue };
        if pid != std::process::id() && !pid_exists(pid) {
            remove_tree(&entry.path())?;
            removed.push(entry.path());
        }
    }
    Ok(removed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sweeps_only_what_dead_builds_left() {
        let dir = tempfile::tempdir().unwrap();
        let t = dir.path();
        let dead = testkit::dead_pid();
        let mine = std::process::id();
        let stale = [
            t.join(format!(".build-{dead}")),
            t.join(format!(".current-{dead}")),
            t.join(format!(".cache/img.qcow2.part-{dead}")),
        ];
        let kept = [
            t.join(format!(".build-{mine}")),
            t.join(".build-notapid"),
            t.join(format!(".cache/img.qcow2.part-{mine}")),
            t.join(".cache/img.qcow2"),
            t.join("bookworm-20260101T000000Z"),
        ];
        std::fs::create_dir_all(stale[0].join("rootfs/etc")).unwrap();
        std::fs::create_dir_all(t.join(".cache")).unwrap();
        std::os::unix::fs::symlink("x", &stale[1]).unwrap();
        std::fs::write(&stale[2], "partial").unwrap();
        for path in &kept {
            std::fs::write(path, "x").unwrap();
        }
        let mut removed = sweep(t).unwrap();
        removed.sort();
        let mut expected = stale.to_vec();
        expected.sort();
        assert_eq!(removed, expected);
        assert!(stale.iter().all(|p| std::fs::symlink_metadata(p).is_err()));
        assert!(kept.iter().all(|p| p.exists()));
    }

    #[test]
    fn a_second_builder_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let held = BuildLock::acquire(dir.path()).unwrap();
        assert!(matches!(BuildLock::acquire(dir.path()), Err(TemplateError::Busy(_))));
        drop(held);
        BuildLock::acquire(dir.path()).unwrap();
    }
}
