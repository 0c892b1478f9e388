//! The Proxmox VE backend's cluster layer against the PVE stand-in (three
//! nodes): VMs found by name on any node, VMIDs free cluster-wide, placement,
//! and clone and destroy settled by reading back after an ambiguous outcome.
#![cfg(feature = "proxmox")]

#[path = "support/pve_fixture.rs"]
mod pve_fixture;

use provisioner::host::config::VmidRange;
use provisioner::provider::proxmox::vms::{CloneRequest, Cluster, Power};
use provisioner::provider::{ErrorCode, PowerState};
use pve_fixture::Fixture;
use std::time::Duration;

fn request<'a>(vmid: u32, name: &'a str, node: &'a str) -> CloneRequest<'a> {
    CloneRequest { template_vmid: 9001, vmid, name, node, full_clone_storage: Some("local-lvm") }
}

#[test]
fn a_clone_lands_on_its_node_and_is_found_by_name_from_anywhere() {
    let f = Fixture::new();
    let client = f.client();
    let cluster = Cluster::new(&client);
    let vm = cluster.clone_template(&request(100, "vm-a", "pve3")).unwrap();
    assert_eq!((vm.vmid, vm.node.as_str(), vm.info.name.as_str(), vm.info.state), (100, "pve3", "vm-a", PowerState::ShutOff));
    assert_eq!(cluster.find("vm-a").unwrap(), Some(vm));
    assert_eq!(cluster.find("vm-b").unwrap(), None);
    assert_eq!(cluster.list().unwrap().len(), 1, "the template is not listed");
    let linked = CloneRequest { full_clone_storage: None, ..request(101, "vm-b", "pve1") };
    assert_eq!(cluster.clone_template(&linked).unwrap().node, "pve1");
}

#[test]
fn two_vms_with_one_name_are_a_conflict() {
    let f = Fixture::new();
    let client = f.client();
    let cluster = Cluster::new(&client);
    cluster.clone_template(&request(100, "twin", "pve1")).unwrap();
    cluster.clone_template(&request(101, "twin", "pve2")).unwrap();
    let err = cluster.find("twin").unwrap_err();
    assert_eq!((err.code, err.message.as_str()), (ErrorCode::Conflict, "two VMs are named twin (VMIDs 100 and 101)"));
}

#[test]
fn a_vmid_is_free_only_when_neither_the_cluster_nor_the_database_holds_it() {
    let f = Fixture::new();
    let client = f.client();
    let cluster = Cluster::new(&client);
    cluster.clone_template(&request(100, "vm-a", "pve2")).unwrap();
    let range = VmidRange { start: 100, end: 103 };
    assert_eq!(cluster.free_vmid(range, &|id| id == 101).unwrap(), 102);
    let err = cluster.free_vmid(VmidRange { start: 100, end: 101 }, &|id| id == 101).unwrap_err();
    assert_eq!((err.code, err.message.as_str()), (ErrorCode::Capacity, "no free VMID in 100-101"));
    assert_eq!(cluster.free_vmid(VmidRange { start: 9001, end: 9002 }, &|_| false).unwrap(), 9002, "the template's VMID is used");
}

#[test]
fn placement_picks_the_online_node_that_fits_with_the_most_free_memory() {
    let f = Fixture::new();
    let client = f.client();
    let cluster = Cluster::new(&client);
    let vm = cluster.clone_template(&request(100, "vm-a", "pve1")).unwrap();
    client.run_task("POST", &format!("/nodes/{}/qemu/100/status/start", vm.node), &[]).unwrap();
    f.standin.faults(|k| {
        k.down_nodes.insert("pve3".into());
    });
    let any = |_: &str| Ok(true);
    assert_eq!(cluster.place(&any).unwrap().as_deref(), Some("pve2"));
    assert_eq!(cluster.place(&|node| Ok(node == "pve1")).unwrap().as_deref(), Some("pve1"), "the freest node that fits");
    assert_eq!(cluster.place(&|_| Ok(false)).unwrap(), None);
    f.standin.faults(|k| k.down_nodes.extend(["pve1".to_string(), "pve2".to_string()]));
    assert_eq!(cluster.place(&any).unwrap_err().code, ErrorCode::Unavailable);
}

