//! The modelled cluster: nodes, VMs with their config, and tasks that finish
//! lazily (whenever a request arrives after their due time), holding their
//! VM's lock while they run.

use std::collections::BTreeMap;
use crate::faults::Faults;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

pub type Config = BTreeMap<String, String>;

#[derive(Debug, Clone)]
pub struct Vm {
    pub node: String,
    pub config: Config,
    pub running: bool,
    /// Since when the guest runs (for `uptime`).
    pub started: Option<Instant>,
    /// The config lock PVE shows (`clone` while a clone runs).
    pub lock: Option<String>,
    /// A task holds the VM's lock file.
    pub busy: bool,
    /// The VM's firewall config (`/etc/pve/firewall/<vmid>.fw`).
    pub firewall: Firewall,
}

/// A VM's firewall: its options and IP sets, as the API shows them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Firewall {
    pub options: BTreeMap<String, String>,
    pub ipsets: BTreeMap<String, Vec<String>>,
}

#[derive(Debug, Clone)]
pub enum Effect {
    Clone,
    /// A VM made by `POST /nodes/{node}/qemu`: unlocked when done, gone when failed.
    Create,
    /// Converted to a template: its disks become base volumes.
    Template,
    Start,
    Stop,
    Delete,
    Config { set: Vec<(String, String)>, delete: Vec<String> },
    /// An upload lands on a node's storage as a volume.
    StoreVolume { node: String, volid: String, volume: Volume },
    RemoveVolume { node: String, volid: String },
    /// A node's pending interfaces come up.
    ApplyNetwork { node: String },
}

/// A storage every node has, as a fresh PVE install sets it up.
#[derive(Debug, Clone)]
pub struct Storage {
    pub id: &'static str,
    pub plugintype: &'static str,
    /// The content types it takes (`PUT /storage/{storage}` changes them).
    pub content: String,
    /// Every node reaches the same volumes (Ceph); else each node has its own.
    pub shared: bool,
}

impl Storage {
    pub fn takes(&self, kind: &str) -> bool {
        self.content.split(',').any(|c| c == kind)
    }
}

fn fresh_storages() -> Vec<Storage> {
    vec![
        Storage { id: "local", plugintype: "dir", content: "backup,iso,vztmpl".into(), shared: false },
        Storage { id: "local-lvm", plugintype: "lvmthin", content: "images,rootdir".into(), shared: false },
        Storage { id: "ceph", plugintype: "rbd", content: "images,rootdir".into(), shared: true },
    ]
}

/// A network interface of a node, as `/nodes/{node}/network` lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Iface {
    pub iface: String,
    /// `bridge`, `eth`, ...
    pub kind: &'static str,
    /// Written but not applied until `PUT /nodes/{node}/network`.
    pub pending: bool,
}

/// What a fresh install has: the NIC and `vmbr0` on it.
fn fresh_network() -> Vec<Iface> {
    vec![
        Iface { iface: "eno1".into(), kind: "eth", pending: false },
        Iface { iface: "vmbr0".into(), kind: "bridge", pending: false },
    ]
}

/// A file on a storage other than a VM disk (an ISO, an image to import).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Volume {
    pub size: u64,
    /// `iso`, `qcow2` or `raw`.
    pub format: &'static str,
    /// The disk size an import of it makes (a qcow2 image's header says it).
    pub virtual_size: u64,
}

#[derive(Debug, Clone)]
pub struct Task {
    pub upid: String,
    pub node: String,
    pub kind: String,
    pub vmid: u32,
    pub user: String,
    pub pid: u32,
    pub starttime: u64,
    pub due: Instant,
    pub failure: Option<String>,
    pub effect: Effect,
    /// Set once the task stopped: `OK` or the error.
    pub exitstatus: Option<String>,
}

#[derive(Debug, Clone)]
pub struct ExecResult {
    pub exitcode: i64,
    pub out: String,
}

#[derive(Debug)]
pub struct Cluster {
    pub nodes: Vec<String>,
    pub vms: BTreeMap<u32, Vm>,
    pub tasks: Vec<Task>,
    pub execs: BTreeMap<(u32, i64), ExecResult>,
    pub storages: Vec<Storage>,
    /// Each node's network interfaces.
    pub networks: BTreeMap<String, Vec<Iface>>,
    /// Volumes on the nodes' storages other than VM disks, by (node, volid).
    pub volumes: BTreeMap<(String, String), Volume>,
    next_pid: u32,
}

pub const NODE_MEMORY: u64 = 64 << 30;
pub const NODE_CPUS: u64 = 16;

