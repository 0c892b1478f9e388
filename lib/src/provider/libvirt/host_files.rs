//! The host-side files of a VM: the NoCloud seed, the disk overlay, and the
//! permissions that keep the seed's secrets from other users.

use super::vm_files::VmFiles;
use crate::host::atomic::write_atomic;
use crate::host::cloud_init::nocloud_seed;
use crate::host::io_words::io_words;
use crate::host::paths::HostPaths;
use crate::provider::{Bootstrap, ErrorCode, ProviderError};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;

/// The group QEMU runs as on a Debian libvirt host.
const QEMU_GROUP: &str = "libvirt-qemu";

/// A full file system is a capacity problem; any other failure is ours.
fn io_error(path: &Path, e: std::io::Error) -> ProviderError {
    let code = if e.kind() == std::io::ErrorKind::StorageFull { ErrorCode::Capacity } else { ErrorCode::Internal };
    ProviderError::new(code, format!("{}: {}", path.display(), io_words(&e)))
}

/// The gid of `libvirt-qemu` from the host's group file, when it exists.
pub fn qemu_gid(paths: &HostPaths) -> Option<u32> {
    let groups = std::fs::read_to_string(paths.host("/etc/group")).ok()?;
    groups.lines().find_map(|line| {
        let mut fields = line.split(':');
        (fields.next()? == QEMU_GROUP).then_some(())?;
        fields.nth(1)?.parse().ok()
    })
}

/// Lets QEMU's group read `path` (a file or directory); secrets stay
/// unreadable to everyone else.
fn share_with_qemu(path: &Path, gid: Option<u32>, mode: u32) -> Result<(), ProviderError> {
    if let Some(gid) = gid {
        std::os::unix::fs::chown(path, None, Some(gid)).map_err(|e| io_error(path, e))?;
    }
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).map_err(|e| io_error(path, e))
}

/// Writes `user-data`, `meta-data`, `network-config` and `cidata.iso`.
pub fn write_seed(paths: &HostPaths, files: &VmFiles, bootstrap: &Bootstrap) -> Result<(), ProviderError> {
    let gid = qemu_gid(paths);
    std::fs::create_dir_all(&files.seed_dir).map_err(|e| io_error(&files.seed_dir, e))?;
    share_with_qemu(&files.seed_dir, gid, 0o750)?;
    let seed = nocloud_seed(bootstrap).map_err(|e| ProviderError::new(ErrorCode::InvalidSpec, e.to_string()))?;
    for (name, data) in &seed {
        let path = files.seed_dir.join(name);
        write_atomic(&path, data, 0o600).map_err(|e| io_error(&path, e))?;
    }
    share_with_qemu(&files.seed_iso, gid, 0o640)
}

/// A qcow2 overlay of `size_gib` backed by `template_image`.
pub fn create_overlay(paths: &HostPaths, overlay: &Path, template_image: &Path, size_gib: u64) -> Result<(), ProviderError> {
    if let Some(dir) = overlay.parent() {
        std::fs::create_dir_all(dir).map_err(|e| io_error(dir, e))?;
    }
    let output = Command::new("qemu-img")
        .args(["create", "-q", "-f", "qcow2", "-F", "qcow2", "-b"])
        .arg(template_image)
        .arg(overlay)
        .arg(format!("{size_gib}G"))
        .output()
        .map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => ProviderError::new(ErrorCode::Unsupported, "qemu-img is not installed (package qemu-utils)"),
            _ => ProviderError::new(ErrorCode::Internal, format!("qemu-img: {e}")),
        })?;
    if !output.status.success() {
        let _ = std::fs::remove_file(overlay);
        let stderr = String::from_utf8_lossy(&output.stderr);
        let detail = stderr.lines().find(|l| !l.trim().is_empty()).unwrap_or("failed").trim().to_string();
        return Err(ProviderError::new(ErrorCode::InvalidSpec, format!("creating the disk {}: {detail}", overlay.display())));
    }
    share_with_qemu(overlay, qemu_gid(paths), 0o640)
}

/// Whether files in `dir` can be written with `O_DIRECT` (bypassing the page
/// cache), as QEMU does for `cache='none'`: a scratch file is created with
/// `O_DIRECT`, one aligned block written to it, and removed. tmpfs before
/// Linux 6.6 and some FUSE and network filesystems refuse.
pub fn supports_direct_io(dir: &Path) -> Result<(), String> {
    use rustix::fs::{Mode, OFlags};
    const BLOCK: usize = 4096;
    let probe = dir.join(format!(".o_direct-probe-{}", std::process::id()));
    let flags = OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::DIRECT | OFlags::CLOEXEC;
    let _ = rustix::fs::unlink(&probe);
    let fd = rustix::fs::open(&probe, flags, Mode::RUSR | Mode::WUSR).map_err(|e| format!("opening with O_DIRECT: {e}"))?;
    // An aligned block from an over-sized buffer: O_DIRECT wants the memory aligned too.
    let buffer = vec![0u8; 2 * BLOCK];
    let skip = (BLOCK - buffer.as_ptr() as usize % BLOCK) % BLOCK;
    let written = rustix::io::pwrite(&fd, &buffer[skip..skip + BLOCK], 0);
    drop(fd);
    let _ = rustix::fs::unlink(&probe);
    match written {
        Ok(BLOCK) => Ok(()),
        Ok(n) => Err(format!("a direct write of {BLOCK} bytes wrote {n}")),
        Err(e) => Err(format!("writing with O_DIRECT: {e}")),
    }
}

