//! The Proxmox VE backend as a [`Provider`]: VMs are found by name across the
//! cluster in one `/cluster/resources` call. Power states map from that
//! listing's `status`: `running` is running, `stopped` is shut off, anything
//! else (a node that does not answer shows `unknown`) is other; a paused
//! guest still shows `running` there. Throttles are VM config (see
//! `throttle`). Not implemented, and so not declared: snapshots, hibernation. Metrics come from the same listing: the CPU
//! in use now (`cpu_busy`, as it carries no cumulative CPU time), memory,
//! disk and network counters, and no in-guest figures.

use super::client::{segment, Client};
use super::config::ProxmoxConfig;
use super::placement;
use super::routes;
use super::seed::Seeds;
use super::spawn::Spawn;
use super::throttle;
use super::vms::{Cluster, Located, Power};
use crate::host::cloud_init::nocloud_seed;
use crate::host::config::VmidRange;
use crate::host::paths::HostPaths;
use crate::host::root_agent::RootAgent;
use crate::provider::host_route::{self, HostRoute};
use crate::provider::module::{OpenContext, ProviderModule};
use crate::provider::*;
use std::cell::OnceCell;

pub const MODULE: ProviderModule = ProviderModule { name: "proxmox", display_name: "Proxmox VE (REST API) + cloud-init", open };

/// Where a VMID is picked when neither the VM database nor db.yaml names one.
const ANY_VMID: VmidRange = VmidRange { start: 100, end: 999_999_999 };

/// How long a host route request to the root agent may take.
const ROOT_AGENT_TIMEOUT: Duration = Duration::from_secs(30);

fn open(ctx: &OpenContext) -> Result<Backend, ProviderError> {
    let config = ProxmoxConfig::load(ctx.paths, ctx.config).map_err(|e| ProviderError::new(ErrorCode::InvalidSpec, e.to_string()))?;
    let vmid_range = ctx.config.vmid_range.unwrap_or(ANY_VMID);
    let root_agent = RootAgent::new(ctx.paths, ROOT_AGENT_TIMEOUT);
    Ok(Backend::new(Box::new(ProxmoxProvider { config, vmid_range, paths: ctx.paths.clone(), root_agent, client: OnceCell::new() })))
}

pub struct ProxmoxProvider {
    config: ProxmoxConfig,
    vmid_range: VmidRange,
    paths: HostPaths,
    root_agent: RootAgent,
    /// Made on first use (it reads the token), so that verbs that need no
    /// hypervisor work without one.
    client: OnceCell<Client>,
}

impl ProxmoxProvider {
    fn client(&self) -> Result<&Client, ProviderError> {
        if let Some(client) = self.client.get() {
            return Ok(client);
        }
        let client = self.config.client()?;
        Ok(self.client.get_or_init(|| client))
    }

    fn cluster(&self) -> Result<Cluster<'_>, ProviderError> {
        Ok(Cluster::new(self.client()?))
    }

    fn seeds(&self) -> Result<Seeds<'_>, ProviderError> {
        Ok(Seeds::new(self.client()?, &self.config.iso_storage))
    }

    /// The VM's IPv6 host route on this host, when it has one (`None` for
    /// a VM that is gone).
    fn route(&self, name: &str) -> Result<Option<HostRoute>, ProviderError> {
        match self.cluster()?.find(name)? {
            Some(vm) => self.route_of(&vm),
            None => Ok(None),
        }
    }

    fn route_of(&self, vm: &Located) -> Result<Option<HostRoute>, ProviderError> {
        let config = self.client()?.get(&format!("/nodes/{}/qemu/{}/config", segment(&vm.node), vm.vmid), &[])?;
        Ok(routes::of_config(&self.paths, &config))
    }
}

