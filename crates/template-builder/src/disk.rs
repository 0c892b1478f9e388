//! Disk images without loop devices or mounts: a root tree packed by
//! `mkfs.ext4 -d` straight into the partition of a partitioned image file,
//! conversions and resizes with `qemu-img`, and the kernel and initrd copied
//! out for the one direct kernel boot that installs the boot loader.

use super::error::TemplateError;
use super::partition_table::{self, ROOT_START};
use super::run::{captured, logged, BuildLog};
use std::io::Write;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The image file of every template version.
pub const IMAGE_FILE: &str = "disk.qcow2";
const MIB: u64 = 1 << 20;
/// Smallest disk a template gets; VMs grow their root at first boot.
const MIN_IMAGE: u64 = 2048 * MIB;

/// A fresh partitioned disk image `raw` (sparse): an MBR, and in its one
/// partition an ext4 filesystem labelled `rootfs` with the given UUID, holding
/// `rootfs`; the disk is sized for the tree plus headroom.
pub fn partitioned_ext4_image(rootfs: &Path, raw: &Path, fs_uuid: &str, log: &mut BuildLog) -> Result<(), TemplateError> {
    let disk = disk_size(tree_bytes(rootfs)?);
    let size = disk - ROOT_START;
    let mbr = partition_table::mbr(size, disk_id(fs_uuid)).map_err(|reason| TemplateError::Corrupt { path: raw.to_path_buf(), reason })?;
    let file = std::fs::File::create(raw).map_err(TemplateError::io(raw))?;
    file.set_len(disk).map_err(TemplateError::io(raw))?;
    drop(file);
    let mut cmd = Command::new("mkfs.ext4");
    cmd.args(["-q", "-F", "-L", "rootfs", "-U", fs_uuid, "-E", &format!("root_owner=0:0,offset={ROOT_START}"), "-d"])
        .arg(rootfs)
        .arg(raw)
        .arg(format!("{}k", size / 1024));
    logged(cmd, "mkfs.ext4", log, &mut |_| {})?;
    // Written after mkfs, which clears the first sectors of what it formats.
    let mut file = std::fs::File::options().write(true).open(raw).map_err(TemplateError::io(raw))?;
    file.write_all(&mbr).and_then(|()| file.sync_all()).map_err(TemplateError::io(raw))
}

/// The disk for a tree of `used` bytes: room for the tree, a quarter and
/// 512 MiB more, and the gap before the partition; at least [`MIN_IMAGE`], in
/// whole 256 MiB (so a VM disk of whole GiB can equal it).
fn disk_size(used: u64) -> u64 {
    (ROOT_START + used + used / 4 + 512 * MIB).max(MIN_IMAGE).div_ceil(256 * MIB) * (256 * MIB)
}

/// The MBR's disk identifier: the first 32 bits of the filesystem UUID.
fn disk_id(fs_uuid: &str) -> u32 {
    let hex: String = fs_uuid.chars().filter(char::is_ascii_hexdigit).take(8).collect();
    u32::from_str_radix(&hex, 16).unwrap_or_default()
}

/// A random UUID from the kernel, for a new filesystem.
pub fn fresh_uuid() -> Result<String, TemplateError> {
    let source = Path::new("/proc/sys/kernel/random/uuid");
    std::fs::read_to_string(source).map(|s| s.trim().to_string()).map_err(TemplateError::io(source))
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
    fn disk_sizes() {
        assert_eq!(disk_size(0), MIN_IMAGE);
        assert_eq!(disk_size(1200 * MIB), 2048 * MIB);
        // 1 + 1228 + 307 + 512 = 2048 MiB: fits exactly.
        assert_eq!(disk_size(1228 * MIB), 2048 * MIB);
        // 1 + 1300 + 325 + 512 = 2138 MiB, rounded up to 2304.
        assert_eq!(disk_size(1300 * MIB), 2304 * MIB);
    }

    #[test]
    fn disk_ids_come_from_the_uuid() {
        assert_eq!(disk_id("0a1b2c3d-0000-4000-8000-000000000000"), 0x0a1b2c3d);
        let uuid = fresh_uuid().unwrap();
        assert_eq!(uuid.len(), 36);
        assert_ne!(uuid, fresh_uuid().unwrap());
    }

    #[test]
    fn packs_into_the_partition_converts_and_grows() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("root");
        std::fs::create_dir_all(root.join("etc")).unwrap();
        std::fs::write(root.join("etc/hostname"), "localhost\n").unwrap();
        let mut log = BuildLog::create(&dir.path().join("log")).unwrap();
        let raw = dir.path().join("disk.raw");
        let uuid = "0a1b2c3d-1111-4222-8333-444455556666";
        partitioned_ext4_image(&root, &raw, uuid, &mut log).unwrap();
        assert_eq!(std::fs::metadata(&raw).unwrap().len(), MIN_IMAGE);
        let mut partx = Command::new("partx");
        partx.args(["--show", "--noheadings", "-o", "START,SECTORS"]).arg(&raw);
        let table: Vec<u64> = captured(partx, "partx").unwrap().split_whitespace().map(|n| n.parse().unwrap()).collect();
        assert_eq!(table, [ROOT_START / 512, (MIN_IMAGE - ROOT_START) / 512]);
        let in_partition = format!("{}?offset={ROOT_START}", raw.display());
        let mut fsck = Command::new("e2fsck");
        fsck.args(["-n", "-f", &in_partition]);
        captured(fsck, "e2fsck").unwrap();
        let mut blkid = Command::new("blkid");
        blkid.args(["-p", "-o", "export", "-O", &ROOT_START.to_string()]).arg(&raw);
        let probed = captured(blkid, "blkid").unwrap();
        assert!(probed.contains(&format!("UUID={uuid}")) && probed.contains("LABEL=rootfs") && probed.contains("TYPE=ext4"), "{probed}");
        let mut debugfs = Command::new("debugfs");
        debugfs.args(["-R", "cat /etc/hostname", &in_partition]);
        assert_eq!(captured(debugfs, "debugfs").unwrap(), "localhost\n");

        let qcow2 = dir.path().join("disk.qcow2");
        to_qcow2(&raw, Some("raw"), &qcow2, &mut log).unwrap();
        assert_eq!(&std::fs::read(&qcow2).unwrap()[..4], b"QFI\xfb");
        assert_eq!(virtual_size(&qcow2).unwrap(), MIN_IMAGE);
        grow_to(&qcow2, 3 * 1024 * MIB, &mut log).unwrap();
        assert_eq!(virtual_size(&qcow2).unwrap(), 3 * 1024 * MIB);
        grow_to(&qcow2, MIB, &mut log).unwrap();
        assert_eq!(virtual_size(&qcow2).unwrap(), 3 * 1024 * MIB);
    }
}
