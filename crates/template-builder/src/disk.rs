//! Disk images without loop devices or mounts: a root tree packed into an ext4
//! image by `mkfs.ext4 -d`, conversions and resizes with `qemu-img`, and the
//! kernel and initrd copied out for direct kernel boot.

use super::error::TemplateError;
use super::run::{captured, logged, BuildLog};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The image file of every template version.
pub const IMAGE_FILE: &str = "disk.qcow2";
const MIB: u64 = 1 << 20;
/// Smallest root filesystem a template gets; VMs grow theirs at first boot.
const MIN_IMAGE: u64 = 2048 * MIB;

/// Packs `rootfs` into a fresh ext4 filesystem image `raw` (sparse) sized for
/// the tree plus headroom.
pub fn ext4_image(rootfs: &Path, raw: &Path, log: &mut BuildLog) -> Result<(), TemplateError> {
    let used = tree_bytes(rootfs)?;
    let size = (used + used / 4 + 512 * MIB).max(MIN_IMAGE).div_ceil(256 * MIB) * (256 * MIB);
    let file = std::fs::File::create(raw).map_err(TemplateError::io(raw))?;
    file.set_len(size).map_err(TemplateError::io(raw))?;
    drop(file);
    let mut cmd = Command::new("mkfs.ext4");
    cmd.args(["-q", "-F", "-L", "rootfs", "-E", "root_owner=0:0", "-d"]).arg(rootfs).arg(raw);
    logged(cmd, "mkfs.ext4", log, &mut |_| {})
}

/// Bytes allocated by the files of a tree (symlinks and directories counted as
/// their own blocks, nothing followed).
fn tree_bytes(dir: &Path) -> Result<u64, TemplateError> {
    let mut total = 0;
    for entry in std::fs::read_dir(dir).map_err(TemplateError::io(dir))? {
        let entry = entry.map_err(TemplateError::io(dir))?;
        let meta = entry.metadata().map_err(TemplateError::io(entry.path()))?;
        total += meta.blocks() * 512;
        if meta.is_dir() {
            total += tree_bytes(&entry.path())?;
        }
    }
    Ok(total)
}

/// `qemu-img convert` to qcow2; `format` of the source, or probed when `None`.
pub fn to_qcow2(src: &Path, format: Option<&str>, dest: &Path, log: &mut BuildLog) -> Result<(), TemplateError> {
    let mut cmd = Command::new("qemu-img");
    cmd.arg("convert");
    if let Some(format) = format {
        cmd.args(["-f", format]);
    }
    cmd.args(["-O", "qcow2"]).arg(src).arg(dest);
    logged(cmd, "qemu-img convert", log, &mut |_| {})
}

/// Grows the image's virtual size to at least `bytes`.
pub fn grow_to(image: &Path, bytes: u64, log: &mut BuildLog) -> Result<(), TemplateError> {
    if virtual_size(image)? >= bytes {
        return Ok(());
    }
    let mut cmd = Command::new("qemu-img");
    cmd.args(["resize", "-f", "qcow2"]).arg(image).arg(bytes.to_string());
    logged(cmd, "qemu-img resize", log, &mut |_| {})
}

pub fn virtual_size(image: &Path) -> Result<u64, TemplateError> {
    let mut cmd = Command::new("qemu-img");
    cmd.args(["info", "--output=json"]).arg(image);
    let json = captured(cmd, "qemu-img info")?;
    let info: serde_json::Value = serde_json::from_str(&json)
        .map_err(|e| TemplateError::Corrupt { path: image.to_path_buf(), reason: format!("qemu-img info: {e}") })?;
    info["virtual-size"]
        .as_u64()
        .ok_or_else(|| TemplateError::Corrupt { path: image.to_path_buf(), reason: "qemu-img info has no virtual-size".into() })
}

pub const KERNEL_FILE: &str = "vmlinuz";
pub const INITRD_FILE: &str = "initrd.img";

