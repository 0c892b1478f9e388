//! blockhost-vm-guest-exec

use crate::entry::{note_bytes, open_session, out_bytes, Executable, Outcome};
use crate::manual::Manual;
use clap::Parser;
use provisioner::verbs::exit_code;
use provisioner::verbs::guest_exec::{self, DEFAULT_TIMEOUT};

pub const PROG: &str = "blockhost-vm-guest-exec";

/// Run a shell command in the guest (/bin/sh -c); its output and exit code pass through.
#[derive(Debug, Parser)]
#[command(name = PROG, version)]
pub struct Args {
    /// VM name
    pub name: String,
    /// Command words, joined with single spaces into one shell command
    #[arg(required = true, trailing_var_arg = true, allow_hyphen_values = true)]
    pub command: Vec<String>,
}

impl Executable for Args {
    const PROG: &'static str = PROG;
    const MANUAL: Manual = Manual {
        exit_status: &[
            ("N", "the exit code of the command in the guest"),
            ("1", "the command could not be run (no guest agent, no VM)"),
            ("2", "the command line could not be parsed"),
        ],
        examples: &[("blockhost-vm-guest-exec web1 uptime", "runs uptime in web1, its output and exit code passed through")],
    };

    /// The guest's output is written through and its exit code is ours.
    fn run(self) -> Outcome {
        let output = guest_exec::run(&open_session(false, false)?, &self.name, &self.command.join(" "), DEFAULT_TIMEOUT)?;
        out_bytes(&output.stdout);
        note_bytes(&output.stderr);
        Ok(exit_code::passed_through(output.exit_code))
    }
}
