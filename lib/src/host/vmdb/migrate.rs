//! The one-shot move of the upstream libvirt provisioner's database
//! (`/var/lib/blockhost/vm-db.json`, where its wizard points `db_file`) into
//! the configured database, when db.yaml names another file.
//!
//! Rules:
//! - Same file (db.yaml still says `vm-db.json`): nothing to do.
//! - No old file: nothing to do (already migrated, or never an upstream host).
//! - The configured file missing: it becomes the old document as it is
//!   (byte for byte, through pyjson's pass-through).
//! - Both present: the configured database wins. A record of the old file is
//!   added only when its name is absent; a name present in both keeps the
//!   configured record (it is the one the live components have been writing)
//!   and the old one stays readable in the renamed old file. Allocation lists
//!   are united (configured order first), `next_vmid` is the larger, top-level
//!   keys only the old file has are added. Running it again adds nothing.
//! - Both files' lock files are held (old first, then configured, always in
//!   this order) across the merge and the rename; the configured file is
//!   written by the usual temp + fsync + rename, and only after that the old
//!   file is renamed to `vm-db.json.migrated` (never deleted), so a process
//!   killed at any point leaves either the old state or a state a second run
//!   completes without duplicating anything.
//! - `vm-db.json.lock` stays: unlinking a lock file that another process may
//!   have open would let the next one lock a new inode beside it.

use super::{DbError, Document, VmDatabase};
use crate::host::atomic::open_lock_file;
use serde_json::Value;
use std::path::{Path, PathBuf};

/// Where upstream's libvirt (and Proxmox) wizard keeps the database.
pub const UPSTREAM_DB_FILE: &str = "/var/lib/blockhost/vm-db.json";

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Migration {
    /// db.yaml names the old file itself.
    SameFile(PathBuf),
    /// There is no old file.
    NoSource(PathBuf),
    Done {
        from: PathBuf,
        to: PathBuf,
        /// The old file's new name.
        kept_as: PathBuf,
        /// Records added to the configured database.
        added: Vec<String>,
        /// Names already there with the same record.
        identical: Vec<String>,
        /// Names already there with a different record (the configured one kept).
        differing: Vec<String>,
    },
}

fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.as_os_str().to_os_string();
    name.push(suffix);
    PathBuf::from(name)
}

fn same_file(a: &Path, b: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    if a == b {
        return true;
    }
    match (std::fs::metadata(a), std::fs::metadata(b)) {
        (Ok(x), Ok(y)) => x.dev() == y.dev() && x.ino() == y.ino(),
        _ => false,
    }
}

/// The first of `<old>.migrated`, `<old>.migrated.2`, … that does not exist.
fn free_name(old: &Path) -> PathBuf {
    std::iter::once(with_suffix(old, ".migrated"))
        .chain((2..).map(|n| with_suffix(old, &format!(".migrated.{n}"))))
        .find(|p| !p.exists())
        .expect("an unbounded sequence")
}

/// Adds what `old` has and `target` lacks (see the module rules).
fn merge(target: &mut Document, old: &Document) -> (Vec<String>, Vec<String>, Vec<String>) {
    let (mut added, mut identical, mut differing) = (Vec::new(), Vec::new(), Vec::new());
    let old_root = old.root();
    let root = target.root_mut();
    for (key, value) in old_root {
        match key.as_str() {
            "vms" => {
                let Some(old_vms) = value.as_object() else { continue };
                let vms = root.entry("vms").or_insert_with(|| Value::Object(Default::default()));
                let vms = vms.as_object_mut().expect("checked at parse time");
                for (name, record) in old_vms {
                    match vms.get(name) {
                        None => {
                            vms.insert(name.clone(), record.clone());
                            added.push(name.clone());
                        }
                        Some(mine) if mine == record => identical.push(name.clone()),
                        Some(_) => differing.push(name.clone()),
                    }
                }
            }
            "allocated_ips" | "allocated_ipv6" => {
                let list = root.entry(key.clone()).or_insert_with(|| Value::Array(Vec::new()));
                let list = list.as_array_mut().expect("checked at parse time");
                for item in value.as_array().into_iter().flatten() {
                    if !list.contains(item) {
                        list.push(item.clone());
                    }
                }
            }
            "next_vmid" => {
                let mine = root.get("next_vmid").and_then(Value::as_u64);
                if value.as_u64() > mine {
                    root.insert(key.clone(), value.clone());
                }
            }
            _ => {
                root.entry(key.clone()).or_insert_with(|| value.clone());
            }
        }
    }
    (added, identical, differing)
}

