//! The throw-away builder VM: `qemu-system-x86_64` run directly (no libvirt,
//! no network), booting the image as the profile says, with ISOs (a seed, the
//! extra packages) as cdroms, serial console to a file, killed by its PID if
//! it does not power off in time.

use super::error::TemplateError;
use super::accelerator::Accelerator;
use super::manifest::{BootMode, BootProfile};
use super::run::bounded;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

pub const TIMEOUT: Duration = Duration::from_secs(20 * 60);
const MEMORY_MIB: u32 = 1024;

pub struct BuilderVm<'a> {
    pub disk: &'a Path,
    /// Where the profile's kernel and initrd live, for direct kernel boot.
    pub boot_dir: &'a Path,
    pub profile: &'a BootProfile,
    pub accelerator: Accelerator,
    pub cdroms: &'a [&'a Path],
    pub serial_log: &'a Path,
    /// Serial console lines that tell the guest did its work.
    pub success_markers: &'a [&'a str],
}

impl BuilderVm<'_> {
    pub fn command(&self) -> Command {
        let mut cmd = Command::new("qemu-system-x86_64");
        cmd.args(["-machine", &self.profile.machine]);
        match self.accelerator {
            Accelerator::Kvm => cmd.args(["-accel", "kvm", "-cpu", "host"]),
            Accelerator::Tcg { tb_cache_mib } => cmd.args(["-accel", &format!("tcg,tb-size={tb_cache_mib}")]),
        };
        cmd.args(["-m", &MEMORY_MIB.to_string(), "-smp", "2", "-display", "none", "-monitor", "none", "-nic", "none", "-no-reboot"]);
        let mut serial = std::ffi::OsString::from("file:");
        serial.push(self.serial_log);
        cmd.arg("-serial").arg(serial);
        cmd.arg("-drive").arg(drive(self.disk, "if=virtio,format=qcow2"));
        // `if=ide` lands on the machine's own controller: IDE on `pc`, AHCI (SATA) on `q35`.
        for (index, iso) in self.cdroms.iter().enumerate() {
            cmd.arg("-drive").arg(drive(iso, &format!("if=ide,index={index},media=cdrom,format=raw,readonly=on")));
        }
        if let BootMode::DirectKernel { kernel, initrd, cmdline } = &self.profile.mode {
            cmd.arg("-kernel").arg(self.boot_dir.join(kernel));
            cmd.arg("-initrd").arg(self.boot_dir.join(initrd));
            cmd.args(["-append", cmdline]);
        }
        cmd.stdout(Stdio::null()).stderr(Stdio::null());
        cmd
    }

    /// Boots, waits for power-off, and checks the serial log for the success markers.
    pub fn run(&self) -> Result<(), TemplateError> {
        let step = "the builder VM";
        let outcome = bounded(self.command(), step, TIMEOUT);
        let log = std::fs::read(self.serial_log).map(|b| String::from_utf8_lossy(&b).into_owned()).unwrap_or_default();
        outcome.map_err(|e| with_guest_failure(e, &log))?;
        for marker in self.success_markers {
            if !log.lines().any(|l| l.trim_end().ends_with(marker)) {
                let why = guest_failure(&log).unwrap_or_else(|| format!("it powered off without reporting {marker:?}"));
                return Err(TemplateError::step(step, why));
            }
        }
        Ok(())
    }
}

fn drive(path: &Path, options: &str) -> std::ffi::OsString {
    // QEMU option values escape a comma by doubling it.
    let mut arg = std::ffi::OsString::from("file=");
    arg.push(path.as_os_str().to_string_lossy().replace(',', ",,"));
    arg.push(",");
    arg.push(options);
    arg
}

fn guest_failure(log: &str) -> Option<String> {
    log.lines().find_map(|l| l.split_once("BLOCKHOST-TEMPLATE: FAILED: ").map(|(_, why)| format!("in the VM: {}", why.trim())))
}

fn with_guest_failure(error: TemplateError, log: &str) -> TemplateError {
    match guest_failure(log) {
        Some(why) => TemplateError::step("the builder VM", format!("{error}; {why}")),
        None => error,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::manifest::Firmware;

    fn args(cmd: &Command) -> Vec<String> {
        cmd.get_args().map(|a| a.to_string_lossy().into_owned()).collect()
    }

    #[test]
    fn disk_boot_command() {
        let profile = BootProfile { mode: BootMode::Disk { firmware: Firmware::Bios }, machine: "q35".into(), cdrom_bus: "sata".into() };
        let vm = BuilderVm {
            disk: Path::new("/t/.build-1/disk.qcow2"),
            boot_dir: Path::new("/t/.build-1"),
            profile: &profile,
            accelerator: Accelerator::Tcg { tb_cache_mib: 256 },
            cdroms: &[Path::new("/t/a,b/seed.iso"), Path::new("/t/debs.iso")],
            serial_log: Path::new("/t/serial.log"),
            success_markers: &[],
        };
        let got = args(&vm.command()).join(" ");
        assert!(got.starts_with("-machine q35 -accel tcg,tb-size=256 -m 1024"), "{got}");
        assert!(got.contains("-nic none -no-reboot -serial file:/t/serial.log"), "{got}");
        assert!(got.contains("-drive file=/t/.build-1/disk.qcow2,if=virtio,format=qcow2"), "{got}");
        assert!(got.contains("-drive file=/t/a,,b/seed.iso,if=ide,index=0,media=cdrom"), "{got}");
        assert!(got.contains("-drive file=/t/debs.iso,if=ide,index=1,media=cdrom"), "{got}");
        assert!(!got.contains("-kernel"));
        assert!(args(&BuilderVm { accelerator: Accelerator::Kvm, ..vm }.command()).join(" ").contains("-accel kvm -cpu host"));
    }

    #[test]
    fn direct_kernel_command() {
        let profile = BootProfile {
            mode: BootMode::DirectKernel { kernel: "vmlinuz".into(), initrd: "initrd.img".into(), cmdline: "root=/dev/vda".into() },
            machine: "pc".into(),
            cdrom_bus: "ide".into(),
        };
        let vm = BuilderVm {
            disk: Path::new("/d/disk.qcow2"),
            boot_dir: Path::new("/d"),
            profile: &profile,
            accelerator: Accelerator::Tcg { tb_cache_mib: 256 },
            cdroms: &[],
            serial_log: Path::new("/d/serial.log"),
            success_markers: &[],
        };
        let got = args(&vm.command()).join(" ");
        assert!(got.contains("-kernel /d/vmlinuz -initrd /d/initrd.img -append root=/dev/vda"), "{got}");
        assert!(!got.contains("media=cdrom"));
    }

    #[test]
    fn reports_the_guest_side_failure() {
        let log = "noise\r\nBLOCKHOST-TEMPLATE: FAILED: the image lacks sudo\r\n";
        assert_eq!(guest_failure(log).as_deref(), Some("in the VM: the image lacks sudo"));
        assert_eq!(guest_failure("all fine"), None);
    }
}