/// Copies the tree's `/vmlinuz` and `/initrd.img` (symlinks resolved inside
/// the tree, never on the build host) to `dest_dir` under those names.
pub fn copy_boot_files(rootfs: &Path, dest_dir: &Path) -> Result<(), TemplateError> {
    for name in [KERNEL_FILE, INITRD_FILE] {
        let src = resolve_in_tree(rootfs, Path::new(name))?;
        std::fs::copy(&src, dest_dir.join(name)).map_err(TemplateError::io(&src))?;
    }
    Ok(())
}

/// `rel` inside `root`, following symlinks as if `root` were `/`.
fn resolve_in_tree(root: &Path, rel: &Path) -> Result<PathBuf, TemplateError> {
    let mut path = root.join(rel);
    for _ in 0..16 {
        match std::fs::read_link(&path) {
            Ok(target) => {
                path = match target.strip_prefix("/") {
                    Ok(absolute) => root.join(absolute),
                    Err(_) => path.parent().unwrap_or(root).join(target),
                };
            }
            Err(_) if path.is_file() => return Ok(path),
            Err(e) => return Err(TemplateError::io(path)(e)),
        }
    }
    Err(TemplateError::Corrupt { path: root.join(rel), reason: "too many levels of symbolic links".into() })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn boot_files_resolve_inside_the_tree() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("root");
        std::fs::create_dir_all(root.join("boot")).unwrap();
        std::fs::write(root.join("boot/vmlinuz-6.1.0-cloud-amd64"), "kernel").unwrap();
        std::fs::write(root.join("boot/initrd.img-6.1.0-cloud-amd64"), "initrd").unwrap();
        std::os::unix::fs::symlink("boot/vmlinuz-6.1.0-cloud-amd64", root.join("vmlinuz")).unwrap();
        std::os::unix::fs::symlink("/boot/initrd.img-6.1.0-cloud-amd64", root.join("initrd.img")).unwrap();
        let out = dir.path().join("out");
        std::fs::create_dir(&out).unwrap();
        copy_boot_files(&root, &out).unwrap();
        assert_eq!(std::fs::read_to_string(out.join("vmlinuz")).unwrap(), "kernel");
        assert_eq!(std::fs::read_to_string(out.join("initrd.img")).unwrap(), "initrd");
    }

    #[test]
    fn a_dangling_kernel_link_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        std::os::unix::fs::symlink("/etc/hostname", dir.path().join("vmlinuz")).unwrap();
        assert!(copy_boot_files(dir.path(), dir.path()).is_err());
    }

    #[test]
    fn packs_converts_and_grows() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("root");
        std::fs::create_dir_all(root.join("etc")).unwrap();
        std::fs::write(root.join("etc/hostname"), "localhost\n").unwrap();
        let mut log = BuildLog::create(&dir.path().join("log")).unwrap();
        let raw = dir.path().join("disk.raw");
        ext4_image(&root, &raw, &mut log).unwrap();
        assert_eq!(std::fs::metadata(&raw).unwrap().len(), MIN_IMAGE);
        let qcow2 = dir.path().join("disk.qcow2");
        to_qcow2(&raw, Some("raw"), &qcow2, &mut log).unwrap();
        assert_eq!(&std::fs::read(&qcow2).unwrap()[..4], b"QFI\xfb");
        assert_eq!(virtual_size(&qcow2).unwrap(), MIN_IMAGE);
        grow_to(&qcow2, 3 * 1024 * MIB, &mut log).unwrap();
        assert_eq!(virtual_size(&qcow2).unwrap(), 3 * 1024 * MIB);
        grow_to(&qcow2, MIB, &mut log).unwrap();
        assert_eq!(virtual_size(&qcow2).unwrap(), 3 * 1024 * MIB);
        let mut fsck = Command::new("e2fsck");
        fsck.args(["-n", "-f"]).arg(&raw);
        captured(fsck, "e2fsck").unwrap();
    }
}
