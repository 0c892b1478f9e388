//! What the modelled endpoints do, once a request has passed the schema.
//! Errors carry PVE's status codes and messages (most VM errors are 500s).

use crate::cluster::{disk_bytes, format_size, parse_size, Cluster, Config, Effect, ExecResult, Firewall, Iface, Vm, Volume, NODE_CPUS, NODE_MEMORY};
use crate::faults::Faults;
use serde_json::{json, Map, Value};
use sha2::{Digest, Sha256};

#[derive(Debug)]
pub struct ApiError {
    pub status: u16,
    pub message: String,
    /// For a 400: the parameter the message is about.
    pub param: Option<&'static str>,
}

fn err(status: u16, message: impl Into<String>) -> ApiError {
    ApiError { status, message: message.into(), param: None }
}

fn bad_param(param: &'static str, message: impl Into<String>) -> ApiError {
    ApiError { status: 400, message: message.into(), param: Some(param) }
}

pub struct Call<'a> {
    pub method: &'a str,
    pub template: &'a str,
    pub params: &'a Map<String, Value>,
    pub user: &'a str,
    /// The config keys the schema defines for `GET .../config`, to type its answer.
    pub config_types: &'a Map<String, Value>,
    /// The file of a multipart upload.
    pub upload: Option<&'a [u8]>,
}

impl Call<'_> {
    fn str(&self, key: &str) -> &str {
        self.params.get(key).and_then(Value::as_str).unwrap_or("")
    }

    fn int(&self, key: &str) -> Option<i64> {
        self.params.get(key).and_then(Value::as_i64)
    }

    fn flag(&self, key: &str) -> bool {
        self.int(key) == Some(1)
    }

    fn vmid(&self) -> u32 {
        self.int("vmid").unwrap_or(0) as u32
    }
}

/// Whether the endpoint changes state (the ambiguous-write fault applies to it).
pub fn is_mutation(method: &str) -> bool {
    method != "GET"
}

pub fn handle(cluster: &mut Cluster, faults: &Faults, call: &Call) -> Result<Value, ApiError> {
    cluster.settle();
    let node = call.str("node").to_string();
    if call.params.contains_key("node") {
        if !cluster.nodes.contains(&node) {
            return Err(err(500, format!("hostname lookup '{node}' failed - failed to get address info for: {node}: Name or service not known")));
        }
        if faults.down_nodes.contains(&node) {
            return Err(err(595, format!("Connection refused (node '{node}' is down)")));
        }
    }
    match (call.method, call.template) {
        ("GET", "/version") => Ok(json!({"version": "9.1.3", "release": "9.1", "repoid": "0123abcd"})),
        ("GET", "/nodes") => Ok(Value::Array(cluster.nodes.iter().map(|n| node_entry(cluster, faults, n)).collect())),
        ("GET", "/cluster/nextid") => next_id(cluster, call.int("vmid")),
        ("GET", "/cluster/resources") => Ok(resources(cluster, faults, call.params.get("type").and_then(Value::as_str))),
        ("GET", "/nodes/{node}/qemu") => Ok(Value::Array(
            cluster.vms.iter().filter(|(_, vm)| vm.node == node).map(|(id, vm)| vm_entry(*id, vm, faults)).collect(),
        )),
        ("GET", "/nodes/{node}/tasks/{upid}/status") => task_status(cluster, &node, call.str("upid")),
        ("GET", "/nodes/{node}/tasks/{upid}/log") => task_log(cluster, &node, call.str("upid")),
        ("POST", "/nodes/{node}/qemu/{vmid}/clone") => clone(cluster, faults, call, &node),
        ("POST", "/nodes/{node}/qemu") => create(cluster, faults, call, &node),
        ("PUT", "/storage/{storage}") => set_storage_content(cluster, call),
        (_, "/nodes/{node}/network") => network_call(cluster, faults, call, &node),
        (_, storage) if storage.starts_with("/nodes/{node}/storage/{storage}") => storage_call(cluster, faults, call, &node),
        _ => vm_call(cluster, faults, call, &node),
    }
}

