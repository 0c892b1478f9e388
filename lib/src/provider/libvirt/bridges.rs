//! db.yaml's `bridge` against the bridges libvirt sees. libvirt is asked, not
//! `/sys`: the daemon may live in another network (or mount) namespace than
//! the executables. A create's preflight checks it; a domain that still cannot
//! start on it (libvirt's `Cannot get interface MTU on 'br0': No such device`)
//! gets the same words.

use crate::provider::{ErrorCode, ProviderError};
use virt::connect::Connect;

/// What libvirt tells of this host's bridges.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Bridges {
    /// The bridges its interface driver lists, sorted.
    Listed(Vec<String>),
    /// It has no interface driver to ask: libvirt's words.
    Unknown(String),
}

/// Any failure to list is libvirt's interface driver missing or down (the
/// connection itself is open): the bridges are then unknown, never guessed.
pub fn list(conn: &Connect) -> Bridges {
    let interfaces = match conn.list_all_interfaces(0) {
        Ok(interfaces) => interfaces,
        Err(e) => return Bridges::Unknown(e.message().to_string()),
    };
    // An interface that vanishes between the listing and the question is skipped.
    let mut bridges: Vec<String> =
        interfaces.iter().filter(|i| i.xml_desc(0).is_ok_and(|xml| is_bridge(&xml))).filter_map(|i| i.name().ok()).collect();
    bridges.sort();
    Bridges::Listed(bridges)
}

fn is_bridge(xml: &str) -> bool {
    roxmltree::Document::parse(xml).is_ok_and(|doc| doc.root_element().attribute("type") == Some("bridge"))
}

/// The preflight's verdict on `bridge`: a problem when it is not listed; a
/// warning when libvirt cannot tell.
pub fn check(bridge: &str, uri: &str, bridges: &Bridges) -> Result<Option<String>, ProviderError> {
    match bridges {
        Bridges::Listed(listed) if listed.iter().any(|b| b == bridge) => Ok(None),
        Bridges::Listed(listed) => Err(missing(bridge, listed)),
        Bridges::Unknown(why) => Ok(Some(format!(
            "warning: cannot check that the bridge '{bridge}' (db.yaml `bridge`) exists: libvirt at {uri} has no interface driver ({why})"
        ))),
    }
}

/// The operator's error when libvirt's `message` about a failed start says the bridge is missing.
pub fn missing_in_start(message: &str, bridges: Option<&Bridges>) -> Option<ProviderError> {
    let bridge = missing_in(message)?;
    let listed = match bridges {
        Some(Bridges::Listed(listed)) => listed.as_slice(),
        _ => &[],
    };
    Some(missing(bridge, listed))
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

fn missing(bridge: &str, existing: &[String]) -> ProviderError {
    let next = if existing.is_empty() {
        "libvirt lists no bridge: create one, or set `bridge` to the one the VMs should use".to_string()
    } else {
        format!("set `bridge` to one that exists: {}", existing.join(", "))
    };
    ProviderError::new(ErrorCode::InvalidSpec, format!("the bridge '{bridge}' (db.yaml `bridge`) does not exist on this host; {next}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn listed(names: &[&str]) -> Bridges {
        Bridges::Listed(names.iter().map(|n| n.to_string()).collect())
    }

    #[test]
    fn a_missing_bridge_names_the_key_and_the_bridges_that_exist() {
        assert_eq!(check("br1", "qemu:///system", &listed(&["br1", "virbr0"])), Ok(None));
        let error = check("lan", "qemu:///system", &listed(&["br1", "virbr0"])).unwrap_err();
        assert_eq!(error.code, ErrorCode::InvalidSpec);
        assert_eq!(error.message, "the bridge 'lan' (db.yaml `bridge`) does not exist on this host; set `bridge` to one that exists: br1, virbr0");
        assert_eq!(
            check("br0", "qemu:///system", &listed(&[])).unwrap_err().message,
            "the bridge 'br0' (db.yaml `bridge`) does not exist on this host; libvirt lists no bridge: create one, or set `bridge` to the one the VMs should use"
        );
    }

    #[test]
    fn without_an_interface_driver_it_says_so_rather_than_guessing() {
        assert_eq!(
            check("br0", "qemu:///system", &Bridges::Unknown("this function is not supported by the connection driver".into())),
            Ok(Some("warning: cannot check that the bridge 'br0' (db.yaml `bridge`) exists: libvirt at qemu:///system has no interface driver (this function is not supported by the connection driver)".into()))
        );
    }

    #[test]
    fn a_start_that_fails_on_the_bridge_gets_the_same_words() {
        let error = missing_in_start("Failed to add tap interface to bridge 'lan': No such device", Some(&listed(&["br1"]))).unwrap();
        assert_eq!((error.code, error.message.as_str()), (ErrorCode::InvalidSpec, "the bridge 'lan' (db.yaml `bridge`) does not exist on this host; set `bridge` to one that exists: br1"));
        assert!(missing_in_start("Cannot get interface MTU on 'br0': No such device", None).is_some());
        for message in ["Cannot get interface MTU on 'br0': Permission denied", "internal error: process exited", "No such device"] {
            assert_eq!(missing_in_start(message, None), None, "{message}");
        }
    }

    #[test]
    fn only_bridges_count() {
        assert!(is_bridge("<interface type='bridge' name='br0'><bridge/></interface>"));
        assert!(!is_bridge("<interface type='ethernet' name='eth0'/>"));
    }
}
