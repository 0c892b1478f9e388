//! VMs across the cluster, the first layer of the backend above the client:
//! finding a VM by name on any node in one call, a VMID checked free
//! cluster-wide, placement on the node with the most free memory, clone and
//! destroy with their ambiguous outcomes settled by reading the cluster back.

use super::client::{segment, Client};
use crate::host::config::VmidRange;
use crate::provider::{ErrorCode, ExecOutput, PowerState, ProviderError, RawStats, VmInfo};
use serde_json::Value;
use std::time::{Duration, Instant};

/// A power action on a VM.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Power {
    Start,
    /// ACPI shutdown request, as the guest is asked to.
    Shutdown,
    /// Immediate power-off.
    Stop,
}

impl Power {
    fn endpoint(self) -> &'static str {
        match self {
            Self::Start => "start",
            Self::Shutdown => "shutdown",
            Self::Stop => "stop",
        }
    }
}

/// A VM as `/cluster/resources` lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Located {
    pub vmid: u32,
    pub node: String,
    pub info: VmInfo,
    /// A config lock (`clone` while a clone runs).
    pub lock: Option<String>,
}

pub struct Cluster<'c> {
    client: &'c Client,
}

/// What a clone makes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CloneRequest<'a> {
    pub template_vmid: u32,
    pub vmid: u32,
    pub name: &'a str,
    pub node: &'a str,
    /// Target storage of a full clone; `None` for a linked clone.
    pub full_clone_storage: Option<&'a str>,
}

impl<'c> Cluster<'c> {
    pub fn new(client: &'c Client) -> Self {
        Self { client }
    }

    /// Every VM of the cluster but templates, in one call.
    pub fn list(&self) -> Result<Vec<Located>, ProviderError> {
        Ok(self.resources()?.into_iter().filter(|r| r["template"].as_u64() != Some(1)).filter_map(|r| located(&r)).collect())
    }

    /// The VM with this name on any node; two of them is a conflict.
    pub fn find(&self, name: &str) -> Result<Option<Located>, ProviderError> {
        let mut found = self.list()?.into_iter().filter(|vm| vm.info.name == name);
        match (found.next(), found.next()) {
            (Some(a), Some(b)) => Err(ProviderError::new(ErrorCode::Conflict, format!("two VMs are named {name} (VMIDs {} and {})", a.vmid, b.vmid))),
            (vm, _) => Ok(vm),
        }
    }

    /// The node a VMID is on (templates included).
    pub fn node_of(&self, vmid: u32) -> Result<Option<String>, ProviderError> {
        Ok(self.resources()?.iter().find(|r| r["vmid"].as_u64() == Some(u64::from(vmid))).and_then(|r| r["node"].as_str().map(str::to_string)))
    }

    /// The first VMID of the range that the cluster does not use and `taken`
    /// (the VM database's records) does not hold.
    pub fn free_vmid(&self, range: VmidRange, taken: &dyn Fn(u32) -> bool) -> Result<u32, ProviderError> {
        let used: Vec<u64> = self.resources()?.iter().filter_map(|r| r["vmid"].as_u64()).collect();
        for vmid in range.start..=range.end {
            let Ok(vmid) = u32::try_from(vmid) else { break };
            if used.contains(&u64::from(vmid)) || taken(vmid) {
                continue;
            }
            // The listing may lag a VM being created right now; nextid asks the cluster's config.
            match self.client.get("/cluster/nextid", &[("vmid", &vmid.to_string())]) {
                Ok(_) => return Ok(vmid),
                Err(e) if e.code == ErrorCode::Conflict => continue,
                Err(e) => return Err(e),
            }
        }
        Err(ProviderError::new(ErrorCode::Capacity, format!("no free VMID in {}-{}", range.start, range.end)))
    }

    /// The online node that `fits` with the most free memory; `None` when
    /// nodes are online but none fits.
    pub fn place(&self, fits: &dyn Fn(&str) -> Result<bool, ProviderError>) -> Result<Option<String>, ProviderError> {
        let nodes = self.client.get("/nodes", &[])?;
        let mut online: Vec<(&str, u64)> = nodes
            .as_array()
            .into_iter()
            .flatten()
            .filter(|n| n["status"] == "online")
            .filter_map(|n| Some((n["node"].as_str()?, n["maxmem"].as_u64().unwrap_or(0).saturating_sub(n["mem"].as_u64().unwrap_or(0)))))
            .collect();
        if online.is_empty() {
            return Err(ProviderError::new(ErrorCode::Unavailable, "no Proxmox VE node is online"));
        }
        online.sort_by_key(|(_, free)| std::cmp::Reverse(*free));
        for (node, _) in online {
            if fits(node)? {
                return Ok(Some(node.to_string()));
            }
        }
        Ok(None)
    }