impl Provider for ProxmoxProvider {
    fn name(&self) -> &'static str {
        MODULE.name
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities {
            guest_agent: true,
            metrics: true,
            throttle: true,
            persistent_throttle: true,
            multi_host: true,
            idempotent_spawn: true,
            ..Capabilities::default()
        }
    }

    /// The API answers and takes the token.
    fn detect(&self) -> Result<(), ProviderError> {
        let url = &self.config.connection.url;
        self.client()
            .and_then(|c| c.get("/version", &[]))
            .map(|_| ())
            .map_err(|e| ProviderError::new(e.code, format!("Proxmox VE API at {url}: {}", e.message)))
    }

    /// The template exists and has a disk to clone, and a node where its
    /// clone can go has `bridge` up.
    fn preflight(&self, bridge: &str, _warn: &mut dyn FnMut(&str)) -> Vec<ProviderError> {
        let placed = self.client().and_then(|c| placement::node_for_new_vm(c, &placement::template(c, self.config.template_vmid)?, bridge));
        placed.err().into_iter().collect()
    }

    fn get(&self, name: &str) -> Result<Option<VmInfo>, ProviderError> {
        Ok(self.cluster()?.find(name)?.map(|vm| vm.info))
    }

    fn list(&self) -> Result<Vec<VmInfo>, ProviderError> {
        Ok(self.cluster()?.list()?.into_iter().map(|vm| vm.info).collect())
    }

    /// Uploads the seed ISO to the node the VM will go to (where an earlier
    /// staging put it, else where placement says).
    fn stage_bootstrap(&self, name: &str, bootstrap: &Bootstrap) -> Result<(), ProviderError> {
        let iso = nocloud_seed(bootstrap)
            .map_err(|e| ProviderError::new(ErrorCode::InvalidSpec, format!("seed ISO of {name}: {e}")))?
            .into_iter()
            .find_map(|(file, data)| (file == "cidata.iso").then_some(data))
            .ok_or_else(|| ProviderError::new(ErrorCode::Internal, format!("seed of {name}: no ISO")))?;
        let seeds = self.seeds()?;
        let node = match seeds.find_usable(name)?.into_iter().next() {
            Some(staged) => staged.node,
            None => placement::node_for_new_vm(self.client()?, &placement::template(self.client()?, self.config.template_vmid)?, &self.config.bridge)?,
        };
        seeds.upload(name, &node, &iso).map(|_| ())
    }

    /// Spawning an existing name returns it when it has the spec's CPUs and
    /// memory, else a conflict.
    fn spawn(&self, spec: &VmSpec) -> Result<VmInfo, ProviderError> {
        let client = self.client()?;
        if let Some(vm) = Cluster::new(client).find(&spec.name)? {
            if (vm.info.vcpus, vm.info.memory_mib) == (spec.vcpus, spec.memory_mib) {
                return Ok(vm.info);
            }
            return Err(ProviderError::new(
                ErrorCode::Conflict,
                format!("VM {} exists (VMID {}) with {} vCPUs and {} MiB, not {} and {}", spec.name, vm.vmid, vm.info.vcpus, vm.info.memory_mib, spec.vcpus, spec.memory_mib),
            ));
        }
        let seeds = self.seeds()?;
        // None on a node that is up: the strict search says whether a node that is down may hold it.
        let staged = match seeds.find_usable(&spec.name)?.into_iter().next() {
            Some(seed) => Some(seed),
            None => seeds.find(&spec.name)?.into_iter().next(),
        };
        let seed = staged.ok_or_else(|| {
            ProviderError::new(ErrorCode::InvalidSpec, format!("no seed ISO staged for {} on storage {}", spec.name, self.config.iso_storage))
        })?;
        let spawn = Spawn {
            client,
            template: placement::template(client, self.config.template_vmid)?,
            storage: &self.config.storage,
            bridge: &self.config.bridge,
            vmid_range: self.vmid_range,
        };
        Ok(spawn.run(spec, &seed)?.info)
    }

    /// Stops and deletes the VM with its disks, then its seed on every node
    /// and its host route.
    fn terminate(&self, name: &str) -> Result<(), ProviderError> {
        // A VM whose config cannot be read is on a node that cannot delete it either.
        let route = self.route(name)?;
        self.cluster()?.destroy(name)?;
        let seeds = self.seeds()?;
        for seed in seeds.find(name)? {
            seeds.remove(&seed)?;
        }
        if let Some(route) = route {
            host_route::remove(&self.root_agent, &routes::ACTIONS, name, &route);
        }
        Ok(())
    }

    fn leftovers(&self, name: &str) -> Result<Vec<String>, ProviderError> {
        let mut left: Vec<String> = self.cluster()?.find(name)?.map(|vm| format!("VM {} ({name}) on node {}", vm.vmid, vm.node)).into_iter().collect();
        left.extend(self.seeds()?.find(name)?.into_iter().map(|s| format!("seed ISO {} on node {}", s.volid, s.node)));
        Ok(left)
    }

    fn start(&self, name: &str) -> Result<(), ProviderError> {
        let cluster = self.cluster()?;
        let vm = cluster.find(name)?.ok_or_else(|| ProviderError::not_found(name))?;
        cluster.power_vm(&vm, Power::Start)?;
        // The VM runs: a route that cannot be found out is a warning, as one the root agent refuses.
        match self.route_of(&vm) {
            Ok(Some(route)) => host_route::add(&self.root_agent, &routes::ACTIONS, name, &route),
            Ok(None) => {}
            Err(e) => {
                use std::io::Write as _;
                let _ = writeln!(std::io::stderr(), "warning: host route of {name}: {}", e.message);
            }
        }
        Ok(())
    }

    fn shutdown(&self, name: &str) -> Result<(), ProviderError> {
        self.cluster()?.power(name, Power::Shutdown)
    }

    fn power_off(&self, name: &str) -> Result<(), ProviderError> {
        self.cluster()?.power(name, Power::Stop)
    }

    fn restore_host_state(&self, name: &str) -> Result<Vec<String>, ProviderError> {
        match self.route(name)? {
            Some(route) => host_route::restore(&self.root_agent, &routes::ACTIONS, name, &route),
            None => Ok(Vec::new()),
        }
    }

    fn guest_ping(&self, name: &str) -> Result<bool, ProviderError> {
        self.cluster()?.guest_ping(name)
    }

    fn guest_exec(&self, name: &str, command: &str, timeout: Duration) -> Result<ExecOutput, ProviderError> {
        self.cluster()?.guest_exec(name, command, timeout)
    }

    fn stats(&self, names: Option<&[String]>) -> Result<Vec<RawStats>, ProviderError> {
        let stats = self.cluster()?.stats()?;
        Ok(stats.into_iter().filter(|s| names.is_none_or(|n| n.contains(&s.name))).collect())
    }

    fn throttle(&self, name: &str, change: &ThrottleChange) -> Result<(), ProviderError> {
        let client = self.client()?;
        let vm = Cluster::new(client).find(name)?.ok_or_else(|| ProviderError::not_found(name))?;
        throttle::apply(client, &vm, change)
    }
}
