//! blockhost-vm-throttle

use crate::entry::{open_session, Executable, Outcome};
use crate::manual::{Manual, STANDARD_EXIT};
use clap::Parser;
use provisioner::verbs::exit_code::SUCCESS;
use provisioner::verbs::throttle::{self, ThrottleArgs};

pub const PROG: &str = "blockhost-vm-throttle";

/// Apply resource limits to a VM (live and persistent); one confirmation line per change.
#[derive(Debug, Parser)]
#[command(name = PROG, version)]
pub struct Args {
    /// VM name
    pub name: String,
    /// CPU weight, 1-10000 (default 1024)
    #[arg(long, value_name = "N")]
    pub cpu_shares: Option<u64>,
    /// CPU cap per vCPU in percent, 1-100
    #[arg(long, value_name = "PCT")]
    pub cpu_quota: Option<u64>,
    /// Inbound bandwidth in kbit/s (0 removes the limit)
    #[arg(long, value_name = "KBPS")]
    pub bandwidth_in: Option<u64>,
    /// Outbound bandwidth in kbit/s (0 removes the limit)
    #[arg(long, value_name = "KBPS")]
    pub bandwidth_out: Option<u64>,
    /// Disk read operations per second (0 removes the limit)
    #[arg(long, value_name = "N")]
    pub iops_read: Option<u64>,
    /// Disk write operations per second (0 removes the limit)
    #[arg(long, value_name = "N")]
    pub iops_write: Option<u64>,
    /// Restore the defaults: shares 1024, no quota, no bandwidth or IOPS limits
    #[arg(long)]
    pub reset: bool,
}

impl Executable for Args {
    const PROG: &'static str = PROG;
    const MANUAL: Manual = Manual {
        exit_status: STANDARD_EXIT,
        examples: &[("blockhost-vm-throttle web1 --cpu-shares 512", "sets web1's CPU weight to 512"), ("blockhost-vm-throttle web1 --reset", "removes every limit")],
    };

    /// The limits are checked before the session is opened: no option, or one out of range, is exit 1.
    fn run(self) -> Outcome {
        let request = ThrottleArgs {
            cpu_shares: self.cpu_shares,
            cpu_quota: self.cpu_quota,
            bandwidth_in: self.bandwidth_in,
            bandwidth_out: self.bandwidth_out,
            iops_read: self.iops_read,
            iops_write: self.iops_write,
            reset: self.reset,
        };
        let change = throttle::change_from(&request)?;
        throttle::run(&open_session(false, false)?, &self.name, &change)?;
        throttle::describe(&change).iter().for_each(|line| crate::out!("{line}"));
        Ok(SUCCESS)
    }
}