    /// Clones the template to `request.vmid` on `request.node`. An ambiguous
    /// outcome is settled by reading back: success only when a VM with that
    /// VMID and name exists and holds no lock; never a second clone.
    pub fn clone_template(&self, request: &CloneRequest) -> Result<Located, ProviderError> {
        let source = self
            .node_of(request.template_vmid)?
            .ok_or_else(|| ProviderError::new(ErrorCode::NotFound, format!("template VM {} not found in the cluster", request.template_vmid)))?;
        let (vmid, full) = (request.vmid.to_string(), if request.full_clone_storage.is_some() { "1" } else { "0" });
        let mut params = vec![("newid", vmid.as_str()), ("name", request.name), ("target", request.node), ("full", full)];
        if let Some(storage) = request.full_clone_storage {
            params.push(("storage", storage));
        }
        let path = format!("/nodes/{}/qemu/{}/clone", segment(&source), request.template_vmid);
        let outcome = self.client.run_task("POST", &path, &params);
        match outcome {
            Ok(()) => self.cloned(request)?.ok_or_else(|| {
                ProviderError::new(ErrorCode::Internal, format!("clone of {} reported OK but VM {} is not listed", request.name, request.vmid))
            }),
            Err(e) if e.code == ErrorCode::Ambiguous => match self.cloned(request)? {
                Some(vm) => Ok(vm),
                None => Err(e),
            },
            Err(e) => Err(e),
        }
    }

    fn cloned(&self, request: &CloneRequest) -> Result<Option<Located>, ProviderError> {
        Ok(self.list()?.into_iter().find(|vm| vm.vmid == request.vmid && vm.info.name == request.name && vm.lock.is_none()))
    }

    /// Powers the VM off and deletes it with its disks. Absent is success; an
    /// ambiguous outcome is success once the VM is no longer listed.
    pub fn destroy(&self, name: &str) -> Result<(), ProviderError> {
        let Some(vm) = self.find(name)? else { return Ok(()) };
        let base = format!("/nodes/{}/qemu/{}", segment(&vm.node), vm.vmid);
        let result = (|| {
            if vm.info.state == PowerState::Running {
                match self.client.run_task("POST", &format!("{base}/status/stop"), &[]) {
                    // A stop whose outcome is unknown is done once the VM shows stopped.
                    Err(e) if e.code == ErrorCode::Ambiguous && self.find(name)?.is_some_and(|v| v.info.state == PowerState::Running) => return Err(e),
                    Err(e) if e.code != ErrorCode::Ambiguous => return Err(e),
                    _ => {}
                }
            }
            self.client.run_task("DELETE", &base, &[("purge", "1"), ("destroy-unreferenced-disks", "1")])
        })();
        match result {
            Ok(()) => Ok(()),
            Err(e) if matches!(e.code, ErrorCode::Ambiguous | ErrorCode::NotFound) => match self.find(name)? {
                None => Ok(()),
                Some(_) => Err(e),
            },
            Err(e) => Err(e),
        }
    }

    /// Starts, shuts down (ACPI) or powers off the named VM, followed to the
    /// task's end. An ambiguous outcome stands: the caller reads the state back.
    pub fn power(&self, name: &str, action: Power) -> Result<(), ProviderError> {
        self.power_vm(&self.find(name)?.ok_or_else(|| ProviderError::not_found(name))?, action)
    }

    /// [`power`](Self::power) for a VM already found.
    pub fn power_vm(&self, vm: &Located, action: Power) -> Result<(), ProviderError> {
        let path = format!("/nodes/{}/qemu/{}/status/{}", segment(&vm.node), vm.vmid, action.endpoint());
        self.client.run_task("POST", &path, &[])
    }

