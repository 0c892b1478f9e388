//! A host root for the Proxmox VE provider against a real cluster, described
//! by the environment. Each variable mirrors a db.yaml key:
//!
//! | variable              | db.yaml key               | needed |
//! |-----------------------|---------------------------|--------|
//! | `PVE_URL`             | `proxmox.url`             | yes: without it the live cases skip |
//! | `PVE_TOKEN_FILE`      | `proxmox.token_file`      | yes (`USER@REALM!TOKENID=SECRET`, not world-readable) |
//! | `PVE_TLS_FINGERPRINT` | `proxmox.tls_fingerprint` | this or `PVE_CA_FILE` |
//! | `PVE_CA_FILE`         | `proxmox.ca_file`         | this or `PVE_TLS_FINGERPRINT` |
//! | `PVE_NODE`            | `proxmox.node`            | yes |
//! | `PVE_VMID_RANGE`      | `vmid_range` (`START-END`)| yes: the test's VMs take VMIDs only there |
//! | `PVE_STORAGE`         | `proxmox.storage`         | no (`local`) |
//! | `PVE_ISO_STORAGE`     | `proxmox.iso_storage`     | no (`local`) |
//! | `PVE_TEMPLATE_VMID`   | `proxmox.template_vmid`   | no (9001); a BlockHost template: cloud-init, guest agent |
//! | `PVE_BRIDGE`          | `bridge`                  | no (`vmbr0`) |
//!
//! The token and CA files are copied into the root, where the provider reads
//! its host paths.

use provisioner::host::paths::HostPaths;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

pub const SKIP_REASON: &str = "no Proxmox VE: set PVE_URL, PVE_TOKEN_FILE, PVE_TLS_FINGERPRINT or PVE_CA_FILE, PVE_NODE and PVE_VMID_RANGE \
                               (see lib/tests/support/pve_live.rs) to run the compliance suite on a real cluster";

/// The bridge the VMs join, when the environment names a cluster.
pub fn configured() -> Option<String> {
    std::env::var("PVE_URL").ok().filter(|url| !url.is_empty())?;
    Some(optional("PVE_BRIDGE").unwrap_or_else(|| "vmbr0".into()))
}

/// Writes db.yaml and the files it names under `paths`. A variable that is
/// missing or malformed while `PVE_URL` is set fails the test: someone meant
/// to run it.
pub fn write(paths: &HostPaths, bridge: &str) {
    std::fs::create_dir_all(paths.config_dir()).unwrap();
    std::fs::create_dir_all(paths.state_dir()).unwrap();
    let token = paths.config_file("pve-token");
    copy_private(Path::new(&required("PVE_TOKEN_FILE")), &token);
    let trust = match (optional("PVE_TLS_FINGERPRINT"), optional("PVE_CA_FILE")) {
        (Some(pin), None) => format!("tls_fingerprint: \"{pin}\""),
        (None, Some(ca)) => {
            copy_private(Path::new(&ca), &paths.config_file("pve-root-ca.pem"));
            "ca_file: /etc/blockhost/pve-root-ca.pem".to_string()
        }
        _ => panic!("set exactly one of PVE_TLS_FINGERPRINT and PVE_CA_FILE"),
    };
    let range = required("PVE_VMID_RANGE");
    let (start, end) = range
        .split_once('-')
        .and_then(|(s, e)| Some((s.trim().parse::<u32>().ok()?, e.trim().parse::<u32>().ok()?)))
        .unwrap_or_else(|| panic!("PVE_VMID_RANGE must be START-END, got {range:?}"));
    let mut proxmox = format!("  url: {}\n  {trust}\n  token_file: /etc/blockhost/pve-token\n  node: {}\n", required("PVE_URL"), required("PVE_NODE"));
    for (var, key) in [("PVE_STORAGE", "storage"), ("PVE_ISO_STORAGE", "iso_storage"), ("PVE_TEMPLATE_VMID", "template_vmid")] {
        if let Some(value) = optional(var) {
            proxmox.push_str(&format!("  {key}: {value}\n"));
        }
    }
    let yaml = format!(
        "db_file: /var/lib/blockhost/vms.json\nbridge: {bridge}\nip_pool: {{network: 10.0.0.0/24, start: 10, end: 50, gateway: 10.0.0.1}}\n\
         vmid_range: {{start: {start}, end: {end}}}\nproxmox:\n{proxmox}"
    );
    std::fs::write(paths.config_file("db.yaml"), yaml).unwrap();
}

fn optional(var: &str) -> Option<String> {
    std::env::var(var).ok().filter(|v| !v.trim().is_empty())
}

fn required(var: &str) -> String {
    optional(var).unwrap_or_else(|| panic!("PVE_URL is set but {var} is not: {SKIP_REASON}"))
}

fn copy_private(from: &Path, to: &Path) {
    std::fs::copy(from, to).unwrap_or_else(|e| panic!("{}: {e}", from.display()));
    std::fs::set_permissions(to, std::fs::Permissions::from_mode(0o640)).unwrap();
}
