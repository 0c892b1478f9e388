//! The compiled-in provider modules (one per enabled backend feature, and the
//! mock) and the rule that picks the active one: `BLOCKHOST_PROVIDER`, else
//! `--mock`, else the installed manifest's `name`.

use super::mock;
use super::module::ProviderModule;
use crate::host::paths::HostPaths;

pub const PROVIDER_ENV: &str = "BLOCKHOST_PROVIDER";

pub const MODULES: &[ProviderModule] = &[
    #[cfg(feature = "libvirt")]
    super::libvirt::MODULE,
    #[cfg(feature = "proxmox")]
    super::proxmox::MODULE,
    mock::MODULE,
];

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SelectError {
    #[error("no provisioner manifest at {0} (set {PROVIDER_ENV}=mock to use the mock backend)")]
    NoManifest(String),
    #[error("{0}: {1}")]
    BadManifest(String, String),
    #[error("unknown provider {0:?} (available: {1})")]
    Unknown(String, String),
}

pub fn find(name: &str) -> Result<&'static ProviderModule, SelectError> {
    MODULES.iter().find(|m| m.name == name).ok_or_else(|| {
        SelectError::Unknown(name.to_string(), MODULES.iter().map(|m| m.name).collect::<Vec<_>>().join(", "))
    })
}

/// Picks the provider module for this invocation.
pub fn select(paths: &HostPaths, mock_flag: bool) -> Result<&'static ProviderModule, SelectError> {
    if let Some(name) = std::env::var(PROVIDER_ENV).ok().filter(|n| !n.is_empty()) {
        return find(&name);
    }
    if mock_flag {
        return find(mock::MODULE.name);
    }
    let manifest = paths.manifest();
    let shown = manifest.display().to_string();
    let text = match std::fs::read_to_string(&manifest) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Err(SelectError::NoManifest(shown)),
        Err(e) => return Err(SelectError::BadManifest(shown, e.to_string())),
    };
    let doc: serde_json::Value =
        serde_json::from_str(&text).map_err(|e| SelectError::BadManifest(shown.clone(), e.to_string()))?;
    let name = doc
        .get("name")
        .and_then(|n| n.as_str())
        .ok_or_else(|| SelectError::BadManifest(shown, "no \"name\" string".into()))?;
    find(name)
}
