//! The libvirt/KVM backend.

pub mod template;
