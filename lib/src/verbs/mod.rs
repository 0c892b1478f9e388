//! One module per contract verb: validate → lock → act through the provider →
//! record in the VM database → return a typed outcome. Printing and exit codes
//! belong to the binaries.

pub mod build_template;
mod capacity;
pub mod create;
pub mod destroy;
pub mod detect;
pub mod exit_code;
pub mod gc;
pub mod guest_exec;
pub mod list;
pub mod metrics;
pub mod power;
pub mod reconcile;
pub mod recover;
pub mod resume;
pub mod status;
pub mod throttle;
pub mod update_gecos;
pub mod wait_notice;

use crate::host::cloud_init::CloudInitError;
use crate::host::config::{ConfigError, DbConfig};
use crate::host::names::InvalidInput;
use crate::host::paths::HostPaths;
use crate::host::vmdb::{DbError, LockWait, VmDatabase};
use crate::provider::module::OpenContext;
use crate::provider::registry::{self, SelectError};
use crate::provider::{Backend, ProviderError};
use std::path::PathBuf;
use std::sync::atomic::{AtomicI32, Ordering};
use std::sync::Arc;
use std::time::Duration;

#[derive(Debug, thiserror::Error)]
pub enum VerbError {
    #[error(transparent)]
    Invalid(#[from] InvalidInput),
    #[error("{0}")]
    Usage(String),
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Select(#[from] SelectError),
    #[error(transparent)]
    Db(#[from] DbError),
    #[error(transparent)]
    Provider(#[from] ProviderError),
    #[error(transparent)]
    CloudInit(#[from] CloudInitError),
    #[error("VM {0} not found")]
    NotFound(String),
    #[error("{0}")]
    Failed(String),
    #[error("interrupted by signal {0}")]
    Interrupted(i32),
    /// Several problems a create's preflight found at once, each its own error.
    #[error("{} problems: {}", .0.len(), .0.iter().map(ToString::to_string).collect::<Vec<_>>().join("; "))]
    Preflight(Vec<VerbError>),
    /// The guest agent never answered: where the guest's console was logged, kept for the operator.
    #[error("the guest agent of {name} did not answer within {secs} s (db.yaml agent_timeout_seconds); {}", console_words(.console_log))]
    AgentSilent { name: String, secs: u64, console_log: ConsoleLog },
}

/// What became of a VM's console log when its create failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConsoleLog {
    Kept(PathBuf),
    NotKept(PathBuf, String),
    /// The backend keeps none.
    None,
}

fn console_words(log: &ConsoleLog) -> String {
    match log {
        ConsoleLog::Kept(path) => format!("the guest's console log is kept at {}", path.display()),
        ConsoleLog::NotKept(path, why) => format!("its console log could not be kept at {}: {why}", path.display()),
        ConsoleLog::None => "this backend keeps no console log of the guest".to_string(),
    }
}

/// Reports progress lines (stderr in the binaries).
pub type Progress<'a> = &'a mut dyn FnMut(&str);

/// The signal that asked this process to stop, if any (set by the binary's handler).
#[derive(Debug, Clone, Default)]
pub struct Interrupt(Arc<AtomicI32>);

impl Interrupt {
    pub fn flag(&self) -> Arc<AtomicI32> {
        Arc::clone(&self.0)
    }

    pub fn check(&self) -> Result<(), VerbError> {
        match self.0.load(Ordering::SeqCst) {
            0 => Ok(()),
            signal => Err(VerbError::Interrupted(signal)),
        }
    }
}

/// The VM database at `path` with db.yaml's VMID base and lock bound; `lock_wait`
/// gives the rest of the wait (the interrupt, where the notice goes).
pub fn database(path: PathBuf, config: &DbConfig, lock_wait: LockWait) -> VmDatabase {
    let lock_wait = LockWait { timeout: config.db_lock_timeout, ..lock_wait };
    VmDatabase::new(path, config.vmid_range.map_or(0, |r| r.start)).with_lock_wait(lock_wait)
}

/// Everything a verb works with: the host's paths and configuration, the active
/// backend, and the VM database that goes with it.
pub struct Session {
    pub paths: HostPaths,
    pub config: DbConfig,
    pub backend: Backend,
    pub db: VmDatabase,
    /// Set by the binary's signal handler (create's); waits for the database lock end on it.
    pub interrupt: Interrupt,
    /// How often a long wait (the guest agent, a graceful stop) is told.
    pub notice_every: Duration,
}

impl Session {
    /// Selects and opens the provider; `config_required` makes a missing db.yaml an error.
    pub fn open(paths: HostPaths, mock_flag: bool, config_required: bool) -> Result<Self, VerbError> {
        let module = registry::select(&paths, mock_flag)?;
        let config = DbConfig::load(&paths, config_required)?;
        let backend = (module.open)(&OpenContext { paths: &paths, config: &config })?;
        let db_path = match backend.private_state_dir() {
            Some(dir) => dir.join("vms.json"),
            None => paths.host(&config.db_file),
        };
        let interrupt = Interrupt::default();
        let db = database(db_path, &config, LockWait { interrupt: interrupt.flag(), ..LockWait::default() });
        Ok(Self { paths, config, backend, db, interrupt, notice_every: wait_notice::DEFAULT_EVERY })
    }

    /// Where per-VM host state lives (the backend's own directory for the mock).
    pub fn state_dir(&self) -> PathBuf {
        self.backend.private_state_dir().map_or_else(|| self.paths.state_dir(), PathBuf::from)
    }

    pub fn metrics_dir(&self) -> PathBuf {
        self.state_dir().join("metrics")
    }
}
