//! The mistakes an operator makes in the first hour, each mapped to the exact
//! words they get (one line on stderr naming what failed, the file, key or
//! resource, and the next step) and the exit code; and a dry run that lists
//! every problem of a config with several at once, which `--apply` refuses
//! before it reserves anything.

mod common;
use common::{Root, WALLET};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::os::unix::process::CommandExt;
use std::process::Command;

/// One mistake: how to make it, and what the operator is told.
struct Mistake {
    what: &'static str,
    /// Prepares the root and gives the command that meets the mistake.
    make: fn(&Root) -> Command,
    /// The last line on stderr, `{root}` standing for the root prefix; the only line unless `progress`.
    stderr: &'static str,
    /// A create with `--apply` tells its progress first.
    progress: bool,
    /// create's error JSON on stdout carries the same words; other commands print nothing.
    json: bool,
    code: i32,
}

const DB_YAML: &str = "etc/blockhost/db.yaml";

fn append_db_yaml(root: &Root, text: &str) {
    let yaml = std::fs::read_to_string(root.path(DB_YAML)).unwrap();
    root.write(DB_YAML, &format!("{yaml}{text}"));
}

fn create(root: &Root, name: &str, apply: bool) -> Command {
    let mut cmd = root.std_cmd("blockhost-vm-create");
    cmd.args([name, "--owner-wallet", WALLET]);
    if apply {
        cmd.arg("--apply");
    }
    cmd
}

fn libvirt(root: &Root, bin: &str, uri: &str) -> Command {
    append_db_yaml(root, &format!("libvirt:\n  uri: '{uri}'\n"));
    let mut cmd = root.std_cmd(bin);
    cmd.env("BLOCKHOST_PROVIDER", "libvirt");
    cmd
}

fn libvirtd_not_running(root: &Root) -> Command {
    libvirt(root, "blockhost-provisioner-detect", &format!("qemu:///system?socket={}/run/libvirt/none.sock", root.dir.path().display()))
}

