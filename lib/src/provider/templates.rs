//! Template builders by backend. They are not part of [`super::Provider`] nor
//! of the registry's modules, which every executable links: only
//! `blockhost-build-template` reaches this table, and with it the downloader,
//! TLS and the debootstrap driver.

use super::module::OpenContext;
use super::{ProviderError, TemplateBuild, TemplateOptions};

pub type BuildTemplate = fn(&OpenContext, &TemplateOptions, &mut dyn FnMut(&str)) -> Result<TemplateBuild, ProviderError>;

const BUILDERS: &[(&str, BuildTemplate)] = &[
    #[cfg(feature = "libvirt")]
    (super::libvirt::MODULE.name, super::libvirt::build_template),
    #[cfg(feature = "proxmox")]
    (super::proxmox::MODULE.name, super::proxmox::build_template),
    (super::mock::MODULE.name, super::mock::build_template),
];

/// The template builder of the backend named `backend`, if it has one.
pub fn builder(backend: &str) -> Option<BuildTemplate> {
    BUILDERS.iter().find(|(name, _)| *name == backend).map(|(_, build)| *build)
}
