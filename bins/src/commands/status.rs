//! blockhost-vm-status

use crate::entry::{open_session, Executable, Failure, Outcome};
use crate::manual::Manual;
use clap::Parser;
use provisioner::verbs::exit_code::SUCCESS;
use provisioner::verbs::status::{self, Status, UNKNOWN};

pub const PROG: &str = "blockhost-vm-status";

/// Print exactly one of: active, suspended, destroyed, unknown. Always exits 0.
#[derive(Debug, Parser)]
#[command(name = PROG, version)]
pub struct Args {
    /// VM name
    pub name: String,
}

/// Never fails: a usage error and any doubt are `unknown`, exit 0.
impl Executable for Args {
    const PROG: &'static str = PROG;
    const MANUAL: Manual = Manual {
        exit_status: &[("0", "always; the word on stdout is the answer, a reason for unknown goes to stderr")],
        examples: &[("blockhost-vm-status web1", "active, suspended, destroyed or unknown")],
    };
    const USAGE_EXIT: u8 = SUCCESS;

    fn run(self) -> Outcome {
        let status = match open_session(false, false) {
            Ok(session) => status::run(&session, &self.name),
            Err(e) => Status::unknown(e.to_string()),
        };
        match status.reason {
            Some(reason) => Err(Failure { message: reason, code: SUCCESS }),
            None => {
                crate::out!("{}", status.word);
                Ok(SUCCESS)
            }
        }
    }

    /// Why on stderr, `unknown` on stdout.
    fn report(failure: &Failure) {
        crate::note!("{PROG}: {}", failure.message);
        crate::out!("{UNKNOWN}");
    }
}
