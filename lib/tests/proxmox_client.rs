//! The Proxmox VE client against the PVE stand-in (three nodes, HTTPS on
//! loopback): auth, certificate pinning, task following, the error kind of
//! each fault knob, and that the stand-in's schema check refused none of the
//! client's requests. This proves the requests are ones the published 9.1
//! schema allows and the client's handling of the modelled behaviour; it does
//! not prove that a real cluster behaves like the model.
#![cfg(feature = "proxmox")]

#[path = "support/pve_fixture.rs"]
mod pve_fixture;

use provisioner::provider::proxmox::tls::{parse_ca_pem, parse_fingerprint};
use provisioner::host::config::DbConfig;
use provisioner::host::paths::HostPaths;
use provisioner::provider::proxmox::{ApiToken, Client, ProxmoxConfig, Trust};
use std::os::unix::fs::PermissionsExt;
use provisioner::provider::ErrorCode;
use pve_fixture::Fixture;
use pve_standin::{Options, StandIn};
use std::time::Duration;

#[test]
fn a_valid_token_is_accepted_and_a_wrong_one_refused() {
    let f = Fixture::new();
    let client = f.client();
    assert_eq!(client.get("/version", &[]).unwrap()["release"], "9.1");
    let nodes = client.get("/nodes", &[]).unwrap();
    assert_eq!(nodes.as_array().map(Vec::len), Some(3));

    let wrong = ApiToken::parse("root@pam!blockhost=not-the-secret").unwrap();
    let err = Client::new(f.connection(f.pinned()), &wrong).unwrap().get("/version", &[]).unwrap_err();
    assert_eq!(err.code, ErrorCode::Auth, "{err}");
    assert_eq!(err.message, "GET /version: authentication failure (HTTP 401)");
}

#[test]
fn a_certificate_that_does_not_match_the_pin_is_refused_with_an_actionable_line() {
    let f = Fixture::new();
    let other = "00:11:22:33:44:55:66:77:88:99:AA:BB:CC:DD:EE:FF:00:11:22:33:44:55:66:77:88:99:AA:BB:CC:DD:EE:FF";
    let client = Client::new(f.connection(Trust::Fingerprint(parse_fingerprint(other).unwrap())), &f.token).unwrap();
    let err = client.get("/version", &[]).unwrap_err();
    assert_eq!(err.code, ErrorCode::Auth);
    assert_eq!(
        err.message,
        format!(
            "{}: the API's TLS certificate has SHA-256 fingerprint {}, not the pinned {other}; if the certificate was replaced on purpose, set proxmox.tls_fingerprint to the new one (`pvenode cert info` shows it)",
            f.standin.url(),
            f.standin.fingerprint()
        )
    );
}

#[test]
fn a_private_ca_is_trusted_and_a_foreign_one_refused() {
    let f = Fixture::new();
    let ca = Trust::Ca(parse_ca_pem(f.standin.ca_pem().as_bytes()).unwrap());
    assert_eq!(Client::new(f.connection(ca), &f.token).unwrap().get("/version", &[]).unwrap()["version"], "9.1.3");

    let foreign = StandIn::start(Options::default()).unwrap();
    let wrong_ca = Trust::Ca(parse_ca_pem(foreign.ca_pem().as_bytes()).unwrap());
    let err = Client::new(f.connection(wrong_ca), &f.token).unwrap().get("/version", &[]).unwrap_err();
    assert_eq!(err.code, ErrorCode::Auth);
    assert!(err.message.contains("is not signed by the CA in proxmox.ca_file") && err.message.contains(f.standin.fingerprint()), "{err}");
}

#[test]
fn a_task_is_followed_to_ok_and_to_its_failure() {
    let f = Fixture::new();
    let client = f.client();
    f.standin.faults(|k| k.task_duration = Duration::from_millis(300));
    f.clone_vm(&client, "100", "pve2");
    let (node, config) = f.standin.vm(100).expect("the clone exists once its task is OK");
    assert_eq!(node, "pve2");
    assert!(config.contains(&("name".into(), "vm-a".into())), "{config:?}");
    client.run_task("POST", "/nodes/pve2/qemu/100/status/start", &[]).expect("start");
    assert_eq!(f.standin.is_running(100), Some(true));

    f.standin.faults(|k| k.failing_tasks = Some("clone failed: storage migration failed: not enough space".into()));
    let err = client.run_task("POST", "/nodes/pve1/qemu/9001/clone", &[("newid", "101"), ("name", "vm-b"), ("full", "1")]).unwrap_err();
    assert_eq!(err.code, ErrorCode::Capacity, "{err}");
    assert!(err.message.starts_with("task UPID:pve1:") && err.message.ends_with(" failed: clone failed: storage migration failed: not enough space"), "{err}");
    assert!(f.standin.vm(101).is_none(), "a failed clone leaves no VM");
}

