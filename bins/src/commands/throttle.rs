//! blockhost-vm-throttle

use crate::{fail, open_session, parse};
use clap::Parser;
use provisioner::verbs::throttle::{self, ThrottleArgs};
use std::process::ExitCode;

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

pub fn main() -> ExitCode {
    let args = match parse::<Args>(PROG, 2) {
        Ok(args) => args,
        Err(code) => return code,
    };
    let request = ThrottleArgs {
        cpu_shares: args.cpu_shares,
        cpu_quota: args.cpu_quota,
        bandwidth_in: args.bandwidth_in,
        bandwidth_out: args.bandwidth_out,
        iops_read: args.iops_read,
        iops_write: args.iops_write,
        reset: args.reset,
    };
    let change = match throttle::change_from(&request) {
        Ok(change) => change,
        Err(e) => return fail(PROG, e),
    };
    match open_session(false, false).and_then(|s| throttle::run(&s, &args.name, &change)) {
        Ok(()) => {
            throttle::describe(&change).iter().for_each(|line| crate::out!("{line}"));
            ExitCode::SUCCESS
        }
        Err(e) => fail(PROG, e),
    }
}
