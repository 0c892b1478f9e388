//! The wallet address pattern from `/usr/share/blockhost/engine.json`
//! (`constraints.address_pattern`).

use crate::host::paths::HostPaths;
use regex_lite::Regex;

/// The engine's address pattern, when the file parses and the pattern compiles in
/// Rust's regex dialect; otherwise `None` (and only the baseline wallet rule applies).
pub fn address_pattern(paths: &HostPaths) -> Option<Regex> {
    let text = std::fs::read_to_string(paths.share_dir().join("engine.json")).ok()?;
    let doc: serde_json::Value = serde_json::from_str(&text).ok()?;
    let pattern = doc.pointer("/constraints/address_pattern")?.as_str()?;
    // Python's re.match anchors at the start only; keep that, end anchoring is the pattern's.
    let anchored = if pattern.starts_with('^') { pattern.to_string() } else { format!("^(?:{pattern})") };
    Regex::new(&anchored).ok()
}
