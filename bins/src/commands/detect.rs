//! blockhost-provisioner-detect

use crate::{open_session, parse};
use clap::Parser;
use provisioner::verbs::detect;
use std::process::ExitCode;

pub const PROG: &str = "blockhost-provisioner-detect";

/// Exit 0 when this provisioner's platform is available on this host, 1 otherwise. Prints nothing.
#[derive(Debug, Parser)]
#[command(name = PROG, version)]
pub struct Args {}

pub fn main() -> ExitCode {
    if let Err(code) = parse::<Args>(PROG, 2) {
        return code;
    }
    match open_session(false, false) {
        Ok(session) if detect::run(&session) => ExitCode::SUCCESS,
        _ => ExitCode::FAILURE,
    }
}
