//! The Proxmox VE provider against the three-node PVE stand-in, through the
//! `Backend` façade the verbs use: what spawn makes (the reserved VMID, the
//! seed ISO as a cdrom, CPU, memory, NIC, tags, the grown disk), and the
//! ambiguous writes of spawn and terminate under the stand-in's faults
//! (timeout after acting on the clone, config change or resize, 5xx, a task
//! failing midway, a node down): never a
//! second VM, never a VMID left taken, never a seed left behind; and the
//! create verb carrying the VMID it reserved, rolled back when the cluster uses it.
#![cfg(feature = "proxmox")]

#[path = "support/pve_host.rs"]
mod pve_host;

use provisioner::host::cloud_init::{self, BootstrapInput};
use provisioner::host::config::{AuthDefaults, DbConfig};
use provisioner::host::paths::HostPaths;
use provisioner::provider::module::OpenContext;
use provisioner::provider::{registry, Backend, ErrorCode, NicSpec, VmSpec};
use std::time::Duration;

struct Host {
    backend: Backend,
    guard: pve_host::StandInGuard,
    root: tempfile::TempDir,
}

impl Host {
    fn new() -> Self {
        Self::with(pve_standin::Options::default())
    }

    fn with(options: pve_standin::Options) -> Self {
        Self::on_bridge(options, "vmbr0")
    }

    /// db.yaml's `bridge` is `bridge`.
    fn on_bridge(options: pve_standin::Options, bridge: &str) -> Self {
        let root = tempfile::tempdir().unwrap();
        let paths = HostPaths::with_root(root.path());
        let guard = pve_host::write(&paths, bridge, options);
        let config = DbConfig::load(&paths, true).unwrap();
        let backend = (registry::find("proxmox").unwrap().open)(&OpenContext { paths: &paths, config: &config }).unwrap();
        Self { backend, guard, root }
    }

    /// A client of the stand-in as this host's db.yaml configures it.
    fn client(&self) -> provisioner::provider::proxmox::Client {
        let paths = HostPaths::with_root(self.root.path());
        let config = provisioner::provider::proxmox::ProxmoxConfig::load(&paths, &DbConfig::load(&paths, true).unwrap()).unwrap();
        config.client().unwrap()
    }

    fn standin(&self) -> &pve_standin::StandIn {
        &self.guard.0
    }

    /// The VMs of the cluster (the template included), as (VMID, name).
    fn vms(&self) -> Vec<(u32, String)> {
        (100..10_000).filter_map(|id| self.standin().vm(id).map(|(_, config)| (id, value(&config, "name")))).collect()
    }

    fn stage(&self, spec: &VmSpec) {
        self.backend.stage_bootstrap(&spec.name, &spec.bootstrap).unwrap();
    }

    /// Nothing of `name` is left: no VM, no seed.
    fn assert_gone(&self, name: &str) {
        assert_eq!(self.backend.get(name).unwrap(), None);
        assert_eq!(self.backend.leftovers(name).unwrap(), Vec::<String>::new());
        assert!(!self.standin().volumes().iter().any(|(_, v)| v.contains(name)), "{:?}", self.standin().volumes());
    }
}

/// The addresses the VM's firewall lets `net0` send from; the only IP set there.
fn ipfilter(host: &Host, vmid: u32) -> Vec<String> {
    let sets = host.standin().firewall(vmid).unwrap().ipsets;
    assert_eq!(sets.keys().collect::<Vec<_>>(), ["ipfilter-net0"]);
    sets["ipfilter-net0"].clone()
}

fn value(config: &[(String, String)], key: &str) -> String {
    config.iter().find(|(k, _)| k == key).map(|(_, v)| v.clone()).unwrap_or_default()
}

fn spec(name: &str, vmid: Option<u32>, disk_gib: u64) -> VmSpec {
    let nic = NicSpec {
        bridge: "vmbr0".into(),
        ipv4: "10.0.0.5".parse().unwrap(),
        ipv4_prefix_len: 24,
        gateway: Some("10.0.0.1".parse().unwrap()),
        ipv6: None,
        ipv6_gateway: None,
        mac: cloud_init::mac_for(name, None),
    };
    let tmp = tempfile::tempdir().unwrap();
    let input = BootstrapInput {
        name,
        username: "admin",
        wallet: "0xabc",
        nft_token_id: None,
        nic: Some(&nic),
        dns_zone: None,
        auth: AuthDefaults { otp_length: 6, otp_ttl_seconds: 300 },
        verbatim: None,
    };
    let bootstrap = cloud_init::render(&HostPaths::with_root(tmp.path()), &input).unwrap();
    VmSpec { name: name.into(), vmid, vcpus: 2, memory_mib: 1024, disk_gib, nic: Some(nic), bootstrap }
}

