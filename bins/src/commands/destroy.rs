//! blockhost-vm-destroy

use crate::{parse, run_printing};
use clap::Parser;
use provisioner::verbs::destroy;
use std::process::ExitCode;

pub const PROG: &str = "blockhost-vm-destroy";

/// Destroy a VM and everything it had (idempotent); its record is kept, marked destroyed.
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
        destroy::run(session, &args.name)?;
        Ok(format!("VM destroyed: {}", args.name))
    })
}
