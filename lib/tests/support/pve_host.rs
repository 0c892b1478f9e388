//! A host root for the Proxmox VE provider against the three-node PVE
//! stand-in: db.yaml with its `proxmox:` section (URL, pinned certificate,
//! short timeouts) and the API token file as upstream keeps it. The returned
//! guard keeps the stand-in up and, when dropped, asserts that its schema
//! check refused nothing and that it answered in the schema's shapes.

use provisioner::host::paths::HostPaths;
pub use pve_standin::Options;
use pve_standin::StandIn;
use std::os::unix::fs::PermissionsExt;

pub struct StandInGuard(pub StandIn);

impl Drop for StandInGuard {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            assert_eq!(self.0.refusals(), vec![], "requests the schema does not allow");
            assert_eq!(self.0.bad_answers(), Vec::<String>::new(), "stand-in answers off the schema");
        }
    }
}

pub fn write(paths: &HostPaths, bridge: &str, options: Options) -> StandInGuard {
    let standin = StandIn::start(options).expect("stand-in starts");
    std::fs::create_dir_all(paths.config_dir()).unwrap();
    std::fs::create_dir_all(paths.state_dir()).unwrap();
    let token = paths.config_file("pve-token");
    std::fs::write(&token, standin.token_line()).unwrap();
    std::fs::set_permissions(&token, std::fs::Permissions::from_mode(0o640)).unwrap();
    let yaml = format!(
        "db_file: /var/lib/blockhost/vms.json\nbridge: {bridge}\nip_pool: {{network: 10.0.0.0/24, start: 10, end: 50, gateway: 10.0.0.1}}\n\
         vmid_range: {{start: 100, end: 199}}\n\
         proxmox:\n  url: {}\n  tls_fingerprint: \"{}\"\n  node: pve1\n  storage: local-lvm\n  iso_storage: local\n  template_vmid: 9001\n  \
         connect_timeout_seconds: 2\n  request_timeout_seconds: 2\n  task_timeout_seconds: 5\n",
        standin.url(),
        standin.fingerprint()
    );
    std::fs::write(paths.config_file("db.yaml"), yaml).unwrap();
    StandInGuard(standin)
}