#[test]
fn spawn_makes_the_reserved_vmid_with_the_seed_as_a_cdrom() {
    let host = Host::new();
    let spec = spec("vm-a", Some(142), 8);
    host.stage(&spec);
    assert_eq!(host.standin().volumes(), [("pve1".to_string(), "local:iso/blockhost-seed-vm-a.iso".to_string())]);
    let info = host.backend.spawn(&spec).unwrap();
    assert_eq!((info.vcpus, info.memory_mib), (2, 1024));
    let (node, config) = host.standin().vm(142).expect("VM 142");
    assert_eq!(node, "pve1", "the template's disk is on local storage: the VM stays on its node");
    assert_eq!(value(&config, "ide2"), "local:iso/blockhost-seed-vm-a.iso,media=cdrom");
    assert_eq!(value(&config, "net0"), format!("virtio={},bridge=vmbr0,firewall=1", spec.nic.as_ref().unwrap().mac.to_uppercase()));
    let firewall = host.standin().firewall(142).unwrap();
    let options: Vec<(&str, &str)> = firewall.options.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    assert_eq!(options, [("enable", "1"), ("ipfilter", "1"), ("policy_in", "ACCEPT"), ("policy_out", "ACCEPT")], "it sends only from its own address");
    assert_eq!(ipfilter(&host, 142), ["10.0.0.5"]);
    assert_eq!((value(&config, "cores"), value(&config, "memory"), value(&config, "tags")), ("2".into(), "1024".into(), "blockhost".into()));
    assert!(value(&config, "scsi0").ends_with("size=8G"), "{config:?}");
    assert!(!config.iter().any(|(_, v)| v.contains("cloudinit")), "the template's cloud-init drive is gone: {config:?}");

    host.backend.start("vm-a").unwrap();
    host.backend.terminate("vm-a").unwrap();
    host.assert_gone("vm-a");
    host.backend.terminate("vm-a").unwrap();
}

#[test]
fn a_template_on_shared_storage_lets_placement_choose_the_node() {
    let host = Host::with(pve_standin::Options { template_storage: "ceph", ..pve_standin::Options::default() });
    let running = spec("vm-a", Some(120), 4);
    host.stage(&running);
    host.backend.spawn(&running).unwrap();
    host.backend.start("vm-a").unwrap();
    let (first, config) = host.standin().vm(120).unwrap();
    assert!(value(&config, "scsi0").starts_with("local-lvm:vm-120-disk-0"), "a full copy onto the configured storage: {config:?}");
    let next = spec("vm-b", Some(121), 4);
    host.stage(&next);
    host.backend.spawn(&next).unwrap();
    let (second, _) = host.standin().vm(121).unwrap();
    assert_ne!(first, second, "the node running vm-a has less free memory");
    assert!(host.standin().volumes().contains(&(second, "local:iso/blockhost-seed-vm-b.iso".to_string())), "the seed is on the VM's node");
}

#[test]
fn a_disk_is_grown_never_shrunk_and_a_vmid_is_picked_when_none_was_reserved() {
    let host = Host::new();
    let spec = spec("vm-small", None, 2);
    host.stage(&spec);
    host.backend.spawn(&spec).unwrap();
    let (_, config) = host.standin().vm(100).expect("the first free VMID of vmid_range");
    assert!(value(&config, "scsi0").ends_with("size=3G"), "the template's 3G stays: {config:?}");
}

#[test]
fn a_reserved_vmid_that_another_vm_uses_is_a_conflict_and_changes_nothing() {
    let host = Host::new();
    let first = spec("vm-a", Some(150), 4);
    host.stage(&first);
    host.backend.spawn(&first).unwrap();
    let second = spec("vm-b", Some(150), 4);
    host.stage(&second);
    let err = host.backend.spawn(&second).unwrap_err();
    assert_eq!((err.code, err.message.as_str()), (ErrorCode::Conflict, "VMID 150 reserved for vm-b is already used by VM vm-a on node pve1"));
    let err = host.backend.spawn(&spec("vm-c", Some(9001), 4)).unwrap_err();
    assert_eq!(err.code, ErrorCode::InvalidSpec, "no seed staged: {err}");
    host.stage(&spec("vm-c", Some(9001), 4));
    assert_eq!(host.backend.spawn(&spec("vm-c", Some(9001), 4)).unwrap_err().code, ErrorCode::Conflict, "the template's VMID");
    assert_eq!(host.vms(), [(150, "vm-a".to_string()), (9001, "debian-12-web3-template".to_string())]);
    for name in ["vm-b", "vm-c"] {
        host.backend.terminate(name).unwrap();
        host.assert_gone(name);
    }
}

