//! Booting a built template as a VM would boot it, with plain QEMU: an overlay
//! on the template's image (the template is never written), no NIC, a NoCloud
//! seed whose user-data drives the guest, the serial console to a file, and
//! every wait bounded (QEMU killed by its PID past the deadline or when the
//! test fails).

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The "new kernel" the upgrade test installs in the guest.
pub const TEST_KERNEL: &str = "9.9.9-blockhost-test";
/// Serial console prefix of the guest's reports.
pub const REPORT: &str = "BH-KERNEL-TEST:";

/// User-data that reports the kernel command line at every boot; on the first
/// boot it also reports the root filesystem's size, then packages a copy of the
/// running kernel (its modules under the new version) as
/// `linux-image-<TEST_KERNEL>` (its postinst runs the kernel
/// hooks, as Debian's kernel packages do: tiny-initramfs packs the disk's
/// modules, GRUB gets the entry), installs it and reboots; the second boot
/// powers off.
pub fn kernel_upgrade_user_data() -> String {
    let every_boot = format!(
        "echo \"{REPORT} CMDLINE $(cat /proc/cmdline)\" > /dev/ttyS0; \
         if [ -e /var/lib/bh-kernel-test/installed ]; then echo \"{REPORT} SECOND BOOT\" > /dev/ttyS0; systemctl --no-block poweroff; fi"
    );
    let first_boot = format!(
        r#"#!/bin/sh
set -eu
say() {{ echo "{REPORT} $*" > /dev/ttyS0; }}
trap 'say FAILED' EXIT
say "ROOT-BYTES $(df -B1 --output=size / | tail -n 1 | tr -d ' ')"
running=$(uname -r)
new={TEST_KERNEL}
pkg=/root/linux-image-$new
mkdir -p $pkg/DEBIAN $pkg/boot $pkg/lib/modules
cp /boot/vmlinuz-$running $pkg/boot/vmlinuz-$new
cp /boot/config-$running $pkg/boot/config-$new
# tiny-initramfs loads the modules it packed from their files: the copied
# kernel (which still calls itself $running) needs no index under its new name.
ln -s $running $pkg/lib/modules/$new
cat > $pkg/DEBIAN/control <<EOF
Package: linux-image-$new
Version: 9.9.9
Architecture: amd64
Maintainer: BlockHost tests <tests@invalid>
Description: a copy of the running kernel under a new version
EOF
cat > $pkg/DEBIAN/postinst <<EOF
#!/bin/sh
set -e
export DEB_MAINT_PARAMS="\$*"
[ "\$1" = configure ] || exit 0
run-parts --report --exit-on-error --arg=$new --arg=/boot/vmlinuz-$new /etc/kernel/postinst.d
EOF
chmod 0755 $pkg/DEBIAN/postinst
dpkg-deb --root-owner-group --build $pkg /root/linux-image-$new.deb > /dev/ttyS0
dpkg -i /root/linux-image-$new.deb > /dev/ttyS0 2>&1
say "INITRD $(ls /boot/initrd.img-$new)"
say "GRUB-ENTRY $(grep -c "vmlinuz-$new" /boot/grub/grub.cfg)"
mkdir -p /var/lib/bh-kernel-test
touch /var/lib/bh-kernel-test/installed
sync
trap - EXIT
say INSTALLED
systemctl --no-block reboot
"#
    );
    let mut out = String::from("#cloud-config\nbootcmd:\n");
    out.push_str(&format!("  - [ sh, -c, {} ]\n", yaml_quoted(&every_boot)));
    out.push_str("write_files:\n  - path: /root/kernel-upgrade\n    permissions: '0755'\n    content: |\n");
    for line in first_boot.lines() {
        out.push_str(&format!("      {line}\n"));
    }
    out.push_str("runcmd:\n  - [ /root/kernel-upgrade ]\n");
    out
}

fn yaml_quoted(text: &str) -> String {
    format!("'{}'", text.replace('\'', "''"))
}

/// The NoCloud seed ISO (label `cidata`) with `user_data` and no network config.
pub fn seed_iso(path: &Path, user_data: &str) {
    let meta = b"instance-id: blockhost-kernel-upgrade-test\nlocal-hostname: kernel-test\n";
    let files = [
        iso9660::SeedFile { name: "user-data", data: user_data.as_bytes() },
        iso9660::SeedFile { name: "meta-data", data: meta },
        iso9660::SeedFile { name: "network-config", data: b"config: disabled\n" },
    ];
    std::fs::write(path, iso9660::build_seed_iso("cidata", &files).unwrap()).unwrap();
}

/// A QEMU process killed by its PID when dropped (a failed assertion included).
pub struct Qemu(Child);

impl Drop for Qemu {
    fn drop(&mut self) {
        if self.0.try_wait().ok().flatten().is_none() {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

/// Boots `disk` (qcow2) from its own disk (BIOS, `pc` machine, no kernel
/// given) with `seed` as IDE cdrom; guest reboots stay in the same process.
pub fn boot(disk: &Path, seed: &Path, serial_log: &Path) -> Qemu {
    let accel = if template_builder::kvm_usable(Path::new("/")) { "kvm".to_string() } else { "tcg,tb-size=256".to_string() };
    let mut cmd = Command::new("qemu-system-x86_64");
    cmd.args(["-machine", "pc", "-accel", &accel, "-m", "1024", "-smp", "2", "-display", "none", "-monitor", "none", "-nic", "none"]);
    cmd.arg("-serial").arg(format!("file:{}", serial_log.display()));
    cmd.arg("-drive").arg(format!("file={},if=virtio,format=qcow2", disk.display()));
    cmd.arg("-drive").arg(format!("file={},if=ide,index=0,media=cdrom,format=raw,readonly=on", seed.display()));
    cmd.stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::inherit());
    Qemu(cmd.spawn().unwrap())
}

impl Qemu {
    /// Waits for the guest to power off; false when `timeout` passed first
    /// (QEMU is killed then).
    pub fn wait_for_power_off(mut self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if let Some(status) = self.0.try_wait().unwrap() {
                assert!(status.success(), "qemu exited with {status}");
                return true;
            }
            std::thread::sleep(Duration::from_millis(500));
        }
        false
    }
}
