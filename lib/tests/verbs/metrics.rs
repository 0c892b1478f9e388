use crate::host::Host;
use provisioner::verbs::{destroy, metrics, power, VerbError};
use std::time::Duration;

#[test]
fn one_running_vm_reports_its_size_and_caches_a_sample() {
    let h = Host::new();
    h.create("m");
    let m = metrics::one(&h.session(), "m").unwrap().metrics;
    assert_eq!((m.state, m.cpu_count, m.memory_total_mb, m.disk_total_mb), ("running", 1, 512, 5 * 1024));
    assert!(m.guest_agent_responsive);
    assert!(m.memory_used_mb > 0 && m.memory_used_mb <= 512, "{m:?}");
    assert!(m.disk_used_mb > 0 && m.net_connections >= 1, "{m:?}");
    assert!(h.has_sample("m"), "a sample is cached for the next rates");
    assert_eq!(m.to_json().as_object().unwrap().len(), 16);
}

#[test]
fn rates_come_from_the_cached_sample() {
    let h = Host::new();
    h.create("r");
    let first = metrics::one(&h.session(), "r").unwrap().metrics;
    assert_eq!((first.disk_read_iops, first.net_rx_bytes_sec), (0, 0), "first sample: no rates");
    std::thread::sleep(Duration::from_millis(1100));
    let second = metrics::one(&h.session(), "r").unwrap().metrics;
    assert!(second.disk_read_iops > 0 && second.net_rx_bytes_sec > 0 && second.cpu_percent > 0.0, "{second:?}");
}

#[test]
fn a_stopped_vm_reports_idle_metrics_and_no_sample() {
    let h = Host::new();
    h.create("off");
    power::kill(&h.session(), "off").unwrap();
    let m = metrics::one(&h.session(), "off").unwrap().metrics;
    assert_eq!((m.state, m.cpu_count, m.disk_used_mb, m.net_connections), ("stopped", 0, -1, -1));
    assert!(!m.guest_agent_responsive);
    assert!(!h.has_sample("off"));
}

#[test]
fn one_unknown_or_invalid_vm_is_an_error() {
    let h = Host::new();
    assert!(matches!(metrics::one(&h.session(), "nope"), Err(VerbError::NotFound(ref n)) if n == "nope"));
    assert!(matches!(metrics::one(&h.session(), "a/b"), Err(VerbError::Invalid(_))));
    h.knobs("unreachable: true\n");
    assert!(matches!(metrics::one(&h.session(), "nope"), Err(VerbError::Provider(_))));
}

#[test]
fn all_covers_every_record_not_destroyed() {
    let h = Host::new();
    for name in ["a", "b", "c", "d"] {
        h.create(name);
    }
    destroy::run(&h.session(), "b").unwrap();
    power::kill(&h.session(), "c").unwrap();
    h.knobs("drift: vanish:d\n");
    let all = metrics::all(&h.session()).unwrap();
    let got: Vec<(&str, &str, u64)> = all.iter().map(|(n, m)| (n.as_str(), m.state, m.cpu_count)).collect();
    assert_eq!(got, [("a", "running", 1), ("c", "stopped", 0), ("d", "unknown", 0)]);
    assert!(h.has_sample("a") && !h.has_sample("c"));
    h.knobs("unreachable: true\n");
    assert!(matches!(metrics::all(&h.session()), Err(VerbError::Provider(_))));
}

#[test]
fn samples_half_a_second_apart_or_closer_give_no_rates() {
    use provisioner::host::metrics_cache::Sample;
    use provisioner::provider::{PowerState, RawStats};
    let raw = RawStats { name: "x".into(), state: Some(PowerState::Running), vcpus: 1, cpu_time_ns: 1_000_000_000, disk_rd_reqs: 500, ..RawStats::default() };
    let previous = Sample { timestamp: 1000.0, cpu_time_ns: 0, blk_rd_reqs: 0, blk_wr_reqs: 0, blk_rd_bytes: 0, blk_wr_bytes: 0, net_rx: 0, net_tx: 0 };
    let (at_bound, _) = metrics::compute(&raw, Some(&previous), 1000.5);
    assert_eq!((at_bound.cpu_percent, at_bound.disk_read_iops), (0.0, 0), "exactly 0.5 s: too close");
    let (after, _) = metrics::compute(&raw, Some(&previous), 1001.0);
    assert_eq!((after.cpu_percent, after.disk_read_iops), (100.0, 500));
}

#[test]
fn a_running_vm_without_a_balloon_reading_counts_all_its_memory_used() {
    use provisioner::provider::{PowerState, RawStats};
    let raw = RawStats { name: "x".into(), state: Some(PowerState::Running), vcpus: 1, memory_total_kib: 2048 * 1024, memory_used_kib: 0, ..RawStats::default() };
    let (m, _) = metrics::compute(&raw, None, 1.0);
    assert_eq!((m.memory_used_mb, m.memory_total_mb), (2048, 2048));
}

#[test]
fn the_bulk_call_leaves_a_shared_sample_that_answers_while_the_vm_process_lives() {
    use provisioner::host::pyjson;
    let h = Host::new();
    h.create("a");
    h.create("b");
    power::kill(&h.session(), "b").unwrap();
    assert!(metrics::shared_answer(&h.paths, "a").is_none(), "no bulk call yet");
    let mut qemu = std::process::Command::new("sleep").arg("60").spawn().unwrap();
    h.knobs(&format!("qemu_pid: {}\n", qemu.id()));
    let all = metrics::all(&h.session()).unwrap();
    let a = pyjson::dumps(&all.iter().find(|(n, _)| n == "a").unwrap().1.to_json());
    h.knobs(&format!("qemu_pid: {}\nunreachable: true\n", qemu.id()));
    assert_eq!(metrics::shared_answer(&h.paths, "a").map(|a| a.line), Some(a), "answered as the bulk call measured it, without the backend");
    assert_eq!(metrics::shared_answer(&h.paths, "b").map(|a| a.line), None, "a stopped VM is always asked");
    assert_eq!(metrics::shared_answer(&h.paths, "../a").map(|a| a.line), None);
    assert!(!metrics::shared_refresh_due(&h.paths), "just taken");
    assert_eq!(metrics::shared_answer(&h.paths, "a").map(|a| a.refresh_due), Some(false), "the answer says so too");
    h.write_config("db.yaml", "metrics_max_age_seconds: 0\n");
    assert_eq!(metrics::shared_answer(&h.paths, "a").map(|a| a.line), None, "sharing switched off");
    h.write_config("db.yaml", "metrics_max_age_seconds: 5\n");
    assert!(metrics::shared_answer(&h.paths, "a").is_some());
    qemu.kill().unwrap();
    qemu.wait().unwrap();
    assert_eq!(metrics::shared_answer(&h.paths, "a").map(|a| a.line), None, "its process ended: the VM may be stopped");
}

#[test]
fn a_backend_that_names_no_process_leaves_no_shared_sample() {
    let h = Host::new();
    h.create("a");
    let measured = metrics::one(&h.session(), "a").unwrap();
    assert!(!measured.shareable);
    metrics::all(&h.session()).unwrap();
    assert!(metrics::shared_answer(&h.paths, "a").is_none());
    assert!(!h.paths.state_dir().join("metrics/shared.json").exists());
}
