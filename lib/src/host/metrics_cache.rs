//! The previous metrics sample of each VM (`<dir>/<vm>.json`), from which the
//! next call computes rates. Same keys as the upstream provisioner's cache.

use crate::host::atomic::write_atomic;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Sample {
    pub timestamp: f64,
    pub cpu_time_ns: u64,
    pub blk_rd_reqs: u64,
    pub blk_wr_reqs: u64,
    pub blk_rd_bytes: u64,
    pub blk_wr_bytes: u64,
    pub net_rx: u64,
    pub net_tx: u64,
}

fn path(dir: &Path, vm: &str) -> PathBuf {
    dir.join(format!("{vm}.json"))
}

/// The cached sample; an unreadable or corrupt one counts as absent (first sample).
pub fn load(dir: &Path, vm: &str) -> Option<Sample> {
    serde_json::from_str(&std::fs::read_to_string(path(dir, vm)).ok()?).ok()
}

pub fn save(dir: &Path, vm: &str, sample: &Sample) -> std::io::Result<()> {
    crate::host::shared_dir::create(dir)?;
    let text = serde_json::to_string(sample).map_err(std::io::Error::other)?;
    write_atomic(&path(dir, vm), text.as_bytes(), 0o640)
}

pub fn remove(dir: &Path, vm: &str) {
    let _ = std::fs::remove_file(path(dir, vm));
}
