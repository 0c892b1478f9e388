//! Whether the host has room for one more VM under db.yaml's `overcommit`
//! ratios: one line per resource that falls short, saying by how much and
//! which key allows more.

use crate::host::config::Overcommit;
use crate::provider::HostCapacity;

const GIB: u64 = 1 << 30;

/// What a create asks of the host.
#[derive(Debug, Clone, Copy)]
pub struct Request {
    pub vcpus: u64,
    pub memory_mib: u64,
    pub disk_gib: u64,
}

/// Each resource the host cannot give, in the operator's words.
pub fn shortfalls(host: &HostCapacity, policy: &Overcommit, request: &Request) -> Vec<String> {
    let mut short = Vec::new();
    let cpus_allowed = scaled(host.cpus, policy.cpu);
    let vcpus_needed = host.running_vcpus + request.vcpus;
    if vcpus_needed > cpus_allowed {
        short.push(format!(
            "not enough CPUs: {} vCPUs requested and the running VMs have {}, but the host's {} CPUs allow {cpus_allowed} at `overcommit.cpu` {} (short by {}); ask for fewer --cpu, stop a VM, or raise `overcommit.cpu` in db.yaml",
            request.vcpus,
            host.running_vcpus,
            host.cpus,
            policy.cpu,
            vcpus_needed - cpus_allowed
        ));
    }
    let free_allowed = host.memory_free_mib.map(|free| (free, scaled(free, policy.memory)));
    let total_allowed = scaled(host.memory_total_mib, policy.memory);
    let memory_needed = host.running_memory_mib + request.memory_mib;
    if let Some((free, free_allowed)) = free_allowed.filter(|(_, allowed)| request.memory_mib > *allowed) {
        short.push(format!(
            "not enough free memory: {} MiB requested, but the host's {free} MiB free allow {free_allowed} MiB at `overcommit.memory` {} (short by {} MiB); ask for less --memory, stop a VM, or raise `overcommit.memory` in db.yaml",
            request.memory_mib,
            policy.memory,
            request.memory_mib - free_allowed
        ));
    } else if memory_needed > total_allowed {
        short.push(format!(
            "not enough memory: {} MiB requested and the running VMs have {} MiB, but the host's {} MiB allow {total_allowed} MiB at `overcommit.memory` {} (short by {} MiB); ask for less --memory, stop a VM, or raise `overcommit.memory` in db.yaml",
            request.memory_mib,
            host.running_memory_mib,
            host.memory_total_mib,
            policy.memory,
            memory_needed - total_allowed
        ));
    }
    let disk_allowed = scaled(host.disk_free_bytes, policy.disk);
    let disk_needed = host.disk_growth_bytes + request.disk_gib * GIB;
    if disk_needed > disk_allowed {
        short.push(format!(
            "not enough disk space in {}: {} GiB requested and the VMs' disks may still grow by {} GiB, but the {} GiB free allow {} GiB at `overcommit.disk` {} (short by {} GiB); ask for less --disk, free space there, or raise `overcommit.disk` in db.yaml",
            host.disk_dir.display(),
            request.disk_gib,
            gib(host.disk_growth_bytes),
            gib(host.disk_free_bytes),
            gib(disk_allowed),
            policy.disk,
            gib((disk_needed - disk_allowed).max(GIB / 10))
        ));
    }
    short
}

fn scaled(have: u64, ratio: f64) -> u64 {
    (have as f64 * ratio).floor() as u64
}

/// Bytes as GiB with one decimal, rounded down (what is free is never overstated).
fn gib(bytes: u64) -> String {
    let tenths = bytes * 10 / GIB;
    format!("{}.{}", tenths / 10, tenths % 10)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    fn host() -> HostCapacity {
        HostCapacity {
            cpus: 4,
            memory_total_mib: 8192,
            memory_free_mib: Some(6144),
            running_vcpus: 2,
            running_memory_mib: 2048,
            disk_dir: PathBuf::from("/var/lib/blockhost/vms"),
            disk_free_bytes: 100 * GIB,
            disk_growth_bytes: 30 * GIB,
        }
    }

    const SMALL: Request = Request { vcpus: 1, memory_mib: 1024, disk_gib: 10 };

    #[test]
    fn a_request_that_fits_is_no_problem() {
        assert_eq!(shortfalls(&host(), &Overcommit::default(), &SMALL), Vec::<String>::new());
    }

    #[test]
    fn each_short_resource_says_by_how_much_and_which_key_allows_more() {
        let policy = Overcommit { cpu: 1.0, memory: 1.0, disk: 1.0 };
        let big = Request { vcpus: 3, memory_mib: 7000, disk_gib: 80 };
        assert_eq!(
            shortfalls(&host(), &policy, &big),
            [
                "not enough CPUs: 3 vCPUs requested and the running VMs have 2, but the host's 4 CPUs allow 4 at `overcommit.cpu` 1 (short by 1); ask for fewer --cpu, stop a VM, or raise `overcommit.cpu` in db.yaml",
                "not enough free memory: 7000 MiB requested, but the host's 6144 MiB free allow 6144 MiB at `overcommit.memory` 1 (short by 856 MiB); ask for less --memory, stop a VM, or raise `overcommit.memory` in db.yaml",
                "not enough disk space in /var/lib/blockhost/vms: 80 GiB requested and the VMs' disks may still grow by 30.0 GiB, but the 100.0 GiB free allow 100.0 GiB at `overcommit.disk` 1 (short by 10.0 GiB); ask for less --disk, free space there, or raise `overcommit.disk` in db.yaml",
            ]
        );
    }

    #[test]
    fn memory_the_running_vms_were_promised_counts_even_when_it_is_still_free() {
        let all_that_is_free = Request { memory_mib: 6144, ..SMALL };
        assert_eq!(shortfalls(&host(), &Overcommit::default(), &all_that_is_free), Vec::<String>::new());
        let over = Request { memory_mib: 6145, ..SMALL };
        assert_eq!(
            shortfalls(&host(), &Overcommit::default(), &over),
            ["not enough free memory: 6145 MiB requested, but the host's 6144 MiB free allow 6144 MiB at `overcommit.memory` 1 (short by 1 MiB); ask for less --memory, stop a VM, or raise `overcommit.memory` in db.yaml"]
        );
        let promised = HostCapacity { running_memory_mib: 4096, ..host() };
        assert_eq!(
            shortfalls(&promised, &Overcommit::default(), &Request { memory_mib: 5000, ..SMALL }),
            ["not enough memory: 5000 MiB requested and the running VMs have 4096 MiB, but the host's 8192 MiB allow 8192 MiB at `overcommit.memory` 1 (short by 904 MiB); ask for less --memory, stop a VM, or raise `overcommit.memory` in db.yaml"]
        );
    }

    #[test]
    fn free_memory_nobody_can_tell_is_not_checked() {
        let unknown = HostCapacity { memory_free_mib: None, running_memory_mib: 0, ..host() };
        assert_eq!(shortfalls(&unknown, &Overcommit::default(), &Request { memory_mib: 8192, ..SMALL }), Vec::<String>::new());
        assert_eq!(shortfalls(&unknown, &Overcommit::default(), &Request { memory_mib: 8193, ..SMALL }).len(), 1, "the total still counts");
    }

    #[test]
    fn ratios_above_one_allow_overcommit() {
        let big = Request { vcpus: 14, memory_mib: 7000, disk_gib: 170 };
        let generous = Overcommit { cpu: 4.0, memory: 1.5, disk: 2.0 };
        assert_eq!(shortfalls(&host(), &generous, &big), Vec::<String>::new());
    }
}
