//! Shared fixture of the CLI tests: a scratch BlockHost root with a realistic
//! configuration, and the real executables run against it on the mock backend.
#![allow(dead_code)]

#[cfg(feature = "proxmox")]
pub mod pve;

use assert_cmd::Command;
use serde_json::Value;
use std::path::{Path, PathBuf};

pub struct Root {
    pub dir: tempfile::TempDir,
}

pub const WALLET: &str = "0x1234567890abcdef1234567890abcdef12345678";

impl Root {
    /// db.yaml with a /24 pool of 10.20.0.10-.60, gateway .1; network mode `broker`;
    /// a broker IPv6 /120 with a DNS zone.
    pub fn new() -> Self {
        Self::configured(Self::bare())
    }

    /// `new()` in a fresh directory under `parent`, with mode 0755 (a
    /// tempdir's 0700 would keep out anyone but its owner).
    pub fn new_in(parent: &Path) -> Self {
        let dir = tempfile::Builder::new().prefix("root.").tempdir_in(parent).expect("tempdir");
        std::fs::set_permissions(dir.path(), std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
        Self::configured(Self { dir })
    }

    fn configured(root: Self) -> Self {
        root.write("etc/blockhost/db.yaml", "db_file: /var/lib/blockhost/vms.json\nip_pool:\n  network: 10.20.0.0/24\n  start: 10.20.0.10\n  end: 10.20.0.60\n  gateway: 10.20.0.1\ngc_grace_days: 7\ndefault_expiry_days: 30\nbridge: br0\n");
        root.write("etc/blockhost/network-modes.enabled/broker.json", "{}");
        root.write("etc/blockhost/broker-allocation.json", r#"{"prefix": "2001:db8:7::/120", "dns_zone": "vm.example.net"}"#);
        root
    }

    /// An empty root: no configuration at all.
    pub fn bare() -> Self {
        Self { dir: tempfile::tempdir().expect("tempdir") }
    }

    pub fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    pub fn write(&self, rel: &str, content: &str) {
        let path = self.path(rel);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, content).unwrap();
    }

    pub fn remove(&self, rel: &str) {
        let path = self.path(rel);
        if path.is_dir() {
            std::fs::remove_dir_all(path).unwrap();
        } else {
            std::fs::remove_file(path).unwrap();
        }
    }

    /// The mock backend's state directory (its own VM database lives there).
    pub fn mock_dir(&self) -> PathBuf {
        self.path("var/lib/blockhost/mock")
    }

    pub fn db_path(&self) -> PathBuf {
        self.mock_dir().join("vms.json")
    }

    pub fn db_text(&self) -> String {
        std::fs::read_to_string(self.db_path()).unwrap_or_default()
    }

    pub fn db(&self) -> Value {
        serde_json::from_str(&self.db_text()).expect("vms.json parses")
    }

    /// One of the executables, on the mock backend, in this root, with no mock knobs set.
    pub fn std_cmd(&self, bin: &str) -> std::process::Command {
        let mut cmd = std::process::Command::new(bin_path(bin));
        cmd.env("BLOCKHOST_ROOT", self.dir.path()).env("BLOCKHOST_PROVIDER", "mock");
        for (key, _) in std::env::vars() {
            if key.starts_with("BLOCKHOST_MOCK_") {
                cmd.env_remove(key);
            }
        }
        cmd
    }

    /// `std_cmd` wrapped for assert_cmd.
    pub fn cmd(&self, bin: &str) -> Command {
        Command::from_std(self.std_cmd(bin))
    }

    /// `create --apply` of `name`; panics unless it succeeds.
    pub fn create(&self, name: &str) -> Value {
        let out = self.cmd("blockhost-vm-create").args([name, "--owner-wallet", WALLET, "--apply"]).output().unwrap();
        assert!(out.status.success(), "create {name}: {}", String::from_utf8_lossy(&out.stderr));
        let stdout = String::from_utf8(out.stdout).unwrap();
        serde_json::from_str(stdout.lines().last().unwrap()).unwrap()
    }

    /// Every file under the root with its content, to prove a command changed nothing.
    pub fn snapshot(&self) -> Vec<(PathBuf, Vec<u8>)> {
        let mut files = Vec::new();
        walk(self.dir.path(), &mut files);
        files.sort();
        files
    }
}

fn walk(dir: &Path, out: &mut Vec<(PathBuf, Vec<u8>)>) {
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            walk(&path, out);
        } else {
            out.push((path.clone(), std::fs::read(&path).unwrap_or_default()));
        }
    }
}

