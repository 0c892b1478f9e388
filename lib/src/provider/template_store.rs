//! The versioned template store (crate `blockhost-template-builder`) at this
//! host's paths, its build options in the provider's terms, and its failures
//! as provider error codes: shared by the backends that build their VM
//! template on this host (libvirt uses it in place, Proxmox VE uploads it).

use crate::host::paths::HostPaths;
use crate::host::provisioning_lock::LOCK_FILE;
use super::{ErrorCode, ProviderError, TemplateOptions};
use std::path::PathBuf;
use template_builder::{Accelerator, BuildOptions, StoreLayout, TemplateError, TemplateStore};

/// The store under `<state>/templates`, pruning around the VM disks in
/// `<state>/vms` and never while a create holds the provisioning lock.
pub fn store(paths: &HostPaths, accelerator: Accelerator) -> TemplateStore {
    let state = paths.state_dir();
    let layout = StoreLayout {
        templates: templates_dir(paths),
        packages: state.join("template-packages"),
        vms: state.join("vms"),
        create_marker: paths.run_dir().join(LOCK_FILE),
    };
    TemplateStore::new(layout, accelerator)
}

/// Where the template versions and their `current` link live.
pub fn templates_dir(paths: &HostPaths) -> PathBuf {
    paths.state_dir().join("templates")
}

pub fn build_options(options: &TemplateOptions) -> BuildOptions {
    let TemplateOptions { force, source, suite, mirror, checksum, prune, allow_without_libpam_web3 } = options.clone();
    BuildOptions { force, source, suite, mirror, checksum, prune, allow_without_libpam_web3 }
}

impl From<TemplateError> for ProviderError {
    fn from(e: TemplateError) -> Self {
        ProviderError::new(code(&e), e.to_string())
    }
}

fn code(e: &TemplateError) -> ErrorCode {
    match e {
        TemplateError::NotRoot => ErrorCode::Auth,
        TemplateError::ToolMissing(..) => ErrorCode::Unsupported,
        TemplateError::NoSpace { .. } => ErrorCode::Capacity,
        TemplateError::MirrorUnreachable(_) | TemplateError::Download { .. } => ErrorCode::Unavailable,
        TemplateError::BadSource(_)
        | TemplateError::BadChecksum(_)
        | TemplateError::ChecksumMismatch { .. }
        | TemplateError::NoLibpamWeb3(_) => ErrorCode::InvalidSpec,
        TemplateError::Busy(_) => ErrorCode::Conflict,
        TemplateError::Io { .. } | TemplateError::Corrupt { .. } | TemplateError::StepFailed { .. } => ErrorCode::Internal,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_follow_the_failure() {
        let cases = [
            (TemplateError::NotRoot, "auth"),
            (TemplateError::ToolMissing("debootstrap", "debootstrap"), "unsupported"),
            (TemplateError::MirrorUnreachable("x".into()), "unavailable"),
            (TemplateError::BadSource("nope".into()), "invalid-spec"),
            (TemplateError::NoLibpamWeb3(PathBuf::from("/p")), "invalid-spec"),
            (TemplateError::Busy(PathBuf::from("/l")), "conflict"),
            (TemplateError::NoSpace { dir: PathBuf::from("/t"), available_mib: 1, needed_mib: 2 }, "capacity"),
        ];
        for (error, code) in cases {
            assert_eq!(ProviderError::from(error).code.as_str(), code);
        }
    }
}
