//! The backend's configuration. The keys upstream's Proxmox provisioner reads
//! keep their meaning: `bridge` and `vmid_range` in db.yaml, the token file
//! `/etc/blockhost/pve-token`, and — on a host taken over from upstream —
//! `proxmox_node` and `proxmox_storage` from `<terraform_dir>/terraform.tfvars`.
//! What upstream never needed (it turned TLS checks off) lives in a
//! `proxmox:` mapping in db.yaml:
//!
//! ```yaml
//! proxmox:
//!   url: https://127.0.0.1:8006        # the default
//!   node: pve1                         # else tfvars proxmox_node, else this host's name
//!   storage: local-lvm                 # else tfvars proxmox_storage, else local
//!   iso_storage: local                 # where seed ISOs are uploaded (content `iso`)
//!   template_vmid: 9001                # the default
//!   tls_fingerprint: "AA:BB:...:FF"    # or ca_file; one of the two is required
//!   ca_file: /etc/pve/pve-root-ca.pem
//!   token_file: /etc/blockhost/pve-token
//!   connect_timeout_seconds: 5
//!   request_timeout_seconds: 30
//!   task_timeout_seconds: 600
//! ```

use super::client::{Client, Connection};
use super::tls::{parse_ca_pem, parse_fingerprint, Trust};
use super::token::{ApiToken, DEFAULT_TOKEN_FILE};
use crate::host::config::{lookup, read_optional, ConfigError, DbConfig};
use crate::host::paths::HostPaths;
use crate::provider::ProviderError;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::time::Duration;

pub const DEFAULT_URL: &str = "https://127.0.0.1:8006";
pub const DEFAULT_TEMPLATE_VMID: u32 = 9001;
pub const DEFAULT_STORAGE: &str = "local";
pub const DEFAULT_ISO_STORAGE: &str = "local";
/// Upstream's default bridge (its wizard's and its code's).
pub const DEFAULT_BRIDGE: &str = "vmbr0";

#[derive(Debug, Clone)]
pub struct ProxmoxConfig {
    pub connection: Connection,
    /// The token file, mapped under the root.
    pub token_file: PathBuf,
    /// The node new VMs go to unless placement picks another.
    pub node: String,
    pub storage: String,
    /// Where the NoCloud seed ISOs are uploaded.
    pub iso_storage: String,
    pub template_vmid: u32,
    pub bridge: String,
}

impl ProxmoxConfig {
    /// The client this configuration describes, with the token read from its file.
    pub fn client(&self) -> Result<Client, ProviderError> {
        Client::new(self.connection.clone(), &ApiToken::read(&self.token_file)?)
    }