#[test]
fn pve_errors_map_onto_the_taxonomy() {
    let f = Fixture::new();
    let client = f.client();
    let err = client.get("/nodes/pve1/qemu/555/status/current", &[]).unwrap_err();
    assert_eq!(err.code, ErrorCode::NotFound, "{err}");
    f.clone_vm(&client, "100", "pve1");
    let err = client.post("/nodes/pve1/qemu/9001/clone", &[("newid", "100"), ("name", "vm-b"), ("full", "1")]).unwrap_err();
    assert_eq!(err.code, ErrorCode::Conflict, "{err}");
    let err = client.get("/cluster/nextid", &[("vmid", "100")]).unwrap_err();
    assert_eq!(err.code, ErrorCode::Conflict, "a taken VMID: {err}");
    assert_eq!(client.get("/cluster/nextid", &[("vmid", "101")]).unwrap(), 101);
    let err = client.post("/nodes/pve1/qemu/100/agent/ping", &[]).unwrap_err();
    assert_eq!(err.code, ErrorCode::Conflict, "agent of a stopped VM: {err}");
}

#[test]
fn a_mutation_that_acted_but_got_no_answer_is_ambiguous() {
    let f = Fixture::new();
    let client = f.client();
    f.clone_vm(&client, "100", "pve3");
    f.standin.faults(|k| k.hang_after_acting = Some(Duration::from_secs(4)));
    let err = client.post("/nodes/pve3/qemu/100/status/start", &[]).unwrap_err();
    assert_eq!(err.code, ErrorCode::Ambiguous, "{err}");
    assert_eq!(f.standin.is_running(100), Some(true), "the start did happen");
}

#[test]
fn a_server_error_is_ambiguous_after_a_mutation_and_unavailable_on_a_read() {
    let f = Fixture::new();
    let client = f.client();
    f.clone_vm(&client, "100", "pve1");
    f.standin.faults(|k| k.server_error = Some(("POST", 503)));
    let err = client.post("/nodes/pve1/qemu/100/status/start", &[]).unwrap_err();
    assert_eq!(err.code, ErrorCode::Ambiguous, "{err}");
    f.standin.faults(|k| k.server_error = Some(("GET", 503)));
    let err = client.get("/cluster/resources", &[("type", "vm")]).unwrap_err();
    assert_eq!(err.code, ErrorCode::Unavailable, "{err}");
}

#[test]
fn a_node_that_is_down_is_unavailable_and_shown_offline() {
    let f = Fixture::new();
    let client = f.client();
    f.clone_vm(&client, "100", "pve2");
    f.standin.faults(|k| {
        k.down_nodes.insert("pve2".into());
    });
    let err = client.post("/nodes/pve2/qemu/100/status/start", &[]).unwrap_err();
    assert_eq!(err.code, ErrorCode::Unavailable, "{err}");
    assert_eq!(f.standin.is_running(100), Some(false));
    let nodes = client.get("/nodes", &[]).unwrap();
    let pve2 = nodes.as_array().unwrap().iter().find(|n| n["node"] == "pve2").unwrap().clone();
    assert_eq!(pve2["status"], "offline");
    let vms = client.get("/cluster/resources", &[("type", "vm")]).unwrap();
    let vm = vms.as_array().unwrap().iter().find(|v| v["vmid"] == 100).unwrap().clone();
    assert_eq!((vm["node"].as_str(), vm["status"].as_str()), (Some("pve2"), Some("unknown")));
}

#[test]
fn a_slow_task_past_the_bound_is_ambiguous_and_keeps_its_vm_locked() {
    let f = Fixture::new();
    let mut connection = f.connection(f.pinned());
    connection.task_timeout = Duration::from_secs(1);
    let client = Client::new(connection, &f.token).unwrap();
    f.standin.faults(|k| k.task_duration = Duration::from_secs(3));
    let err = client.run_task("POST", "/nodes/pve1/qemu/9001/clone", &[("newid", "100"), ("name", "vm-a"), ("full", "1")]).unwrap_err();
    assert_eq!(err.code, ErrorCode::Ambiguous, "{err}");
    assert!(err.message.ends_with("still running after 1 s"), "{err}");
    let err = client.put("/nodes/pve1/qemu/100/config", &[("cores", "2")]).unwrap_err();
    assert_eq!(err.code, ErrorCode::Conflict, "{err}");
    assert_eq!(err.message, "PUT /nodes/pve1/qemu/100/config: VM 100 is locked (clone) (HTTP 500)");
}

