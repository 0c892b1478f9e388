//! Directories that root and the unprivileged `blockhost` user both write (the
//! VM database's directory, lock directories, state directories): whoever
//! creates one, it gets the group of its parent (`blockhost` on a real host)
//! and mode 2770, so the other side can create, replace and remove files in it
//! and files made inside inherit the group.

use std::io::ErrorKind;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
use std::path::Path;

/// Mode of a directory we create: setgid, group-writable, nothing for others.
pub const DIR_MODE: u32 = 0o2770;

/// The group a new file or directory in `dir` should get: the group of `dir`.
pub fn group_of(dir: &Path) -> Option<u32> {
    std::fs::metadata(dir).ok().map(|m| m.gid())
}

/// Creates `dir` and its missing parents, each shared as described above.
/// Directories that already exist are left as they are.
pub fn create(dir: &Path) -> std::io::Result<()> {
    if dir.is_dir() {
        return Ok(());
    }
    let parent = dir.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    create(parent)?;
    match std::fs::DirBuilder::new().mode(0o700).create(dir) {
        Err(e) if e.kind() == ErrorKind::AlreadyExists && dir.is_dir() => return Ok(()),
        result => result?,
    }
    share(dir, parent)
}

/// Gives an existing directory of ours the group of its parent and the bits of
/// [`DIR_MODE`] (one made by an older version or another tool may lack them).
/// Best effort: a directory this user may not change is left alone.
pub fn repair(dir: &Path) {
    let Some(parent) = dir.parent() else { return };
    let _ = share(dir, parent);
}

fn share(dir: &Path, parent: &Path) -> std::io::Result<()> {
    let meta = std::fs::metadata(dir)?;
    if let Some(gid) = group_of(parent).filter(|gid| *gid != meta.gid()) {
        // Only root or a member of the group may do this; otherwise the gid stays ours.
        let _ = std::os::unix::fs::chown(dir, None, Some(gid));
    }
    if meta.permissions().mode() & 0o7777 & DIR_MODE != DIR_MODE {
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(meta.permissions().mode() & 0o7777 | DIR_MODE))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn created_directories_are_setgid_and_group_writable() {
        let dir = tempfile::tempdir().unwrap();
        let parent_mode = std::fs::metadata(dir.path()).unwrap().permissions().mode();
        let leaf = dir.path().join("a/b");
        create(&leaf).unwrap();
        for d in [dir.path().join("a"), leaf.clone()] {
            assert_eq!(std::fs::metadata(&d).unwrap().permissions().mode() & 0o7777, DIR_MODE, "{}", d.display());
        }
        create(&leaf).unwrap();
        assert_eq!(std::fs::metadata(dir.path()).unwrap().permissions().mode(), parent_mode, "an existing parent is left alone");
    }

    #[test]
    fn repair_adds_the_shared_bits() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path().join("provisioning.d");
        std::fs::DirBuilder::new().mode(0o2755).create(&d).unwrap();
        repair(&d);
        assert_eq!(std::fs::metadata(&d).unwrap().permissions().mode() & 0o7777, 0o2775);
    }

    #[test]
    fn a_file_where_the_directory_should_be_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state");
        std::fs::write(&path, b"").unwrap();
        assert_eq!(create(&path).unwrap_err().kind(), ErrorKind::AlreadyExists);
    }

    #[test]
    fn a_new_directory_takes_the_group_of_its_parent() {
        if !testkit::is_root() {
            return testkit::skip("giving a directory another group needs root");
        }
        let dir = tempfile::tempdir().unwrap();
        std::os::unix::fs::chown(dir.path(), None, Some(4242)).unwrap();
        let child = dir.path().join("vms");
        create(&child).unwrap();
        assert_eq!(std::fs::metadata(&child).unwrap().gid(), 4242);
    }
}
