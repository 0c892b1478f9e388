//! `auth.otp_length` / `auth.otp_ttl_seconds` from `/etc/blockhost/web3-defaults.yaml`
//! (optional: defaults 6 and 300, as the libvirt provisioner tolerates its absence).

use super::{lookup, parse_yaml, read_optional, ConfigError};
use crate::host::paths::HostPaths;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AuthDefaults {
    pub otp_length: u64,
    pub otp_ttl_seconds: u64,
}

impl AuthDefaults {
    pub fn load(paths: &HostPaths) -> Result<Self, ConfigError> {
        let path = paths.config_file("web3-defaults.yaml");
        let mut out = Self { otp_length: 6, otp_ttl_seconds: 300 };
        let Some(text) = read_optional(&path)? else { return Ok(out) };
        if text.trim().is_empty() {
            return Ok(out);
        }
        let doc = parse_yaml(&path, &text)?;
        for (key, slot) in [("auth.otp_length", &mut out.otp_length), ("auth.otp_ttl_seconds", &mut out.otp_ttl_seconds)] {
            if let Some(v) = lookup(&doc, key) {
                *slot = v
                    .as_u64()
                    .filter(|n| *n > 0)
                    .ok_or_else(|| ConfigError::Key(path.clone(), key.into(), format!("must be a positive integer, got {v}")))?;
            }
        }
        Ok(out)
    }
}