fn vm_call(cluster: &mut Cluster, faults: &Faults, call: &Call, node: &str) -> Result<Value, ApiError> {
    let vmid = call.vmid();
    let vm = find_vm(cluster, node, vmid)?.clone();
    // The guest agent and the firewall's own config take no VM lock.
    let mutation = is_mutation(call.method) && !call.template.contains("/agent/") && !call.template.contains("/firewall/");
    if mutation {
        lock_check(vmid, &vm)?;
    }
    let task = |cluster: &mut Cluster, kind: &str, effect: Effect| -> Value {
        Value::String(cluster.start_task(node, kind, vmid, call.user, faults, effect))
    };
    match (call.method, call.template.trim_start_matches("/nodes/{node}/qemu/{vmid}")) {
        ("GET", "/status/current") => Ok(status_current(vmid, &vm, faults)),
        ("POST", "/status/start") => {
            if vm.running {
                return Err(err(500, format!("VM {vmid} already running")));
            }
            if is_template(&vm) {
                return Err(err(500, "you can't start a vm if it's a template"));
            }
            Ok(task(cluster, "qmstart", Effect::Start))
        }
        ("POST", "/status/stop") => Ok(task(cluster, "qmstop", Effect::Stop)),
        ("POST", "/status/shutdown") => {
            if !vm.running {
                return Err(err(500, format!("VM {vmid} not running")));
            }
            Ok(task(cluster, "qmshutdown", Effect::Stop))
        }
        ("GET", "/config") => Ok(config_answer(&vm, call.config_types)),
        ("PUT" | "POST", "/config") => {
            let effect = config_change(call);
            if call.method == "PUT" {
                if let Some(vm) = cluster.vms.get_mut(&vmid) {
                    apply_config(vm, &effect);
                }
                Ok(Value::Null)
            } else {
                Ok(task(cluster, "qmconfig", effect))
            }
        }
        ("PUT", "/resize") => {
            let disk = call.str("disk").to_string();
            let current = vm.config.get(&disk).ok_or_else(|| err(500, format!("disk '{disk}' does not exist")))?;
            let size = call.str("size");
            let old = disk_bytes(current);
            let new = match size.strip_prefix('+') {
                Some(grow) => old + parse_size(grow).unwrap_or(0),
                None => parse_size(size).unwrap_or(0),
            };
            if new < old {
                return Err(err(500, "unable to shrink disk size"));
            }
            let value = current.split(',').map(|p| if p.starts_with("size=") { format!("size={}", format_size(new)) } else { p.to_string() });
            let value = value.collect::<Vec<_>>().join(",");
            Ok(task(cluster, "resize", Effect::Config { set: vec![(disk, value)], delete: vec![] }))
        }
        ("DELETE", "") => {
            if vm.running {
                return Err(err(500, format!("VM {vmid} is running - destroy failed")));
            }
            Ok(task(cluster, "qmdestroy", Effect::Delete))
        }
        ("POST", "/template") => {
            if is_template(&vm) {
                return Err(err(500, format!("VM {vmid} is already a template")));
            }
            if vm.running {
                return Err(err(500, "you can't convert a VM to template if VM is running"));
            }
            Ok(task(cluster, "qmtemplate", Effect::Template))
        }
        (_, agent) if agent.starts_with("/agent/") => agent_call(cluster, call, vmid, &vm, agent),
        (_, firewall) if firewall.starts_with("/firewall/") => {
            let rules = &mut cluster.vms.get_mut(&vmid).ok_or_else(|| err(500, format!("VM {vmid} vanished")))?.firewall;
            firewall_call(rules, call, firewall)
        }
        _ => Err(err(501, format!("stand-in: {} {} is in the schema but not modelled", call.method, call.template))),
    }
}

