//! The machine's shared state: configuration, the VM database, address pools,
//! locks and cloud-init documents.

pub mod atomic;
pub mod cloud_init;
pub mod config;
pub mod metrics_cache;
pub mod names;
pub mod paths;
pub mod pools;
pub mod process;
pub mod provisioning_lock;
pub mod root_agent;
pub mod pyjson;
pub mod shared_dir;
pub mod timestamp;
pub mod vmdb;
