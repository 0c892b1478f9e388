//! The stand-in itself: it refuses each kind of request the published schema
//! does not allow (one case per rule), answers well-formed ones in the
//! schema's shape, and records exactly the refusals.

use pve_standin::{Options, StandIn};
use serde_json::Value;
use ureq::tls::{Certificate, RootCerts, TlsConfig, TlsProvider};

struct Api {
    agent: ureq::Agent,
    base: String,
    auth: String,
}

impl Api {
    fn new(standin: &StandIn) -> Self {
        let ca = Certificate::from_pem(standin.ca_pem().as_bytes()).expect("CA PEM").to_owned();
        let tls = TlsConfig::builder().provider(TlsProvider::Rustls).root_certs(RootCerts::new_with_certs(&[ca])).build();
        let agent = ureq::Agent::config_builder().tls_config(tls).http_status_as_error(false).build().new_agent();
        Self { agent, base: format!("{}/api2/json", standin.url()), auth: format!("PVEAPIToken={}", standin.token_line()) }
    }

    fn call_as(&self, auth: Option<&str>, method: &str, path: &str, params: &[(&str, &str)]) -> (u16, Value) {
        let url = format!("{}{path}", self.base);
        let auth = auth.unwrap_or("");
        let response = match method {
            "GET" => self.agent.get(&url).header("Authorization", auth).query_pairs(params.iter().copied()).call(),
            "DELETE" => self.agent.delete(&url).header("Authorization", auth).query_pairs(params.iter().copied()).call(),
            "POST" => self.agent.post(&url).header("Authorization", auth).send_form(params.iter().copied()),
            "PUT" => self.agent.put(&url).header("Authorization", auth).send_form(params.iter().copied()),
            _ => unreachable!(),
        };
        let mut response = response.expect("the stand-in answers");
        let status = response.status().as_u16();
        let body = response.body_mut().read_to_string().expect("a body");
        (status, serde_json::from_str(&body).expect("a JSON body"))
    }

    fn call(&self, method: &str, path: &str, params: &[(&str, &str)]) -> (u16, Value) {
        self.call_as(Some(&self.auth.clone()), method, path, params)
    }
}

/// Method, path, parameters, the expected status, the parameter `errors` names.
type Refused<'a> = (&'a str, &'a str, &'a [(&'a str, &'a str)], u16, Option<&'a str>);

#[test]
fn the_stand_in_refuses_what_the_schema_does_not_allow() {
    let standin = StandIn::start(Options::default()).expect("stand-in starts");
    let api = Api::new(&standin);
    let refused: &[Refused] = &[
        ("GET", "/nodes/pve1/no-such-thing", &[], 501, None),
        ("DELETE", "/cluster/nextid", &[], 501, None),
        ("GET", "/cluster/nextid", &[("color", "red")], 400, Some("color")),
        ("POST", "/nodes/pve1/qemu/9001/clone", &[("name", "vm1")], 400, Some("newid")),
        ("GET", "/cluster/nextid", &[("vmid", "12a")], 400, Some("vmid")),
        ("POST", "/nodes/pve1/qemu/9001/clone", &[("newid", "120"), ("full", "true")], 400, Some("full")),
        ("PUT", "/nodes/pve1/qemu/9001/config", &[("cpulimit", "lots")], 400, Some("cpulimit")),
        ("GET", "/cluster/resources", &[("type", "vms")], 400, Some("type")),
        ("GET", "/cluster/nextid", &[("vmid", "99")], 400, Some("vmid")),
        ("GET", "/cluster/nextid", &[("vmid", "1000000000")], 400, Some("vmid")),
        ("PUT", "/nodes/pve1/qemu/9001/resize", &[("disk", "scsi0"), ("size", "20X")], 400, Some("size")),
        ("PUT", "/nodes/pve1/qemu/9001/resize", &[("disk", "scsi99"), ("size", "20G")], 400, Some("disk")),
        ("POST", "/nodes/pve1/qemu/9001/clone", &[("newid", "120"), ("name", "not a dns name")], 400, Some("name")),
        ("PUT", "/nodes/pve1/qemu/9001/config", &[("agent", "enabled=1,colour=red")], 400, Some("agent")),
        ("POST", "/nodes/pve1/qemu/9001/clone", &[("newid", "120"), ("snapname", &"s".repeat(41))], 400, Some("snapname")),
        ("GET", "/nodes/pve_1/qemu", &[], 400, Some("node")),
        ("GET", "/cluster/nextid", &[("vmid", "100"), ("vmid", "101")], 400, Some("vmid")),
    ];
    for (method, path, params, status, param) in refused {
        let (got, body) = api.call(method, path, params);
        assert_eq!(got, *status, "{method} {path} {params:?}: {body}");
        assert!(body["data"].is_null(), "{body}");
        if let Some(param) = param {
            assert!(body["errors"][param].is_string(), "{method} {path} {params:?}: errors should name {param}: {body}");
        }
    }
    assert_eq!(standin.refusals().len(), refused.len(), "{:#?}", standin.refusals());

    for auth in [None, Some("PVEAPIToken=root@pam!blockhost=wrong-secret")] {
        let (status, _) = api.call_as(auth, "GET", "/version", &[]);
        assert_eq!(status, 401, "{auth:?}");
    }
    assert_eq!(standin.refusals().len(), refused.len(), "a refused token is not a schema refusal");
}