/// Uploads, listings and removals of ISO images and images to import on a node's storage.
fn storage_call(cluster: &mut Cluster, faults: &Faults, call: &Call, node: &str) -> Result<Value, ApiError> {
    let id = call.str("storage");
    let storage = cluster.storage(id).ok_or_else(|| err(500, format!("storage '{id}' does not exist")))?.clone();
    let volumes_here = |cluster: &Cluster| -> Vec<(String, Volume)> {
        let prefix = format!("{id}:");
        cluster.volumes.iter().filter(|((n, v), _)| n == node && v.starts_with(&prefix)).map(|((_, v), volume)| (v.clone(), *volume)).collect()
    };
    match (call.method, call.template.trim_start_matches("/nodes/{node}/storage/{storage}")) {
        ("POST", "/upload") => {
            let content = call.str("content");
            if !storage.takes(content) {
                return Err(err(500, format!("storage '{id}' does not support '{content}' content")));
            }
            let file = call.str("filename");
            if file.contains('/') {
                return Err(err(500, format!("illegal name '{file}' - contains a path separator")));
            }
            let data = call.upload.ok_or_else(|| err(500, "upload failed: no file in the request"))?;
            let volume = uploaded_volume(content, file, data)?;
            verify_checksum(call, data)?;
            let effect = Effect::StoreVolume { node: node.to_string(), volid: format!("{id}:{content}/{file}"), volume };
            Ok(Value::String(cluster.start_task(node, "imgcopy", 0, call.user, faults, effect)))
        }
        ("GET", "/content") => {
            let kind = call.str("content");
            let listed = volumes_here(cluster).into_iter().filter(|(volid, _)| kind.is_empty() || volid.split_once(':').is_some_and(|(_, v)| v.starts_with(&format!("{kind}/"))));
            Ok(Value::Array(
                listed
                    .map(|(volid, volume)| {
                        let content = volid.split_once(':').and_then(|(_, v)| v.split_once('/')).map_or("", |(kind, _)| kind).to_string();
                        json!({"volid": volid, "format": volume.format, "size": volume.size, "content": content})
                    })
                    .collect(),
            ))
        }
        ("DELETE", "/content/{volume}") => {
            let volume = call.str("volume");
            let volid = if volume.contains(':') { volume.to_string() } else { format!("{id}:{volume}") };
            if !volumes_here(cluster).iter().any(|(v, _)| *v == volid) {
                return Err(err(500, format!("volume '{volid}' does not exist")));
            }
            let effect = Effect::RemoveVolume { node: node.to_string(), volid };
            Ok(Value::String(cluster.start_task(node, "imgdel", 0, call.user, faults, effect)))
        }
        _ => Err(err(501, format!("stand-in: {} {} is in the schema but not modelled", call.method, call.template))),
    }
}

/// The volume an upload makes, refused when its extension does not fit the content type.
fn uploaded_volume(content: &str, file: &str, data: &[u8]) -> Result<Volume, ApiError> {
    let extension = file.rsplit_once('.').map_or("", |(_, e)| e);
    let size = data.len() as u64;
    match (content, extension) {
        ("iso", "iso" | "img") => Ok(Volume { size, format: "iso", virtual_size: size }),
        ("import", "qcow2") => {
            let header = data.get(..32).filter(|h| h.starts_with(b"QFI\xfb")).ok_or_else(|| err(500, format!("import: '{file}' is not a qcow2 image")))?;
            let virtual_size = u64::from_be_bytes(header[24..32].try_into().unwrap_or_default());
            Ok(Volume { size, format: "qcow2", virtual_size })
        }
        ("import", "raw") => Ok(Volume { size, format: "raw", virtual_size: size }),
        _ => Err(err(500, "wrong file extension")),
    }
}

/// PVE compares the upload with `checksum` when it is given.
fn verify_checksum(call: &Call, data: &[u8]) -> Result<(), ApiError> {
    let expected = call.str("checksum");
    if expected.is_empty() {
        return Ok(());
    }
    if call.str("checksum-algorithm") != "sha256" {
        return Err(err(501, "stand-in: only sha256 upload checksums are modelled"));
    }
    let got: String = Sha256::digest(data).iter().map(|b| format!("{b:02x}")).collect();
    if got != expected.to_ascii_lowercase() {
        return Err(err(500, format!("checksum mismatch: got '{got}' != expected '{expected}'")));
    }
    Ok(())
}

