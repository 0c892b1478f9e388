//! The template store seen from the libvirt backend: VMs are overlays of the
//! current version's image, so a create needs it present and readable; the
//! builder VM runs with this host's accelerator.

use crate::host::io_words::io_words;
use crate::host::paths::HostPaths;
use super::profile::Profile;
use crate::provider::module::OpenContext;
use crate::provider::template_store::{self, build_options, templates_dir};
use crate::provider::{ErrorCode, ProviderError, TemplateBuild, TemplateOptions};
use template_builder::TemplateStore;

pub use template_store::store;

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
    let outcome = store.build(&build_options(options), progress)?;
    Ok(TemplateBuild { path: outcome.path, built: outcome.built })
}
