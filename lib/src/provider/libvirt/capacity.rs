//! The host's room for VMs as libvirt and the VMs' file system tell it: CPUs
//! and memory of the node, what every running domain (ours or not) was
//! given, and the free space of the VMs' directory against what their thin
//! disks may still grow by.

use super::errors::read_error;
use super::ffi;
use super::vm_files::vms_dir;
use crate::host::paths::HostPaths;
use crate::provider::{ErrorCode, HostCapacity, ProviderError};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use virt::connect::Connect;
use virt::sys;

pub fn host(conn: &Connect, paths: &HostPaths) -> Result<HostCapacity, ProviderError> {
    let node = conn.node_info().map_err(|e| read_error("asking libvirt for the host's CPUs and memory", &e))?;
    let domains = conn.list_all_domains(sys::VIR_CONNECT_LIST_DOMAINS_ACTIVE).map_err(|e| read_error("listing the running domains", &e))?;
    let (mut running_vcpus, mut running_memory_kib) = (0u64, 0u64);
    for domain in domains {
        // A domain that stopped since the listing takes nothing.
        if let Ok(info) = domain.info() {
            running_vcpus += u64::from(info.nr_virt_cpu);
            running_memory_kib += info.max_mem;
        }
    }
    let dir = vms_dir(paths);
    let (disk_free_bytes, disk_growth_bytes) = disk_room(&dir)?;
    Ok(HostCapacity {
        cpus: u64::from(node.cpus),
        memory_total_mib: node.memory / 1024,
        memory_free_mib: free_memory_kib(conn).map(|kib| kib / 1024),
        running_vcpus,
        running_memory_mib: running_memory_kib / 1024,
        disk_dir: dir,
        disk_free_bytes,
        disk_growth_bytes,
    })
}

/// What the host can give without swapping: free memory, buffers and page
/// cache; `None` from a driver without the figures (libvirt's test driver).
fn free_memory_kib(conn: &Connect) -> Option<u64> {
    let stats = ffi::node_memory_stats(conn).ok()?;
    Some(stats.iter().filter(|(field, _)| matches!(field.as_str(), "free" | "buffers" | "cached")).map(|(_, kib)| kib).sum())
}

/// The free bytes of the file system `dir` is (or will be) on, and how much
/// the qcow2 disks in `dir` may still grow: their virtual sizes less what
/// they take.
fn disk_room(dir: &Path) -> Result<(u64, u64), ProviderError> {
    let existing = dir.ancestors().find(|d| d.exists()).unwrap_or(Path::new("/"));
    let fs = rustix::fs::statvfs(existing).map_err(|e| io_failure(existing, &std::io::Error::from(e)))?;
    let free = fs.f_bavail.saturating_mul(fs.f_frsize);
    let mut growth = 0u64;
    for path in disks(dir)? {
        let (Ok(size), Ok(meta)) = (template_builder::qcow2_virtual_size(&path), std::fs::metadata(&path)) else { continue };
        growth += size.saturating_sub(meta.blocks() * 512);
    }
    Ok((free, growth))
}

fn disks(dir: &Path) -> Result<Vec<PathBuf>, ProviderError> {
    match std::fs::read_dir(dir) {
        Ok(entries) => Ok(entries.filter_map(Result::ok).map(|e| e.path()).filter(|p| p.extension().is_some_and(|x| x == "qcow2")).collect()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
        Err(e) => Err(io_failure(dir, &e)),
    }
}

fn io_failure(path: &Path, e: &std::io::Error) -> ProviderError {
    ProviderError::new(ErrorCode::Internal, format!("{}: {}", path.display(), crate::host::io_words::io_words(e)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thin_disks_may_grow_by_their_size_less_what_they_take() {
        let dir = tempfile::tempdir().unwrap();
        let vms = dir.path().join("vms");
        assert_eq!(disk_room(&vms).unwrap().1, 0, "no directory yet: no disks");
        std::fs::create_dir(&vms).unwrap();
        let mut header = b"QFI\xfb".to_vec();
        header.resize(24, 0);
        header.extend_from_slice(&(5u64 << 30).to_be_bytes());
        std::fs::write(vms.join("a.qcow2"), &header).unwrap();
        std::fs::write(vms.join("a.json"), "{}").unwrap();
        let taken = std::fs::metadata(vms.join("a.qcow2")).unwrap().blocks() * 512;
        let (free, growth) = disk_room(&vms).unwrap();
        assert_eq!(growth, (5 << 30) - taken);
        assert!(free > 0);
    }
}