/// A node's interfaces: listed (by type), a bridge written (pending), and
/// the pending changes applied (a task, as `ifreload` runs).
fn network_call(cluster: &mut Cluster, faults: &Faults, call: &Call, node: &str) -> Result<Value, ApiError> {
    let interfaces = cluster.networks.entry(node.to_string()).or_default();
    match call.method {
        "GET" => {
            let wanted = |kind: &str| match call.str("type") {
                "" => true,
                "bridge" | "any_bridge" | "any_local_bridge" => kind == "bridge",
                other => other == kind,
            };
            let listed = interfaces.iter().filter(|i| wanted(i.kind)).map(|i| {
                let mut entry = json!({"iface": i.iface, "type": i.kind, "autostart": 1});
                // Written but not applied: not up, and not yet in the running system.
                if !i.pending {
                    (entry["active"], entry["exists"]) = (json!(1), json!(1));
                }
                entry
            });
            Ok(Value::Array(listed.collect()))
        }
        "POST" => {
            let (iface, kind) = (call.str("iface").to_string(), call.str("type"));
            if kind != "bridge" {
                return Err(err(501, format!("stand-in: only bridges are modelled, not {kind}")));
            }
            if interfaces.iter().any(|i| i.iface == iface) {
                return Err(bad_param("iface", "interface already exists"));
            }
            interfaces.push(Iface { iface, kind: "bridge", pending: true });
            Ok(Value::Null)
        }
        "PUT" => Ok(Value::String(cluster.start_task(node, "srvreload", 0, call.user, faults, Effect::ApplyNetwork { node: node.to_string() }))),
        _ => Err(err(501, format!("stand-in: {} {} is in the schema but not modelled", call.method, call.template))),
    }
}

/// `PUT /storage/{storage}` with `content`, as `pvesm set --content` does.
fn set_storage_content(cluster: &mut Cluster, call: &Call) -> Result<Value, ApiError> {
    let id = call.str("storage");
    let content = call.str("content").to_string();
    if content.is_empty() {
        return Err(err(501, "stand-in: only changing a storage's content is modelled"));
    }
    let storage = cluster.storages.iter_mut().find(|s| s.id == id).ok_or_else(|| err(500, format!("storage '{id}' does not exist")))?;
    storage.content = content;
    Ok(Value::Null)
}

/// `POST /nodes/{node}/qemu`: a new VM, its disks allocated on their storage
/// or imported from an image volume of that node (`import-from`).
fn create(cluster: &mut Cluster, faults: &Faults, call: &Call, node: &str) -> Result<Value, ApiError> {
    const CONTROL: [&str; 6] = ["node", "vmid", "start", "unique", "import-working-storage", "storage"];
    let vmid = call.vmid();
    if let Some(vm) = cluster.vms.get(&vmid) {
        return Err(err(500, format!("unable to create VM {vmid} - VM {vmid} already exists on node '{}'", vm.node)));
    }
    let mut config = Config::new();
    let mut disks = 0;
    for (key, value) in call.params.iter().filter(|(k, _)| !CONTROL.contains(&k.as_str())) {
        let mut text = config_text(value);
        if is_disk_slot(key) && !text.contains("media=cdrom") && text != "none" {
            text = allocate_disk(cluster, node, vmid, disks, &text)?;
            disks += 1;
        }
        config.insert(key.clone(), text);
    }
    let vm = Vm { node: node.to_string(), config, running: false, started: None, lock: Some("create".into()), busy: false, firewall: Firewall::default() };
    cluster.vms.insert(vmid, vm);
    Ok(Value::String(cluster.start_task(node, "qmcreate", vmid, call.user, faults, Effect::Create)))
}

fn is_disk_slot(key: &str) -> bool {
    ["scsi", "virtio", "sata", "ide", "efidisk"].iter().any(|bus| key.strip_prefix(bus).is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit())))
}

/// `<storage>:<GiB>[,import-from=<volid>][,...]` as PVE allocates it:
/// `<storage>:vm-<vmid>-disk-<n>,...,size=<size>`.
fn allocate_disk(cluster: &Cluster, node: &str, vmid: u32, index: usize, spec: &str) -> Result<String, ApiError> {
    let mut parts = spec.split(',');
    let (store, amount) = parts.next().and_then(|p| p.split_once(':')).ok_or_else(|| err(500, format!("unable to parse drive options '{spec}'")))?;
    let storage = cluster.storage(store).ok_or_else(|| err(500, format!("storage '{store}' does not exist")))?;
    if !storage.takes("images") {
        return Err(err(500, format!("storage '{store}' does not support content-type 'images'")));
    }
    let mut rest = Vec::new();
    let mut import = None;
    for part in parts {
        match part.strip_prefix("import-from=") {
            Some(source) => import = Some(source),
            None => rest.push(part.to_string()),
        }
    }
    let size = match import {
        Some(source) => {
            let key = (node.to_string(), source.to_string());
            let volume = cluster.volumes.get(&key).ok_or_else(|| err(500, format!("import-from: volume '{source}' does not exist on node '{node}'")))?;
            volume.virtual_size
        }
        None => (amount.parse::<f64>().map_err(|_| err(500, format!("unable to parse drive options '{spec}'")))? * f64::from(1u32 << 30)) as u64,
    };
    rest.retain(|p| !p.starts_with("size="));
    rest.push(format!("size={}", format_size(size)));
    Ok(format!("{store}:vm-{vmid}-disk-{index},{}", rest.join(",")))
}

