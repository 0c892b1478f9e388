//! blockhost-provisioner-detect

use crate::entry::{open_session, Executable, Failure, Outcome};
use clap::Parser;
use provisioner::verbs::detect;
use provisioner::verbs::exit_code::SUCCESS;

pub const PROG: &str = "blockhost-provisioner-detect";

/// Exit 0 when this provisioner's platform is available on this host, 1 otherwise (saying why on stderr). Prints nothing on stdout.
#[derive(Debug, Parser)]
#[command(name = PROG, version)]
pub struct Args {}

impl Executable for Args {
    const PROG: &'static str = PROG;

    /// The answer is the exit code; a host where no session opens has no usable platform.
    fn run(self) -> Outcome {
        detect::run(&open_session(false, false)?).map_err(Failure::from)?;
        Ok(SUCCESS)
    }
}
