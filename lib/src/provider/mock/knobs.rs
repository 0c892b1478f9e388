//! The mock's fault and behaviour knobs: `<mock dir>/knobs.yaml`, each key
//! overridable by `BLOCKHOST_MOCK_<KEY>` in the environment. The fault keys
//! become the [`FaultPlan`] of the injector the mock is wrapped in; the others
//! shape the simulated hypervisor and guest.
//!
//! | key | meaning |
//! |---|---|
//! | `seed` | seed of every random choice (default 0) |
//! | `latency_ms` | sleep before every provider call |
//! | `error_rate` | probability (0–1) that a call fails with a retryable `unavailable` error |
//! | `unreachable` | `true`: every call fails as if the hypervisor were down |
//! | `fail_step` | a create step (`reserve`, `bootstrap`, `spawn`, `start`, `wait_agent`, `register`) that fails |
//! | `crash_step` | a create step at which the process kills itself with SIGKILL |
//! | `ambiguous` | comma list of `spawn`, `terminate`, `start`, `shutdown`, `power_off`, `throttle`, `stage_bootstrap`, `restore_host_state`: the action is performed but reported as a timeout; `<op>:lost` reports the timeout without acting |
//! | `drift` | comma list of `vanish:<vm>`, `stop:<vm>`, `start:<vm>`, `pause:<vm>`, `reboot:<vm>` (the host restarted: the VM is off and its IPv6 host route gone; add `start:<vm>` after it for one libvirt autostarted) applied in order when the backend is opened |
//! | `drift_rate` | probability per listing that a random VM stops or vanishes behind our back |
//! | `agent` | `alive` (default) or `dead`: the guest agent never answers |
//! | `agent_delay_ms` | time from boot until the guest agent answers |
//! | `acpi` | `obey` (default) or `ignore`: the guest ignores graceful shutdown |
//! | `shutdown_delay_ms` | time an obeying guest takes to power off after the ACPI request |
//! | `host_cpus` | CPUs of the simulated host (default 64) |
//! | `host_memory_mib` | its memory (default 8 TiB) |
//! | `host_free_memory_mib` | its free memory (default: what the running VMs leave of it); a VM that does not fit in it cannot start |
//! | `host_disk_free_gib` | free space of the VMs' file system (default 64 TiB) |
//! | `storage_full` | `true`: writing a VM's files fails with ENOSPC |
//! | `qemu_pid` | a host process every running VM is said to run as (default none), so that a shared metrics sample may answer for it |

use crate::host::config::ConfigError;
use crate::provider::faults::FaultPlan;
use crate::provider::CreateStep;
use serde_json::Value;
use std::path::Path;

/// The simulated hypervisor's and guest's behaviour.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Knobs {
    pub seed: u64,
    pub drift: Vec<(String, String)>,
    pub drift_rate: f64,
    pub agent_dead: bool,
    pub agent_delay_ms: u64,
    pub acpi_ignored: bool,
    pub shutdown_delay_ms: u64,
    pub host: SimulatedHost,
    pub storage_full: bool,
    pub qemu_pid: Option<u32>,
}

/// The simulated host's size; by default room for the largest VM create's
/// arguments allow.
#[derive(Debug, Clone, PartialEq)]
pub struct SimulatedHost {
    pub cpus: u64,
    pub memory_mib: u64,
    /// `None`: what the running VMs leave.
    pub free_memory_mib: Option<u64>,
    pub disk_free_gib: u64,
}

impl Default for SimulatedHost {
    fn default() -> Self {
        Self { cpus: 64, memory_mib: 8 << 20, free_memory_mib: None, disk_free_gib: 64 << 10 }
    }
}

