//! The default source: a minimal Debian system bootstrapped from a mirror,
//! packed into the partition of an MBR disk image, which boots its own kernel
//! with BIOS GRUB (installed by one boot of the builder VM, see
//! [`boot_loader`](super::boot_loader)). No kernel is kept on the host.

use super::accelerator::Accelerator;
use super::boot_loader;
use super::chroot;
use super::disk;
use super::dpkg_status;
use super::error::TemplateError;
use super::manifest::{BootMode, BootProfile, Firmware, PackageVersion};
use super::plan::ExtraDeb;
use super::preflight::Tool;
use super::progress::{Steps, Throttle};
use super::rootfs;
use super::run::{isolated, logged, BuildLog};
use std::path::Path;
use std::time::Duration;

/// Installed by debootstrap. `python3-cffi-backend` is listed because
/// debootstrap does not resolve the virtual package python3-cryptography
/// (a cloud-init dependency) needs; `ifupdown` is what cloud-init renders
/// network-config v2 to on Debian; `cloud-guest-utils` has the `growpart`
/// cloud-init grows the root partition with on a VM's larger disk.
pub const PACKAGES: &[&str] = &[
    "systemd-sysv",
    "udev",
    "dbus",
    "linux-image-cloud-amd64",
    "grub-pc",
    "cloud-init",
    "cloud-guest-utils",
    "python3-cffi-backend",
    "qemu-guest-agent",
    "openssh-server",
    "sudo",
    "ifupdown",
    "iproute2",
    "e2fsprogs",
];

/// Installed with apt after debootstrap, together with the extra `.deb`s:
/// resolvconf applies the `dns-nameservers` cloud-init writes for ifupdown,
/// and replaces `/etc/resolv.conf`, which apt still needs until then;
/// tiny-initramfs replaces initramfs-tools (which debootstrap installs for
/// the kernel, taking the first of its alternatives): one static program that
/// loads the disk's modules and mounts the root, where initramfs-tools ran a
/// shell, udev and a dozen programs on every boot (seconds under TCG).
pub const LATE_PACKAGES: &[&str] = &["resolvconf", "tiny-initramfs"];

pub const TOOLS: &[Tool] = &[
    ("debootstrap", "debootstrap"),
    ("unshare", "util-linux"),
    ("chroot", "coreutils"),
    ("mkfs.ext4", "e2fsprogs"),
    ("qemu-img", "qemu-utils"),
    ("qemu-system-x86_64", "qemu-system-x86"),
];

/// Steps this source announces (the caller adds its own).
pub const STEPS: usize = 6;
/// Holds the kernel and initrd of the boot that installs GRUB, inside staging.
const INSTALLER_BOOT_DIR: &str = ".boot-loader";

pub fn recipe_packages() -> Vec<&'static str> {
    PACKAGES.iter().chain(LATE_PACKAGES).copied().collect()
}

