//! `metrics`: the 16-field usage object the watchdog parses, for one VM or for
//! all VMs from a single backend call. Rates come from each VM's previous
//! sample in the metrics cache (first sample and counter resets give 0). The
//! bulk call also leaves the shared sample from which later one-VM calls are
//! answered without the backend while it is fresh (`host::shared_sample`).

use super::{Session, VerbError};
use crate::host::config::DbConfig;
use crate::host::metrics_cache::{Sample, Samples};
use crate::host::names;
use crate::host::paths::HostPaths;
use crate::host::pyjson;
use crate::host::shared_sample::{self, SharedSample};
use crate::provider::{PowerState, RawStats};
use serde_json::{json, Value};
use std::collections::HashMap;

/// Samples closer together than this give no rates (too noisy).
const MIN_INTERVAL_SECS: f64 = 0.5;

#[derive(Debug, Clone, PartialEq)]
pub struct Metrics {
    pub cpu_percent: f64,
    pub cpu_count: u64,
    pub memory_used_mb: u64,
    pub memory_total_mb: u64,
    pub disk_used_mb: i64,
    pub disk_total_mb: u64,
    pub disk_read_iops: u64,
    pub disk_write_iops: u64,
    pub disk_read_bytes_sec: u64,
    pub disk_write_bytes_sec: u64,
    pub net_rx_bytes_sec: u64,
    pub net_tx_bytes_sec: u64,
    pub net_connections: i64,
    pub guest_agent_responsive: bool,
    pub uptime_seconds: i64,
    pub state: &'static str,
}

impl Metrics {
    /// A VM that is not running (or unknown): nothing to measure.
    fn idle(state: &'static str) -> Self {
        Self {
            cpu_percent: 0.0,
            cpu_count: 0,
            memory_used_mb: 0,
            memory_total_mb: 0,
            disk_used_mb: -1,
            disk_total_mb: 0,
            disk_read_iops: 0,
            disk_write_iops: 0,
            disk_read_bytes_sec: 0,
            disk_write_bytes_sec: 0,
            net_rx_bytes_sec: 0,
            net_tx_bytes_sec: 0,
            net_connections: -1,
            guest_agent_responsive: false,
            uptime_seconds: 0,
            state,
        }
    }

    pub fn to_json(&self) -> Value {
        json!({
            "cpu_percent": self.cpu_percent,
            "cpu_count": self.cpu_count,
            "memory_used_mb": self.memory_used_mb,
            "memory_total_mb": self.memory_total_mb,
            "disk_used_mb": self.disk_used_mb,
            "disk_total_mb": self.disk_total_mb,
            "disk_read_iops": self.disk_read_iops,
            "disk_write_iops": self.disk_write_iops,
            "disk_read_bytes_sec": self.disk_read_bytes_sec,
            "disk_write_bytes_sec": self.disk_write_bytes_sec,
            "net_rx_bytes_sec": self.net_rx_bytes_sec,
            "net_tx_bytes_sec": self.net_tx_bytes_sec,
            "net_connections": self.net_connections,
            "guest_agent_responsive": self.guest_agent_responsive,
            "uptime_seconds": self.uptime_seconds,
            "state": self.state,
        })
    }
}

/// Metrics from raw counters and the previous sample; also returns the sample to cache.
pub fn compute(raw: &RawStats, previous: Option<&Sample>, now: f64) -> (Metrics, Option<Sample>) {
    let state = raw.state.map_or("unknown", PowerState::metrics_word);
    if !matches!(state, "running" | "paused") {
        return (Metrics::idle(state), None);
    }
    let sample = Sample {
        timestamp: now,
        cpu_time_ns: raw.cpu_time_ns,
        blk_rd_reqs: raw.disk_rd_reqs,
        blk_wr_reqs: raw.disk_wr_reqs,
        blk_rd_bytes: raw.disk_rd_bytes,
        blk_wr_bytes: raw.disk_wr_bytes,
        net_rx: raw.net_rx_bytes,
        net_tx: raw.net_tx_bytes,
    };
    let elapsed = previous.map_or(0.0, |p| now - p.timestamp);
    let rate = |current: u64, before: fn(&Sample) -> u64| -> f64 {
        match previous {
            Some(p) if elapsed > MIN_INTERVAL_SECS && current >= before(p) => (current - before(p)) as f64 / elapsed,
            _ => 0.0,
        }
    };
    let cpus_busy = raw.cpu_busy.unwrap_or_else(|| rate(raw.cpu_time_ns, |p| p.cpu_time_ns) / 1e9);
    let cpu_percent = (cpus_busy * 100.0).clamp(0.0, 100.0 * f64::from(raw.vcpus.max(1)));
    let guest = raw.guest.unwrap_or_default();
    let to_i64 = |v: Option<u64>| v.map_or(-1, |v| i64::try_from(v).unwrap_or(i64::MAX));
    let total_mb = raw.memory_total_kib / 1024;
    let metrics = Metrics {
        cpu_percent: (cpu_percent * 10.0).round() / 10.0,
        cpu_count: u64::from(raw.vcpus),
        memory_used_mb: if raw.memory_used_kib > 0 { raw.memory_used_kib / 1024 } else { total_mb },
        memory_total_mb: total_mb,
        disk_used_mb: to_i64(guest.root_used_bytes.map(|b| b >> 20)),
        disk_total_mb: raw.disk_capacity_bytes >> 20,
        disk_read_iops: rate(raw.disk_rd_reqs, |p| p.blk_rd_reqs).round() as u64,
        disk_write_iops: rate(raw.disk_wr_reqs, |p| p.blk_wr_reqs).round() as u64,
        disk_read_bytes_sec: rate(raw.disk_rd_bytes, |p| p.blk_rd_bytes).round() as u64,
        disk_write_bytes_sec: rate(raw.disk_wr_bytes, |p| p.blk_wr_bytes).round() as u64,
        net_rx_bytes_sec: rate(raw.net_rx_bytes, |p| p.net_rx).round() as u64,
        net_tx_bytes_sec: rate(raw.net_tx_bytes, |p| p.net_tx).round() as u64,
        net_connections: to_i64(guest.net_connections),
        guest_agent_responsive: raw.guest.is_some(),
        uptime_seconds: to_i64(guest.uptime_seconds),
        state,
    };
    (metrics, Some(sample))
}

