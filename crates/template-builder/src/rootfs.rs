//! Plain file edits of a debootstrapped tree: what a booting VM needs
//! (fstab, GRUB's settings and installer, a tiny initramfs, the template
//! policy), then everything that must be unique per VM or is only build
//! residue removed.

use super::boot_loader::{fstab, grub_defaults, install_script, GRUB_DEFAULTS_PATH, INSTALL_SCRIPT_PATH};
use super::error::TemplateError;
use super::guest_config::{patch_sshd_config, FILES, MASKED_GENERATORS, MASKED_UNITS};
use std::path::Path;

/// tiny-initramfs' settings: the modules it loads (their dependencies are
/// added by `mktirfs`) are what a root on a virtio or virtio-SCSI disk needs
/// (ext4 is built into the kernel); nothing is guessed from the build host's
/// own root, and no microcode of the build host's CPU is added.
pub const TINY_INITRAMFS_CONF_PATH: &str = "etc/tiny-initramfs/tiny-initramfs.conf";
pub const TINY_INITRAMFS_CONF: &str = "\
# Written by blockhost-build-template: a VM's root is on a virtio or virtio-SCSI disk.
AUTO_MODULES=no
INCLUDE_MODULES=virtio_pci,virtio_blk,virtio_scsi,sd_mod
MICROCODE=no
DEBUG=no
";

fn write(root: &Path, rel: &str, text: &str) -> Result<(), TemplateError> {
    let path = with_parent(root, rel)?;
    std::fs::write(&path, text).map_err(TemplateError::io(&path))
}

fn symlink(root: &Path, rel: &str, target: &str) -> Result<(), TemplateError> {
    let path = with_parent(root, rel)?;
    remove_file(&path)?;
    std::os::unix::fs::symlink(target, &path).map_err(TemplateError::io(&path))
}

/// `root/rel`, its directory created when missing.
fn with_parent(root: &Path, rel: &str) -> Result<std::path::PathBuf, TemplateError> {
    let path = root.join(rel);
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(TemplateError::io(dir))?;
    }
    Ok(path)
}

fn remove_file(path: &Path) -> Result<(), TemplateError> {
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(TemplateError::io(path)(e)),
        _ => Ok(()),
    }
}

/// Removes the entries of `dir` (not `dir` itself) that `pick` selects.
fn clear_dir(dir: &Path, pick: impl Fn(&std::fs::DirEntry) -> bool) -> Result<(), TemplateError> {
    let entries = super::tree::entries(dir)?;
    for entry in entries {
        if pick(&entry) {
            super::tree::remove_tree(&entry.path())?;
        }
    }
    Ok(())
}

/// The VM's view of the system: the root filesystem `fs_uuid`, booted by GRUB
/// (installed later by the script written here), the template policy.
pub fn configure(root: &Path, fs_uuid: &str) -> Result<(), TemplateError> {
    write(root, "etc/hostname", "localhost\n")?;
    write(root, "etc/hosts", "127.0.0.1\tlocalhost\n::1\t\tlocalhost ip6-localhost ip6-loopback\n")?;
    write(root, "etc/fstab", &fstab(fs_uuid))?;
    write(root, GRUB_DEFAULTS_PATH, &grub_defaults())?;
    write(root, INSTALL_SCRIPT_PATH, &install_script(fs_uuid))?;
    let installer = root.join(INSTALL_SCRIPT_PATH);
    std::fs::set_permissions(&installer, std::os::unix::fs::PermissionsExt::from_mode(0o755)).map_err(TemplateError::io(&installer))?;
    for (path, content) in FILES {
        write(root, path, content)?;
    }
    let sshd_config = root.join("etc/ssh/sshd_config");
    let text = std::fs::read_to_string(&sshd_config).map_err(TemplateError::io(&sshd_config))?;
    write(root, "etc/ssh/sshd_config", &patch_sshd_config(&text))?;
    // minbase has no `locales`: cloud-init must not try to generate one.
    write(root, "etc/cloud/cloud.cfg.d/98-blockhost-minbase.cfg", "locale: false\n")?;
    for unit in MASKED_UNITS {
        symlink(root, &format!("etc/systemd/system/{unit}"), "/dev/null")?;
    }
    for generator in MASKED_GENERATORS {
        symlink(root, &format!("etc/systemd/system-generators/{generator}"), "/dev/null")?;
    }
    remove_shadowed_init_scripts(root)
}

/// Where a native systemd unit of the name of an init script makes systemd
/// ignore that script.
const UNIT_DIRS: [&str; 2] = ["etc/systemd/system", "lib/systemd/system"];

