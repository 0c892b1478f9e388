//! A Proxmox VE API stand-in for tests: an HTTPS server on 127.0.0.1 that
//! refuses every request the published API schema (PVE 9.1) does not allow
//! and models what a provisioner relies on — nodes, VMs, clone, power, config,
//! resize, destroy, ISO uploads to a node's storage, the guest agent, asynchronous tasks with UPIDs and the
//! locks they hold — with fault knobs. It records every refusal, so a test
//! can assert that a client never sent a request the real API would reject.
//!
//! It is a model written from the documentation and the schema, not Proxmox
//! VE: it proves the client's requests are well formed and its handling of
//! the modelled behaviour, not that a real cluster behaves the same.

mod api;
mod cluster;
mod faults;
mod formats;
mod http;
mod returns;
mod schema;
mod tls;

pub use cluster::Firewall;
pub use faults::Faults;
pub use schema::Refusal;

use schema::Schema;
use serde_json::{json, Value};
use std::io::BufReader;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

pub struct Options {
    pub nodes: usize,
    pub template_vmid: u32,
    /// The storage of the template's disks: `local-lvm` (each node its own,
    /// as a fresh install has it) or `ceph` (shared by every node).
    pub template_storage: &'static str,
    /// `USER@REALM!TOKENID`
    pub token_id: String,
    pub secret: String,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            nodes: 3,
            template_vmid: 9001,
            template_storage: "local-lvm",
            token_id: "root@pam!blockhost".into(),
            secret: "5f0c2a77-3c1e-4b8e-9a51-0d6f4e2b9c10".into(),
        }
    }
}

/// A request the stand-in refused, or answered in a shape the schema does not give.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recorded {
    pub method: String,
    pub path: String,
    pub status: u16,
    pub message: String,
}

struct Shared {
    schema: Schema,
    cluster: Mutex<cluster::Cluster>,
    faults: Mutex<Faults>,
    refusals: Mutex<Vec<Recorded>>,
    bad_answers: Mutex<Vec<String>>,
    /// Answers withheld by `hang_after_acting` so far.
    hangs: AtomicUsize,
    authorization: String,
    token_user: String,
}

pub struct StandIn {
    addr: SocketAddr,
    shared: Arc<Shared>,
    stop: Arc<AtomicBool>,
    ca_pem: String,
    fingerprint: String,
    options: Options,
}

fn locked<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl StandIn {
    pub fn start(options: Options) -> Result<Self, String> {
        let certs = tls::generate()?;
        let listener = TcpListener::bind("127.0.0.1:0").map_err(|e| format!("bind 127.0.0.1: {e}"))?;
        let addr = listener.local_addr().map_err(|e| e.to_string())?;
        let shared = Arc::new(Shared {
            schema: Schema::published(),
            cluster: Mutex::new(cluster::Cluster::new(options.nodes, options.template_vmid, options.template_storage)),
            faults: Mutex::new(Faults::default()),
            refusals: Mutex::new(Vec::new()),
            bad_answers: Mutex::new(Vec::new()),
            hangs: AtomicUsize::new(0),
            authorization: format!("PVEAPIToken={}={}", options.token_id, options.secret),
            token_user: options.token_id.clone(),
        });
        let stop = Arc::new(AtomicBool::new(false));
        let (server, accept_shared, accept_stop) = (certs.server.clone(), shared.clone(), stop.clone());
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                if accept_stop.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(stream) = stream else { continue };
                let (server, shared) = (server.clone(), accept_shared.clone());
                std::thread::spawn(move || serve(stream, server, &shared));
            }
        });
        Ok(Self { addr, shared, stop, ca_pem: certs.ca_pem, fingerprint: certs.fingerprint, options })
    }

    /// `https://127.0.0.1:<port>` (the API lives under `/api2/json`).
    pub fn url(&self) -> String {
        format!("https://127.0.0.1:{}", self.addr.port())
    }

    /// The cluster CA that signed the served certificate, PEM.
    pub fn ca_pem(&self) -> &str {
        &self.ca_pem
    }

    /// The served certificate's SHA-256 fingerprint, `AA:BB:...`.
    pub fn fingerprint(&self) -> &str {
        &self.fingerprint
    }

    /// The token file's content as upstream writes it: `USER@REALM!TOKENID=SECRET`.
    pub fn token_line(&self) -> String {
        format!("{}={}", self.options.token_id, self.options.secret)
    }

    pub fn node_names(&self) -> Vec<String> {
        locked(&self.shared.cluster).nodes.clone()
    }

    /// Requests refused by the schema check (400, 501), in order.
    pub fn refusals(&self) -> Vec<Recorded> {
        locked(&self.shared.refusals).clone()
    }

    /// Answers of the stand-in that do not have the schema's `returns` shape (its own bugs).
    pub fn bad_answers(&self) -> Vec<String> {
        locked(&self.shared.bad_answers).clone()
    }

    /// How many answers `hang_after_acting` has withheld so far: a test waits
    /// for this to grow to know its client is stalled after the aimed step acted.
    pub fn hangs(&self) -> usize {
        self.shared.hangs.load(Ordering::SeqCst)
    }

    /// Changes the fault knobs.
    pub fn faults(&self, change: impl FnOnce(&mut Faults)) {
        change(&mut locked(&self.shared.faults));
    }

    /// A VM's node and config, for assertions; `None` when absent.
    pub fn vm(&self, vmid: u32) -> Option<(String, Vec<(String, String)>)> {
        let mut cluster = locked(&self.shared.cluster);
        cluster.settle();
        cluster.vms.get(&vmid).map(|vm| (vm.node.clone(), vm.config.clone().into_iter().collect()))
    }

    /// The ISO volumes on the nodes' storages, as `(node, volid)`.
    pub fn volumes(&self) -> Vec<(String, String)> {
        let mut cluster = locked(&self.shared.cluster);
        cluster.settle();
        cluster.volumes.keys().cloned().collect()
    }

    /// A VM's firewall options and IP sets; `None` when the VM is absent.
    pub fn firewall(&self, vmid: u32) -> Option<Firewall> {
        Some(locked(&self.shared.cluster).vms.get(&vmid)?.firewall.clone())
    }

    /// Whether a VM is running (after settling due tasks).
    pub fn is_running(&self, vmid: u32) -> Option<bool> {
        let mut cluster = locked(&self.shared.cluster);
        cluster.settle();
        cluster.vms.get(&vmid).map(|vm| vm.running)
    }
}

