//! blockhost-vm-start

use crate::{parse, run_printing};
use clap::Parser;
use provisioner::verbs::power::{self, Outcome};
use std::process::ExitCode;

pub const PROG: &str = "blockhost-vm-start";

/// Start a stopped VM (a running VM is left as it is).
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
        Ok(match power::start(session, &args.name)? {
            Outcome::Done => format!("VM started: {}", args.name),
            Outcome::AlreadyThere => format!("VM already running: {}", args.name),
        })
    })
}
