//! The Debian package `blockhost-provisioner-libvirt`. Nothing to compile: the
//! package is described by this crate's `Cargo.toml` (`[package.metadata.deb]`).
