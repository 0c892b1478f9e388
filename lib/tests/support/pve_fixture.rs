//! The PVE stand-in (three nodes, the template's disks on shared storage so
//! that clones may go to any node) with an API token file as upstream keeps it,
//! and clients of it; dropping the fixture asserts that the stand-in's schema
//! check refused nothing and that its answers had the schema's shapes.
#![allow(dead_code)] // each test file uses part of it

use provisioner::provider::proxmox::tls::parse_fingerprint;
use provisioner::provider::proxmox::{ApiToken, Client, Connection, Trust};
use pve_standin::{Options, StandIn};
use std::os::unix::fs::PermissionsExt;
use std::time::Duration;

pub struct Fixture {
    pub standin: StandIn,
    _dir: tempfile::TempDir,
    pub token: ApiToken,
}

impl Fixture {
    pub fn new() -> Self {
        let standin = StandIn::start(Options { template_storage: "ceph", ..Options::default() }).expect("stand-in starts");
        assert_eq!(standin.node_names(), ["pve1", "pve2", "pve3"]);
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("pve-token");
        std::fs::write(&path, standin.token_line()).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o640)).unwrap();
        let token = ApiToken::read(&path).expect("token file");
        Self { standin, _dir: dir, token }
    }

    pub fn connection(&self, trust: Trust) -> Connection {
        Connection {
            url: self.standin.url(),
            trust,
            connect_timeout: Duration::from_secs(2),
            request_timeout: Duration::from_secs(2),
            task_timeout: Duration::from_secs(5),
        }
    }

    pub fn pinned(&self) -> Trust {
        Trust::Fingerprint(parse_fingerprint(self.standin.fingerprint()).expect("the stand-in's fingerprint"))
    }

    pub fn client(&self) -> Client {
        Client::new(self.connection(self.pinned()), &self.token).expect("client")
    }

    pub fn clone_vm(&self, client: &Client, newid: &str, target: &str) {
        let params = [("newid", newid), ("name", "vm-a"), ("full", "1"), ("target", target), ("storage", "local-lvm")];
        client.run_task("POST", "/nodes/pve1/qemu/9001/clone", &params).expect("clone");
    }
}

impl Drop for Fixture {
    /// Every test ends by checking that the schema refused nothing the client
    /// sent, and that the stand-in answered in the schema's shapes.
    fn drop(&mut self) {
        if !std::thread::panicking() {
            assert_eq!(self.standin.refusals(), vec![], "requests the schema does not allow");
            assert_eq!(self.standin.bad_answers(), Vec::<String>::new(), "stand-in answers off the schema");
        }
    }
}