fn find_vm<'c>(cluster: &'c Cluster, node: &str, vmid: u32) -> Result<&'c Vm, ApiError> {
    cluster
        .vms
        .get(&vmid)
        .filter(|vm| vm.node == node)
        .ok_or_else(|| err(500, format!("Configuration file 'nodes/{node}/qemu-server/{vmid}.conf' does not exist")))
}

fn lock_check(vmid: u32, vm: &Vm) -> Result<(), ApiError> {
    if let Some(lock) = &vm.lock {
        return Err(err(500, format!("VM {vmid} is locked ({lock})")));
    }
    if vm.busy {
        return Err(err(500, format!("can't lock file '/var/lock/qemu-server/lock-{vmid}.conf' - got timeout")));
    }
    Ok(())
}

fn is_template(vm: &Vm) -> bool {
    vm.config.get("template").is_some_and(|t| t == "1")
}

fn clone(cluster: &mut Cluster, faults: &Faults, call: &Call, node: &str) -> Result<Value, ApiError> {
    let source = call.vmid();
    let vm = find_vm(cluster, node, source)?.clone();
    let newid = call.int("newid").unwrap_or(0) as u32;
    if cluster.vms.contains_key(&newid) {
        return Err(err(500, format!("unable to create VM {newid}: config file already exists")));
    }
    if vm.lock.is_some() || (vm.busy && !is_template(&vm)) {
        lock_check(source, &vm)?;
    }
    let target = match call.str("target") {
        "" => node.to_string(),
        t if !cluster.nodes.iter().any(|n| n == t) => return Err(bad_param("target", format!("no such node '{t}'"))),
        t => t.to_string(),
    };
    let local_volume = vm.config.iter().any(|(key, value)| {
        let disk = ["scsi", "ide", "sata", "virtio"].iter().any(|bus| key.starts_with(bus));
        let store = value.split(':').next().unwrap_or_default();
        disk && value.contains(':') && !cluster.is_shared(store) && !value.contains(":iso/")
    });
    if target != node && local_volume {
        return Err(err(500, format!("Can't clone VM to node '{target}' (VM uses local storage)")));
    }
    if !is_template(&vm) && !call.flag("full") {
        return Err(bad_param("full", "linked clone feature is only available for templates"));
    }
    let mut config = vm.config.clone();
    config.remove("template");
    let name = match call.str("name") {
        "" => format!("Copy-of-VM-{}", vm.config.get("name").map_or("", String::as_str)),
        n => n.to_string(),
    };
    config.insert("name".into(), name);
    let storage = call.str("storage");
    for (key, value) in config.iter_mut().filter(|(k, _)| k.starts_with("scsi") || k.starts_with("ide")) {
        let (volume, rest) = value.split_once(',').unwrap_or((value.as_str(), ""));
        let store = if storage.is_empty() { volume.split(':').next().unwrap_or("local-lvm") } else { storage };
        let kind = if key.starts_with("ide") { "cloudinit".to_string() } else { format!("disk-{}", key.trim_start_matches("scsi")) };
        *value = format!("{store}:vm-{newid}-{kind}{}{rest}", if rest.is_empty() { "" } else { "," });
    }
    // PVE copies the source's firewall config with the VM.
    let new_vm = Vm { node: target, config, running: false, started: None, lock: Some("clone".into()), busy: false, firewall: vm.firewall.clone() };
    cluster.vms.insert(newid, new_vm);
    let upid = cluster.start_task(node, "qmclone", newid, call.user, faults, Effect::Clone);
    Ok(Value::String(upid))
}