/// Removes each SysV init script that a native systemd unit of the same name
/// shadows, and its rc?.d links. systemd never runs such a script, but
/// `systemctl enable` of the unit also runs update-rc.d (Perl, insserv) for
/// it: 8 of the 10 s that the `systemctl enable qemu-guest-agent` in
/// BlockHost's user-data took under TCG. Upgrades do not bring them back
/// (dpkg keeps a removed conffile removed) and lose nothing: bookworm's
/// maintainer scripts restart such services through systemd.
fn remove_shadowed_init_scripts(root: &Path) -> Result<(), TemplateError> {
    let mut shadowed = Vec::new();
    for entry in super::tree::entries(&root.join("etc/init.d"))? {
        let name = entry.file_name().to_string_lossy().into_owned();
        let unit = format!("{name}.service");
        if UNIT_DIRS.iter().any(|dir| root.join(dir).join(&unit).symlink_metadata().is_ok()) {
            remove_file(&entry.path())?;
            shadowed.push(name);
        }
    }
    if shadowed.is_empty() {
        return Ok(());
    }
    for level in ["0", "1", "2", "3", "4", "5", "6", "S"] {
        clear_dir(&root.join(format!("etc/rc{level}.d")), |link| {
            let link = link.file_name().to_string_lossy().into_owned();
            shadowed.iter().any(|script| is_rc_link_of(&link, script))
        })?;
    }
    Ok(())
}

/// `S01name` or `K01name`.
fn is_rc_link_of(link: &str, script: &str) -> bool {
    let bytes = link.as_bytes();
    bytes.len() > 3 && matches!(bytes[0], b'S' | b'K') && bytes[1].is_ascii_digit() && bytes[2].is_ascii_digit() && &link[3..] == script
}

/// tiny-initramfs' settings, written before the package is installed so that
/// its first run (a dpkg trigger) already follows them instead of guessing
/// modules from the build host's mounts.
pub fn configure_initramfs(root: &Path) -> Result<(), TemplateError> {
    write(root, TINY_INITRAMFS_CONF_PATH, TINY_INITRAMFS_CONF)
}

/// Removes what must differ per VM (machine id, SSH host keys, cloud-init
/// state) and what only the build needed (logs, apt lists and caches).
pub fn clean(root: &Path) -> Result<(), TemplateError> {
    write(root, "etc/machine-id", "")?;
    symlink(root, "var/lib/dbus/machine-id", "/etc/machine-id")?;
    clear_dir(&root.join("etc/ssh"), |e| e.file_name().to_string_lossy().starts_with("ssh_host_"))?;
    clear_dir(&root.join("var/lib/cloud"), |_| true)?;
    clear_dir(&root.join("var/lib/apt/lists"), |e| e.file_name() != "partial" && e.file_name() != "lock")?;
    clear_dir(&root.join("var/cache/apt"), |e| e.file_name().to_string_lossy().ends_with(".bin"))?;
    clear_dir(&root.join("var/cache/apt/archives"), |e| e.file_name().to_string_lossy().ends_with(".deb"))?;
    clear_logs(&root.join("var/log"))?;
    clear_dir(&root.join("tmp"), |_| true)?;
    clear_dir(&root.join("var/tmp"), |_| true)?;
    // The build host's resolver, copied in by debootstrap, means nothing to a VM.
    remove_file(&root.join("etc/resolvconf/resolv.conf.d/original"))
}