fn now_secs() -> f64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0.0, |d| d.as_secs_f64())
}

/// Metrics of one VM from its previous sample, which this one replaces.
fn measure(samples: &mut Samples, raw: &RawStats, now: f64) -> Metrics {
    let (metrics, sample) = compute(raw, samples.get(&raw.name), now);
    if let Some(sample) = sample {
        samples.insert(&raw.name, sample);
    }
    metrics
}

/// `metrics <name>` answered from the shared sample, read once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SharedAnswer {
    /// The line to print.
    pub line: String,
    /// The sample is getting old and no process is retaking it.
    pub refresh_due: bool,
}

/// The shared sample's answer for the VM when it may give one; no backend,
/// no database. `None`: ask the backend.
pub fn shared_answer(paths: &HostPaths, name: &str) -> Option<SharedAnswer> {
    names::vm_name(name).ok()?;
    let config = DbConfig::load(paths, false).ok()?;
    let dir = shared_sample::dir(paths);
    let sample = SharedSample::load(&dir)?;
    let now = now_secs();
    let line = sample.answer(name, config.metrics_max_age, now)?.to_string();
    Some(SharedAnswer { line, refresh_due: sample.refresh_due(&dir, now) })
}

/// Whether a process should retake the shared sample in the background.
pub fn shared_refresh_due(paths: &HostPaths) -> bool {
    shared_sample::refresh_due(&shared_sample::dir(paths), now_secs())
}

/// The lock of the one process retaking the shared sample, when it is still
/// due and no other process holds the lock; the bulk call is [`all`].
pub fn shared_refresh_lock(paths: &HostPaths) -> Option<std::fs::File> {
    let dir = shared_sample::dir(paths);
    let lock = shared_sample::refresh_lock(&dir)?;
    SharedSample::load(&dir).is_none_or(|s| s.is_due(now_secs())).then_some(lock)
}

/// One VM's metrics, and whether a shared sample could answer for it (the
/// backend named its process and sharing is on; see [`shared_refresh_due`]).
pub struct Measured {
    pub metrics: Metrics,
    pub shareable: bool,
}

pub fn one(session: &Session, name: &str) -> Result<Measured, VerbError> {
    names::vm_name(name)?;
    if !session.backend.capabilities().metrics {
        return Err(VerbError::Failed(format!("the {} backend has no metrics", session.backend.name())));
    }
    let stats = session.backend.stats(Some(&[name.to_string()]))?;
    let raw = stats.into_iter().find(|s| s.name == name).ok_or_else(|| VerbError::NotFound(name.to_string()))?;
    let mut samples = Samples::open(&session.metrics_dir());
    let metrics = measure(&mut samples, &raw, now_secs());
    // A cache that cannot be written only costs the next call its rates.
    let _ = samples.save();
    let shareable = raw.instance.is_some() && !session.config.metrics_max_age.is_zero();
    Ok(Measured { metrics, shareable })
}

