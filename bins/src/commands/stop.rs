//! blockhost-vm-stop

use crate::entry::{open_session, stderr_progress, Executable, Outcome};
use crate::manual::{Manual, STANDARD_EXIT};
use clap::Parser;
use provisioner::verbs::exit_code::SUCCESS;
use provisioner::verbs::power::{self, Outcome::AlreadyThere, Outcome::Done, DEFAULT_STOP_TIMEOUT_SECS};
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

impl Executable for Args {
    const PROG: &'static str = PROG;
    const MANUAL: Manual = Manual {
        exit_status: STANDARD_EXIT,
        examples: &[("blockhost-vm-stop web1 --timeout 120", "asks the guest to shut down, waits up to 120 s, telling the wait every 10 s")],
    };

    fn run(self) -> Outcome {
        match power::stop_telling(&open_session(false, false)?, &self.name, Duration::from_secs(self.timeout), &mut stderr_progress)? {
            Done => crate::out!("VM stopped: {}", self.name),
            AlreadyThere => crate::out!("VM already stopped: {}", self.name),
        }
        Ok(SUCCESS)
    }
}