#[test]
fn the_stand_in_answers_good_requests_in_the_schema_shape() {
    let standin = StandIn::start(Options::default()).expect("stand-in starts");
    let api = Api::new(&standin);
    assert_eq!(api.call("GET", "/version", &[]).1["data"]["release"], "9.1");
    let (_, nodes) = api.call("GET", "/nodes", &[]);
    assert_eq!(nodes["data"].as_array().map(Vec::len), Some(3));
    let (status, next) = api.call("GET", "/cluster/nextid", &[]);
    assert_eq!((status, next["data"].as_i64()), (200, Some(100)));
    let (status, refused) = api.call("POST", "/nodes/pve1/qemu/9001/clone", &[("newid", "100"), ("name", "vm1"), ("full", "1"), ("target", "pve2")]);
    assert_eq!((status, refused["message"].as_str()), (500, Some("Can't clone VM to node 'pve2' (VM uses local storage)\n")));
    let (status, upid) = api.call("POST", "/nodes/pve1/qemu/9001/clone", &[("newid", "100"), ("name", "vm1"), ("full", "1"), ("target", "pve1")]);
    assert_eq!(status, 200, "{upid}");
    let upid = upid["data"].as_str().expect("a UPID").to_string();
    assert!(upid.starts_with("UPID:pve1:"), "{upid}");
    let (_, task) = api.call("GET", &format!("/nodes/pve1/tasks/{}/status", upid.replace(':', "%3A")), &[]);
    assert_eq!((task["data"]["status"].as_str(), task["data"]["exitstatus"].as_str()), (Some("stopped"), Some("OK")), "{task}");
    let (status, taken) = api.call("GET", "/cluster/nextid", &[("vmid", "100")]);
    assert_eq!(status, 400, "{taken}");
    assert_eq!(api.call("PUT", "/nodes/pve1/qemu/100/config", &[("cores", "2"), ("agent", "enabled=1"), ("tags", "blockhost")]).0, 200);
    let (_, config) = api.call("GET", "/nodes/pve1/qemu/100/config", &[]);
    assert_eq!((config["data"]["cores"].as_i64(), config["data"]["tags"].as_str()), (Some(2), Some("blockhost")), "{config}");
    let (status, log) = api.call("GET", &format!("/nodes/pve1/tasks/{}/log", upid.replace(':', "%3A")), &[("start", "0"), ("limit", "50")]);
    assert_eq!((status, log["data"][1]["t"].as_str()), (200, Some("TASK OK")), "{log}");
    assert_eq!(api.call("PUT", "/nodes/pve1/qemu/100/resize", &[("disk", "scsi0"), ("size", "20G")]).0, 200);
    assert_eq!(api.call("POST", "/nodes/pve1/qemu/100/status/start", &[]).0, 200);
    assert_eq!(api.call("POST", "/nodes/pve1/qemu/100/agent/ping", &[]).0, 200);
    let (_, exec) = api.call("POST", "/nodes/pve1/qemu/100/agent/exec", &[("command", "/bin/sh"), ("command", "-c"), ("command", "echo hi")]);
    let pid = exec["data"]["pid"].as_i64().expect("a pid").to_string();
    let (_, done) = api.call("GET", "/nodes/pve1/qemu/100/agent/exec-status", &[("pid", &pid)]);
    assert_eq!(done["data"]["out-data"], "hi\n");
    let (_, fs) = api.call("GET", "/nodes/pve1/qemu/100/agent/get-fsinfo", &[]);
    assert_eq!(fs["data"]["result"][0]["total-bytes"].as_u64(), Some(20 << 30));
    let (_, current) = api.call("GET", "/nodes/pve1/qemu/100/status/current", &[]);
    assert_eq!(current["data"]["status"], "running");
    let (_, resources) = api.call("GET", "/cluster/resources", &[("type", "vm")]);
    assert!(resources["data"].as_array().expect("a list").iter().any(|r| r["vmid"] == 100 && r["node"] == "pve1"), "{resources}");
    let (status, running) = api.call("DELETE", "/nodes/pve1/qemu/100", &[("purge", "1")]);
    assert_eq!(status, 500, "a running VM is not destroyed: {running}");
    assert_eq!(api.call("POST", "/nodes/pve1/qemu/100/status/stop", &[]).0, 200);
    assert_eq!(api.call("DELETE", "/nodes/pve1/qemu/100", &[("purge", "1"), ("destroy-unreferenced-disks", "1")]).0, 200);
    assert!(standin.vm(100).is_none());
    assert_eq!(standin.refusals(), vec![]);
    assert_eq!(standin.bad_answers(), Vec::<String>::new());
}

