//! Real template builds from the Debian mirror: root, network and a few minutes
//! each, so they are ignored by a plain `cargo test`; the real-VM stage
//! (`scripts/e2e-libvirt.sh`) runs them:
//!
//! `cargo test -p blockhost-template-builder --test template_e2e -- --ignored --nocapture --test-threads=1`

mod template_support;

use template_builder::{BootMode, BuildOptions, Firmware, Template, TemplateError};
use std::io::BufRead;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use template_support::*;

/// Set by the interruption test for the build it starts in a child process.
const DRIVER_ROOT: &str = "BLOCKHOST_TEMPLATE_DRIVER_ROOT";

/// Root and debootstrap, which the real-VM stage provides.
fn prerequisites_met() -> bool {
    testkit::require(testkit::is_root(), "real template builds need root")
        && testkit::require(testkit::on_path("debootstrap"), "debootstrap is not installed")
}

/// The mirror or a download could not be reached (the provider's `unavailable`).
fn unavailable(err: &TemplateError) -> bool {
    matches!(err, TemplateError::MirrorUnreachable(_) | TemplateError::Download { .. })
}

/// The root filesystem inside a raw disk image, as e2fsprogs tools name it:
/// `<image>?offset=<bytes>` of its first partition (read with partx).
fn root_partition(raw: &Path) -> String {
    let out = Command::new("partx").args(["--show", "--noheadings", "-o", "START", "--nr", "1"]).arg(raw).output().unwrap();
    assert!(out.status.success(), "partx: {}", String::from_utf8_lossy(&out.stderr));
    let start: u64 = String::from_utf8_lossy(&out.stdout).trim().parse().unwrap();
    format!("{}?offset={}", raw.display(), start * 512)
}

