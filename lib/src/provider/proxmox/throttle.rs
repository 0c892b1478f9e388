//! Throttles as VM config, so they persist across stop/start and PVE applies
//! them to a running guest: CPU shares are `cpuunits`; the CPU quota (a
//! percentage of each vCPU, as the libvirt backend sets it) is `cpulimit`,
//! in whole-VM CPUs; IOPS are `iops_rd`/`iops_wr` of the boot disk; bandwidth
//! is the NIC's `rate`. PVE shapes a NIC with one rate for both directions,
//! so inbound and outbound bandwidth can only be changed together, to one value.

use super::client::{segment, Client};
use super::placement::boot_disk;
use super::vms::Located;
use crate::provider::{ErrorCode, Limit, ProviderError, ThrottleChange};

pub fn apply(client: &Client, vm: &Located, change: &ThrottleChange) -> Result<(), ProviderError> {
    let path = format!("/nodes/{}/qemu/{}/config", segment(&vm.node), vm.vmid);
    let config = client.get(&path, &[])?;
    let mut set: Vec<(&str, String)> = Vec::new();
    let mut delete: Vec<&str> = Vec::new();
    if let Some(shares) = change.cpu_shares {
        set.push(("cpuunits", shares.to_string()));
    }
    match change.cpu_quota_percent {
        Some(Limit::Set(percent)) => {
            let cores = config["cores"].as_u64().unwrap_or(1) * config["sockets"].as_u64().unwrap_or(1);
            set.push(("cpulimit", format_number(cores as f64 * percent as f64 / 100.0)));
        }
        Some(Limit::Unlimited) => delete.push("cpulimit"),
        None => {}
    }
    if let Some(rate) = nic_rate(&vm.info.name, change)? {
        let net = config["net0"].as_str().ok_or_else(|| ProviderError::new(ErrorCode::InvalidSpec, format!("{} has no net0 to limit", vm.info.name)))?;
        set.push(("net0", with_option(net, "rate", rate.map(|kbps| format_number(kbps as f64 * 1000.0 / 8.0 / 1_048_576.0)))));
    }
    if change.iops_read.is_some() || change.iops_write.is_some() {
        let (slot, _) = boot_disk(&config).ok_or_else(|| ProviderError::new(ErrorCode::InvalidSpec, format!("{} has no disk to limit", vm.info.name)))?;
        let mut disk = config[slot].as_str().unwrap_or_default().to_string();
        for (key, limit) in [("iops_rd", change.iops_read), ("iops_wr", change.iops_write)] {
            if let Some(limit) = limit {
                disk = with_option(&disk, key, limit_value(limit).map(|n| n.to_string()));
            }
        }
        set.push((slot, disk));
    }
    let joined = delete.join(",");
    let mut params: Vec<(&str, &str)> = set.iter().map(|(k, v)| (*k, v.as_str())).collect();
    if !joined.is_empty() {
        params.push(("delete", joined.as_str()));
    }
    client.run_task("POST", &path, &params)
}

/// The NIC rate to set (`Some(None)` lifts it), when the change touches bandwidth.
fn nic_rate(name: &str, change: &ThrottleChange) -> Result<Option<Option<u64>>, ProviderError> {
    match (change.bandwidth_in_kbps, change.bandwidth_out_kbps) {
        (None, None) => Ok(None),
        (Some(inbound), Some(outbound)) if inbound == outbound => Ok(Some(limit_value(inbound))),
        _ => Err(ProviderError::new(
            ErrorCode::Unsupported,
            format!("throttling {name}: Proxmox VE limits a NIC with one rate for both directions; give inbound and outbound bandwidth the same value"),
        )),
    }
}

fn limit_value(limit: Limit) -> Option<u64> {
    match limit {
        Limit::Set(n) => Some(n),
        Limit::Unlimited => None,
    }
}

/// A property string with `key` set to `value`, or removed for `None`.
fn with_option(property_string: &str, key: &str, value: Option<String>) -> String {
    let prefix = format!("{key}=");
    let mut parts: Vec<String> = property_string.split(',').filter(|p| !p.is_empty() && !p.starts_with(&prefix)).map(str::to_string).collect();
    if let Some(value) = value {
        parts.push(format!("{prefix}{value}"));
    }
    parts.join(",")
}

/// A number as PVE reads it: no exponent, at most six decimals (1 kbps is
/// 0.000119 MB/s; a rate of 0 would mean no limit), no trailing zeros.
fn format_number(n: f64) -> String {
    let text = format!("{n:.6}");
    text.trim_end_matches('0').trim_end_matches('.').to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn property_strings_and_numbers() {
        assert_eq!(with_option("local-lvm:vm-1-disk-0,size=3G,iops_rd=5", "iops_rd", Some("100".into())), "local-lvm:vm-1-disk-0,size=3G,iops_rd=100");
        assert_eq!(with_option("virtio=AA:BB,bridge=vmbr0,rate=1.5", "rate", None), "virtio=AA:BB,bridge=vmbr0");
        assert_eq!((format_number(0.5), format_number(2.0), format_number(0.0001)), ("0.5".into(), "2".into(), "0.0001".into()));
    }

    #[test]
    fn bandwidth_changes_only_in_both_directions_alike() {
        let both = |i, o| ThrottleChange { bandwidth_in_kbps: i, bandwidth_out_kbps: o, ..ThrottleChange::default() };
        assert_eq!(nic_rate("vm", &both(None, None)).unwrap(), None);
        assert_eq!(nic_rate("vm", &both(Some(Limit::Set(800)), Some(Limit::Set(800)))).unwrap(), Some(Some(800)));
        assert_eq!(nic_rate("vm", &both(Some(Limit::Unlimited), Some(Limit::Unlimited))).unwrap(), Some(None));
        assert_eq!(nic_rate("vm", &both(Some(Limit::Set(800)), None)).unwrap_err().code, ErrorCode::Unsupported);
    }
}
