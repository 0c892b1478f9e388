//! blockhost-vm-status

use crate::{open_session, parse_with};
use clap::Parser;
use provisioner::verbs::status::{self, UNKNOWN};
use std::process::ExitCode;

pub const PROG: &str = "blockhost-vm-status";

/// Print exactly one of: active, suspended, destroyed, unknown. Always exits 0.
#[derive(Debug, Parser)]
#[command(name = PROG, version)]
pub struct Args {
    /// VM name
    pub name: String,
}

pub fn main() -> ExitCode {
    let args = match parse_with::<Args>(|line| {
        crate::note!("{PROG}: {line}");
        crate::out!("{UNKNOWN}");
        ExitCode::SUCCESS
    }) {
        Ok(args) => args,
        Err(code) => return code,
    };
    let status = match open_session(false, false) {
        Ok(session) => status::run(&session, &args.name),
        Err(e) => status::Status::unknown(e.to_string()),
    };
    if let Some(reason) = &status.reason {
        crate::note!("{PROG}: {reason}");
    }
    crate::out!("{}", status.word);
    ExitCode::SUCCESS
}
