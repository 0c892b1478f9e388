//! Real template builds from the Debian mirror: root, network and a few minutes
//! each, so they are ignored by a plain `cargo test`; the real-VM stage
//! (`scripts/e2e-libvirt.sh`) runs them:
//!
//! `cargo test -p blockhost-template-builder --test template_e2e -- --ignored --nocapture --test-threads=1`

mod template_support;

use template_builder::{BootMode, BuildOptions, Template, TemplateError};
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

/// Runs `debugfs -R <request>` on an ext4 image.
fn debugfs(raw: &Path, request: &str) -> String {
    let out = Command::new("debugfs").args(["-R", request]).arg(raw).output().unwrap();
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
    let BootMode::DirectKernel { kernel, initrd, cmdline } = &m.boot.mode else { panic!("{:?}", m.boot.mode) };
    assert!(cmdline.contains("root=/dev/vda"));
    for file in [kernel, initrd, &m.image] {
        let meta = std::fs::metadata(dir.join(file)).unwrap();
        assert!(meta.len() > 1 << 20, "{file}");
        assert_eq!(std::os::unix::fs::PermissionsExt::mode(&meta.permissions()) & 0o777, 0o644, "{file}");
    }
    assert_eq!(sha256_of(&build.path), m.image_sha256);
    let version_of = |name: &str| m.packages.iter().find(|p| p.name == name).map(|p| p.version.clone());
    assert_eq!(version_of(PROBE_PACKAGE).as_deref(), Some("1.0"));
    for name in ["cloud-init", "linux-image-cloud-amd64", "qemu-guest-agent", "openssh-server", "resolvconf", "sudo"] {
        assert!(version_of(name).is_some(), "{name} missing from the manifest");
    }
    let check = Command::new("qemu-img").args(["check", "-q"]).arg(&build.path).status().unwrap();
    assert!(check.success(), "qemu-img check");

    // Look inside the filesystem without mounting it.
    let raw = root.path().join("inspect.raw");
    assert!(Command::new("qemu-img").args(["convert", "-O", "raw"]).arg(&build.path).arg(&raw).status().unwrap().success());
    assert!(debugfs(&raw, "cat /etc/ssh/sshd_config.d/50-blockhost.conf").contains("KbdInteractiveAuthentication yes"));
    assert!(debugfs(&raw, "cat /etc/cloud/cloud.cfg.d/99-blockhost.cfg").contains("datasource_list: [ NoCloud, None ]"));
    assert!(debugfs(&raw, "cat /usr/share/blockhost-template-probe/marker").contains("probe 1.0"));
    assert!(debugfs(&raw, "stat /etc/machine-id").contains("Size: 0"));
    assert!(!debugfs(&raw, "ls /etc/ssh").contains("ssh_host_"));
    assert!(debugfs(&raw, "stat /etc/systemd/system/apt-daily.timer").contains("Type: symlink"));
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
