//! blockhost-vm-kill

use crate::{parse, run_printing};
use clap::Parser;
use provisioner::verbs::power::{self, Outcome};
use std::process::ExitCode;

pub const PROG: &str = "blockhost-vm-kill";

/// Power a VM off immediately, without a graceful shutdown (a stopped VM is left as it is).
#[derive(Debug, Parser)]
#[command(name = PROG, version)]
pub struct Args {
    /// VM name
    pub name: String,
}

pub fn main() -> ExitCode {
    let args = match parse::<Args>(PROG, 2) {
        Ok(args) => args,
        Err(code) => return code,
    };
    run_printing(PROG, false, |session| {
        Ok(match power::kill(session, &args.name)? {
            Outcome::Done => format!("VM killed: {}", args.name),
            Outcome::AlreadyThere => format!("VM already stopped: {}", args.name),
        })
    })
}
