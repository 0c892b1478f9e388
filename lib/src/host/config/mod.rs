//! The host's configuration files, loaded and normalized the way blockhost-common
//! does, with one-line errors that name the file and the key.

mod broker;
mod db_yaml;
mod engine;
mod network_mode;
mod overcommit;
mod parse;
mod typos;
mod web3;

pub use broker::BrokerAllocation;
pub use db_yaml::{DbConfig, Ipv4Pool, Ipv6Bounds, VmidRange};
pub use engine::address_pattern;
pub use network_mode::network_mode;
pub use overcommit::Overcommit;
pub use typos::Typo;
pub use web3::AuthDefaults;

use crate::host::io_words::io_words;
use parse::{parse_json, parse_yaml};
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{path}: file not found", path = .0.display())]
    Missing(PathBuf),
    #[error("{path}: file is empty", path = .0.display())]
    Empty(PathBuf),
    #[error("{path}: cannot read: {}", io_words(.1), path = .0.display())]
    Io(PathBuf, std::io::Error),
    #[error("{path}: not valid {1}: {2}", path = .0.display())]
    Parse(PathBuf, &'static str, String),
    #[error("{path}: key '{1}': {2}", path = .0.display())]
    Key(PathBuf, String, String),
    #[error("{0}")]
    NetworkMode(String),
}

/// Reads a config file; `Ok(None)` when it does not exist.
pub(crate) fn read_optional(path: &Path) -> Result<Option<String>, ConfigError> {
    match std::fs::read_to_string(path) {
        Ok(text) => Ok(Some(text)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(ConfigError::Io(path.to_path_buf(), e)),
    }
}

/// Looks up a dotted key in a parsed document.
pub(crate) fn lookup<'a>(doc: &'a serde_json::Value, dotted: &str) -> Option<&'a serde_json::Value> {
    dotted.split('.').try_fold(doc, |node, key| node.get(key)).filter(|v| !v.is_null())
}
