//! The deterministic mock backend, enabled only on explicit request. Its VMs,
//! its own VM database and its caches live in files under its state directory
//! (`<root>/var/lib/blockhost/mock`, or the user's data directory when no root
//! is given), never in the production database. See `knobs` for fault injection.

mod guest;
mod knobs;
mod store;
mod template;

use super::module::{OpenContext, ProviderModule};
use super::rng::{fraction, SplitMix64};
use super::*;
use crate::host::cloud_init::nocloud_seed;
use crate::host::io_words::io_words;
use crate::host::paths::HostPaths;
use crate::host::process::ProcessId;
use knobs::Knobs;
use std::cell::RefCell;
use faults::FaultPlan;
use std::path::{Path, PathBuf};
use store::{now_ms, MockPower, MockThrottle, MockVm, Store};
pub use template::build_template;

pub const MODULE: ProviderModule =
    ProviderModule { name: "mock", display_name: "Mock backend (deterministic, for tests and demos)", open };

/// The mock behind the fault injector its knobs configure, with its own state directory.
fn open(ctx: &OpenContext) -> Result<Backend, ProviderError> {
    let dir = state_dir(ctx.paths);
    let (knobs, faults) = load_knobs(&dir)?;
    let provider = MockProvider { store: Store::open(&dir)?, rng: RefCell::new(SplitMix64::new(knobs.seed)), knobs };
    provider.apply_named_drift()?;
    Ok(Backend::new(Box::new(provider)).with_faults(faults).with_private_state(dir))
}

fn load_knobs(dir: &Path) -> Result<(Knobs, FaultPlan), ProviderError> {
    knobs::load(dir).map_err(|e| ProviderError::new(ErrorCode::InvalidSpec, e.to_string()))
}

/// `<root>/var/lib/blockhost/mock` with an explicit root, else the user's data directory.
pub fn state_dir(paths: &HostPaths) -> PathBuf {
    if paths.is_explicit() {
        return paths.state_dir().join("mock");
    }
    directories::ProjectDirs::from("org", "blockhost", "blockhost-provisioner")
        .map_or_else(|| paths.state_dir().join("mock"), |d| d.data_dir().join("mock"))
}

struct MockProvider {
    store: Store,
    knobs: Knobs,
    rng: RefCell<SplitMix64>,
}

impl MockProvider {
    fn cpu_load(&self, vm: &MockVm) -> f64 {
        let load = 0.05 + 0.25 * fraction(self.knobs.seed, &vm.name, "cpu");
        vm.throttle.cpu_quota_percent.map_or(load, |q| load.min(q as f64 / 100.0))
    }

    fn cpu_ns(&self, vm: &MockVm, now: u64) -> u64 {
        let running_ms = vm.booted_at_ms.map_or(0, |b| now.saturating_sub(b));
        vm.cpu_ns_before_boot + (running_ms as f64 * 1e6 * f64::from(vm.vcpus) * self.cpu_load(vm)) as u64
    }

    fn power_down(&self, vm: &mut MockVm, now: u64) {
        vm.cpu_ns_before_boot = self.cpu_ns(vm, now);
        vm.booted_at_ms = None;
        vm.shutdown_requested_ms = None;
        vm.power = MockPower::ShutOff;
    }

    /// Applies a requested graceful shutdown once the guest has had its time.
    fn settle(&self, mut vm: MockVm, now: u64) -> MockVm {
        if let Some(requested) = vm.shutdown_requested_ms {
            if !self.knobs.acpi_ignored && now >= requested + self.knobs.shutdown_delay_ms {
                self.power_down(&mut vm, now);
            }
        }
        vm
    }

    fn load(&self, name: &str) -> Result<MockVm, ProviderError> {
        let vm = self.store.load(name)?.ok_or_else(|| ProviderError::not_found(name))?;
        Ok(self.settle(vm, now_ms()))
    }

    /// Loads, changes and saves one VM under the mutation lock.
    fn modify(&self, name: &str, change: impl FnOnce(&mut MockVm, u64) -> Result<(), ProviderError>) -> Result<(), ProviderError> {
        let _lock = self.store.lock()?;
        let mut vm = self.load(name)?;
        change(&mut vm, now_ms())?;
        self.store.save(&vm)
    }