#[test]
fn exec_and_resize_requests_pass_the_schema() {
    let f = Fixture::new();
    let client = f.client();
    f.clone_vm(&client, "100", "pve1");
    client.put("/nodes/pve1/qemu/100/config", &[("cores", "2"), ("memory", "2048"), ("agent", "enabled=1"), ("tags", "blockhost;owner-admin")]).unwrap();
    client.run_task("PUT", "/nodes/pve1/qemu/100/resize", &[("disk", "scsi0"), ("size", "20G")]).unwrap();
    client.run_task("POST", "/nodes/pve1/qemu/100/status/start", &[]).unwrap();
    client.post("/nodes/pve1/qemu/100/agent/ping", &[]).unwrap();
    let started = client.post("/nodes/pve1/qemu/100/agent/exec", &[("command", "/bin/sh"), ("command", "-c"), ("command", "echo hello world")]).unwrap();
    let pid = started["pid"].as_i64().unwrap().to_string();
    let status = client.get("/nodes/pve1/qemu/100/agent/exec-status", &[("pid", &pid)]).unwrap();
    assert_eq!(status["out-data"], "hello world\n");
    client.run_task("POST", "/nodes/pve1/qemu/100/status/shutdown", &[("timeout", "30"), ("forceStop", "1")]).unwrap();
    client.run_task("DELETE", "/nodes/pve1/qemu/100", &[("purge", "1"), ("destroy-unreferenced-disks", "1")]).unwrap();
    assert!(f.standin.vm(100).is_none());
}

#[test]
fn a_client_from_db_yaml_and_the_token_file_under_the_root() {
    let f = Fixture::new();
    let root = tempfile::tempdir().unwrap();
    let paths = HostPaths::with_root(root.path());
    std::fs::create_dir_all(paths.config_dir()).unwrap();
    let yaml = format!("proxmox:\n  url: {}\n  tls_fingerprint: \"{}\"\n  node: pve2\n", f.standin.url(), f.standin.fingerprint());
    std::fs::write(paths.config_file("db.yaml"), yaml).unwrap();
    let token = paths.config_file("pve-token");
    std::fs::write(&token, f.standin.token_line()).unwrap();
    std::fs::set_permissions(&token, std::fs::Permissions::from_mode(0o640)).unwrap();
    let config = ProxmoxConfig::load(&paths, &DbConfig::load(&paths, true).unwrap()).unwrap();
    assert_eq!(config.node, "pve2");
    assert_eq!(config.client().unwrap().get("/version", &[]).unwrap()["release"], "9.1");

    std::fs::set_permissions(&token, std::fs::Permissions::from_mode(0o644)).unwrap();
    let err = config.client().err().expect("a world-readable token is refused");
    assert_eq!(err.code, ErrorCode::Auth);
    assert_eq!(err.to_string(), format!("{}: the Proxmox VE API token is readable by every user (mode 0644); make it 0640 root:blockhost", token.display()));
}

#[test]
fn a_mutation_that_never_got_past_the_connection_is_unavailable_not_ambiguous() {
    let f = Fixture::new();
    let closing = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = closing.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for stream in closing.incoming().take(1) {
            drop(stream);
        }
    });
    let mut connection = f.connection(f.pinned());
    connection.url = format!("https://127.0.0.1:{port}");
    let err = Client::new(connection.clone(), &f.token).unwrap().post("/nodes/pve1/qemu/100/status/start", &[]).unwrap_err();
    assert_eq!(err.code, ErrorCode::Unavailable, "a dropped TLS handshake: {err}");
    assert!(err.message.contains("TLS handshake failed"), "{err}");

    let unused = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    connection.url = format!("https://127.0.0.1:{}", unused.local_addr().unwrap().port());
    drop(unused);
    let err = Client::new(connection, &f.token).unwrap().post("/nodes/pve1/qemu/100/status/start", &[]).unwrap_err();
    assert_eq!(err.code, ErrorCode::Unavailable, "nothing listening: {err}");
}