#[test]
fn a_clone_that_timed_out_after_acting_is_confirmed_once() {
    let host = Host::new();
    let spec = spec("vm-a", Some(120), 4);
    host.stage(&spec);
    host.standin().faults(|k| k.hang_after_acting = Some(Duration::from_secs(4)));
    host.backend.spawn(&spec).expect("the clone happened and was finished");
    assert_eq!(host.backend.spawn(&spec).unwrap().name, "vm-a", "spawn again: the same VM");
    assert_eq!(host.vms().len(), 2, "one VM and the template");
    assert_eq!(value(&host.standin().vm(120).unwrap().1, "tags"), "blockhost");
}

#[test]
fn a_config_change_resize_or_firewall_step_that_timed_out_after_acting_is_read_back() {
    for aim in ["/config", "/resize", "/firewall/ipset", "/firewall/options"] {
        let host = Host::new();
        let spec = spec("vm-a", Some(120), 8);
        host.stage(&spec);
        host.standin().faults(|k| {
            k.hang_after_acting = Some(Duration::from_secs(4));
            k.only_path = Some(aim.into());
        });
        host.backend.spawn(&spec).unwrap_or_else(|e| panic!("{aim}: {e}"));
        assert_eq!(host.standin().hangs(), 1, "{aim}: the answer was withheld");
        assert_eq!(host.vms().len(), 2, "{aim}: one VM and the template");
        let config = host.standin().vm(120).unwrap().1;
        assert_eq!(value(&config, "tags"), "blockhost", "{aim}");
        assert!(value(&config, "scsi0").ends_with("size=8G"), "{aim}: {config:?}");
        assert_eq!(ipfilter(&host, 120), ["10.0.0.5"], "{aim}");
    }
}

#[test]
fn a_5xx_on_the_clone_leaves_no_vm_and_the_vmid_free() {
    let host = Host::new();
    let spec = spec("vm-a", Some(120), 4);
    host.stage(&spec);
    host.standin().faults(|k| k.server_error = Some(("POST", 500)));
    let err = host.backend.spawn(&spec).unwrap_err();
    assert_eq!(err.code, ErrorCode::Ambiguous, "{err}");
    assert_eq!(host.vms().len(), 1, "only the template");
    host.backend.spawn(&spec).expect("the VMID is still free");
    host.backend.terminate("vm-a").unwrap();
    host.assert_gone("vm-a");
}

#[test]
fn a_failure_after_the_clone_removes_the_half_made_vm() {
    let host = Host::new();
    let spec = spec("vm-a", Some(120), 8);
    host.stage(&spec);
    for (method, aim) in [("PUT", "/resize"), ("POST", "/firewall/ipset"), ("PUT", "/firewall/options")] {
        host.standin().faults(|k| {
            k.server_error = Some((method, 503));
            k.only_path = Some(aim.into());
        });
        let err = host.backend.spawn(&spec).unwrap_err();
        assert_eq!(err.code, ErrorCode::Unavailable, "{aim}: {err}");
        assert!(err.message.ends_with("; VM 120 was removed again"), "{aim}: {err}");
        assert_eq!(host.vms().len(), 1, "{aim}: only the template");
    }
    host.standin().faults(|k| k.only_path = None);
    host.backend.spawn(&spec).expect("the VMID is free again");
}

#[test]
fn a_task_failing_midway_leaves_no_vm_and_terminate_leaves_no_seed() {
    let host = Host::new();
    let spec = spec("vm-a", Some(120), 4);
    host.stage(&spec);
    host.standin().faults(|k| k.failing_tasks = Some("clone failed: disk allocation interrupted".into()));
    let err = host.backend.spawn(&spec).unwrap_err();
    assert!(err.message.contains("clone failed: disk allocation interrupted"), "{err}");
    assert_eq!(host.vms().len(), 1, "only the template");
    assert_eq!(host.backend.terminate("vm-a").unwrap_err().code, ErrorCode::Internal, "removing the seed fails too");
    host.standin().faults(|k| k.failing_tasks = None);
    host.backend.terminate("vm-a").unwrap();
    host.assert_gone("vm-a");
}

