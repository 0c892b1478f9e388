//! Throttles: CPU shares and quota, interface bandwidth and disk IOPS, written
//! to the persistent definition and, while the VM runs, applied live.

use super::domain_xml::DISK_TARGET;
use super::errors::write_error;
use super::ffi;
use crate::provider::{ErrorCode, Limit, ProviderError, ThrottleChange};
use virt::domain::{SchedBandwidth, SchedulerInfo};
use virt::sys;

/// The CFS period the CPU quota is a share of (µs).
const CPU_PERIOD_US: u64 = 100_000;

/// Writes the change to the persistent definition and, when the VM runs, to
/// the live one: two calls, because not every driver takes both flags at once.
pub fn apply(domain: &virt::domain::Domain, running: bool, mac: Option<&str>, change: &ThrottleChange) -> Result<(), ProviderError> {
    apply_with(domain, mac, change, sys::VIR_DOMAIN_AFFECT_CONFIG)?;
    if running {
        apply_with(domain, mac, change, sys::VIR_DOMAIN_AFFECT_LIVE)?;
    }
    Ok(())
}

fn apply_with(domain: &virt::domain::Domain, mac: Option<&str>, change: &ThrottleChange, flags: u32) -> Result<(), ProviderError> {
    if change.cpu_shares.is_some() || change.cpu_quota_percent.is_some() {
        let info = scheduler_info(change);
        domain.set_scheduler_parameters_flags(&info, flags).map_err(|e| write_error("setting CPU limits", &e))?;
    }
    let bandwidth = [("inbound", change.bandwidth_in_kbps), ("outbound", change.bandwidth_out_kbps)];
    if bandwidth.iter().any(|(_, l)| l.is_some()) {
        let device = mac.ok_or_else(|| ProviderError::new(ErrorCode::InvalidSpec, "the VM has no network interface to limit"))?;
        let params = interface_params(&bandwidth);
        let params: Vec<(&str, u32)> = params.iter().map(|(k, v)| (k.as_str(), *v)).collect();
        ffi::set_interface_parameters(domain, device, &params, flags).map_err(|e| write_error("setting bandwidth", &e))?;
    }
    let iops = [("read_iops_sec", change.iops_read), ("write_iops_sec", change.iops_write)];
    let params: Vec<(&str, u64)> = iops.iter().filter_map(|(k, l)| l.map(|l| (*k, limit_value(l)))).collect();
    if !params.is_empty() {
        ffi::set_block_iotune(domain, DISK_TARGET, &params, flags).map_err(|e| write_error("setting disk IOPS", &e))?;
    }
    Ok(())
}

fn limit_value(limit: Limit) -> u64 {
    match limit {
        Limit::Set(v) => v,
        Limit::Unlimited => 0,
    }
}

fn scheduler_info(change: &ThrottleChange) -> SchedulerInfo {
    let vcpu_bw = match change.cpu_quota_percent {
        Some(Limit::Set(percent)) => SchedBandwidth { period: Some(CPU_PERIOD_US), quota: Some((percent * CPU_PERIOD_US / 100) as i64) },
        Some(Limit::Unlimited) => SchedBandwidth { period: None, quota: Some(-1) },
        None => SchedBandwidth { period: None, quota: None },
    };
    SchedulerInfo {
        scheduler_type: String::new(),
        cpu_shares: change.cpu_shares,
        vcpu_bw,
        emulator_bw: SchedBandwidth { period: None, quota: None },
        global_bw: SchedBandwidth { period: None, quota: None },
        iothread_bw: SchedBandwidth { period: None, quota: None },
        weight: None,
        cap: None,
        reservation: None,
        limit: None,
        shares: None,
    }
}

/// `<direction>.average/peak/burst` in KiB/s (burst in KiB): average = kbps/8,
/// peak twice that, burst one second's worth; 0 lifts the limit.
fn interface_params(bandwidth: &[(&str, Option<Limit>)]) -> Vec<(String, u32)> {
    let mut params = Vec::new();
    for (direction, limit) in bandwidth {
        let Some(limit) = limit else { continue };
        let average = u32::try_from(limit_value(*limit).div_ceil(8)).unwrap_or(u32::MAX);
        params.push((format!("{direction}.average"), average));
        if average > 0 {
            params.push((format!("{direction}.peak"), average.saturating_mul(2)));
            params.push((format!("{direction}.burst"), average));
        }
    }
    params
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_quota_is_a_share_of_the_period() {
        let info = scheduler_info(&ThrottleChange { cpu_quota_percent: Some(Limit::Set(50)), ..Default::default() });
        assert_eq!((info.vcpu_bw.period, info.vcpu_bw.quota), (Some(100_000), Some(50_000)));
        assert_eq!(info.cpu_shares, None);
        let lifted = scheduler_info(&ThrottleChange { cpu_quota_percent: Some(Limit::Unlimited), cpu_shares: Some(1024), ..Default::default() });
        assert_eq!((lifted.vcpu_bw.quota, lifted.cpu_shares), (Some(-1), Some(1024)));
    }

    #[test]
    fn bandwidth_is_converted_to_kib_per_second() {
        let params = interface_params(&[("inbound", Some(Limit::Set(8000))), ("outbound", None)]);
        assert_eq!(params, [("inbound.average".to_string(), 1000), ("inbound.peak".to_string(), 2000), ("inbound.burst".to_string(), 1000)]);
        let lifted = interface_params(&[("inbound", Some(Limit::Unlimited)), ("outbound", Some(Limit::Unlimited))]);
        assert_eq!(lifted, [("inbound.average".to_string(), 0), ("outbound.average".to_string(), 0)]);
        assert_eq!(interface_params(&[("outbound", Some(Limit::Set(1)))])[0], ("outbound.average".to_string(), 1), "never rounds a limit down to none");
    }
}
