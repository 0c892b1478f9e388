//! blockhost-vm-start

use crate::entry::{open_session, Executable, Outcome};
use crate::manual::{Manual, STANDARD_EXIT};
use clap::Parser;
use provisioner::verbs::exit_code::SUCCESS;
use provisioner::verbs::power::{self, Outcome::AlreadyThere, Outcome::Done};

pub const PROG: &str = "blockhost-vm-start";

/// Start a stopped VM (a running VM is left as it is).
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
        examples: &[("blockhost-vm-start web1", "powers web1 on")],
    };

    fn run(self) -> Outcome {
        match power::start(&open_session(false, false)?, &self.name)? {
            Done => crate::out!("VM started: {}", self.name),
            AlreadyThere => crate::out!("VM already running: {}", self.name),
        }
        Ok(SUCCESS)
    }
}