#[test]
fn an_ambiguous_clone_is_settled_by_reading_back_without_a_second_clone() {
    let f = Fixture::new();
    let client = f.client();
    let cluster = Cluster::new(&client);
    f.standin.faults(|k| k.hang_after_acting = Some(Duration::from_secs(4)));
    let vm = cluster.clone_template(&request(100, "vm-a", "pve2")).expect("the clone happened");
    assert_eq!((vm.vmid, vm.node.as_str()), (100, "pve2"));
    assert_eq!(cluster.list().unwrap().len(), 1);

    f.standin.faults(|k| k.server_error = Some(("POST", 503)));
    let err = cluster.clone_template(&request(101, "vm-b", "pve2")).unwrap_err();
    assert_eq!(err.code, ErrorCode::Ambiguous, "a 5xx that did not act stays ambiguous: {err}");
    assert!(f.standin.vm(101).is_none());
}

#[test]
fn destroy_stops_and_deletes_and_absent_or_ambiguous_is_settled() {
    let f = Fixture::new();
    let client = f.client();
    let cluster = Cluster::new(&client);
    cluster.clone_template(&request(100, "vm-a", "pve2")).unwrap();
    client.run_task("POST", "/nodes/pve2/qemu/100/status/start", &[]).unwrap();
    cluster.destroy("vm-a").unwrap();
    assert!(f.standin.vm(100).is_none());
    cluster.destroy("vm-a").expect("destroying an absent VM succeeds");

    cluster.clone_template(&request(101, "vm-b", "pve3")).unwrap();
    f.standin.faults(|k| k.hang_after_acting = Some(Duration::from_secs(4)));
    cluster.destroy("vm-b").expect("gone once read back");
    assert!(f.standin.vm(101).is_none());

    cluster.clone_template(&request(102, "vm-c", "pve1")).unwrap();
    f.standin.faults(|k| k.failing_tasks = Some("storage is busy".into()));
    let err = cluster.destroy("vm-c").unwrap_err();
    assert!(err.message.ends_with("failed: storage is busy"), "{err}");
    assert!(f.standin.vm(102).is_some());
}

#[test]
fn power_and_the_guest_agent_by_name() {
    let f = Fixture::new();
    let client = f.client();
    let cluster = Cluster::new(&client);
    cluster.clone_template(&request(100, "vm-a", "pve3")).unwrap();
    assert!(!cluster.guest_ping("vm-a").unwrap(), "a stopped VM's agent does not answer");
    cluster.power("vm-a", Power::Start).unwrap();
    assert_eq!(cluster.find("vm-a").unwrap().unwrap().info.state, PowerState::Running);
    assert!(cluster.guest_ping("vm-a").unwrap());
    let out = cluster.guest_exec("vm-a", "echo hello", Duration::from_secs(5)).unwrap();
    assert_eq!((out.exit_code, out.stdout.as_slice()), (0, b"hello\n".as_slice()));
    assert_eq!(cluster.guest_exec("vm-a", "exit 3", Duration::from_secs(5)).unwrap().exit_code, 3);
    cluster.power("vm-a", Power::Shutdown).unwrap();
    assert_eq!(f.standin.is_running(100), Some(false));
    let err = cluster.power("vm-a", Power::Shutdown).unwrap_err();
    assert_eq!(err.code, ErrorCode::Conflict, "{err}");
    cluster.power("vm-a", Power::Start).unwrap();
    cluster.power("vm-a", Power::Stop).unwrap();
    assert_eq!(f.standin.is_running(100), Some(false));
    assert_eq!(cluster.power("vm-b", Power::Start).unwrap_err().code, ErrorCode::NotFound);
}
