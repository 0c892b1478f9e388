//! Root and the unprivileged `blockhost` user share the VM database, its lock,
//! the provisioning lock and the state directories: every verb works as either,
//! in the production directory layout, whoever created the files first.
//! Needs root to switch users (`setpriv`); skipped otherwise.

mod common;
use common::{set_record_field, Root, WALLET};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;
use std::process::Command;

/// The `blockhost` user and group of the test (no passwd entry needed).
const UID: u32 = 4242;
const GID: u32 = 4242;

fn chown_chmod(path: &Path, uid: u32, gid: u32, mode: u32) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    if !path.exists() {
        std::fs::create_dir(path).unwrap();
    }
    std::os::unix::fs::chown(path, Some(uid), Some(gid)).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

/// `/var/lib/blockhost` blockhost:blockhost 0750, `/etc/blockhost` root:blockhost
/// 0750 with db.yaml 0640, `/run/blockhost` root:blockhost 2775.
fn production_root() -> Root {
    let root = Root::new();
    std::fs::set_permissions(root.dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    chown_chmod(&root.path("var/lib/blockhost"), UID, GID, 0o750);
    chown_chmod(&root.path("etc/blockhost"), 0, GID, 0o750);
    chown_chmod(&root.path("etc/blockhost/db.yaml"), 0, GID, 0o640);
    chown_chmod(&root.path("run/blockhost"), 0, GID, 0o2775);
    root
}

enum Who {
    Root,
    Blockhost,
}

fn run(root: &Root, who: Who, bin: &str, args: &[&str]) {
    let plain = root.std_cmd(bin);
    let mut cmd = match who {
        Who::Root => plain,
        Who::Blockhost => {
            let mut wrapped = Command::new("setpriv");
            wrapped.args([format!("--reuid={UID}"), format!("--regid={GID}"), "--clear-groups".into(), "--".into()]);
            wrapped.arg(plain.get_program()).args(plain.get_args());
            for (key, value) in plain.get_envs() {
                match value {
                    Some(value) => wrapped.env(key, value),
                    None => wrapped.env_remove(key),
                };
            }
            wrapped
        }
    };
    let out = cmd.args(args).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    let context = format!("{bin} {args:?}: exit {:?}\n{}{stderr}", out.status.code(), String::from_utf8_lossy(&out.stdout));
    assert_eq!(out.status.code(), Some(0), "{context}");
    assert!(!stderr.contains("warning") && !stderr.contains("denied"), "{context}");
}

fn owner_and_mode(path: &Path) -> (u32, u32) {
    let meta = std::fs::metadata(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    (meta.gid(), meta.permissions().mode() & 0o7777)
}

#[test]
fn every_verb_works_as_blockhost_and_root_interleaved() {
    if !testkit::require(testkit::is_root(), "switching to the blockhost user needs root") {
        return;
    }
    let root = production_root();
    let each_verb = |who: fn() -> Who, vm: &str| {
        for args in [
            vec!["blockhost-vm-status", vm],
            vec!["blockhost-vm-list"],
            vec!["blockhost-vm-metrics", vm],
            vec!["blockhost-vm-throttle", vm, "--cpu-shares", "512"],
            vec!["blockhost-vm-update-gecos", vm, WALLET, "--nft-id", "42"],
            vec!["blockhost-vm-guest-exec", vm, "true"],
            vec!["blockhost-vm-stop", vm],
            vec!["blockhost-vm-start", vm],
            vec!["blockhost-vm-kill", vm],
            vec!["blockhost-vm-start", vm],
        ] {
            run(&root, who(), args[0], &args[1..]);
        }
    };
    // A root-run destroy on a fresh host creates the database; a root-run create
    // the provisioning lock's directory. The blockhost user must still create.
    run(&root, Who::Root, "blockhost-vm-destroy", &["ghost"]);
    run(&root, Who::Root, "blockhost-vm-create", &["r1", "--owner-wallet", WALLET, "--apply"]);
    run(&root, Who::Blockhost, "blockhost-vm-create", &["u1", "--owner-wallet", WALLET, "--apply"]);
    each_verb(|| Who::Blockhost, "r1");
    each_verb(|| Who::Root, "u1");

    set_record_field(&root, "r1", "expires_at", serde_json::json!("2020-01-01T00:00:00+00:00"));
    run(&root, Who::Blockhost, "blockhost-vm-gc", &["--execute"]);
    assert_eq!(root.db()["vms"]["r1"]["status"], "suspended");
    run(&root, Who::Root, "blockhost-vm-resume", &["r1"]);
    run(&root, Who::Blockhost, "blockhost-vm-destroy", &["r1"]);
    run(&root, Who::Root, "blockhost-vm-destroy", &["u1"]);
    run(&root, Who::Blockhost, "blockhost-vm-create", &["u2", "--owner-wallet", WALLET, "--apply"]);
    run(&root, Who::Root, "blockhost-vm-gc", &["--execute"]);
    run(&root, Who::Blockhost, "blockhost-vm-list", &[]);
    let db = root.db();
    assert_eq!((db["vms"]["u2"]["status"].as_str(), db["vms"]["r1"]["status"].as_str()), (Some("active"), Some("destroyed")));

    let db_path = root.db_path();
    assert_eq!(owner_and_mode(&db_path), (GID, 0o640), "vms.json");
    assert_eq!(owner_and_mode(&db_path.with_extension("json.lock")), (GID, 0o660), "vms.json.lock");
    assert_eq!(owner_and_mode(&root.path("run/blockhost/provisioning.d")), (GID, 0o2770), "provisioning.d");
    assert_eq!(owner_and_mode(&root.mock_dir()), (GID, 0o2770), "mock state directory");
}

#[test]
fn an_old_provisioning_directory_without_group_write_is_repaired() {
    if !testkit::require(testkit::is_root(), "switching to the blockhost user needs root") {
        return;
    }
    let root = production_root();
    // What an earlier root-run create left: group blockhost, no group write.
    chown_chmod(&root.path("run/blockhost/provisioning.d"), 0, GID, 0o2755);
    run(&root, Who::Root, "blockhost-vm-create", &["r1", "--owner-wallet", WALLET, "--apply"]);
    run(&root, Who::Blockhost, "blockhost-vm-create", &["u1", "--owner-wallet", WALLET, "--apply"]);
    assert_eq!(owner_and_mode(&root.path("run/blockhost/provisioning.d")), (GID, 0o2775));
}
