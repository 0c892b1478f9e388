//! Every host path is derived from one root prefix, so tests and demos run in a
//! scratch directory and never touch the real host.

use std::path::{Path, PathBuf};

/// Environment variable that overrides the root prefix (default `/`).
pub const ROOT_ENV: &str = "BLOCKHOST_ROOT";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostPaths {
    root: PathBuf,
    explicit: bool,
}

impl HostPaths {
    /// The root from `BLOCKHOST_ROOT`, or `/` when unset or empty.
    pub fn from_env() -> Self {
        match std::env::var_os(ROOT_ENV) {
            Some(root) if !root.is_empty() => Self::with_root(PathBuf::from(root)),
            _ => Self { root: PathBuf::from("/"), explicit: false },
        }
    }

    pub fn with_root(root: impl Into<PathBuf>) -> Self {
        Self { root: root.into(), explicit: true }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// True when the root was chosen explicitly (tests, demos) rather than defaulted to `/`.
    pub fn is_explicit(&self) -> bool {
        self.explicit
    }

    /// Maps an absolute host path (e.g. `/etc/blockhost/db.yaml`) under the root.
    /// A relative path is taken relative to the BlockHost state directory.
    pub fn host(&self, path: impl AsRef<Path>) -> PathBuf {
        let path = path.as_ref();
        match path.strip_prefix("/") {
            Ok(rel) => self.root.join(rel),
            Err(_) => self.state_dir().join(path),
        }
    }

    pub fn config_dir(&self) -> PathBuf {
        self.root.join("etc/blockhost")
    }

    pub fn config_file(&self, name: &str) -> PathBuf {
        self.config_dir().join(name)
    }

    pub fn state_dir(&self) -> PathBuf {
        self.root.join("var/lib/blockhost")
    }

    pub fn run_dir(&self) -> PathBuf {
        self.root.join("run/blockhost")
    }

    pub fn share_dir(&self) -> PathBuf {
        self.root.join("usr/share/blockhost")
    }

    pub fn manifest(&self) -> PathBuf {
        self.share_dir().join("provisioner.json")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn absolute_paths_land_under_the_root() {
        let p = HostPaths::with_root("/tmp/x");
        assert_eq!(p.host("/var/lib/blockhost/vms.json"), PathBuf::from("/tmp/x/var/lib/blockhost/vms.json"));
        assert_eq!(p.config_file("db.yaml"), PathBuf::from("/tmp/x/etc/blockhost/db.yaml"));
        assert_eq!(p.manifest(), PathBuf::from("/tmp/x/usr/share/blockhost/provisioner.json"));
        assert_eq!(p.run_dir(), PathBuf::from("/tmp/x/run/blockhost"));
    }

    #[test]
    fn relative_paths_are_relative_to_the_state_dir() {
        let p = HostPaths::with_root("/r");
        assert_eq!(p.host("vms.json"), PathBuf::from("/r/var/lib/blockhost/vms.json"));
    }

    #[test]
    fn default_root_is_slash() {
        let p = HostPaths { root: PathBuf::from("/"), explicit: false };
        assert_eq!(p.host("/etc/blockhost/db.yaml"), PathBuf::from("/etc/blockhost/db.yaml"));
        assert!(!p.is_explicit());
    }
}
