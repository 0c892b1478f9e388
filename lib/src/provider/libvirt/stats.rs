//! libvirt domain states and bulk statistics, in the provider's terms.

use super::domain_xml::DISK_TARGET;
use super::ffi::StatsRecord;
use crate::host::process;
use crate::provider::{PowerState, RawStats};
use virt::sys;

/// The statistics groups metrics reads, with the prefix of their keys and what
/// each gives that no other group does. `state`, `cpu-total` and `interface`
/// are read from the host (cgroups, /proc); `balloon` and `block` ask QEMU's
/// monitor, so libvirtd takes a query job on each running domain, which
/// `vcpu` needs too but then costs only a read of /proc per vCPU thread. The
/// vCPU count exists in no cheaper group, the memory figures and the disk
/// counters nowhere else. Not requested: `perf`, `iothread`, `memory`
/// (bandwidth), `dirtyrate`, `vm`, `cpu` details beyond the total.
const GROUPS: [(u32, &str); 6] = [
    (sys::VIR_DOMAIN_STATS_STATE, "state."),         // the power state
    (sys::VIR_DOMAIN_STATS_CPU_TOTAL, "cpu."),       // CPU time, for cpu_percent
    (sys::VIR_DOMAIN_STATS_BALLOON, "balloon."),     // memory total, the guest's (or host's) used memory
    (sys::VIR_DOMAIN_STATS_VCPU, "vcpu."),           // the vCPU count: cpu_count, cpu_percent's ceiling
    (sys::VIR_DOMAIN_STATS_INTERFACE, "net."),       // bytes received and sent by every NIC
    (sys::VIR_DOMAIN_STATS_BLOCK, "block."),         // the main disk's capacity and I/O counters
];

/// The statistics groups metrics needs, fetched in one call.
pub const METRICS_GROUPS: u32 = {
    let mut flags = 0;
    let mut i = 0;
    while i < GROUPS.len() {
        flags |= GROUPS[i].0;
        i += 1;
    }
    flags
};

pub fn power_state(state: u32) -> PowerState {
    match state {
        sys::VIR_DOMAIN_RUNNING | sys::VIR_DOMAIN_BLOCKED | sys::VIR_DOMAIN_SHUTDOWN => PowerState::Running,
        sys::VIR_DOMAIN_PAUSED => PowerState::Paused,
        sys::VIR_DOMAIN_PMSUSPENDED => PowerState::Suspended,
        sys::VIR_DOMAIN_SHUTOFF => PowerState::ShutOff,
        sys::VIR_DOMAIN_CRASHED => PowerState::Crashed,
        _ => PowerState::Other,
    }
}

/// Counters of one record; the guest figures are filled in separately.
pub fn raw_stats(record: &StatsRecord) -> RawStats {
    let n = |key: &str| record.u64(key).unwrap_or(0);
    let disk = block_index(record).map(|i| format!("block.{i}"));
    let d = |field: &str| disk.as_ref().map_or(0, |prefix| n(&format!("{prefix}.{field}")));
    let total_kib = n("balloon.maximum");
    RawStats {
        name: record.domain.clone(),
        state: record.u64("state.state").map(|s| power_state(s as u32)),
        vcpus: n("vcpu.current") as u32,
        cpu_time_ns: n("cpu.time"),
        cpu_busy: None,
        memory_total_kib: total_kib,
        memory_used_kib: memory_used_kib(record, total_kib),
        disk_capacity_bytes: d("capacity"),
        disk_rd_reqs: d("rd.reqs"),
        disk_wr_reqs: d("wr.reqs"),
        disk_rd_bytes: d("rd.bytes"),
        disk_wr_bytes: d("wr.bytes"),
        net_rx_bytes: sum_nics(record, "rx.bytes"),
        net_tx_bytes: sum_nics(record, "tx.bytes"),
        guest: None,
        instance: None,
    }
}

/// Guest-reported usage (available − usable) when the balloon driver reports
/// it, else the QEMU process's resident set, never above the total.
fn memory_used_kib(record: &StatsRecord, total_kib: u64) -> u64 {
    let guest = match (record.u64("balloon.available"), record.u64("balloon.usable")) {
        (Some(available), Some(usable)) if available > 0 => Some(available.saturating_sub(usable)),
        _ => None,
    };
    let used = guest.or_else(|| record.u64("balloon.rss")).unwrap_or(total_kib);
    if total_kib > 0 { used.min(total_kib) } else { used }
}

/// Names the QEMU process of each running VM (one pass over `/proc`, matched
/// by `-uuid`); a VM whose process this user cannot see gets none.
pub fn add_instances(stats: &mut [RawStats], records: &[StatsRecord]) {
    let running = |s: &RawStats| matches!(s.state, Some(PowerState::Running | PowerState::Paused));
    if !stats.iter().any(running) {
        return;
    }
    let by_uuid = process::by_argument("-uuid");
    for (stat, record) in stats.iter_mut().zip(records) {
        if running(stat) {
            stat.instance = by_uuid.get(&record.uuid).copied();
        }
    }
}

fn block_index(record: &StatsRecord) -> Option<u64> {
    let count = record.u64("block.count")?;
    (0..count).find(|i| record.text(&format!("block.{i}.name")) == Some(DISK_TARGET))
}