    pub fn load(paths: &HostPaths, db: &DbConfig) -> Result<Self, ConfigError> {
        let file = db.source.clone().unwrap_or_else(|| paths.config_file("db.yaml"));
        let key_err = |key: &str, msg: String| ConfigError::Key(file.clone(), format!("proxmox.{key}"), msg);
        let section = lookup(&db.raw, "proxmox").cloned().unwrap_or(Value::Object(Default::default()));
        if !section.is_object() {
            return Err(ConfigError::Key(file.clone(), "proxmox".into(), "must be a mapping of settings".into()));
        }
        let text = |key: &str| -> Result<Option<String>, ConfigError> {
            match lookup(&section, key) {
                None => Ok(None),
                Some(Value::String(s)) if !s.trim().is_empty() => Ok(Some(s.trim().to_string())),
                Some(Value::Number(n)) => Ok(Some(n.to_string())),
                Some(_) => Err(key_err(key, "must be a non-empty string".into())),
            }
        };
        let seconds = |key: &str, default: u64, max: u64| -> Result<Duration, ConfigError> {
            match lookup(&section, key) {
                None => Ok(Duration::from_secs(default)),
                Some(v) => v
                    .as_u64()
                    .filter(|s| (1..=max).contains(s))
                    .map(Duration::from_secs)
                    .ok_or_else(|| key_err(key, format!("must be a whole number of seconds from 1 to {max}"))),
            }
        };

        let url = text("url")?.unwrap_or_else(|| DEFAULT_URL.to_string());
        if !url.starts_with("https://") || url.len() <= "https://".len() {
            return Err(key_err("url", format!("must be an https:// URL (the API token must not travel in clear), got {url:?}")));
        }
        let trust = match (text("tls_fingerprint")?, text("ca_file")?) {
            (Some(_), Some(_)) => return Err(key_err("tls_fingerprint", "set either tls_fingerprint or ca_file, not both".into())),
            (Some(pin), None) => Trust::Fingerprint(
                parse_fingerprint(&pin).ok_or_else(|| key_err("tls_fingerprint", "must be a SHA-256 fingerprint, 32 hex pairs separated by `:`".into()))?,
            ),
            (None, Some(ca)) => {
                let ca_path = paths.host(&ca);
                let pem = std::fs::read(&ca_path).map_err(|e| ConfigError::Io(ca_path.clone(), e))?;
                Trust::Ca(parse_ca_pem(&pem).map_err(|e| key_err("ca_file", format!("{}: {e}", ca_path.display())))?)
            }
            (None, None) => {
                return Err(key_err(
                    "tls_fingerprint",
                    "the API's certificate cannot be verified: set proxmox.tls_fingerprint (the SHA-256 fingerprint `pvenode cert info` shows) or proxmox.ca_file (the cluster's /etc/pve/pve-root-ca.pem)".into(),
                ))
            }
        };
        let connection = Connection {
            url,
            trust,
            connect_timeout: seconds("connect_timeout_seconds", 5, 300)?,
            request_timeout: seconds("request_timeout_seconds", 30, 3600)?,
            task_timeout: seconds("task_timeout_seconds", 600, 86_400)?,
        };

        let tfvars = match lookup(&db.raw, "terraform_dir").and_then(Value::as_str) {
            Some(dir) => read_tfvars(&paths.host(dir).join("terraform.tfvars"))?,
            None => Vec::new(),
        };
        let from_tfvars = |key: &str| tfvars.iter().find(|(k, _)| k == key).map(|(_, v)| v.clone()).filter(|v| !v.is_empty());
        let node = match text("node")?.or_else(|| from_tfvars("proxmox_node")) {
            Some(node) => node,
            None => sys::host_name().ok_or_else(|| key_err("node", "not set, and this host's name cannot be read".into()))?,
        };
        let storage = text("storage")?.or_else(|| from_tfvars("proxmox_storage")).unwrap_or_else(|| DEFAULT_STORAGE.to_string());
        let template_vmid = match lookup(&section, "template_vmid") {
            None => DEFAULT_TEMPLATE_VMID,
            Some(v) => v
                .as_u64()
                .filter(|id| (100..=999_999_999).contains(id))
                .map(|id| id as u32)
                .ok_or_else(|| key_err("template_vmid", "must be a VMID from 100 to 999999999".into()))?,
        };
        let bridge = lookup(&db.raw, "bridge").map_or_else(|| DEFAULT_BRIDGE.to_string(), |_| db.bridge.clone());
        let token_file = paths.host(text("token_file")?.unwrap_or_else(|| DEFAULT_TOKEN_FILE.to_string()));
        let iso_storage = text("iso_storage")?.unwrap_or_else(|| DEFAULT_ISO_STORAGE.to_string());
        Ok(Self { connection, token_file, node, storage, iso_storage, template_vmid, bridge })
    }
}

