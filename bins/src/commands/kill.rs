//! blockhost-vm-kill

use crate::entry::{open_session, Executable, Outcome};
use crate::manual::{Manual, STANDARD_EXIT};
use clap::Parser;
use provisioner::verbs::exit_code::SUCCESS;
use provisioner::verbs::power::{self, Outcome::AlreadyThere, Outcome::Done};

pub const PROG: &str = "blockhost-vm-kill";

/// Power a VM off immediately, without a graceful shutdown (a stopped VM is left as it is).
#[derive(Debug, Parser)]
#[command(name = PROG, version)]
pub struct Args {
    /// VM name
    pub name: String,
}

impl Executable for Args {
    const PROG: &'static str = PROG;
    const MANUAL: Manual = Manual {
        exit_status: STANDARD_EXIT,
        examples: &[("blockhost-vm-kill web1", "powers web1 off at once")],
    };

    fn run(self) -> Outcome {
        match power::kill(&open_session(false, false)?, &self.name)? {
            Done => crate::out!("VM killed: {}", self.name),
            AlreadyThere => crate::out!("VM already stopped: {}", self.name),
        }
        Ok(SUCCESS)
    }
}
