//! Backend-neutral descriptions of VMs, their state, statistics and settings:
//! the value types `host/` and `provider/` share. Imports nothing of the crate.

use std::path::PathBuf;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PowerState {
    Running,
    Paused,
    /// Guest-initiated suspend to RAM or disk.
    Suspended,
    ShutOff,
    Crashed,
    Other,
}

impl PowerState {
    /// The contract's status word for a VM that exists.
    pub fn status_word(self) -> &'static str {
        match self {
            Self::Running => "active",
            Self::Paused | Self::Suspended | Self::ShutOff => "suspended",
            Self::Crashed | Self::Other => "unknown",
        }
    }

    /// The `state` field of metrics.
    pub fn metrics_word(self) -> &'static str {
        match self {
            Self::Running => "running",
            Self::Paused | Self::Suspended => "paused",
            Self::ShutOff | Self::Crashed => "stopped",
            Self::Other => "unknown",
        }
    }

    pub fn is_off(self) -> bool {
        matches!(self, Self::ShutOff | Self::Crashed)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VmInfo {
    pub name: String,
    pub state: PowerState,
    pub vcpus: u32,
    pub memory_mib: u64,
}

/// What the host has for one more VM, as a create's preflight weighs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostCapacity {
    pub cpus: u64,
    pub memory_total_mib: u64,
    /// Memory the host can give without swapping (free, buffers and page
    /// cache); `None` when the hypervisor cannot tell.
    pub memory_free_mib: Option<u64>,
    /// vCPUs and memory of every running VM of the hypervisor, ours or not.
    pub running_vcpus: u64,
    pub running_memory_mib: u64,
    /// The file system the VMs' disks are created on.
    pub disk_dir: PathBuf,
    pub disk_free_bytes: u64,
    /// How much the existing thin disks there may still grow: their sizes
    /// less what they already take.
    pub disk_growth_bytes: u64,
}

/// The one NIC a VM gets, with static addressing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NicSpec {
    pub bridge: String,
    pub ipv4: std::net::Ipv4Addr,
    pub ipv4_prefix_len: u8,
    pub gateway: Option<std::net::Ipv4Addr>,
    pub ipv6: Option<std::net::Ipv6Addr>,
    pub ipv6_gateway: Option<std::net::Ipv6Addr>,
    pub mac: String,
}

/// Cloud-init NoCloud documents for one VM.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bootstrap {
    pub user_data: String,
    pub meta_data: String,
    pub network_config: String,
    pub format: BootstrapFormat,
    /// SHA-256 (hex) of the user-data.
    pub sha256: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BootstrapFormat {
    /// `#cloud-config` YAML rendered from a template.
    CloudConfig,
    /// Operator-supplied content used verbatim.
    Verbatim,
}

impl BootstrapFormat {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::CloudConfig => "cloud-config",
            Self::Verbatim => "verbatim",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VmSpec {
    pub name: String,
    /// The VMID the create verb reserved in the VM database (db.yaml
    /// `vmid_range`), for a backend whose VMs are numbered (Proxmox VE);
    /// `None` lets such a backend pick a free one. Others ignore it.
    pub vmid: Option<u32>,
    pub vcpus: u32,
    pub memory_mib: u64,
    pub disk_gib: u64,
    pub nic: Option<NicSpec>,
    pub bootstrap: Bootstrap,
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ExecOutput {
    pub exit_code: i32,
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
}

/// Raw counters of one VM; rates are computed by the metrics verb.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct RawStats {
    pub name: String,
    pub state: Option<PowerState>,
    pub vcpus: u32,
    pub cpu_time_ns: u64,
    /// The CPU in use now, in CPUs (1.5: one and a half vCPUs busy), from a
    /// hypervisor that reports a current figure rather than cumulative time
    /// (Proxmox VE); when set, metrics use it instead of `cpu_time_ns`.
    pub cpu_busy: Option<f64>,
    pub memory_total_kib: u64,
    pub memory_used_kib: u64,
    pub disk_capacity_bytes: u64,
    pub disk_rd_reqs: u64,
    pub disk_wr_reqs: u64,
    pub disk_rd_bytes: u64,
    pub disk_wr_bytes: u64,
    pub net_rx_bytes: u64,
    pub net_tx_bytes: u64,
    /// `None` when the guest agent did not answer within its short bound.
    pub guest: Option<GuestStats>,
    /// The host process running the VM (QEMU), when the backend can name it:
    /// while it is alive, a shared sample of these figures may answer for the VM.
    pub instance: Option<ProcessId>,
}

/// A process: its PID and start time, so that a recycled PID is not taken
/// for it (`host::process` reads and checks them).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProcessId {
    pub pid: u32,
    /// Start time in clock ticks since boot (field 22 of `/proc/<pid>/stat`), 0 if unknown.
    pub start_ticks: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct GuestStats {
    pub root_used_bytes: Option<u64>,
    pub uptime_seconds: Option<u64>,
    pub net_connections: Option<u64>,
}

/// A limit that can be set to a value or lifted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Limit {
    Set(u64),
    Unlimited,
}

/// The settings a throttle call changes; `None` leaves a setting as it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ThrottleChange {
    pub cpu_shares: Option<u64>,
    pub cpu_quota_percent: Option<Limit>,
    pub bandwidth_in_kbps: Option<Limit>,
    pub bandwidth_out_kbps: Option<Limit>,
    pub iops_read: Option<Limit>,
    pub iops_write: Option<Limit>,
}

impl ThrottleChange {
    /// The settings a VM is created with.
    pub fn defaults() -> Self {
        Self {
            cpu_shares: Some(1024),
            cpu_quota_percent: Some(Limit::Unlimited),
            bandwidth_in_kbps: Some(Limit::Unlimited),
            bandwidth_out_kbps: Some(Limit::Unlimited),
            iops_read: Some(Limit::Unlimited),
            iops_write: Some(Limit::Unlimited),
        }
    }

    pub fn is_empty(&self) -> bool {
        *self == Self::default()
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TemplateOptions {
    pub force: bool,
    /// Backend-specific source, e.g. `debootstrap` or `image:<path-or-url>`.
    pub source: Option<String>,
    pub suite: Option<String>,
    pub mirror: Option<String>,
    /// Expected SHA-256 or SHA-512 (hex) of a downloaded cloud image.
    pub checksum: Option<String>,
    /// Remove the templates that no VM uses any more (never the current one).
    pub prune: bool,
    /// Build even without libpam-web3 among the template packages.
    pub allow_without_libpam_web3: bool,
}

/// Where a built template landed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TemplateBuild {
    pub path: PathBuf,
    /// False when an up-to-date template was kept (no `--force`).
    pub built: bool,
}

/// The named steps of a create, in order. Faults can be injected at each.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CreateStep {
    Reserve,
    Bootstrap,
    Spawn,
    Start,
    WaitAgent,
    Register,
}

impl CreateStep {
    pub const ALL: [CreateStep; 6] =
        [Self::Reserve, Self::Bootstrap, Self::Spawn, Self::Start, Self::WaitAgent, Self::Register];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Reserve => "reserve",
            Self::Bootstrap => "bootstrap",
            Self::Spawn => "spawn",
            Self::Start => "start",
            Self::WaitAgent => "wait_agent",
            Self::Register => "register",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.as_str() == text)
    }
}
