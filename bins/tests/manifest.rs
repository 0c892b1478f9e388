//! Each backend's manifest (`packaging/<backend>/provisioner.json`) against what
//! the workspace builds and what BlockHost's components look up in it.

mod common;

use serde_json::Value;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_path_buf()
}

const BACKENDS: [&str; 2] = ["libvirt", "proxmox"];

fn manifest(backend: &str) -> Value {
    let text = std::fs::read_to_string(repo().join(format!("packaging/{backend}/provisioner.json"))).unwrap();
    serde_json::from_str(&text).expect("provisioner.json parses")
}

#[test]
fn every_packaged_backend_is_checked_here() {
    let mut packaged: Vec<String> = std::fs::read_dir(repo().join("packaging"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.join("provisioner.json").is_file())
        .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    packaged.sort();
    assert_eq!(packaged, BACKENDS);
}

fn commands(m: &Value) -> &serde_json::Map<String, Value> {
    m["commands"].as_object().expect("commands is an object")
}

fn built_executables() -> BTreeSet<String> {
    std::fs::read_dir(Path::new(env!("CARGO_MANIFEST_DIR")).join("src/bin"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().strip_suffix(".rs").unwrap().to_string())
        .collect()
}

#[test]
fn all_lists_every_executable_of_the_workspace() {
    let listed: BTreeSet<String> = blockhost_cli::commands::all().into_iter().map(|(n, _, _)| n.to_string()).collect();
    assert_eq!(listed, built_executables());
    assert_eq!(listed.len(), 15);
    for (name, command, _) in blockhost_cli::commands::all() {
        assert_eq!(command.get_name(), name, "clap name of {name}");
    }
}

#[test]
fn identity_matches_the_workspace() {
    for backend in BACKENDS {
        let m = manifest(backend);
        assert_eq!(m["name"], backend);
        assert_eq!(m["version"], env!("CARGO_PKG_VERSION"), "{backend}");
        assert_eq!(m["config_keys"]["session_key"], backend);
        assert_eq!(m["setup"]["wizard_module"], format!("blockhost.provisioner_{backend}.wizard"));
        assert_eq!(m["setup"]["first_boot_hook"], "/usr/share/blockhost/provisioner-hooks/first-boot.sh", "{backend}");
    }
    let libvirt = manifest("libvirt");
    assert_eq!(libvirt["display_name"], "libvirt/KVM + cloud-init");
    assert_eq!(libvirt["accent_color"], "#005F61");
    assert_eq!(libvirt["root_agent_actions"], "/usr/share/blockhost/root-agent-actions/libvirt_host.py");
    // The installer labels the step with the first word of display_name.
    let proxmox = manifest("proxmox");
    assert_eq!(proxmox["display_name"], "Proxmox VE (API)");
    assert_eq!(proxmox["accent_color"], "#E57000");
    assert!(proxmox.get("root_agent_actions").is_none(), "the Proxmox VE backend asks the root agent for nothing");
}

#[test]
fn every_verb_resolves_to_a_built_executable() {
    for backend in BACKENDS {
        verbs_resolve(&manifest(backend));
    }
}

fn verbs_resolve(m: &Value) {
    let built = built_executables();
    let mut referenced = BTreeSet::new();
    let detect = m["setup"]["detect"].as_str().expect("setup.detect is a string");
    for (verb, exe) in commands(m).iter().map(|(k, v)| (k.as_str(), v)).chain([("setup.detect", &m["setup"]["detect"])]) {
        let exe = exe.as_str().unwrap_or_else(|| panic!("{verb} is not a string"));
        assert!(!exe.contains('/'), "{verb}: engines spawn executables by bare name from PATH, got {exe}");
        assert!(built.contains(exe), "{verb} -> {exe} is not built by the workspace");
        assert!(common::bin_path(exe).is_file(), "{exe} was not built");
        assert!(referenced.insert(exe.to_string()), "{exe} is named twice");
    }
    assert_eq!(referenced, built, "every executable is reachable through the manifest");
    assert_eq!(detect, "blockhost-provisioner-detect");
}

#[test]
fn has_every_verb_its_consumers_ask_for() {
    for backend in BACKENDS {
        has_every_verb(&manifest(backend));
    }
}

fn has_every_verb(m: &Value) {
    let cmds = commands(m);
    // The engine's fallback list (facts §5) and everything reached through
    // `getCommand` / common's dispatcher: guest-exec for the onion network
    // plugin, metrics for the watchdog, build-template for the installer.
    let engine = [
        "create", "destroy", "start", "stop", "kill", "status", "list", "metrics", "throttle", "build-template", "gc", "resume",
        "update-gecos",
    ];
    for verb in engine.iter().chain(&["guest-exec"]) {
        assert!(cmds.contains_key(*verb), "verb {verb} missing");
    }
    assert_eq!(cmds.len(), engine.len() + 1, "no verb beyond the contract's");
    // The admin panel runs these by their literal names.
    for verb in ["list", "start", "stop", "kill", "destroy"] {
        assert_eq!(cmds[verb], format!("blockhost-vm-{verb}"));
    }
}

#[test]
fn config_keys_include_what_the_wizard_writes() {
    let written: [(&str, &[&str]); 2] = [
        ("libvirt", &["db_file", "storage_pool", "storage_path", "bridge", "gc_grace_days", "default_expiry_days", "ip_pool", "libvirt"]),
        ("proxmox", &["db_file", "bridge", "gc_grace_days", "default_expiry_days", "vmid_range", "ip_pool", "proxmox"]),
    ];
    for (backend, wanted) in written {
        let m = manifest(backend);
        let keys: Vec<&str> =
            m["config_keys"]["provisioner_config"].as_array().unwrap().iter().map(|k| k.as_str().unwrap()).collect();
        for key in wanted {
            assert!(keys.contains(key), "{backend}: {key} missing from config_keys.provisioner_config");
        }
    }
}
