//! The Debian package `blockhost-provisioner-proxmox`. Nothing to compile: the
//! package is described by this crate's `Cargo.toml` (`[package.metadata.deb]`).
