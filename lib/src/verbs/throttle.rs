//! `throttle`: validated CPU, bandwidth and IOPS limits, one line per change.

use super::{Session, VerbError};
use crate::host::names;
use crate::provider::{Limit, ThrottleChange};

/// The throttle flags as given on the command line.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ThrottleArgs {
    pub cpu_shares: Option<u64>,
    pub cpu_quota: Option<u64>,
    pub bandwidth_in: Option<u64>,
    pub bandwidth_out: Option<u64>,
    pub iops_read: Option<u64>,
    pub iops_write: Option<u64>,
    pub reset: bool,
}

pub const MAX_KBPS: u64 = 100_000_000;
pub const MAX_IOPS: u64 = 10_000_000;

/// Checks ranges; 0 lifts a bandwidth or IOPS limit.
pub fn change_from(args: &ThrottleArgs) -> Result<ThrottleChange, VerbError> {
    let check = |flag: &str, value: Option<u64>, min: u64, max: u64| match value {
        Some(v) if !(min..=max).contains(&v) => {
            Err(VerbError::Usage(format!("invalid {flag} {v}: must be between {min} and {max}")))
        }
        other => Ok(other),
    };
    let limit = |v: Option<u64>| v.map(|v| if v == 0 { Limit::Unlimited } else { Limit::Set(v) });
    let change = ThrottleChange {
        cpu_shares: check("--cpu-shares", args.cpu_shares, 1, 10_000)?,
        cpu_quota_percent: check("--cpu-quota", args.cpu_quota, 1, 100)?.map(Limit::Set),
        bandwidth_in_kbps: limit(check("--bandwidth-in", args.bandwidth_in, 0, MAX_KBPS)?),
        bandwidth_out_kbps: limit(check("--bandwidth-out", args.bandwidth_out, 0, MAX_KBPS)?),
        iops_read: limit(check("--iops-read", args.iops_read, 0, MAX_IOPS)?),
        iops_write: limit(check("--iops-write", args.iops_write, 0, MAX_IOPS)?),
    };
    match (args.reset, change.is_empty()) {
        (true, true) => Ok(ThrottleChange::defaults()),
        (true, false) => Err(VerbError::Usage("--reset cannot be combined with other limits".into())),
        (false, true) => Err(VerbError::Usage("nothing to change: give at least one limit or --reset".into())),
        (false, false) => Ok(change),
    }
}

/// The confirmation lines for a change, in flag order.
pub fn describe(change: &ThrottleChange) -> Vec<String> {
    let mut lines = Vec::new();
    if let Some(shares) = change.cpu_shares {
        lines.push(format!("CPU shares set to {shares}"));
    }
    let mut limit = |what: &str, unit: &str, value: Option<Limit>| match value {
        Some(Limit::Set(v)) => lines.push(format!("{what} set to {v}{unit}")),
        Some(Limit::Unlimited) => lines.push(format!("{what} limit removed (unlimited)")),
        None => {}
    };
    limit("CPU quota", "%", change.cpu_quota_percent);
    limit("Bandwidth inbound", " kbps", change.bandwidth_in_kbps);
    limit("Bandwidth outbound", " kbps", change.bandwidth_out_kbps);
    limit("IOPS read", "", change.iops_read);
    limit("IOPS write", "", change.iops_write);
    lines
}

pub fn run(session: &Session, name: &str, change: &ThrottleChange) -> Result<(), VerbError> {
    names::vm_name(name)?;
    let caps = session.backend.capabilities();
    if !caps.throttle {
        return Err(VerbError::Failed(format!("the {} backend cannot throttle VMs", session.backend.name())));
    }
    let vm = session.backend.get(name)?.ok_or_else(|| VerbError::NotFound(name.to_string()))?;
    if !caps.persistent_throttle && vm.state != crate::provider::PowerState::Running {
        return Err(VerbError::Failed(format!("VM {name} is not running; limits can only be applied to a running VM")));
    }
    session.backend.throttle(name, change)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_and_lines() {
        let args = ThrottleArgs { cpu_shares: Some(512), cpu_quota: Some(50), bandwidth_in: Some(0), iops_write: Some(300), ..Default::default() };
        let change = change_from(&args).unwrap();
        assert_eq!(
            describe(&change),
            ["CPU shares set to 512", "CPU quota set to 50%", "Bandwidth inbound limit removed (unlimited)", "IOPS write set to 300"]
        );
        for bad in [
            ThrottleArgs { cpu_shares: Some(0), ..Default::default() },
            ThrottleArgs { cpu_shares: Some(10_001), ..Default::default() },
            ThrottleArgs { cpu_quota: Some(101), ..Default::default() },
            ThrottleArgs { bandwidth_out: Some(MAX_KBPS + 1), ..Default::default() },
            ThrottleArgs { iops_read: Some(MAX_IOPS + 1), ..Default::default() },
            ThrottleArgs::default(),
            ThrottleArgs { reset: true, cpu_shares: Some(5), ..Default::default() },
        ] {
            assert!(matches!(change_from(&bad), Err(VerbError::Usage(_))), "{bad:?}");
        }
        let reset = change_from(&ThrottleArgs { reset: true, ..Default::default() }).unwrap();
        assert_eq!(describe(&reset)[0], "CPU shares set to 1024");
        assert_eq!(describe(&reset).len(), 6);
    }
}