/// Builds `disk.qcow2` in `staging`.
pub fn build(
    suite: &str,
    mirror: &str,
    debs: &[ExtraDeb],
    staging: &Path,
    accelerator: Accelerator,
    log: &mut BuildLog,
    steps: &mut Steps,
) -> Result<(BootProfile, Vec<PackageVersion>), TemplateError> {
    let root = staging.join("rootfs");
    steps.next(&format!("Bootstrapping Debian {suite} from {mirror} (debootstrap)"));
    let mut cmd = isolated("debootstrap", None);
    cmd.args(["--variant=minbase", "--components=main", &format!("--include={}", PACKAGES.join(","))])
        .arg(suite)
        .arg(&root)
        .arg(mirror);
    let mut forward = DebootstrapProgress::new(Duration::from_secs(2));
    logged(cmd, "debootstrap", log, &mut |line| {
        if let Some(shown) = forward.filter(line) {
            steps.detail(&format!("      {shown}"));
        }
    })?;

    let late = LATE_PACKAGES.join(", ");
    let what = match debs.len() {
        0 => format!("Installing {late}"),
        n => format!("Installing {late} and {n} extra package(s) from template-packages"),
    };
    steps.next(&what);
    rootfs::configure_initramfs(&root)?;
    chroot::install(&root, LATE_PACKAGES, debs, log, &mut |_| {})?;

    steps.next("Configuring the system and its initramfs");
    let fs_uuid = disk::fresh_uuid()?;
    rootfs::configure(&root, &fs_uuid)?;
    chroot::run(&root, &["update-tirfs"], "update-tirfs", log, &mut |_| {})?;

    steps.next("Recording package versions and cleaning up");
    let packages = dpkg_status::installed(&root)?;
    rootfs::clean(&root)?;

    steps.next("Building the disk image (MBR, ext4 root partition, qcow2)");
    let boot_dir = staging.join(INSTALLER_BOOT_DIR);
    std::fs::create_dir(&boot_dir).map_err(TemplateError::io(&boot_dir))?;
    disk::copy_boot_files(&root, &boot_dir)?;
    let raw = staging.join("disk.raw");
    disk::partitioned_ext4_image(&root, &raw, &fs_uuid, log)?;
    super::tree::remove_tree(&root)?;
    let image = staging.join(disk::IMAGE_FILE);
    disk::to_qcow2(&raw, Some("raw"), &image, log)?;
    std::fs::remove_file(&raw).map_err(TemplateError::io(&raw))?;

    steps.next("Installing GRUB in a throw-away VM (a minute or two without KVM)");
    boot_loader::install(&image, &boot_dir, &fs_uuid, accelerator, log)?;
    super::tree::remove_tree(&boot_dir)?;

    let boot = BootProfile { mode: BootMode::Disk { firmware: Firmware::Bios }, machine: "pc".into(), cdrom_bus: "ide".into() };
    Ok((boot, packages))
}

/// Which debootstrap output lines are worth showing: warnings and errors
/// always, the first line of each phase (Retrieving, Validating, Extracting,
/// Unpacking, Configuring…; debootstrap alternates some of them), otherwise
/// one line per interval.
struct DebootstrapProgress {
    throttle: Throttle,
    phases: std::collections::HashSet<String>,
}

impl DebootstrapProgress {
    fn new(every: Duration) -> Self {
        Self { throttle: Throttle::new(every), phases: Default::default() }
    }

    fn filter<'l>(&mut self, line: &'l str) -> Option<&'l str> {
        if line.starts_with("W:") || line.starts_with("E:") {
            return Some(line);
        }
        let info = line.strip_prefix("I: ")?;
        let phase = info.split_whitespace().next().unwrap_or_default();
        if self.phases.insert(phase.to_string()) {
            self.throttle.ready();
            return Some(line);
        }
        self.throttle.ready().then_some(line)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shows_phases_warnings_and_a_throttled_rest() {
        let mut p = DebootstrapProgress::new(Duration::from_secs(3600));
        let lines = [
            "I: Retrieving InRelease",
            "I: Retrieving Packages",
            "W: something odd",
            "I: Validating Packages",
            "I: Retrieving libc6 2.36",
            "I: Validating libc6 2.36",
            "some tool chatter",
            "I: Extracting base-files...",
            "E: broken",
        ];
        let shown: Vec<&str> = lines.iter().filter_map(|l| p.filter(l)).collect();
        assert_eq!(
            shown,
            ["I: Retrieving InRelease", "W: something odd", "I: Validating Packages", "I: Extracting base-files...", "E: broken"]
        );
    }

    #[test]
    fn the_guest_gets_its_boot_loader_and_growpart_and_the_host_qemu() {
        assert!(PACKAGES.contains(&"grub-pc") && PACKAGES.contains(&"cloud-guest-utils"));
        assert!(TOOLS.contains(&("qemu-system-x86_64", "qemu-system-x86")), "GRUB is installed in the builder VM");
    }

    #[test]
    fn recipe_lists_the_late_packages_too() {
        let all = recipe_packages();
        assert!(all.contains(&"cloud-init") && all.contains(&"resolvconf") && all.contains(&"tiny-initramfs"));
        assert!(!all.contains(&"initramfs-tools"), "the two initramfs generators conflict");
        assert_eq!(all.len(), PACKAGES.len() + LATE_PACKAGES.len());
    }
}
