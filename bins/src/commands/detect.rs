//! blockhost-provisioner-detect

use crate::entry::{open_session, Executable, Failure, Outcome};
use crate::manual::Manual;
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
    const MANUAL: Manual = Manual {
        exit_status: &[
            ("0", "the backend's platform is usable on this host"),
            ("1", "it is not; one line on stderr says why (libvirtd unreachable, no backend selected, ...)"),
            ("2", "the command line could not be parsed"),
        ],
        examples: &[("blockhost-provisioner-detect && echo usable", "stdout stays empty; the answer is the exit code")],
    };

    /// The answer is the exit code; a host where no session opens has no usable platform.
    fn run(self) -> Outcome {
        detect::run(&open_session(false, false)?).map_err(Failure::from)?;
        Ok(SUCCESS)
    }
}
