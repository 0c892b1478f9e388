//! The domain definition, derived from the deployment profile, the template's
//! boot profile and the VM spec; and the few facts read back from a live
//! definition.

use template_builder::{Accelerator, BootMode, Firmware, Template};
use crate::provider::NicSpec;
use std::fmt::Write;
use std::path::Path;

pub const METADATA_NS: &str = "urn:blockhost:provisioner:libvirt:1";
pub const GUEST_AGENT_CHANNEL: &str = "org.qemu.guest_agent.0";
/// The VM's main disk; block statistics and I/O limits refer to it.
pub const DISK_TARGET: &str = "vda";

pub struct DomainPlan<'a> {
    pub name: &'a str,
    pub vcpus: u32,
    pub memory_mib: u64,
    pub accelerator: Accelerator,
    /// The deployment profile's override, else the template's.
    pub machine: Option<&'a str>,
    pub template: &'a Template,
    pub overlay: &'a Path,
    pub seed_iso: &'a Path,
    /// Where the serial console's output is also logged (the console itself is a pty).
    pub console_log: &'a Path,
    /// The overlay's storage takes `O_DIRECT`: no host page cache, native AIO.
    pub direct_io: bool,
    pub nic: Option<&'a NicSpec>,
    /// Identifies the spec the domain was defined from (see [`fingerprint`]).
    pub fingerprint: &'a str,
}

/// What makes two spawns of one name the same request.
pub fn fingerprint(spec: &crate::provider::VmSpec) -> String {
    format!("vcpus={} memory_mib={} disk_gib={} bootstrap={}", spec.vcpus, spec.memory_mib, spec.disk_gib, spec.bootstrap.sha256)
}

/// XML-escapes text and attribute values.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '\'' => out.push_str("&apos;"),
            '"' => out.push_str("&quot;"),
            c => out.push(c),
        }
    }
    out
}

fn path(p: &Path) -> String {
    escape(&p.to_string_lossy())
}

