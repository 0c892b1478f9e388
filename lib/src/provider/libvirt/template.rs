//! The template builder (crate `blockhost-template-builder`) seen from the
//! backend: its store at this host's paths, the provider's options and outcome
//! in its terms, and its failures as provider error codes.

use crate::host::io_words::io_words;
use crate::host::paths::HostPaths;
use crate::host::provisioning_lock::LOCK_FILE;
use super::profile::Profile;
use crate::provider::module::OpenContext;
use crate::provider::{ErrorCode, ProviderError, TemplateBuild, TemplateOptions};
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

/// There is no `current` template to create VMs from.
pub fn missing(paths: &HostPaths) -> ProviderError {
    let dir = templates_dir(paths);
    ProviderError::new(ErrorCode::InvalidSpec, format!("no VM template in {} (no `current` version); build one: blockhost-build-template", dir.display()))
}

/// The current template exists and its image can be read.
pub fn preflight(paths: &HostPaths, store: &TemplateStore) -> Result<(), ProviderError> {
    let image = store.current()?.ok_or_else(|| missing(paths))?.image_path();
    std::fs::File::open(&image).map(drop).map_err(|e| {
        let words = io_words(&e);
        ProviderError::new(ErrorCode::InvalidSpec, format!("{}: the VM template cannot be read: {words}; rebuild it: blockhost-build-template --force", image.display()))
    })
}

/// Builds (or keeps) the template with this host's profile (its accelerator).
pub fn build(ctx: &OpenContext, options: &TemplateOptions, progress: &mut dyn FnMut(&str)) -> Result<TemplateBuild, ProviderError> {
    let store = store(ctx.paths, Profile::load(ctx.paths, ctx.config)?.accelerator);
    let TemplateOptions { force, source, suite, mirror, checksum, prune, allow_without_libpam_web3 } = options.clone();
    let outcome = store.build(&BuildOptions { force, source, suite, mirror, checksum, prune, allow_without_libpam_web3 }, progress)?;
    Ok(TemplateBuild { path: outcome.path, built: outcome.built })
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
