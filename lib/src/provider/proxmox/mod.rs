//! The Proxmox VE backend, over the PVE REST API (cargo feature `proxmox`):
//! the configuration, the API token, verified TLS, the client with its error
//! table and task following, the cluster layer, seed ISOs on a storage,
//! placement, spawn, throttles, the template builder, and the [`Provider`](crate::provider::Provider) itself.

pub mod client;
pub mod config;
pub mod errors;
mod firewall;
mod placement;
mod provider;
mod routes;
mod seed;
mod spawn;
pub mod template;
mod throttle;
pub mod tls;
pub mod vms;
pub mod token;

pub use client::{Client, Connection, Upload};
pub use config::ProxmoxConfig;
pub use provider::MODULE;
pub use template::build_template;
pub use tls::Trust;
pub use token::ApiToken;
