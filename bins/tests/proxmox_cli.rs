//! The contract on the Proxmox VE backend, through the real executables,
//! against the three-node PVE stand-in (a model of the API written from its
//! schema, not Proxmox VE itself): every verb on VMs spread over the nodes;
//! the stand-in's fault knobs on create and destroy; a create interrupted at
//! each API step (fault, SIGTERM, SIGKILL then gc); and a host taken over
//! from the upstream Proxmox provisioner.

mod common;
use common::pve::PveRoot;
use common::WALLET;
use serde_json::{json, Value};
use std::collections::BTreeSet;

fn result_json(vm: &str, ip: &str, ipv6: &str, vmid: u32) -> String {
    provisioner::host::pyjson::dumps(&json!({
        "status": "ok", "vm_name": vm, "ip": ip, "ipv6": ipv6, "vmid": vmid, "nft_token_id": null, "username": "admin"
    }))
}

fn today() -> String {
    provisioner::host::timestamp::now().format("%Y-%m-%d").to_string()
}

#[test]
fn every_verb_finds_the_vms_on_each_of_the_three_nodes() {
    let root = PveRoot::new();
    for (i, name) in ["vm-a", "vm-b", "vm-c"].into_iter().enumerate() {
        let run = root.run("blockhost-vm-create", &[name, "--owner-wallet", WALLET, "--apply"]);
        let json = result_json(name, &format!("10.20.0.1{i}"), &format!("2001:db8:7::{}", i + 3), 100 + i as u32);
        assert_eq!((run.code, run.stdout), (0, format!("BLOCKHOST_RESULT: {json}\n{json}\n")), "{}", run.stderr);
    }
    let vms = root.vms();
    assert_eq!(vms.iter().map(|(id, _, name)| (*id, name.as_str())).collect::<Vec<_>>(), [(100, "vm-a"), (101, "vm-b"), (102, "vm-c")]);
    let nodes: BTreeSet<&str> = vms.iter().map(|(_, node, _)| node.as_str()).collect();
    assert_eq!(nodes.len(), 3, "one VM per node (each running VM takes its node's free memory): {vms:?}");
    let db = root.db();
    let record = &db["vms"]["vm-b"];
    let keys: Vec<&str> = record.as_object().unwrap().keys().map(String::as_str).collect();
    assert_eq!(
        keys,
        ["vm_name", "vmid", "ip_address", "ipv6_address", "expires_at", "owner", "status", "created_at", "purpose", "wallet_address", "username", "network_mode"]
    );
    assert_eq!((record["vmid"].clone(), record["status"].clone()), (json!(101), json!("active")));
    assert_eq!(db["allocated_ips"], json!(["10.20.0.10", "10.20.0.11", "10.20.0.12"]));
    for (vmid, _, _) in &vms {
        assert_eq!(root.standin.is_running(*vmid), Some(true));
        assert_eq!(root.config(*vmid, "tags"), "blockhost");
    }

    for name in ["vm-a", "vm-b", "vm-c"] {
        assert_eq!(root.run("blockhost-vm-status", &[name]).stdout, "active\n");
    }
    let run = root.run("blockhost-vm-list", &[]);
    let day = today();
    assert_eq!(
        (run.code, run.stdout),
        (0, format!("NAME\tSTATUS\tIP\tCREATED\nvm-a\tactive\t10.20.0.10\t{day}\nvm-b\tactive\t10.20.0.11\t{day}\nvm-c\tactive\t10.20.0.12\t{day}\n"))
    );

    let run = root.run("blockhost-vm-metrics", &["vm-b"]);
    assert_eq!((run.code, run.stdout.lines().count()), (0, 1), "{}", run.stderr);
    let m: Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!((m["cpu_count"].clone(), m["memory_total_mb"].clone(), m["state"].clone()), (json!(1), json!(2048), json!("running")), "{m}");
    let all: serde_json::Map<String, Value> = serde_json::from_str(&root.run("blockhost-vm-metrics", &["--all"]).stdout).unwrap();
    assert_eq!(all.keys().collect::<Vec<_>>(), ["vm-a", "vm-b", "vm-c"]);

    // Power verbs, on each node in turn.
    for (vmid, node, name) in &vms {
        let out = |bin: &str| {
            let run = root.run(bin, &[name]);
            assert_eq!((run.code, run.stderr.as_str()), (0, ""), "{bin} {name} on {node}");
            run.stdout
        };
        assert_eq!(out("blockhost-vm-start"), format!("VM already running: {name}\n"));
        assert_eq!(out("blockhost-vm-stop"), format!("VM stopped: {name}\n"));
        assert_eq!(root.standin.is_running(*vmid), Some(false));
        assert_eq!(out("blockhost-vm-stop"), format!("VM already stopped: {name}\n"));
        assert_eq!(out("blockhost-vm-kill"), format!("VM already stopped: {name}\n"));
        assert_eq!(out("blockhost-vm-start"), format!("VM started: {name}\n"));
        assert_eq!(out("blockhost-vm-kill"), format!("VM killed: {name}\n"));
        assert_eq!(out("blockhost-vm-start"), format!("VM started: {name}\n"));
        assert_eq!(root.standin.is_running(*vmid), Some(true));
    }
    for bin in ["blockhost-vm-start", "blockhost-vm-stop", "blockhost-vm-kill"] {
        let run = root.run(bin, &["nope"]);
        assert_eq!((run.code, run.stdout.as_str(), run.stderr.clone()), (1, "", format!("{bin}: VM nope not found\n")));
    }

    let (vmid_c, _, _) = vms[2];
    let run = root.run("blockhost-vm-throttle", &["vm-c", "--cpu-shares", "512", "--cpu-quota", "50", "--iops-read", "200", "--iops-write", "0"]);
    assert_eq!(
        (run.code, run.stdout.as_str()),
        (0, "CPU shares set to 512\nCPU quota set to 50%\nIOPS read set to 200\nIOPS write limit removed (unlimited)\n"),
        "{}",
        run.stderr
    );
    assert_eq!((root.config(vmid_c, "cpuunits"), root.config(vmid_c, "cpulimit")), ("512".into(), "0.5".into()));
    assert!(root.config(vmid_c, "scsi0").ends_with(",iops_rd=200"), "{}", root.config(vmid_c, "scsi0"));
    let run = root.run("blockhost-vm-throttle", &["vm-c", "--reset"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!((root.config(vmid_c, "cpuunits"), root.config(vmid_c, "cpulimit")), ("1024".into(), String::new()));

    let run = root.run("blockhost-vm-guest-exec", &["vm-b", "echo", "hello", "world"]);
    assert_eq!((run.code, run.stdout.as_str(), run.stderr.as_str()), (0, "hello world\n", ""));
    assert_eq!(root.run("blockhost-vm-guest-exec", &["vm-b", "exit", "7"]).code, 7);
    let run = root.run("blockhost-vm-update-gecos", &["vm-a", WALLET, "--nft-id", "42"]);
    assert_eq!((run.code, run.stdout.as_str(), run.stderr.clone()), (0, "", format!("GECOS of admin on vm-a set to wallet={WALLET},nft=42\n")));

    // gc suspends the expired VM (its node powers it off), resume brings it back.
    root.set_record_field("vm-a", "expires_at", json!("2026-01-01T00:00:00+00:00"));
    let run = root.run("blockhost-vm-gc", &["--execute", "--suspend-only"]);
    assert_eq!(
        (run.code, run.stdout.as_str()),
        (0, "VM garbage collection: execute, grace period 7 days\nSuspend: 1 candidate\n  vm-a: suspended (expired 2026-01-01T00:00:00+00:00)\nDestroy: skipped (--suspend-only)\nProcessed: 1, errors: 0\n"),
        "{}",
        run.stderr
    );
    assert_eq!(root.standin.is_running(100), Some(false));
    assert_eq!(root.run("blockhost-vm-status", &["vm-a"]).stdout, "suspended\n");
    root.set_record_field("vm-a", "expires_at", json!("2099-05-01T00:00:00+00:00"));
    let run = root.run("blockhost-vm-resume", &["vm-a"]);
    assert_eq!((run.code, run.stdout.as_str()), (0, "VM resumed: vm-a (expires 2099-05-01T00:00:00+00:00)\n"), "{}", run.stderr);
    assert_eq!(root.standin.is_running(100), Some(true));

    for name in ["vm-a", "vm-b", "vm-c"] {
        for _ in 0..2 {
            let run = root.run("blockhost-vm-destroy", &[name]);
            assert_eq!((run.code, run.stdout.clone()), (0, format!("VM destroyed: {name}\n")), "{}", run.stderr);
        }
        assert_eq!(root.db()["vms"][name]["status"], "destroyed");
    }
    assert_eq!(root.vms(), vec![]);
    assert_eq!(root.standin.volumes(), vec![], "every seed ISO removed");
    assert_eq!((root.db()["allocated_ips"].clone(), root.db()["allocated_ipv6"].clone()), (json!([]), json!([])));
}