/// Every VM of the database that is not destroyed, keyed by name, from one
/// backend call; a VM the backend does not know is reported with state `unknown`.
pub fn all(session: &Session) -> Result<Vec<(String, Metrics)>, VerbError> {
    let doc = session.db.read()?;
    let names: Vec<String> = doc.vms().filter(|r| r.status() != "destroyed").map(|r| r.name.to_string()).collect();
    let mut stats: HashMap<String, RawStats> =
        session.backend.stats(None)?.into_iter().map(|s| (s.name.clone(), s)).collect();
    let mut samples = Samples::open(&session.metrics_dir());
    let now = now_secs();
    let mut shared = SharedSample::new(now);
    let all = names
        .into_iter()
        .map(|name| {
            let metrics = match stats.remove(&name) {
                None => Metrics::idle("unknown"),
                Some(raw) => {
                    let metrics = measure(&mut samples, &raw, now);
                    if let Some(process) = raw.instance {
                        shared.insert(&name, process, pyjson::dumps(&metrics.to_json()));
                    }
                    metrics
                }
            };
            (name, metrics)
        })
        .collect();
    let _ = samples.save();
    if !shared.is_empty() {
        let _ = shared.save(&shared_sample::dir(&session.paths));
    }
    Ok(all)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::provider::GuestStats;

    fn raw(cpu_ns: u64, rd: u64) -> RawStats {
        RawStats {
            name: "vm".into(),
            state: Some(PowerState::Running),
            vcpus: 2,
            cpu_time_ns: cpu_ns,
            memory_total_kib: 2048 * 1024,
            memory_used_kib: 512 * 1024,
            disk_capacity_bytes: 20 << 30,
            disk_rd_reqs: rd,
            guest: Some(GuestStats { root_used_bytes: Some(1500 << 20), uptime_seconds: Some(99), net_connections: Some(3) }),
            ..RawStats::default()
        }
    }

    #[test]
    fn first_sample_has_zero_rates_then_deltas() {
        let (m, sample) = compute(&raw(1_000_000_000, 100), None, 1000.0);
        assert_eq!((m.cpu_percent, m.disk_read_iops), (0.0, 0));
        assert_eq!((m.cpu_count, m.memory_used_mb, m.memory_total_mb, m.disk_total_mb), (2, 512, 2048, 20480));
        assert_eq!((m.disk_used_mb, m.net_connections, m.uptime_seconds), (1500, 3, 99));
        let (m, _) = compute(&raw(1_500_000_000, 300), sample.as_ref(), 1002.0);
        assert_eq!(m.cpu_percent, 25.0);
        assert_eq!(m.disk_read_iops, 100);
    }

    #[test]
    fn counter_reset_and_short_interval_give_zero() {
        let (_, sample) = compute(&raw(5_000_000_000, 100), None, 1000.0);
        let (m, _) = compute(&raw(1_000_000_000, 10), sample.as_ref(), 1002.0);
        assert_eq!((m.cpu_percent, m.disk_read_iops), (0.0, 0));
        let (m, _) = compute(&raw(9_000_000_000, 900), sample.as_ref(), 1000.2);
        assert_eq!(m.cpu_percent, 0.0);
    }

    #[test]
    fn clamped_to_vcpus_and_agent_down_gives_minus_one() {
        let (_, sample) = compute(&raw(0, 0), None, 0.0);
        let mut r = raw(50_000_000_000, 0);
        r.guest = None;
        let (m, _) = compute(&r, sample.as_ref(), 1.0);
        assert_eq!(m.cpu_percent, 200.0);
        assert_eq!((m.disk_used_mb, m.net_connections, m.uptime_seconds, m.guest_agent_responsive), (-1, -1, -1, false));
    }

    #[test]
    fn a_backend_given_cpu_use_replaces_the_rate_with_the_same_clamp_and_rounding() {
        let mut r = raw(0, 0);
        r.cpu_busy = Some(0.123_45);
        let (m, _) = compute(&r, None, 1000.0);
        assert_eq!(m.cpu_percent, 12.3, "from the first sample on");
        r.cpu_time_ns = 60_000_000_000;
        let (m, _) = compute(&r, Some(&compute(&raw(0, 0), None, 999.0).1.unwrap()), 1000.0);
        assert_eq!(m.cpu_percent, 12.3, "not the rate of cpu_time_ns");
        r.cpu_busy = Some(3.0);
        assert_eq!(compute(&r, None, 1000.0).0.cpu_percent, 200.0, "clamped to the 2 vCPUs");
    }

    #[test]
    fn stopped_vm_is_zeroed_with_the_contract_keys_in_order() {
        let mut r = raw(1, 1);
        r.state = Some(PowerState::ShutOff);
        let (m, sample) = compute(&r, None, 1.0);
        assert!(sample.is_none());
        let text = crate::host::pyjson::dumps(&m.to_json());
        assert_eq!(
            text,
            r#"{"cpu_percent": 0.0, "cpu_count": 0, "memory_used_mb": 0, "memory_total_mb": 0, "disk_used_mb": -1, "disk_total_mb": 0, "disk_read_iops": 0, "disk_write_iops": 0, "disk_read_bytes_sec": 0, "disk_write_bytes_sec": 0, "net_rx_bytes_sec": 0, "net_tx_bytes_sec": 0, "net_connections": -1, "guest_agent_responsive": false, "uptime_seconds": 0, "state": "stopped"}"#
        );
    }
}
