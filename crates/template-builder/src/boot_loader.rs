//! The debootstrap template boots its own kernel from its own disk with BIOS
//! GRUB (grub-pc): what the tree is given for it (fstab and GRUB settings, root
//! by filesystem UUID) and the script that installs GRUB, run as `init` of one
//! direct kernel boot of the builder VM (`grub-install` needs the disk as a
//! block device, which the build host only has with loop devices).
//!
//! The kernel command line lives in GRUB's settings, so a kernel installed
//! later inside a VM gets it too: its package's hooks run
//! `/etc/kernel/postinst.d/zz-update-grub`, which rewrites `grub.cfg`.

use super::accelerator::Accelerator;
use super::builder_seed::MARKER;
use super::builder_vm::BuilderVm;
use super::error::TemplateError;
use super::manifest::{BootMode, BootProfile};
use super::run::BuildLog;
use std::path::Path;

/// The disk as the VM sees it (virtio, first disk).
const DISK: &str = "/dev/vda";
/// A drop-in read by `update-grub` after `/etc/default/grub`, which stays the
/// package's unmodified conffile.
pub const GRUB_DEFAULTS_PATH: &str = "etc/default/grub.d/50-blockhost.cfg";
pub const INSTALL_SCRIPT_PATH: &str = "usr/local/sbin/blockhost-install-grub";
/// Where the installer runs from, on the tmpfs the initramfs left at `/run`.
const RUN_COPY: &str = "/run/blockhost-install-grub";
/// Printed on the serial console when GRUB is installed and configured.
pub const INSTALLED: &str = "BLOCKHOST-TEMPLATE: BOOT LOADER INSTALLED";

/// GRUB's settings: the command line every kernel of the VM boots with (no
/// `quiet`: the console log is the VM's), messages on the serial console as
/// well, and no menu wait: the newest kernel boots at once (a second of a
/// usable VM's wait under TCG); an older one is picked from inside the guest
/// with `grub-reboot`.
pub fn grub_defaults() -> String {
    String::from(
        "# Written by blockhost-build-template.\n\
         GRUB_CMDLINE_LINUX=\"console=ttyS0 net.ifnames=0\"\n\
         GRUB_CMDLINE_LINUX_DEFAULT=\"\"\n\
         GRUB_TERMINAL=\"console serial\"\n\
         GRUB_SERIAL_COMMAND=\"serial --unit=0 --speed=115200\"\n\
         GRUB_TIMEOUT=0\n",
    )
}

/// `/etc/fstab`: the root filesystem by UUID, whatever the disk is called.
pub fn fstab(fs_uuid: &str) -> String {
    format!("UUID={fs_uuid} / ext4 defaults,errors=remount-ro 0 1\n")
}

/// The command line of the boot that runs [`install_script`] as `init`.
pub fn installer_cmdline(fs_uuid: &str) -> String {
    format!("root=UUID={fs_uuid} rw console=ttyS0 net.ifnames=0 init=/{INSTALL_SCRIPT_PATH}")
}

/// Runs as process 1 after the initramfs mounted the root filesystem (and
/// moved its `/dev` and `/proc` there; `/sys` and the tmpfs at `/run` are
/// mounted here, tiny-initramfs leaves them out): installs GRUB to the disk, records that disk
/// for grub-pc's own upgrades, writes `grub.cfg`, removes itself, leaves the
/// filesystem clean and powers off. Nothing else of the system starts, so no
/// machine id, host key or log is created.
pub fn install_script(fs_uuid: &str) -> String {
    format!(
        r#"#!/bin/sh
PATH=/usr/sbin:/usr/bin:/sbin:/bin
export PATH LC_ALL=C
say() {{ echo "{MARKER} $*" > /dev/ttyS0; }}
off() {{ sync; poweroff -f; echo o > /proc/sysrq-trigger; sleep 60; }}
fail() {{ say "FAILED: $*"; off; }}
mounted() {{ grep -q " $1 " /proc/mounts; }}
mounted /sys || mount -t sysfs sysfs /sys || fail "mounting /sys"
mounted /run || mount -t tmpfs -o mode=0755 tmpfs /run || fail "mounting /run"
if [ "$0" = /{INSTALL_SCRIPT_PATH} ]; then
    # Run from a copy: a removed file still open would keep / from being remounted read-only.
    cp /{INSTALL_SCRIPT_PATH} {RUN_COPY} && exec sh {RUN_COPY}
    fail "copying the installer to /run"
fi
grub-install --target=i386-pc {DISK} > /dev/ttyS0 2>&1 || fail "grub-install {DISK}"
echo "grub-pc grub-pc/install_devices multiselect {DISK}" | debconf-set-selections || fail "recording the GRUB install device"
# update-grub names the root by UUID only when udev's link to it exists; no udev runs here.
mkdir -p /dev/disk/by-uuid && ln -sf {DISK}1 /dev/disk/by-uuid/{fs_uuid} || fail "linking the root filesystem's UUID"
update-grub > /dev/ttyS0 2>&1 || fail "update-grub"
grep -q "root=UUID={fs_uuid} " /boot/grub/grub.cfg || fail "grub.cfg does not name the root filesystem by its UUID"
rm -f /{INSTALL_SCRIPT_PATH} || fail "removing the installer"
mount -o remount,ro / || fail "remounting / read-only"
echo "{INSTALLED}" > /dev/ttyS0
off
"#
    )
}

