//! Versioned VM templates for BlockHost's libvirt backend: building them
//! (debootstrap, or a cloud image customised in a throw-away QEMU VM), the
//! store under `/var/lib/blockhost/templates`, and which versions VMs still use.
//!
//! Each build lands in its own directory `templates/<suite>-<UTC time>/`
//! (`disk.qcow2` and `template.json`; templates of older builds may also hold
//! `vmlinuz` + `initrd.img` for direct kernel boot); `templates/current`
//! points at the one new VMs use. A VM's disk
//! is an overlay backed by the image of the version it was created on, so a
//! rebuild never changes what existing VMs see; versions no VM uses any more
//! can be pruned.
//!
//! The crate knows nothing of the provisioner library: the caller says where
//! the store lives ([`StoreLayout`]) and maps [`TemplateError`] to its own
//! error codes.
#![forbid(unsafe_code)]

mod accelerator;
mod boot_loader;
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
mod manifest;
mod partition_table;
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

pub use accelerator::{kvm_usable, Accelerator, DEFAULT_TB_CACHE_MIB};
pub use error::TemplateError;
pub use qcow2::virtual_size as qcow2_virtual_size;
pub use manifest::{BootMode, BootProfile, Firmware, PackageVersion, Template, TemplateManifest};

use std::path::PathBuf;

/// What a build is asked for.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BuildOptions {
    /// Rebuild even when the current template was built from the same inputs.
    pub force: bool,
    /// `debootstrap` (the default) or `image:<path-or-url>`.
    pub source: Option<String>,
    pub suite: Option<String>,
    pub mirror: Option<String>,
    /// Expected SHA-256 or SHA-512 (hex) of a downloaded cloud image.
    pub checksum: Option<String>,
    /// Remove the templates that no VM uses any more (never the current one).
    pub prune: bool,
    /// Build even when `template-packages/` holds no libpam-web3 package
    /// (VMs from such a template do not accept wallet logins).
    pub allow_without_libpam_web3: bool,
}

/// Where a build left the current template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuildOutcome {
    /// The image of the version now current.
    pub path: PathBuf,
    /// False when an up-to-date template was kept.
    pub built: bool,
}

/// Where the store and the things it looks at live on the host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreLayout {
    /// The versions, `current`, the download cache.
    pub templates: PathBuf,
    /// Extra `.deb`s every template gets.
    pub packages: PathBuf,
    /// The VM disks whose backing files keep versions alive.
    pub vms: PathBuf,
    /// The marker a running VM create holds, with its PID inside: no pruning then.
    pub create_marker: PathBuf,
}

/// The template versions of one host: which is current, building a new one,
/// and pruning those no VM uses.
pub struct TemplateStore {
    templates: PathBuf,
    packages: PathBuf,
    vms: PathBuf,
    create_marker: PathBuf,
    /// How the builder VM of a cloud-image build runs.
    accelerator: Accelerator,
}

impl TemplateStore {
    pub fn new(layout: StoreLayout, accelerator: Accelerator) -> Self {
        let StoreLayout { templates, packages, vms, create_marker } = layout;
        Self { templates, packages, vms, create_marker, accelerator }
    }

    /// The template new VMs use: the version `templates/current` points at;
    /// without it, the upstream layout's `templates/blockhost-base.qcow2`
    /// (disk boot, `q35`, SATA cdrom, source `legacy`); `None` without either.
    pub fn current(&self) -> Result<Option<Template>, TemplateError> {
        current::resolve(&self.templates)
    }

    /// Builds a new version and makes it current, unless the current one was
    /// built from the same inputs (and `force` is off); then prunes when asked.
    /// Returns the image path of the version now current.
    pub fn build(&self, options: &BuildOptions, progress: &mut dyn FnMut(&str)) -> Result<BuildOutcome, TemplateError> {
        build::build(self, options, progress)
    }

    /// Version directories no VM disk uses, never the current one.
    pub fn unused(&self) -> Result<Vec<PathBuf>, TemplateError> {
        usage::unused(&self.templates, &self.vms)
    }

    /// Removes the unused versions (none while a VM create is running);
    /// returns the directories removed.
    pub fn prune(&self, progress: &mut dyn FnMut(&str)) -> Result<Vec<PathBuf>, TemplateError> {
        if !self.templates.is_dir() {
            return Ok(Vec::new());
        }
        let _lock = staging::BuildLock::acquire(&self.templates)?;
        self.prune_locked(progress)
    }

    /// `prune` for a caller that holds the build lock.
    fn prune_locked(&self, progress: &mut dyn FnMut(&str)) -> Result<Vec<PathBuf>, TemplateError> {
        if usage::create_in_progress(&self.create_marker) {
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
