//! The mock's persistent state: one JSON file per VM under `<dir>/domains/`,
//! staged bootstrap files under `<dir>/seeds/<vm>/`, mutations serialized by an
//! flock on `<dir>/.lock`, every write atomic. Shared by root and the
//! `blockhost` user like the production state (group of the directory).

use super::guest::Users;
use crate::host::atomic::{open_lock_file, write_atomic};
use crate::host::shared_dir;
use crate::provider::{ErrorCode, PowerState, ProviderError};
use serde::{Deserialize, Serialize};
use std::fs::File;
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MockThrottle {
    pub cpu_shares: u64,
    pub cpu_quota_percent: Option<u64>,
    pub bandwidth_in_kbps: Option<u64>,
    pub bandwidth_out_kbps: Option<u64>,
    pub iops_read: Option<u64>,
    pub iops_write: Option<u64>,
}

impl Default for MockThrottle {
    fn default() -> Self {
        Self {
            cpu_shares: 1024,
            cpu_quota_percent: None,
            bandwidth_in_kbps: None,
            bandwidth_out_kbps: None,
            iops_read: None,
            iops_write: None,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MockPower {
    Running,
    Paused,
    ShutOff,
}

impl From<MockPower> for PowerState {
    fn from(p: MockPower) -> Self {
        match p {
            MockPower::Running => PowerState::Running,
            MockPower::Paused => PowerState::Paused,
            MockPower::ShutOff => PowerState::ShutOff,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MockVm {
    pub name: String,
    pub power: MockPower,
    pub vcpus: u32,
    pub memory_mib: u64,
    pub disk_gib: u64,
    pub ipv4: Option<String>,
    pub ipv6: Option<String>,
    pub bootstrap_format: String,
    pub bootstrap_sha256: String,
    pub template: Option<String>,
    /// Milliseconds since the epoch when the current boot began.
    pub booted_at_ms: Option<u64>,
    /// When a graceful shutdown was requested (the guest powers off later).
    pub shutdown_requested_ms: Option<u64>,
    /// CPU time consumed by earlier boots.
    pub cpu_ns_before_boot: u64,
    pub throttle: MockThrottle,
    pub users: Users,
    /// Whether the simulated host route of its IPv6 address is in place: added
    /// by a start, lost by a host restart (the `reboot:<vm>` drift).
    #[serde(default)]
    pub host_route: bool,
}

pub fn now_ms() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)
}

pub struct Store {
    dir: PathBuf,
}

fn internal(context: &str, path: &Path, e: impl std::fmt::Display) -> ProviderError {
    ProviderError::new(ErrorCode::Internal, format!("mock {context} {}: {e}", path.display()))
}

impl Store {
    pub fn open(dir: &Path) -> Result<Self, ProviderError> {
        for sub in ["domains", "seeds"] {
            let path = dir.join(sub);
            shared_dir::create(&path).map_err(|e| internal("cannot create", &path, e))?;
        }
        crate::host::atomic::sweep_stale_temps(&dir.join("domains"));
        Ok(Self { dir: dir.to_path_buf() })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Holds the mutation lock until the returned guard is dropped.
    pub fn lock(&self) -> Result<File, ProviderError> {
        let path = self.dir.join(".lock");
        let file = open_lock_file(&path).map_err(|e| internal("cannot open", &path, e))?;
        file.lock().map_err(|e| internal("cannot lock", &path, e))?;
        Ok(file)
    }

    fn vm_path(&self, name: &str) -> PathBuf {
        self.dir.join("domains").join(format!("{name}.json"))
    }

    pub fn seed_dir(&self, name: &str) -> PathBuf {
        self.dir.join("seeds").join(name)
    }

    pub fn load(&self, name: &str) -> Result<Option<MockVm>, ProviderError> {
        let path = self.vm_path(name);
        match std::fs::read_to_string(&path) {
            Ok(text) => serde_json::from_str(&text).map(Some).map_err(|e| internal("corrupt state in", &path, e)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(internal("cannot read", &path, e)),
        }
    }

    pub fn load_all(&self) -> Result<Vec<MockVm>, ProviderError> {
        let dir = self.dir.join("domains");
        let mut names: Vec<String> = std::fs::read_dir(&dir)
            .map_err(|e| internal("cannot list", &dir, e))?
            .filter_map(Result::ok)
            .filter_map(|e| e.file_name().to_str()?.strip_suffix(".json").map(str::to_string))
            .collect();
        names.sort();
        names.iter().filter_map(|n| self.load(n).transpose()).collect()
    }

    pub fn save(&self, vm: &MockVm) -> Result<(), ProviderError> {
        let path = self.vm_path(&vm.name);
        let text = serde_json::to_string_pretty(vm).map_err(|e| internal("cannot encode", &path, e))?;
        write_atomic(&path, text.as_bytes(), 0o640).map_err(|e| internal("cannot write", &path, e))
    }

    /// The VM's files that exist.
    pub fn files_of(&self, name: &str) -> Vec<PathBuf> {
        [self.vm_path(name), self.seed_dir(name)].into_iter().filter(|p| p.exists()).collect()
    }

    /// Removes the VM and its staged files; absent is fine.
    pub fn remove(&self, name: &str) -> Result<(), ProviderError> {
        let path = self.vm_path(name);
        match std::fs::remove_file(&path) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(internal("cannot remove", &path, e)),
            _ => {}
        }
        let seeds = self.seed_dir(name);
        match std::fs::remove_dir_all(&seeds) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(internal("cannot remove", &seeds, e)),
            _ => Ok(()),
        }
    }
}
