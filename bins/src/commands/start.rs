//! blockhost-vm-start

use crate::{fail, open_session, parse};
use clap::Parser;
use provisioner::verbs::power::{self, Outcome};
use std::process::ExitCode;

pub const PROG: &str = "blockhost-vm-start";

/// Start a stopped VM (a running VM is left as it is).
#[derive(Debug, Parser)]
#[command(name = PROG, version, about)]
pub struct Args {
    /// VM name
    pub name: String,
}

pub fn main() -> ExitCode {
    let args = match parse::<Args>(PROG, 2) {
        Ok(args) => args,
        Err(code) => return code,
    };
    match open_session(false, false).and_then(|s| power::start(&s, &args.name)) {
        Ok(Outcome::Done) => println!("VM started: {}", args.name),
        Ok(Outcome::AlreadyThere) => println!("VM already running: {}", args.name),
        Err(e) => return fail(PROG, e),
    }
    ExitCode::SUCCESS
}
