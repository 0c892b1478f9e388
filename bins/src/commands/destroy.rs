//! blockhost-vm-destroy

use crate::entry::{open_session, Executable, Outcome};
use crate::manual::{Manual, STANDARD_EXIT};
use clap::Parser;
use provisioner::verbs::destroy;
use provisioner::verbs::exit_code::SUCCESS;

pub const PROG: &str = "blockhost-vm-destroy";

/// Destroy a VM and everything it had (idempotent); its record is kept, marked destroyed.
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
        examples: &[("blockhost-vm-destroy web1", "removes web1, its disk, seed and addresses; again is a no-op")],
    };

    fn run(self) -> Outcome {
        destroy::run(&open_session(false, false)?, &self.name)?;
        crate::out!("VM destroyed: {}", self.name);
        Ok(SUCCESS)
    }
}
