//! blockhost-vm-guest-exec

use crate::{fail, open_session, parse};
use clap::Parser;
use provisioner::verbs::guest_exec::{self, DEFAULT_TIMEOUT};
use std::io::Write;
use std::process::ExitCode;

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

/// Writes the guest's output through and turns its exit code into ours.
pub fn pass_through(output: &provisioner::provider::ExecOutput) -> ExitCode {
    let _ = std::io::stdout().write_all(&output.stdout);
    let _ = std::io::stderr().write_all(&output.stderr);
    ExitCode::from(u8::try_from(output.exit_code).unwrap_or(1))
}

pub fn main() -> ExitCode {
    let args = match parse::<Args>(PROG, 2) {
        Ok(args) => args,
        Err(code) => return code,
    };
    let command = args.command.join(" ");
    match open_session(false, false).and_then(|s| guest_exec::run(&s, &args.name, &command, DEFAULT_TIMEOUT)) {
        Ok(output) => pass_through(&output),
        Err(e) => fail(PROG, e),
    }
}