/// Boots `image` (qcow2) once with the kernel and initrd in `boot_dir` and
/// [`install_script`] as `init`; the serial console goes into the build log.
pub fn install(image: &Path, boot_dir: &Path, fs_uuid: &str, accelerator: Accelerator, log: &mut BuildLog) -> Result<(), TemplateError> {
    let profile = BootProfile {
        mode: BootMode::DirectKernel {
            kernel: super::disk::KERNEL_FILE.into(),
            initrd: super::disk::INITRD_FILE.into(),
            cmdline: installer_cmdline(fs_uuid),
        },
        machine: "pc".into(),
        cdrom_bus: "ide".into(),
    };
    let serial_log = boot_dir.join("serial.log");
    let vm = BuilderVm {
        disk: image,
        boot_dir,
        profile: &profile,
        accelerator,
        cdroms: &[],
        serial_log: &serial_log,
        success_markers: &[INSTALLED],
    };
    let outcome = vm.run();
    let serial = std::fs::read(&serial_log).map(|b| String::from_utf8_lossy(&b).into_owned()).unwrap_or_default();
    for line in serial.lines() {
        log.note(&format!("serial: {}", line.trim_end_matches('\r')));
    }
    outcome.map_err(|e| TemplateError::step("installing GRUB", format!("{e} (log: {})", log.path().display())))
}

#[cfg(test)]
mod tests {
    use super::*;

    const UUID: &str = "0a1b2c3d-1111-4222-8333-444455556666";

    #[test]
    fn grub_keeps_the_console_and_interface_names() {
        let text = grub_defaults();
        assert!(text.lines().any(|l| l == "GRUB_CMDLINE_LINUX=\"console=ttyS0 net.ifnames=0\""), "{text}");
        assert!(text.lines().any(|l| l == "GRUB_CMDLINE_LINUX_DEFAULT=\"\""), "{text}");
        let status = std::process::Command::new("sh").args(["-n", "-c", &text]).status().unwrap();
        assert!(status.success(), "sourced by grub-mkconfig: must be shell");
    }

    #[test]
    fn root_is_named_by_uuid() {
        assert_eq!(fstab(UUID), format!("UUID={UUID} / ext4 defaults,errors=remount-ro 0 1\n"));
        let cmdline = installer_cmdline(UUID);
        assert!(cmdline.starts_with(&format!("root=UUID={UUID} rw console=ttyS0 ")), "{cmdline}");
        assert!(cmdline.ends_with(" init=/usr/local/sbin/blockhost-install-grub"), "{cmdline}");
        assert!(!cmdline.contains("/dev/vda"));
    }

    #[test]
    fn installer_reports_with_the_builder_markers() {
        let script = install_script(UUID);
        let status = std::process::Command::new("sh").args(["-n", "-c", &script]).status().unwrap();
        assert!(status.success(), "{script}");
        assert!(script.contains(r#"echo "BLOCKHOST-TEMPLATE: BOOT LOADER INSTALLED" > /dev/ttyS0"#), "{script}");
        assert!(script.contains(&format!("grep -q \"root=UUID={UUID} \" /boot/grub/grub.cfg")), "{script}");
        assert!(script.contains("grub-install --target=i386-pc /dev/vda "), "{script}");
        let relaunch = script.find("exec sh /run/blockhost-install-grub").unwrap();
        assert!(relaunch < script.find("rm -f /usr/local/sbin/blockhost-install-grub").unwrap(), "removed only once it runs from a copy");
        assert!(script.contains(&format!(r#"say() {{ echo "{MARKER} $*""#)), "failures use the builder's marker");
    }
}
