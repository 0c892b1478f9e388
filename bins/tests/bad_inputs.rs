//! A corpus of hostile or malformed inputs. Every one is refused with a non-zero
//! exit (create: 1 with the error JSON; status: 0 printing `unknown`), exactly
//! one diagnostic line on stderr and no panic, and nothing under the root changes.

mod common;
use common::{Root, WALLET};
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::Output;

const CREATE: &str = "blockhost-vm-create";
const STATUS: &str = "blockhost-vm-status";

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// A root with one VM `vm1`, so the database, lock files and mock state all exist.
fn root_with_vm() -> Root {
    let root = Root::new();
    root.create("vm1");
    root
}

/// Paths added, removed or changed between two snapshots.
fn changes(before: &[(PathBuf, Vec<u8>)], after: &[(PathBuf, Vec<u8>)]) -> Vec<String> {
    let a: BTreeMap<_, _> = before.iter().map(|(p, c)| (p, c)).collect();
    let b: BTreeMap<_, _> = after.iter().map(|(p, c)| (p, c)).collect();
    let mut out = Vec::new();
    for (path, content) in &a {
        match b.get(path) {
            None => out.push(format!("removed {}", path.display())),
            Some(new) if new != content => out.push(format!("changed {}", path.display())),
            _ => {}
        }
    }
    out.extend(b.keys().filter(|p| !a.contains_key(*p)).map(|p| format!("added {}", p.display())));
    out
}

/// Runs `bin args` (with `env` set, `unset` removed) and checks the refusal contract.
/// Returns the diagnostic: the error JSON's message for create, else the stderr line.
fn refused_with(root: &Root, bin: &str, args: &[&str], env: &[(&str, &str)], unset: &[&str]) -> String {
    let label = format!("{bin} {args:?}");
    let mut cmd = root.cmd(bin);
    cmd.args(args);
    for (key, value) in env {
        cmd.env(key, value);
    }
    for key in unset {
        cmd.env_remove(key);
    }
    let before = root.snapshot();
    let out: Output = cmd.output().unwrap();
    let after = root.snapshot();
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    for bad in ["panicked", "RUST_BACKTRACE", "thread 'main'"] {
        assert!(!stderr.contains(bad) && !stdout.contains(bad), "{label}: {stderr}");
    }
    let changed = changes(&before, &after);
    assert!(changed.is_empty(), "{label} changed the root: {changed:?}");
    let lines: Vec<&str> = stderr.lines().collect();
    match bin {
        CREATE => {
            assert_eq!(out.status.code(), Some(1), "{label}: {stderr}");
            assert_eq!(stdout.lines().count(), 1, "{label}: {stdout}");
            let json: Value = serde_json::from_str(stdout.trim_end()).unwrap_or_else(|e| panic!("{label}: {e}: {stdout}"));
            let message = json["error"].as_str().unwrap_or_else(|| panic!("{label}: {stdout}")).to_string();
            assert!(stdout.starts_with("{\"status\": \"error\", \"error\": \""), "{label}: {stdout}");
            assert!(stdout.is_ascii(), "{label}: written ASCII-escaped like Python's json.dumps: {stdout}");
            assert_eq!(json.as_object().map(|o| o.len()), Some(2), "{label}: {stdout}");
            assert!(!message.is_empty(), "{label}");
            assert_eq!(lines, [format!("{CREATE}: {message}")], "{label}");
            message
        }
        STATUS => {
            assert_eq!(out.status.code(), Some(0), "{label}: {stderr}");
            assert_eq!(stdout, "unknown\n", "{label}");
            // One line when something was wrong beyond the name (see the ignored test below).
            assert!(lines.len() <= 1, "{label}: {stderr}");
            lines.first().map_or_else(String::new, |l| l.to_string())
        }
        _ => {
            assert!(matches!(out.status.code(), Some(1 | 2)), "{label}: exit {:?}: {stderr}", out.status.code());
            assert_eq!(lines.len(), 1, "{label}: exactly one stderr line: {stderr:?}");
            assert!(lines[0].starts_with(&format!("{bin}: ")), "{label}: {stderr}");
            lines[0].to_string()
        }
    }
}

fn refused(root: &Root, bin: &str, args: &[&str]) -> String {
    refused_with(root, bin, args, &[], &[])
}

