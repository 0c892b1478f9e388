//! Checks made before a build starts, so it fails in seconds with one clear
//! line rather than minutes in: privileges, tools, free space, the mirror.

use super::error::TemplateError;
use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// About what a build needs at its peak: the root tree, the raw filesystem
/// image and its qcow2 copy.
pub const NEEDED_BYTES: u64 = 3 << 30;

/// A program a build runs, and the Debian package that ships it.
pub type Tool = (&'static str, &'static str);

pub fn require_root() -> Result<(), TemplateError> {
    if rustix::process::geteuid().is_root() { Ok(()) } else { Err(TemplateError::NotRoot) }
}

/// The first tool not found in `search_path` (a `PATH`-style list).
pub fn require_tools(tools: &[Tool], search_path: &OsStr) -> Result<(), TemplateError> {
    match tools.iter().find(|(name, _)| find_in(name, search_path).is_none()) {
        Some(&(name, package)) => Err(TemplateError::ToolMissing(name, package)),
        None => Ok(()),
    }
}

fn find_in(name: &str, search_path: &OsStr) -> Option<PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    std::env::split_paths(search_path)
        .map(|dir| dir.join(name))
        .find(|p| std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0))
}

pub fn require_free_space(dir: &Path, needed: u64) -> Result<(), TemplateError> {
    let available = free_bytes(dir)?;
    if available < needed {
        return Err(TemplateError::NoSpace { dir: dir.to_path_buf(), available_mib: available >> 20, needed_mib: needed >> 20 });
    }
    Ok(())
}

fn free_bytes(dir: &Path) -> Result<u64, TemplateError> {
    let stat = rustix::fs::statvfs(dir).map_err(|e| TemplateError::io(dir)(e.into()))?;
    Ok(stat.f_bavail.saturating_mul(stat.f_frsize))
}

/// Fetches `<mirror>/dists/<suite>/Release`: the mirror answers and carries the suite.
pub fn check_mirror(mirror: &str, suite: &str) -> Result<(), TemplateError> {
    let url = format!("{mirror}/dists/{suite}/Release");
    let agent = super::download::agent(Duration::from_secs(20));
    match agent.get(&url).call() {
        Ok(_) => Ok(()),
        Err(ureq::Error::StatusCode(404)) => {
            Err(TemplateError::MirrorUnreachable(format!("{mirror} has no suite {suite} ({url}: HTTP 404)")))
        }
        Err(e) => Err(TemplateError::MirrorUnreachable(format!("{url}: {e}"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_executables_only() {
        let dir = tempfile::tempdir().unwrap();
        let tool = dir.path().join("debootstrap");
        std::fs::write(&tool, "#!/bin/sh\n").unwrap();
        let path = dir.path().as_os_str();
        assert!(matches!(
            require_tools(&[("debootstrap", "debootstrap")], path),
            Err(TemplateError::ToolMissing("debootstrap", "debootstrap"))
        ));
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&tool, std::fs::Permissions::from_mode(0o755)).unwrap();
        require_tools(&[("debootstrap", "debootstrap")], path).unwrap();
        let missing = require_tools(&[("debootstrap", "debootstrap"), ("qemu-img", "qemu-utils")], path).unwrap_err();
        assert_eq!(missing.to_string(), "qemu-img not found in PATH (install qemu-utils)");
    }

    #[test]
    fn free_space() {
        let dir = tempfile::tempdir().unwrap();
        require_free_space(dir.path(), 1).unwrap();
        assert!(matches!(require_free_space(dir.path(), u64::MAX), Err(TemplateError::NoSpace { .. })));
    }

    #[test]
    fn unreachable_mirror() {
        // Below the ephemeral range that the tests' own servers are given.
        let port = 1;
        let err = check_mirror(&format!("http://127.0.0.1:{port}/debian"), "bookworm").unwrap_err();
        assert!(matches!(err, TemplateError::MirrorUnreachable(_)), "{err}");
    }
}
