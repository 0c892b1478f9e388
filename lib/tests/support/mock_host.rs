//! A scratch host root for in-process verb tests on the mock backend: the
//! config files a BlockHost host has, a session opened as the binaries open
//! it, the mock's knobs file, and readers of the state the verbs leave behind
//! (the mock's `vms.json`, its per-VM files, the metrics cache).
//!
//! Every direct access to the session's backend is in [`backend_vm`], so a
//! change of how the session holds its provider touches one function.

#![allow(dead_code)]

use provisioner::host::paths::HostPaths;
use provisioner::provider::VmInfo;
use provisioner::verbs::create::{self, CreateArgs, CreateResult};
use provisioner::verbs::{Interrupt, Session, VerbError};
use serde_json::Value;
use std::path::PathBuf;

pub const WALLET: &str = "0x1234567890abcdef1234567890abcdef12345678";

/// db.yaml of the default host: a small pool, gateway .1, first address .10.
pub const DB_YAML: &str = "ip_pool: {network: 10.0.0.0/24, start: 10, end: 13, gateway: 10.0.0.1}\n";

pub struct Host {
    tmp: tempfile::TempDir,
    pub paths: HostPaths,
}

impl Host {
    pub fn new() -> Self {
        Self::with_db_yaml(DB_YAML)
    }

    pub fn with_db_yaml(yaml: &str) -> Self {
        let tmp = tempfile::tempdir().unwrap();
        let paths = HostPaths::with_root(tmp.path());
        std::fs::create_dir_all(paths.config_dir()).unwrap();
        std::fs::write(paths.config_file("db.yaml"), yaml).unwrap();
        std::fs::write(paths.config_file("network-mode"), "broker\n").unwrap();
        std::fs::create_dir_all(paths.run_dir()).unwrap();
        Self { tmp, paths }
    }

    /// Opens a session as the binaries do with `--mock` (knobs are read now).
    pub fn session(&self) -> Session {
        Session::open(self.paths.clone(), true, false).unwrap()
    }

    /// The mock's own directory (its VMs, its database, its knobs).
    pub fn mock_dir(&self) -> PathBuf {
        self.paths.state_dir().join("mock")
    }

    /// Writes the mock's knobs file; sessions opened afterwards obey it.
    pub fn knobs(&self, yaml: &str) {
        std::fs::create_dir_all(self.mock_dir()).unwrap();
        std::fs::write(self.mock_dir().join("knobs.yaml"), yaml).unwrap();
    }

    pub fn write_config(&self, file: &str, text: &str) {
        std::fs::write(self.paths.config_file(file), text).unwrap();
    }

    pub fn db_path(&self) -> PathBuf {
        self.mock_dir().join("vms.json")
    }

    /// The whole `vms.json` as the verbs left it (an empty object when absent).
    pub fn db(&self) -> Value {
        match std::fs::read_to_string(self.db_path()) {
            Ok(text) => serde_json::from_str(&text).unwrap(),
            Err(_) => serde_json::json!({}),
        }
    }

    /// Rewrites `vms.json` (a fixture: expiries in the past, journal entries of dead creates).
    pub fn edit_db(&self, change: impl FnOnce(&mut Value)) {
        let mut db = self.db();
        change(&mut db);
        std::fs::write(self.db_path(), serde_json::to_string_pretty(&db).unwrap()).unwrap();
    }

    pub fn record(&self, name: &str) -> Option<Value> {
        self.db().get("vms").and_then(|v| v.get(name)).cloned()
    }

    pub fn field(&self, name: &str, key: &str) -> Option<String> {
        self.record(name)?.get(key)?.as_str().map(str::to_string)
    }

    pub fn allocated(&self, key: &str) -> Vec<String> {
        self.db()
            .get(key)
            .and_then(Value::as_array)
            .map(|a| a.iter().filter_map(Value::as_str).map(str::to_string).collect())
            .unwrap_or_default()
    }

    pub fn allocated_ips(&self) -> Vec<String> {
        self.allocated("allocated_ips")
    }

    pub fn pending(&self) -> Value {
        self.db().get("pending_creates").cloned().unwrap_or(Value::Null)
    }

    /// The mock's file of one VM (power, throttle, guest users), if it exists.
    pub fn domain(&self, name: &str) -> Option<Value> {
        let text = std::fs::read_to_string(self.mock_dir().join("domains").join(format!("{name}.json"))).ok()?;
        Some(serde_json::from_str(&text).unwrap())
    }

    pub fn seed_dir(&self, name: &str) -> PathBuf {
        self.mock_dir().join("seeds").join(name)
    }

    /// Whether the metrics cache holds a sample of `name`.
    pub fn has_sample(&self, name: &str) -> bool {
        provisioner::host::metrics_cache::Samples::open(&self.mock_dir().join("metrics")).get(name).is_some()
    }

    /// Creates (with `--apply`) a VM with the default arguments.
    pub fn create(&self, name: &str) -> CreateResult {
        create_in(&self.session(), name).unwrap_or_else(|e| panic!("create {name}: {}", e.message()))
    }

    pub fn root(&self) -> &std::path::Path {
        self.tmp.path()
    }
}

pub fn args(name: &str, apply: bool) -> CreateArgs {
    CreateArgs {
        name: name.into(),
        owner_wallet: WALLET.into(),
        cpu: 1,
        memory_mib: 512,
        disk_gib: 5,
        apply,
        cloud_init_content: None,
        nft_token_id: None,
        expiry_days: 30,
        username: "admin".into(),
    }
}

pub fn create_in(session: &Session, name: &str) -> Result<CreateResult, create::CreateFailure> {
    run_create(session, &args(name, true))
}

pub fn run_create(session: &Session, args: &CreateArgs) -> Result<CreateResult, create::CreateFailure> {
    run_create_with(session, args, &Interrupt::default())
}

pub fn run_create_with(session: &Session, args: &CreateArgs, interrupt: &Interrupt) -> Result<CreateResult, create::CreateFailure> {
    create::run(session, args, interrupt, &mut |_: &str| {})
}

/// The backend's view of one VM: the only place the tests reach the provider directly.
pub fn backend_vm(session: &Session, name: &str) -> Option<VmInfo> {
    session.backend.get(name).expect("the mock backend answers get")
}

/// A past instant in the database's timestamp format.
pub fn days_ago(days: i64) -> String {
    stamp(chrono::Utc::now() - chrono::Duration::days(days))
}

pub fn days_ahead(days: i64) -> String {
    stamp(chrono::Utc::now() + chrono::Duration::days(days))
}

pub fn stamp(t: chrono::DateTime<chrono::Utc>) -> String {
    provisioner::host::timestamp::format(&t)
}

pub fn parse_time(text: &str) -> chrono::DateTime<chrono::Utc> {
    provisioner::host::timestamp::parse(text).unwrap_or_else(|| panic!("not a timestamp: {text}"))
}

/// Drops progress lines.
pub fn quiet() -> impl FnMut(&str) {
    |_line: &str| {}
}

pub fn is_usage(e: &VerbError) -> bool {
    matches!(e, VerbError::Usage(_))
}
