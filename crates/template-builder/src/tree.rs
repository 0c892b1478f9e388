//! Directory trees of a build: removal that never crosses into another
//! filesystem (a chroot's leftover `/proc` or `/dev` mount is detached, never
//! descended into), and the permissions that let the hypervisor's user read a
//! template.

use super::error::TemplateError;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;

/// The entries of `dir`; none when it does not exist.
pub fn entries(dir: &Path) -> Result<Vec<std::fs::DirEntry>, TemplateError> {
    match std::fs::read_dir(dir) {
        Ok(entries) => entries.map(|entry| entry.map_err(TemplateError::io(dir))).collect(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
        Err(e) => Err(TemplateError::io(dir)(e)),
    }
}

/// Removes `path` and everything below it. A directory on another device (a
/// mount point) is lazily unmounted first; if it stays mounted, removal stops
/// with an error and nothing of that mount is touched.
pub fn remove_tree(path: &Path) -> Result<(), TemplateError> {
    let meta = match std::fs::symlink_metadata(path) {
        Ok(meta) => meta,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(TemplateError::io(path)(e)),
    };
    if !meta.is_dir() {
        return std::fs::remove_file(path).map_err(TemplateError::io(path));
    }
    remove_dir_on(path, meta.dev())
}

fn remove_dir_on(dir: &Path, device: u64) -> Result<(), TemplateError> {
    let entries = std::fs::read_dir(dir).map_err(TemplateError::io(dir))?;
    for entry in entries {
        let entry = entry.map_err(TemplateError::io(dir))?;
        let path = entry.path();
        let meta = std::fs::symlink_metadata(&path).map_err(TemplateError::io(&path))?;
        if !meta.is_dir() {
            std::fs::remove_file(&path).map_err(TemplateError::io(&path))?;
            continue;
        }
        if meta.dev() != device {
            detach(&path)?;
        }
        remove_dir_on(&path, device)?;
    }
    std::fs::remove_dir(dir).map_err(TemplateError::io(dir))
}

fn detach(mount_point: &Path) -> Result<(), TemplateError> {
    rustix::mount::unmount(mount_point, rustix::mount::UnmountFlags::DETACH).map_err(|e| TemplateError::Corrupt {
        path: mount_point.to_path_buf(),
        reason: format!("a filesystem is mounted here and cannot be unmounted: {}", std::io::Error::from(e)),
    })
}

/// Directories 0755, files 0644 (symlinks untouched), recursively.
pub fn make_world_readable(path: &Path) -> Result<(), TemplateError> {
    let meta = std::fs::symlink_metadata(path).map_err(TemplateError::io(path))?;
    if meta.file_type().is_symlink() {
        return Ok(());
    }
    let mode = if meta.is_dir() { 0o755 } else { 0o644 };
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).map_err(TemplateError::io(path))?;
    if meta.is_dir() {
        for entry in std::fs::read_dir(path).map_err(TemplateError::io(path))? {
            make_world_readable(&entry.map_err(TemplateError::io(path))?.path())?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn removes_a_tree_with_symlinks_without_following_them() {
        let dir = tempfile::tempdir().unwrap();
        let outside = dir.path().join("outside");
        std::fs::create_dir(&outside).unwrap();
        std::fs::write(outside.join("keep"), "x").unwrap();
        let tree = dir.path().join("tree");
        std::fs::create_dir_all(tree.join("a/b")).unwrap();
        std::fs::write(tree.join("a/b/f"), "x").unwrap();
        std::os::unix::fs::symlink(&outside, tree.join("a/link")).unwrap();
        remove_tree(&tree).unwrap();
        assert!(!tree.exists());
        assert!(outside.join("keep").exists());
        remove_tree(&tree).unwrap();
    }

    #[test]
    fn sets_readable_modes() {
        let dir = tempfile::tempdir().unwrap();
        let sub = dir.path().join("v");
        std::fs::create_dir(&sub).unwrap();
        std::fs::write(sub.join("disk.qcow2"), "x").unwrap();
        std::fs::set_permissions(sub.join("disk.qcow2"), std::fs::Permissions::from_mode(0o600)).unwrap();
        std::fs::set_permissions(&sub, std::fs::Permissions::from_mode(0o700)).unwrap();
        make_world_readable(&sub).unwrap();
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&sub), 0o755);
        assert_eq!(mode(&sub.join("disk.qcow2")), 0o644);
    }
}