/// Every regular file under `dir` removed; the directories stay (services expect them).
fn clear_logs(dir: &Path) -> Result<(), TemplateError> {
    let entries = super::tree::entries(dir)?;
    for entry in entries {
        let kind = entry.file_type().map_err(TemplateError::io(entry.path()))?;
        if kind.is_dir() {
            clear_logs(&entry.path())?;
        } else {
            remove_file(&entry.path())?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn configure_then_clean_a_tree() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        for (rel, text) in [
            ("etc/ssh/sshd_config", "KbdInteractiveAuthentication no\n"),
            ("etc/ssh/ssh_host_ed25519_key", "secret"),
            ("etc/ssh/moduli", "keep"),
            ("etc/machine-id", "0123456789abcdef0123456789abcdef\n"),
            ("var/lib/dbus/machine-id", "0123"),
            ("var/lib/cloud/instance/boot-finished", "x"),
            ("var/lib/apt/lists/deb.debian.org_dists_bookworm_InRelease", "x"),
            ("var/cache/apt/pkgcache.bin", "x"),
            ("var/cache/apt/archives/x.deb", "x"),
            ("var/log/apt/history.log", "x"),
            ("var/log/dpkg.log", "x"),
            ("tmp/blockhost-debs/x.deb", "x"),
            ("etc/resolvconf/resolv.conf.d/original", "nameserver 10.0.0.1\n"),
            ("etc/init.d/qemu-guest-agent", "#!/bin/sh\n"),
            ("lib/systemd/system/qemu-guest-agent.service", "[Unit]\n"),
            ("etc/rc2.d/S01qemu-guest-agent", "x"),
            ("etc/rc0.d/K01qemu-guest-agent", "x"),
            ("etc/rc2.d/S01qemu-guest-agent-extra", "x"),
            ("etc/init.d/hwclock.sh", "#!/bin/sh\n"),
            ("etc/rc2.d/S01hwclock.sh", "x"),
        ] {
            write(root, rel, text).unwrap();
        }
        std::fs::create_dir_all(root.join("etc/systemd/system")).unwrap();
        configure_initramfs(root).unwrap();
        configure(root, "0a1b2c3d-1111-4222-8333-444455556666").unwrap();
        clean(root).unwrap();
        let read = |rel: &str| std::fs::read_to_string(root.join(rel)).unwrap();
        assert_eq!(read("etc/fstab"), "UUID=0a1b2c3d-1111-4222-8333-444455556666 / ext4 defaults,errors=remount-ro 0 1\n");
        assert_eq!(read(GRUB_DEFAULTS_PATH), grub_defaults());
        assert_eq!(read(INSTALL_SCRIPT_PATH), install_script("0a1b2c3d-1111-4222-8333-444455556666"));
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(std::fs::metadata(root.join(INSTALL_SCRIPT_PATH)).unwrap().permissions().mode() & 0o777, 0o755);
        assert!(read("etc/ssh/sshd_config").contains("#KbdInteractiveAuthentication no"));
        for (path, content) in FILES {
            assert_eq!(read(path), content, "{path}");
        }
        assert!(read(TINY_INITRAMFS_CONF_PATH).contains("\nINCLUDE_MODULES=virtio_pci,virtio_blk,virtio_scsi,sd_mod\n"));
        assert_eq!(std::fs::read_link(root.join("etc/systemd/system/apt-daily.timer")).unwrap(), Path::new("/dev/null"));
        let masked = root.join("etc/systemd/system-generators/systemd-gpt-auto-generator");
        assert_eq!(std::fs::read_link(masked).unwrap(), Path::new("/dev/null"));
        assert_eq!(read("etc/machine-id"), "");
        assert_eq!(std::fs::read_link(root.join("var/lib/dbus/machine-id")).unwrap(), Path::new("/etc/machine-id"));
        assert!(!root.join("etc/ssh/ssh_host_ed25519_key").exists() && root.join("etc/ssh/moduli").exists());
        assert_eq!(std::fs::read_dir(root.join("var/lib/cloud")).unwrap().count(), 0);
        assert!(!root.join("var/log/dpkg.log").exists() && root.join("var/log/apt").is_dir());
        assert!(!root.join("var/lib/apt/lists/deb.debian.org_dists_bookworm_InRelease").exists());
        assert!(!root.join("var/cache/apt/pkgcache.bin").exists() && !root.join("var/cache/apt/archives/x.deb").exists());
        assert_eq!(std::fs::read_dir(root.join("tmp")).unwrap().count(), 0);
        assert!(!root.join("etc/resolvconf/resolv.conf.d/original").exists());
        let gone = ["etc/init.d/qemu-guest-agent", "etc/rc2.d/S01qemu-guest-agent", "etc/rc0.d/K01qemu-guest-agent"];
        assert!(gone.iter().all(|rel| !root.join(rel).exists()), "the shadowed init script and its links are removed");
        let kept = ["etc/init.d/hwclock.sh", "etc/rc2.d/S01hwclock.sh", "etc/rc2.d/S01qemu-guest-agent-extra", "lib/systemd/system/qemu-guest-agent.service"];
        assert!(kept.iter().all(|rel| root.join(rel).exists()), "scripts without a unit, other links and the unit stay");
    }

    #[test]
    fn rc_links_are_told_by_their_script_name() {
        assert!(is_rc_link_of("S01ssh", "ssh") && is_rc_link_of("K99ssh", "ssh"));
        assert!(!is_rc_link_of("S01sshd", "ssh") && !is_rc_link_of("X01ssh", "ssh") && !is_rc_link_of("S1ssh", "ssh") && !is_rc_link_of("ssh", "ssh"));
    }
}
