//! The deployment profile: the `libvirt:` section of db.yaml, with defaults,
//! and the accelerator this host can really use.

use crate::host::config::DbConfig;
use crate::host::paths::HostPaths;
use crate::provider::{ErrorCode, ProviderError};
use serde_json::Value;

use template_builder::{Accelerator, DEFAULT_TB_CACHE_MIB};

pub const DEFAULT_URI: &str = "qemu:///system";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum AcceleratorChoice {
    Auto,
    Kvm,
    Tcg,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Profile {
    pub uri: String,
    pub accelerator: Accelerator,
    /// Overrides the template's machine type (`pc`, `q35`).
    pub machine: Option<String>,
}

impl Profile {
    pub fn load(paths: &HostPaths, config: &DbConfig) -> Result<Self, ProviderError> {
        let section = config.raw.get("libvirt").cloned().unwrap_or(Value::Null);
        let source = config.source.as_ref().map_or_else(|| "db.yaml".to_string(), |p| p.display().to_string());
        let bad = |key: &str, msg: &str| ProviderError::new(ErrorCode::InvalidSpec, format!("{source}: key 'libvirt.{key}': {msg}"));
        if !section.is_null() && !section.is_object() {
            return Err(ProviderError::new(ErrorCode::InvalidSpec, format!("{source}: key 'libvirt': not a mapping")));
        }
        let text = |key: &str| -> Result<Option<String>, ProviderError> {
            match section.get(key) {
                None | Some(Value::Null) => Ok(None),
                Some(Value::String(s)) if !s.trim().is_empty() => Ok(Some(s.trim().to_string())),
                Some(_) => Err(bad(key, "expected a non-empty string")),
            }
        };
        let uri = text("uri")?.unwrap_or_else(|| DEFAULT_URI.to_string());
        let choice = match text("accelerator")?.as_deref() {
            None | Some("auto") => AcceleratorChoice::Auto,
            Some("kvm") => AcceleratorChoice::Kvm,
            Some("tcg") | Some("qemu") => AcceleratorChoice::Tcg,
            Some(other) => return Err(bad("accelerator", &format!("{other:?} is not one of auto, kvm, tcg"))),
        };
        let tb_cache_mib = match section.get("tb_cache_mib") {
            None | Some(Value::Null) => DEFAULT_TB_CACHE_MIB,
            Some(v) => v.as_u64().filter(|n| (32..=4096).contains(n)).ok_or_else(|| bad("tb_cache_mib", "expected an integer from 32 to 4096"))?,
        };
        let machine = text("machine")?;
        if let Some(m) = &machine {
            if !m.chars().all(|c| c.is_ascii_alphanumeric() || "._-".contains(c)) {
                return Err(bad("machine", "not a machine type name"));
            }
        }
        let kvm = match choice {
            AcceleratorChoice::Auto => template_builder::kvm_usable(paths.root()),
            AcceleratorChoice::Kvm => true,
            AcceleratorChoice::Tcg => false,
        };
        let accelerator = if kvm { Accelerator::Kvm } else { Accelerator::Tcg { tb_cache_mib } };
        Ok(Self { uri, accelerator, machine })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(root: &std::path::Path, yaml: &str) -> Result<Profile, ProviderError> {
        let paths = HostPaths::with_root(root);
        std::fs::create_dir_all(paths.config_dir()).unwrap();
        std::fs::write(paths.config_file("db.yaml"), yaml).unwrap();
        let config = DbConfig::load(&paths, true).unwrap();
        Profile::load(&paths, &config)
    }

    fn fake_host(root: &std::path::Path, module: Option<&str>) {
        std::fs::create_dir_all(root.join("dev")).unwrap();
        std::fs::write(root.join("dev/kvm"), "").unwrap();
        if let Some(m) = module {
            std::fs::create_dir_all(root.join("sys/module").join(m)).unwrap();
        }
    }

    #[test]
    fn defaults_pick_tcg_where_kvm_is_paravirtual() {
        let dir = tempfile::tempdir().unwrap();
        fake_host(dir.path(), Some("kvm_pvm"));
        let p = load(dir.path(), "bridge: br0\n").unwrap();
        assert_eq!(p.uri, DEFAULT_URI);
        assert_eq!(p.accelerator, Accelerator::Tcg { tb_cache_mib: DEFAULT_TB_CACHE_MIB });
        assert_eq!(p.machine, None);
    }

    #[test]
    fn hardware_kvm_is_chosen_automatically() {
        let dir = tempfile::tempdir().unwrap();
        fake_host(dir.path(), Some("kvm_intel"));
        assert_eq!(load(dir.path(), "libvirt: {accelerator: auto}\n").unwrap().accelerator, Accelerator::Kvm);
    }

    #[test]
    fn the_operator_overrides_detection() {
        let dir = tempfile::tempdir().unwrap();
        fake_host(dir.path(), Some("kvm_amd"));
        let p = load(dir.path(), "libvirt:\n  uri: qemu+ssh://h/system\n  accelerator: tcg\n  tb_cache_mib: 512\n  machine: q35\n").unwrap();
        assert_eq!(p.uri, "qemu+ssh://h/system");
        assert_eq!(p.accelerator, Accelerator::Tcg { tb_cache_mib: 512 });
        assert_eq!(p.machine.as_deref(), Some("q35"));
        let forced = load(dir.path(), "libvirt: {accelerator: kvm}\n").unwrap();
        assert_eq!(forced.accelerator, Accelerator::Kvm);
    }

    #[test]
    fn bad_values_name_the_key() {
        let dir = tempfile::tempdir().unwrap();
        for (yaml, key) in [
            ("libvirt: {accelerator: xen}\n", "libvirt.accelerator"),
            ("libvirt: {tb_cache_mib: 1}\n", "libvirt.tb_cache_mib"),
            ("libvirt: {machine: 'pc; rm'}\n", "libvirt.machine"),
            ("libvirt: {uri: 5}\n", "libvirt.uri"),
            ("libvirt: [1]\n", "'libvirt'"),
        ] {
            let err = load(dir.path(), yaml).unwrap_err();
            assert_eq!(err.code, ErrorCode::InvalidSpec);
            assert!(err.message.contains(key), "{yaml}: {}", err.message);
        }
    }
}
