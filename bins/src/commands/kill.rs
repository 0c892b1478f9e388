//! blockhost-vm-kill

use crate::{fail, open_session, parse};
use clap::Parser;
use provisioner::verbs::power::{self, Outcome};
use std::process::ExitCode;

pub const PROG: &str = "blockhost-vm-kill";

/// Power a VM off immediately, without a graceful shutdown (a stopped VM is left as it is).
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
    match open_session(false, false).and_then(|s| power::kill(&s, &args.name)) {
        Ok(Outcome::Done) => println!("VM killed: {}", args.name),
        Ok(Outcome::AlreadyThere) => println!("VM already stopped: {}", args.name),
        Err(e) => return fail(PROG, e),
    }
    ExitCode::SUCCESS
}
