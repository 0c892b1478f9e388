//! blockhost-vm-destroy

use crate::{fail, open_session, parse};
use clap::Parser;
use provisioner::verbs::destroy;
use std::process::ExitCode;

pub const PROG: &str = "blockhost-vm-destroy";

/// Destroy a VM and everything it had (idempotent); its record is kept, marked destroyed.
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
    match open_session(false, false).and_then(|s| destroy::run(&s, &args.name)) {
        Ok(()) => {
            println!("VM destroyed: {}", args.name);
            ExitCode::SUCCESS
        }
        Err(e) => fail(PROG, e),
    }
}