pub const BINARIES: [&str; 15] = [
    "blockhost-vm-create",
    "blockhost-vm-destroy",
    "blockhost-vm-start",
    "blockhost-vm-stop",
    "blockhost-vm-kill",
    "blockhost-vm-status",
    "blockhost-vm-list",
    "blockhost-vm-metrics",
    "blockhost-vm-throttle",
    "blockhost-vm-gc",
    "blockhost-vm-resume",
    "blockhost-vm-update-gecos",
    "blockhost-vm-guest-exec",
    "blockhost-build-template",
    "blockhost-provisioner-detect",
];

/// Path of one of the executables, as built by cargo for these tests.
/// Runs one executable in `root` with the mock knobs `BLOCKHOST_MOCK_<key>=<value>`.
pub fn run_with_knobs(root: &Root, bin: &str, args: &[&str], knobs: &[(&str, &str)]) -> std::process::Output {
    let mut cmd = root.cmd(bin);
    cmd.args(args);
    for (key, value) in knobs {
        cmd.env(format!("BLOCKHOST_MOCK_{key}"), value);
    }
    cmd.output().unwrap()
}

pub fn bin_path(bin: &str) -> PathBuf {
    PathBuf::from(match bin {
        "blockhost-vm-create" => env!("CARGO_BIN_EXE_blockhost-vm-create"),
        "blockhost-vm-destroy" => env!("CARGO_BIN_EXE_blockhost-vm-destroy"),
        "blockhost-vm-start" => env!("CARGO_BIN_EXE_blockhost-vm-start"),
        "blockhost-vm-stop" => env!("CARGO_BIN_EXE_blockhost-vm-stop"),
        "blockhost-vm-kill" => env!("CARGO_BIN_EXE_blockhost-vm-kill"),
        "blockhost-vm-status" => env!("CARGO_BIN_EXE_blockhost-vm-status"),
        "blockhost-vm-list" => env!("CARGO_BIN_EXE_blockhost-vm-list"),
        "blockhost-vm-metrics" => env!("CARGO_BIN_EXE_blockhost-vm-metrics"),
        "blockhost-vm-throttle" => env!("CARGO_BIN_EXE_blockhost-vm-throttle"),
        "blockhost-vm-gc" => env!("CARGO_BIN_EXE_blockhost-vm-gc"),
        "blockhost-vm-resume" => env!("CARGO_BIN_EXE_blockhost-vm-resume"),
        "blockhost-vm-update-gecos" => env!("CARGO_BIN_EXE_blockhost-vm-update-gecos"),
        "blockhost-vm-guest-exec" => env!("CARGO_BIN_EXE_blockhost-vm-guest-exec"),
        "blockhost-build-template" => env!("CARGO_BIN_EXE_blockhost-build-template"),
        "blockhost-provisioner-detect" => env!("CARGO_BIN_EXE_blockhost-provisioner-detect"),
        other => panic!("unknown executable {other}"),
    })
}

/// A root with VMs `up` (active), `expired` (expiry long past) and `overdue`
/// (suspended long ago): one of each thing gc acts on.
pub fn root_with_due_vms() -> Root {
    let root = Root::new();
    for name in ["up", "expired", "overdue"] {
        root.create(name);
    }
    set_record_field(&root, "expired", "expires_at", serde_json::json!("2020-01-01T00:00:00+00:00"));
    set_record_field(&root, "overdue", "status", serde_json::json!("suspended"));
    set_record_field(&root, "overdue", "suspended_at", serde_json::json!("2020-01-01T00:00:00+00:00"));
    root
}

/// Rewrites one record field in the mock's vms.json (simulating time passing).
pub fn set_record_field(root: &Root, vm: &str, key: &str, value: Value) {
    let mut db = root.db();
    db["vms"][vm][key] = value;
    std::fs::write(root.db_path(), serde_json::to_string_pretty(&db).unwrap()).unwrap();
}

/// Exit code, stdout and stderr of one run.
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Root {
    pub fn run(&self, bin: &str, args: &[&str]) -> Run {
        let out = self.cmd(bin).args(args).output().unwrap();
        Run {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }
}