fn bad_names() -> Vec<String> {
    let mut names: Vec<String> =
        ["a/b", "..", "../etc", "a'b", "a\"b", "a\nb", "a b", "-x", "", "vmé", "вм1", "a;b", "vm1\n"].map(String::from).to_vec();
    names.push("a".repeat(65));
    names
}

#[test]
fn bad_vm_names_are_refused_by_every_verb() {
    let root = root_with_vm();
    for name in bad_names() {
        let n = name.as_str();
        let message = refused(&root, CREATE, &[n, "--owner-wallet", WALLET, "--apply"]);
        if !n.starts_with('-') {
            assert!(message.starts_with("invalid VM name"), "{n:?}: {message}");
        }
        refused(&root, CREATE, &[n, "--owner-wallet", WALLET]);
        refused(&root, STATUS, &[n]);
        for bin in ["blockhost-vm-destroy", "blockhost-vm-start", "blockhost-vm-stop", "blockhost-vm-kill", "blockhost-vm-resume", "blockhost-vm-metrics"] {
            refused(&root, bin, &[n]);
        }
        refused(&root, "blockhost-vm-throttle", &[n, "--cpu-shares", "5"]);
        refused(&root, "blockhost-vm-update-gecos", &[n, WALLET, "--nft-id", "1"]);
        refused(&root, "blockhost-vm-guest-exec", &[n, "true"]);
    }
}

#[test]
fn status_explains_an_invalid_name_on_stderr() {
    let root = root_with_vm();
    for name in bad_names() {
        let out = root.cmd(STATUS).arg(&name).output().unwrap();
        assert_eq!(text(&out.stdout), "unknown\n");
        assert_eq!(text(&out.stderr).lines().count(), 1, "{name:?}: {:?}", text(&out.stderr));
    }
}

fn bad_wallets() -> Vec<String> {
    let mut wallets: Vec<String> = ["", "a b", "$(id)", "a,nft=1", "a'b", "a\"b", "a:b", "a\nb", " 0xabc"].map(String::from).to_vec();
    wallets.push("a".repeat(257));
    wallets
}

#[test]
fn bad_wallets_are_refused() {
    let root = root_with_vm();
    for wallet in bad_wallets() {
        let w = wallet.as_str();
        let message = refused(&root, CREATE, &["vm2", "--owner-wallet", w, "--apply"]);
        assert!(message.starts_with("invalid wallet address"), "{w:?}: {message}");
        let line = refused(&root, "blockhost-vm-update-gecos", &["vm1", w, "--nft-id", "1"]);
        assert!(line.contains("invalid wallet address"), "{w:?}: {line}");
    }
}

