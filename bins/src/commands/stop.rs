//! blockhost-vm-stop

use crate::{parse, run_printing};
use clap::Parser;
use provisioner::verbs::power::{self, Outcome, DEFAULT_STOP_TIMEOUT_SECS};
use std::process::ExitCode;
use std::time::Duration;

pub const PROG: &str = "blockhost-vm-stop";

/// Shut a VM down gracefully (ACPI) and wait until it is off; fails when the wait bound passes.
#[derive(Debug, Parser)]
#[command(name = PROG, version)]
pub struct Args {
    /// VM name
    pub name: String,
    /// Seconds to wait for the guest to power off
    #[arg(long, default_value_t = DEFAULT_STOP_TIMEOUT_SECS, value_name = "SECS")]
    pub timeout: u64,
}

pub fn main() -> ExitCode {
    let args = match parse::<Args>(PROG, 2) {
        Ok(args) => args,
        Err(code) => return code,
    };
    run_printing(PROG, false, |session| {
        Ok(match power::stop(session, &args.name, Duration::from_secs(args.timeout))? {
            Outcome::Done => format!("VM stopped: {}", args.name),
            Outcome::AlreadyThere => format!("VM already stopped: {}", args.name),
        })
    })
}