    /// Runs `/bin/sh -c <command>` through the guest agent and waits for it to
    /// exit, polling at most until `timeout`.
    pub fn guest_exec(&self, name: &str, command: &str, timeout: Duration) -> Result<ExecOutput, ProviderError> {
        let vm = self.find(name)?.ok_or_else(|| ProviderError::not_found(name))?;
        let base = format!("/nodes/{}/qemu/{}/agent", segment(&vm.node), vm.vmid);
        let started = self.client.post(&format!("{base}/exec"), &[("command", "/bin/sh"), ("command", "-c"), ("command", command)])?;
        let pid = started["pid"].as_i64().ok_or_else(|| ProviderError::new(ErrorCode::Internal, format!("guest exec in {name}: no pid in {started}")))?.to_string();
        let deadline = Instant::now() + timeout;
        loop {
            let status = self.client.get(&format!("{base}/exec-status"), &[("pid", &pid)])?;
            if status["exited"].as_u64() == Some(1) || status["exited"] == true {
                let text = |key: &str| status[key].as_str().unwrap_or_default().as_bytes().to_vec();
                let exit_code = status["exitcode"].as_i64().and_then(|c| i32::try_from(c).ok()).unwrap_or(-1);
                return Ok(ExecOutput { exit_code, stdout: text("out-data"), stderr: text("err-data") });
            }
            if Instant::now() >= deadline {
                return Err(ProviderError::new(ErrorCode::Unavailable, format!("guest exec in {name}: still running after {} s", timeout.as_secs_f64())));
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// Whether the guest agent answers now.
    pub fn guest_ping(&self, name: &str) -> Result<bool, ProviderError> {
        let vm = self.find(name)?.ok_or_else(|| ProviderError::not_found(name))?;
        match self.client.post(&format!("/nodes/{}/qemu/{}/agent/ping", segment(&vm.node), vm.vmid), &[]) {
            Ok(_) => Ok(true),
            Err(e) if matches!(e.code, ErrorCode::Unavailable | ErrorCode::Conflict | ErrorCode::Ambiguous) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// The counters of every VM but templates, from one listing. It has no
    /// cumulative CPU time, but the current use as a fraction of the VM's
    /// `maxcpu` (`cpu`), which upstream also reports (×100×CPUs).
    pub fn stats(&self) -> Result<Vec<RawStats>, ProviderError> {
        let entries = self.resources()?;
        let stats = entries.iter().filter(|r| r["template"].as_u64() != Some(1)).filter_map(|r| {
            let vm = located(r)?;
            let n = |key: &str| r[key].as_u64().unwrap_or(0);
            Some(RawStats {
                name: vm.info.name,
                state: Some(vm.info.state),
                vcpus: vm.info.vcpus,
                cpu_busy: r["cpu"].as_f64().map(|fraction| fraction * r["maxcpu"].as_f64().unwrap_or(0.0)),
                memory_total_kib: n("maxmem") >> 10,
                memory_used_kib: n("mem") >> 10,
                disk_capacity_bytes: n("maxdisk"),
                disk_rd_bytes: n("diskread"),
                disk_wr_bytes: n("diskwrite"),
                net_rx_bytes: n("netin"),
                net_tx_bytes: n("netout"),
                ..RawStats::default()
            })
        });
        Ok(stats.collect())
    }

    fn resources(&self) -> Result<Vec<Value>, ProviderError> {
        let answer = self.client.get("/cluster/resources", &[("type", "vm")])?;
        Ok(answer.as_array().cloned().unwrap_or_default().into_iter().filter(|r| r["type"] == "qemu").collect())
    }
}

fn located(entry: &Value) -> Option<Located> {
    let state = match entry["status"].as_str() {
        Some("running") => PowerState::Running,
        Some("stopped") => PowerState::ShutOff,
        _ => PowerState::Other,
    };
    Some(Located {
        vmid: u32::try_from(entry["vmid"].as_u64()?).ok()?,
        node: entry["node"].as_str()?.to_string(),
        info: VmInfo {
            name: entry["name"].as_str().unwrap_or_default().to_string(),
            state,
            vcpus: entry["maxcpu"].as_f64().map_or(0, |c| c as u32),
            memory_mib: entry["maxmem"].as_u64().unwrap_or(0) >> 20,
        },
        lock: entry["lock"].as_str().map(str::to_string),
    })
}
