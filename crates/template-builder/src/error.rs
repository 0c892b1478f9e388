//! What can go wrong while building, resolving or pruning templates.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum TemplateError {
    #[error("building a template needs root (debootstrap and chroot)")]
    NotRoot,
    #[error("{0} not found in PATH (install {1})")]
    ToolMissing(&'static str, &'static str),
    #[error("not enough free space in {}: {available_mib} MiB available, {needed_mib} MiB needed", .dir.display())]
    NoSpace { dir: PathBuf, available_mib: u64, needed_mib: u64 },
    #[error("mirror unreachable: {0}")]
    MirrorUnreachable(String),
    #[error("bad template source {0:?}: expected debootstrap or image:PATH-or-URL")]
    BadSource(String),
    #[error("bad checksum {0:?}: expected 64 (SHA-256) or 128 (SHA-512) hex digits")]
    BadChecksum(String),
    #[error("{what} does not match its checksum: expected {expected}, got {actual}")]
    ChecksumMismatch { what: String, expected: String, actual: String },
    #[error("download of {url} failed: {reason}")]
    Download { url: String, reason: String },
    #[error(
        "{} holds no libpam-web3 package (libpam-web3_<version>_<arch>.deb): users could not log in to VMs with their wallet; \
         copy it there, or pass --allow-without-libpam-web3 to build such a template anyway",
        .0.display()
    )]
    NoLibpamWeb3(PathBuf),
    #[error("another template build is running (lock {} is held)", .0.display())]
    Busy(PathBuf),
    #[error("{}: {source}", .path.display())]
    Io { path: PathBuf, source: std::io::Error },
    #[error("{}: {reason}", .path.display())]
    Corrupt { path: PathBuf, reason: String },
    #[error("{step} failed: {detail}")]
    StepFailed { step: String, detail: String },
}

impl TemplateError {
    pub(crate) fn io(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> Self {
        let path = path.into();
        move |source| Self::Io { path, source }
    }

    pub(crate) fn step(step: impl Into<String>, detail: impl Into<String>) -> Self {
        Self::StepFailed { step: step.into(), detail: detail.into() }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_are_one_line() {
        let e = TemplateError::NoSpace { dir: PathBuf::from("/var/lib/blockhost/templates"), available_mib: 100, needed_mib: 3072 };
        assert_eq!(
            e.to_string(),
            "not enough free space in /var/lib/blockhost/templates: 100 MiB available, 3072 MiB needed"
        );
    }
}