/// Reads `<dir>/knobs.yaml` and the environment's overrides.
pub fn load(dir: &Path) -> Result<(Knobs, FaultPlan), ConfigError> {
    let path = dir.join("knobs.yaml");
    let file: Value = match std::fs::read_to_string(&path) {
        Ok(text) if !text.trim().is_empty() => serde_saphyr::from_str(&text)
            .map_err(|e| ConfigError::Parse(path.clone(), "YAML", e.to_string().lines().next().unwrap_or("").into()))?,
        Ok(_) => Value::Null,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Value::Null,
        Err(e) => return Err(ConfigError::Io(path, e)),
    };
    let get = |key: &str| -> Option<String> {
        let env = format!("BLOCKHOST_MOCK_{}", key.to_ascii_uppercase());
        std::env::var(env).ok().or_else(|| match file.get(key)? {
            Value::String(s) => Some(s.clone()),
            Value::Array(items) => {
                Some(items.iter().map(|i| i.as_str().map_or_else(|| i.to_string(), str::to_string)).collect::<Vec<_>>().join(","))
            }
            Value::Null => None,
            other => Some(other.to_string()),
        })
    };
    let bad = |key: &str, why: &str| ConfigError::Key(path.clone(), key.into(), why.into());
    let some_uint = |key: &str| -> Result<Option<u64>, ConfigError> {
        get(key).map(|v| v.trim().parse().map_err(|_| bad(key, "must be a non-negative integer"))).transpose()
    };
    let uint = |key: &str| -> Result<u64, ConfigError> { Ok(some_uint(key)?.unwrap_or(0)) };
    let rate = |key: &str| -> Result<f64, ConfigError> {
        get(key).map_or(Ok(0.0), |v| {
            v.trim().parse::<f64>().ok().filter(|r| (0.0..=1.0).contains(r)).ok_or_else(|| bad(key, "must be between 0 and 1"))
        })
    };
    let list = |key: &str| -> Vec<String> {
        get(key).map(|v| v.split(',').map(|s| s.trim().to_string()).filter(|s| !s.is_empty()).collect()).unwrap_or_default()
    };
    let step = |key: &str| -> Result<Option<CreateStep>, ConfigError> {
        match get(key).filter(|s| !s.trim().is_empty()) {
            None => Ok(None),
            Some(s) => CreateStep::parse(s.trim()).map(Some).ok_or_else(|| bad(key, "must name a create step")),
        }
    };
    let ambiguous = list("ambiguous")
        .into_iter()
        .map(|item| match item.split_once(':') {
            Some((op, "lost")) => Ok((op.to_string(), false)),
            None => Ok((item, true)),
            Some(_) => Err(bad("ambiguous", "entries are <op> or <op>:lost")),
        })
        .collect::<Result<_, _>>()?;
    let drift = list("drift")
        .into_iter()
        .map(|item| match item.split_once(':') {
            Some((kind @ ("vanish" | "stop" | "start" | "pause" | "reboot"), vm)) => Ok((kind.to_string(), vm.to_string())),
            _ => Err(bad("drift", "entries are vanish|stop|start|pause|reboot:<vm>")),
        })
        .collect::<Result<_, _>>()?;
    let flag = |key: &str, on: &str, off: &str| -> Result<bool, ConfigError> {
        match get(key).as_deref().map(str::trim) {
            None | Some("") => Ok(false),
            Some(v) if v == on || v == "true" || v == "1" => Ok(true),
            Some(v) if v == off || v == "false" || v == "0" => Ok(false),
            Some(_) => Err(bad(key, &format!("must be {on} or {off}"))),
        }
    };
    let seed = uint("seed")?;
    let faults = FaultPlan {
        seed,
        latency_ms: uint("latency_ms")?,
        error_rate: rate("error_rate")?,
        unreachable: flag("unreachable", "true", "false")?,
        fail_step: step("fail_step")?,
        crash_step: step("crash_step")?,
        ambiguous,
    };
    let knobs = Knobs {
        seed,
        drift,
        drift_rate: rate("drift_rate")?,
        agent_dead: flag("agent", "dead", "alive")?,
        agent_delay_ms: uint("agent_delay_ms")?,
        acpi_ignored: flag("acpi", "ignore", "obey")?,
        shutdown_delay_ms: uint("shutdown_delay_ms")?,
        host: SimulatedHost {
            cpus: some_uint("host_cpus")?.unwrap_or(SimulatedHost::default().cpus),
            memory_mib: some_uint("host_memory_mib")?.unwrap_or(SimulatedHost::default().memory_mib),
            free_memory_mib: some_uint("host_free_memory_mib")?,
            disk_free_gib: some_uint("host_disk_free_gib")?.unwrap_or(SimulatedHost::default().disk_free_gib),
        },
        storage_full: flag("storage_full", "true", "false")?,
        qemu_pid: some_uint("qemu_pid")?.map(|pid| u32::try_from(pid).map_err(|_| bad("qemu_pid", "must be a process ID"))).transpose()?,
    };
    Ok((knobs, faults))
}
