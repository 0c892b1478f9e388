//! Which template versions VMs still use: each VM disk `<state>/vms/*.qcow2`
//! names its template image as qcow2 backing file. A version no disk names,
//! and that is not current, can go.

use super::current::{current_version, version_dirs};
use super::error::TemplateError;
use super::qcow2::resolved_backing_file;
use std::path::{Path, PathBuf};
use sys::pid_exists;

const MAX_CHAIN: usize = 16;

/// Every file the VM disks in `vms` are backed by, following backing chains.
/// An unreadable VM disk is an error: nothing is known to be unused then.
pub fn backing_files(vms: &Path) -> Result<Vec<PathBuf>, TemplateError> {
    let entries = super::tree::entries(vms)?;
    let mut used = Vec::new();
    for entry in entries {
        let disk = entry.path();
        if disk.extension().is_none_or(|ext| ext != "qcow2") || !disk.is_file() {
            continue;
        }
        let mut next = resolved_backing_file(&disk)?;
        for _ in 0..MAX_CHAIN {
            let Some(backing) = next.take() else { break };
            // A backing file that is itself an overlay continues the chain; a
            // missing or non-qcow2 one ends it.
            next = resolved_backing_file(&backing).ok().flatten();
            used.push(backing);
        }
    }
    Ok(used)
}

/// Version directories that no VM disk uses, never the current one.
pub fn unused(templates: &Path, vms: &Path) -> Result<Vec<PathBuf>, TemplateError> {
    let current = current_version(templates)?;
    let used: Vec<PathBuf> = backing_files(vms)?.into_iter().map(|p| std::fs::canonicalize(&p).unwrap_or(p)).collect();
    Ok(version_dirs(templates)?
        .into_iter()
        .filter(|dir| {
            let name = dir.file_name().map(|n| n.to_string_lossy().into_owned());
            let canonical = std::fs::canonicalize(dir).unwrap_or_else(|_| dir.clone());
            name != current && !used.iter().any(|b| b.starts_with(dir) || b.starts_with(&canonical))
        })
        .collect())
}

/// True while a VM create runs (its marker, e.g. `/run/blockhost/provisioning.lock`,
/// names a live process): it may be about to put an overlay on a template we
/// cannot see used yet.
pub fn create_in_progress(marker: &Path) -> bool {
    std::fs::read_to_string(marker)
        .ok()
        .and_then(|text| text.trim().parse::<u32>().ok())
        .is_some_and(pid_exists)
}