#[test]
fn a_running_task_locks_its_vm() {
    let standin = StandIn::start(Options::default()).expect("stand-in starts");
    standin.faults(|f| f.task_duration = std::time::Duration::from_secs(30));
    let api = Api::new(&standin);
    assert_eq!(api.call("POST", "/nodes/pve1/qemu/9001/clone", &[("newid", "100"), ("name", "vm1")]).0, 200);
    let (status, body) = api.call("POST", "/nodes/pve1/qemu/100/status/start", &[]);
    assert_eq!(status, 500);
    assert_eq!(body["message"], "VM 100 is locked (clone)\n");
}

#[test]
fn a_template_on_shared_storage_clones_to_any_node() {
    let standin = StandIn::start(Options { template_storage: "ceph", ..Options::default() }).expect("stand-in starts");
    let api = Api::new(&standin);
    let (status, upid) = api.call("POST", "/nodes/pve1/qemu/9001/clone", &[("newid", "100"), ("name", "vm1"), ("full", "1"), ("target", "pve3"), ("storage", "local-lvm")]);
    assert_eq!(status, 200, "{upid}");
    assert_eq!(standin.vm(100).map(|(node, _)| node).as_deref(), Some("pve3"));
    assert_eq!(standin.refusals(), vec![]);
}

/// A multipart upload of `data` as `file` with `content`; the status and body.
fn upload(api: &Api, storage: &str, content: &str, file: &str, data: &[u8]) -> (u16, Value) {
    let mut body = format!("--b0\r\nContent-Disposition: form-data; name=\"content\"\r\n\r\n{content}\r\n--b0\r\nContent-Disposition: form-data; name=\"filename\"; filename=\"{file}\"\r\n\r\n").into_bytes();
    body.extend_from_slice(data);
    body.extend_from_slice(b"\r\n--b0--\r\n");
    let url = format!("{}/nodes/pve2/storage/{storage}/upload", api.base);
    let mut response = api.agent.post(&url).header("Authorization", &api.auth).header("Content-Type", "multipart/form-data; boundary=b0").send(&body[..]).expect("an answer");
    let status = response.status().as_u16();
    (status, serde_json::from_str(&response.body_mut().read_to_string().unwrap()).unwrap())
}

#[test]
fn an_iso_upload_lands_on_its_node_and_storage_and_is_deleted_as_a_task() {
    let standin = StandIn::start(Options::default()).expect("stand-in starts");
    let api = Api::new(&standin);
    let (status, answer) = upload(&api, "local", "iso", "seed.iso", b"\r\n--b1 binary\0data");
    assert_eq!(status, 200, "{answer}");
    assert!(answer["data"].as_str().unwrap().contains(":imgcopy:"), "{answer}");
    assert_eq!(standin.volumes(), [("pve2".to_string(), "local:iso/seed.iso".to_string())]);
    let (_, listed) = api.call("GET", "/nodes/pve2/storage/local/content", &[("content", "iso")]);
    assert_eq!(listed["data"][0]["size"], 18);
    assert_eq!(upload(&api, "local-lvm", "iso", "x.iso", b"x").0, 500, "local-lvm holds no ISOs");
    assert_eq!(upload(&api, "local", "iso", "x.txt", b"x").0, 500, "an ISO's extension");
    assert_eq!(upload(&api, "local", "images", "x.iso", b"x").0, 400, "content outside the schema's enum");
    let (status, _) = api.call("DELETE", "/nodes/pve2/storage/local/content/local%3Aiso%2Fseed.iso", &[]);
    assert_eq!(status, 200);
    assert_eq!(standin.volumes(), []);
    assert_eq!(standin.refusals().len(), 1, "only the upload with content=images");
    assert_eq!(standin.bad_answers(), Vec::<String>::new());
}

