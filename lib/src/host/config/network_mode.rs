//! The VM network mode: the single enabled entry of
//! `/etc/blockhost/network-modes.enabled/*.json`, or the legacy one-line
//! `/etc/blockhost/network-mode` file when that directory does not exist.

use super::ConfigError;
use crate::host::paths::HostPaths;

/// What belongs there, and what puts it there.
const ENABLE: &str = "the installer's finalize step enables one (a symlink network-modes.enabled/<mode>.json -> ../network-modes.available/<mode>.json, mode broker, manual, onion or none)";

pub fn network_mode(paths: &HostPaths) -> Result<String, ConfigError> {
    let dir = paths.config_file("network-modes.enabled");
    let entries = match std::fs::read_dir(&dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return legacy_mode(paths),
        Err(e) => return Err(ConfigError::Io(dir, e)),
    };
    let mut modes: Vec<String> = entries
        .filter_map(Result::ok)
        .filter_map(|e| e.file_name().to_str()?.strip_suffix(".json").map(str::to_string))
        .filter(|stem| !stem.is_empty())
        .collect();
    modes.sort();
    match modes.len() {
        1 => Ok(modes.remove(0)),
        0 => Err(ConfigError::NetworkMode(format!("{}: no network mode is enabled; {ENABLE}", dir.display()))),
        _ => Err(ConfigError::NetworkMode(format!(
            "{}: {} network modes are enabled ({}); exactly one is supported",
            dir.display(),
            modes.len(),
            modes.join(", ")
        ))),
    }
}

fn legacy_mode(paths: &HostPaths) -> Result<String, ConfigError> {
    let file = paths.config_file("network-mode");
    let mode = std::fs::read_to_string(&file).map(|t| t.trim().to_string()).unwrap_or_default();
    if mode.is_empty() || !mode.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_') {
        return Err(ConfigError::NetworkMode(format!(
            "no network mode: {} does not exist and {} is missing or invalid; {ENABLE}",
            paths.config_file("network-modes.enabled").display(),
            file.display()
        )));
    }
    Ok(mode)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolution_rules() {
        let tmp = tempfile::tempdir().unwrap();
        let paths = HostPaths::with_root(tmp.path());
        assert!(network_mode(&paths).unwrap_err().to_string().contains("no network mode"));
        std::fs::create_dir_all(paths.config_dir()).unwrap();
        std::fs::write(paths.config_file("network-mode"), "broker\n").unwrap();
        assert_eq!(network_mode(&paths).unwrap(), "broker");
        let enabled = paths.config_file("network-modes.enabled");
        std::fs::create_dir_all(&enabled).unwrap();
        assert!(network_mode(&paths).unwrap_err().to_string().contains("no network mode is enabled"));
        std::fs::write(enabled.join("onion.json"), "{}").unwrap();
        std::fs::write(enabled.join("README"), "").unwrap();
        assert_eq!(network_mode(&paths).unwrap(), "onion");
        std::fs::write(enabled.join("manual.json"), "{}").unwrap();
        assert!(network_mode(&paths).unwrap_err().to_string().contains("manual, onion"));
    }
}