impl DomainPlan<'_> {
    pub fn to_xml(&self) -> String {
        let boot = &self.template.manifest.boot;
        let machine = self.machine.unwrap_or(&boot.machine);
        let (kind, cpu, tcg) = match self.accelerator {
            Accelerator::Kvm => ("kvm", "<cpu mode='host-model'/>".to_string(), String::new()),
            Accelerator::Tcg { tb_cache_mib } => (
                "qemu",
                "<cpu mode='custom' match='exact'><model fallback='allow'>qemu64</model></cpu>".to_string(),
                format!("<tcg><tb-cache unit='MiB'>{tb_cache_mib}</tb-cache></tcg>"),
            ),
        };
        let mut x = String::new();
        let _ = writeln!(x, "<domain type='{kind}'>");
        let _ = writeln!(x, "  <name>{}</name>", escape(self.name));
        let _ = writeln!(x, "  <metadata>");
        let _ = writeln!(
            x,
            "    <blockhost:vm xmlns:blockhost='{METADATA_NS}'><blockhost:spec>{}</blockhost:spec><blockhost:template>{}</blockhost:template></blockhost:vm>",
            escape(self.fingerprint),
            path(&self.template.dir)
        );
        let _ = writeln!(x, "  </metadata>");
        let _ = writeln!(x, "  <memory unit='MiB'>{}</memory>", self.memory_mib);
        let _ = writeln!(x, "  <vcpu>{}</vcpu>", self.vcpus);
        x.push_str(&self.os_xml(machine));
        let _ = writeln!(x, "  <features><acpi/><apic/>{tcg}</features>");
        let _ = writeln!(x, "  {cpu}");
        x.push_str("  <clock offset='utc'/>\n");
        x.push_str("  <on_poweroff>destroy</on_poweroff>\n  <on_reboot>restart</on_reboot>\n  <on_crash>destroy</on_crash>\n");
        x.push_str("  <devices>\n");
        // Native AIO needs O_DIRECT; without it QEMU's defaults (writeback, threads) stay.
        let io = if self.direct_io { " cache='none' io='native'" } else { "" };
        let _ = writeln!(
            x,
            "    <disk type='file' device='disk'><driver name='qemu' type='qcow2'{io} discard='unmap'/><source file='{}'/><target dev='{DISK_TARGET}' bus='virtio'/></disk>",
            path(self.overlay)
        );
        x.push_str(&self.cdrom_xml(&boot.cdrom_bus));
        if let Some(nic) = self.nic {
            // No option ROM: the VM boots from its disk, never from the network,
            // and the firmware would load and start iPXE on every boot.
            let _ = writeln!(
                x,
                "    <interface type='bridge'><source bridge='{}'/><mac address='{}'/><model type='virtio'/><port isolated='yes'/><rom enabled='no'/></interface>",
                escape(&nic.bridge),
                escape(&nic.mac)
            );
        }
        let _ = writeln!(x, "    <channel type='unix'><target type='virtio' name='{GUEST_AGENT_CHANNEL}'/></channel>");
        // A pty for `virsh console`, its output also appended to the log (written by
        // virtlogd where libvirt uses it, else by QEMU after DAC relabelling).
        let _ = writeln!(x, "    <serial type='pty'><log file='{}' append='on'/><target port='0'/></serial>", path(self.console_log));
        x.push_str("    <rng model='virtio'><backend model='random'>/dev/urandom</backend></rng>\n");
        x.push_str("    <memballoon model='virtio'><stats period='5'/></memballoon>\n");
        x.push_str("  </devices>\n</domain>\n");
        x
    }

    fn os_xml(&self, machine: &str) -> String {
        let ty = format!("<type arch='x86_64' machine='{}'>hvm</type>", escape(machine));
        match &self.template.manifest.boot.mode {
            BootMode::DirectKernel { kernel, initrd, cmdline } => format!(
                "  <os>{ty}<kernel>{}</kernel><initrd>{}</initrd><cmdline>{}</cmdline></os>\n",
                path(&self.template.file(kernel)),
                path(&self.template.file(initrd)),
                escape(cmdline)
            ),
            BootMode::Disk { firmware: Firmware::Bios } => format!("  <os>{ty}<boot dev='hd'/></os>\n"),
            BootMode::Disk { firmware: Firmware::Uefi } => format!("  <os firmware='efi'>{ty}<boot dev='hd'/></os>\n"),
        }
    }

    fn cdrom_xml(&self, bus: &str) -> String {
        let (dev, bus, controller) = match bus {
            "sata" => ("sda", "sata", ""),
            "scsi" => ("sda", "scsi", "    <controller type='scsi' model='virtio-scsi'/>\n"),
            _ => ("hdc", "ide", ""),
        };
        format!(
            "{controller}    <disk type='file' device='cdrom'><driver name='qemu' type='raw'/><source file='{}'/><target dev='{dev}' bus='{bus}'/><readonly/></disk>\n",
            path(self.seed_iso)
        )
    }
}

/// Facts read back from a domain's live or persistent definition.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DefinedDomain {
    pub fingerprint: Option<String>,
    /// Host-side device of each NIC (`vnetN`), present while it runs.
    pub tap_devices: Vec<String>,
    pub macs: Vec<String>,
    pub disk_files: Vec<String>,
}