#[test]
fn wallet_not_matching_the_engine_pattern_is_refused() {
    let root = root_with_vm();
    root.write("usr/share/blockhost/engine.json", r#"{"constraints":{"address_pattern":"^0x[0-9a-fA-F]{40}$"}}"#);
    for wallet in ["addr_test1qq", "0x1234", "0x1234567890abcdef1234567890abcdef123456789", "1234567890abcdef1234567890abcdef12345678ab"] {
        let message = refused(&root, CREATE, &["vm2", "--owner-wallet", wallet, "--apply"]);
        assert!(message.contains("does not match the engine's address pattern"), "{wallet}: {message}");
    }
    // A matching wallet is still accepted.
    assert_eq!(root.create("vm2")["status"], "ok");
}

#[test]
fn out_of_range_create_options_are_refused() {
    let root = root_with_vm();
    let cases: [(&[&str], &str); 11] = [
        (&["--cpu", "0"], "invalid --cpu 0"),
        (&["--cpu", "-1"], "'-1'"),
        (&["--cpu", "99999"], "invalid --cpu 99999"),
        (&["--cpu", "x"], "invalid value 'x'"),
        (&["--memory", "1"], "invalid --memory (MiB) 1"),
        (&["--disk", "0"], "invalid --disk (GiB) 0"),
        (&["--disk", "999999999"], "invalid --disk (GiB) 999999999"),
        (&["--expiry-days", "0"], "invalid --expiry-days 0"),
        (&["--username", "Root"], "invalid username \"Root\""),
        (&["--nft-token-id", "a b"], "invalid NFT token id \"a b\""),
        (&["--cloud-init-content", "/nonexistent"], "/nonexistent: cannot read cloud-init content"),
    ];
    for (extra, expected) in cases {
        let mut args = vec!["vm2", "--owner-wallet", WALLET, "--apply"];
        args.extend_from_slice(extra);
        let message = refused(&root, CREATE, &args);
        assert!(message.contains(expected), "{extra:?}: {message}");
    }
    refused(&root, CREATE, &["vm2", "--apply"]);
    let long_user = "u".repeat(33);
    let long_token = "7".repeat(129);
    for extra in [["--username", long_user.as_str()], ["--nft-token-id", long_token.as_str()], ["--nft-token-id", ""]] {
        let mut args = vec!["vm2", "--owner-wallet", WALLET, "--apply"];
        args.extend_from_slice(&extra);
        refused(&root, CREATE, &args);
    }
}

#[test]
fn existing_name_is_refused_without_side_effects() {
    let root = root_with_vm();
    let message = refused(&root, CREATE, &["vm1", "--owner-wallet", WALLET, "--apply"]);
    assert_eq!(message, "VM vm1 already exists in the database (status: active)");
    refused(&root, CREATE, &["vm1", "--owner-wallet", WALLET]);
    let out = root.cmd("blockhost-vm-destroy").arg("vm1").output().unwrap();
    assert!(out.status.success());
    let message = refused(&root, CREATE, &["vm1", "--owner-wallet", WALLET, "--apply"]);
    assert_eq!(message, "VM vm1 already exists in the database (status: destroyed)");
}

#[test]
fn unknown_provider_and_malformed_knobs_are_refused() {
    let root = root_with_vm();
    let bogus = [("BLOCKHOST_PROVIDER", "bogus")];
    let message = refused_with(&root, CREATE, &["vm2", "--owner-wallet", WALLET, "--apply"], &bogus, &[]);
    assert!(message.starts_with("unknown provider \"bogus\""), "{message}");
    let line = refused_with(&root, STATUS, &["vm1"], &bogus, &[]);
    assert!(line.contains("unknown provider"), "{line}");
    refused_with(&root, "blockhost-vm-destroy", &["vm1"], &bogus, &[]);
    for (key, value) in [
        ("BLOCKHOST_MOCK_FAIL_STEP", "nonsense"),
        ("BLOCKHOST_MOCK_ERROR_RATE", "2"),
        ("BLOCKHOST_MOCK_AMBIGUOUS", "spawn:maybe"),
        ("BLOCKHOST_MOCK_DRIFT", "explode:vm1"),
        ("BLOCKHOST_MOCK_AGENT", "zombie"),
    ] {
        let env = [(key, value)];
        let message = refused_with(&root, CREATE, &["vm2", "--owner-wallet", WALLET, "--apply"], &env, &[]);
        assert!(message.contains("knobs.yaml"), "{key}: {message}");
        refused_with(&root, STATUS, &["vm1"], &env, &[]);
        refused_with(&root, "blockhost-vm-destroy", &["vm1"], &env, &[]);
    }
}

#[test]
fn malformed_db_yaml_is_refused_by_every_verb() {
    let root = root_with_vm();
    let cases = [
        ("", "file is empty"),
        ("[unclosed", "not valid YAML"),
        ("- a\n- b\n", "the top level must be a mapping"),
        ("ip_pool: {network: nope}\n", "ip_pool.network"),
        ("ip_pool:\n  network: 10.20.0.0/24\n  start: 10.21.0.5\n  end: 10.20.0.60\n", "ip_pool.start"),
        ("gc_grace_days: -3\n", "gc_grace_days"),
    ];
    for (yaml, expected) in cases {
        root.write("etc/blockhost/db.yaml", yaml);
        let message = refused(&root, CREATE, &["vm2", "--owner-wallet", WALLET, "--apply"]);
        assert!(message.contains("db.yaml") && message.contains(expected), "{yaml:?}: {message}");
        let line = refused(&root, STATUS, &["vm1"]);
        assert!(line.contains("db.yaml") && line.contains(expected), "{yaml:?}: {line}");
        for args in [&["vm1"][..], &["vm1", "--extend-days", "3"][..]] {
            refused(&root, "blockhost-vm-resume", args);
        }
        for (bin, args) in [
            ("blockhost-vm-list", &[][..]),
            ("blockhost-vm-destroy", &["vm1"][..]),
            ("blockhost-vm-gc", &["--execute"][..]),
            ("blockhost-vm-gc", &[][..]),
            ("blockhost-vm-metrics", &["--all"][..]),
        ] {
            let line = refused(&root, bin, args);
            assert!(line.contains(expected), "{bin} {yaml:?}: {line}");
        }
    }
}

#[test]
fn corrupt_vms_json_is_refused_and_left_byte_identical() {
    let root = root_with_vm();
    for content in ["garbage{", "[]", "{\"vms\": []}", "", "   \n", "{\"vms\": {\"vm1\": 1}}", "{\"allocated_ips\": [1]}"] {
        std::fs::write(root.db_path(), content).unwrap();
        let message = refused(&root, CREATE, &["vm2", "--owner-wallet", WALLET, "--apply"]);
        assert!(message.contains("corrupt"), "{content:?}: {message}");
        for (bin, args) in [
            ("blockhost-vm-destroy", &["vm1"][..]),
            ("blockhost-vm-gc", &["--execute"][..]),
            ("blockhost-vm-resume", &["vm1"][..]),
        ] {
            let line = refused(&root, bin, args);
            assert!(line.contains("corrupt"), "{bin} {content:?}: {line}");
            assert_eq!(std::fs::read(root.db_path()).unwrap(), content.as_bytes());
        }
    }
}

#[test]
fn bad_throttle_gc_resume_gecos_exec_and_metrics_arguments_are_refused() {
    let root = root_with_vm();
    let throttle = "blockhost-vm-throttle";
    for args in [
        &["vm1", "--cpu-shares", "0"][..],
        &["vm1", "--cpu-shares", "10001"],
        &["vm1", "--cpu-quota", "101"],
        &["vm1", "--cpu-quota", "0"],
        &["vm1"],
        &["vm1", "--reset", "--cpu-shares", "5"],
        &["vm1", "--iops-read", "-5"],
    ] {
        refused(&root, throttle, args);
    }
    let line = refused(&root, "blockhost-vm-gc", &["--suspend-only", "--destroy-only"]);
    assert!(line.contains("--suspend-only") && line.contains("--destroy-only"), "{line}");
    refused(&root, "blockhost-vm-gc", &["--grace-days", "-1"]);
    refused(&root, "blockhost-vm-gc", &["--execute", "--grace-days", "-1"]);
    let line = refused(&root, "blockhost-vm-resume", &["vm1", "--extend-days", "0"]);
    assert!(line.contains("--extend-days"), "{line}");
    let line = refused(&root, "blockhost-vm-update-gecos", &["vm1", "a:b", "--nft-id", "1"]);
    assert!(line.contains("a:b"), "{line}");
    let line = refused(&root, "blockhost-vm-update-gecos", &["vm1", WALLET, "--nft-id", "1,2"]);
    assert!(line.contains("1,2"), "{line}");
    refused(&root, "blockhost-vm-update-gecos", &["vm1", WALLET]);
    refused(&root, "blockhost-vm-guest-exec", &["vm1"]);
    refused(&root, "blockhost-vm-metrics", &[]);
    refused(&root, "blockhost-vm-metrics", &["vm1", "--all"]);
}

#[test]
fn no_manifest_and_no_provider_variable() {
    let root = root_with_vm();
    let unset = ["BLOCKHOST_PROVIDER"];
    let line = refused_with(&root, STATUS, &["vm1"], &[], &unset);
    assert!(line.contains("provisioner.json"), "{line}");
    let message = refused_with(&root, CREATE, &["vm2", "--owner-wallet", WALLET, "--apply"], &[], &unset);
    assert!(message.contains("provisioner.json"), "{message}");
    for (bin, args) in [("blockhost-vm-list", &[][..]), ("blockhost-vm-destroy", &["vm1"][..]), ("blockhost-vm-gc", &["--execute"][..])] {
        let line = refused_with(&root, bin, args, &[], &unset);
        assert!(line.contains("provisioner.json"), "{bin}: {line}");
    }
}