    /// The simulated host's free memory: the knob, else what running VMs leave.
    fn free_memory_mib(&self) -> Result<u64, ProviderError> {
        if let Some(free) = self.knobs.host.free_memory_mib {
            return Ok(free);
        }
        let taken: u64 = self.store.load_all()?.iter().filter(|vm| vm.power != MockPower::ShutOff).map(|vm| vm.memory_mib).sum();
        Ok(self.knobs.host.memory_mib.saturating_sub(taken))
    }

    fn info(vm: &MockVm) -> VmInfo {
        VmInfo { name: vm.name.clone(), state: vm.power.into(), vcpus: vm.vcpus, memory_mib: vm.memory_mib }
    }

    fn agent_answers(&self, vm: &MockVm, now: u64) -> bool {
        !self.knobs.agent_dead
            && vm.power == MockPower::Running
            && vm.booted_at_ms.is_some_and(|b| now >= b + self.knobs.agent_delay_ms)
    }

    fn apply_named_drift(&self) -> Result<(), ProviderError> {
        for (kind, name) in &self.knobs.drift {
            let _lock = self.store.lock()?;
            let Some(vm) = self.store.load(name)? else { continue };
            let (now, mut vm) = (now_ms(), self.settle(vm, now_ms()));
            match kind.as_str() {
                "vanish" => self.store.remove(name)?,
                "stop" => {
                    self.power_down(&mut vm, now);
                    self.store.save(&vm)?;
                }
                "reboot" => {
                    self.power_down(&mut vm, now);
                    vm.host_route = false;
                    self.store.save(&vm)?;
                }
                "pause" => {
                    vm.power = MockPower::Paused;
                    self.store.save(&vm)?;
                }
                _ => {
                    if vm.power != MockPower::Running {
                        vm.power = MockPower::Running;
                        vm.booted_at_ms = Some(now);
                        self.store.save(&vm)?;
                    }
                }
            }
        }
        Ok(())
    }

    /// With probability `drift_rate`, one VM stops or vanishes behind our back.
    fn random_drift(&self, vms: &mut Vec<MockVm>) -> Result<(), ProviderError> {
        if vms.is_empty() || self.knobs.drift_rate <= 0.0 || self.rng.borrow_mut().next_f64() >= self.knobs.drift_rate {
            return Ok(());
        }
        let mut rng = self.rng.borrow_mut();
        let index = (rng.next_u64() % vms.len() as u64) as usize;
        let _lock = self.store.lock()?;
        if rng.next_u64().is_multiple_of(2) {
            self.store.remove(&vms.remove(index).name)
        } else {
            self.power_down(&mut vms[index], now_ms());
            self.store.save(&vms[index])
        }
    }

    fn raw_stats(&self, vm: &MockVm, now: u64) -> RawStats {
        let up_s = vm.booted_at_ms.map_or(0, |b| now.saturating_sub(b)) / 1000;
        let f = |purpose| fraction(self.knobs.seed, &vm.name, purpose);
        let mem_total_kib = vm.memory_mib * 1024;
        let running = vm.power == MockPower::Running;
        RawStats {
            name: vm.name.clone(),
            state: Some(vm.power.into()),
            vcpus: vm.vcpus,
            cpu_time_ns: self.cpu_ns(vm, now),
            cpu_busy: None,
            memory_total_kib: mem_total_kib,
            memory_used_kib: if running { (mem_total_kib as f64 * (0.3 + 0.3 * f("mem"))) as u64 } else { 0 },
            disk_capacity_bytes: vm.disk_gib << 30,
            disk_rd_reqs: up_s * 40,
            disk_wr_reqs: up_s * 25,
            disk_rd_bytes: up_s * 40 * 4096,
            disk_wr_bytes: up_s * 25 * 8192,
            net_rx_bytes: up_s * (2000 + (f("rx") * 8000.0) as u64),
            net_tx_bytes: up_s * (1000 + (f("tx") * 4000.0) as u64),
            guest: self.agent_answers(vm, now).then(|| GuestStats {
                root_used_bytes: Some((1200 + (f("disk") * 800.0) as u64) << 20),
                uptime_seconds: Some(up_s),
                net_connections: Some(1 + (f("conn") * 6.0) as u64),
            }),
            instance: self.knobs.qemu_pid.filter(|_| running).and_then(ProcessId::of),
        }
    }
}

