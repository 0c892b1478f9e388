//! The Proxmox VE backend, over the PVE REST API (cargo feature `proxmox`).
//! What exists so far are its foundations: the configuration, the API token,
//! verified TLS, the client with its error table and task following. The
//! backend is not in the registry until every verb exists.

pub mod client;
pub mod config;
pub mod errors;
pub mod tls;
pub mod vms;
pub mod token;

pub use client::{Client, Connection};
pub use config::ProxmoxConfig;
pub use tls::Trust;
pub use token::ApiToken;