/// Upstream's tfvars format: `key = "value"` lines, split at the first `=`,
/// quotes stripped, `#` comments. A missing file is empty.
fn read_tfvars(path: &Path) -> Result<Vec<(String, String)>, ConfigError> {
    let Some(text) = read_optional(path)? else { return Ok(Vec::new()) };
    Ok(text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.trim().to_string(), v.trim().trim_matches('"').to_string()))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    const PIN: &str = "AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:45:67:89";

    fn load(root: &Path, db_yaml: &str) -> Result<ProxmoxConfig, String> {
        let paths = HostPaths::with_root(root);
        std::fs::create_dir_all(paths.config_dir()).unwrap();
        std::fs::write(paths.config_file("db.yaml"), db_yaml).unwrap();
        let db = DbConfig::load(&paths, true).map_err(|e| e.to_string())?;
        ProxmoxConfig::load(&paths, &db).map_err(|e| e.to_string())
    }

    #[test]
    fn defaults_and_upstream_tfvars() {
        let dir = tempfile::tempdir().unwrap();
        let tf = dir.path().join("var/lib/blockhost/terraform");
        std::fs::create_dir_all(&tf).unwrap();
        std::fs::write(tf.join("terraform.tfvars"), "# written by the wizard\nproxmox_api_token = \"root@pam!blockhost=x\"\nproxmox_node = \"pve2\"\nproxmox_storage = \"local-lvm\"\n").unwrap();
        let yaml = format!("terraform_dir: /var/lib/blockhost/terraform\nproxmox:\n  tls_fingerprint: \"{PIN}\"\n");
        let config = load(dir.path(), &yaml).unwrap();
        assert_eq!(config.connection.url, DEFAULT_URL);
        assert_eq!((config.node.as_str(), config.storage.as_str(), config.template_vmid), ("pve2", "local-lvm", 9001));
        assert_eq!(config.bridge, "vmbr0");
        assert_eq!(config.token_file, dir.path().join("etc/blockhost/pve-token"));
        assert_eq!(config.connection.trust, Trust::Fingerprint(parse_fingerprint(PIN).unwrap()));
        assert_eq!((config.connection.connect_timeout.as_secs(), config.connection.request_timeout.as_secs(), config.connection.task_timeout.as_secs()), (5, 30, 600));

        let yaml = format!("bridge: br-ext\nproxmox:\n  node: pve3\n  storage: ceph\n  template_vmid: 9100\n  tls_fingerprint: \"{PIN}\"\n  request_timeout_seconds: 60\n");
        let config = load(dir.path(), &yaml).unwrap();
        assert_eq!((config.node.as_str(), config.storage.as_str(), config.template_vmid, config.bridge.as_str()), ("pve3", "ceph", 9100, "br-ext"));
        assert_eq!(config.connection.request_timeout.as_secs(), 60);
    }

    #[test]
    fn errors_name_the_key_in_one_line() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("etc/blockhost/db.yaml").display().to_string();
        let cases = [
            ("proxmox:\n  node: pve1\n".to_string(), "proxmox.tls_fingerprint': the API's certificate cannot be verified"),
            ("proxmox:\n  tls_fingerprint: AA:BB\n".to_string(), "proxmox.tls_fingerprint': must be a SHA-256 fingerprint"),
            (format!("proxmox:\n  tls_fingerprint: \"{PIN}\"\n  ca_file: /ca.pem\n"), "set either tls_fingerprint or ca_file"),
            (format!("proxmox:\n  tls_fingerprint: \"{PIN}\"\n  url: http://127.0.0.1:8006\n"), "proxmox.url': must be an https:// URL"),
            (format!("proxmox:\n  tls_fingerprint: \"{PIN}\"\n  template_vmid: 5\n"), "proxmox.template_vmid': must be a VMID"),
            (format!("proxmox:\n  tls_fingerprint: \"{PIN}\"\n  task_timeout_seconds: 0\n"), "proxmox.task_timeout_seconds': must be a whole number"),
            ("proxmox: yes\n".to_string(), "proxmox': must be a mapping"),
        ];
        for (yaml, expected) in cases {
            let err = load(dir.path(), &yaml).unwrap_err();
            assert!(err.starts_with(&format!("{file}: key '")) && err.contains(expected) && !err.contains('\n'), "{yaml:?}: {err}");
        }
    }
}
