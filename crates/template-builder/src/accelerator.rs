//! How QEMU runs a guest on this host: KVM when the hardware offers it,
//! else the TCG emulator.

use std::path::Path;

/// TCG's translation cache when nothing else is configured.
pub const DEFAULT_TB_CACHE_MIB: u64 = 256;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Accelerator {
    Kvm,
    /// QEMU's TCG emulator with a bounded translation cache.
    Tcg { tb_cache_mib: u64 },
}

impl Accelerator {
    /// What the host under `root` can really run: KVM when [`kvm_usable`],
    /// else TCG with the default cache.
    pub fn detect(root: &Path) -> Self {
        if kvm_usable(root) { Self::Kvm } else { Self::Tcg { tb_cache_mib: DEFAULT_TB_CACHE_MIB } }
    }
}

/// KVM counts as usable only when `<root>/dev/kvm` opens read-write and a
/// hardware virtualisation module (kvm_intel, kvm_amd) backs it: a paravirtual
/// KVM such as kvm_pvm cannot run a stock guest kernel, so TCG is chosen there.
pub fn kvm_usable(root: &Path) -> bool {
    let device_opens = std::fs::OpenOptions::new().read(true).write(true).open(root.join("dev/kvm")).is_ok();
    let hardware = ["kvm_intel", "kvm_amd"].iter().any(|m| root.join("sys/module").join(m).is_dir());
    device_opens && hardware
}