pub fn read_back(xml: &str) -> Result<DefinedDomain, String> {
    let doc = roxmltree::Document::parse(xml).map_err(|e| format!("unreadable domain XML: {e}"))?;
    let mut out = DefinedDomain::default();
    for node in doc.descendants() {
        match node.tag_name().name() {
            "spec" if node.tag_name().namespace() == Some(METADATA_NS) => {
                out.fingerprint = node.text().map(str::to_string);
            }
            "interface" => {
                for child in node.children() {
                    match child.tag_name().name() {
                        "target" => out.tap_devices.extend(child.attribute("dev").map(str::to_string)),
                        "mac" => out.macs.extend(child.attribute("address").map(str::to_string)),
                        _ => {}
                    }
                }
            }
            "disk" => {
                let source = node.children().find(|c| c.tag_name().name() == "source");
                out.disk_files.extend(source.and_then(|s| s.attribute("file")).map(str::to_string));
            }
            _ => {}
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use template_builder::{BootProfile, TemplateManifest};
    use std::path::PathBuf;

    fn template(mode: BootMode, machine: &str, bus: &str) -> Template {
        Template {
            dir: PathBuf::from("/var/lib/blockhost/templates/bookworm-1"),
            manifest: TemplateManifest {
                version: "bookworm-1".into(),
                source: "debootstrap".into(),
                suite: "bookworm".into(),
                mirror: None,
                image: "disk.qcow2".into(),
                image_sha256: "00".into(),
                boot: BootProfile { mode, machine: machine.into(), cdrom_bus: bus.into() },
                packages: vec![],
                built_at: String::new(),
                inputs_digest: String::new(),
            },
        }
    }

    fn direct() -> BootMode {
        BootMode::DirectKernel { kernel: "vmlinuz".into(), initrd: "initrd.img".into(), cmdline: "root=/dev/vda rw console=ttyS0".into() }
    }

    fn nic() -> NicSpec {
        NicSpec {
            bridge: "br0".into(),
            ipv4: "10.0.0.5".parse().unwrap(),
            ipv4_prefix_len: 24,
            gateway: None,
            ipv6: None,
            ipv6_gateway: None,
            mac: "52:54:00:aa:bb:cc".into(),
        }
    }

    fn plan<'a>(t: &'a Template, accel: Accelerator, nic: Option<&'a NicSpec>) -> DomainPlan<'a> {
        DomainPlan {
            name: "vm-1",
            vcpus: 2,
            memory_mib: 1024,
            accelerator: accel,
            machine: None,
            template: t,
            overlay: Path::new("/var/lib/blockhost/vms/vm-1.qcow2"),
            seed_iso: Path::new("/var/lib/blockhost/cloud-init/vm-1/cidata.iso"),
            console_log: Path::new("/var/lib/blockhost/vms/vm-1.console.log"),
            direct_io: true,
            nic,
            fingerprint: "abc123",
        }
    }

    #[test]
    fn tcg_with_direct_kernel_boot_and_an_isolated_bridge_port() {
        let t = template(direct(), "pc", "ide");
        let n = nic();
        let xml = plan(&t, Accelerator::Tcg { tb_cache_mib: 256 }, Some(&n)).to_xml();
        for needle in [
            "<domain type='qemu'>",
            "<tcg><tb-cache unit='MiB'>256</tb-cache></tcg>",
            "machine='pc'",
            "<kernel>/var/lib/blockhost/templates/bookworm-1/vmlinuz</kernel>",
            "<initrd>/var/lib/blockhost/templates/bookworm-1/initrd.img</initrd>",
            "<driver name='qemu' type='qcow2' cache='none' io='native' discard='unmap'/><source file='/var/lib/blockhost/vms/vm-1.qcow2'/><target dev='vda' bus='virtio'/>",
            "<target dev='hdc' bus='ide'/><readonly/>",
            "<source bridge='br0'/><mac address='52:54:00:aa:bb:cc'/><model type='virtio'/><port isolated='yes'/><rom enabled='no'/>",
            "name='org.qemu.guest_agent.0'",
            "<rng model='virtio'>",
            "<serial type='pty'><log file='/var/lib/blockhost/vms/vm-1.console.log' append='on'/><target port='0'/></serial>",
            "<memory unit='MiB'>1024</memory>",
            "<vcpu>2</vcpu>",
        ] {
            assert!(xml.contains(needle), "missing {needle} in\n{xml}");
        }
        assert!(roxmltree::Document::parse(&xml).is_ok());
    }

    /// libvirt's own parser and schema (the in-process test driver) accept the
    /// definition, and the console stays a pty logged to the file.
    #[test]
    fn the_test_driver_defines_it_with_a_logged_pty_console() {
        let t = template(BootMode::Disk { firmware: Firmware::Bios }, "pc", "ide");
        let n = nic();
        let xml = plan(&t, Accelerator::Tcg { tb_cache_mib: 256 }, Some(&n)).to_xml();
        let conn = virt::connect::Connect::open(Some("test:///default")).unwrap();
        let domain = conn.define_domain_xml_flags(&xml, virt::sys::VIR_DOMAIN_DEFINE_VALIDATE).unwrap_or_else(|e| panic!("{e}\n{xml}"));
        let back = domain.xml_desc(0).unwrap();
        let doc = roxmltree::Document::parse(&back).unwrap();
        let serial = doc.descendants().find(|n| n.has_tag_name("serial")).expect("a serial device");
        assert_eq!(serial.attribute("type"), Some("pty"), "{back}");
        let log = serial.children().find(|n| n.has_tag_name("log")).expect("a console log");
        assert_eq!(log.attribute("file"), Some("/var/lib/blockhost/vms/vm-1.console.log"));
        assert_eq!(log.attribute("append"), Some("on"));
        let console = doc.descendants().find(|n| n.has_tag_name("console")).expect("the serial port as console");
        assert_eq!(console.attribute("type"), Some("pty"), "{back}");
        domain.undefine().unwrap();
    }

    #[test]
    fn kvm_with_uefi_disk_boot_and_sata_seed() {
        let t = template(BootMode::Disk { firmware: Firmware::Uefi }, "q35", "sata");
        let xml = plan(&t, Accelerator::Kvm, None).to_xml();
        assert!(xml.contains("<domain type='kvm'>"));
        assert!(xml.contains("<os firmware='efi'><type arch='x86_64' machine='q35'>hvm</type><boot dev='hd'/></os>"));
        assert!(xml.contains("<target dev='sda' bus='sata'/>"));
        assert!(!xml.contains("<interface"), "no NIC requested");
        assert!(!xml.contains("<tcg>"));
    }

    #[test]
    fn without_o_direct_the_overlay_keeps_qemus_default_cache() {
        let t = template(BootMode::Disk { firmware: Firmware::Bios }, "pc", "ide");
        let mut p = plan(&t, Accelerator::Kvm, None);
        p.direct_io = false;
        let xml = p.to_xml();
        assert!(xml.contains("<driver name='qemu' type='qcow2' discard='unmap'/><source file='/var/lib/blockhost/vms/vm-1.qcow2'/>"), "{xml}");
        assert!(!xml.contains("cache=") && !xml.contains("io='native'"), "{xml}");
    }

    #[test]
    fn virtio_scsi_cdrom_gets_its_controller_and_machine_override_wins() {
        let t = template(BootMode::Disk { firmware: Firmware::Bios }, "q35", "scsi");
        let mut p = plan(&t, Accelerator::Kvm, None);
        p.machine = Some("pc-i440fx-7.2");
        let xml = p.to_xml();
        assert!(xml.contains("<controller type='scsi' model='virtio-scsi'/>"));
        assert!(xml.contains("machine='pc-i440fx-7.2'"));
    }

    #[test]
    fn values_are_escaped() {
        let mut t = template(direct(), "pc", "ide");
        t.dir = PathBuf::from("/srv/a&b");
        let xml = plan(&t, Accelerator::Kvm, None).to_xml();
        assert!(xml.contains("/srv/a&amp;b/vmlinuz"));
        assert!(roxmltree::Document::parse(&xml).is_ok());
    }

    #[test]
    fn read_back_finds_metadata_taps_macs_and_disks() {
        let t = template(direct(), "pc", "ide");
        let n = nic();
        let xml = plan(&t, Accelerator::Kvm, Some(&n)).to_xml().replace("<model type='virtio'/>", "<target dev='vnet7'/><model type='virtio'/>");
        let back = read_back(&xml).unwrap();
        assert_eq!(back.fingerprint.as_deref(), Some("abc123"));
        assert_eq!(back.tap_devices, ["vnet7"]);
        assert_eq!(back.macs, ["52:54:00:aa:bb:cc"]);
        assert_eq!(back.disk_files, ["/var/lib/blockhost/vms/vm-1.qcow2", "/var/lib/blockhost/cloud-init/vm-1/cidata.iso"]);
        assert!(read_back("<domain").is_err());
    }
}
