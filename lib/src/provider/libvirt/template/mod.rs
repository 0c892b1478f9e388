//! Versioned VM templates: the store under `/var/lib/blockhost/templates`.
//!
//! Each build lands in its own directory `templates/<suite>-<UTC time>/`
//! (`disk.qcow2`, `template.json`, and `vmlinuz` + `initrd.img` for direct
//! kernel boot); `templates/current` points at the one new VMs use. A VM's disk
//! is an overlay backed by the image of the version it was created on, so a
//! rebuild never changes what existing VMs see; versions no VM uses any more
//! can be pruned.

mod build;
mod builder_seed;
mod builder_vm;
mod checksum;
mod chroot;
mod cloud_image;
mod current;
mod debootstrap;
mod disk;
mod download;
mod dpkg_status;
mod error;
mod guest_config;
pub mod manifest;
mod plan;
mod preflight;
mod progress;
mod qcow2;
mod rootfs;
mod run;
mod staging;
#[cfg(test)]
mod test_http;
mod tree;
mod usage;

pub use error::TemplateError;

use super::profile::Accelerator;
use crate::host::paths::HostPaths;
use crate::provider::{ProviderError, TemplateBuild, TemplateOptions};
use manifest::Template;
use std::path::PathBuf;

pub struct TemplateStore {
    /// `<state>/templates`: the versions, `current`, the cache.
    templates: PathBuf,
    /// `<state>/template-packages`: extra `.deb`s every template gets.
    packages: PathBuf,
    /// `<state>/vms`: the VM disks whose backing files keep versions alive.
    vms: PathBuf,
    /// `/run/blockhost`: where a running create shows itself.
    run_dir: PathBuf,
    /// How the builder VM of a cloud-image build runs.
    accelerator: Accelerator,
}

impl TemplateStore {
    pub fn new(paths: &HostPaths, accelerator: Accelerator) -> Self {
        let state = paths.state_dir();
        Self {
            templates: state.join("templates"),
            packages: state.join("template-packages"),
            vms: state.join("vms"),
            run_dir: paths.run_dir(),
            accelerator,
        }
    }

    /// The template new VMs use: the version `templates/current` points at;
    /// without it, the upstream layout's `templates/blockhost-base.qcow2`
    /// (disk boot, `q35`, SATA cdrom, source `legacy`); `None` without either.
    pub fn current(&self) -> Result<Option<Template>, ProviderError> {
        Ok(current::resolve(&self.templates)?)
    }

    /// Builds a new version and makes it current, unless the current one was
    /// built from the same inputs (and `force` is off); then prunes when asked.
    /// Returns the image path of the version now current.
    pub fn build(&self, options: &TemplateOptions, progress: &mut dyn FnMut(&str)) -> Result<TemplateBuild, ProviderError> {
        Ok(build::build(self, options, progress)?)
    }

    /// Version directories no VM disk uses, never the current one.
    pub fn unused(&self) -> Result<Vec<PathBuf>, ProviderError> {
        Ok(usage::unused(&self.templates, &self.vms)?)
    }

    /// Removes the unused versions (none while a VM create is running);
    /// returns the directories removed.
    pub fn prune(&self, progress: &mut dyn FnMut(&str)) -> Result<Vec<PathBuf>, ProviderError> {
        if !self.templates.is_dir() {
            return Ok(Vec::new());
        }
        let _lock = staging::BuildLock::acquire(&self.templates)?;
        Ok(self.prune_locked(progress)?)
    }

    /// `prune` for a caller that holds the build lock.
    fn prune_locked(&self, progress: &mut dyn FnMut(&str)) -> Result<Vec<PathBuf>, TemplateError> {
        if usage::create_in_progress(&self.run_dir) {
            progress("Not pruning templates: a VM create is in progress");
            return Ok(Vec::new());
        }
        let unused = usage::unused(&self.templates, &self.vms)?;
        for dir in &unused {
            tree::remove_tree(dir)?;
            progress(&format!("Removed unused template {}", dir.display()));
        }
        if unused.is_empty() {
            progress("No unused template to prune");
        }
        Ok(unused)
    }
}
