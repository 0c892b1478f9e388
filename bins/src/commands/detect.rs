//! blockhost-provisioner-detect

use crate::entry::{open_session, Executable, Outcome};
use clap::Parser;
use provisioner::verbs::detect;
use provisioner::verbs::exit_code::{FAILURE, SUCCESS};

pub const PROG: &str = "blockhost-provisioner-detect";

/// Exit 0 when this provisioner's platform is available on this host, 1 otherwise. Prints nothing.
#[derive(Debug, Parser)]
#[command(name = PROG, version)]
pub struct Args {}

impl Executable for Args {
    const PROG: &'static str = PROG;

    /// The answer is the exit code; a host where no session opens has no usable platform.
    fn run(self) -> Outcome {
        Ok(if open_session(false, false).is_ok_and(|session| detect::run(&session)) { SUCCESS } else { FAILURE })
    }
}
