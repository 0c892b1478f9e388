//! The provider interface every backend implements, the façade verbs use
//! ([`Backend`]), fault injection, and the registry that picks a backend. No
//! backend name appears outside this module tree.

mod backend;
mod capabilities;
mod error;
pub mod faults;
#[cfg(any(feature = "libvirt", feature = "proxmox"))]
mod host_route;
#[cfg(feature = "libvirt")]
pub(crate) mod libvirt;
pub(crate) mod mock;
/// Public so that its client and cluster layer can be tested against the PVE stand-in.
#[cfg(feature = "proxmox")]
pub mod proxmox;
pub mod module;
mod recovery;
pub mod registry;
mod rng;
pub mod templates;
#[cfg(any(feature = "libvirt", feature = "proxmox"))]
mod template_store;

pub use backend::Backend;
pub use capabilities::Capabilities;
pub use error::{ErrorCode, ProviderError};
pub use crate::model::*;

use std::path::Path;
use std::time::Duration;

/// A hypervisor backend. Required core: get/list, spawn (idempotent by name),
/// terminate (idempotent: absent is success, and it removes every artifact of
/// the VM, including staged bootstrap files), start, shutdown, power_off.
/// Optional parts are declared in [`Capabilities`]. Verbs reach a provider only
/// through [`Backend`], which adds ambiguous-write recovery.
pub trait Provider {
    fn name(&self) -> &'static str;

    fn capabilities(&self) -> Capabilities;

    /// Whether this backend's platform is usable on this host; when not, why.
    fn detect(&self) -> Result<(), ProviderError>;

    /// What would make a create of a VM on `bridge` fail on this host that
    /// can be seen without changing anything (libvirt: no template, a template
    /// that cannot be read, a bridge that does not exist).
    /// Doubts that do not stop a create (what could not be checked) go to `warn`.
    fn preflight(&self, _bridge: &str, _warn: &mut dyn FnMut(&str)) -> Vec<ProviderError> {
        Vec::new()
    }

    /// The host's room for VMs; `None` when this backend cannot tell.
    fn host_capacity(&self) -> Result<Option<HostCapacity>, ProviderError> {
        Ok(None)
    }

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

    /// Re-applies to an existing VM the host state a host restart loses (the
    /// libvirt backend: its IPv6 host route). Idempotent: what is still in
    /// place is left alone. Returns what had to be re-applied, as short
    /// operator-readable phrases; empty when nothing was missing. A backend
    /// whose state all survives a restart keeps this default.
    fn restore_host_state(&self, _name: &str) -> Result<Vec<String>, ProviderError> {
        Ok(Vec::new())
    }

    /// The file the guest's console is logged to, when this backend keeps one.
    fn console_log(&self, _name: &str) -> Option<std::path::PathBuf> {
        None
    }

    /// Whether the guest agent answers right now (one short, bounded probe).
    fn guest_ping(&self, name: &str) -> Result<bool, ProviderError>;

    /// Runs `/bin/sh -c <command>` in the guest, bounded by `timeout`.
    fn guest_exec(&self, name: &str, command: &str, timeout: Duration) -> Result<ExecOutput, ProviderError>;

    /// Raw counters of the named VMs, or of every VM when `names` is `None`,
    /// in one round trip; a stalled VM must not delay the others.
    fn stats(&self, names: Option<&[String]>) -> Result<Vec<RawStats>, ProviderError>;

    fn throttle(&self, name: &str, change: &ThrottleChange) -> Result<(), ProviderError>;
}