fn config_change(call: &Call) -> Effect {
    const CONTROL: [&str; 9] = ["node", "vmid", "delete", "digest", "skiplock", "force", "revert", "background_delay", "import-working-storage"];
    let set = call
        .params
        .iter()
        .filter(|(k, _)| !CONTROL.contains(&k.as_str()))
        .map(|(k, v)| (k.clone(), config_text(v)))
        .collect();
    let delete = call.str("delete").split([',', ';', ' ']).filter(|s| !s.is_empty()).map(str::to_string).collect();
    Effect::Config { set, delete }
}

/// A config value as PVE writes it to the VM's config file (`1`, not `1.0`).
fn config_text(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        Value::Number(n) => n.as_f64().filter(|f| f.fract() == 0.0 && f.abs() < 1e15).map_or_else(|| n.to_string(), |f| format!("{}", f as i64)),
        other => other.to_string(),
    }
}

fn apply_config(vm: &mut Vm, effect: &Effect) {
    if let Effect::Config { set, delete } = effect {
        for key in delete {
            vm.config.remove(key);
        }
        vm.config.extend(set.iter().cloned());
    }
}

fn config_answer(vm: &Vm, types: &Map<String, Value>) -> Value {
    let mut out = Map::new();
    for (key, value) in &vm.config {
        let stem = key.trim_end_matches(|c: char| c.is_ascii_digit());
        let kind = types.get(key).or_else(|| types.get(&format!("{stem}[n]"))).and_then(|s| s["type"].as_str()).unwrap_or("string");
        let typed = match kind {
            "integer" | "boolean" => value.parse::<i64>().map(Value::from).unwrap_or_else(|_| Value::from(value.as_str())),
            "number" => value.parse::<f64>().map(Value::from).unwrap_or_else(|_| Value::from(value.as_str())),
            _ => Value::from(value.as_str()),
        };
        out.insert(key.clone(), typed);
    }
    let digest = Sha256::digest(format!("{:?}", vm.config).as_bytes());
    out.insert("digest".into(), Value::from(digest.iter().take(20).map(|b| format!("{b:02x}")).collect::<String>()));
    Value::Object(out)
}

fn agent_call(cluster: &mut Cluster, call: &Call, vmid: u32, vm: &Vm, endpoint: &str) -> Result<Value, ApiError> {
    if !vm.running {
        return Err(err(500, format!("VM {vmid} is not running")));
    }
    let enabled = vm.config.get("agent").is_some_and(|a| a.split(',').any(|p| p == "1" || p == "enabled=1"));
    if !enabled {
        return Err(err(500, "No QEMU guest agent configured"));
    }
    match (call.method, endpoint) {
        ("POST", "/agent/ping") => Ok(json!({})),
        ("GET", "/agent/get-fsinfo") => {
            let total = vm.config.get("scsi0").map_or(0, |d| disk_bytes(d));
            Ok(json!({"result": [{"name": "sda1", "mountpoint": "/", "type": "ext4", "total-bytes": total, "used-bytes": total / 4, "disk": []}]}))
        }
        ("POST", "/agent/exec") => {
            let argv: Vec<&str> = call.params.get("command").and_then(Value::as_array).into_iter().flatten().filter_map(Value::as_str).collect();
            let pid = cluster.next_pid() as i64;
            cluster.execs.insert((vmid, pid), run_guest_command(&argv));
            Ok(json!({"pid": pid}))
        }
        ("GET", "/agent/exec-status") => {
            let pid = call.int("pid").unwrap_or(0);
            let result = cluster.execs.get(&(vmid, pid)).ok_or_else(|| err(500, "Agent error: Invalid parameter 'pid'"))?;
            Ok(json!({"exited": 1, "exitcode": result.exitcode, "out-data": result.out}))
        }
        _ => Err(err(501, format!("stand-in: {} {} is in the schema but not modelled", call.method, call.template))),
    }
}

