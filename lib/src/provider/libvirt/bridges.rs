//! A domain that cannot start because its bridge does not exist: libvirt's
//! words (`Cannot get interface MTU on 'br0': No such device`) turned into
//! db.yaml's `bridge` and the bridges this host has.

use crate::host::paths::HostPaths;
use crate::provider::{ErrorCode, ProviderError};

/// The operator's error when `message` (libvirt's) says the bridge is missing.
pub fn missing_bridge(paths: &HostPaths, message: &str) -> Option<ProviderError> {
    let bridge = missing_in(message)?;
    Some(ProviderError::new(ErrorCode::InvalidSpec, words(bridge, &host_bridges(paths))))
}

/// The bridge a failed start names as missing.
fn missing_in(message: &str) -> Option<&str> {
    if !message.contains("No such device") {
        return None;
    }
    ["Cannot get interface MTU on '", "to bridge '"]
        .iter()
        .find_map(|before| message.split_once(before))
        .and_then(|(_, rest)| rest.split_once('\''))
        .map(|(bridge, _)| bridge)
}

/// The bridges of this host: the interfaces under `/sys/class/net` (below the
/// root prefix) that have a `bridge` directory, sorted.
fn host_bridges(paths: &HostPaths) -> Vec<String> {
    let Ok(entries) = std::fs::read_dir(paths.host("/sys/class/net")) else { return Vec::new() };
    let mut bridges: Vec<String> = entries
        .filter_map(Result::ok)
        .filter(|e| e.path().join("bridge").is_dir())
        .filter_map(|e| e.file_name().into_string().ok())
        .collect();
    bridges.sort();
    bridges
}

fn words(bridge: &str, existing: &[String]) -> String {
    let next = if existing.is_empty() {
        "no bridge exists in /sys/class/net: create one, or set `bridge` to the one the VMs should use".to_string()
    } else {
        format!("set `bridge` to one that exists: {}", existing.join(", "))
    };
    format!("the bridge '{bridge}' (db.yaml `bridge`) does not exist on this host; {next}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_bridge_names_the_key_and_the_bridges_that_exist() {
        let root = tempfile::tempdir().unwrap();
        let paths = HostPaths::with_root(root.path());
        let message = "Cannot get interface MTU on 'br0': No such device";
        assert_eq!(
            missing_bridge(&paths, message).unwrap().message,
            "the bridge 'br0' (db.yaml `bridge`) does not exist on this host; no bridge exists in /sys/class/net: create one, or set `bridge` to the one the VMs should use"
        );
        for dir in ["virbr0/bridge", "br1/bridge", "eth0/device"] {
            std::fs::create_dir_all(root.path().join("sys/class/net").join(dir)).unwrap();
        }
        let error = missing_bridge(&paths, "Failed to add tap interface to bridge 'lan': No such device").unwrap();
        assert_eq!(error.code, ErrorCode::InvalidSpec, "never an ambiguous write: nothing started");
        assert_eq!(
            error.message,
            "the bridge 'lan' (db.yaml `bridge`) does not exist on this host; set `bridge` to one that exists: br1, virbr0"
        );
    }

    #[test]
    fn other_failures_are_not_taken_for_a_missing_bridge() {
        let paths = HostPaths::with_root("/nonexistent");
        for message in ["Cannot get interface MTU on 'br0': Permission denied", "internal error: process exited", "No such device"] {
            assert_eq!(missing_bridge(&paths, message), None, "{message}");
        }
    }
}
