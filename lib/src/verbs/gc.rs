//! `gc`: phase 1 suspends active VMs past expiry (graceful stop, forced off only
//! if the guest does not stop, then `mark_suspended`); phase 2 destroys
//! suspended VMs past `suspended_at` + grace. Dry run unless `execute`. One
//! failing VM never stops the others. Before both, records that are not
//! destroyed but whose VM the backend no longer has (a destroy killed between
//! terminating and recording) are reported and, on execute, destroyed: the
//! leftovers removed, the record marked destroyed, its addresses released.
//! On execute it also undoes killed creates and clears a provisioning lock
//! left by a dead process.

use super::{destroy, power, recover, Progress, Session, VerbError};
use crate::host::vmdb::DbError;
use crate::host::{atomic, names, provisioning_lock, timestamp};
use std::collections::HashSet;
use std::path::Path;
use std::time::Duration;

#[derive(Debug, Clone)]
pub struct GcOptions {
    pub execute: bool,
    pub suspend_only: bool,
    pub destroy_only: bool,
    pub grace_days: Option<u32>,
    pub stop_timeout: Duration,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ItemResult {
    WouldDo,
    Done(Option<String>),
    Failed(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Item {
    pub name: String,
    /// Why it is a candidate, e.g. `expired 2026-02-09T12:00:00+00:00`.
    pub reason: String,
    pub result: ItemResult,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Report {
    pub execute: bool,
    pub grace_days: u32,
    /// Records whose VM is gone from the backend.
    pub lost: Vec<Item>,
    /// `None` when the phase was skipped (`--destroy-only` / `--suspend-only`).
    pub suspend: Option<Vec<Item>>,
    pub destroy: Option<Vec<Item>>,
}

impl Report {
    fn items(&self) -> impl Iterator<Item = &Item> {
        self.lost.iter().chain(self.suspend.iter().flatten()).chain(self.destroy.iter().flatten())
    }

    pub fn errors(&self) -> usize {
        self.items().filter(|i| matches!(i.result, ItemResult::Failed(_))).count()
    }

    pub fn processed(&self) -> usize {
        self.items().filter(|i| !matches!(i.result, ItemResult::Failed(_))).count()
    }
}

pub fn run(session: &Session, options: &GcOptions, progress: Progress) -> Result<Report, VerbError> {
    if options.suspend_only && options.destroy_only {
        return Err(VerbError::Usage("--suspend-only and --destroy-only cannot be combined".into()));
    }
    let grace_days = options.grace_days.unwrap_or(session.config.gc_grace_days);
    if options.execute {
        recover::stale_creates(session, progress)?;
        match provisioning_lock::release(&session.paths.run_dir(), None) {
            Ok(None) => {}
            Ok(Some(cleared)) => progress(&format!("warning: {cleared}")),
            Err(e) => progress(&format!("warning: cannot check the provisioning lock: {e}")),
        }
        let dirs = [session.db.path().parent().map(Path::to_path_buf), Some(session.metrics_dir())];
        let swept: usize = dirs.iter().flatten().map(|d| atomic::sweep_stale_temps(d)).sum();
        if swept > 0 {
            progress(&format!("Removed {swept} temp file(s) left by killed writers"));
        }
    }
    let lost = lost_phase(session, options.execute, progress)?;
    let suspend = (!options.destroy_only).then(|| suspend_phase(session, options, progress)).transpose()?;
    let destroy = (!options.suspend_only).then(|| destroy_phase(session, options, grace_days)).transpose()?;
    Ok(Report { execute: options.execute, grace_days, lost, suspend, destroy })
}

fn lost_phase(session: &Session, execute: bool, progress: Progress) -> Result<Vec<Item>, VerbError> {
    let doc = session.db.read()?;
    let present: HashSet<String> = match session.backend.list() {
        Ok(vms) => vms.into_iter().map(|vm| vm.name).collect(),
        Err(e) => {
            progress(&format!("warning: cannot list the backend's VMs, records without a VM were not looked for: {e}"));
            return Ok(Vec::new());
        }
    };
    Ok(doc
        .vms()
        // A record under a name no create of ours accepts never had a VM of ours.
        .filter(|r| r.status() != "destroyed" && !present.contains(r.name) && names::vm_name(r.name).is_ok())
        .map(|r| {
            let name = r.name.to_string();
            let reason = format!("{}, VM gone from the backend", r.status());
            let result = if execute { destroy_one(session, &name) } else { ItemResult::WouldDo };
            Item { name, reason, result }
        })
        .collect())
}

fn destroy_one(session: &Session, name: &str) -> ItemResult {
    match destroy::run(session, name) {
        Ok(()) => ItemResult::Done(None),
        Err(e) => ItemResult::Failed(e.to_string()),
    }
}

fn suspend_phase(session: &Session, options: &GcOptions, progress: Progress) -> Result<Vec<Item>, VerbError> {
    let doc = session.db.read()?;
    let now = timestamp::now();
    Ok(doc
        .vms_to_suspend(now)
        .into_iter()
        .map(|name| {
            let reason = format!("expired {}", doc.vm(&name).and_then(|r| r.str("expires_at")).unwrap_or("?"));
            let result =
                if options.execute { suspend_one(session, &name, options.stop_timeout, progress) } else { ItemResult::WouldDo };
            Item { name, reason, result }
        })
        .collect())
}

fn suspend_one(session: &Session, name: &str, stop_timeout: Duration, progress: Progress) -> ItemResult {
    let note = match session.backend.get(name) {
        Err(e) => return ItemResult::Failed(e.to_string()),
        Ok(None) => Some("not present in the backend".to_string()),
        Ok(Some(vm)) if vm.state.is_off() => Some("was already stopped".to_string()),
        Ok(Some(_)) => match power::stop_telling(session, name, stop_timeout, progress) {
            Ok(_) => None,
            Err(stop_err) => match power::kill(session, name) {
                Ok(_) => Some(format!("forced off after: {stop_err}")),
                Err(kill_err) => return ItemResult::Failed(format!("{stop_err}; forcing off failed too: {kill_err}")),
            },
        },
    };
    match session.db.update(|doc| doc.mark_suspended(name, timestamp::now())) {
        Ok(()) => ItemResult::Done(note),
        Err(DbError::Destroyed(_)) => ItemResult::Done(Some("destroyed meanwhile, left destroyed".to_string())),
        Err(e) => ItemResult::Failed(e.to_string()),
    }
}

fn destroy_phase(session: &Session, options: &GcOptions, grace_days: u32) -> Result<Vec<Item>, VerbError> {
    let doc = session.db.read()?;
    Ok(doc
        .vms_to_destroy(grace_days, timestamp::now())
        .into_iter()
        .map(|name| {
            let reason = format!("suspended {}", doc.vm(&name).and_then(|r| r.str("suspended_at")).unwrap_or("?"));
            let result = if options.execute { destroy_one(session, &name) } else { ItemResult::WouldDo };
            Item { name, reason, result }
        })
        .collect())
}