impl Cluster {
    /// `count` nodes named `pve1`, `pve2`, ...; the template VM on the
    /// first, its disks on `template_storage`.
    pub fn new(count: usize, template_vmid: u32, template_storage: &str) -> Self {
        let nodes: Vec<String> = (1..=count.max(1)).map(|i| format!("pve{i}")).collect();
        let config: Config = [
            ("name", "debian-12-web3-template"),
            ("template", "1"),
            ("memory", "512"),
            ("cores", "1"),
            ("ostype", "l26"),
            ("scsihw", "virtio-scsi-pci"),
            ("scsi0", &format!("{template_storage}:base-{template_vmid}-disk-0,size=3G")),
            ("ide2", &format!("{template_storage}:vm-{template_vmid}-cloudinit,media=cdrom")),
            ("net0", "virtio=BC:24:11:00:00:01,bridge=vmbr0"),
            ("boot", "order=scsi0"),
            ("agent", "enabled=1"),
            ("serial0", "socket"),
            ("vga", "serial0"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        let template = Vm { node: nodes[0].clone(), config, running: false, started: None, lock: None, busy: false, firewall: Firewall::default() };
        let networks = nodes.iter().map(|n| (n.clone(), fresh_network())).collect();
        Self { nodes, vms: BTreeMap::from([(template_vmid, template)]), tasks: Vec::new(), execs: BTreeMap::new(), storages: fresh_storages(), networks, volumes: BTreeMap::new(), next_pid: 4000 }
    }

    pub fn storage(&self, id: &str) -> Option<&Storage> {
        self.storages.iter().find(|s| s.id == id)
    }

    pub fn is_shared(&self, storage: &str) -> bool {
        self.storage(storage).is_some_and(|s| s.shared)
    }

    /// Starts a task; the VM stays busy until it is due.
    /// How long it runs and whether it fails come from the fault knobs.
    pub fn start_task(&mut self, node: &str, kind: &str, vmid: u32, user: &str, faults: &Faults, effect: Effect) -> String {
        let (run, failure) = (faults.task_duration, faults.failing_tasks.clone());
        self.next_pid += 1;
        let pid = self.next_pid;
        let starttime = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
        let upid = format!("UPID:{node}:{pid:08X}:{pid:08X}:{starttime:08X}:{kind}:{vmid}:{user}:");
        if let Some(vm) = self.vms.get_mut(&vmid) {
            vm.busy = true;
        }
        self.tasks.push(Task {
            upid: upid.clone(),
            node: node.to_string(),
            kind: kind.to_string(),
            vmid,
            user: user.to_string(),
            pid,
            starttime,
            due: Instant::now() + run,
            failure,
            effect,
            exitstatus: None,
        });
        upid
    }

    /// Finishes every task whose time has come.
    pub fn settle(&mut self) {
        let now = Instant::now();
        for i in 0..self.tasks.len() {
            if self.tasks[i].exitstatus.is_some() || self.tasks[i].due > now {
                continue;
            }
            let task = self.tasks[i].clone();
            let exitstatus = match &task.failure {
                None => {
                    self.apply(task.vmid, &task.effect);
                    "OK".to_string()
                }
                Some(error) => {
                    if matches!(task.effect, Effect::Clone | Effect::Create) {
                        self.vms.remove(&task.vmid);
                    }
                    error.clone()
                }
            };
            if let Some(vm) = self.vms.get_mut(&task.vmid) {
                vm.busy = false;
            }
            self.tasks[i].exitstatus = Some(exitstatus);
        }
    }

    fn apply(&mut self, vmid: u32, effect: &Effect) {
        match effect {
            Effect::Delete => {
                self.vms.remove(&vmid);
                return;
            }
            Effect::StoreVolume { node, volid, volume } => {
                self.volumes.insert((node.clone(), volid.clone()), *volume);
                return;
            }
            Effect::RemoveVolume { node, volid } => {
                self.volumes.remove(&(node.clone(), volid.clone()));
                return;
            }
            Effect::ApplyNetwork { node } => {
                self.networks.entry(node.clone()).or_default().iter_mut().for_each(|i| i.pending = false);
                return;
            }
            _ => {}
        }
        let Some(vm) = self.vms.get_mut(&vmid) else { return };
        match effect {
            Effect::Clone | Effect::Create => vm.lock = None,
            Effect::Template => {
                vm.config.insert("template".into(), "1".into());
                let (own, base) = (format!(":vm-{vmid}-disk-"), format!(":base-{vmid}-disk-"));
                for value in vm.config.values_mut() {
                    *value = value.replace(&own, &base);
                }
            }
            Effect::Start => {
                vm.running = true;
                vm.started = Some(Instant::now());
            }
            Effect::Stop => {
                vm.running = false;
                vm.started = None;
            }
            Effect::Config { set, delete } => {
                for key in delete {
                    vm.config.remove(key);
                }
                vm.config.extend(set.iter().cloned());
            }
            Effect::Delete | Effect::StoreVolume { .. } | Effect::RemoveVolume { .. } | Effect::ApplyNetwork { .. } => {}
        }
    }

    pub fn task(&self, upid: &str) -> Option<&Task> {
        self.tasks.iter().find(|t| t.upid == upid)
    }

    pub fn next_pid(&mut self) -> u32 {
        self.next_pid += 1;
        self.next_pid
    }
}

/// A disk's size in bytes from its config string (`...,size=20G`).
pub fn disk_bytes(disk: &str) -> u64 {
    disk.split(',').find_map(|p| p.strip_prefix("size=")).and_then(parse_size).unwrap_or(0)
}

/// `20G`, `512M`, `1.5T`, bare bytes.
pub fn parse_size(text: &str) -> Option<u64> {
    let (number, unit) = match text.char_indices().last() {
        Some((i, c)) if c.is_ascii_alphabetic() => (&text[..i], c),
        _ => (text, 'B'),
    };
    let shift = match unit.to_ascii_uppercase() {
        'B' => 0,
        'K' => 10,
        'M' => 20,
        'G' => 30,
        'T' => 40,
        _ => return None,
    };
    number.parse::<f64>().ok().map(|n| (n * (1u64 << shift) as f64) as u64)
}

pub fn format_size(bytes: u64) -> String {
    if bytes.is_multiple_of(1 << 30) {
        format!("{}G", bytes >> 30)
    } else {
        format!("{}M", bytes >> 20)
    }
}