#[test]
fn a_node_down_fails_spawn_and_terminate_until_it_is_back() {
    let host = Host::new();
    let spec = spec("vm-a", Some(120), 4);
    host.stage(&spec);
    host.standin().faults(|k| {
        k.down_nodes.insert("pve1".into());
    });
    assert_eq!(host.backend.spawn(&spec).unwrap_err().code, ErrorCode::Unavailable);
    assert_eq!(host.backend.terminate("vm-a").unwrap_err().code, ErrorCode::Unavailable, "the seed's node cannot be asked");
    host.standin().faults(|k| k.down_nodes.clear());
    assert_eq!(host.vms().len(), 1, "only the template");
    host.backend.spawn(&spec).unwrap();
    host.backend.terminate("vm-a").unwrap();
    host.assert_gone("vm-a");
}

#[test]
fn one_node_down_does_not_stop_a_spawn_on_the_others() {
    let host = Host::with(pve_standin::Options { template_storage: "ceph", ..pve_standin::Options::default() });
    host.standin().faults(|k| {
        k.down_nodes.insert("pve3".into());
    });
    let spec = spec("vm-a", Some(120), 4);
    host.stage(&spec);
    host.backend.spawn(&spec).expect("placed on a node that is up");
    assert_ne!(host.standin().vm(120).unwrap().0, "pve3");
    assert_eq!(host.backend.terminate("vm-a").unwrap_err().code, ErrorCode::Unavailable, "pve3's storage may hold a seed");
    host.standin().faults(|k| k.down_nodes.clear());
    host.backend.terminate("vm-a").unwrap();
    host.assert_gone("vm-a");
}

#[test]
fn a_terminate_that_timed_out_after_acting_is_confirmed_by_what_is_left() {
    let host = Host::new();
    let spec = spec("vm-a", Some(120), 4);
    host.stage(&spec);
    host.backend.spawn(&spec).unwrap();
    host.backend.start("vm-a").unwrap();
    // The stop acts, then its answer never comes; the delete and the seed's removal follow.
    host.standin().faults(|k| k.hang_after_acting = Some(Duration::from_secs(4)));
    host.backend.terminate("vm-a").unwrap();
    host.assert_gone("vm-a");
}

#[test]
fn throttles_are_vm_config_and_reset_to_no_limit() {
    use provisioner::provider::{Limit, ThrottleChange};
    let host = Host::new();
    let spec = spec("vm-a", Some(120), 4);
    host.stage(&spec);
    host.backend.spawn(&spec).unwrap();
    let change = ThrottleChange {
        cpu_shares: Some(256),
        cpu_quota_percent: Some(Limit::Set(50)),
        bandwidth_in_kbps: Some(Limit::Set(8000)),
        bandwidth_out_kbps: Some(Limit::Set(8000)),
        iops_read: Some(Limit::Set(100)),
        iops_write: None,
    };
    host.backend.throttle("vm-a", &change).unwrap();
    let config = host.standin().vm(120).unwrap().1;
    assert_eq!((value(&config, "cpuunits"), value(&config, "cpulimit")), ("256".into(), "1".into()), "50% of each of 2 vCPUs");
    assert!(value(&config, "net0").ends_with(",rate=0.953674"), "8000 kbit/s in PVE's MB/s (MiB): {config:?}");
    assert!(value(&config, "scsi0").ends_with(",iops_rd=100"), "{config:?}");
    let one_way = ThrottleChange { bandwidth_in_kbps: Some(Limit::Set(800)), ..ThrottleChange::default() };
    assert_eq!(host.backend.throttle("vm-a", &one_way).unwrap_err().code, ErrorCode::Unsupported);
    host.backend.throttle("vm-a", &ThrottleChange::defaults()).unwrap();
    let config = host.standin().vm(120).unwrap().1;
    assert_eq!((value(&config, "cpuunits"), value(&config, "cpulimit")), ("1024".into(), String::new()));
    assert!(!value(&config, "net0").contains("rate=") && !value(&config, "scsi0").contains("iops_rd="), "{config:?}");
}