/// A VM's firewall options and IP sets (its rules are not modelled).
fn firewall_call(firewall: &mut Firewall, call: &Call, endpoint: &str) -> Result<Value, ApiError> {
    let name = call.str("name").to_string();
    let digest = |text: &str| Sha256::digest(text.as_bytes()).iter().take(20).map(|b| format!("{b:02x}")).collect::<String>();
    match (call.method, endpoint) {
        ("GET", "/firewall/options") => {
            let typed = firewall.options.iter().map(|(k, v)| {
                let value = if k.starts_with("policy") || k.starts_with("log_level") { json!(v) } else { json!(v.parse::<i64>().unwrap_or(0)) };
                (k.clone(), value)
            });
            Ok(Value::Object(typed.collect()))
        }
        ("PUT", "/firewall/options") => {
            for (key, value) in call.params.iter().filter(|(k, _)| !["node", "vmid", "digest", "delete"].contains(&k.as_str())) {
                firewall.options.insert(key.clone(), config_text(value));
            }
            for key in call.str("delete").split([',', ';', ' ']).filter(|k| !k.is_empty()) {
                firewall.options.remove(key);
            }
            Ok(Value::Null)
        }
        ("GET", "/firewall/ipset") => Ok(Value::Array(firewall.ipsets.keys().map(|n| json!({"name": n, "digest": digest(n)})).collect())),
        ("POST", "/firewall/ipset") => {
            if firewall.ipsets.contains_key(&name) {
                return Err(err(500, format!("IPSet '{name}' already exists")));
            }
            firewall.ipsets.insert(name, Vec::new());
            Ok(Value::Null)
        }
        (method, "/firewall/ipset/{name}") => {
            let set = firewall.ipsets.get_mut(&name).ok_or_else(|| err(500, format!("no such IPSet '{name}'")))?;
            if method == "GET" {
                return Ok(Value::Array(set.iter().map(|c| json!({"cidr": c, "digest": digest(c)})).collect()));
            }
            let cidr = call.str("cidr").to_string();
            if method != "POST" {
                return Err(err(501, format!("stand-in: {method} {} is in the schema but not modelled", call.template)));
            }
            if set.contains(&cidr) {
                return Err(err(500, format!("address '{cidr}' already exists")));
            }
            set.push(cidr);
            Ok(Value::Null)
        }
        _ => Err(err(501, format!("stand-in: {} {} is in the schema but not modelled", call.method, call.template))),
    }
}

/// The guest's shell, as far as tests need one: `echo TEXT` and `exit N`.
fn run_guest_command(argv: &[&str]) -> ExecResult {
    let script = match argv {
        ["/bin/sh", "-c", script] => *script,
        _ => "",
    };
    if let Some(text) = script.strip_prefix("echo ") {
        return ExecResult { exitcode: 0, out: format!("{text}\n") };
    }
    let exitcode = script.strip_prefix("exit ").and_then(|n| n.trim().parse().ok()).unwrap_or(0);
    ExecResult { exitcode, out: String::new() }
}

fn next_id(cluster: &Cluster, wanted: Option<i64>) -> Result<Value, ApiError> {
    match wanted {
        Some(id) if cluster.vms.contains_key(&(id as u32)) => Err(bad_param("vmid", format!("VM {id} already exists"))),
        Some(id) => Ok(json!(id)),
        None => Ok(json!((100u32..).find(|id| !cluster.vms.contains_key(id)).unwrap_or(100))),
    }
}

fn task_status(cluster: &Cluster, node: &str, upid: &str) -> Result<Value, ApiError> {
    let task = cluster.task(upid).filter(|t| t.node == node).ok_or_else(|| err(500, "no such task"))?;
    let mut out = json!({
        "upid": task.upid, "node": task.node, "pid": task.pid, "pstart": task.pid, "starttime": task.starttime,
        "type": task.kind, "id": task.vmid.to_string(), "user": task.user,
        "status": if task.exitstatus.is_some() { "stopped" } else { "running" },
    });
    if let Some(exit) = &task.exitstatus {
        out["exitstatus"] = json!(exit);
    }
    Ok(out)
}

fn task_log(cluster: &Cluster, node: &str, upid: &str) -> Result<Value, ApiError> {
    let task = cluster.task(upid).filter(|t| t.node == node).ok_or_else(|| err(500, "no such task"))?;
    let mut lines = vec![json!({"n": 1, "t": format!("{} {}", task.kind, task.vmid)})];
    if let Some(exit) = &task.exitstatus {
        let last = if exit == "OK" { "TASK OK".to_string() } else { format!("TASK ERROR: {exit}") };
        lines.push(json!({"n": 2, "t": last}));
    }
    Ok(Value::Array(lines))
}