/// Moves `old` (upstream's database) into `target`, under both lock files.
pub fn migrate(old: &Path, target: &VmDatabase) -> Result<Migration, DbError> {
    if same_file(old, target.path()) {
        return Ok(Migration::SameFile(old.to_path_buf()));
    }
    if !old.exists() {
        return Ok(Migration::NoSource(old.to_path_buf()));
    }
    let old_lock_path = with_suffix(old, ".lock");
    let old_lock = open_lock_file(&old_lock_path).map_err(|e| DbError::Io(old_lock_path.clone(), e))?;
    target.lock_wait.lock(&old_lock, &old_lock_path)?;
    // Renamed by a run that held the lock before us.
    let text = match std::fs::read_to_string(old) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Migration::NoSource(old.to_path_buf())),
        Err(e) => return Err(DbError::Io(old.to_path_buf(), e)),
    };
    let old_doc = Document::parse(&text).map_err(|why| DbError::Corrupt(old.to_path_buf(), why))?;
    let existed = target.path().exists();
    let merged = target.update(|doc| {
        if !existed {
            *doc = old_doc.clone();
            return Ok((old_doc.vms().map(|r| r.name.to_string()).collect(), Vec::new(), Vec::new()));
        }
        Ok(merge(doc, &old_doc))
    })?;
    // The configured file is durable (fsynced, renamed, directory fsynced): now the old one may go.
    let kept_as = free_name(old);
    std::fs::rename(old, &kept_as).map_err(|e| DbError::Io(old.to_path_buf(), e))?;
    if let Some(dir) = old.parent() {
        std::fs::File::open(dir).and_then(|d| d.sync_all()).map_err(|e| DbError::Io(dir.to_path_buf(), e))?;
    }
    let (added, identical, differing) = merged;
    Ok(Migration::Done { from: old.to_path_buf(), to: target.path().to_path_buf(), kept_as, added, identical, differing })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Shaped exactly like upstream's file: `json.dump(indent=2)`, no trailing
    /// newline, libvirt records (vmid 0, ipv6 ""), none of our fields, a string
    /// token id, a non-ASCII purpose, an integer beyond 64 bits, a legacy key.
    const UPSTREAM: &str = include_str!("../../../tests/fixtures/upstream/vm-db.json");

    fn setup() -> (tempfile::TempDir, PathBuf, VmDatabase) {
        let dir = tempfile::tempdir().unwrap();
        let old = dir.path().join("vm-db.json");
        std::fs::write(&old, UPSTREAM).unwrap();
        let db = VmDatabase::new(dir.path().join("vms.json"), 0);
        (dir, old, db)
    }

    #[test]
    fn into_a_missing_database_the_old_file_moves_byte_for_byte() {
        let (_dir, old, db) = setup();
        let Migration::Done { added, kept_as, .. } = migrate(&old, &db).unwrap() else { panic!("not migrated") };
        assert_eq!(added, ["blockhost-001", "blockhost-002", "blockhost-003"]);
        assert_eq!(std::fs::read_to_string(db.path()).unwrap(), UPSTREAM);
        assert!(!old.exists());
        assert_eq!(kept_as, with_suffix(&old, ".migrated"));
        assert_eq!(std::fs::read_to_string(&kept_as).unwrap(), UPSTREAM, "the old file is renamed, never rewritten");
        assert_eq!(migrate(&old, &db).unwrap(), Migration::NoSource(old.clone()), "a second run does nothing");
        assert_eq!(std::fs::read_to_string(db.path()).unwrap(), UPSTREAM);
    }

    #[test]
    fn into_an_existing_database_the_configured_records_win_and_nothing_is_duplicated() {
        let (_dir, old, db) = setup();
        // The engine-evm wizard's empty vms.json, then one VM of ours and a
        // different record under an upstream name.
        let mine = r#"{"vms": {"vm-ours": {"vm_name": "vm-ours", "status": "active", "ip_address": "192.168.122.210"},
            "blockhost-002": {"vm_name": "blockhost-002", "status": "destroyed"}},
            "next_vmid": 100, "allocated_ips": ["192.168.122.210"], "allocated_ipv6": ["2001:db8:1::1"], "mine": 1}"#;
        std::fs::write(db.path(), mine).unwrap();
        let Migration::Done { added, identical, differing, .. } = migrate(&old, &db).unwrap() else { panic!() };
        assert_eq!((added.as_slice(), identical.len()), (["blockhost-001".to_string(), "blockhost-003".into()].as_slice(), 0));
        assert_eq!(differing, ["blockhost-002"]);
        let doc = db.read().unwrap();
        let names: Vec<_> = doc.vms().map(|r| r.name.to_string()).collect();
        assert_eq!(names, ["vm-ours", "blockhost-002", "blockhost-001", "blockhost-003"]);
        assert_eq!(doc.vm("blockhost-002").unwrap().status(), "destroyed", "the configured record is kept");
        assert_eq!(doc.allocated("allocated_ips"), ["192.168.122.210", "192.168.122.200", "192.168.122.201"]);
        assert_eq!(doc.allocated("allocated_ipv6"), ["2001:db8:1::1", "2001:db8:1::2", "2001:db8:1::3"]);
        assert_eq!(doc.next_vmid(), 100);
        assert_eq!(doc.root()["mine"], 1);
        assert_eq!(doc.root()["reserved_nft_tokens"], serde_json::json!({}));
        // Every upstream record added is the upstream text, byte for byte.
        let text = std::fs::read_to_string(db.path()).unwrap();
        let old_doc = Document::parse(UPSTREAM).unwrap();
        for name in ["blockhost-001", "blockhost-003"] {
            let record = crate::host::pyjson::dumps_indent2(&Value::Object(old_doc.vm(name).unwrap().fields().clone()));
            let indented = record.replace('\n', "\n    ");
            assert!(text.contains(&indented), "{name} not verbatim");
        }
        // Killed before the rename: a second run over the restored old file adds nothing.
        let kept = with_suffix(&old, ".migrated");
        std::fs::rename(&kept, &old).unwrap();
        let before = std::fs::read_to_string(db.path()).unwrap();
        let Migration::Done { added, identical, kept_as, .. } = migrate(&old, &db).unwrap() else { panic!() };
        assert!(added.is_empty());
        assert_eq!(identical, ["blockhost-001", "blockhost-003"]);
        assert_eq!(std::fs::read_to_string(db.path()).unwrap(), before);
        assert_eq!(kept_as, kept);
        assert!(kept.exists() && !old.exists());
    }

    #[test]
    fn the_same_file_a_missing_file_and_a_corrupt_file() {
        let (dir, old, _) = setup();
        let same = VmDatabase::new(&old, 0);
        assert_eq!(migrate(&old, &same).unwrap(), Migration::SameFile(old.clone()));
        assert_eq!(std::fs::read_to_string(&old).unwrap(), UPSTREAM);
        let db = VmDatabase::new(dir.path().join("vms.json"), 0);
        std::fs::write(&old, "{\"vms\": ").unwrap();
        assert!(matches!(migrate(&old, &db), Err(DbError::Corrupt(..))));
        assert!(old.exists() && !db.path().exists(), "a corrupt old file is left alone");
        std::fs::remove_file(&old).unwrap();
        assert_eq!(migrate(&old, &db).unwrap(), Migration::NoSource(old));
    }

    #[test]
    fn the_old_files_lock_is_honoured() {
        let (_dir, old, db) = setup();
        let db = db.with_lock_wait(super::super::LockWait { timeout: std::time::Duration::from_millis(200), ..Default::default() });
        let holder = open_lock_file(&with_suffix(&old, ".lock")).unwrap();
        holder.lock().unwrap();
        assert!(matches!(migrate(&old, &db), Err(DbError::LockTimeout(..))));
        assert!(old.exists() && !db.path().exists());
    }
}