#[test]
fn metrics_take_the_cpu_in_use_from_the_listing_as_upstream_does() {
    use provisioner::verbs::metrics::compute;
    let host = Host::new();
    for (name, vmid) in [("vm-a", 130), ("vm-b", 131)] {
        let spec = spec(name, Some(vmid), 4);
        host.stage(&spec);
        host.backend.spawn(&spec).unwrap();
    }
    host.backend.start("vm-a").unwrap();
    let stats = host.backend.stats(None).unwrap();
    let running = stats.iter().find(|r| r.name == "vm-a").unwrap();
    let stopped = stats.iter().find(|r| r.name == "vm-b").unwrap();
    assert_eq!((running.cpu_busy, stopped.cpu_busy), (Some(0.5), Some(0.0)), "cpu 0.25 of maxcpu 2, and 0 when stopped");
    let (metrics, _) = compute(running, None, 1000.0);
    assert_eq!((metrics.cpu_percent, metrics.cpu_count), (50.0, 2), "cpu × 100 × CPUs, without a previous sample");
}

/// The create verb on a host whose manifest names the proxmox backend.
fn create_through_the_verb(paths: &HostPaths, name: &str) -> Result<provisioner::verbs::create::CreateResult, String> {
    use provisioner::verbs::create::{self, CreateArgs};
    use provisioner::verbs::{Interrupt, Session};
    let session = Session::open(paths.clone(), false, true).map_err(|e| e.to_string())?;
    let args = CreateArgs {
        name: name.into(),
        owner_wallet: "0x1234567890abcdef1234567890abcdef12345678".into(),
        cpu: 1,
        memory_mib: 512,
        disk_gib: 5,
        apply: true,
        cloud_init_content: None,
        nft_token_id: None,
        expiry_days: 30,
        username: "admin".into(),
    };
    create::run(&session, &args, &Interrupt::default(), &mut |_: &str| {}).map_err(|e| e.message())
}

