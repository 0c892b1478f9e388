//! The provider interface every backend implements, and the registry that picks
//! one. No backend name appears outside this module tree.

mod capabilities;
mod error;
pub mod libvirt;
pub mod mock;
pub mod recovery;
pub mod registry;
mod types;

pub use capabilities::Capabilities;
pub use error::{ErrorCode, ProviderError};
pub use types::*;

use std::path::Path;
use std::time::Duration;

/// A hypervisor backend. Required core: get/list, spawn (idempotent by name),
/// terminate (idempotent: absent is success, and it removes every artifact of
/// the VM, including staged bootstrap files), start, shutdown, power_off.
/// Optional parts are declared in [`Capabilities`].
pub trait Provider {
    fn name(&self) -> &'static str;

    fn capabilities(&self) -> Capabilities;

    /// A provider that keeps its own VM database (the mock) returns its state
    /// directory; the database, caches and per-VM host files then live there.
    fn private_state_dir(&self) -> Option<&Path> {
        None
    }

    /// Whether this backend's platform is usable on this host.
    fn detect(&self) -> bool;

    /// `Ok(None)` when the VM does not exist.
    fn get(&self, name: &str) -> Result<Option<VmInfo>, ProviderError>;

    fn list(&self) -> Result<Vec<VmInfo>, ProviderError>;

    /// Persists the bootstrap documents where the VM will read them (a seed image,
    /// a snippet). Undone by `terminate`.
    fn stage_bootstrap(&self, name: &str, bootstrap: &Bootstrap) -> Result<(), ProviderError>;

    fn spawn(&self, spec: &VmSpec) -> Result<VmInfo, ProviderError>;

    fn terminate(&self, name: &str) -> Result<(), ProviderError>;

    /// What is left of a VM (its definition, disks, staged bootstrap), as
    /// operator-readable descriptions; empty once `terminate` has fully succeeded.
    fn leftovers(&self, name: &str) -> Result<Vec<String>, ProviderError>;

    fn start(&self, name: &str) -> Result<(), ProviderError>;

    /// Sends the graceful (ACPI) shutdown request and returns; callers wait.
    fn shutdown(&self, name: &str) -> Result<(), ProviderError>;

    /// Immediate power-off.
    fn power_off(&self, name: &str) -> Result<(), ProviderError>;

    /// Whether the guest agent answers right now (one short, bounded probe).
    fn guest_ping(&self, name: &str) -> Result<bool, ProviderError>;

    /// Runs `/bin/sh -c <command>` in the guest, bounded by `timeout`.
    fn guest_exec(&self, name: &str, command: &str, timeout: Duration) -> Result<ExecOutput, ProviderError>;

    /// Raw counters of the named VMs, or of every VM when `names` is `None`,
    /// in one round trip; a stalled VM must not delay the others.
    fn stats(&self, names: Option<&[String]>) -> Result<Vec<RawStats>, ProviderError>;

    fn throttle(&self, name: &str, change: &ThrottleChange) -> Result<(), ProviderError>;

    fn build_template(
        &self,
        options: &TemplateOptions,
        progress: &mut dyn FnMut(&str),
    ) -> Result<TemplateBuild, ProviderError>;

    /// Called before each create step; the mock injects its faults here.
    fn before_step(&self, _step: CreateStep) -> Result<(), ProviderError> {
        Ok(())
    }
}