/// Runs `debugfs -R <request>` on an ext4 filesystem (see [`root_partition`]).
fn debugfs(fs: &str, request: &str) -> String {
    let out = Command::new("debugfs").args(["-R", request, fs]).output().unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
#[ignore = "a real template build (root, the Debian mirror, minutes): run by the real-VM stage"]
fn real_build_from_the_mirror() {
    if !prerequisites_met() {
        return;
    }
    let root = tempfile::tempdir().unwrap();
    let packages = layout(root.path()).packages;
    std::fs::create_dir_all(&packages).unwrap();
    build_probe_deb(&packages, "1.0");
    let store = store_at(root.path());

    let started = Instant::now();
    let mut progress = |line: &str| eprintln!("{:>6.1}s {line}", started.elapsed().as_secs_f64());
    // The probe package stands in for the real ones; libpam-web3 is not among them.
    let no_pam = BuildOptions { allow_without_libpam_web3: true, ..BuildOptions::default() };
    let build = store.build(&no_pam, &mut progress).unwrap();
    eprintln!("first build: {:.0} s", started.elapsed().as_secs_f64());
    assert!(build.built);

    let dir = build.path.parent().unwrap().to_path_buf();
    let template = Template::load(&dir).unwrap();
    assert_eq!(store.current().unwrap().as_ref(), Some(&template));
    let m = &template.manifest;
    eprintln!("manifest: {}", std::fs::read_to_string(dir.join("template.json")).unwrap().lines().take(30).collect::<Vec<_>>().join("\n"));
    assert!(m.version.starts_with("bookworm-") && dir.ends_with(&m.version));
    assert_eq!((m.source.as_str(), m.suite.as_str()), ("debootstrap", "bookworm"));
    assert_eq!(m.mirror.as_deref(), Some("http://deb.debian.org/debian"));
    assert_eq!((m.boot.machine.as_str(), m.boot.cdrom_bus.as_str()), ("pc", "ide"));
    assert_eq!(m.boot.mode, BootMode::Disk { firmware: Firmware::Bios }, "the guest boots its own kernel");
    let mut files: Vec<String> = std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    files.sort();
    assert_eq!(files, ["disk.qcow2", "template.json"], "no kernel kept on the host");
    let meta = std::fs::metadata(&build.path).unwrap();
    assert!(meta.len() > 1 << 20);
    assert_eq!(std::os::unix::fs::PermissionsExt::mode(&meta.permissions()) & 0o777, 0o644);
    assert_eq!(sha256_of(&build.path), m.image_sha256);
    let version_of = |name: &str| m.packages.iter().find(|p| p.name == name).map(|p| p.version.clone());
    assert_eq!(version_of(PROBE_PACKAGE).as_deref(), Some("1.0"));
    for name in ["cloud-init", "linux-image-cloud-amd64", "grub-pc", "cloud-guest-utils", "qemu-guest-agent", "openssh-server", "resolvconf", "sudo"] {
        assert!(version_of(name).is_some(), "{name} missing from the manifest");
    }
    let check = Command::new("qemu-img").args(["check", "-q"]).arg(&build.path).status().unwrap();
    assert!(check.success(), "qemu-img check");

    // Look inside the disk without mounting it: GRUB in the MBR, the root filesystem in partition 1.
    let raw = root.path().join("inspect.raw");
    assert!(Command::new("qemu-img").args(["convert", "-O", "raw"]).arg(&build.path).arg(&raw).status().unwrap().success());
    let mbr = std::fs::read(&raw).unwrap()[..512].to_vec();
    assert!(mbr.windows(4).any(|w| w == b"GRUB"), "grub-install wrote its boot code to the MBR");
    let fs = root_partition(&raw);
    let fstab = debugfs(&fs, "cat /etc/fstab");
    let uuid = fstab.strip_prefix("UUID=").and_then(|rest| rest.split_whitespace().next()).unwrap_or_else(|| panic!("{fstab}"));
    let grub_cfg = debugfs(&fs, "cat /boot/grub/grub.cfg");
    let linux_line = grub_cfg.lines().find(|l| l.trim_start().starts_with("linux\t") || l.trim_start().starts_with("linux ")).unwrap_or_else(|| panic!("{grub_cfg}"));
    assert!(linux_line.contains("/boot/vmlinuz-") && linux_line.contains(&format!("root=UUID={uuid} ")), "{linux_line}");
    assert!(linux_line.contains("console=ttyS0 net.ifnames=0"), "{linux_line}");
    assert!(debugfs(&fs, "cat /etc/kernel/postinst.d/zz-update-grub").contains("update-grub"), "new kernels update grub.cfg");
    assert!(debugfs(&fs, "stat /usr/local/sbin/blockhost-install-grub").is_empty(), "the GRUB installer removed itself");
    assert!(debugfs(&fs, "cat /etc/ssh/sshd_config.d/50-blockhost.conf").contains("KbdInteractiveAuthentication yes"));
    assert!(debugfs(&fs, "cat /etc/cloud/cloud.cfg.d/99-blockhost.cfg").contains("datasource_list: [ NoCloud, None ]"));
    assert!(debugfs(&fs, "cat /usr/share/blockhost-template-probe/marker").contains("probe 1.0"));
    assert!(debugfs(&fs, "stat /etc/machine-id").contains("Size: 0"));
    assert!(!debugfs(&fs, "ls /etc/ssh").contains("ssh_host_"));
    assert!(debugfs(&fs, "stat /etc/systemd/system/apt-daily.timer").contains("Type: symlink"));
    std::fs::remove_file(&raw).unwrap();

    // Same inputs: kept. A new package version: out of date.
    let again = store.build(&no_pam, &mut progress).unwrap();
    assert_eq!((again.built, &again.path), (false, &build.path));
    std::fs::write(packages.join("extra.deb"), "not really a package").unwrap();
    let err = store
        .build(&BuildOptions { mirror: Some(format!("http://127.0.0.1:{}/debian", closed_port())), ..no_pam }, &mut progress)
        .unwrap_err();
    assert!(unavailable(&err), "{err}");
    assert_eq!(store.current().unwrap().unwrap().dir, dir, "a failed build leaves current alone");
}

#[test]
#[ignore = "a real template build and two boots of it under QEMU (root, the Debian mirror, ~5 min under TCG): scripts/e2e-libvirt.sh runs it with BLOCKHOST_E2E_KERNEL_UPGRADE=1"]
fn the_guest_boots_its_own_kernel_and_a_newly_installed_one_after_a_restart() {
    if !prerequisites_met() || !testkit::require(testkit::on_path("qemu-system-x86_64"), "qemu-system-x86_64 is not installed") {
        return;
    }
    let root = tempfile::tempdir().unwrap();
    let store = store_at(root.path());
    let started = Instant::now();
    let mut progress = |line: &str| eprintln!("{:>6.1}s {line}", started.elapsed().as_secs_f64());
    let options = BuildOptions { allow_without_libpam_web3: true, ..BuildOptions::default() };
    let build = store.build(&options, &mut progress).unwrap_or_else(|e| {
        let log = std::fs::read_to_string(layout(root.path()).templates.join(".last-build.log")).unwrap_or_default();
        let tail: Vec<&str> = log.lines().rev().take(60).collect::<Vec<_>>().into_iter().rev().collect();
        panic!("{e}\nbuild log tail:\n{}", tail.join("\n"))
    });
    eprintln!("build: {:.0} s", started.elapsed().as_secs_f64());
    let template = Template::load(build.path.parent().unwrap()).unwrap();
    assert_eq!(template.manifest.boot.mode, BootMode::Disk { firmware: Firmware::Bios });

    // The VM's disk as the provisioner makes it: an overlay, larger than the template.
    let work = tempfile::tempdir().unwrap();
    let disk = work.path().join("vm.qcow2");
    qemu_img(&["create", "-q", "-f", "qcow2", "-F", "qcow2", "-b", build.path.to_str().unwrap(), disk.to_str().unwrap(), "6G"]);
    let seed = work.path().join("seed.iso");
    guest_boot::seed_iso(&seed, &guest_boot::kernel_upgrade_user_data());
    let serial_log = work.path().join("serial.log");
    let booted = Instant::now();
    let powered_off = guest_boot::boot(&disk, &seed, &serial_log).wait_for_power_off(Duration::from_secs(25 * 60));
    let serial = String::from_utf8_lossy(&std::fs::read(&serial_log).unwrap()).replace('\r', "");
    eprintln!("two boots and a kernel install: {:.0} s", booted.elapsed().as_secs_f64());
    let reports: Vec<&str> = serial.lines().filter_map(|l| l.split_once(guest_boot::REPORT).map(|(_, r)| r.trim())).collect();
    eprintln!("guest reports:\n  {}", reports.join("\n  "));
    let tail: Vec<&str> = serial.lines().rev().take(40).collect::<Vec<_>>().into_iter().rev().collect();
    let context = format!("serial log tail:\n{}", tail.join("\n"));
    assert!(powered_off, "the guest did not power off in time; {context}");
    assert!(!reports.iter().any(|r| r.starts_with("FAILED")), "{context}");

    let cmdlines: Vec<&str> = reports.iter().filter_map(|r| r.strip_prefix("CMDLINE ")).collect();
    assert_eq!(cmdlines.len(), 2, "two boots: {cmdlines:?}; {context}");
    // Only a boot loader sets BOOT_IMAGE; QEMU was given no kernel, so GRUB on the disk booted it.
    assert!(cmdlines[0].starts_with("BOOT_IMAGE=/boot/vmlinuz-6."), "{cmdlines:?}");
    for cmdline in &cmdlines {
        assert!(cmdline.contains(" root=UUID=") && cmdline.contains("console=ttyS0 net.ifnames=0"), "{cmdline}");
    }
    let root_bytes: u64 = reports.iter().find_map(|r| r.strip_prefix("ROOT-BYTES ")).unwrap().parse().unwrap();
    assert!(root_bytes > 5 << 30, "cloud-init grew the root partition and filesystem to the 6 GiB disk: {root_bytes}");
    assert!(reports.contains(&format!("INITRD /boot/initrd.img-{}", guest_boot::TEST_KERNEL).as_str()), "{reports:?}");
    assert!(reports.contains(&"INSTALLED") && reports.contains(&"SECOND BOOT"), "{reports:?}");
    assert!(
        cmdlines[1].starts_with(&format!("BOOT_IMAGE=/boot/vmlinuz-{} ", guest_boot::TEST_KERNEL)),
        "after the restart the guest runs the kernel installed inside it: {cmdlines:?}"
    );
    assert_eq!(sha256_of(&build.path), template.manifest.image_sha256, "the template itself is untouched");
}

#[test]
fn the_kernel_upgrade_user_data_is_yaml_and_shell() {
    let text = guest_boot::kernel_upgrade_user_data();
    assert!(text.starts_with("#cloud-config\n"));
    let doc: serde_json::Value = serde_saphyr::from_str(&text).unwrap();
    let script = doc["write_files"][0]["content"].as_str().unwrap();
    let every_boot = doc["bootcmd"][0][2].as_str().unwrap();
    for shell in [script, every_boot] {
        let status = Command::new("sh").args(["-n", "-c", shell]).status().unwrap();
        assert!(status.success(), "{shell}");
    }
    assert!(script.contains(&format!("new={}\n", guest_boot::TEST_KERNEL)), "{script}");
    assert_eq!(doc["runcmd"][0][0], "/root/kernel-upgrade");
}

#[test]
#[ignore = "a real template build (root, the Debian mirror, minutes): run by the real-VM stage"]
fn sigkill_mid_debootstrap_keeps_current() {
    // The build this test kills: the same test in a child process.
    if let Some(root) = std::env::var_os(DRIVER_ROOT) {
        let store = store_at(Path::new(&root));
        let mut progress = |line: &str| println!("{line}");
        store.build(&BuildOptions { force: true, allow_without_libpam_web3: true, ..BuildOptions::default() }, &mut progress).unwrap();
        return;
    }
    if !prerequisites_met() {
        return;
    }
    let root = tempfile::tempdir().unwrap();
    let templates = layout(root.path()).templates;
    let previous = fake_version(&templates, "bookworm-20250101T000000Z", "old");
    make_current(&templates, "bookworm-20250101T000000Z");
    let store = store_at(root.path());

    let mut child = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "sigkill_mid_debootstrap_keeps_current", "--ignored", "--nocapture", "--test-threads=1"])
        .env(DRIVER_ROOT, root.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let pid = child.id();
    let mut lines = std::io::BufReader::new(child.stdout.take().unwrap()).lines();
    let mut in_debootstrap: Option<Instant> = None;
    for line in lines.by_ref() {
        let line = line.unwrap();
        eprintln!("driver: {line}");
        if line.contains("(debootstrap)") {
            in_debootstrap = Some(Instant::now());
        }
        // Deep into debootstrap: packages are being configured in the chroot,
        // with /proc and /sys mounted inside it.
        if in_debootstrap.is_some() && line.trim_start().starts_with("I: Configuring") {
            break;
        }
    }
    assert!(in_debootstrap.is_some(), "the build never reached debootstrap");
    let staging = templates.join(format!(".build-{pid}"));
    assert!(staging.join("rootfs").is_dir(), "debootstrap was writing into {}", staging.display());
    child.kill().unwrap();
    child.wait().unwrap();
    drop(lines);

    // Nothing of the build runs on: the namespace's processes died with it.
    let deadline = Instant::now() + Duration::from_secs(10);
    while !processes_mentioning(&staging).is_empty() {
        assert!(Instant::now() < deadline, "left running: {:?}", processes_mentioning(&staging));
        std::thread::sleep(Duration::from_millis(200));
    }
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    assert!(!mountinfo.contains(staging.to_str().unwrap()), "no mount of the build is left: {mountinfo}");
    let current = store.current().unwrap().unwrap();
    assert_eq!(current.dir, previous, "current still names the previous version");
    assert_eq!(std::fs::read_to_string(current.image_path()).unwrap(), "old");
    assert!(staging.exists(), "the killed build left its staging directory");

    // The next build removes it before anything else (and here fails fast on a dead mirror).
    let mut seen = Vec::new();
    let dead_mirror = BuildOptions { force: true, allow_without_libpam_web3: true, mirror: Some(format!("http://127.0.0.1:{}/debian", closed_port())), ..BuildOptions::default() };
    let err = store.build(&dead_mirror, &mut |l: &str| seen.push(l.to_string())).unwrap_err();
    assert!(unavailable(&err), "{err}");
    assert!(!staging.exists(), "stale staging removed");
    assert!(seen.iter().any(|l| l.contains("interrupted build") && l.contains(&format!(".build-{pid}"))), "{seen:?}");
    assert_eq!(store.current().unwrap().unwrap().dir, previous);
}

/// PIDs whose command line or root directory mentions `path`.
fn processes_mentioning(path: &Path) -> Vec<u32> {
    let needle = path.to_string_lossy().into_owned();
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
            let root = std::fs::read_link(format!("/proc/{pid}/root")).unwrap_or_default();
            String::from_utf8_lossy(&cmdline).contains(&needle) || root.starts_with(path)
        })
        .collect()
}