fn sum_nics(record: &StatsRecord, field: &str) -> u64 {
    let count = record.u64("net.count").unwrap_or(0);
    (0..count).map(|i| record.u64(&format!("net.{i}.{field}")).unwrap_or(0)).sum()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::provider::libvirt::ffi::ParamValue::{Text, UInt};

    fn record(params: Vec<(&str, crate::provider::libvirt::ffi::ParamValue)>) -> StatsRecord {
        StatsRecord { domain: "vm-1".into(), uuid: String::new(), params: params.into_iter().map(|(k, v)| (k.to_string(), v)).collect() }
    }

    #[test]
    fn states_map_onto_power_states() {
        assert_eq!(power_state(sys::VIR_DOMAIN_RUNNING), PowerState::Running);
        assert_eq!(power_state(sys::VIR_DOMAIN_BLOCKED), PowerState::Running);
        assert_eq!(power_state(sys::VIR_DOMAIN_SHUTDOWN), PowerState::Running, "still running while it shuts down");
        assert_eq!(power_state(sys::VIR_DOMAIN_PAUSED), PowerState::Paused);
        assert_eq!(power_state(sys::VIR_DOMAIN_PMSUSPENDED), PowerState::Suspended);
        assert_eq!(power_state(sys::VIR_DOMAIN_SHUTOFF), PowerState::ShutOff);
        assert_eq!(power_state(sys::VIR_DOMAIN_CRASHED), PowerState::Crashed);
        assert_eq!(power_state(sys::VIR_DOMAIN_NOSTATE), PowerState::Other);
    }

    #[test]
    fn counters_come_from_the_main_disk_and_all_nics() {
        let r = record(vec![
            ("state.state", UInt(1)),
            ("cpu.time", UInt(5_000_000_000)),
            ("vcpu.current", UInt(2)),
            ("balloon.maximum", UInt(1_048_576)),
            ("balloon.rss", UInt(600_000)),
            ("block.count", UInt(2)),
            ("block.0.name", Text("hdc".into())),
            ("block.0.rd.reqs", UInt(999)),
            ("block.1.name", Text("vda".into())),
            ("block.1.rd.reqs", UInt(10)),
            ("block.1.wr.reqs", UInt(20)),
            ("block.1.rd.bytes", UInt(4096)),
            ("block.1.wr.bytes", UInt(8192)),
            ("block.1.capacity", UInt(21_474_836_480)),
            ("net.count", UInt(2)),
            ("net.0.rx.bytes", UInt(100)),
            ("net.1.rx.bytes", UInt(50)),
            ("net.0.tx.bytes", UInt(7)),
        ]);
        let s = raw_stats(&r);
        assert_eq!(s.state, Some(PowerState::Running));
        assert_eq!((s.vcpus, s.cpu_time_ns), (2, 5_000_000_000));
        assert_eq!((s.memory_total_kib, s.memory_used_kib), (1_048_576, 600_000));
        assert_eq!((s.disk_rd_reqs, s.disk_wr_reqs, s.disk_rd_bytes, s.disk_wr_bytes), (10, 20, 4096, 8192));
        assert_eq!(s.disk_capacity_bytes, 21_474_836_480);
        assert_eq!((s.net_rx_bytes, s.net_tx_bytes), (150, 7));
    }

    fn full_record() -> StatsRecord {
        record(vec![
            ("state.state", UInt(1)),
            ("cpu.time", UInt(5)),
            ("vcpu.current", UInt(2)),
            ("balloon.maximum", UInt(2_000_000)),
            ("balloon.available", UInt(1_900_000)),
            ("balloon.usable", UInt(1_500_000)),
            ("block.count", UInt(1)),
            ("block.0.name", Text("vda".into())),
            ("block.0.rd.reqs", UInt(1)),
            ("block.0.wr.reqs", UInt(2)),
            ("block.0.rd.bytes", UInt(3)),
            ("block.0.wr.bytes", UInt(4)),
            ("block.0.capacity", UInt(5)),
            ("net.count", UInt(1)),
            ("net.0.rx.bytes", UInt(6)),
            ("net.0.tx.bytes", UInt(7)),
        ])
    }

    #[test]
    fn the_requested_groups_give_every_field_and_each_is_needed() {
        let full = raw_stats(&full_record());
        let counters = [u64::from(full.vcpus), full.cpu_time_ns, full.memory_total_kib, full.memory_used_kib, full.disk_capacity_bytes];
        let io = [full.disk_rd_reqs, full.disk_wr_reqs, full.disk_rd_bytes, full.disk_wr_bytes, full.net_rx_bytes, full.net_tx_bytes];
        assert!(full.state.is_some() && counters.iter().chain(&io).all(|v| *v > 0), "every field from the groups' keys: {full:?}");
        for (flag, prefix) in GROUPS {
            assert_ne!(METRICS_GROUPS & flag, 0);
            let mut without = full_record();
            without.params.retain(|(key, _)| !key.starts_with(prefix));
            assert_ne!(raw_stats(&without), full, "nothing read comes from the {prefix} group: do not request it");
        }
        let listed = GROUPS.iter().fold(0, |flags, (flag, _)| flags | flag);
        assert_eq!(METRICS_GROUPS, listed, "every requested group is listed with what it gives");
        assert_eq!(listed.count_ones(), 6);
    }

    #[test]
    fn guest_reported_memory_wins_over_host_rss() {
        let r = record(vec![
            ("balloon.maximum", UInt(2_000_000)),
            ("balloon.rss", UInt(1_900_000)),
            ("balloon.available", UInt(1_900_000)),
            ("balloon.usable", UInt(1_500_000)),
        ]);
        assert_eq!(raw_stats(&r).memory_used_kib, 400_000);
    }

    #[test]
    fn a_stopped_domain_has_zero_counters() {
        let s = raw_stats(&record(vec![("state.state", UInt(5))]));
        assert_eq!(s.state, Some(PowerState::ShutOff));
        assert_eq!((s.cpu_time_ns, s.disk_rd_reqs, s.net_rx_bytes, s.memory_used_kib), (0, 0, 0, 0));
    }
}