/// The overlay's disk driver mode: direct I/O where its storage and its
/// backing template's support it (QEMU opens the whole chain alike), else the
/// host page cache with one line saying why.
pub fn choose_direct_io(overlay: &Path, backing: &Path, probe: impl Fn(&Path) -> Result<(), String>, warn: &mut dyn FnMut(&str)) -> bool {
    let mut dirs = vec![overlay.parent().unwrap_or(Path::new("."))];
    dirs.extend(backing.parent().filter(|d| !dirs.contains(d)));
    for dir in dirs {
        if let Err(why) = probe(dir) {
            warn(&format!(
                "warning: {} does not support O_DIRECT ({why}): the disk of {} uses the host page cache instead of cache='none' io='native'",
                dir.display(),
                overlay.file_stem().unwrap_or_default().to_string_lossy()
            ));
            return false;
        }
    }
    true
}

/// Removes a file or directory tree; absence is success.
pub fn remove(path: &Path) -> Result<(), ProviderError> {
    let result = if path.is_dir() { std::fs::remove_dir_all(path) } else { std::fs::remove_file(path) };
    match result {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(io_error(path, e)),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::provider::BootstrapFormat;

    #[test]
    fn the_qemu_group_is_read_from_the_group_file() {
        let dir = tempfile::tempdir().unwrap();
        let paths = HostPaths::with_root(dir.path());
        assert_eq!(qemu_gid(&paths), None);
        std::fs::create_dir_all(dir.path().join("etc")).unwrap();
        std::fs::write(dir.path().join("etc/group"), "root:x:0:\nlibvirt-qemu:x:64055:blockhost\n").unwrap();
        assert_eq!(qemu_gid(&paths), Some(64055));
    }

    #[test]
    fn the_seed_keeps_its_secrets_private() {
        let dir = tempfile::tempdir().unwrap();
        let paths = HostPaths::with_root(dir.path());
        let files = VmFiles::new(&paths, "vm-1");
        let bootstrap = Bootstrap {
            user_data: "#cloud-config\nsecret: 1\n".into(),
            meta_data: "instance-id: i-1\n".into(),
            network_config: "config: disabled\n".into(),
            format: BootstrapFormat::CloudConfig,
            sha256: String::new(),
        };
        write_seed(&paths, &files, &bootstrap).unwrap();
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&files.seed_dir), 0o750);
        assert_eq!(mode(&files.seed_dir.join("user-data")), 0o600);
        assert_eq!(mode(&files.seed_iso), 0o640);
        let iso = std::fs::read(&files.seed_iso).unwrap();
        assert_eq!(&iso[0x8001..0x8006], b"CD001");
    }

    #[test]
    fn a_failed_overlay_leaves_no_file() {
        let dir = tempfile::tempdir().unwrap();
        let paths = HostPaths::with_root(dir.path());
        let overlay = dir.path().join("vms/vm-1.qcow2");
        let err = create_overlay(&paths, &overlay, &dir.path().join("missing.qcow2"), 4).unwrap_err();
        assert!(matches!(err.code, ErrorCode::InvalidSpec | ErrorCode::Unsupported), "{err:?}");
        assert!(!overlay.exists());
    }

    #[test]
    fn a_local_filesystem_takes_o_direct_and_the_probe_leaves_nothing() {
        let dir = tempfile::tempdir_in(env!("CARGO_MANIFEST_DIR")).unwrap();
        assert_eq!(supports_direct_io(dir.path()), Ok(()));
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0, "the scratch file is removed");
        let mut lines = Vec::new();
        let backing = dir.path().join("templates/v1/disk.qcow2");
        std::fs::create_dir_all(backing.parent().unwrap()).unwrap();
        assert!(choose_direct_io(&dir.path().join("vm-1.qcow2"), &backing, supports_direct_io, &mut |l| lines.push(l.to_string())));
        assert!(lines.is_empty(), "{lines:?}");
    }

    #[test]
    fn without_o_direct_the_fallback_is_said_once() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("nowhere");
        assert!(supports_direct_io(&missing).unwrap_err().starts_with("opening with O_DIRECT: "));
        let mut lines = Vec::new();
        // tmpfs refuses (before Linux 6.6); first the overlay's directory, then the template's.
        let on_tmpfs = |d: &Path| if d.starts_with("/dev/shm") { Err("opening with O_DIRECT: Invalid argument (os error 22)".to_string()) } else { Ok(()) };
        let backing = Path::new("/var/lib/blockhost/templates/v1/disk.qcow2");
        assert!(!choose_direct_io(Path::new("/dev/shm/vms/vm-1.qcow2"), backing, on_tmpfs, &mut |l| lines.push(l.to_string())));
        assert_eq!(
            lines,
            ["warning: /dev/shm/vms does not support O_DIRECT (opening with O_DIRECT: Invalid argument (os error 22)): the disk of vm-1 uses the host page cache instead of cache='none' io='native'"]
        );
        lines.clear();
        let overlay = Path::new("/var/lib/blockhost/vms/vm-2.qcow2");
        assert!(!choose_direct_io(overlay, Path::new("/dev/shm/t/disk.qcow2"), on_tmpfs, &mut |l| lines.push(l.to_string())));
        assert_eq!(lines.len(), 1);
        assert!(lines[0].starts_with("warning: /dev/shm/t does not support O_DIRECT"), "{lines:?}");
        lines.clear();
        assert!(choose_direct_io(overlay, Path::new("/var/lib/blockhost/templates/v1/disk.qcow2"), on_tmpfs, &mut |l| lines.push(l.to_string())));
        assert!(lines.is_empty());
    }
}