fn set_limit(slot: &mut Option<u64>, limit: Option<Limit>) {
    match limit {
        Some(Limit::Set(v)) => *slot = Some(v),
        Some(Limit::Unlimited) => *slot = None,
        None => {}
    }
}

impl Provider for MockProvider {
    fn name(&self) -> &'static str {
        MODULE.name
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities {
            guest_agent: true,
            metrics: true,
            throttle: true,
            persistent_throttle: true,
            idempotent_spawn: true,
            ..Capabilities::default()
        }
    }

    fn detect(&self) -> Result<(), ProviderError> {
        Ok(())
    }

    fn host_capacity(&self) -> Result<Option<HostCapacity>, ProviderError> {
        let vms = self.store.load_all()?;
        let running = || vms.iter().filter(|vm| vm.power != MockPower::ShutOff);
        Ok(Some(HostCapacity {
            cpus: self.knobs.host.cpus,
            memory_total_mib: self.knobs.host.memory_mib,
            memory_free_mib: Some(self.free_memory_mib()?),
            running_vcpus: running().map(|vm| u64::from(vm.vcpus)).sum(),
            running_memory_mib: running().map(|vm| vm.memory_mib).sum(),
            disk_dir: self.store.dir().to_path_buf(),
            disk_free_bytes: self.knobs.host.disk_free_gib << 30,
            // Nothing is written to a mock disk: each may still grow to its size.
            disk_growth_bytes: vms.iter().map(|vm| vm.disk_gib << 30).sum(),
        }))
    }

    fn get(&self, name: &str) -> Result<Option<VmInfo>, ProviderError> {
        match self.load(name) {
            Ok(vm) => Ok(Some(Self::info(&vm))),
            Err(e) if e.code == ErrorCode::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }

    fn list(&self) -> Result<Vec<VmInfo>, ProviderError> {
        let now = now_ms();
        let mut vms: Vec<MockVm> = self.store.load_all()?.into_iter().map(|vm| self.settle(vm, now)).collect();
        self.random_drift(&mut vms)?;
        Ok(vms.iter().map(Self::info).collect())
    }

    fn stage_bootstrap(&self, name: &str, bootstrap: &Bootstrap) -> Result<(), ProviderError> {
        let dir = self.store.seed_dir(name);
        let fail = |e: std::io::Error| {
            let code = if e.kind() == std::io::ErrorKind::StorageFull { ErrorCode::Capacity } else { ErrorCode::Internal };
            ProviderError::new(code, format!("writing the seed of {name} to {}: {}", dir.display(), io_words(&e)))
        };
        if self.knobs.storage_full {
            return Err(fail(std::io::Error::from_raw_os_error(libc::ENOSPC)));
        }
        crate::host::shared_dir::create(&dir).map_err(fail)?;
        let seed = nocloud_seed(bootstrap).map_err(|e| ProviderError::new(ErrorCode::InvalidSpec, e.to_string()))?;
        for (file, data) in &seed {
            crate::host::atomic::write_atomic(&dir.join(file), data, 0o640).map_err(fail)?;
        }
        Ok(())
    }

    fn spawn(&self, spec: &VmSpec) -> Result<VmInfo, ProviderError> {
        let _lock = self.store.lock()?;
        if let Some(existing) = self.store.load(&spec.name)? {
            let same = existing.vcpus == spec.vcpus
                && existing.memory_mib == spec.memory_mib
                && existing.disk_gib == spec.disk_gib
                && existing.bootstrap_sha256 == spec.bootstrap.sha256;
            if !same {
                return Err(ProviderError::new(ErrorCode::Conflict, format!("VM {} exists with another spec", spec.name)));
            }
            return Ok(Self::info(&self.settle(existing, now_ms())));
        }
        let template = std::fs::read_link(self.store.dir().join("templates/current"))
            .ok()
            .map(|t| t.to_string_lossy().into_owned());
        let vm = MockVm {
            name: spec.name.clone(),
            power: MockPower::ShutOff,
            vcpus: spec.vcpus,
            memory_mib: spec.memory_mib,
            disk_gib: spec.disk_gib,
            ipv4: spec.nic.as_ref().map(|n| n.ipv4.to_string()),
            ipv6: spec.nic.as_ref().and_then(|n| n.ipv6).map(|v| v.to_string()),
            bootstrap_format: spec.bootstrap.format.as_str().to_string(),
            bootstrap_sha256: spec.bootstrap.sha256.clone(),
            template,
            booted_at_ms: None,
            shutdown_requested_ms: None,
            cpu_ns_before_boot: 0,
            throttle: MockThrottle::default(),
            users: guest::users_from_user_data(&spec.bootstrap.user_data),
            host_route: false,
        };
        self.store.save(&vm)?;
        Ok(Self::info(&vm))
    }

    fn terminate(&self, name: &str) -> Result<(), ProviderError> {
        let _lock = self.store.lock()?;
        self.store.remove(name)
    }

    fn leftovers(&self, name: &str) -> Result<Vec<String>, ProviderError> {
        Ok(self.store.files_of(name).iter().map(|p| p.display().to_string()).collect())
    }

    fn start(&self, name: &str) -> Result<(), ProviderError> {
        let free = self.free_memory_mib()?;
        self.modify(name, |vm, now| {
            if vm.power == MockPower::ShutOff && vm.memory_mib > free {
                return Err(ProviderError::memory_refused(name, vm.memory_mib, Some(free)));
            }
            if vm.power != MockPower::Running {
                vm.power = MockPower::Running;
                vm.booted_at_ms = Some(now);
            }
            vm.shutdown_requested_ms = None;
            vm.host_route = vm.ipv6.is_some();
            Ok(())
        })
    }

    fn shutdown(&self, name: &str) -> Result<(), ProviderError> {
        self.modify(name, |vm, now| {
            if vm.power != MockPower::Running {
                return Err(ProviderError::new(ErrorCode::Conflict, format!("VM {} is not running", vm.name)));
            }
            vm.shutdown_requested_ms.get_or_insert(now);
            Ok(())
        })
    }

    fn power_off(&self, name: &str) -> Result<(), ProviderError> {
        self.modify(name, |vm, now| {
            if vm.power != MockPower::ShutOff {
                self.power_down(vm, now);
            }
            Ok(())
        })
    }

    fn restore_host_state(&self, name: &str) -> Result<Vec<String>, ProviderError> {
        let mut restored = Vec::new();
        self.modify(name, |vm, _| {
            if let (Some(ipv6), false) = (&vm.ipv6, vm.host_route) {
                restored.push(format!("host route {ipv6}/128"));
                vm.host_route = true;
            }
            Ok(())
        })?;
        Ok(restored)
    }

    fn guest_ping(&self, name: &str) -> Result<bool, ProviderError> {
        Ok(self.agent_answers(&self.load(name)?, now_ms()))
    }

    fn guest_exec(&self, name: &str, command: &str, _timeout: std::time::Duration) -> Result<ExecOutput, ProviderError> {
        let _lock = self.store.lock()?;
        let mut vm = self.load(name)?;
        if vm.power != MockPower::Running {
            return Err(ProviderError::new(ErrorCode::Conflict, format!("VM {name} is not running")));
        }
        if !self.agent_answers(&vm, now_ms()) {
            return Err(ProviderError::new(ErrorCode::Unavailable, format!("the guest agent of VM {name} is not responding")));
        }
        let before = vm.users.clone();
        let out = guest::run(command, name, &mut vm.users);
        if vm.users != before {
            self.store.save(&vm)?;
        }
        Ok(out)
    }

    fn stats(&self, names: Option<&[String]>) -> Result<Vec<RawStats>, ProviderError> {
        let now = now_ms();
        Ok(self
            .store
            .load_all()?
            .into_iter()
            .filter(|vm| names.is_none_or(|n| n.contains(&vm.name)))
            .map(|vm| self.raw_stats(&self.settle(vm, now), now))
            .collect())
    }

    fn throttle(&self, name: &str, change: &ThrottleChange) -> Result<(), ProviderError> {
        self.modify(name, |vm, _| {
            let t = &mut vm.throttle;
            if let Some(shares) = change.cpu_shares {
                t.cpu_shares = shares;
            }
            set_limit(&mut t.cpu_quota_percent, change.cpu_quota_percent);
            set_limit(&mut t.bandwidth_in_kbps, change.bandwidth_in_kbps);
            set_limit(&mut t.bandwidth_out_kbps, change.bandwidth_out_kbps);
            set_limit(&mut t.iops_read, change.iops_read);
            set_limit(&mut t.iops_write, change.iops_write);
            Ok(())
        })
    }
}