#[test]
fn the_create_verb_carries_the_vmid_it_reserved_and_a_taken_one_rolls_back() {
    let root = tempfile::tempdir().unwrap();
    let paths = HostPaths::with_root(root.path());
    let guard = pve_host::write(&paths, "vmbr0", pve_standin::Options::default());
    std::fs::create_dir_all(paths.manifest().parent().unwrap()).unwrap();
    std::fs::write(paths.manifest(), r#"{"name": "proxmox"}"#).unwrap();
    std::fs::write(paths.config_file("network-mode"), "broker\n").unwrap();
    std::fs::create_dir_all(paths.run_dir()).unwrap();

    let made = create_through_the_verb(&paths, "vm-a").unwrap();
    assert_eq!(made.vmid, serde_json::json!(100), "the first of vmid_range 100-199");
    assert_eq!(guard.0.vm(100).map(|(_, c)| value(&c, "name")).as_deref(), Some("vm-a"));

    // VMID 101, next in the database, is taken in the cluster behind its back.
    let config = DbConfig::load(&paths, true).unwrap();
    let backend = (registry::find("proxmox").unwrap().open)(&OpenContext { paths: &paths, config: &config }).unwrap();
    let squatter = spec("squatter", Some(101), 4);
    backend.stage_bootstrap("squatter", &squatter.bootstrap).unwrap();
    backend.spawn(&squatter).unwrap();
    let err = create_through_the_verb(&paths, "vm-b").unwrap_err();
    assert!(err.contains("VMID 101 reserved for vm-b is already used by VM squatter on node pve1"), "{err}");
    assert_eq!(backend.get("vm-b").unwrap(), None);
    assert_eq!(backend.leftovers("vm-b").unwrap(), Vec::<String>::new(), "the rollback removed the seed");
}

/// A root agent on the host's socket that grants every request and records it.
fn fake_root_agent(root: &std::path::Path) -> std::sync::Arc<std::sync::Mutex<Vec<serde_json::Value>>> {
    use std::io::{Read, Write};
    let socket = HostPaths::with_root(root).run_dir().join("root-agent.sock");
    std::fs::create_dir_all(socket.parent().unwrap()).unwrap();
    let listener = std::os::unix::net::UnixListener::bind(&socket).unwrap();
    let requests = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let seen = requests.clone();
    std::thread::spawn(move || {
        for mut stream in listener.incoming().flatten() {
            let mut len = [0u8; 4];
            stream.read_exact(&mut len).unwrap();
            let mut body = vec![0u8; u32::from_be_bytes(len) as usize];
            stream.read_exact(&mut body).unwrap();
            seen.lock().unwrap().push(serde_json::from_slice(&body).unwrap());
            let reply = br#"{"ok": true}"#;
            stream.write_all(&(reply.len() as u32).to_be_bytes()).unwrap();
            stream.write_all(reply).unwrap();
        }
    });
    requests
}

#[test]
fn the_ipv6_host_route_follows_the_vm_when_this_host_has_its_bridge() {
    let host = Host::new();
    let requests = fake_root_agent(host.root.path());
    let mut with_v6 = spec("vm-6", Some(126), 4);
    let nic = with_v6.nic.as_mut().unwrap();
    (nic.ipv6, nic.ipv6_gateway) = (Some("2001:db8::6".parse().unwrap()), Some("2001:db8::1".parse().unwrap()));
    host.stage(&with_v6);
    host.backend.spawn(&with_v6).unwrap();
    let (_, config) = host.standin().vm(126).unwrap();
    assert_eq!(value(&config, "ipconfig0"), "ip=10.0.0.5/24,gw=10.0.0.1,ip6=2001:db8::6/128,gw6=2001:db8::1");
    assert_eq!(ipfilter(&host, 126), ["10.0.0.5", "2001:db8::6"]);
    host.backend.start("vm-6").unwrap();
    assert_eq!(*requests.lock().unwrap(), Vec::<serde_json::Value>::new(), "this host has no vmbr0: the cluster's network routes");
    host.backend.power_off("vm-6").unwrap();

    std::fs::create_dir_all(host.root.path().join("sys/class/net/vmbr0")).unwrap();
    host.backend.start("vm-6").unwrap();
    let route = serde_json::json!({"address": "2001:db8::6/128", "dev": "vmbr0"});
    assert_eq!(*requests.lock().unwrap(), vec![serde_json::json!({"action": "ip6-route-add", "params": route})]);
    // This host's kernel has no such route: reconciliation at boot adds it again.
    assert_eq!(host.backend.restore_host_state("vm-6").unwrap(), ["host route 2001:db8::6/128 via vmbr0"]);
    host.backend.terminate("vm-6").unwrap();
    let actions: Vec<String> = requests.lock().unwrap().iter().map(|r| r["action"].as_str().unwrap().to_string()).collect();
    assert_eq!(actions, ["ip6-route-add", "ip6-route-add", "ip6-route-del"]);
    assert_eq!(requests.lock().unwrap()[2]["params"], route);
    host.assert_gone("vm-6");
}

/// Makes `bridge` on `node` through the API and applies it.
fn add_bridge(host: &Host, node: &str, bridge: &str) {
    let client = host.client();
    client.post(&format!("/nodes/{node}/network"), &[("iface", bridge), ("type", "bridge"), ("autostart", "1")]).unwrap();
    client.run_task("PUT", &format!("/nodes/{node}/network"), &[]).unwrap();
}

#[test]
fn a_create_is_refused_early_where_the_bridge_is_not_up() {
    let host = Host::new();
    let problems: Vec<String> = host.backend.preflight("vmbr1", &mut |_| {}).into_iter().map(|e| e.message).collect();
    assert_eq!(
        problems,
        ["bridge vmbr1 is not up on node pve1, where VMs of template 9001 go (its disk is not on shared storage); create it there, or set `bridge` in db.yaml"]
    );
    add_bridge(&host, "pve2", "vmbr1");
    assert_eq!(host.backend.preflight("vmbr1", &mut |_| {}).len(), 1, "another node's bridge does not help");
    add_bridge(&host, "pve1", "vmbr1");
    assert_eq!(host.backend.preflight("vmbr1", &mut |_| {}), vec![]);
    assert_eq!(host.backend.preflight("vmbr0", &mut |_| {}), vec![]);
}

#[test]
fn on_shared_storage_a_vm_goes_to_a_node_with_its_bridge() {
    let host = Host::on_bridge(pve_standin::Options { template_storage: "ceph", ..pve_standin::Options::default() }, "vmbr1");
    let problems: Vec<String> = host.backend.preflight("vmbr1", &mut |_| {}).into_iter().map(|e| e.message).collect();
    assert_eq!(problems, ["no online Proxmox VE node has bridge vmbr1 up; create it on one, or set `bridge` in db.yaml"]);
    add_bridge(&host, "pve3", "vmbr1");
    let mut vm = spec("vm-a", Some(120), 4);
    vm.nic.as_mut().unwrap().bridge = "vmbr1".into();
    host.stage(&vm);
    host.backend.spawn(&vm).unwrap();
    let (node, config) = host.standin().vm(120).unwrap();
    assert_eq!(node, "pve3", "the only node with vmbr1, though every node has as much free memory");
    assert!(value(&config, "net0").contains(",bridge=vmbr1,"), "{config:?}");
}
