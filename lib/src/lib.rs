//! The BlockHost provisioner library: provider adapters, host state and one
//! function per contract verb. Binaries are thin wrappers over `verbs`.
//!
//! `unsafe` is denied everywhere but the libvirt FFI module, which allows it
//! explicitly; system calls go through `rustix`'s safe wrappers and the `sys` crate.
#![deny(unsafe_code)]

pub mod host;
pub mod model;
pub mod provider;
pub mod verbs;