/// db.yaml readable by root alone, read by another user (root reads anything,
/// so a test running as root runs the command as `nobody`).
fn db_yaml_not_readable(root: &Root) -> Command {
    std::fs::set_permissions(root.dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::set_permissions(root.path(DB_YAML), std::fs::Permissions::from_mode(0o600)).unwrap();
    let mut cmd = root.std_cmd("blockhost-vm-list");
    if std::fs::metadata(root.path(DB_YAML)).unwrap().uid() == 0 {
        cmd.uid(65534);
    } else {
        std::fs::set_permissions(root.path(DB_YAML), std::fs::Permissions::from_mode(0o000)).unwrap();
    }
    cmd
}

fn pool_exhausted(root: &Root) -> Command {
    let yaml = std::fs::read_to_string(root.path(DB_YAML)).unwrap();
    root.write(DB_YAML, &yaml.replace("end: 10.20.0.60", "end: 10.20.0.10"));
    root.create("first");
    create(root, "second", true)
}

fn typo_in_db_yaml(root: &Root) -> Command {
    append_db_yaml(root, "ip_pol:\n  network: 10.9.0.0/24\nterraform_dir: /opt/tf\n");
    root.std_cmd("blockhost-vm-list")
}

fn guest_agent_silent(root: &Root) -> Command {
    append_db_yaml(root, "agent_timeout_seconds: 1\n");
    let mut cmd = create(root, "mute", true);
    cmd.env("BLOCKHOST_MOCK_AGENT", "dead");
    cmd
}

fn no_network_mode(root: &Root) -> Command {
    root.remove("etc/blockhost/network-modes.enabled");
    create(root, "vm1", false)
}

/// libvirt's test driver on a node of our own: 4 CPUs, 8 GiB, no domain, the
/// bridge `br0` (its driver cannot tell free memory: that check is skipped).
const TEST_NODE: &str = "<node>\
<cpu><nodes>1</nodes><sockets>1</sockets><cores>4</cores><threads>1</threads><active>4</active><mhz>2000</mhz><model>x86_64</model></cpu>\
<memory>8388608</memory>\
<interface type='bridge' name='br0'><start mode='onboot'/><bridge/></interface>\
<interface type='ethernet' name='eth0'><start mode='onboot'/><mac address='aa:bb:cc:dd:ee:01'/></interface>\
</node>";

fn libvirt_test_node(root: &Root) -> Command {
    root.write("test-node.xml", TEST_NODE);
    let mut cmd = libvirt(root, "blockhost-vm-create", &format!("test://{}", root.path("test-node.xml").display()));
    cmd.args(["vm1", "--owner-wallet", WALLET]);
    cmd
}

fn no_template(root: &Root) -> Command {
    libvirt_test_node(root)
}

fn mock_host(root: &Root, knob: &str, value: &str, args: &[&str]) -> Command {
    let mut cmd = create(root, "vm1", false);
    cmd.env(format!("BLOCKHOST_MOCK_{knob}"), value).args(args);
    cmd
}

fn too_many_vcpus(root: &Root) -> Command {
    mock_host(root, "HOST_CPUS", "2", &["--cpu", "9"])
}

fn too_little_free_memory(root: &Root) -> Command {
    mock_host(root, "HOST_FREE_MEMORY_MIB", "1024", &[])
}

fn too_little_disk_space(root: &Root) -> Command {
    mock_host(root, "HOST_DISK_FREE_GIB", "10", &["--disk", "30"])
}

fn storage_full(root: &Root) -> Command {
    let mut cmd = create(root, "vm1", true);
    cmd.env("BLOCKHOST_MOCK_STORAGE_FULL", "true");
    cmd
}

/// Memory overcommitted in db.yaml passes the preflight; the hypervisor then has not got it.
fn memory_refused_by_the_hypervisor(root: &Root) -> Command {
    append_db_yaml(root, "overcommit:\n  memory: 2\n");
    let mut cmd = create(root, "vm1", true);
    cmd.env("BLOCKHOST_MOCK_HOST_FREE_MEMORY_MIB", "1024");
    cmd
}

const MISTAKES: &[Mistake] = &[
    Mistake {
        what: "libvirtd is not running",
        make: libvirtd_not_running,
        stderr: "blockhost-provisioner-detect: cannot connect to libvirt at qemu:///system?socket={root}/run/libvirt/none.sock (db.yaml libvirt.uri): Failed to connect socket to '{root}/run/libvirt/none.sock': No such file or directory; is libvirtd running? start it: systemctl start libvirtd",
        progress: false,
        json: false,
        code: 1,
    },
    Mistake {
        what: "not root and not in the blockhost group",
        make: db_yaml_not_readable,
        stderr: "blockhost-vm-list: {root}/etc/blockhost/db.yaml: cannot read: permission denied (run as root, or add this user to the `blockhost` group: usermod -aG blockhost <user>)",
        progress: false,
        json: false,
        code: 1,
    },
    Mistake {
        what: "the IPv4 pool is exhausted",
        make: pool_exhausted,
        stderr: "blockhost-vm-create: the IPv4 pool 10.20.0.10-10.20.0.10 is exhausted (every one is taken); widen it with `ip_pool.start`/`ip_pool.end` in db.yaml",
        progress: false,
        json: true,
        code: 1,
    },
    Mistake {
        what: "a typo in db.yaml",
        make: typo_in_db_yaml,
        stderr: "warning: {root}/etc/blockhost/db.yaml: unknown key 'ip_pol' is ignored; did you mean 'ip_pool'?",
        progress: false,
        json: false,
        code: 0,
    },
    Mistake {
        what: "the guest agent never answers",
        make: guest_agent_silent,
        stderr: "blockhost-vm-create: the guest agent of mute did not answer within 1 s (db.yaml agent_timeout_seconds); this backend keeps no console log of the guest",
        progress: true,
        json: true,
        code: 1,
    },
    Mistake {
        what: "no network mode on a fresh host",
        make: no_network_mode,
        stderr: "blockhost-vm-create: no network mode: {root}/etc/blockhost/network-modes.enabled does not exist and {root}/etc/blockhost/network-mode is missing or invalid; the installer's finalize step enables one (a symlink network-modes.enabled/<mode>.json -> ../network-modes.available/<mode>.json, mode broker, manual, onion or none)",
        progress: false,
        json: true,
        code: 1,
    },
    Mistake {
        what: "no VM template built yet",
        make: no_template,
        stderr: "blockhost-vm-create: no VM template in {root}/var/lib/blockhost/templates (no `current` version); build one: blockhost-build-template",
        progress: false,
        json: true,
        code: 1,
    },
    Mistake {
        what: "more vCPUs than the host's CPUs allow",
        make: too_many_vcpus,
        stderr: "blockhost-vm-create: not enough CPUs: 9 vCPUs requested and the running VMs have 0, but the host's 2 CPUs allow 8 at `overcommit.cpu` 4 (short by 1); ask for fewer --cpu, stop a VM, or raise `overcommit.cpu` in db.yaml",
        progress: false,
        json: true,
        code: 1,
    },
    Mistake {
        what: "more memory than the host has free",
        make: too_little_free_memory,
        stderr: "blockhost-vm-create: not enough free memory: 2048 MiB requested, but the host's 1024 MiB free allow 1024 MiB at `overcommit.memory` 1 (short by 1024 MiB); ask for less --memory, stop a VM, or raise `overcommit.memory` in db.yaml",
        progress: false,
        json: true,
        code: 1,
    },
    Mistake {
        what: "a disk larger than the free space allows",
        make: too_little_disk_space,
        stderr: "blockhost-vm-create: not enough disk space in {root}/var/lib/blockhost/mock: 30 GiB requested and the VMs' disks may still grow by 0.0 GiB, but the 10.0 GiB free allow 20.0 GiB at `overcommit.disk` 2 (short by 10.0 GiB); ask for less --disk, free space there, or raise `overcommit.disk` in db.yaml",
        progress: false,
        json: true,
        code: 1,
    },
    Mistake {
        what: "the storage is full",
        make: storage_full,
        stderr: "blockhost-vm-create: writing the seed of vm1 to {root}/var/lib/blockhost/mock/seeds/vm1: no space left on the device (ENOSPC): free space on that file system",
        progress: true,
        json: true,
        code: 1,
    },
    Mistake {
        what: "memory the hypervisor cannot give",
        make: memory_refused_by_the_hypervisor,
        stderr: "blockhost-vm-create: the hypervisor could not give vm1 its 2048 MiB of memory (the host has 1024 MiB free); ask for less --memory, stop a VM, or lower `overcommit.memory` in db.yaml so the preflight refuses what cannot start",
        progress: true,
        json: true,
        code: 1,
    },
];

#[test]
fn each_mistake_is_told_in_one_line_that_says_what_to_do() {
    let mut wrong = Vec::new();
    for mistake in MISTAKES {
        let root = Root::new();
        let out = (mistake.make)(&root).output().unwrap();
        let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
        let line = mistake.stderr.replace("{root}", &root.dir.path().display().to_string());
        let told = if mistake.progress { stderr.lines().last().unwrap_or("").to_string() + "\n" } else { stderr.to_string() };
        let words = line.split_once(": ").map_or("", |(_, words)| words);
        let json_ok = !mistake.json || stdout == format!("{{\"status\": \"error\", \"error\": {}}}\n", serde_json::to_string(words).unwrap());
        let stdout_ok = mistake.json || mistake.code == 0 || stdout.is_empty();
        if (out.status.code(), told.as_str(), json_ok && stdout_ok) != (Some(mistake.code), format!("{line}\n").as_str(), true) {
            wrong.push(format!("{}: exit {:?}\nstdout: {stdout}stderr: {stderr}expected: {line}\n", mistake.what, out.status.code()));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

#[test]
fn a_dry_run_lists_every_problem_and_apply_refuses_them_before_reserving_anything() {
    let root = Root::new();
    pool_exhausted(&root);
    root.remove("etc/blockhost/network-modes.enabled");
    let at = |rel: &str| root.path(rel).display().to_string();
    let problems = [
        "invalid --cpu 0: must be between 1 and 256".to_string(),
        format!("no network mode: {} does not exist and {} is missing or invalid; the installer's finalize step enables one (a symlink network-modes.enabled/<mode>.json -> ../network-modes.available/<mode>.json, mode broker, manual, onion or none)", at("etc/blockhost/network-modes.enabled"), at("etc/blockhost/network-mode")),
        "the IPv4 pool 10.20.0.10-10.20.0.10 is exhausted (every one is taken); widen it with `ip_pool.start`/`ip_pool.end` in db.yaml".to_string(),
    ];
    let stderr: String = problems.iter().map(|p| format!("blockhost-vm-create: {p}\n")).collect();
    let stdout = format!("{{\"status\": \"error\", \"error\": {}}}\n", serde_json::to_string(&problems.join("; ")).unwrap());
    let before = root.snapshot();
    for apply in [false, true] {
        let started = std::time::Instant::now();
        let out = create(&root, "second", apply).args(["--cpu", "0"]).output().unwrap();
        let took = started.elapsed();
        let told = (out.status.code(), String::from_utf8_lossy(&out.stdout).into_owned(), String::from_utf8_lossy(&out.stderr).into_owned());
        assert_eq!(told, (Some(1), stdout.clone(), stderr.clone()), "apply: {apply}");
        assert!(took < std::time::Duration::from_secs(1), "apply: {apply}: refused in {took:?}");
        assert!(root.snapshot() == before, "apply: {apply}: nothing reserved, nothing written");
    }
}

#[test]
fn a_libvirt_dry_run_lists_the_missing_template_and_bridge_with_the_bridges_libvirt_has() {
    let root = Root::new();
    let yaml = std::fs::read_to_string(root.path(DB_YAML)).unwrap();
    root.write(DB_YAML, &yaml.replace("bridge: br0", "bridge: lan"));
    let out = libvirt_test_node(&root).output().unwrap();
    let templates = root.path("var/lib/blockhost/templates").display().to_string();
    let stderr = format!(
        "blockhost-vm-create: no VM template in {templates} (no `current` version); build one: blockhost-build-template\n\
         blockhost-vm-create: the bridge 'lan' (db.yaml `bridge`) does not exist on this host; set `bridge` to one that exists: br0\n"
    );
    assert_eq!((out.status.code(), String::from_utf8_lossy(&out.stderr).into_owned()), (Some(1), stderr));
}

#[test]
fn resume_starts_an_active_vm_whose_domain_is_off_and_says_so() {
    let root = Root::new();
    root.create("halted");
    assert_eq!(root.run("blockhost-vm-kill", &["halted"]).code, 0);
    assert_eq!(root.run("blockhost-vm-status", &["halted"]).stdout, "suspended\n");
    let run = root.run("blockhost-vm-resume", &["halted"]);
    assert_eq!((run.code, run.stderr.as_str()), (0, "VM halted is active in the database but its domain is off: starting it\n"));
    assert!(run.stdout.starts_with("VM resumed: halted (expires "), "{}", run.stdout);
    assert_eq!(root.run("blockhost-vm-status", &["halted"]).stdout, "active\n");
    let again = root.run("blockhost-vm-resume", &["halted"]);
    assert_eq!((again.code, again.stderr.as_str()), (1, "blockhost-vm-resume: VM halted is not suspended (status: active)\n"));
}
