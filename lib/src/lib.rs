//! The BlockHost provisioner library: provider adapters, host state and one
//! function per contract verb. Binaries are thin wrappers over `verbs`.

pub mod host;
pub mod provider;
pub mod verbs;