#[test]
fn aimed_faults_meet_only_the_requests_of_their_path() {
    let standin = StandIn::start(Options::default()).expect("stand-in starts");
    let api = Api::new(&standin);
    standin.faults(|f| {
        f.only_path = Some("/status/start".into());
        f.server_error = Some(("POST", 503));
        f.failing_tasks = Some("start failed".into());
    });
    let clone = [("newid", "100"), ("name", "vm1")];
    assert_eq!(api.call("POST", "/nodes/pve1/qemu/9001/clone", &clone).0, 200, "not aimed at: answered, task fine");
    assert_eq!(api.call("POST", "/nodes/pve1/qemu/100/status/start", &[]).0, 503, "the aimed step");
    let (status, upid) = api.call("POST", "/nodes/pve1/qemu/100/status/start", &[]);
    assert_eq!(status, 200);
    let (_, task) = api.call("GET", &format!("/nodes/pve1/tasks/{}/status", upid["data"].as_str().unwrap()), &[]);
    assert_eq!(task["data"]["exitstatus"], "start failed");
    assert_eq!(standin.vm(100).map(|(_, c)| c.iter().any(|(k, v)| k == "name" && v == "vm1")), Some(true), "the clone task was not failed");
    assert_eq!(standin.hangs(), 0);
}

#[test]
fn an_image_imported_into_a_new_vm_becomes_a_template_of_base_volumes() {
    let standin = StandIn::start(Options { template_vmid: 9500, ..Options::default() }).expect("stand-in starts");
    let api = Api::new(&standin);
    let mut qcow2 = b"QFI\xfb\0\0\0\x03".to_vec();
    qcow2.resize(24, 0);
    qcow2.extend_from_slice(&(3u64 << 30).to_be_bytes());
    assert_eq!(upload(&api, "local", "import", "t.qcow2", &qcow2).0, 500, "a fresh `local` takes no imports");
    assert_eq!(api.call("PUT", "/storage/local", &[("content", "backup,iso,vztmpl,import")]).0, 200);
    assert_eq!(upload(&api, "local", "import", "t.iso", &qcow2).0, 500, "an import's extension");
    assert_eq!(upload(&api, "local", "import", "t.qcow2", b"not a qcow2 image at all, far too short").0, 500, "a qcow2 without its header");
    assert_eq!(upload(&api, "local", "import", "t.qcow2", &qcow2).0, 200);
    let (_, listed) = api.call("GET", "/nodes/pve2/storage/local/content", &[("content", "import")]);
    assert_eq!((listed["data"][0]["volid"].as_str(), listed["data"][0]["format"].as_str()), (Some("local:import/t.qcow2"), Some("qcow2")));

    let create = |vmid: &str, source: &str| {
        let scsi0 = format!("local-lvm:0,import-from={source}");
        api.call("POST", "/nodes/pve2/qemu", &[("vmid", vmid), ("name", "t"), ("scsi0", &scsi0), ("boot", "order=scsi0")])
    };
    assert_eq!(create("9001", "local:import/missing.qcow2").0, 500, "an import from a volume that is not there");
    assert_eq!(create("9500", "local:import/t.qcow2").0, 500, "a VMID in use");
    assert_eq!(create("9001", "local:import/t.qcow2").0, 200);
    let scsi0 = |standin: &StandIn| standin.vm(9001).and_then(|(_, c)| c.into_iter().find(|(k, _)| k == "scsi0")).map(|(_, v)| v);
    assert_eq!(scsi0(&standin).as_deref(), Some("local-lvm:vm-9001-disk-0,size=3G"));
    assert_eq!(api.call("POST", "/nodes/pve2/qemu/9001/template", &[]).0, 200);
    assert_eq!(scsi0(&standin).as_deref(), Some("local-lvm:base-9001-disk-0,size=3G"));
    assert_eq!(api.call("POST", "/nodes/pve2/qemu/9001/template", &[]).0, 500, "already a template");
    assert_eq!(api.call("POST", "/nodes/pve2/qemu/9001/status/start", &[]).0, 500, "a template does not start");
    assert_eq!(standin.refusals(), vec![]);
    assert_eq!(standin.bad_answers(), Vec::<String>::new());
}
