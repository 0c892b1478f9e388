//! The machine's shared state: configuration, the VM database, address pools,
//! locks and cloud-init documents.

pub(crate) mod atomic;
pub mod cloud_init;
pub mod config;
pub mod io_words;
pub mod metrics_cache;
pub(crate) mod names;
pub mod paths;
pub(crate) mod pools;
pub mod process;
pub(crate) mod provisioning_lock;
pub mod root_agent;
pub mod pyjson;
pub(crate) mod shared_dir;
pub mod shared_sample;
pub mod timestamp;
pub mod vmdb;
