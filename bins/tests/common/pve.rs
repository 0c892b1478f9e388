//! The CLI tests' host root on the Proxmox VE backend: a scratch root whose
//! db.yaml `proxmox:` section points at a three-node PVE stand-in on loopback
//! (its CA in a `ca_file`, short timeouts), the API token file as upstream
//! keeps it, and the executables run with `BLOCKHOST_PROVIDER=proxmox`.
//! Dropping it asserts that the stand-in's schema check refused no request
//! and that it answered in the schema's shapes.

use super::{bin_path, Run, WALLET};
use provisioner::provider::proxmox::tls::parse_ca_pem;
use provisioner::provider::proxmox::{ApiToken, Client, Connection, Trust};
use pve_standin::{Options, StandIn};
use serde_json::Value;
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::process::{Command, Stdio};

pub struct PveRoot {
    pub dir: tempfile::TempDir,
    pub standin: StandIn,
}

/// The template's disk is on shared storage (`ceph`), so placement may put a
/// VM on any of the three nodes.
pub fn options() -> Options {
    Options { template_storage: "ceph", ..Options::default() }
}

impl PveRoot {
    pub fn new() -> Self {
        Self::with("")
    }

    /// `extra` is appended to db.yaml's `proxmox:` section (two-space indented lines).
    pub fn with(extra: &str) -> Self {
        let standin = StandIn::start(options()).expect("stand-in starts");
        assert_eq!(standin.node_names(), ["pve1", "pve2", "pve3"]);
        let root = Self { dir: tempfile::tempdir().expect("tempdir"), standin };
        root.write("etc/blockhost/pve-root-ca.pem", root.standin.ca_pem());
        root.write("etc/blockhost/pve-token", &root.standin.token_line());
        std::fs::set_permissions(root.path("etc/blockhost/pve-token"), std::fs::Permissions::from_mode(0o640)).unwrap();
        root.write(
            "etc/blockhost/db.yaml",
            &format!(
                "db_file: /var/lib/blockhost/vms.json\nip_pool:\n  network: 10.20.0.0/24\n  start: 10.20.0.10\n  end: 10.20.0.60\n  gateway: 10.20.0.1\n\
                 vmid_range:\n  start: 100\n  end: 199\ngc_grace_days: 7\ndefault_expiry_days: 30\nbridge: vmbr0\nagent_timeout_seconds: 5\n\
                 proxmox:\n  url: {}\n  ca_file: /etc/blockhost/pve-root-ca.pem\n  node: pve1\n  storage: local-lvm\n  iso_storage: local\n  template_vmid: 9001\n  \
                 connect_timeout_seconds: 2\n  request_timeout_seconds: 2\n  task_timeout_seconds: 4\n{extra}",
                root.standin.url()
            ),
        );
        root.write("etc/blockhost/network-modes.enabled/broker.json", "{}");
        root.write("etc/blockhost/broker-allocation.json", r#"{"prefix": "2001:db8:7::/120", "dns_zone": "vm.example.net"}"#);
        root
    }

    pub fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    pub fn write(&self, rel: &str, content: &str) {
        let path = self.path(rel);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, content).unwrap();
    }

    pub fn db_path(&self) -> PathBuf {
        self.path("var/lib/blockhost/vms.json")
    }

    pub fn db_text(&self) -> String {
        std::fs::read_to_string(self.db_path()).unwrap_or_default()
    }

    pub fn db(&self) -> Value {
        serde_json::from_str(&self.db_text()).expect("vms.json parses")
    }

    /// Rewrites one record field (simulating time passing).
    pub fn set_record_field(&self, vm: &str, key: &str, value: Value) {
        let mut db = self.db();
        db["vms"][vm][key] = value;
        std::fs::write(self.db_path(), serde_json::to_string_pretty(&db).unwrap()).unwrap();
    }

    /// One of the executables in this root, on the Proxmox VE backend.
    pub fn cmd(&self, bin: &str) -> Command {
        let mut cmd = Command::new(bin_path(bin));
        cmd.env("BLOCKHOST_ROOT", self.dir.path()).env("BLOCKHOST_PROVIDER", "proxmox").stdin(Stdio::null());
        cmd
    }

    pub fn run(&self, bin: &str, args: &[&str]) -> Run {
        let out = self.cmd(bin).args(args).output().unwrap();
        Run {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    pub fn create_args(name: &str) -> Vec<String> {
        vec![name.to_string(), "--owner-wallet".into(), WALLET.into(), "--apply".into()]
    }

    /// `create --apply` of `name`; panics unless it succeeds; the result JSON.
    pub fn create(&self, name: &str) -> Value {
        let run = self.run("blockhost-vm-create", &[name, "--owner-wallet", WALLET, "--apply"]);
        assert_eq!(run.code, 0, "create {name}: {}", run.stderr);
        serde_json::from_str(run.stdout.lines().last().unwrap()).unwrap()
    }

    /// The VMs of the cluster but the template, as (VMID, node, name).
    pub fn vms(&self) -> Vec<(u32, String, String)> {
        (100..1000)
            .filter_map(|id| self.standin.vm(id).map(|(node, config)| (id, node, config_value(&config, "name"))))
            .filter(|(id, _, _)| *id != 9001)
            .collect()
    }

    /// An API client of the stand-in, as a test's own hand on the cluster.
    pub fn client(&self) -> Client {
        let ca = parse_ca_pem(self.standin.ca_pem().as_bytes()).expect("the stand-in's CA");
        let second = std::time::Duration::from_secs(2);
        let connection = Connection { url: self.standin.url(), trust: Trust::Ca(ca), connect_timeout: second, request_timeout: second, task_timeout: second };
        Client::new(connection, &ApiToken::read(&self.path("etc/blockhost/pve-token")).expect("token")).expect("client")
    }

    /// One VM's config key, by VMID.
    pub fn config(&self, vmid: u32, key: &str) -> String {
        config_value(&self.standin.vm(vmid).unwrap_or_else(|| panic!("VM {vmid}")).1, key)
    }

    /// No VM in the cluster but the template, no seed ISO on any storage, no
    /// live record (destroyed ones are history) or journalled create in
    /// vms.json, no address taken.
    pub fn assert_clean(&self, context: &str) {
        assert_eq!(self.vms(), vec![], "{context}: VMs left in the cluster");
        assert_eq!(self.standin.volumes(), vec![], "{context}: seed ISOs left on the storages");
        let text = self.db_text();
        if text.is_empty() {
            return;
        }
        let db = self.db();
        let live = db["vms"].as_object().into_iter().flatten().filter(|(_, r)| r["status"] != "destroyed").count();
        assert_eq!(live, 0, "{context}: live records left: {}", db["vms"]);
        assert!(db.get("pending_creates").is_none_or(|p| p.as_object().is_none_or(|p| p.is_empty())), "{context}: journalled creates left: {text}");
        assert_eq!((db["allocated_ips"].clone(), db["allocated_ipv6"].clone()), (serde_json::json!([]), serde_json::json!([])), "{context}: addresses taken");
    }
}

impl Drop for PveRoot {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            assert_eq!(self.standin.refusals(), vec![], "requests the schema does not allow");
            assert_eq!(self.standin.bad_answers(), Vec::<String>::new(), "stand-in answers off the schema");
        }
    }
}

pub fn config_value(config: &[(String, String)], key: &str) -> String {
    config.iter().find(|(k, _)| k == key).map(|(_, v)| v.clone()).unwrap_or_default()
}