fn node_entry(cluster: &Cluster, faults: &Faults, node: &str) -> Value {
    let used: u64 = cluster.vms.values().filter(|vm| vm.node == node && vm.running).map(memory_bytes).sum();
    let online = !faults.down_nodes.contains(node);
    json!({"node": node, "status": if online { "online" } else { "offline" }, "maxmem": NODE_MEMORY, "mem": used, "maxcpu": NODE_CPUS, "cpu": 0.05, "uptime": 3600})
}

fn memory_bytes(vm: &Vm) -> u64 {
    vm.config.get("memory").and_then(|m| m.split(',').next()?.trim_start_matches("current=").parse::<u64>().ok()).unwrap_or(512) << 20
}

fn vm_state(vm: &Vm, faults: &Faults) -> &'static str {
    if faults.down_nodes.contains(&vm.node) {
        "unknown"
    } else if vm.running {
        "running"
    } else {
        "stopped"
    }
}

/// The CPU a running VM uses, as PVE reports it: a fraction of all its vCPUs.
/// Its memory in use is half of what it has.
const RUNNING_CPU: f64 = 0.25;

fn vm_entry(vmid: u32, vm: &Vm, faults: &Faults) -> Value {
    let mut entry = json!({
        "vmid": vmid, "name": vm.config.get("name").cloned().unwrap_or_default(), "status": vm_state(vm, faults),
        "maxmem": memory_bytes(vm), "maxdisk": vm.config.get("scsi0").map_or(0, |d| disk_bytes(d)),
        "cpus": vm.config.get("cores").and_then(|c| c.parse::<u64>().ok()).unwrap_or(1),
        "uptime": vm.started.map_or(0, |s| s.elapsed().as_secs()), "template": u8::from(is_template(vm)),
        "cpu": if vm.running { RUNNING_CPU } else { 0.0 },
        "mem": if vm.running { memory_bytes(vm) / 2 } else { 0 },
    });
    if let Some(tags) = vm.config.get("tags") {
        entry["tags"] = json!(tags);
    }
    if let Some(lock) = &vm.lock {
        entry["lock"] = json!(lock);
    }
    entry
}

fn status_current(vmid: u32, vm: &Vm, faults: &Faults) -> Value {
    let mut status = vm_entry(vmid, vm, faults);
    let running = vm.running;
    status["status"] = json!(if running { "running" } else { "stopped" });
    status["qmpstatus"] = status["status"].clone();
    status["agent"] = json!(u8::from(vm.config.contains_key("agent")));
    status["ha"] = json!({"managed": 0});
    status
}

fn resources(cluster: &Cluster, faults: &Faults, kind: Option<&str>) -> Value {
    let mut out = Vec::new();
    if kind.is_none() || kind == Some("node") {
        for node in &cluster.nodes {
            let mut entry = node_entry(cluster, faults, node);
            entry["id"] = json!(format!("node/{node}"));
            entry["type"] = json!("node");
            out.push(entry);
        }
    }
    if kind.is_none() || kind == Some("vm") {
        for (vmid, vm) in &cluster.vms {
            let mut entry = vm_entry(*vmid, vm, faults);
            let cpus = entry["cpus"].take();
            entry.as_object_mut().map(|o| o.remove("cpus"));
            entry["maxcpu"] = cpus;
            entry["id"] = json!(format!("qemu/{vmid}"));
            entry["type"] = json!("qemu");
            entry["node"] = json!(vm.node);
            out.push(entry);
        }
    }
    if kind.is_none() || kind == Some("storage") {
        for node in &cluster.nodes {
            for storage in &cluster.storages {
                out.push(json!({
                    "id": format!("storage/{node}/{}", storage.id), "type": "storage", "storage": storage.id, "node": node,
                    "status": if faults.down_nodes.contains(node) { "unknown" } else { "available" },
                    "content": storage.content, "plugintype": storage.plugintype, "maxdisk": 512u64 << 30, "disk": 0, "shared": u8::from(storage.shared),
                }));
            }
        }
    }
    Value::Array(out)
}