impl Drop for StandIn {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wakes the accept loop so that it sees the flag.
        let _ = TcpStream::connect(self.addr);
    }
}

const IDLE: Duration = Duration::from_secs(30);

fn serve(tcp: TcpStream, server: Arc<rustls::ServerConfig>, shared: &Shared) {
    let _ = tcp.set_read_timeout(Some(IDLE));
    let Ok(conn) = rustls::ServerConnection::new(server) else { return };
    let mut reader = BufReader::new(rustls::StreamOwned::new(conn, tcp));
    while let Ok(Some(request)) = http::read_request(&mut reader) {
        let (status, reason, body, hang) = answer(shared, &request);
        if let Some(hang) = hang {
            shared.hangs.fetch_add(1, Ordering::SeqCst);
            std::thread::sleep(hang);
            return;
        }
        if http::write_response(reader.get_mut(), status, &reason, &body.to_string()).is_err() {
            return;
        }
    }
}

/// Status, reason phrase, body and, for the ambiguous-write fault, how long
/// to stay silent before dropping the connection.
fn answer(shared: &Shared, request: &http::Request) -> (u16, String, Value, Option<Duration>) {
    let Some(path) = request.path.strip_prefix("/api2/json") else {
        return (501, "Not Implemented".into(), json!({"data": null}), None);
    };
    let refuse = |refusal: Refusal| {
        locked(&shared.refusals).push(Recorded {
            method: request.method.clone(),
            path: path.to_string(),
            status: refusal.status,
            message: format!("{} {:?}", refusal.message, refusal.errors),
        });
        let mut body = json!({"data": null, "message": refusal.message});
        if !refusal.errors.is_empty() {
            body["errors"] = json!(refusal.errors);
        }
        (refusal.status, refusal.message, body, None)
    };
    let route = match shared.schema.resolve(&request.method, path) {
        Ok(route) => route,
        Err(refusal) => return refuse(refusal),
    };
    if request.authorization.as_deref() != Some(shared.authorization.as_str()) {
        let message = "authentication failure";
        return (401, message.into(), json!({"data": null, "message": message}), None);
    }
    let checked = match shared.schema.check(route, &request.params) {
        Ok(checked) => checked,
        Err(refusal) => return refuse(refusal),
    };
    let mut faults = locked(&shared.faults);
    let aimed = faults.aims_at(path);
    if let Some((_, status)) = faults.server_error.take_if(|(method, _)| aimed && *method == request.method) {
        let message = "Internal Server Error (stand-in fault)";
        return (status, message.into(), json!({"data": null, "message": message}), None);
    }
    let empty = serde_json::Map::new();
    let config_types = shared
        .schema
        .entry("/nodes/{node}/qemu/{vmid}/config", "GET")
        .and_then(|e| e["returns"]["properties"].as_object())
        .unwrap_or(&empty);
    let upload = request.upload.as_deref();
    let call = api::Call { method: &request.method, template: checked.template, params: &checked.params, user: &shared.token_user, config_types, upload };
    let result = api::handle(&mut locked(&shared.cluster), &faults.for_path(path), &call);
    match result {
        Ok(data) => {
            if let Err(problem) = returns::check(&checked.method["returns"], &data, "data") {
                locked(&shared.bad_answers).push(format!("{} {}: {problem}", request.method, path));
            }
            let hang = if aimed && api::is_mutation(&request.method) { faults.hang_after_acting.take() } else { None };
            (200, "OK".into(), json!({"data": data}), hang)
        }
        Err(e) => {
            if let Some(param) = e.param {
                // A refusal by the model (a taken VMID), not by the schema: not recorded.
                let message = "Parameter verification failed.";
                return (400, message.into(), json!({"data": null, "message": message, "errors": {param: e.message}}), None);
            }
            (e.status, e.message.clone(), json!({"data": null, "message": format!("{}\n", e.message)}), None)
        }
    }
}
